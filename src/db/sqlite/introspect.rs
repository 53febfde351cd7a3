//! Reads a database's schema through SQLite itself: `sqlite_schema` and the
//! table-valued pragmas, joined so that a whole database takes a handful of
//! queries however many tables it has. The same reader serves the live file
//! and the in-memory copy of the desired DDL, so both sides are described in
//! the same terms. Names are matched case-insensitively (ASCII), as SQLite
//! matches them.

use std::collections::BTreeMap;

use rusqlite::Connection;

/// A name as SQLite compares it: ASCII case folded.
pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Everything in one database's `main` schema, except SQLite's own objects
/// (`sqlite_sequence`, `sqlite_stat*`, automatic indexes, FTS shadow tables).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Schema {
    pub tables: BTreeMap<String, Table>,
    pub indexes: BTreeMap<String, Index>,
    pub views: BTreeMap<String, Object>,
    pub triggers: BTreeMap<String, Object>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    /// The CREATE statement as `sqlite_schema` stores it.
    pub sql: String,
    /// Position in `sqlite_schema`: creation order.
    pub order: i64,
    pub virtual_table: bool,
    pub without_rowid: bool,
    pub strict: bool,
    pub columns: Vec<Column>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Column lists of the UNIQUE and PRIMARY KEY constraints (their automatic
    /// indexes), sorted.
    pub unique_keys: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub decl_type: String,
    pub not_null: bool,
    /// The default expression as written, e.g. `'x'` or `CURRENT_TIMESTAMP`.
    pub default: Option<String>,
    /// 1-based position in the primary key, 0 when not part of it.
    pub pk: i64,
    /// 0 ordinary, 1 hidden (virtual tables), 2 virtual generated, 3 stored generated.
    pub hidden: i64,
    /// Filled by [`load_details`]; `None` until then.
    pub collation: Option<String>,
    pub autoincrement: bool,
}

impl Column {
    pub fn is_generated(&self) -> bool {
        self.hidden >= 2
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub parent: String,
    /// (child column, parent column or `None` for the parent's primary key).
    pub columns: Vec<(String, Option<String>)>,
    pub on_update: String,
    pub on_delete: String,
    pub match_: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: String,
    pub table: String,
    /// `None` for automatic indexes of UNIQUE / PRIMARY KEY constraints.
    pub sql: Option<String>,
    pub unique: bool,
    pub partial: bool,
    pub keys: Vec<IndexKey>,
}

impl Index {
    /// Whether the index was written as CREATE INDEX (not a constraint's).
    pub fn explicit(&self) -> bool {
        self.sql.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexKey {
    /// The column, or `None` for an expression.
    pub column: Option<String>,
    pub desc: bool,
    pub collation: String,
}

/// A view or a trigger: compared by its statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub name: String,
    pub table: String,
    pub sql: String,
    pub order: i64,
}

const NOT_INTERNAL: &str = r"m.name NOT LIKE 'sqlite\_%' ESCAPE '\'";

/// Reads the schema with five queries. Collations and AUTOINCREMENT need a
/// call per column, so they are left to [`load_details`] for the tables
/// that need them.
pub fn load(conn: &Connection) -> rusqlite::Result<Schema> {
    let mut schema = Schema::default();
    let kinds = table_kinds(conn)?;
    let sql = format!("SELECT m.rowid, m.type, m.name, m.tbl_name, m.sql FROM sqlite_schema m WHERE {NOT_INTERNAL}");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (order, kind, name): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let table: String = row.get(3)?;
        let text: Option<String> = row.get(4)?;
        let text = text.unwrap_or_default();
        match kind.as_str() {
            "table" => {
                let Some(&(virtual_table, without_rowid, strict)) = kinds.get(&key(&name)) else {
                    continue; // a shadow table of a virtual table
                };
                let t = Table {
                    name: name.clone(),
                    sql: text,
                    order,
                    virtual_table,
                    without_rowid,
                    strict,
                    columns: Vec::new(),
                    foreign_keys: Vec::new(),
                    unique_keys: Vec::new(),
                };
                schema.tables.insert(key(&name), t);
            }
            "view" | "trigger" => {
                let object = Object { name: name.clone(), table, sql: text, order };
                let map = if kind == "view" { &mut schema.views } else { &mut schema.triggers };
                map.insert(key(&name), object);
            }
            _ => {} // indexes come from pragma_index_list below
        }
    }
    load_columns(conn, &mut schema)?;
    load_indexes(conn, &mut schema)?;
    load_foreign_keys(conn, &mut schema)?;
    Ok(schema)
}

/// (virtual, without rowid, strict) of every ordinary or virtual table.
fn table_kinds(conn: &Connection) -> rusqlite::Result<BTreeMap<String, (bool, bool, bool)>> {
    let mut stmt = conn.prepare(
        "SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'virtual')",
    )?;
    let rows = stmt.query_map([], |r| {
        let name: String = r.get(0)?;
        let kind: String = r.get(1)?;
        Ok((key(&name), (kind == "virtual", r.get::<_, i64>(2)? != 0, r.get::<_, i64>(3)? != 0)))
    })?;
    rows.collect()
}

fn load_columns(conn: &Connection, schema: &mut Schema) -> rusqlite::Result<()> {
    let sql = format!(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden \
         FROM sqlite_schema m JOIN pragma_table_xinfo(m.name, 'main') p \
         WHERE m.type = 'table' AND {NOT_INTERNAL} ORDER BY m.name, p.cid"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let table: String = row.get(0)?;
        let Some(t) = schema.tables.get_mut(&key(&table)) else { continue };
        t.columns.push(Column {
            name: row.get(1)?,
            decl_type: row.get(2)?,
            not_null: row.get::<_, i64>(3)? != 0,
            default: row.get(4)?,
            pk: row.get(5)?,
            hidden: row.get(6)?,
            collation: None,
            autoincrement: false,
        });
    }
    Ok(())
}

fn load_indexes(conn: &Connection, schema: &mut Schema) -> rusqlite::Result<()> {
    let sql = format!(
        "SELECT m.name, il.name, il.\"unique\", il.partial, s.sql, ix.name, ix.\"desc\", ix.coll \
         FROM sqlite_schema m JOIN pragma_index_list(m.name, 'main') il \
         JOIN pragma_index_xinfo(il.name, 'main') ix \
         LEFT JOIN sqlite_schema s ON s.type = 'index' AND s.name = il.name \
         WHERE m.type = 'table' AND {NOT_INTERNAL} AND ix.key = 1 ORDER BY m.name, il.name, ix.seqno"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let table: String = row.get(0)?;
        let name: String = row.get(1)?;
        let index = schema.indexes.entry(key(&name)).or_insert_with(|| Index {
            name: name.clone(),
            table,
            sql: None,
            unique: false,
            partial: false,
            keys: Vec::new(),
        });
        index.unique = row.get::<_, i64>(2)? != 0;
        index.partial = row.get::<_, i64>(3)? != 0;
        index.sql = row.get(4)?;
        index.keys.push(IndexKey { column: row.get(5)?, desc: row.get::<_, i64>(6)? != 0, collation: row.get(7)? });
    }
    // Constraint indexes describe their table: move them there.
    let automatic: Vec<String> = schema.indexes.iter().filter(|(_, i)| !i.explicit()).map(|(k, _)| k.clone()).collect();
    for k in automatic {
        let Some(index) = schema.indexes.remove(&k) else { continue };
        if let Some(t) = schema.tables.get_mut(&key(&index.table)) {
            t.unique_keys.push(index.keys.iter().map(|c| key(c.column.as_deref().unwrap_or("?"))).collect());
            t.unique_keys.sort();
        }
    }
    Ok(())
}

fn load_foreign_keys(conn: &Connection, schema: &mut Schema) -> rusqlite::Result<()> {
    let sql = format!(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete, f.\"match\" \
         FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name, 'main') f \
         WHERE m.type = 'table' AND {NOT_INTERNAL} ORDER BY m.name, f.id, f.seq"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut last: Option<(String, i64)> = None;
    while let Some(row) = rows.next()? {
        let table: String = row.get(0)?;
        let id: i64 = row.get(1)?;
        let Some(t) = schema.tables.get_mut(&key(&table)) else { continue };
        let pair = (row.get::<_, String>(3)?, row.get::<_, Option<String>>(4)?);
        let same = last.as_ref().is_some_and(|(lt, lid)| *lt == table && *lid == id);
        match t.foreign_keys.last_mut() {
            Some(fk) if same => fk.columns.push(pair),
            _ => t.foreign_keys.push(ForeignKey {
                parent: row.get(2)?,
                columns: vec![pair],
                on_update: row.get(5)?,
                on_delete: row.get(6)?,
                match_: row.get(7)?,
            }),
        }
        last = Some((table, id));
    }
    Ok(())
}

/// Fills collation and AUTOINCREMENT of every column of `table`, which SQLite
/// only reports per column (`sqlite3_table_column_metadata`).
pub fn load_details(conn: &Connection, table: &mut Table) -> rusqlite::Result<()> {
    if table.virtual_table {
        return Ok(());
    }
    for column in table.columns.iter_mut().filter(|c| !c.is_generated()) {
        let (_, collation, _, _, autoinc) =
            conn.column_metadata(Some("main"), table.name.as_str(), column.name.as_str())?;
        column.collation = collation.map(|c| c.to_string_lossy().into_owned());
        column.autoincrement = autoinc;
    }
    Ok(())
}

/// The triggers on `table`, in the order the schema declares them.
pub fn triggers_on<'a>(schema: &'a Schema, table: &str) -> Vec<&'a Object> {
    let mut triggers: Vec<&Object> = schema.triggers.values().filter(|t| key(&t.table) == key(table)).collect();
    triggers.sort_by_key(|t| t.order);
    triggers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(ddl: &str) -> Schema {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(ddl).unwrap();
        let mut schema = load(&conn).unwrap();
        for t in schema.tables.values_mut() {
            load_details(&conn, t).unwrap();
        }
        schema
    }

    #[test]
    fn reads_columns_keys_and_constraints() {
        let s = schema_of(
            "CREATE TABLE p(id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE COLLATE NOCASE);
             CREATE TABLE c(id INT, p_id INT REFERENCES p(id) ON DELETE CASCADE, n INT DEFAULT 3,
                            g INT GENERATED ALWAYS AS (n * 2) STORED, PRIMARY KEY(id)) WITHOUT ROWID;
             CREATE INDEX c_n ON c(n DESC) WHERE n > 0;
             CREATE VIEW v AS SELECT * FROM p;",
        );
        let p = &s.tables["p"];
        assert!(p.columns[0].autoincrement);
        assert_eq!(p.columns[1].collation.as_deref(), Some("NOCASE"));
        assert_eq!(p.unique_keys, vec![vec!["email".to_string()]]);
        let c = &s.tables["c"];
        assert!(c.without_rowid);
        assert_eq!(c.foreign_keys[0].on_delete, "CASCADE");
        assert_eq!(c.columns[2].default.as_deref(), Some("3"));
        assert_eq!(c.columns[3].hidden, 3);
        let idx = &s.indexes["c_n"];
        assert!(idx.partial && idx.keys[0].desc);
        assert!(s.views.contains_key("v"));
        assert!(!s.tables.contains_key("sqlite_sequence"));
    }

    #[test]
    fn virtual_tables_are_kept_and_their_shadow_tables_are_not() {
        let s = schema_of("CREATE VIRTUAL TABLE docs USING fts5(body);");
        assert_eq!(s.tables.len(), 1);
        assert!(s.tables["docs"].virtual_table);
    }
}
