//! `[[lock]]`: lock files left behind by a crash. A lock is stale when it is
//! older than `stale_after`, or when it names a process on this host that is
//! not running (content `PID` or `PID hostname`, as git's `gc.pid`). A lock
//! naming a running process is kept whatever its age (a warning when old),
//! even if the PID may have been reused: preflight cannot prove the holder
//! is unrelated, and removing a live lock can corrupt data. A lock naming
//! another host is only ever a warning. A PID equal to preflight's own
//! counts as not running: preflight holds no application lock, so that PID
//! was reused. An mtime in the future is reported.
//! Heal removes a stale lock only if it still holds what was inspected, and
//! records its content in the history. A manifest `severity` applies to
//! every finding of the entry.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Kind, Severity};
use crate::manifest::LockSpec;
use crate::runtime::clock::{human, Age};
use crate::runtime::content::read_small;
use crate::runtime::process::{self, Pid};
use crate::runtime::{host, walk};
use crate::safety::RemoveIfUnchanged;
use crate::safety::{Fix, Op, Phase, STATE_DIR};

pub struct LockCheck;

impl Check for LockCheck {
    fn kind(&self) -> Kind {
        Kind::Lock
    }

    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        let local = host::hostname();
        let mut seen = HashSet::new();
        for spec in &ctx.manifest.locks {
            check_glob(ctx.root, spec, local.as_deref(), &mut seen, out);
        }
        Ok(())
    }
}

fn check_glob(root: &Path, spec: &LockSpec, local: Option<&str>, seen: &mut HashSet<String>, out: &mut Findings) {
    let glob_id = Kind::Lock.id(&spec.glob);
    let matches = match walk::matches(root, spec.glob.as_str(), |p| spec.glob.is_match(p), Path::new(STATE_DIR)) {
        Ok(m) => m,
        Err(e) => {
            let message = format!("cannot look for locks: {e:#}");
            out.push(Finding::new(glob_id, Area::Runtime, severity(spec.severity, Severity::Critical), message));
            return;
        }
    };
    if matches.is_empty() {
        out.pass(glob_id, Area::Runtime);
    }
    let now = SystemTime::now();
    for m in matches {
        let id = Kind::Lock.id(m.rel.display());
        if !seen.insert(id.clone()) {
            continue; // already judged under an earlier glob
        }
        let age = m.meta.modified().map_or(Age::Past(Duration::ZERO), |t| Age::of(t, now));
        let content = match read_small(&root.join(&m.rel)) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("cannot read the lock: {e}");
                out.push(Finding::new(id, Area::Runtime, severity(spec.severity, Severity::Warning), message));
                continue;
            }
        };
        let owner = Owner::parse(&content, local);
        match judge(&owner, age, spec.stale_after, |pid| !pid.is_self() && process::is_running(pid)) {
            Verdict::Fresh => out.pass(id, Area::Runtime),
            Verdict::Warn(message) => {
                out.push(Finding::new(id, Area::Runtime, severity(spec.severity, Severity::Warning), message))
            }
            Verdict::Stale(reason) => {
                let message = format!("stale lock: {reason}");
                let op = RemoveIfUnchanged { path: m.rel.clone(), expected: content };
                let fix = Fix::new("remove stale lock", Phase::Runtime, vec![Op::Custom(Box::new(op))]);
                let severity = severity(spec.severity, Severity::Critical);
                out.push(Finding::new(id, Area::Runtime, severity, message).with_fix(fix));
            }
        }
    }
}

/// Who a lock file says holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// No PID in it (empty, or another format): judged by age alone.
    Unknown,
    Local(Pid),
    Remote(Pid, String),
}

impl Owner {
    /// `PID` or `PID hostname` on the first line; `local` is this host's name
    /// (a named host that cannot be compared counts as remote).
    fn parse(content: &[u8], local: Option<&str>) -> Owner {
        let text = String::from_utf8_lossy(content);
        let mut words = text.lines().next().unwrap_or("").split_whitespace();
        let Some(pid) = words.next().and_then(Pid::parse) else { return Owner::Unknown };
        match words.next() {
            None => Owner::Local(pid),
            Some(h) if local.is_some_and(|l| host::same_host(h, l)) => Owner::Local(pid),
            Some(h) => Owner::Remote(pid, h.to_string()),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Fresh,
    /// Safe to remove; the reason.
    Stale(String),
    /// Kept, but worth a look.
    Warn(String),
}

/// The decision table of the module comment; `running` says whether a PID
/// on this host names a running process other than preflight itself.
fn judge(owner: &Owner, age: Age, stale_after: Duration, running: impl Fn(Pid) -> bool) -> Verdict {
    let limit = human(stale_after);
    match (owner, age) {
        (Owner::Local(pid), _) if !running(*pid) => {
            Verdict::Stale(format!("it names process {pid} on this host, which is not running"))
        }
        (Owner::Local(pid), Age::Past(a)) if a > stale_after => Verdict::Warn(format!(
            "held for {} (longer than stale_after {limit}) by running process {pid}; kept while it runs",
            human(a)
        )),
        (Owner::Remote(pid, h), Age::Past(a)) if a > stale_after => Verdict::Warn(format!(
            "{} old (stale_after {limit}), held by process {pid} on host {h:?}, which cannot be checked from here; \
             not removed",
            human(a)
        )),
        (Owner::Unknown, Age::Past(a)) if a > stale_after => {
            Verdict::Stale(format!("{} old (stale_after {limit}) and names no process", human(a)))
        }
        (_, Age::Future(ahead)) => Verdict::Warn(format!(
            "modified {} in the future: a clock is skewed, so its age cannot be judged; not removed",
            human(ahead)
        )),
        _ => Verdict::Fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn pid(n: i32) -> Pid {
        Pid::parse(&n.to_string()).unwrap()
    }

    #[test]
    fn owners_are_read_from_the_first_line() {
        assert_eq!(Owner::parse(b"123\n", Some("here")), Owner::Local(pid(123)));
        assert_eq!(Owner::parse(b"123 here.example.com", Some("here")), Owner::Local(pid(123)));
        assert_eq!(Owner::parse(b"123 there", Some("here")), Owner::Remote(pid(123), "there".into()));
        assert_eq!(Owner::parse(b"123 there", None), Owner::Remote(pid(123), "there".into()));
        assert_eq!(Owner::parse(b"", Some("here")), Owner::Unknown);
        assert_eq!(Owner::parse(b"{\"pid\": 1}", Some("here")), Owner::Unknown);
        assert_eq!(Owner::parse(b"0", Some("here")), Owner::Unknown);
    }

    #[test]
    fn a_dead_local_owner_makes_even_a_fresh_lock_stale() {
        let verdict = judge(&Owner::Local(pid(7)), Age::Past(Duration::ZERO), MIN, |_| false);
        assert!(matches!(verdict, Verdict::Stale(r) if r.contains("not running")));
    }

    #[test]
    fn a_running_owner_keeps_an_old_lock_with_a_warning() {
        let old = Age::Past(10 * MIN);
        assert!(matches!(judge(&Owner::Local(pid(7)), old, MIN, |_| true), Verdict::Warn(_)));
        assert_eq!(judge(&Owner::Local(pid(7)), Age::Past(Duration::ZERO), MIN, |_| true), Verdict::Fresh);
    }

    #[test]
    fn another_hosts_lock_is_never_stale() {
        let owner = Owner::Remote(pid(7), "there".into());
        assert!(matches!(judge(&owner, Age::Past(100 * MIN), MIN, |_| false), Verdict::Warn(_)));
        assert_eq!(judge(&owner, Age::Past(Duration::ZERO), MIN, |_| false), Verdict::Fresh);
    }

    #[test]
    fn an_ownerless_lock_is_stale_by_age_alone() {
        assert!(matches!(judge(&Owner::Unknown, Age::Past(2 * MIN), MIN, |_| true), Verdict::Stale(_)));
        assert_eq!(judge(&Owner::Unknown, Age::Past(MIN / 2), MIN, |_| true), Verdict::Fresh);
    }

    #[test]
    fn a_future_mtime_is_reported_not_fresh() {
        let verdict = judge(&Owner::Unknown, Age::Future(60 * MIN), MIN, |_| true);
        assert!(matches!(verdict, Verdict::Warn(m) if m.contains("in the future")));
    }
}
