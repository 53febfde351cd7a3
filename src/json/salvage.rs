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

use std::ops::Range;

use serde_json::Value;

use super::scan::{self, Kind, Problem, Scan};

/// What salvage concluded about a document.
#[derive(Debug)]
pub enum Outcome {
    /// The document is valid JSON: nothing to do. The keys of its top
    /// level when that is an object, found by the same pass.
    Valid { top_keys: Option<Vec<String>> },
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
}

/// Scans `input` and, when it is damaged, computes what can be kept.
pub fn salvage(input: &[u8]) -> Outcome {
    let scan = scan::scan(input);
    let bom = scan.start > 0;
    let (damage_offset, problem) = match scan.damage {
        Some(damage) => (damage.offset, damage.problem),
        None if bom => (0, Problem::ByteOrderMark),
        None => return Outcome::Valid { top_keys: valid_object_keys(input, &scan) },
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
    valid_object_keys(input, &scan::scan(input))
}

fn valid_object_keys(input: &[u8], scan: &Scan) -> Option<Vec<String>> {
    if scan.damage.is_some() || scan.start > 0 || first_non_ws(input) != Some(b'{') {
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
        let mut text = format!(
            "salvage drops {} and keeps {}",
            count(self.bytes_dropped, "byte"),
            count(self.members_kept, "key")
        );
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
            // The dropped bytes begin where the kept prefix ends, before the damage itself.
            let bom = if self.bom && self.head.start > 0 { "removed a UTF-8 byte order mark; " } else { "" };
            format!(
                "{bom}dropped {} from offset {} (damaged at {}, offset {}); kept {}",
                count(self.bytes_dropped - self.head.start, "byte"),
                self.head.end,
                show_pointer(&self.pointer),
                self.damage_offset,
                count(self.members_kept, "key")
            )
        };
        if !self.added_keys.is_empty() {
            text.push_str(&format!("; added from the default: {}", self.added_keys.join(", ")));
        }
        text
    }
}

/// `1 byte`, `2 bytes`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
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
