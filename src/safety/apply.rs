//! The applier: carries out operations under the safety rules. Every write
//! is atomic, every replaced or removed original is copied to the run's
//! quarantine first, and nothing outside the root is touched: every path is
//! reached through directory handles opened beneath the root (`confined`),
//! at the moment the operation acts. A file is replaced only if it is
//! still what the check saw (`precondition`, `replace`), and what undoes
//! each act is in the history before it acts (`ahead`).

use std::cell::OnceCell;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Seek};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use super::ahead::Ahead;
use super::atomic::{AtomicWriter, Staged};
use super::confined::{Dir, Identity, Root};
use super::copy::Copy;
use super::fix::Op;
use super::journal::{After, Changes, Journal, ModeChange, OwnerChange, Undo};
use super::layout::{self, Area};
use super::precondition::{self, Expect, Skip};
use super::progress::{Progress, Silent, Task};
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
    pub(super) quarantined: std::collections::HashSet<PathBuf>,
    /// What the run created and which originals it kept, for rollback.
    pub(super) journal: Journal,
    /// The action in progress, whose undo records are written ahead.
    ahead: Ahead,
    /// A database action's statements and its engine's undo record, for
    /// the history (drained after each action).
    database: (Vec<String>, Option<serde_json::Value>),
    /// Where long operations report how far they are.
    progress: &'a dyn Progress,
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
            ahead: Ahead::default(),
            database: Default::default(),
            progress: &Silent,
        }
    }

    /// Long operations (a rebuild, a backup, a log rewrite, a salvage)
    /// report to `progress` instead of to nobody.
    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The sink long operations report to.
    pub fn progress(&self) -> &'a dyn Progress {
        self.progress
    }

    /// Starts an action of a heal run: from now on, what undoes each act
    /// is appended to the history before the act.
    pub fn begin(&mut self, id: &str, action: &str) -> anyhow::Result<()> {
        self.ahead.begin(self.root, self.run_id, id, action)
    }

    /// Writes ahead what undoes an act that will leave `rel` as `after`.
    pub fn write_ahead(&self, rel: &Path, after: After) -> anyhow::Result<()> {
        self.journal.touch(self.root, rel);
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
            if let Ok((dir, name)) = self.handle().and_then(|root| Ok(root.parent(&saved)?)) {
                let _ = dir.unlink(&name);
            }
        }
        self.ahead.end();
    }

    /// Notes the hash of a staged replacement of `rel`, so the end of the
    /// action need not read the file again.
    pub(super) fn note_written(&self, rel: &Path, staged: &Staged, after: &After) {
        if let After::File(hash) = after {
            self.journal.wrote(rel, staged.metadata(), hash.clone());
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

    /// The folder holding `rel` (created when `create`, with the undo of
    /// each folder created written ahead) and the file's name. `rel` is
    /// noted in the journal.
    pub fn parent(&self, rel: &Path, create: bool) -> anyhow::Result<(Dir, OsString)> {
        self.journal.touch(self.root, rel);
        if let Some(folder) = rel.parent().filter(|p| create && !p.as_os_str().is_empty()) {
            self.write_ahead(folder, After::Folder)?;
        }
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
        self.ahead.end();
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
    /// in this run gets a numbered suffix. Returns it with its path, which
    /// the caller lists as saved (`saved.push`) once it holds what it must.
    pub(super) fn new_private_file(&mut self, area: Area, rel: &Path) -> anyhow::Result<(File, PathBuf)> {
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
                Ok(file) => return Ok((file, relative.with_file_name(&candidate))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// Copies the file at `rel`, byte for byte, into the run's quarantine
    /// (only the owner can read the copy: originals may hold secrets). The
    /// copy is kept, and listed, only once it is durable and whole.
    /// Returns the copy, or `None` when there was nothing to keep.
    pub fn quarantine(&mut self, rel: &Path) -> anyhow::Result<Option<Saved>> {
        if self.quarantined.contains(rel) {
            return Ok(None);
        }
        self.journal.touch(self.root, rel);
        let source = match self.read(rel) {
            Ok(Some(file)) => file,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.context(format!("{} is left alone", rel.display()))),
        };
        let meta = source.metadata()?;
        let (copy, hash) = self.copy_whole(rel, &source, &Silent)?;
        self.keep(rel, &copy, &meta, hash);
        let mut file = self.read(&copy)?.with_context(|| format!("{} is gone", copy.display()))?;
        file.rewind()?;
        Ok(Some(Saved { path: copy, file }))
    }

    /// A verified private copy of everything `source` holds; a copy cut
    /// short is removed. Returns its path and the hash of its bytes.
    /// `task` is told the bytes copied.
    pub(super) fn copy_whole(
        &mut self,
        rel: &Path,
        source: &File,
        task: &dyn Task,
    ) -> anyhow::Result<(PathBuf, String)> {
        let (file, path) = self.new_private_file(Area::Quarantine, rel)?;
        let mut copy = Copy::new(file, None);
        match copy.copy_from(source, 0, task).and_then(|_| copy.seal()) {
            Ok(hash) => Ok((path, hash)),
            Err(e) => {
                self.remove_private(&path);
                Err(e).with_context(|| format!("cannot quarantine {}", rel.display()))
            }
        }
    }

    /// Lists `copy`, a verified copy of `rel`'s original (metadata `meta`),
    /// as saved and kept by this action.
    pub(super) fn keep(&mut self, rel: &Path, copy: &Path, meta: &std::fs::Metadata, hash: String) {
        self.quarantined.insert(rel.to_path_buf());
        self.saved.push(copy.to_path_buf());
        self.journal.kept(rel, copy, meta, hash);
    }

    /// Removes a private file that is not to be kept (best effort).
    pub(super) fn remove_private(&self, relative: &Path) {
        if let Ok((dir, name)) = self.handle().and_then(|root| Ok(root.parent(relative)?)) {
            let _ = dir.unlink(&name);
        }
    }

    /// A new private file inside the run's quarantine, such as the bad
    /// lines of a JSONL file (`name` relative to the quarantine folder).
    pub fn quarantine_file(&mut self, name: &Path) -> anyhow::Result<(File, PathBuf)> {
        let (file, path) = self.new_private_file(Area::Quarantine, name)?;
        self.saved.push(path.clone());
        Ok((file, path))
    }

    /// A new, empty private (0600) file in the run's backup folder
    /// (`.preflight/backups/<run>/`): its absolute path and a handle on it.
    /// The caller writes there a full SQLite online backup of the database
    /// at `rel` (SQLite takes a path), then calls `backup_saved` before it
    /// changes the database: `rollback` restores the backup over `rel`.
    pub fn backup_path(&mut self, rel: &Path) -> anyhow::Result<(PathBuf, File)> {
        let (file, backup) = self.new_private_file(Area::Backups, rel)?;
        self.saved.push(backup.clone());
        Ok((self.root.join(backup), file))
    }

    /// The backup at `backup` is complete and durable: it is recorded, and
    /// written ahead as the undo of the change about to be made to `rel`
    /// (whose result SQLite decides).
    pub fn backup_saved(&mut self, rel: &Path, backup: &Path) -> anyhow::Result<()> {
        let relative = backup.strip_prefix(self.root).unwrap_or(backup).to_path_buf();
        let copy = self.read(&relative)?.with_context(|| format!("{} is gone", relative.display()))?;
        let hash = super::journal::sha256_of(copy)?;
        if let Some(original) = self.read(rel)? {
            self.journal.kept(rel, &relative, &original.metadata()?, hash);
        }
        self.write_ahead(rel, After::Unknown)
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
        use std::io::Write;
        let after = After::File(precondition::sha256(contents));
        let stage = |ctx: &mut Self| -> anyhow::Result<Staged> {
            let mut writer = ctx.writer(rel)?.mode(mode);
            writer.write_all(contents)?;
            writer.stage().with_context(|| format!("cannot write {}", rel.display()))
        };
        match expect {
            Expect::Absent => {
                self.journal.touch(self.root, rel);
                if self.handle()?.stat(rel).ok().flatten().is_some() {
                    return Err(Skip::Changed("a file was created there".into()).into());
                }
                self.write_ahead(rel, after.clone())?;
                let staged = stage(self)?;
                self.note_written(rel, &staged, &after);
                staged.commit_new().map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists => Skip::Changed("a file was created there".into()).into(),
                    _ => anyhow::Error::new(e).context(format!("cannot write {}", rel.display())),
                })
            }
            Expect::Unchanged(seen) => {
                self.quarantine_checked(rel, seen, &Silent)?;
                let staged = stage(self)?;
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
            Op::WriteFile { path, contents, mode, expect, .. } => {
                self.write_file(path, contents, *mode, expect)?;
                Ok(format!("wrote {} bytes", contents.len()))
            }
            Op::SetMode { path, mode, of } => {
                self.journal.touch(self.root, path);
                let now = self.handle()?.stat(path).ok().flatten();
                precondition::verify_identity(now.as_ref(), *of)?;
                if let Some(stat) = now {
                    let change = ModeChange { path: path.clone(), from: stat.st_mode & 0o7777, to: *mode };
                    self.ahead.record(self.root, self.run_id, Undo { modes: vec![change], ..Undo::default() })?;
                }
                let before =
                    self.handle()?.chmod(path, *mode).with_context(|| format!("cannot chmod {}", path.display()))?;
                self.journal.mode_changed(path, before, *mode);
                Ok(format!("mode {mode:04o}"))
            }
            Op::SetOwner { path, uid, gid, of } => {
                self.journal.touch(self.root, path);
                let now = self.handle()?.stat(path).ok().flatten();
                precondition::verify_identity(now.as_ref(), *of)?;
                if let Some(stat) = now {
                    let change = OwnerChange {
                        path: path.clone(),
                        from_uid: stat.st_uid,
                        from_gid: stat.st_gid,
                        to_uid: *uid,
                        to_gid: *gid,
                    };
                    self.ahead.record(self.root, self.run_id, Undo { owners: vec![change], ..Undo::default() })?;
                }
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
                self.write_ahead(path, After::Removed)?;
                dir.unlink(&name)?; // a folder is refused (EISDIR)
                dir.sync()?;
                Ok("removed".into())
            }
            Op::Touch { path } => {
                self.journal.touch(self.root, path);
                if self.handle()?.stat(path).ok().flatten().is_none() {
                    self.write_ahead(path, After::File(precondition::sha256(b"")))?;
                }
                let (dir, name) = self.parent(path, true)?;
                dir.touch(&name).with_context(|| format!("cannot touch {}", path.display()))?;
                Ok("touched".into())
            }
            Op::Custom(custom) => custom.apply(self),
        }
    }

    fn create_dir(&mut self, rel: &Path, mode: Option<u32>) -> anyhow::Result<String> {
        self.journal.touch(self.root, rel);
        self.write_ahead(rel, After::Folder)?;
        let (dir, name) = self.parent(rel, true)?;
        let created = dir.mkdir(&name, mode).with_context(|| format!("cannot create directory {}", rel.display()))?;
        if !created {
            if !self.journal.absent_at_first_touch(rel) {
                // Someone else made it since the check saw nothing there.
                return Err(Skip::Changed("a folder was created there".into()).into());
            }
            // This run made it already, as the parent of another: it gets its own mode now.
            if let Some(mode) = mode {
                self.handle()?.chmod(rel, mode).with_context(|| format!("cannot chmod {}", rel.display()))?;
            }
        }
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
