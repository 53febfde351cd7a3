//! Runtime hygiene end to end, through the library: real files with real
//! modification times, real child processes, real commands.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::{self, ChildGuard, TestDir};
use filetime::FileTime;
use preflight::checks::{run_all, CheckOptions, Selection};
use preflight::finding::{Findings, Severity};
use preflight::heal::{self, HealResult};
use preflight::manifest::{self, Manifest};
use preflight::safety::{history, Outcome, Silent};

/// A temporary root; manifests are given as TOML bodies after `version = 1`.
struct Root {
    t: TestDir,
}

impl Root {
    fn new() -> Root {
        Root { t: TestDir::new() }
    }

    fn path(&self) -> &Path {
        self.t.path()
    }

    fn write(&self, rel: &str, contents: &str) {
        self.t.write(rel, contents);
    }

    /// Sets the modification time of `rel` to now + `offset` seconds.
    fn age(&self, rel: &str, offset_secs: i64) {
        let now = SystemTime::now();
        let t = if offset_secs < 0 {
            now - Duration::from_secs(offset_secs.unsigned_abs())
        } else {
            now + Duration::from_secs(offset_secs as u64)
        };
        filetime::set_file_mtime(self.path().join(rel), FileTime::from_system_time(t)).unwrap();
    }

    fn exists(&self, rel: &str) -> bool {
        self.t.exists(rel)
    }

    /// Runs the binary with the manifest `body`.
    fn cli(&self, body: &str, args: &[&str]) -> support::Run {
        self.write("preflight.toml", &format!("version = 1\n{body}"));
        self.t.run(args)
    }

    fn manifest(&self, body: &str) -> Manifest {
        let source = format!("version = 1\n{body}");
        manifest::load_str(Path::new("preflight.toml"), &source, self.path()).unwrap()
    }

    fn validate(&self, body: &str) -> Findings {
        run_all(&self.manifest(body), &CheckOptions::default(), &Selection::default()).unwrap()
    }

    fn heal(&self, body: &str) -> HealResult {
        heal::heal(&self.manifest(body), &CheckOptions::default(), &Selection::default(), &Silent).unwrap()
    }
}

/// The severity and message of the finding `id`, if any.
fn find<'a>(findings: &'a Findings, id: &str) -> Option<(Severity, &'a str)> {
    findings.problems.iter().find(|f| f.id == id).map(|f| (f.severity, f.message.as_str()))
}

fn passed(findings: &Findings, id: &str) -> bool {
    findings.passed.iter().any(|p| p.id == id)
}

fn plan_lines(findings: &Findings, id: &str) -> Vec<String> {
    findings.problems.iter().find(|f| f.id == id).and_then(|f| f.fix.as_ref()).map_or(Vec::new(), |f| f.describe())
}

/// A long-lived process, killed when the guard drops; its command line
/// is visible to the checks.
fn sleeper() -> ChildGuard {
    ChildGuard::spawn_and_wait_for_exec(Command::new("sleep").arg("60"))
}

/// The PID of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = ChildGuard::spawn(&mut Command::new("true"));
    child.wait().unwrap();
    child.id()
}

fn hostname() -> String {
    preflight::runtime::host::hostname().unwrap()
}

mod locks {
    use super::*;

    const LOCKS: &str = "[[lock]]\nglob = \"state/*.lock\"\nstale_after = \"5m\"\n";

    #[test]
    fn a_lock_naming_a_dead_process_is_stale_and_heal_records_its_content() {
        let root = Root::new();
        let content = format!("{} {}\n", dead_pid(), hostname());
        root.write("state/a.lock", &content);
        let found = root.validate(LOCKS);
        let (severity, message) = find(&found, "lock:state/a.lock").expect("a finding");
        assert_eq!(severity, Severity::Critical);
        assert!(message.contains("not running"), "{message}");

        let result = root.heal(LOCKS);
        assert!(!root.exists("state/a.lock"));
        assert_eq!(result.actions[0].outcome, Outcome::Done);
        let entries = history::read(root.path()).unwrap();
        let entry = entries.iter().find(|e| e.id == "lock:state/a.lock").unwrap();
        assert!(entry.detail.contains(content.trim()), "{}", entry.detail);
        let copy = root.path().join(&entry.saved[0]);
        assert_eq!(fs::read_to_string(copy).unwrap(), content);
        assert!(passed(result.after.as_ref().unwrap(), "lock:state/*.lock"));
    }

    #[test]
    fn an_old_lock_without_a_pid_is_stale_and_a_fresh_one_is_fine() {
        let root = Root::new();
        root.write("state/old.lock", "");
        root.write("state/new.lock", "");
        root.age("state/old.lock", -3600);
        let found = root.validate(LOCKS);
        let (severity, message) = find(&found, "lock:state/old.lock").unwrap();
        assert_eq!(severity, Severity::Critical);
        assert!(message.contains("1h old"), "{message}");
        assert!(passed(&found, "lock:state/new.lock"));
    }

    #[test]
    fn a_lock_held_by_a_running_process_is_kept_however_old() {
        let root = Root::new();
        let child = sleeper();
        root.write("state/a.lock", &format!("{}\n", child.id()));
        root.age("state/a.lock", -24 * 3600);
        let found = root.validate(LOCKS);
        let (severity, message) = find(&found, "lock:state/a.lock").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("kept"), "{message}");
        root.heal(LOCKS);
        assert!(root.exists("state/a.lock"));
    }

    #[test]
    fn a_lock_whose_pid_was_reused_by_an_unrelated_process_is_kept() {
        // The lock's writer died and its PID now belongs to an unrelated
        // process (here `sleep`): the lock looks held, so it stays.
        let root = Root::new();
        let unrelated = sleeper();
        root.write("state/a.lock", &format!("{} {}\n", unrelated.id(), hostname()));
        let found = root.validate(LOCKS);
        assert!(find(&found, "lock:state/a.lock").is_none());
        assert!(passed(&found, "lock:state/a.lock"));
        root.age("state/a.lock", -3600);
        root.heal(LOCKS);
        assert!(root.exists("state/a.lock"));
    }

    #[test]
    fn a_lock_of_another_host_is_only_a_warning() {
        let root = Root::new();
        root.write("state/a.lock", &format!("{} some-other-host.invalid\n", dead_pid()));
        root.age("state/a.lock", -3600);
        let found = root.validate(LOCKS);
        let (severity, message) = find(&found, "lock:state/a.lock").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("some-other-host.invalid"), "{message}");
        assert!(plan_lines(&found, "lock:state/a.lock").is_empty());
        root.heal(LOCKS);
        assert!(root.exists("state/a.lock"));
    }

    #[test]
    fn a_lock_modified_in_the_future_is_reported() {
        let root = Root::new();
        root.write("state/a.lock", "");
        root.age("state/a.lock", 48 * 3600);
        let found = root.validate(LOCKS);
        let (severity, message) = find(&found, "lock:state/a.lock").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("in the future"), "{message}");
    }

    #[test]
    fn a_lock_rewritten_after_the_check_is_not_removed() {
        let root = Root::new();
        root.write("state/a.lock", &format!("{}\n", dead_pid()));
        let manifest = root.manifest(LOCKS);
        let found = run_all(&manifest, &CheckOptions::default(), &Selection::default()).unwrap();
        assert!(find(&found, "lock:state/a.lock").is_some());
        // A new holder takes the lock between the check and the fix.
        let holder = sleeper();
        root.write("state/a.lock", &format!("{}\n", holder.id()));
        let finding = found.problems.iter().find(|f| f.id == "lock:state/a.lock").unwrap();
        let mut ctx = preflight::safety::ApplyCtx::new(root.path(), "r");
        let err = ctx.apply(&finding.fix.as_ref().unwrap().ops[0]).unwrap_err();
        assert!(err.to_string().contains("changed since"), "{err}");
        assert!(root.exists("state/a.lock"));
    }
}

mod heartbeats {
    use super::*;

    const BEAT: &str = "[[heartbeat]]\npath = \"state/beat\"\nmax_age = \"10m\"\n";

    #[test]
    fn a_missing_heartbeat_is_a_warning_and_heal_creates_it() {
        let root = Root::new();
        let found = root.validate(BEAT);
        assert_eq!(find(&found, "heartbeat:state/beat").unwrap().0, Severity::Warning);
        assert_eq!(plan_lines(&found, "heartbeat:state/beat"), ["touch state/beat"]);
        let result = root.heal(BEAT);
        assert!(root.exists("state/beat"));
        assert!(passed(result.after.as_ref().unwrap(), "heartbeat:state/beat"));
    }

    #[test]
    fn an_old_heartbeat_is_touched() {
        let root = Root::new();
        root.write("state/beat", "keep me");
        root.age("state/beat", -3600);
        let (_, message) = find(&root.validate(BEAT), "heartbeat:state/beat").map(|(s, m)| (s, m.to_string())).unwrap();
        assert!(message.contains("1h ago"), "{message}");
        let result = root.heal(BEAT);
        assert!(passed(result.after.as_ref().unwrap(), "heartbeat:state/beat"));
        assert_eq!(fs::read_to_string(root.path().join("state/beat")).unwrap(), "keep me");
    }

    #[test]
    fn a_heartbeat_from_the_future_is_not_fresh_forever() {
        let root = Root::new();
        root.write("state/beat", "");
        root.age("state/beat", 7 * 24 * 3600);
        let found = root.validate(BEAT);
        let (severity, message) = find(&found, "heartbeat:state/beat").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("in the future"), "{message}");
        let result = root.heal(BEAT);
        assert!(passed(result.after.as_ref().unwrap(), "heartbeat:state/beat"));
    }

    #[test]
    fn a_fresh_heartbeat_passes() {
        let root = Root::new();
        root.write("state/beat", "");
        assert!(passed(&root.validate(BEAT), "heartbeat:state/beat"));
    }
}

mod pidfiles {
    use super::*;

    fn spec(on_running: &str, pattern: Option<&str>) -> String {
        let pattern = pattern.map(|p| format!("match = {p:?}\n")).unwrap_or_default();
        format!("[[pidfile]]\npath = \"run/app.pid\"\non_running = \"{on_running}\"\n{pattern}")
    }

    #[test]
    fn a_pidfile_of_a_dead_process_is_a_warning_and_removed() {
        let root = Root::new();
        root.write("run/app.pid", &format!("{}\n", dead_pid()));
        let found = root.validate(&spec("critical", None));
        let (severity, message) = find(&found, "pidfile:run/app.pid").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("not running"), "{message}");
        root.heal(&spec("critical", None));
        assert!(!root.exists("run/app.pid"));
    }

    #[test]
    fn a_running_process_is_critical_and_left_alone_by_default() {
        let root = Root::new();
        let mut child = sleeper();
        root.write("run/app.pid", &format!("{}\n", child.id()));
        let found = root.validate(&spec("critical", None));
        let (severity, message) = find(&found, "pidfile:run/app.pid").unwrap();
        assert_eq!(severity, Severity::Critical);
        assert!(message.contains("(sleep) is running"), "{message}");
        root.heal(&spec("critical", None));
        assert!(child.try_wait().unwrap().is_none(), "still running");
        assert!(root.exists("run/app.pid"));
    }

    #[test]
    fn terminate_stops_a_matching_process_and_removes_the_pidfile() {
        let root = Root::new();
        let mut child = ChildGuard::spawn_and_wait_for_exec(Command::new("sleep").arg("61"));
        root.write("run/app.pid", &format!("{}\n", child.id()));
        let body = spec("terminate", Some("sleep 61"));
        let found = root.validate(&body);
        assert_eq!(plan_lines(&found, "pidfile:run/app.pid").len(), 2);
        let result = root.heal(&body);
        assert_eq!(result.actions[0].outcome, Outcome::Done, "{}", result.actions[0].detail);
        assert!(result.actions[0].detail.contains("SIGTERM"));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        assert!(!root.exists("run/app.pid"));
        assert!(passed(result.after.as_ref().unwrap(), "pidfile:run/app.pid"));
    }

    #[test]
    fn terminate_never_signals_a_process_that_does_not_match() {
        let root = Root::new();
        let mut unrelated = sleeper();
        root.write("run/app.pid", &format!("{}\n", unrelated.id()));
        let body = spec("terminate", Some("my-server"));
        let found = root.validate(&body);
        let (severity, message) = find(&found, "pidfile:run/app.pid").unwrap();
        assert_eq!(severity, Severity::Critical);
        assert!(message.contains("not terminated"), "{message}");
        root.heal(&body);
        assert!(unrelated.try_wait().unwrap().is_none(), "still running");
    }

    #[test]
    fn a_pidfile_that_is_not_a_pid_is_critical_and_kept() {
        let root = Root::new();
        root.write("run/app.pid", "hello\n");
        let found = root.validate(&spec("terminate", None));
        let (severity, message) = find(&found, "pidfile:run/app.pid").unwrap();
        assert_eq!(severity, Severity::Critical);
        assert!(message.contains("\"hello\""), "{message}");
        root.write("run/app.pid", "0\n");
        assert_eq!(
            find(&root.validate(&spec("terminate", None)), "pidfile:run/app.pid").unwrap().0,
            Severity::Critical
        );
        root.heal(&spec("terminate", None));
        assert!(root.exists("run/app.pid"));
    }

    #[test]
    fn no_pidfile_is_fine() {
        let root = Root::new();
        assert!(passed(&root.validate(&spec("critical", None)), "pidfile:run/app.pid"));
    }
}

mod commands {
    use super::*;

    fn command(run: &str, extra: &str) -> String {
        format!("[[command]]\nname = \"tool\"\nrun = {run:?}\n{extra}")
    }

    fn message(root: &Root, body: &str) -> String {
        let found = root.validate(body);
        let (severity, message) = find(&found, "command:tool").expect("a finding");
        assert_eq!(severity, Severity::Critical);
        message.to_string()
    }

    #[test]
    fn a_program_missing_from_path_is_critical() {
        let root = Root::new();
        let message = message(&root, &command("no-such-tool-4711 --version", "version = \">=1\"\n"));
        assert!(message.contains("not found on PATH"), "{message}");
        assert!(message.contains(">=1"), "{message}");
    }

    #[test]
    fn a_failing_command_is_critical_with_its_status_and_output() {
        let root = Root::new();
        let message = message(&root, &command("sh -c 'echo broken >&2; exit 3'", ""));
        assert!(message.contains("exit status 3") && message.contains("broken"), "{message}");
    }

    #[test]
    fn a_version_below_the_requirement_says_what_was_found() {
        let root = Root::new();
        let message = message(&root, &command("echo Python 3.6.9", "version = \">=3.8\"\n"));
        assert!(message.contains("found version 3.6.9, required: >=3.8"), "{message}");
    }

    #[test]
    fn a_version_printed_on_stderr_is_read() {
        let root = Root::new();
        let good = command("echo Python 3.11.7 >&2", "version = \">=3.8\"\n");
        assert!(passed(&root.validate(&good), "command:tool"));
        let old = command("echo v2.7.18 >&2", "version = \">=3.8\"\n");
        assert!(message(&root, &old).contains("found version 2.7.18"));
    }

    #[test]
    fn output_without_a_version_is_critical() {
        let root = Root::new();
        let message = message(&root, &command("echo hello", "version = \">=3.8\"\n"));
        assert!(message.contains("no version number"), "{message}");
    }

    #[test]
    fn a_hanging_command_is_stopped_at_its_timeout() {
        let root = Root::new();
        let message = message(&root, &command("sleep 30", "timeout = \"300ms\"\n"));
        assert!(message.contains("did not finish within 300ms"), "{message}");
    }

    #[test]
    fn the_fix_runs_only_in_heal_and_its_output_is_kept() {
        let root = Root::new();
        let body = command("test -f ready", "fix = \"echo installing; touch ready\"\n");
        let found = root.validate(&body);
        assert!(find(&found, "command:tool").is_some());
        assert_eq!(plan_lines(&found, "command:tool"), ["run `echo installing; touch ready` (timeout 10s)"]);
        assert!(!root.exists("ready"), "validate never runs a fix");
        let result = root.heal(&body);
        assert!(result.actions[0].detail.contains("installing"), "{}", result.actions[0].detail);
        assert!(passed(result.after.as_ref().unwrap(), "command:tool"));
        let entries = history::read(root.path()).unwrap();
        assert!(entries.iter().any(|e| e.id == "command:tool" && e.detail.contains("installing")));
    }

    #[test]
    fn a_failing_fix_is_recorded_as_failed() {
        let root = Root::new();
        let result = root.heal(&command("test -f ready", "fix = \"echo nope; exit 4\"\n"));
        assert_eq!(result.actions[0].outcome, Outcome::Failed);
        assert!(result.actions[0].detail.contains("exit status 4"), "{}", result.actions[0].detail);
    }

    #[test]
    fn no_commands_skips_them_entirely() {
        let root = Root::new();
        let body = command("touch ran", "");
        let options = CheckOptions { no_commands: true, ..CheckOptions::default() };
        let found = run_all(&root.manifest(&body), &options, &Selection::default()).unwrap();
        assert!(!root.exists("ran"));
        assert!(find(&found, "command:tool").is_none() && !passed(&found, "command:tool"));
    }

    #[test]
    fn a_bad_version_requirement_is_a_manifest_error() {
        let root = Root::new();
        let source = format!("version = 1\n{}", command("true", "version = \"newest\"\n"));
        let err = manifest::load_str(Path::new("preflight.toml"), &source, root.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("preflight.toml:5:11: `version` = \"newest\" is not a version requirement"),
            "{message}"
        );
    }
}

mod disk {
    use super::*;

    #[test]
    fn free_space_below_the_minimum_is_a_warning_with_the_shortfall() {
        let root = Root::new();
        let found = root.validate("[disk]\nmin_free = \"100%\"\n");
        let (severity, message) = find(&found, "disk").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("more is needed"), "{message}");
        let found = root.validate("[disk]\nmin_free = \"1000000TiB\"\n");
        assert!(find(&found, "disk").unwrap().1.contains("iB more is needed"));
    }

    #[test]
    fn enough_free_space_passes() {
        let root = Root::new();
        assert!(passed(&root.validate("[disk]\nmin_free = \"1KiB\"\n"), "disk"));
    }
}

mod prune {
    use super::*;

    const LOGS: &str = "[[prune]]\nglob = \"logs/*.log\"\nolder_than = \"14d\"\nkeep_last = 10\n";

    #[test]
    fn thousands_of_old_files_are_listed_and_removed_beyond_keep_last() {
        let root = Root::new();
        for i in 0..3000 {
            let rel = format!("logs/{i:04}.log");
            root.write(&rel, "0123456789");
            // Distinct ages, all older than 14 days: 0000 is the newest.
            root.age(&rel, -(15 * 24 * 3600 + i));
        }
        root.write("logs/today.log", "new");
        root.write("logs/notes.txt", "not matched");
        root.age("logs/notes.txt", -(60 * 24 * 3600));
        let found = root.validate(LOGS);
        let (severity, message) = find(&found, "prune:logs/*.log").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.starts_with("2991 files older than 14d"), "{message}");
        let plan = plan_lines(&found, "prune:logs/*.log");
        assert_eq!(plan.len(), 2991);
        assert!(plan.contains(&"remove logs/2999.log".to_string()));
        assert!(!plan.contains(&"remove logs/0008.log".to_string()), "among the 10 newest");

        let result = root.heal(LOGS);
        assert!(result.actions[0].detail.starts_with("removed 2991 files"), "{}", result.actions[0].detail);
        let left = fs::read_dir(root.path().join("logs")).unwrap().count();
        assert_eq!(left, 11, "today.log, notes.txt and the 9 newest old logs");
        assert!(root.exists("logs/today.log") && root.exists("logs/0008.log") && root.exists("logs/notes.txt"));
        assert!(passed(result.after.as_ref().unwrap(), "prune:logs/*.log"));
    }

    #[test]
    fn symlinks_and_files_outside_the_root_are_never_removed() {
        let root = Root::new();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious.log");
        fs::write(&target, "keep").unwrap();
        filetime::set_file_mtime(&target, FileTime::from_unix_time(1_000_000, 0)).unwrap();
        fs::create_dir_all(root.path().join("logs")).unwrap();
        std::os::unix::fs::symlink(&target, root.path().join("logs/link.log")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("logs/sub")).unwrap();
        let body = "[[prune]]\nglob = \"logs/**/*.log\"\nolder_than = \"1d\"\n";
        assert!(passed(&root.validate(body), "prune:logs/**/*.log"));
        root.heal(body);
        assert!(target.exists());
        assert!(fs::symlink_metadata(root.path().join("logs/link.log")).is_ok());
    }

    #[test]
    fn files_from_the_future_are_kept_and_reported() {
        let root = Root::new();
        root.write("logs/a.log", "");
        root.age("logs/a.log", 30 * 24 * 3600);
        let found = root.validate(LOGS);
        let (severity, message) = find(&found, "prune:logs/*.log").unwrap();
        assert_eq!(severity, Severity::Warning);
        assert!(message.contains("1 matching file is dated in the future"), "{message}");
        assert!(plan_lines(&found, "prune:logs/*.log").is_empty());
        root.heal(LOGS);
        assert!(root.exists("logs/a.log"));
    }
}

mod scopes {
    use super::*;

    const ALL: &str = "[[lock]]\nglob = \"*.lock\"\nstale_after = \"1m\"\n\
        [[heartbeat]]\npath = \"beat\"\nmax_age = \"1m\"\n\
        [[pidfile]]\npath = \"app.pid\"\n\
        [[prune]]\nglob = \"*.log\"\nolder_than = \"1d\"\n\
        [[command]]\nname = \"tool\"\nrun = \"true\"\n\
        [disk]\nmin_free = \"0\"\n";

    fn ids(root: &Root, selection: Selection) -> Vec<String> {
        let found = run_all(&root.manifest(ALL), &CheckOptions::default(), &selection).unwrap();
        let mut ids: Vec<String> =
            found.problems.iter().map(|f| f.id.clone()).chain(found.passed.iter().map(|p| p.id.clone())).collect();
        ids.sort();
        ids
    }

    #[test]
    fn fs_only_keeps_runtime_files_and_db_only_drops_all_runtime_checks() {
        let root = Root::new();
        let fs_only = ids(&root, Selection { fs_only: true, ..Selection::default() });
        assert_eq!(fs_only, ["heartbeat:beat", "lock:*.lock", "pidfile:app.pid", "prune:*.log"]);
        assert!(ids(&root, Selection { db_only: true, ..Selection::default() }).is_empty());
        let all = ids(&root, Selection::default());
        assert!(all.contains(&"command:tool".to_string()) && all.contains(&"disk".to_string()));
    }
}

/// The same rows through the real binary: exit codes, plan lines, JSON.
mod cli {
    use super::*;

    const RUNTIME: &str = "[[lock]]\nglob = \"state/*.lock\"\nstale_after = \"5m\"\n\
        [[heartbeat]]\npath = \"state/beat\"\nmax_age = \"10m\"\n\
        [[pidfile]]\npath = \"run/app.pid\"\n\
        [[prune]]\nglob = \"logs/*.log\"\nolder_than = \"14d\"\n";

    fn messy(root: &Root) {
        root.write("state/a.lock", &format!("{}\n", dead_pid()));
        root.write("run/app.pid", &format!("{}\n", dead_pid()));
        for i in 0..5 {
            let rel = format!("logs/{i}.log");
            root.write(&rel, "x");
            root.age(&rel, -30 * 24 * 3600);
        }
    }

    #[test]
    fn dry_run_lists_every_file_and_changes_nothing() {
        let root = Root::new();
        messy(&root);
        root.write("preflight.toml", &format!("version = 1\n{RUNTIME}"));
        let before = root.t.snapshot();
        let run = root.t.run(&["heal", "--dry-run", "--format", "json"]);
        assert_eq!(run.code, 1, "a stale lock is critical: {}", run.all_output());
        let plan = run.json()["plan"].to_string();
        for i in 0..5 {
            assert!(plan.contains(&format!("remove logs/{i}.log")), "{plan}");
        }
        assert!(plan.contains("touch state/beat") && plan.contains("remove state/a.lock"), "{plan}");
        assert_eq!(before, root.t.snapshot());
    }

    #[test]
    fn heal_clears_runtime_debris_then_changes_nothing_more() {
        let root = Root::new();
        messy(&root);
        let run = root.cli(RUNTIME, &["validate", "--format", "json"]);
        assert_eq!(run.code, 1);
        let json = run.json();
        let findings = json["findings"].as_array().unwrap();
        assert!(findings.iter().all(|f| f["area"] == "runtime"));
        assert!(findings.iter().any(|f| f["id"] == "lock:state/a.lock" && f["severity"] == "critical"));
        let healed = root.cli(RUNTIME, &["heal"]);
        assert_eq!(healed.code, 0, "{}", healed.all_output());
        assert!(!root.exists("state/a.lock") && !root.exists("run/app.pid") && !root.exists("logs/0.log"));
        let snapshot = root.t.snapshot();
        assert_eq!(root.cli(RUNTIME, &["heal"]).code, 0);
        assert_eq!(snapshot, root.t.snapshot(), "a second heal changes nothing");
    }

    #[test]
    fn no_commands_and_fs_only_never_run_a_command() {
        let root = Root::new();
        let body = "[[command]]\nname = \"tool\"\nrun = \"sh -c 'touch ran; exit 1'\"\n";
        assert_eq!(root.cli(body, &["validate", "--no-commands"]).code, 0);
        assert_eq!(root.cli(body, &["validate", "--fs-only"]).code, 0);
        assert!(!root.exists("ran"));
        let run = root.cli(body, &["validate"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("command:tool") && root.exists("ran"), "{}", run.stdout);
    }

    #[test]
    fn a_command_check_runs_with_sigxfsz_at_its_default() {
        // preflight ignores SIGXFSZ for its own writes; the tools it runs
        // must not inherit that (an ignored signal survives exec).
        let root = Root::new();
        let body = "[[command]]\nname = \"tool\"\nrun = \"sh -c 'grep SigIgn /proc/self/status > ignored'\"\n";
        assert_eq!(root.cli(body, &["validate"]).code, 0);
        let text = root.t.read("ignored");
        let mask = u64::from_str_radix(text.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(mask & (1 << (libc::SIGXFSZ - 1)), 0, "{text}");
    }

    #[test]
    fn a_live_pidfile_blocks_the_launch_until_terminated() {
        let root = Root::new();
        let mut child = ChildGuard::spawn_and_wait_for_exec(Command::new("sleep").arg("62"));
        root.write("run/app.pid", &child.id().to_string());
        let critical = "[[pidfile]]\npath = \"run/app.pid\"\n";
        assert_eq!(root.cli(critical, &["heal"]).code, 1);
        let terminate = "[[pidfile]]\npath = \"run/app.pid\"\non_running = \"terminate\"\nmatch = \"sleep 62\"\n";
        let run = root.cli(terminate, &["heal"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert!(child.wait().unwrap().code().is_none(), "ended by a signal");
    }

    #[test]
    fn the_example_runtime_entries_load_and_run() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pricing-app");
        let manifest = fs::read_to_string(example.join("preflight.toml")).unwrap();
        let root = Root::new();
        root.write("preflight.toml", &manifest);
        for schema in fs::read_dir(example.join("schemas")).unwrap() {
            let schema = schema.unwrap();
            let name = format!("schemas/{}", schema.file_name().to_string_lossy());
            root.write(&name, &fs::read_to_string(schema.path()).unwrap());
        }
        let run = root.t.run(&["heal", "--no-commands", "--fs-only", "--only", "heartbeat:", "--only", "lock:"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        assert!(root.exists("state/heartbeats/engine"));
    }
}
