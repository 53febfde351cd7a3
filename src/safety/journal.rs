//! What a heal run changed, in enough detail to undo it: the paths it
//! created and the originals it kept copies of, each with the SHA-256 the
//! path had once its action ended. `rollback` compares those hashes with
//! the disk to refuse undoing anything that changed after the run.
//!
//! The same records are written ahead, before each act, with the state
//! the act will leave (`After`): a heal killed half-way can still be
//! undone.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::precondition::Seen;

/// A file or folder that did not exist before the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    #[serde(with = "super::pathser")]
    pub path: PathBuf,
    /// SHA-256 (hex) of the file its action left; absent for a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Written ahead of an act whose result is not known in advance (a
    /// database built by SQLite): `sha256` says nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsettled: bool,
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
    /// SHA-256 (hex) of `path` as its action left it; absent when removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// SHA-256 (hex) of the copy, verified after it was made durable;
    /// rollback checks it before putting the copy back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_sha256: Option<String>,
    /// Written ahead of an act whose result is not known in advance (a
    /// transaction): `sha256` says nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsettled: bool,
}

/// The state an act will leave a path in, written ahead of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Folder,
    /// A file with this SHA-256 (hex).
    File(String),
    Removed,
    /// Not known before it happens (SQLite writes it).
    Unknown,
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

impl Undo {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.replaced.is_empty()
            && self.modes.is_empty()
            && self.changed.is_empty()
            && self.owners.is_empty()
    }
}

/// The changes of one action, before its end fixes their hashes.
#[derive(Debug, Default)]
pub struct Changes {
    /// Paths first touched by this action that did not exist then.
    absent: Vec<PathBuf>,
    /// Their `sha256` is filled in when the action ends.
    replaced: Vec<Replaced>,
    modes: Vec<ModeChange>,
    /// Files this action wrote whole, with their hash: not read again when
    /// the action ends if they are still those files.
    written: BTreeMap<PathBuf, Seen>,
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
    /// (the action's end).
    pub fn records(self, root: &Path) -> io::Result<Undo> {
        let (created, replaced) = self.settle(root)?;
        Ok(Undo { created, replaced, modes: self.modes, changed: self.changed, owners: self.owners })
    }

    fn settle(&self, root: &Path) -> io::Result<(Vec<Created>, Vec<Replaced>)> {
        let mut created = Vec::new();
        for path in self.absent.iter().cloned() {
            match fs::symlink_metadata(root.join(&path)) {
                Ok(meta) if meta.is_dir() => created.push(Created { path, sha256: None, unsettled: false }),
                Ok(_) => {
                    let sha256 = self.hash_now(root, &path)?;
                    created.push(Created { path, sha256, unsettled: false });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut replaced = Vec::new();
        for original in &self.replaced {
            let sha256 = self.hash_now(root, &original.path)?;
            replaced.push(Replaced { sha256, ..original.clone() });
        }
        Ok((created, replaced))
    }

    /// The hash of `rel` as it is now: the one known from writing it when
    /// it is still that very file, else read.
    fn hash_now(&self, root: &Path, rel: &Path) -> io::Result<Option<String>> {
        let path = root.join(rel);
        if let (Some(written), Ok(meta)) = (self.written.get(rel), fs::symlink_metadata(&path)) {
            if meta.is_file() && written.differs(&meta).is_none() {
                return Ok(written.sha256.clone());
            }
        }
        hash_if_present(&path)
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
    /// Created folders already written ahead in this run.
    folders_ahead: RefCell<std::collections::BTreeSet<PathBuf>>,
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

    /// Whether `rel` was absent when this run first touched it: a path
    /// there now was made by the run (as the parent of another, say).
    pub fn absent_at_first_touch(&self, rel: &Path) -> bool {
        self.seen.borrow().get(rel) == Some(&false)
    }

    /// Notes that the original of `rel` (with metadata `meta`) was copied
    /// to `saved`, a copy whose own hash is `saved_sha256`.
    pub fn kept(&self, rel: &Path, saved: &Path, meta: &fs::Metadata, saved_sha256: String) {
        let mtime = meta.modified().ok().map(|t| humantime::format_rfc3339_nanos(t).to_string());
        self.current.borrow_mut().replaced.push(Replaced {
            path: rel.to_path_buf(),
            saved: saved.to_path_buf(),
            mode: crate::fsutil::mode_of(meta),
            mtime,
            sha256: None,
            saved_sha256: Some(saved_sha256),
            unsettled: false,
        });
    }

    /// Notes that this action wrote `rel` whole: the file `meta` describes
    /// (taken before it was put in place) has hash `sha256`.
    pub fn wrote(&self, rel: &Path, meta: &fs::Metadata, sha256: String) {
        let seen = Seen { sha256: Some(sha256), ..Seen::of(meta) };
        self.current.borrow_mut().written.insert(rel.to_path_buf(), seen);
    }

    /// The copy kept for `rel` grew (lines appended while it was
    /// rewritten were added to it): its new hash.
    pub fn rehash_saved(&self, rel: &Path, saved_sha256: String) {
        for r in self.current.borrow_mut().replaced.iter_mut().filter(|r| r.path == rel) {
            r.saved_sha256 = Some(saved_sha256.clone());
        }
    }

    /// The records to write ahead of an act that leaves `rel` as `after`:
    /// its ancestors that did not exist (they can only become folders),
    /// `rel` itself if it did not exist, and the original kept for it.
    pub fn ahead(&self, rel: &Path, after: &After) -> Undo {
        let seen = self.seen.borrow();
        let mut folders = self.folders_ahead.borrow_mut();
        let absent = |p: &Path| seen.get(p) == Some(&false);
        let mut undo = Undo::default();
        let mut parents: Vec<&Path> = rel.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
        parents.reverse();
        for parent in parents.into_iter().filter(|p| absent(p)) {
            if folders.insert(parent.to_path_buf()) {
                undo.created.push(Created { path: parent.to_path_buf(), sha256: None, unsettled: false });
            }
        }
        let (sha256, unsettled) = match after {
            After::File(hash) => (Some(hash.clone()), false),
            After::Folder | After::Removed => (None, false),
            After::Unknown => (None, true),
        };
        if absent(rel) && *after != After::Removed {
            let already = *after == After::Folder && !folders.insert(rel.to_path_buf());
            if !already {
                undo.created.push(Created { path: rel.to_path_buf(), sha256: sha256.clone(), unsettled });
            }
        }
        for original in self.current.borrow().replaced.iter().filter(|r| r.path == rel) {
            undo.replaced.push(Replaced { sha256: sha256.clone(), unsettled, ..original.clone() });
        }
        undo
    }

    /// Notes that the existing file `rel` was changed in place.
    pub fn changed(&self, rel: &Path) {
        let mut current = self.current.borrow_mut();
        if !current.changed.iter().any(|p| p == rel) {
            current.changed.push(rel.to_path_buf());
        }
    }

    /// Forgets the action that just ran, which changed nothing (it was
    /// skipped); returns the paths whose originals it had kept.
    pub fn discard(&self) -> Vec<PathBuf> {
        self.take().replaced.into_iter().map(|r| r.path).collect()
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

#[test]
fn records_written_ahead_name_new_folders_once_and_the_state_to_come() {
    let root = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    journal.touch(root.path(), Path::new("a/b/f.json"));
    let undo = journal.ahead(Path::new("a/b/f.json"), &After::File("h".into()));
    let created: Vec<(&Path, Option<&str>)> =
        undo.created.iter().map(|c| (c.path.as_path(), c.sha256.as_deref())).collect();
    assert_eq!(created, [(Path::new("a"), None), (Path::new("a/b"), None), (Path::new("a/b/f.json"), Some("h"))]);
    journal.touch(root.path(), Path::new("a/c"));
    let again = journal.ahead(Path::new("a/c"), &After::Folder);
    assert_eq!(again.created.len(), 1, "a is already written ahead: {again:?}");
    let unknown = journal.ahead(Path::new("a/b/f.json"), &After::Unknown);
    assert!(unknown.created[0].unsettled);
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
