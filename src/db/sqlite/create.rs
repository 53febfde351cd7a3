//! A missing database, created from the DDL: built in memory, in one transaction, then written to a temporary file next to
//! where it belongs and renamed into place.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use rusqlite::{Connection, MAIN_DB};

use super::live::HealthCache;
use crate::fsutil;
use crate::safety::{ApplyCtx, CustomOp};

/// Creates a missing database from the DDL: built in memory in one
/// transaction, written to a temporary file next to it, then renamed into
/// place (a crash leaves no half-built database). An existing file is never overwritten.
pub struct CreateDatabase {
    pub db: PathBuf,
    pub schema: PathBuf,
    pub statements: Vec<String>,
    pub cache: HealthCache,
}

impl CustomOp for CreateDatabase {
    fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "-- create {} from {} (built in memory, written to a temporary file, then renamed into place)",
                self.db.display(),
                self.schema.display()
            ),
            "BEGIN IMMEDIATE;".into(),
        ];
        lines.extend(self.statements.iter().map(|s| format!("{};", s.trim_end_matches(';'))));
        lines.push("COMMIT;".into());
        lines
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        // Built in memory and written through the folder's handle: SQLite
        // opens files by path, which a symlink swapped in could redirect.
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for statement in &self.statements {
            conn.execute(statement, []).with_context(|| format!("`{statement}`"))?;
        }
        conn.execute_batch("COMMIT")?;
        let image = conn.serialize(MAIN_DB)?;
        let mut writer = ctx.writer(&self.db)?.mode(Some(0o666 & !fsutil::umask()));
        writer.write_all(&image)?;
        writer.commit_new().map_err(|e| anyhow!("cannot create {}: {e}", self.db.display()))?;
        self.cache.remember_path(&ctx.root().join(&self.db));
        Ok(format!("created with {} statements", self.statements.len()))
    }
}
