//! The deployment examples as a whole: the example manifest beside the
//! launchers (`[app] user`, `required` keys from the environment, a
//! `create = false, volume = true` data dir) started the way each launcher
//! starts it, as far as this machine allows: no Docker engine, no systemd
//! running, no cluster. The unit and the pod are parsed and checked for
//! what the manifest relies on; their commands then run in a scratch root
//! as the unprivileged `nobody`, standing in for the `app` account.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::process::{Command, Output};

use super::{launcher, TestDir};

const NOBODY: &str = "65534";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn skip_unless_root() -> bool {
    let root = is_root();
    if !root {
        eprintln!("skipped: needs root to run the app as another account");
    }
    !root
}

/// A scratch root laid out as the app's folder: the example manifest (its
/// `app` account mapped to `nobody`), its schema, and an app that writes
/// into the volume and says who it runs as.
fn deployment_root() -> TestDir {
    let t = TestDir::new();
    t.chmod(".", 0o755);
    t.write("preflight.toml", launcher("preflight.toml").replace("user = \"app\"", "user = \"nobody\""));
    t.write("schema.sql", launcher("schema.sql"));
    t.write("bin/app", "#!/bin/sh\ntouch data/attachments/started && echo \"app started as uid $(id -u) with $*\"\n");
    t.chmod("bin/app", 0o755);
    t
}

/// A folder `nobody` owns, standing in for a provisioned volume.
fn volume() -> TestDir {
    let v = TestDir::new();
    v.chmod(".", 0o755);
    std::os::unix::fs::chown(v.path(), Some(65534), Some(65534)).unwrap();
    v
}

/// Runs `argv` as `nobody` in `root` with only `env` (and a PATH).
fn as_nobody(root: &TestDir, env: &BTreeMap<String, String>, argv: &[String]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
        .args(argv)
        .current_dir(root.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("NO_COLOR", "1")
        .envs(env)
        .output()
        .unwrap()
}

/// `.preflight` owned by `nobody`, as the image's RUN line and the unit's
/// privileged ExecStartPre make it for the app's account.
fn private_dir_for_nobody(t: &TestDir) {
    t.mkdir(".preflight").chmod(".preflight", 0o700);
    std::os::unix::fs::chown(t.join(".preflight"), Some(65534), Some(65534)).unwrap();
}

fn shown(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The preflight word of a launcher's command replaced by the built binary.
fn with_binary(mut argv: Vec<String>) -> Vec<String> {
    let first = argv.iter().position(|a| a.ends_with("preflight")).expect("the command starts preflight");
    argv[first] = env!("CARGO_BIN_EXE_preflight").into();
    argv
}

/// `--env K=V` and `--volume NAME:PATH` of the `docker run` line.
fn docker_run(script: &str) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let line = script.lines().find(|l| l.contains("docker run")).expect("a docker run line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let (mut env, mut volumes) = (BTreeMap::new(), Vec::new());
    for pair in words.windows(2) {
        match pair[0] {
            "--env" | "-e" => {
                let (k, v) = pair[1].split_once('=').expect("--env K=V");
                env.insert(k.to_string(), v.to_string());
            }
            "--volume" | "-v" => {
                let (name, path) = pair[1].split_once(':').expect("--volume NAME:PATH");
                volumes.push((name.to_string(), path.to_string()));
            }
            _ => {}
        }
    }
    (env, volumes)
}

fn dockerfile_value(text: &str, key: &str) -> String {
    super::line_after(text, key)
}

#[test]
fn docker_named_volume_and_env_start_the_app_as_its_user() {
    if skip_unless_root() {
        return;
    }
    let dockerfile = launcher("Dockerfile");
    let (env, volumes) = docker_run(&launcher("docker-run.sh"));
    let workdir = dockerfile_value(&dockerfile, "WORKDIR");
    let declared_volume = dockerfile_value(&dockerfile, "VOLUME");
    assert_eq!(dockerfile_value(&dockerfile, "USER"), "app", "the image runs the app as its account");
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].1, declared_volume, "the named volume is mounted on the image's VOLUME");
    let rel = declared_volume.strip_prefix(&format!("{workdir}/")).expect("the volume is inside WORKDIR");
    assert_eq!(rel, "data", "the manifest's volume dir");
    assert!(env.contains_key("DOMAIN"), "the required key comes in with --env");
    let mut argv = with_binary(super::array(&dockerfile_value(&dockerfile, "ENTRYPOINT")));
    argv.extend(super::array(&dockerfile_value(&dockerfile, "CMD")));

    // The image's RUN line gives the app preflight's own folder.
    let run_line = dockerfile.lines().find(|l| l.starts_with("RUN") && l.contains("/app/.preflight"));
    assert!(run_line.is_some_and(|l| l.contains("chown app:app")), "the image lets the app keep heal's lock");
    // A fresh named volume: an empty folder the app owns. Without a Docker
    // engine, a symlink to it stands for the mount (both count as provided).
    let t = deployment_root();
    let data = volume();
    t.mkdir("data");
    let not_mounted = as_nobody(&t, &env, &with_binary(vec!["preflight".into(), "validate".into()]));
    assert_eq!(not_mounted.status.code(), Some(1), "{}", shown(&not_mounted));
    assert!(shown(&not_mounted).contains("not mounted yet"), "{}", shown(&not_mounted));
    fs::remove_dir(t.join("data")).unwrap();
    symlink(data.path(), t.join("data")).unwrap();
    private_dir_for_nobody(&t);
    let out = as_nobody(&t, &env, &argv);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(shown(&out).contains("app started as uid 65534 with --port 8000"), "{}", shown(&out));
    assert!(data.exists("app.db") && data.exists("attachments/started"), "healed on the volume");
    // Without --env, it would not start, and says which key (validate:
    // the entrypoint would retry for its 30 s first).
    let out = as_nobody(&t, &BTreeMap::new(), &with_binary(vec!["preflight".into(), "validate".into()]));
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(shown(&out).contains("required key DOMAIN is not set"), "{}", shown(&out));
}

/// The unit file as (section, key, value), every line checked for shape.
fn parse_unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(["Unit", "Service", "Install"].contains(&name), "line {n}: unknown section [{name}]");
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("line {n}: not KEY=value: {line}"));
        assert!(!section.is_empty(), "line {n}: a key before any section");
        entries.push((section.clone(), key.trim().to_string(), value.trim().to_string()));
    }
    entries
}

fn unit_value<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    entries.iter().filter(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v.as_str()).collect()
}

#[test]
fn systemd_unit_parses_and_runs_as_its_user_with_its_environment() {
    let text = launcher("preflight-app.service");
    let unit = parse_unit(&text);
    assert_eq!(unit_value(&unit, "Service", "User"), ["app"]);
    let workdir = unit_value(&unit, "Service", "WorkingDirectory")[0];
    assert_eq!(
        unit_value(&unit, "Unit", "RequiresMountsFor"),
        [format!("{workdir}/data").as_str()],
        "systemd waits for the volume the manifest declares"
    );
    let env: BTreeMap<String, String> = unit_value(&unit, "Service", "Environment")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|pair| pair.split_once('=').map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string())).unwrap())
        .collect();
    assert!(env.contains_key("DOMAIN"), "{env:?}");
    let pre = unit_value(&unit, "Service", "ExecStartPre");
    assert!(
        pre.iter().any(|l| l.starts_with('+') && l.contains(&format!("-o app -g app -m 0700 {workdir}/.preflight"))),
        "the app's account may keep heal's lock: {pre:?}"
    );
    let exec: Vec<String> = unit_value(&unit, "Service", "ExecStart")[0].split_whitespace().map(String::from).collect();
    assert_eq!(exec[..2], ["/usr/local/bin/preflight", "run"]);
    verify_with_systemd(&text);
    if skip_unless_root() {
        return;
    }
    let t = deployment_root();
    let data = volume();
    symlink(data.path(), t.join("data")).unwrap();
    private_dir_for_nobody(&t);
    let out = as_nobody(&t, &env, &with_binary(exec));
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    assert!(shown(&out).contains("app started as uid 65534"), "{}", shown(&out));
    assert!(data.exists("app.db"));
}

/// `systemd-analyze verify`, where installed: it reads the unit as systemd
/// would and names unknown keys and sections.
fn verify_with_systemd(text: &str) {
    let dir = TestDir::new();
    let unit = dir.join("app.service");
    fs::write(&unit, text.replace("/usr/local/bin/preflight", env!("CARGO_BIN_EXE_preflight"))).unwrap();
    let Ok(out) = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&unit).output() else {
        eprintln!("systemd-analyze is not installed: the unit was checked by the parser above only");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    for bad in ["Unknown key", "Unknown section", "Invalid", "Failed to parse", "Missing"] {
        assert!(!stderr.contains(bad), "systemd-analyze: {stderr}");
    }
}

/// The pod as JSON, through PyYAML where installed.
fn pod() -> Option<serde_json::Value> {
    let script = "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)";
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: python3 is not installed to parse the YAML");
        return None;
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(launcher("k8s-init-container.yaml").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("No module named"), "the YAML does not parse: {stderr}");
        eprintln!("skipped: PyYAML is not installed to parse the YAML");
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn kubernetes_init_container_shares_the_volume_and_hands_it_to_the_app() {
    let Some(pod) = pod() else { return };
    let spec = &pod["spec"];
    let init = &spec["initContainers"][0];
    let app = &spec["containers"][0];
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(init["volumeMounts"], app["volumeMounts"], "both mount the same volume at the same path");
    let mount = init["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(spec["volumes"][0]["name"], init["volumeMounts"][0]["name"]);
    assert_eq!(mount, format!("{}/data", init["workingDir"].as_str().unwrap()), "the manifest's volume dir");
    assert_eq!(init["securityContext"]["runAsUser"], 0, "heal runs as root to hand files to the app");
    assert_ne!(app["securityContext"]["runAsUser"], 0, "the app does not");
    assert_eq!(init["env"], app["env"], "the same configuration for the check and the app");
    if skip_unless_root() {
        return;
    }
    let env: BTreeMap<String, String> = init["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
        .collect();
    let command: Vec<String> = serde_json::from_value(init["command"].clone()).unwrap();
    let app_command: Vec<String> = serde_json::from_value(app["command"].clone()).unwrap();
    // The shared volume, empty and root's (as a fresh claim is).
    let t = deployment_root();
    let shared = TestDir::new();
    shared.chmod(".", 0o755);
    symlink(shared.path(), t.join("data")).unwrap();
    let script = command[2].replace("preflight ", &format!("{} ", env!("CARGO_BIN_EXE_preflight")));
    let init_run = Command::new(&command[0])
        .args([&command[1], &script])
        .current_dir(t.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(&env)
        .output()
        .unwrap();
    assert_eq!(init_run.status.code(), Some(0), "{}", shown(&init_run));
    let app_run = as_nobody(&t, &env, &app_command);
    assert_eq!(app_run.status.code(), Some(0), "the app writes what heal made for it: {}", shown(&app_run));
    assert!(shared.exists("attachments/started"));
}
