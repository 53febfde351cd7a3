//! The launcher examples under `scripts/launchers/`: each one's preflight
//! line is taken from the file as written and run, with the built binary
//! first on PATH, against a temp root whose `data` folder is missing and
//! whose app is `bin/app` (a script that says it started).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::TestDir;

const LAUNCHERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/launchers");

fn app_root() -> TestDir {
    let t = TestDir::with_manifest("version = 1\n[[dir]]\npath = \"data\"\n");
    t.write("bin/app", "#!/bin/sh\necho \"app started with $*\"\n");
    t.chmod("bin/app", 0o755);
    t
}

fn launcher(name: &str) -> String {
    fs::read_to_string(Path::new(LAUNCHERS).join(name)).unwrap()
}

/// PATH with the directory of the built binary first.
fn path_with_preflight() -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_preflight"));
    format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default())
}

/// The value after `key` on the first line (comments skipped) that holds it.
fn line_after(text: &str, key: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no line starting with {key}"))
        .trim()
        .to_string()
}

/// A JSON-style array, as Dockerfile exec form and YAML flow sequences write it.
fn array(text: &str) -> Vec<String> {
    let end = text.rfind(']').map_or(text.len(), |i| i + 1);
    serde_json::from_str(&text[..end]).unwrap_or_else(|e| panic!("not an array ({e}): {text}"))
}

fn run(argv: &[String], root: &Path) -> Output {
    Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(root)
        .env("PATH", path_with_preflight())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn assert_started(out: &Output, t: &TestDir) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("app started"), "stdout: {stdout}\nstderr: {stderr}");
    assert!(t.exists("data"), "preflight healed the root before the start");
}

#[test]
fn bash_launcher_heals_then_execs_the_app() {
    let t = app_root();
    let script = Path::new(LAUNCHERS).join("launch.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["./bin/app", "--port", "8000"])
        .env("APP_ROOT", t.path())
        .env("PATH", path_with_preflight())
        .output()
        .unwrap();
    assert_started(&out, &t);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--port 8000"));
}

#[test]
fn bash_launcher_does_not_start_the_app_on_critical_findings() {
    let t = app_root();
    t.write("data", "a file where a folder belongs");
    let script = Path::new(LAUNCHERS).join("launch.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("./bin/app")
        .env("APP_ROOT", t.path())
        .env("PATH", path_with_preflight())
        .env("PREFLIGHT_RETRY", "0s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("app started"));
}

#[test]
fn systemd_exec_start_line_runs_in_the_working_directory() {
    let t = app_root();
    let line = line_after(&launcher("preflight-app.service"), "ExecStart=");
    let mut argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    assert_eq!(argv[0], "/usr/local/bin/preflight");
    argv[0] = env!("CARGO_BIN_EXE_preflight").into();
    assert_started(&run(&argv, t.path()), &t);
}

#[test]
fn dockerfile_entrypoint_and_cmd_start_the_app() {
    let t = app_root();
    let text = launcher("Dockerfile");
    let mut argv = array(&line_after(&text, "ENTRYPOINT"));
    argv.extend(array(&line_after(&text, "CMD")));
    assert_eq!(argv[0], "preflight");
    assert_started(&run(&argv, t.path()), &t);
}

#[test]
fn kubernetes_init_container_heals_and_gates_on_critical() {
    let t = app_root();
    let argv = array(&line_after(&launcher("k8s-init-container.yaml"), "command:"));
    assert!(argv.iter().any(|a| a.contains("preflight heal")), "{argv:?}");
    let out = run(&argv, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(t.exists("data"));
    // A damaged file whose salvage is not an object, while the default is:
    // it may be another program's, so heal leaves it and it stays critical.
    t.write("preflight.toml", "version = 1\n[[file]]\npath = \"x.json\"\ndefault = { a = 1 }\n");
    t.write("x.json", "[broken");
    assert_ne!(run(&argv, t.path()).status.code(), Some(0), "critical findings keep the pod from starting");
}

#[test]
fn ci_job_writes_a_junit_report() {
    let t = app_root();
    let line = line_after(&launcher("ci-job.yml"), "run:");
    assert!(line.starts_with("preflight "), "{line}");
    let out = run(&["sh".into(), "-c".into(), line], t.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = t.read("preflight-junit.xml");
    assert!(report.starts_with("<?xml") && report.contains(r#"name="dir:data""#), "{report}");
}

#[test]
fn every_launcher_is_covered() {
    let mut names: Vec<String> =
        fs::read_dir(LAUNCHERS).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Dockerfile",
            "ci-job.yml",
            "docker-run.sh",
            "k8s-init-container.yaml",
            "launch.sh",
            "preflight-app.service",
            "preflight.toml",
            "schema.sql"
        ]
    );
    for script in ["launch.sh", "docker-run.sh"] {
        let mode = fs::metadata(Path::new(LAUNCHERS).join(script)).unwrap().permissions().mode();
        assert_ne!(mode & 0o111, 0, "{script} is executable");
    }
}

mod deployments;
