//! Carrying a database's steps out, in ONE transaction per database.
//!
//! Each finding that heal can repair gets its own operation (so reports,
//! `--only` and the history stay per finding), but all the operations of a
//! database share one [`Transaction`]: the first of them to be applied runs
//! every step that is still planned, in one `BEGIN IMMEDIATE … COMMIT`, and
//! the others report the outcome of their own step. "Still planned" is known
//! without any registry: each operation holds a token, the transaction only
//! a weak reference to it, so a finding dropped by `--only` drops its step
//! (a step shared by several findings, like a rebuild, runs while any of
//! them remains). The dry run prints the same thing: the first planned
//! operation opens the transaction, the last one commits it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{anyhow, bail, Context};
use rusqlite::{Connection, OpenFlags};

use super::datacheck;
use super::live::{describe_error, has_sqlite_header, HealthCache, BUSY_TIMEOUT};
use super::plan::{self, Sql, Step, StepKind, SAVEPOINT};
use crate::safety::{ApplyCtx, CustomOp};

/// What became of one step: `None` when it was not planned any more.
type StepOutcome = Option<Result<String, String>>;

/// One database's steps and the findings that hold them.
pub struct Transaction {
    db: PathBuf,
    /// `PRAGMA schema_version` when the steps were planned: a schema changed
    /// since by someone else makes the plan stale, and nothing is run.
    schema_version: i64,
    steps: Vec<Step>,
    /// For each step, the tokens of the operations that carry it.
    holders: Vec<Vec<Weak<()>>>,
    /// Filled by the first `apply`: the outcome of each step that ran.
    outcome: Mutex<Option<Vec<StepOutcome>>>,
    /// The run's cache: a database this transaction left healthy needs no
    /// second `quick_check`.
    cache: HealthCache,
}

/// The operation of one finding: its step within the shared transaction.
pub struct StepOp {
    tx: Arc<Transaction>,
    step: usize,
    token: Arc<()>,
}

/// One operation per claim that names a step (`None` stays `None`).
pub fn operations(
    db: PathBuf,
    schema_version: i64,
    steps: Vec<Step>,
    claims: &[Option<usize>],
    cache: &HealthCache,
) -> Vec<Option<StepOp>> {
    let tokens: Vec<Option<(usize, Arc<()>)>> = claims.iter().map(|c| c.map(|s| (s, Arc::new(())))).collect();
    let mut holders = vec![Vec::new(); steps.len()];
    for (step, token) in tokens.iter().flatten() {
        if let Some(list) = holders.get_mut(*step) {
            list.push(Arc::downgrade(token));
        }
    }
    let tx =
        Arc::new(Transaction { db, schema_version, steps, holders, outcome: Mutex::new(None), cache: cache.clone() });
    tokens.into_iter().map(|t| t.map(|(step, token)| StepOp { tx: tx.clone(), step, token })).collect()
}

impl Transaction {
    /// Steps with at least one finding still planned, in order.
    fn planned(&self) -> Vec<usize> {
        (0..self.steps.len()).filter(|&s| self.holders[s].iter().any(|w| w.strong_count() > 0)).collect()
    }

    fn db_name(&self) -> String {
        self.db.display().to_string()
    }

    /// Runs the planned steps; every step gets an outcome.
    fn run(&self, ctx: &mut ApplyCtx) -> Vec<StepOutcome> {
        let planned = self.planned();
        let mut outcome = vec![None; self.steps.len()];
        match self.execute(ctx, &planned) {
            Ok(results) => {
                if let Ok(path) = ctx.resolve(&self.db) {
                    self.cache.remember_path(&path);
                }
                for (step, result) in results {
                    outcome[step] = Some(result);
                }
            }
            Err(e) => {
                let message = format!("{e:#}; nothing in {} was changed", self.db_name());
                for step in planned {
                    outcome[step] = Some(Err(message.clone()));
                }
            }
        }
        outcome
    }

    fn execute(&self, ctx: &mut ApplyCtx, planned: &[usize]) -> anyhow::Result<Vec<(usize, Result<String, String>)>> {
        let path = ctx.resolve(&self.db)?;
        // Checked again: the file must still be a database before it is opened for writing.
        if !has_sqlite_header(&path).with_context(|| format!("cannot read {}", self.db_name()))? {
            bail!("{} is no longer a SQLite database", self.db_name());
        }
        let rebuild = planned.iter().any(|&s| self.steps[s].is_rebuild());
        let backup = planned.iter().any(|&s| self.steps[s].needs_backup());
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| anyhow!("{} {}", self.db_name(), describe_error(&e)))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A data fix may not reach another file (ATTACH, VACUUM INTO).
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        let foreign_keys: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
        if rebuild {
            // Outside any transaction: inside one, SQLite ignores it.
            conn.execute_batch("PRAGMA foreign_keys=OFF; PRAGMA legacy_alter_table=ON;")?;
            let now: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
            if now != 0 {
                bail!("foreign keys could not be switched off; no table was rebuilt");
            }
        }
        let name = self.db_name();
        let result = in_transaction(&conn, &name, || self.body(ctx, &conn, planned, backup, rebuild));
        if rebuild {
            conn.execute_batch(&format!("PRAGMA legacy_alter_table=OFF; PRAGMA foreign_keys={foreign_keys};"))?;
        }
        result
    }

    fn body(
        &self,
        ctx: &mut ApplyCtx,
        conn: &Connection,
        planned: &[usize],
        backup: bool,
        rebuild: bool,
    ) -> anyhow::Result<Vec<(usize, Result<String, String>)>> {
        let now: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
        if now != self.schema_version {
            bail!("the schema of {} changed since it was checked; run heal again", self.db_name());
        }
        let mut note = String::new();
        if backup {
            let copy = backup_into(ctx, conn, &ctx.resolve(&self.db)?, &self.db)?;
            note = format!("; backup in {}", copy.strip_prefix(ctx.root()).unwrap_or(&copy).display());
        }
        let baseline = if rebuild { violations(conn)? } else { Vec::new() };
        let mut results = Vec::new();
        for &s in planned {
            let step = &self.steps[s];
            let result = match &step.kind {
                StepKind::Schema(sql) => run_statements(conn, sql, &baseline).map(|_| "done".to_string()),
                StepKind::Rebuild(sql) => {
                    run_statements(conn, sql, &baseline).map(|rows| format!("{rows} rows copied with their rowids"))
                }
                StepKind::DataFix { check, fix } => {
                    let outcome = data_fix(conn, check, fix);
                    if conn.is_autocommit() {
                        bail!(
                            "the fix of a data check ended the transaction (a fix must not BEGIN, COMMIT or ROLLBACK)"
                        );
                    }
                    results.push((s, outcome));
                    continue;
                }
            };
            results.push((s, Ok(result.with_context(|| format!("`{}` failed", step.label))?)));
        }
        if let Some((_, Ok(first))) = results.first_mut() {
            first.push_str(&note);
        }
        Ok(results)
    }
}

/// `BEGIN IMMEDIATE`, `f`, `COMMIT`; `ROLLBACK` when anything fails.
fn in_transaction<T>(conn: &Connection, db: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| anyhow!("{db} {}", describe_error(&e)))?;
    let committed = f().and_then(|value| match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(value),
        Err(e) => Err(anyhow!("COMMIT failed: {}", describe_error(&e))),
    });
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    committed
}

/// Runs schema statements; returns the rows the copy of a rebuild inserted.
fn run_statements(conn: &Connection, sql: &[Sql], baseline: &[String]) -> anyhow::Result<usize> {
    let mut copied = 0;
    for statement in sql {
        match statement {
            Sql::Exec(text) => {
                let changed = conn.execute(text, []).with_context(|| format!("`{}`", text.trim()))?;
                if text.starts_with("INSERT INTO") {
                    copied = changed;
                }
            }
            Sql::Note(_) => {}
            Sql::ForeignKeyCheck => {
                let new: Vec<String> = violations(conn)?.into_iter().filter(|v| !baseline.contains(v)).collect();
                if !new.is_empty() {
                    bail!("PRAGMA foreign_key_check reports {} new violation(s), first {}", new.len(), new[0]);
                }
            }
        }
    }
    Ok(copied)
}

/// Rows of `PRAGMA foreign_key_check`, as text.
fn violations(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = stmt.query_map([], |r| {
        let table: String = r.get(0)?;
        let rowid: Option<i64> = r.get(1)?;
        let parent: String = r.get(2)?;
        Ok(format!("{table} row {} → {parent}", rowid.map_or("?".into(), |i| i.to_string())))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A data fix under a savepoint; undone (only it) when it fails or leaves rows.
fn data_fix(conn: &Connection, check: &str, fix: &str) -> Result<String, String> {
    conn.execute_batch(&format!("SAVEPOINT {SAVEPOINT}")).map_err(|e| e.to_string())?;
    let outcome = match conn.execute_batch(fix) {
        Err(e) => Err(format!("the fix failed: {e}")),
        Ok(()) => match datacheck::rows(conn, check) {
            Ok((0, _)) => Ok("fix ran; the check now returns no rows".to_string()),
            Ok((n, _)) => Err(format!("the fix ran but the check still returns {n} row(s)")),
            Err(e) => Err(format!("the check fails after the fix: {e}")),
        },
    };
    if conn.is_autocommit() {
        return outcome; // the caller reports the broken transaction
    }
    let end = match outcome {
        Ok(_) => format!("RELEASE {SAVEPOINT}"),
        Err(_) => format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"),
    };
    conn.execute_batch(&end).map_err(|e| e.to_string())?;
    outcome.map_err(|e| format!("{e}; the fix's changes were undone"))
}

/// Copies the database with SQLite's online backup API into the run's
/// backup folder. Called while `_writer` holds the write lock and before it
/// writes anything, so the copy is exactly the database before the
/// changes. The copy is read through a second connection: SQLite refuses a
/// backup from a connection inside a write transaction.
fn backup_into(ctx: &mut ApplyCtx, _writer: &Connection, path: &Path, db: &Path) -> anyhow::Result<PathBuf> {
    use rusqlite::backup::{Backup, StepResult};
    let target = ctx.backup_path(db)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = Connection::open_with_flags(path, flags)?;
    source.busy_timeout(BUSY_TIMEOUT)?;
    let mut copy = Connection::open(&target).with_context(|| format!("cannot create backup {}", target.display()))?;
    {
        let backup = Backup::new(&source, &mut copy)?;
        loop {
            match backup.step(-1).with_context(|| format!("backup of {} failed", db.display()))? {
                StepResult::Done => break,
                StepResult::More => continue,
                _ => bail!("backup of {}: the database is busy", db.display()),
            }
        }
    }
    drop(copy);
    // The database may hold secrets: the copy is the owner's only.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
    std::fs::File::open(&target)?.sync_all()?;
    Ok(target)
}

impl StepOp {
    fn step(&self) -> &Step {
        &self.tx.steps[self.step]
    }

    /// Whether this operation is the first still-planned holder of its step.
    fn leads(&self) -> bool {
        let mine = Arc::downgrade(&self.token);
        self.tx.holders[self.step].iter().find(|w| w.strong_count() > 0).is_some_and(|w| w.ptr_eq(&mine))
    }
}

impl CustomOp for StepOp {
    fn describe(&self) -> Vec<String> {
        if !self.leads() {
            return vec![format!("-- done by `{}` above", self.step().label)];
        }
        let planned = self.tx.planned();
        let rebuild = planned.iter().any(|&s| self.tx.steps[s].is_rebuild());
        let backup = planned.iter().any(|&s| self.tx.steps[s].needs_backup());
        let mut lines = Vec::new();
        if planned.first() == Some(&self.step) {
            lines.extend(plan::prologue(&self.tx.db_name(), rebuild, backup));
        }
        lines.extend(self.step().lines());
        if planned.last() == Some(&self.step) {
            lines.extend(plan::epilogue(rebuild));
        }
        lines
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let mut outcome = self.tx.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let results = outcome.get_or_insert_with(|| self.tx.run(ctx));
        match results.get(self.step).cloned().flatten() {
            Some(Ok(detail)) if self.leads() => Ok(detail),
            Some(Ok(_)) => Ok("done in the same step as the finding above".to_string()),
            Some(Err(e)) => Err(anyhow!(e)),
            None => Err(anyhow!("the step was not planned when {} was changed", self.tx.db_name())),
        }
    }
}
