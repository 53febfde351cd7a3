//! The real `preflight` binary, run to completion or in the background,
//! and the check every run of it goes through: no planted secret in its
//! output or history.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{ChildGuard, GIVE_UP};

/// What one run of the binary printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "never printed" assertions.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Secrets planted in `.env` files by tests start with this. Every run of
/// the binary in the whole suite is checked for it: output, and the history
/// of the root it ran in.
pub const SECRET_MARK: &str = "sk-live-";

fn assert_no_secret(run: &Run, cwd: &Path) {
    assert!(!run.stdout.contains(SECRET_MARK), "a planted secret reached stdout:\n{}", run.stdout);
    assert!(!run.stderr.contains(SECRET_MARK), "a planted secret reached stderr:\n{}", run.stderr);
    let history = fs::read_to_string(cwd.join(".preflight/history.jsonl")).unwrap_or_default();
    assert!(!history.contains(SECRET_MARK), "a planted secret reached the history:\n{history}");
}

/// `preflight ARGS` in `cwd`, colours off.
fn preflight(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_preflight"));
    command.args(args).current_dir(cwd).env("NO_COLOR", "1").env_remove("CLICOLOR_FORCE");
    command
}

/// Runs the binary with `args` in `cwd`.
pub fn run_preflight(args: &[&str], cwd: &Path) -> Run {
    run_preflight_env(args, cwd, &[])
}

/// Runs the binary with `args` in `cwd`, with `vars` added to its
/// environment (configuration passed as a container or a unit would).
pub fn run_preflight_env(args: &[&str], cwd: &Path, vars: &[(&str, &str)]) -> Run {
    let output = preflight(args, cwd).envs(vars.iter().copied()).output().expect("run preflight");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_no_secret(&run, cwd);
    run
}

/// The binary started with `args` in `cwd` and left running (`watch`,
/// `run --retry-timeout`). Its output goes to files outside the root
/// (never a pipe nobody drains), readable while it runs. Killed when
/// dropped, like every [`ChildGuard`].
pub struct Background {
    child: ChildGuard,
    cwd: PathBuf,
    logs: TempDir,
}

impl Background {
    pub fn start(args: &[&str], cwd: &Path) -> Background {
        let logs = tempfile::tempdir().expect("temp dir");
        let child = ChildGuard::spawn(
            preflight(args, cwd)
                .stdin(Stdio::null())
                .stdout(File::create(logs.path().join("stdout")).unwrap())
                .stderr(File::create(logs.path().join("stderr")).unwrap()),
        );
        Background { child, cwd: cwd.to_path_buf(), logs }
    }

    /// What it has written to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.logs.path().join("stdout")).unwrap_or_default()).into_owned()
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.logs.path().join("stderr")).unwrap_or_default()).into_owned()
    }

    /// Polls stderr until `done` holds. Fails at once, with the output,
    /// when the process exits first; after a minute otherwise.
    pub fn wait_for_stderr(&mut self, what: &str, done: impl Fn(&str) -> bool) {
        let give_up = Instant::now() + GIVE_UP;
        while !done(&self.stderr()) {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = self.stderr();
                if done(&stderr) {
                    return;
                }
                panic!("exited ({status}) before this happened: {what}\n{}{stderr}", self.stdout());
            }
            assert!(Instant::now() < give_up, "never happened: {what}\n{}{}", self.stdout(), self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, how a service manager stops it, unless it has
    /// already exited.
    pub fn terminate(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            // SAFETY: kill only sends a signal, to the child this test
            // started; it is not reaped yet, so the PID is still its own.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        }
    }

    /// Waits for it to exit: what it printed and returned, checked for a
    /// leaked secret like every run.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().expect("wait for preflight");
        let run = Run { code: status.code().unwrap_or(-1), stdout: self.stdout(), stderr: self.stderr() };
        assert_no_secret(&run, &self.cwd);
        run
    }
}
