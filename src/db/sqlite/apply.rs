//! Carrying a database's steps out, in units (`units.rs`): consecutive
//! schema steps commit together, each rebuild and each data fix alone.
//!
//! Each finding that heal can repair gets its own operation (so reports,
//! `--only` and the history stay per finding), but all the operations of a
//! database share one [`Transaction`] plan: the first of them to be applied
//! runs every step that is still planned, unit by unit, and the others
//! report the outcome of their own step. "Still planned" is known without
//! any registry: each operation holds a token, the plan only a weak
//! reference to it, so a finding dropped by `--only` drops its step (a
//! step shared by several findings, like a rebuild, runs while any of them
//! remains). The dry run prints the same thing: the first planned
//! operation of a unit opens its transaction, the last one commits it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{anyhow, bail, Context};
use rusqlite::{Connection, OpenFlags};

use super::budget;
use super::live::{describe_error, has_sqlite_header, HealthCache, BUSY_TIMEOUT};
use super::meter::{self, RowMeter};
use super::plan::{Step, StepKind};
use super::units::{self, Guard, Unit, UnitKind};
use crate::safety::precondition::Skip;
use crate::safety::{ApplyCtx, CustomOp, Task};

/// Pages the online backup copies per step, between two progress reports.
const BACKUP_STEP: std::ffi::c_int = 1024;

/// What became of one step: `None` when it was not planned any more.
type StepOutcome = Option<Result<String, NotDone>>;

/// Why a planned step did not take effect.
#[derive(Debug, Clone)]
enum NotDone {
    Failed(String),
    /// The database is no longer what the check saw: left alone, a later
    /// heal plans again.
    Skipped(String),
}

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

/// The open database and what is installed on it.
#[derive(Clone, Copy)]
struct Connected<'c> {
    conn: &'c Connection,
    /// Refuses statements that escape a data fix's transaction.
    guard: &'c Guard,
    /// Counts the rows a rebuild copies.
    meter: &'c RowMeter,
}

/// Where the run's backup is, once taken.
struct Backup {
    copy: PathBuf,
    bytes: u64,
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
                    outcome[step] = Some(Err(NotDone::Failed(message.clone())));
                }
            }
        }
        outcome
    }

    fn execute(&self, ctx: &mut ApplyCtx, planned: &[usize]) -> anyhow::Result<Vec<(usize, Result<String, NotDone>)>> {
        let path = ctx.resolve(&self.db)?;
        // SQLite changes the file in place, by path: it must be a regular
        // file with a single link (another may lead outside the root)...
        let identity = ctx.in_place(&self.db)?;
        // Checked again: the file must still be a database before it is opened for writing.
        if !has_sqlite_header(&path).with_context(|| format!("cannot read {}", self.db_name()))? {
            bail!("{} is no longer a SQLite database", self.db_name());
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| anyhow!("{} {}", self.db_name(), describe_error(&e)))?;
        // ...and what SQLite opened must be the file found through the
        // handles beneath the root, not one a swapped symlink led to.
        let opened = std::fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
        if opened != Some(identity) || ctx.in_place(&self.db)? != identity {
            bail!("{} changed while it was being opened; nothing was changed", self.db_name());
        }
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A data fix may not reach another file (ATTACH, VACUUM INTO).
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        let guard = Guard::install(&mut conn)?;
        let meter = RowMeter::install(&mut conn)?;
        let wants_backup = planned.iter().any(|&s| self.steps[s].needs_backup());
        let mut expected = self.schema_version;
        let mut backup: Option<Backup> = None;
        let mut results: Vec<(usize, Result<String, NotDone>)> = Vec::new();
        let mut stopped: Option<NotDone> = None;
        for unit in units::schedule(&self.steps, planned) {
            if let Some(why) = &stopped {
                results.extend(unit.steps.iter().map(|&s| (s, Err(why.clone()))));
                continue;
            }
            let take_backup = wants_backup && backup.is_none();
            let conn = Connected { conn: &conn, guard: &guard, meter: &meter };
            match self.run_unit(ctx, conn, &unit, &mut expected, take_backup, &mut backup) {
                Ok(outcomes) => results.extend(outcomes.into_iter().map(|(s, o)| (s, o.map_err(NotDone::Failed)))),
                Err(e) => {
                    // Locked, changed by someone else, no room for the backup: no later unit runs either.
                    let why = match e.downcast_ref::<Skip>() {
                        Some(Skip::Changed(why)) => NotDone::Skipped(why.clone()),
                        _ => NotDone::Failed(format!("{e:#}")),
                    };
                    results.extend(unit.steps.iter().map(|&s| (s, Err(why.clone()))));
                    stopped = Some(why);
                }
            }
        }
        if let Some((_, Ok(detail))) = results.iter_mut().find(|(s, o)| o.is_ok() && self.steps[*s].is_rebuild()) {
            // Outside any transaction, once: the old tables' pages are free inside the file.
            let dir = path.parent().unwrap_or(Path::new("."));
            // VACUUM attaches its own temporary database; no fix runs any more.
            if conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 1).is_ok() {
                detail.push_str(&budget::reclaim(&conn, dir).unwrap_or_default());
            }
        }
        drop(conn); // the pragmas set for the units end with it
        let committed = |s: usize| results.iter().any(|(r, o)| *r == s && o.is_ok());
        let protected = planned.iter().any(|&s| self.steps[s].needs_backup() && committed(s));
        if let Some(b) = &backup {
            if protected {
                let shown = b.copy.strip_prefix(ctx.root()).unwrap_or(&b.copy).display().to_string();
                let note = format!("; backup ({}) in {shown}", crate::runtime::size::human_bytes(b.bytes));
                if let Some((_, Ok(detail))) =
                    results.iter_mut().find(|(s, o)| o.is_ok() && self.steps[*s].needs_backup())
                {
                    detail.push_str(&note);
                }
            } else {
                // Nothing it protects was kept: a failed run keeps no backup of its own.
                // Past the commits, an error here must not report them as failed.
                let _ = ctx.discard_saved(&b.copy);
            }
        }
        let any_kept = results.iter().any(|(_, o)| o.is_ok());
        let suffix = match any_kept {
            true => "; only this step was undone, the other changes were kept".to_string(),
            false => format!("; nothing in {} was changed", self.db_name()),
        };
        for (_, outcome) in results.iter_mut() {
            if let Err(NotDone::Failed(e)) = outcome {
                e.push_str(&suffix);
            }
        }
        Ok(results)
    }

    /// Runs one unit in its own transaction.
    fn run_unit(
        &self,
        ctx: &mut ApplyCtx,
        Connected { conn, guard, meter }: Connected,
        unit: &Unit,
        expected: &mut i64,
        take_backup: bool,
        backup: &mut Option<Backup>,
    ) -> anyhow::Result<Vec<(usize, Result<String, String>)>> {
        units::prepare(conn, unit.kind)?;
        let db = self.db_name();
        let path = ctx.resolve(&self.db)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| anyhow!("{db} {}", describe_error(&e)))?;
        let ready = (|| -> anyhow::Result<()> {
            let now: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
            if now != *expected {
                let why = format!("the schema of {db} changed since it was checked: version {now}, {expected} then");
                return Err(Skip::Changed(why).into());
            }
            if take_backup {
                let need = budget::database_bytes(conn)?;
                budget::ensure(ctx.root(), need, &format!("the backup of {db}"))?;
                let copy = backup_into(ctx, &path, &self.db)?;
                let bytes = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or_default();
                *backup = Some(Backup { copy, bytes });
            }
            Ok(())
        })();
        if let Err(e) = ready {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        let mut rebuilding: Option<Box<dyn Task>> = None;
        let mut outcomes: Vec<Result<String, String>> = match unit.kind {
            UnitKind::Schema => match units::run_schema(conn, &self.steps, unit) {
                Ok(outcomes) => outcomes,
                Err(e) => vec![Err(format!("{e:#}")); unit.steps.len()],
            },
            UnitKind::Rebuild | UnitKind::DataFix => {
                let step = &self.steps[unit.steps[0]];
                vec![match &step.kind {
                    StepKind::Rebuild { table, sql } => budget::rebuild_need(conn, table)
                        .map_err(|e| e.to_string())
                        .and_then(|need| {
                            let what = format!("the rebuild of table {table}");
                            budget::ensure(dir, need, &what).map_err(|e| format!("{e:#}"))
                        })
                        .and_then(|()| {
                            // Told the rows copied; it ends once the rebuild committed.
                            let label = format!("rebuild table {table} in {db}");
                            meter.arm(ctx.progress().task(&label, meter::estimated_rows(conn, table)));
                            let copied = units::run_rebuild(conn, table, sql);
                            rebuilding = meter.disarm();
                            copied
                        }),
                    StepKind::DataFix { check, fix } => units::run_data_fix(conn, guard, check, fix),
                    StepKind::Schema(_) => Err("not a rebuild".into()),
                }]
            }
        };
        let whole = !unit.kind.savepoints(unit.steps.len());
        let failed = outcomes.iter().any(Result::is_err);
        if whole && failed {
            let _ = conn.execute_batch("ROLLBACK");
            // Explained once rolled back: the rows are as they were.
            let step = &self.steps[unit.steps[0]];
            let rebuilt = match &step.kind {
                StepKind::Rebuild { table, .. } => Some(table.as_str()),
                _ => None,
            };
            if let Some(Err(e)) = outcomes.first_mut() {
                *e = match step.kind {
                    StepKind::DataFix { .. } => format!("{e}; the fix's changes were undone"),
                    _ => units::failure(conn, step, e, rebuilt),
                };
            }
        } else if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            let why = format!("COMMIT failed: {}", describe_error(&e));
            outcomes = vec![Err(why); unit.steps.len()];
        }
        if let Some(task) = rebuilding {
            task.finish();
        }
        // Unknown, the next unit cannot tell its own change from someone else's: it stops.
        *expected = conn.query_row("PRAGMA schema_version", [], |r| r.get(0)).unwrap_or(i64::MIN);
        Ok(unit.steps.iter().copied().zip(outcomes).collect())
    }
}

/// Copies the database with SQLite's online backup API into the run's
/// backup folder. Called while the writer holds the write lock and before
/// it writes anything, so the copy is exactly the database before the
/// changes. The copy is read through a second connection: SQLite refuses a
/// backup from a connection inside a write transaction.
fn backup_into(ctx: &mut ApplyCtx, path: &Path, db: &Path) -> anyhow::Result<PathBuf> {
    let (target, kept) = ctx.backup_path(db)?;
    let made = (|| -> anyhow::Result<()> {
        use rusqlite::backup::{Backup, StepResult};
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let source = Connection::open_with_flags(path, flags)?;
        source.busy_timeout(BUSY_TIMEOUT)?;
        let pages: i64 = source.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let mut copy =
            Connection::open(&target).with_context(|| format!("cannot create backup {}", target.display()))?;
        let task = ctx.progress().task(&format!("back up {}", db.display()), u64::try_from(pages).ok());
        {
            let backup = Backup::new(&source, &mut copy)?;
            loop {
                match backup.step(BACKUP_STEP).with_context(|| format!("backup of {} failed", db.display()))? {
                    StepResult::Done => break,
                    StepResult::More => {
                        let done = backup.progress();
                        task.advance(u64::try_from(done.pagecount - done.remaining).unwrap_or_default());
                    }
                    _ => bail!("backup of {}: the database is busy", db.display()),
                }
            }
        }
        drop(copy);
        task.advance(u64::try_from(pages).unwrap_or_default());
        task.finish();
        // `kept` is the private (0600) file the context created, which SQLite
        // filled by path: made durable through that handle.
        kept.sync_all()?;
        // Only now, complete and durable, is it the undo of what follows.
        ctx.backup_saved(db, &target)
    })();
    if let Err(e) = made {
        // A backup cut short protects nothing: it is not kept.
        let _ = ctx.discard_saved(&target);
        return Err(e);
    }
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
        let backup = planned.iter().any(|&s| self.tx.steps[s].needs_backup());
        let schedule = units::schedule(&self.tx.steps, &planned);
        let Some((n, unit)) = schedule.iter().enumerate().find(|(_, u)| u.steps.contains(&self.step)) else {
            return self.step().lines();
        };
        let mut lines = Vec::new();
        if unit.steps.first() == Some(&self.step) {
            lines.push(unit.kind.heading(&self.tx.db_name(), unit.steps.len()));
            lines.extend(unit.kind.pragmas());
            lines.push("BEGIN IMMEDIATE;".into());
            if n == 0 && backup {
                lines.push(format!(
                    "-- back up {} into .preflight/backups/<run>/ (SQLite online backup)",
                    self.tx.db_name()
                ));
            }
        }
        lines.extend(units::step_lines(self.step(), unit.kind.savepoints(unit.steps.len())));
        if unit.steps.last() == Some(&self.step) {
            lines.push("COMMIT;".into());
        }
        lines
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let mut outcome = self.tx.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let results = outcome.get_or_insert_with(|| self.tx.run(ctx));
        let result = results.get(self.step).cloned().flatten();
        if matches!(result, Some(Ok(_))) {
            ctx.note_changed(&self.tx.db);
        }
        match result {
            Some(Ok(detail)) if self.leads() => Ok(detail),
            Some(Ok(_)) => Ok("done in the same step as the finding above".to_string()),
            Some(Err(NotDone::Failed(e))) => Err(anyhow!(e)),
            Some(Err(NotDone::Skipped(why))) => Err(Skip::Changed(why).into()),
            None => Err(anyhow!("the step was not planned when {} was changed", self.tx.db_name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{inspect, Options};
    use crate::manifest::DatabaseSpec;
    use crate::safety::progress::recording::Recording;
    use crate::safety::ApplyCtx;

    #[test]
    fn a_rebuild_reports_its_backup_and_its_copy_as_they_go() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("s.sql"), "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);").unwrap();
        let rows = 100_000;
        rusqlite::Connection::open(root.path().join("a.db"))
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
                 INSERT INTO t SELECT i, hex(randomblob(40)) FROM n;"
            ))
            .unwrap();
        let spec = DatabaseSpec {
            path: "a.db".into(),
            schema: "s.sql".into(),
            create: true,
            convergence: Default::default(),
            checks: Vec::new(),
            integrity: Default::default(),
            severity: None,
        };
        let options = Options { allow_rebuild: true, deep: false };
        let inspection = inspect(root.path(), &spec, options, &Default::default()).unwrap();
        let repair = inspection.claims.into_iter().find_map(|c| c.repair).expect("a rebuild is planned");
        assert!(repair.label.starts_with("rebuild table"), "{}", repair.label);
        let progress = Recording::default();
        let mut ctx = ApplyCtx::new(root.path(), "r").with_progress(&progress);
        let detail = repair.op.apply(&mut ctx).unwrap();
        assert!(detail.contains(&format!("{rows} rows copied")), "{detail}");
        // About 10 MB in 4 KiB pages: several steps of `BACKUP_STEP` pages.
        let pages = progress.assert_task("back up a.db", 3).expect("the page count");
        assert_eq!(progress.advances("back up").last(), Some(&pages), "the last update is the whole database");
        assert_eq!(progress.assert_task("rebuild table t in a.db", 6), Some(rows));
        assert_eq!(progress.advances("rebuild").last(), Some(&rows), "every row copied was counted");
    }
}
