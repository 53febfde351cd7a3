//! `[app] user`: validate checks the app's account can use every declared
//! path; heal run as root gives what it creates, and what the account must
//! own, to that account; rollback gives it back. These tests need root (to
//! own files as another user) and use the `nobody` account.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use super::{is_root, preflight};
use crate::support::{Run, TestDir};

const NOBODY: u32 = 65534;
const SCHEMA: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY);\n";

fn root_or_skip() -> bool {
    let root = is_root();
    if !root {
        eprintln!("skipped: needs root to create files owned by another user");
    }
    root && nobody_exists()
}

fn nobody_exists() -> bool {
    let found = Command::new("id").arg("nobody").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: no `nobody` account on this machine");
    }
    found
}

fn manifest(user: Option<&str>) -> String {
    let app = user.map(|u| format!("[app]\nuser = \"{u}\"\n")).unwrap_or_default();
    format!(
        "version = 1\n{app}[[dir]]\npath = \"data\"\n[[database]]\npath = \"data/app.db\"\nschema = \"schema.sql\"\n\
         [[file]]\npath = \"data/state.json\"\ndefault = {{ items = [] }}\n"
    )
}

/// A root the unprivileged account can reach (a temp dir is 0700).
fn reachable(manifest: &str) -> TestDir {
    let t = TestDir::with_manifest(manifest);
    t.write("schema.sql", SCHEMA);
    t.chmod(".", 0o755);
    t
}

fn chown(t: &TestDir, rel: &str, uid: u32) {
    std::os::unix::fs::chown(t.join(rel), Some(uid), Some(uid)).unwrap();
}

fn owner(t: &TestDir, rel: &str) -> (u32, u32) {
    let meta = fs::metadata(t.join(rel)).unwrap();
    (meta.uid(), meta.gid())
}

/// Runs a shell line as `nobody` in the root.
fn as_nobody(t: &TestDir, line: &str) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", line])
        .current_dir(t.path())
        .status()
        .unwrap()
        .success()
}

fn as_nobody_preflight(t: &TestDir, args: &[&str]) -> Run {
    let manifest = t.join("preflight.toml");
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", preflight()])
        .args(args)
        .args(["-m", manifest.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The state of the issue: a folder with mode 0500 and a database with
/// mode 0400, both the app's, and a JSON file root owns.
fn locked_out() -> TestDir {
    let t = reachable(&manifest(Some("nobody")));
    t.mkdir("data");
    assert_eq!(t.run(&["heal"]).code, 0, "set up: heal creates the database and the file");
    chown(&t, "data", NOBODY);
    chown(&t, "data/app.db", NOBODY);
    chown(&t, "data/state.json", 0);
    t.chmod("data/app.db", 0o400).chmod("data/state.json", 0o644).chmod("data", 0o500);
    t
}

#[test]
fn validate_as_root_checks_what_the_app_user_can_do() {
    if !root_or_skip() {
        return;
    }
    let t = locked_out();
    let run = t.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let ids: Vec<String> = run.json()["findings"].as_array().unwrap().iter().map(|f| f["id"].to_string()).collect();
    for id in ["dir:data:access", "db:data/app.db:access", "file:data/state.json:mode"] {
        assert!(ids.contains(&format!("\"{id}\"")), "{id} in {ids:?}");
    }
    assert!(run.stdout.contains("user nobody (uid 65534) cannot search and write it"), "{}", run.stdout);
    // Without [app], root is the one checked, and root may write them all.
    t.write("preflight.toml", manifest(None));
    assert_eq!(t.run(&["validate", "--only", "dir:data:access"]).code, 0);
}

#[test]
fn heal_as_root_gives_the_app_user_what_it_must_write_and_rollback_takes_it_back() {
    if !root_or_skip() {
        return;
    }
    let t = locked_out();
    assert!(!as_nobody(&t, "touch data/new"), "set up: the app is locked out");
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.stdout);
    assert!(as_nobody(&t, "touch data/new && test -w data/app.db && test -w data/state.json"));
    assert_eq!(owner(&t, "data/state.json"), (NOBODY, NOBODY));
    assert_eq!(t.mode("data") & 0o700, 0o700);
    fs::remove_file(t.join("data/new")).unwrap();
    let history = t.run(&["history", "--json"]).stdout;
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let owners =
        &history["runs"][0]["actions"].as_array().unwrap().iter().find(|a| a["owners"].is_array()).unwrap()["owners"];
    assert_eq!(
        (owners[0]["path"].as_str(), owners[0]["from_uid"].as_u64()),
        (Some("data/state.json"), Some(0)),
        "{owners}"
    );
    let rollback = t.run(&["rollback"]);
    assert_eq!(rollback.code, 0, "{}", rollback.all_output());
    assert_eq!(owner(&t, "data/state.json"), (0, 0));
    assert_eq!(t.mode("data"), 0o500);
    assert_eq!(t.mode("data/app.db"), 0o400);
}

#[test]
fn heal_as_root_creates_what_it_creates_as_the_app_user() {
    if !root_or_skip() {
        return;
    }
    let t = reachable(&format!("{}[[dir]]\npath = \"data/attachments\"\n", manifest(Some("nobody"))));
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.stdout);
    for path in ["data", "data/attachments", "data/app.db", "data/state.json"] {
        assert_eq!(owner(&t, path), (NOBODY, NOBODY), "{path}");
    }
    assert_eq!(owner(&t, ".preflight"), (0, 0), "preflight's own folder stays root's");
    assert!(as_nobody(&t, "touch data/attachments/a && test -w data/app.db"));
    // A replaced file keeps its owner: the app's file stays the app's.
    t.write("preflight.toml", manifest(Some("nobody")).replace("items = []", "items = [], more = 1"));
    assert_eq!(t.run(&["heal"]).code, 0);
    assert!(t.read("data/state.json").contains("more"));
    assert_eq!(owner(&t, "data/state.json"), (NOBODY, NOBODY));
}

#[test]
fn without_root_the_running_user_is_checked_and_told_what_to_change() {
    if !root_or_skip() {
        return;
    }
    let t = reachable(&manifest(None));
    t.mkdir("data");
    assert_eq!(t.run(&["heal"]).code, 0);
    // The lock root's heal left would stop an unprivileged heal before it looks.
    fs::remove_dir_all(t.join(".preflight")).unwrap();
    let run = as_nobody_preflight(&t, &["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stdout.contains("the user running preflight (uid 65534) cannot search and write it"),
        "{}",
        run.all_output()
    );
    assert!(run.stdout.contains("db:data/app.db:access"), "{}", run.stdout);
    assert_eq!(owner(&t, "data"), (0, 0), "nothing it may not change is changed");
}

#[test]
fn an_unknown_app_user_is_critical() {
    let t = reachable(&manifest(Some("no-such-user-preflight")));
    t.mkdir("data");
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("\"no-such-user-preflight\" does not exist"), "{}", run.stdout);
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 1, "{}", heal.all_output());
    if is_root() {
        assert!(heal.all_output().contains("does not exist"), "{}", heal.all_output());
        assert!(!t.exists("data/app.db"), "heal as root does not create what it cannot give to the app");
    }
    let _ = fs::Permissions::from_mode(0o755);
}

/// The check saw one file; the application replaced it (a new inode at the
/// same path) before heal ran the fix: the new file is not given away.
#[test]
fn a_file_replaced_after_the_check_keeps_its_owner_and_mode() {
    if !root_or_skip() {
        return;
    }
    let text = manifest(Some("nobody"));
    let t = reachable(&text);
    t.mkdir("data").chmod("data", 0o777).write("data/state.json", "{\"items\": []}");
    t.chmod("data/state.json", 0o644);
    let manifest = preflight::manifest::load_str(std::path::Path::new("preflight.toml"), &text, t.path()).unwrap();
    let options = preflight::checks::CheckOptions::default();
    let findings = preflight::checks::run_all(&manifest, &options, &preflight::checks::Selection::default()).unwrap();
    let finding =
        findings.problems.iter().find(|f| f.id.starts_with("file:data/state.json")).expect("an access finding");
    let fix = finding.fix.as_ref().expect("a fix as root");
    // The application saves its state by rename: another file, same path.
    t.write("data/state.json.new", "{\"items\": [1]}");
    fs::rename(t.join("data/state.json.new"), t.join("data/state.json")).unwrap();
    t.chmod("data/state.json", 0o600);
    let mut ctx = preflight::safety::ApplyCtx::new(t.path(), "run");
    let err = ctx.apply(&fix.ops[0]).unwrap_err();
    assert!(preflight::safety::precondition::is_skip(&err), "{err:#}");
    assert!(format!("{err:#}").contains("replaced by another file"), "{err:#}");
    assert_eq!(owner(&t, "data/state.json"), (0, 0), "the new file keeps its owner");
    assert_eq!(fs::metadata(t.join("data/state.json")).unwrap().permissions().mode() & 0o777, 0o600);
}
