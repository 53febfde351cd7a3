//! A database file and the files SQLite keeps beside it (`-journal`,
//! `-wal`, `-shm`), read with plain reads and lock probes: nothing here
//! opens SQLite, creates a file or changes one. `live.rs` decides from
//! this how to open the file so that validation leaves no trace, and
//! whether a crash left work for SQLite's own recovery.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The first 16 bytes of every SQLite database file.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Where SQLite's unix VFS takes its locks in the database file (the
/// "pending byte" page) and in the `-shm` file (the "DMS" byte every
/// connection holds a shared lock on while it uses the WAL).
const PENDING_BYTE: i64 = 0x4000_0000;
const SHM_DMS_BYTE: i64 = 128;

/// The fields of the 100-byte database header that say whether the file
/// can be what it claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub page_size: u32,
    pub write_version: u8,
    pub read_version: u8,
    pub change_counter: u32,
    /// Pages in the file, as the header says; only meaningful when
    /// `valid_for == change_counter` (files written by SQLite ≥ 3.7.0).
    pub page_count: u32,
    pub freelist_trunk: u32,
    pub freelist_count: u32,
    pub valid_for: u32,
}

impl Header {
    /// The header of the file at `path`; `None` when the file does not
    /// start with SQLite's magic string. A file cut inside its header reads
    /// as zeros there, which `damage` reports.
    pub fn read(path: &Path) -> io::Result<Option<Header>> {
        let mut head = [0u8; 100];
        let read = read_prefix(path, &mut head)?;
        if read < MAGIC.len() || &head[..16] != MAGIC {
            return Ok(None);
        }
        Ok(Some(Header::parse(&head)))
    }

    fn parse(h: &[u8; 100]) -> Header {
        let be = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let raw_size = u32::from(u16::from_be_bytes([h[16], h[17]]));
        Header {
            page_size: if raw_size == 1 { 65536 } else { raw_size },
            write_version: h[18],
            read_version: h[19],
            change_counter: be(24),
            page_count: be(28),
            freelist_trunk: be(32),
            freelist_count: be(36),
            valid_for: be(92),
        }
    }

    /// The file is in WAL mode (set by `PRAGMA journal_mode=WAL`, kept in the file).
    pub fn is_wal(&self) -> bool {
        self.write_version == 2 || self.read_version == 2
    }

    fn size_is_known(&self) -> bool {
        self.page_count > 0 && self.valid_for == self.change_counter
    }

    /// Damage the header shows by itself or against the file's length,
    /// without reading a data page. `whole_file` says the file alone is the
    /// database (no WAL frames that may extend it, no transaction in progress).
    pub fn damage(&self, file_len: u64, whole_file: bool) -> Option<String> {
        let size = self.page_size;
        if !(512..=65536).contains(&size) || !size.is_power_of_two() {
            return Some(format!("its header names an impossible page size ({size} bytes)"));
        }
        if !whole_file {
            return None;
        }
        let size = u64::from(size);
        if !file_len.is_multiple_of(size) {
            return Some(format!("is not a whole number of {size}-byte pages ({file_len} bytes): it was cut short"));
        }
        if self.size_is_known() {
            let expected = u64::from(self.page_count) * size;
            if file_len < expected {
                return Some(format!(
                    "is truncated: its header says {} pages ({expected} bytes), the file holds {file_len} bytes",
                    self.page_count
                ));
            }
            if self.freelist_trunk > self.page_count || self.freelist_count > self.page_count {
                return Some("its header points past the end of the file (free-page list)".into());
            }
        }
        None
    }
}

/// The path of a file SQLite keeps beside the database: `-wal`, `-shm`, `-journal`.
pub fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// What lies beside the database, seen without touching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecars {
    /// A rollback journal that is not empty and does not start with a zero
    /// byte: SQLite decides whether it is hot (no writer holds it).
    pub journal: bool,
    pub wal: Option<Wal>,
    pub shm: bool,
}

/// The write-ahead log, as its header and first frame say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wal {
    pub len: u64,
    /// The header is valid (magic, version, checksum) and its page size is
    /// `page_size`, or the header names this mismatch.
    pub page_size: Option<u32>,
    /// At least one frame of the log's current generation (salts and
    /// checksum match): there is something to replay into the database.
    pub has_frames: bool,
}

impl Sidecars {
    pub fn probe(db: &Path) -> Sidecars {
        let journal = std::fs::File::open(sidecar(db, "-journal")).ok().is_some_and(|mut f| {
            let mut first = [0u8; 1];
            read_full(&mut f, &mut first).is_ok_and(|n| n == 1 && first[0] != 0)
        });
        let wal = File::open(sidecar(db, "-wal")).ok().and_then(|f| Wal::read(&f).ok());
        let shm = std::fs::symlink_metadata(sidecar(db, "-shm")).is_ok();
        Sidecars { journal, wal, shm }
    }

    /// A WAL whose frames no connection is using: the process that wrote
    /// them ended without closing the database (killed, crashed, or it
    /// never closed it). SQLite replays the committed frames at the next
    /// read-write open.
    pub fn abandoned_wal(&self, db: &Path) -> Option<Wal> {
        let wal = self.wal.filter(|w| w.has_frames)?;
        let in_use = if self.shm {
            locked(&sidecar(db, "-shm"), SHM_DMS_BYTE, 1)
        } else {
            // Without a -shm only a connection in exclusive locking mode
            // can use the log, and it holds a lock on the database file.
            locked(db, PENDING_BYTE, 512)
        };
        (!in_use).then_some(wal)
    }
}

impl Wal {
    fn read(file: &File) -> io::Result<Wal> {
        let len = file.metadata()?.len();
        let mut head = [0u8; 32];
        if file.read_at(&mut head, 0)? < head.len() {
            return Ok(Wal { len, page_size: None, has_frames: false });
        }
        let be = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let magic = be(&head, 0);
        if magic & !1 != 0x377f_0682 || be(&head, 4) != 3_007_000 {
            return Ok(Wal { len, page_size: None, has_frames: false });
        }
        let big_endian = magic & 1 == 1;
        let sum = checksum(&head[..24], (0, 0), big_endian);
        let page_size = be(&head, 8);
        if sum != (be(&head, 24), be(&head, 28)) || !(512..=65536).contains(&page_size) || !page_size.is_power_of_two()
        {
            return Ok(Wal { len, page_size: None, has_frames: false });
        }
        let mut frame = vec![0u8; 24 + page_size as usize];
        let complete = file.read_at(&mut frame, 32)? == frame.len();
        let has_frames = complete && be(&frame, 0) != 0 && frame[8..16] == head[16..24] && {
            let sum = checksum(&frame[..8], sum, big_endian);
            checksum(&frame[24..], sum, big_endian) == (be(&frame, 16), be(&frame, 20))
        };
        Ok(Wal { len, page_size: Some(page_size), has_frames })
    }
}

/// SQLite's WAL checksum: Fibonacci-weighted sums over 32-bit words.
fn checksum(data: &[u8], (mut s0, mut s1): (u32, u32), big_endian: bool) -> (u32, u32) {
    let word = |c: &[u8]| {
        let b = [c[0], c[1], c[2], c[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    for pair in data.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Whether any open file description — another process's, or another
/// connection's in this process — holds a lock on `len` bytes at `start`.
/// An open-file-description probe sees the locks of this process too, which
/// a classic `F_GETLK` would not.
fn locked(path: &Path, start: i64, len: i64) -> bool {
    let Ok(file) = kept_open(path) else { return false };
    // SAFETY: a zeroed flock is a valid value; fcntl reads and fills it.
    let mut probe: libc::flock = unsafe { std::mem::zeroed() };
    probe.l_type = libc::F_WRLCK as libc::c_short;
    probe.l_whence = libc::SEEK_SET as libc::c_short;
    probe.l_start = start;
    probe.l_len = len;
    #[cfg(target_os = "linux")]
    let command = libc::F_OFD_GETLK;
    #[cfg(not(target_os = "linux"))]
    let command = libc::F_GETLK;
    // SAFETY: a valid descriptor and a valid flock for the whole call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), command, &mut probe) };
    // A probe that fails says nothing: assume a user, never recover under one.
    rc != 0 || probe.l_type != libc::F_UNLCK as libc::c_short
}

/// The first bytes of the file at `path` (fewer when it is shorter),
/// read through a descriptor that stays open (see [`kept_open`]).
pub fn read_prefix(path: &Path, buf: &mut [u8]) -> io::Result<usize> {
    let file = kept_open(path)?;
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], read as u64)? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read)
}

/// Descriptors of database and `-shm` files this module read or probed,
/// never closed while their file exists: closing any descriptor of a file
/// drops every POSIX lock this process holds on it — the read lock of a
/// connection that is checking the file at that moment, or of any other
/// connection of this process (SQLite keeps its descriptors open for the
/// same reason). One per file, so the set stays as small as the files seen.
/// A file's (device, inode) when it was opened.
type FileId = (u64, u64);

static KEPT: Mutex<Vec<(FileId, Arc<File>)>> = Mutex::new(Vec::new());

fn kept_open(path: &Path) -> io::Result<Arc<File>> {
    let meta = std::fs::metadata(path)?;
    let id = (meta.dev(), meta.ino());
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(at) = kept.iter().position(|(kept, _)| *kept == id) {
        // A removed file's descriptor guards nobody's lock any more, and
        // its inode number may since have gone to the file at `path`.
        if kept[at].1.metadata().is_ok_and(|m| m.nlink() > 0) {
            return Ok(kept[at].1.clone());
        }
        kept.swap_remove(at);
    }
    let file = Arc::new(File::open(path)?);
    kept.push((id, file.clone()));
    Ok(file)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match file.read(&mut buf[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn the_header_of_a_fresh_database_is_sound_and_truncation_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(a); INSERT INTO t SELECT zeroblob(3000) FROM (SELECT 1 UNION SELECT 2);")
            .unwrap();
        drop(conn);
        let header = Header::read(&path).unwrap().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(!header.is_wal());
        assert_eq!(header.damage(len, true), None);
        assert!(header.damage(len - 4096, true).unwrap().contains("truncated"));
        assert!(header.damage(len - 100, true).unwrap().contains("whole number"));
        assert_eq!(header.damage(len - 100, false), None, "not judged while a WAL may extend it");
    }

    #[test]
    fn a_wal_in_use_is_not_abandoned_and_its_frames_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(a); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        assert!(Header::read(&path).unwrap().unwrap().is_wal());
        let sidecars = Sidecars::probe(&path);
        let wal = sidecars.wal.unwrap();
        assert!(wal.has_frames && sidecars.shm, "{sidecars:?}");
        assert_eq!(wal.page_size, Some(4096));
        // The connection of this very process holds the -shm: in use.
        assert_eq!(sidecars.abandoned_wal(&path), None);
        drop(conn);
        assert_eq!(Sidecars::probe(&path), Sidecars { journal: false, wal: None, shm: false }, "closed cleanly");
    }

    #[test]
    fn reading_the_header_keeps_the_locks_of_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("CREATE TABLE t(a); BEGIN; SELECT * FROM t;").unwrap();
        // SQLite's shared lock: one byte of the range after the pending byte.
        let shared = |path: &Path| locked(path, PENDING_BYTE + 2, 510);
        assert!(shared(&path));
        for _ in 0..2 {
            Header::read(&path).unwrap().unwrap();
            assert!(shared(&path), "closing a descriptor of the file dropped the reader's lock");
        }
        reader.execute_batch("COMMIT").unwrap();
        assert!(!shared(&path));
    }

    #[test]
    fn checksums_follow_sqlite() {
        // Two words, native little-endian order: s0 = 1 + 0, s1 = 2 + 1.
        assert_eq!(checksum(&[1, 0, 0, 0, 2, 0, 0, 0], (0, 0), false), (1, 3));
        assert_eq!(checksum(&[0, 0, 0, 1, 0, 0, 0, 2], (0, 0), true), (1, 3));
    }
}
