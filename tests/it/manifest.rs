//! Bad manifests: each is refused with exit 1, a message naming the file,
//! the line and what is wrong, and a disk left exactly as it was.

use crate::support::{self, TestDir};

/// (name, file name, manifest text, expected line, text the message must hold)
const CASES: &[(&str, &str, &str, usize, &str)] = &[
    ("unknown top-level key", "preflight.toml", "version = 1\nfolders = []\n", 2, "unknown field `folders`"),
    (
        "unknown key lists valid ones",
        "preflight.toml",
        "version = 1\n[[dir]]\npth = \"data\"\n",
        3,
        "`path`, `mode`, `create`, `volume`, `severity`",
    ),
    ("wrong type", "preflight.toml", "version = 1\n[[dir]]\npath = 5\n", 3, "invalid type"),
    ("bad version", "preflight.toml", "# app\nversion = 2\n", 2, "version = 1"),
    ("missing version", "preflight.toml", "[[dir]]\npath = \"data\"\n", 1, "missing field `version`"),
    (
        "duplicate path",
        "preflight.toml",
        "version = 1\n[[dir]]\npath = \"data\"\n[[dir]]\npath = \"data\"\n",
        5,
        "more than once",
    ),
    (
        "duplicate across kinds",
        "preflight.toml",
        "version = 1\n[[dir]]\npath = \"x\"\n[[file]]\npath = \"./x\"\n",
        5,
        "more than once",
    ),
    ("absolute path", "preflight.toml", "version = 1\n[[dir]]\npath = \"/etc\"\n", 3, "absolute"),
    ("parent dir", "preflight.toml", "version = 1\n[[dir]]\npath = \"data/../../x\"\n", 3, "leaves the root"),
    ("bad mode", "preflight.toml", "version = 1\n[[dir]]\npath = \"d\"\nmode = \"rwx\"\n", 4, "octal"),
    (
        "bad duration",
        "preflight.toml",
        "version = 1\n[[heartbeat]]\npath = \"hb\"\nmax_age = \"soon\"\n",
        4,
        "duration",
    ),
    (
        "bad severity",
        "preflight.toml",
        "version = 1\n[[dir]]\npath = \"d\"\nseverity = \"fatal\"\n",
        4,
        "unknown variant",
    ),
    ("bad format", "preflight.toml", "version = 1\n[[file]]\npath = \"f\"\nformat = \"yaml\"\n", 4, "unknown variant"),
    ("toml syntax", "preflight.toml", "version = 1\n[[dir]\npath = \"d\"\n", 2, ""),
    ("json syntax", "preflight.json", "{\"version\": 1,\n \"dir\": [}\n", 2, ""),
    ("json unknown key", "preflight.json", "{\"version\": 1,\n \"dirs\": []}\n", 2, "unknown field `dirs`"),
    ("bad glob", "preflight.toml", "version = 1\n[[prune]]\nglob = \"logs/[a\"\nolder_than = \"1d\"\n", 3, "glob"),
    ("bad size", "preflight.toml", "version = 1\n[disk]\nmin_free = \"lots\"\n", 3, "size"),
    ("empty path", "preflight.toml", "version = 1\n[[dir]]\npath = \"\"\n", 3, "empty"),
    ("control character in path", "preflight.toml", "version = 1\n[[dir]]\npath = \"a\\nb\"\n", 1, "control character"),
    (
        "database with path and url_env",
        "preflight.toml",
        "version = 1\n[[database]]\npath = \"a.db\"\nurl_env = \"DATABASE_URL\"\nschema = \"s.sql\"\n",
        4,
        "both `path` and `url_env`",
    ),
    (
        "database with neither path nor url_env",
        "preflight.toml",
        "version = 1\n[[database]]\nschema = \"s.sql\"\n",
        3,
        "needs `path`",
    ),
    (
        "rename across tables",
        "preflight.toml",
        "version = 1\n[[database]]\npath = \"a.db\"\nschema = \"s.sql\"\n[[database.rename]]\nfrom = \"a.x\"\nto = \"b.x\"\n",
        6,
        "same table",
    ),
    (
        "backfill without a column",
        "preflight.toml",
        "version = 1\n[[database]]\npath = \"a.db\"\nschema = \"s.sql\"\n[[database.backfill]]\ncolumn = \"users\"\nvalue = \"1\"\n",
        6,
        "table.column",
    ),
    (
        "namespace on a SQLite file",
        "preflight.toml",
        "version = 1\n[[database]]\npath = \"a.db\"\nschema = \"s.sql\"\nnamespace = \"app\"\n",
        5,
        "applies to PostgreSQL",
    ),
    (
        "bad url_env",
        "preflight.toml",
        "version = 1\n[[database]]\nurl_env = \"DATABASE-URL\"\nschema = \"s.sql\"\n",
        3,
        "not a valid variable name",
    ),
];

#[test]
fn every_bad_manifest_is_refused_with_its_line_and_the_disk_unchanged() {
    for &(name, file, text, line, needle) in CASES {
        let t = TestDir::new();
        t.write(file, text);
        t.write("keep/me.txt", "untouched");
        let before = t.snapshot();
        let manifest = t.join(file);
        for command in [&["validate"][..], &["heal"], &["heal", "--dry-run"]] {
            let mut args = command.to_vec();
            args.extend(["-m", manifest.to_str().unwrap()]);
            let run = support::run_preflight(&args, t.path());
            assert_eq!(run.code, 1, "{name}: {}", run.all_output());
            let location = format!("{file}:{line}:");
            assert!(run.stderr.contains(&location), "{name}: expected {location} in {}", run.stderr);
            assert!(run.stderr.contains(needle), "{name}: expected {needle:?} in {}", run.stderr);
            assert_eq!(before, t.snapshot(), "{name}: the disk changed");
        }
    }
}

#[test]
fn a_symlink_leaving_the_root_is_refused() {
    let outside = TestDir::new();
    let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"data/state.json\"\n");
    std::os::unix::fs::symlink(outside.path(), t.join("data")).unwrap();
    let run = t.run(&["heal"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("preflight.toml:3:") && run.stderr.contains("symlink `data`"), "{}", run.stderr);
    assert!(!outside.exists("state.json"), "nothing is written outside the root");
}

#[test]
fn json_errors_answer_in_json_when_asked() {
    let t = TestDir::with_manifest("version = 3\n");
    let run = t.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    let doc = run.json();
    assert_eq!(doc["status"], "critical");
    assert!(doc["error"].as_str().unwrap().contains("preflight.toml:1:"));
}

#[test]
fn a_manifest_that_is_not_utf8_is_refused() {
    let t = TestDir::new();
    t.write("preflight.toml", b"version = 1\n# \xff\xfe\n");
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("preflight.toml:2:") && run.stderr.contains("UTF-8"), "{}", run.stderr);
}
