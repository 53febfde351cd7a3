//! The applier: carries out operations under the safety rules. Every write
//! is atomic, every replaced or removed original is copied to the run's
//! quarantine first, and nothing outside the root is touched: every path is
//! reached through directory handles opened beneath the root (`confined`),
//! at the moment the operation acts.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Seek};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use super::atomic::AtomicWriter;
use super::confined::{Dir, Identity, Root};
use super::fix::Op;
use super::journal::{Changes, Journal};
use super::layout::{self, Area};
use crate::fsutil;

/// What an operation may use while it runs. Custom operations must go
/// through these helpers for anything they write.
pub struct ApplyCtx<'a> {
    root: &'a Path,
    /// The root's handle, opened on first use.
    handle: OnceCell<Root>,
    run_id: &'a str,
    /// Backups and quarantined copies made by the current action, relative
    /// to the root, for the history.
    saved: Vec<PathBuf>,
    /// Files already quarantined in this run: the first copy is the original.
    quarantined: std::collections::HashSet<PathBuf>,
    /// What the run created and which originals it kept, for rollback.
    journal: Journal,
    /// A database action's statements and its engine's undo record, for
    /// the history (drained after each action).
    database: (Vec<String>, Option<serde_json::Value>),
}

/// A copy kept in the run's quarantine.
pub struct Saved {
    /// Relative to the root.
    pub path: PathBuf,
    /// The copy, open for reading from its start: what a repair reads is
    /// exactly what was kept.
    pub file: File,
}

impl<'a> ApplyCtx<'a> {
    pub fn new(root: &'a Path, run_id: &'a str) -> Self {
        ApplyCtx {
            root,
            handle: OnceCell::new(),
            run_id,
            saved: Vec::new(),
            quarantined: Default::default(),
            journal: Journal::default(),
            database: Default::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root
    }

    pub fn run_id(&self) -> &str {
        self.run_id
    }

    /// The root's handle: everything written goes through it.
    pub fn handle(&self) -> anyhow::Result<&Root> {
        if self.handle.get().is_none() {
            let _ = self.handle.set(Root::open(self.root)?);
        }
        Ok(self.handle.get().expect("set above"))
    }

    /// The absolute path of `rel`, refused when it leaves the root today,
    /// for programs that can only take a path (SQLite). Never write through
    /// it with `std::fs`: use the handle-based helpers. The path is noted in
    /// the run's journal, so what is created there can be rolled back.
    pub fn resolve(&self, rel: &Path) -> anyhow::Result<PathBuf> {
        let path = fsutil::resolve(self.root, rel)?;
        self.journal.touch(self.root, rel);
        Ok(path)
    }

    /// The folder holding `rel` (created when `create`) and the file's name.
    /// `rel` is noted in the journal.
    pub fn parent(&self, rel: &Path, create: bool) -> anyhow::Result<(Dir, OsString)> {
        self.journal.touch(self.root, rel);
        let root = self.handle()?;
        let found = if create { root.create_parent(rel, &mut Vec::new()) } else { root.parent(rel) };
        Ok(found?)
    }

    /// The regular file at `rel`, open for reading; `None` when missing.
    /// A FIFO or device is refused without blocking.
    pub fn read(&self, rel: &Path) -> anyhow::Result<Option<File>> {
        Ok(self.handle()?.open_read(rel)?)
    }

    /// The identity of the file at `rel`, which heal is about to change in
    /// place: refused unless it is a regular file with a single link.
    pub fn in_place(&self, rel: &Path) -> anyhow::Result<Identity> {
        let (dir, name) = self.parent(rel, false)?;
        Ok(dir.identity_in_place(&name)?)
    }

    /// An atomic replacement of `rel`, its missing folders created.
    pub fn writer(&self, rel: &Path) -> anyhow::Result<AtomicWriter> {
        let (dir, name) = self.parent(rel, true)?;
        AtomicWriter::in_dir(dir, &name).with_context(|| format!("cannot write {}", rel.display()))
    }

    /// What the action that just ran created and kept, for the history.
    pub fn take_changes(&mut self) -> Changes {
        self.journal.take()
    }

    /// A database action's statements as they ran and how its engine can
    /// undo it (a server-side change has no file to keep): both go to the
    /// history with the action.
    pub fn record_database(&mut self, sql: Vec<String>, undo: Option<serde_json::Value>) {
        self.database = (sql, undo);
    }

    /// What `record_database` kept for the action that just ran.
    pub fn take_database(&mut self) -> (Vec<String>, Option<serde_json::Value>) {
        std::mem::take(&mut self.database)
    }

    /// Copies of what this action saved, drained for the history.
    pub fn take_saved(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.saved)
    }

    /// `.preflight/<area>/<run>/` + the folder of `rel`, created private
    /// (0700), and the file name.
    fn private_dir(&mut self, area: Area, rel: &Path) -> anyhow::Result<(Dir, PathBuf)> {
        let relative = layout::saved_copy(area, self.run_id, rel);
        let (parent, _) = relative.parent().zip(relative.file_name()).context("not a file path")?;
        let dir = self
            .handle()?
            .create_dir_all(parent, 0o700, &mut Vec::new())
            .with_context(|| format!("cannot create {}", parent.display()))?;
        Ok((dir, relative))
    }

    /// Creates a new private (0600) file for a copy; a name already taken
    /// in this run gets a numbered suffix. Returns it with its path.
    fn new_private_file(&mut self, area: Area, rel: &Path) -> anyhow::Result<(File, PathBuf)> {
        let (dir, relative) = self.private_dir(area, rel)?;
        let name = relative.file_name().expect("checked by private_dir").to_os_string();
        for attempt in 0.. {
            let candidate = match attempt {
                0 => name.clone(),
                n => {
                    let mut numbered = name.clone();
                    numbered.push(format!(".{n}"));
                    numbered
                }
            };
            match dir.create_new(&candidate, 0o600) {
                Ok(file) => {
                    let path = relative.with_file_name(&candidate);
                    self.saved.push(path.clone());
                    return Ok((file, path));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// Copies the file at `rel`, byte for byte, into the run's quarantine
    /// (only the owner can read the copy: originals may hold secrets).
    /// Returns the copy, or `None` when there was nothing to keep.
    pub fn quarantine(&mut self, rel: &Path) -> anyhow::Result<Option<Saved>> {
        if self.quarantined.contains(rel) {
            return Ok(None);
        }
        self.journal.touch(self.root, rel);
        let mut source = match self.read(rel) {
            Ok(Some(file)) => file,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.context(format!("{} is left alone", rel.display()))),
        };
        let meta = source.metadata()?;
        let (mut copy, saved) = self.new_private_file(Area::Quarantine, rel)?;
        io::copy(&mut source, &mut copy).with_context(|| format!("cannot quarantine {}", rel.display()))?;
        copy.sync_all()?;
        copy.rewind()?;
        self.quarantined.insert(rel.to_path_buf());
        self.journal.kept(rel, &saved, &meta);
        Ok(Some(Saved { path: saved, file: copy }))
    }

    /// A new private file inside the run's quarantine, such as the bad
    /// lines of a JSONL file (`name` relative to the quarantine folder).
    pub fn quarantine_file(&mut self, name: &Path) -> anyhow::Result<(File, PathBuf)> {
        self.new_private_file(Area::Quarantine, name)
    }

    /// A new, empty private (0600) file in the run's backup folder
    /// (`.preflight/backups/<run>/`): its absolute path and a handle on it.
    /// The caller must write there a full SQLite online backup of the
    /// database at `rel` (SQLite takes a path): `rollback` restores it over
    /// `rel`.
    pub fn backup_path(&mut self, rel: &Path) -> anyhow::Result<(PathBuf, File)> {
        let (file, backup) = self.new_private_file(Area::Backups, rel)?;
        if let Some(original) = self.read(rel)? {
            self.journal.kept(rel, &backup, &original.metadata()?);
        }
        Ok((self.root.join(backup), file))
    }

    /// Notes that the existing file `rel` was changed in place by this
    /// action (a database altered in a transaction), so that `rollback`
    /// can tell whether a copy kept by the run undoes it.
    pub fn note_changed(&mut self, rel: &Path) {
        self.journal.changed(rel);
    }

    /// Removes a backup this action made that turned out to protect
    /// nothing (every change it was taken for failed and was undone): a
    /// run that fails keeps no backup of its own. Its record goes too, and
    /// the run's backup folders once empty.
    pub fn discard_saved(&mut self, copy: &Path) -> anyhow::Result<()> {
        let relative = copy.strip_prefix(self.root).unwrap_or(copy).to_path_buf();
        let root = self.handle()?;
        match root.parent(&relative).and_then(|(dir, name)| dir.unlink(&name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", relative.display()))
            }
            _ => {}
        }
        let top = layout::run_folder(Area::Backups, self.run_id);
        let mut folder = relative.parent();
        while let Some(dir) = folder.filter(|d| d.starts_with(&top)) {
            if root.parent(dir).and_then(|(parent, name)| parent.rmdir(&name)).is_err() {
                break; // not empty: another database's backup is there
            }
            folder = dir.parent();
        }
        self.saved.retain(|p| *p != relative);
        self.journal.forget_kept(&relative);
        Ok(())
    }

    /// Quarantines any original, then writes `contents` atomically.
    pub fn write_file(&mut self, rel: &Path, contents: &[u8], mode: Option<u32>) -> anyhow::Result<()> {
        use std::io::Write;
        self.quarantine(rel)?;
        let mut writer = self.writer(rel)?.mode(mode);
        writer.write_all(contents)?;
        writer.commit().with_context(|| format!("cannot write {}", rel.display()))
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
        let mut input = self.read(saved)?.with_context(|| format!("{} is gone", saved.display()))?;
        let mut writer = self.writer(rel)?.mode(Some(mode)).modified(mtime);
        io::copy(&mut input, &mut writer).with_context(|| format!("cannot write {}", rel.display()))?;
        writer.commit().with_context(|| format!("cannot write {}", rel.display()))
    }

    /// Removes a file, or a folder when `folder`, that is no longer wanted
    /// (rollback of what a run created). Already gone is fine.
    pub fn remove_created(&mut self, rel: &Path, folder: bool) -> anyhow::Result<()> {
        let (dir, name) = match self.parent(rel, false) {
            Ok(found) => found,
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let removed = if folder { dir.rmdir(&name) } else { dir.unlink(&name) };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(dir.sync()?),
        }
    }

    /// Gives what the last action created (per `changes`) to `uid`:`gid`:
    /// heal run as root creates what the `[app] user` will use as that
    /// user's. Taking the changes is left to the caller, which records them.
    pub fn give_created(&self, changes: &Changes, uid: u32, gid: u32) -> anyhow::Result<()> {
        let root = self.handle()?;
        for rel in changes.created() {
            match root.chown(rel, uid, gid) {
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
                self.journal.touch(self.root, path);
                let before =
                    self.handle()?.chmod(path, *mode).with_context(|| format!("cannot chmod {}", path.display()))?;
                self.journal.mode_changed(path, before, *mode);
                Ok(format!("mode {mode:04o}"))
            }
            Op::SetOwner { path, uid, gid } => {
                self.journal.touch(self.root, path);
                let before = self
                    .handle()?
                    .chown(path, *uid, *gid)
                    .with_context(|| format!("cannot chown {}", path.display()))?;
                self.journal.owner_changed(path, before, (*uid, *gid));
                Ok(format!("owner {uid}:{gid}"))
            }
            Op::RemoveFile { path, quarantine } => {
                if *quarantine {
                    self.quarantine(path)?;
                }
                let (dir, name) = self.parent(path, false)?;
                dir.unlink(&name)?; // a folder is refused (EISDIR)
                dir.sync()?;
                Ok("removed".into())
            }
            Op::Touch { path } => {
                let (dir, name) = self.parent(path, true)?;
                dir.touch(&name).with_context(|| format!("cannot touch {}", path.display()))?;
                Ok("touched".into())
            }
            Op::Custom(custom) => custom.apply(self),
        }
    }

    fn create_dir(&mut self, rel: &Path, mode: Option<u32>) -> anyhow::Result<String> {
        let (dir, name) = self.parent(rel, true)?;
        dir.mkdir(&name, mode).with_context(|| format!("cannot create directory {}", rel.display()))?;
        dir.sync()?;
        Ok(match mode {
            Some(m) => format!("created with mode {m:04o}"),
            None => "created".into(),
        })
    }
}

fn not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
}
