//! The live database file, looked at without ever writing to it — nor
//! beside it. The file header is checked before SQLite sees it; the files
//! beside it (`ondisk.rs`) decide how it is opened, always read-only:
//!
//! - a rollback-journal database: a plain read-only open, which creates
//!   nothing; a hot journal (a write transaction cut short by a crash) makes
//!   SQLite refuse to read, and the file is reported for recovery;
//! - a WAL database without a `-wal`/`-shm`: `immutable=1`, since a plain
//!   read-only open would create both; the file alone is the database;
//! - a WAL database with a `-shm`: `readonly_shm=1`, which reads the log
//!   through the existing index (or a private copy of it) and writes none;
//! - a WAL that no connection uses and that holds frames (the process that
//!   wrote them ended without closing the database) is reported for
//!   recovery rather than read: only a read-write open replays it.
//!
//! What is read then depends on `integrity.rs`: `PRAGMA quick_check`, or
//! the structural checks whose cost does not grow with the data.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::integrity::{self, Depth};
use super::ondisk::{Header, Sidecars};
use crate::manifest::Integrity;

/// How long a statement waits for another process's lock before it gives
/// up with a clear error. Bounded: preflight never hangs on a busy database.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(3);

/// What the file at a database path is.
pub enum Live {
    Missing,
    /// Present but not a usable database; the message says why. Never healed.
    Unusable(String),
    /// A crash left work for SQLite's own recovery; not read any further.
    Interrupted(Interruption),
    /// A healthy database, open read-only inside a read transaction that
    /// lasts until the connection is dropped.
    Ready(Connection),
}

/// What a crash left beside a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// A hot rollback journal: a write transaction that never committed,
    /// part of it already in the file. SQLite rolls it back.
    Journal,
    /// A write-ahead log no connection uses, holding frames not yet copied
    /// into the database. SQLite replays the committed ones.
    Wal { bytes: u64 },
}

/// What validation reads of a database: the manifest's `integrity` and `--deep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    pub integrity: Integrity,
    pub deep: bool,
}

const RESTORE: &str =
    "it is left untouched: restore it from a backup (see .preflight/backups/) or move it aside so heal creates it";

/// Opens the database at `path` read-only, after checking what the file
/// is and what lies beside it.
pub fn open(path: &Path, reading: Reading, cache: &HealthCache) -> Live {
    let before = Sidecars::probe(path);
    match open_once(path, &before, reading, cache) {
        // A writer that started between the look beside the file and the
        // open can make a sound file look damaged: look once more.
        Live::Unusable(_) if Sidecars::probe(path) != before => open_once(path, &Sidecars::probe(path), reading, cache),
        live => live,
    }
}

fn open_once(path: &Path, sidecars: &Sidecars, reading: Reading, cache: &HealthCache) -> Live {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Live::Missing,
        Err(e) => return Live::Unusable(format!("cannot be read: {e}")),
    };
    if !meta.is_file() {
        return Live::Unusable("is not a regular file".into());
    }
    if meta.len() == 0 {
        return Live::Unusable(format!("is empty (0 bytes), not a SQLite database; {RESTORE}"));
    }
    let header = match Header::read(path) {
        Ok(Some(header)) => header,
        Ok(None) => return Live::Unusable(format!("is not a SQLite database (its header says otherwise); {RESTORE}")),
        Err(e) => return Live::Unusable(format!("cannot be read: {e}")),
    };
    // Checked before any recovery is offered: SQLite cannot replay such a
    // log, and it may hold the last commits.
    if let Some(wal) = sidecars.wal.filter(|w| w.has_frames) {
        if wal.page_size.is_some_and(|size| size != header.page_size) {
            return Live::Unusable(format!(
                "has a write-ahead log of another page size ({} bytes, the database's {}): it does not belong to this file; {RESTORE}",
                wal.page_size.unwrap_or(0),
                header.page_size
            ));
        }
    }
    let wal_mode = header.is_wal() || sidecars.wal.is_some();
    if wal_mode && !sidecars.journal {
        if let Some(wal) = sidecars.abandoned_wal(path) {
            return Live::Interrupted(Interruption::Wal { bytes: wal.len });
        }
    }
    let mode = match (wal_mode && !sidecars.journal, sidecars.shm) {
        (false, _) => Mode::ReadOnly,
        (true, true) => Mode::ReadOnlyShm,
        (true, false) if sidecars.wal.is_some_and(|w| w.has_frames) => {
            // Frames, no -shm, and a lock on the file: a connection in
            // exclusive locking mode is using the log.
            return Live::Unusable(busy_message());
        }
        (true, false) => Mode::Immutable,
    };
    let bytes = meta.len() + sidecars.wal.map_or(0, |w| w.len);
    let depth = integrity::depth(reading.integrity, reading.deep, bytes);
    // The file alone is the database only when no log may extend it.
    let whole_file = !wal_mode || mode == Mode::Immutable;
    match open_checked(path, mode, depth, whole_file, cache) {
        Ok(conn) => Live::Ready(conn),
        Err(Refusal::HotJournal) => Live::Interrupted(Interruption::Journal),
        Err(Refusal::StaleWalIndex) => {
            Live::Interrupted(Interruption::Wal { bytes: sidecars.wal.map_or(0, |w| w.len) })
        }
        Err(Refusal::Unusable(message)) => Live::Unusable(message),
    }
}

/// Whether the file starts with the SQLite header.
pub fn has_sqlite_header(path: &Path) -> std::io::Result<bool> {
    Header::read(path).map(|h| h.is_some())
}

/// How a database is opened read-only without leaving a file behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReadOnly,
    /// `immutable=1`: no lock, no journal, no WAL looked at or created.
    Immutable,
    /// `readonly_shm=1`: the WAL index is read, never written or created.
    ReadOnlyShm,
}

enum Refusal {
    HotJournal,
    /// The WAL index (`-shm`) is one a read-only reader cannot use: a
    /// writer was killed while changing it. The next read-write open
    /// rebuilds it from the log.
    StaleWalIndex,
    Unusable(String),
}

fn open_checked(
    path: &Path,
    mode: Mode,
    depth: Depth,
    whole_file: bool,
    cache: &HealthCache,
) -> Result<Connection, Refusal> {
    let unusable = |e: rusqlite::Error| Refusal::Unusable(describe_error(&e));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(uri(path, mode), flags).map_err(unusable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unusable)?;
    // One read transaction for every check and for the whole inspection
    // after it, ended when the connection is dropped: in rollback mode no
    // writer can commit while it lasts, so the file length read below, the
    // schema and the data checks all see the same state, and SQLite does
    // not take its locks and re-read the header for every query.
    conn.execute_batch("BEGIN").map_err(unusable)?;
    if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)) {
        return Err(first_read_refusal(&e, mode));
    }
    check(&conn, path, depth, whole_file, cache).map(|()| conn)
}

/// Why the first read of a database failed: an interruption SQLite itself
/// recovers from at the next read-write open, or a database not usable.
fn first_read_refusal(e: &rusqlite::Error, mode: Mode) -> Refusal {
    use rusqlite::ffi::{
        SQLITE_PROTOCOL, SQLITE_READONLY_CANTINIT, SQLITE_READONLY_RECOVERY, SQLITE_READONLY_ROLLBACK,
    };
    match e.sqlite_extended_error_code() {
        Some(SQLITE_READONLY_ROLLBACK) => Refusal::HotJournal,
        Some(SQLITE_PROTOCOL | SQLITE_READONLY_RECOVERY | SQLITE_READONLY_CANTINIT) if mode == Mode::ReadOnlyShm => {
            Refusal::StaleWalIndex
        }
        _ => Refusal::Unusable(describe_error(e)),
    }
}

fn check(conn: &Connection, path: &Path, depth: Depth, whole_file: bool, cache: &HealthCache) -> Result<(), Refusal> {
    if whole_file {
        let now = (Header::read(path), std::fs::metadata(path));
        if let (Ok(Some(header)), Ok(meta)) = now {
            if let Some(damage) = header.damage(meta.len(), true) {
                return Err(Refusal::Unusable(format!("{damage}; {RESTORE}")));
            }
        }
    }
    if depth == Depth::Structure {
        return integrity::structure(conn).map_err(|damage| Refusal::Unusable(format!("{damage}; {RESTORE}")));
    }
    let state = FileState::of(path);
    if state.as_ref().is_some_and(|s| cache.knows(s)) {
        return Ok(());
    }
    let report: Result<Vec<String>, _> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get::<_, String>(0))?.take(3).collect());
    match report {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => {
            if let Some(state) = state {
                cache.remember(state);
            }
            Ok(())
        }
        Ok(lines) => Err(Refusal::Unusable(format!("fails PRAGMA quick_check ({}); {RESTORE}", lines.join("; ")))),
        Err(e) => Err(Refusal::Unusable(describe_error(&e))),
    }
}

/// A `file:` URI for `path` in `mode`: every byte that could end the path
/// or start a parameter is percent-encoded.
fn uri(path: &Path, mode: Mode) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // An absolute path gets the empty authority spelled out, so a path
    // starting with `//` is never read as a host name.
    let mut text = String::from(if bytes.starts_with(b"/") { "file://localhost" } else { "file:" });
    for &byte in bytes {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => text.push(byte as char),
            _ => text.push_str(&format!("%{byte:02X}")),
        }
    }
    text.push_str(match mode {
        Mode::ReadOnly => "?mode=ro",
        Mode::Immutable => "?mode=ro&immutable=1",
        Mode::ReadOnlyShm => "?mode=ro&readonly_shm=1",
    });
    text
}

/// What identifies a database file's exact content without reading it:
/// path, inode, size, modification time, SQLite's file change counter, and the
/// same for its WAL file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileState {
    path: std::path::PathBuf,
    file: (u64, u64, u64, i64, i64),
    counter: [u8; 4],
    wal: Option<(u64, u64, i64, i64)>,
}

/// Files that passed `PRAGMA quick_check` during one run (or that only
/// the run's own committed transaction changed since). `quick_check` reads
/// the whole file, about 1.5 s per GiB: a heal validates three times and
/// must not pay it three times for a database that did not change. The
/// run owns it and hands it to every open; clones share it.
#[derive(Debug, Clone, Default)]
pub struct HealthCache(Arc<Mutex<Vec<FileState>>>);

impl HealthCache {
    fn knows(&self, state: &FileState) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(state)
    }

    fn remember(&self, state: FileState) {
        let mut healthy = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if healthy.len() > 64 {
            healthy.clear(); // a bound, not a policy: entries are only a shortcut
        }
        healthy.push(state);
    }

    /// Records that the database at `path`, as it is now, is healthy:
    /// called after this run committed its own transaction on a database
    /// that had passed `quick_check`, or created it.
    pub fn remember_path(&self, path: &Path) {
        if let Some(state) = FileState::of(path) {
            self.remember(state);
        }
    }
}

impl FileState {
    fn of(path: &Path) -> Option<FileState> {
        let meta = std::fs::metadata(path).ok()?;
        let mut head = [0u8; 28];
        // Read while this run's own connection may hold a lock on the file.
        if super::ondisk::read_prefix(path, &mut head).ok()? < head.len() {
            return None;
        }
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal = std::fs::metadata(&wal_path).ok().map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
        Some(FileState {
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()),
            counter: [head[24], head[25], head[26], head[27]],
            wal,
        })
    }
}

fn busy_message() -> String {
    format!(
        "is locked by another process (waited {}s); nothing was changed, try again when it is done",
        BUSY_TIMEOUT.as_secs()
    )
}

/// A SQLite error in words a user can act on; a lock names the wait.
pub fn describe_error(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => busy_message(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            format!("is not a usable SQLite database ({e}); {RESTORE}")
        }
        _ => format!("cannot be used: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_foreign_files_are_unusable_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert!(
            matches!(open(&empty, Reading::default(), &HealthCache::default()), Live::Unusable(m) if m.contains("0 bytes"))
        );
        let text = dir.path().join("text.db");
        std::fs::write(&text, b"hello, this is not a database at all").unwrap();
        assert!(
            matches!(open(&text, Reading::default(), &HealthCache::default()), Live::Unusable(m) if m.contains("not a SQLite database"))
        );
        assert_eq!(std::fs::read(&text).unwrap(), b"hello, this is not a database at all");
        assert!(matches!(
            open(&dir.path().join("none.db"), Reading::default(), &HealthCache::default()),
            Live::Missing
        ));
    }

    #[test]
    fn a_healthy_database_opens_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t(a)").unwrap();
        let Live::Ready(conn) = open(&path, Reading::default(), &HealthCache::default()) else { panic!("not ready") };
        assert!(conn.execute_batch("CREATE TABLE u(b)").is_err(), "read-only");
    }

    /// The files of `dir`, with their sizes and modification times.
    fn listing(dir: &Path) -> Vec<(String, u64, i64, i64)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (e.file_name().to_string_lossy().into_owned(), m.len(), m.mtime(), m.mtime_nsec())
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_wal_database_is_read_without_creating_its_wal_or_shm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w?x#y%z.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(a); INSERT INTO t VALUES (1);").unwrap();
        drop(conn);
        let before = listing(dir.path());
        assert_eq!(before.len(), 1, "{before:?}");
        for deep in [false, true] {
            let reading = Reading { deep, ..Reading::default() };
            let Live::Ready(conn) = open(&path, reading, &HealthCache::default()) else { panic!("not ready") };
            assert_eq!(conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
            drop(conn);
            assert_eq!(listing(dir.path()), before);
        }
    }

    /// A database and the hot journal of a transaction that never ended,
    /// as a crash leaves them: copied while the writer is mid-transaction.
    fn crashed_mid_transaction(dir: &Path) -> std::path::PathBuf {
        let live = dir.join("live.db");
        let conn = Connection::open(&live).unwrap();
        conn.execute_batch("CREATE TABLE t(a); INSERT INTO t VALUES ('committed');").unwrap();
        conn.execute_batch("PRAGMA cache_size=1; BEGIN; INSERT INTO t SELECT zeroblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n);")
            .unwrap();
        let crashed = dir.join("crashed.db");
        std::fs::copy(&live, &crashed).unwrap();
        std::fs::copy(dir.join("live.db-journal"), dir.join("crashed.db-journal")).unwrap();
        crashed
    }

    #[test]
    fn a_hot_journal_is_reported_for_recovery_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = crashed_mid_transaction(dir.path());
        let journal = std::fs::read(dir.path().join("crashed.db-journal")).unwrap();
        let file = std::fs::read(&crashed).unwrap();
        for integrity in [Integrity::Auto, Integrity::Off] {
            let reading = Reading { integrity, deep: false };
            assert!(matches!(
                open(&crashed, reading, &HealthCache::default()),
                Live::Interrupted(Interruption::Journal)
            ));
        }
        assert_eq!(std::fs::read(dir.path().join("crashed.db-journal")).unwrap(), journal);
        assert_eq!(std::fs::read(&crashed).unwrap(), file);
        // What any read-write open does: SQLite rolls the journal back.
        let conn = Connection::open(&crashed).unwrap();
        let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn a_truncated_file_is_caught_without_reading_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(a); INSERT INTO t SELECT zeroblob(2000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT i FROM n);")
            .unwrap();
        drop(conn);
        let len = std::fs::metadata(&path).unwrap().len();
        for cut in [len - 4096, len - 4000, 2000] {
            std::fs::File::options().write(true).open(&path).unwrap().set_len(cut).unwrap();
            let reading = Reading { integrity: Integrity::Off, deep: false };
            match open(&path, reading, &HealthCache::default()) {
                Live::Unusable(m) => assert!(m.contains("restore"), "{cut}: {m}"),
                _ => panic!("{cut}: a cut file passed"),
            }
        }
    }
}
