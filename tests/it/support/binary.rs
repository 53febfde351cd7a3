//! The real `preflight` binary, run to completion, and the check every
//! run of it goes through: no planted secret in its output or history.

use std::fs;
use std::path::Path;
use std::process::Command;

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

/// Runs the binary with `args` in `cwd`.
pub fn run_preflight(args: &[&str], cwd: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run preflight");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_no_secret(&run, cwd);
    run
}
