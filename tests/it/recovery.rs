//! Databases left behind by real crashes: a writer process is killed with
//! SIGKILL in the middle of a transaction (rollback-journal and WAL mode),
//! or preflight's own rebuild is; then the `preflight` binary is driven
//! and its exit codes, the rows and the files beside the database are
//! checked. The writer is this test binary itself, started again as a
//! child (`recovery::crash_writer_child`), so the tests need nothing
//! installed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{ChildGuard, TestDir};
use rusqlite::Connection;

/// Rows committed before the writer starts.
const BEFORE: i64 = 200;
/// Rows the writer commits before the transaction it never finishes.
const COMMITTED: i64 = 50;
/// Rows of the transaction that never commits: enough to spill pages into
/// the database file (rollback mode) or the log (WAL mode).
const UNCOMMITTED: i64 = 3000;
const READY: &str = "crash-writer: in the middle of a transaction";

const MANIFEST: &str = "version = 1\n[[database]]\npath = \"data/app.db\"\nschema = \"schema.sql\"\n";
/// The desired schema has one more column than the live one: heal must
/// converge the file once it is recovered.
const DDL: &str = "CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT, seen INTEGER);\n";
const OLD_DDL: &str = "CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT);";

/// The writer, in the child process: commits `COMMITTED` rows, then
/// writes `UNCOMMITTED` rows in a transaction, says so, and waits to be
/// killed. Does nothing in an ordinary test run.
#[test]
#[ignore = "the writer process of the crash tests, started by them"]
fn crash_writer_child() {
    let Ok(path) = std::env::var("PREFLIGHT_TEST_CRASH_WRITER") else { return };
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=2;").unwrap();
    for _ in 0..COMMITTED {
        conn.execute("INSERT INTO events(kind, body) VALUES ('committed', 'by the writer')", []).unwrap();
    }
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    for _ in 0..UNCOMMITTED {
        conn.execute("INSERT INTO events(kind, body) VALUES ('uncommitted', hex(randomblob(100)))", []).unwrap();
    }
    println!("{READY}");
    std::thread::sleep(Duration::from_secs(120));
    panic!("the writer was not killed");
}

/// Starts the writer on `db` and SIGKILLs it in the middle of its transaction.
fn kill_writer_mid_transaction(db: &Path) {
    let mut child = ChildGuard::spawn(
        Command::new(std::env::current_exe().unwrap())
            .args(["crash_writer_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("PREFLIGHT_TEST_CRASH_WRITER", db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let ready = stdout.lines().map_while(Result::ok).any(|line| line.contains(READY));
    let _ = child.kill(); // SIGKILL: no destructor, no rollback, no close
    let _ = child.wait();
    assert!(ready, "the writer never reached its transaction");
}

/// A root whose database (`journal_mode`) holds `BEFORE` committed rows,
/// then was written to by a process killed mid-transaction.
fn crashed_root(journal_mode: &str) -> TestDir {
    let t = TestDir::with_manifest(MANIFEST);
    t.write("schema.sql", DDL).mkdir("data");
    let conn = Connection::open(t.join("data/app.db")).unwrap();
    conn.execute_batch(&format!("PRAGMA journal_mode={journal_mode}; {OLD_DDL}")).unwrap();
    conn.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BEFORE}) INSERT INTO events(kind, body) SELECT 'before', 'row ' || i FROM n;"
    ))
    .unwrap();
    drop(conn);
    kill_writer_mid_transaction(&t.join("data/app.db"));
    t
}

/// Every entry under the root with its size and modification time.
fn listing(root: &Path) -> Vec<(String, u64, i64, i64)> {
    let mut all: Vec<_> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            (e.path().strip_prefix(root).unwrap().display().to_string(), m.len(), m.mtime(), m.mtime_nsec())
        })
        .collect();
    all.sort();
    all
}

/// Rows by kind, and whether the column the DDL adds is there.
fn rows(db: &Path) -> (i64, i64, i64, bool) {
    let conn = Connection::open(db).unwrap();
    let count = |kind: &str| -> i64 {
        conn.query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| r.get(0)).unwrap()
    };
    let seen: i64 = conn
        .query_row("SELECT count(*) FROM pragma_table_info('events') WHERE name = 'seen'", [], |r| r.get(0))
        .unwrap();
    (count("before"), count("committed"), count("uncommitted"), seen == 1)
}

fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let findings = report["findings"].as_array().unwrap();
    findings.iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("no finding {id}: {report:#}"))
}

/// validate and heal --dry-run: a warning (exit 2) for the recovery, and
/// not a byte, name or modification time changed in the root.
fn assert_reported_for_recovery_untouched(t: &TestDir) {
    let before = listing(t.path());
    let snapshot = t.snapshot();
    for args in
        [&["validate", "--format", "json"][..], &["heal", "--dry-run", "--format", "json"], &["validate", "--deep"]]
    {
        let run = t.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.all_output());
        if args.contains(&"json") {
            let report = run.json();
            let recovery = finding(&report, "db:data/app.db:recovery");
            assert_eq!(recovery["severity"], "warning", "{report:#}");
            assert_eq!(recovery["fixable"], true);
            assert_eq!(report["findings"].as_array().unwrap().len(), 1, "{report:#}");
        }
        assert_eq!(listing(t.path()), before, "{args:?} changed the directory");
        assert_eq!(t.snapshot(), snapshot, "{args:?} changed a file");
    }
}

/// `run -- CMD` recovers, converges and starts CMD; the rows are the last
/// committed ones and SQLite's side files are gone.
fn assert_run_recovers_and_starts(t: &TestDir) {
    let run = t.run(&["run", "--", "sh", "-c", "echo app started"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("app started"), "{}", run.all_output());
    assert_eq!(rows(&t.join("data/app.db")), (BEFORE, COMMITTED, 0, true));
    for side in ["data/app.db-journal", "data/app.db-wal", "data/app.db-shm"] {
        assert!(!t.exists(side), "{side} left behind");
    }
    let history = t.run(&["history", "--json"]);
    assert!(history.stdout.contains("db:data/app.db:recovery"), "{}", history.stdout);
    let again = t.run(&["validate"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
}

#[test]
fn a_hot_journal_left_by_a_killed_writer_is_a_warning_and_run_recovers_it() {
    let t = crashed_root("DELETE");
    assert!(is_hot(&t.join("data/app.db-journal")), "the kill left no hot journal");
    assert_reported_for_recovery_untouched(&t);
    assert_run_recovers_and_starts(&t);
}

#[test]
fn a_wal_left_by_a_killed_writer_is_a_warning_and_run_keeps_its_commits() {
    let t = crashed_root("WAL");
    assert!(t.exists("data/app.db-wal") && t.exists("data/app.db-shm"), "the kill left no log");
    // The writer's commits are in the log only: losing it would lose them.
    let file_only = Connection::open_with_flags(
        format!("file:{}?immutable=1", t.join("data/app.db").display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let in_file: i64 = file_only.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(in_file, BEFORE);
    drop(file_only);
    assert_reported_for_recovery_untouched(&t);
    assert_run_recovers_and_starts(&t);
}

#[test]
fn heal_recovers_a_hot_journal_under_its_lock_and_reports_the_action() {
    let t = crashed_root("DELETE");
    let heal = t.run(&["heal", "--format", "json"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    let report = heal.json();
    let action = &report["actions"][0];
    assert_eq!(action["id"], "db:data/app.db:recovery", "{report:#}");
    assert_eq!(action["outcome"], "done", "{report:#}");
    assert_eq!(rows(&t.join("data/app.db")), (BEFORE, COMMITTED, 0, true));
    let second = t.run(&["heal", "--format", "json"]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert_eq!(second.json()["actions"].as_array().map(Vec::len), Some(0), "{}", second.stdout);
}

#[test]
fn heal_only_a_table_of_a_crashed_database_recovers_it_first() {
    let t = crashed_root("DELETE");
    let heal = t.run(&["heal", "--only", "db:data/app.db:table:events", "--format", "json"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    let report = heal.json();
    let action = &report["actions"][0];
    assert_eq!(action["id"], "db:data/app.db:recovery", "the recovery is selected with the table: {report:#}");
    assert_eq!(action["outcome"], "done", "{report:#}");
    assert_eq!(rows(&t.join("data/app.db")), (BEFORE, COMMITTED, 0, true));
}

/// A WAL database closed cleanly has no `-wal` or `-shm`: validate and the
/// dry run must not create them (a read-only open would), whatever they
/// find and however deep they look.
#[test]
fn validate_and_dry_run_leave_a_wal_database_exactly_as_found() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write("schema.sql", DDL).mkdir("data");
    let conn = Connection::open(t.join("data/app.db")).unwrap();
    conn.execute_batch(&format!("PRAGMA journal_mode=WAL; {OLD_DDL} INSERT INTO events(kind) VALUES ('before');"))
        .unwrap();
    drop(conn);
    let before = listing(t.path());
    assert!(before.iter().all(|(name, ..)| !name.ends_with("-wal") && !name.ends_with("-shm")), "{before:?}");
    for args in [
        &["validate"][..],
        &["validate", "--deep"],
        &["heal", "--dry-run"],
        &["heal", "--dry-run", "--deep", "--allow-rebuild"],
        &["validate", "--format", "json"],
    ] {
        let run = t.run(args);
        assert_eq!(run.code, 1, "{args:?}: the missing column is critical: {}", run.all_output());
        assert_eq!(listing(t.path()), before, "{args:?} changed the directory");
    }
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    let healed = listing(t.path());
    let db_files: Vec<_> = healed.iter().filter(|(name, ..)| name.starts_with("data/")).collect();
    assert_eq!(db_files.len(), 1, "heal closes the database: no -wal or -shm left: {healed:?}");
    assert_eq!(t.run(&["validate"]).code, 0);
    assert_eq!(listing(t.path()), healed, "validate after heal changed the directory");
}

/// A live application holds its WAL open: validate reads through it
/// without writing, and does not mistake it for a crash.
#[test]
fn a_wal_in_use_by_another_process_is_read_not_recovered() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write("schema.sql", DDL).mkdir("data");
    let conn = Connection::open(t.join("data/app.db")).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; {} INSERT INTO events(kind) VALUES ('live');",
        DDL.trim()
    ))
    .unwrap();
    let before = listing(t.path());
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(listing(t.path()), before, "validate wrote beside a database in use");
    drop(conn);
}

/// xorshift: reproducible delays without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn kills() -> u64 {
    std::env::var("PREFLIGHT_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}

/// Rows and their values, as a sum that changes if any is lost or altered.
fn summary(db: &Path) -> (i64, i64, i64) {
    let conn = Connection::open(db).unwrap();
    conn.query_row("SELECT count(*), sum(id), sum(length(kind) + length(coalesce(body, ''))) FROM events", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

/// The root of the rebuild and rollback crash tests: a database of `rows`
/// rows (330 bytes each: at 40,000, more than SQLite's page cache, so a
/// rebuild writes pages into the file long before it commits) whose `kind`
/// column changes type (a rebuild, after a backup) and gains a column, and
/// a JSON file missing keys (quarantined, then rewritten).
fn rebuild_root(journal_mode: &str, rows: u32) -> TestDir {
    let manifest = format!("{MANIFEST}[[file]]\npath = \"data/state.json\"\ndefault = {{ open = [], closed = [] }}\n");
    let t = TestDir::with_manifest(&manifest);
    t.write("schema.sql", DDL.replace("kind TEXT NOT NULL", "kind BLOB NOT NULL")).mkdir("data");
    t.write("data/state.json", "{\"open\": [1, 2, 3]}\n");
    let conn = Connection::open(t.join("data/app.db")).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode={journal_mode}; {OLD_DDL}
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO events(kind, body) SELECT 'k' || (i % 7), 'row ' || i || hex(zeroblob(150)) FROM n;"
    ))
    .unwrap();
    t
}

/// Starts `preflight ARGS` in the root and SIGKILLs it after `delay`.
fn kill_after(t: &TestDir, args: &[&str], delay: Duration) {
    kill_when(t, args, |_| true, delay);
}

/// Starts `preflight ARGS` in the root and SIGKILLs it `delay` after
/// `ready` holds (or when it exits by itself).
fn kill_when(t: &TestDir, args: &[&str], ready: impl Fn(&TestDir) -> bool, delay: Duration) {
    let manifest = t.join("preflight.toml");
    let mut child = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_preflight"))
            .args(args)
            .args(["-q", "-m", manifest.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    while !ready(t) && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

fn timed(t: &TestDir, args: &[&str]) -> Duration {
    let start = std::time::Instant::now();
    let run = t.run(args);
    assert!(matches!(run.code, 0 | 2), "{args:?}: {}", run.all_output());
    start.elapsed()
}

/// Rows of the rebuild test (larger than the page cache) and of the rollback tests.
const BIG: u32 = 40_000;
const SMALL: u32 = 5_000;

/// A journal SQLite would roll back: its header was synced (a journal
/// whose first byte is still zero holds nothing the file needs undone).
fn is_hot(journal: &Path) -> bool {
    std::fs::read(journal).is_ok_and(|bytes| bytes.first().is_some_and(|&b| b != 0))
}

/// preflight's own rebuild, killed at any moment in rollback-journal
/// mode, leaves a state the next `run` recovers from and starts on.
#[test]
fn preflight_killed_mid_rebuild_leaves_a_state_the_next_run_starts_on() {
    let window = timed(&rebuild_root("DELETE", BIG), &["heal", "--allow-rebuild"]).as_micros() as u64 + 1;
    let mut state = 0x2545_F491_4F6C_DD1D;
    let mut hot = 0;
    for seed in 0..kills() {
        let t = rebuild_root("DELETE", BIG);
        let expected = summary(&t.join("data/app.db"));
        let delay = Duration::from_micros(next(&mut state) % window);
        if seed % 2 == 1 {
            kill_after(&t, &["heal", "--allow-rebuild"], delay);
        } else {
            // Inside the transaction, once pages are in the file: at once
            // (the first seed, so that even one kill lands there), or up
            // to 2 ms later.
            let delay = if seed % 4 == 0 { Duration::ZERO } else { delay.min(Duration::from_millis(2)) };
            kill_when(&t, &["heal", "--allow-rebuild"], |t| is_hot(&t.join("data/app.db-journal")), delay);
        }
        hot += u64::from(is_hot(&t.join("data/app.db-journal")));
        let run = t.run(&["run", "--", "sh", "-c", "echo app started"]);
        assert_eq!(run.code, 0, "seed {seed}: {}", run.all_output());
        assert!(run.stdout.contains("app started"), "seed {seed}: {}", run.all_output());
        assert_eq!(summary(&t.join("data/app.db")), expected, "seed {seed}: rows lost or changed");
        // A kill between the journal's creation and its header leaves it
        // empty: not hot, ignored by SQLite and replaced at the next write.
        // A hot journal must never survive `run`.
        let journal = t.join("data/app.db-journal");
        assert!(!is_hot(&journal), "seed {seed}: a hot journal survived run");
        if journal.exists() {
            let report = t.run(&["validate", "--format", "json"]).json();
            let ids: Vec<&str> =
                report["findings"].as_array().unwrap().iter().filter_map(|f| f["id"].as_str()).collect();
            assert!(!ids.iter().any(|id| id.ends_with(":recovery")), "seed {seed}: {ids:?}");
        }
    }
    assert!(hot > 0, "no kill landed inside the rebuild's transaction");
    eprintln!("{hot} of {} kills left a hot journal", kills());
}

/// `preflight rollback` killed half-way, then run again: every file is at
/// all times either as the heal left it or as it was before, and the
/// second rollback finishes the job.
#[test]
fn a_rollback_killed_half_way_finishes_when_run_again() {
    for journal_mode in ["DELETE", "WAL"] {
        let probe = rebuild_root(journal_mode, SMALL);
        timed(&probe, &["heal", "--allow-rebuild"]);
        let window = timed(&probe, &["rollback"]).as_micros() as u64 + 1;
        let mut state = 0x9E37_79B9_7F4A_7C15;
        for seed in 0..kills() {
            let t = rebuild_root(journal_mode, SMALL);
            let before = (t.read("data/state.json"), summary(&t.join("data/app.db")));
            timed(&t, &["heal", "--allow-rebuild"]);
            let healed = t.read("data/state.json");
            assert_ne!(healed, before.0);
            kill_after(&t, &["rollback"], Duration::from_micros(next(&mut state) % window));
            let json = t.read("data/state.json");
            assert!(json == before.0 || json == healed, "{journal_mode} seed {seed}: {json}");
            assert_eq!(summary(&t.join("data/app.db")).0, before.1 .0, "{journal_mode} seed {seed}: rows");
            let again = t.run(&["rollback"]);
            // Killed after it recorded its work, the first one had finished.
            let finished = again.code == 1 && again.stderr.contains("nothing to roll back");
            assert!(again.code == 0 || finished, "{journal_mode} seed {seed}: {}", again.all_output());
            assert_eq!(t.read("data/state.json"), before.0, "{journal_mode} seed {seed}");
            assert_eq!(summary(&t.join("data/app.db")), before.1, "{journal_mode} seed {seed}");
            let kind: String = Connection::open(t.join("data/app.db"))
                .unwrap()
                .query_row("SELECT type FROM pragma_table_info('events') WHERE name = 'kind'", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kind, "TEXT", "{journal_mode} seed {seed}: the schema before the heal is back");
        }
    }
}

/// The moment a kill rarely hits, made certain: a rollback put the
/// database back from its backup and was killed before it restored the
/// JSON file or recorded anything. Run again, it finishes the job.
#[test]
fn a_rollback_finishes_what_an_interrupted_one_started() {
    let t = rebuild_root("DELETE", SMALL);
    let before = (t.read("data/state.json"), summary(&t.join("data/app.db")));
    timed(&t, &["heal", "--allow-rebuild"]);
    let backup = walkdir::WalkDir::new(t.join(".preflight/backups"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.ends_with("data/app.db"))
        .expect("the rebuild's backup");
    std::fs::copy(&backup, t.join("data/app.db")).unwrap();
    let again = t.run(&["rollback"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!((t.read("data/state.json"), summary(&t.join("data/app.db"))), before);
}
