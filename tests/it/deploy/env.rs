//! Required keys from the process environment.

use crate::support::{TestDir, SECRET_MARK};

const MANIFEST: &str = "version = 1\n[env]\nrequired = [\"DOMAIN\", \"API_KEY\"]\n";

#[test]
fn a_required_key_set_in_the_process_environment_counts() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env", format!("API_KEY={SECRET_MARK}file\n"));
    let secret = format!("{SECRET_MARK}domain");
    let run = t.run_env(&["validate"], &[("DOMAIN", &secret)]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    // Also with no .env file at all, as in a container given --env.
    let t = TestDir::with_manifest("version = 1\n[env]\nrequired = [\"DOMAIN\"]\n");
    let run = t.run_env(&["validate", "--format", "json"], &[("DOMAIN", &secret)]);
    assert_eq!(run.code, 0, "no .env is needed when the process sets every required key: {}", run.stdout);
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1, "set nowhere");
    assert!(run.stdout.contains(".env is missing"), "{}", run.stdout);
}

#[test]
fn the_process_environment_wins_over_the_env_file() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env", format!("DOMAIN={SECRET_MARK}file\nAPI_KEY={SECRET_MARK}key\n"));
    let run = t.run_env(&["validate"], &[("DOMAIN", "")]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stdout.contains("DOMAIN is empty in the process environment"), "{}", run.stdout);
}

#[test]
fn a_missing_key_says_where_it_was_looked_for_and_never_a_value() {
    let t = TestDir::with_manifest(MANIFEST);
    t.write(".env", format!("API_KEY={SECRET_MARK}key\nOTHER={SECRET_MARK}other\n"));
    let run = t.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("DOMAIN is missing: not in the process environment, not in .env"), "{}", run.stdout);
}
