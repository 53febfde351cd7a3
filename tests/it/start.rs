//! What the process guarantees from its first instruction, now that it
//! starts at the C `main` rather than through std's runtime start-up:
//! closed standard descriptors are reopened on /dev/null before anything
//! is opened, a reader that goes away is an error and not a kill, and a
//! panic still ends with std's code.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::support::TestDir;

const MANIFEST: &str = "version = 1\n[[file]]\npath = \"state/positions.json\"\n\
                        default = { open_positions = [], closed_positions = [] }\n";

#[test]
fn closed_standard_descriptors_are_reopened_on_dev_null_before_anything_is_opened() {
    let t = TestDir::with_manifest(MANIFEST);
    // The shell closes 1 and 2 before preflight starts. Left closed, the
    // next file preflight opened would take them over, and the app started
    // by `run` would inherit a closed stdout (std's start-up, which this
    // program no longer goes through, gave both /dev/null).
    let script = format!(
        "exec {} run -- sh -c 'echo $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2) > fds.txt' >&- 2>&-",
        env!("CARGO_BIN_EXE_preflight")
    );
    let status = Command::new("sh").args(["-c", &script]).current_dir(t.path()).status().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(t.read("fds.txt"), "/dev/null /dev/null\n");
    let written = t.read("state/positions.json");
    let parsed: serde_json::Value = serde_json::from_str(&written).unwrap_or_else(|e| panic!("{e}: {written}"));
    assert_eq!(parsed, serde_json::json!({"open_positions": [], "closed_positions": []}));
}

#[test]
fn a_reader_that_goes_away_does_not_kill_it() {
    let t = TestDir::with_manifest(MANIFEST);
    let mut child = Command::new(env!("CARGO_BIN_EXE_preflight"))
        .args(["heal", "--format", "json"])
        .current_dir(t.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the launcher's `| head` that has read enough
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), None, "killed by a signal: {stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    // The heal itself ran to its end: the file is there and recorded.
    assert!(t.exists("state/positions.json"));
    assert!(t.read(".preflight/history.jsonl").contains("positions.json"));
}

#[test]
fn bad_arguments_and_help_keep_their_exit_codes() {
    let t = TestDir::with_manifest(MANIFEST);
    assert_eq!(t.run(&["--no-such-flag"]).code, 1);
    let help = t.run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("validate"), "{}", help.stdout);
}
