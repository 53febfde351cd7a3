//! Copies of originals kept before they are replaced. A copy counts as
//! kept only once it is durable and holds every byte copied: a copy cut
//! short by a full disk or a file-size limit is removed, never listed as
//! saved.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::precondition::hex;
use super::progress::Task;

const BLOCK: usize = 1 << 20;

/// A private copy being made, open for lines appended to the original
/// after the first pass.
pub struct Copy {
    file: File,
    len: u64,
    hasher: Sha256,
    /// SHA-256 of the first `prefix` bytes, when asked for.
    prefix: Option<(u64, Option<String>)>,
}

impl Copy {
    /// A copy into `file` (new and empty). `prefix`: also hash that many
    /// first bytes.
    pub fn new(file: File, prefix: Option<u64>) -> Copy {
        let prefix = prefix.map(|n| (n, (n == 0).then(|| hex(&Sha256::new().finalize()))));
        Copy { file, len: 0, hasher: Sha256::new(), prefix }
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

    /// Copies `source` from byte `from` to its end, telling `task` the
    /// bytes copied; returns them.
    pub fn copy_from(&mut self, source: &File, from: u64, task: &dyn Task) -> io::Result<u64> {
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
            task.advance(at - from);
        }
    }

    /// Makes the copy durable, then checks that the file holds every byte
    /// copied (a full disk or a file-size limit can cut it short without a
    /// write saying so until the sync). Returns the SHA-256 of the bytes
    /// copied; rollback checks the copy against it before using it.
    pub fn seal(&mut self) -> io::Result<String> {
        self.file.sync_all()?;
        let on_disk = self.file.metadata()?.len();
        if on_disk != self.len {
            return Err(io::Error::other(format!("the copy holds {on_disk} of {} bytes", self.len)));
        }
        Ok(hex(&self.hasher.clone().finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_copy_hashes_its_prefix_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("s");
        fs::write(&source, b"abc\ndef\n").unwrap();
        let mut copy = Copy::new(fs::File::create(dir.path().join("c0")).unwrap(), Some(4));
        copy.extend(b"ab").unwrap();
        assert_eq!(copy.prefix_sha256(), None, "not the whole prefix yet");
        let mut copy = Copy::new(fs::File::create(dir.path().join("c")).unwrap(), Some(4));
        assert_eq!(copy.copy_from(&fs::File::open(&source).unwrap(), 0, &crate::safety::Silent).unwrap(), 8);
        assert_eq!(copy.prefix_sha256(), Some(hex(&Sha256::digest(b"abc\n")).as_str()));
        copy.extend(b"ghi\n").unwrap();
        assert_eq!(copy.seal().unwrap(), hex(&Sha256::digest(b"abc\ndef\nghi\n")));
        assert_eq!(fs::read(dir.path().join("c")).unwrap(), b"abc\ndef\nghi\n");
    }
}
