#![no_main]
//! JSONL repair on arbitrary bytes: no panic; every line of the input ends
//! up either in the kept output or in the quarantine, none twice; the kept
//! output passes the check with no bad line.

use libfuzzer_sys::fuzz_target;
use preflight::json::jsonl;

fuzz_target!(|data: &[u8]| {
    let mut kept = Vec::new();
    let mut bad = Vec::new();
    let Ok(summary) = jsonl::repair(data, &mut kept, &mut bad) else { return };
    assert!(kept.len() <= data.len(), "repair invented bytes");
    let again = jsonl::check(&kept[..]).expect("reading a slice cannot fail");
    assert_eq!(again.bad, 0, "kept output still has bad lines");
    assert_eq!(again.lines + summary.bad, summary.lines, "a line was lost or duplicated");
});
