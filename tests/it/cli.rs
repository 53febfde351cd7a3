//! The foundation's contract, driven through the real binary: the env, dir
//! and file rows of SPEC (detect → heal → validate gives 0), idempotence,
//! dry runs, selection flags, output formats, exit codes.

use crate::support::{self, TestDir};

const SECRET: &str = "sk-live-THIS-MUST-NEVER-BE-PRINTED";

fn heal_converges(t: &TestDir) {
    let healed = t.run(&["heal"]);
    assert_eq!(healed.code, 0, "heal: {}", healed.all_output());
    let again = t.run(&["validate"]);
    assert_eq!(again.code, 0, "validate after heal: {}", again.all_output());
    let before = t.snapshot();
    let second = t.run(&["heal"]);
    assert_eq!(second.code, 0);
    assert_eq!(before, t.snapshot(), "a second heal must change no byte");
}

mod dirs {
    use super::*;

    #[test]
    fn missing_directory_is_created_with_its_mode() {
        let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"data/cache\"\nmode = \"0750\"\n");
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("dir:data/cache"), "{}", run.stdout);
        heal_converges(&t);
        assert_eq!(t.mode("data/cache"), 0o750);
    }

    #[test]
    fn wider_mode_is_a_warning_and_left_alone() {
        let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"data\"\nmode = \"0750\"\n");
        t.mkdir("data").chmod("data", 0o777);
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(run.stdout.contains("0777"));
        assert_eq!(t.run(&["heal"]).code, 2);
        assert_eq!(t.mode("data"), 0o777);
        assert_eq!(t.run(&["validate", "--strict"]).code, 1);
    }

    #[test]
    fn a_file_where_a_directory_is_declared_is_critical_and_kept() {
        let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"data\"\n");
        t.write("data", "not a dir");
        assert_eq!(t.run(&["heal"]).code, 1);
        assert_eq!(t.read("data"), "not a dir");
    }
}

mod env {
    use super::*;

    const MANIFEST: &str = "version = 1\n[env]\ntemplate = \".env.example\"\nrequired = [\"API_KEY\"]\n";

    #[test]
    fn missing_env_is_copied_from_the_template_with_mode_0600() {
        let t = TestDir::with_manifest(MANIFEST);
        t.write(".env.example", format!("API_KEY={SECRET}\nLOG_LEVEL=info\n"));
        assert_eq!(t.run(&["validate"]).code, 1);
        heal_converges(&t);
        assert_eq!(t.read(".env"), t.read(".env.example"));
        assert_eq!(t.mode(".env"), 0o600);
    }

    #[test]
    fn template_keys_missing_from_env_are_appended() {
        let t = TestDir::with_manifest(MANIFEST);
        t.write(".env.example", "API_KEY=\nLOG_LEVEL='info'\nPORT=8000\n");
        t.write(".env", format!("API_KEY={SECRET}\n# mine\nEXTRA=1"));
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(run.stdout.contains("env:LOG_LEVEL") && run.stdout.contains("env:PORT"));
        let healed = t.run(&["heal"]);
        assert_eq!(healed.code, 0, "{}", healed.all_output());
        assert_eq!(t.read(".env"), format!("API_KEY={SECRET}\n# mine\nEXTRA=1\nLOG_LEVEL='info'\nPORT=8000\n"));
        let quarantined = support::snapshot(&t.join(".preflight/quarantine"), false);
        let original = quarantined.values().find_map(|(_, bytes)| bytes.clone()).expect("original quarantined");
        assert_eq!(original, format!("API_KEY={SECRET}\n# mine\nEXTRA=1").into_bytes());
        assert_eq!(quarantined.values().filter(|(_, b)| b.is_some()).count(), 1, "one copy of the original per run");
    }

    #[test]
    fn required_keys_missing_or_empty_are_critical_and_never_filled() {
        let t = TestDir::with_manifest("version = 1\n[env]\nrequired = [\"API_KEY\", \"DB_URL\"]\n");
        t.write(".env", format!("API_KEY=\nOTHER={SECRET}\n"));
        let before = t.snapshot();
        let run = t.run(&["heal"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("API_KEY is empty"), "{}", run.stdout);
        assert!(run.stdout.contains("DB_URL is missing"), "{}", run.stdout);
        assert_eq!(before, t.snapshot());
    }

    #[test]
    fn syntax_error_names_the_line_and_no_value() {
        let t = TestDir::with_manifest("version = 1\n[env]\n");
        t.write(".env", format!("A=1\nB={SECRET}\nthis line is broken\n"));
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("line 3"), "{}", run.stdout);
        assert!(!run.all_output().contains(SECRET));
    }

    #[test]
    fn no_env_value_appears_in_any_output_or_history() {
        let t = TestDir::with_manifest(MANIFEST);
        t.write(".env.example", format!("API_KEY={SECRET}\nTOKEN={SECRET}2\n"));
        t.write(".env", "API_KEY=\n");
        let mut outputs = Vec::new();
        for args in [
            &["validate"][..],
            &["heal", "--dry-run"],
            &["heal"],
            &["validate", "--format", "json"],
            &["heal", "--format", "json"],
        ] {
            outputs.push(t.run(args).all_output());
        }
        t.write(".env", "");
        outputs.push(t.run(&["heal", "--dry-run", "--format", "json"]).all_output());
        outputs.push(t.read(".preflight/history.jsonl"));
        for output in outputs {
            assert!(!output.contains(SECRET), "a secret leaked: {output}");
        }
    }
}

mod files {
    use super::*;

    const MANIFEST: &str = r#"version = 1
[[file]]
path = "logs/positions.json"
default = { open_positions = [], closed_positions = [] }
"#;

    #[test]
    fn missing_file_gets_its_default() {
        let t = TestDir::with_manifest(MANIFEST);
        assert_eq!(t.run(&["validate"]).code, 1);
        heal_converges(&t);
        let value: serde_json::Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
        assert_eq!(value, serde_json::json!({"open_positions": [], "closed_positions": []}));
    }

    #[test]
    fn empty_and_empty_object_files_get_their_default() {
        for content in ["", "  \n", "{}", "{ }\n"] {
            let t = TestDir::with_manifest(MANIFEST);
            t.write("logs/positions.json", content);
            assert_eq!(t.run(&["validate"]).code, 1, "{content:?}");
            heal_converges(&t);
            let value: serde_json::Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
            assert_eq!(value, serde_json::json!({"open_positions": [], "closed_positions": []}), "{content:?}");
        }
    }

    #[test]
    fn missing_keys_are_added_and_every_existing_byte_kept() {
        let t = TestDir::with_manifest(MANIFEST);
        let original = "{\n  \"open_positions\": [{\"symbol\": \"BTC\", \"qty\": 0.10000000000000001}],\n  \"note\": \"mine\"\n}\n";
        t.write("logs/positions.json", original);
        let run = t.run(&["validate"]);
        assert!(run.stdout.contains("closed_positions"), "{}", run.stdout);
        heal_converges(&t);
        let healed = t.read("logs/positions.json");
        assert!(healed.starts_with(original.trim_end().trim_end_matches('}').trim_end()), "{healed}");
        assert!(healed.contains("\"closed_positions\": []"));
    }

    #[test]
    fn unwritable_file_gets_user_write_permission() {
        let t = TestDir::with_manifest(MANIFEST);
        t.write("logs/positions.json", "{\"open_positions\": [], \"closed_positions\": []}")
            .chmod("logs/positions.json", 0o444);
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("file:logs/positions.json:mode"), "{}", run.stdout);
        heal_converges(&t);
        assert_eq!(t.mode("logs/positions.json"), 0o644);
    }

    #[test]
    fn a_top_level_of_another_type_is_left_alone() {
        let t = TestDir::with_manifest(MANIFEST);
        t.write("logs/positions.json", "[1, 2, 3]");
        let before = t.app_snapshot();
        assert_eq!(t.run(&["heal"]).code, 1);
        assert_eq!(before, t.app_snapshot());
    }

    #[test]
    fn a_directory_or_fifo_at_a_file_path_is_never_opened() {
        let t = TestDir::with_manifest(MANIFEST);
        t.mkdir("logs");
        let fifo = t.join("logs/positions.json");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        let run = t.run(&["heal"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("not a regular file"), "{}", run.stdout);
    }

    #[test]
    fn text_file_gets_its_default() {
        let t = TestDir::with_manifest(
            "version = 1\n[[file]]\npath = \"VERSION\"\nformat = \"text\"\ndefault = \"1\\n\"\n",
        );
        heal_converges(&t);
        assert_eq!(t.read("VERSION"), "1\n");
        t.write("VERSION", "7\n");
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_eq!(t.read("VERSION"), "7\n", "existing text is never replaced");
    }
}

mod heal_contract {
    use super::*;

    const MANIFEST: &str = r#"version = 1
[env]
template = ".env.example"
[[dir]]
path = "data"
[[dir]]
path = "logs"
[[file]]
path = "data/state.json"
default = { a = 1 }
"#;

    fn broken() -> TestDir {
        let t = TestDir::with_manifest(MANIFEST);
        t.write(".env.example", "A=1\n");
        t
    }

    #[test]
    fn dry_run_changes_no_byte_and_prints_the_plan() {
        let t = broken();
        let before = t.snapshot();
        let run = t.run(&["heal", "--dry-run"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("mkdir data") && run.stdout.contains("write data/state.json"), "{}", run.stdout);
        assert_eq!(before, t.snapshot());
    }

    #[test]
    fn heal_records_each_action_in_the_history() {
        let t = broken();
        assert_eq!(t.run(&["heal"]).code, 0);
        let history = t.read(".preflight/history.jsonl");
        let entries: Vec<serde_json::Value> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["dir:data", "dir:logs", "env:.env", "file:data/state.json"]);
        assert!(entries.iter().all(|e| e["outcome"] == "done" && e["run"] == entries[0]["run"]));
        assert_eq!(t.mode(".preflight"), 0o700);
    }

    #[test]
    fn only_selects_findings_by_id_or_prefix() {
        let t = broken();
        let run = t.run(&["heal", "--only", "dir:"]);
        assert_eq!(run.code, 0, "{}", run.stdout);
        assert!(t.exists("data") && t.exists("logs") && !t.exists(".env") && !t.exists("data/state.json"));
        assert_eq!(t.run(&["validate", "--only", "env:.env"]).code, 1);
        assert_eq!(t.run(&["validate", "--only", "dir:data"]).code, 0);
    }

    #[test]
    fn only_does_not_run_checks_it_cannot_select() {
        let t = TestDir::with_manifest(
            "version = 1\n[[dir]]\npath = \"data\"\n[[command]]\nname = \"marker\"\nrun = \"touch ran\"\n",
        );
        assert_eq!(t.run(&["validate", "--only", "dir:"]).code, 1);
        assert!(!t.exists("ran"), "--only dir: must not start the command check");
        t.run(&["validate"]);
        assert!(t.exists("ran"), "without --only the command runs");
    }

    #[test]
    fn db_only_skips_file_checks_and_fs_only_keeps_them() {
        let t = broken();
        let before = t.snapshot();
        assert_eq!(t.run(&["heal", "--db-only"]).code, 0);
        assert_eq!(before, t.snapshot());
        assert_eq!(t.run(&["validate", "--fs-only"]).code, 1);
        assert_eq!(t.run(&["validate", "--db-only", "--fs-only"]).code, 1, "conflicting flags are an argument error");
    }

    #[test]
    fn json_output_is_one_document_whose_status_matches_the_exit_code() {
        let t = broken();
        let run = t.run(&["validate", "--format", "json"]);
        let doc = run.json();
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["status"], "critical");
        assert_eq!(doc["exit_code"], run.code);
        let first = &doc["findings"][0];
        for key in ["id", "area", "severity", "message", "fixable"] {
            assert!(first.get(key).is_some(), "finding lacks {key}: {first}");
        }
        let healed = t.run(&["heal", "--format", "json"]);
        let doc = healed.json();
        assert_eq!((doc["status"].as_str(), healed.code), (Some("ok"), 0));
        assert_eq!(doc["actions"].as_array().unwrap().len(), 4);
        assert_eq!(doc["actions"][0]["outcome"], "done");
        assert_eq!(doc["after"], serde_json::json!([]));
    }

    #[test]
    fn quiet_prints_nothing_when_all_is_well() {
        let t = broken();
        assert!(!t.run(&["validate", "-q"]).stdout.is_empty());
        t.run(&["heal"]);
        let run = t.run(&["validate", "-q"]);
        assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    }

    #[test]
    fn color_always_colours_and_never_does_not() {
        let t = broken();
        assert!(t.run(&["validate", "--color", "always"]).stdout.contains("\u{1b}["));
        assert!(!t.run(&["validate", "--color", "never"]).stdout.contains("\u{1b}["));
    }

    #[test]
    fn argument_errors_exit_1_not_2() {
        let t = broken();
        assert_eq!(t.run(&["validate", "--no-such-flag"]).code, 1);
        assert_eq!(t.run(&["frobnicate"]).code, 1);
        assert_eq!(t.run(&["validate", "--format", "xml"]).code, 1);
        assert_eq!(support::run_preflight(&["--help"], t.path()).code, 0);
    }

    #[test]
    fn default_manifest_is_found_in_the_current_directory() {
        let t = broken();
        let run = support::run_preflight(&["validate"], t.path());
        assert_eq!(run.code, 1, "{}", run.all_output());
        let empty = TestDir::new();
        let run = support::run_preflight(&["validate"], empty.path());
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("preflight.toml"), "{}", run.stderr);
    }

    #[test]
    fn root_option_overrides_the_manifest_folder() {
        let t = broken();
        let other = TestDir::new();
        other.write(".env.example", "A=1\n");
        let run = t.run(&["heal", "--root", other.path().to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert!(other.exists("data/state.json") && !t.exists("data"));
    }

    #[test]
    fn manifest_in_json_works_like_toml() {
        let t = TestDir::new();
        t.write("preflight.json", r#"{"version": 1, "dir": [{"path": "data", "mode": "0700"}]}"#);
        let manifest = t.join("preflight.json");
        let run = support::run_preflight(&["heal", "-m", manifest.to_str().unwrap()], t.path());
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert_eq!(t.mode("data"), 0o700);
    }

    #[test]
    fn schema_command_matches_the_committed_copy() {
        let run = support::run_preflight(&["schema"], std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
        assert_eq!(run.code, 0);
        let committed =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/preflight.schema.json")).unwrap();
        assert_eq!(
            run.stdout, committed,
            "schemas/preflight.schema.json is stale: run `cargo run -- schema > schemas/preflight.schema.json`"
        );
    }
}
