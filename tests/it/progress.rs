//! Progress of long fixes (a table rebuild, a JSONL rewrite): a bar on
//! stderr when it is a terminal and the work lasts over a second, nothing
//! extra anywhere else (a pipe, a CI log, `--format json`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::support::TestDir;

const MANIFEST: &str = r#"version = 1

[[file]]
path = "logs/events.jsonl"
format = "jsonl"

[[database]]
path = "app.db"
schema = "schema.sql"
"#;

/// A root whose heal rewrites a JSONL file of about `mib` MiB (its last
/// line torn) and, with `--allow-rebuild`, rebuilds a table of `rows`
/// rows. Returns it with the number of good lines.
fn slow_root(mib: usize, rows: u64) -> (TestDir, usize) {
    let t = TestDir::with_manifest(MANIFEST);
    let mut text = String::with_capacity((mib << 20) + 64);
    let mut lines = 0;
    while text.len() < mib << 20 {
        text.push_str(&format!(
            "{{\"seq\":{lines},\"symbol\":\"ABCD\",\"price\":12.5,\"note\":\"{}\"}}\n",
            "x".repeat(40)
        ));
        lines += 1;
    }
    text.push_str("{\"torn\":");
    t.write("logs/events.jsonl", text);
    t.write("schema.sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, v INT NOT NULL);\n");
    Connection::open(t.join("app.db"))
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v INT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO t SELECT i, i FROM n;"
        ))
        .unwrap();
    (t, lines)
}

/// The run ID of the root's only heal run.
fn run_id(t: &TestDir) -> String {
    let history = t.read(".preflight/history.jsonl");
    let first: serde_json::Value = serde_json::from_str(history.lines().next().expect("a history line")).unwrap();
    first["run"].as_str().unwrap().to_string()
}

/// `text` with each size (`23.0 MiB`, `512 B`) shown as `<size>`.
fn sizes_masked(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let number = words[i].trim_start_matches('(');
        let unit = words.get(i + 1).map(|u| u.trim_end_matches(|c: char| !c.is_alphabetic()));
        if number.parse::<f64>().is_ok() && matches!(unit, Some("B" | "KiB" | "MiB" | "GiB")) {
            let (open, close) = (&words[i][..words[i].len() - number.len()], &words[i + 1][unit.unwrap().len()..]);
            out.push(format!("{open}<size>{close}"));
            i += 2;
        } else {
            out.push(words[i].to_string());
            i += 1;
        }
    }
    out.join(" ")
}

#[test]
fn a_heal_off_a_terminal_prints_its_report_and_nothing_else() {
    let (t, lines) = slow_root(8, 300_000);
    let run = t.run(&["heal", "--allow-rebuild"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "", "nothing on stderr");
    let run_id = run_id(&t);
    let expected = format!(
        "fs
  warning   file:logs/events.jsonl:lines  1 of {all} lines do not parse (line {all}); the last line is torn (cut without its newline) [fixable]
db
  warning   db:app.db:table:t:column:v    column differs from the schema: NOT NULL is off, the schema says on [fixable]
heal
  done     file:logs/events.jsonl:lines  move bad lines to quarantine: kept {lines} lines, moved 1 bad (line {all}) to .preflight/quarantine/<run>/logs/events.jsonl.bad-lines
  done     db:app.db:table:t:column:v    rebuild table \"t\" (after a backup): 300000 rows copied with their rowids; VACUUM gave <size> back to the file system; backup (<size>) in .preflight/backups/<run>/app.db

after heal
  nothing left to fix
2 fixed, 0 failed; 0 critical, 0 warnings, 4 ok
",
        all = lines + 1
    );
    assert_eq!(sizes_masked(&run.stdout.replace(&run_id, "<run>")), expected);
}

#[test]
fn a_heal_in_json_prints_one_document_and_nothing_else() {
    let (t, _) = slow_root(8, 300_000);
    let run = t.run(&["heal", "--allow-rebuild", "--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "", "nothing on stderr");
    let doc = run.json();
    let outcomes: Vec<&str> =
        doc["actions"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["done", "done"], "{doc}");
}

/// `preflight ARGS` in `t` on a pseudo-terminal (util-linux `script`),
/// stdout and stderr both on it: what the terminal received, and how long
/// it took. `None` when `script` is not installed.
fn on_a_terminal(t: &TestDir, args: &str) -> Option<(String, Duration)> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed, so no pseudo-terminal");
        return None;
    }
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let line =
        format!("{} {args} -m {}", quote(Path::new(env!("CARGO_BIN_EXE_preflight"))), quote(&t.join("preflight.toml")));
    let start = Instant::now();
    let output = Command::new("script")
        .args(["-q", "-e", "-f", "-c", &line, "/dev/null"])
        .current_dir(t.path())
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .output()
        .expect("run script");
    let took = start.elapsed();
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{screen}{}", String::from_utf8_lossy(&output.stderr));
    Some((screen, took))
}

#[test]
fn on_a_terminal_a_long_rewrite_draws_a_bar_that_is_cleared_before_the_report() {
    let (t, _) = slow_root(24, 1000);
    let Some((screen, took)) = on_a_terminal(&t, "heal --allow-rebuild") else { return };
    let report = screen.find("fs\r\n").expect("the report");
    let bars = &screen[..report];
    // In an optimised build the rewrite may end before a bar is due.
    if took < Duration::from_secs(3) && bars.is_empty() {
        eprintln!("skipped: the heal took {took:?}, too short to be sure a bar was due");
        return;
    }
    assert!(bars.contains("rewrite logs/events.jsonl"), "a bar for the rewrite: {screen:?}");
    assert!(bars.contains("%"), "{bars:?}");
    assert!(bars.ends_with("\r\x1b[2K"), "the bar is cleared before the report: {bars:?}");
    assert!(!screen[report..].contains("rewrite logs"), "nothing drawn after: {screen:?}");
}

#[test]
fn on_a_terminal_json_output_stays_one_document() {
    let (t, _) = slow_root(24, 1000);
    let Some((screen, _)) = on_a_terminal(&t, "heal --allow-rebuild --format json") else { return };
    let doc: serde_json::Value =
        serde_json::from_str(&screen).unwrap_or_else(|e| panic!("not one JSON document ({e}): {screen:?}"));
    assert_eq!(doc["status"], "ok", "{doc}");
}
