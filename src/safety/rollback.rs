//! Undoing one heal run, worked out from its history entries: originals
//! to put back, created files and folders to remove, modes to set back.
//! `Plan::check` compares the disk with the state the run left (SHA-256 of
//! every path) and lists every reason to refuse; the steps only run when
//! there is none, through the applier like any other change.
//!
//! A run that was interrupted (killed, or its machine lost power) left
//! undo records written ahead of each act (`pending` entries): a path may
//! then be in any state the run's acts were to leave it in, or still the
//! original; anything else changed after the run. An act whose result was
//! not known in advance (a database transaction) cannot be told from a
//! later change: rollback says so and leaves that path alone.
//!
//! Database backups (SQLite online-backup copies under
//! `.preflight/backups/<run>/`) are restored by an atomic file copy over
//! the database, after removing its `-wal`, `-shm` and `-journal` files; a
//! database with a non-empty write-ahead log or rollback journal is
//! refused, as its content may have moved on without the main file
//! changing. The application must be stopped while it runs.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::bail;
use rustix::fs::FileType;

use super::apply::ApplyCtx;
use super::confined::Root;
use super::history::{self, Entry, Outcome, Replaced};
use super::journal::sha256_of;
use super::{atomic, layout, lock};

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
    /// The run did not finish (its heal was killed or stopped).
    pub interrupted: bool,
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
    let mut left: Vec<String> =
        left.iter().map(|e| format!("{}: {} (nothing was kept to undo it)", e.id, e.action)).collect();
    left.extend(interrupted_bare(&of_run));
    // Temporary files of writes the run did not finish are no one's data.
    let handle = Root::open(root)?;
    for folder in plan.folders() {
        if let Ok(dir) = handle.open_dir(folder) {
            atomic::sweep_temp_files(&dir)?;
        }
    }
    let refused = plan.check(root);
    let interrupted = plan.interrupted;
    if !refused.is_empty() {
        return Ok(Rollback { target, run: None, done: Vec::new(), refused, left, restored_with, interrupted });
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
    let run = Some(run_id.to_string());
    Ok(Rollback { target, run, done, refused: Vec::new(), left, restored_with, interrupted })
}

/// Actions the run started and did not finish that recorded nothing to
/// undo them with (a command fix, a database step).
fn interrupted_bare(entries: &[&Entry]) -> Vec<String> {
    let finished: HashSet<&str> =
        entries.iter().filter(|e| e.outcome != Outcome::Pending).map(|e| e.id.as_str()).collect();
    let mut left: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for entry in entries.iter().filter(|e| e.outcome == Outcome::Pending && !finished.contains(e.id.as_str())) {
        let records = entries
            .iter()
            .filter(|e| e.id == entry.id)
            .any(|e| !(e.created.is_empty() && e.replaced.is_empty() && e.modes.is_empty() && e.owners.is_empty()));
        if !records && seen.insert(&entry.id) {
            left.push(format!("{}: {} (interrupted; nothing was kept to undo it)", entry.id, entry.action));
        }
    }
    left
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

/// One change to undo, with the finding whose fix made it, and the states
/// the path may be in for the undo to go ahead.
#[derive(Debug)]
pub enum Step {
    Restore { id: String, original: Replaced, states: States },
    SetMode { id: String, path: PathBuf, from: u32, modes: Vec<u32> },
    SetOwner { id: String, path: PathBuf, from: Owner, to: Owner },
    RemoveFile { id: String, path: PathBuf, states: States },
    RemoveDir { id: String, path: PathBuf },
}

/// The states (SHA-256; `None`: absent) a path may be in: what the run
/// left (the last act on it), or for an interrupted run any state an act
/// of it was to leave, and the original.
#[derive(Debug, Default, Clone)]
pub struct States {
    pub hashes: Vec<Option<String>>,
    /// The last act on it was written ahead without its result.
    pub unsettled: bool,
}

/// The steps to undo one run, restores first, folders last (deepest first).
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Some action of the run has only its write-ahead records.
    pub interrupted: bool,
}

/// What the records of one path say, in the order they were written.
#[derive(Default)]
struct Records<'a> {
    id: &'a str,
    created: bool,
    folder: bool,
    original: Option<&'a Replaced>,
    /// The state each act was to leave, and whether it was unsettled.
    afters: Vec<(Option<&'a str>, bool)>,
}

impl Plan {
    /// Builds the plan from the run's entries. A path the run created is
    /// removed even if a later action of the same run also replaced it.
    pub fn of(entries: &[&Entry]) -> Plan {
        // An action's own entry supersedes what was written ahead of it.
        let finished: HashSet<&str> =
            entries.iter().filter(|e| e.outcome != Outcome::Pending).map(|e| e.id.as_str()).collect();
        let interrupted = entries.iter().any(|e| e.outcome == Outcome::Pending && !finished.contains(e.id.as_str()));
        let mut paths: BTreeMap<&Path, Records> = BTreeMap::new();
        let mut modes: BTreeMap<&Path, (&str, u32, Vec<u32>)> = BTreeMap::new();
        let mut owners: BTreeMap<&Path, (&str, Owner, Owner)> = BTreeMap::new();
        for entry in entries.iter().filter(|e| e.outcome != Outcome::Pending || !finished.contains(e.id.as_str())) {
            for o in &entry.owners {
                let (from, to) = ((o.from_uid, o.from_gid), (o.to_uid, o.to_gid));
                owners.entry(&o.path).and_modify(|e| e.2 = to).or_insert((&entry.id, from, to));
            }
            for m in &entry.modes {
                // The first change knows the original mode, the last one the mode left.
                let (_, _, left) = modes.entry(&m.path).or_insert((&entry.id, m.from, vec![m.from]));
                left.push(m.to);
            }
            for c in &entry.created {
                let records = paths.entry(&c.path).or_insert_with(|| Records { id: &entry.id, ..Records::default() });
                if !records.created && records.original.is_none() {
                    records.created = true;
                    records.folder = c.sha256.is_none() && !c.unsettled;
                }
                records.afters.push((c.sha256.as_deref(), c.unsettled));
            }
            for r in &entry.replaced {
                let records = paths.entry(&r.path).or_insert_with(|| Records { id: &entry.id, ..Records::default() });
                records.original.get_or_insert(r);
                records.afters.push((r.sha256.as_deref(), r.unsettled));
            }
        }
        let (mut restores, mut removals, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for (path, records) in &paths {
            let id = records.id.to_string();
            let states = records.states(interrupted);
            match (records.created, records.original) {
                (true, _) if records.folder => dirs.push(Step::RemoveDir { id, path: path.to_path_buf() }),
                (true, _) => removals.push(Step::RemoveFile { id, path: path.to_path_buf(), states }),
                (false, Some(original)) => restores.push(Step::Restore { id, original: original.clone(), states }),
                (false, None) => {}
            }
        }
        let created = |path: &Path| paths.get(path).is_some_and(|r| r.created);
        let mut steps = restores;
        for (path, (id, from, left)) in modes.into_iter().filter(|(path, _)| !created(path)) {
            let modes = if interrupted { left } else { left.last().copied().into_iter().collect() };
            steps.push(Step::SetMode { id: id.into(), path: path.into(), from, modes });
        }
        for (path, (id, from, to)) in owners.into_iter().filter(|(path, _)| !created(path)) {
            steps.push(Step::SetOwner { id: id.into(), path: path.into(), from, to });
        }
        steps.extend(removals);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path().components().count()));
        steps.extend(dirs);
        Plan { steps, interrupted }
    }

    /// The folders of every path the plan touches.
    pub fn folders(&self) -> Vec<&Path> {
        let mut folders: Vec<&Path> = self.steps.iter().filter_map(|s| s.path().parent()).collect();
        folders.sort_unstable();
        folders.dedup();
        folders
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
                Step::Restore { original, states, .. } => check_restore(root, original, states),
                Step::SetMode { path, from, modes, .. } => check_mode(root, path, modes, *from),
                Step::SetOwner { path, from, to, .. } => check_owner(root, path, *to, *from),
                Step::RemoveFile { path, states, .. } => check_created_file(root, path, states),
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

impl Records<'_> {
    fn states(&self, interrupted: bool) -> States {
        let unsettled = self.afters.last().is_some_and(|(_, unsettled)| *unsettled);
        let mut settled = self.afters.iter().filter(|(_, unsettled)| !unsettled).map(|(h, _)| h.map(str::to_string));
        let mut hashes: Vec<Option<String>> =
            if interrupted { settled.collect() } else { settled.next_back().into_iter().collect() };
        if interrupted {
            // The act may not have happened: the path is still as it was.
            match self.original {
                None => hashes.push(None),
                Some(r) if !layout::is_backup(&r.saved) => hashes.push(r.saved_sha256.clone()),
                Some(_) => {}
            }
        }
        States { hashes, unsettled }
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
                ctx.apply(&super::Op::SetMode { path: path.clone(), mode: *from, of: None })?;
                Ok((format!("chmod {from:04o} {shown}"), "the mode before the run".into()))
            }
            Step::SetOwner { path, from: (uid, gid), .. } => {
                ctx.apply(&super::Op::SetOwner { path: path.clone(), uid: *uid, gid: *gid, of: None })?;
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

fn check_restore(root: &Root, original: &Replaced, states: &States) -> anyhow::Result<Option<String>> {
    let now = hash_at(root, &original.path)?;
    // Put back already by a rollback killed before it could record its
    // work: restoring it again changes nothing (the checks below still hold).
    let put_back = || -> anyhow::Result<bool> { Ok(now.is_some() && now == hash_at(root, &original.saved)?) };
    if !states.hashes.contains(&now) && !put_back()? {
        if states.unsettled {
            return Ok(Some(format!(
                "the heal was interrupted while changing it, and whether the change was made cannot be told from a \
                 later write: left as it is; its copy from before the run is {}",
                original.saved.display()
            )));
        }
        let what = if states.hashes == [None] { "was created again" } else { "changed" };
        return Ok(Some(format!("{what} after the run; restoring its original would lose that")));
    }
    if !root.stat(&original.saved)?.is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile) {
        return Ok(Some(format!("the copy {} is gone", original.saved.display())));
    }
    if let Some(expected) = &original.saved_sha256 {
        if hash_at(root, &original.saved)?.as_ref() != Some(expected) {
            return Ok(Some(format!("the copy {} is not what was saved", original.saved.display())));
        }
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
fn check_mode(root: &Root, path: &Path, left: &[u32], from: u32) -> anyhow::Result<Option<String>> {
    let Some(stat) = root.stat(path)? else { return Ok(Some("is gone".into())) };
    let now = stat.st_mode & 0o7777;
    let shown: Vec<String> = left.iter().map(|m| format!("{m:04o}")).collect();
    Ok((!left.contains(&now) && now != from)
        .then(|| format!("mode changed after the run (now {now:04o}, the run left {})", shown.join(" or "))))
}

/// `from`, the owner before the run, is what an interrupted rollback left.
fn check_owner(root: &Root, path: &Path, left: Owner, from: Owner) -> anyhow::Result<Option<String>> {
    let Some(stat) = root.stat(path)? else { return Ok(Some("is gone".into())) };
    let now = (stat.st_uid, stat.st_gid);
    Ok((now != left && now != from)
        .then(|| format!("owner changed after the run (now {}:{}, the run left {}:{})", now.0, now.1, left.0, left.1)))
}

fn check_created_file(root: &Root, path: &Path, states: &States) -> anyhow::Result<Option<String>> {
    let now = hash_at(root, path)?;
    Ok(match now {
        Some(_) if !states.hashes.contains(&now) => Some(if states.unsettled {
            "the heal was interrupted while creating it: it cannot be told from a later write, so it is not removed"
                .into()
        } else {
            "changed after the run; it is not removed".into()
        }),
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
        let dir = |p: &str| Created { path: p.into(), sha256: None, unsettled: false };
        let file = Created { path: "a/b/f".into(), sha256: Some("h".into()), unsettled: false };
        let e = entry(vec![dir("a/b"), file, dir("a")], vec![]);
        let plan = Plan::of(&[&e]);
        let paths: Vec<&Path> = plan.steps.iter().map(Step::path).collect();
        assert_eq!(paths, [Path::new("a/b/f"), Path::new("a/b"), Path::new("a")]);
    }

    #[test]
    fn a_changed_file_is_a_reason_to_refuse() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("f"), b"later").unwrap();
        let e = entry(vec![Created { path: "f".into(), sha256: Some("0".into()), unsettled: false }], vec![]);
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
