//! The desired schema: the manifest's DDL file, loaded into an in-memory
//! SQLite so that SQLite itself parses it. The file may hold only
//! declarations and seed rows (`statements.rs` asks SQLite what each
//! statement does before it runs); a statement that is anything else, or
//! that does not load, is a manifest-level error naming the file, the
//! line and the statement.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use super::introspect::{self, key, Schema};
use super::statements::{self, Class, Recorder};

/// The DDL loaded and described. The connection stays open for the
/// per-column details, read only for tables that need them.
pub struct Desired {
    pub conn: Connection,
    pub schema: Schema,
    /// The file's INSERT statements, in file order: applied when heal
    /// creates the table they fill.
    pub seeds: Vec<Seed>,
}

/// An INSERT of seed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    /// The table it fills, as [`key`] folds it.
    pub table: String,
    pub sql: String,
}

impl Desired {
    /// The seed statements of `table`, in file order.
    pub fn seeds_of(&self, table: &str) -> Vec<String> {
        self.seeds.iter().filter(|s| s.table == key(table)).map(|s| s.sql.clone()).collect()
    }
}

/// The text of the DDL file `rel` (relative to `root`).
pub fn read(root: &Path, rel: &Path) -> anyhow::Result<String> {
    let path = crate::fsutil::resolve(root, rel)?;
    // A FIFO or device in its place is refused at once, never waited on.
    crate::fsutil::read_regular_text(&path).with_context(|| format!("cannot read schema file {}", rel.display()))
}

/// Loads the DDL text read from `rel` into a fresh in-memory database.
pub fn parse(ddl: &str, rel: &Path) -> anyhow::Result<Desired> {
    from_ddl(ddl).with_context(|| format!("schema file {}", rel.display()))
}

/// Loads DDL text statement by statement; the error names the line, the
/// statement, and SQLite's message or why the statement is refused.
pub fn from_ddl(ddl: &str) -> anyhow::Result<Desired> {
    let mut conn = sandbox()?;
    let recorder = Recorder::install(&mut conn)?;
    let mut seeds = Vec::new();
    for statement in statements::split(ddl) {
        let line = statement.line;
        let shown = statements::shown(&statement.text);
        match recorder.run(&conn, &statement.text) {
            Err(e) => anyhow::bail!("line {line}: `{shown}` does not load: {e}"),
            Ok(Err(why)) => anyhow::bail!(
                "line {line}: `{shown}` is refused: {why}; a schema file holds CREATE TABLE / INDEX / VIEW / \
                 TRIGGER / VIRTUAL TABLE and INSERT seed rows for the tables it creates"
            ),
            Ok(Ok(Some(Class::Seed { table }))) => seeds.push(Seed { table: key(&table), sql: statement.text }),
            Ok(Ok(_)) => {}
        }
    }
    conn.authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization>)?;
    let schema = introspect::load(&conn)?;
    Ok(Desired { conn, schema, seeds })
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
        assert!(text.contains("bad.sql") && text.contains("line 1") && text.contains("syntax error"), "{text}");
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

    #[test]
    fn a_refused_statement_names_its_line_and_nothing_after_it_runs() {
        let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY);\nPRAGMA writable_schema=ON;\n\
                   INSERT INTO sqlite_schema VALUES ('view', 'v', 'v', 0, 'CREATE VIEW v AS SELECT 1');";
        let err = format!("{:#}", from_ddl(ddl).err().unwrap());
        assert!(err.contains("line 2") && err.contains("`PRAGMA writable_schema=ON` is refused"), "{err}");
    }

    #[test]
    fn seed_rows_are_kept_with_their_table() {
        let d =
            from_ddl("CREATE TABLE Roles(name TEXT); INSERT INTO roles VALUES ('admin'); CREATE TABLE u(x);").unwrap();
        assert_eq!(d.seeds_of("ROLES"), ["INSERT INTO roles VALUES ('admin');"]);
        assert!(d.seeds_of("u").is_empty());
    }
}
