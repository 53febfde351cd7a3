//! `preflight init` on a real application: other env template names,
//! nested data folders, JSON defaults the app can use, mount points and
//! volumes, the app's account. What it writes validates where it came from.

use std::os::unix::fs::symlink;

use super::{can_mount, in_mount_namespace, is_root};
use crate::support::TestDir;

fn init(t: &TestDir) -> String {
    let run = t.run(&["init"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let validate = t.run(&["validate"]);
    assert_eq!(validate.code, 0, "what init writes passes: {}", validate.all_output());
    t.read("preflight.toml")
}

#[test]
fn every_usual_env_template_name_is_recognised() {
    for name in [".env.example", ".env.template", ".env.sample", ".env.dist"] {
        let t = TestDir::new();
        t.write(name, "API_KEY=\nLOG_LEVEL=info\n");
        t.write(".env", "API_KEY=sk-live-init\nLOG_LEVEL=debug\n");
        let manifest = init(&t);
        assert!(manifest.contains(&format!("template = \"{name}\"")), "{name}:\n{manifest}");
        assert!(manifest.contains("required = [\"API_KEY\", \"LOG_LEVEL\"]"), "{manifest}");
    }
}

#[test]
fn nested_data_folders_are_declared_and_code_folders_are_not_walked() {
    let t = TestDir::new();
    t.mkdir("data/attachments/2024").mkdir("logs/archive");
    t.write("src/app.py", "print('hi')\n").mkdir("src/utils");
    let manifest = init(&t);
    for dir in ["data", "data/attachments", "data/attachments/2024", "logs", "logs/archive", "src"] {
        assert!(manifest.contains(&format!("path = \"{dir}\"\n")), "{dir}:\n{manifest}");
    }
    assert!(!manifest.contains("src/utils"), "{manifest}");
}

#[test]
fn json_defaults_keep_the_files_shape_and_values_but_no_secret() {
    let t = TestDir::new();
    t.write(
        "state/settings.json",
        r#"{"mode": "live", "retries": 3, "symbols": ["A"], "feed": {"url": "wss://x", "level": 2}, "api_token": "sk-live-t"}"#,
    );
    let manifest = init(&t);
    assert!(
        manifest.contains(
            "default = { mode = \"live\", retries = 3, symbols = [], feed = { url = \"wss://x\", level = 2 } }"
        ),
        "{manifest}"
    );
    assert!(manifest.contains("\"api_token\" looks like a secret; left out"), "{manifest}");
    assert!(!manifest.contains("sk-live"), "{manifest}");
    // The default is one the app can use: a missing file gets it back whole.
    std::fs::remove_file(t.join("state/settings.json")).unwrap();
    assert_eq!(t.run(&["heal"]).code, 0);
    let healed: serde_json::Value = serde_json::from_str(&t.read("state/settings.json")).unwrap();
    assert_eq!(healed["mode"], "live");
    assert_eq!(healed["feed"]["level"], 2);
}

#[test]
fn a_volume_linked_in_is_declared_as_provided_and_its_files_are_found() {
    let t = TestDir::new();
    let volume = TestDir::new();
    volume.write("state.json", r#"{"items": []}"#);
    symlink(volume.path(), t.join("data")).unwrap();
    let manifest = init(&t);
    assert!(manifest.contains("path = \"data\""), "{manifest}");
    assert!(manifest.contains("create = false") && manifest.contains("volume = true"), "{manifest}");
    assert!(manifest.contains("path = \"data/state.json\""), "{manifest}");
}

#[test]
fn a_mount_point_is_declared_create_false() {
    if !can_mount() {
        return;
    }
    let t = TestDir::new();
    t.mkdir("data");
    let out = in_mount_namespace(
        t.path(),
        "mount -t tmpfs volume data && \"$PREFLIGHT\" init && \"$PREFLIGHT\" validate && \
         umount data && \"$PREFLIGHT\" validate",
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "valid while mounted, critical once unmounted:\n{stdout}\n{stderr}");
    assert!(stdout.contains("not mounted yet"), "{stdout}");
    let manifest = t.read("preflight.toml");
    assert!(manifest.contains("create = false  # a mount point"), "{manifest}");
    assert!(manifest.contains("volume = true"), "{manifest}");
}

#[test]
fn the_app_user_comes_from_the_owner_of_the_data_folders() {
    if !is_root() {
        eprintln!("skipped: needs root to give folders to another account");
        return;
    }
    let t = TestDir::new();
    t.chmod(".", 0o755);
    t.mkdir("data/attachments");
    for dir in ["data", "data/attachments"] {
        std::os::unix::fs::chown(t.join(dir), Some(65534), Some(65534)).unwrap();
    }
    let manifest = init(&t);
    assert!(manifest.contains("[app]\nuser = \"nobody\""), "{manifest}");
    // A file in it the account could not write: the suggestion stays a comment.
    t.write("data/state.json", r#"{"a": 1}"#);
    let run = t.run(&["init", "--force"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let manifest = t.read("preflight.toml");
    assert!(manifest.contains("# [app]\n# user = \"nobody\""), "{manifest}");
}
