//! The changes a database needs, as data: each step says how it must run
//! to stay online-safe, the exact SQL `heal --dry-run` prints, and how a
//! rollback could undo it.

use std::time::Duration;

/// How a step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// DDL in the one shared transaction (renames, CREATE TABLE, ADD
    /// COLUMN, views, enum values, SET DEFAULT, and with `--allow-rebuild`
    /// type changes): all or nothing. Statements of all such steps run
    /// sorted by stage, so that a table is created before the foreign key
    /// that names it, whichever finding asked for which.
    Transactional(Vec<Stmt>),
    /// `CREATE INDEX CONCURRENTLY`, outside any transaction. `drop_first`
    /// removes an INVALID leftover of an interrupted build; `then` runs
    /// after the build succeeded (attach as a constraint, swap names).
    Concurrent { index: String, drop_first: Option<String>, create: String, then: Vec<String> },
    /// A constraint added `NOT VALID` (brief lock), validated without
    /// blocking writes, then `finish` (e.g. `SET NOT NULL`, which the valid
    /// check lets the server do without a scan). `cleanup` undoes `add`
    /// when validation fails, so nothing is left half-applied.
    /// `add` is `None` when a constraint is already there, `NOT VALID`.
    Validated { add: Option<String>, validate: String, finish: Vec<String>, cleanup: String },
    /// A data check's fix, under a savepoint, the check re-run after it.
    DataFix { check: String, fix: String },
}

/// One statement of the shared transaction and where it goes in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub stage: Stage,
    /// Order within the stage (the scratch's creation order for views).
    pub order: u32,
    pub sql: String,
}

/// Stages of the shared transaction, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Rename,
    Extension,
    Type,
    EnumValue,
    Sequence,
    Table,
    Column,
    Alter,
    OwnedBy,
    Constraint,
    Index,
    View,
    Seed,
}

impl Stmt {
    pub fn new(stage: Stage, sql: impl Into<String>) -> Stmt {
        Stmt { stage, order: 0, sql: sql.into() }
    }
}

/// What a rollback may do for a step heal applied.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Undo {
    /// Taken first, in the undo's transaction, so the guard's answer holds
    /// until the change (e.g. `LOCK TABLE t IN SHARE MODE`).
    #[serde(default)]
    pub lock: Option<String>,
    /// A query returning one boolean: true when undoing is still safe (for
    /// example, the table heal created holds no rows).
    pub guard: Option<String>,
    /// Said when the guard returns false.
    pub guard_fails: String,
    /// The statements that undo the step.
    pub sql: Vec<String>,
    /// Run outside a transaction (`DROP INDEX CONCURRENTLY`).
    pub concurrent: bool,
}

/// A change repairing one or more findings.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The fix's action for reports, e.g. `add column "email"`.
    pub label: String,
    pub kind: StepKind,
    /// `None`: the step cannot be undone, and `refusal` says why.
    pub undo: Option<Undo>,
    pub refusal: String,
}

impl Step {
    pub fn new(label: impl Into<String>, kind: StepKind) -> Step {
        Step { label: label.into(), kind, undo: None, refusal: "this change cannot be undone safely".into() }
    }

    pub fn with_undo(mut self, undo: Undo) -> Step {
        self.undo = Some(undo);
        self
    }

    pub fn refusing(mut self, why: impl Into<String>) -> Step {
        self.refusal = why.into();
        self
    }

    /// Runs inside the shared transaction?
    pub fn in_transaction(&self) -> bool {
        matches!(self.kind, StepKind::Transactional(_))
    }

    /// Order of execution: the shared transaction, concurrent index builds,
    /// validations, data fixes.
    pub fn rank(&self) -> u8 {
        match self.kind {
            StepKind::Transactional(_) => 0,
            StepKind::Concurrent { .. } => 1,
            StepKind::Validated { .. } => 2,
            StepKind::DataFix { .. } => 3,
        }
    }

    /// The exact statements, as the dry run prints them.
    pub fn lines(&self) -> Vec<String> {
        let end = |s: &String| format!("{};", s.trim_end_matches(';'));
        match &self.kind {
            StepKind::Transactional(sql) => sql.iter().map(|s| end(&s.sql)).collect(),
            StepKind::Concurrent { drop_first, create, then, .. } => {
                drop_first.iter().chain(std::iter::once(create)).chain(then).map(end).collect()
            }
            StepKind::Validated { add, validate, finish, cleanup } => {
                let mut lines: Vec<String> = add.iter().map(end).collect();
                lines.push(end(validate));
                lines.extend(finish.iter().map(end));
                lines.push(format!("-- if the validation fails: {}", end(cleanup)));
                lines
            }
            StepKind::DataFix { check, fix } => vec![
                "SAVEPOINT preflight_data_fix;".into(),
                end(&fix.trim().to_string()),
                "-- the check is run again; rows left: ROLLBACK TO SAVEPOINT preflight_data_fix;".into(),
                format!("--   {}", check.trim()),
                "RELEASE SAVEPOINT preflight_data_fix;".into(),
            ],
        }
    }
}

/// The settings every statement runs under, as SQL.
pub fn timeouts(lock_timeout: Duration, statement_timeout: Duration) -> String {
    format!(
        "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'",
        lock_timeout.as_millis().max(1),
        statement_timeout.as_millis().max(1)
    )
}

/// The statements of the shared transaction, in the order they run.
pub fn transaction<'a>(steps: &[&'a Step]) -> Vec<&'a Stmt> {
    let mut all: Vec<&Stmt> = steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Transactional(sql) => Some(sql.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    all.sort_by_key(|s| (s.stage, s.order));
    all
}

/// The dry run's full script for the planned steps, in execution order.
pub fn script(
    steps: &[&Step],
    namespace_path: &str,
    lock_timeout: Duration,
    statement_timeout: Duration,
) -> Vec<String> {
    let mut lines = vec![
        "SELECT pg_advisory_lock(<key of database and namespace>);  -- replicas wait here, then validate".to_string(),
        format!("{};", timeouts(lock_timeout, statement_timeout).replace("; ", ";\n")),
        format!("SET search_path = {namespace_path};"),
    ];
    let mut ordered: Vec<&&Step> = steps.iter().collect();
    ordered.sort_by_key(|s| s.rank());
    let in_tx = transaction(steps);
    if !in_tx.is_empty() {
        lines.push("BEGIN;".into());
        lines.extend(in_tx.iter().map(|s| format!("{};", s.sql.trim_end_matches(';'))));
        lines.push("COMMIT;".into());
    }
    for step in ordered.iter().filter(|s| !s.in_transaction()) {
        lines.extend(step.lines());
    }
    lines.push("SELECT pg_advisory_unlock(<key>);".into());
    lines
}

/// An undo that is always safe (renames, defaults, constraints).
pub fn undo_plain(sql: Vec<String>) -> Undo {
    Undo { lock: None, guard: None, guard_fails: String::new(), sql, concurrent: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_puts_transactional_steps_together_and_indexes_outside() {
        let index = Step::new(
            "create index",
            StepKind::Concurrent {
                index: "i".into(),
                drop_first: None,
                create: "CREATE INDEX CONCURRENTLY i ON t (a)".into(),
                then: vec![],
            },
        );
        let column = Step::new(
            "add column",
            StepKind::Transactional(vec![Stmt::new(Stage::Column, "ALTER TABLE t ADD COLUMN a integer")]),
        );
        let lines = script(&[&index, &column], "public", Duration::from_secs(2), Duration::from_secs(60));
        let begin = lines.iter().position(|l| l == "BEGIN;").unwrap();
        assert_eq!(lines[begin + 1], "ALTER TABLE t ADD COLUMN a integer;");
        assert_eq!(lines[begin + 2], "COMMIT;");
        assert_eq!(lines[begin + 3], "CREATE INDEX CONCURRENTLY i ON t (a);");
        assert!(lines[1].contains("lock_timeout = '2000ms'"));
    }

    #[test]
    fn validated_steps_say_what_happens_on_failure() {
        let step = Step::new(
            "set not null",
            StepKind::Validated {
                add: Some("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID".into()),
                validate: "ALTER TABLE t VALIDATE CONSTRAINT c".into(),
                finish: vec!["ALTER TABLE t ALTER COLUMN a SET NOT NULL".into()],
                cleanup: "ALTER TABLE t DROP CONSTRAINT c".into(),
            },
        );
        assert_eq!(step.lines().len(), 4);
        assert!(step.lines()[3].starts_with("-- if the validation fails"));
    }
}
