//! What a check saw of a file, and the test the applier makes just before
//! it acts on it. Content is computed at check time and written later: in
//! between, the application may have replaced or rewritten the file. A fix
//! carries the fingerprint of what its check read (`Seen`) and is skipped
//! as "changed since check" when the file is no longer that — never
//! written over the application's newer data.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::Stat;
use sha2::{Digest, Sha256};

/// The identity and state of a regular file when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime: i128,
    /// SHA-256 (hex) of the bytes read, for fixes whose content derives
    /// from them; for a log, of its first `size` bytes.
    pub sha256: Option<String>,
}

/// What a fix expects to find where it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: the check saw no file there.
    Absent,
    /// The very file the check read, unchanged.
    Unchanged(Seen),
}

/// Why an action did not act. Not a failure: the disk was left as it was
/// for a good reason, and a later heal may act.
#[derive(Debug, thiserror::Error)]
pub enum Skip {
    /// The file is not what the check saw any more.
    #[error("changed since check ({0}); left as it is")]
    Changed(String),
    /// Another process has the file open for writing.
    #[error("held open for writing by {}, retry later", pids(.0))]
    HeldOpen(Vec<u32>),
    /// The file kept growing for longer than heal waits.
    #[error("still growing, retry later")]
    Growing,
}

fn pids(pids: &[u32]) -> String {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    format!("PID{} {}", if pids.len() == 1 { "" } else { "s" }, list.join(", "))
}

/// Whether an action's error is a skip rather than a failure.
pub fn is_skip(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Skip>())
}

impl Seen {
    /// The fingerprint of an open file's metadata (no hash).
    pub fn of(meta: &fs::Metadata) -> Seen {
        Seen {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            sha256: None,
        }
    }

    /// Adds the hash of the bytes read, for a content fix.
    pub fn with_hash(mut self, bytes: &[u8]) -> Seen {
        self.sha256 = Some(sha256(bytes));
        self
    }

    /// Reads a whole regular file and fingerprints it. The metadata is
    /// taken after the read, from the same descriptor: a write during the
    /// read shows as a changed size or time, or a different hash, later.
    pub fn read(path: &Path) -> io::Result<(Vec<u8>, Seen)> {
        let mut file = crate::fsutil::open_regular(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let seen = Seen::of(&file.metadata()?);
        Ok((bytes, seen))
    }

    /// The fingerprint of a log's first `len` bytes (those a check read),
    /// with their hash.
    pub fn prefix(path: &Path, len: u64) -> io::Result<Seen> {
        let file = crate::fsutil::open_regular(path)?;
        let mut hasher = Sha256::new();
        let mut reader = (&file).take(len);
        let mut buf = vec![0u8; 1 << 16];
        let mut read = 0u64;
        loop {
            match reader.read(&mut buf)? {
                0 => break,
                n => {
                    hasher.update(&buf[..n]);
                    read += n as u64;
                }
            }
        }
        if read < len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was read"));
        }
        Ok(Seen { size: len, sha256: Some(hex(&hasher.finalize())), ..Seen::of(&file.metadata()?) })
    }

    /// Why `now` is not the file this fingerprint describes, if it is not.
    pub fn differs(&self, now: &fs::Metadata) -> Option<String> {
        self.differs_from(&Seen::of(now))
    }

    fn differs_from(&self, now: &Seen) -> Option<String> {
        if (now.dev, now.ino) != (self.dev, self.ino) {
            Some("replaced by another file".into())
        } else if now.size != self.size {
            Some(format!("{} bytes, {} when checked", now.size, self.size))
        } else if now.mtime != self.mtime {
            Some("modified".into())
        } else {
            None
        }
    }

    /// Like `differs`, for a file that may only have grown at its end (a
    /// log): the same file, no shorter. The prefix is compared by hash.
    pub fn shrunk_or_replaced(&self, now: &fs::Metadata) -> Option<String> {
        let now = Seen::of(now);
        if (now.dev, now.ino) != (self.dev, self.ino) {
            Some("replaced by another file".into())
        } else if now.size < self.size {
            Some(format!("{} bytes, {} when checked", now.size, self.size))
        } else {
            None
        }
    }

    /// Fails with `Skip::Changed` unless `now` (the path's status, `None`
    /// when nothing is there) is still this file.
    pub fn verify(&self, now: Option<&Stat>) -> Result<(), Skip> {
        let Some(now) = now else { return Err(Skip::Changed("removed".into())) };
        self.differs_from(&Seen::of_stat(now)).map_or(Ok(()), |why| Err(Skip::Changed(why)))
    }

    /// The fingerprint of a status taken through a folder's handle.
    pub fn of_stat(stat: &Stat) -> Seen {
        Seen {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size as u64,
            mtime: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
            sha256: None,
        }
    }
}

/// Fails with `Skip::Changed` unless `now` (a path's status, `None` when
/// nothing is there) is the file or folder the check saw: `of`, its device
/// and inode. A change of metadata only (chmod, chown) needs no more;
/// `None` compares nothing.
pub fn verify_identity(now: Option<&Stat>, of: Option<(u64, u64)>) -> Result<(), Skip> {
    let Some(of) = of else { return Ok(()) };
    let Some(now) = now else { return Err(Skip::Changed("removed".into())) };
    match (now.st_dev, now.st_ino) == of {
        true => Ok(()),
        false => Err(Skip::Changed("replaced by another file".into())),
    }
}

/// SHA-256 (hex) of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn stat(path: &Path) -> Option<Stat> {
        rustix::fs::lstat(path).ok()
    }

    #[test]
    fn a_file_replaced_or_rewritten_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        fs::write(&path, b"{\"counter\": 1}").unwrap();
        let (bytes, seen) = Seen::read(&path).unwrap();
        let seen = seen.with_hash(&bytes);
        assert!(seen.verify(stat(&path).as_ref()).is_ok());
        // Replaced by rename, as an application saving its state does.
        fs::write(dir.path().join("new"), b"{\"counter\": 2}").unwrap();
        fs::rename(dir.path().join("new"), &path).unwrap();
        let err = seen.verify(stat(&path).as_ref()).unwrap_err();
        assert!(err.to_string().starts_with("changed since check (replaced"), "{err}");
        // Appended to in place.
        let (_, seen) = Seen::read(&path).unwrap();
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b" ").unwrap();
        assert!(seen.verify(stat(&path).as_ref()).unwrap_err().to_string().contains("15 bytes, 14 when checked"));
        fs::remove_file(&path).unwrap();
        assert!(seen.verify(stat(&path).as_ref()).unwrap_err().to_string().contains("removed"));
    }

    #[test]
    fn a_grown_log_is_still_the_file_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        fs::write(&path, b"1\n").unwrap();
        let (_, seen) = Seen::read(&path).unwrap();
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"2\n").unwrap();
        assert_eq!(seen.shrunk_or_replaced(&fs::metadata(&path).unwrap()), None);
        fs::write(&path, b"").unwrap();
        assert!(seen.shrunk_or_replaced(&fs::metadata(&path).unwrap()).is_some());
    }

    #[test]
    fn skips_are_told_from_failures_through_context() {
        let skip = anyhow::Error::new(Skip::HeldOpen(vec![42])).context("cannot replace e.jsonl");
        assert!(is_skip(&skip));
        assert!(format!("{skip:#}").contains("held open for writing by PID 42, retry later"));
        assert!(!is_skip(&anyhow::anyhow!("disk full")));
    }
}
