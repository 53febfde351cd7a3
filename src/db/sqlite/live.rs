//! The live database file, looked at without ever writing to it: the file
//! header is checked before SQLite sees it, the connection is read-only, and
//! `PRAGMA quick_check` must pass before anything else is compared.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

/// How long a statement waits for another process's lock before it gives
/// up with a clear error. Bounded: preflight never hangs on a busy database.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(3);

/// The first 16 bytes of every SQLite database file.
pub const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// What the file at a database path is.
pub enum Live {
    Missing,
    /// Present but not a usable database; the message says why. Never healed.
    Unusable(String),
    /// A healthy database, open read-only.
    Ready(Connection),
}

const RESTORE: &str =
    "it is left untouched: restore it from a backup (see .preflight/backups/) or move it aside so heal creates it";

/// Opens the database at `path` read-only, after checking what the file is.
pub fn open(path: &Path, cache: &HealthCache) -> Live {
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
    match has_sqlite_header(path) {
        Ok(true) => {}
        Ok(false) => return Live::Unusable(format!("is not a SQLite database (its header says otherwise); {RESTORE}")),
        Err(e) => return Live::Unusable(format!("cannot be read: {e}")),
    }
    match open_checked(path, cache) {
        Ok(conn) => Live::Ready(conn),
        Err(message) => Live::Unusable(message),
    }
}

/// Whether the file starts with the SQLite header.
pub fn has_sqlite_header(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == head.len() && &head == HEADER)
}

fn open_checked(path: &Path, cache: &HealthCache) -> Result<Connection, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| describe_error(&e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| describe_error(&e))?;
    let state = FileState::of(path);
    if state.as_ref().is_some_and(|s| cache.knows(s)) {
        return Ok(conn);
    }
    let report: Result<Vec<String>, _> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get::<_, String>(0))?.take(3).collect());
    match report {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => {
            if let Some(state) = state {
                cache.remember(state);
            }
            Ok(conn)
        }
        Ok(lines) => Err(format!("fails PRAGMA quick_check ({}); {RESTORE}", lines.join("; "))),
        Err(e) => Err(describe_error(&e)),
    }
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
        std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
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

/// A SQLite error in words a user can act on; a lock names the wait.
pub fn describe_error(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "is locked by another process (waited {}s); nothing was changed, try again when it is done",
            BUSY_TIMEOUT.as_secs()
        ),
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
        assert!(matches!(open(&empty, &HealthCache::default()), Live::Unusable(m) if m.contains("0 bytes")));
        let text = dir.path().join("text.db");
        std::fs::write(&text, b"hello, this is not a database at all").unwrap();
        assert!(
            matches!(open(&text, &HealthCache::default()), Live::Unusable(m) if m.contains("not a SQLite database"))
        );
        assert_eq!(std::fs::read(&text).unwrap(), b"hello, this is not a database at all");
        assert!(matches!(open(&dir.path().join("none.db"), &HealthCache::default()), Live::Missing));
    }

    #[test]
    fn a_healthy_database_opens_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t(a)").unwrap();
        let Live::Ready(conn) = open(&path, &HealthCache::default()) else { panic!("not ready") };
        assert!(conn.execute_batch("CREATE TABLE u(b)").is_err(), "read-only");
    }
}
