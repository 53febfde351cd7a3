//! The engine seen from the `[[database]]` check: a manifest entry and the
//! URL (read by the check from the process environment or `.env`) become a
//! [`Config`]; the report becomes passes and claims whose repairs are
//! [`HealOp`]s. All the operations of one database share one [`Database`]:
//! the first of them to be applied heals every finding still planned, under
//! the engine's advisory lock, and the others report their own outcome —
//! so `--only` and the history stay per finding while the database sees one
//! heal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use anyhow::{bail, Context};

use super::{apply, url, Config, DataCheck, Error, Rename, Report};
use crate::db::{Claim, Inspection};
use crate::finding::Severity;
use crate::manifest::PostgresSpec;
use crate::safety::{ApplyCtx, CustomOp};

/// The engine's knobs that come from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub allow_rebuild: bool,
}

/// What an undo record in the history names, so rollback finds the database.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoryUndo {
    pub engine: String,
    pub url_env: String,
    pub namespace: String,
    pub record: super::UndoRecord,
}

/// The engine's configuration for a manifest entry.
pub fn config(root: &Path, spec: &PostgresSpec, url: String, options: Options) -> anyhow::Result<Config> {
    let schema = crate::fsutil::resolve(root, &spec.schema)?;
    let ddl = std::fs::read_to_string(&schema).with_context(|| format!("cannot read {}", spec.schema.display()))?;
    let mut config = Config::new(format!("db:{}", spec.url_env), url, ddl);
    config.ddl_name = spec.schema.display().to_string();
    config.namespace = spec.namespace.clone();
    config.lock_timeout = spec.lock_timeout;
    config.allow_rebuild = options.allow_rebuild;
    config.ignore = spec.convergence.ignore.clone();
    config.renames = spec
        .convergence
        .renames
        .iter()
        .map(|r| match (&r.column, &r.to_column) {
            (Some(c), Some(to)) => Rename { from: format!("{}.{c}", r.table), to: format!("{}.{to}", r.to_table) },
            _ => Rename { from: r.table.clone(), to: r.to_table.clone() },
        })
        .collect();
    config.checks = spec
        .checks
        .iter()
        .map(|c| DataCheck {
            name: c.name.clone(),
            sql: c.sql.clone(),
            fix: c.fix.clone(),
            severity: severity_of(c.severity.or(spec.severity).unwrap_or(Severity::Critical)),
        })
        .collect();
    Ok(config)
}

fn severity_of(s: Severity) -> super::Severity {
    match s {
        Severity::Critical => super::Severity::Critical,
        Severity::Warning => super::Severity::Warning,
    }
}

/// Inspects one `[[database]] url_env` entry. `url` is the variable's value,
/// if set. A DDL file that is refused or does not load stops the run.
pub fn inspect(root: &Path, spec: &PostgresSpec, url: Option<String>, options: Options) -> anyhow::Result<Inspection> {
    let base = format!("db:{}", spec.url_env);
    let critical = spec.severity.unwrap_or(Severity::Critical);
    let mut out = Inspection::default();
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        let message = format!("{} is not set (process environment or .env); nothing was compared", spec.url_env);
        out.claims.push(Claim::new(base, critical, message));
        return Ok(out);
    };
    if !url::is_postgres_url(&url) {
        let message = format!("{} does not hold a postgres:// or postgresql:// URL", spec.url_env);
        out.claims.push(Claim::new(base, critical, message));
        return Ok(out);
    }
    let config = config(root, spec, url, options)?;
    let report = match super::inspect(&config) {
        Ok(report) => report,
        Err(Error::Schema(message)) => bail!("{message}"),
        Err(Error::Unreachable(message)) => {
            out.claims.push(Claim::new(base, critical, message));
            return Ok(out);
        }
        Err(Error::Server(message)) => {
            out.claims.push(Claim::new(base, critical, format!("cannot compare the schema: {message}")));
            return Ok(out);
        }
    };
    out.passed = report.passed.clone();
    let fixable: Vec<(usize, String)> = report
        .differences
        .iter()
        .enumerate()
        .filter(|(_, d)| d.step.is_some())
        .map(|(i, d)| (i, d.id.clone()))
        .collect();
    let tokens: Vec<Arc<()>> = fixable.iter().map(|_| Arc::new(())).collect();
    let holders = fixable.iter().zip(&tokens).map(|((_, id), t)| (id.clone(), Arc::downgrade(t))).collect();
    let db = Arc::new(Database { spec_env: spec.url_env.clone(), config, holders, outcome: Mutex::new(None), report });
    let mut tokens = fixable.iter().map(|(i, _)| *i).zip(tokens).collect::<HashMap<usize, Arc<()>>>();
    for (i, d) in db.report.differences.iter().enumerate() {
        let engine = match d.severity {
            super::Severity::Critical => Severity::Critical,
            super::Severity::Warning => Severity::Warning,
        };
        let is_check = d.id.starts_with(&format!("{base}:check:"));
        let severity = if is_check { engine } else { spec.severity.unwrap_or(engine) };
        let mut claim = Claim::new(d.id.clone(), severity, d.message.clone());
        if let (Some(step), Some(token)) = (d.step, tokens.remove(&i)) {
            let op = HealOp { db: db.clone(), id: d.id.clone(), token };
            claim = claim.with_repair(db.report.steps[step].label.clone(), Box::new(op));
        }
        out.claims.push(claim);
    }
    Ok(out)
}

/// One database's report, shared by the operations of its findings.
pub struct Database {
    spec_env: String,
    config: Config,
    report: Report,
    /// Each fixable finding's ID and a weak link to its operation's token:
    /// a finding dropped by `--only` drops its operation, and its step.
    holders: Vec<(String, Weak<()>)>,
    /// Filled by the first `apply`: every action by finding ID, or why the
    /// heal could not run at all.
    outcome: Mutex<Option<Result<HashMap<String, apply::Action>, String>>>,
}

impl Database {
    fn planned(&self) -> Vec<String> {
        self.holders.iter().filter(|(_, w)| w.strong_count() > 0).map(|(id, _)| id.clone()).collect()
    }
}

/// The fix of one finding.
pub struct HealOp {
    db: Arc<Database>,
    id: String,
    /// Alive while this operation is planned.
    #[allow(dead_code)] // held for its weak references, never read
    token: Arc<()>,
}

impl CustomOp for HealOp {
    /// The first planned finding of a database prints the whole script (one
    /// lock, one transaction, then the concurrent builds); the others say
    /// where their statements are.
    fn describe(&self) -> Vec<String> {
        let planned = self.db.planned();
        if planned.first() != Some(&self.id) {
            let first = planned.first().cloned().unwrap_or_default();
            return vec![format!("-- part of the script printed for {first}")];
        }
        let mut lines = vec![format!("-- {}: every planned change, as heal runs it", self.db.config.id_base)];
        lines.extend(self.db.report.script(&self.db.config, |id| planned.iter().any(|p| p == id)));
        lines
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let mut outcome = self.db.outcome.lock().unwrap_or_else(|p| p.into_inner());
        if outcome.is_none() {
            let planned = self.db.planned();
            let result =
                apply::heal_after(&self.db.config, &|id| planned.iter().any(|p| p == id), Some(&self.db.report))
                    .map(|(actions, _)| actions.into_iter().map(|a| (a.id.clone(), a)).collect())
                    .map_err(|e| e.to_string());
            *outcome = Some(result);
        }
        let actions = match outcome.as_ref() {
            Some(Ok(actions)) => actions,
            Some(Err(message)) => bail!("{message}; nothing was changed"),
            None => bail!("the heal of this database did not run"),
        };
        let Some(action) = actions.get(&self.id) else {
            return Ok("already as the schema file says (another process healed it)".into());
        };
        let undo = action.undo.clone().map(|record| HistoryUndo {
            engine: "postgres".into(),
            url_env: self.db.spec_env.clone(),
            namespace: self.db.config.namespace.clone(),
            record,
        });
        ctx.record_database(action.sql.clone(), undo.and_then(|u| serde_json::to_value(u).ok()));
        match &action.outcome {
            apply::Outcome::Done(detail) => Ok(detail.clone()),
            apply::Outcome::AlreadyConverged => Ok("already as the schema file says".into()),
            apply::Outcome::Failed(m) | apply::Outcome::Busy(m) => bail!("{m}"),
        }
    }
}
