//! `create = false`: what the deployment provides is never created, and
//! `run` waits for it (and for expected mounts) before it heals anything.

use std::time::{Duration, Instant};

use super::{can_mount, in_mount_namespace, with_app};
use crate::support::{Background, TestDir};

const SCHEMA: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);\n";

/// A data volume the deployment mounts, with a database and a file in it
/// that heal may create once the volume is there.
fn volume_manifest(volume: bool) -> String {
    format!(
        "version = 1\n[[dir]]\npath = \"data\"\ncreate = false\nvolume = {volume}\n\
         [[database]]\npath = \"data/app.db\"\nschema = \"schema.sql\"\n\
         [[file]]\npath = \"data/state.json\"\ndefault = {{ items = [] }}\n"
    )
}

#[test]
fn a_missing_create_false_dir_is_critical_and_never_created() {
    let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"data\"\ncreate = false\n");
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("create = false"), "{}", run.stdout);
    let heal = t.run(&["heal", "--format", "json"]);
    assert_eq!(heal.code, 1, "{}", heal.stdout);
    assert_eq!(heal.json()["findings"][0]["fixable"], false);
    assert!(!t.exists("data") && !t.exists(".preflight"), "nothing created, not even the lock");
}

#[test]
fn create_false_files_and_databases_are_never_created() {
    let t = TestDir::with_manifest(
        "version = 1\n[[file]]\npath = \"state.json\"\ncreate = false\n\
         [[file]]\npath = \"events.jsonl\"\nformat = \"jsonl\"\ncreate = false\n\
         [[database]]\npath = \"app.db\"\nschema = \"schema.sql\"\ncreate = false\n",
    );
    t.write("schema.sql", SCHEMA);
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 1, "{}", heal.stdout);
    for path in ["state.json", "events.jsonl", "app.db"] {
        assert!(!t.exists(path), "{path} was created");
    }
    assert_eq!(heal.stdout.matches("create = false").count(), 3, "{}", heal.stdout);
}

#[test]
fn nothing_is_created_beneath_a_missing_volume_dir() {
    let t = TestDir::with_manifest(&volume_manifest(false));
    t.write("schema.sql", SCHEMA);
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 1, "{}", heal.stdout);
    assert!(!t.exists("data"), "heal created the volume's folder:\n{}", heal.stdout);
    assert!(heal.stdout.contains("not repaired while data is missing"), "{}", heal.stdout);
    t.mkdir("data");
    assert_eq!(t.run(&["heal"]).code, 0, "once the volume is there, heal fills it");
    assert!(t.exists("data/app.db") && t.exists("data/state.json"));
}

#[test]
fn run_without_the_volume_heals_nothing_and_says_what_it_waits_for() {
    let t = with_app(&volume_manifest(false));
    t.write("schema.sql", SCHEMA);
    let run = t.run(&["run", "--", "./bin/app"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(!run.stdout.contains("app started"));
    assert!(run.stderr.contains("waiting for what the deployment provides: data is missing"), "{}", run.stderr);
    assert!(!t.exists("data") && !t.exists(".preflight"));
}

#[test]
fn run_waits_for_a_create_false_path_before_healing_anything() {
    let t = with_app(&volume_manifest(false));
    t.write("schema.sql", SCHEMA);
    t.write("bin/app", "#!/bin/sh\necho \"app started\"; ls data\n");
    let manifest = t.join("preflight.toml");
    let args =
        ["run", "--retry-timeout", "20s", "--sleep", "100ms", "-m", manifest.to_str().unwrap(), "--", "./bin/app"];
    let mut run = Background::start(&args, t.path());
    run.wait_for_stderr("the first attempt waits", |e| e.contains("attempt 1:"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.exists("data") && !t.exists(".preflight"), "nothing is healed while the volume is missing");
    // The deployment mounts the volume: an empty folder appears.
    t.mkdir("data");
    let out = run.finish();
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        out.stderr.contains("attempt 1: waiting for what the deployment provides: data is missing"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("app started") && out.stdout.contains("app.db") && out.stdout.contains("state.json"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_plain_folder_where_a_volume_is_mounted_is_not_ready() {
    let t = TestDir::with_manifest(&volume_manifest(true));
    t.write("schema.sql", SCHEMA);
    t.mkdir("data");
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 1, "{}", heal.stdout);
    assert!(heal.stdout.contains("not mounted yet"), "{}", heal.stdout);
    assert!(!t.exists("data/app.db"), "nothing written into the mount point");
    // A symlink to the volume is the deployment's pointer: it counts.
    let outside = TestDir::new();
    std::fs::remove_dir(t.join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), t.join("data")).unwrap();
    assert_eq!(t.run(&["heal"]).code, 0);
    assert!(outside.exists("app.db"));
}

#[test]
fn run_waits_for_the_mount_then_heals_on_the_volume() {
    if !can_mount() {
        return;
    }
    let t = with_app(&volume_manifest(true));
    t.write("schema.sql", SCHEMA);
    t.mkdir("data");
    t.write("bin/app", "#!/bin/sh\necho \"app started\"; ls data\n");
    let started = Instant::now();
    // In a private mount namespace: the volume is mounted 0.5 s after run starts.
    let out = in_mount_namespace(
        t.path(),
        "(sleep 0.5; mount -t tmpfs volume data) & \
         \"$PREFLIGHT\" run --retry-timeout 20s --sleep 100ms -m preflight.toml -- ./bin/app; code=$?; \
         echo \"underneath: $(umount data 2>/dev/null; ls data)\"; exit $code",
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("data is not mounted yet"), "{stderr}");
    assert!(stdout.contains("app started") && stdout.contains("app.db"), "{stdout}");
    assert!(
        stdout.contains("underneath: \n") || stdout.ends_with("underneath: \n"),
        "the mount point stays empty: {stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(!t.exists("data/app.db"), "the database lives on the volume, not in the mount folder");
}
