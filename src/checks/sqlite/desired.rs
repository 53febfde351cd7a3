//! The desired schema: the manifest's DDL file, loaded into an in-memory
//! SQLite so that SQLite itself parses it. A file that does not load is a
//! manifest-level error, naming the file and SQLite's message.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use super::introspect::{self, Schema};

/// The DDL loaded and described. The connection stays open: tables are
/// created in it again when their exact statement is needed.
pub struct Desired {
    pub schema: Schema,
}

/// Reads `rel` (relative to `root`) and loads it into a fresh in-memory
/// database.
pub fn load(root: &Path, rel: &Path) -> anyhow::Result<Desired> {
    let path = crate::fsutil::resolve(root, rel)?;
    let ddl = std::fs::read_to_string(&path).with_context(|| format!("cannot read schema file {}", rel.display()))?;
    from_ddl(&ddl).with_context(|| format!("schema file {} does not load", rel.display()))
}

/// Loads DDL text; the error is SQLite's own message.
pub fn from_ddl(ddl: &str) -> anyhow::Result<Desired> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(ddl).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut schema = introspect::load(&conn)?;
    for table in schema.tables.values_mut() {
        introspect::load_details(&conn, table)?;
    }
    Ok(Desired { schema })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ddl_that_does_not_load_names_the_file_and_sqlite_message() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("bad.sql"), "CREATE TABLE t(a;").unwrap();
        let err = load(root.path(), Path::new("bad.sql")).err().unwrap();
        let text = format!("{err:#}");
        assert!(text.contains("bad.sql") && text.contains("syntax error"), "{text}");
    }

    #[test]
    fn a_ddl_is_described_by_sqlite() {
        let d = from_ddl("CREATE TABLE t(a TEXT COLLATE NOCASE);").unwrap();
        assert_eq!(d.schema.tables["t"].columns[0].collation.as_deref(), Some("NOCASE"));
    }
}
