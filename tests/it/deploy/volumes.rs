//! `volume = true`: a data dir that is a symlink (or mount point) leading
//! outside the root is a second root. Heal writes beneath it, with the
//! root's rules: nothing beneath it may lead out of the volume.

use std::os::unix::fs::symlink;

use crate::support::TestDir;

fn manifest(volume: bool) -> String {
    format!(
        "version = 1\n[[dir]]\npath = \"data\"\nvolume = {volume}\n\
         [[database]]\npath = \"data/app.db\"\nschema = \"schema.sql\"\n\
         [[file]]\npath = \"data/state.json\"\ndefault = {{ items = [] }}\n\
         [[lock]]\nglob = \"data/*.lock\"\nstale_after = \"1m\"\n"
    )
}

fn linked(volume: bool) -> (TestDir, TestDir) {
    let t = TestDir::with_manifest(&manifest(volume));
    t.write("schema.sql", "CREATE TABLE t (id INTEGER PRIMARY KEY);\n");
    let outside = TestDir::new();
    symlink(outside.path(), t.join("data")).unwrap();
    (t, outside)
}

#[test]
fn a_volume_dir_may_lead_outside_the_root_and_heal_writes_beneath_it() {
    let (t, outside) = linked(true);
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1, "missing database and file, no manifest error: {}", run.all_output());
    assert!(run.stdout.contains("data/app.db"), "{}", run.stdout);
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    assert!(outside.exists("app.db") && outside.exists("state.json"));
    assert_eq!(t.run(&["validate"]).code, 0);
    let rollback = t.run(&["rollback"]);
    assert_eq!(rollback.code, 0, "{}", rollback.all_output());
    assert!(!outside.exists("app.db") && !outside.exists("state.json"), "rollback undoes writes on the volume");
}

#[test]
fn without_volume_a_symlink_out_of_the_root_is_a_manifest_error() {
    let (t, _outside) = linked(false);
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("points outside the root"), "{}", run.stderr);
}

#[test]
fn beneath_a_volume_a_symlink_out_of_the_volume_is_refused() {
    let (t, outside) = linked(true);
    let elsewhere = TestDir::new();
    symlink(elsewhere.path(), outside.join("sub")).unwrap();
    t.write("preflight.toml", format!("{}[[file]]\npath = \"data/sub/x.json\"\n", manifest(true)));
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("data/sub") && run.stderr.contains("points outside the root"), "{}", run.stderr);
}

#[test]
fn lock_globs_reach_beneath_a_volume() {
    let (t, outside) = linked(true);
    outside.write("old.lock", "999999999\n");
    let heal = t.run(&["heal"]);
    assert_eq!(heal.code, 0, "{}", heal.all_output());
    assert!(!outside.exists("old.lock"), "a lock naming a dead process is removed on the volume");
}
