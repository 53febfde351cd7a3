//! The desired schema: the DDL file loaded by the server itself into a
//! scratch namespace, inside the caller's transaction, which the caller
//! rolls back. Nothing of it survives; nothing here parses SQL.
//!
//! What a statement does is learned from the server:
//! - only statements that declare (`CREATE`, `ALTER`, `COMMENT`, `INSERT`)
//!   are sent at all — a `DROP`, `UPDATE`, `TRUNCATE`… is refused with its
//!   line before it could take a lock on a live object;
//! - a run of `ALTER` statements must leave every object the scratch held
//!   before it as it was (the catalog is read before and after: an `ALTER`
//!   that drops or changes something is refused, one that adds is kept);
//! - an `INSERT` must add rows to a table of the scratch (the server's
//!   per-transaction statistics say which), and becomes that table's seed;
//! - nothing outside the scratch may change: the catalog rows of every
//!   other namespace are fingerprinted before and after loading, and the
//!   per-transaction statistics must show no write to another table.
//!
//! When a run-level check fails, the run is replayed one statement at a
//! time to name the line.

use std::collections::{BTreeMap, BTreeSet};

use postgres::Transaction;

use super::catalog::{self, Quoter, Schema};
use super::connect::describe;
use super::split::{self, Statement};

/// The DDL as the server understood it.
#[derive(Debug, Default)]
pub struct Desired {
    pub schema: Schema,
    /// Extensions the file creates (`CREATE EXTENSION [IF NOT EXISTS] name`).
    pub extensions: Vec<String>,
    /// Seed `INSERT` statements, by the table they fill.
    pub seeds: BTreeMap<String, Vec<String>>,
    /// How many rows the seeds put in each table.
    pub seed_rows: BTreeMap<String, i64>,
}

/// The scratch namespace: unique per backend, so concurrent validations
/// never wait on each other's catalog entries.
pub fn scratch_name(backend_pid: i32) -> String {
    format!("preflight_scratch_{backend_pid}")
}

/// Loads `ddl` into a new scratch namespace in `tx` and reads it back. The
/// caller rolls `tx` (or a savepoint around this call) back.
pub fn load(
    tx: &mut Transaction<'_>,
    ddl: &str,
    ddl_name: &str,
    namespace: &str,
    scratch: &str,
    search_tail: &str,
) -> Result<Desired, String> {
    let fail = |line: usize, what: String| format!("{ddl_name} line {line}: {}", unscratch(&what, scratch, namespace));
    let statements = split::split(ddl).map_err(|e| format!("{ddl_name} {e}"))?;
    for s in &statements {
        if !declares(s) {
            let shown: Vec<&str> = s.words.iter().take(2).map(String::as_str).collect();
            return Err(fail(
                s.line,
                format!(
                    "{} is refused: a schema file only declares objects (CREATE, ALTER … ADD, COMMENT ON, \
                     INSERT seed rows); nothing in it may change or remove data or objects",
                    shown.join(" ")
                ),
            ));
        }
    }
    let q = Quoter::default();
    let server = |e: postgres::Error| describe(&e);
    tx.batch_execute(&format!(
        "CREATE SCHEMA {}; SET LOCAL search_path = {}{search_tail}",
        q.ident(scratch),
        q.ident(scratch)
    ))
    .map_err(server)?;
    let outside_before = outside_fingerprint(tx, scratch).map_err(server)?;
    tx.batch_execute("SAVEPOINT preflight_load").map_err(server)?;
    let mut desired = Desired::default();
    let mut i = 0;
    while i < statements.len() {
        let s = &statements[i];
        if s.starts_with(&["ALTER"]) {
            // A run of ALTERs is checked as a whole, and replayed only if it fails.
            let end =
                (i..statements.len()).find(|&j| !statements[j].starts_with(&["ALTER"])).unwrap_or(statements.len());
            run_alters(tx, &statements[i..end], namespace, scratch).map_err(|(line, e)| fail(line, e))?;
            i = end;
            continue;
        }
        if s.starts_with(&["INSERT"]) {
            let (table, rows) = run_insert(tx, s, scratch).map_err(|e| fail(s.line, e))?;
            desired.seeds.entry(table.clone()).or_default().push(s.text.clone());
            *desired.seed_rows.entry(table).or_default() += rows;
        } else {
            tx.batch_execute(&s.text).map_err(|e| fail(s.line, describe(&e)))?;
            if let Some(name) = extension_name(s) {
                desired.extensions.push(name);
            }
        }
        i += 1;
    }
    let outside_after = outside_fingerprint(tx, scratch).map_err(server)?;
    if outside_before != outside_after {
        let line = find_outside_writer(tx, &statements, scratch).unwrap_or(statements.first().map_or(1, |s| s.line));
        return Err(fail(
            line,
            "the statement creates or changes something outside the schema being compared; \
             names in the schema file must not be schema-qualified"
                .into(),
        ));
    }
    desired.schema = catalog::read(tx, scratch).map_err(server)?;
    Ok(desired)
}

/// The statement kinds a schema file may hold.
fn declares(s: &Statement) -> bool {
    ["CREATE", "ALTER", "COMMENT", "INSERT"].iter().any(|w| s.starts_with(&[w]))
}

/// `CREATE EXTENSION [IF NOT EXISTS] name` → `name`.
fn extension_name(s: &Statement) -> Option<String> {
    if !s.starts_with(&["CREATE", "EXTENSION"]) {
        return None;
    }
    let skip = if s.starts_with(&["CREATE", "EXTENSION", "IF", "NOT", "EXISTS"]) { 5 } else { 2 };
    let word = s.words.get(skip)?;
    Some(match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => word.to_lowercase(),
    })
}

/// Runs consecutive ALTERs; anything of the scratch they remove or change
/// fails the run with the line of the statement that did it.
fn run_alters(
    tx: &mut Transaction<'_>,
    run: &[Statement],
    namespace: &str,
    scratch: &str,
) -> Result<(), (usize, String)> {
    let first = run[0].line;
    let server = |e: postgres::Error| (first, describe(&e));
    let before = items(tx, scratch).map_err(server)?;
    tx.batch_execute("SAVEPOINT preflight_alters").map_err(server)?;
    let mut failed = None;
    for s in run {
        if let Err(e) = tx.batch_execute(&s.text) {
            failed = Some((s.line, describe(&e)));
            break;
        }
    }
    if let Some(failure) = failed {
        return Err(failure);
    }
    let after = items(tx, scratch).map_err(server)?;
    if before.is_subset(&after) {
        return tx.batch_execute("RELEASE SAVEPOINT preflight_alters").map_err(server);
    }
    // Replay one at a time to name the statement.
    tx.batch_execute("ROLLBACK TO SAVEPOINT preflight_alters").map_err(server)?;
    let mut seen = before;
    for s in run {
        tx.batch_execute(&s.text).map_err(|e| (s.line, describe(&e)))?;
        let now = items(tx, scratch).map_err(|e| (s.line, describe(&e)))?;
        if let Some(lost) = seen.difference(&now).next() {
            let lost = unscratch(lost, scratch, namespace);
            return Err((s.line, format!("the statement removes or changes {lost}; a schema file only adds")));
        }
        seen = now;
    }
    Ok(())
}

/// Runs a seed INSERT and returns the scratch table it filled and how many
/// rows it added.
fn run_insert(tx: &mut Transaction<'_>, s: &Statement, scratch: &str) -> Result<(String, i64), String> {
    let counts = |tx: &mut Transaction<'_>| -> Result<BTreeMap<String, i64>, String> {
        let rows = tx
            .query(
                "SELECT relname::text, n_tup_ins + n_tup_upd + n_tup_del FROM pg_catalog.pg_stat_xact_user_tables \
                 WHERE schemaname = $1",
                &[&scratch],
            )
            .map_err(|e| describe(&e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    };
    let before = counts(tx)?;
    tx.batch_execute(&s.text).map_err(|e| describe(&e))?;
    let after = counts(tx)?;
    let filled: Vec<(&String, i64)> = after
        .iter()
        .map(|(t, n)| (t, n - before.get(t).copied().unwrap_or(0)))
        .filter(|(_, added)| *added > 0)
        .collect();
    match filled.as_slice() {
        [(table, rows)] => Ok(((*table).clone(), *rows)),
        [] => Err("the INSERT adds no row to a table this file creates; seed rows are only for those tables".into()),
        _ => Err("the INSERT writes to more than one table; a seed row statement fills one table".into()),
    }
}

/// Everything the scratch holds, one line per fact, so that "nothing was
/// removed or changed" is "the old set is a subset of the new one". Facts
/// an ALTER may add (a default, NOT NULL, OWNED BY) are lines of their own.
fn items(tx: &mut Transaction<'_>, scratch: &str) -> Result<BTreeSet<String>, postgres::Error> {
    let schema = catalog::read(tx, scratch)?;
    let mut out = BTreeSet::new();
    for (t, table) in &schema.tables {
        out.insert(format!("table {t}"));
        for c in &table.columns {
            out.insert(format!("column {t}.{} {} {}", c.name, c.data_type, c.collation.as_deref().unwrap_or("")));
            if c.not_null {
                out.insert(format!("NOT NULL of {t}.{}", c.name));
            }
            if let Some(d) = &c.default {
                out.insert(format!("the default of {t}.{} ({d})", c.name));
            }
            if let Some(g) = &c.generated {
                out.insert(format!("the generated column {t}.{} ({g})", c.name));
            }
            if !c.identity.is_empty() {
                out.insert(format!("the identity of {t}.{}", c.name));
            }
        }
        for (name, k) in &table.constraints {
            out.insert(format!("constraint {name} on {t} ({})", k.definition));
        }
    }
    for (name, i) in &schema.indexes {
        out.insert(format!("index {name} on {} ({})", i.table, i.shape));
    }
    for (name, v) in &schema.views {
        out.insert(format!("view {name} ({})", v.definition));
    }
    for (name, s) in &schema.sequences {
        out.insert(format!("sequence {name} ({} {} {} {} {})", s.data_type, s.start, s.increment, s.min, s.max));
        if let Some((t, c)) = &s.owned_by {
            out.insert(format!("OWNED BY {t}.{c} of sequence {name}"));
        }
    }
    for (name, labels) in &schema.enums {
        for (i, label) in labels.iter().enumerate() {
            out.insert(format!("value {label} of type {name} at {i}"));
        }
    }
    Ok(out)
}

/// A fingerprint of the catalog rows of the other user namespaces (the
/// system's own, TOAST and temporary ones aside: writing there needs a
/// superuser, and reading them costs most of the query): any row created,
/// updated or deleted there changes it. Writes to tables outside the scratch are counted from
/// the transaction's own statistics.
fn outside_fingerprint(tx: &mut Transaction<'_>, scratch: &str) -> Result<(i64, i64, i64), postgres::Error> {
    let row = tx.query_one(
        "WITH outside AS (SELECT oid FROM pg_catalog.pg_namespace \
             WHERE nspname <> $1 AND nspname NOT IN ('pg_catalog', 'information_schema') \
               AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%'), \
         rels AS (SELECT oid, xmin FROM pg_catalog.pg_class WHERE relnamespace IN (SELECT oid FROM outside)), \
         facts AS ( \
             SELECT xmin::text::bigint AS x FROM rels \
             UNION ALL SELECT xmin::text::bigint FROM pg_catalog.pg_type WHERE typnamespace IN (SELECT oid FROM outside) \
             UNION ALL SELECT xmin::text::bigint FROM pg_catalog.pg_proc WHERE pronamespace IN (SELECT oid FROM outside) \
             UNION ALL SELECT xmin::text::bigint FROM pg_catalog.pg_namespace \
             UNION ALL SELECT a.xmin::text::bigint FROM pg_catalog.pg_attribute a JOIN rels r ON r.oid = a.attrelid \
             UNION ALL SELECT k.xmin::text::bigint FROM pg_catalog.pg_constraint k JOIN rels r ON r.oid = k.conrelid \
             UNION ALL SELECT d.xmin::text::bigint FROM pg_catalog.pg_description d JOIN rels r ON r.oid = d.objoid) \
         SELECT count(*), coalesce(sum(x), 0)::bigint, \
             (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint \
              FROM pg_catalog.pg_stat_xact_user_tables WHERE schemaname <> $1) \
         FROM facts",
        &[&scratch],
    )?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Replays the statements one by one from before the load to find the
/// first that changes something outside the scratch.
fn find_outside_writer(tx: &mut Transaction<'_>, statements: &[Statement], scratch: &str) -> Option<usize> {
    tx.batch_execute("ROLLBACK TO SAVEPOINT preflight_load").ok()?;
    let mut before = outside_fingerprint(tx, scratch).ok()?;
    for s in statements {
        tx.batch_execute(&s.text).ok()?;
        let after = outside_fingerprint(tx, scratch).ok()?;
        if after != before {
            return Some(s.line);
        }
        before = after;
    }
    None
}

/// Server text with the scratch namespace's name replaced by the real one.
pub fn unscratch(text: &str, scratch: &str, namespace: &str) -> String {
    text.replace(scratch, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str) -> Statement {
        split::split(text).unwrap().remove(0)
    }

    #[test]
    fn only_declarations_are_sent() {
        for ok in
            ["CREATE TABLE t (a int)", "alter table t add constraint c check (a > 0)", "COMMENT ON TABLE t IS 'x'"]
        {
            assert!(declares(&statement(ok)), "{ok}");
        }
        for refused in ["DROP TABLE t", "UPDATE t SET a = 1", "DELETE FROM t", "TRUNCATE t", "GRANT ALL ON t TO x"] {
            assert!(!declares(&statement(refused)), "{refused}");
        }
        assert!(!declares(&statement("WITH d AS (DELETE FROM t) SELECT 1")));
    }

    #[test]
    fn extension_names_come_from_the_statement() {
        assert_eq!(extension_name(&statement("create extension if not exists citext")), Some("citext".into()));
        assert_eq!(
            extension_name(&statement("CREATE EXTENSION \"uuid-ossp\" SCHEMA public")),
            Some("uuid-ossp".into())
        );
        assert_eq!(extension_name(&statement("CREATE TABLE t()")), None);
    }
}
