//! A missing database, created from the DDL: built in a temporary file
//! next to where it belongs, in one transaction, then renamed into place.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use rusqlite::Connection;

use crate::fsutil;
use crate::heal::{ApplyCtx, CustomOp};

/// Creates a missing database from the DDL: built in a temporary file next
/// to it, in one transaction, then renamed into place (a crash leaves no
/// half-built database). An existing file is never overwritten.
pub struct CreateDatabase {
    pub db: PathBuf,
    pub schema: PathBuf,
    pub statements: Vec<String>,
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
        let dir = fsutil::parent_dir(&path).to_path_buf();
        if let Some(parent) = self.db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(ctx.resolve(parent)?)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let tmp = tempfile::Builder::new().prefix(fsutil::TEMP_PREFIX).suffix(".db").tempfile_in(&dir)?;
        {
            let conn = Connection::open(tmp.path())?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for statement in &self.statements {
                conn.execute(statement, []).with_context(|| format!("`{statement}`"))?;
            }
            conn.execute_batch("COMMIT")?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o666 & !fsutil::umask()))?;
        tmp.as_file().sync_all()?;
        tmp.persist_noclobber(&path).map_err(|e| anyhow!("cannot create {}: {}", self.db.display(), e.error))?;
        fsutil::sync_dir(&dir)?;
        super::live::remember_healthy(&path);
        Ok(format!("created with {} statements", self.statements.len()))
    }
}
