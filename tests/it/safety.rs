//! Safety promises of heal that cut across checks: one heal at a time,
//! nothing outside the root, private copies of what is replaced.

use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};

use crate::support::{self, ChildGuard, TestDir};

const MANIFEST: &str = r#"version = 1
[env]
template = ".env.example"
[[dir]]
path = "data/a/b"
[[dir]]
path = "logs"
[[file]]
path = "data/state.json"
default = { a = 1, b = [] }
[[file]]
path = "logs/positions.json"
default = { open_positions = [] }
"#;

#[test]
fn concurrent_heals_apply_each_fix_exactly_once() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=sk-live-concurrent\n").write("logs/positions.json", "{\"x\": 1}");
    let manifest = t.join("preflight.toml");
    let children: Vec<_> = (0..8)
        .map(|_| {
            ChildGuard::spawn(
                Command::new(env!("CARGO_BIN_EXE_preflight"))
                    .args(["heal", "--format", "json", "-m", manifest.to_str().unwrap()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(ChildGuard::wait_with_output).collect();
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let history = t.read(".preflight/history.jsonl");
    let mut ids: Vec<&str> =
        history.lines().map(|l| l.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap()).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(total, ids.len(), "an action was applied twice: {history}");
    assert_eq!(ids, ["dir:data/a/b", "env:.env", "file:data/state.json", "file:logs/positions.json"]);
    assert_eq!(t.run(&["validate"]).code, 0);
    let value: serde_json::Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
    assert_eq!(value, serde_json::json!({"x": 1, "open_positions": []}));
}

#[test]
fn symlinks_out_of_the_root_at_any_level_are_refused() {
    let levels = ["data", "data/a", "data/a/b", "logs", "logs/positions.json", ".env"];
    for level in levels {
        let outside = TestDir::new();
        let t = TestDir::with_manifest(MANIFEST);
        t.write(".env.example", "A=1\n");
        let link = t.join(level);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(outside.path(), &link).unwrap();
        let run = t.run(&["heal"]);
        assert_eq!(run.code, 1, "{level}: {}", run.all_output());
        assert!(run.stderr.contains("outside the root"), "{level}: {}", run.stderr);
        assert!(support::snapshot(outside.path(), false).is_empty(), "{level}: something was written outside");
    }
}

#[test]
fn a_symlink_to_a_file_outside_is_not_written_through() {
    let outside = TestDir::new();
    outside.write("target.json", "{}");
    let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"state.json\"\ndefault = { a = 1 }\n");
    symlink(outside.join("target.json"), t.join("state.json")).unwrap();
    assert_eq!(t.run(&["heal"]).code, 1);
    assert_eq!(outside.read("target.json"), "{}");
}

#[test]
fn quarantine_and_history_are_private() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=1\nB=sk-live-template\n")
        .write(".env", "A=sk-live-secret\n")
        .write("logs/positions.json", "{}");
    assert_eq!(t.run(&["heal"]).code, 0);
    assert_eq!(t.mode(".preflight"), 0o700);
    assert_eq!(t.mode(".preflight/quarantine"), 0o700);
    assert_eq!(t.mode(".preflight/history.jsonl"), 0o600);
    for (path, (mode, bytes)) in support::snapshot(&t.join(".preflight/quarantine"), false) {
        let expected = if bytes.is_some() { 0o600 } else { 0o700 };
        assert_eq!(mode, expected, "{}", path.display());
    }
}

#[test]
fn no_temporary_file_is_left_after_heal() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=1\n");
    assert_eq!(t.run(&["heal"]).code, 0);
    let leftovers: Vec<_> =
        t.snapshot().into_keys().filter(|p| p.to_string_lossy().contains("preflight-tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn temporary_files_of_an_interrupted_heal_are_swept_by_the_next() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=1\n");
    t.write("logs/.preflight-tmp-Ab12Cd", "half a write");
    t.write(".preflight-tmp-Zz99", "half a write");
    t.write("logs/.keep-me", "not ours");
    assert_eq!(t.run(&["heal"]).code, 0);
    assert!(!t.exists("logs/.preflight-tmp-Ab12Cd") && !t.exists(".preflight-tmp-Zz99"));
    assert!(t.exists("logs/.keep-me"));
}

/// The applier's own guard: a plan made while `logs/` was a folder is
/// applied after `logs/` became a link out of the root. The plan is not
/// made again, so only the applier stands between it and the outside.
#[test]
fn a_plan_applied_after_its_folder_became_a_link_out_writes_nothing_outside() {
    let outside = TestDir::new();
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=1\n").mkdir("logs");
    let manifest = preflight::manifest::load(&t.join("preflight.toml"), None).unwrap();
    let options = preflight::checks::CheckOptions::default();
    let findings = preflight::checks::run_all(&manifest, &options, &Default::default()).unwrap();
    assert!(findings.problems.iter().any(|f| f.id == "file:logs/positions.json" && f.fixable()));
    std::fs::remove_dir(t.join("logs")).unwrap();
    symlink(outside.path(), t.join("logs")).unwrap();
    let actions =
        preflight::heal::apply_plan(&manifest, &findings, "run-1", &|_| true, &preflight::safety::Silent).unwrap();
    let refused = actions.iter().find(|a| a.id == "file:logs/positions.json").expect("the action ran");
    assert_eq!(refused.outcome, preflight::safety::Outcome::Failed, "{}", refused.detail);
    assert!(support::snapshot(outside.path(), false).is_empty(), "something was written outside the root");
}

/// The same swap between two processes: the second heal plans afresh and
/// refuses the link like any symlink out of the root.
#[test]
fn a_symlink_swapped_in_after_validation_is_refused_at_heal() {
    let outside = TestDir::new();
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=1\n").mkdir("logs");
    let plan = t.run(&["heal", "--dry-run"]);
    assert!(plan.stdout.contains("logs/positions.json"), "{}", plan.stdout);
    // Between the look and the heal, the folder becomes a link out of the root.
    std::fs::remove_dir(t.join("logs")).unwrap();
    symlink(outside.path(), t.join("logs")).unwrap();
    let run = t.run(&["heal"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(support::snapshot(outside.path(), false).is_empty(), "something was written outside the root");
}

#[test]
fn a_folder_made_by_someone_else_after_the_check_is_skipped_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let text = "version = 1\n[[dir]]\npath = \"data\"\nmode = \"0700\"\n";
    let t = TestDir::with_manifest(text);
    let manifest = preflight::manifest::load_str(std::path::Path::new("preflight.toml"), text, t.path()).unwrap();
    let options = preflight::checks::CheckOptions::default();
    let findings = preflight::checks::run_all(&manifest, &options, &preflight::checks::Selection::default()).unwrap();
    let fix = findings.problems.iter().find(|f| f.id == "dir:data").and_then(|f| f.fix.as_ref()).expect("a fix");
    // The application makes the folder, its own way, between check and heal.
    std::fs::create_dir(t.join("data")).unwrap();
    std::fs::set_permissions(t.join("data"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut ctx = preflight::safety::ApplyCtx::new(t.path(), "run");
    let err = ctx.apply(&fix.ops[0]).unwrap_err();
    assert!(preflight::safety::precondition::is_skip(&err), "{err:#}");
    assert!(format!("{err:#}").contains("a folder was created there"), "{err:#}");
    assert_eq!(std::fs::metadata(t.join("data")).unwrap().permissions().mode() & 0o777, 0o755);
}

#[test]
fn a_declared_folder_made_earlier_in_the_run_as_a_parent_gets_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDir::with_manifest(
        "version = 1\n[[dir]]\npath = \"data/a/b\"\n[[dir]]\npath = \"data\"\nmode = \"0700\"\n",
    );
    let heal = t.run(&["heal", "--format", "json"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    let outcomes: Vec<String> = heal.json()["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["id"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, ["dir:data/a/b done", "dir:data done"], "{}", heal.stdout);
    assert_eq!(std::fs::metadata(t.join("data")).unwrap().permissions().mode() & 0o777, 0o700);
}
