//! JSON documents beyond presence and keys: salvage of a file that does
//! not parse (called by the file check), and JSON Schema invariants.
//!
//! Finding IDs: a document that does not parse is reported on the file's
//! own ID, `file:<path>`; schema violations on `file:<path>:schema`, so
//! `--only file:<path>:schema` selects just the invariants.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Severity};
use crate::heal::{ApplyCtx, CustomOp, Fix, Op, Phase};
use crate::json::salvage::{self, Outcome, Salvage};
use crate::json::scan::Kind;
use crate::json::schema::{Schema, Violations};
use crate::json::stream_write::AtomicWriter;
use crate::manifest::{FileFormat, FileSpec};

/// The finding for a JSON file that the strict scanner finds damaged,
/// with its salvage fix; `None` when the document is valid. It runs before
/// any parse into a `Value`, so a corrupt file costs one pass over its
/// bytes and no allocation per value.
pub fn damaged(spec: &FileSpec, bytes: &[u8], critical: Severity) -> Option<Finding> {
    let Outcome::Damaged(mut salvage) = salvage::salvage(bytes) else {
        return None;
    };
    let id = format!("file:{}", spec.path.display());
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
    message.push_str(&format!("; {}", salvage.effect()));
    let op = SalvageOp { path: spec.path.clone(), plan: salvage };
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

fn kind_name(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Array) => "an array",
        Some(Kind::Object) => "an object",
        None => "a single value",
    }
}

/// Quarantines the original byte for byte, then writes the salvaged and
/// merged document atomically. What is written is read from the
/// quarantined copy, which must be exactly what the check saw (length and
/// fingerprint), so it derives from exactly what is kept; the copy is not
/// scanned again.
struct SalvageOp {
    path: PathBuf,
    /// The salvage as the check saw it, merged with the default.
    plan: Salvage,
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
        let copy = ctx.quarantine(&self.path)?.context("the file disappeared before it could be salvaged")?;
        let input = std::fs::File::open(&copy).with_context(|| format!("cannot read {}", copy.display()))?;
        let target = ctx.resolve(&self.path)?;
        let mut writer =
            AtomicWriter::create(&target).with_context(|| format!("cannot write {}", self.path.display()))?;
        if !self.plan.write_from(input, &mut writer).with_context(|| format!("cannot read {}", copy.display()))? {
            // Dropping the writer removes its temporary file: nothing changes.
            anyhow::bail!(
                "{} changed since it was checked; left as it is (a copy stays in quarantine)",
                self.path.display()
            );
        }
        writer.write_all(b"\n")?;
        writer.commit().with_context(|| format!("cannot replace {}", self.path.display()))?;
        let shown = copy.strip_prefix(ctx.root()).unwrap_or(&copy);
        Ok(format!("{}; original kept at {}", self.plan.summary(), shown.display()))
    }
}

/// `schema = "…"` on a `format = "json"` file: violations are critical and
/// never fixed. Files that are missing or do not parse are left to the
/// file check; a schema that does not load stops the run.
pub struct JsonSchemaCheck;

impl Check for JsonSchemaCheck {
    fn name(&self) -> &'static str {
        "file.schema"
    }

    fn id_prefix(&self) -> &'static str {
        "file:"
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        for spec in ctx.manifest.files.iter().filter(|f| f.format == FileFormat::Json) {
            let Some(schema_path) = &spec.schema else { continue };
            let schema = Schema::load(ctx.root, schema_path)?;
            let Some(value) = read_json(ctx.root, &spec.path) else { continue };
            let mut violations = Violations::default();
            schema.check(&value, "", &mut violations);
            push_schema_result(spec, &violations, out);
        }
        Ok(())
    }
}

/// The finding (or pass) for a file's schema violations.
pub fn push_schema_result(spec: &FileSpec, violations: &Violations, out: &mut Findings) {
    let id = format!("file:{}:schema", spec.path.display());
    if violations.total == 0 {
        out.pass(id, Area::Fs);
    } else {
        let critical = severity(spec.severity, Severity::Critical);
        out.push(Finding::new(id, Area::Fs, critical, violations.message()));
    }
}

/// The parsed document, or `None` when it is missing or does not parse.
fn read_json(root: &Path, rel: &Path) -> Option<Value> {
    let path = crate::fsutil::resolve(root, rel).ok()?;
    if !std::fs::metadata(&path).ok()?.is_file() {
        return None;
    }
    serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
}
