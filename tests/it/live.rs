//! Heal with the application running: a file replaced between the check
//! and the write is left as the application wrote it, and no line a live
//! process appends to a JSONL file during a repair (or under `watch`) is
//! lost, whether the writer reopens the file per line or keeps its
//! descriptor open.
//!
//! The appenders are real processes: this test binary run again with
//! `LIVE_APPENDER` set (see `appender_process`). `PREFLIGHT_LIVE_ROUNDS`
//! sets the rounds of the race tests (default 6 per kind of writer).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::{self, eventually, ChildGuard, TestDir, Watch};

// ---------------------------------------------------------------- §4

/// The application: each call checks that the counter is the one it wrote
/// last (else someone reverted its update), then replaces the file with
/// the next value, as an application saving its state does.
const APP: &str = r#"i=$(( $(cat calls 2>/dev/null || echo 0) + 1 ))
echo $i > calls
c=$(grep -o '[0-9][0-9]*' x.json | head -n 1)
[ "$c" = "$((i - 1))" ] || echo "call $i: expected $((i - 1)), found $c" >> reverted
printf '{"counter": %s}' $i > x.json.new && mv x.json.new x.json
"#;

#[test]
fn a_file_replaced_after_the_check_is_left_as_the_application_wrote_it() {
    // The command check runs after the file check: the application's
    // replacement lands after heal read x.json and before it writes.
    let t = TestDir::with_manifest(
        "version = 1\n[[file]]\npath = \"x.json\"\ndefault = { counter = 0, history = [] }\n\
         [[command]]\nname = \"app\"\nrun = \"sh app.sh\"\n",
    );
    t.write("app.sh", APP).write("x.json", "{\"counter\": 0}");
    let heal = t.run(&["heal", "--format", "json"]);
    assert!(!t.exists("reverted"), "heal reverted the application's update: {}", t.read("reverted"));
    let doc = heal.json();
    let action = doc["actions"].as_array().unwrap().iter().find(|a| a["id"] == "file:x.json").expect("an action");
    assert_eq!(action["outcome"], "skipped", "{action}");
    assert!(action["detail"].as_str().unwrap().contains("changed since check"), "{action}");
    let history = t.read(".preflight/history.jsonl");
    assert!(history.contains("\"outcome\":\"skipped\"") && history.contains("changed since check"), "{history}");
    let human = t.run(&["heal"]);
    assert!(human.stdout.contains("skipped") && human.stdout.contains("changed since check"), "{}", human.stdout);
    assert!(!t.exists("reverted"), "{}", t.read("reverted"));
    // The next validate sees what the application wrote, not the check-time content.
    let validate = t.run(&["validate"]);
    assert!(validate.stdout.contains("missing key history"), "{}", validate.stdout);
    let now: serde_json::Value = serde_json::from_str(&t.read("x.json")).unwrap();
    assert_eq!(now.as_object().unwrap().len(), 1, "only the application's own key: {now}");
}

#[test]
fn an_unchanged_file_is_still_healed() {
    let t =
        TestDir::with_manifest("version = 1\n[[file]]\npath = \"x.json\"\ndefault = { counter = 0, history = [] }\n");
    t.write("x.json", "{\"counter\": 7}");
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    let now: serde_json::Value = serde_json::from_str(&t.read("x.json")).unwrap();
    assert_eq!(now, serde_json::json!({"counter": 7, "history": []}));
}

// ---------------------------------------------------------------- §5

const EVENTS: &str = "version = 1\n[[file]]\npath = \"events.jsonl\"\nformat = \"jsonl\"\n";
const VALID_LINES: usize = 200_000;
const BAD_EVERY: usize = 10_007;

/// A log of valid lines with a torn line every `BAD_EVERY`.
fn events_root() -> (TestDir, Vec<String>) {
    let t = TestDir::with_manifest(EVENTS);
    let mut text = String::with_capacity(VALID_LINES * 40);
    let mut bad = Vec::new();
    for i in 0..VALID_LINES {
        if i % BAD_EVERY == 3 {
            let line = format!("{{\"torn\": {i}");
            text.push_str(&line);
            text.push('\n');
            bad.push(line);
        }
        text.push_str(&format!("{{\"seq\":{i},\"pad\":\"abcdefghijklmnop\"}}\n"));
    }
    t.write("events.jsonl", text);
    (t, bad)
}

/// How a writer appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Opens the file with O_APPEND for each line, then closes it.
    Reopen,
    /// Opens it once and keeps the descriptor for every line.
    Held,
}

/// Starts a writer process appending `lines` lines, `pause` apart. With
/// `hold`, the `Held` writer keeps its descriptor open after half the
/// lines until that file exists.
fn start_writer(file: &Path, kind: Writer, lines: usize, pause: Duration, hold: Option<&Path>) -> ChildGuard {
    let spec = format!("{kind:?}|{}|{lines}|{}", file.display(), pause.as_micros());
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["live::appender_process", "--exact", "--nocapture", "--test-threads", "1"])
        .env("LIVE_APPENDER", spec);
    if let Some(hold) = hold {
        command.env("LIVE_HOLD", hold);
    }
    ChildGuard::spawn(command.stdout(Stdio::null()).stderr(Stdio::null()))
}

/// Not a test of its own: the body of the writer processes above.
#[test]
fn appender_process() {
    let Ok(spec) = std::env::var("LIVE_APPENDER") else { return };
    let parts: Vec<&str> = spec.split('|').collect();
    let (kind, file, lines, pause) =
        (parts[0], PathBuf::from(parts[1]), parts[2].parse::<usize>().unwrap(), parts[3].parse::<u64>().unwrap());
    let hold = std::env::var_os("LIVE_HOLD").map(PathBuf::from);
    let open = || fs::OpenOptions::new().append(true).open(&file).unwrap();
    let mut held = (kind == "Held").then(open);
    for k in 0..lines {
        let line = format!("{{\"writer\":{k}}}\n");
        match held.as_mut() {
            Some(f) => f.write_all(line.as_bytes()).unwrap(),
            None => open().write_all(line.as_bytes()).unwrap(),
        }
        if k == lines / 2 {
            // Bounded: a failed test must not leave this process behind.
            let deadline = Instant::now() + Duration::from_secs(60);
            while hold.as_ref().is_some_and(|h| !h.exists()) && Instant::now() < deadline {
                sleep(Duration::from_millis(5));
            }
        }
        sleep(Duration::from_micros(pause));
    }
}

/// Lines of the file that occur other than exactly once, and good lines
/// missing; empty when every original and appended line is there once.
fn line_errors(text: &str, appended: usize) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        *count.entry(line).or_default() += 1;
    }
    let mut errors = Vec::new();
    let expected = (0..VALID_LINES)
        .map(|i| format!("{{\"seq\":{i},\"pad\":\"abcdefghijklmnop\"}}"))
        .chain((0..appended).map(|k| format!("{{\"writer\":{k}}}")));
    let mut lost = 0;
    for line in expected {
        match count.remove(line.as_str()) {
            Some(1) => {}
            Some(n) => errors.push(format!("{line} present {n} times")),
            None => lost += 1,
        }
    }
    if lost > 0 {
        errors.push(format!("{lost} lines lost"));
    }
    let extra: Vec<&&str> = count.keys().filter(|l| !l.starts_with("{\"torn\"")).take(3).collect();
    if !extra.is_empty() {
        errors.push(format!("unexpected lines, first {extra:?}"));
    }
    errors
}

/// Every bad line of the original is in some quarantine file of bad lines.
fn assert_bad_lines_quarantined(t: &TestDir, bad: &[String], what: &str) {
    let kept: String = support::snapshot(&t.join(".preflight/quarantine"), false)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".bad-lines"))
        .filter_map(|(_, (_, bytes))| bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect();
    for line in bad {
        assert!(kept.contains(line.as_str()), "{what}: bad line {line} not in the quarantine");
    }
    assert!(!t.read("events.jsonl").contains("{\"torn\""), "{what}: bad lines left in the file");
}

fn rounds() -> usize {
    std::env::var("PREFLIGHT_LIVE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6)
}

/// xorshift: reproducible start offsets without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Heals while `kind` appends 1,500 lines spread over the heal, many
/// times; then, with the writer gone, heals until converged. Every line
/// must be there exactly once, and the bad lines in the quarantine.
fn appended_lines_survive(kind: Writer) {
    const APPENDED: usize = 1_500;
    let start = Instant::now();
    let (probe, _) = events_root();
    assert_eq!(probe.run(&["heal"]).code, 0);
    let heal_time = start.elapsed();
    let pause = heal_time / APPENDED as u32;
    let mut failures = Vec::new();
    let mut state = 0x2545_F491_4F6C_DD1D;
    let total = rounds();
    for round in 0..total {
        let (t, bad) = events_root();
        let mut writer = start_writer(&t.join("events.jsonl"), kind, APPENDED, pause, None);
        sleep(Duration::from_micros(next(&mut state) % (heal_time.as_micros() as u64 / 3 + 1)));
        let heal = t.run(&["heal"]);
        assert!(matches!(heal.code, 0 | 2), "round {round}: {}", heal.all_output());
        assert!(writer.wait().unwrap().success());
        let text = fs::read_to_string(t.join("events.jsonl")).unwrap();
        let errors = line_errors(&text, APPENDED);
        if !errors.is_empty() {
            failures.push(format!("round {round}: {}", errors.join("; ")));
            continue;
        }
        let again = t.run(&["heal"]);
        assert_eq!(again.code, 0, "round {round}: {}", again.all_output());
        assert!(line_errors(&t.read("events.jsonl"), APPENDED).is_empty(), "round {round}: after the second heal");
        assert_bad_lines_quarantined(&t, &bad, &format!("round {round}"));
    }
    assert!(
        failures.is_empty(),
        "{kind:?} writer: lines lost in {} of {total} rounds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_writer_reopening_per_line_loses_no_line_to_a_repair() {
    appended_lines_survive(Writer::Reopen);
}

#[test]
fn a_writer_keeping_its_descriptor_loses_no_line_to_a_repair() {
    appended_lines_survive(Writer::Held);
}

#[test]
fn a_file_held_open_for_writing_is_not_replaced_and_the_writer_is_named() {
    let (t, bad) = events_root();
    let hold = t.join("hold.flag");
    let file = t.join("events.jsonl");
    let mut writer = start_writer(&file, Writer::Held, 200, Duration::from_micros(100), Some(&hold));
    // The first half written, the writer holds its descriptor open.
    eventually("the writer wrote half its lines", || fs::read_to_string(&file).unwrap().contains("{\"writer\":100}"));
    let heal = t.run(&["heal", "--format", "json"]);
    let doc = heal.json();
    let action = &doc["actions"][0];
    assert_eq!(action["outcome"], "skipped", "{action}");
    let detail = action["detail"].as_str().unwrap();
    let pid = writer.id();
    assert!(
        detail.contains(&format!("held open for writing by PID {pid}")) && detail.contains("retry later"),
        "{detail}"
    );
    let human = t.run(&["heal"]);
    assert!(human.stdout.contains(&format!("PID {pid}")), "{}", human.stdout);
    fs::write(&hold, b"").unwrap();
    assert!(writer.wait().unwrap().success());
    fs::remove_file(&hold).unwrap();
    let errors = line_errors(&t.read("events.jsonl"), 200);
    assert!(errors.is_empty(), "{errors:?}");
    // With the writer gone, the repair goes ahead.
    assert_eq!(t.run(&["heal"]).code, 0);
    assert!(line_errors(&t.read("events.jsonl"), 200).is_empty());
    assert_bad_lines_quarantined(&t, &bad, "after the writer left");
}

#[test]
fn watch_with_the_application_appending_loses_no_line() {
    const APPENDED: usize = 3_000;
    let (t, bad) = events_root();
    let watch = Watch::start(&t, &["--interval", "50ms", "-q"]);
    let mut writer = start_writer(&t.join("events.jsonl"), Writer::Reopen, APPENDED, Duration::from_micros(500), None);
    assert!(writer.wait().unwrap().success());
    let run = watch.stop();
    let errors = line_errors(&t.read("events.jsonl"), APPENDED);
    assert!(errors.is_empty(), "{errors:?}\n{}", run.all_output());
    assert_eq!(t.run(&["heal"]).code, 0);
    assert_bad_lines_quarantined(&t, &bad, "watch");
}
