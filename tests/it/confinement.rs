//! The private folder is confined like any other path, special files never
//! block a run, odd names and huge durations never stop one half-done, and
//! a file with another link is never changed in place.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filetime::FileTime;

use crate::support::{self, ChildGuard, Run, TestDir};

/// Runs `preflight ARGS -m <root>/preflight.toml`, failing the test if it
/// has not finished within 20 s (a blocking open would hang it forever).
fn run_bounded(t: &TestDir, args: &[&str]) -> Run {
    let manifest = t.join("preflight.toml");
    let mut child = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_preflight"))
            .args(args)
            .args(["-m", manifest.to_str().unwrap()])
            .current_dir(t.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // The guard kills it if this fails.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "preflight {args:?} hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path for the call's duration.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

const ONE_FILE: &str = "version = 1\n[[file]]\npath = \"state.json\"\ndefault = { a = 1 }\n";

#[test]
fn a_private_folder_symlinked_out_of_the_root_receives_nothing() {
    let outside = TestDir::new();
    let t = TestDir::with_manifest(ONE_FILE);
    t.write("state.json", "{\"b\": 2}");
    symlink(outside.path(), t.join(".preflight")).unwrap();
    let run = run_bounded(&t, &["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("`.preflight` is a symlink"), "{}", run.stderr);
    assert!(support::snapshot(outside.path(), false).is_empty(), "lock, history or quarantine went outside");
    assert_eq!(t.read("state.json"), "{\"b\": 2}", "nothing is changed when the private folder is unusable");
}

#[test]
fn a_quarantine_folder_symlinked_out_of_the_root_receives_no_copy() {
    let outside = TestDir::new();
    let t = TestDir::with_manifest(ONE_FILE);
    t.write("state.json", "{\"b\": 2}").mkdir(".preflight");
    symlink(outside.path(), t.join(".preflight/quarantine")).unwrap();
    let run = run_bounded(&t, &["heal", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stdout.contains("quarantine` is a symlink"), "{}", run.stdout);
    assert!(support::snapshot(outside.path(), false).is_empty(), "a copy went outside");
    assert_eq!(t.read("state.json"), "{\"b\": 2}", "no original is replaced without its copy");
}

#[test]
fn a_symlinked_history_is_never_appended_through() {
    let outside = TestDir::new();
    outside.write("log", "theirs\n");
    let t = TestDir::with_manifest(ONE_FILE);
    t.mkdir(".preflight");
    symlink(outside.join("log"), t.join(".preflight/history.jsonl")).unwrap();
    let run = run_bounded(&t, &["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("history.jsonl"), "{}", run.stderr);
    assert_eq!(outside.read("log"), "theirs\n");
    assert!(!t.exists("state.json"), "heal stops before acting when it cannot record what it does");
}

#[test]
fn a_fifo_as_the_lock_is_refused_at_once() {
    let t = TestDir::with_manifest(ONE_FILE);
    t.mkdir(".preflight");
    mkfifo(&t.join(".preflight/lock"));
    let run = run_bounded(&t, &["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
}

#[test]
fn a_fifo_as_the_history_is_refused_at_once() {
    let t = TestDir::with_manifest(ONE_FILE);
    t.mkdir(".preflight");
    mkfifo(&t.join(".preflight/history.jsonl"));
    for args in [&["history"][..], &["heal"], &["rollback"]] {
        let run = run_bounded(&t, args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all_output());
        assert!(run.stderr.contains("FIFO"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_fifo_as_a_schema_file_is_refused_at_once() {
    let t = TestDir::with_manifest(
        "version = 1\n[[database]]\npath = \"app.db\"\nschema = \"schema.sql\"\n\
         [[file]]\npath = \"p.json\"\nschema = \"p.schema.json\"\n",
    );
    t.write("p.json", "{}");
    mkfifo(&t.join("schema.sql"));
    mkfifo(&t.join("p.schema.json"));
    let run = run_bounded(&t, &["validate"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
    fs::remove_file(t.join("schema.sql")).unwrap();
    t.write("schema.sql", "CREATE TABLE t(a);");
    let run = run_bounded(&t, &["validate"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("p.schema.json") && run.stderr.contains("FIFO"), "{}", run.stderr);
}

#[test]
fn init_does_not_write_schemas_through_a_symlinked_folder() {
    let outside = TestDir::new();
    let t = TestDir::new();
    rusqlite::Connection::open(t.join("app.db")).unwrap().execute_batch("CREATE TABLE t(a)").unwrap();
    symlink(outside.path(), t.join("schemas")).unwrap();
    let run = support::run_preflight(&["init"], t.path());
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("`schemas` is a symlink"), "{}", run.stderr);
    assert!(support::snapshot(outside.path(), false).is_empty(), "a schema dump went outside");
}

#[test]
fn a_stale_lock_with_a_name_that_is_not_utf8_is_removed_recorded_and_restorable() {
    let t = TestDir::with_manifest(
        "version = 1\n[[lock]]\nglob = \"state/*.lock\"\nstale_after = \"1m\"\n\
         [[file]]\npath = \"z.json\"\ndefault = { a = 1 }\n",
    );
    t.mkdir("state");
    let name = t.join("state").join(OsStr::from_bytes(b"caf\xe9.lock"));
    fs::write(&name, "").unwrap();
    filetime::set_file_mtime(&name, FileTime::from_unix_time(1_000_000_000, 0)).unwrap();
    let run = run_bounded(&t, &["heal", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(!name.exists() && t.exists("z.json"));
    let history = t.read(".preflight/history.jsonl");
    assert_eq!(history.lines().count(), 2, "both actions are recorded: {history}");
    assert!(history.contains("remove stale lock"), "{history}");
    let run = run_bounded(&t, &["rollback"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(name.exists(), "the lock is put back under its exact name");
}

#[test]
fn durations_too_large_are_errors_not_panics() {
    let t = TestDir::with_manifest(
        "version = 1\n[[command]]\nname = \"t\"\nrun = \"true\"\ntimeout = \"18446744073709551615s\"\n",
    );
    let run = run_bounded(&t, &["validate"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("preflight.toml:5:11") && run.stderr.contains("100 years"), "{}", run.stderr);
    t.write("preflight.toml", "version = 1\n");
    for args in [
        &["run", "--retry-timeout", "18446744073709551615s", "--", "true"][..],
        &["watch", "--interval", "18446744073709551615s"],
    ] {
        let run = run_bounded(&t, args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all_output());
        assert!(run.stderr.contains("100 years"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_hard_linked_heartbeat_is_not_touched_through_its_other_link() {
    let outside = TestDir::new();
    outside.write("beat", "");
    let old = FileTime::from_unix_time(1_000_000_000, 0);
    filetime::set_file_mtime(outside.join("beat"), old).unwrap();
    let t = TestDir::with_manifest("version = 1\n[[heartbeat]]\npath = \"beat\"\nmax_age = \"1m\"\n");
    fs::hard_link(outside.join("beat"), t.join("beat")).unwrap();
    let run = run_bounded(&t, &["heal", "--format", "json"]);
    let actions = run.json()["actions"].clone();
    assert_eq!(actions[0]["outcome"], "failed", "{actions}");
    assert!(actions[0]["detail"].as_str().unwrap().contains("2 hard links"), "{actions}");
    let mtime = FileTime::from_last_modification_time(&fs::metadata(outside.join("beat")).unwrap());
    assert_eq!(mtime, old, "the outside link was touched");
}

#[test]
fn a_hard_linked_database_is_not_changed_through_its_other_link() {
    let outside = TestDir::new();
    rusqlite::Connection::open(outside.join("app.db")).unwrap().execute_batch("CREATE TABLE t(a)").unwrap();
    let before = fs::read(outside.join("app.db")).unwrap();
    let t = TestDir::with_manifest("version = 1\n[[database]]\npath = \"app.db\"\nschema = \"schema.sql\"\n");
    t.write("schema.sql", "CREATE TABLE t(a, b);");
    fs::hard_link(outside.join("app.db"), t.join("app.db")).unwrap();
    let run = run_bounded(&t, &["heal", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let actions = run.json()["actions"].clone();
    assert_eq!(actions[0]["outcome"], "failed", "{actions}");
    assert!(actions[0]["detail"].as_str().unwrap().contains("2 hard links"), "{actions}");
    assert_eq!(fs::read(outside.join("app.db")).unwrap(), before, "the outside link was changed");
}
