//! Salvage of a corrupt JSON document: the longest valid prefix, closed.
//!
//! Guarantees, for any input (see the exhaustive tests below):
//! - the result is valid JSON, or nothing when no value had begun;
//! - every value complete before the damage is kept byte for byte (the
//!   output is a prefix of the input followed by closing brackets);
//! - nothing is invented: a member whose value was cut is dropped with its
//!   key, an array element that was cut is dropped, no `null` stands in;
//! - a string cut in the middle is an incomplete value: dropped like any
//!   other (a shortened string would be a different, wrong value);
//! - a number counts as complete only when a delimiter follows it, since
//!   `12.5` cut after `12` is still a number, but a wrong one;
//! - an object or array that was cut is kept, closed, with the complete
//!   values it held;
//! - a UTF-8 byte order mark is dropped (strict parsers refuse it);
//!   invalid UTF-8, NUL padding and trailing garbage mark the damage.
//!
//! Memory: the input plus one small frame per open container; no recursion.
//!
//! The plan carries the input's length and fingerprint, so that the fix
//! can check that the copy it works from is still exactly that input and
//! write the kept bytes as it reads them, without scanning them again.

use std::io::{self, Read, Write};
use std::ops::Range;

use serde_json::Value;

use super::scan::{self, Kind, Problem, Scan};

/// What salvage concluded about a document.
#[derive(Debug)]
pub enum Outcome {
    /// The document is valid JSON: nothing to do.
    Valid,
    /// It is damaged; here is what can be kept.
    Damaged(Salvage),
}

/// A salvaged document: `input[head]` followed by `tail` is valid JSON.
#[derive(Debug, Clone)]
pub struct Salvage {
    /// The kept bytes of the input; empty when nothing could be kept.
    pub head: Range<usize>,
    /// Closing brackets (and members merged in by `merge_default`).
    pub tail: Vec<u8>,
    /// Whether any value was kept at all.
    pub kept_value: bool,
    /// The input began with a UTF-8 byte order mark (dropped).
    pub bom: bool,
    /// Byte offset where the damage was found.
    pub damage_offset: usize,
    pub problem: Problem,
    /// JSON Pointer of the place where the damage began (`""` = top level).
    pub pointer: String,
    /// Object members kept, at any depth (keys recovered).
    pub members_kept: usize,
    /// The kept top-level object's keys, in order.
    pub top_keys: Vec<String>,
    /// Kind of the kept top-level value, when it is a container.
    pub top_kind: Option<Kind>,
    /// Input bytes not in the output (the BOM included).
    pub bytes_dropped: usize,
    /// Top-level keys added from the default by `merge_default`.
    pub added_keys: Vec<String>,
    /// Length of the input the salvage was computed from.
    pub input_len: usize,
    /// `Fingerprint` of that input.
    pub fingerprint: u64,
}

/// Scans `input` and, when it is damaged, computes what can be kept.
pub fn salvage(input: &[u8]) -> Outcome {
    let scan = scan::scan(input);
    let bom = scan.start > 0;
    let (damage_offset, problem) = match scan.damage {
        Some(damage) => (damage.offset, damage.problem),
        None if bom => (0, Problem::ByteOrderMark),
        None => return Outcome::Valid,
    };
    let (head, tail) = match scan.commit {
        Some(commit) => (scan.start..commit, closers(&scan)),
        None => (0..0, Vec::new()),
    };
    let top_kind = match input.get(head.clone()).and_then(first_non_ws) {
        Some(b'{') => Some(Kind::Object),
        Some(b'[') => Some(Kind::Array),
        _ => None,
    };
    Outcome::Damaged(Salvage {
        kept_value: scan.commit.is_some(),
        bytes_dropped: input.len() - head.len(),
        input_len: input.len(),
        fingerprint: Fingerprint::of(input),
        head,
        tail,
        bom,
        damage_offset,
        problem,
        pointer: pointer_at(input, &scan),
        members_kept: scan.members + open_members(&scan),
        top_keys: top_keys(input, &scan),
        top_kind,
        added_keys: Vec::new(),
    })
}

/// The top-level keys of a valid document whose top level is an object,
/// found without building a `Value` (one pass, no allocation per value);
/// `None` for anything else.
pub fn object_keys(input: &[u8]) -> Option<Vec<String>> {
    let scan = scan::scan(input);
    if scan.damage.is_some() || scan.start > 0 {
        return None;
    }
    if first_non_ws(input) != Some(b'{') {
        return None;
    }
    Some(scan.top_keys.iter().map(|range| decode_key(input, range)).collect())
}

impl Salvage {
    /// The salvaged document (for tests and small files; the fix streams
    /// `head` and `tail` instead of building this copy).
    pub fn to_bytes(&self, input: &[u8]) -> Vec<u8> {
        let mut out = input[self.head.clone()].to_vec();
        out.extend_from_slice(&self.tail);
        out
    }

    /// Writes the salvaged document (without a final newline) to `out`,
    /// reading the input again from `input`: the kept bytes are copied as
    /// they go by, and the whole input is fingerprinted on the way. Returns
    /// `false` when `input` is not the input this salvage was computed from
    /// (then `out` holds a partial document and must be thrown away).
    pub fn write_from(&self, mut input: impl Read, out: &mut impl Write) -> io::Result<bool> {
        let mut buf = vec![0u8; 1 << 20];
        let mut fingerprint = Fingerprint::default();
        let mut offset = 0;
        loop {
            let read = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &buf[..read];
            fingerprint.update(chunk);
            let (from, to) = (self.head.start.max(offset), self.head.end.min(offset + read));
            if from < to {
                out.write_all(&chunk[from - offset..to - offset])?;
            }
            offset += read;
        }
        if offset != self.input_len || fingerprint.finish() != self.fingerprint {
            return Ok(false);
        }
        out.write_all(&self.tail)?;
        Ok(true)
    }

    /// Adds the top-level members of `default` that the salvaged object
    /// lacks, after the kept ones, without touching a kept byte. When no
    /// value was kept, the result is the default itself. Returns `false`
    /// (and changes nothing) when the salvaged top level is not the kind
    /// of container the default is: a file of another type is not ours to
    /// rewrite. Without a default, a kept value stands as it is and an
    /// empty salvage becomes `{}`.
    pub fn merge_default(&mut self, default: Option<&Value>) -> bool {
        let empty = Value::Object(serde_json::Map::new());
        if !self.kept_value {
            return self.take_whole_default(default.unwrap_or(&empty));
        }
        let Some(default) = default else {
            return true;
        };
        let wanted = match default {
            Value::Object(_) => Some(Kind::Object),
            Value::Array(_) => Some(Kind::Array),
            _ => None,
        };
        if wanted.is_some() && wanted != self.top_kind {
            return false;
        }
        let Value::Object(defaults) = default else {
            return true;
        };
        let mut insertion = Vec::new();
        let mut has_members = !self.top_keys.is_empty();
        for (key, value) in defaults {
            if self.top_keys.iter().any(|k| k == key) {
                continue;
            }
            if has_members {
                insertion.push(b',');
            }
            has_members = true;
            // Serialising a string key and a Value cannot fail.
            insertion.extend(serde_json::to_vec(key).unwrap_or_default());
            insertion.push(b':');
            insertion.extend(serde_json::to_vec(value).unwrap_or_default());
            self.added_keys.push(key.clone());
        }
        if insertion.is_empty() {
            return true;
        }
        // The last byte of head+tail is the top-level `}`: insert before it.
        if self.tail.is_empty() {
            self.head.end -= 1;
            self.tail.push(b'}');
        }
        let at = self.tail.len() - 1;
        self.tail.splice(at..at, insertion);
        true
    }

    fn take_whole_default(&mut self, default: &Value) -> bool {
        self.head = 0..0;
        self.tail = serde_json::to_vec_pretty(default).unwrap_or_default();
        self.kept_value = true;
        if let Value::Object(map) = default {
            self.added_keys = map.keys().cloned().collect();
        }
        true
    }

    /// What the salvage would do, for a finding's message (which already
    /// says where the damage is).
    pub fn effect(&self) -> String {
        if self.problem == Problem::ByteOrderMark {
            return "salvage removes the byte order mark".into();
        }
        let mut text = format!("salvage drops {} bytes and keeps {} keys", self.bytes_dropped, self.members_kept);
        if !self.added_keys.is_empty() {
            text.push_str(&format!(", adding {} from the default", self.added_keys.join(", ")));
        }
        text
    }

    /// A one-line summary for reports and history.
    pub fn summary(&self) -> String {
        let mut text = if self.problem == Problem::ByteOrderMark {
            "removed a UTF-8 byte order mark".to_string()
        } else {
            format!(
                "dropped {} bytes from offset {} at {}; kept {} keys",
                self.bytes_dropped,
                self.damage_offset,
                show_pointer(&self.pointer),
                self.members_kept
            )
        };
        if !self.added_keys.is_empty() {
            text.push_str(&format!("; added from the default: {}", self.added_keys.join(", ")));
        }
        text
    }
}

/// A fast 64-bit fingerprint of a byte stream (four xxHash-style lanes,
/// 32 bytes per round), to notice that a file changed between the check
/// and the fix. It is not a defence against someone forging a collision;
/// rollback's SHA-256 is.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    lanes: [u64; 4],
    /// Bytes of an incomplete 32-byte stripe.
    pending: [u8; 32],
    filled: usize,
    len: u64,
}

const MULTIPLIERS: [u64; 4] =
    [0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F, 0x1656_67B1_9E37_79F9, 0xD6E8_FEB8_6659_FD93];

fn round(lane: u64, word: u64, k: u64) -> u64 {
    lane.wrapping_add(word.wrapping_mul(k)).rotate_left(31).wrapping_mul(MULTIPLIERS[0])
}

fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint { lanes: MULTIPLIERS, pending: [0; 32], filled: 0, len: 0 }
    }
}

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> u64 {
        let mut fingerprint = Fingerprint::default();
        fingerprint.update(bytes);
        fingerprint.finish()
    }

    fn stripe(&mut self, stripe: &[u8; 32]) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            *lane = round(*lane, word(&stripe[8 * k..8 * k + 8]), MULTIPLIERS[k]);
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.filled > 0 {
            let take = bytes.len().min(32 - self.filled);
            self.pending[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 32 {
                return;
            }
            let stripe = self.pending;
            self.stripe(&stripe);
            self.filled = 0;
        }
        let mut stripes = bytes.chunks_exact(32);
        for stripe in &mut stripes {
            self.stripe(stripe.try_into().expect("chunks of 32"));
        }
        let rest = stripes.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut hash = self.len;
        for (k, lane) in self.lanes.iter().enumerate() {
            hash = round(hash, *lane, MULTIPLIERS[k]);
        }
        for chunk in self.pending[..self.filled].chunks(8) {
            hash = round(hash, word(chunk) ^ chunk.len() as u64, MULTIPLIERS[1]);
        }
        // Final avalanche: every input bit reaches every output bit.
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(MULTIPLIERS[1]);
        hash ^= hash >> 29;
        hash = hash.wrapping_mul(MULTIPLIERS[2]);
        hash ^ (hash >> 32)
    }
}

/// A pointer for humans: the top level reads `/` rather than nothing.
pub fn show_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "/"
    } else {
        pointer
    }
}

fn first_non_ws(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
}

/// `]` and `}` for the open containers, innermost first.
fn closers(scan: &Scan) -> Vec<u8> {
    scan.stack
        .iter()
        .rev()
        .map(|frame| match frame.kind {
            Kind::Object => b'}',
            Kind::Array => b']',
        })
        .collect()
}

/// Members whose value is a container still open at the damage: kept.
fn open_members(scan: &Scan) -> usize {
    scan.stack.windows(2).filter(|pair| pair[0].kind == Kind::Object).count()
}

fn decode_key(input: &[u8], range: &Range<usize>) -> String {
    // The scanner validated the string, so decoding cannot fail.
    input.get(range.clone()).and_then(|raw| serde_json::from_slice(raw).ok()).unwrap_or_default()
}

fn top_keys(input: &[u8], scan: &Scan) -> Vec<String> {
    let mut keys: Vec<String> = scan.top_keys.iter().map(|r| decode_key(input, r)).collect();
    // A top-level member whose container value is open is kept too.
    if let [first, _, ..] = scan.stack.as_slice() {
        if let Some(range) = first.key.as_ref().filter(|_| first.kind == Kind::Object) {
            keys.push(decode_key(input, range));
        }
    }
    keys
}

/// The JSON Pointer (RFC 6901) of the value being read at the damage.
fn pointer_at(input: &[u8], scan: &Scan) -> String {
    let mut pointer = String::new();
    for frame in &scan.stack {
        match (frame.kind, &frame.key) {
            (Kind::Array, _) => pointer.push_str(&format!("/{}", frame.done)),
            (Kind::Object, Some(range)) => {
                pointer.push('/');
                pointer.push_str(&decode_key(input, range).replace('~', "~0").replace('/', "~1"));
            }
            (Kind::Object, None) => break,
        }
    }
    pointer
}

#[cfg(test)]
#[path = "salvage_tests.rs"]
mod tests;
