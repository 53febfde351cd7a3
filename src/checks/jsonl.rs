//! `[[file]]` with `format = "jsonl"`: the file exists, is writable, every
//! non-blank line parses, and with `schema` every line satisfies it. The
//! file is streamed in constant memory, whatever its size.
//!
//! Finding IDs: `file:<path>` (missing, not a regular file), `file:<path>:mode`
//! (not writable, via the file check's `regular_file`), `file:<path>:lines` (lines
//! that do not parse; a warning), `file:<path>:schema` (violations; critical).

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::json_integrity::push_schema_result;
use super::{files, severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::json::jsonl::{self, Status, Summary};
use crate::json::schema::{Schema, Violations};
use crate::manifest::{FileFormat, FileSpec};
use crate::safety::{ApplyCtx, CustomOp, Fix, Op, Phase};

pub struct JsonlCheck;

impl Check for JsonlCheck {
    fn kind(&self) -> Kind {
        Kind::Jsonl
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        for spec in ctx.manifest.files.iter().filter(|f| f.format == FileFormat::Jsonl) {
            let schema = spec.schema.as_ref().map(|s| Schema::load(ctx.root, s)).transpose()?;
            check_file(ctx, spec, schema.as_ref(), out);
        }
        Ok(())
    }
}

fn check_file(ctx: &CheckCtx, spec: &FileSpec, schema: Option<&Schema>, out: &mut Findings) {
    let id = Kind::Jsonl.id(spec.path.display());
    let critical = severity(spec.severity, Severity::Critical);
    let problem = |message: String| Finding::new(id.clone(), Area::Fs, critical, message);
    let path = match files::regular_file(ctx, spec, critical, out) {
        Ok(Some(path)) => path,
        Ok(None) if !spec.create => return out.push(problem(files::NOT_CREATED.into())),
        Ok(None) => {
            // An empty JSONL file is a valid one with no records.
            let op = Op::WriteFile { path: spec.path.clone(), contents: Vec::new(), mode: None, secret: false };
            let fix = Fix::new("create it empty", Phase::Files, vec![op]);
            return out.push(problem("file is missing".into()).with_fix(fix));
        }
        Err(finding) => return out.push(finding),
    };
    let result = crate::fsutil::open_regular(&path).and_then(|file| match schema {
        None => jsonl::check(file).map(|summary| (summary, None)),
        Some(schema) => check_with_schema(file, schema).map(|(summary, v)| (summary, Some(v))),
    });
    match result {
        Ok((summary, violations)) => {
            out.pass(id, Area::Fs);
            push_lines_result(spec, &summary, out);
            if let Some(violations) = violations {
                push_schema_result(spec, &violations, out);
            }
        }
        Err(e) => out.push(problem(format!("cannot read the file: {e}"))),
    }
}

/// Validates every line and checks each valid one against the schema.
fn check_with_schema(file: fs::File, schema: &Schema) -> std::io::Result<(Summary, Violations)> {
    let mut violations = Violations::default();
    let summary = jsonl::for_each_line(file, |line| {
        if line.status == Status::Valid {
            if let Ok(value) = serde_json::from_slice(line.text) {
                schema.check(&value, &format!("line {}: ", line.number), &mut violations);
            }
        }
        Ok(())
    })?;
    Ok((summary, violations))
}

fn push_lines_result(spec: &FileSpec, summary: &Summary, out: &mut Findings) {
    let id = Kind::Jsonl.id(format_args!("{}:lines", spec.path.display()));
    if summary.bad == 0 {
        return out.pass(id, Area::Fs);
    }
    let mut message = format!("{} of {} lines do not parse ({})", summary.bad, summary.lines, summary.bad_lines_text());
    if summary.torn_last {
        message.push_str("; the last line is torn (cut without its newline)");
    }
    let warning = severity(spec.severity, Severity::Warning);
    if !spec.salvage {
        message.push_str("; salvage = false: the file is not rewritten");
        return out.push(Finding::new(id, Area::Fs, warning, message));
    }
    let op = RepairOp { path: spec.path.clone(), bad: summary.bad, lines: summary.lines };
    let fix = Fix::new("move bad lines to quarantine", Phase::Files, vec![Op::Custom(Box::new(op))]);
    out.push(Finding::new(id, Area::Fs, warning, message).with_fix(fix));
}

/// The quarantine file for a JSONL file's bad lines.
fn bad_lines_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bad-lines");
    PathBuf::from(name)
}

/// Streams the file once: valid and blank lines to an atomic replacement,
/// bad lines (with their numbers) to the run's quarantine.
struct RepairOp {
    path: PathBuf,
    bad: u64,
    lines: u64,
}

impl CustomOp for RepairOp {
    fn describe(&self) -> Vec<String> {
        let quarantine = Path::new(crate::safety::STATE_DIR).join("quarantine/<run>").join(bad_lines_name(&self.path));
        vec![
            format!("quarantine {} (byte for byte)", self.path.display()),
            format!("move {} bad lines of {} to {}", self.bad, self.path.display(), quarantine.display()),
            format!("rewrite {} keeping its {} other lines in order", self.path.display(), self.lines - self.bad),
        ]
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        // The whole original is kept first (the safety rule, and what
        // rollback restores); the repair reads that copy, so the bad-lines
        // file and the new file derive from exactly the bytes kept.
        let copy = ctx.quarantine(&self.path)?.context("the file disappeared before it could be repaired")?;
        let (quarantine, quarantine_path) = ctx.quarantine_file(&bad_lines_name(&self.path))?;
        let mut bad_lines = BufWriter::with_capacity(1 << 20, quarantine);
        let mut kept = ctx.writer(&self.path)?;
        let summary = jsonl::repair(copy.file, &mut kept, &mut bad_lines)?;
        // The bad lines are durable before the file that lost them changes.
        bad_lines.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        kept.commit().with_context(|| format!("cannot replace {}", self.path.display()))?;
        let kept_lines = summary.lines - summary.bad;
        Ok(format!(
            "kept {kept_lines} line{}, moved {} bad ({}) to {}",
            if kept_lines == 1 { "" } else { "s" },
            summary.bad,
            summary.bad_lines_text(),
            quarantine_path.display()
        ))
    }
}
