#![no_main]
//! The `.env` reader must parse or report a line for every input.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(line) = preflight::checks::parse_env(text) {
            assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} out of range");
        }
    }
});
