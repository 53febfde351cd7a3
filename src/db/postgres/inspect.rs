//! validate: ONE transaction, rolled back at the end.
//!
//! 1. Under a savepoint made read-only, the live namespace is read from the
//!    catalog and the data checks run; rolling the savepoint back makes the
//!    transaction writable again (PostgreSQL only forbids the other way).
//! 2. The DDL is loaded into a scratch namespace (`desired.rs`) and read
//!    with the same queries.
//! 3. The comparison may ask the server questions (would this ADD COLUMN
//!    rewrite the table? does that table hold rows?), answered in
//!    savepoints of the same transaction.
//! 4. ROLLBACK: the scratch namespace and everything in it never existed.

use std::sync::Arc;

use postgres::{Client, IsolationLevel, Transaction};

use super::catalog::{self, Quoter};
use super::connect::{connect, describe};
use super::desired::{self, scratch_name};
use super::diff::{self, Probe};
use super::plan::{undo_plain, Stage, Step, StepKind, Stmt};
use super::url::Secret;
use super::{datacheck, marker, Config, Difference, Error, Report};

/// Compares the live namespace with the DDL; changes nothing.
pub fn inspect(config: &Config) -> Result<Report, Error> {
    let mut session = connect(&config.url).map_err(Error::Unreachable)?;
    inspect_with(&mut session.client, config, &session.secret, None)
}

/// The same on an open session (heal re-inspects under its lock). When the
/// live catalog is still exactly what `earlier` was computed from, its
/// schema comparison is reused instead of loading the DDL again (the data
/// checks always run afresh).
pub fn inspect_with(
    client: &mut Client,
    config: &Config,
    secret: &Secret,
    earlier: Option<&Report>,
) -> Result<Report, Error> {
    let server = |e: postgres::Error| Error::Server(secret.scrub(&describe(&e)));
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).start().map_err(server)?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = '{}ms'",
        config.lock_timeout.as_millis().max(1),
        config.statement_timeout.as_millis().max(1)
    ))
    .map_err(server)?;
    let pid: i32 = tx.query_one("SELECT pg_catalog.pg_backend_pid()", &[]).map_err(server)?.get(0);
    let ns = config.namespace.as_str();

    tx.batch_execute("SAVEPOINT preflight_live; SET LOCAL transaction_read_only = on").map_err(server)?;
    let q = Quoter::load(&mut tx).map_err(server)?;
    let tail = search_tail(&mut tx, ns, &q).map_err(server)?;
    let namespace_exists: bool = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", &[&ns])
        .map_err(server)?
        .get(0);
    tx.batch_execute(&format!("SET LOCAL search_path = {}{tail}", q.ident(ns))).map_err(server)?;
    let mut live = catalog::read(&mut tx, ns).map_err(server)?;
    let live_extensions = catalog::extensions(&mut tx).map_err(server)?;
    let checks: Vec<datacheck::Outcome> = config.checks.iter().map(|c| datacheck::run(&mut tx, &c.sql)).collect();
    let search_path = format!("{}{tail}", q.ident(ns));
    let version: i32 = tx.query_one("SELECT current_setting('server_version_num')::int", &[]).map_err(server)?.get(0);
    let keys = (marker::inputs_key(config, version), marker::catalog_key(&live, &live_extensions, &search_path));
    let recorded = marker::read(&mut tx, ns).map_err(server)?;
    tx.batch_execute("ROLLBACK TO SAVEPOINT preflight_live").map_err(server)?;

    let answer = recorded.filter(|(k, _)| namespace_exists && *k == keys).map(|(_, a)| a);
    let fast = answer.is_some();
    let checks_prefix = format!("{}:check:", config.id_base);
    let earlier = earlier.filter(|e| namespace_exists && !e.fast && e.keys == keys);
    let (passed, differences, steps, desired) = if let Some(answer) = answer {
        // Recorded by heal for exactly these inputs and this live schema.
        (answer.passed.iter().skip(1).cloned().collect(), answer.differences(), Vec::new(), None)
    } else if let Some(earlier) = earlier {
        let schema_only = |id: &String| !id.starts_with(&checks_prefix) && *id != config.id_base;
        let passed = earlier.passed.iter().filter(|id| schema_only(id)).cloned().collect();
        let differences = earlier.differences.iter().filter(|d| schema_only(&d.id)).cloned().collect();
        (passed, differences, earlier.steps.clone(), earlier.desired.clone())
    } else {
        let scratch = scratch_name(pid);
        let desired = desired::load(&mut tx, &config.ddl, &config.ddl_name, ns, &scratch, &tail)
            .map_err(|e| Error::Schema(secret.scrub(&e)))?;
        let mut probe = TxProbe { tx: &mut tx, scratch: &scratch, namespace: ns, q: &q };
        let out = diff::compare(&mut live, &live_extensions, &desired, config, &q, &mut probe)
            .map_err(|e| Error::Server(secret.scrub(&e)))?;
        (out.passed, out.differences, out.steps, Some(Arc::new(desired)))
    };
    tx.rollback().map_err(server)?;

    let mut report = Report {
        passed: vec![config.id_base.clone()],
        differences: Vec::new(),
        steps,
        search_path,
        keys,
        fast,
        desired,
    };
    if !namespace_exists {
        let step = Step::new(
            format!("create schema {ns}"),
            StepKind::Transactional(vec![Stmt::new(
                Stage::Rename,
                format!("CREATE SCHEMA IF NOT EXISTS {}", q.ident(ns)),
            )]),
        )
        .with_undo(undo_plain(vec![format!("DROP SCHEMA {} RESTRICT", q.ident(ns))]));
        report.steps.push(step);
        let id = format!("{}:namespace:{ns}", config.id_base);
        let step = Some(report.steps.len() - 1);
        report.differences.push(Difference {
            id,
            severity: super::Severity::Critical,
            message: "schema does not exist".into(),
            step,
        });
    }
    report.passed.extend(passed);
    report.differences.extend(differences);
    for (check, outcome) in config.checks.iter().zip(checks) {
        let id = format!("{}:check:{}", config.id_base, check.name);
        let (message, step) = match outcome {
            datacheck::Outcome::Clean => {
                report.passed.push(id);
                continue;
            }
            datacheck::Outcome::Failed(e) => (format!("the check query fails: {}", secret.scrub(&e)), None),
            datacheck::Outcome::Rows { count, first } => {
                let step = check.fix.as_ref().map(|fix| {
                    report.steps.push(
                        Step::new(
                            "run the check's fix",
                            StepKind::DataFix { check: check.sql.clone(), fix: fix.clone() },
                        )
                        .refusing("a data fix is not undone"),
                    );
                    report.steps.len() - 1
                });
                (datacheck::message(count, &first), step)
            }
        };
        report.differences.push(Difference { id, severity: check.severity, message, step });
    }
    Ok(report)
}

/// The recorded answer for the live namespace as it is now, compared with
/// an already loaded DDL: `None` when heal left something to repair (or a
/// question only the scratch namespace could answer came up). One
/// read-only transaction, no DDL load: heal checks its own result with it.
pub fn converged_answer(
    client: &mut Client,
    config: &Config,
    desired: &desired::Desired,
) -> Result<Option<(marker::Keys, marker::Answer)>, postgres::Error> {
    let ns = config.namespace.as_str();
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
    let q = Quoter::load(&mut tx)?;
    let tail = search_tail(&mut tx, ns, &q)?;
    let search_path = format!("{}{tail}", q.ident(ns));
    tx.batch_execute(&format!("SET LOCAL search_path = {search_path}"))?;
    let mut live = catalog::read(&mut tx, ns)?;
    let extensions = catalog::extensions(&mut tx)?;
    let version: i32 = tx.query_one("SELECT current_setting('server_version_num')::int", &[])?.get(0);
    tx.commit()?;
    let keys = (marker::inputs_key(config, version), marker::catalog_key(&live, &extensions, &search_path));
    let Ok(out) = diff::compare(&mut live, &extensions, desired, config, &q, &mut NoProbe) else {
        return Ok(None);
    };
    if !out.steps.is_empty() {
        return Ok(None);
    }
    let mut passed = vec![config.id_base.clone()];
    passed.extend(out.passed);
    let answer = marker::Answer {
        passed,
        differences: out
            .differences
            .iter()
            .map(|d| (d.id.clone(), d.severity == super::Severity::Critical, d.message.clone()))
            .collect(),
    };
    Ok(Some((keys, answer)))
}

/// Answers nothing: a comparison that needs the scratch namespace stops.
struct NoProbe;

impl Probe for NoProbe {
    fn add_column_rewrites(&mut self, _definition: &str) -> Result<bool, String> {
        Err("needs the scratch namespace".into())
    }

    fn has_rows(&mut self, _table: &str) -> Result<bool, String> {
        Err("needs the scratch namespace".into())
    }
}

/// `, "ext_schema", …`: schemas holding installed extensions (other than
/// the namespace itself and pg_catalog), so the DDL can name their types
/// and functions unqualified, as the application does.
pub fn search_tail(tx: &mut Transaction<'_>, ns: &str, q: &Quoter) -> Result<String, postgres::Error> {
    let rows = tx.query(
        "SELECT DISTINCT n.nspname::text FROM pg_catalog.pg_extension e \
         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
         WHERE n.nspname NOT IN ($1, 'pg_catalog') ORDER BY 1",
        &[&ns],
    )?;
    Ok(rows.iter().map(|r| format!(", {}", q.ident(r.get::<_, &str>(0)))).collect())
}

/// Answers the comparison's questions inside validate's transaction.
struct TxProbe<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    scratch: &'a str,
    namespace: &'a str,
    q: &'a Quoter,
}

impl Probe for TxProbe<'_, '_> {
    fn add_column_rewrites(&mut self, definition: &str) -> Result<bool, String> {
        // A one-row table in the scratch gets the column; a rewrite shows as
        // a new relfilenode. Asking the server beats guessing volatility.
        let table = format!("{}.\"preflight probe\"", self.q.ident(self.scratch));
        let run = |tx: &mut Transaction<'_>| -> Result<bool, postgres::Error> {
            tx.batch_execute(&format!(
                "CREATE TABLE {table} (preflight_probe integer); INSERT INTO {table} VALUES (1)"
            ))?;
            let node = "SELECT relfilenode FROM pg_catalog.pg_class WHERE oid = $1::text::regclass";
            let before: u32 = tx.query_one(node, &[&table])?.get(0);
            tx.batch_execute(&format!("ALTER TABLE {table} ADD COLUMN {definition}"))?;
            let after: u32 = tx.query_one(node, &[&table])?.get(0);
            Ok(before != after)
        };
        self.tx.batch_execute("SAVEPOINT preflight_probe").map_err(|e| describe(&e))?;
        let answer = run(self.tx);
        self.tx.batch_execute("ROLLBACK TO SAVEPOINT preflight_probe").map_err(|e| describe(&e))?;
        // A column the server will not add is not planned as a cheap one.
        Ok(answer.unwrap_or(true))
    }

    fn has_rows(&mut self, table: &str) -> Result<bool, String> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {}.{})", self.q.ident(self.namespace), self.q.ident(table));
        self.tx
            .batch_execute("SAVEPOINT preflight_rows; SET LOCAL transaction_read_only = on")
            .map_err(|e| describe(&e))?;
        let answer = self.tx.query_one(&sql, &[]).map(|r| r.get::<_, bool>(0));
        self.tx.batch_execute("ROLLBACK TO SAVEPOINT preflight_rows").map_err(|e| describe(&e))?;
        // When the question cannot be answered, assume rows: no unsafe plan.
        Ok(answer.unwrap_or(true))
    }
}
