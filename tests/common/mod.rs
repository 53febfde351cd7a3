//! Test harness: a temporary application root, the real `preflight` binary
//! run against it, and byte-level snapshots of the disk.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;
use walkdir::WalkDir;

/// A temporary root with a manifest.
pub struct TestDir {
    dir: TempDir,
}

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

/// Every file and folder under a root: mode and, for files, the bytes.
pub type Snapshot = BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>;

impl TestDir {
    pub fn new() -> Self {
        TestDir { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn with_manifest(toml: &str) -> Self {
        let t = TestDir::new();
        t.write("preflight.toml", toml);
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, contents).unwrap();
        self
    }

    pub fn mkdir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.join(rel)).unwrap();
        self
    }

    pub fn chmod(&self, rel: &str, mode: u32) -> &Self {
        fs::set_permissions(self.join(rel), fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn mode(&self, rel: &str) -> u32 {
        fs::metadata(self.join(rel)).unwrap().mode() & 0o7777
    }

    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.join(rel)).is_ok()
    }

    /// Runs `preflight ARGS -m <root>/preflight.toml` with colours off.
    pub fn run(&self, args: &[&str]) -> Run {
        let manifest = self.join("preflight.toml");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-m", manifest.to_str().unwrap()]);
        run_preflight(&all, self.path())
    }

    /// `run`, with `vars` added to the process environment of the binary.
    pub fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let manifest = self.join("preflight.toml");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-m", manifest.to_str().unwrap()]);
        run_preflight_env(&all, self.path(), vars)
    }

    /// Every entry under the root, `.preflight/` included.
    pub fn snapshot(&self) -> Snapshot {
        snapshot(self.path(), false)
    }

    /// Every entry under the root except preflight's own `.preflight/`.
    pub fn app_snapshot(&self) -> Snapshot {
        snapshot(self.path(), true)
    }
}

pub fn snapshot(root: &Path, skip_state: bool) -> Snapshot {
    if !root.exists() {
        return Snapshot::new();
    }
    WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !(skip_state && e.file_name() == ".preflight"))
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = e.path().symlink_metadata().unwrap();
            let bytes = meta.is_file().then(|| fs::read(e.path()).unwrap());
            (e.path().strip_prefix(root).unwrap().to_path_buf(), (meta.mode() & 0o7777, bytes))
        })
        .collect()
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
    run_preflight_env(args, cwd, &[])
}

/// Runs the binary with `args` in `cwd`, with `vars` added to its environment.
pub fn run_preflight_env(args: &[&str], cwd: &Path, vars: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .envs(vars.iter().copied())
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
