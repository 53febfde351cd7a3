//! Whether a process is running, and what it is: `kill(pid, 0)` for
//! existence, `/proc/<pid>/stat` to tell zombies (already dead, not yet
//! reaped) and start times apart, `/proc/<pid>/cmdline` for its command line.
//! A PID read from a file is untrusted data: 0 and values that `kill` would
//! read as a process group are refused before any system call.

use std::fs;

/// A PID as read from a lock or pid file, known to name one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pid(i32);

impl Pid {
    /// Parses a decimal PID; refuses 0, negatives and out-of-range values,
    /// which `kill(2)` would apply to whole process groups.
    pub fn parse(text: &str) -> Option<Pid> {
        let value: i32 = text.parse().ok()?;
        (value > 0 && text.bytes().all(|b| b.is_ascii_digit())).then_some(Pid(value))
    }

    pub fn from_child(child: &std::process::Child) -> Option<Pid> {
        i32::try_from(child.id()).ok().filter(|&p| p > 0).map(Pid)
    }

    pub fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is the calling process (a PID reused by preflight itself).
    pub fn is_self(self) -> bool {
        u32::try_from(self.0).is_ok_and(|p| p == std::process::id())
    }
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a process exists and has not exited. A zombie counts as exited;
/// a process of another user (`EPERM`) counts as running.
pub fn is_running(pid: Pid) -> bool {
    // SAFETY: signal 0 performs the permission and existence checks only.
    let rc = unsafe { libc::kill(pid.0, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && stat_field(pid, 0).as_deref() != Some("Z")
}

/// The command line, arguments joined by spaces; `None` when the process
/// is gone or `/proc` cannot be read (zombies and kernel threads have none).
pub fn cmdline(pid: Pid) -> Option<String> {
    let bytes = fs::read(format!("/proc/{}/cmdline", pid.0)).ok()?;
    let words: Vec<String> =
        bytes.split(|&b| b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The start time in clock ticks since boot: with the PID, it identifies a
/// process across a PID reuse.
pub fn start_time(pid: Pid) -> Option<u64> {
    stat_field(pid, 19)?.parse().ok()
}

/// The `n`th field after the command name in `/proc/<pid>/stat` (0 is the
/// state). The name is skipped up to its last `)`: it may hold spaces.
fn stat_field(pid: Pid, n: usize) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{}/stat", pid.0)).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(n).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn pids_that_kill_would_read_as_groups_are_refused() {
        assert_eq!(Pid::parse("0"), None);
        assert_eq!(Pid::parse("-1"), None);
        assert_eq!(Pid::parse("+5"), None);
        assert_eq!(Pid::parse("99999999999"), None);
        assert_eq!(Pid::parse("42"), Some(Pid(42)));
    }

    #[test]
    fn a_child_is_running_until_it_exits_even_as_a_zombie() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_child(&child).unwrap();
        assert!(is_running(pid));
        // Between fork and exec the child still shows the parent's command
        // line: wait (boundedly) for the exec.
        let execed = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            cmdline(pid).is_some_and(|c| c.contains("sleep 30"))
        });
        assert!(execed, "the child's command line is sleep's");
        assert!(start_time(pid).is_some());
        child.kill().unwrap();
        // Not reaped yet: a zombie, which is not running. The signal is
        // delivered asynchronously, so look for a bounded while.
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            !is_running(pid)
        });
        assert!(gone, "a killed, unreaped child counts as exited");
        child.wait().unwrap();
        assert!(!is_running(pid));
    }

    #[test]
    fn this_process_knows_itself() {
        let me = Pid::parse(&std::process::id().to_string()).unwrap();
        assert!(me.is_self());
        assert!(is_running(me));
    }
}
