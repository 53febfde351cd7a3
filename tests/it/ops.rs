//! The operations commands through the real binary on temp roots: run
//! (exec, refusal), history, rollback (byte-identical restore, refusal,
//! database backups), init (validates to 0), watch (heals, trips the
//! breaker, stops on SIGTERM), JUnit output, completions and man page.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{self, TestDir};

const DIR_MANIFEST: &str = "version = 1\n[[dir]]\npath = \"data\"\n";

/// A root with something to heal of each kind the foundation fixes: a
/// missing `.env` (from its template), a missing folder, a JSON file that
/// lacks a key (replaced, original quarantined) and one that is missing.
fn healable() -> TestDir {
    let t = TestDir::with_manifest(
        "version = 1\n[env]\ntemplate = \".env.example\"\n\n[[dir]]\npath = \"data/cache\"\nmode = \"0750\"\n\n\
         [[file]]\npath = \"state/positions.json\"\ndefault = { open = [], closed = [] }\n\n\
         [[file]]\npath = \"state/new.json\"\ndefault = { a = 1 }\n\n\
         [[file]]\npath = \"state/readonly.json\"\ndefault = { a = 1 }\n",
    );
    t.write("state/readonly.json", "{\"a\": 2}");
    t.chmod("state/readonly.json", 0o444);
    t.write(".env.example", "LOG_LEVEL=info\n");
    t.write("state/positions.json", "{\n  \"open\": [{\"symbol\": \"BTC\"}]\n}\n");
    t.chmod("state/positions.json", 0o640);
    t
}

/// The first column of every row `sql` returns from the database at `db`.
fn strings(db: &Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    rows
}

mod run {
    use super::*;
    use crate::support::Background;

    /// `preflight -m … run ARGS`: the manifest comes first, as everything
    /// after `run`'s command belongs to the command.
    fn launch(t: &TestDir, args: &[&str]) -> support::Run {
        let manifest = t.join("preflight.toml");
        let mut all = vec!["-m", manifest.to_str().unwrap(), "run"];
        all.extend(args);
        support::run_preflight(&all, t.path())
    }

    #[test]
    fn execs_the_command_after_healing_and_passes_its_output_and_exit_code() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let run = launch(&t, &["--", "sh", "-c", "test -d data && echo app-out && echo app-err >&2; exit 7"]);
        assert_eq!(run.code, 7, "{}", run.all_output());
        assert_eq!(run.stdout, "app-out\n", "the report goes to stderr, stdout is the app's");
        assert!(run.stderr.contains("app-err") && run.stderr.contains("create directory"), "{}", run.stderr);
    }

    #[test]
    fn its_json_report_names_the_run_command_and_lists_the_actions() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let run = launch(&t, &["--format", "json", "--", "true"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        let doc: serde_json::Value = serde_json::from_str(&run.stderr).unwrap();
        assert_eq!(doc["command"], "run");
        assert_eq!(doc["actions"][0]["action"], "create directory");
    }

    #[test]
    fn the_app_gets_sigpipe_and_sigxfsz_with_their_default_actions() {
        // Rust ignores SIGPIPE in its own processes; an ignored signal
        // would survive the exec and change how the app reacts to pipes.
        let t = TestDir::with_manifest("version = 1\n");
        let run = launch(&t, &["-q", "--", "sh", "-c", "grep SigIgn /proc/self/status"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        let mask = u64::from_str_radix(run.stdout.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{}", run.stdout);
        // preflight ignores SIGXFSZ for its own writes; the app gets the
        // default too (killed over `ulimit -f`, as it would be without us).
        assert_eq!(mask & (1 << (libc::SIGXFSZ - 1)), 0, "{}", run.stdout);
    }

    #[test]
    fn refuses_to_start_on_critical_findings() {
        // Damaged, and its salvage is not the default's kind: left alone, critical.
        let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"x.json\"\ndefault = { a = 1 }\n");
        t.write("x.json", "[not json");
        let run = launch(&t, &["--", "touch", "started"]);
        assert_eq!(run.code, 1);
        assert!(!t.exists("started"), "the command must not run");
        assert!(run.stderr.contains("not starting touch"), "{}", run.stderr);
        assert!(run.stderr.contains("file:x.json"), "{}", run.stderr);
    }

    #[test]
    fn warnings_start_the_command_unless_strict() {
        let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"data\"\nmode = \"0750\"\n");
        t.mkdir("data").chmod("data", 0o777);
        assert_eq!(launch(&t, &["--strict", "--", "touch", "started"]).code, 1);
        assert!(!t.exists("started"));
        assert_eq!(launch(&t, &["--", "touch", "started"]).code, 0);
        assert!(t.exists("started"));
    }

    #[test]
    fn a_missing_program_is_an_error_before_anything_is_healed() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let run = launch(&t, &["--", "no-such-program-xyz", "arg"]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("cannot start no-such-program-xyz: no such program on PATH"), "{}", run.stderr);
        assert!(!t.exists("data"), "nothing is healed for a command that cannot start");
        let run = launch(&t, &["--", "./bin/missing"]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("cannot start ./bin/missing"), "{}", run.stderr);
    }

    /// `launch`, left running in the background.
    fn launch_in_background(t: &TestDir, args: &[&str]) -> Background {
        let manifest = t.join("preflight.toml");
        let mut all = vec!["-m", manifest.to_str().unwrap(), "run"];
        all.extend(args);
        Background::start(&all, t.path())
    }

    /// Replaces `path` in one step (write beside it, rename over it), so
    /// the launcher never reads it half-written.
    fn replace(path: &Path, contents: &str) {
        let temporary = path.with_extension("test-tmp");
        fs::write(&temporary, contents).unwrap();
        fs::rename(&temporary, path).unwrap();
    }

    #[test]
    fn retry_waits_for_a_manifest_that_is_not_there_yet() {
        let t = TestDir::new();
        let mut launcher =
            launch_in_background(&t, &["--retry-timeout", "60s", "--sleep", "100ms", "--", "touch", "started"]);
        // The volume is "mounted" once the launcher has tried without it,
        // never before: its first attempt is reported before it sleeps.
        launcher.wait_for_stderr("a first attempt without the manifest", |err| err.contains("attempt 1: "));
        replace(&t.join("preflight.toml"), DIR_MANIFEST);
        let run = launcher.finish();
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert!(t.exists("started") && t.exists("data"));
        assert!(run.stderr.contains("cannot read the manifest"), "{}", run.stderr);
    }

    #[test]
    fn retry_waits_until_the_directory_becomes_healthy() {
        // Damaged, and its salvage is not the default's kind: left alone, critical.
        let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"x.json\"\ndefault = { a = 1 }\n");
        t.write("x.json", "[not json");
        let mut launcher =
            launch_in_background(&t, &["--retry-timeout", "60s", "--sleep", "100ms", "--", "touch", "started"]);
        // Repaired by someone else once the launcher has found it damaged.
        launcher.wait_for_stderr("a first attempt on the damaged file", |err| err.contains("attempt 1: "));
        replace(&t.join("x.json"), "{\"a\": 1}");
        let run = launcher.finish();
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert!(t.exists("started"));
        assert!(run.stderr.contains("attempt 1: critical findings remain"), "{}", run.stderr);
    }
}

mod history {
    use super::*;

    #[test]
    fn lists_what_heal_did_newest_first() {
        let t = healable();
        assert_eq!(t.run(&["history"]).stdout, "no heal run recorded yet\n");
        assert_eq!(t.run(&["heal"]).code, 0);
        t.write("state/positions.json", "{}");
        assert_eq!(t.run(&["heal"]).code, 0);
        let text = t.run(&["history"]);
        assert_eq!(text.code, 0);
        for expected in
            ["dir:data/cache", "create directory", "env:.env", "file:state/positions.json", "kept .preflight"]
        {
            assert!(text.stdout.contains(expected), "{expected}: {}", text.stdout);
        }
        let doc = t.run(&["history", "--json"]).json();
        let runs = doc["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0]["actions"].as_array().unwrap().len(), 1, "the newest run comes first");
        let first = runs[1]["run"].as_str().unwrap();
        let only = t.run(&["history", "--run", first, "--json"]).json();
        assert_eq!(only["runs"].as_array().unwrap().len(), 1);
        let ids: Vec<&str> =
            only["runs"][0]["actions"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "dir:data/cache",
                "env:.env",
                "file:state/positions.json",
                "file:state/new.json",
                "file:state/readonly.json:mode"
            ]
        );
        assert_eq!(t.run(&["history", "--run", "nope"]).code, 1);
    }

    #[test]
    fn stats_count_recurring_findings() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        for _ in 0..3 {
            assert_eq!(t.run(&["heal"]).code, 0);
            fs::remove_dir(t.join("data")).unwrap();
        }
        let doc = t.run(&["history", "--stats", "--json"]).json();
        assert_eq!(doc["stats"][0]["id"], "dir:data");
        assert_eq!(doc["stats"][0]["found"], 3);
        assert_eq!(doc["stats"][0]["healed"], 3);
        let text = t.run(&["history", "--stats"]).stdout;
        assert!(text.lines().any(|l| l.starts_with("dir:data") && l.contains(" 3 ")), "{text}");
    }

    #[test]
    fn the_bound_is_configurable_by_environment() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        for _ in 0..4 {
            let out = Command::new(env!("CARGO_BIN_EXE_preflight"))
                .args(["heal", "-m", t.join("preflight.toml").to_str().unwrap()])
                .env("PREFLIGHT_HISTORY_RUNS", "2")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0));
            fs::remove_dir(t.join("data")).unwrap();
        }
        let doc = t.run(&["history", "--json"]).json();
        assert_eq!(doc["runs"].as_array().unwrap().len(), 2);
    }
}

mod rollback {
    use super::*;

    #[test]
    fn after_heal_gives_back_the_byte_identical_directory() {
        let t = healable();
        let positions = t.join("state/positions.json");
        filetime::set_file_mtime(&positions, filetime::FileTime::from_unix_time(1_700_000_000, 123_456_789)).unwrap();
        let mtime = || fs::metadata(&positions).unwrap().modified().unwrap();
        let (before, old_mtime) = (t.app_snapshot(), mtime());
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_ne!(before, t.app_snapshot());
        let undo = t.run(&["rollback"]);
        assert_eq!(undo.code, 0, "{}", undo.all_output());
        assert_eq!(before, t.app_snapshot(), "files, folders and modes are as before the heal");
        assert_eq!(mtime(), old_mtime, "a restored file keeps its modification time");
        let history = t.run(&["history"]).stdout;
        assert!(history.contains("(rollback of "), "rollback is recorded: {history}");
        let fresh = TestDir::with_manifest(DIR_MANIFEST);
        assert_eq!(fresh.run(&["rollback"]).code, 1);
        assert!(!fresh.exists(".preflight"), "a rollback with no history writes nothing");
        let again = t.run(&["rollback"]);
        assert_eq!(again.code, 1, "the only heal run is already rolled back");
        assert!(again.stderr.contains("nothing to roll back"), "{}", again.stderr);
    }

    #[test]
    fn a_named_older_run_is_rolled_back_when_nothing_it_touched_changed() {
        let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"a\"\n[[dir]]\npath = \"b\"\n");
        t.mkdir("b");
        assert_eq!(t.run(&["heal"]).code, 0);
        let first = t.run(&["history", "--json"]).json()["runs"][0]["run"].as_str().unwrap().to_string();
        fs::remove_dir(t.join("b")).unwrap();
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_eq!(t.run(&["rollback", &first]).code, 0);
        assert!(!t.exists("a") && t.exists("b"));
    }

    #[test]
    fn refuses_with_the_reason_when_a_file_changed_after_the_run() {
        let t = healable();
        assert_eq!(t.run(&["heal"]).code, 0);
        t.write("state/positions.json", "{\"open\": [], \"closed\": [], \"mine\": 1}");
        t.write("data/cache/app-file", "written by the app");
        let after_edit = t.snapshot();
        let undo = t.run(&["rollback"]);
        assert_eq!(undo.code, 1);
        assert!(undo.stdout.contains("state/positions.json: changed after the run"), "{}", undo.stdout);
        assert!(undo.stdout.contains("data/cache: now holds data/cache/app-file"), "{}", undo.stdout);
        assert_eq!(after_edit, t.snapshot(), "a refused rollback changes nothing");
    }

    #[test]
    fn restores_a_database_backup_with_its_schema_and_rows() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let db = t.join("app/data.db");
        fs::create_dir_all(db.parent().unwrap()).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'), ('b');")
            .unwrap();
        // What a database fix does: an online backup, then a change in place.
        let backup = t.join(".preflight/backups/R1/app/data.db");
        fs::create_dir_all(backup.parent().unwrap()).unwrap();
        conn.backup(rusqlite::MAIN_DB, &backup, None::<fn(rusqlite::backup::Progress)>).unwrap();
        conn.execute_batch("ALTER TABLE t ADD COLUMN w INTEGER; DELETE FROM t WHERE v = 'a';").unwrap();
        drop(conn);
        let entry = serde_json::json!({
            "run": "R1", "time": "2026-01-01T00:00:00Z", "id": "db:app/data.db", "action": "rebuild", "outcome": "done",
            "saved": [".preflight/backups/R1/app/data.db"],
            "replaced": [{"path": "app/data.db", "saved": ".preflight/backups/R1/app/data.db", "mode": 0o644,
                          "sha256": sha256(&db)}],
        });
        t.write(".preflight/history.jsonl", format!("{entry}\n"));
        t.write("app/data.db-journal", "hot journal of a later transaction");
        let refused = t.run(&["rollback"]);
        assert_eq!(refused.code, 1);
        assert!(refused.stdout.contains("app/data.db: has a non-empty rollback journal"), "{}", refused.stdout);
        t.write("app/data.db-journal", "");
        let undo = t.run(&["rollback"]);
        assert_eq!(undo.code, 0, "{}", undo.all_output());
        assert_eq!(fs::read(&db).unwrap(), fs::read(&backup).unwrap());
        assert!(!t.exists("app/data.db-journal"), "an empty journal is removed with the restore");
        let sql = strings(&db, "SELECT sql FROM sqlite_schema WHERE name = 't'");
        assert_eq!(sql, ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]);
        assert_eq!(strings(&db, "SELECT v FROM t ORDER BY id"), ["a", "b"]);
    }

    fn sha256(path: &Path) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

mod init {
    use super::*;

    /// An application directory as it is found in the wild.
    fn existing_app() -> TestDir {
        let t = TestDir::new();
        t.mkdir("data").mkdir("logs").mkdir(".git/objects").mkdir("node_modules/x");
        t.write(".env.example", "API_KEY=\nLOG_LEVEL=info\n");
        t.write(".env", "API_KEY=sk-live-SECRET\nLOG_LEVEL=debug\n");
        t.write(
            "logs/positions.json",
            r#"{"open_positions": [{"s": 1}], "closed": {"a": 1}, "count": 3, "note": "x"}"#,
        );
        t.write("logs/list.json", "[1, 2]");
        let conn = rusqlite::Connection::open(t.join("app/data.db")).unwrap_or_else(|_| {
            fs::create_dir_all(t.join("app")).unwrap();
            rusqlite::Connection::open(t.join("app/data.db")).unwrap()
        });
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE);
             CREATE INDEX users_email ON users (email);
             CREATE VIEW emails AS SELECT email FROM users;
             INSERT INTO users (email) VALUES ('a@example.com');",
        )
        .unwrap();
        t
    }

    #[test]
    fn the_starter_manifest_validates_to_zero_where_it_came_from() {
        let t = existing_app();
        let run = t.run(&["init"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        let manifest = t.read("preflight.toml");
        for expected in [
            "path = \"data\"",
            "path = \"logs\"",
            "template = \".env.example\"",
            "required = [\"API_KEY\", \"LOG_LEVEL\"]",
            "default = { open_positions = [], closed = { a = 1 }, count = 3, note = \"x\" }",
            "path = \"app/data.db\"",
            "schema = \"schemas/app_data.sql\"",
        ] {
            assert!(manifest.contains(expected), "{expected}:\n{manifest}");
        }
        assert!(!manifest.contains("SECRET") && !manifest.contains("debug"), "no .env value is copied:\n{manifest}");
        assert!(!manifest.contains(".git") && !manifest.contains("node_modules"), "{manifest}");
        assert!(manifest.contains("logs/list.json is not a JSON object"), "{manifest}");
        let schema = t.read("schemas/app_data.sql");
        assert!(schema.starts_with("CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT"), "{schema}");
        assert!(schema.contains("CREATE INDEX users_email") && schema.contains("CREATE VIEW emails"), "{schema}");
        assert!(!schema.contains("sqlite_sequence"), "{schema}");
        let validate = t.run(&["validate"]);
        assert_eq!(validate.code, 0, "{}", validate.all_output());
    }

    #[test]
    fn refuses_to_overwrite_the_manifest_or_a_schema_without_force() {
        let cases = [
            ("preflight.toml", "already exists; use --force", "schemas/app_data.sql"),
            ("schemas/app_data.sql", "already exists with other content", "preflight.toml"),
        ];
        for (existing, message, not_written) in cases {
            let t = existing_app();
            t.write(existing, "# mine\n");
            let run = t.run(&["init"]);
            assert_eq!(run.code, 1, "{existing}");
            assert!(run.stderr.contains(&format!("{existing} {message}")), "{}", run.stderr);
            assert_eq!(t.read(existing), "# mine\n");
            assert!(!t.exists(not_written), "a refused init writes nothing");
            assert_eq!(t.run(&["init", "--force"]).code, 0);
            assert!(t.read("preflight.toml").contains("[[database]]"));
            assert!(t.read("schemas/app_data.sql").starts_with("CREATE TABLE users"));
        }
    }

    #[test]
    fn without_env_the_env_section_is_left_commented() {
        let t = TestDir::new();
        t.write(".env.example", "API_KEY=\n");
        assert_eq!(t.run(&["init"]).code, 0);
        assert!(t.read("preflight.toml").contains("# [env]"));
        assert_eq!(t.run(&["validate"]).code, 0);
    }

    #[test]
    fn heals_a_deleted_database_back() {
        let t = existing_app();
        assert_eq!(t.run(&["init"]).code, 0);
        fs::remove_file(t.join("app/data.db")).unwrap();
        assert_eq!(t.run(&["validate"]).code, 1);
        let heal = t.run(&["heal"]);
        assert_eq!(heal.code, 0, "{}", heal.all_output());
        let names = strings(
            &t.join("app/data.db"),
            "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        );
        assert_eq!(names, ["emails", "users", "users_email"]);
    }
}

mod watch {
    use super::*;
    use crate::support::{eventually, Watch};

    #[test]
    fn heals_a_deleted_directory_and_stops_cleanly_on_sigterm() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let watch = Watch::start(&t, &["--interval", "100ms", "--cooldown", "0s"]);
        eventually("data is created", || t.exists("data"));
        fs::remove_dir(t.join("data")).unwrap();
        eventually("data is created again", || t.exists("data"));
        let stopped = watch.stop();
        assert_eq!(stopped.code, 0, "{}", stopped.all_output());
        assert!(stopped.stderr.contains("preflight watch: stopped"), "{}", stopped.stderr);
        let stats = t.run(&["history", "--stats", "--json"]).json();
        assert_eq!(stats["stats"][0]["healed"], 2);
    }

    #[test]
    fn json_output_is_a_stream_of_documents() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let watch = Watch::start(&t, &["--interval", "50ms", "--format", "json"]);
        eventually("data is created", || t.exists("data"));
        eventually("the report is written", || watch.output().ends_with("}\n"));
        let stopped = watch.stop();
        assert_eq!(stopped.code, 0, "{}", stopped.all_output());
        let text = stopped.stdout;
        let docs: Vec<serde_json::Value> =
            serde_json::Deserializer::from_str(&text).into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(docs[0]["actions"][0]["id"], "dir:data", "{text}");
        assert_eq!(docs[0]["exit_code"], 0);
    }

    #[test]
    fn a_finding_in_its_cooldown_is_reported_but_not_healed() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let watch = Watch::start(&t, &["--interval", "50ms", "--cooldown", "1h"]);
        eventually("data is created", || t.exists("data"));
        fs::remove_dir(t.join("data")).unwrap();
        // The first report shows the heal; the next one the finding left alone.
        eventually("the finding is reported again", || watch.output().matches("critical  dir:data").count() >= 2);
        assert!(!t.exists("data"), "healed once, then left for the cooldown");
        let stopped = watch.stop();
        assert_eq!(stopped.code, 0, "{}", stopped.all_output());
        assert_eq!(t.run(&["history", "--stats", "--json"]).json()["stats"][0]["healed"], 1);
    }

    #[test]
    fn trips_the_breaker_on_a_finding_that_keeps_coming_back() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let watch = Watch::start(&t, &["--interval", "50ms", "--max-heals", "2", "--cooldown", "0s"]);
        eventually("the breaker trips", || {
            if t.exists("data") {
                let _ = fs::remove_dir(t.join("data"));
            }
            watch.output().contains("flapping")
        });
        let output = watch.output();
        assert!(output.contains("healed 2 times in the last hour; not healed again"), "{output}");
        assert!(output.contains("critical  dir:data"), "{output}");
        assert!(!t.exists("data"), "a tripped finding is not healed");
        let stopped = watch.stop();
        assert_eq!(stopped.code, 0, "{}", stopped.all_output());
        let stats = t.run(&["history", "--stats", "--json"]).json();
        assert_eq!(stats["stats"][0]["healed"], 2);
        assert_eq!(stats["stats"][0]["tripped"], 1);
    }
}

mod junit {
    use super::*;
    use quick_xml::events::Event;

    /// Test cases by name, with the child element of each (failure, skipped, or none).
    fn cases(xml: &str) -> Vec<(String, Option<String>)> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut cases: Vec<(String, Option<String>)> = Vec::new();
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("not XML ({e}): {xml}")) {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.name().0.to_string();
                    if name == "testcase" {
                        let attr = e.try_get_attribute("name").unwrap().unwrap();
                        cases.push((
                            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap().into_owned(),
                            None,
                        ));
                    } else if name == "failure" || name == "skipped" {
                        cases.last_mut().unwrap().1 = Some(name);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        cases
    }

    #[test]
    fn output_parses_as_xml_with_one_case_per_check() {
        let t = TestDir::with_manifest(
            "version = 1\n[[dir]]\npath = \"ok\"\n[[dir]]\npath = \"wide\"\nmode = \"0750\"\n\
             [[file]]\npath = \"bad<&>.json\"\n",
        );
        t.mkdir("ok").mkdir("wide").chmod("wide", 0o777).write("bad<&>.json", "{\"a\": ");
        let run = t.run(&["validate", "--format", "junit"]);
        assert_eq!(run.code, 1);
        let mut cases = cases(&run.stdout);
        cases.sort();
        assert_eq!(
            cases,
            [
                ("dir:ok".to_string(), None),
                ("dir:wide".to_string(), Some("skipped".to_string())),
                ("file:bad<&>.json".to_string(), Some("failure".to_string())),
            ]
        );
        assert!(run.stdout.contains(r#"tests="3" failures="1" errors="0" skipped="1""#), "{}", run.stdout);
    }

    #[test]
    fn heal_and_errors_are_reported_as_xml_too() {
        let t = TestDir::with_manifest(DIR_MANIFEST);
        let heal = t.run(&["heal", "--format", "junit"]);
        assert_eq!(heal.code, 0);
        assert_eq!(cases(&heal.stdout), [("dir:data".to_string(), None)]);
        t.write("preflight.toml", "version = 1\nbogus = 1\n");
        let error = t.run(&["validate", "--format", "junit"]);
        assert_eq!(error.code, 1);
        assert_eq!(cases(&error.stdout).len(), 1);
        assert!(error.stdout.contains("<error message="), "{}", error.stdout);
    }
}

mod generated {
    use super::*;

    #[test]
    fn completions_and_man_page_come_from_the_cli() {
        let t = TestDir::new();
        let bash = t.run(&["completions", "bash"]);
        assert_eq!(bash.code, 0);
        assert!(bash.stdout.contains("_preflight()") && bash.stdout.contains("rollback"), "{}", bash.stdout);
        let zsh = t.run(&["completions", "zsh"]);
        assert!(zsh.stdout.starts_with("#compdef preflight"), "{}", zsh.stdout);
        let man = t.run(&["man"]);
        assert_eq!(man.code, 0);
        assert!(man.stdout.contains(".TH preflight") && man.stdout.contains("watch"), "{}", man.stdout);
        // The deployment flags, on the run page.
        assert!(man.stdout.contains(".TH preflight-run"), "{}", man.stdout);
        assert!(man.stdout.contains("retry\\-timeout") && man.stdout.contains("create = false"), "{}", man.stdout);
        assert_eq!(t.run(&["completions", "nosh"]).code, 1);
    }
}
