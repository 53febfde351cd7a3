//! `[[heartbeat]]`: a file the application touches periodically to say it
//! is alive. Missing, older than `max_age`, or modified in the future (a
//! skewed clock would otherwise make it look fresh forever) → warning;
//! heal touches it. A heartbeat that is not a regular file (a folder, a
//! symlink) is reported and left alone.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::fsutil;
use crate::manifest::HeartbeatSpec;
use crate::runtime::clock::{human, Age};
use crate::safety::{Fix, Op, Phase};

pub struct HeartbeatCheck;

impl Check for HeartbeatCheck {
    fn kind(&self) -> Kind {
        Kind::Heartbeat
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        let now = SystemTime::now();
        for spec in &ctx.manifest.heartbeats {
            let id = Kind::Heartbeat.id(spec.path.display());
            match inspect(ctx.root, spec, now) {
                None => out.pass(id, Area::Runtime),
                Some(Problem { message, touch }) => {
                    let mut finding =
                        Finding::new(id, Area::Runtime, severity(spec.severity, Severity::Warning), message);
                    if touch {
                        let op = Op::Touch { path: spec.path.clone() };
                        finding = finding.with_fix(Fix::new("touch heartbeat", Phase::Runtime, vec![op]));
                    }
                    out.push(finding);
                }
            }
        }
        Ok(())
    }
}

struct Problem {
    message: String,
    /// Touching it repairs it.
    touch: bool,
}

fn inspect(root: &Path, spec: &HeartbeatSpec, now: SystemTime) -> Option<Problem> {
    let problem = |message: String, touch| Some(Problem { message, touch });
    let path = match fsutil::resolve(root, &spec.path) {
        Ok(p) => p,
        Err(e) => return problem(format!("cannot be checked: {e}"), false),
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return problem("heartbeat file is missing".into(), true),
        Err(e) => return problem(format!("cannot be read: {e}"), false),
    };
    if !meta.is_file() {
        return problem("is not a regular file; it is left alone".into(), false);
    }
    let age = meta.modified().map_or(Age::Past(Duration::ZERO), |t| Age::of(t, now));
    match age {
        Age::Past(a) if a > spec.max_age => {
            problem(format!("last beat {} ago, more than max_age {}", human(a), human(spec.max_age)), true)
        }
        Age::Future(ahead) => problem(
            format!("last beat is {} in the future: a clock is skewed, so its freshness is unknown", human(ahead)),
            true,
        ),
        Age::Past(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> HeartbeatSpec {
        HeartbeatSpec { path: PathBuf::from("beat"), max_age: Duration::from_secs(600), severity: None }
    }

    fn at(root: &Path, offset: i64) -> Option<Problem> {
        let now = SystemTime::now();
        std::fs::write(root.join("beat"), b"").unwrap();
        let mtime =
            filetime::FileTime::from_unix_time(filetime::FileTime::from_system_time(now).unix_seconds() + offset, 0);
        filetime::set_file_mtime(root.join("beat"), mtime).unwrap();
        inspect(root, &spec(), now)
    }

    #[test]
    fn old_and_future_beats_are_touched_and_a_fresh_one_passes() {
        let root = tempfile::tempdir().unwrap();
        let old = at(root.path(), -3600).unwrap();
        assert!(old.touch && old.message.contains("1h ago"), "{}", old.message);
        let future = at(root.path(), 7200).unwrap();
        assert!(future.touch && future.message.contains("in the future"), "{}", future.message);
        assert!(at(root.path(), -60).is_none());
    }

    #[test]
    fn a_folder_in_its_place_is_reported_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        assert!(inspect(root.path(), &spec(), SystemTime::now()).unwrap().touch, "missing: touch creates it");
        std::fs::create_dir(root.path().join("beat")).unwrap();
        let problem = inspect(root.path(), &spec(), SystemTime::now()).unwrap();
        assert!(!problem.touch && problem.message.contains("not a regular file"));
    }
}
