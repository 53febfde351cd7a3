//! Indexes, views and triggers: desired against live. Indexes are compared
//! by what the pragmas report (and by statement where they cannot see:
//! partial and expression indexes); views and triggers by statement. They
//! hold no data, so one that differs is dropped and recreated from the DDL;
//! one the DDL lacks is drift and stays.

use super::coldef::{normalize, quote};

use super::introspect::{key, triggers_on, Index, Object, Schema};
use super::plan::{self, Step};
use super::precheck::Need;
use super::statements::shown;
use crate::db::ignore::Ignore;
use crate::db::{Diff, DRIFT};
use crate::finding::Severity;

pub fn compare_indexes(diff: &mut Diff<Step>, live: &Schema, desired: &Schema, base: &str, ignore: Option<&Ignore>) {
    for d in desired.indexes.values() {
        if !live.tables.contains_key(&key(&d.table)) {
            continue; // created with its table
        }
        let (Some(create), id) = (&d.sql, format!("{base}:index:{}", d.name)) else { continue };
        match live.indexes.get(&key(&d.name)) {
            None => {
                let step = Step::schema(format!("create index {}", quote(&d.name)), vec![create.clone()]);
                let step = diff.add_step(step.with_needs(distinct(d)));
                diff.push(id, Severity::Warning, "index is missing", Some(step));
            }
            Some(l) if !same_index(l, d) => {
                let step = Step::schema(
                    format!("recreate index {}", quote(&d.name)),
                    plan::recreate("INDEX", &l.name, create),
                );
                let step = diff.add_step(step.with_needs(distinct(d)));
                let message = format!("index differs from the schema: {}", how_index_differs(l, d).join("; "));
                diff.push(id, Severity::Warning, message, Some(step));
            }
            Some(_) => {}
        }
    }
    let ignored = |l: &Index| ignore.is_some_and(|i| i.object(&l.name, &l.table));
    for l in live.indexes.values().filter(|l| !desired.indexes.contains_key(&key(&l.name)) && !ignored(l)) {
        diff.push(format!("{base}:index:{}", l.name), Severity::Warning, format!("index {DRIFT}"), None);
    }
}

/// What a UNIQUE index over plain columns needs of the rows (partial and
/// expression indexes are left to SQLite to judge at heal time).
fn distinct(d: &Index) -> Vec<Need> {
    let columns: Option<Vec<String>> = d.keys.iter().map(|k| k.column.clone()).collect();
    match columns {
        Some(columns) if d.unique && !d.partial => vec![Need::Distinct { table: d.table.clone(), columns }],
        _ => Vec::new(),
    }
}

/// The index's keys as the report shows them: `a, b DESC, c COLLATE NOCASE`.
fn key_list(i: &Index) -> String {
    let keys: Vec<String> = i
        .keys
        .iter()
        .map(|k| {
            let mut text = k.column.as_deref().map(quote).unwrap_or_else(|| "<expression>".into());
            if !k.collation.eq_ignore_ascii_case("BINARY") {
                text.push_str(&format!(" COLLATE {}", k.collation));
            }
            if k.desc {
                text.push_str(" DESC");
            }
            text
        })
        .collect();
    format!("({})", keys.join(", "))
}

/// How a live index differs from the DDL's, in words.
fn how_index_differs(l: &Index, d: &Index) -> Vec<String> {
    let mut how = Vec::new();
    if key(&l.table) != key(&d.table) {
        how.push(format!("it is on table {}, the schema says {}", quote(&l.table), quote(&d.table)));
    }
    if l.unique != d.unique {
        let word = |u: bool| if u { "UNIQUE" } else { "not UNIQUE" };
        how.push(format!("it is {}, the schema says {}", word(l.unique), word(d.unique)));
    }
    let (lk, dk) = (key_list(l), key_list(d));
    if !lk.eq_ignore_ascii_case(&dk) {
        how.push(format!("its columns are {lk}, the schema says {dk}"));
    }
    if l.partial != d.partial {
        let word = |p: bool| if p { "has a WHERE clause" } else { "has no WHERE clause" };
        how.push(format!("it {}, the schema's {}", word(l.partial), word(d.partial)));
    }
    if how.is_empty() {
        // Same shape: the WHERE clause or an expression differs, which only the statements show.
        how.push(format!(
            "its WHERE clause or expressions differ: `{}`, the schema says `{}`",
            shown(l.sql.as_deref().unwrap_or("")),
            shown(d.sql.as_deref().unwrap_or(""))
        ));
    }
    how
}

/// Same table, uniqueness, columns, order and collations; for partial and
/// expression indexes, whose WHERE and expressions the pragmas do not show,
/// the same statement too.
fn same_index(l: &Index, d: &Index) -> bool {
    if l.sql == d.sql {
        return true;
    }
    let keys = |i: &Index| -> Vec<(Option<String>, bool, String)> {
        i.keys.iter().map(|k| (k.column.as_deref().map(key), k.desc, k.collation.to_ascii_uppercase())).collect()
    };
    let opaque = d.partial || d.keys.iter().any(|k| k.column.is_none());
    key(&l.table) == key(&d.table)
        && l.unique == d.unique
        && l.partial == d.partial
        && keys(l) == keys(d)
        && (!opaque || normalize(l.sql.as_deref().unwrap_or("")) == normalize(d.sql.as_deref().unwrap_or("")))
}

/// Views or triggers: compared by statement; they hold no data, so one that
/// differs is dropped and recreated from the DDL.
pub fn compare_objects(
    diff: &mut Diff<Step>,
    (live, desired): (&Schema, &Schema),
    base: &str,
    kind: &str,
    ignore: Option<&Ignore>,
) {
    let pick = |s: &Schema| if kind == "view" { s.views.clone() } else { s.triggers.clone() };
    let (live_objects, desired_objects) = (pick(live), pick(desired));
    let mut wanted: Vec<&Object> = desired_objects.values().collect();
    wanted.sort_by_key(|o| o.order);
    let keyword = kind.to_ascii_uppercase();
    for d in wanted {
        let on_missing_table =
            kind == "trigger" && !live.tables.contains_key(&key(&d.table)) && !live.views.contains_key(&key(&d.table));
        if on_missing_table {
            continue; // created with its table or view
        }
        let id = format!("{base}:{kind}:{}", d.name);
        match live_objects.get(&key(&d.name)) {
            None => {
                let mut statements = vec![d.sql.clone()];
                if kind == "view" {
                    statements.extend(triggers_on(desired, &d.name).into_iter().map(|t| t.sql.clone()));
                }
                let step = diff.add_step(Step::schema(format!("create {kind} {}", quote(&d.name)), statements));
                diff.push(id, Severity::Critical, format!("{kind} is missing"), Some(step));
            }
            Some(l) if normalize(&l.sql) != normalize(&d.sql) => {
                let mut statements = plan::recreate(&keyword, &l.name, &d.sql);
                if kind == "view" {
                    // Dropping a view drops its INSTEAD OF triggers: put them back as they are.
                    statements.extend(triggers_on(live, &l.name).into_iter().map(|t| t.sql.clone()));
                }
                let step = diff.add_step(Step::schema(format!("recreate {kind} {}", quote(&d.name)), statements));
                diff.push(id, Severity::Warning, format!("{kind} differs from the schema"), Some(step));
            }
            Some(_) => {}
        }
    }
    let ignored = |l: &Object| ignore.is_some_and(|i| i.object(&l.name, &l.table));
    for l in live_objects.values().filter(|l| !desired_objects.contains_key(&key(&l.name)) && !ignored(l)) {
        diff.push(format!("{base}:{kind}:{}", l.name), Severity::Warning, format!("{kind} {DRIFT}"), None);
    }
}
