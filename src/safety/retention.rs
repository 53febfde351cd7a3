//! How many database backups `.preflight/backups/` keeps. A backup
//! belongs to the heal run that took it (`backups/<run>/`); the folders
//! are pruned with the history: a run the history no longer knows has no
//! use for its backup (rollback cannot name it), and of the runs it knows,
//! only the newest are kept, bounded by count and by bytes. The newest
//! backup is always kept, whatever its size: it is the one a rollback of
//! the last run needs.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use super::confined::Root;
use super::history;
use super::layout::{self, Area};

/// Runs whose backups are kept by default.
pub const MAX_RUNS: usize = 5;
/// Bytes of backups kept by default (2 GiB).
pub const MAX_BYTES: u64 = 2 << 30;
/// Environment variables that override them (positive integers; bytes).
pub const MAX_RUNS_VAR: &str = "PREFLIGHT_BACKUP_RUNS";
pub const MAX_BYTES_VAR: &str = "PREFLIGHT_BACKUP_BYTES";

/// The bounds in force.
pub fn bounds() -> (usize, u64) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0);
    let runs = var(MAX_RUNS_VAR).map_or(MAX_RUNS, |n| usize::try_from(n).unwrap_or(usize::MAX));
    (runs, var(MAX_BYTES_VAR).unwrap_or(MAX_BYTES))
}

/// Removes the backup folders of runs the history no longer holds, then
/// the oldest beyond the bounds. Runs under the heal lock (a heal in
/// progress elsewhere could otherwise lose the backup it is taking).
/// Returns the run IDs whose backups were removed.
pub fn prune(root: &Path, (max_runs, max_bytes): (usize, u64)) -> anyhow::Result<Vec<String>> {
    let folder = root.join(layout::run_folder(Area::Backups, "")).to_path_buf();
    let Ok(entries) = fs::read_dir(&folder) else { return Ok(Vec::new()) };
    let known: Vec<String> = history::read(root)?.into_iter().map(|e| e.run).collect();
    let mut runs: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    runs.sort(); // run IDs sort by time
    runs.reverse();
    let (mut kept, mut bytes, mut removed, mut full) = (0usize, 0u64, Vec::new(), false);
    for run in runs {
        let path = folder.join(&run);
        let size = size_of(&path);
        let newest = kept == 0 && known.contains(&run);
        // Once a backup does not fit, none older is kept: rollback goes newest first.
        if known.contains(&run) {
            full = full || kept >= max_runs || bytes.saturating_add(size) > max_bytes;
        }
        if known.contains(&run) && (newest || !full) {
            kept += 1;
            bytes = bytes.saturating_add(size);
            continue;
        }
        // Through handles, like every removal: a symlink inside is removed
        // as a link, never followed.
        Root::open(root)?.open_dir(&layout::run_folder(Area::Backups, ""))?.remove_all(OsStr::new(&run))?;
        removed.push(run);
    }
    Ok(removed)
}

/// Bytes of every file under `path`.
fn size_of(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::history::{append, Entry};

    fn backup(root: &Path, run: &str, bytes: usize) {
        let dir = root.join(layout::run_folder(Area::Backups, run)).join("app");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("data.db"), vec![0u8; bytes]).unwrap();
    }

    fn runs_left(root: &Path) -> Vec<String> {
        let mut left: Vec<String> = fs::read_dir(root.join(".preflight/backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        left
    }

    #[test]
    fn backups_are_bounded_by_runs_and_bytes_and_go_with_their_history() {
        let root = tempfile::tempdir().unwrap();
        for (run, bytes) in [("r1", 10), ("r2", 10), ("r3", 10), ("r4", 50), ("r5", 10)] {
            backup(root.path(), run, bytes);
        }
        backup(root.path(), "r0-unknown", 1);
        let entries: Vec<Entry> =
            ["r1", "r2", "r3", "r4", "r5"].iter().map(|r| Entry { run: r.to_string(), ..Default::default() }).collect();
        append(root.path(), &entries).unwrap();
        prune(root.path(), (3, 1000)).unwrap();
        assert_eq!(runs_left(root.path()), ["r3", "r4", "r5"]);
        prune(root.path(), (3, 40)).unwrap();
        assert_eq!(runs_left(root.path()), ["r5"], "r4 alone is over the bytes");
        backup(root.path(), "r6", 100);
        append(root.path(), &[Entry { run: "r6".into(), ..Default::default() }]).unwrap();
        prune(root.path(), (3, 40)).unwrap();
        assert_eq!(runs_left(root.path()), ["r6"], "the newest is kept whatever its size");
    }
}
