//! The applier: carries out operations under the safety rules. Every write
//! is atomic, every replaced or removed original is copied to the run's
//! quarantine first, and nothing outside the root is touched.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use super::atomic;
use super::fix::Op;
use super::journal::{Changes, Journal};
use super::layout::{self, Area};
use crate::fsutil;

/// What an operation may use while it runs. Custom operations must go
/// through these helpers for anything they write.
pub struct ApplyCtx<'a> {
    root: &'a Path,
    run_id: &'a str,
    /// Backups and quarantined copies made by the current action, relative
    /// to the root, for the history.
    saved: Vec<PathBuf>,
    /// Files already quarantined in this run: the first copy is the original.
    quarantined: std::collections::HashSet<PathBuf>,
    /// What the run created and which originals it kept, for rollback.
    journal: Journal,
}

impl<'a> ApplyCtx<'a> {
    pub fn new(root: &'a Path, run_id: &'a str) -> Self {
        ApplyCtx { root, run_id, saved: Vec::new(), quarantined: Default::default(), journal: Journal::default() }
    }

    pub fn root(&self) -> &Path {
        self.root
    }

    pub fn run_id(&self) -> &str {
        self.run_id
    }

    /// The absolute path of `rel`, refused when it would leave the root.
    /// The path is noted in the run's journal, so a file or folder created
    /// through it can be removed again by `rollback`.
    pub fn resolve(&self, rel: &Path) -> anyhow::Result<PathBuf> {
        let path = fsutil::resolve(self.root, rel)?;
        self.journal.touch(self.root, rel);
        Ok(path)
    }

    /// What the action that just ran created and kept, for the history.
    pub fn take_changes(&mut self) -> Changes {
        self.journal.take()
    }

    /// Copies of what this action saved, drained for the history.
    pub fn take_saved(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.saved)
    }

    /// `.preflight/<area>/<run>/<rel>`, parents created private (0700).
    fn private_path(&mut self, area: Area, rel: &Path) -> anyhow::Result<PathBuf> {
        let relative = layout::saved_copy(area, self.run_id, rel);
        let absolute = self.root.join(&relative);
        let parent = fsutil::parent_dir(&absolute);
        fsutil::create_private_dir(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        self.saved.push(relative);
        Ok(absolute)
    }

    /// Copies the file at `rel`, byte for byte, into the run's quarantine.
    /// Returns the copy's path, or `None` when there was nothing to keep.
    pub fn quarantine(&mut self, rel: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self.quarantined.contains(rel) {
            return Ok(None);
        }
        let source = self.resolve(rel)?;
        match fs::symlink_metadata(&source) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => anyhow::bail!("{} is not a regular file; it is left alone", rel.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", rel.display())),
        }
        let target = self.private_path(Area::Quarantine, rel)?;
        let copy = copy_private(&source, &target).with_context(|| format!("cannot quarantine {}", rel.display()))?;
        self.quarantined.insert(rel.to_path_buf());
        let saved = copy.strip_prefix(self.root).unwrap_or(&copy);
        if let Ok(meta) = fs::symlink_metadata(&source) {
            self.journal.kept(rel, saved, &meta);
        }
        Ok(Some(copy))
    }

    /// A path inside the run's quarantine for a new file, such as the bad
    /// lines of a JSONL file (`name` relative to the quarantine folder).
    pub fn quarantine_path(&mut self, name: &Path) -> anyhow::Result<PathBuf> {
        self.private_path(Area::Quarantine, name)
    }

    /// A path inside the run's backup folder (`.preflight/backups/<run>/`).
    /// The caller must write there a full SQLite online backup of the
    /// database at `rel`: `rollback` restores it over `rel`.
    pub fn backup_path(&mut self, rel: &Path) -> anyhow::Result<PathBuf> {
        let backup = self.private_path(Area::Backups, rel)?;
        if let Ok(meta) = fs::symlink_metadata(self.resolve(rel)?) {
            let saved = backup.strip_prefix(self.root).unwrap_or(&backup);
            self.journal.kept(rel, saved, &meta);
        }
        Ok(backup)
    }

    /// Quarantines any original, then writes `contents` atomically.
    pub fn write_file(&mut self, rel: &Path, contents: &[u8], mode: Option<u32>) -> anyhow::Result<()> {
        self.quarantine(rel)?;
        let path = self.resolve(rel)?;
        create_parents(self.root, rel)?;
        atomic::write(&path, contents, mode).with_context(|| format!("cannot write {}", rel.display()))
    }

    /// Puts the saved copy (relative to the root) back over `rel`
    /// atomically, with the original's permission bits and modification time.
    pub fn restore_copy(
        &mut self,
        rel: &Path,
        saved: &Path,
        mode: u32,
        mtime: Option<SystemTime>,
    ) -> anyhow::Result<()> {
        let target = self.resolve(rel)?;
        create_parents(self.root, rel)?;
        let mut input =
            fs::File::open(self.root.join(saved)).with_context(|| format!("cannot read {}", saved.display()))?;
        let mut writer = atomic::AtomicWriter::create(&target)?.mode(Some(mode)).modified(mtime);
        io::copy(&mut input, &mut writer).with_context(|| format!("cannot write {}", rel.display()))?;
        writer.commit().with_context(|| format!("cannot write {}", rel.display()))
    }

    /// Removes a file, or a folder when `folder`, that is no longer wanted
    /// (rollback of what a run created). Already gone is fine.
    pub fn remove_created(&mut self, rel: &Path, folder: bool) -> anyhow::Result<()> {
        let abs = self.resolve(rel)?;
        let removed = if folder { fs::remove_dir(&abs) } else { fs::remove_file(&abs) };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", rel.display()))
            }
            _ => Ok(fsutil::sync_dir(fsutil::parent_dir(&abs))?),
        }
    }

    /// Gives what the last action created (per `changes`) to `uid`:`gid`:
    /// heal run as root creates what the `[app] user` will use as that
    /// user's. Taking the changes is left to the caller, which records them.
    pub fn give_created(&self, changes: &Changes, uid: u32, gid: u32) -> anyhow::Result<()> {
        for rel in changes.created() {
            let abs = fsutil::resolve(self.root, rel)?;
            match std::os::unix::fs::lchown(&abs, Some(uid), Some(gid)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot chown {}", rel.display()))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs one operation.
    pub fn apply(&mut self, op: &Op) -> anyhow::Result<String> {
        match op {
            Op::CreateDir { path, mode } => self.create_dir(path, *mode),
            Op::WriteFile { path, contents, mode, .. } => {
                self.write_file(path, contents, *mode)?;
                Ok(format!("wrote {} bytes", contents.len()))
            }
            Op::SetMode { path, mode } => {
                let abs = self.resolve(path)?;
                if let Ok(meta) = fs::symlink_metadata(&abs) {
                    self.journal.mode_changed(path, fsutil::mode_of(&meta), *mode);
                }
                fs::set_permissions(&abs, fs::Permissions::from_mode(*mode))
                    .with_context(|| format!("cannot chmod {}", path.display()))?;
                Ok(format!("mode {mode:04o}"))
            }
            Op::SetOwner { path, uid, gid } => {
                let abs = self.resolve(path)?;
                if let Ok(meta) = fs::symlink_metadata(&abs) {
                    self.journal.owner_changed(path, (meta.uid(), meta.gid()), (*uid, *gid));
                }
                std::os::unix::fs::chown(&abs, Some(*uid), Some(*gid))
                    .with_context(|| format!("cannot chown {}", path.display()))?;
                Ok(format!("owner {uid}:{gid}"))
            }
            Op::RemoveFile { path, quarantine } => {
                if *quarantine {
                    self.quarantine(path)?;
                }
                let abs = self.resolve(path)?;
                fs::remove_file(&abs).with_context(|| format!("cannot remove {}", path.display()))?;
                fsutil::sync_dir(fsutil::parent_dir(&abs))?;
                Ok("removed".into())
            }
            Op::Touch { path } => {
                let abs = self.resolve(path)?;
                create_parents(self.root, path)?;
                let file = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&abs)
                    .with_context(|| format!("cannot touch {}", path.display()))?;
                file.set_modified(std::time::SystemTime::now())?;
                Ok("touched".into())
            }
            Op::Custom(custom) => custom.apply(self),
        }
    }

    fn create_dir(&mut self, rel: &Path, mode: Option<u32>) -> anyhow::Result<String> {
        let abs = self.resolve(rel)?;
        create_parents(self.root, rel)?;
        match fs::create_dir(&abs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && abs.is_dir() => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create directory {}", rel.display())),
        }
        if let Some(mode) = mode {
            // Set explicitly: the umask would otherwise narrow it.
            fs::set_permissions(&abs, fs::Permissions::from_mode(mode))?;
        }
        fsutil::sync_dir(fsutil::parent_dir(&abs))?;
        Ok(match mode {
            Some(m) => format!("created with mode {m:04o}"),
            None => "created".into(),
        })
    }
}

/// Creates the missing parent folders of `rel`, checking each stays inside.
fn create_parents(root: &Path, rel: &Path) -> anyhow::Result<()> {
    let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let abs = fsutil::resolve(root, parent)?;
    fs::create_dir_all(&abs).with_context(|| format!("cannot create directory {}", parent.display()))
}

/// Copies a file so that only the owner can read the copy: originals may
/// hold secrets. A name already taken in this run gets a numbered suffix.
fn copy_private(source: &Path, target: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut input = fs::File::open(source)?;
    for attempt in 0.. {
        let candidate = match attempt {
            0 => target.to_path_buf(),
            n => PathBuf::from(format!("{}.{n}", target.display())),
        };
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&candidate) {
            Ok(mut output) => {
                io::copy(&mut input, &mut output)?;
                output.sync_all()?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}
