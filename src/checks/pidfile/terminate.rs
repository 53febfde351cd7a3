//! Stopping the process a pid file names (`on_running = "terminate"`):
//! SIGTERM, a bounded wait, then SIGKILL, then the pid file is removed.
//! Before any signal the process is identified again: same pid file
//! content, same start time as when it was checked, and a command line that
//! still contains the `match` pattern. A PID reused in between is left alone.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::runtime::content::read_bounded;
use crate::runtime::process::{self, Pid};
use crate::safety::{ApplyCtx, CustomOp, Op};

/// How long a process gets to exit after SIGTERM before SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(10);

/// How long to wait for a process to disappear after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Terminates the process `pid` named by `pidfile`, then removes the file.
#[derive(Debug)]
pub struct Terminate {
    pub pidfile: PathBuf,
    /// The pid file's bytes when it was checked.
    pub expected: Vec<u8>,
    pub pid: Pid,
    /// For plan lines and details: the program's name, no arguments.
    pub program: String,
    /// The process's start time when it was checked, if `/proc` told it.
    pub start_time: Option<u64>,
    pub pattern: Option<String>,
    pub grace: Duration,
}

impl CustomOp for Terminate {
    fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "send SIGTERM to process {} ({}), SIGKILL if it still runs after {}s",
                self.pid,
                self.program,
                self.grace.as_secs()
            ),
            format!("remove {} (copy kept in quarantine)", self.pidfile.display()),
        ]
    }

    fn apply(&self, ctx: &mut ApplyCtx) -> anyhow::Result<String> {
        let read = |ctx: &ApplyCtx| -> anyhow::Result<Option<Vec<u8>>> {
            Ok(ctx.read(&self.pidfile)?.map(read_bounded).transpose()?)
        };
        if read(ctx)?.as_ref() != Some(&self.expected) {
            bail!("{} changed since it was checked; nothing was signalled", self.pidfile.display());
        }
        let mut detail = if process::is_running(self.pid) {
            self.confirm_identity()?;
            self.stop()?
        } else {
            format!("process {} had already exited", self.pid)
        };
        if read(ctx).is_ok_and(|now| now.as_ref() == Some(&self.expected)) {
            ctx.apply(&Op::RemoveFile { path: self.pidfile.clone(), quarantine: true })?;
            detail.push_str(&format!("; removed {}", self.pidfile.display()));
        }
        Ok(detail)
    }
}

impl Terminate {
    /// Refuses when the PID now names another process than the one checked.
    fn confirm_identity(&self) -> anyhow::Result<()> {
        if self.start_time.is_some() && process::start_time(self.pid) != self.start_time {
            bail!("process {} is not the one that was checked (the PID was reused); not signalled", self.pid);
        }
        if let Some(pattern) = &self.pattern {
            if !process::cmdline(self.pid).is_some_and(|c| c.contains(pattern.as_str())) {
                bail!("the command line of process {} no longer contains {pattern:?}; not signalled", self.pid);
            }
        }
        Ok(())
    }

    /// SIGTERM, wait, SIGKILL, wait. Says what it took.
    fn stop(&self) -> anyhow::Result<String> {
        signal(self.pid, libc::SIGTERM)?;
        if wait_until_gone(self.pid, self.grace) {
            return Ok(format!("sent SIGTERM to process {} ({}); it exited", self.pid, self.program));
        }
        signal(self.pid, libc::SIGKILL)?;
        if wait_until_gone(self.pid, KILL_WAIT) {
            return Ok(format!(
                "sent SIGTERM to process {} ({}); it still ran after {}s, so SIGKILL; it exited",
                self.pid,
                self.program,
                self.grace.as_secs()
            ));
        }
        bail!("process {} still runs after SIGKILL; the pid file is kept", self.pid)
    }
}

fn signal(pid: Pid, signal: i32) -> anyhow::Result<()> {
    // SAFETY: Pid is positive, so this signals exactly one process.
    if unsafe { libc::kill(pid.raw(), signal) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            bail!("cannot signal process {pid}: {err}");
        }
    }
    Ok(())
}

/// Polls until the process is gone (or a zombie) or `wait` has passed.
fn wait_until_gone(pid: Pid, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if !process::is_running(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn op(pid: Pid, pattern: Option<&str>, grace: Duration) -> Terminate {
        Terminate {
            pidfile: PathBuf::from("app.pid"),
            expected: format!("{pid}\n").into_bytes(),
            pid,
            program: "sh".into(),
            start_time: process::start_time(pid),
            pattern: pattern.map(str::to_string),
            grace,
        }
    }

    #[test]
    fn a_process_that_ignores_sigterm_gets_sigkill() {
        let root = tempfile::tempdir().unwrap();
        let mut child = Command::new("sh").args(["-c", "trap '' TERM; while :; do sleep 0.05; done"]).spawn().unwrap();
        let pid = Pid::from_child(&child).unwrap();
        std::fs::write(root.path().join("app.pid"), format!("{pid}\n")).unwrap();
        // Let the shell install its trap before it is signalled.
        let ready = (0..200).any(|_| {
            thread::sleep(Duration::from_millis(10));
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let ignored = status.lines().find_map(|l| l.strip_prefix("SigIgn:"));
            ignored.and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()).is_some_and(|m| m & (1 << 14) != 0)
        });
        assert!(ready, "the shell ignores SIGTERM");
        let mut ctx = ApplyCtx::new(root.path(), "r1");
        let detail = op(pid, Some("while"), Duration::from_millis(300)).apply(&mut ctx).unwrap();
        assert!(detail.contains("SIGKILL"), "{detail}");
        assert!(!root.path().join("app.pid").exists());
        child.wait().unwrap();
    }

    #[test]
    fn a_process_whose_command_line_does_not_match_is_not_signalled() {
        let root = tempfile::tempdir().unwrap();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = Pid::from_child(&child).unwrap();
        std::fs::write(root.path().join("app.pid"), format!("{pid}\n")).unwrap();
        let mut ctx = ApplyCtx::new(root.path(), "r1");
        let err = op(pid, Some("my-server"), Duration::from_secs(1)).apply(&mut ctx).unwrap_err();
        assert!(err.to_string().contains("not signalled"), "{err}");
        assert!(process::is_running(pid));
        assert!(root.path().join("app.pid").exists());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
