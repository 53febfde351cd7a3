//! `[[command]]`: a tool the application needs. `run` is executed (see
//! `runtime::exec` for when a shell is used) in the root with `timeout`;
//! a program missing from PATH, a non-zero exit, a timeout, or a version
//! (parsed from stdout, else stderr) that does not satisfy `version` →
//! critical, saying what was found and what is required. `fix`, when
//! given, runs only in heal, with the same timeout, its output captured in
//! the action's detail. Commands are the one place preflight runs code from
//! the manifest; `--no-commands` skips them entirely.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::manifest::CommandSpec;
use crate::runtime::exec::{self, Outcome};
use crate::runtime::version::{self, Requirement};
use crate::safety::{ApplyCtx, CustomOp, Fix, Op, Phase};

/// Characters of command output kept in a message.
const MESSAGE_OUTPUT: usize = 200;

/// Characters of a fix's output kept in the action detail (its tail).
const DETAIL_OUTPUT: usize = 2000;

pub struct CommandCheck;

impl Check for CommandCheck {
    fn kind(&self) -> Kind {
        Kind::Command
    }

    fn scope(&self) -> Scope {
        Scope::System
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        if ctx.options.no_commands {
            return Ok(());
        }
        for spec in &ctx.manifest.commands {
            let id = Kind::Command.id(&spec.name);
            let Some(message) = problem(ctx.root, spec) else {
                out.pass(id, Area::Runtime);
                continue;
            };
            let mut finding = Finding::new(id, Area::Runtime, severity(spec.severity, Severity::Critical), message);
            if let Some(fix) = &spec.fix {
                let op = RunFix { line: fix.clone(), timeout: spec.timeout };
                finding =
                    finding.with_fix(Fix::new("run fix command", Phase::Commands, vec![Op::Custom(Box::new(op))]));
            }
            out.push(finding);
        }
        Ok(())
    }
}

/// What is wrong with the tool, or `None` when it passes.
fn problem(root: &Path, spec: &CommandSpec) -> Option<String> {
    let required = match spec.version.as_deref().map(Requirement::parse).transpose() {
        Ok(r) => r,
        Err(e) => return Some(format!("version requirement {:?} is not valid: {e}", spec.version)),
    };
    let wanted = required.as_ref().map(|r| format!(" (required: {r})")).unwrap_or_default();
    let out = match exec::run(&spec.run, root, spec.timeout) {
        Ok(out) => out,
        Err(e) => return Some(format!("{e}{wanted}")),
    };
    if out.timed_out() {
        return Some(format!("`{}` did not finish within {}; it was stopped", spec.run, duration_text(spec.timeout)));
    }
    if !out.success() {
        return Some(format!("`{}` failed with {}{}{wanted}", spec.run, out.status_text(), excerpt(&out)));
    }
    let required = required?;
    match version::extract(&out.stdout).or_else(|| version::extract(&out.stderr)) {
        None => Some(format!("`{}` printed no version number{}; required: {required}", spec.run, excerpt(&out))),
        Some(found) if !required.matches(&found) => Some(format!("found version {found}, required: {required}")),
        Some(_) => None,
    }
}

/// `: <first line of stderr, else stdout>`, bounded; empty when silent.
fn excerpt(out: &Outcome) -> String {
    let text = if out.stderr.trim().is_empty() { &out.stdout } else { &out.stderr };
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", line.chars().take(MESSAGE_OUTPUT).collect::<String>()),
        None => String::new(),
    }
}

fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Runs a `[[command]] fix` line during heal.
#[derive(Debug)]
struct RunFix {
    line: String,
    timeout: Duration,
}

impl CustomOp for RunFix {
    fn describe(&self) -> Vec<String> {
        vec![format!("run `{}` (timeout {})", self.line, duration_text(self.timeout))]
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let out = exec::run(&self.line, ctx.root(), self.timeout)?;
        let output = tail(&format!("{}{}", out.stdout, out.stderr), DETAIL_OUTPUT);
        if !out.success() {
            bail!("`{}` {}; output: {output}", self.line, out.status_text());
        }
        Ok(format!("ran `{}`; output: {output}", self.line))
    }
}

/// The last `max` characters of `text`, trimmed, marked when cut.
fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return if text.is_empty() { "(none)".into() } else { text.to_string() };
    }
    let kept: String = text.chars().skip(count - max).collect();
    format!("…{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_are_bounded_and_marked() {
        assert_eq!(tail("  ok\n", 10), "ok");
        assert_eq!(tail("", 10), "(none)");
        assert_eq!(tail("abcdef", 3), "…def");
    }
}
