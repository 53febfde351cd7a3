//! `[[database]]`: SQLite databases converge on a DDL file.
//!
//! The desired schema is the DDL loaded into an in-memory SQLite
//! (`desired.rs`); the live file is opened read-only after its header and
//! `PRAGMA quick_check` pass (`live.rs`). A live schema that is the DDL's
//! statements word for word is recognised without loading the DDL
//! (`fastpath.rs`); otherwise both are described by the same set-based
//! reader (`introspect.rs`) and compared (`diff.rs`, `objects.rs`) into
//! findings with SPEC IDs: `db:<path>`, `…:table:<t>`,
//! `…:table:<t>:column:<c>`, `…:index:<i>`, `…:view:<v>`, `…:trigger:<t>`,
//! `…:check:<name>` (data checks, `datacheck.rs`).
//!
//! Repairs are steps (`plan.rs`, `rebuild.rs`, `create.rs`), tried first on
//! an empty copy of the live schema (`verify.rs`) and carried out by
//! `apply.rs`: all the steps of one database run in one transaction,
//! whichever of its findings heal applies first; nothing is ever dropped
//! that holds data. `docs/databases.md` is the user's view of all this.

mod apply;
mod coldef;
mod create;
mod datacheck;
mod desired;
mod diff;
mod fastpath;
mod fuzzing;
mod introspect;
mod live;
mod objects;
mod plan;
mod rebuild;
mod verify;

use anyhow::Context;

use super::{severity, Check, CheckCtx, Scope};
use crate::finding::{Area, Finding, Findings, Severity};
use crate::heal::{Fix, Op, Phase};
use crate::manifest::DatabaseSpec;
use live::Live;
use plan::{Step, StepKind};

pub use fuzzing::compare_ddl;
pub use live::has_sqlite_header;

/// The `[[database]]` check.
pub struct DatabaseCheck;

impl Check for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    fn id_prefix(&self) -> &'static str {
        "db:"
    }

    fn scope(&self) -> Scope {
        Scope::Database
    }

    fn run(&self, ctx: &CheckCtx, out: &mut Findings) -> anyhow::Result<()> {
        for spec in &ctx.manifest.databases {
            check_database(ctx, spec, out)?;
        }
        Ok(())
    }
}

/// A finding before its fix is attached: what `apply::operations` needs.
struct Claim {
    id: String,
    severity: Severity,
    message: String,
    step: Option<usize>,
}

fn check_database(ctx: &CheckCtx, spec: &DatabaseSpec, out: &mut Findings) -> anyhow::Result<()> {
    let ddl = desired::read(ctx.root, &spec.schema)?;
    let base = format!("db:{}", spec.path.display());
    let critical = severity(spec.severity, Severity::Critical);
    let path = match crate::fsutil::resolve(ctx.root, &spec.path) {
        Ok(p) => p,
        Err(e) => {
            desired::parse(&ddl, &spec.schema)?;
            out.push(Finding::new(base, Area::Db, critical, format!("database path is refused: {e}")));
            return Ok(());
        }
    };
    let conn = match live::open(&path) {
        Live::Missing => {
            let desired = desired::parse(&ddl, &spec.schema)?;
            let op = create::CreateDatabase {
                db: spec.path.clone(),
                schema: spec.schema.clone(),
                statements: plan::create_statements(&desired.schema),
            };
            let action = format!("create from {}", spec.schema.display());
            let fix = Fix::new(action, Phase::Databases, vec![Op::Custom(Box::new(op))]);
            out.push(Finding::new(base, Area::Db, critical, "database file is missing").with_fix(fix));
            return Ok(());
        }
        Live::Unusable(why) => {
            desired::parse(&ddl, &spec.schema)?;
            out.push(Finding::new(base, Area::Db, critical, format!("database {why}")));
            return Ok(());
        }
        Live::Ready(conn) => conn,
    };
    out.pass(base.clone(), Area::Db);
    let schema_version: i64 = conn.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let (mut steps, mut claims) = schema_claims(ctx, spec, &conn, &ddl, &base, out)?;
    data_checks(&conn, spec, &base, &mut steps, &mut claims, out);
    drop(conn);
    let holders: Vec<Option<usize>> = claims.iter().map(|c| c.step).collect();
    let ops = apply::operations(spec.path.clone(), schema_version, steps.clone(), &holders);
    for (claim, op) in claims.into_iter().zip(ops) {
        let mut finding = Finding::new(claim.id, Area::Db, claim.severity, claim.message);
        if let (Some(op), Some(step)) = (op, claim.step.and_then(|s| steps.get(s))) {
            finding = finding.with_fix(Fix::new(step.label.clone(), Phase::Databases, vec![Op::Custom(Box::new(op))]));
        }
        out.push(finding);
    }
    Ok(())
}

/// The schema differences of a healthy live database, and the steps that
/// repair them. A database whose schema is the DDL's statements word for
/// word is recognised without loading the DDL (`fastpath.rs`).
fn schema_claims(
    ctx: &CheckCtx,
    spec: &DatabaseSpec,
    conn: &rusqlite::Connection,
    ddl: &str,
    base: &str,
    out: &mut Findings,
) -> anyhow::Result<(Vec<Step>, Vec<Claim>)> {
    if let Some(tables) = fastpath::converged(conn, ddl)? {
        for table in tables {
            out.pass(format!("{base}:table:{table}"), Area::Db);
        }
        return Ok((Vec::new(), Vec::new()));
    }
    let mut desired = desired::parse(ddl, &spec.schema)?;
    let mut live =
        introspect::load(conn).with_context(|| format!("cannot read the schema of {}", spec.path.display()))?;
    let diff = diff::compare(conn, &mut live, &mut desired, base, ctx.options.allow_rebuild)
        .with_context(|| format!("cannot compare {} with {}", spec.path.display(), spec.schema.display()))?;
    for id in &diff.same_tables {
        out.pass(id.clone(), Area::Db);
    }
    let claims: Vec<Claim> = diff
        .differences
        .into_iter()
        .map(|d| Claim { id: d.id, severity: severity(spec.severity, d.severity), message: d.message, step: d.step })
        .collect();
    let mut claims = claims;
    if !diff.steps.is_empty() {
        refuse_failing_steps(conn, &diff.steps, &mut claims)?;
    }
    Ok((diff.steps, claims))
}

/// Drops the fix of every finding whose step SQLite refuses on a copy of
/// the live schema, and says why in its message.
fn refuse_failing_steps(conn: &rusqlite::Connection, steps: &[Step], claims: &mut [Claim]) -> anyhow::Result<()> {
    let outcome = verify::verify(conn, steps)?;
    for claim in claims.iter_mut() {
        if let Some(error) = claim.step.and_then(|s| outcome.get(s).cloned().flatten()) {
            claim.message.push_str(&format!("; heal cannot repair it yet: {error}"));
            claim.step = None;
        }
    }
    Ok(())
}

/// Runs the `[[database.check]]` queries; rows are findings, and a check
/// with a `fix` gets a data-fix step.
fn data_checks(
    conn: &rusqlite::Connection,
    spec: &DatabaseSpec,
    base: &str,
    steps: &mut Vec<Step>,
    claims: &mut Vec<Claim>,
    out: &mut Findings,
) {
    for check in &spec.checks {
        let id = format!("{base}:check:{}", check.name);
        let severity = check.severity.or(spec.severity).unwrap_or(Severity::Critical);
        let (message, step) = match datacheck::run(conn, &check.sql) {
            datacheck::Outcome::Clean => {
                out.pass(id, Area::Db);
                continue;
            }
            datacheck::Outcome::Failed(e) => (format!("the check query fails: {e}"), None),
            datacheck::Outcome::Rows { count, first } => {
                let step = check.fix.as_ref().map(|fix| {
                    steps.push(Step {
                        label: "run the check's fix (after a backup)".into(),
                        kind: StepKind::DataFix { check: check.sql.clone(), fix: fix.clone() },
                    });
                    steps.len() - 1
                });
                (datacheck::message(count, &first), step)
            }
        };
        claims.push(Claim { id, severity, message, step });
    }
}
