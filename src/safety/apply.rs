//! The applier: carries out operations under the safety rules. Every write
//! is atomic, every replaced or removed original is copied to the run's
//! quarantine first, nothing outside the root is touched, a file is
//! replaced only if it is still what the check saw (`precondition`), and
//! what undoes each act is in the history before it acts (`ahead`).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use super::ahead::Ahead;
use super::atomic;
use super::copy;
use super::fix::Op;
use super::journal::{After, Changes, Journal, Undo};
use super::layout::{self, Area};
use super::precondition::{self, Expect, Skip};
use crate::fsutil;

/// What an operation may use while it runs. Custom operations must go
/// through these helpers for anything they write.
pub struct ApplyCtx<'a> {
    pub(super) root: &'a Path,
    pub(super) run_id: &'a str,
    /// Backups and quarantined copies made by the current action, relative
    /// to the root, for the history.
    pub(super) saved: Vec<PathBuf>,
    /// Files already quarantined in this run: the first copy is the original.
    pub(super) quarantined: std::collections::HashSet<PathBuf>,
    /// What the run created and which originals it kept, for rollback.
    pub(super) journal: Journal,
    /// The action in progress, whose undo records are written ahead.
    ahead: Ahead,
}

impl<'a> ApplyCtx<'a> {
    pub fn new(root: &'a Path, run_id: &'a str) -> Self {
        ApplyCtx {
            root,
            run_id,
            saved: Vec::new(),
            quarantined: Default::default(),
            journal: Journal::default(),
            ahead: Ahead::default(),
        }
    }

    /// Starts an action of a heal run: from now on, what undoes each act
    /// is appended to the history before the act.
    pub fn begin(&mut self, id: &str, action: &str) -> anyhow::Result<()> {
        self.ahead.begin(self.root, self.run_id, id, action)
    }

    /// Writes ahead what undoes an act that will leave `rel` as `after`.
    pub fn write_ahead(&mut self, rel: &Path, after: After) -> anyhow::Result<()> {
        let undo = self.journal.ahead(rel, &after);
        self.ahead.record(self.root, self.run_id, undo)
    }

    /// The action that just ran was skipped: it changed nothing, so the
    /// copies it kept are removed and its records forgotten.
    pub fn discard(&mut self) {
        for rel in self.journal.discard() {
            self.quarantined.remove(&rel);
        }
        for saved in self.take_saved() {
            let _ = fs::remove_file(self.root.join(saved));
        }
        self.ahead.end();
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
        self.ahead.end();
        self.journal.take()
    }

    /// Copies of what this action saved, drained for the history.
    pub fn take_saved(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.saved)
    }

    /// `.preflight/<area>/<run>/<rel>`, parents created private (0700).
    /// Not listed as saved until `saved_copy` says it holds what it must.
    pub(super) fn private_path(&mut self, area: Area, rel: &Path) -> anyhow::Result<PathBuf> {
        let absolute = self.root.join(layout::saved_copy(area, self.run_id, rel));
        let parent = fsutil::parent_dir(&absolute);
        fsutil::create_private_dir(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        Ok(absolute)
    }

    /// Lists a complete copy (absolute path) as saved by this action;
    /// returns it relative to the root.
    pub(super) fn saved_copy(&mut self, absolute: &Path) -> PathBuf {
        let relative = absolute.strip_prefix(self.root).unwrap_or(absolute).to_path_buf();
        self.saved.push(relative.clone());
        relative
    }

    /// Copies the file at `rel`, byte for byte, into the run's quarantine,
    /// and checks the copy once durable. Returns the copy's path, or
    /// `None` when there was nothing to keep.
    pub fn quarantine(&mut self, rel: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self.quarantined.contains(rel) {
            return Ok(None);
        }
        let source = match precondition::open_regular(&self.resolve(rel)?) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot quarantine {}; it is left alone", rel.display())),
        };
        let meta = source.metadata()?;
        let target = self.private_path(Area::Quarantine, rel)?;
        let (copy, hash) =
            copy::copy_file(&source, &target).with_context(|| format!("cannot quarantine {}", rel.display()))?;
        self.keep(rel, &copy, &meta, hash);
        Ok(Some(copy))
    }

    /// Notes a verified copy of `rel`'s original (metadata `meta`).
    pub(super) fn keep(&mut self, rel: &Path, copy: &Path, meta: &fs::Metadata, hash: String) {
        self.quarantined.insert(rel.to_path_buf());
        let saved = self.saved_copy(copy);
        self.journal.kept(rel, &saved, meta, hash);
    }

    /// A path inside the run's quarantine for a new file, such as the bad
    /// lines of a JSONL file (`name` relative to the quarantine folder).
    /// It is listed as saved by the action.
    pub fn quarantine_path(&mut self, name: &Path) -> anyhow::Result<PathBuf> {
        let path = self.private_path(Area::Quarantine, name)?;
        self.saved_copy(&path);
        Ok(path)
    }

    /// A path inside the run's backup folder (`.preflight/backups/<run>/`).
    /// The caller writes there a full SQLite online backup of the database
    /// at `rel`, then calls `backup_saved` before changing the database.
    pub fn backup_path(&mut self, rel: &Path) -> anyhow::Result<PathBuf> {
        self.private_path(Area::Backups, rel)
    }

    /// The backup at `backup` is complete and durable: it is recorded, and
    /// written ahead as the undo of the change about to be made to `rel`
    /// (whose result SQLite decides). `rollback` restores it over `rel`.
    pub fn backup_saved(&mut self, rel: &Path, backup: &Path) -> anyhow::Result<()> {
        let meta = fs::symlink_metadata(self.resolve(rel)?)?;
        let hash = super::journal::sha256_file(backup)?;
        let saved = self.saved_copy(backup);
        self.journal.kept(rel, &saved, &meta, hash);
        self.write_ahead(rel, After::Unknown)
    }

    /// Writes `contents` atomically where the check saw `expect`: a new
    /// file only where there was none, a replacement (its original
    /// quarantined first) only of the very file the check read.
    pub fn write_file(
        &mut self,
        rel: &Path,
        contents: &[u8],
        mode: Option<u32>,
        expect: &Expect,
    ) -> anyhow::Result<()> {
        let path = self.resolve(rel)?;
        let after = After::File(precondition::sha256(contents));
        match expect {
            Expect::Absent => {
                if fs::symlink_metadata(&path).is_ok() {
                    return Err(Skip::Changed("a file was created there".into()).into());
                }
                self.write_ahead(rel, after.clone())?;
                self.make_parents(rel)?;
                let staged = stage(&path, contents, mode).with_context(|| format!("cannot write {}", rel.display()))?;
                self.note_written(rel, &staged, &after)?;
                staged.commit_new().map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => Skip::Changed("a file was created there".into()).into(),
                    _ => anyhow::Error::new(e).context(format!("cannot write {}", rel.display())),
                })
            }
            Expect::Unchanged(seen) => {
                self.quarantine_checked(rel, seen)?;
                let staged = stage(&path, contents, mode).with_context(|| format!("cannot write {}", rel.display()))?;
                self.commit_checked(rel, staged, seen, after)
            }
        }
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
        self.make_parents(rel)?;
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

    /// Notes the hash of a staged replacement of `rel`, so the end of the
    /// action need not read the file again.
    pub(super) fn note_written(&self, rel: &Path, staged: &atomic::Staged, after: &After) -> io::Result<()> {
        if let After::File(hash) = after {
            self.journal.wrote(rel, &fs::metadata(staged.path())?, hash.clone());
        }
        Ok(())
    }

    /// Creates the missing parent folders of `rel`, checking each stays
    /// inside, with their undo written ahead.
    pub fn make_parents(&mut self, rel: &Path) -> anyhow::Result<()> {
        let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(());
        };
        let abs = fsutil::resolve(self.root, parent)?;
        if abs.is_dir() {
            return Ok(());
        }
        self.resolve(parent)?;
        self.write_ahead(parent, After::Folder)?;
        fs::create_dir_all(&abs).with_context(|| format!("cannot create directory {}", parent.display()))
    }

    /// Runs one operation.
    pub fn apply(&mut self, op: &Op) -> anyhow::Result<String> {
        match op {
            Op::CreateDir { path, mode } => self.create_dir(path, *mode),
            Op::WriteFile { path, contents, mode, expect, .. } => {
                self.write_file(path, contents, *mode, expect)?;
                Ok(format!("wrote {} bytes", contents.len()))
            }
            Op::SetMode { path, mode } => {
                let abs = self.resolve(path)?;
                if let Ok(meta) = fs::symlink_metadata(&abs) {
                    let from = fsutil::mode_of(&meta);
                    self.journal.mode_changed(path, from, *mode);
                    let change = super::journal::ModeChange { path: path.clone(), from, to: *mode };
                    self.ahead.record(self.root, self.run_id, Undo { modes: vec![change], ..Undo::default() })?;
                }
                fs::set_permissions(&abs, fs::Permissions::from_mode(*mode))
                    .with_context(|| format!("cannot chmod {}", path.display()))?;
                Ok(format!("mode {mode:04o}"))
            }
            Op::RemoveFile { path, quarantine } => {
                if *quarantine {
                    self.quarantine(path)?;
                }
                let abs = self.resolve(path)?;
                self.write_ahead(path, After::Removed)?;
                fs::remove_file(&abs).with_context(|| format!("cannot remove {}", path.display()))?;
                fsutil::sync_dir(fsutil::parent_dir(&abs))?;
                Ok("removed".into())
            }
            Op::Touch { path } => {
                let abs = self.resolve(path)?;
                if fs::symlink_metadata(&abs).is_err() {
                    self.write_ahead(path, After::File(precondition::sha256(b"")))?;
                }
                self.make_parents(path)?;
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
        self.write_ahead(rel, After::Folder)?;
        self.make_parents(rel)?;
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

/// Writes `contents` to a durable temporary file beside `path`.
fn stage(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<atomic::Staged> {
    let mut writer = atomic::AtomicWriter::create(path)?.mode(mode);
    writer.write_all(contents)?;
    writer.stage()
}
