//! Which other processes have a file open for writing, read from
//! `/proc/<pid>/fd` (the link's target inode) and `/proc/<pid>/fdinfo`
//! (the descriptor's access mode).
//!
//! Chosen over an fcntl write lease (`F_SETLEASE F_WRLCK`), which only
//! says that *someone* has the file open, readers included (a `tail -f`
//! would block every repair), needs the file's owner or CAP_LEASE, and
//! delivers lease breaks as SIGIO; `/proc` names the processes, so the
//! report can say which one to stop. What it cannot see: processes of
//! other users when heal is not root, and writes through a shared memory
//! map. Heal therefore also watches the file's size (see `live`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the scan repeats while heal waits for writers to close.
const POLL: Duration = Duration::from_millis(5);

/// The PIDs (other than this process) holding the file `dev`/`ino` open
/// with write access, in ascending order.
pub fn writers(dev: u64, ino: u64) -> Vec<u32> {
    let me = std::process::id();
    let Ok(procs) = fs::read_dir("/proc") else { return Vec::new() };
    let mut found: Vec<u32> = procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && holds_for_writing(pid, dev, ino))
        .collect();
    found.sort_unstable();
    found
}

fn holds_for_writing(pid: u32, dev: u64, ino: u64) -> bool {
    let base = Path::new("/proc").join(pid.to_string());
    // A process of another user, or one that just ended: nothing visible.
    let Ok(fds) = fs::read_dir(base.join("fd")) else { return false };
    fds.flatten().any(|fd| {
        // stat follows the magic link to the open file itself, renamed or not.
        let same = fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        same && writable(&base.join("fdinfo").join(fd.file_name()))
    })
}

/// Whether the descriptor's `flags:` (octal) allow writing.
fn writable(fdinfo: &Path) -> bool {
    let Ok(text) = fs::read_to_string(fdinfo) else { return false };
    text.lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32)
}

/// Waits up to `limit` for a moment when no other process holds the file
/// open for writing. A writer that opens the file for each line holds it
/// only briefly; one that keeps its descriptor is still there at the end,
/// and its PIDs are returned.
pub fn wait_until_closed(dev: u64, ino: u64, limit: Duration) -> Result<(), Vec<u32>> {
    let end = Instant::now() + limit;
    loop {
        let now = writers(dev, ino);
        if now.is_empty() {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(now);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn a_process_holding_the_file_for_writing_is_found_and_a_reader_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, b"").unwrap();
        let meta = fs::metadata(&path).unwrap();
        let (dev, ino) = (meta.dev(), meta.ino());
        let spawn = |redirect: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("exec 3{redirect}'{}'; read _", path.display()))
                .stdin(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut reader = spawn("<");
        let mut writer = spawn(">>");
        let deadline = Instant::now() + Duration::from_secs(10);
        while writers(dev, ino).is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        assert_eq!(writers(dev, ino), [writer.id()]);
        assert_eq!(wait_until_closed(dev, ino, Duration::from_millis(20)), Err(vec![writer.id()]));
        drop(writer.stdin.take());
        writer.wait().unwrap();
        assert_eq!(wait_until_closed(dev, ino, Duration::from_secs(1)), Ok(()));
        drop(reader.stdin.take());
        reader.wait().unwrap();
    }
}
