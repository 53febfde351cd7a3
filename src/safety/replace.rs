//! Replacing a file that a check read: only while it is still that file
//! (`Seen`), never while another process has it open for writing, with its
//! undo written ahead and the last look taken just before the rename.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::apply::ApplyCtx;
use super::atomic::Staged;
use super::journal::{sha256_of, After};
use super::precondition::{hex, Seen, Skip};
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

    /// Replaces `rel`, the file `seen` describes, with bytes `head` of
    /// `source` followed by `tail`: streamed and hashed as it is written,
    /// so a large file is not held in memory nor read back for its hash.
    /// `written` is told the bytes of `head` written so far.
    pub fn commit_spliced(
        &mut self,
        rel: &Path,
        seen: &Seen,
        source: &File,
        head: Range<u64>,
        tail: &[u8],
        written: &dyn Fn(u64),
    ) -> anyhow::Result<()> {
        let mut writer = self.writer(rel)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = head.start;
        while at < head.end {
            let want = (head.end - at).min(buf.len() as u64) as usize;
            let n = match source.read_at(&mut buf[..want], at) {
                Ok(0) => anyhow::bail!("{} ended before byte {}", rel.display(), head.end),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read the copy of {}", rel.display())),
            };
            hasher.update(&buf[..n]);
            writer.write_all(&buf[..n])?;
            at += n as u64;
            written(at - head.start);
        }
        hasher.update(tail);
        writer.write_all(tail)?;
        let staged = writer.stage().with_context(|| format!("cannot write {}", rel.display()))?;
        self.commit_checked(rel, staged, seen, After::File(hex(&hasher.finalize())))
    }

    /// `commit_checked` for a replacement written in a stream: the state
    /// it leaves is hashed from the staged file.
    pub fn commit_staged(&mut self, rel: &Path, staged: Staged, seen: &Seen) -> anyhow::Result<()> {
        let written = staged.dir().open_read(staged.temp())?.context("the staged file is gone")?;
        let after = After::File(sha256_of(written)?);
        self.commit_checked(rel, staged, seen, after)
    }
}
