//! The desired schema: the manifest's DDL file, loaded into an in-memory
//! SQLite so that SQLite itself parses it. A file that does not load is a
//! manifest-level error, naming the file and SQLite's message.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use super::introspect::{self, Schema};

/// The DDL loaded and described. The connection stays open for the
/// per-column details, read only for tables that need them.
pub struct Desired {
    pub conn: Connection,
    pub schema: Schema,
}

/// The text of the DDL file `rel` (relative to `root`).
pub fn read(root: &Path, rel: &Path) -> anyhow::Result<String> {
    let path = crate::fsutil::resolve(root, rel)?;
    std::fs::read_to_string(&path).with_context(|| format!("cannot read schema file {}", rel.display()))
}

/// Loads the DDL text read from `rel` into a fresh in-memory database.
pub fn parse(ddl: &str, rel: &Path) -> anyhow::Result<Desired> {
    from_ddl(ddl).with_context(|| format!("schema file {} does not load", rel.display()))
}

/// Loads DDL text; the error is SQLite's own message.
pub fn from_ddl(ddl: &str) -> anyhow::Result<Desired> {
    let conn = sandbox()?;
    conn.execute_batch(ddl).map_err(|e| anyhow::anyhow!("{e}"))?;
    let schema = introspect::load(&conn)?;
    Ok(Desired { conn, schema })
}

/// An in-memory database that cannot reach any file: `ATTACH` (and
/// `VACUUM INTO`, which attaches its target) is refused, so running a DDL
/// or a statement of the live schema writes nothing anywhere.
pub fn sandbox() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ddl_that_does_not_load_names_the_file_and_sqlite_message() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("bad.sql"), "CREATE TABLE t(a;").unwrap();
        let ddl = read(root.path(), Path::new("bad.sql")).unwrap();
        let err = parse(&ddl, Path::new("bad.sql")).err().unwrap();
        let text = format!("{err:#}");
        assert!(text.contains("bad.sql") && text.contains("syntax error"), "{text}");
    }

    #[test]
    fn a_ddl_cannot_write_files() {
        let dir = tempfile::tempdir().unwrap();
        for ddl in ["ATTACH '{}/x.db' AS x; CREATE TABLE x.t(a);", "CREATE TABLE t(a); VACUUM INTO '{}/copy.db';"] {
            let ddl = ddl.replace("{}", &dir.path().display().to_string());
            assert!(from_ddl(&ddl).is_err(), "{ddl}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file was written");
    }

    #[test]
    fn a_ddl_is_described_by_sqlite() {
        let mut d = from_ddl("CREATE TABLE t(a TEXT COLLATE NOCASE);").unwrap();
        let t = d.schema.tables.get_mut("t").unwrap();
        introspect::load_details(&d.conn, t).unwrap();
        assert_eq!(t.columns[0].collation.as_deref(), Some("NOCASE"));
    }
}
