//! Races against a live attacker: a helper process swaps a declared folder
//! with a symlink to a folder outside the root (RENAME_EXCHANGE, in a loop)
//! while `preflight heal` works on thousands of files in it. Whatever the
//! timing, nothing outside the root may change. `PREFLIGHT_RACE_ROUNDS`
//! and `PREFLIGHT_RACE_MS` set the number and length of rounds
//! (`scripts/race.sh` runs many).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filetime::FileTime;
use tempfile::TempDir;

use crate::support::ChildGuard;

const FILES: usize = 3000;
const SWAP_A: &str = "PREFLIGHT_TEST_SWAP_A";
const SWAP_B: &str = "PREFLIGHT_TEST_SWAP_B";

fn rounds() -> usize {
    std::env::var("PREFLIGHT_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

/// How long the swaps run in one round, in milliseconds
/// (`PREFLIGHT_RACE_MS`).
fn budget() -> Duration {
    Duration::from_millis(std::env::var("PREFLIGHT_RACE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500))
}

/// Not a test of its own: the body of the helper process. It runs only
/// when the two paths are in its environment (see `start_swapper`).
#[test]
fn swap_helper() {
    let (Some(a), Some(b)) = (std::env::var_os(SWAP_A), std::env::var_os(SWAP_B)) else { return };
    let a = CString::new(a.as_bytes()).unwrap();
    let b = CString::new(b.as_bytes()).unwrap();
    loop {
        // SAFETY: both are valid NUL-terminated paths for the call's duration.
        unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    }
}

/// The helper process, killed (and reaped) when the guard is dropped,
/// even when the test fails half-way.
fn start_swapper(a: &Path, b: &Path) -> ChildGuard {
    // The helper is this same test binary, told to run `swap_helper` only.
    let name = module_path!().split_once("::").map_or("swap_helper".into(), |(_, m)| format!("{m}::swap_helper"));
    ChildGuard::spawn(
        Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(SWAP_A, a)
            .env(SWAP_B, b)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Every entry under `dir`: its kind, mode, size, mtime and bytes.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let bytes = if meta.is_file() { fs::read(entry.path()).unwrap() } else { Vec::new() };
        let modified = meta.modified().ok();
        let line = format!("{:?} {:o} {} {:?} {:?}", meta.file_type(), meta_mode(&meta), meta.len(), modified, bytes);
        out.insert(entry.path().strip_prefix(dir).unwrap().to_path_buf(), line);
    }
    out
}

fn meta_mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::MetadataExt;
    meta.mode()
}

/// What changed between two fingerprints, for the failure message.
fn differences(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {}", path.display())),
            Some(now) if now != was => out.push(format!("changed {}", path.display())),
            _ => {}
        }
    }
    out.extend(after.keys().filter(|p| !before.contains_key(*p)).map(|p| format!("created {}", p.display())));
    out
}

/// A fresh folder, on tmpfs where the machine has one: each round creates
/// thousands of files, which a slow disk turns into most of the test's time.
fn scratch() -> TempDir {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    tempfile::Builder::new().prefix("preflight-race-").tempdir_in(base).unwrap()
}

/// What one round did: the changes outside the root, and how many entries
/// the declared folder holds at the end (proof that heal got to work).
struct Round {
    outside: Vec<String>,
    inside: usize,
}

/// A root whose `folder` is swapped with `link` (a symlink to `outside`)
/// while `preflight heal` runs.
fn one_round(manifest: &str, folder: &str, fill: impl Fn(&Path, &Path)) -> Round {
    let (outside, root) = (scratch(), scratch());
    let t = root.path();
    fs::write(t.join("preflight.toml"), manifest).unwrap();
    fs::create_dir(t.join(folder)).unwrap();
    fill(&t.join(folder), outside.path());
    std::os::unix::fs::symlink(outside.path(), t.join("link")).unwrap();
    let before = fingerprint(outside.path());
    let manifest_path = t.join("preflight.toml");
    let mut heal = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_preflight"))
            .args(["heal", "-q", "-m", manifest_path.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // The swaps start once heal holds its lock: the manifest has loaded and
    // the first look is done, so heal is about to act.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !t.join(".preflight/lock").exists() && heal.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    let swapper = start_swapper(&t.join(folder), &t.join("link"));
    // Heal is killed when the time is up: it fsyncs every file it writes,
    // so thousands of them take longer than a test should. A killed heal is
    // a case it must survive anyway.
    let deadline = Instant::now() + budget();
    while heal.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(heal);
    drop(swapper);
    // The swaps stopped at either position: the real folder is whichever
    // of the two names is not the symlink.
    let real = [t.join(folder), t.join("link")].into_iter().find(|p| p.symlink_metadata().unwrap().is_dir()).unwrap();
    let inside = fs::read_dir(real).unwrap().count();
    Round { outside: differences(&before, &fingerprint(outside.path())), inside }
}

fn json_manifest() -> String {
    let mut manifest = String::from("version = 1\n");
    for i in 0..FILES {
        manifest.push_str(&format!("[[file]]\npath = \"data/f{i:04}.json\"\ndefault = {{ a = 1 }}\n"));
    }
    manifest
}

/// Runs the rounds; `worked` says from the declared folder's final count
/// whether heal acted in it, so a round that never reached the race does
/// not pass for a safe one.
fn race(name: &str, manifest: &str, folder: &str, fill: impl Fn(&Path, &Path), worked: impl Fn(usize) -> bool) {
    let rounds = rounds();
    let mut failed = Vec::new();
    let mut acted = 0;
    let mut round = 0;
    // Rounds go on past the count until heal acted in one (at most 20
    // more): a round where the swap won before heal acted proves nothing.
    while round < rounds || (acted == 0 && round < rounds + 20) {
        round += 1;
        let Round { outside, inside } = one_round(manifest, folder, &fill);
        acted += usize::from(worked(inside));
        if !outside.is_empty() {
            let first: Vec<&String> = outside.iter().take(3).collect();
            failed.push(format!("round {round}: {} changed outside, e.g. {first:?}", outside.len()));
        }
    }
    eprintln!(
        "{name}: {} of {round} rounds changed something outside the root; heal acted inside in {acted}",
        failed.len()
    );
    assert!(failed.is_empty(), "{name}: {}", failed.join("\n"));
    assert!(acted > 0, "{name}: heal never acted inside the root during the swaps");
}

#[test]
fn a_folder_swapped_for_a_symlink_during_heal_never_lets_a_write_out() {
    race(
        "heal writes",
        &json_manifest(),
        "data",
        |inside, outside| {
            for i in 0..FILES {
                fs::write(outside.join(format!("f{i:04}.json")), format!("{{\"outside\": {i}}}")).unwrap();
                // Every other file exists without the default's key: its
                // fix quarantines the original, then replaces it.
                if i % 2 == 1 {
                    fs::write(inside.join(format!("f{i:04}.json")), "{\"b\": 1}").unwrap();
                }
            }
        },
        |entries| entries > FILES / 2,
    );
}

#[test]
fn a_folder_swapped_for_a_symlink_during_prune_never_lets_a_removal_out() {
    let manifest = "version = 1\n[[prune]]\nglob = \"logs/*.log\"\nolder_than = \"1d\"\n";
    let old = FileTime::from_unix_time(1_000_000_000, 0);
    race(
        "prune",
        manifest,
        "logs",
        |inside, outside| {
            for dir in [inside, outside] {
                for i in 0..FILES {
                    let path = dir.join(format!("{i:04}.log"));
                    fs::write(&path, "old log line\n").unwrap();
                    filetime::set_file_mtime(&path, old).unwrap();
                }
            }
        },
        |left| left < FILES,
    );
}
