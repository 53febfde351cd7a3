//! SQLite heal through the real binary on temporary roots with real
//! database files (the library-level tests are in `sqlite`): what a schema file may hold, steps that fail alone,
//! data fixes under foreign keys, rebuilds that keep every value, renames,
//! backfills and expected drift.

use std::fs;
use std::path::PathBuf;

use rusqlite::Connection;

use crate::support::{Run, TestDir};

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
               CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INT);\n\
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

// ---------------------------------------------------------------- 4. rebuilds keep every value

#[test]
fn a_stored_generated_column_made_plain_keeps_its_values_and_the_count_is_true() {
    let ddl =
        "CREATE TABLE lines(id INTEGER PRIMARY KEY, qty INT, price INT, total INT, note TEXT NOT NULL DEFAULT '');\n";
    let old = "CREATE TABLE lines(id INTEGER PRIMARY KEY, qty INT, price INT, total INT GENERATED ALWAYS AS (qty * price) STORED, note TEXT);";
    let db = Db::new(ddl, old, "INSERT INTO lines(qty, price, note) VALUES (2, 5, 'a'), (3, 7, 'b');", "");
    let (code, doc) = db.json(&["heal", "--allow-rebuild"]);
    assert_eq!(code, 0, "{doc:#}");
    let detail = &actions(&doc)[0].2;
    assert!(detail.starts_with("2 rows copied"), "{detail}");
    assert_eq!(db.strings("SELECT total FROM lines ORDER BY id"), ["10", "21"]);
}

#[test]
fn a_column_made_generated_is_rebuilt_only_when_its_values_stay_the_same() {
    let ddl = "CREATE TABLE lines(id INTEGER PRIMARY KEY, qty INT, price INT, total INT GENERATED ALWAYS AS (qty * price) STORED);\n";
    let old = "CREATE TABLE lines(id INTEGER PRIMARY KEY, qty INT, price INT, total INT);";
    let same = Db::new(ddl, old, "INSERT INTO lines VALUES (1, 2, 5, 10), (2, 3, 7, 21);", "");
    assert_eq!(same.run(&["heal", "--allow-rebuild"]).code, 0);
    let differs = Db::new(ddl, old, "INSERT INTO lines VALUES (1, 2, 5, 10), (2, 3, 7, 99);", "");
    let (code, doc) = differs.json(&["heal", "--allow-rebuild"]);
    assert_eq!(code, 2, "{doc:#}");
    let detail = &actions(&doc)[0].2;
    assert!(detail.contains("1 rows of \"total\" would change"), "{detail}");
    assert_eq!(differs.strings("SELECT total FROM lines ORDER BY id"), ["10", "99"], "the stored value is kept");
}

#[test]
fn rowids_hidden_by_columns_refuse_the_rebuild_and_a_free_name_keeps_them() {
    let ddl = "CREATE TABLE t(rowid TEXT, _rowid_ TEXT, oid TEXT, a INTEGER);\n";
    let old = "CREATE TABLE t(rowid TEXT, _rowid_ TEXT, oid TEXT, a TEXT);";
    let hidden = Db::new(ddl, old, "", "");
    hidden.conn().execute_batch("INSERT INTO t VALUES ('r', 'u', 'o', '1'), ('r2', 'u2', 'o2', '2');").unwrap();
    hidden.conn().execute_batch("DELETE FROM t WHERE a = '1';").unwrap();
    let (code, doc) = hidden.json(&["heal", "--allow-rebuild"]);
    assert_eq!(code, 2, "{doc:#}");
    assert!(actions(&doc).is_empty(), "{doc:#}");
    let message = finding(&doc, "findings", "db:app/data.db:table:t:column:a")["message"].as_str().unwrap();
    assert!(message.contains("hide its rowids"), "{message}");

    let ddl = "CREATE TABLE t(rowid TEXT, oid TEXT, a INTEGER);\n";
    let db = Db::new(ddl, "CREATE TABLE t(rowid TEXT, oid TEXT, a TEXT);", "", "");
    db.conn()
        .execute_batch("INSERT INTO t(_rowid_, rowid, oid, a) VALUES (5, 'r5', 'o5', '1'), (9, 'r9', 'o9', '2');")
        .unwrap();
    let (code, doc) = db.json(&["heal", "--allow-rebuild"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(db.strings("SELECT _rowid_ || rowid || oid || a FROM t ORDER BY _rowid_"), ["5r5o51", "9r9o92"]);
}

#[test]
fn an_autoincrement_rebuild_reports_the_rows_it_copied() {
    let ddl = "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, tag TEXT UNIQUE);\n";
    let db = Db::new(
        ddl,
        "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);",
        "INSERT INTO jobs(name) VALUES ('a'), ('b'), ('c'), ('d'); DELETE FROM jobs WHERE id = 4;",
        "",
    );
    let (code, doc) = db.json(&["heal"]);
    assert_eq!(code, 0, "{doc:#}");
    let done = actions(&doc);
    let detail = &action(&done, "db:app/data.db:table:jobs:column:tag").2;
    assert!(detail.starts_with("3 rows copied"), "{detail}");
    db.conn().execute("INSERT INTO jobs(name) VALUES ('e')", []).unwrap();
    assert_eq!(db.strings("SELECT max(id) FROM jobs"), ["5"]);
}

// ---------------------------------------------------------------- 5. renames and backfills

const MEMOS_OLD: &str = "CREATE TABLE memo(id INTEGER PRIMARY KEY, content TEXT NOT NULL);
    CREATE TABLE resource(id INTEGER PRIMARY KEY, filename TEXT NOT NULL, memo_id INT REFERENCES memo(id));
    CREATE INDEX resource_memo ON resource(memo_id);
    CREATE TABLE reaction(id INTEGER PRIMARY KEY, content_id TEXT NOT NULL, reaction_type TEXT NOT NULL);
    CREATE VIEW reactions_per_memo AS SELECT content_id, count(*) AS n FROM reaction GROUP BY content_id;
    CREATE TABLE idp(id INTEGER PRIMARY KEY, name TEXT NOT NULL);";

const MEMOS_NEW: &str = "CREATE TABLE memo(id INTEGER PRIMARY KEY, content TEXT NOT NULL);
    CREATE TABLE attachment(id INTEGER PRIMARY KEY, filename TEXT NOT NULL, memo_id INT REFERENCES memo(id));
    CREATE INDEX resource_memo ON attachment(memo_id);
    CREATE TABLE reaction(id INTEGER PRIMARY KEY, memo_id TEXT NOT NULL, reaction_type TEXT NOT NULL);
    CREATE VIEW reactions_per_memo AS SELECT memo_id, count(*) AS n FROM reaction GROUP BY memo_id;
    CREATE TABLE idp(id INTEGER PRIMARY KEY, name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE);";

const MEMOS_ROWS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
    INSERT INTO memo SELECT i, 'memo ' || i FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
    INSERT INTO resource SELECT i, 'file' || i || '.png', i FROM n;
    INSERT INTO reaction VALUES (1, 'memos/1', '👍'), (2, 'memos/1', '🎉'), (3, 'memos/7', '👍');
    INSERT INTO idp VALUES (1, 'github'), (2, 'google');";

const MEMOS_RENAMES: &str = "[[database.rename]]\nfrom = \"resource\"\nto = \"attachment\"\n\
    [[database.rename]]\nfrom = \"reaction.content_id\"\nto = \"reaction.memo_id\"\n";

#[test]
fn renames_are_applied_in_place_and_a_backfill_fills_a_unique_not_null_column() {
    let backfill = "[[database.backfill]]\ncolumn = \"idp.uid\"\nvalue = \"lower(hex(randomblob(8)))\"\n";
    let db = Db::new(MEMOS_NEW, MEMOS_OLD, MEMOS_ROWS, &format!("{MEMOS_RENAMES}{backfill}"));
    let (code, doc) = db.json(&["validate"]);
    assert_eq!(code, 1);
    assert!(!db.t.exists(".preflight") && !db.t.exists("app/data.db-wal"), "validate leaves no trace");
    let ids = finding_ids(&doc, "findings");
    assert_eq!(
        ids,
        [
            "db:app/data.db:table:resource",
            "db:app/data.db:table:reaction:column:content_id",
            "db:app/data.db:table:idp:column:uid",
            // SQLite rewrote the view's text when it renamed the column: recreated from the DDL.
            "db:app/data.db:view:reactions_per_memo"
        ],
        "{doc:#}"
    );
    for id in &ids[..3] {
        let f = finding(&doc, "findings", id);
        assert_eq!((f["severity"].as_str(), f["fixable"].as_bool()), (Some("critical"), Some(true)), "{f}");
    }
    let dry = db.run(&["heal", "--dry-run"]);
    assert!(dry.stdout.contains("ALTER TABLE \"resource\" RENAME TO \"attachment\";"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("ALTER TABLE \"reaction\" RENAME COLUMN \"content_id\" TO \"memo_id\";"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("(lower(hex(randomblob(8))))"), "{}", dry.stdout);

    let (code, doc) = db.json(&["heal"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(actions(&doc).iter().all(|a| a.1 == "done"), "{doc:#}");
    assert_eq!(db.count("attachment"), 50);
    assert_eq!(db.strings("SELECT count(*) FROM sqlite_schema WHERE name = 'resource'"), ["0"]);
    assert_eq!(db.strings("SELECT filename FROM attachment WHERE id = 50"), ["file50.png"]);
    assert_eq!(db.strings("SELECT memo_id FROM reaction ORDER BY id"), ["memos/1", "memos/1", "memos/7"]);
    assert_eq!(db.strings("SELECT n FROM reactions_per_memo ORDER BY memo_id"), ["2", "1"]);
    assert_eq!(db.strings("SELECT count(DISTINCT uid) || '/' || count(*) FROM idp WHERE length(uid) = 16"), ["2/2"]);
    assert_eq!(db.run(&["validate", "--strict"]).code, 0);
}

#[test]
fn without_a_backfill_the_advice_names_it_and_a_rename_onto_an_existing_name_is_refused() {
    let db = Db::new(MEMOS_NEW, MEMOS_OLD, MEMOS_ROWS, MEMOS_RENAMES);
    let (_, doc) = db.json(&["validate"]);
    let uid = finding(&doc, "findings", "db:app/data.db:table:idp:column:uid");
    let message = uid["message"].as_str().unwrap();
    assert_eq!(uid["fixable"], false);
    assert!(message.contains("[[database.backfill]] column = \"idp.uid\""), "{message}");
    assert!(message.contains("a DEFAULT would give every row the same value, which UNIQUE refuses"), "{message}");

    let both = Db::new(MEMOS_NEW, &format!("{MEMOS_OLD} CREATE TABLE attachment(x);"), MEMOS_ROWS, MEMOS_RENAMES);
    let (_, doc) = both.json(&["heal"]);
    let refused = finding(&doc, "after", "db:app/data.db:table:resource");
    assert_eq!(finding_ids(&doc, "after").iter().filter(|id| id.ends_with(":table:resource")).count(), 1);
    assert_eq!((refused["severity"].as_str(), refused["fixable"].as_bool()), (Some("critical"), Some(false)));
    assert!(refused["message"].as_str().unwrap().contains("both names exist"), "{refused}");
    assert_eq!(both.count("resource"), 50, "nothing is merged or dropped");
    assert_eq!(both.strings("SELECT memo_id FROM reaction ORDER BY id"), ["memos/1", "memos/1", "memos/7"]);
}

// ---------------------------------------------------------------- 6. expected drift

#[test]
fn ignored_drift_is_not_reported_so_strict_passes_on_a_converged_install() {
    let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT);\n";
    let old = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, old_flag INT, Legacy_Note TEXT);
               CREATE TABLE migration_history(version INT);
               CREATE TABLE legacy_orders(id INT, total REAL);
               CREATE INDEX legacy_orders_total ON legacy_orders(total);
               CREATE TRIGGER legacy_audit AFTER INSERT ON legacy_orders BEGIN SELECT 1; END;
               CREATE VIEW legacy_view AS SELECT * FROM legacy_orders;
               CREATE TABLE surprise(x);";
    let strict = |extra: &str| {
        let db = Db::new(ddl, old, "INSERT INTO users VALUES (1, 'a@x', 1, 'n');", extra);
        let (code, doc) = db.json(&["validate", "--strict"]);
        (code, finding_ids(&doc, "findings"))
    };
    let (code, ids) = strict("");
    assert_eq!((code, ids.len()), (1, 8), "{ids:#?}");
    let ignore = "ignore = [\"migration_history\", \"legacy_*\", \"users.old_flag\", \"USERS.legacy_*\"]\n";
    assert_eq!(strict(ignore), (1, vec!["db:app/data.db:table:surprise".to_string()]));
    let (code, ids) = strict(
        "ignore = [\"migration_history\", \"legacy_*\", \"users.old_flag\", \"users.legacy_note\", \"surprise\"]\n",
    );
    assert_eq!((code, ids), (0, Vec::<String>::new()));
}

// ---------------------------------------------------------------- 7. bounded backups, watch's breaker

/// `preflight ARGS -m …` in the root with extra environment variables.
fn run_env(t: &TestDir, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_preflight"));
    command.args(args).args(["-m", t.join("preflight.toml").to_str().unwrap()]).current_dir(t.path());
    command.env("NO_COLOR", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn backup_runs(t: &TestDir) -> usize {
    fs::read_dir(t.join(".preflight/backups")).map(|d| d.count()).unwrap_or(0)
}

const STALE_DDL: &str = "CREATE TABLE jobs(id INTEGER PRIMARY KEY, state TEXT);\n";
const STALE_ROWS: &str = "INSERT INTO jobs(state) VALUES ('stale'), ('ok');";

fn stale_check(fix: &str) -> String {
    format!(
        "[[database.check]]\nname = \"stale\"\nsql = \"SELECT id FROM jobs WHERE state = 'stale'\"\nfix = \"{fix}\"\n"
    )
}

#[test]
fn a_failed_heal_keeps_no_backup_of_its_own() {
    let db = Db::new(STALE_DDL, STALE_DDL, STALE_ROWS, &stale_check("UPDATE jobs SET state = 'stale'"));
    for _ in 0..3 {
        let (code, doc) = db.json(&["heal"]);
        assert_eq!(code, 1);
        assert_eq!(actions(&doc)[0].1, "failed", "{doc:#}");
        let after = finding(&doc, "after", "db:app/data.db:check:stale");
        assert_eq!(after["fixable"], false, "a fix that just failed is not offered again: {after}");
    }
    assert_eq!(backup_runs(&db.t), 0, "three failed runs, no backup kept");
    let history = fs::read_to_string(db.t.join(".preflight/history.jsonl")).unwrap();
    assert!(!history.contains("\"saved\""), "{history}");
}

#[test]
fn backups_of_successful_runs_are_bounded_and_pruned_with_their_history() {
    let db =
        Db::new(STALE_DDL, STALE_DDL, STALE_ROWS, &stale_check("UPDATE jobs SET state = 'done' WHERE state = 'stale'"));
    let heal_again = |env: &[(&str, &str)]| {
        db.conn().execute("UPDATE jobs SET state = 'stale' WHERE id = 1", []).unwrap();
        let run = run_env(&db.t, env, &["heal"]);
        assert_eq!(run.code, 0, "{}", run.all_output());
        run
    };
    let first = heal_again(&[]);
    assert!(first.stdout.contains("backup ("), "the report gives the backup's size: {}", first.stdout);
    for _ in 0..6 {
        heal_again(&[]);
    }
    assert_eq!(backup_runs(&db.t), 5, "the default bound");
    heal_again(&[("PREFLIGHT_BACKUP_RUNS", "2")]);
    assert_eq!(backup_runs(&db.t), 2);
    heal_again(&[("PREFLIGHT_BACKUP_BYTES", "1")]);
    assert_eq!(backup_runs(&db.t), 1, "the newest is kept whatever its size");
    heal_again(&[("PREFLIGHT_HISTORY_RUNS", "1")]);
    assert_eq!(backup_runs(&db.t), 1);
    // The kept backup is the last run's: rollback still restores it.
    let rollback = db.run(&["rollback"]);
    assert_eq!(rollback.code, 0, "{}", rollback.all_output());
    assert_eq!(db.strings("SELECT state FROM jobs ORDER BY id"), ["stale", "ok"]);
}

mod watch {
    use super::*;
    use crate::support::{eventually, Watch};

    #[test]
    fn failed_attempts_trip_the_breaker_and_leave_no_backups() {
        let db = Db::new(STALE_DDL, STALE_DDL, STALE_ROWS, &stale_check("UPDATE jobs SET state = 'stale'"));
        let watch = Watch::start(&db.t, &["--interval", "50ms", "--max-heals", "3", "--cooldown", "0s"]);
        eventually("the breaker trips", || watch.output().contains("flapping"));
        eventually("the held fix is said", || watch.output().contains("held back by the circuit breaker"));
        let output = watch.output();
        assert!(output.contains("tried 3 times (3 failed) in the last hour; not healed again"), "{output}");
        assert_eq!(watch.stop().code, 0);
        let stats = db.run(&["history", "--stats", "--json"]).json();
        assert_eq!((stats["stats"][0]["failed"].as_u64(), stats["stats"][0]["tripped"].as_u64()), (Some(3), Some(1)));
        assert_eq!(backup_runs(&db.t), 0);
    }

    #[test]
    fn a_fix_held_back_by_the_cooldown_is_said_in_json() {
        let db = Db::new(STALE_DDL, STALE_DDL, STALE_ROWS, &stale_check("UPDATE jobs SET state = 'stale'"));
        let watch = Watch::start(&db.t, &["--interval", "50ms", "--cooldown", "1h", "--format", "json"]);
        eventually("a held action", || watch.output().contains("\"outcome\": \"held\""));
        let text = watch.stop().stdout;
        let docs: Vec<serde_json::Value> =
            serde_json::Deserializer::from_str(&text).into_iter().collect::<Result<_, _>>().unwrap();
        let held = docs.iter().flat_map(|d| d["actions"].as_array().unwrap().iter()).find(|a| a["outcome"] == "held");
        let detail = held.unwrap()["detail"].as_str().unwrap();
        assert!(detail.contains("held back by the cooldown: last attempt"), "{detail}");
        let stats = db.run(&["history", "--stats", "--json"]).json();
        assert_eq!(stats["stats"][0]["failed"].as_u64(), Some(1), "tried once, then held");
    }
}

// ---------------------------------------------------------------- 8. messages

#[test]
fn an_index_that_differs_says_how() {
    let ddl = "CREATE TABLE t(a INT, b TEXT, c INT);
               CREATE UNIQUE INDEX t_a ON t(a, b DESC);
               CREATE INDEX t_b ON t(b COLLATE NOCASE);
               CREATE INDEX t_c ON t(c) WHERE c > 0;
               CREATE INDEX t_d ON t(c) WHERE c > 10;";
    let old = "CREATE TABLE t(a INT, b TEXT, c INT);
               CREATE INDEX t_a ON t(a);
               CREATE INDEX t_b ON t(b);
               CREATE INDEX t_c ON t(c);
               CREATE INDEX t_d ON t(c) WHERE c > 5;";
    let db = Db::new(ddl, old, "", "");
    let (_, doc) = db.json(&["validate"]);
    let message = |id: &str| finding(&doc, "findings", id)["message"].as_str().unwrap().to_string();
    let a = message("db:app/data.db:index:t_a");
    assert!(a.contains("it is not UNIQUE, the schema says UNIQUE"), "{a}");
    assert!(a.contains("its columns are (\"a\"), the schema says (\"a\", \"b\" DESC)"), "{a}");
    let b = message("db:app/data.db:index:t_b");
    assert!(b.contains("the schema says (\"b\" COLLATE NOCASE)"), "{b}");
    let c = message("db:app/data.db:index:t_c");
    assert!(c.contains("it has no WHERE clause, the schema's has a WHERE clause"), "{c}");
    let d = message("db:app/data.db:index:t_d");
    assert!(d.contains("its WHERE clause or expressions differ") && d.contains("WHERE c > 5"), "{d}");
}

#[test]
fn a_rollback_reports_the_database_steps_it_undid_by_restoring_the_backup() {
    let ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, tag TEXT UNIQUE, note TEXT);\n\
               CREATE INDEX t_a ON t(a);\nCREATE TABLE u(x);\n";
    let db = Db::new(ddl, "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT);", "INSERT INTO t(a) VALUES ('x');", "");
    assert_eq!(db.run(&["heal"]).code, 0);
    let rollback = db.run(&["rollback"]);
    assert_eq!(rollback.code, 0, "{}", rollback.all_output());
    assert!(!rollback.stdout.contains("nothing was kept"), "{}", rollback.stdout);
    for id in ["db:app/data.db:table:u", "db:app/data.db:index:t_a"] {
        let line =
            rollback.stdout.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id}: {}", rollback.stdout));
        assert!(line.contains("undone") && line.contains("app/data.db is restored"), "{line}");
    }
    assert_eq!(db.strings("SELECT count(*) FROM sqlite_schema"), ["1"], "only the old table is left");
}

// ---------------------------------------------------------------- 9. disk budget of a rebuild

#[test]
fn a_rebuild_gives_the_freed_pages_back_and_the_report_gives_the_backup_size() {
    let ddl = "CREATE TABLE blobs(id INTEGER PRIMARY KEY, body TEXT, tag TEXT UNIQUE);\n";
    let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                INSERT INTO blobs(body) SELECT hex(randomblob(200)) FROM n;";
    let db = Db::new(ddl, "CREATE TABLE blobs(id INTEGER PRIMARY KEY, body TEXT);", rows, "");
    let before = fs::metadata(db.db()).unwrap().len();
    let (code, doc) = db.json(&["heal"]);
    assert_eq!(code, 0, "{doc:#}");
    let detail = &actions(&doc)[0].2;
    assert!(detail.starts_with("3000 rows copied"), "{detail}");
    assert!(detail.contains("VACUUM gave ") && detail.contains(" back to the file system"), "{detail}");
    assert!(detail.contains("; backup (1.") && detail.contains(" MiB) in .preflight/backups/"), "{detail}");
    assert_eq!(db.strings("PRAGMA freelist_count"), ["0"]);
    assert!(fs::metadata(db.db()).unwrap().len() <= before + 64 * 1024, "the file did not double");
}
