//! A temporary application root: a manifest, files written and read by
//! relative path, the binary run against it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::binary::{run_preflight, run_preflight_env, Run};
use super::snapshot::{snapshot, Snapshot};

/// A temporary root with a manifest.
pub struct TestDir {
    dir: TempDir,
}

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
