//! A database a crash left mid-transaction, recovered by SQLite itself.
//!
//! A hot journal (rollback mode) or an abandoned write-ahead log is not
//! damage: SQLite's next read-write open rolls the journal back, or
//! replays the log's committed transactions, and the database is exactly
//! as last committed. Validation cannot do that (it never writes), and a
//! read-only connection refuses a hot journal, so it reports the database
//! for recovery without comparing its schema. This operation, run by heal
//! under its lock, opens the file read-write and lets SQLite recover it —
//! preflight never edits a journal or a log itself, and never removes one —
//! then inspects the recovered database and applies the repairs any heal
//! would, so `preflight run` starts the application on a converged file.

use std::path::Path;

use anyhow::{anyhow, bail};
use rusqlite::{Connection, OpenFlags};

use super::live::{describe_error, has_sqlite_header, HealthCache, Interruption, BUSY_TIMEOUT};
use super::Options;
use crate::manifest::DatabaseSpec;
use crate::safety::{ApplyCtx, CustomOp};

/// Recovers the database `spec` declares, then converges it.
pub struct Recover {
    pub spec: DatabaseSpec,
    pub options: Options,
    pub cache: HealthCache,
    pub what: Interruption,
}

impl CustomOp for Recover {
    fn describe(&self) -> Vec<String> {
        let db = self.spec.path.display();
        let mut lines = vec![format!("-- {db}: opened read-write, so that SQLite's own recovery runs")];
        lines.push(match self.what {
            Interruption::Journal => "BEGIN IMMEDIATE; ROLLBACK;  -- the hot journal is rolled back first".into(),
            Interruption::Wal { .. } => "PRAGMA wal_checkpoint(TRUNCATE);".into(),
        });
        lines.push(format!(
            "-- then {db} is compared with {} and every repair heal offers is applied (its steps are known once it is recovered)",
            self.spec.schema.display()
        ));
        lines
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let path = ctx.resolve(&self.spec.path)?;
        let name = self.spec.path.display().to_string();
        if !has_sqlite_header(&path)? {
            bail!("{name} is no longer a SQLite database");
        }
        let mut details = vec![recover(&path, &name, self.what)?];
        // The recovered file is compared and repaired like any other.
        let inspection = super::inspect(ctx.root(), &self.spec, self.options, &self.cache)?;
        let mut failed = false;
        // Every claim stays alive until all are applied: the operations of
        // one database share one transaction that runs only the steps of
        // claims still held.
        for claim in &inspection.claims {
            if claim.id.ends_with(":recovery") {
                bail!("{}; {name} still needs recovery: {}", details.join("; "), claim.message);
            }
            let Some(repair) = &claim.repair else { continue };
            match repair.op.apply(ctx) {
                Ok(detail) => details.push(format!("{}: {} ({detail})", claim.id, repair.label)),
                Err(e) => {
                    failed = true;
                    details.push(format!("{}: {} failed: {e:#}", claim.id, repair.label));
                }
            }
        }
        match failed {
            true => Err(anyhow!(details.join("; "))),
            false => Ok(details.join("; ")),
        }
    }
}

/// Lets SQLite recover the file: the first lock a read-write connection
/// takes plays a hot journal back; a checkpoint copies the log's committed
/// frames into the file. Closing the last connection removes the log.
fn recover(path: &Path, name: &str, what: Interruption) -> anyhow::Result<String> {
    // Never SQLITE_OPEN_CREATE: the file exists, and must.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| anyhow!("{name} {}", describe_error(&e)))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let failed = |e: rusqlite::Error| anyhow!("SQLite could not recover {name}: {}", describe_error(&e));
    match what {
        Interruption::Journal => {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").map_err(failed)?;
            Ok("rolled back to the last commit (SQLite's recovery from the hot journal)".into())
        }
        Interruption::Wal { .. } => {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).map_err(failed)?;
            Ok(match busy {
                0 => "the log's committed transactions are in the database (SQLite checkpoint)".into(),
                _ => "another connection uses the log: SQLite keeps it and copies it into the database later".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_keeps_every_committed_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(a); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        let detail = recover(&path, "w.db", Interruption::Wal { bytes: 0 }).unwrap();
        assert!(detail.contains("checkpoint"), "{detail}");
        drop(writer);
        let rows: i64 = Connection::open(&path).unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
    }
}
