//! How the steps of one database run, so that steps that do not depend on
//! each other do not fail together. Steps are grouped into units, in plan
//! order: consecutive schema steps (create, add column, index, view,
//! trigger, rename) share one transaction, each under its own savepoint
//! when there are several, so a step that fails is undone alone and the
//! others commit; each rebuild is a transaction of its own with foreign
//! keys off (SQLite's procedure); each data fix is a transaction of its
//! own with foreign keys enforced. `PRAGMA foreign_keys` is a no-op inside
//! a transaction, so it is set before each unit begins and checked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, ErrorCode};

use super::coldef::{literal, quote};
use super::datacheck;
use super::plan::{Sql, Step, StepKind};
use super::precheck;

/// Savepoint around each step of a schema unit.
const SAVEPOINT: &str = "preflight_step";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Schema,
    Rebuild,
    DataFix,
}

/// Steps that commit or roll back together.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub kind: UnitKind,
    pub steps: Vec<usize>,
}

impl UnitKind {
    fn of(step: &Step) -> UnitKind {
        match step.kind {
            StepKind::Schema(_) => UnitKind::Schema,
            StepKind::Rebuild { .. } => UnitKind::Rebuild,
            StepKind::DataFix { .. } => UnitKind::DataFix,
        }
    }

    /// `PRAGMA foreign_keys` while the unit runs.
    pub fn foreign_keys(self) -> i64 {
        i64::from(self != UnitKind::Rebuild)
    }

    /// Set before the unit's transaction begins (inside one they do nothing).
    pub fn pragmas(self) -> Vec<String> {
        let on_off = |on: bool| if on { "ON" } else { "OFF" };
        vec![
            format!("PRAGMA foreign_keys={};", on_off(self.foreign_keys() == 1)),
            format!("PRAGMA legacy_alter_table={};", on_off(self == UnitKind::Rebuild)),
        ]
    }

    /// What the dry run says about the unit's transaction.
    pub fn heading(self, db: &str, steps: usize) -> String {
        match (self, steps) {
            (UnitKind::Schema, 1) => format!("-- {db}: one transaction"),
            (UnitKind::Schema, _) => {
                format!(
                    "-- {db}: these steps commit together; each under a savepoint, so one that fails is undone alone"
                )
            }
            (UnitKind::Rebuild, _) => format!("-- {db}: the rebuild alone in its transaction, foreign keys off"),
            (UnitKind::DataFix, _) => format!("-- {db}: the fix alone in its transaction, foreign keys enforced"),
        }
    }

    /// Whether each step needs a savepoint of its own.
    pub fn savepoints(self, steps: usize) -> bool {
        self == UnitKind::Schema && steps > 1
    }
}

/// The planned steps grouped into units, in plan order.
pub fn schedule(steps: &[Step], planned: &[usize]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for &s in planned {
        let kind = UnitKind::of(&steps[s]);
        match units.last_mut() {
            Some(unit) if kind == UnitKind::Schema && unit.kind == UnitKind::Schema => unit.steps.push(s),
            _ => units.push(Unit { kind, steps: vec![s] }),
        }
    }
    units
}

/// Lines of a step inside its unit, savepoints included.
pub fn step_lines(step: &Step, savepoint: bool) -> Vec<String> {
    let mut lines = step.lines();
    if savepoint {
        lines.insert(0, format!("SAVEPOINT {SAVEPOINT};"));
        lines.push(format!("RELEASE {SAVEPOINT};  -- on failure: ROLLBACK TO {SAVEPOINT}"));
    }
    lines
}

/// While on, statements that would end or escape the transaction (BEGIN,
/// COMMIT, SAVEPOINT, PRAGMA, ATTACH) are refused as SQLite prepares them:
/// a data fix runs inside preflight's transaction and must stay there.
#[derive(Clone, Default)]
pub struct Guard(Arc<AtomicBool>);

const GUARDED: &str = "a fix may not contain BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PRAGMA or ATTACH";

impl Guard {
    pub fn install(conn: &mut Connection) -> rusqlite::Result<Guard> {
        let guard = Guard::default();
        let on = Arc::clone(&guard.0);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let escapes = matches!(
                ctx.action,
                AuthAction::Transaction { .. }
                    | AuthAction::Savepoint { .. }
                    | AuthAction::Pragma { .. }
                    | AuthAction::Attach { .. }
                    | AuthAction::Detach { .. }
            );
            if escapes && on.load(Ordering::SeqCst) {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }))?;
        Ok(guard)
    }

    fn run(&self, conn: &Connection, sql: &str) -> Result<(), String> {
        self.0.store(true, Ordering::SeqCst);
        let ran = conn.execute_batch(sql);
        self.0.store(false, Ordering::SeqCst);
        ran.map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::AuthorizationForStatementDenied) => GUARDED.to_string(),
            _ => e.to_string(),
        })
    }
}

/// Runs the steps of a schema unit inside the caller's transaction: each
/// step's outcome; a failed step is rolled back to its savepoint (with
/// one step only, the caller rolls the transaction back). `Err` when a
/// savepoint itself fails: the caller rolls everything back.
pub fn run_schema(conn: &Connection, steps: &[Step], unit: &Unit) -> anyhow::Result<Vec<Result<String, String>>> {
    let savepoints = unit.kind.savepoints(unit.steps.len());
    let mut outcomes = Vec::new();
    for &s in &unit.steps {
        let step = &steps[s];
        if savepoints {
            conn.execute_batch(&format!("SAVEPOINT {SAVEPOINT}"))?;
        }
        let StepKind::Schema(sql) = &step.kind else { bail!("not a schema step") };
        let ran = run_statements(conn, sql, &[]);
        match ran {
            Ok(_) => {
                if savepoints {
                    conn.execute_batch(&format!("RELEASE {SAVEPOINT}"))?;
                }
                outcomes.push(Ok("done".to_string()));
            }
            Err(e) => {
                if savepoints {
                    conn.execute_batch(&format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"))?;
                    outcomes.push(Err(failure(conn, step, &e, None)));
                } else {
                    outcomes.push(Err(e)); // explained by the caller once rolled back
                }
            }
        }
    }
    Ok(outcomes)
}

/// `` `label` failed: SQLite's message: the cause found in the rows ``.
pub fn failure(conn: &Connection, step: &Step, error: &str, rebuilt: Option<&str>) -> String {
    let cause = precheck::explain(conn, error, rebuilt).map(|c| format!(" ({c})")).unwrap_or_default();
    format!("`{}` failed: {error}{cause}", step.label)
}

/// Runs a rebuild's statements inside the caller's transaction; the rows
/// copied. A new foreign-key violation of the table or of the tables that
/// reference it fails the step.
pub fn run_rebuild(conn: &Connection, table: &str, sql: &[Sql]) -> Result<String, String> {
    let scope = fk_scope(conn, table).map_err(|e| e.to_string())?;
    let baseline = violations(conn, Some(&scope)).map_err(|e| e.to_string())?;
    let copied = run_statements_scoped(conn, sql, &baseline, Some(&scope))?;
    let noun = if copied == 1 { "row" } else { "rows" };
    Ok(format!("{copied} {noun} copied with their rowids"))
}

/// A data fix inside the caller's transaction, foreign keys enforced:
/// the check re-run and `PRAGMA foreign_key_check` after it.
pub fn run_data_fix(conn: &Connection, guard: &Guard, check: &str, fix: &str) -> Result<String, String> {
    let baseline = violations(conn, None).map_err(|e| e.to_string())?;
    guard.run(conn, fix).map_err(|e| format!("the fix failed: {e}"))?;
    if conn.is_autocommit() {
        return Err(GUARDED.to_string());
    }
    match datacheck::rows(conn, check) {
        Ok((0, _)) => {}
        Ok((n, _)) => return Err(format!("the fix ran but the check still returns {n} row(s)")),
        Err(e) => return Err(format!("the check fails after the fix: {e}")),
    }
    let new: Vec<String> =
        violations(conn, None).map_err(|e| e.to_string())?.into_iter().filter(|v| !baseline.contains(v)).collect();
    if let Some(first) = new.first() {
        return Err(format!(
            "the fix breaks a foreign key: PRAGMA foreign_key_check reports {} new violation(s), first {first}",
            new.len()
        ));
    }
    Ok("fix ran with foreign keys enforced; the check now returns no rows".to_string())
}

fn run_statements(conn: &Connection, sql: &[Sql], baseline: &[String]) -> Result<usize, String> {
    run_statements_scoped(conn, sql, baseline, None)
}

/// Runs statements; returns the rows the copy of a rebuild inserted.
fn run_statements_scoped(
    conn: &Connection,
    sql: &[Sql],
    baseline: &[String],
    scope: Option<&[String]>,
) -> Result<usize, String> {
    let mut copied = 0;
    for statement in sql {
        match statement {
            Sql::Exec(text) => {
                conn.execute(text, []).map_err(|e| e.to_string())?;
            }
            Sql::Copy { sql, from, to } => {
                copied = conn.execute(sql, []).map_err(|e| e.to_string())?;
                let count = |t: &str| -> Result<usize, String> {
                    let n: i64 = conn
                        .query_row(&format!("SELECT count(*) FROM {}", quote(t)), [], |r| r.get(0))
                        .map_err(|e| e.to_string())?;
                    Ok(usize::try_from(n).unwrap_or_default())
                };
                let (old, new) = (count(from)?, count(to)?);
                if copied != old || new != old {
                    return Err(format!("the copy holds {new} rows of {old} (inserted {copied}); nothing is kept"));
                }
            }
            Sql::Expect { sql, message } => {
                let n: i64 = conn.query_row(sql, [], |r| r.get(0)).map_err(|e| e.to_string())?;
                if n != 0 {
                    return Err(format!("{n} {message}"));
                }
            }
            Sql::Note(_) => {}
            Sql::ForeignKeyCheck => {
                let now = violations(conn, scope).map_err(|e| e.to_string())?;
                let new: Vec<&String> = now.iter().filter(|v| !baseline.contains(v)).collect();
                if let Some(first) = new.first() {
                    return Err(format!(
                        "PRAGMA foreign_key_check reports {} new violation(s), first {first}",
                        new.len()
                    ));
                }
            }
        }
    }
    Ok(copied)
}

/// `table` and every table whose foreign keys point at it.
fn fk_scope(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT DISTINCT m.name FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND f.\"table\" = {} COLLATE NOCASE",
        literal(table)
    ))?;
    let mut scope: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    scope.push(table.to_string());
    Ok(scope)
}

/// Rows of `PRAGMA foreign_key_check` (of the tables in `scope`, or all), as text.
pub fn violations(conn: &Connection, scope: Option<&[String]>) -> rusqlite::Result<Vec<String>> {
    let queries: Vec<String> = match scope {
        None => vec!["SELECT \"table\", rowid, parent FROM pragma_foreign_key_check".into()],
        Some(tables) => tables
            .iter()
            .map(|t| format!("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check({})", literal(t)))
            .collect(),
    };
    let mut out = Vec::new();
    for sql in queries {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            let table: String = r.get(0)?;
            let rowid: Option<i64> = r.get(1)?;
            let parent: String = r.get(2)?;
            Ok(format!("{table} row {} → {parent}", rowid.map_or("?".into(), |i| i.to_string())))
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// Sets the unit's pragmas (outside any transaction) and checks they hold.
pub fn prepare(conn: &Connection, kind: UnitKind) -> anyhow::Result<()> {
    conn.execute_batch(&kind.pragmas().join(" "))?;
    let now: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if now != kind.foreign_keys() {
        return Err(anyhow!("PRAGMA foreign_keys could not be set to {}; nothing was run", kind.foreign_keys()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: StepKind) -> Step {
        Step { label: "s".into(), kind, needs: Vec::new() }
    }

    #[test]
    fn schema_steps_share_a_unit_rebuilds_and_fixes_stand_alone() {
        let steps = vec![
            step(StepKind::Schema(vec![])),
            step(StepKind::Schema(vec![])),
            step(StepKind::Rebuild { table: "t".into(), sql: vec![] }),
            step(StepKind::Schema(vec![])),
            step(StepKind::DataFix { check: "c".into(), fix: "f".into() }),
            step(StepKind::DataFix { check: "c".into(), fix: "f".into() }),
        ];
        let units = schedule(&steps, &[0, 1, 2, 3, 4, 5]);
        let shape: Vec<(UnitKind, Vec<usize>)> = units.into_iter().map(|u| (u.kind, u.steps)).collect();
        assert_eq!(
            shape,
            [
                (UnitKind::Schema, vec![0, 1]),
                (UnitKind::Rebuild, vec![2]),
                (UnitKind::Schema, vec![3]),
                (UnitKind::DataFix, vec![4]),
                (UnitKind::DataFix, vec![5]),
            ]
        );
        assert_eq!(schedule(&steps, &[0, 3]).len(), 1, "steps not planned do not split a unit");
    }

    #[test]
    fn the_guard_refuses_statements_that_leave_the_transaction() {
        let mut conn = Connection::open_in_memory().unwrap();
        let guard = Guard::install(&mut conn).unwrap();
        conn.execute_batch("CREATE TABLE t(a); BEGIN;").unwrap();
        for fix in ["COMMIT", "UPDATE t SET a = 1; COMMIT", "PRAGMA foreign_keys=OFF", "SAVEPOINT x", "ROLLBACK"] {
            assert_eq!(guard.run(&conn, fix), Err(GUARDED.to_string()), "{fix}");
            assert!(!conn.is_autocommit(), "{fix}");
        }
        assert_eq!(guard.run(&conn, "INSERT INTO t VALUES (1)"), Ok(()));
        conn.execute_batch("COMMIT").unwrap();
    }
}
