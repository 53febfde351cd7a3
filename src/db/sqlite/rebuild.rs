//! The generalized ALTER TABLE of SQLite's documentation, done so that
//! nothing is lost: the new table is created from the DDL's own statement
//! under a temporary name, live columns the DDL lacks are appended to it,
//! every row is copied with its rowid, the AUTOINCREMENT counter is carried
//! over, the old table is dropped, the new one renamed, and the table's
//! indexes and triggers are recreated from their live statements.
//!
//! The rename runs with `PRAGMA legacy_alter_table=ON` (set with
//! `foreign_keys=OFF` before the transaction): views and triggers that name
//! the table keep naming it and are not re-checked while it is briefly
//! missing, and a self-referencing foreign key keeps pointing at the table.

use super::coldef::{literal, quote};
use super::introspect::{key, Column, Schema, Table};
use super::plan::{Sql, Step, StepKind};

/// The statements that turn `live` into `desired` (plus the live-only
/// columns). An error when SQLite refuses to rename the DDL's statement.
pub fn plan(live_schema: &Schema, live: &Table, desired: &Table) -> anyhow::Result<Step> {
    let temp = temp_name(live_schema, &live.name);
    let mut sql = vec![Sql::Exec(renamed_create(&desired.sql, &desired.name, &temp)?)];
    let kept: Vec<&Column> = live
        .columns
        .iter()
        .filter(|c| !c.is_generated() && !desired.columns.iter().any(|d| key(&d.name) == key(&c.name)))
        .collect();
    for column in &kept {
        sql.push(Sql::Exec(format!("ALTER TABLE {} ADD COLUMN {}", quote(&temp), kept_definition(column, desired))));
        let lost = lost_constraints(live, column);
        if !lost.is_empty() {
            sql.push(Sql::Note(format!("kept column {} loses: {}", quote(&column.name), lost.join(", "))));
        }
    }
    for column in live.columns.iter().filter(|c| c.is_generated()) {
        if !desired.columns.iter().any(|d| key(&d.name) == key(&column.name)) {
            sql.push(Sql::Note(format!(
                "live-only generated column {} is not kept (derived data)",
                quote(&column.name)
            )));
        }
    }
    sql.push(Sql::Exec(copy_rows(live, desired, &kept, &temp)));
    if desired.columns.iter().any(|c| c.autoincrement) {
        sql.extend(keep_counter(&live.name, &temp).into_iter().map(Sql::Exec));
    }
    sql.push(Sql::Exec(format!("DROP TABLE {}", quote(&live.name))));
    sql.push(Sql::Exec(format!("ALTER TABLE {} RENAME TO {}", quote(&temp), quote(&live.name))));
    let mut dependents: Vec<(i64, &String)> = Vec::new();
    let table = key(&live.name);
    for index in live_schema.indexes.values().filter(|i| key(&i.table) == table) {
        if let Some(text) = &index.sql {
            dependents.push((0, text));
        }
    }
    for trigger in live_schema.triggers.values().filter(|t| key(&t.table) == table) {
        dependents.push((trigger.order, &trigger.sql));
    }
    dependents.sort();
    sql.extend(dependents.into_iter().map(|(_, text)| Sql::Exec(text.clone())));
    sql.push(Sql::ForeignKeyCheck);
    Ok(Step { label: format!("rebuild table {} (after a backup)", quote(&live.name)), kind: StepKind::Rebuild(sql) })
}

/// `_preflight_new_<name>`, made unique among the live tables.
fn temp_name(schema: &Schema, name: &str) -> String {
    let base = format!("_preflight_new_{name}");
    let mut candidate = base.clone();
    let mut n = 1;
    while schema.tables.contains_key(&key(&candidate)) || schema.views.contains_key(&key(&candidate)) {
        n += 1;
        candidate = format!("{base}_{n}");
    }
    candidate
}

/// The DDL's CREATE TABLE with the table renamed by SQLite itself (legacy
/// rename, foreign keys off: only the table's own name changes).
fn renamed_create(create: &str, name: &str, temp: &str) -> anyhow::Result<String> {
    let scratch = super::desired::sandbox()?;
    scratch.execute_batch("PRAGMA foreign_keys=OFF; PRAGMA legacy_alter_table=ON;")?;
    scratch.execute_batch(create)?;
    scratch.execute_batch(&format!("ALTER TABLE {} RENAME TO {}", quote(name), quote(temp)))?;
    let sql: String = scratch.query_row("SELECT sql FROM sqlite_schema WHERE name = ?1", [temp], |r| r.get(0))?;
    Ok(sql)
}

/// A live-only column as ADD COLUMN accepts it: its type, collation and a
/// constant default. NOT NULL only with such a default; constraints that
/// ADD COLUMN refuses (PRIMARY KEY, UNIQUE) are not carried over.
fn kept_definition(column: &Column, desired: &Table) -> String {
    let mut def = quote(&column.name);
    let mut ty = column.decl_type.trim().to_string();
    if desired.strict && !["INT", "INTEGER", "REAL", "TEXT", "BLOB", "ANY"].contains(&ty.to_ascii_uppercase().as_str())
    {
        ty = "ANY".into(); // a STRICT table accepts only these type names
    }
    if !ty.is_empty() {
        def.push(' ');
        def.push_str(&ty);
    }
    let default = column.default.as_deref().filter(|d| is_constant(d));
    if column.not_null && default.is_some() {
        def.push_str(" NOT NULL");
    }
    if let Some(d) = default {
        def.push_str(&format!(" DEFAULT {d}"));
    }
    if let Some(coll) = column.collation.as_deref().filter(|c| !c.eq_ignore_ascii_case("BINARY")) {
        def.push_str(&format!(" COLLATE {}", quote(coll)));
    }
    def
}

/// What [`kept_definition`] cannot carry over for a live-only column.
fn lost_constraints(live: &Table, column: &Column) -> Vec<&'static str> {
    let mut lost = Vec::new();
    let name = key(&column.name);
    if column.pk > 0 {
        lost.push("PRIMARY KEY");
    }
    if live.unique_keys.iter().any(|k| k.contains(&name)) && column.pk == 0 {
        lost.push("UNIQUE");
    }
    let constant = column.default.as_deref().is_some_and(is_constant);
    if column.default.is_some() && !constant {
        lost.push("its non-constant DEFAULT");
    }
    if column.not_null && !constant {
        lost.push("NOT NULL");
    }
    if live.foreign_keys.iter().any(|fk| fk.columns.iter().any(|(from, _)| key(from) == name)) {
        lost.push("REFERENCES");
    }
    lost
}

/// Defaults ADD COLUMN accepts: literals, not CURRENT_* or expressions.
fn is_constant(default: &str) -> bool {
    let d = default.trim().to_ascii_uppercase();
    !(d.starts_with('(') || d.starts_with("CURRENT_"))
}

/// `INSERT INTO temp (…) SELECT … FROM live`, rowid included when both
/// tables have one and the new table has no alias column for it.
fn copy_rows(live: &Table, desired: &Table, kept: &[&Column], temp: &str) -> String {
    let mut target = Vec::new();
    let mut source = Vec::new();
    for d in desired.columns.iter().filter(|c| !c.is_generated()) {
        if let Some(l) = live.columns.iter().find(|l| !l.is_generated() && key(&l.name) == key(&d.name)) {
            target.push(quote(&d.name));
            source.push(quote(&l.name));
        }
    }
    for k in kept {
        target.push(quote(&k.name));
        source.push(quote(&k.name));
    }
    let alias_copied = rowid_alias(desired).is_some_and(|a| live.columns.iter().any(|l| key(&l.name) == key(a)));
    if !live.without_rowid && !desired.without_rowid && !alias_copied {
        let taken = |n: &str| live.columns.iter().chain(&desired.columns).any(|c| key(&c.name) == n);
        if let Some(rowid) = ["rowid", "_rowid_", "oid"].into_iter().find(|n| !taken(n)) {
            target.insert(0, rowid.to_string());
            source.insert(0, rowid.to_string());
        }
    }
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {}",
        quote(temp),
        target.join(", "),
        source.join(", "),
        quote(&live.name)
    )
}

/// The INTEGER PRIMARY KEY column that is the rowid, if any.
pub fn rowid_alias(table: &Table) -> Option<&str> {
    if table.without_rowid {
        return None;
    }
    let mut pk = table.columns.iter().filter(|c| c.pk > 0);
    match (pk.next(), pk.next()) {
        (Some(c), None) if c.decl_type.trim().eq_ignore_ascii_case("INTEGER") => Some(&c.name),
        _ => None,
    }
}

/// Carries the old AUTOINCREMENT counter over to the new table: never lower
/// than it was, so no rowid is ever handed out twice.
fn keep_counter(name: &str, temp: &str) -> Vec<String> {
    let (old, new) = (literal(name), literal(temp));
    vec![
        format!(
            "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = {old}), 0)) \
             WHERE name = {new}"
        ),
        format!(
            "INSERT INTO sqlite_sequence (name, seq) SELECT {new}, seq FROM sqlite_sequence WHERE name = {old} \
             AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {new})"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlite::desired::from_ddl;

    #[test]
    fn renaming_keeps_a_self_reference() {
        let sql =
            renamed_create("CREATE TABLE \"t x\" (id INTEGER PRIMARY KEY, p REFERENCES \"t x\"(id))", "t x", "tmp")
                .unwrap();
        assert!(sql.starts_with("CREATE TABLE \"tmp\""), "{sql}");
        assert!(sql.contains("REFERENCES \"t x\"(id)"), "{sql}");
    }

    #[test]
    fn the_copy_keeps_rowids_and_live_only_columns() {
        let live =
            from_ddl("CREATE TABLE t(a TEXT, old INT NOT NULL DEFAULT 3, u TEXT UNIQUE NOT NULL);").unwrap().schema;
        let desired = from_ddl("CREATE TABLE t(a TEXT UNIQUE, b INT);").unwrap().schema;
        let step = plan(&live, &live.tables["t"], &desired.tables["t"]).unwrap();
        let lines = step.lines().join("\n");
        assert!(lines.contains("ADD COLUMN \"old\" INT NOT NULL DEFAULT 3"), "{lines}");
        assert!(lines.contains(
            "INSERT INTO \"_preflight_new_t\" (rowid, \"a\", \"old\", \"u\") SELECT rowid, \"a\", \"old\", \"u\""
        ));
        assert!(lines.contains("-- kept column \"u\" loses: UNIQUE, NOT NULL"), "{lines}");
    }

    #[test]
    fn an_integer_primary_key_is_the_rowid() {
        let s = from_ddl("CREATE TABLE a(id INTEGER PRIMARY KEY); CREATE TABLE b(id INT PRIMARY KEY);").unwrap().schema;
        assert_eq!(rowid_alias(&s.tables["a"]), Some("id"));
        assert_eq!(rowid_alias(&s.tables["b"]), None);
    }
}
