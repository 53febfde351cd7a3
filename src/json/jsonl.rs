//! JSONL (one JSON value per line), streamed in constant memory: the file
//! is read in fixed chunks and each line is checked by the strict scanner
//! in place, so memory is the chunk plus the longest line, whatever the
//! file's size.
//!
//! Line rules: a line is the bytes before `\n`; a `\r` before it is JSON
//! whitespace, so CRLF files validate as they are. Blank (whitespace-only)
//! lines are allowed. The last line may lack its `\n`: when it parses it
//! is kept as it is, when it does not (a torn write) it is a bad line.
//!
//! Repair keeps every valid and blank line byte for byte, in order, and
//! writes each bad line to a quarantine file as `<line number>\t<the raw
//! line>\n`, so the two outputs together hold every byte of the original.

use std::io::{self, Read, Write};

use super::scan;

/// Bytes read per chunk. Lines longer than this grow the buffer.
const CHUNK: usize = 4 << 20;

/// How many bad line numbers a summary keeps for messages.
pub const SHOWN: usize = 5;

/// What one line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Valid,
    Blank,
    Bad,
}

/// One line as the reader hands it out.
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    /// The line without its `\n` (a `\r` stays).
    pub text: &'a [u8],
    /// Whether a `\n` ended it (false only for the last line).
    pub terminated: bool,
    pub status: Status,
}

/// Counts over a whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub bytes: u64,
    pub bad: u64,
    /// The first `SHOWN` bad line numbers.
    pub first_bad: Vec<u64>,
    /// The last line lacks its `\n` and does not parse.
    pub torn_last: bool,
}

impl Summary {
    fn count(&mut self, line: &Line) {
        self.lines += 1;
        self.bytes += line.text.len() as u64 + u64::from(line.terminated);
        if line.status == Status::Bad {
            self.bad += 1;
            if self.first_bad.len() < SHOWN {
                self.first_bad.push(line.number);
            }
            if !line.terminated {
                self.torn_last = true;
            }
        }
    }

    /// `lines 3, 17, 40 and 2 more`, for messages.
    pub fn bad_lines_text(&self) -> String {
        let shown: Vec<String> = self.first_bad.iter().map(u64::to_string).collect();
        let rest = self.bad - self.first_bad.len() as u64;
        let mut text = format!("line{} {}", if self.bad == 1 { "" } else { "s" }, shown.join(", "));
        if rest > 0 {
            text.push_str(&format!(" and {rest} more"));
        }
        text
    }
}

/// Classifies one line (without its `\n`).
pub fn classify(text: &[u8]) -> Status {
    if scan::is_valid(text) {
        Status::Valid
    } else if text.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
        Status::Blank
    } else {
        Status::Bad
    }
}

/// Reads `reader` to its end, handing each classified line to `visit`.
pub fn for_each_line<R: Read>(mut reader: R, mut visit: impl FnMut(&Line) -> io::Result<()>) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut number = 0u64;
    loop {
        let read = read_some(&mut reader, &mut buf[filled..])?;
        filled += read;
        let mut pos = 0;
        for newline in memchr::memchr_iter(b'\n', &buf[..filled]) {
            number += 1;
            let text = &buf[pos..newline];
            let line = Line { number, text, terminated: true, status: classify(text) };
            summary.count(&line);
            visit(&line)?;
            pos = newline + 1;
        }
        if read == 0 {
            if pos < filled {
                let text = &buf[pos..filled];
                let line = Line { number: number + 1, text, terminated: false, status: classify(text) };
                summary.count(&line);
                visit(&line)?;
            }
            return Ok(summary);
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if filled == buf.len() {
            // One line longer than the buffer: grow to hold it.
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// Fills as much of `buf` as the reader gives before its end.
fn read_some<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while total < buf.len() {
        match reader.read(&mut buf[total..]) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Validates a whole stream.
pub fn check<R: Read>(reader: R) -> io::Result<Summary> {
    for_each_line(reader, |_| Ok(()))
}

/// Copies the valid and blank lines of `reader` to `kept`, byte for byte,
/// and the bad ones to `quarantine` as `<number>\t<raw line>\n`.
pub fn repair<R: Read>(reader: R, kept: &mut impl Write, quarantine: &mut impl Write) -> io::Result<Summary> {
    for_each_line(reader, |line| {
        if line.status == Status::Bad {
            write!(quarantine, "{}\t", line.number)?;
            quarantine.write_all(line.text)?;
            quarantine.write_all(b"\n")
        } else {
            kept.write_all(line.text)?;
            if line.terminated {
                kept.write_all(b"\n")?;
            }
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(input: &[u8]) -> (Vec<u8>, Vec<u8>, Summary) {
        let (mut kept, mut bad) = (Vec::new(), Vec::new());
        let summary = repair(input, &mut kept, &mut bad).unwrap();
        (kept, bad, summary)
    }

    #[test]
    fn bad_lines_in_the_middle_go_to_quarantine_with_their_numbers() {
        let (kept, bad, summary) = repaired(b"{\"a\":1}\n{\"a\":\n[2]\nnot json\n\"s\"\n");
        assert_eq!(kept, b"{\"a\":1}\n[2]\n\"s\"\n");
        assert_eq!(bad, b"2\t{\"a\":\n4\tnot json\n");
        assert_eq!((summary.lines, summary.bad, summary.first_bad.clone()), (5, 2, vec![2, 4]));
        assert!(!summary.torn_last);
    }

    #[test]
    fn a_torn_last_line_is_bad_and_a_whole_one_is_kept() {
        let (kept, bad, summary) = repaired(b"{\"a\":1}\n{\"a\":2");
        assert_eq!((kept.as_slice(), bad.as_slice()), (&b"{\"a\":1}\n"[..], &b"2\t{\"a\":2\n"[..]));
        assert!(summary.torn_last);
        let (kept, bad, summary) = repaired(b"{\"a\":1}\n{\"a\":2}");
        assert_eq!((kept.as_slice(), bad.len()), (&b"{\"a\":1}\n{\"a\":2}"[..], 0));
        assert_eq!(summary.bad, 0);
    }

    #[test]
    fn crlf_and_blank_lines_are_valid_and_kept_as_they_are() {
        let input = b"{\"a\":1}\r\n\r\n  \n[1]\r\n";
        let (kept, bad, summary) = repaired(input);
        assert_eq!((kept.as_slice(), bad.len(), summary.bad), (&input[..], 0, 0));
        assert_eq!(summary.bytes, input.len() as u64);
    }

    #[test]
    fn lines_longer_than_the_buffer_are_read_whole() {
        let long = format!("[\"{}\"]\n", "x".repeat(CHUNK * 2 + 7));
        let input = format!("1\n{long}oops\n");
        let summary = check(input.as_bytes()).unwrap();
        assert_eq!((summary.lines, summary.bad, summary.first_bad), (3, 1, vec![3]));
    }

    #[test]
    fn the_message_counts_what_it_does_not_show() {
        let input: String = (0..8).map(|_| "{\n").collect();
        let summary = check(input.as_bytes()).unwrap();
        assert_eq!(summary.bad_lines_text(), "lines 1, 2, 3, 4, 5 and 3 more");
    }
}
