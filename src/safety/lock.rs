//! One heal at a time per root: an exclusive lock on `.preflight/lock`,
//! released when the guard is dropped (or the process dies).

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::layout;
use crate::fsutil;

/// How long a heal waits for another one on the same root to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

pub struct HealLock {
    _file: File,
}

/// Waits up to `wait` for the lock, creating `.preflight/lock` if needed.
pub fn acquire(root: &Path, wait: Duration) -> anyhow::Result<HealLock> {
    let path = root.join(layout::lock_file());
    let dir = fsutil::parent_dir(&path);
    fsutil::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    wait_for(file, &path, wait)
}

/// Takes the lock when `.preflight/lock` already exists; `None` otherwise,
/// so that nothing is created on a root that may need no fix.
pub fn acquire_existing(root: &Path, wait: Duration) -> anyhow::Result<Option<HealLock>> {
    let path = root.join(layout::lock_file());
    match File::options().write(true).open(&path) {
        Ok(file) => wait_for(file, &path, wait).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
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
