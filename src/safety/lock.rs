//! One heal at a time per root: an exclusive lock on `.preflight/lock`,
//! released when the guard is dropped (or the process dies).

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::fs::OFlags;

use super::confined::{Dir, Root};
use super::layout;

/// How long a heal waits for another one on the same root to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

pub struct HealLock {
    _file: File,
}

/// Waits up to `wait` for the lock, creating `.preflight/lock` if needed.
/// `.preflight` must be a real folder beneath the root and the lock a
/// regular file: a symlink, a FIFO or a device there is refused at once.
pub fn acquire(root: &Path, wait: Duration) -> anyhow::Result<HealLock> {
    let path = root.join(layout::lock_file());
    let dir = Root::open(root)?
        .create_dir_all(Path::new(layout::STATE_DIR), 0o700, &mut Vec::new())
        .with_context(|| format!("cannot create {}", layout::STATE_DIR))?;
    let file = dir
        .open_in_place(OsStr::new(layout::LOCK), OFlags::RDWR, Some(0o600))
        .with_context(|| format!("cannot open {}", path.display()))?;
    check_history(&dir)?;
    wait_for(file, &path, wait)
}

/// Takes the lock when `.preflight/lock` already exists; `None` otherwise,
/// so that nothing is created on a root that may need no fix.
pub fn acquire_existing(root: &Path, wait: Duration) -> anyhow::Result<Option<HealLock>> {
    let path = root.join(layout::lock_file());
    let dir = match Root::open(root)?.open_dir(Path::new(layout::STATE_DIR)) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", layout::STATE_DIR)),
    };
    match dir.open_in_place(OsStr::new(layout::LOCK), OFlags::RDONLY, None) {
        Ok(file) => {
            check_history(&dir)?;
            wait_for(file, &path, wait).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}

/// A history that cannot be appended to safely (a symlink, a FIFO, a file
/// with another link) stops heal before it changes anything, not after.
fn check_history(dir: &Dir) -> anyhow::Result<()> {
    match dir.open_in_place(OsStr::new(layout::HISTORY), OFlags::RDONLY, None) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot use {}", layout::history_file().display())),
    }
}

fn wait_for(file: File, path: &Path, wait: Duration) -> anyhow::Result<HealLock> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(HealLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => sleep(Duration::from_millis(50)),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another preflight heal holds {} and did not finish within {}s; try again when it is done",
                path.display(),
                wait.as_secs()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}
