//! The one atomic file writer: a temporary file in the target's folder,
//! fsync, rename over the target (or beside it when the target must not
//! exist), fsync the folder. A crash leaves the old file or the new one,
//! never half of either; a temporary file it leaves behind carries
//! `TEMP_PREFIX`, and the next heal sweeps it. Every step goes through the
//! folder's handle (`confined::Dir`), so the rename lands in the folder the
//! temporary file was made in, whatever happens to the path meanwhile.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rustix::fs::FileType;

use super::confined::{Dir, Root};
use crate::fsutil;

/// Name prefix of every temporary file of an atomic write.
pub const TEMP_PREFIX: &str = ".preflight-tmp-";

/// Buffer between the caller and the temporary file.
const BUFFER: usize = 1 << 20;

/// A replacement of a file being written. Until `commit`, the target is
/// untouched; dropping the writer removes the temporary file.
pub struct AtomicWriter {
    dir: Dir,
    name: OsString,
    temp: OsString,
    file: Option<BufWriter<File>>,
    mode: Option<u32>,
    modified: Option<SystemTime>,
}

impl AtomicWriter {
    /// Starts a replacement of `rel` (whose folder must exist) beneath `root`.
    pub fn create(root: &Root, rel: &Path) -> io::Result<Self> {
        let (dir, name) = root.parent(rel)?;
        Self::in_dir(dir, &name)
    }

    /// Starts a replacement of the file `name` in `dir`.
    pub fn in_dir(dir: Dir, name: &OsStr) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let temp = OsString::from(format!("{TEMP_PREFIX}{}-{n}-{nanos:08x}", std::process::id()));
            match dir.create_new(&temp, 0o600) {
                Ok(file) => {
                    return Ok(AtomicWriter {
                        dir,
                        name: name.to_os_string(),
                        temp,
                        file: Some(BufWriter::with_capacity(BUFFER, file)),
                        mode: None,
                        modified: None,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
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

    /// Makes the new content durable and renames it over the target.
    pub fn commit(self) -> io::Result<()> {
        self.finish(true)
    }

    /// Like `commit`, but fails when the target exists: it is never replaced.
    pub fn commit_new(self) -> io::Result<()> {
        self.finish(false)
    }

    fn finish(mut self, replace: bool) -> io::Result<()> {
        let file = self.file.take().expect("a writer is finished once");
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mode = match self.mode {
            Some(mode) => mode,
            None => match self.dir.stat(&self.name)? {
                Some(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => stat.st_mode & 0o7777,
                _ => 0o666 & !fsutil::umask(),
            },
        };
        let old = self.dir.stat(&self.name)?;
        if let Some(old) = old.filter(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile) {
            // A file replaced by heal run as root stays its owner's (the
            // app's user): a root-owned replacement would lock the app out.
            // Without the privilege to give it away, it stays the writer's.
            let new = file.metadata()?;
            if (old.st_uid, old.st_gid) != (new.uid(), new.gid()) {
                let _ = std::os::unix::fs::fchown(&file, Some(old.st_uid), Some(old.st_gid));
            }
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(time) = self.modified {
            file.set_modified(time)?;
        }
        file.sync_all()?;
        drop(file);
        let renamed = self.dir.rename(&self.temp, &self.name, replace);
        if renamed.is_err() {
            let _ = self.dir.unlink(&self.temp);
        }
        self.temp.clear(); // renamed or removed: nothing for Drop to do
        renamed?;
        self.dir.sync()
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if !self.temp.is_empty() {
            let _ = self.dir.unlink(&self.temp);
        }
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open until finished").write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.as_mut().expect("open until finished").write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open until finished").flush()
    }
}

/// Replaces `rel` beneath `root` with `contents` atomically. `mode`
/// defaults to the old file's mode.
pub fn write(root: &Root, rel: &Path, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut writer = AtomicWriter::create(root, rel)?.mode(mode);
    writer.write_all(contents)?;
    writer.commit()
}

/// Removes leftover temporary files of interrupted writes from `dir`.
/// Call only under the heal lock: then no other writer owns them.
pub fn sweep_temp_files(dir: &Dir) -> io::Result<usize> {
    let mut removed = 0;
    for (name, kind) in dir.entries()? {
        let is_temp = name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes());
        if is_temp && kind == FileType::RegularFile {
            dir.unlink(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn nothing_changes_until_commit() {
        let (dir, root) = root();
        let path = dir.path().join("a.jsonl");
        fs::write(&path, b"old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let mut writer = AtomicWriter::create(&root, Path::new("a.jsonl")).unwrap();
        writer.write_all(b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old\n");
        writer.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        assert_eq!(fsutil::mode_of(&fs::metadata(&path).unwrap()), 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropping_leaves_the_target_and_no_temporary() {
        let (dir, root) = root();
        let path = dir.path().join("a.json");
        fs::write(&path, b"old").unwrap();
        let mut writer = AtomicWriter::create(&root, Path::new("a.json")).unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_new_never_replaces() {
        let (dir, root) = root();
        let path = dir.path().join("a.db");
        fs::write(&path, b"user data").unwrap();
        let mut writer = AtomicWriter::create(&root, Path::new("a.db")).unwrap();
        writer.write_all(b"new").unwrap();
        assert!(writer.commit_new().is_err());
        assert_eq!(fs::read(&path).unwrap(), b"user data");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_replacement_keeps_the_owner_when_the_writer_may_give_it() {
        if fsutil::current_uid() != 0 {
            return; // only root can give a file away
        }
        let (dir, root) = root();
        let path = dir.path().join("f.json");
        fs::write(&path, b"old").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        write(&root, Path::new("f.json"), b"new", None).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    }

    #[test]
    fn write_replaces_keeps_the_mode_and_sweeps_clean() {
        let (dir, root) = root();
        let path = dir.path().join("f.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write(&root, Path::new("f.json"), b"new", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fsutil::mode_of(&fs::metadata(&path).unwrap()), 0o640);
        fs::write(dir.path().join(format!("{TEMP_PREFIX}x")), b"left").unwrap();
        assert_eq!(sweep_temp_files(root.dir()).unwrap(), 1);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_folder_moved_away_takes_the_write_with_it() {
        let (dir, root) = root();
        fs::create_dir(dir.path().join("data")).unwrap();
        let mut writer = AtomicWriter::create(&root, Path::new("data/f.json")).unwrap();
        writer.write_all(b"new").unwrap();
        // The folder is renamed and a symlink put in its place: the write
        // still lands in the folder it started in.
        let outside = tempfile::tempdir().unwrap();
        fs::rename(dir.path().join("data"), dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("data")).unwrap();
        writer.commit().unwrap();
        assert_eq!(fs::read(dir.path().join("moved/f.json")).unwrap(), b"new");
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
    }
}
