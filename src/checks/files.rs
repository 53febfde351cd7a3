//! `[[file]]` with `format = "json"` or `"text"`: the file exists, is not
//! empty, holds an object with every key of its default, and is writable.
//! Existing values are never changed: missing keys are inserted into the
//! original text, so every byte the user wrote stays where it was.

use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Map, Value};

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::fsutil;
use crate::manifest::{FileFormat, FileSpec};
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
            check_file(ctx.root, spec, out);
        }
        Ok(())
    }
}

fn id(spec: &FileSpec) -> String {
    Kind::File.id(spec.path.display())
}

fn check_file(root: &Path, spec: &FileSpec, out: &mut Findings) {
    let critical = severity(spec.severity, Severity::Critical);
    let problem = |message: String| Finding::new(id(spec), Area::Fs, critical, message);
    let path = match regular_file(root, spec, critical, out) {
        Ok(Some(path)) => path,
        Ok(None) => {
            return out.push(problem("file is missing".into()).with_fix(write_default(spec, "write the default")))
        }
        Err(finding) => return out.push(finding),
    };
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) => return out.push(problem(format!("cannot read the file: {e}"))),
    };
    match content_finding(spec, &bytes, critical) {
        Some(finding) => out.push(finding),
        None => out.pass(id(spec), Area::Fs),
    }
}

/// Resolves a declared file and settles what every format shares: a path
/// refused by the root, anything but a regular file (never opened: a FIFO or
/// a device could block), the owner's write bit (its finding is pushed).
/// `Ok(None)` means the file is missing; `Err` is the finding to report.
pub(super) fn regular_file(
    root: &Path,
    spec: &FileSpec,
    critical: Severity,
    out: &mut Findings,
) -> Result<Option<std::path::PathBuf>, Finding> {
    let problem = |message: String| Finding::new(id(spec), Area::Fs, critical, message);
    let path = fsutil::resolve(root, &spec.path).map_err(|e| problem(format!("{e}; it is left alone")))?;
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(problem(format!("cannot inspect the file: {e}"))),
    };
    if !meta.is_file() {
        return Err(problem("exists but is not a regular file; preflight will not replace it".into()));
    }
    if spec.writable {
        if let Some(finding) = writable_finding(spec, &path, &meta, critical) {
            out.push(finding);
        }
    }
    Ok(Some(path))
}

/// The problem with the file's content, if any.
fn content_finding(spec: &FileSpec, bytes: &[u8], critical: Severity) -> Option<Finding> {
    let problem = |message: &str| Finding::new(id(spec), Area::Fs, critical, message);
    if spec.format == FileFormat::Text {
        let default_is_empty = spec.default.as_ref().and_then(Value::as_str).is_none_or(str::is_empty);
        return (bytes.is_empty() && !default_is_empty)
            .then(|| problem("file is empty").with_fix(write_default(spec, "write the default")));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some(problem("file is empty").with_fix(write_default(spec, "write the default")));
    }
    // The strict scanner finds damage (and proposes the salvage) before
    // any allocation: a corrupt file is never parsed into a `Value`.
    if let Some(finding) = super::json_integrity::damaged(spec, bytes, critical) {
        return Some(finding);
    }
    let Some(Value::Object(default)) = &spec.default else {
        return None;
    };
    // The common case, every key present, is settled without building a
    // `Value` (which takes about 15 times the file's size in memory).
    if super::json_integrity::has_keys(bytes, default) {
        return None;
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        // Valid to the scanner, so only nesting deeper than serde_json's
        // limit gets here: a valid file, whose keys go unchecked.
        Err(_) => return None,
    };
    let Value::Object(actual) = &value else {
        let message = format!(
            "top level is {}, but the default is an object; it may belong to another program, so it is left alone",
            kind(&value)
        );
        return Some(problem(&message));
    };
    let missing: Vec<(&String, &Value)> = default.iter().filter(|(k, _)| !actual.contains_key(*k)).collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    let message = if actual.is_empty() {
        format!("is an empty object; the default has {}", names.join(", "))
    } else {
        format!("is missing key{} {}", if names.len() == 1 { "" } else { "s" }, names.join(", "))
    };
    let text = String::from_utf8_lossy(bytes);
    let merged = insert_members(&text, &missing).unwrap_or_else(|| reserialize(actual, &missing));
    let fix = Fix::new(
        format!("add missing key{}", if names.len() == 1 { "" } else { "s" }),
        Phase::Files,
        vec![Op::WriteFile { path: spec.path.clone(), contents: merged.into_bytes(), mode: None, secret: false }],
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

fn write_default(spec: &FileSpec, action: &str) -> Fix {
    let contents = match (&spec.default, spec.format) {
        (Some(Value::String(s)), FileFormat::Text) => s.clone().into_bytes(),
        (None, FileFormat::Text) => Vec::new(),
        (Some(v), _) => pretty(v),
        (None, _) => b"{}\n".to_vec(),
    };
    Fix::new(action, Phase::Files, vec![Op::WriteFile { path: spec.path.clone(), contents, mode: None, secret: false }])
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
    serde_json::from_str::<Value>(&out).ok()?;
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

/// A file the application must write but cannot.
fn writable_finding(spec: &FileSpec, path: &Path, meta: &Metadata, critical: Severity) -> Option<Finding> {
    let mode = fsutil::mode_of(meta);
    let id = format!("{}:mode", id(spec));
    if meta.uid() == fsutil::current_uid() {
        if mode & 0o200 != 0 {
            return None;
        }
        let fix =
            Fix::new("chmod u+w", Phase::Files, vec![Op::SetMode { path: spec.path.clone(), mode: mode | 0o200 }]);
        let message = format!("file is not writable (mode {mode:04o})");
        return Some(Finding::new(id, Area::Fs, critical, message).with_fix(fix));
    }
    if can_write(path) {
        return None;
    }
    let message =
        format!("file is not writable by this user and is owned by uid {}; change its owner or mode", meta.uid());
    Some(Finding::new(id, Area::Fs, critical, message))
}

fn can_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c_path is a valid NUL-terminated string for the call's duration.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let finding = content_finding(&spec, br#"{"open_positions": [{"s": "X"}]}"#, Severity::Critical).unwrap();
        assert!(finding.message.contains("closed_positions"));
        let Some(Op::WriteFile { contents, .. }) = finding.fix.unwrap().ops.into_iter().next() else {
            panic!("write fix")
        };
        let merged: Value = serde_json::from_slice(&contents).unwrap();
        assert_eq!(merged, json!({"open_positions": [{"s": "X"}], "closed_positions": []}));
        assert!(
            content_finding(&spec, br#"{"open_positions": [], "closed_positions": []}"#, Severity::Critical).is_none()
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
        let finding = content_finding(&spec, b"[1, 2]", Severity::Critical).unwrap();
        assert!(finding.fix.is_none());
        assert!(finding.message.contains("an array"));
    }
}
