//! How much of a database validation reads before it trusts the file.
//!
//! `PRAGMA quick_check` reads every page: about 1.7 s for a 0.9 GB file,
//! paid on every start of the application. So by default (`integrity =
//! "auto"`) it runs only on files up to [`AUTO_LIMIT`]; larger files get
//! the structural checks, whose cost does not grow with the rows: the
//! header against the file size (`ondisk.rs`), the schema read and parsed
//! by SQLite, every table and index root page within the file, and the
//! first leaf of every table read. They catch the common damage — a file
//! cut short by a full disk or an interrupted copy, a header or schema
//! page overwritten — but not a damaged page in the middle of the data,
//! which is what `--deep` (or `integrity = "quick"`) is for.

use rusqlite::Connection;

use super::coldef::quote;
use crate::manifest::Integrity;

/// Files up to this size (database plus WAL) get `PRAGMA quick_check`
/// under `integrity = "auto"`: about 0.1 s at this size on a small machine.
pub const AUTO_LIMIT: u64 = 64 << 20;

/// What validation reads of one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `PRAGMA quick_check`: every page.
    QuickCheck,
    /// The structural checks: header, schema, root pages.
    Structure,
}

/// The depth for a database of `bytes` bytes under the manifest's
/// `integrity` and the command line's `--deep`.
pub fn depth(integrity: Integrity, deep: bool, bytes: u64) -> Depth {
    match integrity {
        _ if deep => Depth::QuickCheck,
        Integrity::Quick => Depth::QuickCheck,
        Integrity::Auto if bytes <= AUTO_LIMIT => Depth::QuickCheck,
        Integrity::Auto | Integrity::Off => Depth::Structure,
    }
}

/// The structural checks SQLite can answer without reading the data:
/// every root page within the file and readable, every table's first leaf
/// readable. `Err` carries what is wrong, in words for the finding.
pub fn structure(conn: &Connection) -> Result<(), String> {
    let fail = |e: rusqlite::Error| format!("is damaged ({e})");
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(fail)?;
    let mut stmt = conn.prepare("SELECT type, name, rootpage FROM sqlite_schema").map_err(fail)?;
    let objects: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.unwrap_or(0))))
        .and_then(|rows| rows.collect())
        .map_err(fail)?;
    for (kind, name, root) in &objects {
        if *root < 0 || *root > pages {
            return Err(format!("is damaged: its schema puts {kind} {name:?} on page {root}, past its {pages} pages"));
        }
    }
    // One read per table, down its left edge: a root or interior page
    // overwritten with something else fails here.
    for (_, name, _) in objects.iter().filter(|(kind, _, root)| kind == "table" && *root > 0) {
        let probe = format!("SELECT 1 FROM main.{} LIMIT 1", quote(name));
        if let Err(e) = conn.prepare(&probe).and_then(|mut s| s.exists([])) {
            return Err(format!("is damaged: table {name:?} cannot be read ({e})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_reads_every_page_of_small_files_only() {
        assert_eq!(depth(Integrity::Auto, false, AUTO_LIMIT), Depth::QuickCheck);
        assert_eq!(depth(Integrity::Auto, false, AUTO_LIMIT + 1), Depth::Structure);
        assert_eq!(depth(Integrity::Off, false, 1), Depth::Structure);
        assert_eq!(depth(Integrity::Quick, false, u64::MAX), Depth::QuickCheck);
        assert_eq!(depth(Integrity::Off, true, u64::MAX), Depth::QuickCheck, "--deep wins");
    }

    #[test]
    fn a_sound_schema_passes_and_a_root_past_the_end_does_not() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE \"a b\"(x); CREATE INDEX i ON \"a b\"(x); CREATE VIEW v AS SELECT 1; INSERT INTO \"a b\" VALUES (1);")
            .unwrap();
        assert_eq!(structure(&conn), Ok(()));
        conn.execute_batch("PRAGMA writable_schema=ON; UPDATE sqlite_schema SET rootpage = 999 WHERE name = 'i';")
            .unwrap();
        let err = structure(&conn).unwrap_err();
        assert!(err.contains("past its"), "{err}");
    }
}
