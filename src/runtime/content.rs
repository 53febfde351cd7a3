//! The content of a small runtime file (a lock, a pidfile): read with a
//! bound, and shown escaped and cut for messages.

use std::fs;
use std::io::Read;
use std::path::Path;

/// Contents longer than this are not worth comparing or recording whole.
pub const MAX_CONTENT: u64 = 4096;

/// Characters of content shown in a detail or a plan line.
const SHOWN: usize = 120;

/// The first `MAX_CONTENT` bytes of a file.
pub fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(MAX_CONTENT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Content for a message: quoted, escaped, cut at `SHOWN` characters.
pub fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    if text.is_empty() {
        return "nothing (empty)".into();
    }
    let cut: String = text.chars().take(SHOWN).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{cut:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_content_is_escaped_and_bounded() {
        assert_eq!(show(b"12\n"), "\"12\"");
        assert_eq!(show(b""), "nothing (empty)");
        assert_eq!(show(b"a\x1bb"), "\"a\\u{1b}b\"");
        assert!(show(&[b'x'; 500]).ends_with('…'));
    }
}
