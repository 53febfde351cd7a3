//! The one atomic file writer: a temporary file in the target's folder,
//! fsync, rename over the target (or beside it when the target must not
//! exist), fsync the folder. A crash leaves the old file or the new one,
//! never half of either; a temporary file it leaves behind carries
//! `TEMP_PREFIX`, and the next heal sweeps it.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fsutil;

/// Name prefix of every temporary file of an atomic write.
pub const TEMP_PREFIX: &str = ".preflight-tmp-";

/// Buffer between the caller and the temporary file.
const BUFFER: usize = 1 << 20;

/// A replacement of `target` being written. Until `commit`, the target is
/// untouched; dropping the writer removes the temporary file.
pub struct AtomicWriter {
    target: PathBuf,
    tmp: BufWriter<tempfile::NamedTempFile>,
    mode: Option<u32>,
    modified: Option<SystemTime>,
}

impl AtomicWriter {
    /// Starts a replacement of `target` (whose folder must exist).
    pub fn create(target: &Path) -> io::Result<Self> {
        let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(fsutil::parent_dir(target))?;
        Ok(AtomicWriter {
            target: target.to_path_buf(),
            tmp: BufWriter::with_capacity(BUFFER, tmp),
            mode: None,
            modified: None,
        })
    }

    /// Permission bits of the new file; by default the old file's, or
    /// 0666 less the umask for a new one.
    pub fn mode(mut self, mode: Option<u32>) -> Self {
        self.mode = mode;
        self
    }

    /// Modification time of the new file (a restored original keeps its age).
    pub fn modified(mut self, time: Option<SystemTime>) -> Self {
        self.modified = time;
        self
    }

    /// The temporary file, for writers that need a path (SQLite).
    pub fn temp_path(&self) -> &Path {
        self.tmp.get_ref().path()
    }

    /// Makes the new content durable and renames it over the target.
    pub fn commit(self) -> io::Result<()> {
        let (target, tmp) = self.finish()?;
        tmp.persist(&target).map_err(|e| e.error)?;
        fsutil::sync_dir(fsutil::parent_dir(&target))
    }

    /// Like `commit`, but fails when the target exists: it is never replaced.
    pub fn commit_new(self) -> io::Result<()> {
        let (target, tmp) = self.finish()?;
        tmp.persist_noclobber(&target).map_err(|e| e.error)?;
        fsutil::sync_dir(fsutil::parent_dir(&target))
    }

    fn finish(self) -> io::Result<(PathBuf, tempfile::NamedTempFile)> {
        let tmp = self.tmp.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mode = match self.mode {
            Some(mode) => mode,
            None => match fs::metadata(&self.target) {
                Ok(meta) => fsutil::mode_of(&meta),
                Err(_) => 0o666 & !fsutil::umask(),
            },
        };
        if let Ok(old) = fs::metadata(&self.target) {
            // A file replaced by heal run as root stays its owner's (the
            // app's user): a root-owned replacement would lock the app out.
            // Without the privilege to give it away, it stays the writer's.
            let new = tmp.as_file().metadata()?;
            if (old.uid(), old.gid()) != (new.uid(), new.gid()) {
                let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(old.uid()), Some(old.gid()));
            }
        }
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
        if let Some(time) = self.modified {
            tmp.as_file().set_modified(time)?;
        }
        tmp.as_file().sync_all()?;
        Ok((self.target, tmp))
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Replaces `path` with `contents` atomically. `mode` defaults to the old
/// file's mode.
pub fn write(path: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut writer = AtomicWriter::create(path)?.mode(mode);
    writer.write_all(contents)?;
    writer.commit()
}

/// Removes leftover temporary files of interrupted writes from `dir`.
/// Call only under the heal lock: then no other writer owns them.
pub fn sweep_temp_files(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_temp = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX);
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_changes_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        fs::write(&path, b"old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let mut writer = AtomicWriter::create(&path).unwrap();
        writer.write_all(b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old\n");
        writer.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        assert_eq!(fsutil::mode_of(&fs::metadata(&path).unwrap()), 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropping_leaves_the_target_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        fs::write(&path, b"old").unwrap();
        let mut writer = AtomicWriter::create(&path).unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        fs::write(&path, b"user data").unwrap();
        let mut writer = AtomicWriter::create(&path).unwrap();
        writer.write_all(b"new").unwrap();
        assert!(writer.commit_new().is_err());
        assert_eq!(fs::read(&path).unwrap(), b"user data");
    }

    #[test]
    fn a_replacement_keeps_the_owner_when_the_writer_may_give_it() {
        if fsutil::current_uid() != 0 {
            return; // only root can give a file away
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, b"old").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        write(&path, b"new", None).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    }

    #[test]
    fn write_replaces_keeps_the_mode_and_sweeps_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write(&path, b"new", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fsutil::mode_of(&fs::metadata(&path).unwrap()), 0o640);
        fs::write(dir.path().join(format!("{TEMP_PREFIX}x")), b"left").unwrap();
        assert_eq!(sweep_temp_files(dir.path()).unwrap(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
