//! `[[dir]]`: directories that must exist, and not be more open than
//! declared. A `create = false` dir is the deployment's to provide (a
//! mounted volume): missing, or not mounted where a mount is expected, it
//! is critical and never created.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use super::access::{self, Need, Who};
use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::fsutil;
use crate::manifest::DirSpec;
use crate::safety::{Fix, Op, Phase};

pub struct DirCheck;

impl Check for DirCheck {
    fn kind(&self) -> Kind {
        Kind::Dir
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        let who = ctx.who();
        let declared: Vec<PathBuf> = ctx.manifest.dirs.iter().map(|d| d.path.clone()).collect();
        for dir in &ctx.manifest.dirs {
            let (finding, provided) = inspect(ctx, dir);
            match finding {
                Some(finding) => out.push(finding),
                None => out.pass(id(dir), Area::Fs),
            }
            // A dir that is there (its mode may be wider than declared).
            if provided {
                usable(ctx, dir, who, &declared, out);
            }
        }
        Ok(())
    }
}

/// Whether the app's account can search and write an existing dir.
fn usable(ctx: &CheckCtx, dir: &DirSpec, who: &Result<Who, String>, declared: &[PathBuf], out: &mut Findings) {
    let id = format!("{}:access", id(dir));
    let critical = severity(dir.severity, Severity::Critical);
    let who = match who {
        Ok(who) => who,
        Err(why) => return out.push(Finding::new(id, Area::Fs, critical, format!("access cannot be checked: {why}"))),
    };
    // Like the file check's `:mode`, a pass is not listed: reports keep one
    // case per declared path.
    match access::check(ctx.root, &dir.path, Need::Dir, who, declared) {
        None => {}
        Some(denied) => {
            let mut finding = Finding::new(id, Area::Fs, critical, denied.message);
            finding.fix = denied.fix;
            out.push(finding);
        }
    }
}

fn id(dir: &DirSpec) -> String {
    Kind::Dir.id(dir.path.display())
}

/// The dir's finding, if any, and whether it is there as a folder the
/// deployment has provided (then its access is checked too).
fn inspect(ctx: &CheckCtx, dir: &DirSpec) -> (Option<Finding>, bool) {
    let critical = severity(dir.severity, Severity::Critical);
    let problem = |sev, message: String| (Some(Finding::new(id(dir), Area::Fs, sev, message)), false);
    let path = match fsutil::resolve(ctx.root, &dir.path) {
        Ok(p) => p,
        Err(e) => return problem(critical, format!("{e}; it is left alone")),
    };
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound && fs::symlink_metadata(&path).is_ok() => {
            return problem(critical, "is a symlink to a folder that does not exist; it is left alone".into());
        }
        Err(e) if e.kind() == ErrorKind::NotFound && !dir.create => {
            let message = "directory is missing; create = false: the deployment provides it (a mounted volume), \
                           preflight never creates it";
            return problem(critical, message.into());
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let fix = Fix::new(
                "create directory",
                Phase::Dirs,
                vec![Op::CreateDir { path: dir.path.clone(), mode: dir.mode }],
            );
            let (finding, provided) = problem(critical, "directory is missing".to_string());
            return (finding.map(|f| f.with_fix(fix)), provided);
        }
        Err(e) => return problem(critical, format!("cannot inspect the directory: {e}")),
    };
    if !meta.is_dir() {
        return problem(critical, "exists but is not a directory; move it away, preflight will not replace it".into());
    }
    if let Some(unready) = super::provided::dir_state(ctx.root, dir) {
        return problem(critical, format!("{}; nothing is written beneath it until then", unready.why));
    }
    let Some(declared) = dir.mode else { return (None, true) };
    let actual = fsutil::mode_of(&meta);
    let extra = actual & !declared & 0o777;
    let wider = (extra != 0).then(|| {
        let message = format!("mode {actual:04o} is wider than the declared {declared:04o}; run `chmod {declared:04o}` if that is not deliberate");
        Finding::new(id(dir), Area::Fs, severity(dir.severity, Severity::Warning), message)
    });
    (wider, true)
}
