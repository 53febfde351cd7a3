//! Crash injection: `preflight heal` is killed with SIGKILL at a random
//! moment on a seeded broken root, many times. After every kill nothing the
//! user wrote is lost, nothing half-written sits under a name the
//! application reads, and a second heal converges.
//!
//! The database runs in rollback-journal mode, and again in WAL mode: a
//! kill inside heal's transaction leaves a hot journal or a log, which the
//! next validate must report as a recovery (a warning), never as an
//! unusable database.
//!
//! `PREFLIGHT_CRASH_KILLS` sets the number of kills (default 16, half as
//! many in WAL mode); `scripts/crash.sh` runs the long version.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::{self, ChildGuard, Snapshot, TestDir};

const MANIFEST: &str = r#"version = 1
[env]
template = ".env.example"
[[dir]]
path = "data"
[[dir]]
path = "logs/archive"
[[file]]
path = "data/big.json"
default = { open_positions = [], closed_positions = [], meta = {} }
[[file]]
path = "logs/positions.json"
default = { open_positions = [] }
[[file]]
path = "data/cut.json"
default = { open_positions = [], closed_positions = [] }
[[file]]
path = "logs/events.jsonl"
format = "jsonl"
[[database]]
path = "data/app.db"
schema = "schema.sql"
"#;

/// The desired schema: `qty` changes type (a rebuild) and a column is added.
const DDL: &str = "CREATE TABLE trades(id INTEGER PRIMARY KEY AUTOINCREMENT, symbol TEXT NOT NULL, qty REAL NOT NULL, note TEXT DEFAULT '');\nCREATE INDEX trades_symbol ON trades(symbol);\n";
const DB_ROWS: i64 = 100_000;

const ROWS: usize = 50_000;

/// A broken root whose heal takes long enough to be interrupted mid-way:
/// a large JSON object missing keys, an `.env` missing template keys, a
/// database of 100,000 rows whose table needs a rebuild, a JSON file cut
/// short and NUL-padded, an event log with torn lines.
fn seeded_root(journal_mode: &str) -> TestDir {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env.example", "A=1\nB=2\nC=3\n").write(".env", "A=sk-live-crash\n");
    let rows: Vec<String> = (0..ROWS).map(|i| format!("{{\"symbol\":\"S{i}\",\"qty\":{i}.5}}")).collect();
    t.write("data/big.json", format!("{{\"open_positions\": [{}]}}\n", rows.join(",")));
    t.write("logs/positions.json", "{}");
    t.write("schema.sql", DDL);
    // A write cut short and padded with NULs, and an event log with torn lines.
    let cut = format!("{{\"open_positions\": [{}", rows[..ROWS / 2].join(","));
    t.write("data/cut.json", [cut.as_bytes(), &[0u8; 4096][..]].concat());
    let events: String = (0..ROWS)
        .map(|i| if i % 1000 == 7 { format!("{{\"torn\": {i}\n") } else { format!("{{\"event\": {i}}}\n") })
        .collect();
    t.write("logs/events.jsonl", events + "{\"last\": ");
    std::fs::copy(old_database(), t.join("data/app.db")).unwrap();
    // Kept in the file: every later connection uses this mode.
    rusqlite::Connection::open(t.join("data/app.db"))
        .unwrap()
        .query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |_| Ok(()))
        .unwrap();
    t
}

/// The live database, built once from the older schema with its rows.
fn old_database() -> &'static Path {
    static PATH: std::sync::OnceLock<tempfile::TempPath> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE trades(id INTEGER PRIMARY KEY AUTOINCREMENT, symbol TEXT NOT NULL, qty INTEGER NOT NULL, trader TEXT);").unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..DB_ROWS {
            tx.execute("INSERT INTO trades(symbol, qty, trader) VALUES (?1, ?2, ?3)", rusqlite::params![format!("S{}", i % 500), i, format!("t{i}")]).unwrap();
        }
        tx.commit().unwrap();
        path
    })
}

/// Integrity, and every original row and value (ids, symbols, quantities,
/// traders) still in the database. Checked on a copy of the database and
/// the files beside it, so that the original is left for preflight to
/// recover: opening it here would recover it first.
fn assert_database_intact(root: &Path, seed: u64) {
    let scratch = tempfile::tempdir().unwrap();
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let from = root.join(format!("data/app.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, scratch.path().join(format!("app.db{suffix}"))).unwrap();
        }
    }
    let conn = rusqlite::Connection::open(scratch.path().join("app.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok", "seed {seed}");
    let summary: (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(id), sum(CAST(qty AS INTEGER)), sum(length(symbol) + length(trader)) FROM trades",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let expected: (i64, i64, i64, i64) = {
        let original = rusqlite::Connection::open(old_database()).unwrap();
        original
            .query_row(
                "SELECT count(*), sum(id), sum(qty), sum(length(symbol) + length(trader)) FROM trades",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
    };
    assert_eq!(summary, expected, "seed {seed}: rows or values lost");
}

/// xorshift: reproducible delays without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// What validate says of the database right after a kill, before anything
/// else opened it: never unusable; a recovery is a fixable warning.
fn assert_database_recoverable(t: &TestDir, seed: u64) {
    let run = t.run(&["validate", "--format", "json"]);
    assert!(matches!(run.code, 0..=2), "seed {seed}: {}", run.all_output());
    for finding in run.json()["findings"].as_array().unwrap() {
        let id = finding["id"].as_str().unwrap();
        assert_ne!(id, "db:data/app.db", "seed {seed}: the database was judged unusable: {finding}");
        if id == "db:data/app.db:recovery" {
            assert_eq!(finding["severity"], "warning", "seed {seed}: {finding}");
            assert_eq!(finding["fixable"], true, "seed {seed}: {finding}");
        }
    }
}

fn heal_duration(t: &TestDir) -> Duration {
    let start = Instant::now();
    let run = t.run(&["heal", "--allow-rebuild"]);
    assert!(matches!(run.code, 0 | 2), "{}", run.all_output());
    start.elapsed()
}

/// Every original file is either unchanged or kept byte for byte in the
/// quarantine; nothing but hidden temporary files is new.
fn assert_nothing_lost(root: &Path, original: &Snapshot, seed: u64) {
    let now = support::snapshot(root, true);
    let quarantined: Vec<Vec<u8>> = support::snapshot(&root.join(".preflight/quarantine"), false)
        .into_values()
        .filter_map(|(_, bytes)| bytes)
        .collect();
    for (path, (_, bytes)) in original {
        let Some(bytes) = bytes else { continue };
        if path.extension().is_some_and(|e| e == "db") {
            continue; // changed in place by its transaction: checked row by row
        }
        let unchanged = now.get(path).is_some_and(|(_, b)| b.as_ref() == Some(bytes));
        assert!(unchanged || quarantined.contains(bytes), "seed {seed}: {} lost", path.display());
    }
    for path in now.keys().filter(|p| !original.contains_key(*p)) {
        let name = path.file_name().unwrap().to_string_lossy();
        let declared = [
            "data",
            "logs",
            "logs/archive",
            "data/big.json",
            "logs/positions.json",
            ".env",
            "data/cut.json",
            "logs/events.jsonl",
        ];
        // SQLite's own journal beside the database is part of its transaction.
        let journal = name.starts_with("app.db-");
        let allowed = name.starts_with(".preflight-tmp-") || journal || declared.iter().any(|d| Path::new(d) == path);
        assert!(allowed, "seed {seed}: unexpected {}", path.display());
    }
}

fn kills() -> u64 {
    std::env::var("PREFLIGHT_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(16)
}

#[test]
fn heal_killed_at_any_moment_loses_nothing_and_converges_after() {
    kill_heal_and_check("DELETE", kills());
}

#[test]
fn heal_killed_at_any_moment_in_wal_mode_loses_nothing_and_converges_after() {
    kill_heal_and_check("WAL", kills().div_ceil(2));
}

fn kill_heal_and_check(journal_mode: &str, kills: u64) {
    let window = heal_duration(&seeded_root(journal_mode)).as_micros() as u64 + 1;
    let mut state = 0x9E37_79B9_7F4A_7C15;
    for seed in 0..kills {
        let t = seeded_root(journal_mode);
        let original = t.app_snapshot();
        let manifest = t.join("preflight.toml");
        let mut child = ChildGuard::spawn(
            Command::new(env!("CARGO_BIN_EXE_preflight"))
                .args(["heal", "-q", "--allow-rebuild", "-m", manifest.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        sleep(Duration::from_micros(next(&mut state) % window));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_nothing_lost(t.path(), &original, seed);
        assert_database_intact(t.path(), seed);
        assert_database_recoverable(&t, seed);
        let second = t.run(&["heal", "--allow-rebuild"]);
        assert!(matches!(second.code, 0 | 2), "seed {seed}: second heal {}", second.all_output());
        let leftovers =
            t.app_snapshot().into_keys().filter(|p| p.to_string_lossy().contains(".preflight-tmp-")).count();
        assert_eq!(leftovers, 0, "seed {seed}: temporary files survived the second heal");
        let big: serde_json::Value = serde_json::from_str(&t.read("data/big.json")).unwrap();
        assert_eq!(big["open_positions"].as_array().map(Vec::len), Some(ROWS), "seed {seed}");
        let cut: serde_json::Value = serde_json::from_str(&t.read("data/cut.json")).unwrap();
        assert_eq!(
            cut["open_positions"].as_array().map(Vec::len),
            Some(ROWS / 2),
            "seed {seed}: salvage kept every complete row"
        );
        let events = t.read("logs/events.jsonl");
        assert_eq!(events.lines().count(), ROWS - ROWS / 1000, "seed {seed}: every valid event line kept");
        assert_database_intact(t.path(), seed);
    }
}
