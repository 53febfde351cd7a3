//! SQLite heal through the real binary on temporary roots with real
//! database files: what a schema file may hold, steps that fail alone,
//! data fixes under foreign keys, rebuilds that keep every value, renames,
//! backfills and expected drift.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{Run, TestDir};
use rusqlite::Connection;

const DB: &str = "app/data.db";

/// A root with one `[[database]]`: the live file built from `old` and
/// `rows`, the desired schema `ddl`, and `extra` manifest lines.
struct Db {
    t: TestDir,
}

impl Db {
    fn new(ddl: &str, old: &str, rows: &str, extra: &str) -> Db {
        let t = TestDir::with_manifest(&format!(
            "version = 1\n[[database]]\npath = \"{DB}\"\nschema = \"schemas/app.sql\"\n{extra}"
        ));
        t.write("schemas/app.sql", ddl);
        t.mkdir("app");
        if !old.is_empty() {
            let conn = Connection::open(t.join(DB)).unwrap();
            conn.execute_batch(old).unwrap();
            conn.execute_batch(rows).unwrap();
        }
        Db { t }
    }

    fn db(&self) -> PathBuf {
        self.t.join(DB)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.t.run(args)
    }

    /// `heal` (or another command) with `--format json`, parsed.
    fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let run = self.run(&all);
        (run.code, run.json())
    }

    fn conn(&self) -> Connection {
        Connection::open(self.db()).unwrap()
    }

    /// The first column of every row of `sql`, as text.
    fn strings(&self, sql: &str) -> Vec<String> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
            .unwrap()
            .map(|v| match v.unwrap() {
                rusqlite::types::Value::Null => "NULL".to_string(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Real(f) => f.to_string(),
                rusqlite::types::Value::Text(s) => s,
                rusqlite::types::Value::Blob(b) => format!("{b:?}"),
            })
            .collect();
        rows
    }

    fn count(&self, table: &str) -> i64 {
        self.conn().query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)).unwrap()
    }
}

/// The actions of a JSON heal report, as (id, outcome, detail).
fn actions(doc: &serde_json::Value) -> Vec<(String, String, String)> {
    doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("outcome"), s("detail"))
        })
        .collect()
}

fn action<'a>(list: &'a [(String, String, String)], id: &str) -> &'a (String, String, String) {
    list.iter().find(|a| a.0 == id).unwrap_or_else(|| panic!("no action {id} in {list:#?}"))
}

/// The findings of a JSON report (`findings` or `after`), by ID.
fn finding<'a>(doc: &'a serde_json::Value, list: &str, id: &str) -> &'a serde_json::Value {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id} in {list}: {doc:#}"))
}

fn finding_ids(doc: &serde_json::Value, list: &str) -> Vec<String> {
    doc[list].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
}

// ---------------------------------------------------------------- 1. a schema file holds declarations

#[test]
fn a_schema_file_that_writes_the_schema_table_is_refused_and_nothing_runs() {
    let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);\nCREATE TABLE audit(m TEXT);\n\
               PRAGMA writable_schema=ON;\n\
               INSERT INTO sqlite_schema (type, name, tbl_name, rootpage, sql) VALUES ('view', 'v', 'v', 0, 'DELETE FROM users');\n";
    let db = Db::new(
        ddl,
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);",
        "INSERT INTO users(name) VALUES ('ann'), ('bob');",
        "",
    );
    let before = fs::read(db.db()).unwrap();
    for args in [&["validate"][..], &["heal"], &["heal", "--dry-run"], &["heal", "--allow-rebuild"]] {
        let run = db.run(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.all_output());
        for part in ["schemas/app.sql", "line 3", "PRAGMA writable_schema=ON", "refused"] {
            assert!(run.stderr.contains(part), "{args:?}: {part} missing from {}", run.stderr);
        }
    }
    assert_eq!(fs::read(db.db()).unwrap(), before, "the database is untouched");
    assert_eq!(db.count("users"), 2);
    assert!(!db.t.exists(".preflight"), "nothing was written");
}

#[test]
fn statements_that_change_data_or_objects_are_refused_with_their_line() {
    for (statement, why) in [
        ("DELETE FROM users;", "deletes rows from users"),
        ("UPDATE users SET name = 'x';", "neither a declaration"),
        ("DROP TABLE users;", "DROP"),
        ("ALTER TABLE users ADD COLUMN x;", "ALTER TABLE"),
        ("BEGIN TRANSACTION;", "transaction control"),
        ("ATTACH 'other.db' AS o;", "ATTACH"),
        ("CREATE TEMP TABLE scratch(a);", "TEMP"),
    ] {
        let ddl = format!("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);\n\n{statement}\n");
        let db = Db::new(&ddl, "CREATE TABLE users(id INTEGER PRIMARY KEY);", "INSERT INTO users VALUES (1);", "");
        let run = db.run(&["heal"]);
        assert_eq!(run.code, 1, "{statement}: {}", run.all_output());
        assert!(run.stderr.contains("line 3") && run.stderr.contains(why), "{statement}: {}", run.stderr);
        assert_eq!(db.count("users"), 1);
        assert_eq!(db.strings("SELECT count(*) FROM pragma_table_info('users')"), ["1"], "no column was added");
    }
}

#[test]
fn seed_rows_are_applied_when_heal_creates_their_table_and_shown_in_the_plan() {
    let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, role_id INT);\n\
               CREATE TABLE roles(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n\
               INSERT INTO roles(id, name) VALUES (1, 'admin'), (2, 'member');\n\
               CREATE INDEX roles_name ON roles(name);\n";
    let db = Db::new(
        ddl,
        "CREATE TABLE users(id INTEGER PRIMARY KEY, role_id INT);",
        "INSERT INTO users VALUES (7, 2);",
        "",
    );
    let dry = db.run(&["heal", "--dry-run"]);
    assert!(dry.stdout.contains("INSERT INTO roles(id, name) VALUES (1, 'admin'), (2, 'member');"), "{}", dry.stdout);
    let (code, doc) = db.json(&["heal"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(db.strings("SELECT name FROM roles ORDER BY id"), ["admin", "member"]);
    // Already there: the rows are not inserted again, the user's are kept.
    db.conn().execute("UPDATE roles SET name = 'owner' WHERE id = 1", []).unwrap();
    let (code, doc) = db.json(&["heal"]);
    assert_eq!((code, actions(&doc).len()), (0, 0), "{doc:#}");
    assert_eq!(db.strings("SELECT name FROM roles ORDER BY id"), ["owner", "member"]);
    // A database heal creates gets them too.
    fs::remove_file(db.db()).unwrap();
    assert_eq!(db.run(&["heal"]).code, 0);
    assert_eq!(db.strings("SELECT name FROM roles ORDER BY id"), ["admin", "member"]);
    assert_eq!(db.run(&["validate", "--strict"]).code, 0);
}

// ---------------------------------------------------------------- 2. steps that fail alone

#[test]
fn a_unique_index_over_duplicates_does_not_hold_back_the_critical_fixes() {
    let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, totp_secret TEXT);\n\
               CREATE TABLE sessions(id INTEGER PRIMARY KEY, user_id INT);\n\
               CREATE UNIQUE INDEX users_email ON users(email);\n";
    let rows = "INSERT INTO users(email) VALUES ('a@x'), ('a@x'), ('b@x'), ('c@x'), ('c@x'), ('c@x');";
    let db = Db::new(ddl, "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT);", rows, "");
    let validate = db.run(&["validate"]);
    let line = validate.stdout.lines().find(|l| l.contains("index:users_email")).unwrap().to_string();
    assert!(line.contains("duplicate values ('c@x') ×3, ('a@x') ×2"), "{line}");
    assert!(!line.contains("[fixable]"), "a fix known to fail is not offered: {line}");
    let (code, doc) = db.json(&["heal"]);
    assert_eq!(code, 2, "only the index warning remains: {doc:#}");
    let done = actions(&doc);
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(done.iter().all(|a| a.1 == "done"), "{done:#?}");
    assert_eq!(finding_ids(&doc, "after"), ["db:app/data.db:index:users_email"]);
    assert_eq!(finding(&doc, "after", "db:app/data.db:index:users_email")["fixable"], false);
    assert_eq!(db.run(&["run", "--", "true"]).code, 0, "the application starts");
}

// ---------------------------------------------------------------- 3. data fixes with foreign keys enforced

#[test]
fn a_data_fix_runs_with_foreign_keys_enforced_even_beside_a_rebuild() {
    let ddl = "CREATE TABLE parent(id INTEGER PRIMARY KEY, code TEXT UNIQUE);\n\
               CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent(id), state TEXT);\n";
    let old = "CREATE TABLE parent(id INTEGER PRIMARY KEY);\n\
               CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent(id), state TEXT);";
    let rows = "INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (1, 1, 'stale'), (2, 2, 'ok');";
    let check =
        "[[database.check]]\nname = \"no stale children\"\nsql = \"SELECT id FROM child WHERE state = 'stale'\"\n\
                 fix = \"UPDATE child SET parent_id = 99, state = 'ok' WHERE state = 'stale'\"\n";
    let db = Db::new(ddl, old, rows, check);
    let dry = db.run(&["heal", "--dry-run"]);
    let plan = dry.stdout.clone();
    let fix_at = plan.find("UPDATE child SET parent_id = 99").unwrap();
    assert!(
        plan[..fix_at].rfind("PRAGMA foreign_keys=ON;") > plan[..fix_at].rfind("PRAGMA foreign_keys=OFF;"),
        "{plan}"
    );
    let (_, doc) = db.json(&["heal"]);
    let done = actions(&doc);
    assert_eq!(action(&done, "db:app/data.db:table:parent:column:code").1, "done", "{done:#?}");
    let fix = action(&done, "db:app/data.db:check:no stale children");
    assert_eq!(fix.1, "failed", "{done:#?}");
    assert!(fix.2.contains("FOREIGN KEY constraint failed"), "{}", fix.2);
    assert_eq!(db.strings("SELECT parent_id || state FROM child ORDER BY id"), ["1stale", "2ok"]);
    assert!(db.strings("SELECT * FROM pragma_foreign_key_check").is_empty());
}

#[test]
fn a_data_fix_that_breaks_a_deferred_foreign_key_is_undone_alone() {
    let ddl = "CREATE TABLE parent(id INTEGER PRIMARY KEY);\n\
               CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED, state TEXT, note TEXT);\n";
    let old = "CREATE TABLE parent(id INTEGER PRIMARY KEY);\n\
               CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED, state TEXT);";
    let rows = "INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1, 'stale');";
    let check = "[[database.check]]\nname = \"stale\"\nsql = \"SELECT id FROM child WHERE state = 'stale'\"\n\
                 fix = \"UPDATE child SET parent_id = 42, state = 'ok'\"\n";
    let db = Db::new(ddl, old, rows, check);
    let (_, doc) = db.json(&["heal"]);
    let done = actions(&doc);
    assert_eq!(action(&done, "db:app/data.db:table:child:column:note").1, "done", "{done:#?}");
    let fix = action(&done, "db:app/data.db:check:stale");
    assert_eq!(fix.1, "failed");
    assert!(fix.2.contains("foreign_key_check reports 1 new violation"), "{}", fix.2);
    assert_eq!(db.strings("SELECT parent_id || state FROM child"), ["1stale"]);
}
