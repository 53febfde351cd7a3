//! Guard rails a launcher relies on: argument typos, what `--strict`
//! says, globs that could remove secrets or data, lock content that may be
//! a secret, JSON that must not be rewritten, and depth that must not hide
//! a finding.

use std::time::{Duration, SystemTime};

use super::with_app;
use crate::support::{TestDir, SECRET_MARK};

#[test]
fn an_only_value_that_can_match_nothing_is_an_argument_error() {
    let t = with_app("version = 1\n[[dir]]\npath = \"data\"\n");
    let run = t.run(&["run", "--only", "dir:date", "--", "./bin/app"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(!run.stdout.contains("app started"));
    assert!(run.stderr.contains("--only dir:date matches nothing"), "{}", run.stderr);
    assert!(!t.exists("data"), "nothing healed on an argument error");
    for command in ["validate", "heal"] {
        let run = t.run(&[command, "--only", "dir:date"]);
        assert_eq!(run.code, 1, "{command}: {}", run.all_output());
    }
    // A prefix, a whole ID and a more specific ID are all fine.
    for only in ["dir:", "dir:data", "d"] {
        assert_eq!(t.run(&["validate", "--only", only]).code, 1, "{only}: data is missing, so critical");
    }
    let run = t.run(&["run", "--retry-timeout", "30s", "--only", "dir:date", "--", "./bin/app"]);
    assert_eq!(run.code, 1, "an argument error is not retried");
    assert!(!run.stderr.contains("attempt 1"), "{}", run.stderr);
}

#[test]
fn strict_refusal_says_warnings_remain() {
    let t = with_app("version = 1\n[[dir]]\npath = \"data\"\nmode = \"0700\"\n");
    t.mkdir("data").chmod("data", 0o755);
    let run = t.run(&["run", "--strict", "--", "./bin/app"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("warnings remain, and --strict counts them as critical"), "{}", run.stderr);
    assert!(!run.stderr.contains("critical findings remain"), "{}", run.stderr);
}

#[test]
fn lock_and_prune_globs_that_can_match_secrets_or_data_are_manifest_errors() {
    let cases = [
        ("[[lock]]\nglob = \"*\"\nstale_after = \"1m\"\n", ".env"),
        ("[[lock]]\nglob = \".env*\"\nstale_after = \"1m\"\n", ".env"),
        (
            "[[database]]\npath = \"data/app.db\"\nschema = \"s.sql\"\n[[prune]]\nglob = \"data/*\"\nolder_than = \"1d\"\n",
            "data/app.db",
        ),
        (
            "[[database]]\npath = \"data/app.db\"\nschema = \"s.sql\"\n[[lock]]\nglob = \"data/*-wal\"\nstale_after = \"1m\"\n",
            "data/app.db-wal",
        ),
        ("[[pidfile]]\npath = \"run/app.pid\"\n[[lock]]\nglob = \"run/*\"\nstale_after = \"1m\"\n", "run/app.pid"),
        ("[env]\nfile = \"config/app.env\"\n[[prune]]\nglob = \"config/*.env\"\nolder_than = \"1d\"\n", "config/app.env"),
    ];
    for (entries, path) in cases {
        let t = TestDir::with_manifest(&format!("version = 1\n{entries}"));
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1, "{entries}");
        assert!(run.stderr.contains(&format!("can match `{path}`")), "{entries}\n{}", run.stderr);
        assert!(run.stderr.contains("preflight.toml:"), "the error points into the manifest: {}", run.stderr);
    }
    let fine = TestDir::with_manifest("version = 1\n[env]\n[[lock]]\nglob = \"state/*.lock\"\nstale_after = \"1m\"\n");
    assert_eq!(fine.run(&["validate", "--only", "lock:"]).code, 0);
}

#[test]
fn lock_content_that_may_be_a_secret_is_never_printed() {
    let t = TestDir::with_manifest("version = 1\n[[lock]]\nglob = \"state/*.lock\"\nstale_after = \"1m\"\n");
    t.write("state/app.lock", format!("DB_PASSWORD={SECRET_MARK}lock\n"));
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(t.join("state/app.lock")).unwrap().set_modified(old).unwrap();
    // Every run is checked for the planted secret by the harness: output and history.
    let plan = t.run(&["heal", "--dry-run"]);
    assert!(plan.stdout.contains("not shown"), "{}", plan.stdout);
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    assert!(!t.exists("state/app.lock"));
    let history = t.run(&["history", "--json"]);
    assert!(history.stdout.contains("bytes (not shown"), "{}", history.stdout);
    t.write("state/b.lock", "4000000 otherhost\n");
    let shown = t.run(&["heal", "--dry-run"]);
    assert!(!shown.stdout.contains("not shown"), "a plain PID and host are shown: {}", shown.stdout);
}

#[test]
fn salvage_false_reports_damaged_json_and_never_rewrites_it() {
    let t = TestDir::with_manifest(
        "version = 1\n[[file]]\npath = \"a.json\"\ndefault = { items = [] }\nsalvage = false\n\
         [[file]]\npath = \"b.jsonl\"\nformat = \"jsonl\"\nsalvage = false\n",
    );
    t.write("a.json", "{\"items\": [1, 2");
    t.write("b.jsonl", "{\"a\": 1}\n{broken\n");
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 1, "{}", heal.stdout);
    assert!(heal.stdout.contains("salvage = false"), "{}", heal.stdout);
    assert_eq!(t.read("a.json"), "{\"items\": [1, 2");
    assert_eq!(t.read("b.jsonl"), "{\"a\": 1}\n{broken\n");
    assert!(!t.exists(".preflight"), "nothing was planned");
}

#[test]
fn deep_nesting_does_not_hide_a_missing_default_key() {
    let t = TestDir::with_manifest(
        "version = 1\n[[file]]\npath = \"a.json\"\ndefault = { deep = [], wanted = 0 }\nschema = \"a.schema.json\"\n",
    );
    t.write("a.schema.json", "{\"type\": \"object\"}");
    let deep = format!("{{\"deep\": {}1{}}}", "[".repeat(130), "]".repeat(130));
    t.write("a.json", &deep);
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("missing key wanted"), "{}", run.stdout);
    assert!(run.stdout.contains("cannot be checked"), "the schema is not silently skipped: {}", run.stdout);
    assert_eq!(t.run(&["heal"]).code, 1, "the schema still cannot be checked");
    let healed = t.read("a.json");
    assert!(healed.starts_with(&deep[..deep.len() - 1]) && healed.contains("\"wanted\": 0"), "{healed}");
}
