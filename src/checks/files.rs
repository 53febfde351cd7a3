//! `[[file]]` with `format = "json"` or `"text"`: the file exists, is not
//! empty, holds an object with every key of its default, and is writable.
//! Existing values are never changed: missing keys are inserted into the
//! original text, so every byte the user wrote stays where it was.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::access::{self, Denied, Need};
use super::json_integrity::Verdict;
use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::fsutil;
use crate::manifest::{FileFormat, FileSpec};
use crate::safety::precondition::{Expect, Seen};
use crate::safety::{Fix, Op, Phase};

pub struct FileCheck;

impl Check for FileCheck {
    fn kind(&self) -> Kind {
        Kind::File
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        for spec in ctx.manifest.files.iter().filter(|f| f.format != FileFormat::Jsonl) {
            check_file(ctx, spec, out);
        }
        Ok(())
    }
}

/// The message for a missing `create = false` file.
pub(super) const NOT_CREATED: &str =
    "file is missing; create = false: the deployment provides it, preflight never creates it";

fn id(spec: &FileSpec) -> String {
    Kind::File.id(spec.path.display())
}

fn check_file(ctx: &CheckCtx, spec: &FileSpec, out: &mut Findings) {
    let critical = severity(spec.severity, Severity::Critical);
    let problem = |message: String| Finding::new(id(spec), Area::Fs, critical, message);
    let path = match regular_file(ctx, spec, critical, out) {
        Ok(Some(path)) => path,
        Ok(None) if !spec.create => return out.push(problem(NOT_CREATED.into())),
        Ok(None) => {
            let fix = write_default(spec, "write the default", Expect::Absent);
            return out.push(problem("file is missing".into()).with_fix(fix));
        }
        Err(finding) => return out.push(finding),
    };
    let (bytes, seen) = match Seen::read(&path) {
        Ok(read) => read,
        Err(e) => return out.push(problem(format!("cannot read the file: {e}"))),
    };
    match content_finding(spec, &bytes, &seen, critical) {
        Some(finding) => out.push(finding),
        None => out.pass(id(spec), Area::Fs),
    }
}

/// Resolves a declared file and settles what every format shares: a path
/// refused by the root, anything but a regular file (never opened: a FIFO or
/// a device could block), whether the app's account may write it (its
/// finding, `file:<path>:mode`, is pushed).
/// `Ok(None)` means the file is missing; `Err` is the finding to report.
pub(super) fn regular_file(
    ctx: &CheckCtx,
    spec: &FileSpec,
    critical: Severity,
    out: &mut Findings,
) -> Result<Option<std::path::PathBuf>, Finding> {
    let problem = |message: String| Finding::new(id(spec), Area::Fs, critical, message);
    let path = fsutil::resolve(ctx.root, &spec.path).map_err(|e| problem(format!("{e}; it is left alone")))?;
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(problem(format!("cannot inspect the file: {e}"))),
    };
    if !meta.is_file() {
        return Err(problem("exists but is not a regular file; preflight will not replace it".into()));
    }
    if spec.writable {
        writable(ctx, spec, critical, out);
    }
    Ok(Some(path))
}

/// The problem with the file's content, if any. A fix writes only while
/// the file is still what was read (`seen`, hashed here: the fix's content
/// derives from these bytes).
fn content_finding(spec: &FileSpec, bytes: &[u8], seen: &Seen, critical: Severity) -> Option<Finding> {
    let problem = |message: &str| Finding::new(id(spec), Area::Fs, critical, message);
    let unchanged = || Expect::Unchanged(seen.clone().with_hash(bytes));
    if spec.format == FileFormat::Text {
        let default_is_empty = spec.default.as_ref().and_then(Value::as_str).is_none_or(str::is_empty);
        return (bytes.is_empty() && !default_is_empty)
            .then(|| problem("file is empty").with_fix(write_default(spec, "write the default", unchanged())));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some(problem("file is empty").with_fix(write_default(spec, "write the default", unchanged())));
    }
    // The strict scanner finds damage (and proposes the salvage) before
    // any allocation: a corrupt file is never parsed into a `Value`.
    let top_keys = match super::json_integrity::judge(spec, bytes, seen, critical) {
        Verdict::Damaged(finding) => return Some(finding),
        Verdict::Valid { top_keys } => top_keys,
    };
    let Some(Value::Object(default)) = &spec.default else {
        return None;
    };
    // The common case, every key present, is settled without building a
    // `Value` (which takes about 15 times the file's size in memory).
    if top_keys.is_some_and(|keys| default.keys().all(|k| keys.contains(k))) {
        return None;
    }
    let value: Option<Value> = serde_json::from_slice(bytes).ok();
    let keys: Vec<String> = match &value {
        Some(Value::Object(actual)) => actual.keys().cloned().collect(),
        Some(other) => {
            let message = format!(
                "top level is {}, but the default is an object; it may belong to another program, so it is left alone",
                kind(other)
            );
            return Some(problem(&message));
        }
        // Valid to the scanner but deeper than serde_json's nesting limit:
        // the scanner has no limit, so its top-level keys decide.
        None => match super::json_integrity::top_keys(bytes) {
            Some(keys) => keys,
            None => return Some(problem(
                "top level is not an object, but the default is; it may belong to another program, so it is left alone",
            )),
        },
    };
    let missing: Vec<(&String, &Value)> = default.iter().filter(|(k, _)| !keys.contains(k)).collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    let message = if keys.is_empty() {
        format!("is an empty object; the default has {}", names.join(", "))
    } else {
        format!("is missing key{} {}", if names.len() == 1 { "" } else { "s" }, names.join(", "))
    };
    let text = String::from_utf8_lossy(bytes);
    let reserialized = || match &value {
        Some(Value::Object(actual)) => Some(reserialize(actual, &missing)),
        _ => None,
    };
    let Some(merged) = insert_members(&text, &missing).or_else(reserialized) else {
        return Some(problem(&format!("{message}; heal cannot insert them into this document")));
    };
    let fix = Fix::new(
        format!("add missing key{}", if names.len() == 1 { "" } else { "s" }),
        Phase::Files,
        vec![Op::WriteFile {
            path: spec.path.clone(),
            contents: merged.into_bytes(),
            mode: None,
            secret: false,
            expect: unchanged(),
        }],
    );
    Some(problem(&message).with_fix(fix))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn write_default(spec: &FileSpec, action: &str, expect: Expect) -> Fix {
    let contents = match (&spec.default, spec.format) {
        (Some(Value::String(s)), FileFormat::Text) => s.clone().into_bytes(),
        (None, FileFormat::Text) => Vec::new(),
        (Some(v), _) => pretty(v),
        (None, _) => b"{}\n".to_vec(),
    };
    let op = Op::WriteFile { path: spec.path.clone(), contents, mode: None, secret: false, expect };
    Fix::new(action, Phase::Files, vec![op])
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    bytes
}

/// Inserts `additions` before the closing brace of the top-level object,
/// leaving every other byte as it was. `None` when the result would not
/// parse, so the caller falls back to re-serialising.
fn insert_members(text: &str, additions: &[(&String, &Value)]) -> Option<String> {
    let close = text.rfind('}')?;
    let head = text[..close].trim_end();
    let empty = head.ends_with('{');
    let indent = member_indent(head).unwrap_or("  ");
    let mut out = head.to_string();
    for (i, (key, value)) in additions.iter().enumerate() {
        if !(empty && i == 0) {
            out.push(',');
        }
        out.push('\n');
        out.push_str(indent);
        out.push_str(&serde_json::to_string(key).ok()?);
        out.push_str(": ");
        out.push_str(&serde_json::to_string(value).ok()?);
    }
    out.push('\n');
    out.push_str(&text[close..]);
    // The scanner, not serde_json: it checks documents of any depth.
    super::json_integrity::top_keys(out.as_bytes())?;
    Some(out)
}

/// The indentation of the object's first member line, if it has one.
fn member_indent(head: &str) -> Option<&str> {
    let line = head.lines().skip(1).find(|l| l.trim_start().starts_with('"'))?;
    Some(&line[..line.len() - line.trim_start().len()])
}

fn reserialize(actual: &Map<String, Value>, additions: &[(&String, &Value)]) -> String {
    let mut merged = actual.clone();
    for (key, value) in additions {
        merged.insert((*key).clone(), (*value).clone());
    }
    String::from_utf8_lossy(&pretty(&Value::Object(merged))).into_owned()
}

/// Whether the app's account may write a file it must write.
fn writable(ctx: &CheckCtx, spec: &FileSpec, critical: Severity, out: &mut Findings) {
    let id = format!("{}:mode", id(spec));
    let declared: Vec<PathBuf> = ctx.manifest.dirs.iter().map(|d| d.path.clone()).collect();
    let denied = match ctx.who() {
        Ok(who) => access::check(ctx.root, &spec.path, Need::File, who, &declared),
        Err(why) => Some(Denied { message: format!("access cannot be checked: {why}"), fix: None }),
    };
    match denied {
        None => {}
        Some(denied) => {
            let mut finding = Finding::new(id, Area::Fs, critical, format!("file is not writable: {}", denied.message));
            finding.fix = denied.fix;
            out.push(finding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FULL: &[u8] = br#"{"open_positions": [], "closed_positions": []}"#;

    fn seen_of(bytes: &[u8]) -> Seen {
        Seen { dev: 1, ino: 1, size: bytes.len() as u64, mtime: 0, sha256: None }
    }

    fn additions(value: &Value) -> Vec<(&String, &Value)> {
        value.as_object().unwrap().iter().collect()
    }

    #[test]
    fn insert_members_keeps_the_original_bytes() {
        let original = "{\n    \"open_positions\": [1.50, 2],\n    \"note\": \"x\"\n}\n";
        let extra = json!({"closed_positions": []});
        let merged = insert_members(original, &additions(&extra)).unwrap();
        assert_eq!(
            merged,
            "{\n    \"open_positions\": [1.50, 2],\n    \"note\": \"x\",\n    \"closed_positions\": []\n}\n"
        );
    }

    #[test]
    fn insert_members_fills_an_empty_object() {
        let extra = json!({"a": 1, "b": {"c": []}});
        let merged = insert_members("{}", &additions(&extra)).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&merged).unwrap(), extra);
    }

    #[test]
    fn content_finding_reports_missing_keys_and_keeps_values() {
        let spec = FileSpec {
            path: "p.json".into(),
            format: FileFormat::Json,
            default: Some(json!({"open_positions": [], "closed_positions": []})),
            schema: None,
            writable: true,
            salvage: true,
            create: true,
            severity: None,
        };
        let finding = content_finding(
            &spec,
            br#"{"open_positions": [{"s": "X"}]}"#,
            &seen_of(br#"{"open_positions": [{"s": "X"}]}"#),
            Severity::Critical,
        )
        .unwrap();
        assert!(finding.message.contains("closed_positions"));
        let Some(Op::WriteFile { contents, .. }) = finding.fix.unwrap().ops.into_iter().next() else {
            panic!("write fix")
        };
        let merged: Value = serde_json::from_slice(&contents).unwrap();
        assert_eq!(merged, json!({"open_positions": [{"s": "X"}], "closed_positions": []}));
        assert!(content_finding(&spec, FULL, &seen_of(FULL), Severity::Critical).is_none());
    }

    #[test]
    fn depth_does_not_hide_a_missing_key() {
        let spec = FileSpec {
            path: "p.json".into(),
            format: FileFormat::Json,
            default: Some(json!({"a": [], "b": 0})),
            schema: None,
            writable: true,
            salvage: true,
            create: true,
            severity: None,
        };
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(130), "]".repeat(130));
        let finding = content_finding(&spec, deep.as_bytes(), &seen_of(deep.as_bytes()), Severity::Critical)
            .expect("key b is missing");
        assert!(finding.message.contains("missing key b"), "{}", finding.message);
        let Some(Op::WriteFile { contents, .. }) = finding.fix.unwrap().ops.into_iter().next() else {
            panic!("write fix")
        };
        let merged = String::from_utf8(contents).unwrap();
        assert!(merged.starts_with(&deep[..deep.len() - 1]) && merged.contains("\"b\": 0"), "{merged}");
        let complete = format!("{{\"b\": 1, \"a\": {}1{}}}", "[".repeat(130), "]".repeat(130));
        assert!(
            content_finding(&spec, complete.as_bytes(), &seen_of(complete.as_bytes()), Severity::Critical).is_none()
        );
    }

    #[test]
    fn a_top_level_array_is_left_alone() {
        let spec = FileSpec {
            path: "p.json".into(),
            format: FileFormat::Json,
            default: Some(json!({"a": 1})),
            schema: None,
            writable: true,
            salvage: true,
            create: true,
            severity: None,
        };
        let finding = content_finding(&spec, b"[1, 2]", &seen_of(b"[1, 2]"), Severity::Critical).unwrap();
        assert!(finding.fix.is_none());
        assert!(finding.message.contains("an array"));
    }
}
