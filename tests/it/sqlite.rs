//! `[[database]]` end to end: real SQLite files in temporary roots, driven
//! through the library (manifest → checks → heal) and, at the end, through
//! the `preflight` binary. Each heal test builds a live database from an
//! older schema with rows, heals it, and compares it with a database built
//! fresh from the DDL, row by row.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use predicates::prelude::*;
use preflight::checks::{self, CheckOptions, Selection};
use preflight::finding::{Findings, Severity};
use preflight::heal::{self, HealResult};
use preflight::manifest::{self, Manifest};
use preflight::safety::{Outcome, Silent};
use rusqlite::types::Value;
use rusqlite::Connection;

const DB: &str = "app/data.db";

/// A temporary application root with one database and its DDL.
struct App {
    dir: tempfile::TempDir,
    checks: String,
}

impl App {
    /// A root whose desired schema is `ddl`; the live file does not exist yet.
    fn new(ddl: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("schemas")).unwrap();
        fs::create_dir_all(dir.path().join("app")).unwrap();
        fs::write(dir.path().join("schemas/app.sql"), ddl).unwrap();
        App { dir, checks: String::new() }
    }

    /// A root whose live database was built from `old` and filled by `rows`.
    fn with_live(ddl: &str, old: &str, rows: &str) -> App {
        let app = App::new(ddl);
        let conn = Connection::open(app.db()).unwrap();
        conn.execute_batch(old).unwrap();
        conn.execute_batch(rows).unwrap();
        app
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn db(&self) -> PathBuf {
        self.root().join(DB)
    }

    fn check(mut self, toml: &str) -> App {
        self.checks.push_str(toml);
        self
    }

    fn manifest_text(&self) -> String {
        format!("version = 1\n[[database]]\npath = \"{DB}\"\nschema = \"schemas/app.sql\"\n{}", self.checks)
    }

    fn manifest(&self) -> Manifest {
        manifest::load_str(Path::new("preflight.toml"), &self.manifest_text(), self.root()).unwrap()
    }

    /// The `preflight` binary, run in this root with its manifest written.
    fn cli(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        fs::write(self.root().join("preflight.toml"), self.manifest_text()).unwrap();
        assert_cmd::Command::cargo_bin("preflight").unwrap().current_dir(self.root()).args(args).assert()
    }

    fn validate(&self, allow_rebuild: bool) -> Findings {
        let options = CheckOptions { allow_rebuild, ..Default::default() };
        checks::run_all(&self.manifest(), &options, &Selection::default()).unwrap()
    }

    fn heal_with(&self, allow_rebuild: bool, only: &[&str]) -> HealResult {
        let options = CheckOptions { allow_rebuild, ..Default::default() };
        let selection = Selection { only: only.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        heal::heal(&self.manifest(), &options, &selection, &Silent).unwrap()
    }

    fn heal(&self, allow_rebuild: bool) -> HealResult {
        self.heal_with(allow_rebuild, &[])
    }

    /// The normalized schema of a database built fresh from the DDL.
    fn fresh_schema(&self) -> String {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&fs::read_to_string(self.root().join("schemas/app.sql")).unwrap()).unwrap();
        normalized(&conn)
    }

    fn live_schema(&self) -> String {
        normalized(&Connection::open(self.db()).unwrap())
    }

    fn rows(&self, table: &str) -> Vec<BTreeMap<String, String>> {
        rows_of(&Connection::open(self.db()).unwrap(), table)
    }
}

/// The schema as facts that do not depend on statement text or column
/// order: columns with type, NOT NULL, default, key, collation; table
/// options; foreign keys; indexes with their keys; views and triggers by
/// whitespace-normalized statement.
fn normalized(conn: &Connection) -> String {
    let mut out = Vec::new();
    let q = |sql: &str| -> Vec<Vec<String>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i).map(|v| format!("{v:?}"))).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let tables = q("SELECT name, wr, strict FROM pragma_table_list WHERE schema='main' AND type='table' \
                    AND name NOT LIKE 'sqlite_%' ORDER BY lower(name)");
    for t in tables {
        let name = t[0].trim_start_matches("Text(\"").trim_end_matches("\")").replace("\\\"", "\"");
        out.push(format!("table {name} wr={} strict={}", t[1], t[2]));
        let mut cols = q(&format!(
            "SELECT lower(name), upper(type), \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo({})",
            lit(&name)
        ));
        cols.sort();
        for c in cols {
            let col = c[0].trim_start_matches("Text(\"").trim_end_matches("\")").to_string();
            let meta = conn.column_metadata(None, name.as_str(), col.as_str()).ok();
            let extra = meta.map(|m| format!("coll={:?} autoinc={}", m.1, m.4)).unwrap_or_default();
            out.push(format!("  column {} {extra}", c.join(" ")));
        }
        for fk in q(&format!(
            "SELECT \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list({}) ORDER BY 1, 2",
            lit(&name)
        )) {
            out.push(format!("  fk {}", fk.join(" ")));
        }
        let mut idx = q(&format!(
            "SELECT il.name, il.\"unique\", il.partial, il.origin, group_concat(ix.name || ':' || ix.\"desc\" || ':' || ix.coll, ',') \
             FROM pragma_index_list({0}) il JOIN pragma_index_xinfo(il.name) ix WHERE ix.key = 1 GROUP BY il.name",
            lit(&name)
        ));
        for i in idx.iter_mut() {
            if i[3] == "Text(\"u\")" || i[3] == "Text(\"pk\")" {
                i[0] = "auto".into(); // automatic index names depend on creation order
            }
        }
        idx.sort();
        out.extend(idx.into_iter().map(|i| format!("  index {}", i.join(" "))));
    }
    for o in q("SELECT type, name, sql FROM sqlite_schema WHERE type IN ('view', 'trigger') ORDER BY type, name") {
        out.push(format!("{} {} {}", o[0], o[1], o[2].split_whitespace().collect::<Vec<_>>().join(" ")));
    }
    out.join("\n")
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Every row of `table` as column → value, with its rowid when it has one.
fn rows_of(conn: &Connection, table: &str) -> Vec<BTreeMap<String, String>> {
    let wr: i64 = conn
        .query_row("SELECT wr FROM pragma_table_list WHERE name = ?1 AND schema = 'main'", [table], |r| r.get(0))
        .unwrap();
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    // A column may be named rowid or oid: the real rowid is the first name no column takes.
    let columns: Vec<String> = conn
        .prepare(&format!("SELECT lower(name) FROM pragma_table_xinfo({})", lit(table)))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let rowid = ["rowid", "_rowid_", "oid"].into_iter().find(|n| !columns.iter().any(|c| c == n)).unwrap_or("rowid");
    let sql = if wr == 0 {
        format!("SELECT {rowid} AS \"(rowid)\", * FROM {quoted} ORDER BY {rowid}")
    } else {
        format!("SELECT * FROM {quoted} ORDER BY 1")
    };
    let mut stmt = conn.prepare(&sql).unwrap();
    let names: Vec<String> = stmt.column_names().map(|n| n.to_lowercase()).collect();
    stmt.query_map([], |r| {
        Ok(names.iter().enumerate().map(|(i, n)| (n.clone(), format!("{:?}", r.get::<_, Value>(i).unwrap()))).collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every value of `before` is in `after`, row by row (new columns may be added).
fn assert_rows_kept(before: &[BTreeMap<String, String>], after: &[BTreeMap<String, String>]) {
    assert_eq!(before.len(), after.len(), "row count changed");
    for (b, a) in before.iter().zip(after) {
        for (column, value) in b {
            assert_eq!(a.get(column), Some(value), "column {column} changed in row {b:?} → {a:?}");
        }
    }
}

fn ids(findings: &Findings) -> Vec<String> {
    let mut ids: Vec<String> = findings.problems.iter().map(|f| f.id.clone()).collect();
    ids.sort();
    ids
}

fn plan_lines(findings: &Findings) -> Vec<String> {
    heal::plan(findings).iter().flat_map(|f| f.fix.as_ref().unwrap().describe()).collect()
}

fn assert_all_done(result: &HealResult) {
    for action in &result.actions {
        assert_eq!(action.outcome, Outcome::Done, "{} failed: {}", action.id, action.detail);
    }
}

/// Heals, then checks convergence: the schema equals a fresh one, a second
/// validation finds nothing to do, and every listed table kept its rows.
fn heal_and_converge(app: &App, allow_rebuild: bool, tables: &[&str]) -> HealResult {
    let before: Vec<_> = tables.iter().map(|t| app.rows(t)).collect();
    let result = app.heal(allow_rebuild);
    assert!(!result.actions.is_empty(), "heal planned nothing");
    assert_all_done(&result);
    assert_eq!(app.live_schema(), app.fresh_schema());
    let again = app.validate(allow_rebuild);
    assert!(again.problems.is_empty(), "still differs: {:?}", again.problems);
    for (table, rows) in tables.iter().zip(&before) {
        assert_rows_kept(rows, &app.rows(table));
    }
    result
}

// ---------------------------------------------------------------- each kind of difference

#[test]
fn a_missing_database_is_created_from_the_ddl() {
    let app = App::new("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX t_name ON t(name);");
    let findings = app.validate(false);
    assert_eq!(ids(&findings), ["db:app/data.db"]);
    assert_eq!(findings.problems[0].severity, Severity::Critical);
    let result = app.heal(false);
    assert_all_done(&result);
    assert_eq!(app.live_schema(), app.fresh_schema());
    let leftovers: Vec<_> = fs::read_dir(app.root().join("app")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["data.db"], "no temporary file is left behind");
}

#[test]
fn a_missing_table_view_and_trigger_are_created() {
    let ddl = "CREATE TABLE a(id INTEGER PRIMARY KEY, x TEXT);
               CREATE TABLE b(id INTEGER PRIMARY KEY, a_id INT REFERENCES a(id));
               CREATE INDEX b_a ON b(a_id);
               CREATE VIEW va AS SELECT id, x FROM a;
               CREATE TABLE log(msg TEXT);
               CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN INSERT INTO log VALUES ('a'); END;";
    let app = App::with_live(
        ddl,
        "CREATE TABLE a(id INTEGER PRIMARY KEY, x TEXT); CREATE TABLE log(msg TEXT);",
        "INSERT INTO a(x) VALUES ('one'), ('two');",
    );
    let findings = app.validate(false);
    assert_eq!(ids(&findings), ["db:app/data.db:table:b", "db:app/data.db:trigger:a_ins", "db:app/data.db:view:va"]);
    assert!(findings.problems.iter().all(|f| f.severity == Severity::Critical));
    heal_and_converge(&app, false, &["a"]);
}

#[test]
fn a_missing_addable_column_is_added_in_place() {
    let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT NOT NULL,
                 two_factor_enabled INTEGER NOT NULL DEFAULT 0 CHECK (two_factor_enabled IN (0, 1)),
                 totp_secret TEXT);";
    let app = App::with_live(
        ddl,
        "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT NOT NULL);",
        "INSERT INTO users(email) VALUES ('a@x'), ('b@x');",
    );
    let findings = app.validate(false);
    let lines = plan_lines(&findings);
    assert!(lines.contains(&"ALTER TABLE \"users\" ADD COLUMN two_factor_enabled INTEGER NOT NULL DEFAULT 0 CHECK (two_factor_enabled IN (0, 1));".to_string()), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("_preflight_new_")), "no rebuild: {lines:#?}");
    let result = heal_and_converge(&app, false, &["users"]);
    assert!(!app.root().join(".preflight/backups").exists(), "an in-place ADD COLUMN needs no backup");
    assert_eq!(result.actions.len(), 2);
}

#[test]
fn missing_and_differing_indexes_are_created_and_recreated() {
    let ddl = "CREATE TABLE t(a INT, b TEXT, c REAL);
               CREATE INDEX t_a ON t(a);
               CREATE UNIQUE INDEX t_b ON t(b COLLATE NOCASE DESC);
               CREATE INDEX t_c ON t(c) WHERE c > 0;";
    let old = "CREATE TABLE t(a INT, b TEXT, c REAL); CREATE INDEX t_b ON t(b); CREATE INDEX t_c ON t(c) WHERE c > 1;";
    let app = App::with_live(ddl, old, "INSERT INTO t VALUES (1, 'x', 1.5), (2, 'y', -1);");
    let findings = app.validate(false);
    assert_eq!(ids(&findings), ["db:app/data.db:index:t_a", "db:app/data.db:index:t_b", "db:app/data.db:index:t_c"]);
    assert!(findings.problems.iter().all(|f| f.severity == Severity::Warning));
    heal_and_converge(&app, false, &["t"]);
}

#[test]
fn differing_views_and_triggers_are_recreated() {
    let ddl = "CREATE TABLE t(a INT); CREATE TABLE log(m TEXT);
               CREATE VIEW v AS SELECT a, a * 2 AS twice FROM t;
               CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('new ' || new.a); END;";
    let old = "CREATE TABLE t(a INT); CREATE TABLE log(m TEXT); CREATE VIEW v AS SELECT a FROM t;
               CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('x'); END;";
    let app = App::with_live(ddl, old, "INSERT INTO t VALUES (1);");
    assert_eq!(ids(&app.validate(false)), ["db:app/data.db:trigger:tr", "db:app/data.db:view:v"]);
    heal_and_converge(&app, false, &["t", "log"]);
}

#[test]
fn a_column_that_differs_is_a_warning_and_is_rebuilt_only_when_allowed() {
    let ddl = "CREATE TABLE p(id INTEGER PRIMARY KEY, price REAL NOT NULL DEFAULT 0, sku TEXT COLLATE NOCASE);";
    let old = "CREATE TABLE p(id INTEGER PRIMARY KEY, price REAL, sku TEXT);";
    let app = App::with_live(ddl, old, "INSERT INTO p(price, sku) VALUES (1.5, 'A'), (2.25, 'b');");
    let findings = app.validate(false);
    assert_eq!(ids(&findings), ["db:app/data.db:table:p:column:price", "db:app/data.db:table:p:column:sku"]);
    assert!(findings.problems.iter().all(|f| f.severity == Severity::Warning && !f.fixable()));
    assert!(findings.problems[0].message.contains("--allow-rebuild"), "{}", findings.problems[0].message);
    let untouched = app.heal(false);
    assert!(untouched.actions.is_empty());
    let result = heal_and_converge(&app, true, &["p"]);
    let backups = app.root().join(".preflight/backups").join(result.run_id.unwrap()).join(DB);
    let copy = Connection::open(&backups).unwrap();
    let old_price: Option<String> =
        copy.query_row("SELECT dflt_value FROM pragma_table_info('p') WHERE name='price'", [], |r| r.get(0)).unwrap();
    assert_eq!(old_price, None, "the backup holds the old schema");
    assert_eq!(rows_of(&copy, "p").len(), 2);
}

#[test]
fn extra_tables_columns_and_indexes_are_drift_and_never_dropped() {
    let ddl = "CREATE TABLE t(a INT);";
    let old = "CREATE TABLE t(a INT, legacy TEXT); CREATE INDEX t_legacy ON t(legacy); CREATE TABLE old_stuff(x);";
    let app = App::with_live(ddl, old, "INSERT INTO t VALUES (1, 'keep me'); INSERT INTO old_stuff VALUES (42);");
    let findings = app.validate(true);
    assert_eq!(
        ids(&findings),
        ["db:app/data.db:index:t_legacy", "db:app/data.db:table:old_stuff", "db:app/data.db:table:t:column:legacy"]
    );
    assert!(findings.problems.iter().all(|f| f.severity == Severity::Warning && !f.fixable()));
    assert!(app.heal(true).actions.is_empty());
    assert_eq!(app.rows("t")[0]["legacy"], "Text(\"keep me\")");
    assert_eq!(app.rows("old_stuff").len(), 1);
}

// ---------------------------------------------------------------- rebuilds

#[test]
fn rebuild_adds_unique_and_not_null_columns_and_keeps_live_only_columns() {
    let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT,
                 handle TEXT UNIQUE, status TEXT NOT NULL DEFAULT 'active',
                 created_at TEXT DEFAULT CURRENT_TIMESTAMP);";
    let old = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, nickname TEXT NOT NULL DEFAULT 'n');";
    let app = App::with_live(ddl, old, "INSERT INTO users(email, nickname) VALUES ('a@x', 'al'), ('b@x', 'bo'); DELETE FROM users WHERE id = 1; INSERT INTO users(id, email, nickname) VALUES (10, 'c@x', 'cy');");
    let before = app.rows("users");
    let findings = app.validate(false);
    assert!(findings
        .problems
        .iter()
        .any(|f| f.id.ends_with(":column:handle") && f.severity == Severity::Critical && f.fixable()));
    let result = app.heal(false);
    assert_all_done(&result);
    assert_rows_kept(&before, &app.rows("users"));
    let conn = Connection::open(app.db()).unwrap();
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('users')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(cols, ["id", "email", "handle", "status", "created_at", "nickname"], "live-only column appended");
    let created: Option<String> =
        conn.query_row("SELECT created_at FROM users WHERE id = 10", [], |r| r.get(0)).unwrap();
    assert!(created.is_some(), "DEFAULT CURRENT_TIMESTAMP filled the copied rows");
    // The only remaining difference is the drift column, kept on purpose.
    assert_eq!(ids(&app.validate(false)), ["db:app/data.db:table:users:column:nickname"]);
}

#[test]
fn rebuild_changes_the_primary_key_and_keeps_rowids() {
    let ddl = "CREATE TABLE prices(symbol TEXT NOT NULL, day TEXT NOT NULL, close REAL, PRIMARY KEY (symbol, day));";
    let old = "CREATE TABLE prices(symbol TEXT NOT NULL, day TEXT NOT NULL, close REAL);";
    let app = App::with_live(ddl, old, "INSERT INTO prices VALUES ('A', 'd1', 1.0), ('B', 'd1', 2.0), ('A', 'd2', 3.0); DELETE FROM prices WHERE rowid = 2;");
    heal_and_converge(&app, true, &["prices"]);
}

#[test]
fn rebuild_of_a_parent_table_deletes_no_child_row() {
    let ddl = "CREATE TABLE threads(id INTEGER PRIMARY KEY, title TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT '');
               CREATE TABLE messages(id INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE, body TEXT);";
    let old = "CREATE TABLE threads(id INTEGER PRIMARY KEY, title TEXT);
               CREATE TABLE messages(id INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL REFERENCES threads(id) ON DELETE CASCADE, body TEXT);";
    let rows = "INSERT INTO threads(title) VALUES ('t1'), ('t2'); INSERT INTO messages(thread_id, body) VALUES (1, 'hi'), (1, 'there'), (2, 'yo');";
    let app = App::with_live(ddl, old, rows);
    heal_and_converge(&app, true, &["threads", "messages"]);
    assert_eq!(app.rows("messages").len(), 3, "ON DELETE CASCADE did not fire");
    let fk: i64 = Connection::open(app.db()).unwrap().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 1, "a new connection still has foreign keys on");
}

#[test]
fn rebuild_keeps_the_autoincrement_counter_triggers_and_views() {
    let ddl = "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'new');
               CREATE TABLE audit(msg TEXT);
               CREATE INDEX jobs_state ON jobs(state);
               CREATE TRIGGER jobs_audit AFTER INSERT ON jobs BEGIN INSERT INTO audit VALUES ('job ' || new.id); END;
               CREATE VIEW open_jobs AS SELECT id, name FROM jobs WHERE state = 'new';";
    let old = "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, state TEXT DEFAULT 'new');
               CREATE TABLE audit(msg TEXT);
               CREATE INDEX jobs_state ON jobs(state);
               CREATE TRIGGER jobs_audit AFTER INSERT ON jobs BEGIN INSERT INTO audit VALUES ('job ' || new.id); END;
               CREATE VIEW open_jobs AS SELECT id, name FROM jobs WHERE state = 'new';";
    let rows = "INSERT INTO jobs(name) VALUES ('a'), ('b'), ('c'), ('d'); DELETE FROM jobs WHERE id >= 3;";
    let app = App::with_live(ddl, old, rows);
    heal_and_converge(&app, true, &["jobs", "audit"]);
    let conn = Connection::open(app.db()).unwrap();
    conn.execute("INSERT INTO jobs(name) VALUES ('e')", []).unwrap();
    let id: i64 = conn.query_row("SELECT max(id) FROM jobs", [], |r| r.get(0)).unwrap();
    assert_eq!(id, 5, "the counter was kept: no id is handed out twice");
    let audit: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap();
    assert_eq!(audit, 5, "the trigger still fires");
    let open: i64 = conn.query_row("SELECT count(*) FROM open_jobs", [], |r| r.get(0)).unwrap();
    assert_eq!(open, 3, "the view still works");
}

#[test]
fn rebuild_handles_strict_without_rowid_and_generated_columns() {
    let ddl = "CREATE TABLE ticks(symbol TEXT NOT NULL, ts INTEGER NOT NULL, bid REAL, ask REAL,
                 mid REAL GENERATED ALWAYS AS ((bid + ask) / 2) STORED, spread REAL AS (ask - bid),
                 PRIMARY KEY (symbol, ts)) STRICT, WITHOUT ROWID;
               CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL, size INT AS (length(body))) STRICT;";
    let old = "CREATE TABLE ticks(symbol TEXT NOT NULL, ts INTEGER NOT NULL, bid REAL, ask REAL, PRIMARY KEY (symbol, ts)) WITHOUT ROWID;
               CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);";
    let rows =
        "INSERT INTO ticks VALUES ('A', 1, 1.0, 2.0), ('B', 2, 3.0, 5.0); INSERT INTO notes(body) VALUES ('hello');";
    let app = App::with_live(ddl, old, rows);
    heal_and_converge(&app, true, &["ticks", "notes"]);
    let mid: f64 = Connection::open(app.db())
        .unwrap()
        .query_row("SELECT mid FROM ticks WHERE symbol = 'B'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mid, 4.0);
}

#[test]
fn rebuild_copes_with_odd_identifiers() {
    let ddl = "CREATE TABLE \"order items\"(\"select\" INTEGER PRIMARY KEY, \"we\"\"ird\" TEXT NOT NULL DEFAULT '', [größe] REAL, `from` TEXT UNIQUE);
               CREATE INDEX \"idx on order items\" ON \"order items\"(\"we\"\"ird\");
               CREATE VIEW \"vue à\" AS SELECT \"select\", [größe] FROM \"order items\";";
    let old = "CREATE TABLE \"order items\"(\"select\" INTEGER PRIMARY KEY, \"we\"\"ird\" TEXT, [größe] REAL);
               CREATE VIEW \"vue à\" AS SELECT \"select\", [größe] FROM \"order items\";";
    let app = App::with_live(ddl, old, "INSERT INTO \"order items\" VALUES (7, 'it''s', 1.5), (9, 'x', NULL);");
    heal_and_converge(&app, true, &["order items"]);
}

#[test]
fn a_column_sqlite_adds_only_to_an_empty_table_is_rebuilt_when_rows_exist() {
    let ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);";
    let old = "CREATE TABLE t(id INTEGER PRIMARY KEY);";
    let empty = App::with_live(ddl, old, "");
    let lines = plan_lines(&empty.validate(false));
    assert!(lines.iter().any(|l| l.starts_with("ALTER TABLE \"t\" ADD COLUMN updated_at")), "{lines:#?}");
    heal_and_converge(&empty, false, &["t"]);
    let full = App::with_live(ddl, old, "INSERT INTO t VALUES (1), (5);");
    let lines = plan_lines(&full.validate(false));
    assert!(lines.iter().any(|l| l.starts_with("CREATE TABLE \"_preflight_new_t\"")), "{lines:#?}");
    heal_and_converge(&full, false, &["t"]);
}

#[test]
fn the_example_schemas_create_four_databases_that_converge() {
    let root = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pricing-app/schemas");
    fs::create_dir(root.path().join("schemas")).unwrap();
    let mut manifest = String::from("version = 1\n");
    for (db, schema) in
        [("app/data.db", "app_data"), ("data/auth.db", "auth"), ("data/chat.db", "chat"), ("data/market.db", "market")]
    {
        fs::copy(example.join(format!("{schema}.sql")), root.path().join(format!("schemas/{schema}.sql"))).unwrap();
        manifest.push_str(&format!("[[database]]\npath = \"{db}\"\nschema = \"schemas/{schema}.sql\"\n"));
    }
    let m = manifest::load_str(Path::new("preflight.toml"), &manifest, root.path()).unwrap();
    let result = heal::heal(&m, &CheckOptions::default(), &Selection::default(), &Silent).unwrap();
    assert_eq!(result.actions.len(), 4);
    assert_all_done(&result);
    assert!(result.current().problems.is_empty(), "{:?}", result.current().problems);
}

#[test]
fn a_not_null_column_without_default_is_added_to_an_empty_table_only() {
    let ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY, code TEXT NOT NULL, n INT);";
    let old = "CREATE TABLE t(id INTEGER PRIMARY KEY, n INT);";
    let empty = App::with_live(ddl, old, "");
    heal_and_converge(&empty, false, &["t"]);
    let full = App::with_live(ddl, old, "INSERT INTO t(n) VALUES (1);");
    let findings = full.validate(true);
    assert_eq!(ids(&findings), ["db:app/data.db:table:t:column:code"]);
    let finding = &findings.problems[0];
    assert!(finding.severity == Severity::Critical && !finding.fixable());
    assert!(finding.message.contains("give the column a DEFAULT"), "{}", finding.message);
}

#[test]
fn a_new_column_in_a_table_constraint_is_rebuilt_not_added() {
    let ddl = "CREATE TABLE p(id INTEGER PRIMARY KEY);
               CREATE TABLE prices(sku TEXT NOT NULL, day TEXT NOT NULL DEFAULT '', p_id INT,
                                   UNIQUE (sku, day), FOREIGN KEY (p_id) REFERENCES p(id));";
    let old = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE prices(sku TEXT NOT NULL);";
    let app = App::with_live(ddl, old, "INSERT INTO prices VALUES ('a'), ('b');");
    let lines = plan_lines(&app.validate(false));
    assert!(lines.iter().any(|l| l.starts_with("CREATE TABLE \"_preflight_new_prices\"")), "{lines:#?}");
    heal_and_converge(&app, false, &["prices"]);
}

// ---------------------------------------------------------------- one transaction, plan, selection

#[test]
fn the_plan_is_one_transaction_per_database_with_the_exact_sql() {
    let ddl = "CREATE TABLE t(a INT, b TEXT); CREATE INDEX t_b ON t(b); CREATE TABLE u(x);";
    let app = App::with_live(ddl, "CREATE TABLE t(a INT);", "INSERT INTO t VALUES (1);");
    let findings = app.validate(false);
    let lines = plan_lines(&findings);
    assert_eq!(lines.iter().filter(|l| *l == "BEGIN IMMEDIATE;").count(), 1, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| *l == "COMMIT;").count(), 1);
    assert_eq!(lines.last().unwrap(), "COMMIT;");
    for sql in ["CREATE TABLE u(x);", "ALTER TABLE \"t\" ADD COLUMN b TEXT;", "CREATE INDEX t_b ON t(b);"] {
        assert!(lines.contains(&sql.to_string()), "{sql} missing from {lines:#?}");
    }
    let mtime = fs::metadata(app.db()).unwrap().modified().unwrap();
    assert_eq!(fs::metadata(app.db()).unwrap().modified().unwrap(), mtime, "validate and the plan write nothing");
}

#[test]
fn a_unique_index_over_duplicates_is_not_offered_and_the_other_steps_heal() {
    // The new UNIQUE index cannot be built over duplicate rows: it is
    // known to fail, so it is not offered, and the added column heals.
    let ddl = "CREATE TABLE t(a INT, b TEXT); CREATE UNIQUE INDEX t_a ON t(a);";
    let app = App::with_live(ddl, "CREATE TABLE t(a INT);", "INSERT INTO t VALUES (1), (1), (2), (2), (2), (3);");
    let findings = app.validate(false);
    let index = findings.problems.iter().find(|f| f.id == "db:app/data.db:index:t_a").unwrap();
    assert!(!index.fixable(), "a fix known to fail is not offered");
    assert!(index.message.contains("duplicate values (2) ×3, (1) ×2"), "{}", index.message);
    let result = app.heal(false);
    assert_eq!(result.actions.len(), 1);
    assert_all_done(&result);
    assert_eq!(ids(result.current()), ["db:app/data.db:index:t_a"]);
    assert!(!result.current().problems[0].fixable());
}

#[test]
fn a_step_that_fails_at_heal_time_is_undone_alone_and_names_its_cause() {
    let ddl = "CREATE TABLE t(a INT, b TEXT); CREATE TABLE u(x); CREATE UNIQUE INDEX t_a ON t(a);";
    let app = App::with_live(ddl, "CREATE TABLE t(a INT);", "INSERT INTO t VALUES (1), (2);");
    let findings = app.validate(false);
    assert!(findings.problems.iter().all(|f| f.fixable()), "{:?}", findings.problems);
    // The application writes duplicates between the check and the heal.
    Connection::open(app.db()).unwrap().execute_batch("INSERT INTO t VALUES (1), (1), (2);").unwrap();
    let mut ctx = preflight::safety::ApplyCtx::new(app.root(), "run");
    let mut outcomes = BTreeMap::new();
    for finding in heal::plan(&findings) {
        let result = ctx.apply(&finding.fix.as_ref().unwrap().ops[0]).map_err(|e| format!("{e:#}"));
        outcomes.insert(finding.id.clone(), result);
    }
    let index = outcomes["db:app/data.db:index:t_a"].as_ref().unwrap_err();
    assert!(index.contains("UNIQUE constraint failed: t.a"), "{index}");
    assert!(index.contains("duplicate values (1) ×3, (2) ×2"), "{index}");
    assert!(index.contains("only this step was undone"), "{index}");
    assert!(outcomes["db:app/data.db:table:t:column:b"].is_ok(), "{outcomes:?}");
    assert!(outcomes["db:app/data.db:table:u"].is_ok(), "{outcomes:?}");
    assert_eq!(ids(&app.validate(false)), ["db:app/data.db:index:t_a"]);
}

#[test]
fn a_schema_changed_after_the_check_is_not_touched() {
    let app =
        App::with_live("CREATE TABLE t(a INT, b TEXT UNIQUE);", "CREATE TABLE t(a INT);", "INSERT INTO t VALUES (1);");
    let findings = app.validate(false);
    assert!(plan_lines(&findings).iter().any(|l| l.contains("_preflight_new_t")), "a rebuild is planned");
    // The application adds a column between the check and the heal.
    Connection::open(app.db()).unwrap().execute_batch("ALTER TABLE t ADD COLUMN added_meanwhile TEXT;").unwrap();
    let mut ctx = preflight::safety::ApplyCtx::new(app.root(), "run");
    let finding = heal::plan(&findings)[0];
    let err = ctx.apply(&finding.fix.as_ref().unwrap().ops[0]).unwrap_err();
    assert!(format!("{err:#}").contains("changed since it was checked"), "{err:#}");
    assert!(preflight::safety::precondition::is_skip(&err), "reported as skipped, not failed: {err:#}");
    let columns: i64 = Connection::open(app.db())
        .unwrap()
        .query_row("SELECT count(*) FROM pragma_table_info('t')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(columns, 2, "the column added meanwhile is still there");
}

#[test]
fn only_selected_findings_are_repaired() {
    let ddl = "CREATE TABLE t(a INT, b TEXT, c TEXT);";
    let app = App::with_live(ddl, "CREATE TABLE t(a INT);", "");
    let result = app.heal_with(false, &["db:app/data.db:table:t:column:b"]);
    assert_all_done(&result);
    assert_eq!(ids(&app.validate(false)), ["db:app/data.db:table:t:column:c"]);
}

#[test]
fn selecting_one_finding_of_a_rebuild_runs_the_whole_rebuild_and_nothing_else() {
    let ddl =
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT UNIQUE, b INT NOT NULL DEFAULT (1 + 1)); CREATE TABLE u(x);";
    let app = App::with_live(ddl, "CREATE TABLE t(id INTEGER PRIMARY KEY);", "INSERT INTO t VALUES (1), (2);");
    let findings = app.validate(false);
    let mut selected = findings;
    selected.retain_ids(|id| id == "db:app/data.db:table:t:column:b");
    let lines = plan_lines(&selected);
    assert_eq!(lines.first().unwrap(), "-- app/data.db: the rebuild alone in its transaction, foreign keys off");
    assert!(!lines.iter().any(|l| l.contains("CREATE TABLE u")), "{lines:#?}");
    let result = app.heal_with(false, &["db:app/data.db:table:t:column:b"]);
    assert_all_done(&result);
    assert_eq!(ids(&app.validate(false)), ["db:app/data.db:table:u"]);
}

#[test]
fn a_converged_database_gives_no_findings_an_empty_plan_and_is_not_rewritten() {
    let ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, a TEXT); CREATE INDEX t_a ON t(a);
               CREATE VIEW v AS SELECT a FROM t; CREATE TRIGGER tr AFTER DELETE ON t BEGIN SELECT 1; END;";
    let app = App::with_live(ddl, ddl, "INSERT INTO t(a) VALUES ('x');");
    let mtime = fs::metadata(app.db()).unwrap().modified().unwrap();
    let findings = app.validate(false);
    assert!(findings.problems.is_empty(), "{:?}", findings.problems);
    assert!(findings.passed.iter().any(|p| p.id == "db:app/data.db"));
    let result = app.heal(true);
    assert!(result.actions.is_empty() && result.run_id.is_none());
    assert_eq!(fs::metadata(app.db()).unwrap().modified().unwrap(), mtime);
}

#[test]
fn a_second_heal_plans_nothing() {
    let ddl =
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT UNIQUE, b INT NOT NULL DEFAULT 1); CREATE INDEX t_b ON t(b);";
    let app = App::with_live(ddl, "CREATE TABLE t(id INTEGER PRIMARY KEY);", "INSERT INTO t VALUES (1), (2);");
    assert_all_done(&app.heal(false));
    let second = app.heal(false);
    assert!(second.actions.is_empty(), "{:?}", second.actions);
    assert!(plan_lines(&app.validate(false)).is_empty());
}

// ---------------------------------------------------------------- data checks

#[test]
fn a_data_check_reports_rows_and_its_fix_runs_after_a_backup() {
    let app = App::with_live(
        "CREATE TABLE positions(symbol TEXT, side TEXT, open INT);",
        "CREATE TABLE positions(symbol TEXT, side TEXT, open INT);",
        "INSERT INTO positions VALUES ('BTC', 'buy', 1), ('BTC', 'buy', 1), ('ETH', 'sell', 1);",
    )
    .check(
        "[[database.check]]\nname = \"no duplicate open positions\"\nseverity = \"warning\"\n\
         sql = \"SELECT symbol, side FROM positions WHERE open = 1 GROUP BY 1, 2 HAVING count(*) > 1\"\n\
         fix = \"UPDATE positions SET open = 0 WHERE rowid NOT IN (SELECT min(rowid) FROM positions GROUP BY symbol, side)\"\n",
    );
    let findings = app.validate(false);
    assert_eq!(ids(&findings), ["db:app/data.db:check:no duplicate open positions"]);
    assert_eq!(findings.problems[0].severity, Severity::Warning);
    assert!(findings.problems[0].message.contains("('BTC', 'buy')"), "{}", findings.problems[0].message);
    let result = app.heal(false);
    assert_all_done(&result);
    let detail = &result.actions[0].detail;
    assert!(detail.contains("backup (") && detail.contains(") in .preflight/backups/"), "{detail}");
    assert!(result.current().problems.is_empty());
    let backup = app.root().join(".preflight/backups").join(result.run_id.unwrap()).join(DB);
    let open: i64 =
        Connection::open(backup).unwrap().query_row("SELECT sum(open) FROM positions", [], |r| r.get(0)).unwrap();
    assert_eq!(open, 3, "the backup was taken before the fix");
}

#[test]
fn a_data_fix_that_leaves_rows_is_undone_alone() {
    let app = App::with_live("CREATE TABLE t(a INT, b INT);", "CREATE TABLE t(a INT);", "INSERT INTO t VALUES (-2), (5);")
        .check("[[database.check]]\nname = \"positive\"\nsql = \"SELECT a FROM t WHERE a < 0\"\nfix = \"UPDATE t SET a = a + 1\"\n");
    let result = app.heal(false);
    let by_id: BTreeMap<&str, &heal::ActionRecord> = result.actions.iter().map(|a| (a.id.as_str(), a)).collect();
    assert_eq!(by_id["db:app/data.db:table:t:column:b"].outcome, Outcome::Done);
    let fix = by_id["db:app/data.db:check:positive"];
    assert_eq!(fix.outcome, Outcome::Failed);
    assert!(fix.detail.contains("still returns 1 row"), "{}", fix.detail);
    let values: Vec<i64> = Connection::open(app.db())
        .unwrap()
        .prepare("SELECT a FROM t ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(values, [-2, 5], "the fix's changes were undone, the column addition kept");
}

// ---------------------------------------------------------------- files that are not healthy databases

#[test]
fn a_file_that_is_not_a_database_or_is_empty_is_critical_and_untouched() {
    for contents in [&b""[..], b"name,price\nwidget,3\n", b"SQLite format 3\0garbage that is no database"] {
        let app = App::new("CREATE TABLE t(a);");
        fs::write(app.db(), contents).unwrap();
        let findings = app.validate(true);
        assert_eq!(ids(&findings), ["db:app/data.db"]);
        assert_eq!(findings.problems[0].severity, Severity::Critical);
        assert!(!findings.problems[0].fixable());
        assert!(app.heal(true).actions.is_empty());
        assert_eq!(fs::read(app.db()).unwrap(), contents);
        assert!(!app.root().join("app/data.db-journal").exists());
    }
}

#[test]
fn a_corrupt_database_fails_quick_check_and_is_untouched() {
    let app = App::with_live("CREATE TABLE t(a);", "CREATE TABLE t(a); CREATE INDEX t_a ON t(a);", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO t SELECT hex(randomblob(50)) FROM n;");
    let mut bytes = fs::read(app.db()).unwrap();
    let page = 4096;
    let last = bytes.len() - page;
    bytes[last + 8..last + page].fill(0xA5); // scribble over the last page
    fs::write(app.db(), &bytes).unwrap();
    let findings = app.validate(false);
    assert_eq!(ids(&findings), ["db:app/data.db"]);
    assert!(findings.problems[0].message.contains("restore it from a backup"), "{}", findings.problems[0].message);
    assert_eq!(fs::read(app.db()).unwrap(), bytes);
}

#[test]
fn a_database_locked_by_another_writer_gives_a_clear_error_not_a_hang() {
    let app = App::with_live("CREATE TABLE t(a, b);", "CREATE TABLE t(a);", "INSERT INTO t VALUES (1);");
    let other = Connection::open(app.db()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);").unwrap();
    let result = app.heal(false);
    assert_eq!(result.actions.len(), 1);
    assert_eq!(result.actions[0].outcome, Outcome::Failed);
    assert!(result.actions[0].detail.contains("locked by another process"), "{}", result.actions[0].detail);
    other.execute_batch("COMMIT").unwrap();
    assert_all_done(&app.heal(false));
}

#[test]
fn a_wal_database_is_validated_read_only_and_healed() {
    let ddl = "CREATE TABLE t(a INT, b TEXT);";
    let app = App::with_live(ddl, "PRAGMA journal_mode=WAL; CREATE TABLE t(a INT);", "INSERT INTO t VALUES (1);");
    let wal = app.root().join("app/data.db-wal");
    assert!(!wal.exists(), "closed cleanly: no WAL file left");
    assert_eq!(ids(&app.validate(false)), ["db:app/data.db:table:t:column:b"]);
    // A reader and a writer of the application are busy with it meanwhile.
    let app_conn = Connection::open(app.db()).unwrap();
    app_conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
    heal_and_converge(&app, false, &["t"]);
    let mode: String = app_conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_ddl_that_does_not_load_stops_the_run_naming_the_file() {
    let app = App::new("CREATE TABLE t(a INT,);");
    let err = checks::run_all(&app.manifest(), &CheckOptions::default(), &Selection::default()).err().unwrap();
    let text = format!("{err:#}");
    assert!(text.contains("schemas/app.sql") && text.contains("syntax error"), "{text}");
}

#[test]
fn db_only_and_fs_only_select_the_database_check() {
    let app = App::new("CREATE TABLE t(a);");
    let m = app.manifest();
    let fs_only = Selection { fs_only: true, ..Default::default() };
    assert!(checks::run_all(&m, &CheckOptions::default(), &fs_only).unwrap().problems.is_empty());
    let db_only = Selection { db_only: true, ..Default::default() };
    assert_eq!(ids(&checks::run_all(&m, &CheckOptions::default(), &db_only).unwrap()), ["db:app/data.db"]);
}

// ---------------------------------------------------------------- property: old ⊂ new converges

mod property {
    use super::*;
    use proptest::prelude::*;

    const TYPES: [&str; 5] = ["INTEGER", "TEXT", "REAL", "BLOB", ""];
    // "rowid" and "oid" shadow SQLite's names for the rowid; "_rowid_" stays free to carry it.
    const COLUMNS: [&str; 10] =
        ["price", "select", "two words", "q\"uote", "ünï", "Group", "x_1", "note", "rowid", "oid"];
    const TABLES: [&str; 4] = ["items", "order", "Daily Prices", "t\"q"];

    #[derive(Debug, Clone)]
    struct Col {
        name: String,
        ty: &'static str,
        not_null_default: bool,
        unique: bool,
        nocase: bool,
        in_old: bool,
        /// Named `<name>_v1` in the old schema, renamed by `[[database.rename]]`.
        renamed: bool,
    }

    #[derive(Debug, Clone)]
    struct Tbl {
        name: String,
        /// 0: plain rowid table, 1: INTEGER PRIMARY KEY, 2: WITHOUT ROWID, 3: AUTOINCREMENT.
        key: u8,
        strict: bool,
        in_old: bool,
        /// Named `<name> v1` in the old schema, renamed by `[[database.rename]]`.
        renamed: bool,
        cols: Vec<Col>,
        index: Option<(usize, bool)>,
        /// A generated column over the first column: (STORED, in the old schema).
        generated: Option<(bool, bool)>,
        rows: Vec<Vec<i64>>,
    }

    fn q(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    impl Col {
        fn ty(&self, strict: bool) -> &'static str {
            if strict && self.ty.is_empty() {
                "ANY"
            } else {
                self.ty
            }
        }

        fn name(&self, old: bool) -> String {
            if old && self.renamed {
                format!("{}_v1", self.name)
            } else {
                self.name.clone()
            }
        }

        fn definition(&self, strict: bool, old: bool) -> String {
            let mut d = format!("{} {}", q(&self.name(old)), self.ty(strict));
            if self.not_null_default {
                d.push_str(match self.ty(strict) {
                    "TEXT" | "ANY" | "" => " NOT NULL DEFAULT 'd'",
                    "BLOB" => " NOT NULL DEFAULT x'00'",
                    _ => " NOT NULL DEFAULT 0",
                });
            } else if self.unique {
                d.push_str(" UNIQUE");
            }
            if self.nocase && self.ty == "TEXT" {
                d.push_str(" COLLATE NOCASE");
            }
            d
        }

        fn value(&self, seed: i64) -> String {
            match self.ty {
                "INTEGER" | "" => seed.to_string(),
                "REAL" => format!("{}.25", seed),
                "BLOB" => format!("x'{:04x}'", seed.unsigned_abs() % 65536),
                _ => format!("'v''{seed} ü'"),
            }
        }
    }

    impl Tbl {
        fn name(&self, old: bool) -> String {
            if old && self.renamed {
                format!("{} v1", self.name)
            } else {
                self.name.clone()
            }
        }

        fn create(&self, old: bool) -> Option<String> {
            if old && !self.in_old {
                return None;
            }
            let name = self.name(old);
            let mut defs = Vec::new();
            match self.key {
                1 => defs.push("id INTEGER PRIMARY KEY".to_string()),
                3 => defs.push("id INTEGER PRIMARY KEY AUTOINCREMENT".to_string()),
                2 => defs.push("id INTEGER NOT NULL PRIMARY KEY".to_string()),
                _ => {}
            }
            defs.extend(self.cols.iter().filter(|c| !old || c.in_old).map(|c| c.definition(self.strict, old)));
            if let Some((stored, in_old)) = self.generated {
                if !old || (in_old && self.cols[0].in_old) {
                    let kind = if stored { "STORED" } else { "VIRTUAL" };
                    let source = q(&self.cols[0].name(old));
                    defs.push(format!("\"gen\" TEXT GENERATED ALWAYS AS (typeof({source}) || ':' || {source}) {kind}"));
                }
            }
            let mut options = Vec::new();
            if self.strict {
                options.push("STRICT");
            }
            if self.key == 2 {
                options.push("WITHOUT ROWID");
            }
            let view = format!("CREATE VIEW {} AS SELECT * FROM {};\n", q(&format!("v {}", self.name)), q(&name));
            let mut sql = format!("CREATE TABLE {} ({}) {};\n", q(&name), defs.join(", "), options.join(", "));
            if let Some((i, in_old)) = self.index {
                let col = &self.cols[i];
                if !old || (in_old && col.in_old) {
                    sql.push_str(&format!(
                        "CREATE INDEX {} ON {} ({});\n",
                        q(&format!("ix {}", self.name)),
                        q(&name),
                        q(&col.name(old))
                    ));
                }
            }
            if !old || self.index.is_some_and(|(_, in_old)| in_old) {
                sql.push_str(&view); // the view's presence in the old schema varies too
            }
            Some(sql)
        }

        fn inserts(&self) -> String {
            let cols: Vec<&Col> = self.cols.iter().filter(|c| c.in_old).collect();
            let mut sql = String::new();
            for (n, seeds) in self.rows.iter().enumerate() {
                let mut names: Vec<String> = cols.iter().map(|c| q(&c.name(true))).collect();
                let mut values: Vec<String> = cols.iter().zip(seeds).map(|(c, s)| c.value(*s)).collect();
                names.truncate(values.len());
                if self.key > 0 {
                    names.insert(0, "id".into());
                    values.insert(0, (n as i64 * 3 + 1).to_string());
                }
                if names.is_empty() {
                    continue;
                }
                sql.push_str(&format!(
                    "INSERT OR IGNORE INTO {} ({}) VALUES ({});\n",
                    q(&self.name(true)),
                    names.join(", "),
                    values.join(", ")
                ));
            }
            if self.key != 2 && self.rows.len() > 2 {
                // A gap in the rowids: a rebuild (or a VACUUM) must not close it.
                sql.push_str(&format!("DELETE FROM {} WHERE _rowid_ = 2;\n", q(&self.name(true))));
            }
            sql
        }

        /// The `[[database.rename]]` entries that take the old schema's names to the new ones.
        fn renames(&self) -> String {
            let toml = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            let mut out = String::new();
            if !self.in_old {
                return out;
            }
            if self.renamed {
                out.push_str(&format!(
                    "[[database.rename]]\nfrom = \"{}\"\nto = \"{}\"\n",
                    toml(&self.name(true)),
                    toml(&self.name)
                ));
            }
            for c in self.cols.iter().filter(|c| c.in_old && c.renamed) {
                let (from, to) = (format!("{}.{}", self.name, c.name(true)), format!("{}.{}", self.name, c.name));
                out.push_str(&format!("[[database.rename]]\nfrom = \"{}\"\nto = \"{}\"\n", toml(&from), toml(&to)));
            }
            out
        }

        /// A row as read from the old table, under the new column names.
        fn renamed_row(&self, row: &BTreeMap<String, String>) -> BTreeMap<String, String> {
            row.iter()
                .map(|(k, v)| {
                    let new = self.cols.iter().find(|c| c.renamed && c.name(true).to_lowercase() == *k);
                    (new.map_or(k.clone(), |c| c.name.to_lowercase()), v.clone())
                })
                .collect()
        }
    }

    fn column() -> impl Strategy<Value = ColKind> {
        (0..TYPES.len(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), proptest::bool::weighted(0.2))
    }

    /// Column kinds: (type, NOT NULL DEFAULT, UNIQUE, NOCASE, in the old schema, renamed).
    type ColKind = (usize, bool, bool, bool, bool, bool);
    /// (names, kinds, key, strict, in old, renamed, index, generated, row seeds).
    type TableKind = (
        Vec<&'static str>,
        Vec<ColKind>,
        u8,
        bool,
        (bool, bool),
        Option<(usize, bool)>,
        Option<(bool, bool)>,
        Vec<Vec<i64>>,
    );

    fn table() -> impl Strategy<Value = TableKind> {
        (
            proptest::sample::subsequence(COLUMNS.to_vec(), 1..5),
            proptest::collection::vec(column(), 5),
            0u8..4,
            any::<bool>(),
            (any::<bool>(), proptest::bool::weighted(0.25)),
            proptest::option::of((0usize..5, any::<bool>())),
            proptest::option::weighted(0.3, (any::<bool>(), any::<bool>())),
            proptest::collection::vec(proptest::collection::vec(-50i64..50, 5), 0..6),
        )
    }

    fn schema() -> impl Strategy<Value = Vec<Tbl>> {
        (proptest::sample::subsequence(TABLES.to_vec(), 1..4), proptest::collection::vec(table(), 4)).prop_map(
            |(names, tables)| {
                names
                    .into_iter()
                    .zip(tables)
                    .map(|(name, (cols, kinds, key, strict, (in_old, renamed), index, generated, rows))| {
                        let cols: Vec<Col> = cols
                            .into_iter()
                            .zip(kinds)
                            .map(|(n, (ty, nn, unique, nocase, in_old, renamed))| Col {
                                name: n.to_string(),
                                ty: TYPES[ty],
                                not_null_default: nn,
                                unique,
                                nocase,
                                in_old,
                                // SQLite refuses to rename a column to a name of the rowid.
                                renamed: renamed && !["rowid", "oid"].contains(&n),
                            })
                            .collect();
                        let mut cols = cols;
                        if key == 0 {
                            cols[0].in_old = true; // an old table needs a column
                        }
                        let index = index.map(|(i, old)| (i % cols.len(), old));
                        Tbl { name: name.to_string(), key, strict, in_old, renamed, cols, index, generated, rows }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn heal_converges_keeps_rows_and_then_plans_nothing(tables in schema()) {
            let new: String = tables.iter().filter_map(|t| t.create(false)).collect();
            // user_version makes SQLite write the file even with no table.
            let old: String = tables.iter().filter_map(|t| t.create(true)).chain(["PRAGMA user_version = 1;".into()]).collect();
            let rows: String = tables.iter().filter(|t| t.in_old).map(Tbl::inserts).collect();
            let renames: String = tables.iter().map(Tbl::renames).collect();
            let app = App::with_live(&new, &old, &rows).check(&renames);
            let old_tables: Vec<&Tbl> = tables.iter().filter(|t| t.in_old).collect();
            let before: Vec<Vec<_>> = old_tables
                .iter()
                .map(|t| app.rows(&t.name(true)).iter().map(|r| t.renamed_row(r)).collect())
                .collect();
            let first = app.heal(false);
            for action in &first.actions {
                prop_assert_eq!(action.outcome, Outcome::Done, "{} failed: {}\n{}\n{}", action.id, action.detail, old, new);
            }
            prop_assert_eq!(app.live_schema(), app.fresh_schema());
            for (table, rows) in old_tables.iter().zip(&before) {
                assert_rows_kept(rows, &app.rows(&table.name));
            }
            let second = app.heal(false);
            prop_assert!(second.actions.is_empty(), "second heal: {:?}", second.actions);
            prop_assert!(app.validate(false).problems.is_empty());
        }
    }
}

// ---------------------------------------------------------------- the binary

mod cli {
    use super::*;

    fn json(assert: &assert_cmd::assert::Assert) -> serde_json::Value {
        serde_json::from_slice(&assert.get_output().stdout).unwrap()
    }

    #[test]
    fn validate_dry_run_heal_and_validate_again() {
        let ddl = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, totp_secret TEXT); CREATE INDEX users_email ON users(email);";
        let app = App::with_live(
            ddl,
            "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT);",
            "INSERT INTO users(email) VALUES ('a@x');",
        );
        let validate = app.cli(&["validate", "--format", "json"]).code(1);
        let ids: Vec<String> = json(&validate)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["db:app/data.db:table:users:column:totp_secret", "db:app/data.db:index:users_email"]);

        let mtime = fs::metadata(app.db()).unwrap().modified().unwrap();
        let dry = app.cli(&["heal", "--dry-run", "--format", "json"]).code(1);
        let steps: Vec<String> = json(&dry)["plan"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            steps,
            [
                "-- app/data.db: these steps commit together; each under a savepoint, so one that fails is undone alone",
                "PRAGMA foreign_keys=ON;",
                "PRAGMA legacy_alter_table=OFF;",
                "BEGIN IMMEDIATE;",
                "SAVEPOINT preflight_step;",
                "ALTER TABLE \"users\" ADD COLUMN totp_secret TEXT;",
                "RELEASE preflight_step;  -- on failure: ROLLBACK TO preflight_step",
                "SAVEPOINT preflight_step;",
                "CREATE INDEX users_email ON users(email);",
                "RELEASE preflight_step;  -- on failure: ROLLBACK TO preflight_step",
                "COMMIT;",
            ]
        );
        assert_eq!(fs::metadata(app.db()).unwrap().modified().unwrap(), mtime, "the dry run changed nothing");

        let heal = app.cli(&["heal", "--format", "json"]).code(0);
        let doc = json(&heal);
        assert!(doc["actions"].as_array().unwrap().iter().all(|a| a["outcome"] == "done"), "{doc}");
        app.cli(&["validate"]).code(0);
        app.cli(&["heal", "--dry-run"]).code(0).stdout(predicates::str::contains("nothing to do"));
    }

    #[test]
    fn drift_exits_2_and_a_rebuild_needs_the_flag() {
        let app = App::with_live(
            "CREATE TABLE t(a INTEGER NOT NULL DEFAULT 0);",
            "CREATE TABLE t(a TEXT, extra TEXT);",
            "INSERT INTO t VALUES ('7', 'x');",
        );
        app.cli(&["validate"]).code(2);
        app.cli(&["heal"]).code(2);
        let rebuilt = app.cli(&["heal", "--allow-rebuild", "--format", "json"]).code(2);
        let after: Vec<String> =
            json(&rebuilt)["after"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(after, ["db:app/data.db:table:t:column:extra"], "only the kept drift column remains");
        assert_eq!(app.rows("t")[0]["extra"], "Text(\"x\")");
    }

    #[test]
    fn a_ddl_that_does_not_load_exits_1_naming_the_file() {
        let app = App::new("CREATE TABLE t(a INT,);");
        app.cli(&["validate"])
            .code(1)
            .stderr(predicates::str::contains("schemas/app.sql").and(predicates::str::contains("syntax error")));
    }

    #[test]
    fn db_only_and_only_filter_the_database_findings() {
        let app = App::with_live("CREATE TABLE t(a, b); CREATE TABLE u(x);", "CREATE TABLE t(a);", "");
        let only = app.cli(&["validate", "--only", "db:app/data.db:table:u", "--format", "json"]).code(1);
        assert_eq!(json(&only)["findings"].as_array().unwrap().len(), 1);
        app.cli(&["heal", "--db-only", "--only", "db:app/data.db:table:u"]).code(0);
        app.cli(&["validate", "--format", "json"]).code(1);
        app.cli(&["validate", "--fs-only"]).code(0);
    }
}
