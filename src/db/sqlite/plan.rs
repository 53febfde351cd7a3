//! The SQL a database needs, as data: steps the diff proposes, each tied to
//! the findings it repairs, and the exact lines `heal --dry-run` prints.
//! Steps run in units (`units.rs`): consecutive schema steps commit
//! together, each under its own savepoint; each rebuild and each data fix
//! is a transaction of its own.

use super::coldef::quote;
use super::desired::Desired;
use super::precheck::Need;

/// One statement of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Sql {
    /// Executed as written.
    Exec(String),
    /// The copy of a rebuild: executed, and the rows it inserted are the
    /// rows the report says were copied (checked against the old table).
    Copy { sql: String, from: String, to: String },
    /// A query that must return 0; otherwise the step fails with the
    /// count and the message.
    Expect { sql: String, message: String },
    /// `PRAGMA foreign_key_check` of the rebuilt table and the tables that
    /// reference it: a violation that was not there before undoes the step.
    ForeignKeyCheck,
    /// A remark shown in the plan, not run.
    Note(String),
}

impl Sql {
    pub fn line(&self) -> String {
        match self {
            Sql::Exec(text) | Sql::Copy { sql: text, .. } => format!("{};", text.trim_end_matches(';')),
            Sql::Expect { sql, .. } => format!("{sql};  -- must be 0, else the step is undone"),
            Sql::ForeignKeyCheck => "PRAGMA foreign_key_check;  -- a new violation undoes the step".into(),
            Sql::Note(text) => format!("-- {text}"),
        }
    }
}

/// A change to one database, repairing one or more findings.
#[derive(Debug, Clone)]
pub struct Step {
    /// The fix's action for reports, e.g. `add column "totp_secret"`.
    pub label: String,
    pub kind: StepKind,
    /// What the live rows must satisfy for the step to succeed, checked
    /// before the fix is offered and used to explain a failure.
    pub needs: Vec<Need>,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// Schema statements (CREATE, ALTER, DROP of an index/view/trigger).
    Schema(Vec<Sql>),
    /// The generalized ALTER TABLE of `table`: needs a backup, foreign
    /// keys off and legacy renames (see `rebuild.rs`).
    Rebuild { table: String, sql: Vec<Sql> },
    /// A data check's fix, with foreign keys enforced; the check and
    /// `PRAGMA foreign_key_check` are run after it, and rows left or a
    /// new violation undo the fix (only the fix).
    DataFix { check: String, fix: String },
}

impl Step {
    pub fn schema(label: impl Into<String>, statements: Vec<String>) -> Step {
        let kind = StepKind::Schema(statements.into_iter().map(Sql::Exec).collect());
        Step { label: label.into(), kind, needs: Vec::new() }
    }

    pub fn with_needs(mut self, needs: Vec<Need>) -> Step {
        self.needs = needs;
        self
    }

    pub fn needs_backup(&self) -> bool {
        matches!(self.kind, StepKind::Rebuild { .. } | StepKind::DataFix { .. })
    }

    pub fn is_rebuild(&self) -> bool {
        matches!(self.kind, StepKind::Rebuild { .. })
    }

    /// The exact statements, one per line, as the dry run prints them
    /// (without the transaction around them).
    pub fn lines(&self) -> Vec<String> {
        match &self.kind {
            StepKind::Schema(sql) | StepKind::Rebuild { sql, .. } => sql.iter().map(Sql::line).collect(),
            StepKind::DataFix { check, fix } => vec![
                format!("{};", fix.trim().trim_end_matches(';')),
                "-- re-run the check; if it still returns rows: ROLLBACK;".to_string(),
                format!("--   {}", check.trim()),
                "PRAGMA foreign_key_check;  -- a new violation: ROLLBACK;".to_string(),
            ],
        }
    }
}

/// `DROP <kind> "name"` followed by the desired statement.
pub fn recreate(kind: &str, name: &str, create: &str) -> Vec<String> {
    vec![format!("DROP {kind} {}", quote(name)), create.to_string()]
}

/// Every statement of a new database, in an order that runs: tables, the
/// seed rows (before any trigger exists, as when heal creates one table),
/// then indexes, views and triggers, each in the DDL's own order.
pub fn create_statements(desired: &Desired) -> Vec<String> {
    let schema = &desired.schema;
    let mut objects: Vec<(u8, i64, &String)> = Vec::new();
    objects.extend(schema.tables.values().map(|t| (0, t.order, &t.sql)));
    objects.extend(desired.seeds.iter().enumerate().map(|(i, s)| (1, i as i64, &s.sql)));
    objects.extend(schema.indexes.values().filter_map(|i| i.sql.as_ref().map(|s| (2, 0, s))));
    objects.extend(schema.views.values().map(|v| (3, v.order, &v.sql)));
    objects.extend(schema.triggers.values().map(|t| (4, t.order, &t.sql)));
    objects.sort();
    objects.into_iter().map(|(_, _, sql)| sql.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_with_one_semicolon() {
        let step = Step::schema("x", vec!["CREATE TABLE t(a);".into(), "CREATE INDEX i ON t(a)".into()]);
        assert_eq!(step.lines(), ["CREATE TABLE t(a);", "CREATE INDEX i ON t(a);"]);
    }

    #[test]
    fn only_rebuilds_and_data_fixes_need_a_backup() {
        assert!(!Step::schema("x", vec![]).needs_backup());
        let fix = Step {
            label: "f".into(),
            kind: StepKind::DataFix { check: "c".into(), fix: "f".into() },
            needs: Vec::new(),
        };
        assert!(fix.needs_backup());
        let rebuild =
            Step { label: "r".into(), kind: StepKind::Rebuild { table: "t".into(), sql: vec![] }, needs: vec![] };
        assert!(rebuild.is_rebuild());
    }
}
