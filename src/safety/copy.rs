//! Copies of originals kept before they are replaced. A copy counts as
//! kept only once it is durable and read back whole: a copy cut short by a
//! full disk or a file-size limit is removed, never listed as saved.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::precondition::hex;

const BLOCK: usize = 1 << 20;

/// A private copy being made, open for lines appended to the original
/// after the first pass.
pub struct Copy {
    pub path: PathBuf,
    file: fs::File,
    len: u64,
    hasher: Sha256,
    /// SHA-256 of the first `prefix` bytes, when asked for.
    prefix: Option<(u64, Option<String>)>,
}

impl Copy {
    /// Creates `target` (or `target.N` when taken) with mode 0600: the
    /// original may hold secrets. `prefix`: also hash that many first bytes.
    pub fn create(target: &Path, prefix: Option<u64>) -> io::Result<Copy> {
        for attempt in 0.. {
            let candidate = match attempt {
                0 => target.to_path_buf(),
                n => PathBuf::from(format!("{}.{n}", target.display())),
            };
            let opened = fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&candidate);
            match opened {
                Ok(file) => {
                    let prefix = prefix.map(|n| (n, None));
                    return Ok(Copy { path: candidate, file, len: 0, hasher: Sha256::new(), prefix });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// Bytes copied so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The hash of the first `prefix` bytes, once that many were copied.
    pub fn prefix_sha256(&self) -> Option<&str> {
        self.prefix.as_ref().and_then(|(_, hash)| hash.as_deref())
    }

    /// Appends `bytes` to the copy.
    pub fn extend(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        if let Some((n, hash @ None)) = &mut self.prefix {
            let room = (*n - self.len).min(rest.len() as u64) as usize;
            self.hasher.update(&rest[..room]);
            self.file.write_all(&rest[..room])?;
            self.len += room as u64;
            if self.len == *n {
                *hash = Some(hex(&self.hasher.clone().finalize()));
            }
            rest = &rest[room..];
        }
        self.hasher.update(rest);
        self.file.write_all(rest)?;
        self.len += rest.len() as u64;
        Ok(())
    }

    /// Copies `source` from byte `from` to its end; returns the bytes copied.
    pub fn copy_from(&mut self, source: &fs::File, from: u64) -> io::Result<u64> {
        if let Some((0, hash @ None)) = &mut self.prefix {
            *hash = Some(hex(&Sha256::new().finalize()));
        }
        let mut buf = vec![0u8; BLOCK];
        let mut at = from;
        loop {
            let n = match source.read_at(&mut buf, at) {
                Ok(0) => return Ok(at - from),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.extend(&buf[..n])?;
            at += n as u64;
        }
    }

    /// Makes the copy durable, then checks that the file holds every byte
    /// copied (a full disk or a file-size limit can cut it short without
    /// the write saying so until the sync). Returns the SHA-256 of the bytes
    /// copied; rollback checks the copy against it before using it.
    pub fn seal(&mut self) -> io::Result<String> {
        self.file.sync_all()?;
        let on_disk = self.file.metadata()?.len();
        if on_disk != self.len {
            return Err(io::Error::other(format!("the copy holds {on_disk} of {} bytes", self.len)));
        }
        Ok(hex(&self.hasher.clone().finalize()))
    }

    /// Removes a copy that is not to be kept.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Copies a whole file into a verified private copy; on any failure the
/// partial copy is removed. Returns the copy's path and hash.
pub fn copy_file(source: &fs::File, target: &Path) -> io::Result<(PathBuf, String)> {
    let mut copy = Copy::create(target, None)?;
    match copy.copy_from(source, 0).and_then(|_| copy.seal()) {
        Ok(hash) => Ok((copy.path.clone(), hash)),
        Err(e) => {
            copy.remove();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_hashes_its_prefix_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("s");
        fs::write(&source, b"abc\ndef\n").unwrap();
        let mut copy = Copy::create(&dir.path().join("c"), Some(4)).unwrap();
        copy.extend(b"ab").unwrap();
        assert_eq!(copy.prefix_sha256(), None, "not the whole prefix yet");
        copy.remove();
        let mut copy = Copy::create(&dir.path().join("c"), Some(4)).unwrap();
        assert_eq!(copy.copy_from(&fs::File::open(&source).unwrap(), 0).unwrap(), 8);
        assert_eq!(copy.prefix_sha256(), Some(hex(&Sha256::digest(b"abc\n")).as_str()));
        copy.extend(b"ghi\n").unwrap();
        assert_eq!(copy.seal().unwrap(), hex(&Sha256::digest(b"abc\ndef\nghi\n")));
        assert_eq!(fs::read(&copy.path).unwrap(), b"abc\ndef\nghi\n");
        let (second, _) = copy_file(&fs::File::open(&source).unwrap(), &dir.path().join("c")).unwrap();
        assert_eq!(second, dir.path().join("c.1"), "a taken name gets a number");
    }
}
