//! An entry point for the `schema_compare` fuzz target: both sides of the
//! comparison built from arbitrary DDL, entirely in memory.

use super::desired::{self, Desired};
use super::diff;

/// Loads `live_ddl` and `desired_ddl` into two in-memory databases, compares
/// them, renders every planned step, and applies the plain schema steps to
/// the live side before comparing once more. Returns the number of
/// differences first found; DDL that SQLite refuses is an `Err`.
#[doc(hidden)]
pub fn compare_ddl(live_ddl: &str, desired_ddl: &str) -> anyhow::Result<usize> {
    let Desired { conn, schema: mut live, .. } = desired::from_ddl(live_ddl)?;
    let mut desired = desired::from_ddl(desired_ddl)?;
    let rules = diff::Rules { allow_rebuild: true, backfills: &[], ignore: None };
    let diff = diff::compare(diff::LiveDb { schema: &conn, rows: &conn }, &mut live, &mut desired, "db:fuzz", rules)?;
    for step in diff.steps.iter().filter(|s| !s.is_rebuild()) {
        // Steps SQLite refuses are the verifier's business; here only a panic counts.
        let _ = conn.execute_batch(&step.lines().join("\n"));
    }
    let mut after = super::introspect::load(&conn)?;
    let mut desired = desired::from_ddl(desired_ddl)?;
    diff::compare(diff::LiveDb { schema: &conn, rows: &conn }, &mut after, &mut desired, "db:fuzz", rules)?;
    Ok(diff.differences.len())
}
