//! A dry run of the plan on an empty copy of the live schema, in memory,
//! at check time: a step SQLite would refuse (an index on a column heal
//! cannot add yet, a view over a table that stays missing…) loses its fix
//! instead of rolling back every other change of the database at heal
//! time. Only failures that depend on the rows (UNIQUE over duplicates, a
//! CHECK that old rows break) are left for the real transaction to catch.

use rusqlite::Connection;

use super::plan::{Sql, Step, StepKind};
use super::units::UnitKind;

/// For each step, `None` when it runs on the live schema after the steps
/// before it, or SQLite's message when it does not.
pub fn verify(live: &Connection, steps: &[Step]) -> anyhow::Result<Vec<Option<String>>> {
    let scratch = super::desired::sandbox()?;
    scratch.execute_batch("PRAGMA foreign_keys=OFF; PRAGMA legacy_alter_table=ON;")?;
    for statement in live_statements(live)? {
        // What cannot be rebuilt here (an unknown collation…) is not checked.
        let _ = scratch.execute_batch(&statement);
    }
    let mut outcome = Vec::with_capacity(steps.len());
    for step in steps {
        // Each step with the pragmas of its unit, as heal runs it.
        let (statements, kind) = match &step.kind {
            StepKind::Schema(sql) => (sql, UnitKind::Schema),
            StepKind::Rebuild { sql, .. } => (sql, UnitKind::Rebuild),
            StepKind::DataFix { .. } => {
                outcome.push(None);
                continue;
            }
        };
        scratch.execute_batch(&kind.pragmas().join(" "))?;
        scratch.execute_batch("SAVEPOINT verify")?;
        let failed = statements.iter().find_map(|s| match s {
            Sql::Exec(text) | Sql::Copy { sql: text, .. } | Sql::Expect { sql: text, .. } => {
                scratch.execute_batch(text).err().map(|e| e.to_string())
            }
            Sql::ForeignKeyCheck | Sql::Note(_) => None,
        });
        let end = if failed.is_some() { "ROLLBACK TO verify; RELEASE verify" } else { "RELEASE verify" };
        scratch.execute_batch(end)?;
        outcome.push(failed);
    }
    Ok(outcome)
}

/// The live schema's statements in an order that runs: tables, indexes,
/// views, triggers, each in creation order.
pub fn live_statements(live: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = live.prepare(
        r"SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
          ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_cannot_run_is_named_and_later_steps_still_checked() {
        let live = Connection::open_in_memory().unwrap();
        live.execute_batch("CREATE TABLE t(a);").unwrap();
        let steps = vec![
            Step::schema("index", vec!["CREATE INDEX i ON t(b)".into()]),
            Step::schema("column", vec!["ALTER TABLE t ADD COLUMN c".into()]),
            Step::schema("index on c", vec!["CREATE INDEX j ON t(c)".into()]),
        ];
        let outcome = verify(&live, &steps).unwrap();
        assert!(outcome[0].as_deref().is_some_and(|e| e.contains("no such column: b")));
        assert_eq!(outcome[1..], [None, None]);
    }
}
