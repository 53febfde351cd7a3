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

use std::collections::BTreeMap;

use anyhow::bail;

use super::coldef::{literal, quote};
use super::introspect::{key, Column, Schema, Table};
use super::plan::{Sql, Step, StepKind};
use super::precheck::Need;

/// Values for existing rows, by column key: `[[database.backfill]]`.
pub type Backfills = BTreeMap<String, String>;

/// The names SQLite gives the rowid of a table that has no column so named.
const ROWID_NAMES: [&str; 3] = ["rowid", "_rowid_", "oid"];

/// The statements that turn `live` into `desired` (plus the live-only
/// columns). An error, with the reason, when the rebuild could not keep
/// every value: rowids hidden by columns named like them, a column the
/// DDL makes generated whose stored values cannot be compared.
pub fn plan(live_schema: &Schema, live: &Table, desired: &Table, backfills: &Backfills) -> anyhow::Result<Step> {
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
    let copy = copy_rows(live, desired, &kept, &temp, backfills)?;
    sql.push(Sql::Copy { sql: copy.sql, from: live.name.clone(), to: temp.clone() });
    for column in &copy.recomputed {
        sql.push(Sql::Expect {
            sql: format!(
                "SELECT count(*) FROM {} AS o JOIN {} AS n ON n.{rowid} = o.{source} WHERE o.{c} IS NOT n.{c}",
                quote(&live.name),
                quote(&temp),
                rowid = copy.rowid.1,
                source = copy.rowid.0,
                c = quote(column)
            ),
            message: format!(
                "rows of {} would change: the schema computes it (GENERATED) and the result differs from the stored value",
                quote(column)
            ),
        });
    }
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
    Ok(Step {
        label: format!("rebuild table {} (after a backup)", quote(&live.name)),
        kind: StepKind::Rebuild { table: live.name.clone(), sql },
        needs: needs(live, desired, backfills),
    })
}

/// What the live rows must satisfy for the copy to succeed: no NULL in a
/// column that becomes NOT NULL (unless backfilled), no duplicates under
/// a UNIQUE constraint the live table does not have.
fn needs(live: &Table, desired: &Table, backfills: &Backfills) -> Vec<Need> {
    let live_column = |name: &str| live.columns.iter().find(|l| key(&l.name) == key(name));
    let mut needs = Vec::new();
    for d in desired.columns.iter().filter(|d| d.not_null && !d.is_generated()) {
        if let Some(l) = live_column(&d.name).filter(|l| !l.not_null && !backfills.contains_key(&key(&d.name))) {
            needs.push(Need::NotNull { table: live.name.clone(), column: l.name.clone() });
        }
    }
    for unique in desired.unique_keys.iter().filter(|k| !live.unique_keys.contains(k)) {
        let columns: Option<Vec<String>> = unique
            .iter()
            .map(|c| live_column(c).filter(|_| !backfills.contains_key(c)).map(|l| l.name.clone()))
            .collect();
        if let Some(columns) = columns {
            needs.push(Need::Distinct { table: live.name.clone(), columns });
        }
    }
    needs
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

/// The copy of a rebuild: the INSERT, how the rowid is carried
/// (expression on the live side, name on the new side), and the columns
/// the new table computes from values that were stored.
struct Copy {
    sql: String,
    rowid: (String, String),
    recomputed: Vec<String>,
}

/// `INSERT INTO temp (…) SELECT … FROM live`, the rowid included. A value
/// comes from the live column of the same name (generated or not), else
/// from the column's backfill; a NOT NULL column with a backfill takes it
/// where the live value is NULL.
fn copy_rows(
    live: &Table,
    desired: &Table,
    kept: &[&Column],
    temp: &str,
    backfills: &Backfills,
) -> anyhow::Result<Copy> {
    let mut target = Vec::new();
    let mut source = Vec::new();
    let mut recomputed = Vec::new();
    for d in &desired.columns {
        let l = live.columns.iter().find(|l| key(&l.name) == key(&d.name));
        if d.is_generated() {
            if let Some(l) = l.filter(|l| !l.is_generated()) {
                recomputed.push(l.name.clone());
            }
            continue;
        }
        let backfill = backfills.get(&key(&d.name));
        let value = match (l, backfill) {
            (Some(l), Some(b)) if d.not_null => format!("coalesce({}, ({b}))", quote(&l.name)),
            (Some(l), _) => quote(&l.name),
            (None, Some(b)) => format!("({b})"),
            (None, None) => continue,
        };
        target.push(quote(&d.name));
        source.push(value);
    }
    for k in kept {
        target.push(quote(&k.name));
        source.push(quote(&k.name));
    }
    let mut rowid = (String::new(), String::new());
    let alias = rowid_alias(desired).and_then(|a| target.iter().position(|t| *t == quote(a)));
    if live.without_rowid || desired.without_rowid {
        if !recomputed.is_empty() {
            bail!(
                "column {} becomes generated and its stored values cannot be compared without a rowid",
                recomputed.join(", ")
            );
        }
    } else if let Some(i) = alias {
        // The new rowid is the live column copied into the alias.
        rowid = (source[i].clone(), target[i].clone());
    } else {
        let Some(from) = rowid_of(live, &live.columns) else {
            bail!(
                "the live table has columns named rowid, _rowid_ and oid, which hide its rowids: a rebuild would \
                 renumber its rows; rename one of those columns first"
            );
        };
        let new_columns: Vec<Column> =
            desired.columns.iter().cloned().chain(kept.iter().map(|c| (*c).clone())).collect();
        let Some(to) = rowid_of(desired, &new_columns) else {
            bail!("the schema's table has columns named rowid, _rowid_ and oid: its rows' rowids would have no name to be copied to");
        };
        target.insert(0, to.clone());
        source.insert(0, from.clone());
        rowid = (from, to);
    }
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM {}",
        quote(temp),
        target.join(", "),
        source.join(", "),
        quote(&live.name)
    );
    Ok(Copy { sql, rowid, recomputed })
}

/// How SQL names the rowid of `table` whose columns are `columns`: its
/// INTEGER PRIMARY KEY, else the first of rowid, _rowid_, oid no column
/// hides. `None` when all three are column names.
fn rowid_of(table: &Table, columns: &[Column]) -> Option<String> {
    if let Some(alias) = rowid_alias(table) {
        return Some(quote(alias));
    }
    ROWID_NAMES.into_iter().find(|n| !columns.iter().any(|c| key(&c.name) == *n)).map(str::to_string)
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
        let step = plan(&live, &live.tables["t"], &desired.tables["t"], &Backfills::new()).unwrap();
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

    #[test]
    fn hidden_rowids_refuse_the_rebuild_and_a_free_name_carries_them() {
        let live = from_ddl("CREATE TABLE t(rowid TEXT, _rowid_ TEXT, oid TEXT, a INT);").unwrap().schema;
        let desired =
            from_ddl("CREATE TABLE t(rowid TEXT, _rowid_ TEXT, oid TEXT, a INT NOT NULL DEFAULT 0);").unwrap().schema;
        let err = plan(&live, &live.tables["t"], &desired.tables["t"], &Backfills::new()).unwrap_err();
        assert!(err.to_string().contains("hide its rowids"), "{err}");
        let live = from_ddl("CREATE TABLE t(rowid TEXT, a INT);").unwrap().schema;
        let desired = from_ddl("CREATE TABLE t(rowid TEXT, _rowid_ INT, a INT NOT NULL DEFAULT 0);").unwrap().schema;
        let lines = plan(&live, &live.tables["t"], &desired.tables["t"], &Backfills::new()).unwrap().lines().join("\n");
        assert!(lines.contains("(oid, \"rowid\", \"a\") SELECT _rowid_, \"rowid\", \"a\""), "{lines}");
    }

    #[test]
    fn a_backfill_fills_a_new_column_and_the_nulls_of_one_made_not_null() {
        let live = from_ddl("CREATE TABLE idp(id INTEGER PRIMARY KEY, name TEXT);").unwrap().schema;
        let desired =
            from_ddl("CREATE TABLE idp(id INTEGER PRIMARY KEY, name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE);")
                .unwrap()
                .schema;
        let backfills: Backfills =
            [("uid".to_string(), "hex(randomblob(8))".to_string()), ("name".to_string(), "'?'".to_string())].into();
        let step = plan(&live, &live.tables["idp"], &desired.tables["idp"], &backfills).unwrap();
        let lines = step.lines().join("\n");
        assert!(
            lines
                .contains("(\"id\", \"name\", \"uid\") SELECT \"id\", coalesce(\"name\", ('?')), (hex(randomblob(8)))"),
            "{lines}"
        );
        assert!(step.needs.is_empty(), "{:?}", step.needs);
        let step = plan(&live, &live.tables["idp"], &desired.tables["idp"], &Backfills::new()).unwrap();
        assert_eq!(step.needs, [Need::NotNull { table: "idp".into(), column: "name".into() }]);
    }
}
