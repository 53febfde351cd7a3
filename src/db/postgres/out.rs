//! What a comparison of the live namespace with the desired one finds:
//! differences, passes and steps, as `diff.rs` and `diff_objects.rs` find
//! them.

use super::catalog::Quoter;
use super::plan::Step;
use super::{Config, Difference, Severity};
use crate::db::ignore::Ignore;

/// Differences, passes and steps, as they are found.
pub struct Out<'a> {
    pub base: String,
    pub q: &'a Quoter,
    pub allow_rebuild: bool,
    ignore: Ignore,
    pub passed: Vec<String>,
    pub differences: Vec<Difference>,
    pub steps: Vec<Step>,
}

impl<'a> Out<'a> {
    pub fn new(config: &Config, q: &'a Quoter) -> Out<'a> {
        Out {
            base: config.id_base.clone(),
            q,
            allow_rebuild: config.allow_rebuild,
            ignore: Ignore::new(&config.ignore),
            passed: Vec::new(),
            differences: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Drift the deployment expects (`ignore`): not reported. Declared
    /// objects are compared whatever `ignore` says.
    pub fn ignored(&self, name: &str) -> bool {
        self.ignore.name(name)
    }

    pub fn ignored_column(&self, table: &str, column: &str) -> bool {
        self.ignore.column(table, column)
    }

    /// An index or constraint: by its own name, or by its table's.
    pub fn ignored_object(&self, name: &str, table: &str) -> bool {
        self.ignore.object(name, table)
    }

    pub fn id(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.base)
    }

    pub fn add(&mut self, id: String, severity: Severity, message: impl Into<String>, step: Option<Step>) {
        let step = step.map(|s| {
            self.steps.push(s);
            self.steps.len() - 1
        });
        self.differences.push(Difference { id, severity, message: message.into(), step });
    }

    /// Drift: in the live namespace, not in the DDL. Reported, never dropped.
    pub fn drift(&mut self, id: String, what: &str) {
        self.add(
            id,
            Severity::Warning,
            format!("{what} is not in the schema file (kept; add it there or to `ignore`)"),
            None,
        );
    }
}
