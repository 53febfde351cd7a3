//! JSON documents beyond presence and keys: salvage of a file that does
//! not parse (called by the file check), and JSON Schema invariants.
//!
//! Finding IDs: a document that does not parse is reported on the file's
//! own ID, `file:<path>`; schema violations on `file:<path>:schema`, so
//! `--only file:<path>:schema` selects just the invariants.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::json::salvage::{self, Outcome, Salvage};
use crate::json::scan::Kind as JsonKind;
use crate::json::schema::{Schema, Violations};
use crate::manifest::{FileFormat, FileSpec};
use crate::safety::precondition::Seen;
use crate::safety::{ApplyCtx, CustomOp, Fix, Op, Phase, Task};

/// What one pass of the strict scanner says about a JSON file.
pub enum Verdict {
    /// Damaged: the finding, with its salvage fix when one is safe.
    Damaged(Finding),
    /// Valid; the keys of its top level when that is an object.
    Valid { top_keys: Option<Vec<String>> },
}

/// Judges a JSON file with the strict scanner. It runs before any parse
/// into a `Value`, so a corrupt file costs one pass over its bytes and no
/// allocation per value, and a valid one is not scanned again for its keys.
pub fn judge(spec: &FileSpec, bytes: &[u8], seen: &Seen, critical: Severity) -> Verdict {
    match salvage::salvage(bytes) {
        Outcome::Valid { top_keys } => Verdict::Valid { top_keys },
        Outcome::Damaged(salvage) => Verdict::Damaged(damaged(spec, bytes, seen, critical, salvage)),
    }
}

fn damaged(spec: &FileSpec, bytes: &[u8], seen: &Seen, critical: Severity, mut salvage: Salvage) -> Finding {
    let id = Kind::JsonIntegrity.id(spec.path.display());
    let (line, column) = line_column(bytes, salvage.damage_offset);
    let mut message = format!(
        "is not valid JSON: {} at {} (line {line}, column {column})",
        salvage.problem.describe(),
        salvage::show_pointer(&salvage.pointer)
    );
    let default = spec.default.as_ref();
    if !salvage.merge_default(default) {
        message.push_str(&format!(
            "; what can be salvaged is {}, but the default is {}: it may belong to another program, so it is left alone",
            kind_name(salvage.top_kind),
            default.map_or("absent", value_kind)
        ));
        return Finding::new(id, Area::Fs, critical, message);
    }
    if !spec.salvage {
        // A partial document can be worse than none for some programs.
        message.push_str("; salvage = false: it is not rewritten; restore it from a backup");
        return Finding::new(id, Area::Fs, critical, message);
    }
    message.push_str(&format!("; {}", salvage.effect()));
    let op = SalvageOp { path: spec.path.clone(), plan: salvage, seen: seen.clone().with_hash(bytes) };
    Finding::new(id, Area::Fs, critical, message).with_fix(Fix::new(
        "salvage the valid prefix",
        Phase::Files,
        vec![Op::Custom(Box::new(op))],
    ))
}

/// The top-level keys of a valid JSON object, at any nesting depth;
/// `None` when `bytes` is not one.
pub fn top_keys(bytes: &[u8]) -> Option<Vec<String>> {
    salvage::object_keys(bytes)
}

/// 1-based line and byte column of `offset`.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let column = before.len() - memchr::memrchr(b'\n', before).map_or(0, |nl| nl + 1) + 1;
    (line, column)
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        _ => "a single value",
    }
}

fn kind_name(kind: Option<JsonKind>) -> &'static str {
    match kind {
        Some(JsonKind::Array) => "an array",
        Some(JsonKind::Object) => "an object",
        None => "a single value",
    }
}

/// Quarantines the original byte for byte, then writes the salvaged and
/// merged document atomically, streamed from the quarantined copy, which
/// holds exactly the bytes (same SHA-256) the salvage was planned on.
struct SalvageOp {
    path: PathBuf,
    /// The salvage the check planned, default members merged in.
    plan: Salvage,
    /// The file the check read: the salvage goes ahead only on it.
    seen: Seen,
}

impl CustomOp for SalvageOp {
    fn describe(&self) -> Vec<String> {
        let kept = self.plan.head.len() + self.plan.tail.len();
        vec![
            format!("quarantine {} (byte for byte)", self.path.display()),
            format!("write {} ({kept} bytes; {})", self.path.display(), self.plan.summary()),
        ]
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        // Two passes over the bytes: the copy kept, then the salvaged
        // prefix written from it.
        let head = self.plan.head.start as u64..self.plan.head.end as u64;
        let total = self.seen.size + (head.end - head.start);
        let task = ctx.progress().task(&format!("salvage {}", self.path.display()), Some(total.max(1)));
        let result = self.run(ctx, task.as_ref(), head);
        task.finish();
        result
    }
}

impl SalvageOp {
    fn run(&self, ctx: &mut ApplyCtx, task: &dyn Task, head: Range<u64>) -> anyhow::Result<String> {
        // `None`: this run kept the original already, and the file is
        // unchanged since; it is read where it is.
        // The quarantine compared the copy's hash with the check's: these
        // are the very bytes the plan was made on, so they are not scanned
        // again, only streamed.
        anyhow::ensure!(self.seen.sha256.is_some(), "no hash of the checked content; the file is left alone");
        let copy = ctx.quarantine_checked(&self.path, &self.seen, task)?.unwrap_or_else(|| self.path.clone());
        task.advance(self.seen.size);
        let file = ctx.read(&copy)?.with_context(|| format!("{} is gone", copy.display()))?;
        let tail = [self.plan.tail.as_slice(), b"\n"].concat();
        let written = |n: u64| task.advance(self.seen.size + n);
        ctx.commit_spliced(&self.path, &self.seen, &file, head, &tail, &written)?;
        Ok(format!("{}; original kept at {}", self.plan.summary(), copy.display()))
    }
}

/// `schema = "…"` on a `format = "json"` file: violations are critical and
/// never fixed. Files that are missing or do not parse are left to the
/// file check; a schema that does not load stops the run.
pub struct JsonSchemaCheck;

impl Check for JsonSchemaCheck {
    fn kind(&self) -> Kind {
        Kind::JsonIntegrity
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        for spec in ctx.manifest.files.iter().filter(|f| f.format == FileFormat::Json) {
            let Some(schema_path) = &spec.schema else { continue };
            let schema = Schema::load(ctx.root, schema_path)?;
            let value = match read_json(ctx.root, &spec.path) {
                Read::Value(value) => value,
                Read::Unusable => continue,
                Read::TooDeep => {
                    // Unchecked is not the same as satisfied: say so.
                    let id = Kind::JsonIntegrity.id(format_args!("{}:schema", spec.path.display()));
                    let message = "is nested deeper than the schema validator reads (128 levels); its invariants \
                                   cannot be checked";
                    out.push(Finding::new(id, Area::Fs, severity(spec.severity, Severity::Critical), message));
                    continue;
                }
            };
            let mut violations = Violations::default();
            schema.check(&value, "", &mut violations);
            push_schema_result(spec, &violations, out);
        }
        Ok(())
    }
}

/// The finding (or pass) for a file's schema violations.
pub fn push_schema_result(spec: &FileSpec, violations: &Violations, out: &mut Findings) {
    let id = Kind::JsonIntegrity.id(format_args!("{}:schema", spec.path.display()));
    if violations.total == 0 {
        out.pass(id, Area::Fs);
    } else {
        let critical = severity(spec.severity, Severity::Critical);
        out.push(Finding::new(id, Area::Fs, critical, violations.message()));
    }
}

/// A declared JSON file as the schema check reads it.
enum Read {
    Value(Value),
    /// Missing or damaged: the file check reports it.
    Unusable,
    /// Valid, but deeper than serde_json's recursion limit.
    TooDeep,
}

fn read_json(root: &Path, rel: &Path) -> Read {
    let Ok(path) = crate::fsutil::resolve(root, rel) else { return Read::Unusable };
    // A FIFO or device in its place is refused at once, never waited on.
    let Ok(bytes) = crate::fsutil::read_regular(&path) else { return Read::Unusable };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Read::Value(value),
        Err(_) if matches!(salvage::salvage(&bytes), Outcome::Valid { .. }) => Read::TooDeep,
        Err(_) => Read::Unusable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::progress::recording::Recording;

    #[test]
    fn a_salvage_reports_its_passes_over_the_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("positions.json");
        let rows: Vec<String> = (0..200_000).map(|i| format!("{{\"id\": {i}, \"side\": \"long\"}}")).collect();
        let bytes = format!("{{\"open\": [{}, {{\"id\": 12", rows.join(", ")).into_bytes();
        std::fs::write(&path, &bytes).unwrap();
        let Outcome::Damaged(mut plan) = salvage::salvage(&bytes) else { panic!("damaged") };
        assert!(plan.merge_default(Some(&serde_json::json!({"open": []}))));
        let seen = Seen::of(&std::fs::metadata(&path).unwrap()).with_hash(&bytes);
        let total = bytes.len() as u64 + plan.head.len() as u64;
        let op = SalvageOp { path: "positions.json".into(), plan, seen };
        let progress = Recording::default();
        let mut ctx = ApplyCtx::new(root.path(), "r").with_progress(&progress);
        op.apply(&mut ctx).unwrap();
        // About 6 MB, copied and then written in 1 MiB blocks.
        assert_eq!(progress.assert_task("salvage positions.json", 4), Some(total));
        assert_eq!(progress.advances("salvage").last(), Some(&total));
        let written = std::fs::read(&path).unwrap();
        assert!(serde_json::from_slice::<Value>(&written).is_ok(), "the salvage is valid JSON");
    }
}
