//! JSONL (one JSON value per line), streamed in constant memory: the file
//! is read in fixed chunks and each line is checked in place, so memory is
//! a few chunks plus the longest line, whatever the file's size. Lines are
//! checked by the strict scanner, or on x86-64 with AVX2 by the vectorised
//! classifier (`simd`, same grammar, tested against the scanner line by
//! line); the whole-file check and the repair run on all cores, each core
//! reading and classifying chunks of its own (`pipeline`).
//!
//! Line rules: a line is the bytes before `\n`; a `\r` before it is JSON
//! whitespace, so CRLF files validate as they are. Blank (whitespace-only)
//! lines are allowed. The last line may lack its `\n`: when it parses it
//! is kept as it is, when it does not (a torn write) it is a bad line.
//!
//! Repair keeps every valid and blank line byte for byte, in order, and
//! writes each bad line to a quarantine file as `<line number>\t<the raw
//! line>\n` (the heal fix also quarantines the whole original first).

use std::io::{self, Read, Write};
use std::ops::Range;

use super::pipeline::{self, read_some};
pub use super::scan::Status;
use super::scan::Validator;
#[cfg(target_arch = "x86_64")]
use super::simd;

/// Bytes read per chunk. Lines longer than this grow the buffer.
const CHUNK: usize = 4 << 20;

/// How many bad line numbers a summary keeps for messages.
pub const SHOWN: usize = 5;

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
    /// Adds the counts of the lines that follow; `offset` is added to the
    /// other's line numbers when it numbered its lines from 1.
    pub fn append(&mut self, other: Summary, offset: u64) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.bad += other.bad;
        let room = SHOWN - self.first_bad.len().min(SHOWN);
        self.first_bad.extend(other.first_bad.iter().take(room).map(|n| n + offset));
        self.torn_last |= other.torn_last;
    }

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

/// Classifies one line (without its `\n`). `utf8_checked`: the caller
/// has already validated UTF-8 over a buffer holding the line.
pub fn classify(validator: &mut Validator, text: &[u8], utf8_checked: bool) -> Status {
    if validator.is_valid(text, utf8_checked) {
        Status::Valid
    } else if text.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
        Status::Blank
    } else {
        Status::Bad
    }
}

/// Reads a stream in large chunks and hands out regions of whole lines
/// (the last region may end with an unterminated line).
struct Regions<R> {
    reader: R,
    buf: Vec<u8>,
    filled: usize,
    /// End of the region handed out last; consumed on the next call.
    handed: usize,
    done: bool,
}

impl<R: Read> Regions<R> {
    fn new(reader: R) -> Self {
        Regions { reader, buf: vec![0u8; CHUNK], filled: 0, handed: 0, done: false }
    }

    /// The next region of whole lines, or `None` at the end.
    fn next_region(&mut self) -> io::Result<Option<&[u8]>> {
        self.buf.copy_within(self.handed..self.filled, 0);
        self.filled -= self.handed;
        self.handed = 0;
        while !self.done {
            if self.filled == self.buf.len() {
                // One line longer than the buffer: grow to hold it.
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let read = read_some(&mut self.reader, &mut self.buf[self.filled..])?;
            self.filled += read;
            self.done = read == 0;
            if let Some(last) = memchr::memrchr(b'\n', &self.buf[..self.filled]) {
                self.handed = last + 1;
                break;
            }
        }
        if self.done {
            self.handed = self.filled;
        }
        Ok((self.handed > 0).then(|| &self.buf[..self.handed]))
    }
}

/// Classifies the lines of one region, numbering them from `first`.
fn scan_region(
    region: &[u8],
    first: u64,
    validator: &mut Validator,
    visit: &mut impl FnMut(&Line) -> io::Result<()>,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut number = first;
    classify_lines(region, validator, Engine::best(), &mut |start, end, terminated, status| {
        let line = Line { number, text: &region[start..end], terminated, status };
        number += 1;
        summary.count(&line);
        visit(&line)
    })?;
    Ok(summary)
}

/// Which implementation of the grammar classifies lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// The strict scanner, line by line (any CPU).
    Scanner,
    /// The AVX2 classifier, a region at a time.
    #[cfg(target_arch = "x86_64")]
    Simd,
}

impl Engine {
    fn best() -> Engine {
        #[cfg(target_arch = "x86_64")]
        if simd::available() {
            return Engine::Simd;
        }
        Engine::Scanner
    }
}

/// Calls `emit(start, end, terminated, status)` for each line of `region`
/// (whole lines; the last may lack its `\n`), in order. `end` is the
/// offset of the line's `\n`, or of the region's end.
fn classify_lines<F>(region: &[u8], validator: &mut Validator, engine: Engine, emit: &mut F) -> io::Result<()>
where
    F: FnMut(usize, usize, bool, Status) -> io::Result<()>,
{
    match engine {
        #[cfg(target_arch = "x86_64")]
        Engine::Simd if region.len() <= simd::MAX_LEN => classify_utf8_runs(region, emit),
        // A region is longer only when one line is (over 4 GiB).
        _ => classify_each(region, validator, emit),
    }
}

/// One strict scan per line, after one UTF-8 check over the region.
fn classify_each<F>(region: &[u8], validator: &mut Validator, emit: &mut F) -> io::Result<()>
where
    F: FnMut(usize, usize, bool, Status) -> io::Result<()>,
{
    let utf8 = simdutf8::basic::from_utf8(region).is_ok();
    let mut pos = 0;
    for newline in memchr::memchr_iter(b'\n', region) {
        emit(pos, newline, true, classify(validator, &region[pos..newline], utf8))?;
        pos = newline + 1;
    }
    if pos < region.len() {
        emit(pos, region.len(), false, classify(validator, &region[pos..], utf8))?;
    }
    Ok(())
}

/// The vectorised classifier over the region's runs of valid UTF-8; a line
/// holding bytes that are not UTF-8 is bad whatever else it holds.
#[cfg(target_arch = "x86_64")]
fn classify_utf8_runs<F>(region: &[u8], emit: &mut F) -> io::Result<()>
where
    F: FnMut(usize, usize, bool, Status) -> io::Result<()>,
{
    let mut pos = 0;
    while pos < region.len() {
        let rest = &region[pos..];
        // simdutf8: the same answer as std's, several times faster on a
        // region that is all valid (the common case).
        let (lines_end, bad_at) = match simdutf8::compat::from_utf8(rest) {
            Ok(_) => (region.len(), None),
            Err(e) => {
                let bad = pos + e.valid_up_to();
                (memchr::memrchr(b'\n', &region[pos..bad]).map_or(pos, |nl| pos + nl + 1), Some(bad))
            }
        };
        let base = pos;
        simd::classify(&region[base..lines_end], &mut |start, end, terminated, status| {
            emit(base + start, base + end, terminated, status)
        })?;
        let Some(bad) = bad_at else { break };
        match memchr::memchr(b'\n', &region[bad..]) {
            Some(nl) => {
                emit(lines_end, bad + nl, true, Status::Bad)?;
                pos = bad + nl + 1;
            }
            None => {
                emit(lines_end, region.len(), false, Status::Bad)?;
                pos = region.len();
            }
        }
    }
    Ok(())
}

/// Reads `reader` to its end, handing each classified line to `visit`.
pub fn for_each_line<R: Read>(reader: R, mut visit: impl FnMut(&Line) -> io::Result<()>) -> io::Result<Summary> {
    let mut regions = Regions::new(reader);
    let mut validator = Validator::default();
    let mut summary = Summary::default();
    while let Some(region) = regions.next_region()? {
        let part = scan_region(region, summary.lines + 1, &mut validator, &mut visit)?;
        summary.append(part, 0);
    }
    Ok(summary)
}

/// A bad line inside one part of a region.
struct BadLine {
    /// Line number counted from 1 at the start of the part.
    number: u64,
    /// The line's bytes in the part, without its `\n`.
    range: Range<usize>,
    terminated: bool,
}

/// One part of a region, classified: its counts (numbered from 1) and
/// where its bad lines are.
struct Part<'a> {
    bytes: &'a [u8],
    summary: Summary,
    bad: Vec<BadLine>,
}

fn classify_part(bytes: &[u8]) -> io::Result<Part<'_>> {
    let mut bad = Vec::new();
    let base = bytes.as_ptr() as usize;
    let summary = scan_region(bytes, 1, &mut Validator::default(), &mut |line: &Line| {
        if line.status == Status::Bad {
            let start = line.text.as_ptr() as usize - base;
            bad.push(BadLine {
                number: line.number,
                range: start..start + line.text.len(),
                terminated: line.terminated,
            });
        }
        Ok(())
    })?;
    Ok(Part { bytes, summary, bad })
}

/// Reads `reader` to its end, the lines of each chunk classified on all
/// available cores while the next chunk is read, and hands each classified
/// part to `visit` in order with the number of lines before it.
fn for_each_part<R: Read + Send>(
    mut reader: R,
    mut visit: impl FnMut(&Part, u64) -> io::Result<()>,
) -> io::Result<Summary> {
    // Most files fit in one chunk: those are classified without starting
    // the pipeline's threads (a validate runs on every start of the app).
    let mut first = Vec::new();
    (&mut reader).take(CHUNK as u64).read_to_end(&mut first)?;
    if first.len() < CHUNK {
        let mut summary = Summary::default();
        if !first.is_empty() {
            visit_region(&first, &mut summary, &mut visit)?;
        }
        return Ok(summary);
    }
    let reader = io::Cursor::new(first).chain(reader);
    let mut summary = Summary::default();
    let work = |bytes: &[u8]| classify_part(bytes).map(|part| (part.summary, part.bad));
    pipeline::run(reader, PIPELINE_CHUNK, threads(), work, |bytes, (part_summary, bad)| {
        let part = Part { bytes, summary: part_summary, bad };
        let before = summary.lines;
        visit(&part, before)?;
        summary.append(part.summary, before);
        Ok(())
    })?;
    Ok(summary)
}

/// The threads that classify: one per core, at most `MAX_THREADS`.
fn threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(MAX_THREADS)
}

/// Classifies one region of whole lines on all cores and hands its parts
/// to `visit` in order, adding their counts to `summary`.
fn visit_region(
    region: &[u8],
    summary: &mut Summary,
    visit: &mut impl FnMut(&Part, u64) -> io::Result<()>,
) -> io::Result<()> {
    let threads = threads().min(region.len() / MIN_PER_THREAD).max(1);
    let pieces = split_at_newlines(region, threads);
    let parts: Vec<io::Result<Part>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pieces[1..].iter().map(|&piece| scope.spawn(move || classify_part(piece))).collect();
        let mut parts = vec![classify_part(pieces[0])];
        parts.extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("panic")))));
        parts
    });
    for part in parts {
        let part = part?;
        let before = summary.lines;
        visit(&part, before)?;
        summary.append(part.summary, before);
    }
    Ok(())
}

/// Validates a whole stream on all cores. Same result as `for_each_line`
/// with no visitor.
pub fn check<R: Read + Send>(reader: R) -> io::Result<Summary> {
    for_each_part(reader, |_, _| Ok(()))
}

/// At most this many threads classify: the pipeline's workers, or the
/// pieces of one region read whole.
const MAX_THREADS: usize = 4;

/// A thread gets at least this many bytes: below, starting it costs more
/// than it saves.
const MIN_PER_THREAD: usize = 256 * 1024;

/// Bytes a pipeline worker reads and classifies at a time: small enough
/// that the copy the read makes is still in the core's cache (L2) when the
/// classifier reads it. Measured on 256 MiB of short lines, 2 cores: 128 KiB
/// 132 ms, 512 KiB 108-115 ms, 1 MiB 107-115 ms, 4 MiB 122 ms.
const PIPELINE_CHUNK: usize = 512 * 1024;

/// `region` cut into up to `n` pieces, each ending just after a `\n`
/// (the last piece ends where the region does).
fn split_at_newlines(region: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = (region.len() * k / n).max(start);
        match memchr::memchr(b'\n', &region[target..]) {
            Some(at) if target + at + 1 < region.len() => {
                parts.push(&region[start..target + at + 1]);
                start = target + at + 1;
            }
            _ => break,
        }
    }
    parts.push(&region[start..]);
    parts
}

/// Copies the valid and blank lines of `reader` to `kept`, byte for byte,
/// and the bad ones to `quarantine` as `<number>\t<raw line>\n`. Lines are
/// classified on all cores; the good runs between bad lines are copied in
/// single writes.
pub fn repair<R: Read + Send>(reader: R, kept: &mut impl Write, quarantine: &mut impl Write) -> io::Result<Summary> {
    for_each_part(reader, |part, before| repair_part(part, before, kept, quarantine))
}

/// `repair` of lines already in memory (whole lines, or the end of the
/// file) that follow `lines_before` others: the numbers written to
/// `quarantine` count those (the summary's do not).
pub fn repair_bytes(
    bytes: &[u8],
    lines_before: u64,
    kept: &mut impl Write,
    quarantine: &mut impl Write,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    if !bytes.is_empty() {
        visit_region(bytes, &mut summary, &mut |part, before| {
            repair_part(part, lines_before + before, kept, quarantine)
        })?;
    }
    Ok(summary)
}

/// Copies a part's good runs to `kept` and its bad lines, numbered after
/// `before` others, to `quarantine`.
fn repair_part(part: &Part, before: u64, kept: &mut impl Write, quarantine: &mut impl Write) -> io::Result<()> {
    let mut pos = 0;
    for bad in &part.bad {
        kept.write_all(&part.bytes[pos..bad.range.start])?;
        write!(quarantine, "{}\t", before + bad.number)?;
        quarantine.write_all(&part.bytes[bad.range.clone()])?;
        quarantine.write_all(b"\n")?;
        pos = bad.range.end + usize::from(bad.terminated);
    }
    kept.write_all(&part.bytes[pos..])
}

#[cfg(test)]
#[path = "jsonl_tests.rs"]
mod line_tests;

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
    fn the_parallel_check_agrees_with_the_sequential_reader() {
        let mut input = Vec::new();
        for i in 0..400_000u32 {
            match i % 9973 {
                0 => input.extend_from_slice(b"{\"torn\": \n"),
                1 => input.extend_from_slice(b"\r\n"),
                _ => input.extend_from_slice(format!("{{\"seq\":{i},\"s\":\"\u{e9}\"}}\n").as_bytes()),
            }
        }
        input.extend_from_slice(b"[1,");
        let parallel = check(input.as_slice()).unwrap();
        let sequential = for_each_line(input.as_slice(), |_| Ok(())).unwrap();
        assert!(input.len() > 2 * CHUNK);
        assert_eq!(parallel, sequential);
        assert_eq!(parallel.bad, 42);
        assert_eq!(parallel.first_bad, vec![1, 9974, 19947, 29920, 39893]);
        assert!(parallel.torn_last);
        assert_eq!(parallel.bytes, input.len() as u64);
    }

    #[test]
    fn repair_across_chunks_keeps_every_good_byte_and_numbers_bad_lines() {
        let mut input = Vec::new();
        let mut expected_kept = Vec::new();
        let mut expected_bad = Vec::new();
        for i in 1..=300_000u32 {
            let line = match i % 7919 {
                0 => format!("{{\"bad\": {i}\r\n"),
                _ => format!("{{\"seq\":{i}}}\r\n"),
            };
            input.extend_from_slice(line.as_bytes());
            if i % 7919 == 0 {
                expected_bad.extend_from_slice(format!("{i}\t{}\n", line.trim_end_matches('\n')).as_bytes());
            } else {
                expected_kept.extend_from_slice(line.as_bytes());
            }
        }
        assert!(input.len() > CHUNK);
        let (kept, bad, summary) = repaired(&input);
        assert!(kept == expected_kept, "kept lines differ");
        assert_eq!(String::from_utf8(bad).unwrap(), String::from_utf8(expected_bad).unwrap());
        assert_eq!(summary.bad, 300_000 / 7919);
    }

    #[test]
    fn repair_in_memory_numbers_lines_after_those_before() {
        let (mut kept, mut bad) = (Vec::new(), Vec::new());
        let summary = repair_bytes(b"[1]\n{\"a\":\n[2]", 10, &mut kept, &mut bad).unwrap();
        assert_eq!((kept.as_slice(), bad.as_slice()), (&b"[1]\n[2]"[..], &b"12\t{\"a\":\n"[..]));
        assert_eq!((summary.lines, summary.first_bad.clone()), (3, vec![2]));
    }

    #[test]
    fn regions_split_only_after_newlines() {
        let region = b"a\nbb\nccc\nd";
        for n in 1..6 {
            let parts = split_at_newlines(region, n);
            assert_eq!(parts.concat(), region);
            assert!(parts[..parts.len() - 1].iter().all(|p| p.ends_with(b"\n")));
        }
    }

    #[test]
    fn the_message_counts_what_it_does_not_show() {
        let input: String = (0..8).map(|_| "{\n").collect();
        let summary = check(input.as_bytes()).unwrap();
        assert_eq!(summary.bad_lines_text(), "lines 1, 2, 3, 4, 5 and 3 more");
    }
}
