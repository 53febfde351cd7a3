//! A strict, iterative JSON scanner (RFC 8259 grammar, UTF-8 only) that
//! remembers the last point where the text read so far was a valid prefix
//! that can be closed. It is the one grammar behind both salvage (corrupt
//! documents) and JSONL validation, so both agree on what "valid" means.
//! Like the RFC, it puts no bound on a number's size (serde_json refuses
//! values beyond f64; such a document is valid here).
//!
//! It allocates one small frame per open container and nothing per value:
//! nesting depth is bounded by memory, never by the call stack.
//!
//! Commit points. The scanner commits (records `commit`) right after a
//! container opens, right after a scalar that is certainly complete, and
//! right after a container closes. Between two commits the container stack
//! never changes, so `input[..commit]` followed by the closers of the stack
//! at the moment of damage is always valid JSON, and never contains a value
//! that was cut: a number is complete only when a delimiter follows it (the
//! file could have been cut inside `12.5`), a string only at its closing
//! quote, a member only when its value is.

use std::ops::Range;

/// What one line of a JSONL file is, to the strict scanner and the SIMD
/// classifier alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Valid,
    Blank,
    Bad,
}

/// Which container a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
}

/// One open container.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: Kind,
    /// Elements (array) or members (object) completed so far.
    pub done: usize,
    /// Object only: the byte range of the current member's key, quotes
    /// included, once the key is complete; `None` between members.
    pub key: Option<Range<usize>>,
}

/// Why the scan stopped before a valid end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The input ends inside a value (the typical crash mid-write).
    UnexpectedEnd,
    /// A byte that the grammar does not allow at this point.
    UnexpectedByte(u8),
    /// A NUL byte: space allocated by the file system but never written.
    NulPadding,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// A raw control character inside a string.
    ControlInString,
    /// A bad escape sequence, or a lone UTF-16 surrogate.
    BadEscape,
    /// A malformed number, or one not followed by a delimiter.
    BadNumber,
    /// More bytes after a complete top-level value.
    TrailingData,
    /// Nothing but whitespace.
    NoValue,
    /// A UTF-8 byte order mark before a valid document (reported by
    /// salvage; the scanner itself skips it).
    ByteOrderMark,
}

impl Problem {
    pub fn describe(self) -> String {
        match self {
            Problem::UnexpectedEnd => "the file ends in the middle of a value".into(),
            Problem::UnexpectedByte(b) if b.is_ascii_graphic() => format!("unexpected `{}`", b as char),
            Problem::UnexpectedByte(b) => format!("unexpected byte 0x{b:02x}"),
            Problem::NulPadding => "NUL bytes (space allocated but never written)".into(),
            Problem::InvalidUtf8 => "bytes that are not UTF-8".into(),
            Problem::ControlInString => "a control character inside a string".into(),
            Problem::BadEscape => "an invalid escape sequence".into(),
            Problem::BadNumber => "a malformed or cut number".into(),
            Problem::TrailingData => "data after the end of the document".into(),
            Problem::NoValue => "no JSON value (empty or whitespace only)".into(),
            Problem::ByteOrderMark => "a UTF-8 byte order mark".into(),
        }
    }
}

/// Where and why the scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the input.
    pub offset: usize,
    pub problem: Problem,
}

/// The result of scanning a whole input.
#[derive(Debug)]
pub struct Scan {
    /// `None` when the input is one valid JSON document.
    pub damage: Option<Damage>,
    /// First byte of the document (3 after a UTF-8 byte order mark).
    pub start: usize,
    /// End of the valid, closable prefix; `None` when no value began.
    pub commit: Option<usize>,
    /// Containers open at the damage (outermost first).
    pub stack: Vec<Frame>,
    /// Object members completed before the last commit, at any depth.
    pub members: usize,
    /// Key ranges of the top-level object's completed members.
    pub top_keys: Vec<Range<usize>>,
}

/// The UTF-8 byte order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Scans `input` as one JSON document. A leading BOM is skipped; the
/// caller decides whether a BOM is damage.
pub fn scan(input: &[u8]) -> Scan {
    let start = if input.starts_with(BOM) { BOM.len() } else { 0 };
    let mut scanner = Scanner::new(input, start);
    let damage = scanner.run().err();
    Scan {
        damage,
        start,
        commit: scanner.commit,
        stack: scanner.stack,
        members: scanner.members,
        top_keys: scanner.top_keys,
    }
}

/// Whether `input` is exactly one valid JSON document (no BOM allowed).
pub fn is_valid(input: &[u8]) -> bool {
    Validator::default().is_valid(input, false)
}

/// A reusable validator for many small documents (JSONL lines): it keeps
/// its container stack between calls, so a line costs no allocation.
#[derive(Debug, Default)]
pub struct Validator {
    stack: Vec<Frame>,
}

impl Validator {
    /// Whether `input` is exactly one valid JSON document (no BOM allowed).
    /// `utf8_checked` skips the UTF-8 check when the caller already made it
    /// over a larger buffer.
    pub fn is_valid(&mut self, input: &[u8], utf8_checked: bool) -> bool {
        let mut scanner = if utf8_checked { Scanner::over_utf8(input, 0) } else { Scanner::new(input, 0) };
        self.stack.clear();
        scanner.stack = std::mem::take(&mut self.stack);
        scanner.track = false;
        let valid = scanner.run().is_ok();
        self.stack = scanner.stack;
        valid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must start (top level, after `:`, after `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a complete value: `,`, a closer, or the end.
    AfterValue,
}

/// Byte classes inside a string: 0 = ordinary, 1 = quote, 2 = backslash,
/// 3 = control character.
static STRING_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = 3;
        i += 1;
    }
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 2;
    table
};

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn is_delimiter(b: u8) -> bool {
    is_ws(b) || matches!(b, b',' | b']' | b'}')
}

struct Scanner<'a> {
    /// The input, cut at its first invalid UTF-8 byte.
    b: &'a [u8],
    /// The input had invalid UTF-8 at `b.len()`.
    truncated: bool,
    i: usize,
    stack: Vec<Frame>,
    commit: Option<usize>,
    members: usize,
    top_keys: Vec<Range<usize>>,
    /// Keep the salvage bookkeeping (off for plain validation).
    track: bool,
}

impl<'a> Scanner<'a> {
    fn new(input: &'a [u8], start: usize) -> Self {
        // Validating UTF-8 once up front is much faster than per string;
        // everything from the first bad byte on is damage anyway.
        match std::str::from_utf8(input) {
            Ok(_) => Scanner::over_utf8(input, start),
            Err(e) => Scanner { truncated: true, ..Scanner::over_utf8(&input[..e.valid_up_to()], start) },
        }
    }

    /// A scanner over input known to be UTF-8.
    fn over_utf8(b: &'a [u8], start: usize) -> Self {
        Scanner {
            b,
            truncated: false,
            i: start.min(b.len()),
            stack: Vec::new(),
            commit: None,
            members: 0,
            top_keys: Vec::new(),
            track: true,
        }
    }

    fn damage(&self, offset: usize, problem: Problem) -> Damage {
        Damage { offset, problem }
    }

    /// Damage at the current byte, or at the end of the readable input.
    fn unexpected(&self) -> Damage {
        self.unexpected_at(self.i)
    }

    fn unexpected_at(&self, at: usize) -> Damage {
        match self.b.get(at) {
            Some(0) => self.damage(at, Problem::NulPadding),
            Some(&b) => self.damage(at, Problem::UnexpectedByte(b)),
            None => self.at_end(),
        }
    }

    fn at_end(&self) -> Damage {
        if self.truncated {
            self.damage(self.b.len(), Problem::InvalidUtf8)
        } else {
            self.damage(self.b.len(), Problem::UnexpectedEnd)
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.b.get(self.i) {
            if !is_ws(b) {
                break;
            }
            self.i += 1;
        }
    }

    fn run(&mut self) -> Result<(), Damage> {
        let mut state = State::Value;
        loop {
            self.skip_ws();
            state = match state {
                State::Value | State::ArrayFirst => self.value(state)?,
                State::ObjectFirst | State::Key => self.key(state)?,
                State::Colon => match self.b.get(self.i) {
                    Some(b':') => {
                        self.i += 1;
                        State::Value
                    }
                    _ => return Err(self.unexpected()),
                },
                State::AfterValue => match self.after_value()? {
                    Some(next) => next,
                    None => return Ok(()),
                },
            };
        }
    }

    fn value(&mut self, state: State) -> Result<State, Damage> {
        let Some(&c) = self.b.get(self.i) else {
            return Err(if self.commit.is_none() && !self.truncated {
                self.damage(self.i, Problem::NoValue)
            } else {
                self.at_end()
            });
        };
        match c {
            b']' if state == State::ArrayFirst => {
                self.close();
                return Ok(State::AfterValue);
            }
            b'{' => {
                self.open(Kind::Object);
                return Ok(State::ObjectFirst);
            }
            b'[' => {
                self.open(Kind::Array);
                return Ok(State::ArrayFirst);
            }
            b'"' => self.i = self.string()?,
            b'-' | b'0'..=b'9' => self.i = self.number()?,
            b't' => self.i = self.literal(b"true")?,
            b'f' => self.i = self.literal(b"false")?,
            b'n' => self.i = self.literal(b"null")?,
            _ => return Err(self.unexpected()),
        }
        self.value_done();
        Ok(State::AfterValue)
    }

    fn key(&mut self, state: State) -> Result<State, Damage> {
        match self.b.get(self.i) {
            Some(b'}') if state == State::ObjectFirst => {
                self.close();
                Ok(State::AfterValue)
            }
            Some(b'"') => {
                let start = self.i;
                self.i = self.string()?;
                if self.track {
                    if let Some(frame) = self.stack.last_mut() {
                        frame.key = Some(start..self.i);
                    }
                }
                Ok(State::Colon)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// After a complete value. `Ok(None)` means the document ended cleanly.
    fn after_value(&mut self) -> Result<Option<State>, Damage> {
        let Some(top) = self.stack.last() else {
            return match self.b.get(self.i) {
                None if !self.truncated => Ok(None),
                _ => Err(self.damage(self.i, Problem::TrailingData)),
            };
        };
        let kind = top.kind;
        match (self.b.get(self.i), kind) {
            (Some(b','), Kind::Object) => {
                self.i += 1;
                Ok(Some(State::Key))
            }
            (Some(b','), Kind::Array) => {
                self.i += 1;
                Ok(Some(State::Value))
            }
            (Some(b']'), Kind::Array) | (Some(b'}'), Kind::Object) => {
                self.close();
                Ok(Some(State::AfterValue))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn open(&mut self, kind: Kind) {
        self.i += 1;
        self.stack.push(Frame { kind, done: 0, key: None });
        self.commit = Some(self.i);
    }

    fn close(&mut self) {
        self.i += 1;
        self.stack.pop();
        self.value_done();
    }

    /// A value just ended at `self.i`: commit, and count it in its parent.
    fn value_done(&mut self) {
        self.commit = Some(self.i);
        if !self.track {
            return;
        }
        let depth = self.stack.len();
        let Some(parent) = self.stack.last_mut() else {
            return;
        };
        parent.done += 1;
        if parent.kind == Kind::Object {
            self.members += 1;
            if let Some(key) = parent.key.take() {
                if depth == 1 {
                    self.top_keys.push(key);
                }
            }
        }
    }

    /// Scans the string starting at the quote at `self.i`; returns the
    /// offset just past its closing quote.
    fn string(&self) -> Result<usize, Damage> {
        let b = self.b;
        let mut j = self.i + 1;
        loop {
            j = string_stop(b, j);
            match b.get(j).map(|&c| STRING_CLASS[c as usize]) {
                None => return Err(self.at_end()),
                Some(1) => return Ok(j + 1),
                Some(2) => j = self.escape(j)?,
                _ if b[j] == 0 => return Err(self.damage(j, Problem::NulPadding)),
                _ => return Err(self.damage(j, Problem::ControlInString)),
            }
        }
    }

    /// Checks the escape at `j` (a backslash); returns the offset after it.
    /// Surrogates must pair up, as a strict parser into text requires.
    fn escape(&self, j: usize) -> Result<usize, Damage> {
        match self.b.get(j + 1) {
            None => Err(self.at_end()),
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
            Some(b'u') => {
                let unit = self.hex4(j + 2)?;
                match unit {
                    0xD800..=0xDBFF => {
                        match (self.b.get(j + 6), self.b.get(j + 7)) {
                            (Some(b'\\'), Some(b'u')) => {}
                            (None, _) | (Some(b'\\'), None) => return Err(self.at_end()),
                            _ => return Err(self.damage(j, Problem::BadEscape)),
                        }
                        match self.hex4(j + 8)? {
                            0xDC00..=0xDFFF => Ok(j + 12),
                            _ => Err(self.damage(j, Problem::BadEscape)),
                        }
                    }
                    0xDC00..=0xDFFF => Err(self.damage(j, Problem::BadEscape)),
                    _ => Ok(j + 6),
                }
            }
            Some(_) => Err(self.damage(j, Problem::BadEscape)),
        }
    }

    fn hex4(&self, at: usize) -> Result<u32, Damage> {
        let mut value = 0u32;
        for k in at..at + 4 {
            let Some(&c) = self.b.get(k) else {
                return Err(self.at_end());
            };
            let digit = (c as char).to_digit(16).ok_or(self.damage(k, Problem::BadEscape))?;
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// Scans the number at `self.i`; returns its end. It counts as complete
    /// only when a delimiter follows, or the input ends at the top level.
    fn number(&self) -> Result<usize, Damage> {
        let b = self.b;
        let j = number_end(b, self.i).map_err(|at| self.number_error(at))?;
        match b.get(j) {
            Some(&c) if is_delimiter(c) => Ok(j),
            None if self.stack.is_empty() && !self.truncated => Ok(j),
            _ => Err(self.number_error(j)),
        }
    }

    fn number_error(&self, j: usize) -> Damage {
        match self.b.get(j) {
            None => self.at_end(),
            Some(0) => self.damage(j, Problem::NulPadding),
            Some(_) => self.damage(j, Problem::BadNumber),
        }
    }

    fn literal(&self, word: &[u8]) -> Result<usize, Damage> {
        for (k, &expected) in word.iter().enumerate() {
            match self.b.get(self.i + k) {
                Some(&c) if c == expected => {}
                _ => return Err(self.unexpected_at(self.i + k)),
            }
        }
        Ok(self.i + word.len())
    }
}

/// The offset of the first quote, backslash or control character at or
/// after `j` (or the end). Eight bytes at a time: in each of the three
/// zero-byte tests a false positive can only sit above a true one, so the
/// lowest flagged byte is exact.
fn string_stop(b: &[u8], mut j: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(j..).and_then(|rest| rest.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let flags = flags & HIGH;
        if flags != 0 {
            return j + (flags.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while j < b.len() && STRING_CLASS[b[j] as usize] == 0 {
        j += 1;
    }
    j
}

/// The end of the run of ASCII digits from `j`, eight bytes at a time.
#[inline(always)]
fn digits(b: &[u8], mut j: usize) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(j..).and_then(|rest| rest.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk);
        // Per byte, without carries between bytes: bit 7 of `low + 0x50`
        // is set from '0' up, bit 7 of `low + 0x46` from ':' up.
        let low = x & !HIGH;
        let not_digit = (x | !(low + 0x5050_5050_5050_5050) | (low + 0x4646_4646_4646_4646)) & HIGH;
        if not_digit != 0 {
            return j + (not_digit.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    while matches!(b.get(j), Some(b'0'..=b'9')) {
        j += 1;
    }
    j
}

/// The JSON number grammar from `start` (an optional `-`, an integer part,
/// a fraction, an exponent): the end of the number, or the position where
/// it breaks the grammar. Shared by the strict scanner and the SIMD
/// classifier so that both accept exactly the same numbers.
#[inline(always)]
pub(super) fn number_end(b: &[u8], start: usize) -> Result<usize, usize> {
    let mut j = start;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => j = digits(b, j + 1),
        _ => return Err(j),
    }
    if b.get(j) == Some(&b'.') {
        let after = digits(b, j + 1);
        if after == j + 1 {
            return Err(after);
        }
        j = after;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let after = digits(b, j);
        if after == j {
            return Err(after);
        }
        j = after;
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &str) -> bool {
        is_valid(s.as_bytes())
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for doc in [
            "0",
            "-0.5e+10",
            "\"a\\u00e9\\ud83d\\ude00\"",
            " [1, [], {}, {\"a\": [true, false, null]}] ",
            "{\"k\": \"v\", \"n\": -12.5E-3}",
            "\"\u{e9}t\u{e9}\"",
        ] {
            assert!(valid(doc), "{doc}");
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_ok(), "{doc}");
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for doc in [
            "",
            " ",
            "01",
            "1.",
            "-",
            "1e",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1 2]",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\tb\"",
            "{} {}",
            "{1: 2}",
            "[",
            "\"abc",
            ".5",
            "+1",
        ] {
            assert!(!valid(doc), "{doc:?}");
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_err(), "{doc:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_damage_at_its_offset() {
        let scan = scan(b"{\"a\": \"x\xff\"}");
        assert_eq!(scan.damage, Some(Damage { offset: 8, problem: Problem::InvalidUtf8 }));
        assert_eq!(scan.commit, Some(1));
    }

    #[test]
    fn a_number_at_the_end_is_not_committed_inside_a_container() {
        let scan = scan(b"[1, 23");
        assert_eq!(scan.commit, Some(2));
        assert_eq!(scan.damage.map(|d| d.problem), Some(Problem::UnexpectedEnd));
    }

    #[test]
    fn deep_nesting_does_not_use_the_call_stack() {
        let depth = 1_000_000;
        let mut doc = "[".repeat(depth);
        doc.push_str(&"]".repeat(depth));
        assert!(valid(&doc));
        let cut = scan(&doc.as_bytes()[..depth]);
        assert_eq!(cut.stack.len(), depth);
    }

    #[test]
    fn string_stop_finds_the_first_special_byte_at_any_offset() {
        for len in 0..40 {
            for special in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                let mut bytes = vec![b'a'; len];
                bytes.extend_from_slice("é\u{7f}".as_bytes());
                let at = bytes.len();
                bytes.push(special);
                bytes.extend_from_slice(b"\"\\\x01xyz");
                assert_eq!(string_stop(&bytes, 0), at, "len {len}, byte {special:#x}");
            }
            assert_eq!(string_stop(&vec![b' '; len], 0), len);
        }
    }

    #[test]
    fn numbers_beyond_f64_are_valid_json() {
        assert!(valid("1e400"));
        assert!(valid("[-1E+99999, 123456789012345678901234567890]"));
    }

    #[test]
    fn nul_padding_is_named() {
        let scan = scan(b"{\"a\": 1,\0\0\0");
        assert_eq!(scan.damage, Some(Damage { offset: 8, problem: Problem::NulPadding }));
        assert_eq!(scan.commit, Some(7));
        assert_eq!(scan.members, 1);
    }
}
