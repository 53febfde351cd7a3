//! A missing database, created from the DDL: built in a temporary file
//! next to where it belongs, in one transaction, then renamed into place.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use rusqlite::Connection;

use super::live::HealthCache;
use crate::fsutil;
use crate::safety::atomic::AtomicWriter;
use crate::safety::{ApplyCtx, CustomOp};

/// Creates a missing database from the DDL: built in a temporary file next
/// to it, in one transaction, then renamed into place (a crash leaves no
/// half-built database). An existing file is never overwritten.
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
                "-- create {} from {} (built in a temporary file, then renamed into place)",
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
        let path = ctx.resolve(&self.db)?;
        if let Some(parent) = self.db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(ctx.resolve(parent)?)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let writer = AtomicWriter::create(&path)?.mode(Some(0o666 & !fsutil::umask()));
        {
            let conn = Connection::open(writer.temp_path())?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for statement in &self.statements {
                conn.execute(statement, []).with_context(|| format!("`{statement}`"))?;
            }
            conn.execute_batch("COMMIT")?;
        }
        writer.commit_new().map_err(|e| anyhow!("cannot create {}: {e}", self.db.display()))?;
        self.cache.remember_path(&path);
        Ok(format!("created with {} statements", self.statements.len()))
    }
}
