//! The bad-input matrix: inputs preflight must refuse or report without
//! touching anything. Every case runs `heal` and must exit 1, name the path
//! and the problem, and leave the disk byte-identical. All cases run even
//! when some fail; the failure lists every failing case.

use std::any::Any;
use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use crate::support::{Snapshot, TestDir};

struct Case {
    name: &'static str,
    manifest: String,
    setup: fn(&TestDir),
    /// Substrings the output must contain (the path, the problem).
    expect: &'static [&'static str],
}

fn case(name: &'static str, manifest: &str, setup: fn(&TestDir), expect: &'static [&'static str]) -> Case {
    Case { name, manifest: format!("version = 1\n{manifest}"), setup, expect }
}

fn nothing(_: &TestDir) {}

fn mkfifo(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
}

/// A character device (the kernel's null device) at `path`: never opened
/// for writing, never read as state. Creating one needs privileges; where
/// that fails, a FIFO (the other special file preflight must not open)
/// takes its place so the case still runs.
fn device_node(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; makedev(1, 3) is /dev/null's number.
    let made = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made != 0 {
        mkfifo(path);
    }
}

fn cases() -> Vec<Case> {
    let file = "[[file]]\npath = \"data/state.json\"\ndefault = { a = 1 }\n";
    let env = "[env]\ntemplate = \".env.example\"\n";
    let mut cases = vec![
        case(
            "env with binary content",
            "[env]\n",
            |t| {
                t.write(".env", b"A=sk-live-binary\n\xff\xfe\x00\x01");
            },
            &[".env", "UTF-8"],
        ),
        case(
            "env that is a directory",
            "[env]\n",
            |t| {
                t.mkdir(".env");
            },
            &[".env", "not a regular file"],
        ),
        case("env that is a fifo", "[env]\n", |t| mkfifo(&t.join(".env")), &[".env", "not a regular file"]),
        case(
            "env syntax error",
            "[env]\n",
            |t| {
                t.write(".env", "A=sk-live-syntax\nB C D\n");
            },
            &[".env", "line 2"],
        ),
        case(
            "env template missing",
            env,
            |t| {
                t.write(".env", "A=1\n");
            },
            &[".env.example", "missing"],
        ),
        case(
            "required key missing",
            "[env]\nrequired = [\"API_KEY\"]\n",
            |t| {
                t.write(".env", "A=1\n");
            },
            &["API_KEY", "missing"],
        ),
        case(
            "required key empty",
            "[env]\nrequired = [\"API_KEY\"]\n",
            |t| {
                t.write(".env", "API_KEY=\n");
            },
            &["API_KEY", "empty"],
        ),
        case(
            "directory where a file is expected",
            file,
            |t| {
                t.mkdir("data/state.json");
            },
            &["data/state.json", "not a regular file"],
        ),
        case(
            "file where a directory is expected",
            "[[dir]]\npath = \"data\"\n",
            |t| {
                t.write("data", "x");
            },
            &["dir:data", "not a directory"],
        ),
        case(
            "fifo at a file path",
            file,
            |t| {
                t.mkdir("data");
                mkfifo(&t.join("data/state.json"));
            },
            &["data/state.json", "not a regular file"],
        ),
        case(
            "fifo at a directory path",
            "[[dir]]\npath = \"data\"\n",
            |t| mkfifo(&t.join("data")),
            &["dir:data", "not a directory"],
        ),
        case(
            "json top level is an array",
            file,
            |t| {
                t.write("data/state.json", "[1]");
            },
            &["data/state.json", "an array"],
        ),
        case(
            "json top level is a string",
            file,
            |t| {
                t.write("data/state.json", "\"x\"");
            },
            &["data/state.json", "a string"],
        ),
        case(
            "symlink out of the root",
            file,
            |t| {
                std::os::unix::fs::symlink("/", t.join("data")).unwrap();
            },
            &["data", "outside the root"],
        ),
        case(
            "dangling symlink",
            file,
            |t| {
                std::os::unix::fs::symlink("/nonexistent/x", t.join("data")).unwrap();
            },
            &["data", "points nowhere"],
        ),
        case(
            "manifest of 10 MB with an error at the end",
            &format!("{}\nbogus = 1\n", "# padding padding padding padding padding\n".repeat(250_000)),
            nothing,
            &["preflight.toml:250003:", "unknown field `bogus`"],
        ),
    ];
    cases.push(case(
        "device node at a file path",
        file,
        |t| {
            t.mkdir("data");
            device_node(&t.join("data/state.json"));
        },
        &["data/state.json", "not a regular file"],
    ));
    cases.push(case(
        "device node at the env path",
        "[env]\n",
        |t| device_node(&t.join(".env")),
        &[".env", "not a regular file"],
    ));
    cases.extend(database_cases());
    for (name, manifest, needle) in MANIFEST_CASES {
        cases.push(Case { name, manifest: manifest.to_string(), setup: nothing, expect: needle });
    }
    cases
}

const DDL: &str = "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);";

fn database_cases() -> Vec<Case> {
    let db = "[[database]]\npath = \"app.db\"\nschema = \"s.sql\"\n";
    vec![
        case(
            "ddl that does not load",
            db,
            |t| {
                t.write("s.sql", "CREATE TABLE t(a;");
            },
            &["s.sql", "syntax error"],
        ),
        case("ddl file missing", db, nothing, &["s.sql", "No such file"]),
        case(
            "zero-byte database",
            db,
            |t| {
                t.write("s.sql", DDL).write("app.db", "");
            },
            &["db:app.db", "empty"],
        ),
        case(
            "database that is a directory",
            db,
            |t| {
                t.write("s.sql", DDL).mkdir("app.db");
            },
            &["db:app.db", "not a regular file"],
        ),
        case(
            "database that is not sqlite",
            db,
            |t| {
                t.write("s.sql", DDL).write("app.db", "hello, not a database at all");
            },
            &["db:app.db", "not a SQLite database"],
        ),
        case(
            "database that is a fifo",
            db,
            |t| {
                t.write("s.sql", DDL);
                mkfifo(&t.join("app.db"));
            },
            &["db:app.db", "not a regular file"],
        ),
    ]
}

/// Malformed manifests: (name, text, expected substrings).
const MANIFEST_CASES: &[(&str, &str, &[&str])] = &[
    ("empty manifest", "", &["preflight.toml:1:", "version"]),
    ("version as a string", "version = \"1\"\n", &["preflight.toml:1:", "invalid type"]),
    ("negative version", "version = -1\n", &["preflight.toml:1:", "version = 1"]),
    (
        "dir as a table instead of an array",
        "version = 1\n[dir]\npath = \"d\"\n",
        &["preflight.toml:2:", "invalid type"],
    ),
    ("env required not a list", "version = 1\n[env]\nrequired = \"A\"\n", &["preflight.toml:3:", "invalid type"]),
    (
        "env required with a space",
        "version = 1\n[env]\nrequired = [\"A B\"]\n",
        &["preflight.toml:3:", "not a valid variable name"],
    ),
    ("env file outside", "version = 1\n[env]\nfile = \"../.env\"\n", &["preflight.toml:3:", "leaves the root"]),
    ("mode too large", "version = 1\n[[dir]]\npath = \"d\"\nmode = \"77777\"\n", &["preflight.toml:4:", "octal"]),
    (
        "text default not a string",
        "version = 1\n[[file]]\npath = \"f\"\nformat = \"text\"\ndefault = 1\n",
        &["preflight.toml:3:", "must be a string"],
    ),
    (
        "writable not a bool",
        "version = 1\n[[file]]\npath = \"f\"\nwritable = \"yes\"\n",
        &["preflight.toml:4:", "invalid type"],
    ),
    ("root itself as a path", "version = 1\n[[dir]]\npath = \".\"\n", &["preflight.toml:3:", "root itself"]),
    (
        "lock glob absolute",
        "version = 1\n[[lock]]\nglob = \"/tmp/*.lock\"\nstale_after = \"5m\"\n",
        &["preflight.toml:3:", "absolute"],
    ),
    (
        "prune glob escaping",
        "version = 1\n[[prune]]\nglob = \"../*.log\"\nolder_than = \"1d\"\n",
        &["preflight.toml:3:", "leaves the root"],
    ),
    (
        "pidfile on_running unknown",
        "version = 1\n[[pidfile]]\npath = \"p\"\non_running = \"shrug\"\n",
        &["preflight.toml:4:", "unknown variant"],
    ),
    ("command without run", "version = 1\n[[command]]\nname = \"py\"\n", &["preflight.toml:2:", "missing field `run`"]),
    (
        "duplicate command",
        "version = 1\n[[command]]\nname = \"py\"\nrun = \"py\"\n[[command]]\nname = \"py\"\nrun = \"py\"\n",
        &["preflight.toml:6:", "declared twice"],
    ),
    (
        "database without schema",
        "version = 1\n[[database]]\npath = \"a.db\"\n",
        &["preflight.toml:2:", "missing field `schema`"],
    ),
    (
        "database check without sql",
        "version = 1\n[[database]]\npath = \"a.db\"\nschema = \"s.sql\"\n[[database.check]]\nname = \"x\"\n",
        &["preflight.toml:5:", "missing field `sql`"],
    ),
    ("duplicate table", "version = 1\n[env]\n[env]\n", &["preflight.toml:3:", "duplicate"]),
];

/// What is wrong with one case, one problem a line; empty when it holds.
fn case_problems(case: &Case) -> Vec<String> {
    let t = TestDir::with_manifest(&case.manifest);
    (case.setup)(&t);
    let before = t.snapshot();
    let run = t.run(&["heal"]);
    let output = run.all_output();
    let mut problems = Vec::new();
    if run.code != 1 {
        problems.push(format!("exit code {}, expected 1", run.code));
    }
    for needle in case.expect {
        if !output.contains(needle) {
            problems.push(format!("expected {needle:?} in the output"));
        }
    }
    let changed = changed_paths(&before, &t.snapshot());
    if !changed.is_empty() {
        problems.push(format!("the disk changed: {}", changed.join(", ")));
    }
    if !problems.is_empty() {
        problems.push(format!("output:\n{output}"));
    }
    problems
}

/// Every path added, removed, or with another mode or other bytes.
fn changed_paths(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let paths: BTreeSet<_> = before.keys().chain(after.keys()).collect();
    paths.into_iter().filter(|p| before.get(*p) != after.get(*p)).map(|p| p.display().to_string()).collect()
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("panicked: {text}")
}

/// Every case runs, whatever the others do; the test fails once at the
/// end, listing each failing case with all its problems.
#[test]
fn every_bad_input_exits_1_names_the_problem_and_changes_nothing() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases().into_iter().filter(|c| !c.expect.is_empty()) {
        // A panic (a setup that fails, a planted secret that reaches the
        // output) fails this case, not the rest of the matrix.
        let problems = panic::catch_unwind(AssertUnwindSafe(|| case_problems(&case)))
            .unwrap_or_else(|payload| vec![panic_message(payload)]);
        if !problems.is_empty() {
            let details: Vec<String> = problems.join("\n").lines().map(|l| format!("    {l}")).collect();
            failures.push(format!("- {}:\n{}", case.name, details.join("\n")));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} bad-input cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(checked >= 40, "the matrix shrank to {checked} cases");
}
