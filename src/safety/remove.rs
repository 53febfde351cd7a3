//! Removing a small runtime file (a stale lock, a dead process's pidfile)
//! only if it still holds what the check saw. Between validation and heal
//! a new process may have taken the lock or written its PID; that file is
//! then left alone. The removed content goes into the action's detail (and
//! so the history), and a copy into the run's quarantine.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::apply::ApplyCtx;
use super::fix::{CustomOp, Op};
use crate::runtime::content::{read_bounded, show};

/// Removes `path` if its bytes are still `expected`.
#[derive(Debug)]
pub struct RemoveIfUnchanged {
    pub path: PathBuf,
    pub expected: Vec<u8>,
}

impl CustomOp for RemoveIfUnchanged {
    fn describe(&self) -> Vec<String> {
        vec![format!(
            "remove {} if it still holds {} (copy kept in quarantine)",
            self.path.display(),
            show(&self.expected)
        )]
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let file = ctx.read(&self.path).with_context(|| format!("cannot read {}", self.path.display()))?;
        let Some(file) = file else { bail!("{} is gone since it was checked", self.path.display()) };
        let now = read_bounded(file).with_context(|| format!("cannot read {}", self.path.display()))?;
        if now != self.expected {
            bail!("{} changed since it was checked (now {}); left alone", self.path.display(), show(&now));
        }
        ctx.apply(&Op::RemoveFile { path: self.path.clone(), quarantine: true })?;
        Ok(format!("removed; it held {}", show(&self.expected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn op(expected: &[u8]) -> RemoveIfUnchanged {
        RemoveIfUnchanged { path: PathBuf::from("a.lock"), expected: expected.to_vec() }
    }

    #[test]
    fn an_unchanged_file_is_removed_with_a_copy_kept() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("a.lock"), b"123 host\n").unwrap();
        let mut ctx = ApplyCtx::new(root.path(), "r1");
        let detail = op(b"123 host\n").apply(&mut ctx).unwrap();
        assert!(detail.contains("\"123 host\""), "{detail}");
        assert!(!root.path().join("a.lock").exists());
        let saved = ctx.take_saved();
        assert_eq!(fs::read(root.path().join(&saved[0])).unwrap(), b"123 host\n");
    }

    #[test]
    fn a_file_rewritten_since_the_check_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("a.lock"), b"456").unwrap();
        let mut ctx = ApplyCtx::new(root.path(), "r1");
        let err = op(b"123").apply(&mut ctx).unwrap_err();
        assert!(err.to_string().contains("changed since"), "{err}");
        assert!(root.path().join("a.lock").exists());
    }
}
