//! Replacing a file that a check read: only while it is still that file
//! (`Seen`), never while another process has it open for writing, with its
//! undo written ahead and the last look taken just before the rename.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::apply::ApplyCtx;
use super::atomic::Staged;
use super::journal::{sha256_of, After};
use super::precondition::{Seen, Skip};
use super::progress::Task;
use super::writers;

/// How long heal waits for other writers to close a file before it gives
/// up on replacing it (an appender that reopens per line closes at once).
pub const HOLD_WAIT: Duration = Duration::from_secs(1);

impl ApplyCtx<'_> {
    /// Quarantines the original of `rel` if it is still the file `seen`
    /// describes (same file, size and time; with a hash, the same bytes),
    /// else `Skip::Changed`. Returns the copy (relative to the root), or
    /// `None` when this run already kept the original. `task` is told the
    /// bytes copied.
    pub fn quarantine_checked(&mut self, rel: &Path, seen: &Seen, task: &dyn Task) -> anyhow::Result<Option<PathBuf>> {
        self.journal.touch(self.root(), rel);
        let source = match self.read(rel) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(Skip::Changed("removed".into()).into()),
            Err(e) => return Err(e.context(format!("{} is left alone", rel.display()))),
        };
        let meta = source.metadata()?;
        if let Some(why) = seen.differs(&meta) {
            return Err(Skip::Changed(why).into());
        }
        let differs = |hash: &str| seen.sha256.as_deref().is_some_and(|expected| expected != hash);
        if self.quarantined.contains(rel) {
            if differs(&sha256_of(&source)?) {
                return Err(Skip::Changed("its content differs".into()).into());
            }
            return Ok(None);
        }
        let (copy, hash) = self.copy_whole(rel, &source, task)?;
        if differs(&hash) {
            self.remove_private(&copy);
            return Err(Skip::Changed("its content differs".into()).into());
        }
        self.keep(rel, &copy, &meta, hash);
        Ok(Some(copy))
    }

    /// Puts `staged` in place of `rel`, the file `seen` describes, leaving
    /// it as `after`: once no other process holds it open for writing,
    /// with its undo written ahead, after one last look at the file.
    pub fn commit_checked(&mut self, rel: &Path, staged: Staged, seen: &Seen, after: After) -> anyhow::Result<()> {
        writers::wait_until_closed(seen.dev, seen.ino, HOLD_WAIT).map_err(Skip::HeldOpen)?;
        self.note_written(rel, &staged, &after);
        self.write_ahead(rel, after)?;
        seen.verify(staged.dir().stat(staged.name())?.as_ref())?;
        staged.commit().with_context(|| format!("cannot replace {}", rel.display()))
    }

    /// `commit_checked` for a replacement written in a stream: the state
    /// it leaves is hashed from the staged file.
    pub fn commit_staged(&mut self, rel: &Path, staged: Staged, seen: &Seen) -> anyhow::Result<()> {
        let written = staged.dir().open_read(staged.temp())?.context("the staged file is gone")?;
        let after = After::File(sha256_of(written)?);
        self.commit_checked(rel, staged, seen, after)
    }
}
