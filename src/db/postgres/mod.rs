//! PostgreSQL: one namespace converges on a DDL file, online.
//!
//! - `url.rs`, `connect.rs`: the URL (its password never leaves), TLS.
//! - `split.rs`, `desired.rs`: the DDL is cut into statements and loaded by
//!   the server into a scratch namespace inside a transaction that is rolled
//!   back; what each statement did is read back from the catalog.
//! - `catalog.rs`: the same catalog queries read the live namespace and the
//!   scratch one; `diff.rs`, `diff_objects.rs` compare them into
//!   differences with stable IDs and the steps that repair them (`plan.rs`,
//!   SQL text from `ddl.rs`).
//! - `inspect.rs`: validate's single transaction (live side read-only);
//!   `marker.rs`: the record heal leaves so a converged namespace validates
//!   without loading the DDL again.
//! - `apply.rs`: heal under an advisory lock per (database, namespace), each
//!   statement under `lock_timeout`, bounded retries, indexes built
//!   `CONCURRENTLY`; `undo.rs`: rollback of what heal created.
//! - `dump.rs`: starter DDL for `init`, from the catalog.
//!
//! The engine itself takes a [`Config`] and returns plain data;
//! `claims.rs` and `history.rs` are its glue to the manifest, the
//! `[[database]]` check's claims, the history and rollback.

mod apply;
pub mod catalog;
pub mod claims;
mod connect;
mod datacheck;
mod ddl;
mod desired;
mod diff;
mod diff_objects;
mod dump;
pub mod history;
mod inspect;
mod marker;
mod out;
pub mod plan;
mod split;
mod undo;
pub mod url;

use std::time::Duration;

pub use apply::{heal, Action, Outcome};
pub use dump::dump;
pub use inspect::inspect;
pub use plan::{Step, StepKind, Undo};
pub use undo::{undo, UndoOutcome, UndoRecord};
pub use url::{is_postgres_url, redact};

/// Everything the engine needs to know about one `[[database]]`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Prefix of every finding ID, e.g. `db:DATABASE_URL`.
    pub id_base: String,
    /// The connection URL (holds the password: never printed).
    pub url: String,
    /// The PostgreSQL schema compared, e.g. `public`.
    pub namespace: String,
    /// For every statement heal runs that takes a lock.
    pub lock_timeout: Duration,
    /// For every statement (an index build included).
    pub statement_timeout: Duration,
    /// Attempts after a lock timeout before the database is reported busy.
    pub retries: u32,
    /// How long a replica waits for another one's heal.
    pub lock_wait: Duration,
    /// The desired schema's text, and its name for messages.
    pub ddl: String,
    pub ddl_name: String,
    /// Drift that is expected (names, `table.column`, globs of either):
    /// not reported. Declared objects are compared regardless.
    pub ignore: Vec<String>,
    pub renames: Vec<Rename>,
    pub checks: Vec<DataCheck>,
    /// Type changes and other rewrites are planned only when set.
    pub allow_rebuild: bool,
}

impl Config {
    /// A configuration with the documented defaults.
    pub fn new(id_base: impl Into<String>, url: impl Into<String>, ddl: impl Into<String>) -> Config {
        Config {
            id_base: id_base.into(),
            url: url.into(),
            namespace: "public".into(),
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(600),
            retries: 3,
            lock_wait: Duration::from_secs(600),
            ddl: ddl.into(),
            ddl_name: "the schema file".into(),
            ignore: Vec::new(),
            renames: Vec::new(),
            checks: Vec::new(),
            allow_rebuild: false,
        }
    }
}

/// `[[database.rename]]`: a table, or a column as `table.column`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// `[[database.check]]`: rows returned are violations.
#[derive(Debug, Clone, PartialEq)]
pub struct DataCheck {
    pub name: String,
    pub sql: String,
    pub fix: Option<String>,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    Warning,
}

/// One difference between the live namespace and the DDL.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub id: String,
    pub severity: Severity,
    pub message: String,
    /// Index into [`Report::steps`] of the step that repairs it.
    pub step: Option<usize>,
}

/// What validate found.
#[derive(Debug, Default)]
pub struct Report {
    /// IDs that were compared and found as the DDL says.
    pub passed: Vec<String>,
    pub differences: Vec<Difference>,
    pub steps: Vec<Step>,
    /// `namespace, extension schemas…` as heal's `search_path`.
    pub search_path: String,
    /// The comparison's inputs and the live catalog, hashed (`marker.rs`).
    pub keys: (String, String),
    /// The DDL was not loaded: heal recorded this exact state as converged.
    pub fast: bool,
    /// The DDL as the server loaded it, when it was loaded (or reused), so
    /// heal can check its own result against it without loading it again.
    pub(crate) desired: Option<std::sync::Arc<desired::Desired>>,
}

impl Report {
    /// The dry run's script for the steps of the selected differences.
    pub fn script(&self, config: &Config, selected: impl Fn(&str) -> bool) -> Vec<String> {
        let steps = self.selected_steps(selected);
        let chosen: Vec<&Step> = steps.iter().map(|&i| &self.steps[i]).collect();
        plan::script(&chosen, &self.search_path, config.lock_timeout, config.statement_timeout)
    }

    /// Indexes of the steps that selected differences hold, in order.
    pub fn selected_steps(&self, selected: impl Fn(&str) -> bool) -> Vec<usize> {
        let mut steps: Vec<usize> =
            self.differences.iter().filter(|d| selected(&d.id)).filter_map(|d| d.step).collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }
}

/// Why the engine could not compare at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The server cannot be reached or refuses us (a finding on `db:<env>`).
    #[error("{0}")]
    Unreachable(String),
    /// The DDL file is refused or does not load (the run stops, exit 1).
    #[error("{0}")]
    Schema(String),
    /// A query failed on the way.
    #[error("{0}")]
    Server(String),
}
