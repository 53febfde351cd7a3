//! Byte-level snapshots of the disk: compare two to prove nothing changed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

/// Every file and folder under a root: mode and, for files, the bytes.
pub type Snapshot = BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>;

/// Every entry under `root` (none when it does not exist); without
/// preflight's own `.preflight/` when `skip_state`.
pub fn snapshot(root: &Path, skip_state: bool) -> Snapshot {
    if !root.exists() {
        return Snapshot::new();
    }
    WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !(skip_state && e.file_name() == ".preflight"))
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.path().symlink_metadata().unwrap();
            let bytes = meta.is_file().then(|| fs::read(e.path()).unwrap());
            (e.path().strip_prefix(root).unwrap().to_path_buf(), (meta.mode() & 0o7777, bytes))
        })
        .collect()
}
