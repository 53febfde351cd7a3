//! The tool's private folder inside the root, `.preflight/`, and every
//! path in it. This is the one place those names are written.

use std::path::{Path, PathBuf};

/// The private folder, relative to the root.
pub const STATE_DIR: &str = ".preflight";

/// What lives in the private folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Copies of originals that heal replaced or removed.
    Quarantine,
    /// SQLite online backups taken before rebuilds and data fixes.
    Backups,
}

impl Area {
    fn folder(self) -> &'static str {
        match self {
            Area::Quarantine => "quarantine",
            Area::Backups => "backups",
        }
    }
}

/// The heal lock's name in the private folder.
pub const LOCK: &str = "lock";

/// The history's name in the private folder.
pub const HISTORY: &str = "history.jsonl";

/// `.preflight/lock`, relative to the root.
pub fn lock_file() -> PathBuf {
    Path::new(STATE_DIR).join(LOCK)
}

/// `.preflight/history.jsonl`, relative to the root.
pub fn history_file() -> PathBuf {
    Path::new(STATE_DIR).join(HISTORY)
}

/// `.preflight/<area>/<run>/<rel>`, relative to the root.
pub fn saved_copy(area: Area, run: &str, rel: &Path) -> PathBuf {
    run_folder(area, run).join(rel)
}

/// `.preflight/<area>/<run>`, relative to the root.
pub fn run_folder(area: Area, run: &str) -> PathBuf {
    Path::new(STATE_DIR).join(area.folder()).join(run)
}

/// Whether a saved copy (relative to the root) is an SQLite backup.
pub fn is_backup(saved: &Path) -> bool {
    saved.starts_with(Path::new(STATE_DIR).join(Area::Backups.folder()))
}

/// Whether a path relative to the root lies in the private folder.
pub fn is_private(rel: &Path) -> bool {
    rel.starts_with(STATE_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_told_apart_from_quarantined_copies() {
        assert!(is_backup(&saved_copy(Area::Backups, "r1", Path::new("app/data.db"))));
        assert!(!is_backup(&saved_copy(Area::Quarantine, "r1", Path::new("app/data.db"))));
        assert_eq!(
            saved_copy(Area::Quarantine, "r1", Path::new("a.json")),
            Path::new(".preflight/quarantine/r1/a.json")
        );
    }
}
