//! The content of a small runtime file (a lock, a pidfile): read with a
//! bound, and shown escaped and cut for messages.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::fsutil;

/// Contents longer than this are not worth comparing or recording whole.
pub const MAX_CONTENT: u64 = 4096;

/// Characters of content shown in a detail or a plan line.
const SHOWN: usize = 120;

/// The first `MAX_CONTENT` bytes of a regular file (a FIFO or a device is
/// refused without blocking).
pub fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    read_bounded(fsutil::open_regular(path)?)
}

/// The first `MAX_CONTENT` bytes of an open file.
pub fn read_bounded(file: fs::File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(MAX_CONTENT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Content for a message, a plan line or the history: its size, and its
/// first line quoted only when that cannot be a secret. A lock file is
/// whatever a program wrote into it, and a glob may match a file that was
/// never a lock: text that is not plain printable ASCII, or that looks like
/// `KEY=value` or `key: value` (a `.env` line, a config), is never shown.
pub fn show(bytes: &[u8]) -> String {
    let size = match bytes.len() {
        1 => "1 byte".to_string(),
        n => format!("{n} bytes"),
    };
    let text = std::str::from_utf8(bytes).unwrap_or("").trim_end();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if bytes.is_empty() { "nothing (empty)".into() } else { format!("{size} of white space") };
    }
    let printable = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() || b" \t\n\r".contains(&b));
    if !printable {
        return format!("{size} (not shown: not plain text)");
    }
    if text.contains(['=', ':']) {
        return format!("{size} (not shown: it looks like KEY=value and may hold a secret)");
    }
    let first = text.lines().next().unwrap_or("");
    let cut: String = first.chars().take(SHOWN).collect();
    let more = if cut.len() < text.len() { "…" } else { "" };
    format!("{cut:?}{more} ({size})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_content_is_escaped_and_bounded() {
        assert_eq!(show(b"12\n"), "\"12\" (3 bytes)");
        assert_eq!(show(b"123 host"), "\"123 host\" (8 bytes)");
        assert_eq!(show(b""), "nothing (empty)");
        assert_eq!(show(b"a\x1bb"), "3 bytes (not shown: not plain text)");
        assert!(show(&[b'x'; 500]).contains("…"));
        assert!(show(b"1\n2\n").starts_with("\"1\"…"));
    }

    #[test]
    fn what_may_be_a_secret_is_never_shown() {
        for secret in [&b"DB_PASSWORD=sk-live-1\n"[..], b"export TOKEN='x'", b"password: hunter2", b"{\"token\":\"x\"}"]
        {
            let shown = show(secret);
            assert!(shown.contains("not shown") && shown.contains("bytes"), "{shown}");
            assert!(!shown.contains("sk-live") && !shown.contains("hunter2") && !shown.contains("\"x"), "{shown}");
        }
        assert!(show("é".as_bytes()).contains("not shown"));
    }
}
