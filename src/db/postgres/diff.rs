//! Comparing the live namespace with the desired one: tables, columns and
//! constraints here, the other kinds in `diff_objects.rs`. Each difference
//! gets a stable ID, a severity, a message and — when heal can repair it
//! online — a step. Nothing is ever dropped: what the live side has more is
//! reported as drift.

use super::catalog::{Column, Quoter, Schema, Table};
use super::ddl;
use super::desired::Desired;
use super::out::Out;
use super::plan::{undo_plain, Stage, Step, StepKind, Stmt, Undo};
use super::{diff_objects, Config, Severity};

/// Questions the comparison asks the server while it plans.
pub trait Probe {
    /// Would `ADD COLUMN <definition>` rewrite a table that has rows
    /// (volatile default, identity, stored generated column)?
    fn add_column_rewrites(&mut self, definition: &str) -> Result<bool, String>;
    /// Does the live table hold at least one row?
    fn has_rows(&mut self, table: &str) -> Result<bool, String>;
}

/// Compares `live` (renames already planned on it) with `desired`.
pub fn compare<'a>(
    live: &mut Schema,
    live_extensions: &[String],
    desired: &Desired,
    config: &'a Config,
    q: &'a Quoter,
    probe: &mut dyn Probe,
) -> Result<Out<'a>, String> {
    let mut out = Out::new(config, q);
    renames(&mut out, live, &desired.schema, config);
    diff_objects::extensions(&mut out, live_extensions, &desired.extensions);
    diff_objects::enums(&mut out, &live.enums, &desired.schema.enums);
    diff_objects::sequences(&mut out, live, &desired.schema);
    tables(&mut out, live, desired, probe)?;
    diff_objects::indexes(&mut out, live, &desired.schema);
    diff_objects::views(&mut out, live, &desired.schema);
    Ok(out)
}

/// `[[database.rename]]`: where `from` exists and `to` does not, plan the
/// rename and compare as if it had been done.
fn renames(out: &mut Out, live: &mut Schema, desired: &Schema, config: &Config) {
    for r in &config.renames {
        match (r.from.split_once('.'), r.to.split_once('.')) {
            (Some((ft, fc)), Some((tt, tc))) => {
                let (from_table, from_col, to_col) = (ft.to_string(), fc.to_string(), tc.to_string());
                let Some(table) = live.tables.get_mut(&from_table) else { continue };
                if ft != tt || table.column(&from_col).is_none() || table.column(&to_col).is_some() {
                    continue;
                }
                let (t, f, to) = (out.q.ident(&from_table), out.q.ident(&from_col), out.q.ident(&to_col));
                let step = Step::new(
                    format!("rename column {from_col} to {to_col}"),
                    StepKind::Transactional(vec![Stmt::new(
                        Stage::Rename,
                        format!("ALTER TABLE {t} RENAME COLUMN {f} TO {to}"),
                    )]),
                )
                .with_undo(undo_plain(vec![format!("ALTER TABLE {t} RENAME COLUMN {to} TO {f}")]));
                let id = out.id("table", &format!("{tt}:column:{to_col}"));
                out.add(id, Severity::Critical, format!("column is still named {from_col}"), Some(step));
                if let Some(c) = table.columns.iter_mut().find(|c| c.name == from_col) {
                    c.name = to_col;
                }
            }
            (None, None) => {
                if !live.tables.contains_key(&r.from)
                    || live.tables.contains_key(&r.to)
                    || !desired.tables.contains_key(&r.to)
                {
                    continue;
                }
                let (f, to) = (out.q.ident(&r.from), out.q.ident(&r.to));
                let step = Step::new(
                    format!("rename table {} to {}", r.from, r.to),
                    StepKind::Transactional(vec![Stmt::new(Stage::Rename, format!("ALTER TABLE {f} RENAME TO {to}"))]),
                )
                .with_undo(undo_plain(vec![format!("ALTER TABLE {to} RENAME TO {f}")]));
                let id = out.id("table", &r.to);
                out.add(id, Severity::Critical, format!("table is still named {}", r.from), Some(step));
                if let Some(t) = live.tables.remove(&r.from) {
                    live.tables.insert(r.to.clone(), t);
                    for index in live.indexes.values_mut().filter(|i| i.table == r.from) {
                        index.table = r.to.clone();
                    }
                }
            }
            _ => {}
        }
    }
}

fn tables(out: &mut Out, live: &Schema, desired: &Desired, probe: &mut dyn Probe) -> Result<(), String> {
    for (name, want) in &desired.schema.tables {
        match live.tables.get(name) {
            None => missing_table(out, name, want, desired),
            Some(have) => {
                let before = out.differences.len();
                columns(out, name, have, want, probe)?;
                constraints(out, name, have, want, &desired.schema);
                if out.differences.len() == before {
                    let id = out.id("table", name);
                    out.passed.push(id);
                }
            }
        }
    }
    for name in live.tables.keys() {
        if !desired.schema.tables.contains_key(name) && !out.ignored(name) {
            let id = out.id("table", name);
            out.drift(id, "table");
        }
    }
    Ok(())
}

/// One step creates the table, its constraints, its indexes (in the
/// transaction: nobody else can see the table yet) and its seed rows.
fn missing_table(out: &mut Out, name: &str, want: &Table, desired: &Desired) {
    let q = out.q;
    let mut sql = vec![Stmt::new(Stage::Table, ddl::create_table(q, name, want))];
    sql.extend(ddl::foreign_keys(q, name, want).into_iter().map(|s| Stmt::new(Stage::Constraint, s)));
    for (index, i) in desired.schema.indexes.iter().filter(|(_, i)| i.table == name && !i.constraint) {
        sql.push(Stmt::new(Stage::Index, ddl::create_index(q, index, i, false)));
    }
    let seeds = desired.seeds.get(name).map(Vec::as_slice).unwrap_or_default();
    sql.extend(seeds.iter().map(|s| Stmt::new(Stage::Seed, s.clone())));
    let t = q.ident(name);
    let (guard, why) = match desired.seed_rows.get(name) {
        Some(n) => {
            (format!("SELECT count(*) = {n} FROM {t}"), format!("table {name} holds rows besides its seed rows"))
        }
        None => (format!("SELECT NOT EXISTS (SELECT 1 FROM {t})"), format!("table {name} holds rows")),
    };
    let step = Step::new(format!("create table {name}"), StepKind::Transactional(sql)).with_undo(Undo {
        lock: Some(format!("LOCK TABLE {t} IN SHARE MODE")),
        guard: Some(guard),
        guard_fails: why,
        sql: vec![format!("DROP TABLE {t}")],
        concurrent: false,
    });
    let id = out.id("table", name);
    out.add(id, Severity::Critical, "table is missing", Some(step));
}

fn columns(out: &mut Out, table: &str, have: &Table, want: &Table, probe: &mut dyn Probe) -> Result<(), String> {
    for c in &want.columns {
        let id = out.id("table", &format!("{table}:column:{}", c.name));
        match have.column(&c.name) {
            None => missing_column(out, id, table, c, probe)?,
            Some(live) => column_changes(out, &id, table, live, c),
        }
    }
    for c in &have.columns {
        if want.column(&c.name).is_none() && !out.ignored_column(table, &c.name) {
            let id = out.id("table", &format!("{table}:column:{}", c.name));
            out.drift(id, "column");
        }
    }
    Ok(())
}

fn missing_column(out: &mut Out, id: String, table: &str, c: &Column, probe: &mut dyn Probe) -> Result<(), String> {
    let q = out.q;
    let (t, col) = (q.ident(table), q.ident(&c.name));
    let definition = ddl::column(q, c);
    let add = format!("ALTER TABLE {t} ADD COLUMN {definition}");
    let rewrites = probe.add_column_rewrites(&definition)?;
    let label = format!("add column {}", c.name);
    if c.not_null && c.default.is_none() && c.identity.is_empty() && c.generated.is_none() && probe.has_rows(table)? {
        let msg = "column is missing; it is NOT NULL without a DEFAULT and the table has rows: give it a DEFAULT \
                   in the schema file so existing rows get a value";
        out.add(id, Severity::Critical, msg, None);
        return Ok(());
    }
    if rewrites && !out.allow_rebuild {
        let msg = "column is missing; adding it rewrites the whole table under an exclusive lock (volatile default, \
                   identity or generated column): heal --allow-rebuild does it";
        out.add(id, Severity::Critical, msg, None);
        return Ok(());
    }
    let value_kept = match &c.default {
        Some(d) if c.generated.is_none() && c.identity.is_empty() => format!("{col} IS DISTINCT FROM {d}"),
        _ => format!("{col} IS NOT NULL"),
    };
    let undo = Undo {
        lock: Some(format!("LOCK TABLE {t} IN SHARE MODE")),
        guard: Some(format!("SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE {value_kept})")),
        guard_fails: format!("column {table}.{} holds values written since it was added", c.name),
        sql: vec![format!("ALTER TABLE {t} DROP COLUMN {col}")],
        concurrent: false,
    };
    let step = Step::new(label, StepKind::Transactional(vec![Stmt::new(Stage::Column, add)])).with_undo(undo);
    out.add(id, Severity::Critical, "column is missing", Some(step));
    Ok(())
}

fn column_changes(out: &mut Out, id: &str, table: &str, live: &Column, want: &Column) {
    let q = out.q;
    let (t, col) = (q.ident(table), q.ident(&want.name));
    let alter = |what: String| format!("ALTER TABLE {t} ALTER COLUMN {col} {what}");
    if live.data_type != want.data_type || live.collation != want.collation {
        let collate = want.collation.as_ref().map(|c| format!(" COLLATE {}", q.ident(c))).unwrap_or_default();
        let msg = format!("type is {}, the schema file says {}{collate}", live.data_type, want.data_type);
        let step = out.allow_rebuild.then(|| {
            let sql = alter(format!("TYPE {}{collate} USING {col}::{}", want.data_type, want.data_type));
            Step::new(
                format!("change the type of {}", want.name),
                StepKind::Transactional(vec![Stmt::new(Stage::Alter, sql)]),
            )
            .refusing("a type change rewrote the table; it is not undone")
        });
        let msg =
            if step.is_some() { msg } else { format!("{msg}; heal --allow-rebuild changes it (rewrites the table)") };
        out.add(id.to_string(), Severity::Warning, msg, step);
    }
    if live.identity != want.identity || live.generated != want.generated {
        out.add(
            id.to_string(),
            Severity::Warning,
            "identity or generation differs from the schema file; not changed by heal",
            None,
        );
    }
    if live.default != want.default && want.generated.is_none() && want.identity.is_empty() {
        let shown = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".into());
        let msg = format!("default is {}, the schema file says {}", shown(&live.default), shown(&want.default));
        let back = match &live.default {
            Some(d) => alter(format!("SET DEFAULT {d}")),
            None => alter("DROP DEFAULT".into()),
        };
        let step = match &want.default {
            Some(d) => Some(alter(format!("SET DEFAULT {d}"))),
            None if out.allow_rebuild => Some(alter("DROP DEFAULT".into())),
            None => None,
        }
        .map(|sql| {
            Step::new(
                format!("set the default of {}", want.name),
                StepKind::Transactional(vec![Stmt::new(Stage::Alter, sql)]),
            )
            .with_undo(undo_plain(vec![back]))
        });
        out.add(id.to_string(), Severity::Warning, msg, step);
    }
    if live.not_null != want.not_null && want.identity.is_empty() {
        if want.not_null {
            let check = q.ident(&format!("{table}_{}_not_null_preflight", want.name));
            let step = Step::new(
                format!("set {} NOT NULL (checked online first)", want.name),
                StepKind::Validated {
                    add: Some(format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID")),
                    validate: format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}"),
                    finish: vec![alter("SET NOT NULL".into()), format!("ALTER TABLE {t} DROP CONSTRAINT {check}")],
                    cleanup: format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}"),
                },
            )
            .with_undo(undo_plain(vec![alter("DROP NOT NULL".into())]));
            out.add(id.to_string(), Severity::Warning, "column allows NULL, the schema file says NOT NULL", Some(step));
        } else {
            let step = out.allow_rebuild.then(|| {
                Step::new(
                    format!("drop NOT NULL of {}", want.name),
                    StepKind::Transactional(vec![Stmt::new(Stage::Alter, alter("DROP NOT NULL".into()))]),
                )
                .refusing("NOT NULL is not put back: rows may hold NULL since")
            });
            let msg = if step.is_some() {
                "column is NOT NULL, the schema file allows NULL"
            } else {
                "column is NOT NULL, the schema file allows NULL; heal --allow-rebuild drops NOT NULL"
            };
            out.add(id.to_string(), Severity::Warning, msg, step);
        }
    }
}

fn constraints(out: &mut Out, table: &str, have: &Table, want: &Table, desired: &Schema) {
    let q = out.q;
    let t = q.ident(table);
    // A constraint the server named after a table that was renamed since
    // (`resource_pkey` on `attachment`) is the same constraint.
    let mut same_under_other_name = Vec::new();
    for (name, k) in &want.constraints {
        if have.constraints.contains_key(name) {
            continue;
        }
        let twin = have.constraints.iter().find(|(n, l)| {
            !want.constraints.contains_key(*n)
                && !same_under_other_name.contains(n)
                && l.kind == k.kind
                && l.definition == k.definition
        });
        if let Some((n, _)) = twin {
            same_under_other_name.push(n);
        }
    }
    for (name, k) in &want.constraints {
        let id = out.id("table", &format!("{table}:constraint:{name}"));
        let c = q.ident(name);
        let twin = have
            .constraints
            .iter()
            .find(|(n, l)| same_under_other_name.contains(n) && l.kind == k.kind && l.definition == k.definition);
        if !have.constraints.contains_key(name) && twin.is_some() {
            continue;
        }
        match have.constraints.get(name) {
            Some(live) if live.definition != k.definition => {
                let msg = format!(
                    "constraint is {}, the schema file says {}; not changed by heal",
                    live.definition, k.definition
                );
                out.add(id, Severity::Warning, msg, None);
            }
            Some(live) if !live.validated && k.validated => {
                let step = Step::new(
                    format!("validate constraint {name}"),
                    StepKind::Validated {
                        add: None,
                        validate: format!("ALTER TABLE {t} VALIDATE CONSTRAINT {c}"),
                        finish: vec![],
                        cleanup: "-- the constraint stays NOT VALID".into(),
                    },
                )
                .refusing("a validated constraint stays validated");
                out.add(id, Severity::Warning, "constraint is NOT VALID (rows were never checked)", Some(step));
            }
            Some(_) => {}
            None => {
                let undo = undo_plain(vec![format!("ALTER TABLE {t} DROP CONSTRAINT {c}")]);
                let step = match k.kind {
                    'c' | 'f' => Some(Step::new(
                        format!("add constraint {name} (validated online)"),
                        StepKind::Validated {
                            add: Some(ddl::add_constraint(q, table, name, k, true)),
                            validate: format!("ALTER TABLE {t} VALIDATE CONSTRAINT {c}"),
                            finish: vec![],
                            cleanup: format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {c}"),
                        },
                    )),
                    'p' | 'u' => desired.indexes.get(name).map(|index| {
                        let using = if k.kind == 'p' { "PRIMARY KEY" } else { "UNIQUE" };
                        Step::new(
                            format!("add constraint {name} (index built concurrently)"),
                            StepKind::Concurrent {
                                index: name.clone(),
                                drop_first: Some(format!("DROP INDEX CONCURRENTLY IF EXISTS {c}")),
                                create: ddl::create_index(q, name, index, true),
                                then: vec![format!("ALTER TABLE {t} ADD CONSTRAINT {c} {using} USING INDEX {c}")],
                            },
                        )
                    }),
                    _ => None,
                };
                let severity = if k.kind == 'p' { Severity::Critical } else { Severity::Warning };
                let step = step.map(|s| s.with_undo(undo));
                let msg = if step.is_some() {
                    "constraint is missing".to_string()
                } else {
                    "constraint is missing; not added by heal".to_string()
                };
                out.add(id, severity, msg, step);
            }
        }
    }
    for (name, k) in &have.constraints {
        if !want.constraints.contains_key(name)
            && !same_under_other_name.contains(&name)
            && !out.ignored_object(name, table)
        {
            let id = out.id("table", &format!("{table}:constraint:{name}"));
            out.drift(id, &format!("constraint {}", k.definition));
        }
    }
}
