//! The SQL a database needs, as data: steps the diff proposes, each tied to
//! the findings it repairs, and the exact lines `heal --dry-run` prints.
//! `apply.rs` runs the steps of one database inside one transaction.

use super::coldef::quote;
use super::introspect::Schema;

/// One statement of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Sql {
    /// Executed as written.
    Exec(String),
    /// `PRAGMA foreign_key_check`: any violation that was not there when the
    /// transaction began rolls the whole transaction back.
    ForeignKeyCheck,
    /// A remark shown in the plan, not run.
    Note(String),
}

impl Sql {
    pub fn line(&self) -> String {
        match self {
            Sql::Exec(text) => format!("{};", text.trim_end_matches(';')),
            Sql::ForeignKeyCheck => "PRAGMA foreign_key_check;  -- a new violation rolls everything back".into(),
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
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// Schema statements (CREATE, ALTER, DROP of an index/view/trigger).
    Schema(Vec<Sql>),
    /// The generalized ALTER TABLE: needs a backup, foreign keys off and
    /// legacy renames (see `rebuild.rs`).
    Rebuild(Vec<Sql>),
    /// A data check's fix: run under a savepoint, the check re-run after;
    /// rows left undo the fix (only the fix).
    DataFix { check: String, fix: String },
}

/// Savepoint name around a data fix.
pub const SAVEPOINT: &str = "preflight_data_fix";

impl Step {
    pub fn schema(label: impl Into<String>, statements: Vec<String>) -> Step {
        Step { label: label.into(), kind: StepKind::Schema(statements.into_iter().map(Sql::Exec).collect()) }
    }

    pub fn needs_backup(&self) -> bool {
        matches!(self.kind, StepKind::Rebuild(_) | StepKind::DataFix { .. })
    }

    pub fn is_rebuild(&self) -> bool {
        matches!(self.kind, StepKind::Rebuild(_))
    }

    /// The exact statements, one per line, as the dry run prints them.
    pub fn lines(&self) -> Vec<String> {
        match &self.kind {
            StepKind::Schema(sql) | StepKind::Rebuild(sql) => sql.iter().map(Sql::line).collect(),
            StepKind::DataFix { check, fix } => vec![
                format!("SAVEPOINT {SAVEPOINT};"),
                format!("{};", fix.trim().trim_end_matches(';')),
                format!("-- re-run the check; if it still returns rows: ROLLBACK TO {SAVEPOINT};"),
                format!("--   {}", check.trim()),
                format!("RELEASE {SAVEPOINT};"),
            ],
        }
    }
}

/// Lines that open a database's transaction.
pub fn prologue(db: &str, rebuild: bool, backup: bool) -> Vec<String> {
    let mut lines = vec![format!("-- {db}: every change below in one transaction")];
    if rebuild {
        lines.push("PRAGMA foreign_keys=OFF;".into());
        lines.push("PRAGMA legacy_alter_table=ON;".into());
    }
    lines.push("BEGIN IMMEDIATE;".into());
    if backup {
        lines.push(format!("-- back up {db} into .preflight/backups/<run>/ (SQLite online backup)"));
    }
    lines
}

/// Lines that close it.
pub fn epilogue(rebuild: bool) -> Vec<String> {
    let mut lines = vec!["COMMIT;".to_string()];
    if rebuild {
        lines.push("PRAGMA legacy_alter_table=OFF;".into());
        lines.push("PRAGMA foreign_keys=<previous value>;".into());
    }
    lines
}

/// `DROP <kind> "name"` followed by the desired statement.
pub fn recreate(kind: &str, name: &str, create: &str) -> Vec<String> {
    vec![format!("DROP {kind} {}", quote(name)), create.to_string()]
}

/// Every statement of a new database, in an order that runs: tables, then
/// indexes, views and triggers, each in the DDL's own order.
pub fn create_statements(desired: &Schema) -> Vec<String> {
    let mut objects: Vec<(u8, i64, &String)> = Vec::new();
    objects.extend(desired.tables.values().map(|t| (0, t.order, &t.sql)));
    objects.extend(desired.indexes.values().filter_map(|i| i.sql.as_ref().map(|s| (1, 0, s))));
    objects.extend(desired.views.values().map(|v| (2, v.order, &v.sql)));
    objects.extend(desired.triggers.values().map(|t| (3, t.order, &t.sql)));
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
        let fix = Step { label: "f".into(), kind: StepKind::DataFix { check: "c".into(), fix: "f".into() } };
        assert!(fix.needs_backup());
        assert!(Step { label: "r".into(), kind: StepKind::Rebuild(vec![]) }.is_rebuild());
    }
}
