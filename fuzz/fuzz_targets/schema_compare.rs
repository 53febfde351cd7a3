#![no_main]
//! The schema comparison on arbitrary DDL pairs (live, desired), separated
//! by a NUL byte: a result or an error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (live, desired) = text.split_once('\0').unwrap_or((text, ""));
    let _ = preflight::db::sqlite::compare_ddl(live, desired);
});
