#![no_main]
//! The JSON manifest loader must answer every input with a manifest or an
//! error, never a panic or a hang.

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // A root that does not exist: symlink checks have nothing to follow.
        let _ = preflight::manifest::load_str(Path::new("preflight.json"), text, Path::new("/nonexistent/fuzz-root"));
    }
});
