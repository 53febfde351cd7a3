//! heal: carrying the steps out, online.
//!
//! - A session-level advisory lock keyed on (database, namespace) makes
//!   replicas that start together heal once: the first applies, the others
//!   wait for the lock, re-inspect, and find nothing left to do.
//! - The plan is made again under the lock (what validate saw may be done
//!   by now), and only steps of the selected findings run.
//! - Every statement runs under `lock_timeout` and `statement_timeout`. A
//!   lock timeout rolls back what the attempt did and is retried a bounded
//!   number of times, with a pause that lets the application's queries
//!   through; then the database is reported busy and nothing is left
//!   half-applied (an INVALID index from a cancelled build is dropped, a
//!   NOT VALID constraint that failed to validate is removed).

use std::thread::sleep;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::Client;

use super::connect::{connect, describe};
use super::inspect::inspect_with;
use super::plan::{self, Step, StepKind};
use super::undo::UndoRecord;
use super::url::Secret;
use super::{datacheck, Config, Error, Report};

/// What became of one finding's fix.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(String),
    /// Under the lock, the finding was no longer there (another replica).
    AlreadyConverged,
    Failed(String),
    /// Locks were not granted within `lock_timeout` after every retry.
    Busy(String),
}

/// One finding's fix as heal carried it out.
#[derive(Debug, Clone)]
pub struct Action {
    pub id: String,
    pub label: String,
    /// The exact statements of its step.
    pub sql: Vec<String>,
    pub outcome: Outcome,
    /// How to undo it, when it was done.
    pub undo: Option<UndoRecord>,
}

/// Why a step did not complete.
enum StepError {
    Busy(String),
    Failed(String),
}

/// Applies the fixes of the findings `selected` accepts. Findings seen by
/// an earlier validate but gone under the lock are not in the result.
pub fn heal(config: &Config, selected: &dyn Fn(&str) -> bool) -> Result<(Vec<Action>, Report), Error> {
    heal_after(config, selected, None)
}

/// `heal`, given the report of the validate that planned it: under the lock
/// its comparison is reused while the live catalog is unchanged since.
pub fn heal_after(
    config: &Config,
    selected: &dyn Fn(&str) -> bool,
    earlier: Option<&Report>,
) -> Result<(Vec<Action>, Report), Error> {
    let mut session = connect(&config.url).map_err(Error::Unreachable)?;
    let secret = session.secret.clone();
    let client = &mut session.client;
    let server = |e: postgres::Error| Error::Server(secret.scrub(&describe(&e)));
    client.batch_execute(&plan::timeouts(config.lock_timeout, config.statement_timeout)).map_err(server)?;
    let key: i64 = client
        .query_one(
            "SELECT pg_catalog.hashtextextended('preflight ' || pg_catalog.current_database() || ' ' || $1, 0)",
            &[&config.namespace],
        )
        .map_err(server)?
        .get(0);
    if !wait_for_lock(client, key, config.lock_wait).map_err(server)? {
        let report = inspect_with(client, config, &secret, earlier)?;
        let busy =
            format!("another heal of this database held its lock for {:?}; nothing was changed", config.lock_wait);
        let actions = actions_for(&report, selected, |_| Outcome::Busy(busy.clone()));
        return Ok((actions, report));
    }
    let result = heal_locked(client, config, &secret, selected, earlier);
    let _ = client.execute("SELECT pg_catalog.pg_advisory_unlock($1)", &[&key]);
    result
}

fn heal_locked(
    client: &mut Client,
    config: &Config,
    secret: &Secret,
    selected: &dyn Fn(&str) -> bool,
    earlier: Option<&Report>,
) -> Result<(Vec<Action>, Report), Error> {
    let report = inspect_with(client, config, secret, earlier)?;
    let chosen = report.selected_steps(selected);
    client
        .batch_execute(&format!("SET search_path = {}", report.search_path))
        .map_err(|e| Error::Server(secret.scrub(&describe(&e))))?;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; report.steps.len()];
    let in_tx: Vec<usize> = chosen.iter().copied().filter(|&s| report.steps[s].in_transaction()).collect();
    let mut busy = None;
    if !in_tx.is_empty() {
        let steps: Vec<&Step> = in_tx.iter().map(|&s| &report.steps[s]).collect();
        let outcome = match transaction(client, config, &steps) {
            Ok(()) => Outcome::Done("done".into()),
            Err(StepError::Busy(m)) => {
                busy = Some(m.clone());
                Outcome::Busy(m)
            }
            Err(StepError::Failed(m)) => Outcome::Failed(format!("{m}; nothing in the transaction was applied")),
        };
        for s in in_tx {
            outcomes[s] = Some(outcome.clone());
        }
    }
    let mut rest: Vec<usize> = chosen.iter().copied().filter(|&s| !report.steps[s].in_transaction()).collect();
    rest.sort_by_key(|&s| report.steps[s].rank());
    for s in rest {
        let outcome = match &busy {
            Some(m) => Outcome::Busy(m.clone()),
            None => match run_step(client, config, &report.steps[s]) {
                Ok(detail) => Outcome::Done(detail),
                Err(StepError::Busy(m)) => {
                    busy = Some(m.clone());
                    Outcome::Busy(m)
                }
                Err(StepError::Failed(m)) => Outcome::Failed(m),
            },
        };
        outcomes[s] = Some(outcome);
    }
    let scrub = |o: Outcome| match o {
        Outcome::Failed(m) => Outcome::Failed(secret.scrub(&m)),
        Outcome::Busy(m) => Outcome::Busy(secret.scrub(&m)),
        other => other,
    };
    let actions = actions_for(&report, selected, |s| scrub(outcomes[s].clone().unwrap_or(Outcome::AlreadyConverged)));
    record_convergence(client, config, &report, !chosen.is_empty());
    Ok((actions, report))
}

/// Lets later validations skip loading the DDL (`marker.rs`) when the
/// namespace is now converged. After changes, the live catalog is read
/// again and compared with the DDL this heal already loaded; without
/// changes, the report under the lock is the answer.
fn record_convergence(client: &mut Client, config: &Config, report: &Report, changed: bool) {
    let checks = format!("{}:check:", config.id_base);
    let recorded = if changed {
        let Some(desired) = report.desired.as_deref() else { return };
        match super::inspect::converged_answer(client, config, desired) {
            Ok(Some(found)) => found,
            _ => return,
        }
    } else {
        // Only an answer without repairs can be replayed: a step cannot.
        let schema: Vec<&super::Difference> =
            report.differences.iter().filter(|d| !d.id.starts_with(&checks)).collect();
        if report.fast || schema.iter().any(|d| d.step.is_some()) {
            return;
        }
        (report.keys.clone(), super::marker::Answer::of(report))
    };
    let ((inputs, catalog), mut answer) = recorded;
    answer.passed.retain(|id| !id.starts_with(&checks));
    answer.differences.retain(|(id, _, _)| !id.starts_with(&checks));
    super::marker::write(client, &config.namespace, &inputs, &catalog, &answer);
}

/// One action per selected difference that has a step.
fn actions_for(report: &Report, selected: &dyn Fn(&str) -> bool, outcome: impl Fn(usize) -> Outcome) -> Vec<Action> {
    report
        .differences
        .iter()
        .filter(|d| selected(&d.id))
        .filter_map(|d| d.step.map(|s| (d, s)))
        .map(|(d, s)| {
            let step = &report.steps[s];
            let outcome = outcome(s);
            let undo = matches!(outcome, Outcome::Done(_)).then(|| UndoRecord::of(&d.id, step));
            Action { id: d.id.clone(), label: step.label.clone(), sql: step.lines(), outcome, undo }
        })
        .collect()
}

/// Polls the advisory lock until `wait` has passed (a blocking
/// `pg_advisory_lock` could not be bounded without cancelling it).
fn wait_for_lock(client: &mut Client, key: i64, wait: Duration) -> Result<bool, postgres::Error> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        if client.query_one("SELECT pg_catalog.pg_try_advisory_lock($1)", &[&key])?.get::<_, bool>(0) {
            return Ok(true);
        }
        if start.elapsed() >= wait {
            return Ok(false);
        }
        sleep(pause.min(wait.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Is this the server refusing to wait longer for a lock?
fn is_lock_timeout(e: &postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Runs `attempt` up to 1 + retries times while it fails on a lock timeout.
fn with_retries(
    client: &mut Client,
    config: &Config,
    what: &str,
    mut attempt: impl FnMut(&mut Client) -> Result<(), postgres::Error>,
    mut cleanup: impl FnMut(&mut Client),
) -> Result<(), StepError> {
    for n in 0..=config.retries {
        match attempt(client) {
            Ok(()) => return Ok(()),
            Err(e) if is_lock_timeout(&e) => {
                cleanup(client);
                if n < config.retries {
                    // Back off so the queries queued behind our lock request get through.
                    sleep(config.lock_timeout.min(Duration::from_secs(1)) * (n + 1));
                }
            }
            Err(e) => {
                cleanup(client);
                return Err(StepError::Failed(describe(&e)));
            }
        }
    }
    Err(StepError::Busy(format!(
        "the database is busy: {what} did not get its lock within lock_timeout ({} ms) in {} attempts; \
         nothing was changed",
        config.lock_timeout.as_millis(),
        config.retries + 1
    )))
}

/// All transactional statements in one transaction, all or nothing.
fn transaction(client: &mut Client, config: &Config, steps: &[&Step]) -> Result<(), StepError> {
    let statements: Vec<String> = plan::transaction(steps).into_iter().map(|s| s.sql.clone()).collect();
    let mut failed_at: Option<String> = None;
    let result = with_retries(
        client,
        config,
        "the schema change",
        |client| {
            let mut tx = client.transaction()?;
            for sql in &statements {
                if let Err(e) = tx.batch_execute(sql) {
                    failed_at = Some(sql.lines().next().unwrap_or("").to_string());
                    return Err(e);
                }
            }
            tx.commit()
        },
        |_| {},
    );
    match (result, failed_at) {
        (Err(StepError::Failed(m)), Some(sql)) => Err(StepError::Failed(format!("{m} (in: {sql})"))),
        (other, _) => other,
    }
}

/// A step outside the shared transaction.
fn run_step(client: &mut Client, config: &Config, step: &Step) -> Result<String, StepError> {
    match &step.kind {
        StepKind::Transactional(_) => Ok("done".into()),
        StepKind::Concurrent { index, drop_first, create, then } => {
            let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {}", super::catalog::Quoter::default().ident(index));
            if let Some(sql) = drop_first {
                with_retries(client, config, "dropping the INVALID index", |c| c.batch_execute(sql), |_| {})?;
            }
            let started = Instant::now();
            // A cancelled build leaves an INVALID index: removed before the next try.
            with_retries(
                client,
                config,
                "the index build",
                |c| c.batch_execute(create),
                |c| {
                    let _ = c.batch_execute(&drop);
                },
            )?;
            for sql in then {
                with_retries(client, config, "the index swap", |c| c.batch_execute(sql), |_| {})?;
            }
            Ok(format!("built in {} ms", started.elapsed().as_millis()))
        }
        StepKind::Validated { add, validate, finish, cleanup } => {
            if let Some(add) = add {
                with_retries(client, config, "adding the constraint", |c| c.batch_execute(add), |_| {})?;
            }
            let undo = |client: &mut Client| {
                if !cleanup.starts_with("--") {
                    let _ = client.batch_execute(cleanup);
                }
            };
            if let Err(e) =
                with_retries(client, config, "validating the constraint", |c| c.batch_execute(validate), |_| {})
            {
                undo(client);
                return Err(e);
            }
            let finished = with_retries(
                client,
                config,
                "the final change",
                |client| {
                    let mut tx = client.transaction()?;
                    for sql in finish {
                        tx.batch_execute(sql)?;
                    }
                    tx.commit()
                },
                |_| {},
            );
            if let Err(e) = finished {
                undo(client);
                return Err(e);
            }
            Ok("validated".into())
        }
        StepKind::DataFix { check, fix } => data_fix(client, config, check, fix),
    }
}

fn data_fix(client: &mut Client, config: &Config, check: &str, fix: &str) -> Result<String, StepError> {
    let mut left = 0;
    with_retries(
        client,
        config,
        "the data fix",
        |client| {
            let mut tx = client.transaction()?;
            tx.batch_execute(fix)?;
            left = match datacheck::rows(&mut tx, check) {
                Ok((n, _)) => n,
                Err(_) => usize::MAX,
            };
            if left == 0 {
                tx.commit()
            } else {
                tx.rollback()
            }
        },
        |_| {},
    )?;
    match left {
        0 => Ok("the check returns no rows now".into()),
        usize::MAX => Err(StepError::Failed("the check fails after the fix; the fix was rolled back".into())),
        n => Err(StepError::Failed(format!("the check still returns {n} rows after the fix; the fix was rolled back"))),
    }
}
