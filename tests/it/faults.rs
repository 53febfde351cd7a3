//! Fault injection for what a kill cannot produce: a full disk (a file-size
//! limit), a read-only directory, a file the user may not read. Each gives
//! exit 1, a message naming the path, and nothing lost.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{self, Run, TestDir};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs preflight through a wrapper command (prlimit, setpriv…).
fn run_wrapped(t: &TestDir, wrapper: &[&str], args: &[&str]) -> Run {
    let manifest = t.join("preflight.toml");
    let output = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(env!("CARGO_BIN_EXE_preflight"))
        .args(args)
        .args(["-m", manifest.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .expect("run the wrapper");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs as an unprivileged user: root ignores permission bits.
fn run_unprivileged(t: &TestDir, args: &[&str]) -> Run {
    if !is_root() {
        return t.run(args);
    }
    // Let the unprivileged user reach the root folder itself.
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o777)).unwrap();
    run_wrapped(t, &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], args)
}

fn make_world_writable(root: &Path) {
    for (path, (mode, _)) in support::snapshot(root, false) {
        let full = root.join(&path);
        if fs::symlink_metadata(&full).unwrap().is_dir() && mode & 0o200 != 0 {
            fs::set_permissions(&full, fs::Permissions::from_mode(0o777)).unwrap();
        } else if mode & 0o200 != 0 {
            fs::set_permissions(&full, fs::Permissions::from_mode(0o666)).unwrap();
        }
    }
}

#[test]
fn a_full_disk_fails_the_write_and_keeps_the_original() {
    let t = TestDir::with_manifest(
        "version = 1\n[[file]]\npath = \"state.json\"\ndefault = { open_positions = [], closed_positions = [] }\n",
    );
    let original = format!("{{\"open_positions\": [{}]}}", vec!["1"; 2000].join(","));
    t.write("state.json", &original);
    let run = run_wrapped(&t, &["prlimit", "--fsize=2048"], &["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.all_output().contains("state.json") && run.all_output().contains("too large"), "{}", run.all_output());
    assert_eq!(t.read("state.json"), original);
    let leftovers = t.app_snapshot().into_keys().filter(|p| p.to_string_lossy().contains("preflight-tmp")).count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_read_only_directory_is_named_and_nothing_is_lost() {
    let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"data/state.json\"\ndefault = { a = 1 }\n[[file]]\npath = \"data/other.json\"\ndefault = { b = 1 }\n");
    t.write("data/other.json", "{\"c\": 2}");
    make_world_writable(t.path());
    t.chmod("data", 0o555);
    let before = t.app_snapshot();
    let run = run_unprivileged(&t, &["heal"]);
    t.chmod("data", 0o755);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let output = run.all_output();
    assert!(output.contains("data/state.json") && output.contains("ermission denied"), "{output}");
    let after = t.app_snapshot();
    assert_eq!(
        before.get(Path::new("data/other.json")),
        after.get(Path::new("data/other.json")),
        "the original is untouched"
    );
}

#[test]
fn a_file_the_user_may_not_read_is_named_and_left_alone() {
    let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"secret.json\"\ndefault = { a = 1 }\n");
    t.write("secret.json", "{\"a\": 2}");
    make_world_writable(t.path());
    t.chmod("secret.json", 0o000);
    let before = t.app_snapshot();
    let run = run_unprivileged(&t, &["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.all_output().contains("secret.json") && run.all_output().contains("ermission denied"),
        "{}",
        run.all_output()
    );
    assert_eq!(before, t.app_snapshot());
}
