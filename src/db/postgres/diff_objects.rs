//! Comparing the objects around tables: extensions, enum types, sequences,
//! indexes and views (see `diff.rs` for the conventions).

use std::collections::BTreeMap;

use super::catalog::{literal, Index, Schema};
use super::ddl;
use super::out::Out;
use super::plan::{undo_plain, Stage, Step, StepKind, Stmt, Undo};
use super::Severity;

pub fn extensions(out: &mut Out, live: &[String], desired: &[String]) {
    for name in desired {
        let id = out.id("extension", name);
        if live.contains(name) {
            out.passed.push(id);
            continue;
        }
        let e = out.q.ident(name);
        let step = Step::new(
            format!("create extension {name}"),
            StepKind::Transactional(vec![Stmt::new(Stage::Extension, format!("CREATE EXTENSION IF NOT EXISTS {e}"))]),
        )
        .with_undo(undo_plain(vec![format!("DROP EXTENSION {e} RESTRICT")]));
        out.add(id, Severity::Critical, "extension is not installed", Some(step));
    }
    // Extensions are database-wide and may serve other namespaces: those the
    // file does not name are not reported.
}

pub fn enums(out: &mut Out, live: &BTreeMap<String, Vec<String>>, desired: &BTreeMap<String, Vec<String>>) {
    let q = out.q;
    for (name, labels) in desired {
        let id = out.id("type", name);
        let ty = q.ident(name);
        let Some(have) = live.get(name) else {
            let step = Step::new(
                format!("create type {name}"),
                StepKind::Transactional(vec![Stmt::new(Stage::Type, ddl::create_enum(q, name, labels))]),
            )
            .with_undo(undo_plain(vec![format!("DROP TYPE IF EXISTS {ty} RESTRICT")]));
            out.add(id, Severity::Critical, "enum type is missing", Some(step));
            continue;
        };
        let missing: Vec<&String> = labels.iter().filter(|l| !have.contains(l)).collect();
        if !missing.is_empty() {
            // Each new value goes after its predecessor in the DDL when the
            // live type has it, so the sort order matches.
            let mut sql = Vec::new();
            for label in &missing {
                let at = labels.iter().position(|l| l == *label).unwrap_or(0);
                let after = labels[..at].iter().rev().find(|l| have.contains(l) || missing.contains(l));
                let position = after.map(|a| format!(" AFTER {}", literal(a))).unwrap_or_else(|| {
                    labels.get(at + 1).map(|b| format!(" BEFORE {}", literal(b))).unwrap_or_default()
                });
                sql.push(Stmt::new(
                    Stage::EnumValue,
                    format!("ALTER TYPE {ty} ADD VALUE IF NOT EXISTS {}{position}", literal(label)),
                ));
            }
            let shown: Vec<String> = missing.iter().map(|l| literal(l)).collect();
            let step = Step::new(format!("add values to {name}"), StepKind::Transactional(sql))
                .refusing("PostgreSQL cannot remove a value from an enum type");
            out.add(id, Severity::Critical, format!("enum type lacks {}", shown.join(", ")), Some(step));
            continue;
        }
        let extra: Vec<String> = have.iter().filter(|l| !labels.contains(l)).map(|l| literal(l)).collect();
        let common: Vec<&String> = have.iter().filter(|l| labels.contains(l)).collect();
        if common.iter().copied().ne(labels.iter()) {
            out.add(
                id,
                Severity::Warning,
                "enum values are in another order than in the schema file; not changed by heal",
                None,
            );
        } else if !extra.is_empty() {
            out.drift(id, &format!("enum value {}", extra.join(", ")));
        } else {
            out.passed.push(id);
        }
    }
    let extra: Vec<&String> = live.keys().filter(|n| !desired.contains_key(*n) && !out.ignored(n)).collect();
    for name in extra {
        let id = out.id("type", name);
        out.drift(id, "enum type");
    }
}

pub fn sequences(out: &mut Out, live: &Schema, desired: &Schema) {
    let q = out.q;
    for (name, want) in &desired.sequences {
        let id = out.id("sequence", name);
        let s = q.ident(name);
        let owned = want.owned_by.as_ref().map(|(t, c)| Stmt::new(Stage::OwnedBy, ddl::owned_by(q, name, t, c)));
        match live.sequences.get(name) {
            None => {
                let mut sql = vec![Stmt::new(Stage::Sequence, ddl::create_sequence(q, name, want))];
                sql.extend(owned);
                let step = Step::new(format!("create sequence {name}"), StepKind::Transactional(sql))
                    .with_undo(undo_plain(vec![format!("DROP SEQUENCE IF EXISTS {s} RESTRICT")]));
                out.add(id, Severity::Critical, "sequence is missing", Some(step));
            }
            Some(have) if have.owned_by != want.owned_by => {
                let step = owned.map(|o| {
                    Step::new(format!("set the owner column of {name}"), StepKind::Transactional(vec![o]))
                        .refusing("the previous OWNED BY is not restored")
                });
                out.add(id, Severity::Warning, "sequence is owned by another column than in the schema file", step);
            }
            Some(have)
                if (have.data_type.as_str(), have.increment, have.min, have.max, have.cycle)
                    != (want.data_type.as_str(), want.increment, want.min, want.max, want.cycle) =>
            {
                out.add(
                    id,
                    Severity::Warning,
                    "sequence type, increment, bounds or CYCLE differ; not changed by heal",
                    None,
                );
            }
            Some(_) => out.passed.push(id),
        }
    }
    let extra: Vec<&String> =
        live.sequences.keys().filter(|n| !desired.sequences.contains_key(*n) && !out.ignored(n)).collect();
    for name in extra {
        let id = out.id("sequence", name);
        out.drift(id, "sequence");
    }
}

/// Indexes that do not back a constraint (those are compared as
/// constraints), on tables that exist live (a new table brings its own).
pub fn indexes(out: &mut Out, live: &Schema, desired: &Schema) {
    let q = out.q;
    for (name, want) in desired.indexes.iter().filter(|(_, i)| !i.constraint) {
        if !live.tables.contains_key(&want.table) {
            continue;
        }
        let id = out.id("index", name);
        let i = q.ident(name);
        let drop_index = format!("DROP INDEX CONCURRENTLY IF EXISTS {i}");
        if !live.indexes.contains_key(name) && twin(live, desired, want).is_some() {
            out.passed.push(id);
            continue;
        }
        match live.indexes.get(name) {
            None => {
                let step = Step::new(
                    format!("create index {name} concurrently"),
                    StepKind::Concurrent {
                        index: name.clone(),
                        drop_first: None,
                        create: ddl::create_index(q, name, want, true),
                        then: vec![],
                    },
                )
                .with_undo(Undo {
                    lock: None,
                    guard: None,
                    guard_fails: String::new(),
                    sql: vec![drop_index],
                    concurrent: true,
                });
                out.add(id, Severity::Warning, "index is missing", Some(step));
            }
            Some(have) if !have.valid => {
                let step = Step::new(
                    format!("rebuild index {name} concurrently"),
                    StepKind::Concurrent {
                        index: name.clone(),
                        drop_first: Some(drop_index),
                        create: ddl::create_index(q, name, want, true),
                        then: vec![],
                    },
                )
                .refusing("the index replaced an INVALID one; there is nothing to go back to");
                out.add(
                    id,
                    Severity::Warning,
                    "index is INVALID (an interrupted build); queries do not use it",
                    Some(step),
                );
            }
            Some(have) if have.table != want.table || have.shape != want.shape || have.unique != want.unique => {
                // Built beside the old one, then swapped: the table is never without it.
                let temp = format!("{name}_preflight_new");
                let t = q.ident(&temp);
                let step = Step::new(
                    format!("rebuild index {name} concurrently"),
                    StepKind::Concurrent {
                        index: temp.clone(),
                        drop_first: Some(format!("DROP INDEX CONCURRENTLY IF EXISTS {t}")),
                        create: ddl::create_index(q, &temp, want, true),
                        then: vec![
                            format!("DROP INDEX CONCURRENTLY IF EXISTS {i}"),
                            format!("ALTER INDEX {t} RENAME TO {i}"),
                        ],
                    },
                )
                .refusing("the previous index definition is not restored");
                let msg = format!(
                    "index is {} on {}, the schema file says {} on {}",
                    have.shape, have.table, want.shape, want.table
                );
                out.add(id, Severity::Warning, msg, Some(step));
            }
            Some(_) => out.passed.push(id),
        }
    }
    let twins: Vec<&String> = desired
        .indexes
        .iter()
        .filter(|(n, i)| !i.constraint && !live.indexes.contains_key(*n))
        .filter_map(|(_, i)| twin(live, desired, i))
        .collect();
    for (name, have) in live.indexes.iter().filter(|(_, i)| !i.constraint) {
        if !desired.indexes.contains_key(name) && !twins.contains(&name) && !out.ignored_object(name, &have.table) {
            let id = out.id("index", name);
            out.drift(id, "index");
        }
    }
}

/// A live index the DDL does not name but that is the desired one under
/// another name (its table was renamed since the server named it).
fn twin<'a>(live: &'a Schema, desired: &Schema, want: &Index) -> Option<&'a String> {
    live.indexes
        .iter()
        .find(|(n, i)| {
            !i.constraint
                && !desired.indexes.contains_key(*n)
                && i.table == want.table
                && i.shape == want.shape
                && i.unique == want.unique
        })
        .map(|(n, _)| n)
}

pub fn views(out: &mut Out, live: &Schema, desired: &Schema) {
    let q = out.q;
    for (name, want) in &desired.views {
        let id = out.id("view", name);
        let v = q.ident(name);
        let kind = if want.materialized { "MATERIALIZED VIEW" } else { "VIEW" };
        match live.views.get(name) {
            None => {
                let mut stmt = Stmt::new(Stage::View, ddl::create_view(q, name, want, false));
                stmt.order = want.order;
                let step = Step::new(format!("create view {name}"), StepKind::Transactional(vec![stmt]))
                    .with_undo(undo_plain(vec![format!("DROP {kind} IF EXISTS {v} RESTRICT")]));
                out.add(id, Severity::Critical, "view is missing", Some(step));
            }
            Some(have) if have.definition != want.definition || have.materialized != want.materialized => {
                let step = (!want.materialized && !have.materialized).then(|| {
                    let mut stmt = Stmt::new(Stage::View, ddl::create_view(q, name, want, true));
                    stmt.order = want.order;
                    Step::new(format!("replace view {name}"), StepKind::Transactional(vec![stmt]))
                        .with_undo(undo_plain(vec![ddl::create_view(q, name, have, true)]))
                });
                out.add(id, Severity::Warning, "view definition differs from the schema file", step);
            }
            Some(_) => out.passed.push(id),
        }
    }
    let extra: Vec<&String> =
        live.views.keys().filter(|n| !desired.views.contains_key(*n) && !out.ignored(n)).collect();
    for name in extra {
        let id = out.id("view", name);
        out.drift(id, "view");
    }
}
