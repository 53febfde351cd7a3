//! Rewriting a log (an append-only file such as JSONL) while the
//! application may be appending to it. No appended line may be lost:
//!
//! 1. Nothing is done while another process holds the file open for
//!    writing (`writers`); one that keeps it open is named in the skip.
//! 2. The original is copied whole; the rewrite reads the copy. Lines
//!    appended meanwhile are carried over from the old end offset, into
//!    the copy and the rewrite, until the file stops growing and no one
//!    holds it for writing; a file that keeps growing is left alone.
//! 3. The rewrite is swapped in (`renameat2(RENAME_EXCHANGE)`), so the old
//!    file keeps a name until heal lets it go.
//! 4. A writer that opened the old file just before the swap may still
//!    append to it: heal waits for such writers to close, then carries
//!    those last lines over to the new file. A writer that does not close
//!    gets the old file back (swapped again, with whatever was appended to
//!    the new one meanwhile), and the action is skipped.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::fs::OFlags;
use sha2::{Digest, Sha256};

use super::apply::ApplyCtx;
use super::atomic::Staged;
use super::copy::Copy;
use super::journal::After;
use super::layout::Area;
use super::precondition::{hex, Seen, Skip};
use super::progress::Task;
use super::replace::HOLD_WAIT;
use super::writers;

/// How long heal keeps carrying lines of a file that keeps growing.
const GROW_LIMIT: Duration = Duration::from_secs(5);

/// Bytes read at a time when lines are carried over.
const CHUNK: usize = 4 << 20;

/// Turns lines of the log into what the rewritten log keeps.
pub trait Lines {
    /// Rewrites `lines`: whole lines, each ending in `\n`, or with `last`,
    /// the file's final bytes, which may lack it.
    fn rewrite(&mut self, lines: &[u8], last: bool, kept: &mut dyn Write) -> io::Result<()>;
    /// Makes what the rewrite set aside (bad lines) durable: called before
    /// the file that held them changes.
    fn sync(&mut self) -> io::Result<()>;
}

/// Bytes appended to the log while it was rewritten, all carried over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    /// Before the swap, into the rewrite.
    pub before: u64,
    /// After the swap, from the old file to the new one.
    pub after: u64,
}

/// The old file as it is read: what is copied, and the incomplete last
/// line not rewritten yet.
struct Old<'a> {
    file: &'a fs::File,
    copy: Copy,
    tail: Vec<u8>,
    /// Told the bytes read and rewritten so far, chunk by chunk.
    task: &'a dyn Task,
}

impl Old<'_> {
    /// Copies what was appended since the last look, and rewrites its whole
    /// lines. Returns the bytes carried.
    fn carry(&mut self, lines: &mut dyn Lines, kept: &mut dyn Write) -> anyhow::Result<u64> {
        let size = self.file.metadata()?.len();
        let from = self.copy.len();
        if size < from {
            return Err(Skip::Changed("it shrank while it was rewritten".into()).into());
        }
        let mut buf = vec![0u8; CHUNK.min((size - from) as usize)];
        while self.copy.len() < size {
            if self.copy.len() > from {
                self.task.advance(self.copy.len()); // the chunks before are rewritten
            }
            let n = match self.file.read_at(&mut buf, self.copy.len()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            let chunk = &buf[..n];
            self.copy.extend(chunk)?;
            let Some(newline) = memchr::memrchr(b'\n', chunk) else {
                self.tail.extend_from_slice(chunk);
                continue;
            };
            let (whole, rest) = chunk.split_at(newline + 1);
            if self.tail.is_empty() {
                // The common case, no line cut at the last chunk's end: no copy.
                lines.rewrite(whole, false, kept)?;
            } else {
                self.tail.extend_from_slice(whole);
                lines.rewrite(&self.tail, false, kept)?;
                self.tail.clear();
            }
            self.tail.extend_from_slice(rest);
        }
        if self.copy.len() > from {
            self.task.advance(self.copy.len());
        }
        Ok(self.copy.len() - from)
    }

    /// Rewrites the last bytes, the file being final for now.
    fn finish(&mut self, lines: &mut dyn Lines, kept: &mut dyn Write) -> io::Result<()> {
        let tail = std::mem::take(&mut self.tail);
        if tail.is_empty() {
            return Ok(());
        }
        lines.rewrite(&tail, true, kept)
    }
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ApplyCtx<'_> {
    /// Rewrites the log at `rel` through `lines`, carrying over every line
    /// appended meanwhile (see the module comment). `seen` is what the
    /// check read: the same file, its first `seen.size` bytes unchanged.
    pub fn rewrite_log(&mut self, rel: &Path, seen: &Seen, lines: &mut dyn Lines) -> anyhow::Result<Carried> {
        self.journal.touch(self.root(), rel);
        let file = match self.read(rel) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(Skip::Changed("removed".into()).into()),
            Err(e) => return Err(e.context(format!("{} is left alone", rel.display()))),
        };
        let meta = file.metadata()?;
        if let Some(why) = seen.shrunk_or_replaced(&meta) {
            return Err(Skip::Changed(why).into());
        }
        writers::wait_until_closed(seen.dev, seen.ino, HOLD_WAIT).map_err(Skip::HeldOpen)?;
        let (copy_file, copy_path) = self.new_private_file(Area::Quarantine, rel)?;
        let task = self.progress().task(&format!("rewrite {}", rel.display()), Some(meta.len()));
        let mut old =
            Old { file: &file, copy: Copy::new(copy_file, Some(seen.size)), tail: Vec::new(), task: task.as_ref() };
        let result = self.rewrite_from(rel, seen, &meta, &copy_path, &mut old, lines);
        task.finish();
        if result.is_err() && !self.quarantined.contains(rel) {
            // Not kept (the rewrite stopped before the swap): not a copy of anything.
            self.remove_private(&copy_path);
        }
        result
    }

    fn rewrite_from(
        &mut self,
        rel: &Path,
        seen: &Seen,
        meta: &fs::Metadata,
        copy_path: &Path,
        old: &mut Old,
        lines: &mut dyn Lines,
    ) -> anyhow::Result<Carried> {
        let mut kept = Hashing { inner: self.writer(rel)?, hasher: Sha256::new(), len: 0 };
        let first = old.carry(lines, &mut kept).with_context(|| format!("cannot quarantine {}", rel.display()))?;
        let prefix_differs = seen.sha256.as_deref().is_some_and(|h| old.copy.prefix_sha256() != Some(h));
        if first < seen.size || prefix_differs {
            return Err(Skip::Changed(format!("its first {} bytes differ", seen.size)).into());
        }
        let before = self.carry_until_quiet(seen, old, lines, &mut kept)?;
        old.finish(lines, &mut kept)?;
        lines.sync()?;
        let after = After::File(hex(&kept.hasher.clone().finalize()));
        let written = kept.len;
        let staged = kept.inner.stage().with_context(|| format!("cannot write {}", rel.display()))?;
        let saved_hash = old.copy.seal().with_context(|| format!("cannot quarantine {}", rel.display()))?;
        self.keep(rel, copy_path, meta, saved_hash);
        // Known until lines are carried after the swap (then read again).
        self.note_written(rel, &staged, &after);
        self.write_ahead(rel, after)?;
        let now = staged.dir().stat(staged.name())?;
        if now.map(|s| (s.st_dev, s.st_ino)) != Some((seen.dev, seen.ino)) {
            return Err(Skip::Changed("replaced by another file".into()).into());
        }
        staged.exchange().with_context(|| format!("cannot replace {}", rel.display()))?;
        let after = self.settle_old(rel, seen, old, lines, staged, written)?;
        Ok(Carried { before, after })
    }

    /// Carries appended lines until the file stops growing at a moment no
    /// other process holds it open for writing. Returns the bytes carried.
    fn carry_until_quiet(
        &mut self,
        seen: &Seen,
        old: &mut Old,
        lines: &mut dyn Lines,
        kept: &mut dyn Write,
    ) -> anyhow::Result<u64> {
        let start = Instant::now();
        let mut carried = 0;
        let mut held_since: Option<Instant> = None;
        loop {
            let holders = writers::writers(seen.dev, seen.ino);
            carried += old.carry(lines, kept)?;
            if holders.is_empty() {
                if old.file.metadata()?.len() == old.copy.len() {
                    return Ok(carried);
                }
                held_since = None;
            } else if held_since.get_or_insert_with(Instant::now).elapsed() > HOLD_WAIT {
                return Err(Skip::HeldOpen(holders).into());
            }
            if start.elapsed() > GROW_LIMIT {
                return Err(Skip::Growing.into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// After the swap: waits for writers of the old file to close, then
    /// carries what they appended to the new file. Returns those bytes.
    fn settle_old(
        &mut self,
        rel: &Path,
        seen: &Seen,
        old: &mut Old,
        lines: &mut dyn Lines,
        staged: Staged,
        written: u64,
    ) -> anyhow::Result<u64> {
        let put_back =
            |staged: Staged| swap_back(staged, written).with_context(|| format!("cannot put {} back", rel.display()));
        if let Err(pids) = writers::wait_until_closed(seen.dev, seen.ino, HOLD_WAIT) {
            put_back(staged)?;
            return Err(Skip::HeldOpen(pids).into());
        }
        let mut late = Vec::new();
        let carried = old.carry(lines, &mut late).and_then(|n| {
            old.finish(lines, &mut late)?;
            lines.sync()?;
            Ok(n)
        });
        let carried = match carried {
            Ok(n) => n,
            Err(e) => {
                put_back(staged)?;
                return Err(e);
            }
        };
        if carried > 0 {
            append(&staged, staged.name(), &late)
                .with_context(|| format!("cannot carry the last lines into {}", rel.display()))?;
            let hash = old.copy.seal().with_context(|| format!("cannot quarantine {}", rel.display()))?;
            self.journal.rehash_saved(rel, hash);
        }
        // The old file's last name goes: every byte of it is in the copy.
        drop(staged);
        Ok(carried)
    }
}

/// Appends `bytes` to the file `name` beside `staged`, in one write, durably.
fn append(staged: &Staged, name: &std::ffi::OsStr, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut file = staged.dir().open_in_place(name, OFlags::WRONLY | OFlags::APPEND, None)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Swaps the old file back in after the new one was in place: what was
/// appended to the new file meanwhile (beyond its first `written` bytes)
/// is appended to the old one, then the new one goes. When that cannot be
/// done, the file not in place keeps its temporary name, never removed.
fn swap_back(staged: Staged, written: u64) -> io::Result<()> {
    if let Err(e) = staged.exchange() {
        staged.keep();
        return Err(e);
    }
    let carried = (|| {
        let new = staged.dir().open_read(staged.temp())?.ok_or_else(|| io::Error::other("the new file is gone"))?;
        let meta = new.metadata()?;
        // Best effort: an appender that reopens per line closes at once.
        let _ = writers::wait_until_closed(meta.dev(), meta.ino(), HOLD_WAIT);
        let len = new.metadata()?.len();
        let mut appended = vec![0u8; len.saturating_sub(written) as usize];
        new.read_exact_at(&mut appended, written)?;
        append(&staged, staged.name(), &appended)
    })();
    if let Err(e) = carried {
        // Out of the temporary names the next heal sweeps away.
        let dir = staged.dir().try_clone()?;
        let mut name = staged.name().to_os_string();
        name.push(".appended-during-heal");
        let temp = staged.keep();
        let kept = match dir.rename(&temp, &name, false) {
            Ok(()) => name,
            Err(_) => temp,
        };
        return Err(io::Error::other(format!("{e}; what was appended meanwhile is in {}", Path::new(&kept).display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::layout;
    use std::process::Command;

    /// Keeps every line as it is.
    struct Keep;

    impl Lines for Keep {
        fn rewrite(&mut self, lines: &[u8], _last: bool, kept: &mut dyn Write) -> io::Result<()> {
            kept.write_all(lines)
        }

        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_rewritten_under_a_live_appender_keeps_every_line_once() {
        for round in 0..3 {
            let root = tempfile::tempdir().unwrap();
            let log = root.path().join("log");
            fs::write(&log, (0..100_000).map(|i| format!("old {i}\n")).collect::<String>()).unwrap();
            let seen = Seen::prefix(&log, fs::metadata(&log).unwrap().len()).unwrap();
            // dash opens the file for each `>>`: the appender that reopens per line.
            let script =
                format!("i=0; while [ $i -lt 3000 ]; do echo \"new $i\" >> '{}'; i=$((i+1)); done", log.display());
            let mut writer = Command::new("sh").arg("-c").arg(script).spawn().unwrap();
            let mut ctx = ApplyCtx::new(root.path(), "r");
            let carried = ctx.rewrite_log(Path::new("log"), &seen, &mut Keep);
            assert!(writer.wait().unwrap().success());
            assert!(carried.is_ok(), "round {round}: {carried:?}");
            let text = fs::read_to_string(&log).unwrap();
            let lines: std::collections::HashMap<&str, usize> = text.lines().fold(Default::default(), |mut m, l| {
                *m.entry(l).or_default() += 1;
                m
            });
            for line in (0..100_000).map(|i| format!("old {i}")).chain((0..3000).map(|i| format!("new {i}"))) {
                assert_eq!(lines.get(line.as_str()), Some(&1), "round {round}: {line}");
            }
            let copy = root.path().join(layout::saved_copy(Area::Quarantine, "r", Path::new("log")));
            assert!(fs::read_to_string(copy).unwrap().starts_with("old 0\n"), "the original is kept");
        }
    }

    /// Drops lines starting with `bad`, and, just before the swap (its
    /// first `sync`), starts a writer that opens the old file, writes
    /// `first`, waits `hold`, then writes `second`.
    struct DropBadWithLateWriter {
        log: std::path::PathBuf,
        hold: &'static str,
        writer: Option<std::process::Child>,
    }

    impl Lines for DropBadWithLateWriter {
        fn rewrite(&mut self, lines: &[u8], _last: bool, kept: &mut dyn Write) -> io::Result<()> {
            let text = String::from_utf8_lossy(lines);
            for line in text.split_inclusive('\n').filter(|l| !l.starts_with("bad")) {
                kept.write_all(line.as_bytes())?;
            }
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            if self.writer.is_none() {
                let script = format!(
                    "exec 3>>'{}'; echo first >&3; sleep {} 3>&-; echo second >&3",
                    self.log.display(),
                    self.hold
                );
                self.writer = Some(Command::new("sh").arg("-c").arg(script).spawn()?);
                let meta = fs::metadata(&self.log)?;
                // Opened before the swap: the writer holds the old file.
                while writers::writers(meta.dev(), meta.ino()).is_empty() {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Ok(())
        }
    }

    fn log_with_a_bad_line(root: &Path) -> (std::path::PathBuf, Seen) {
        let log = root.join("log");
        fs::write(&log, "a\nbad\nb\n").unwrap();
        let seen = Seen::prefix(&log, fs::metadata(&log).unwrap().len()).unwrap();
        (log, seen)
    }

    #[test]
    fn lines_a_writer_appends_to_the_old_file_after_the_swap_are_carried_over() {
        let root = tempfile::tempdir().unwrap();
        let (log, seen) = log_with_a_bad_line(root.path());
        let mut lines = DropBadWithLateWriter { log: log.clone(), hold: "0.3", writer: None };
        let mut ctx = ApplyCtx::new(root.path(), "r");
        let carried = ctx.rewrite_log(Path::new("log"), &seen, &mut lines).unwrap();
        assert!(lines.writer.take().unwrap().wait().unwrap().success());
        assert_eq!(fs::read_to_string(&log).unwrap(), "a\nb\nfirst\nsecond\n");
        assert_eq!(carried.after, 13, "both lines went to the old file and were carried: {carried:?}");
    }

    #[test]
    fn a_writer_that_keeps_the_old_file_open_gets_it_back() {
        let root = tempfile::tempdir().unwrap();
        let (log, seen) = log_with_a_bad_line(root.path());
        let mut lines = DropBadWithLateWriter { log: log.clone(), hold: "3", writer: None };
        let mut ctx = ApplyCtx::new(root.path(), "r");
        let err = ctx.rewrite_log(Path::new("log"), &seen, &mut lines).unwrap_err();
        let mut writer = lines.writer.take().unwrap();
        assert!(format!("{err:#}").contains(&format!("held open for writing by PID {}", writer.id())), "{err:#}");
        assert!(writer.wait().unwrap().success());
        // Nothing rewritten, nothing lost: the writer's lines are in the file it kept.
        assert_eq!(fs::read_to_string(&log).unwrap(), "a\nbad\nb\nfirst\nsecond\n");
        assert_eq!(fs::read_dir(root.path()).unwrap().flatten().filter(|e| e.file_name() != ".preflight").count(), 1);
    }
}
