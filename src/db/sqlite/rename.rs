//! `[[database.rename]]`: tables and columns renamed in place, before
//! anything is compared. A rename whose old name exists and whose new
//! name does not is a critical finding on the old name, repaired by
//! `ALTER TABLE … RENAME` (SQLite rewrites the views, triggers and foreign
//! keys that name it); one whose two names both exist is refused with the
//! reason, as heal never merges or drops data.
//!
//! The comparison then sees the database as it will be: the live schema
//! is loaded into an in-memory scratch database and renamed there, and
//! the live connection gets TEMP views under the new names (in memory,
//! gone with the connection) so that the queries that read rows — a
//! sample row for ADD COLUMN, duplicates, data checks — find them.

use rusqlite::Connection;

use super::coldef::quote;
use super::introspect::{key, Schema};
use super::plan::Step;
use super::units::UnitKind;
use crate::finding::Severity;
use crate::manifest::RenameSpec;

/// A finding about one rename, and the step that applies it.
pub struct RenameClaim {
    pub id: String,
    pub severity: Severity,
    pub message: String,
    pub step: Option<Step>,
    /// What the step renames.
    change: Option<Change>,
}

/// A rename as the TEMP views need it: (live table, new table name, column old → new).
type Change = (String, String, Option<(String, String)>);

/// The renames that apply to `live`, in the manifest's order: tables
/// first, then columns (named by the table's old or new name).
pub fn plan(live: &Schema, specs: &[RenameSpec], base: &str) -> Vec<RenameClaim> {
    let mut claims = Vec::new();
    let mut tables: Vec<(String, String)> = Vec::new();
    for spec in specs.iter().filter(|s| s.column.is_none()) {
        let (from, to) = (live.tables.get(&key(&spec.table)), live.tables.get(&key(&spec.to_table)));
        let id = format!("{base}:table:{}", spec.table);
        match (from, to) {
            (Some(from), None) => {
                tables.push((key(&from.name), spec.to_table.clone()));
                let sql = format!("ALTER TABLE {} RENAME TO {}", quote(&from.name), quote(&spec.to_table));
                claims.push(RenameClaim {
                    id,
                    severity: Severity::Critical,
                    message: format!("table is renamed to {} by [[database.rename]]", quote(&spec.to_table)),
                    step: Some(Step::schema(format!("rename table to {}", quote(&spec.to_table)), vec![sql])),
                    change: Some((from.name.clone(), spec.to_table.clone(), None)),
                });
            }
            (Some(_), Some(_)) => claims.push(both(id, &spec.table, &spec.to_table)),
            _ => {} // renamed already, or neither is there yet
        }
    }
    for spec in specs.iter() {
        let (Some(column), Some(to_column)) = (&spec.column, &spec.to_column) else { continue };
        // The table under its live name: the manifest may use the old or the new one.
        let live_name = tables
            .iter()
            .find(|(_, to)| key(to) == key(&spec.table))
            .map(|(from, _)| from.clone())
            .unwrap_or_else(|| key(&spec.table));
        let Some(table) = live.tables.get(&live_name) else { continue };
        let has = |c: &str| table.columns.iter().any(|x| key(&x.name) == key(c));
        let current =
            tables.iter().find(|(from, _)| *from == live_name).map_or(table.name.clone(), |(_, to)| to.clone());
        let id = format!("{base}:table:{}:column:{column}", table.name);
        match (has(column), has(to_column)) {
            (true, false) => {
                let sql =
                    format!("ALTER TABLE {} RENAME COLUMN {} TO {}", quote(&current), quote(column), quote(to_column));
                let change = (table.name.clone(), current.clone(), Some((column.clone(), to_column.clone())));
                claims.push(RenameClaim {
                    id,
                    severity: Severity::Critical,
                    message: format!("column is renamed to {} by [[database.rename]]", quote(to_column)),
                    step: Some(Step::schema(format!("rename column to {}", quote(to_column)), vec![sql])),
                    change: Some(change),
                });
            }
            (true, true) => claims.push(both(id, column, to_column)),
            _ => {}
        }
    }
    claims
}

fn both(id: String, from: &str, to: &str) -> RenameClaim {
    RenameClaim {
        id,
        severity: Severity::Critical,
        message: format!(
            "[[database.rename]] {} → {} is refused: both names exist, and heal never merges or drops data; \
             move what you need into {} and drop {} yourself",
            quote(from),
            quote(to),
            quote(to),
            quote(from)
        ),
        step: None,
        change: None,
    }
}

/// The live schema with the renames applied, in an in-memory scratch
/// database, and TEMP views on `conn` that show the live rows under the
/// new names. `None` when the live schema does not load in the scratch
/// database (an unknown collation…): the renames are then proposed alone,
/// and the rest is compared once they are applied. A rename SQLite
/// refuses gets the reason instead of its step.
pub fn simulate(conn: &Connection, live: &Schema, claims: &mut [RenameClaim]) -> anyhow::Result<Option<Connection>> {
    let scratch = super::desired::sandbox()?;
    scratch.execute_batch("PRAGMA foreign_keys=OFF; PRAGMA legacy_alter_table=ON;")?;
    for statement in super::verify::live_statements(conn)? {
        if scratch.execute_batch(&statement).is_err() {
            return Ok(None);
        }
    }
    scratch.execute_batch(&UnitKind::Schema.pragmas().join(" "))?;
    for claim in claims.iter_mut() {
        let Some(step) = &claim.step else { continue };
        if let Err(e) = scratch.execute_batch(&step.lines().join("\n")) {
            claim.message.push_str(&format!("; heal cannot rename it yet: {e}"));
            claim.step = None;
        }
    }
    let mappings = mappings(live, claims);
    // In memory: validate leaves no file behind. SQLite changes it only
    // outside a transaction: the inspection's read transaction ends here
    // and the rest of it reads in a new one.
    let reading = !conn.is_autocommit();
    conn.execute_batch(if reading { "COMMIT; PRAGMA temp_store=MEMORY; BEGIN" } else { "PRAGMA temp_store=MEMORY" })?;
    for m in mappings {
        let list: Vec<String> = m.columns.iter().map(|(l, n)| format!("{} AS {}", quote(l), quote(n))).collect();
        conn.execute_batch(&format!(
            "CREATE TEMP VIEW {} AS SELECT {} FROM main.{}",
            quote(&m.new_table),
            list.join(", "),
            quote(&m.live_table)
        ))?;
    }
    Ok(Some(scratch))
}

/// A table as it will be named, with where its rows are now.
struct Mapping {
    live_table: String,
    new_table: String,
    /// (live column, new column) for every column of the live table.
    columns: Vec<(String, String)>,
}

/// For each table a rename that SQLite accepted touches: its live name,
/// its new name and its columns old → new.
fn mappings(live: &Schema, claims: &[RenameClaim]) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for (table, new_table, column) in claims.iter().filter(|c| c.step.is_some()).filter_map(|c| c.change.clone()) {
        let Some(l) = live.tables.get(&key(&table)) else { continue };
        let at = match out.iter().position(|m| key(&m.live_table) == key(&table)) {
            Some(at) => at,
            None => {
                let columns = l.columns.iter().map(|c| (c.name.clone(), c.name.clone())).collect();
                out.push(Mapping { live_table: l.name.clone(), new_table: l.name.clone(), columns });
                out.len() - 1
            }
        };
        let m = &mut out[at];
        m.new_table = new_table;
        if let Some((from, to)) = column {
            for (old, new) in m.columns.iter_mut() {
                if key(old) == key(&from) {
                    *new = to.clone();
                }
            }
        }
    }
    out
}
