//! The vectorised line classifier against the strict scanner, line by
//! line: named cases for every path, every alignment on 64-byte blocks,
//! and random inputs.

use proptest::prelude::*;

use super::*;

type Lines = Vec<(usize, usize, bool, Status)>;

fn lines(input: &[u8], engine: Engine) -> Lines {
    let mut out = Vec::new();
    classify_lines(input, &mut Validator::default(), engine, &mut |start, end, terminated, status| {
        out.push((start, end, terminated, status));
        Ok(())
    })
    .unwrap();
    out
}

/// The vectorised classifier and the strict scanner agree on every
/// line of `input`, whatever the alignment of `input` on 64-byte
/// blocks; returns the statuses.
fn agree(input: &[u8]) -> Vec<Status> {
    if Engine::best() == Engine::Scanner {
        return lines(input, Engine::Scanner).into_iter().map(|l| l.3).collect();
    }
    let mut statuses = None;
    for shift in [0, 1, 31, 32, 63] {
        let mut shifted = vec![b' '; shift];
        shifted.extend_from_slice(input);
        let (fast, strict) = (lines(&shifted, Engine::best()), lines(&shifted, Engine::Scanner));
        assert_eq!(fast, strict, "shift {shift}: {:?}", String::from_utf8_lossy(&shifted));
        statuses.get_or_insert_with(|| fast.iter().map(|l| l.3).collect());
    }
    statuses.unwrap_or_default()
}

fn one(line: &str) -> Status {
    let statuses = agree(line.as_bytes());
    assert_eq!(statuses.len(), 1, "{line:?}");
    statuses[0]
}

use Status::{Bad, Blank, Valid};

#[test]
fn escapes() {
    for line in [
        r#""\"\\\/\b\f\n\r\t""#,
        r#"{"a\"b": "c\\"}"#,
        r#""\u0041\u00e9\uFFFF""#,
        r#""\ud83d\ude00""#,
        r#"["\\\\", "\\\"", "x\\\\\\\""]"#,
    ] {
        assert_eq!(one(line), Valid, "{line}");
    }
    for line in [
        r#""\x""#,
        r#""\u12""#,
        r#""\u12g4""#,
        r#""\ud800""#,
        r#""\ud800\u0041""#,
        r#""\udc00""#,
        r#""\ud800\""#,
        r#""abc\"#,
        r#""\"#,
        r#"\"a""#,
        r#"[1, \"a"]"#,
        r#"{"a": 1}\"#,
    ] {
        assert_eq!(one(line), Bad, "{line}");
    }
}

#[test]
fn escapes_and_strings_across_block_boundaries() {
    for len in 50..140 {
        for tail in [r#"\"""#, r#"\\""#, r#"\\\""#, r#"\u00e9""#, r#"\ud83d\ude00""#, r#"\ud83d""#, "\"", "\t\"", "\\"]
        {
            let line = format!("[\"{}{tail}]", "x".repeat(len));
            agree(line.as_bytes());
            agree(format!("{line}\n{line}\n").as_bytes());
        }
    }
}

#[test]
fn utf8() {
    assert_eq!(one("\"caf\u{e9} \u{1F600}\""), Valid);
    assert_eq!(one("{\"\u{e9}\": [\"\u{4e2d}\"]}"), Valid);
    for bytes in [
        &b"\"\xff\""[..],
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xc0\xaf\"",
        b"\xc3\xa9",
        b"[1, \xe2\x82]",
        b"\"ok\"\xf0\x9f\x98",
    ] {
        let mut input = b"{\"a\": 1}\n".to_vec();
        input.extend_from_slice(bytes);
        input.extend_from_slice(b"\n[2]\n");
        assert_eq!(agree(&input), vec![Valid, Bad, Valid], "{bytes:?}");
        assert_eq!(agree(bytes), vec![Bad], "{bytes:?}");
    }
}

#[test]
fn numbers() {
    for line in [
        "0",
        "-0",
        "12",
        "-12.5",
        "1e5",
        "1E+5",
        "1.5e-3",
        "[0,1,-1]",
        "{\"a\":-0.0e0}",
        "123456789012345678901234567890",
        "1e400",
    ] {
        assert_eq!(one(line), Valid, "{line}");
    }
    for line in [
        "01", "-", "--1", "1.", ".5", "+1", "1e", "1e+", "1.e5", "0x1", "1a", "[1 2]", "[1,]", "1\"a\"", "[01]", "1 2",
        "-a",
    ] {
        assert_eq!(one(line), Bad, "{line}");
    }
}

#[test]
fn literals() {
    for line in ["true", "false", "null", "[true,false,null]", "{\"a\":null}"] {
        assert_eq!(one(line), Valid, "{line}");
    }
    for line in ["tru", "truex", "nul", "nulll", "falsey", "True", "[true false]", "t", "n", "f"] {
        assert_eq!(one(line), Bad, "{line}");
    }
}

#[test]
fn nesting() {
    for line in ["[]", "{}", "[[[]]]", "[{}]", "{\"a\":{\"b\":[{}]}}", "[[1,[2,[3]]],{\"x\":[]}]"] {
        assert_eq!(one(line), Valid, "{line}");
    }
    for line in [
        "[",
        "]",
        "{",
        "}",
        "[}",
        "{]",
        "[{]}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "[,1]",
        "{1:2}",
        "{\"a\" 1}",
        "{} {}",
        "[] 1",
        "{\"a\"::1}",
    ] {
        assert_eq!(one(line), Bad, "{line}");
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(one(&deep), Valid);
    assert_eq!(one(&deep[..deep.len() - 1]), Bad);
}

#[test]
fn line_ends_blank_lines_and_the_last_line() {
    assert_eq!(agree(b"{\"a\":1}\r\n[2]\r\n"), vec![Valid, Valid]);
    assert_eq!(agree(b"\n\r\n \t\r\n[1]"), vec![Blank, Blank, Blank, Valid]);
    assert_eq!(agree(b"[1]\n[2"), vec![Valid, Bad]);
    assert_eq!(agree(b"[1]\n\"abc"), vec![Valid, Bad]);
    assert_eq!(agree(b"[1]\n\"abc\\"), vec![Valid, Bad]);
    assert_eq!(agree(b"[1]\n12"), vec![Valid, Valid]);
    assert_eq!(agree(b"[1]\n  \r"), vec![Valid, Blank]);
    assert_eq!(agree(b"\"a\nb\"\n[1]\n"), vec![Bad, Bad, Valid]);
    assert_eq!(agree(b"[\"a\n\"]\n"), vec![Bad, Bad]);
    assert_eq!(agree(b"[1]\n\0\0\0\0\n\0\0"), vec![Valid, Bad, Bad]);
    assert_eq!(agree(b"1\x0c\n\x0c\n\"\x0c\"\n[1,\x1a2]\n\x1a"), vec![Bad, Bad, Bad, Bad, Bad]);
    assert_eq!(agree(b""), vec![]);
    assert_eq!(agree(b"\n"), vec![Blank]);
}

#[test]
fn long_lines_and_many_lines() {
    let long = format!("{{\"k\": \"{}\", \"n\": [{}]}}", "ab\\\"c".repeat(3000), "1.5, ".repeat(2000) + "0");
    let mut input = Vec::new();
    for i in 0..300 {
        match i % 7 {
            0 => input.extend_from_slice(long.as_bytes()),
            3 => input.extend_from_slice(&long.as_bytes()[..long.len() / 2]),
            5 => input.extend_from_slice(b"{\"seq\": 1, \"s\": \"\\u00e9\"}"),
            _ => input.extend_from_slice(format!("[{i}, \"x\"]").as_bytes()),
        }
        input.push(b'\n');
    }
    let statuses = agree(&input);
    assert_eq!(statuses.iter().filter(|s| **s == Bad).count(), 43);
}

/// Pieces of JSON and of damage, glued at random.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\"k\"",
        "\"v\\\"\"",
        "\\",
        "\\u",
        "\\ud83d",
        "\\ude00",
        "00e9",
        "\\n",
        "1",
        "-",
        "0",
        ".5",
        "e+3",
        "true",
        "fals",
        "null",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "\u{e9}",
        "\x01",
        "\x0c",
        "\x1a",
        "\0",
        "{\"a\": [1, 2.5, \"x\"]}",
        "[true, null]",
        "\"\u{1F600}\"",
        "/",
        "x",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_with_the_scanner_on_glued_pieces(pieces in prop::collection::vec(piece(), 0..60)) {
        agree(pieces.concat().as_bytes());
    }

    #[test]
    fn agrees_with_the_scanner_on_damaged_events(at in 0usize..600, len in 0usize..4, with in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut input = b"{\"ts\":\"2026-11-23T15:00:00.000Z\",\"seq\":1000000,\"note\":\"caf\xc3\xa9 \\\"q\\\"\",\"meta\":{\"tags\":[\"live\",\"risk-ok\"],\"px\":-1.5e-3}}\n".repeat(5);
        let at = at.min(input.len());
        let end = (at + len).min(input.len());
        input.splice(at..end, with);
        agree(&input);
    }
}
