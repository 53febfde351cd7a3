//! rollback of a PostgreSQL heal: what heal created is removed only while
//! that is still harmless (a table that holds no rows but its seeds, a
//! column that holds no value but its default, an index, a view, a
//! constraint); anything else is refused with the reason. Records are
//! plain data so the history can keep them.

use serde::{Deserialize, Serialize};

use super::connect::{connect, describe};
use super::plan::{self, Step};
use super::{Config, Error};

/// How to undo one action, as the history stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoRecord {
    pub id: String,
    pub label: String,
    /// `None`: cannot be undone, `refusal` says why.
    pub undo: Option<plan::Undo>,
    pub refusal: String,
}

impl UndoRecord {
    pub fn of(id: &str, step: &Step) -> UndoRecord {
        UndoRecord {
            id: id.to_string(),
            label: step.label.clone(),
            undo: step.undo.clone(),
            refusal: step.refusal.clone(),
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoOutcome {
    Undone,
    Refused(String),
    Failed(String),
}

/// Undoes `records` newest first (a foreign key before the table it names).
pub fn undo(config: &Config, records: &[UndoRecord]) -> Result<Vec<(String, UndoOutcome)>, Error> {
    let mut session = connect(&config.url).map_err(Error::Unreachable)?;
    let secret = session.secret.clone();
    let client = &mut session.client;
    let server = |e: postgres::Error| Error::Server(secret.scrub(&describe(&e)));
    client.batch_execute(&plan::timeouts(config.lock_timeout, config.statement_timeout)).map_err(server)?;
    let path: String =
        client.query_one("SELECT pg_catalog.quote_ident($1)", &[&config.namespace]).map_err(server)?.get(0);
    client.batch_execute(&format!("SET search_path = {path}")).map_err(server)?;
    // Newest first; a change another one depends on (a table a foreign key
    // names) is tried again once the others are undone.
    let pending: Vec<&UndoRecord> = records.iter().rev().collect();
    let mut outcomes: Vec<Option<UndoOutcome>> = vec![None; pending.len()];
    loop {
        let mut progress = false;
        let mut failed_again = Vec::new();
        for (i, record) in pending.iter().enumerate() {
            if matches!(outcomes[i], Some(UndoOutcome::Undone | UndoOutcome::Refused(_))) {
                continue;
            }
            let outcome = match &record.undo {
                None => UndoOutcome::Refused(record.refusal.clone()),
                Some(undo) => {
                    let result = if undo.concurrent {
                        run_each(client, &undo.sql)
                    } else {
                        in_transaction(client, undo, &undo.sql)
                    };
                    match result {
                        Ok(None) => UndoOutcome::Undone,
                        Ok(Some(why)) => UndoOutcome::Refused(why),
                        Err(e) => UndoOutcome::Failed(secret.scrub(&describe(&e))),
                    }
                }
            };
            progress |= outcome == UndoOutcome::Undone;
            if matches!(outcome, UndoOutcome::Failed(_)) {
                failed_again.push(i);
            }
            outcomes[i] = Some(outcome);
        }
        if !progress || failed_again.is_empty() {
            break;
        }
    }
    let out: Vec<(String, UndoOutcome)> = pending
        .iter()
        .zip(outcomes)
        .map(|(r, o)| (r.id.clone(), o.unwrap_or(UndoOutcome::Failed("not attempted".into()))))
        .collect();
    Ok(out)
}

/// The guard and the statements in one transaction: the guard's answer
/// cannot go stale before the change. `Some(reason)` when refused.
fn in_transaction(
    client: &mut postgres::Client,
    undo: &plan::Undo,
    sql: &[String],
) -> Result<Option<String>, postgres::Error> {
    let mut tx = client.transaction()?;
    if let Some(lock) = &undo.lock {
        tx.batch_execute(lock)?;
    }
    if let Some(guard) = &undo.guard {
        let safe: bool = tx.query_one(guard.as_str(), &[])?.get(0);
        if !safe {
            tx.rollback()?;
            return Ok(Some(format!("{}; left as it is", undo.guard_fails)));
        }
    }
    for statement in sql {
        tx.batch_execute(statement)?;
    }
    tx.commit()?;
    Ok(None)
}

fn run_each(client: &mut postgres::Client, sql: &[String]) -> Result<Option<String>, postgres::Error> {
    for statement in sql {
        client.batch_execute(statement)?;
    }
    Ok(None)
}
