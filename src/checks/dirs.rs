//! `[[dir]]`: directories that must exist, and not be more open than declared.

use std::fs;
use std::io::ErrorKind;

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
        for dir in &ctx.manifest.dirs {
            match inspect(ctx, dir) {
                Some(finding) => out.push(finding),
                None => out.pass(id(dir), Area::Fs),
            }
        }
        Ok(())
    }
}

fn id(dir: &DirSpec) -> String {
    Kind::Dir.id(dir.path.display())
}

fn inspect(ctx: &CheckCtx, dir: &DirSpec) -> Option<Finding> {
    let critical = severity(dir.severity, Severity::Critical);
    let problem = |sev, message: String| Some(Finding::new(id(dir), Area::Fs, sev, message));
    let path = match fsutil::resolve(ctx.root, &dir.path) {
        Ok(p) => p,
        Err(e) => return problem(critical, format!("{e}; it is left alone")),
    };
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let fix = Fix::new(
                "create directory",
                Phase::Dirs,
                vec![Op::CreateDir { path: dir.path.clone(), mode: dir.mode }],
            );
            return problem(critical, "directory is missing".into()).map(|f| f.with_fix(fix));
        }
        Err(e) => return problem(critical, format!("cannot inspect the directory: {e}")),
    };
    if !meta.is_dir() {
        return problem(critical, "exists but is not a directory; move it away, preflight will not replace it".into());
    }
    let declared = dir.mode?;
    let actual = fsutil::mode_of(&meta);
    let extra = actual & !declared & 0o777;
    (extra != 0).then(|| {
        let message = format!("mode {actual:04o} is wider than the declared {declared:04o}; run `chmod {declared:04o}` if that is not deliberate");
        Finding::new(id(dir), Area::Fs, severity(dir.severity, Severity::Warning), message)
    })
}
