//! Rollback of a heal that did not finish: killed with SIGKILL at a random
//! moment, killed while a command fix ran, or stopped by a full disk. Each
//! action's undo record is in the history before the action acts, so
//! rollback puts every byte back, or exits 1 naming what it cannot.
//!
//! `PREFLIGHT_ROLLBACK_KILLS` sets the number of random kills (default 12).

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::{self, eventually, ChildGuard, Snapshot, TestDir};

const MANIFEST: &str = r#"version = 1
[env]
template = ".env.example"
[[dir]]
path = "data/archive"
mode = "0750"
[[file]]
path = "data/big.json"
default = { open_positions = [], closed_positions = [] }
[[file]]
path = "data/cut.json"
default = { open_positions = [], closed_positions = [] }
[[file]]
path = "logs/state.json"
default = { a = 1 }
[[file]]
path = "logs/events.jsonl"
format = "jsonl"
[[file]]
path = "logs/ro.json"
default = { a = 1 }
"#;

const ROWS: usize = 40_000;

/// A root whose heal takes long enough to be cut anywhere: an `.env` to
/// create, a folder, a large object missing a key, a truncated document,
/// a missing file, an event log with torn lines, a read-only file.
fn seeded_root(manifest: &str) -> TestDir {
    let t = TestDir::with_manifest(manifest);
    t.write(".env.example", "A=1\nB=2\n");
    let rows: Vec<String> = (0..ROWS).map(|i| format!("{{\"symbol\":\"S{i}\",\"qty\":{i}.5}}")).collect();
    t.write("data/big.json", format!("{{\"open_positions\": [{}]}}\n", rows.join(",")));
    t.write("data/cut.json", format!("{{\"open_positions\": [{}", rows[..ROWS / 2].join(",")));
    let events: String = (0..4 * ROWS)
        .map(|i| if i % 997 == 5 { format!("{{\"torn\": {i}\n") } else { format!("{{\"event\": {i}}}\n") })
        .collect();
    t.write("logs/events.jsonl", events);
    t.write("logs/ro.json", "{\"a\": 2}").chmod("logs/ro.json", 0o444);
    t
}

/// xorshift: reproducible delays without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn spawn_heal(t: &TestDir) -> ChildGuard {
    let manifest = t.join("preflight.toml");
    ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_preflight"))
            .args(["heal", "-q", "-m", manifest.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Rolls back after a kill: every byte and mode back as before the heal,
/// or (when no action had started) nothing recorded and nothing changed.
fn assert_rolled_back(t: &TestDir, original: &Snapshot, what: &str) {
    let changed = t.app_snapshot() != *original;
    let undo = t.run(&["rollback"]);
    if !t.exists(".preflight/history.jsonl") {
        assert!(!changed, "{what}: the disk changed and nothing was recorded");
        return;
    }
    assert_eq!(undo.code, 0, "{what}: rollback failed:\n{}", undo.all_output());
    let now = t.app_snapshot();
    if now != *original {
        let differ: Vec<String> = original
            .keys()
            .chain(now.keys())
            .filter(|p| original.get(*p) != now.get(*p))
            .map(|p| p.display().to_string())
            .collect();
        panic!("{what}: rollback exited 0 but these differ from before the heal: {differ:?}\n{}", undo.stdout);
    }
}

#[test]
fn rollback_after_a_kill_at_any_moment_restores_every_byte() {
    let kills: u64 = std::env::var("PREFLIGHT_ROLLBACK_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let probe = seeded_root(MANIFEST);
    let start = Instant::now();
    assert!(matches!(probe.run(&["heal"]).code, 0 | 2));
    let window = start.elapsed().as_micros() as u64 + 1;
    let mut state = 0x9E37_79B9_7F4A_7C15;
    for seed in 0..kills {
        let t = seeded_root(MANIFEST);
        let original = t.app_snapshot();
        let mut child = spawn_heal(&t);
        sleep(Duration::from_micros(next(&mut state) % window));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_rolled_back(&t, &original, &format!("seed {seed}"));
    }
}

/// The same root with a command whose fix blocks until `stop` exists:
/// heal is killed while it runs, after every file action finished.
fn with_blocking_fix(stop: &Path) -> String {
    format!(
        "{MANIFEST}[[command]]\nname = \"tool\"\nrun = \"false\"\nfix = \"while [ ! -e '{}' ]; do sleep 0.05; done\"\ntimeout = \"60s\"\n",
        stop.display()
    )
}

/// Kills heal once it is running the command fix (the last phase): once
/// a process runs the fix's line.
fn kill_in_the_command_fix(t: &TestDir, stop: &Path) {
    let mut child = spawn_heal(t);
    eventually("heal runs its command fix", || running(&stop.display().to_string()));
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether some process has `needle` in its command line.
fn running(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains(needle)
    })
}

#[test]
fn rollback_of_a_heal_killed_in_its_last_action_restores_what_it_changed() {
    let outside = TestDir::new();
    let stop = outside.join("stop");
    let t = seeded_root(&with_blocking_fix(&stop));
    let original = t.app_snapshot();
    kill_in_the_command_fix(&t, &stop);
    std::fs::write(&stop, b"").unwrap();
    assert_ne!(t.app_snapshot(), original, "the heal changed files before it was killed");
    let undo = t.run(&["rollback"]);
    assert!(!undo.stdout.contains("nothing recorded to undo"), "{}", undo.stdout);
    assert_eq!(undo.code, 0, "{}", undo.all_output());
    assert_eq!(t.app_snapshot(), original, "every byte and mode back:\n{}", undo.stdout);
}

#[test]
fn rollback_of_an_interrupted_heal_names_what_changed_after_it_and_exits_1() {
    let outside = TestDir::new();
    let stop = outside.join("stop");
    let t = seeded_root(&with_blocking_fix(&stop));
    kill_in_the_command_fix(&t, &stop);
    std::fs::write(&stop, b"").unwrap();
    // The application writes to a file the heal replaced.
    let mut state = t.read("logs/state.json");
    state.push(' ');
    t.write("logs/state.json", &state);
    let before = t.app_snapshot();
    let undo = t.run(&["rollback"]);
    assert_eq!(undo.code, 1, "{}", undo.all_output());
    assert!(undo.stdout.contains("logs/state.json: changed after the run"), "{}", undo.stdout);
    assert_eq!(t.app_snapshot(), before, "a refused rollback changes nothing");
}

#[test]
fn a_copy_cut_short_by_a_full_disk_is_never_listed_as_saved() {
    let t = TestDir::with_manifest(
        "version = 1\n[[file]]\npath = \"state.json\"\ndefault = { open_positions = [], closed_positions = [] }\n",
    );
    // Damaged (a salvage), and larger than the file-size limit below.
    let original = format!("{{\"open_positions\": [{}", vec!["1"; 4000].join(","));
    t.write("state.json", &original);
    let manifest = t.join("preflight.toml");
    let output = Command::new("prlimit")
        .args(["--fsize=4096", env!("CARGO_BIN_EXE_preflight"), "heal", "-m", manifest.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(t.read("state.json"), original, "the original is untouched");
    let history = std::fs::read_to_string(t.join(".preflight/history.jsonl")).unwrap_or_default();
    for line in history.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let listed = entry["saved"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(entry["replaced"].as_array().into_iter().flatten().map(|r| &r["saved"]));
        for saved in listed {
            let copy = std::fs::read(t.join(saved.as_str().unwrap())).unwrap_or_default();
            assert!(
                copy == original.as_bytes(),
                "{saved} is listed as saved but holds {} of the original's {} bytes",
                copy.len(),
                original.len()
            );
        }
    }
    for (path, (_, bytes)) in support::snapshot(&t.join(".preflight/quarantine"), false) {
        if let Some(bytes) = bytes {
            assert!(bytes == original.as_bytes(), "a copy of {} bytes was left: {}", bytes.len(), path.display());
        }
    }
    let undo = t.run(&["rollback"]);
    assert!(undo.code == 1 || undo.stdout.contains("nothing"), "{}", undo.all_output());
    assert_eq!(t.read("state.json"), original);
}
