//! An atomic file replacement written as a stream, for rewrites too large
//! to hold in memory: a temporary file in the target's folder, fsync,
//! rename over the target, fsync the folder. Until `commit`, the target is
//! untouched; dropping the writer removes the temporary file.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fsutil;

/// Buffer between the caller and the temporary file.
const BUFFER: usize = 1 << 20;

/// A replacement of `target` being written.
pub struct AtomicWriter {
    target: PathBuf,
    tmp: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicWriter {
    /// Starts a replacement of `target` (whose folder must exist).
    pub fn create(target: &Path) -> io::Result<Self> {
        let tmp = tempfile::Builder::new().prefix(fsutil::TEMP_PREFIX).tempfile_in(fsutil::parent_dir(target))?;
        Ok(AtomicWriter { target: target.to_path_buf(), tmp: BufWriter::with_capacity(BUFFER, tmp) })
    }

    /// Makes the new content durable and puts it in place. The new file
    /// keeps the old one's permission bits (0666 less the umask when new).
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.tmp.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mode = match fs::metadata(&self.target) {
            Ok(meta) => fsutil::mode_of(&meta),
            Err(_) => 0o666 & !fsutil::umask(),
        };
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.target).map_err(|e| e.error)?;
        fsutil::sync_dir(fsutil::parent_dir(&self.target))
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
}
