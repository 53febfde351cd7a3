//! Salvage tests: named cases, then the exhaustive truncation test that
//! cuts every corpus document at every byte and appends padding or garbage.

use serde_json::{json, Value};

use super::*;

fn damaged(input: &[u8]) -> Salvage {
    match salvage(input) {
        Outcome::Damaged(s) => s,
        Outcome::Valid { .. } => panic!("{:?} should be damaged", String::from_utf8_lossy(input)),
    }
}

fn salvaged_text(input: &str) -> String {
    let s = damaged(input.as_bytes());
    String::from_utf8(s.to_bytes(input.as_bytes())).unwrap()
}

#[test]
fn a_valid_document_is_left_alone() {
    match salvage(b" {\"a\": [1, 2]}\n") {
        Outcome::Valid { top_keys } => assert_eq!(top_keys, Some(vec!["a".to_string()])),
        Outcome::Damaged(s) => panic!("valid input called damaged: {s:?}"),
    }
    assert!(matches!(salvage(b"[1, 2]"), Outcome::Valid { top_keys: None }));
}

#[test]
fn a_member_whose_value_was_cut_is_dropped_never_invented() {
    assert_eq!(salvaged_text(r#"{"a": 1, "symbol": "EUR"#), r#"{"a": 1}"#);
    assert_eq!(salvaged_text(r#"{"a": 1, "price": 12.5"#), r#"{"a": 1}"#);
    assert_eq!(salvaged_text(r#"{"a": 1, "ok": tru"#), r#"{"a": 1}"#);
    assert_eq!(salvaged_text(r#"{"a": 1, "sym"#), r#"{"a": 1}"#);
    assert_eq!(salvaged_text(r#"{"a": 1, "b": "#), r#"{"a": 1}"#);
}

#[test]
fn open_containers_are_closed_with_their_complete_values() {
    assert_eq!(
        salvaged_text(r#"{"pos": [{"s": "A", "q": 1}, {"s": "B", "q""#),
        r#"{"pos": [{"s": "A", "q": 1}, {"s": "B"}]}"#
    );
    assert_eq!(salvaged_text(r#"[1, 2, [3, "x"#), "[1, 2, [3]]");
}

#[test]
fn the_report_names_the_place_and_the_bytes() {
    let input = br#"{"pos": [{"s": "A"}, {"s": "B", "q": 1"#;
    let s = damaged(input);
    assert_eq!(s.pointer, "/pos/1/q");
    assert_eq!(s.problem, Problem::UnexpectedEnd);
    assert_eq!(s.damage_offset, input.len());
    assert_eq!(s.bytes_dropped, input.len() - s.head.len());
    assert_eq!(s.members_kept, 3, "pos, the first s, the second s");
    assert_eq!(s.top_keys, vec!["pos"]);
    assert!(s.summary().contains("at /pos/1/q"), "{}", s.summary());
    assert_eq!(s.effect(), format!("salvage drops {} bytes and keeps 3 keys", s.bytes_dropped));
}

#[test]
fn the_summary_gives_the_offset_where_the_dropped_bytes_begin_and_counts_in_words() {
    // Kept: `{"a": 1`; dropped from offset 7: `, "b": tru`; the damage is at the end.
    let input = br#"{"a": 1, "b": tru"#;
    let s = damaged(input);
    assert_eq!((s.head.end, s.damage_offset), (7, input.len()));
    let expected = format!("dropped 10 bytes from offset 7 (damaged at /b, offset {})", input.len());
    assert!(s.summary().starts_with(&expected), "{}", s.summary());
    assert!(s.summary().ends_with("; kept 1 key"), "{}", s.summary());
    let one = damaged(br#"{"a": 1}x"#);
    assert!(one.summary().starts_with("dropped 1 byte from offset 8"), "{}", one.summary());
    assert_eq!(one.effect(), "salvage drops 1 byte and keeps 1 key");
}

#[test]
fn nul_padding_and_trailing_garbage_are_dropped() {
    assert_eq!(salvaged_text("{\"a\": [1, 2]}\0\0\0\0"), "{\"a\": [1, 2]}");
    assert_eq!(salvaged_text("{\"a\": [1, 2\0\0\0\0"), "{\"a\": [1]}");
    let s = damaged(b"{\"a\": 1}}garbage");
    assert_eq!((s.problem, s.damage_offset, s.pointer.as_str()), (Problem::TrailingData, 8, ""));
}

#[test]
fn a_bom_is_dropped_and_reported() {
    let input = b"\xEF\xBB\xBF{\"a\": 1}";
    let s = damaged(input);
    assert_eq!(s.to_bytes(input), b"{\"a\": 1}");
    assert_eq!(s.problem, Problem::ByteOrderMark);
    assert_eq!(s.summary(), "removed a UTF-8 byte order mark");
}

#[test]
fn invalid_utf8_in_a_string_drops_that_member() {
    let input = b"{\"a\": \"ok\", \"b\": \"caf\xE9\", \"c\": 3}";
    let s = damaged(input);
    assert_eq!(s.to_bytes(input), b"{\"a\": \"ok\"}");
    assert_eq!((s.problem, s.pointer.as_str()), (Problem::InvalidUtf8, "/b"));
}

#[test]
fn whitespace_only_keeps_nothing_and_takes_the_default() {
    let mut s = damaged(b"  \n\0\0");
    assert!(!s.kept_value);
    assert!(s.merge_default(Some(&json!({"open": []}))));
    let merged: Value = serde_json::from_slice(&s.to_bytes(b"")).unwrap();
    assert_eq!(merged, json!({"open": []}));
}

#[test]
fn merge_adds_missing_default_keys_without_touching_kept_bytes() {
    let input = br#"{"open": [{"s": "A"}], "clo"#;
    let mut s = damaged(input);
    assert!(s.merge_default(Some(&json!({"open": [], "closed": [], "meta": {"v": 1}}))));
    assert_eq!(s.to_bytes(input), br#"{"open": [{"s": "A"}],"closed":[],"meta":{"v":1}}"#);
    assert_eq!(s.added_keys, vec!["closed", "meta"]);
    let input = b"{}}";
    let mut s = damaged(input);
    assert!(s.merge_default(Some(&json!({"a": 1}))));
    assert_eq!(s.to_bytes(input), br#"{"a":1}"#);
}

#[test]
fn a_top_level_of_another_type_is_not_merged() {
    let input = b"[1, 2";
    let mut s = damaged(input);
    assert!(!s.merge_default(Some(&json!({"a": 1}))));
    assert_eq!(s.to_bytes(input), b"[1]");
}

#[test]
fn without_a_default_any_kept_value_stands_and_nothing_becomes_an_empty_object() {
    let input = b"[1, 2";
    let mut s = damaged(input);
    assert!(s.merge_default(None));
    assert_eq!(s.to_bytes(input), b"[1]");
    let mut s = damaged(b"\0\0");
    assert!(s.merge_default(None));
    assert_eq!(s.to_bytes(b""), b"{}");
    let mut s = damaged(b"{\"a\": 1, ");
    assert!(!s.merge_default(Some(&json!([]))), "an object is not an array");
}

#[test]
fn object_keys_lists_the_top_level_only_and_only_for_a_valid_object() {
    let keys = object_keys(br#" {"a": {"x": 1}, "b\u00e9": [ {"y": 2} ], "": null} "#);
    assert_eq!(keys, Some(vec!["a".to_string(), "b\u{e9}".to_string(), String::new()]));
    assert_eq!(object_keys(b"[1]"), None);
    assert_eq!(object_keys(br#"{"a": 1"#), None);
    assert_eq!(object_keys(b"{}"), Some(vec![]));
}

#[test]
fn pointers_escape_tilde_and_slash() {
    assert_eq!(damaged(br#"{"a/b": {"c~d": [1, "#).pointer, "/a~1b/c~0d/1");
}

#[test]
fn very_deep_nesting_is_salvaged_without_recursion() {
    let depth = 500_000;
    let mut input = r#"{"a":"#.repeat(depth).into_bytes();
    input.extend_from_slice(b"[1, 2");
    let s = damaged(&input);
    let out = s.to_bytes(&input);
    assert!(scan::is_valid(&out));
    assert_eq!(s.members_kept, depth);
    assert_eq!(s.pointer.len(), depth * 2 + 2);
}

// ---- exhaustive truncation -------------------------------------------------

/// What the oracle knows about one value of a valid document.
struct Place {
    pointer: String,
    start: usize,
    end: usize,
    number: bool,
}

/// A deliberately separate, recursive parser for valid corpus documents
/// that records where every value starts and ends.
struct Oracle<'a> {
    b: &'a [u8],
    i: usize,
    places: Vec<Place>,
}

impl Oracle<'_> {
    fn places(doc: &str) -> Vec<Place> {
        let mut oracle = Oracle { b: doc.as_bytes(), i: 0, places: Vec::new() };
        oracle.value(String::new());
        oracle.places
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && b" \t\r\n".contains(&self.b[self.i]) {
            self.i += 1;
        }
    }

    fn value(&mut self, pointer: String) {
        self.ws();
        let start = self.i;
        let number = matches!(self.b[start], b'-' | b'0'..=b'9');
        match self.b[start] {
            b'{' => self.object(&pointer),
            b'[' => self.array(&pointer),
            b'"' => {
                self.string();
            }
            _ => {
                while self.i < self.b.len() && !b" \t\r\n,]}".contains(&self.b[self.i]) {
                    self.i += 1;
                }
            }
        }
        self.places.push(Place { pointer, start, end: self.i, number });
    }

    fn string(&mut self) -> String {
        let start = self.i;
        self.i += 1;
        while self.b[self.i] != b'"' {
            self.i += if self.b[self.i] == b'\\' { 2 } else { 1 };
        }
        self.i += 1;
        serde_json::from_slice(&self.b[start..self.i]).unwrap()
    }

    fn object(&mut self, pointer: &str) {
        self.i += 1;
        loop {
            self.ws();
            match self.b[self.i] {
                b'}' => break,
                b',' => self.i += 1,
                _ => {
                    let key = self.string();
                    self.ws();
                    self.i += 1; // the colon
                    self.value(format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")));
                }
            }
        }
        self.i += 1;
    }

    fn array(&mut self, pointer: &str) {
        self.i += 1;
        let mut index = 0;
        loop {
            self.ws();
            match self.b[self.i] {
                b']' => break,
                b',' => self.i += 1,
                _ => {
                    self.value(format!("{pointer}/{index}"));
                    index += 1;
                }
            }
        }
        self.i += 1;
    }
}

fn corpus() -> Vec<String> {
    let mut docs = vec![
        r#"{"open_positions":[{"symbol":"EURUSD","side":"buy","qty":100000,"entry_price":1.08735,"tags":["fx","major"]}],"closed_positions":[],"updated":"2026-11-23T15:42:00Z"}"#.to_string(),
        "{\n  \"a\": {\n    \"b\": [\n      1,\n      -2.5e-3,\n      0,\n      -0,\n      1E+2,\n      12.0e10\n    ],\n    \"c\": null\n  },\n  \"d\": true,\n  \"e\": false\n}\n".to_string(),
        r#"{"esc":"q\"b\\s\/n\nt\tu\u00e9\ud83d\ude00","raw":"été 😀 中文","":"empty key","a/b~c":{"x":[[],{},[{}]]}}"#.to_string(),
        r#"[1, "two", {"three": [3, 3.0, -3e0]}, [[4]], null, true, "", {"k": "v"}]"#.to_string(),
        "\r\n\t{ \"sp\" : [ 10 , 20 ] , \"n\" : -0.000001 }  ".to_string(),
    ];
    // Serialised by serde_json as well, pretty and compact.
    let value: Value = serde_json::from_str(&docs[0]).unwrap();
    docs.push(serde_json::to_string_pretty(&value).unwrap());
    docs
}

/// Every leaf and container of `out` exists in `original` at the same path,
/// leaves equal, containers of the same kind.
fn assert_subset(out: &Value, original: &Value, pointer: &str, context: &str) {
    let Some(theirs) = original.pointer(pointer) else {
        panic!("{context}: {pointer} kept but not in the original");
    };
    match (out, theirs) {
        (Value::Object(mine), Value::Object(_)) => {
            for (k, v) in mine {
                assert_subset(v, original, &format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")), context);
            }
        }
        (Value::Array(mine), Value::Array(_)) => {
            for (i, v) in mine.iter().enumerate() {
                assert_subset(v, original, &format!("{pointer}/{i}"), context);
            }
        }
        (mine, theirs) => assert_eq!(mine, theirs, "{context}: leaf {pointer} changed"),
    }
}

#[test]
fn exhaustive_truncation_never_invents_and_never_loses_a_complete_value() {
    // Suffixes begin with bytes that cannot continue or end a value: a
    // number cut and then followed by a delimiter is indistinguishable
    // from a whole one, and no scanner can tell them apart.
    let suffixes: [&[u8]; 5] = [b"", b"\0\0\0\0\0\0\0\0", b"garbage}]", b"\xFF\xFE{\"z\":1}", b"\0 \n"];
    let mut runs = 0;
    for doc in corpus() {
        let original: Value = serde_json::from_str(&doc).unwrap();
        let places = Oracle::places(&doc);
        for cut in 0..=doc.len() {
            for suffix in suffixes {
                let mut input = doc.as_bytes()[..cut].to_vec();
                input.extend_from_slice(suffix);
                let context = format!("cut {cut} + {suffix:?} of {doc:?}");
                let strict = serde_json::from_slice::<Value>(&input);
                let s = match salvage(&input) {
                    Outcome::Valid { .. } => {
                        assert!(strict.is_ok(), "{context}: called valid");
                        continue;
                    }
                    Outcome::Damaged(s) => s,
                };
                assert!(strict.is_err(), "{context}: valid input called damaged");
                assert_eq!(s.bytes_dropped, input.len() - s.head.len(), "{context}");
                let out: Option<Value> = s.kept_value.then(|| {
                    let bytes = s.to_bytes(&input);
                    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                        panic!("{context}: invalid output {:?}: {e}", String::from_utf8_lossy(&bytes))
                    })
                });
                if let Some(out) = &out {
                    assert_subset(out, &original, "", &context);
                }
                for place in &places {
                    // Complete before the cut: a number needs its delimiter too.
                    let complete = if place.number { place.end < cut } else { place.end <= cut };
                    // A container whose bracket opened is kept (closed).
                    let opened = !place.number && b"[{".contains(&doc.as_bytes()[place.start]) && place.start < cut;
                    if complete || opened {
                        let kept = out.as_ref().and_then(|o| o.pointer(&place.pointer));
                        assert!(kept.is_some(), "{context}: lost {}", place.pointer);
                    }
                }
                runs += 1;
            }
        }
    }
    assert!(runs > 3000, "the corpus was exercised ({runs} damaged inputs)");
}

/// Random byte strings over a JSON-heavy alphabet: the scanner agrees with
/// serde_json on validity, and salvage always yields valid JSON.
#[test]
fn random_inputs_agree_with_serde_json_and_always_salvage_to_valid_json() {
    const ALPHABET: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b"\"k\"",
        b"\"v\"",
        b"1",
        b"-",
        b"0",
        b".5",
        b"e3",
        b"E-",
        b"true",
        b"fals",
        b"null",
        b" ",
        b"\n",
        b"\0",
        b"\xC3\xA9",
        b"\xFF",
        b"\\u00e9",
        b"\\ud83d",
        b"\\ude00",
        b"x",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut valid = 0;
    for _ in 0..20_000 {
        let len = (next() % 12) as usize;
        let input: Vec<u8> =
            (0..len).flat_map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize].to_vec()).collect();
        let parsed = serde_json::from_slice::<Value>(&input);
        if matches!(&parsed, Err(e) if e.to_string().contains("number out of range")) {
            continue; // valid JSON beyond what serde_json represents
        }
        let strict = parsed.is_ok();
        assert_eq!(scan::is_valid(&input), strict, "{:?}", String::from_utf8_lossy(&input));
        valid += usize::from(strict);
        if let Outcome::Damaged(s) = salvage(&input) {
            if s.kept_value {
                let out = s.to_bytes(&input);
                assert!(serde_json::from_slice::<Value>(&out).is_ok(), "{:?} -> {:?}", input, out);
            }
        }
    }
    assert!(valid > 200, "enough valid documents were drawn to compare ({valid})");
}
