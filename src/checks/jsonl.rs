//! `[[file]]` with `format = "jsonl"`: the file exists, is writable, every
//! non-blank line parses, and with `schema` every line satisfies it. The
//! file is streamed in constant memory, whatever its size.
//!
//! Finding IDs: `file:<path>` (missing, not a regular file), `file:<path>:mode`
//! (not writable, via the file check's `regular_file`), `file:<path>:lines` (lines
//! that do not parse; a warning), `file:<path>:schema` (violations; critical).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::json_integrity::push_schema_result;
use super::{files, severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::json::jsonl::{self, Status, Summary};
use crate::json::schema::{Schema, Violations};
use crate::manifest::{FileFormat, FileSpec};
use crate::safety::live::Lines;
use crate::safety::precondition::{Expect, Seen};
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
            let op = Op::WriteFile {
                path: spec.path.clone(),
                contents: Vec::new(),
                mode: None,
                secret: false,
                expect: Expect::Absent,
            };
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
            push_lines_result(spec, &path, &summary, ctx.options.fingerprint_logs, out);
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

fn push_lines_result(spec: &FileSpec, path: &Path, summary: &Summary, fingerprint: bool, out: &mut Findings) {
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
    let finding = Finding::new(id, Area::Fs, warning, message);
    // What the repair may rewrite: the bytes read here (lines appended
    // later are carried over as they are).
    let seen = if fingerprint {
        Seen::prefix(path, summary.bytes)
    } else {
        crate::fsutil::open_regular(path)
            .and_then(|f| f.metadata())
            .map(|m| Seen { size: summary.bytes, ..Seen::of(&m) })
    };
    match seen {
        Ok(seen) => {
            let op = RepairOp { path: spec.path.clone(), bad: summary.bad, lines: summary.lines, seen };
            let fix = Fix::new("move bad lines to quarantine", Phase::Files, vec![Op::Custom(Box::new(op))]);
            out.push(finding.with_fix(fix));
        }
        Err(_) => out.push(finding),
    }
}

/// The quarantine file for a JSONL file's bad lines.
fn bad_lines_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bad-lines");
    PathBuf::from(name)
}

/// Streams the file once: valid and blank lines to an atomic replacement,
/// bad lines (with their numbers) to the run's quarantine; lines the
/// application appends meanwhile are carried over (`ApplyCtx::rewrite_log`).
struct RepairOp {
    path: PathBuf,
    bad: u64,
    lines: u64,
    /// The file as the check read it.
    seen: Seen,
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
        let (quarantine, quarantine_path) = ctx.quarantine_file(&bad_lines_name(&self.path))?;
        let mut repair =
            Repair { bad_lines: BufWriter::with_capacity(1 << 20, quarantine), summary: Summary::default() };
        let carried = ctx.rewrite_log(&self.path, &self.seen, &mut repair)?;
        let summary = repair.summary;
        let kept_lines = summary.lines - summary.bad;
        let mut detail = format!(
            "kept {kept_lines} line{}, moved {} bad ({}) to {}",
            if kept_lines == 1 { "" } else { "s" },
            summary.bad,
            summary.bad_lines_text(),
            quarantine_path.display()
        );
        let late = carried.before + carried.after;
        if late > 0 {
            detail.push_str(&format!("; {late} bytes appended during the repair carried over"));
        }
        Ok(detail)
    }
}

/// The JSONL rules as a log rewrite: good lines kept, bad ones numbered
/// in the quarantine file.
struct Repair {
    bad_lines: BufWriter<fs::File>,
    summary: Summary,
}

impl Lines for Repair {
    fn rewrite(&mut self, lines: &[u8], _last: bool, mut kept: &mut dyn Write) -> io::Result<()> {
        let before = self.summary.lines;
        let part = jsonl::repair_bytes(lines, before, &mut kept, &mut self.bad_lines)?;
        self.summary.append(part, before);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.bad_lines.flush()?;
        self.bad_lines.get_ref().sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::progress::recording::Recording;

    #[test]
    fn a_repair_reports_the_bytes_it_has_read_chunk_by_chunk() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("events.jsonl");
        let mut text: String = (0..400_000).map(|i| format!("{{\"seq\":{i},\"pad\":\"xxxxxxxx\"}}\n")).collect();
        text.push_str("{\"torn\":");
        fs::write(&path, &text).unwrap();
        let size = text.len() as u64;
        let op =
            RepairOp { path: "events.jsonl".into(), bad: 1, lines: 400_001, seen: Seen::prefix(&path, size).unwrap() };
        let progress = Recording::default();
        let mut ctx = ApplyCtx::new(root.path(), "r").with_progress(&progress);
        op.apply(&mut ctx).unwrap();
        // About 11 MiB, read 4 MiB at a time.
        assert_eq!(progress.assert_task("rewrite events.jsonl", 3), Some(size));
        assert_eq!(progress.advances("rewrite").last(), Some(&size), "every byte read was reported");
        assert_eq!(fs::read(&path).unwrap().len() as u64, size - 8, "the torn line went to the quarantine");
    }
}
