//! JSONL line classification at memory speed on x86-64 with AVX2: the
//! strict scanner's grammar (`scan`), in two stages in the manner of
//! simdjson.
//!
//! Stage one reads 64 bytes at a time and turns them into bit masks
//! (quotes, backslashes, control bytes, whitespace, newlines, `{}[]:,`),
//! works out which bytes are escaped and which are inside strings, and from
//! that the *tokens*: structural bytes outside strings, opening quotes, the
//! first byte of every other run of bytes outside strings (a number, a
//! literal, or garbage) and newlines. It writes their offsets to a buffer,
//! whole lines at a time. Control bytes inside strings (a `\n` included) and
//! bad escapes are found here: stage one then emits an error token and goes
//! on after the next `\n` with fresh state.
//!
//! Stage two walks the offsets of each line through the grammar, with the
//! position in the code as the state (the branch predictor, not a chain of
//! table loads, carries it); numbers and literals are checked at their
//! first byte.
//!
//! Every byte outside strings that is not whitespace is a token or part of
//! a run that starts with one, so nothing between two tokens goes
//! unchecked. A backslash outside a string, the one thing that makes the
//! string masks wrong from some point on, starts a run of its own, which
//! no check accepts; whatever is misread after it stays on the same line,
//! and every `\n` ends a line either way (as a token, or as a control byte
//! inside a string).
//!
//! The caller has checked UTF-8 beforehand; everything else is checked
//! here. The differential tests are in `jsonl_tests.rs`.

use std::arch::x86_64::*;
use std::io;

use super::scan::Status;

/// Whether this CPU runs the vectorised classifier.
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("pclmulqdq")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("popcnt")
}

/// The longest slice `classify` takes: token offsets are `u32`, and two
/// offsets past the end stand for the virtual tokens.
pub const MAX_LEN: usize = u32::MAX as usize - 2;

/// Classifies every line of `buf` (valid UTF-8, whole lines, the last one
/// may lack its `\n`; at most `MAX_LEN` bytes), calling `emit(start, end,
/// terminated, status)` in order; `end` is the offset of the line's `\n`,
/// or the end of `buf`.
pub fn classify<F>(buf: &[u8], emit: &mut F) -> io::Result<()>
where
    F: FnMut(usize, usize, bool, Status) -> io::Result<()>,
{
    assert!(available() && buf.len() <= MAX_LEN, "the AVX2 line classifier cannot take this input");
    // SAFETY: the features the function is compiled for are present.
    unsafe { classify_avx2(buf, emit) }
}

/// Token offsets written before stage two walks them (whole lines only;
/// a longer line grows the buffer).
const BATCH: usize = 16 * 1024;

/// The offset of the error token: its byte is `0`, which no check accepts.
fn error_token(b: &[u8]) -> usize {
    b.len() + 1
}

/// The byte at a token's offset. Two virtual tokens sit past the end: a
/// `\n` that ends an unterminated last line, and the error token.
#[inline(always)]
fn byte(b: &[u8], p: usize) -> u8 {
    match b.get(p) {
        Some(&c) => c,
        None if p == b.len() => b'\n',
        None => 0,
    }
}

/// Bit masks of one 64-byte block (bit k is byte k).
struct Masks {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20.
    control: u64,
    /// Space, tab, carriage return and newline.
    whitespace: u64,
    newline: u64,
    /// `{ } [ ] : ,`, and two control bytes (0x0c, 0x1a) that stage two
    /// refuses wherever they stand.
    structural: u64,
}

/// `v == byte` in every lane.
#[target_feature(enable = "avx2")]
#[inline]
fn eq(v: __m256i, byte: u8) -> __m256i {
    _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte as i8))
}

/// The 64-bit mask of a comparison done on the two halves of a block.
/// The value goes through an empty `asm!` so that LLVM cannot turn the
/// bit arithmetic that follows back into (much slower) vector code.
#[target_feature(enable = "avx2")]
#[inline]
fn bits(lo: __m256i, hi: __m256i) -> u64 {
    let mut mask = (_mm256_movemask_epi8(lo) as u32 as u64) | ((_mm256_movemask_epi8(hi) as u32 as u64) << 32);
    // SAFETY: an empty instruction that reads and writes one register.
    unsafe { std::arch::asm!("/* {0} */", inout(reg) mask, options(pure, nomem, nostack, preserves_flags)) };
    mask
}

/// The masks of the 64 bytes at `block`. Whitespace and structural bytes
/// are found with simdjson's lookup by low nibble (one shuffle each): a
/// whitespace entry matches only the byte it holds; the structural ones
/// are compared with the byte with bit 5 set, so they also match `[`, `]`,
/// 0x0c and 0x1a (see `Masks::structural`).
#[target_feature(enable = "avx2")]
#[inline]
fn block_masks(block: &[u8; 64]) -> Masks {
    // SAFETY: both loads read 32 bytes inside the 64-byte array.
    let (lo, hi) = unsafe {
        (
            _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>()),
        )
    };
    #[rustfmt::skip]
    let spaces = _mm256_setr_epi8(
        b' ' as i8, 100, 100, 100, 17, 100, 113, 2, 100, b'\t' as i8, b'\n' as i8, 112, 100, b'\r' as i8, 100, 100,
        b' ' as i8, 100, 100, 100, 17, 100, 113, 2, 100, b'\t' as i8, b'\n' as i8, 112, 100, b'\r' as i8, 100, 100,
    );
    #[rustfmt::skip]
    let operators = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':' as i8, b'{' as i8, b',' as i8, b'}' as i8, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b':' as i8, b'{' as i8, b',' as i8, b'}' as i8, 0, 0,
    );
    let whitespace = |v: __m256i| _mm256_cmpeq_epi8(_mm256_shuffle_epi8(spaces, v), v);
    // `[` and `]` are `{` and `}` with bit 5 cleared; `:` and `,` have it set.
    let structural =
        |v: __m256i| _mm256_cmpeq_epi8(_mm256_shuffle_epi8(operators, v), _mm256_or_si256(v, _mm256_set1_epi8(0x20)));
    // Unsigned `v <= 0x1f`.
    let control = |v: __m256i| eq(_mm256_max_epu8(v, _mm256_set1_epi8(0x1f)), 0x1f);
    Masks {
        quote: bits(eq(lo, b'"'), eq(hi, b'"')),
        backslash: bits(eq(lo, b'\\'), eq(hi, b'\\')),
        control: bits(control(lo), control(hi)),
        whitespace: bits(whitespace(lo), whitespace(hi)),
        newline: bits(eq(lo, b'\n'), eq(hi, b'\n')),
        structural: bits(structural(lo), structural(hi)),
    }
}

/// Bit k set when an odd number of quotes sit at or before k.
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn prefix_xor(bits: u64) -> u64 {
    let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, bits as i64), _mm_set1_epi8(-1), 0);
    _mm_cvtsi128_si64(product) as u64
}

/// The bytes escaped by a backslash, given the block's backslashes and
/// whether the previous block's last byte escapes this block's first.
/// A backslash escapes the next byte unless it is itself escaped.
#[inline]
fn escaped_bytes(backslash: u64, carry: &mut u64) -> u64 {
    let mut escaped = *carry;
    *carry = 0;
    let mut escapers = backslash & !escaped;
    while escapers != 0 {
        let k = escapers.trailing_zeros();
        escapers &= escapers - 1;
        if k == 63 {
            *carry = 1;
        } else {
            escaped |= 1 << (k + 1);
            escapers &= !(1 << (k + 1));
        }
    }
    escaped
}

/// A byte that may follow a number or literal.
#[inline]
fn ends_scalar(b: &[u8], j: usize) -> bool {
    match b.get(j) {
        None => true,
        Some(&c) => matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}' | b':' | b'[' | b'{' | b'"'),
    }
}

/// Whether a valid number or literal starts at `j` and ends where the run
/// of non-delimiters does.
#[inline(always)]
fn scalar(b: &[u8], j: usize) -> bool {
    match b.get(j) {
        None => return false,
        Some(b't') => return b.get(j..j + 4) == Some(b"true") && ends_scalar(b, j + 4),
        Some(b'f') => return b.get(j..j + 5) == Some(b"false") && ends_scalar(b, j + 5),
        Some(b'n') => return b.get(j..j + 4) == Some(b"null") && ends_scalar(b, j + 4),
        Some(_) => {}
    }
    super::scan::number_end(b, j).is_ok_and(|end| ends_scalar(b, end))
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |value, &c| Some(value * 16 + (c as char).to_digit(16)?))
}

/// Checks the escaped byte at `q` (the byte after its backslash). Returns
/// where the escape ends, or `None` when it is invalid. Surrogates must
/// pair up, as in `scan`.
fn escape_end(b: &[u8], q: usize) -> Option<usize> {
    match *b.get(q)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(q + 1),
        b'u' => match hex4(b, q + 1)? {
            0xD800..=0xDBFF => {
                if b.get(q + 5..q + 7) != Some(b"\\u") {
                    return None;
                }
                matches!(hex4(b, q + 7)?, 0xDC00..=0xDFFF).then_some(q + 11)
            }
            0xDC00..=0xDFFF => None,
            _ => Some(q + 5),
        },
        _ => None,
    }
}

/// Token offsets, for whole lines and the start of the next one.
struct Tokens {
    offsets: Vec<u32>,
    filled: usize,
    /// Tokens up to and including the last `\n` token.
    lines_end: usize,
}

impl Tokens {
    fn new() -> Self {
        Tokens { offsets: vec![0; BATCH + 256], filled: 0, lines_end: 0 }
    }

    /// Room for one block's tokens and the two a bad line adds.
    fn reserve_block(&mut self) {
        if self.filled + 66 > self.offsets.len() {
            self.offsets.resize(self.offsets.len() * 2, 0);
        }
    }

    /// Appends the offsets of the set bits of `bits` (bit k is `base + k`);
    /// `newlines` are the `\n` tokens among them. Writes eight offsets at a
    /// time whatever the count, as simdjson does: fewer branches to predict.
    #[inline(always)]
    fn flatten(&mut self, base: usize, mut bits: u64, newlines: u64) {
        let count = bits.count_ones() as usize;
        if newlines != 0 {
            let last = 63 - newlines.leading_zeros();
            self.lines_end = self.filled + (bits & (u64::MAX >> (63 - last))).count_ones() as usize;
        }
        let base = base as u32;
        let out: &mut [u32; 64] =
            (&mut self.offsets[self.filled..self.filled + 64]).try_into().expect("reserve_block made room");
        for slot in &mut out[..8] {
            *slot = base.wrapping_add(bits.trailing_zeros());
            bits &= bits.wrapping_sub(1);
        }
        if count > 8 {
            for slot in &mut out[8..16] {
                *slot = base.wrapping_add(bits.trailing_zeros());
                bits &= bits.wrapping_sub(1);
            }
            if count > 16 {
                for slot in &mut out[16..count] {
                    *slot = base.wrapping_add(bits.trailing_zeros());
                    bits &= bits.wrapping_sub(1);
                }
            }
        }
        self.filled += count;
    }

    fn push(&mut self, offset: usize) {
        self.offsets[self.filled] = offset as u32;
        self.filled += 1;
    }

    fn push_newline(&mut self, offset: usize) {
        self.push(offset);
        self.lines_end = self.filled;
    }

    /// Drops the tokens of the lines walked; the next line's stay.
    fn consume_lines(&mut self) {
        self.offsets.copy_within(self.lines_end..self.filled, 0);
        self.filled -= self.lines_end;
        self.lines_end = 0;
    }
}

/// Stage one's state from one block to the next.
struct Indexer {
    /// The previous block ended inside a string (all ones) or not (zero).
    in_string: u64,
    /// The previous block's last byte escapes the next one (0 or 1).
    escape_carry: u64,
    /// The previous block ended inside a run of non-delimiters (0 or 1).
    run_carry: u64,
    /// Escapes before this offset were checked as the second half of a
    /// surrogate pair.
    escapes_checked_to: usize,
    /// A bad last line without `\n` has had its virtual `\n` token.
    ended: bool,
}

impl Indexer {
    fn new() -> Self {
        Indexer { in_string: 0, escape_carry: 0, run_carry: 0, escapes_checked_to: 0, ended: false }
    }

    /// Indexes the 64 bytes at `pos` into `out`; returns where the next
    /// block starts.
    #[target_feature(enable = "avx2,pclmulqdq,bmi1,popcnt")]
    #[inline]
    fn block(&mut self, buf: &[u8], pos: usize, out: &mut Tokens) -> usize {
        let tail: [u8; 64];
        let block: &[u8; 64] = match buf[pos..].first_chunk::<64>() {
            Some(block) => block,
            None => {
                // The last, short block, padded with spaces: no token there.
                let mut padded = [b' '; 64];
                padded[..buf.len() - pos].copy_from_slice(&buf[pos..]);
                tail = padded;
                &tail
            }
        };
        let m = block_masks(block);
        let escaped = if m.backslash == 0 && self.escape_carry == 0 {
            0
        } else {
            escaped_bytes(m.backslash, &mut self.escape_carry)
        };
        let quote = m.quote & !escaped;
        // Opening quotes and string contents; closing quotes are outside.
        let in_string = prefix_xor(quote) ^ self.in_string;
        self.in_string = ((in_string as i64) >> 63) as u64;
        let outside = !(in_string | quote);
        let run = outside & !(m.whitespace | m.structural);
        let run_starts = run & !((run << 1) | self.run_carry);
        self.run_carry = run >> 63;
        let newlines = m.newline & outside;
        let tokens = (quote & in_string) | (m.structural & outside) | newlines | run_starts;

        // The first error inside a string: a control byte (`\n` included)
        // or an invalid escape.
        let mut error = m.control & in_string;
        let mut escapes = escaped & in_string;
        while escapes != 0 {
            let q = pos + escapes.trailing_zeros() as usize;
            escapes &= escapes - 1;
            if q < self.escapes_checked_to {
                continue;
            }
            match escape_end(buf, q) {
                Some(end) => self.escapes_checked_to = end,
                None => {
                    error |= 1 << (q - pos);
                    break;
                }
            }
        }
        if error == 0 {
            out.flatten(pos, tokens, newlines);
            return pos + 64;
        }
        // Tokens before the error, an error token, and the line's `\n`;
        // then a fresh start on the next line.
        let first = error.trailing_zeros();
        let before = tokens & ((1 << first) - 1);
        out.flatten(pos, before, newlines & before);
        out.push(error_token(buf));
        let at = (pos + first as usize).min(buf.len());
        match memchr::memchr(b'\n', &buf[at..]) {
            Some(offset) => {
                out.push_newline(at + offset);
                *self = Indexer { ended: self.ended, ..Indexer::new() };
                at + offset + 1
            }
            None => {
                out.push_newline(buf.len());
                self.ended = true;
                buf.len()
            }
        }
    }
}

/// Where stage two goes next: simdjson's labels.
#[derive(Clone, Copy)]
enum Goto {
    ObjectBegin,
    ObjectField,
    ObjectContinue,
    ArrayBegin,
    ArrayValue,
    ArrayContinue,
    ScopeEnd,
    DocumentEnd,
}

/// Stage two: the grammar over the tokens of whole lines.
struct Lines {
    line_start: usize,
    /// Open containers, innermost last: `true` for an array.
    stack: Vec<bool>,
}

impl Lines {
    /// Classifies the lines whose tokens are `toks` (the last token is a
    /// `\n`, real or virtual) and emits them.
    #[inline]
    fn walk<F>(&mut self, b: &[u8], toks: &[u32], emit: &mut F) -> io::Result<()>
    where
        F: FnMut(usize, usize, bool, Status) -> io::Result<()>,
    {
        let mut i = 0;
        while i < toks.len() {
            let (end, status) = self.line(b, toks, &mut i);
            emit(self.line_start, end, end < b.len(), status)?;
            self.line_start = end + 1;
        }
        Ok(())
    }

    /// One line's tokens from `toks[*i]`: returns the offset of its `\n`
    /// and its status, and leaves `*i` after the `\n` token.
    #[inline(always)]
    fn line(&mut self, b: &[u8], toks: &[u32], i: &mut usize) -> (usize, Status) {
        // The next token and its byte; past the buffer, the virtual `\n`.
        macro_rules! next {
            () => {{
                let p = toks.get(*i).map_or(b.len(), |&p| p as usize);
                *i += 1;
                (p, byte(b, p))
            }};
        }
        // The line is bad: its end is the first `\n` token from here.
        macro_rules! bad {
            ($p:expr, $c:expr) => {{
                let (mut p, mut c) = ($p, $c);
                while c != b'\n' {
                    (p, c) = next!();
                }
                return (p, Status::Bad);
            }};
        }
        self.stack.clear();
        let (p, c) = next!();
        let mut at = match c {
            b'{' => Goto::ObjectBegin,
            b'[' => Goto::ArrayBegin,
            b'\n' => return (p, Status::Blank),
            b'"' => Goto::DocumentEnd,
            _ if scalar(b, p) => Goto::DocumentEnd,
            _ => bad!(p, c),
        };
        loop {
            at = match at {
                Goto::ObjectBegin => {
                    self.stack.push(false);
                    match next!() {
                        (_, b'"') => Goto::ObjectField,
                        (_, b'}') => Goto::ScopeEnd,
                        (p, c) => bad!(p, c),
                    }
                }
                Goto::ObjectField => {
                    let (p, c) = next!();
                    if c != b':' {
                        bad!(p, c);
                    }
                    match next!() {
                        (_, b'"') => Goto::ObjectContinue,
                        (_, b'{') => Goto::ObjectBegin,
                        (_, b'[') => Goto::ArrayBegin,
                        (p, _) if scalar(b, p) => Goto::ObjectContinue,
                        (p, c) => bad!(p, c),
                    }
                }
                Goto::ObjectContinue => match next!() {
                    (_, b',') => match next!() {
                        (_, b'"') => Goto::ObjectField,
                        (p, c) => bad!(p, c),
                    },
                    (_, b'}') => Goto::ScopeEnd,
                    (p, c) => bad!(p, c),
                },
                Goto::ArrayBegin => {
                    self.stack.push(true);
                    match next!() {
                        (_, b']') => Goto::ScopeEnd,
                        (_, b'"') => Goto::ArrayContinue,
                        (_, b'{') => Goto::ObjectBegin,
                        (_, b'[') => Goto::ArrayBegin,
                        (p, _) if scalar(b, p) => Goto::ArrayContinue,
                        (p, c) => bad!(p, c),
                    }
                }
                Goto::ArrayValue => match next!() {
                    (_, b'"') => Goto::ArrayContinue,
                    (_, b'{') => Goto::ObjectBegin,
                    (_, b'[') => Goto::ArrayBegin,
                    (p, _) if scalar(b, p) => Goto::ArrayContinue,
                    (p, c) => bad!(p, c),
                },
                Goto::ArrayContinue => match next!() {
                    (_, b',') => Goto::ArrayValue,
                    (_, b']') => Goto::ScopeEnd,
                    (p, c) => bad!(p, c),
                },
                Goto::ScopeEnd => {
                    self.stack.pop();
                    match self.stack.last() {
                        None => Goto::DocumentEnd,
                        Some(true) => Goto::ArrayContinue,
                        Some(false) => Goto::ObjectContinue,
                    }
                }
                Goto::DocumentEnd => match next!() {
                    (p, b'\n') => return (p, Status::Valid),
                    (p, c) => bad!(p, c),
                },
            };
        }
    }
}

#[target_feature(enable = "avx2,pclmulqdq,bmi1,popcnt")]
fn classify_avx2<F>(buf: &[u8], emit: &mut F) -> io::Result<()>
where
    F: FnMut(usize, usize, bool, Status) -> io::Result<()>,
{
    let mut indexer = Indexer::new();
    let mut tokens = Tokens::new();
    let mut lines = Lines { line_start: 0, stack: Vec::new() };
    let mut pos = 0;
    while pos < buf.len() {
        tokens.reserve_block();
        pos = indexer.block(buf, pos, &mut tokens);
        if tokens.lines_end >= BATCH {
            lines.walk(buf, &tokens.offsets[..tokens.lines_end], emit)?;
            tokens.consume_lines();
        }
    }
    if !indexer.ended && buf.last().is_some_and(|&c| c != b'\n') {
        // The last line lacks its `\n`: a virtual one ends it, after an
        // error token when a string is still open.
        tokens.reserve_block();
        if indexer.in_string != 0 {
            tokens.push(error_token(buf));
        }
        tokens.push_newline(buf.len());
    }
    lines.walk(buf, &tokens.offsets[..tokens.filled], emit)
}
