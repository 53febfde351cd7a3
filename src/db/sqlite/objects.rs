//! Indexes, views and triggers: desired against live. Indexes are compared
//! by what the pragmas report (and by statement where they cannot see:
//! partial and expression indexes); views and triggers by statement. They
//! hold no data, so one that differs is dropped and recreated from the DDL;
//! one the DDL lacks is drift and stays.

use super::coldef::{normalize, quote};

use super::introspect::{key, triggers_on, Index, Object, Schema};
use super::plan::{self, Step};
use crate::db::{Diff, DRIFT};
use crate::finding::Severity;

pub fn compare_indexes(diff: &mut Diff<Step>, live: &Schema, desired: &Schema, base: &str) {
    for d in desired.indexes.values() {
        if !live.tables.contains_key(&key(&d.table)) {
            continue; // created with its table
        }
        let (Some(create), id) = (&d.sql, format!("{base}:index:{}", d.name)) else { continue };
        match live.indexes.get(&key(&d.name)) {
            None => {
                let step =
                    diff.add_step(Step::schema(format!("create index {}", quote(&d.name)), vec![create.clone()]));
                diff.push(id, Severity::Warning, "index is missing", Some(step));
            }
            Some(l) if !same_index(l, d) => {
                let step = diff.add_step(Step::schema(
                    format!("recreate index {}", quote(&d.name)),
                    plan::recreate("INDEX", &l.name, create),
                ));
                diff.push(id, Severity::Warning, "index differs from the schema", Some(step));
            }
            Some(_) => {}
        }
    }
    for l in live.indexes.values().filter(|l| !desired.indexes.contains_key(&key(&l.name))) {
        diff.push(format!("{base}:index:{}", l.name), Severity::Warning, format!("index {DRIFT}"), None);
    }
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
pub fn compare_objects(diff: &mut Diff<Step>, live: &Schema, desired: &Schema, base: &str, kind: &str) {
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
    for l in live_objects.values().filter(|l| !desired_objects.contains_key(&key(&l.name))) {
        diff.push(format!("{base}:{kind}:{}", l.name), Severity::Warning, format!("{kind} {DRIFT}"), None);
    }
}
