//! JSON documents beyond presence and keys: salvage of a file that does
//! not parse (called by the file check), and JSON Schema invariants.
//!
//! Finding IDs: a document that does not parse is reported on the file's
//! own ID, `file:<path>`; schema violations on `file:<path>:schema`, so
//! `--only file:<path>:schema` selects just the invariants.

use std::io::{Read as _, Write};
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

/// The finding for a JSON file that the strict scanner finds damaged,
/// with its salvage fix; `None` when the document is valid. It runs before
/// any parse into a `Value`, so a corrupt file costs one pass over its
/// bytes and no allocation per value.
pub fn damaged(spec: &FileSpec, bytes: &[u8], seen: &Seen, critical: Severity) -> Option<Finding> {
    let Outcome::Damaged(mut salvage) = salvage::salvage(bytes) else {
        return None;
    };
    let id = Kind::JsonIntegrity.id(spec.path.display());
    let (line, column) = line_column(bytes, salvage.damage_offset);
    let mut message = format!(
        "is not valid JSON: {} at {} (line {line}, column {column})",
        salvage.problem.describe(),
        salvage::show_pointer(&salvage.pointer)
    );
    let default = spec.default.clone();
    if !salvage.merge_default(default.as_ref()) {
        message.push_str(&format!(
            "; what can be salvaged is {}, but the default is {}: it may belong to another program, so it is left alone",
            kind_name(salvage.top_kind),
            default.as_ref().map_or("absent", value_kind)
        ));
        return Some(Finding::new(id, Area::Fs, critical, message));
    }
    if !spec.salvage {
        // A partial document can be worse than none for some programs.
        message.push_str("; salvage = false: it is not rewritten; restore it from a backup");
        return Some(Finding::new(id, Area::Fs, critical, message));
    }
    message.push_str(&format!("; {}", salvage.effect()));
    let op = SalvageOp { path: spec.path.clone(), default, plan: salvage, seen: seen.clone().with_hash(bytes) };
    Some(Finding::new(id, Area::Fs, critical, message).with_fix(Fix::new(
        "salvage the valid prefix",
        Phase::Files,
        vec![Op::Custom(Box::new(op))],
    )))
}

/// Whether `bytes` is a valid JSON object holding every key of `default`,
/// decided by the scanner alone (no `Value` is built).
pub fn has_keys(bytes: &[u8], default: &serde_json::Map<String, Value>) -> bool {
    salvage::object_keys(bytes).is_some_and(|keys| default.keys().all(|k| keys.contains(k)))
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
/// merged document atomically. The salvage is computed again from the
/// quarantined copy, so what is written derives from exactly what is kept.
struct SalvageOp {
    path: PathBuf,
    default: Option<Value>,
    /// The salvage as the check saw it, for the plan.
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
        // Four passes over the file's bytes: the copy kept, the read, the
        // salvage, the write (the hash of what was written is not counted).
        let size = self.seen.size.max(1);
        let task = ctx.progress().task(&format!("salvage {}", self.path.display()), Some(4 * size));
        let result = self.run(ctx, task.as_ref(), size);
        task.finish();
        result
    }
}

/// Read and written at a time, so that the progress moves.
const PIECE: usize = 8 << 20;

impl SalvageOp {
    fn run(&self, ctx: &mut ApplyCtx, task: &dyn Task, size: u64) -> anyhow::Result<String> {
        // `None`: this run kept the original already, and the file is
        // unchanged since; it is read where it is.
        let copy = ctx.quarantine_checked(&self.path, &self.seen, task)?.unwrap_or_else(|| self.path.clone());
        task.advance(size);
        let mut bytes = Vec::with_capacity(usize::try_from(self.seen.size).unwrap_or_default());
        let mut file = ctx.read(&copy)?.with_context(|| format!("{} is gone", copy.display()))?;
        while (&mut file)
            .take(PIECE as u64)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", copy.display()))?
            > 0
        {
            task.advance(size + (bytes.len() as u64).min(size));
        }
        let Outcome::Damaged(mut salvage) = salvage::salvage(&bytes) else {
            return Ok("the file is valid now; left as it is (a copy stays in quarantine)".into());
        };
        task.advance(3 * size);
        if !salvage.merge_default(self.default.as_ref()) {
            anyhow::bail!("the salvaged top level is not an object; the file is left alone");
        }
        let mut writer = ctx.writer(&self.path)?;
        let mut written = 0;
        for piece in bytes[salvage.head.clone()].chunks(PIECE) {
            writer.write_all(piece)?;
            written += piece.len() as u64;
            task.advance(3 * size + written.min(size));
        }
        writer.write_all(&salvage.tail)?;
        writer.write_all(b"\n")?;
        let staged = writer.stage().with_context(|| format!("cannot write {}", self.path.display()))?;
        ctx.commit_staged(&self.path, staged, &self.seen)?;
        task.advance(4 * size);
        Ok(format!("{}; original kept at {}", salvage.summary(), copy.display()))
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
    let Ok(mut file) = crate::fsutil::open_regular(&path) else { return Read::Unusable };
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Read::Unusable;
    }
    match serde_json::from_slice(&bytes) {
        Ok(value) => Read::Value(value),
        Err(_) if matches!(salvage::salvage(&bytes), Outcome::Valid) => Read::TooDeep,
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
        let Outcome::Damaged(plan) = salvage::salvage(&bytes) else { panic!("damaged") };
        let seen = Seen::of(&std::fs::metadata(&path).unwrap()).with_hash(&bytes);
        let default = Some(serde_json::json!({"open": []}));
        let op = SalvageOp { path: "positions.json".into(), default, plan, seen };
        let progress = Recording::default();
        let mut ctx = ApplyCtx::new(root.path(), "r").with_progress(&progress);
        op.apply(&mut ctx).unwrap();
        let size = bytes.len() as u64;
        // About 6 MB: read and written in pieces of `PIECE`.
        assert_eq!(progress.assert_task("salvage positions.json", 4), Some(4 * size));
        assert_eq!(progress.advances("salvage").last(), Some(&(4 * size)));
        let written = std::fs::read(&path).unwrap();
        assert!(serde_json::from_slice::<Value>(&written).is_ok(), "the salvage is valid JSON");
    }
}
