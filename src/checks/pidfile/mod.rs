//! `[[pidfile]]`: the application's pid file. Missing is fine. A pid file
//! naming a process that is not running (or preflight itself, which can
//! only mean a reused PID) → warning, heal removes it (only if unchanged). A running process → critical; with `on_running =
//! "terminate"`, heal stops it (see `runtime::terminate`), but only when its
//! command line contains the `match` pattern, when one is given: a PID
//! reused by an unrelated process is never signalled. Content that is not a
//! PID → critical, never touched.

use std::io;
use std::path::Path;

mod terminate;

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::fsutil;
use crate::manifest::{OnRunning, PidfileSpec};
use crate::runtime::content::{read_small, show};
use crate::runtime::process::{self, Pid};
use crate::safety::RemoveIfUnchanged;
use crate::safety::{Fix, Op, Phase};
use terminate::{Terminate, TERM_GRACE};

pub struct PidfileCheck;

impl Check for PidfileCheck {
    fn kind(&self) -> Kind {
        Kind::Pidfile
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        for spec in &ctx.manifest.pidfiles {
            let id = Kind::Pidfile.id(spec.path.display());
            match inspect(ctx.root, spec) {
                None => out.pass(id, Area::Runtime),
                Some((default, message, fix)) => {
                    let mut finding = Finding::new(id, Area::Runtime, severity(spec.severity, default), message);
                    if let Some(fix) = fix {
                        finding = finding.with_fix(fix);
                    }
                    out.push(finding);
                }
            }
        }
        Ok(())
    }
}

type Problem = (Severity, String, Option<Fix>);

fn inspect(root: &Path, spec: &PidfileSpec) -> Option<Problem> {
    let critical = |message: String| Some((Severity::Critical, message, None));
    let path = match fsutil::resolve(root, &spec.path) {
        Ok(p) => p,
        Err(e) => return critical(format!("cannot be checked: {e}")),
    };
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Ok(m) if !m.is_file() => return critical("is not a regular file; it is left alone".into()),
        _ => {}
    }
    let content = match read_small(&path) {
        Ok(c) => c,
        Err(e) => return critical(format!("cannot be read: {e}")),
    };
    let Some(pid) = Pid::parse(String::from_utf8_lossy(&content).trim()) else {
        return critical(format!("does not hold a process ID: it holds {}", show(&content)));
    };
    if pid.is_self() || !process::is_running(pid) {
        let message = format!("names process {pid}, which is not running");
        let op = RemoveIfUnchanged { path: spec.path.clone(), expected: content };
        let fix = Fix::new("remove stale pidfile", Phase::Runtime, vec![Op::Custom(Box::new(op))]);
        return Some((Severity::Warning, message, Some(fix)));
    }
    Some(running(spec, pid, content))
}

/// The finding for a pid file whose process runs.
fn running(spec: &PidfileSpec, pid: Pid, content: Vec<u8>) -> Problem {
    let cmdline = process::cmdline(pid);
    let program = cmdline.as_deref().map_or_else(|| "unknown program".to_string(), program_name);
    let message = format!("process {pid} ({program}) is running");
    if spec.on_running == OnRunning::Critical {
        return (Severity::Critical, message, None);
    }
    if let Some(pattern) = &spec.match_pattern {
        if !cmdline.as_deref().is_some_and(|c| c.contains(pattern.as_str())) {
            let message = format!(
                "{message}, but its command line does not contain {pattern:?}: it may be an unrelated process \
                 that reused the PID, so it is not terminated"
            );
            return (Severity::Critical, message, None);
        }
    }
    let op = Terminate {
        pidfile: spec.path.clone(),
        expected: content,
        pid,
        program,
        start_time: process::start_time(pid),
        pattern: spec.match_pattern.clone(),
        grace: TERM_GRACE,
    };
    let fix = Fix::new("terminate running process", Phase::Runtime, vec![Op::Custom(Box::new(op))]);
    (Severity::Critical, message, Some(fix))
}

/// The program's file name, without its arguments (which may hold secrets).
fn program_name(cmdline: &str) -> String {
    let first = cmdline.split_whitespace().next().unwrap_or("");
    first.rsplit('/').next().unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_program_name_is_shown() {
        assert_eq!(program_name("/usr/bin/python3 app.py --token=s3cret"), "python3");
        assert_eq!(program_name("sleep 30"), "sleep");
    }
}
