//! JSON and JSONL integrity through the real binary: salvage of corrupt
//! documents, JSONL line repair, JSON Schema invariants.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{self, Run, TestDir};
use serde_json::{json, Value};

const POSITIONS: &str = r#"
version = 1
[[file]]
path = "logs/positions.json"
default = { open_positions = [], closed_positions = [] }
"#;

const EVENTS: &str = r#"
version = 1
[[file]]
path = "logs/events.jsonl"
format = "jsonl"
"#;

/// The single copy of `rel` in the quarantine of any run.
fn quarantined(t: &TestDir, rel: &str) -> PathBuf {
    let runs = fs::read_dir(t.join(".preflight/quarantine")).expect("a quarantine folder");
    let copies: Vec<PathBuf> = runs.map(|r| r.unwrap().path().join(rel)).filter(|p| p.exists()).collect();
    assert_eq!(copies.len(), 1, "one quarantined copy of {rel}: {copies:?}");
    copies.into_iter().next().unwrap()
}

fn heal_then_quiet(t: &TestDir, expected: i32) {
    let healed = t.run(&["heal"]);
    assert_eq!(healed.code, expected, "heal: {}", healed.all_output());
    let before = t.snapshot();
    let again = t.run(&["heal"]);
    assert_eq!(again.code, expected, "second heal: {}", again.all_output());
    assert_eq!(before, t.snapshot(), "a second heal must change no byte");
}

mod salvage {
    use super::*;

    #[test]
    fn a_truncated_file_padded_with_nuls_is_salvaged_and_the_original_kept_byte_for_byte() {
        let t = TestDir::with_manifest(POSITIONS);
        let mut original =
            br#"{"open_positions": [{"symbol": "EURUSD", "entry_price": 1.08735}, {"symbol": "GB"#.to_vec();
        original.extend_from_slice(&[0; 4096]);
        t.write("logs/positions.json", &original);
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("at /open_positions/1/symbol"), "{}", run.stdout);
        heal_then_quiet(&t, 0);
        assert_eq!(fs::read(quarantined(&t, "logs/positions.json")).unwrap(), original);
        let healed: Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
        assert_eq!(
            healed,
            json!({"open_positions": [{"symbol": "EURUSD", "entry_price": 1.08735}, {}], "closed_positions": []})
        );
        assert!(t
            .read("logs/positions.json")
            .starts_with(r#"{"open_positions": [{"symbol": "EURUSD", "entry_price": 1.08735}"#));
    }

    #[test]
    fn the_heal_report_gives_bytes_dropped_pointer_and_keys() {
        let t = TestDir::with_manifest(POSITIONS);
        t.write("logs/positions.json", r#"{"open_positions": [], "closed_positions": [{"id": 7, "pnl": -12.5"#);
        let run = t.run(&["heal", "--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stdout);
        let action = &run.json()["actions"][0];
        let detail = action["detail"].as_str().unwrap();
        assert_eq!(action["outcome"], "done");
        assert!(detail.contains("dropped 14 bytes"), "{detail}");
        assert!(detail.contains("at /closed_positions/0/pnl"), "{detail}");
        assert!(detail.contains("kept 3 keys"), "{detail}");
        let healed: Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
        assert_eq!(healed, json!({"open_positions": [], "closed_positions": [{"id": 7}]}));
    }

    #[test]
    fn rollback_restores_the_corrupt_original() {
        let t = TestDir::with_manifest(POSITIONS);
        let original = b"{\"open_positions\": [1, 2], \"clo\0\0\0";
        t.write("logs/positions.json", original);
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_ne!(fs::read(t.join("logs/positions.json")).unwrap(), original);
        let run = t.run(&["rollback"]);
        assert_eq!(fs::read(t.join("logs/positions.json")).unwrap(), original, "{}", run.all_output());
    }

    #[test]
    fn a_bom_and_trailing_garbage_are_removed() {
        let t = TestDir::with_manifest(POSITIONS);
        t.write("logs/positions.json", b"\xEF\xBB\xBF{\"open_positions\": [], \"closed_positions\": []}\n}garbage");
        heal_then_quiet(&t, 0);
        assert_eq!(t.read("logs/positions.json"), "{\"open_positions\": [], \"closed_positions\": []}\n");
    }

    #[test]
    fn invalid_utf8_drops_only_the_member_it_spoils() {
        let t = TestDir::with_manifest(POSITIONS);
        t.write(
            "logs/positions.json",
            b"{\"closed_positions\": [1, 2], \"note\": \"caf\xE9\", \"open_positions\": []}",
        );
        heal_then_quiet(&t, 0);
        let healed: Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
        assert_eq!(healed, json!({"closed_positions": [1, 2], "open_positions": []}));
    }

    #[test]
    fn nul_bytes_only_become_the_default() {
        let t = TestDir::with_manifest(POSITIONS);
        t.write("logs/positions.json", [0u8; 512]);
        heal_then_quiet(&t, 0);
        let healed: Value = serde_json::from_str(&t.read("logs/positions.json")).unwrap();
        assert_eq!(healed, json!({"open_positions": [], "closed_positions": []}));
    }

    #[test]
    fn a_salvaged_top_level_of_another_type_is_left_alone() {
        let t = TestDir::with_manifest(POSITIONS);
        t.write("logs/positions.json", "[1, 2, 3");
        let before = t.snapshot();
        let run = t.run(&["heal"]);
        assert_eq!(run.code, 1, "{}", run.all_output());
        assert!(run.stdout.contains("another program"), "{}", run.stdout);
        assert_eq!(before, t.snapshot(), "nothing is written");
    }

    #[test]
    fn a_valid_file_nested_deeper_than_serde_json_allows_is_never_rewritten() {
        let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"deep.json\"\n");
        let depth = 5000;
        t.write("deep.json", format!("{{\"a\": {}{}}}", "[".repeat(depth), "]".repeat(depth)));
        let before = t.snapshot();
        assert_eq!(t.run(&["validate"]).code, 0);
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_eq!(before, t.snapshot());
    }

    #[test]
    fn a_deeply_nested_truncated_file_is_salvaged() {
        let t = TestDir::with_manifest("version = 1\n[[file]]\npath = \"deep.json\"\n");
        let depth = 200_000;
        t.write("deep.json", format!("{{\"a\": {}1, 2", "[".repeat(depth)));
        let run = t.run(&["heal"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        let healed = fs::read(t.join("deep.json")).unwrap();
        assert_eq!(healed.len(), "{\"a\": ".len() + depth + 1 + depth + 1 + 1);
    }
}

mod jsonl {
    use super::*;

    #[test]
    fn bad_lines_in_the_middle_and_a_torn_last_line_are_quarantined_with_their_numbers() {
        let t = TestDir::with_manifest(EVENTS);
        let original = "{\"seq\":1}\r\n{\"seq\":2,\r\n\r\n{\"seq\":3}\r\nnot json\r\n{\"seq\":4}\r\n{\"se";
        t.write("logs/events.jsonl", original);
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 2, "bad lines are a warning: {}", run.stdout);
        assert!(run.stdout.contains("3 of 7 lines do not parse (lines 2, 5, 7)"), "{}", run.stdout);
        assert!(run.stdout.contains("torn"), "{}", run.stdout);
        heal_then_quiet(&t, 0);
        assert_eq!(t.read("logs/events.jsonl"), "{\"seq\":1}\r\n\r\n{\"seq\":3}\r\n{\"seq\":4}\r\n");
        let bad = fs::read_to_string(quarantined(&t, "logs/events.jsonl.bad-lines")).unwrap();
        assert_eq!(bad, "2\t{\"seq\":2,\r\n5\tnot json\r\n7\t{\"se\n");
        assert_eq!(fs::read_to_string(quarantined(&t, "logs/events.jsonl")).unwrap(), original);
    }

    #[test]
    fn rollback_restores_the_original_jsonl_file() {
        let t = TestDir::with_manifest(EVENTS);
        let original = "{\"seq\":1}\n{oops\n{\"seq\":3}\n";
        t.write("logs/events.jsonl", original);
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_eq!(t.read("logs/events.jsonl"), "{\"seq\":1}\n{\"seq\":3}\n");
        let run = t.run(&["rollback"]);
        assert_eq!(t.read("logs/events.jsonl"), original, "{}", run.all_output());
    }

    #[test]
    fn a_valid_file_without_a_final_newline_is_left_alone() {
        let t = TestDir::with_manifest(EVENTS);
        t.write("logs/events.jsonl", "{\"seq\":1}\n{\"seq\":2}");
        let before = t.snapshot();
        assert_eq!(t.run(&["heal"]).code, 0);
        assert_eq!(before, t.snapshot());
    }

    #[test]
    fn a_missing_file_is_created_empty() {
        let t = TestDir::with_manifest(EVENTS);
        assert_eq!(t.run(&["validate"]).code, 1);
        heal_then_quiet(&t, 0);
        assert_eq!(t.read("logs/events.jsonl"), "");
    }

    /// Peak resident memory of every child this test process has waited for.
    fn children_max_rss_bytes() -> u64 {
        // SAFETY: getrusage only fills the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        usage.ru_maxrss as u64 * 1024
    }

    /// Set in the fresh copy of this test binary that runs the heal of
    /// `a_100_mb_file_is_repaired_in_flat_memory`: the root to heal.
    const FRESH_PROCESS_ROOT: &str = "PREFLIGHT_TEST_FRESH_PROCESS_ROOT";
    const FRESH_PROCESS_LINE: &str = "fresh-process heal: ";

    /// `preflight heal` in `t`, started from a fresh copy of this test
    /// binary that runs nothing else, and that child's peak resident
    /// memory. Not from this process: the kernel counts a spawned child's
    /// peak from its parent's own peak at the spawn (the child shares the
    /// parent's memory until exec), and getrusage reports every child's;
    /// this process runs every other test, their children and their data.
    fn heal_in_fresh_process(t: &TestDir) -> (Run, u64) {
        let test = module_path!().split_once("::").expect("crate::module").1;
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("{test}::a_100_mb_file_is_repaired_in_flat_memory")])
            .args(["--nocapture", "--test-threads", "1"])
            .env(FRESH_PROCESS_ROOT, t.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "the fresh process failed:\n{stdout}{stderr}");
        // After libtest's "test NAME ... " on the same line.
        let line = stdout.lines().find_map(|l| l.split_once(FRESH_PROCESS_LINE).map(|(_, report)| report));
        let doc: Value = serde_json::from_str(line.unwrap_or_else(|| panic!("no report in:\n{stdout}"))).unwrap();
        let text = |key: &str| doc[key].as_str().unwrap().to_string();
        let run = Run { code: doc["code"].as_i64().unwrap() as i32, stdout: text("stdout"), stderr: text("stderr") };
        (run, doc["max_rss"].as_u64().unwrap())
    }

    /// The fresh process's part: heal `root` (every run is checked for a
    /// leaked secret, here too) and print the run with the peak memory.
    fn heal_and_report(root: &Path) {
        let manifest = root.join("preflight.toml");
        let run = support::run_preflight(&["heal", "-m", manifest.to_str().unwrap()], root);
        let report = json!({"code": run.code, "stdout": run.stdout, "stderr": run.stderr,
                            "max_rss": children_max_rss_bytes()});
        println!("{FRESH_PROCESS_LINE}{report}");
    }

    #[test]
    fn a_100_mb_file_is_repaired_in_flat_memory() {
        if let Some(root) = std::env::var_os(FRESH_PROCESS_ROOT) {
            return heal_and_report(Path::new(&root));
        }
        let t = TestDir::with_manifest(EVENTS);
        let line = br#"{"ts":"2026-11-23T15:42:00.123Z","seq":1000001,"symbol":"EURUSD","side":"buy","qty":100000,"price":1.08735}"#;
        // Written as a stream: a 100 MB buffer in the process that starts
        // heal would count in heal's peak RSS (see heal_in_fresh_process).
        t.write("logs/events.jsonl", "");
        let mut file = std::io::BufWriter::new(fs::File::create(t.join("logs/events.jsonl")).unwrap());
        let (mut lines, mut size) = (0u64, 0usize);
        while size < 100 << 20 {
            lines += 1;
            let text: &[u8] = if lines == 1000 || lines == 400_000 { b"{\"seq\": 12, \"oops" } else { line };
            file.write_all(text).unwrap();
            file.write_all(b"\n").unwrap();
            size += text.len() + 1;
        }
        file.write_all(b"{\"ts\":\"2026-11-2").unwrap();
        drop(file);
        let (run, rss) = heal_in_fresh_process(&t);
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert!(run.stdout.contains("moved 3 bad (lines 1000, 400000,"), "{}", run.stdout);
        let kept = fs::metadata(t.join("logs/events.jsonl")).unwrap().len();
        assert_eq!(kept, (lines - 2) * (line.len() as u64 + 1));
        assert!(rss < 64 << 20, "peak RSS {} MiB for a 100 MB file", rss >> 20);
    }
}

mod schema {
    use super::*;

    const SCHEMA: &str = r#"{"type": "object", "properties": {"open_positions": {"type": "array",
        "items": {"type": "object", "required": ["symbol"],
                  "properties": {"entry_price": {"type": "number", "exclusiveMinimum": 0}}}}}}"#;

    #[test]
    fn violations_are_critical_named_by_pointer_and_rule_and_never_fixed() {
        let t = TestDir::with_manifest(&format!("{POSITIONS}schema = \"schemas/positions.schema.json\"\n"));
        t.write("schemas/positions.schema.json", SCHEMA);
        let positions: Vec<Value> = (0..9).map(|i| json!({"symbol": "EURUSD", "entry_price": -i})).collect();
        let doc = serde_json::to_string_pretty(&json!({"open_positions": positions, "closed_positions": []})).unwrap();
        t.write("logs/positions.json", &doc);
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("file:logs/positions.json:schema"), "{}", run.stdout);
        assert!(run.stdout.contains("/open_positions/0/entry_price: 0 "), "{}", run.stdout);
        assert!(run.stdout.contains("(exclusiveMinimum)"), "{}", run.stdout);
        assert!(run.stdout.contains("9 violations") && run.stdout.contains("and 4 more"), "{}", run.stdout);
        let before = t.snapshot();
        assert_eq!(t.run(&["heal"]).code, 1);
        assert_eq!(before, t.snapshot(), "the file is untouched");
    }

    #[test]
    fn each_jsonl_line_is_checked_against_the_schema() {
        let t = TestDir::with_manifest(&format!("{EVENTS}schema = \"event.schema.json\"\n"));
        t.write("event.schema.json", r#"{"type": "object", "required": ["seq"]}"#);
        t.write("logs/events.jsonl", "{\"seq\":1}\n{\"seq\":2}\n{\"id\":3}\n");
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("line 3: /: \"seq\" is a required property (required)"), "{}", run.stdout);
        let before = t.snapshot();
        assert_eq!(t.run(&["heal"]).code, 1);
        assert_eq!(before, t.snapshot());
    }

    #[test]
    fn a_schema_that_does_not_load_stops_the_run() {
        let t = TestDir::with_manifest(&format!("{POSITIONS}schema = \"missing.schema.json\"\n"));
        t.write("logs/positions.json", r#"{"open_positions": [], "closed_positions": []}"#);
        let run = t.run(&["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.all_output().contains("missing.schema.json"), "{}", run.all_output());
    }
}
