//! The SQLite engine: a database converges on a DDL file.
//!
//! The desired schema is the DDL loaded into an in-memory SQLite
//! (`desired.rs`); the live file is opened read-only, creating nothing
//! beside it (`live.rs`, `ondisk.rs`), after its header and the integrity
//! checks its size and `integrity` call for pass (`integrity.rs`). A hot
//! journal or an abandoned WAL left by a crash is `db:<path>:recovery`:
//! SQLite's own recovery, then convergence (`recover.rs`). A live schema that is the DDL's
//! statements word for word is recognised without loading the DDL
//! (`fastpath.rs`); otherwise both are described by the same set-based
//! reader (`introspect.rs`) and compared (`diff.rs`, `objects.rs`) into
//! claims with SPEC IDs: `db:<path>`, `…:table:<t>`,
//! `…:table:<t>:column:<c>`, `…:index:<i>`, `…:view:<v>`, `…:trigger:<t>`,
//! `…:check:<name>` (data checks, `datacheck.rs`).
//!
//! Repairs are steps (`plan.rs`, `rebuild.rs`, `create.rs`), tried first on
//! an empty copy of the live schema (`verify.rs`) and carried out by
//! `apply.rs`: all the steps of one database run in one transaction,
//! whichever of its findings heal applies first; nothing is ever dropped
//! that holds data. `docs/databases.md` is the user's view of all this.

mod apply;
mod budget;
mod coldef;
mod create;
mod datacheck;
mod desired;
mod diff;
mod fastpath;
mod fuzzing;
mod integrity;
mod introspect;
mod live;
mod meter;
mod objects;
mod ondisk;
mod plan;
mod precheck;
mod rebuild;
mod recover;
mod rename;
mod statements;
mod units;
mod verify;

use std::path::Path;

use anyhow::Context;

use super::{Claim, Inspection};
use crate::finding::Severity;
use crate::manifest::DatabaseSpec;
use live::{Interruption, Live, Reading};
use plan::{Step, StepKind};

#[doc(hidden)]
pub use fuzzing::compare_ddl;
pub use integrity::AUTO_LIMIT;
pub use live::{has_sqlite_header, HealthCache};

/// What the engine may propose, and how deep it looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Table rebuilds for type/nullability/default changes may be proposed.
    pub allow_rebuild: bool,
    /// `PRAGMA quick_check` whatever the file's size and `integrity` (`--deep`).
    pub deep: bool,
}

/// A claim before its operation is attached: the step that repairs it.
struct Pending {
    id: String,
    severity: Severity,
    message: String,
    step: Option<usize>,
}

/// Library settings for a process that opens a few databases briefly:
/// - SQLite starts each page cache with a bulk allocation of 20 pages that
///   it writes through at once: about 20 page faults per database, for a
///   validate that reads five pages of it. Pages are allocated as they are
///   needed instead.
/// - No memory statistics: they take a global mutex on every allocation
///   (4.5 % of a validate's instructions), and nothing here reads them.
///
/// They take effect only before SQLite initialises (the first connection);
/// afterwards SQLite refuses them, which is harmless.
fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let no_buffer = std::ptr::null_mut::<std::ffi::c_void>();
        // SAFETY: SQLITE_CONFIG_PAGECACHE takes (void *, int, int); a null
        // buffer with 0 pages means "no preallocated page memory".
        unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_PAGECACHE, no_buffer, 0i32, 0i32) };
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int.
        unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0i32) };
    });
}

/// Inspects the database `spec` declares under `root`.
pub fn inspect(root: &Path, spec: &DatabaseSpec, options: Options, cache: &HealthCache) -> anyhow::Result<Inspection> {
    configure_library();
    let mut out = Inspection::default();
    let ddl = desired::read(root, &spec.schema)?;
    let base = format!("db:{}", spec.path.display());
    let critical = spec.severity.unwrap_or(Severity::Critical);
    let path = match crate::fsutil::resolve(root, &spec.path) {
        Ok(p) => p,
        Err(e) => {
            desired::parse(&ddl, &spec.schema)?;
            out.claims.push(Claim::new(base, critical, format!("database path is refused: {e}")));
            return Ok(out);
        }
    };
    let reading = Reading { integrity: spec.integrity, deep: options.deep };
    let conn = match live::open(&path, reading, cache) {
        Live::Missing if !spec.create => {
            desired::parse(&ddl, &spec.schema)?;
            let message = "database file is missing; create = false: the deployment provides it (a restored \
                           database, a mounted volume), preflight never creates it";
            out.claims.push(Claim::new(base, critical, message));
            return Ok(out);
        }
        Live::Missing => {
            let desired = desired::parse(&ddl, &spec.schema)?;
            let op = create::CreateDatabase {
                db: spec.path.clone(),
                schema: spec.schema.clone(),
                statements: plan::create_statements(&desired),
                cache: cache.clone(),
            };
            let action = format!("create from {}", spec.schema.display());
            out.claims.push(Claim::new(base, critical, "database file is missing").with_repair(action, Box::new(op)));
            return Ok(out);
        }
        Live::Unusable(why) => {
            desired::parse(&ddl, &spec.schema)?;
            out.claims.push(Claim::new(base, critical, format!("database {why}")));
            return Ok(out);
        }
        Live::Interrupted(what) => {
            desired::parse(&ddl, &spec.schema)?;
            out.claims.push(recovery_claim(spec, options, cache, &base, what));
            return Ok(out);
        }
        Live::Ready(conn) => conn,
    };
    out.passed.push(base.clone());
    let schema_version: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let (mut steps, mut pending) = schema_claims(spec, options, &conn, &ddl, &base, &mut out)?;
    data_checks(&conn, spec, &base, &mut steps, &mut pending, &mut out);
    drop(conn);
    let holders: Vec<Option<usize>> = pending.iter().map(|c| c.step).collect();
    let ops = apply::operations(spec.path.clone(), schema_version, steps.clone(), &holders, cache);
    for (claim, op) in pending.into_iter().zip(ops) {
        let mut found = Claim::new(claim.id, claim.severity, claim.message);
        if let (Some(op), Some(step)) = (op, claim.step.and_then(|s| steps.get(s))) {
            found = found.with_repair(step.label.clone(), Box::new(op));
        }
        out.claims.push(found);
    }
    Ok(out)
}

/// `db:<path>:recovery`: a crash left a transaction for SQLite's own
/// recovery. Not damage (a warning), and the schema is not compared yet:
/// only a read-write open shows the database as last committed, so the
/// repair recovers it first and then converges it like any heal.
fn recovery_claim(spec: &DatabaseSpec, options: Options, cache: &HealthCache, base: &str, what: Interruption) -> Claim {
    let db = spec.path.display();
    let message = match what {
        Interruption::Journal => format!(
            "a write transaction was cut short (a crash left the hot journal {db}-journal); SQLite rolls it back to the last commit at the next read-write open, which heal does under its lock; the schema is compared after that"
        ),
        Interruption::Wal { bytes } => format!(
            "the write-ahead log {db}-wal ({bytes} bytes) was left by a process that ended without closing the database; SQLite replays its committed transactions at the next read-write open, which heal does under its lock; the schema is compared after that"
        ),
    };
    let severity = spec.severity.unwrap_or(Severity::Warning);
    let op = recover::Recover { spec: spec.clone(), options, cache: cache.clone(), what };
    let label = match what {
        Interruption::Journal => "roll back the interrupted transaction (SQLite recovery), then converge",
        Interruption::Wal { .. } => "checkpoint the write-ahead log (SQLite recovery), then converge",
    };
    Claim::new(format!("{base}:recovery"), severity, message).with_repair(label, Box::new(op))
}

/// The schema differences of a healthy live database, and the steps that
/// repair them. A database whose schema is the DDL's statements word for
/// word is recognised without loading the DDL (`fastpath.rs`).
fn schema_claims(
    spec: &DatabaseSpec,
    options: Options,
    conn: &rusqlite::Connection,
    ddl: &str,
    base: &str,
    out: &mut Inspection,
) -> anyhow::Result<(Vec<Step>, Vec<Pending>)> {
    if let Some(tables) = fastpath::converged(conn, ddl)? {
        out.passed.extend(tables.into_iter().map(|table| format!("{base}:table:{table}")));
        return Ok((Vec::new(), Vec::new()));
    }
    let mut desired = desired::parse(ddl, &spec.schema)?;
    let mut live =
        introspect::load(conn).with_context(|| format!("cannot read the schema of {}", spec.path.display()))?;
    let severity = |s: Severity| spec.severity.unwrap_or(s);
    // Renames first: their steps run first, and the rest is compared as if they had run.
    let mut renames = rename::plan(&live, &spec.convergence.renames, base);
    let renaming = renames.iter().any(|r| r.step.is_some());
    let scratch = if renaming { rename::simulate(conn, &live, &mut renames)? } else { None };
    let mut steps = Vec::new();
    let mut pending = Vec::new();
    for r in renames {
        let step = r.step.map(|s| {
            steps.push(s);
            steps.len() - 1
        });
        pending.push(Pending { id: r.id, severity: severity(r.severity), message: r.message, step });
    }
    if renaming && scratch.is_none() {
        for claim in &mut pending {
            claim.message.push_str("; the rest of the schema is compared once the renames are applied");
        }
    } else {
        if let Some(scratch) = &scratch {
            live = introspect::load(scratch)?;
        }
        let db = diff::LiveDb { schema: scratch.as_ref().unwrap_or(conn), rows: conn };
        let ignore = crate::db::ignore::Ignore::new(&spec.convergence.ignore);
        let rules = diff::Rules {
            allow_rebuild: options.allow_rebuild,
            backfills: &spec.convergence.backfills,
            ignore: Some(&ignore),
        };
        let diff = diff::compare(db, &mut live, &mut desired, base, rules)
            .with_context(|| format!("cannot compare {} with {}", spec.path.display(), spec.schema.display()))?;
        out.passed.extend(diff.same_tables);
        let offset = steps.len();
        steps.extend(diff.steps);
        // A rename refused because both names exist speaks for the old table: no second finding.
        let renamed: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
        let differences = diff.differences.into_iter().filter(|d| !renamed.contains(&d.id));
        pending.extend(differences.map(|d| Pending {
            id: d.id,
            severity: severity(d.severity),
            message: d.message,
            step: d.step.map(|s| s + offset),
        }));
    }
    if !steps.is_empty() {
        refuse_failing_steps(conn, &steps, &mut pending)?;
    }
    Ok((steps, pending))
}

/// Drops the repair of every claim whose step SQLite refuses on a copy of
/// the live schema, or whose step the live rows would make fail (duplicates
/// under a new UNIQUE, NULLs under a new NOT NULL), and says why in its
/// message: a fix known to fail is not offered.
fn refuse_failing_steps(conn: &rusqlite::Connection, steps: &[Step], pending: &mut [Pending]) -> anyhow::Result<()> {
    let mut outcome = verify::verify(conn, steps)?;
    for (step, verdict) in steps.iter().zip(outcome.iter_mut()) {
        if verdict.is_none() {
            *verdict = unmet(conn, step);
        }
    }
    for claim in pending.iter_mut() {
        if let Some(error) = claim.step.and_then(|s| outcome.get(s).cloned().flatten()) {
            claim.message.push_str(&format!("; heal cannot repair it yet: {error}"));
            claim.step = None;
        }
    }
    Ok(())
}

/// Why the live rows would make `step` fail, if they would.
fn unmet(conn: &rusqlite::Connection, step: &Step) -> Option<String> {
    let found: Vec<String> = step.needs.iter().filter_map(|need| need.unmet(conn).ok().flatten()).collect();
    (!found.is_empty()).then(|| found.join("; "))
}

/// Runs the `[[database.check]]` queries; rows are claims, and a check
/// with a `fix` gets a data-fix step.
fn data_checks(
    conn: &rusqlite::Connection,
    spec: &DatabaseSpec,
    base: &str,
    steps: &mut Vec<Step>,
    pending: &mut Vec<Pending>,
    out: &mut Inspection,
) {
    for check in &spec.checks {
        let id = format!("{base}:check:{}", check.name);
        let severity = check.severity.or(spec.severity).unwrap_or(Severity::Critical);
        let (message, step) = match datacheck::run(conn, &check.sql) {
            datacheck::Outcome::Clean => {
                out.passed.push(id);
                continue;
            }
            datacheck::Outcome::Failed(e) => (format!("the check query fails: {e}"), None),
            datacheck::Outcome::Rows { count, first } => {
                let step = check.fix.as_ref().map(|fix| {
                    steps.push(Step {
                        label: "run the check's fix (after a backup)".into(),
                        kind: StepKind::DataFix { check: check.sql.clone(), fix: fix.clone() },
                        needs: Vec::new(),
                    });
                    steps.len() - 1
                });
                (datacheck::message(count, &first), step)
            }
        };
        pending.push(Pending { id, severity, message, step });
    }
}
