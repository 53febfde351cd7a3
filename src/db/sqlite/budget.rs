//! The disk a backup or a rebuild needs, checked before either starts (a
//! disk that fills half-way through a rebuild fails it after minutes of
//! work), and the space a rebuild leaves free inside the file afterwards:
//! given back to the file system when that is cheap, else reported with
//! how to reclaim it.

use std::path::Path;

use anyhow::bail;
use rusqlite::Connection;

use super::coldef::literal;
use crate::runtime::diskfree;
use crate::runtime::size::human_bytes;

/// A database up to this size is vacuumed after a rebuild: it takes well
/// under a second and as much free disk, briefly.
const CHEAP_VACUUM: u64 = 64 << 20;

/// The database's size as SQLite counts it (pages × page size).
pub fn database_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    Ok(u64::try_from(pages).unwrap_or_default().saturating_mul(page_size(conn)?))
}

fn page_size(conn: &Connection) -> rusqlite::Result<u64> {
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(u64::try_from(size).unwrap_or_default())
}

/// Free pages inside the file, in bytes.
pub fn free_inside(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(u64::try_from(pages).unwrap_or_default().saturating_mul(page_size(conn)?))
}

/// What a rebuild of `table` writes: a copy of the table and its indexes,
/// and as much again for the rollback journal or the WAL.
pub fn rebuild_need(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    let sql = format!(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = {0} \
         OR name IN (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = {0})",
        literal(table)
    );
    let bytes: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
    Ok(u64::try_from(bytes).unwrap_or_default().saturating_mul(2))
}

/// Refuses, with the figures, when the file system holding `dir` has less
/// than `need` bytes available for `what`.
pub fn ensure(dir: &Path, need: u64, what: &str) -> anyhow::Result<()> {
    let available = diskfree::space(dir)?.available;
    refuse_short(need, available, what, dir)
}

fn refuse_short(need: u64, available: u64, what: &str, dir: &Path) -> anyhow::Result<()> {
    if need > available {
        bail!(
            "not enough free disk for {what}: it needs about {} and {} holds {} free; free {} and heal again",
            human_bytes(need),
            dir.display(),
            human_bytes(available),
            human_bytes(need - available)
        );
    }
    Ok(())
}

/// After a rebuild (outside any transaction): gives the pages the old
/// table left free back to the file system when that is cheap, else says
/// how much is free inside the file and how to reclaim it.
pub fn reclaim(conn: &Connection, dir: &Path) -> rusqlite::Result<String> {
    let free = free_inside(conn)?;
    if free == 0 {
        return Ok(String::new());
    }
    let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if auto_vacuum == 2 {
        conn.execute_batch("PRAGMA incremental_vacuum")?;
        return Ok(format!("; incremental_vacuum gave {} back to the file system", human_bytes(free)));
    }
    let size = database_bytes(conn)?;
    let room = diskfree::space(dir).map(|s| s.available).unwrap_or_default();
    // VACUUM renumbers the rows of a table whose rowid is not an INTEGER PRIMARY KEY.
    let renumbered = implicit_rowids(conn)?;
    if renumbered.is_empty()
        && size <= CHEAP_VACUUM
        && room > size.saturating_mul(2)
        && conn.execute_batch("VACUUM").is_ok()
    {
        return Ok(format!("; VACUUM gave {} back to the file system", human_bytes(free)));
    }
    let caveat = match renumbered.is_empty() {
        true => String::new(),
        false => format!(
            ", but it renumbers the rowids of {} (no INTEGER PRIMARY KEY): only if nothing relies on them",
            renumbered.join(", ")
        ),
    };
    Ok(format!(
        "; {} is free inside the file: `VACUUM` (with the application stopped, and about {} free on disk) gives it back{caveat}",
        human_bytes(free),
        human_bytes(size)
    ))
}

/// Tables whose rowid is not a column: VACUUM may renumber their rows.
fn implicit_rowids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        r"SELECT t.name FROM pragma_table_list t WHERE t.schema = 'main' AND t.type = 'table' AND t.wr = 0
            AND t.name NOT LIKE 'sqlite\_%' ESCAPE '\'
            AND NOT ((SELECT count(*) FROM pragma_table_info(t.name) WHERE pk > 0) = 1
                 AND (SELECT upper(type) FROM pragma_table_info(t.name) WHERE pk > 0) = 'INTEGER')
          ORDER BY t.name",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.map(|n| n.map(|n| super::coldef::quote(&n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_disk_is_refused_with_the_figures() {
        let err = refuse_short(3 << 30, 1 << 30, "the backup of app/data.db", Path::new("/srv/app")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not enough free disk for the backup of app/data.db: it needs about 3.0 GiB and /srv/app holds 1.0 GiB \
             free; free 2.0 GiB and heal again"
        );
        assert!(refuse_short(10, 10, "x", Path::new(".")).is_ok());
    }

    #[test]
    fn a_rebuild_needs_its_table_twice_and_leaves_free_pages_that_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("d.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE small(id INTEGER PRIMARY KEY, a); CREATE TABLE big(a TEXT); CREATE INDEX big_a ON big(a);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO big SELECT hex(randomblob(100)) FROM n;",
        )
        .unwrap();
        let need = rebuild_need(&conn, "big").unwrap();
        assert!(need > 2 * 400_000 && need < database_bytes(&conn).unwrap() * 2, "{need}");
        assert!(rebuild_need(&conn, "small").unwrap() <= 2 * 4096);
        conn.execute_batch("DROP TABLE big").unwrap();
        let note = reclaim(&conn, dir.path()).unwrap();
        assert!(note.starts_with("; VACUUM gave ") && note.ends_with("back to the file system"), "{note}");
        assert_eq!(free_inside(&conn).unwrap(), 0);
        assert_eq!(reclaim(&conn, dir.path()).unwrap(), "");
    }

    #[test]
    fn a_database_with_implicit_rowids_is_not_vacuumed() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("d.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE keyed(id INTEGER PRIMARY KEY, a); CREATE TABLE plain(a); CREATE TABLE big(a TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT INTO big SELECT hex(randomblob(100)) FROM n; DROP TABLE big;",
        )
        .unwrap();
        let note = reclaim(&conn, dir.path()).unwrap();
        assert!(
            note.contains("is free inside the file") && note.contains("renumbers the rowids of \"plain\""),
            "{note}"
        );
        assert!(free_inside(&conn).unwrap() > 0, "not vacuumed");
    }
}
