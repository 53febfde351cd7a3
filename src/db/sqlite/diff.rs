//! Desired against live: every difference becomes a [`Difference`] with its
//! SPEC finding ID, and the ones heal may repair point at a [`Step`]. A step
//! may repair several differences (a table rebuild repairs all of its
//! table's). Steps come out in an order that runs: tables, then indexes,
//! views, triggers (those three in `objects.rs`). Nothing here ever
//! proposes to drop a live table, column or index that the DDL lacks.

use rusqlite::Connection;

use super::coldef::{self, normalize, quote};
use super::desired::Desired;
use super::introspect::{self, key, triggers_on, Column, Schema, Table};
use super::objects;
use super::plan::Step;
use super::rebuild::{self, Backfills};
use crate::db::ignore::Ignore;
use crate::db::DRIFT;
use crate::finding::Severity;
use crate::manifest::BackfillSpec;

/// The live database as the comparison reads it: its schema (the live
/// file, or a scratch copy with the renames applied, see `rename.rs`) and
/// its rows (the live file, under the new names).
#[derive(Clone, Copy)]
pub struct LiveDb<'a> {
    pub schema: &'a Connection,
    pub rows: &'a Connection,
}

/// What the comparison may propose.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Rebuilds for type, nullability, default or key changes.
    pub allow_rebuild: bool,
    /// Values for existing rows of NOT NULL columns (`[[database.backfill]]`).
    pub backfills: &'a [BackfillSpec],
    /// Expected drift, not reported.
    pub ignore: Option<&'a Ignore>,
}

impl Rules<'_> {
    fn backfills_of(&self, table: &str) -> Backfills {
        self.backfills
            .iter()
            .filter(|b| key(&b.table) == key(table))
            .map(|b| (key(&b.column), b.value.clone()))
            .collect()
    }
}

/// The differences of one database, and the steps that repair them.
pub type Diff = crate::db::Diff<Step>;

/// Compares. `conn` is the live (read-only) connection; per-column details
/// (collations, AUTOINCREMENT) are read, on both sides, only for tables
/// whose statement differs from the DDL's.
pub fn compare(db: LiveDb, live: &mut Schema, desired: &mut Desired, base: &str, rules: Rules) -> anyhow::Result<Diff> {
    let mut diff = Diff::default();
    let mut wanted: Vec<(i64, String)> = desired.schema.tables.iter().map(|(k, t)| (t.order, k.clone())).collect();
    wanted.sort();
    for (_, k) in wanted {
        let Some(d) = desired.schema.tables.get(&k) else { continue };
        let id = format!("{base}:table:{}", d.name);
        let Some(l) = live.tables.get_mut(&k) else {
            let step = diff.add_step(create_table(d, desired));
            diff.push(id, Severity::Critical, "table is missing", Some(step));
            continue;
        };
        if l.sql == d.sql {
            diff.same_tables.push(id);
            continue; // the same statement: the same table
        }
        if l.virtual_table || d.virtual_table {
            if normalize(&l.sql) != normalize(&d.sql) {
                diff.push(id, Severity::Warning, "virtual table differs from the schema; it is not rebuilt", None);
            }
            continue;
        }
        introspect::load_details(db.schema, l)?;
        if let Some(d) = desired.schema.tables.get_mut(&k) {
            introspect::load_details(&desired.conn, d)?;
        }
        let Some(d) = desired.schema.tables.get(&k) else { continue };
        let before = diff.differences.len();
        compare_table(db.rows, &mut diff, live, d, &id, rules);
        if diff.differences.len() == before {
            diff.same_tables.push(id);
        }
    }
    let desired = &desired.schema;
    let ignored = |name: &str| rules.ignore.is_some_and(|i| i.name(name));
    for l in live.tables.values().filter(|l| !desired.tables.contains_key(&key(&l.name)) && !ignored(&l.name)) {
        diff.push(format!("{base}:table:{}", l.name), Severity::Warning, format!("table {DRIFT}"), None);
    }
    objects::compare_indexes(&mut diff, live, desired, base, rules.ignore);
    objects::compare_objects(&mut diff, (live, desired), base, "view", rules.ignore);
    objects::compare_objects(&mut diff, (live, desired), base, "trigger", rules.ignore);
    Ok(diff)
}

/// CREATE TABLE, its seed rows, and the indexes and triggers the DDL
/// declares on it. Seed rows go in before the triggers exist: they are
/// the table's first content, not events.
fn create_table(d: &Table, desired: &Desired) -> Step {
    let schema = &desired.schema;
    let seeds = desired.seeds_of(&d.name);
    let mut label = format!("create table {}", quote(&d.name));
    if !seeds.is_empty() {
        label.push_str(&format!(" with its seed rows ({} INSERT)", seeds.len()));
    }
    let mut statements = vec![d.sql.clone()];
    statements.extend(seeds);
    statements.extend(schema.indexes.values().filter(|i| key(&i.table) == key(&d.name)).filter_map(|i| i.sql.clone()));
    statements.extend(triggers_on(schema, &d.name).into_iter().map(|t| t.sql.clone()));
    Step::schema(label, statements)
}

/// What differs in a table present on both sides.
struct TableDiff<'a> {
    missing: Vec<&'a Column>,
    /// (column, what differs) for columns on both sides.
    changed: Vec<(String, Vec<String>)>,
    /// STRICT, WITHOUT ROWID, keys… (for the table's own finding).
    table_level: Vec<String>,
}

impl TableDiff<'_> {
    /// Differences only a rebuild can repair.
    fn structural(&self) -> bool {
        !self.changed.is_empty() || !self.table_level.is_empty()
    }
}

/// How a table's differences will be repaired.
struct Repair {
    /// ADD COLUMN statements, one per missing column, when they suffice.
    additions: Option<Vec<String>>,
    rebuild: Option<usize>,
    /// Appended to the messages of what stays unrepaired: why, and what to do.
    hint: String,
}

fn find(columns: &[Column], name: &str) -> Option<usize> {
    columns.iter().position(|c| key(&c.name) == key(name))
}

/// Columns and table-level properties of a table present on both sides.
fn compare_table(conn: &Connection, diff: &mut Diff, live_schema: &Schema, d: &Table, id: &str, rules: Rules) {
    let Some(l) = live_schema.tables.get(&key(&d.name)) else { return };
    let ignored = |c: &Column| rules.ignore.is_some_and(|i| i.column(&l.name, &c.name));
    for extra in l.columns.iter().filter(|c| find(&d.columns, &c.name).is_none() && !ignored(c)) {
        diff.push(format!("{id}:column:{}", extra.name), Severity::Warning, format!("column {DRIFT}"), None);
    }
    let td = table_diff(l, d);
    let repair = plan_repair(conn, diff, live_schema, (l, d), &td, rules);
    let hint = &repair.hint;
    if !td.table_level.is_empty() {
        let message = format!("table differs from the schema: {}{hint}", td.table_level.join("; "));
        diff.push(id.to_string(), Severity::Warning, message, repair.rebuild);
    }
    for (name, changes) in &td.changed {
        let message = format!("column differs from the schema: {}{hint}", changes.join("; "));
        diff.push(format!("{id}:column:{name}"), Severity::Warning, message, repair.rebuild);
    }
    for (i, column) in td.missing.iter().enumerate() {
        let cid = format!("{id}:column:{}", column.name);
        let step = match (&repair.additions, repair.rebuild) {
            (_, Some(step)) => Some(step),
            (Some(statements), None) => Some(
                diff.add_step(Step::schema(format!("add column {}", quote(&column.name)), vec![statements[i].clone()])),
            ),
            (None, None) => None,
        };
        let message = match step {
            Some(_) => "column is missing".to_string(),
            None => format!("column is missing and ALTER TABLE ADD COLUMN cannot add it{hint}"),
        };
        diff.push(cid, Severity::Critical, message, step);
    }
}

fn table_diff<'a>(l: &Table, d: &'a Table) -> TableDiff<'a> {
    let changed = d
        .columns
        .iter()
        .filter_map(|dc| {
            let changes = column_changes(&l.columns[find(&l.columns, &dc.name)?], dc);
            (!changes.is_empty()).then(|| (dc.name.clone(), changes))
        })
        .collect();
    TableDiff {
        missing: d.columns.iter().filter(|c| find(&l.columns, &c.name).is_none()).collect(),
        changed,
        table_level: table_changes(l, d),
    }
}

/// ADD COLUMN where SQLite accepts it; a rebuild when only missing columns
/// need one, or when `--allow-rebuild` allows one; nothing otherwise.
fn plan_repair(
    conn: &Connection,
    diff: &mut Diff,
    live_schema: &Schema,
    (l, d): (&Table, &Table),
    td: &TableDiff,
    rules: Rules,
) -> Repair {
    let additions = if td.missing.is_empty() { Some(Vec::new()) } else { try_add_columns(conn, l, d, &td.missing) };
    let needs_rebuild = if td.structural() { rules.allow_rebuild } else { additions.is_none() };
    if !needs_rebuild {
        let hint = match td.structural() {
            true => {
                "; only a table rebuild can change this: `heal --allow-rebuild` (after a backup, keeping every row)"
            }
            false => "",
        };
        return Repair { additions, rebuild: None, hint: hint.into() };
    }
    let backfills = rules.backfills_of(&d.name);
    let unfillable = unfillable(conn, l, d, &td.missing, &backfills);
    let planned = match unfillable.is_empty() {
        true => rebuild::plan(live_schema, l, d, &backfills),
        false => Err(anyhow::anyhow!("{}", advice(d, &unfillable))),
    };
    match planned {
        Ok(step) => Repair { additions, rebuild: Some(diff.add_step(step)), hint: String::new() },
        Err(e) => Repair { additions, rebuild: None, hint: format!("; the table cannot be rebuilt: {e:#}") },
    }
}

/// The ADD COLUMN statements for `missing`, with the DDL's own column
/// definitions, if SQLite accepts every one of them on a copy of the live
/// table's structure holding one of its rows (SQLite refuses NOT NULL
/// without a default, or a non-constant default, only when the table has
/// rows). `None` means a rebuild is needed.
fn try_add_columns(conn: &Connection, l: &Table, d: &Table, missing: &[&Column]) -> Option<Vec<String>> {
    let names: Vec<String> = d.columns.iter().map(|c| c.name.clone()).collect();
    let definitions = coldef::column_definitions(&d.sql, &names)?;
    let scratch = super::desired::sandbox().ok()?;
    scratch.execute_batch("PRAGMA foreign_keys=OFF").ok()?;
    scratch.execute_batch(&l.sql).ok()?;
    copy_one_row(conn, &scratch, l).ok()?;
    scratch.execute_batch("PRAGMA foreign_keys=ON").ok()?;
    let mut statements = Vec::new();
    for column in missing {
        let (_, definition) = definitions.iter().find(|(n, _)| key(n) == key(&column.name))?;
        let statement = format!("ALTER TABLE {} ADD COLUMN {definition}", quote(&l.name));
        scratch.execute_batch(&statement).ok()?;
        statements.push(statement);
    }
    // Table constraints on the new columns (UNIQUE (a, b), FOREIGN KEY…)
    // are not in their definitions: if the copy lacks one, only a rebuild
    // can add it.
    let added = introspect::load(&scratch).ok()?.tables.remove(&key(&l.name))?;
    let new = |cols: &[String]| cols.iter().any(|c| missing.iter().any(|m| key(&m.name) == *c));
    let uniques_kept = d.unique_keys.iter().filter(|k| new(k)).all(|k| added.unique_keys.contains(k));
    let all = |_: &String| true;
    let fks_kept =
        foreign_keys(d, &|c| new(std::slice::from_ref(c))).iter().all(|fk| foreign_keys(&added, &all).contains(fk));
    (uniques_kept && fks_kept).then_some(statements)
}

/// What to do about missing NOT NULL columns the rows would have no value
/// for. A DEFAULT gives every row the same value, which a UNIQUE column
/// refuses: then only a backfill expression can fill them.
fn advice(d: &Table, unfillable: &[&Column]) -> String {
    let names: Vec<String> = unfillable.iter().map(|c| quote(&c.name)).collect();
    let first = &unfillable[0].name;
    let unique = unfillable.iter().any(|c| d.unique_keys.iter().any(|k| k.contains(&key(&c.name))));
    let example = format!(
        "[[database.backfill]] column = \"{}.{first}\", value = \"<an SQL expression, evaluated per row>\"",
        d.name
    );
    let verb = if names.len() == 1 { "is" } else { "are" };
    let head = format!(
        "{} {verb} NOT NULL without a DEFAULT and the table has rows, which would have no value",
        names.join(", ")
    );
    match unique {
        true => format!(
            "{head}; a DEFAULT would give every row the same value, which UNIQUE refuses: declare a value per row \
             with {example}"
        ),
        false => format!("{head}; declare their value with {example}, or give the column a DEFAULT in the schema"),
    }
}

/// Missing columns a copy of the rows cannot fill: NOT NULL, no default,
/// no backfill, not generated, not the rowid. Empty when the live table
/// has no rows.
fn unfillable<'a>(
    conn: &Connection,
    l: &Table,
    d: &Table,
    missing: &[&'a Column],
    backfills: &Backfills,
) -> Vec<&'a Column> {
    let alias = rebuild::rowid_alias(d);
    let names: Vec<&Column> = missing
        .iter()
        .copied()
        .filter(|c| c.not_null && c.default.is_none() && !c.is_generated() && alias != Some(c.name.as_str()))
        .filter(|c| !backfills.contains_key(&key(&c.name)))
        .collect();
    let has_rows = || conn.query_row(&format!("SELECT 1 FROM {} LIMIT 1", quote(&l.name)), [], |_| Ok(())).is_ok();
    if names.is_empty() || !has_rows() {
        return Vec::new();
    }
    names
}

/// Copies one row of the live table, if it has any, into the scratch copy.
fn copy_one_row(live: &Connection, scratch: &Connection, l: &Table) -> rusqlite::Result<()> {
    let columns: Vec<String> = l.columns.iter().filter(|c| !c.is_generated()).map(|c| quote(&c.name)).collect();
    let list = columns.join(", ");
    let select = format!("SELECT {list} FROM {} LIMIT 1", quote(&l.name));
    let row: Option<Vec<rusqlite::types::Value>> =
        live.prepare(&select)?.query_map([], |r| (0..columns.len()).map(|i| r.get(i)).collect())?.next().transpose()?;
    if let Some(values) = row {
        let marks = vec!["?"; values.len()].join(", ");
        let insert = format!("INSERT INTO {} ({list}) VALUES ({marks})", quote(&l.name));
        scratch.execute(&insert, rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

fn column_changes(l: &Column, d: &Column) -> Vec<String> {
    let mut changes = Vec::new();
    let (lt, dt) = (normalize(&l.decl_type).to_ascii_uppercase(), normalize(&d.decl_type).to_ascii_uppercase());
    if lt != dt {
        changes.push(format!("type is {}, the schema says {}", shown(&lt), shown(&dt)));
    }
    if l.not_null != d.not_null {
        changes.push(format!("NOT NULL is {}, the schema says {}", on_off(l.not_null), on_off(d.not_null)));
    }
    let (ld, dd) = (l.default.as_deref().map(str::trim), d.default.as_deref().map(str::trim));
    if ld != dd {
        changes.push(format!("default is {}, the schema says {}", ld.unwrap_or("none"), dd.unwrap_or("none")));
    }
    if let (Some(lc), Some(dc)) = (&l.collation, &d.collation) {
        if !lc.eq_ignore_ascii_case(dc) {
            changes.push(format!("collation is {lc}, the schema says {dc}"));
        }
    }
    if l.pk != d.pk {
        changes.push(format!("primary key position is {}, the schema says {}", l.pk, d.pk));
    }
    if l.hidden != d.hidden {
        changes.push("generated-column kind differs".into());
    }
    changes
}

fn table_changes(l: &Table, d: &Table) -> Vec<String> {
    let mut changes = Vec::new();
    if l.without_rowid != d.without_rowid {
        changes.push(format!(
            "WITHOUT ROWID is {}, the schema says {}",
            on_off(l.without_rowid),
            on_off(d.without_rowid)
        ));
    }
    if l.strict != d.strict {
        changes.push(format!("STRICT is {}, the schema says {}", on_off(l.strict), on_off(d.strict)));
    }
    let autoinc = |t: &Table| t.columns.iter().any(|c| c.autoincrement);
    if autoinc(l) != autoinc(d) {
        changes.push(format!("AUTOINCREMENT is {}, the schema says {}", on_off(autoinc(l)), on_off(autoinc(d))));
    }
    // Constraints on a column only one side has are the missing column's
    // (added with it) or a drift column's (kept as it is): not a difference.
    let both =
        |c: &String| l.columns.iter().any(|x| key(&x.name) == *c) && d.columns.iter().any(|x| key(&x.name) == *c);
    if foreign_keys(l, &both) != foreign_keys(d, &both) {
        changes.push("foreign keys differ".into());
    }
    let uniques =
        |t: &Table| -> Vec<Vec<String>> { t.unique_keys.iter().filter(|k| k.iter().all(&both)).cloned().collect() };
    if uniques(l) != uniques(d) {
        changes.push("UNIQUE or PRIMARY KEY constraints differ".into());
    }
    changes
}

/// Foreign keys as comparable, order-independent text.
fn foreign_keys(t: &Table, shared: &dyn Fn(&String) -> bool) -> Vec<String> {
    let mut keys: Vec<String> = t
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.iter().all(|(from, _)| shared(&key(from))))
        .map(|fk| {
            let cols: Vec<String> = fk
                .columns
                .iter()
                .map(|(f, to)| format!("{}>{}", key(f), to.as_deref().map(key).unwrap_or_default()))
                .collect();
            format!("{}({}) {} {} {}", key(&fk.parent), cols.join(","), fk.on_update, fk.on_delete, fk.match_)
        })
        .collect();
    keys.sort();
    keys
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn shown(ty: &str) -> &str {
    if ty.is_empty() {
        "(none)"
    } else {
        ty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_keeps_string_literals() {
        assert_eq!(normalize("CREATE VIEW v AS\n  SELECT 1 -- one\n;"), "CREATE VIEW v AS SELECT 1");
        assert_ne!(normalize("SELECT 'a  b'"), normalize("SELECT 'a b'"));
    }
}
