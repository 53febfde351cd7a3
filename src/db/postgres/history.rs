//! rollback of a heal run's PostgreSQL actions: the undo records the
//! history kept (see `claims.rs`) go back to the engine (`undo.rs`), and
//! each outcome becomes a history entry of the rollback run.

use super::claims::HistoryUndo;
use super::{undo, Config, UndoOutcome};
use crate::manifest::Manifest;
use crate::safety::history::{Entry, Outcome};

/// Undoes the PostgreSQL changes recorded in `entries`, newest first.
/// `url_of` reads a variable from the process environment or `.env`.
pub fn undo_entries(manifest: &Manifest, url_of: &dyn Fn(&str) -> Option<String>, entries: &[&Entry]) -> Vec<Entry> {
    let records: Vec<(&Entry, HistoryUndo)> = entries
        .iter()
        .filter_map(|e| {
            let undo: HistoryUndo = serde_json::from_value(e.database_undo.clone()?).ok()?;
            (undo.engine == "postgres").then_some((*e, undo))
        })
        .collect();
    let mut groups: Vec<(String, String)> = Vec::new();
    for (_, u) in &records {
        let key = (u.url_env.clone(), u.namespace.clone());
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let mut out = Vec::new();
    for (url_env, namespace) in groups.into_iter().rev() {
        let group: Vec<&(&Entry, HistoryUndo)> =
            records.iter().filter(|(_, u)| u.url_env == url_env && u.namespace == namespace).collect();
        let failed = |entry: &Entry, why: String| Entry {
            id: entry.id.clone(),
            action: format!("undo {}", entry.action),
            outcome: Outcome::Failed,
            detail: why,
            ..Default::default()
        };
        let Some(url) = url_of(&url_env).filter(|u| !u.trim().is_empty()) else {
            out.extend(group.iter().rev().map(|(e, _)| failed(e, format!("{url_env} is not set; nothing was undone"))));
            continue;
        };
        let mut config = Config::new(format!("db:{url_env}"), url, "");
        config.namespace = namespace.clone();
        if let Some(spec) = manifest.postgres.iter().find(|s| s.url_env == url_env && s.namespace == namespace) {
            config.lock_timeout = spec.lock_timeout;
        }
        let undo_records: Vec<_> = group.iter().map(|(_, u)| u.record.clone()).collect();
        match undo(&config, &undo_records) {
            Err(e) => {
                out.extend(group.iter().rev().map(|(entry, _)| failed(entry, format!("{e}; nothing was undone"))))
            }
            Ok(outcomes) => {
                for ((entry, u), (_, outcome)) in group.iter().rev().zip(outcomes) {
                    let sql = u.record.undo.as_ref().map(|x| x.sql.clone()).unwrap_or_default();
                    let (outcome, detail, sql) = match outcome {
                        UndoOutcome::Undone => (Outcome::Done, "undone in the database".to_string(), sql),
                        UndoOutcome::Refused(why) => (Outcome::Failed, format!("not undone: {why}"), Vec::new()),
                        UndoOutcome::Failed(why) => (Outcome::Failed, format!("undo failed: {why}"), Vec::new()),
                    };
                    out.push(Entry {
                        id: entry.id.clone(),
                        action: format!("undo {}", entry.action),
                        outcome,
                        detail,
                        sql,
                        ..Default::default()
                    });
                }
            }
        }
    }
    out
}
