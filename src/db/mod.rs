//! Database engines. Each engine turns a `[[database]]` entry and the live
//! database into an [`Inspection`]: what passed, and claims (findings
//! before they are findings) that may carry the operation repairing them.
//! The `[[database]]` check is a thin adapter over this vocabulary, so a
//! second engine stands beside `sqlite` without touching the checks.

pub mod ignore;
pub mod postgres;
pub mod sqlite;

use crate::finding::Severity;
use crate::safety::CustomOp;

/// The words every engine uses for an object the DDL does not declare.
pub const DRIFT: &str = "is not in the schema (drift); it is kept, never dropped";

/// One difference between a live database and its DDL.
#[derive(Debug)]
pub struct Difference {
    pub id: String,
    pub severity: Severity,
    pub message: String,
    /// Index into [`Diff::steps`] of the step that repairs it.
    pub step: Option<usize>,
}

/// The differences of one database, and the engine's steps `S` that
/// repair them. A step may repair several differences.
#[derive(Debug)]
pub struct Diff<S> {
    pub differences: Vec<Difference>,
    pub steps: Vec<S>,
    /// IDs of desired tables found identical, reported as passes.
    pub same_tables: Vec<String>,
}

impl<S> Default for Diff<S> {
    fn default() -> Self {
        Diff { differences: Vec::new(), steps: Vec::new(), same_tables: Vec::new() }
    }
}

impl<S> Diff<S> {
    pub fn push(&mut self, id: String, severity: Severity, message: impl Into<String>, step: Option<usize>) {
        self.differences.push(Difference { id, severity, message: message.into(), step });
    }

    pub fn add_step(&mut self, step: S) -> usize {
        self.steps.push(step);
        self.steps.len() - 1
    }
}

/// The operation that repairs a claim, with its label for reports.
pub struct Repair {
    pub label: String,
    pub op: Box<dyn CustomOp>,
}

/// A finding an engine makes, before the check adapter turns it into one.
pub struct Claim {
    pub id: String,
    pub severity: Severity,
    pub message: String,
    pub repair: Option<Repair>,
}

impl Claim {
    pub fn new(id: impl Into<String>, severity: Severity, message: impl Into<String>) -> Self {
        Claim { id: id.into(), severity, message: message.into(), repair: None }
    }

    pub fn with_repair(mut self, label: impl Into<String>, op: Box<dyn CustomOp>) -> Self {
        self.repair = Some(Repair { label: label.into(), op });
        self
    }
}

/// What an engine saw in one database.
#[derive(Default)]
pub struct Inspection {
    /// IDs that passed.
    pub passed: Vec<String>,
    pub claims: Vec<Claim>,
}

/// What the engines keep between the passes of one run (a heal validates
/// up to three times). Clones share the same caches.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    pub sqlite: sqlite::HealthCache,
}
