//! The persisted log of healing actions, `.preflight/history.jsonl`: one
//! JSON object per action, appended, bounded to the newest runs.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};

use super::atomic::AtomicWriter;
use super::confined::{Dir, Root};
pub use super::journal::{Created, ModeChange, OwnerChange, Replaced, Undo};
use super::layout;

/// Runs kept in the history by default; older ones are pruned.
pub const MAX_RUNS: usize = 200;

/// Environment variable that overrides `MAX_RUNS` (a positive integer).
pub const MAX_RUNS_VAR: &str = "PREFLIGHT_HISTORY_RUNS";

/// The bound in force: `PREFLIGHT_HISTORY_RUNS` when it is a positive integer.
pub fn max_runs() -> usize {
    std::env::var(MAX_RUNS_VAR).ok().and_then(|v| v.trim().parse().ok()).filter(|n| *n > 0).unwrap_or(MAX_RUNS)
}

/// What became of one action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Done,
    Failed,
    /// Not acted on, for a reason that is no failure: the file changed
    /// since the check, or another process is writing it.
    Skipped,
    /// `watch`'s circuit breaker held the fix back.
    Tripped,
    /// `watch` held the fix back for this cycle (its cooldown, or the
    /// open breaker); reported, never written to the history.
    Held,
    /// Started and not finished yet: the entry holds undo records written
    /// ahead of the act. A run's end replaces these; left over, they are
    /// what an interrupted heal did (or was about to do).
    Pending,
    /// An outcome this version does not know (a newer preflight wrote it).
    #[serde(other)]
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Tripped => "tripped",
            Outcome::Held => "held",
            Outcome::Pending => "pending",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One action of a run. Fields added after the first release are optional,
/// so older history files still read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entry {
    pub run: String,
    pub time: String,
    pub id: String,
    pub action: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "super::pathser::list")]
    pub saved: Vec<PathBuf>,
    /// Files and folders this action created (undone by `rollback`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<Created>,
    /// Originals this action replaced or removed, and where their copies are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<Replaced>,
    /// Permission changes this action made on existing paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<ModeChange>,
    /// Existing files this action changed in place, without a copy of its
    /// own (a database step whose backup another action of the run holds).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "super::pathser::list")]
    pub changed: Vec<PathBuf>,
    /// Ownership changes this action made on existing paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<OwnerChange>,
    /// The SQL a database action ran, statement by statement (never a password).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
    /// How the database engine undoes this action (engine-specific data;
    /// `rollback` hands it back to the engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_undo: Option<serde_json::Value>,
    /// Set on the entries of a rollback: the run it undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
}

impl Entry {
    /// Stores what undoes this action.
    pub fn set_undo(&mut self, undo: Undo) {
        self.created = undo.created;
        self.replaced = undo.replaced;
        self.modes = undo.modes;
        self.changed = undo.changed;
        self.owners = undo.owners;
    }
}

/// The history file's identity, size and time, `None` while there is none.
/// Every run that changes something appends to it before it lets the heal
/// lock go: the same mark at two moments means no run changed anything in
/// between.
pub fn mark(root: &Path) -> Option<(u64, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path(root)).ok()?;
    Some((meta.dev(), meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()))
}

pub fn path(root: &Path) -> PathBuf {
    root.join(layout::history_file())
}

/// Appends the entries of one run, then prunes old runs.
pub fn append(root: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    append_unpruned(root, entries)?;
    prune(root, max_runs())
}

/// Appends without pruning: for the actions of a run in progress, which
/// `rewrite_run` completes (and prunes) when the run ends.
pub fn append_unpruned(root: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    append_lines(root, entries, true)
}

/// Appends entries; `durable` waits until they are on disk (undo records
/// written ahead of an act must be; a note that an action started can
/// ride along with the next durable write).
pub fn append_lines(root: &Path, entries: &[Entry], durable: bool) -> anyhow::Result<()> {
    let file = path(root);
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry)?);
        text.push('\n');
    }
    // Reached through handles, like any path: a symlinked `.preflight` or
    // history is refused, never appended through.
    let opened = state_dir(root)?.open_in_place(OsStr::new(layout::HISTORY), OFlags::WRONLY | OFlags::APPEND, None);
    let mut out = match opened {
        // The first lines create the file whole (written aside, renamed):
        // a kill never leaves a history that exists with nothing in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return replace(root, &text),
        opened => opened.with_context(|| format!("cannot write {}", file.display()))?,
    };
    out.write_all(text.as_bytes())?;
    if durable {
        out.sync_data()?;
    }
    Ok(())
}

/// The private folder, created (0700) if missing.
fn state_dir(root: &Path) -> anyhow::Result<Dir> {
    let dir = Root::open(root)?.create_dir_all(Path::new(layout::STATE_DIR), 0o700, &mut Vec::new());
    dir.with_context(|| format!("cannot create {}", layout::STATE_DIR))
}

/// The history's text, empty when there is none.
fn read_text(root: &Path) -> anyhow::Result<String> {
    let file = path(root);
    let mut text = String::new();
    let opened = match Root::open(root)?.open_read(&layout::history_file()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(text),
        other => other,
    };
    if let Some(mut history) = opened.with_context(|| format!("cannot read {}", file.display()))? {
        history.read_to_string(&mut text).with_context(|| format!("cannot read {}", file.display()))?;
    }
    Ok(text)
}

/// Replaces the history with `text`, atomically.
fn replace(root: &Path, text: &str) -> anyhow::Result<()> {
    let mut writer = AtomicWriter::in_dir(state_dir(root)?, OsStr::new(layout::HISTORY))?.mode(Some(0o600));
    writer.write_all(text.as_bytes())?;
    writer.commit().with_context(|| format!("cannot write {}", path(root).display()))
}

/// Every readable entry, oldest first. Lines that do not parse are skipped.
pub fn read(root: &Path) -> anyhow::Result<Vec<Entry>> {
    Ok(read_text(root)?.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Replaces the lines of `run` with `entries`: a run's actions are
/// appended one by one as they finish (so a killed heal still leaves its
/// trace) and rewritten once complete, with what only the end can know.
pub fn rewrite_run(root: &Path, run: &str, entries: &[Entry]) -> anyhow::Result<()> {
    let text = read_text(root)?;
    let mut out = String::new();
    for (line, line_run) in runs_of(&text) {
        if line_run.as_deref() != Some(run) {
            out.push_str(line);
            out.push('\n');
        }
    }
    for entry in entries {
        out.push_str(&serde_json::to_string(entry)?);
        out.push('\n');
    }
    replace(root, &out)?;
    prune(root, max_runs())
}

/// Each line with the run it belongs to (`None` when it does not parse).
fn runs_of(text: &str) -> Vec<(&str, Option<String>)> {
    text.lines()
        .map(|l| {
            let run = serde_json::from_str::<Entry>(l).ok().map(|e| e.run);
            (l, run)
        })
        .collect()
}

fn prune(root: &Path, keep_runs: usize) -> anyhow::Result<()> {
    let text = read_text(root)?;
    let mut runs: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    let lines = runs_of(&text);
    for (_, run) in &lines {
        if let Some(run) = run {
            if seen.insert(run.as_str()) {
                runs.push(run.as_str());
            }
        }
    }
    if runs.len() <= keep_runs {
        return Ok(());
    }
    let kept: HashSet<&str> = runs[runs.len() - keep_runs..].iter().copied().collect();
    let mut out = String::new();
    for (line, run) in &lines {
        if run.as_deref().is_some_and(|r| kept.contains(r)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    replace(root, &out)
}

/// The entries of one run, in the order they were written.
#[derive(Debug, Serialize)]
pub struct Run<'a> {
    pub run: &'a str,
    pub time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<&'a str>,
    pub actions: Vec<&'a Entry>,
}

/// Groups entries by run, newest run first.
pub fn runs(entries: &[Entry]) -> Vec<Run<'_>> {
    let mut runs: Vec<Run> = Vec::new();
    for entry in entries {
        match runs.iter_mut().find(|r| r.run == entry.run) {
            Some(run) => run.actions.push(entry),
            None => runs.push(Run {
                run: &entry.run,
                time: &entry.time,
                rollback_of: entry.rollback_of.as_deref(),
                actions: vec![entry],
            }),
        }
    }
    runs.reverse();
    runs
}

/// How one finding ID fared across the history.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stat {
    /// Heal runs that acted on it (a finding nobody could fix is not logged).
    pub found: usize,
    pub healed: usize,
    pub failed: usize,
    /// Times its fix was skipped (changed since the check, held open).
    pub skipped: usize,
    /// Times `watch`'s circuit breaker stopped healing it.
    pub tripped: usize,
    pub last: String,
}

/// Per finding ID, rollbacks and write-ahead notes left out.
pub fn stats(entries: &[Entry]) -> BTreeMap<&str, Stat> {
    let mut stats: BTreeMap<&str, Stat> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.rollback_of.is_none() && e.outcome != Outcome::Pending) {
        let stat = stats.entry(entry.id.as_str()).or_default();
        stat.found += 1;
        match entry.outcome {
            Outcome::Done => stat.healed += 1,
            Outcome::Failed => stat.failed += 1,
            Outcome::Skipped => stat.skipped += 1,
            Outcome::Tripped => stat.tripped += 1,
            Outcome::Held | Outcome::Pending | Outcome::Unknown => {}
        }
        stat.last.clone_from(&entry.time);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: &str) -> Entry {
        Entry {
            run: run.into(),
            time: "t".into(),
            id: "dir:x".into(),
            action: "a".into(),
            outcome: Outcome::Done,
            ..Default::default()
        }
    }

    #[test]
    fn rewrite_run_replaces_only_that_run() {
        let root = tempfile::tempdir().unwrap();
        append(root.path(), &[entry("r1")]).unwrap();
        append(root.path(), &[entry("r2")]).unwrap();
        let mut complete = entry("r2");
        complete.detail = "with hashes".into();
        rewrite_run(root.path(), "r2", &[complete.clone(), complete]).unwrap();
        let entries = read(root.path()).unwrap();
        let summary: Vec<(&str, &str)> = entries.iter().map(|e| (e.run.as_str(), e.detail.as_str())).collect();
        assert_eq!(summary, [("r1", ""), ("r2", "with hashes"), ("r2", "with hashes")]);
    }

    #[test]
    fn old_runs_are_pruned_beyond_the_bound() {
        let root = tempfile::tempdir().unwrap();
        for i in 0..5 {
            append(root.path(), &[entry(&format!("r{i}")), entry(&format!("r{i}"))]).unwrap();
        }
        prune(root.path(), 2).unwrap();
        let runs: Vec<String> = read(root.path()).unwrap().into_iter().map(|e| e.run).collect();
        assert_eq!(runs, ["r3", "r3", "r4", "r4"]);
    }

    fn outcome_entry(run: &str, id: &str, outcome: Outcome) -> Entry {
        Entry { run: run.into(), time: run.into(), id: id.into(), outcome, ..Default::default() }
    }

    #[test]
    fn runs_are_grouped_newest_first() {
        let entries = [
            outcome_entry("r1", "a", Outcome::Done),
            outcome_entry("r1", "b", Outcome::Done),
            outcome_entry("r2", "a", Outcome::Failed),
        ];
        let runs = runs(&entries);
        assert_eq!(runs.iter().map(|r| r.run).collect::<Vec<_>>(), ["r2", "r1"]);
        assert_eq!(runs[1].actions.len(), 2);
    }

    #[test]
    fn stats_count_outcomes_and_leave_rollbacks_out() {
        let mut undo = outcome_entry("r4", "a", Outcome::Done);
        undo.rollback_of = Some("r3".into());
        let entries = [
            outcome_entry("r1", "a", Outcome::Done),
            outcome_entry("r2", "a", Outcome::Failed),
            outcome_entry("r3", "a", Outcome::Tripped),
            undo,
        ];
        let stats = stats(&entries);
        assert_eq!(stats["a"], Stat { found: 3, healed: 1, failed: 1, skipped: 0, tripped: 1, last: "r3".into() });
    }

    #[test]
    fn outcomes_read_as_written_and_unknown_ones_do_not_break_the_file() {
        let line = r#"{"run":"r","time":"t","id":"x","action":"a","outcome":"tripped"}"#;
        assert_eq!(serde_json::from_str::<Entry>(line).unwrap().outcome, Outcome::Tripped);
        let newer = line.replace("tripped", "deferred");
        assert_eq!(serde_json::from_str::<Entry>(&newer).unwrap().outcome, Outcome::Unknown);
        assert!(serde_json::to_string(&outcome_entry("r", "x", Outcome::Failed))
            .unwrap()
            .contains(r#""outcome":"failed""#));
    }
}
