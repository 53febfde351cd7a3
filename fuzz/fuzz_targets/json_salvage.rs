#![no_main]
//! Salvage and the JSONL classifier on arbitrary bytes: no panic; the
//! scanner agrees with serde_json on validity (within serde_json's limits:
//! nesting depth, and numbers beyond f64, which RFC 8259 allows); a salvaged
//! document is valid JSON made of a prefix of the input and closers only.

use libfuzzer_sys::fuzz_target;
use preflight::json::{jsonl, salvage, scan};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = serde_json::from_slice::<Value>(data);
    let deep = matches!(&strict, Err(e) if beyond_serde_json(e));
    if !deep {
        assert_eq!(scan::is_valid(data), strict.is_ok(), "scanner and serde_json disagree");
    }
    if let salvage::Outcome::Damaged(s) = salvage::salvage(data) {
        if s.kept_value {
            assert!(s.tail.iter().all(|b| matches!(b, b']' | b'}')), "only closers are added");
            let out = s.to_bytes(data);
            assert!(scan::is_valid(&out), "salvage output is not valid JSON");
            // serde_json's own limits apply to the output too (a BOM before
            // `7E77777` hides them from the input's verdict).
            if let Err(e) = serde_json::from_slice::<Value>(&out) {
                assert!(beyond_serde_json(&e), "serde_json refuses the output: {e}");
            }
        }
    }
    let _ = jsonl::check(data);
});

/// Valid JSON that serde_json still refuses: nesting deeper than its limit,
/// numbers beyond f64.
fn beyond_serde_json(e: &serde_json::Error) -> bool {
    let message = e.to_string();
    message.contains("recursion limit") || message.contains("number out of range")
}
