//! Undoing one heal run, worked out from its history entries: originals
//! to put back, created files and folders to remove, modes to set back.
//! `Plan::check` compares the disk with the state the run left (SHA-256 of
//! every path) and lists every reason to refuse; the steps only run when
//! there is none, through the applier like any other change.
//!
//! Database backups (SQLite online-backup copies under
//! `.preflight/backups/<run>/`) are restored by an atomic file copy over
//! the database, after removing its `-wal`, `-shm` and `-journal` files; a
//! database with a non-empty write-ahead log or rollback journal is
//! refused, as its content may have moved on without the main file
//! changing. The application must be stopped while it runs.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::bail;
use rustix::fs::FileType;

use super::apply::ApplyCtx;
use super::confined::Root;
use super::history::{self, Entry, Outcome, Replaced};
use super::journal::sha256_of;
use super::{layout, lock};

/// What a rollback did, or why it did nothing.
#[derive(Debug)]
pub struct Rollback {
    /// The run undone.
    pub target: String,
    /// The rollback's own run ID, when it ran.
    pub run: Option<String>,
    /// One entry per step carried out (also appended to the history).
    pub done: Vec<Entry>,
    /// Every reason the disk no longer matches what the run left.
    pub refused: Vec<String>,
    /// Actions of the run that kept nothing to undo them with.
    pub left: Vec<String>,
    /// Actions of the run undone by restoring a copy another action kept
    /// (the database steps of one run share its backup).
    pub restored_with: Vec<String>,
}

impl Rollback {
    pub fn failed(&self) -> bool {
        !self.refused.is_empty() || self.done.iter().any(|e| e.outcome != Outcome::Done)
    }
}

/// Undoes the database changes of a run's entries (those with a
/// `database_undo`), newest first; returns one history entry per change
/// (`run`, `time` and `rollback_of` are filled in by `rollback`).
pub type DatabaseUndo<'a> = &'a dyn Fn(&[&Entry]) -> Vec<Entry>;

/// Undoes the named run, or the newest one not undone yet, under the heal
/// lock. `new_run_id` and `now` name the rollback's own run in the history.
/// Files are restored first, then `databases` undoes what heal changed in
/// database servers (engines know how; this layer does not).
pub fn rollback(
    root: &Path,
    wanted: Option<&str>,
    run_id: &str,
    now: &dyn Fn() -> String,
    databases: DatabaseUndo,
) -> anyhow::Result<Rollback> {
    if !history::path(root).exists() {
        // Said before taking the lock, which would create `.preflight/`.
        bail!("nothing to roll back: no heal run is recorded in {}", history::path(root).display());
    }
    // No heal may run while files are put back.
    let _lock = lock::acquire(root, lock::LOCK_WAIT)?;
    let entries = history::read(root)?;
    let target = pick_run(&entries, wanted)?;
    let of_run: Vec<&Entry> = entries.iter().filter(|e| e.run == target).collect();
    let plan = Plan::of(&of_run);
    let restored: Vec<&Path> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Restore { original, .. } => Some(original.path.as_path()),
            _ => None,
        })
        .collect();
    let bare = |e: &&&Entry| {
        e.outcome == Outcome::Done
            && e.created.is_empty()
            && e.replaced.is_empty()
            && e.modes.is_empty()
            && e.owners.is_empty()
            && e.database_undo.is_none()
    };
    let covered = |e: &Entry| !e.changed.is_empty() && e.changed.iter().all(|p| restored.contains(&p.as_path()));
    let (restored_with, left): (Vec<&&Entry>, Vec<&&Entry>) = of_run.iter().filter(bare).partition(|e| covered(e));
    let restored_with: Vec<String> = restored_with
        .iter()
        .map(|e| {
            let paths: Vec<String> = e.changed.iter().map(|p| p.display().to_string()).collect();
            format!("{}: {} (undone: {} is restored from the run's copy)", e.id, e.action, paths.join(", "))
        })
        .collect();
    let left = left.iter().map(|e| format!("{}: {} (nothing was kept to undo it)", e.id, e.action)).collect();
    let refused = plan.check(root);
    if !refused.is_empty() {
        return Ok(Rollback { target, run: None, done: Vec::new(), refused, left, restored_with });
    }
    let mut ctx = ApplyCtx::new(root, run_id);
    let mut done = Vec::new();
    for step in &plan.steps {
        let (action, outcome, detail) = match step.apply(&mut ctx) {
            Ok((action, detail)) => (action, Outcome::Done, detail),
            Err(e) => (format!("undo {}", step.path().display()), Outcome::Failed, format!("{e:#}")),
        };
        done.push(Entry {
            run: run_id.to_string(),
            time: now(),
            id: step.id().to_string(),
            action,
            outcome,
            detail,
            rollback_of: Some(target.clone()),
            ..Default::default()
        });
    }
    let in_databases: Vec<&Entry> = of_run.iter().copied().filter(|e| e.database_undo.is_some()).collect();
    if !in_databases.is_empty() {
        for mut entry in databases(&in_databases) {
            entry.run = run_id.to_string();
            entry.time = now();
            entry.rollback_of = Some(target.clone());
            done.push(entry);
        }
    }
    history::append(root, &done)?;
    Ok(Rollback { target, run: Some(run_id.to_string()), done, refused: Vec::new(), left, restored_with })
}

/// The named run, or the newest run that is not a rollback and was not
/// rolled back already.
fn pick_run(entries: &[Entry], wanted: Option<&str>) -> anyhow::Result<String> {
    let undone_by = |run: &str| entries.iter().find(|e| e.rollback_of.as_deref() == Some(run)).map(|e| e.run.clone());
    let Some(wanted) = wanted else {
        return entries
            .iter()
            .rev()
            .find(|e| e.rollback_of.is_none() && undone_by(&e.run).is_none())
            .map(|e| e.run.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("nothing to roll back: no heal run in the history that is not rolled back")
            });
    };
    let Some(entry) = entries.iter().find(|e| e.run == wanted) else {
        bail!("no run {wanted} in the history; `preflight history` lists the runs");
    };
    if let Some(of) = &entry.rollback_of {
        bail!("run {wanted} is the rollback of {of}; a rollback is not undone (heal again instead)");
    }
    if let Some(by) = undone_by(wanted) {
        bail!("run {wanted} was already rolled back by run {by}");
    }
    Ok(wanted.to_string())
}

/// A path's owner and group.
type Owner = (u32, u32);

/// One change to undo, with the finding whose fix made it.
#[derive(Debug)]
pub enum Step {
    Restore { id: String, original: Replaced },
    SetMode { id: String, path: PathBuf, from: u32, to: u32 },
    SetOwner { id: String, path: PathBuf, from: Owner, to: Owner },
    RemoveFile { id: String, path: PathBuf, sha256: String },
    RemoveDir { id: String, path: PathBuf },
}

/// The steps to undo one run, restores first, folders last (deepest first).
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// Builds the plan from the run's entries. A path the run created is
    /// removed even if a later action of the same run also replaced it.
    pub fn of(entries: &[&Entry]) -> Plan {
        let mut created: BTreeMap<&Path, (&str, Option<&str>)> = BTreeMap::new();
        let mut originals: BTreeMap<&Path, (&str, &Replaced)> = BTreeMap::new();
        let mut modes: BTreeMap<&Path, (&str, u32, u32)> = BTreeMap::new();
        let mut owners: BTreeMap<&Path, (&str, Owner, Owner)> = BTreeMap::new();
        for entry in entries {
            for o in &entry.owners {
                let (from, to) = ((o.from_uid, o.from_gid), (o.to_uid, o.to_gid));
                owners.entry(&o.path).and_modify(|e| e.2 = to).or_insert((&entry.id, from, to));
            }
            for m in &entry.modes {
                // The first change knows the original mode, the last one the mode left.
                modes.entry(&m.path).and_modify(|e| e.2 = m.to).or_insert((&entry.id, m.from, m.to));
            }
            for c in &entry.created {
                created.entry(&c.path).or_insert((&entry.id, c.sha256.as_deref()));
            }
            for r in &entry.replaced {
                originals.entry(&r.path).or_insert((&entry.id, r));
            }
        }
        let mut steps: Vec<Step> = originals
            .into_iter()
            .filter(|(path, _)| !created.contains_key(path))
            .map(|(_, (id, r))| Step::Restore { id: id.into(), original: r.clone() })
            .collect();
        for (path, (id, from, to)) in modes.into_iter().filter(|(path, _)| !created.contains_key(path)) {
            steps.push(Step::SetMode { id: id.into(), path: path.into(), from, to });
        }
        for (path, (id, from, to)) in owners.into_iter().filter(|(path, _)| !created.contains_key(path)) {
            steps.push(Step::SetOwner { id: id.into(), path: path.into(), from, to });
        }
        let mut dirs = Vec::new();
        for (path, (id, sha256)) in created {
            match sha256 {
                Some(sha) => steps.push(Step::RemoveFile { id: id.into(), path: path.into(), sha256: sha.into() }),
                None => dirs.push(Step::RemoveDir { id: id.into(), path: path.into() }),
            }
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path().components().count()));
        steps.extend(dirs);
        Plan { steps }
    }

    /// Every reason the disk no longer matches what the run left.
    pub fn check(&self, root: &Path) -> Vec<String> {
        let root = match Root::open(root) {
            Ok(root) => root,
            Err(e) => return vec![format!("cannot inspect the root: {e}")],
        };
        let root = &root;
        let created: Vec<&Path> =
            self.steps.iter().filter(|s| !matches!(s, Step::Restore { .. })).map(Step::path).collect();
        let mut reasons = Vec::new();
        for step in &self.steps {
            let result = match step {
                Step::Restore { original, .. } => check_restore(root, original),
                Step::SetMode { path, from, to, .. } => check_mode(root, path, *to, *from),
                Step::SetOwner { path, from, to, .. } => check_owner(root, path, *to, *from),
                Step::RemoveFile { path, sha256, .. } => check_created_file(root, path, sha256),
                Step::RemoveDir { path, .. } => check_created_dir(root, path, &created),
            };
            match result {
                Ok(None) => {}
                Ok(Some(reason)) => reasons.push(format!("{}: {reason}", step.path().display())),
                Err(e) => reasons.push(format!("{}: cannot inspect: {e}", step.path().display())),
            }
        }
        reasons
    }
}

impl Step {
    pub fn path(&self) -> &Path {
        match self {
            Step::Restore { original, .. } => &original.path,
            Step::SetMode { path, .. }
            | Step::SetOwner { path, .. }
            | Step::RemoveFile { path, .. }
            | Step::RemoveDir { path, .. } => path,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Step::Restore { id, .. }
            | Step::SetMode { id, .. }
            | Step::SetOwner { id, .. }
            | Step::RemoveFile { id, .. }
            | Step::RemoveDir { id, .. } => id,
        }
    }

    /// Carries the step out; returns the history's action and detail.
    pub fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<(String, String)> {
        let shown = self.path().display();
        match self {
            Step::Restore { original, .. } => {
                restore(ctx, original)?;
                Ok((format!("restore {shown}"), format!("from {}", original.saved.display())))
            }
            Step::SetMode { path, from, .. } => {
                ctx.apply(&super::Op::SetMode { path: path.clone(), mode: *from })?;
                Ok((format!("chmod {from:04o} {shown}"), "the mode before the run".into()))
            }
            Step::SetOwner { path, from: (uid, gid), .. } => {
                ctx.apply(&super::Op::SetOwner { path: path.clone(), uid: *uid, gid: *gid })?;
                Ok((format!("chown {uid}:{gid} {shown}"), "the owner before the run".into()))
            }
            Step::RemoveFile { path, .. } => {
                ctx.remove_created(path, false)?;
                Ok((format!("remove {shown}"), "created by the run, unchanged since".into()))
            }
            Step::RemoveDir { path, .. } => {
                ctx.remove_created(path, true)?;
                Ok((format!("remove folder {shown}"), "created by the run, empty".into()))
            }
        }
    }
}

fn is_database_backup(original: &Replaced) -> bool {
    layout::is_backup(&original.saved)
}

/// The hash of the regular file at `rel`, `None` when nothing is there.
fn hash_at(root: &Root, rel: &Path) -> anyhow::Result<Option<String>> {
    match root.stat(rel)? {
        None => Ok(None),
        Some(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile => {
            Ok(Some(String::from("not a regular file")))
        }
        Some(_) => Ok(root.open_read(rel)?.map(sha256_of).transpose()?),
    }
}

fn check_restore(root: &Root, original: &Replaced) -> anyhow::Result<Option<String>> {
    let now = hash_at(root, &original.path)?;
    // Put back already by a rollback killed before it could record its
    // work: restoring it again changes nothing (the checks below still hold).
    if now != original.sha256 && (now.is_none() || now != hash_at(root, &original.saved)?) {
        let what = if original.sha256.is_none() { "was created again" } else { "changed" };
        return Ok(Some(format!("{what} after the run; restoring its original would lose that")));
    }
    if !root.stat(&original.saved)?.is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile) {
        return Ok(Some(format!("the copy {} is gone", original.saved.display())));
    }
    if is_database_backup(original) {
        for (suffix, what) in [("-wal", "write-ahead log"), ("-journal", "rollback journal")] {
            if root.stat(&sidecar(&original.path, suffix))?.is_some_and(|s| s.st_size > 0) {
                return Ok(Some(format!(
                    "has a non-empty {what} ({suffix}): stop the application (or checkpoint) first"
                )));
            }
        }
    }
    Ok(None)
}

/// `from`, the mode before the run, is what an interrupted rollback left.
fn check_mode(root: &Root, path: &Path, left: u32, from: u32) -> anyhow::Result<Option<String>> {
    let Some(stat) = root.stat(path)? else { return Ok(Some("is gone".into())) };
    let now = stat.st_mode & 0o7777;
    Ok((now != left && now != from)
        .then(|| format!("mode changed after the run (now {now:04o}, the run left {left:04o})")))
}

/// `from`, the owner before the run, is what an interrupted rollback left.
fn check_owner(root: &Root, path: &Path, left: Owner, from: Owner) -> anyhow::Result<Option<String>> {
    let Some(stat) = root.stat(path)? else { return Ok(Some("is gone".into())) };
    let now = (stat.st_uid, stat.st_gid);
    Ok((now != left && now != from)
        .then(|| format!("owner changed after the run (now {}:{}, the run left {}:{})", now.0, now.1, left.0, left.1)))
}

fn check_created_file(root: &Root, path: &Path, sha256: &str) -> anyhow::Result<Option<String>> {
    Ok(match hash_at(root, path)? {
        Some(now) if now != sha256 => Some("changed after the run; it is not removed".into()),
        _ => None,
    })
}

/// A created folder may only hold what the run created itself.
fn check_created_dir(root: &Root, path: &Path, created: &[&Path]) -> anyhow::Result<Option<String>> {
    let dir = match root.open_dir(path) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut foreign = Vec::new();
    for (name, _) in dir.entries()? {
        let rel = path.join(name);
        if !created.contains(&rel.as_path()) {
            foreign.push(rel.display().to_string());
        }
    }
    foreign.sort();
    Ok((!foreign.is_empty()).then(|| format!("now holds {} that the run did not create", foreign.join(", "))))
}

/// Puts the copy back byte for byte, with the original's mode and
/// modification time, atomically.
fn restore(ctx: &mut ApplyCtx, original: &Replaced) -> anyhow::Result<()> {
    if is_database_backup(original) {
        let (dir, _) = ctx.parent(&original.path, false)?;
        // Left in place, they would be applied to the restored file.
        for suffix in ["-wal", "-shm", "-journal"] {
            let Some(name) = sidecar(&original.path, suffix).file_name().map(|n| n.to_os_string()) else { continue };
            match dir.unlink(&name) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
    }
    let mtime = original.mtime.as_deref().and_then(|t| humantime::parse_rfc3339(t).ok());
    ctx.restore_copy(&original.path, &original.saved, original.mode, mtime)
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::history::Created;
    use std::fs;

    fn entry(created: Vec<Created>, replaced: Vec<Replaced>) -> Entry {
        Entry { run: "r".into(), id: "x".into(), created, replaced, ..Default::default() }
    }

    #[test]
    fn folders_are_removed_last_and_deepest_first() {
        let dir = |p: &str| Created { path: p.into(), sha256: None };
        let file = Created { path: "a/b/f".into(), sha256: Some("h".into()) };
        let e = entry(vec![dir("a/b"), file, dir("a")], vec![]);
        let plan = Plan::of(&[&e]);
        let paths: Vec<&Path> = plan.steps.iter().map(Step::path).collect();
        assert_eq!(paths, [Path::new("a/b/f"), Path::new("a/b"), Path::new("a")]);
    }

    #[test]
    fn a_changed_file_is_a_reason_to_refuse() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("f"), b"later").unwrap();
        let e = entry(vec![Created { path: "f".into(), sha256: Some("0".into()) }], vec![]);
        let reasons = Plan::of(&[&e]).check(root.path());
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with("f: changed after the run"), "{reasons:?}");
    }

    fn run_entry(run: &str, rollback_of: Option<&str>) -> Entry {
        Entry { run: run.into(), rollback_of: rollback_of.map(Into::into), ..Default::default() }
    }

    #[test]
    fn the_default_run_is_the_newest_not_yet_undone() {
        let entries = [run_entry("r1", None), run_entry("r2", None), run_entry("r3", Some("r2"))];
        assert_eq!(pick_run(&entries, None).unwrap(), "r1");
        assert!(pick_run(&entries, Some("r2")).unwrap_err().to_string().contains("already rolled back"));
        assert!(pick_run(&entries, Some("r3")).is_err());
        assert!(pick_run(&entries[2..], None).is_err());
    }
}
