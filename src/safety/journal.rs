//! What a heal run changed, in enough detail to undo it: the paths it
//! created and the originals it kept copies of, each with the SHA-256 the
//! path had when the run ended. `rollback` compares those hashes with the
//! disk to refuse undoing anything that changed after the run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A file or folder that did not exist before the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    #[serde(with = "super::pathser")]
    pub path: PathBuf,
    /// SHA-256 (hex) of the file when the run ended; absent for a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// An original the run changed or removed after keeping a copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    #[serde(with = "super::pathser")]
    pub path: PathBuf,
    /// The copy, relative to the root: a quarantined file, or an SQLite
    /// online backup under `.preflight/backups/<run>/`.
    #[serde(with = "super::pathser")]
    pub saved: PathBuf,
    /// The original's permission bits.
    pub mode: u32,
    /// The original's modification time (RFC 3339, nanoseconds), restored
    /// with it: a restored lock or heartbeat keeps its age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<String>,
    /// SHA-256 (hex) of `path` when the run ended; absent when it was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A permission change on an existing path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    #[serde(with = "super::pathser")]
    pub path: PathBuf,
    pub from: u32,
    pub to: u32,
}

/// An ownership change on an existing path (heal as root giving a
/// declared path to the `[app] user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerChange {
    #[serde(with = "super::pathser")]
    pub path: PathBuf,
    pub from_uid: u32,
    pub from_gid: u32,
    pub to_uid: u32,
    pub to_gid: u32,
}

/// What undoes one action: the history stores it with the action.
#[derive(Debug, Default)]
pub struct Undo {
    pub created: Vec<Created>,
    pub replaced: Vec<Replaced>,
    pub modes: Vec<ModeChange>,
    /// Existing files the action changed in place (a database it altered),
    /// which a copy kept by another action of the run may undo.
    pub changed: Vec<PathBuf>,
    pub owners: Vec<OwnerChange>,
}

/// The changes of one action, before the run's end fixes their hashes.
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths first touched by this action that did not exist then.
    absent: Vec<PathBuf>,
    /// Their `sha256` is filled in when the run ends.
    replaced: Vec<Replaced>,
    modes: Vec<ModeChange>,
    changed: Vec<PathBuf>,
    owners: Vec<OwnerChange>,
}

impl Changes {
    /// The paths this action created, parents first.
    pub fn created(&self) -> impl Iterator<Item = &Path> {
        let mut paths: Vec<&Path> = self.absent.iter().map(PathBuf::as_path).collect();
        paths.sort_by_key(|p| p.components().count());
        paths.into_iter()
    }

    /// The action's rollback records, with each path's hash as it is now
    /// (the run's end).
    pub fn records(self, root: &Path) -> io::Result<Undo> {
        let (created, replaced) = self.settle(root)?;
        Ok(Undo { created, replaced, modes: self.modes, changed: self.changed, owners: self.owners })
    }

    fn settle(&self, root: &Path) -> io::Result<(Vec<Created>, Vec<Replaced>)> {
        let mut created = Vec::new();
        for path in self.absent.iter().cloned() {
            match fs::symlink_metadata(root.join(&path)) {
                Ok(meta) if meta.is_dir() => created.push(Created { path, sha256: None }),
                Ok(_) => {
                    let sha256 = sha256_file(&root.join(&path))?;
                    created.push(Created { path, sha256: Some(sha256) });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut replaced = Vec::new();
        for original in &self.replaced {
            let sha256 = hash_if_present(&root.join(&original.path))?;
            replaced.push(Replaced { sha256, ..original.clone() });
        }
        Ok((created, replaced))
    }
}

/// Follows one run: which paths existed when first touched, which
/// originals were kept. Interior mutability lets `ApplyCtx::resolve` keep
/// its `&self` signature.
#[derive(Debug, Default)]
pub struct Journal {
    /// Every path seen in this run, with whether it existed then.
    seen: RefCell<BTreeMap<PathBuf, bool>>,
    current: RefCell<Changes>,
}

impl Journal {
    /// Notes `rel` and its parent folders the first time the run touches them.
    pub fn touch(&self, root: &Path, rel: &Path) {
        let mut seen = self.seen.borrow_mut();
        let mut current = self.current.borrow_mut();
        for path in rel.ancestors().filter(|p| !p.as_os_str().is_empty()) {
            if seen.contains_key(path) {
                continue;
            }
            let exists = fs::symlink_metadata(root.join(path)).is_ok();
            seen.insert(path.to_path_buf(), exists);
            if !exists {
                current.absent.push(path.to_path_buf());
            }
        }
    }

    /// Notes that the original of `rel` (with metadata `meta`) was copied to `saved`.
    pub fn kept(&self, rel: &Path, saved: &Path, meta: &fs::Metadata) {
        let mtime = meta.modified().ok().map(|t| humantime::format_rfc3339_nanos(t).to_string());
        self.current.borrow_mut().replaced.push(Replaced {
            path: rel.to_path_buf(),
            saved: saved.to_path_buf(),
            mode: crate::fsutil::mode_of(meta),
            mtime,
            sha256: None,
        });
    }

    /// Notes that the existing file `rel` was changed in place.
    pub fn changed(&self, rel: &Path) {
        let mut current = self.current.borrow_mut();
        if !current.changed.iter().any(|p| p == rel) {
            current.changed.push(rel.to_path_buf());
        }
    }

    /// Forgets the copy at `saved`: it was removed again.
    pub fn forget_kept(&self, saved: &Path) {
        self.current.borrow_mut().replaced.retain(|r| r.saved != saved);
    }

    /// Notes a permission change on a path that existed.
    pub fn mode_changed(&self, rel: &Path, from: u32, to: u32) {
        self.current.borrow_mut().modes.push(ModeChange { path: rel.to_path_buf(), from, to });
    }

    /// Notes an ownership change on a path that existed.
    pub fn owner_changed(&self, rel: &Path, from: (u32, u32), to: (u32, u32)) {
        self.current.borrow_mut().owners.push(OwnerChange {
            path: rel.to_path_buf(),
            from_uid: from.0,
            from_gid: from.1,
            to_uid: to.0,
            to_gid: to.1,
        });
    }

    /// The changes of the action that just ran; the next action starts afresh.
    pub fn take(&self) -> Changes {
        std::mem::take(&mut *self.current.borrow_mut())
    }
}

/// SHA-256 of a file's bytes, in lower-case hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_of(crate::fsutil::open_regular(path)?)
}

/// SHA-256 of everything `file` yields, in lower-case hex.
pub fn sha256_of(mut file: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The hash of a regular file, `None` when nothing is there.
pub fn hash_if_present(path: &Path) -> io::Result<Option<String>> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => sha256_file(path).map(Some),
        Ok(_) => Ok(Some(String::from("not a regular file"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn only_paths_absent_when_first_touched_count_as_created() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("old")).unwrap();
        let journal = Journal::default();
        journal.touch(root.path(), Path::new("old/new/f.json"));
        fs::create_dir_all(root.path().join("old/new")).unwrap();
        fs::write(root.path().join("old/new/f.json"), b"abc").unwrap();
        journal.touch(root.path(), Path::new("old/new/f.json"));
        let (created, replaced) = journal.take().settle(root.path()).unwrap();
        let paths: Vec<&Path> = created.iter().map(|c| c.path.as_path()).collect();
        assert_eq!(paths, [Path::new("old/new/f.json"), Path::new("old/new")]);
        assert!(created[0].sha256.is_some() && created[1].sha256.is_none());
        assert!(replaced.is_empty());
    }
}
