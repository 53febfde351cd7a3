//! What a schema file may hold, decided by SQLite itself: each statement
//! is prepared with an authorizer callback that records every action
//! SQLite is about to take (create a table, insert into one, set a
//! pragma…), and the statement is classified from those actions, never
//! from its text. A schema file holds declarations — CREATE TABLE, INDEX,
//! VIEW, TRIGGER, VIRTUAL TABLE — and INSERT seed rows into the tables it
//! creates; anything else is refused with its line before it runs.
//!
//! Statements are split where SQLite's own `sqlite3_complete` says one is
//! complete, so a trigger body's `;` does not end its CREATE TRIGGER.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use super::coldef::squeeze;

/// One statement of a file: its 1-based line and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub line: usize,
    pub text: String,
}

/// What a statement that may stay in a schema file does.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    /// CREATE TABLE / INDEX / VIEW / TRIGGER / VIRTUAL TABLE.
    Declaration,
    /// INSERT rows into `table` (as SQLite names it).
    Seed { table: String },
}

/// An action SQLite reported while preparing a statement, owned.
#[derive(Debug, Clone, PartialEq)]
enum Act {
    Create,
    CreateTemp,
    /// CREATE TABLE … AS SELECT and friends read rows: `Select`.
    Select,
    Read,
    Function,
    /// CREATE INDEX fills the new index.
    Reindex,
    Insert {
        table: String,
        trigger: Option<String>,
    },
    Update {
        table: String,
        trigger: Option<String>,
    },
    Delete {
        table: String,
        trigger: Option<String>,
    },
    /// Anything else, described for the message: PRAGMA, DROP, ATTACH…
    Refused(String),
}

/// `sqlite_master` and its aliases: written by every CREATE.
fn is_schema_table(table: &str) -> bool {
    ["sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(table))
}

fn act_of(ctx: &AuthContext<'_>) -> Act {
    let trigger = ctx.accessor.map(str::to_string);
    match ctx.action {
        AuthAction::CreateTable { .. }
        | AuthAction::CreateIndex { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateVtable { .. } => Act::Create,
        AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTempTrigger { .. } => Act::CreateTemp,
        AuthAction::Select => Act::Select,
        AuthAction::Read { .. } => Act::Read,
        AuthAction::Function { .. } => Act::Function,
        AuthAction::Insert { table_name } => Act::Insert { table: table_name.to_string(), trigger },
        AuthAction::Update { table_name, .. } => Act::Update { table: table_name.to_string(), trigger },
        AuthAction::Delete { table_name } => Act::Delete { table: table_name.to_string(), trigger },
        AuthAction::Pragma { pragma_name, .. } => Act::Refused(format!("PRAGMA {pragma_name}")),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Act::Refused("transaction control (heal runs its own transactions)".into())
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Act::Refused("ATTACH / DETACH".into()),
        AuthAction::AlterTable { .. } => {
            Act::Refused("ALTER TABLE (declare the final CREATE TABLE; renames go in [[database.rename]])".into())
        }
        AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. } => Act::Refused("DROP".into()),
        AuthAction::Reindex { .. } => Act::Reindex,
        AuthAction::Analyze { .. } => Act::Refused("ANALYZE".into()),
        // SQLITE_RECURSIVE: a recursive common table expression, a read.
        AuthAction::Unknown { code: 33, .. } => Act::Select,
        _ => Act::Refused("an action that is not a declaration".into()),
    }
}

/// Decides from SQLite's actions whether a statement may stay in a schema
/// file; the error says why not.
fn classify(acts: &[Act]) -> Result<Class, String> {
    if let Some(Act::Refused(what)) = acts.iter().find(|a| matches!(a, Act::Refused(_))) {
        return Err(format!("{what} is not a declaration"));
    }
    if acts.contains(&Act::CreateTemp) {
        return Err("a TEMP object is not stored in the database file".into());
    }
    if let Some(Act::Delete { table, trigger }) = acts.iter().find(|a| matches!(a, Act::Delete { .. })) {
        return Err(format!("it deletes rows from {table}{}", by(trigger)));
    }
    if acts.contains(&Act::Create) {
        // Every CREATE writes the schema table; CREATE … AS SELECT alone reads rows.
        if acts.contains(&Act::Select) {
            return Err("CREATE … AS SELECT copies rows; declare the columns and INSERT seed rows instead".into());
        }
        for act in acts {
            if let Act::Insert { table, trigger } | Act::Update { table, trigger } = act {
                if !is_schema_table(table) || trigger.is_some() {
                    return Err(format!("it writes to {table}{}", by(trigger)));
                }
            }
        }
        return Ok(Class::Declaration);
    }
    let target = acts.iter().find_map(|a| match a {
        Act::Insert { table, trigger: None } => Some(table.clone()),
        _ => None,
    });
    let Some(target) = target.filter(|_| !acts.contains(&Act::Reindex)) else {
        let what = if acts.contains(&Act::Reindex) { "REINDEX is not a declaration" } else { NEITHER };
        return Err(what.into());
    };
    if target.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(format!("it writes SQLite's own table {target}"));
    }
    for act in acts {
        if let Act::Insert { table, trigger } | Act::Update { table, trigger } = act {
            // An upsert updates its own rows; a trigger that writes elsewhere changes other data.
            if !table.eq_ignore_ascii_case(&target) || trigger.is_some() {
                return Err(format!("it writes to {table}{} as well as seeding {target}", by(trigger)));
            }
        }
    }
    Ok(Class::Seed { table: target })
}

const NEITHER: &str = "it is neither a declaration nor an INSERT of seed rows";

fn by(trigger: &Option<String>) -> String {
    trigger.as_ref().map(|t| format!(" (through trigger or view {t})")).unwrap_or_default()
}

/// Records the actions of statements being prepared, and nothing while
/// they run (a virtual table's module prepares its own statements then).
pub struct Recorder {
    acts: Arc<Mutex<Vec<Act>>>,
    on: Arc<AtomicBool>,
}

impl Recorder {
    /// Installs the recording authorizer on `conn`; it allows everything.
    pub fn install(conn: &mut Connection) -> rusqlite::Result<Recorder> {
        let acts = Arc::new(Mutex::new(Vec::new()));
        let on = Arc::new(AtomicBool::new(true));
        let (sink, recording) = (Arc::clone(&acts), Arc::clone(&on));
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if recording.load(Ordering::SeqCst) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(act_of(&ctx));
            }
            Authorization::Allow
        }))?;
        Ok(Recorder { acts, on })
    }

    /// Prepares `text`, classifies it and, when it may stay, runs it.
    /// `Ok(None)` for a statement that is only comments.
    pub fn run(&self, conn: &Connection, text: &str) -> anyhow::Result<Result<Option<Class>, String>> {
        self.acts.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.on.store(true, Ordering::SeqCst);
        let mut stmt = match conn.prepare(text) {
            Ok(stmt) => stmt,
            Err(rusqlite::Error::Empty) => return Ok(Ok(None)),
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        };
        let acts = std::mem::take(&mut *self.acts.lock().unwrap_or_else(|e| e.into_inner()));
        if stmt.is_explain() != 0 {
            return Ok(Err("EXPLAIN is not a declaration".into()));
        }
        let class = match classify(&acts) {
            Ok(class) => class,
            Err(why) => return Ok(Err(why)),
        };
        self.on.store(false, Ordering::SeqCst);
        let ran = stmt.raw_execute();
        self.on.store(true, Ordering::SeqCst);
        ran.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Ok(Some(class)))
    }
}

/// The statements of `sql`, each with the line its first word is on.
pub fn split(sql: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut lines = Lines { sql, at: 0, line: 1 };
    let mut start = 0;
    for (i, _) in sql.match_indices(';') {
        if is_complete(&sql[start..=i]) {
            push(start, i + 1, &mut lines, &mut statements);
            start = i + 1;
        }
    }
    push(start, sql.len(), &mut lines, &mut statements);
    statements
}

/// Line numbers of offsets met in increasing order, counted once: a DDL
/// of thousands of statements is not re-read from its start for each.
struct Lines<'a> {
    sql: &'a str,
    at: usize,
    line: usize,
}

impl Lines<'_> {
    fn of(&mut self, offset: usize) -> usize {
        self.line += memchr::memchr_iter(b'\n', &self.sql.as_bytes()[self.at..offset]).count();
        self.at = offset;
        self.line
    }
}

fn push(start: usize, end: usize, lines: &mut Lines, out: &mut Vec<Statement>) {
    let text = &lines.sql[start..end];
    let squeezed = squeeze(text);
    if squeezed.trim_matches(|c: char| c == ';' || c.is_whitespace()).is_empty() {
        return;
    }
    let line = lines.of(start + significant_start(text));
    out.push(Statement { line, text: text.trim().to_string() });
}

/// Offset of the first character that is neither whitespace nor comment.
fn significant_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
        } else if bytes[i..].starts_with(b"--") {
            i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p + 1);
        } else if bytes[i..].starts_with(b"/*") {
            i = text[i + 2..].find("*/").map_or(bytes.len(), |p| i + 4 + p);
        } else {
            break;
        }
    }
    i
}

fn is_complete(sql: &str) -> bool {
    let Ok(text) = CString::new(sql) else { return false };
    // SAFETY: a NUL-terminated string that outlives the call.
    unsafe { rusqlite::ffi::sqlite3_complete(text.as_ptr()) != 0 }
}

/// A statement as a message shows it: one line, at most about 80 characters.
pub fn shown(text: &str) -> String {
    let one_line = squeeze(text);
    let one_line = one_line.trim_end_matches(';').trim_end();
    if one_line.chars().count() <= 80 {
        return one_line.to_string();
    }
    let cut: String = one_line.chars().take(77).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(setup: &str, sql: &str) -> Result<Option<Class>, String> {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(setup).unwrap();
        let recorder = Recorder::install(&mut conn).unwrap();
        recorder.run(&conn, sql).unwrap()
    }

    #[test]
    fn declarations_are_recognised_by_sqlite() {
        let setup = "CREATE TABLE base(id INTEGER PRIMARY KEY, name TEXT, n INT);";
        for sql in [
            "CREATE TABLE t(a INT CHECK (a > 0), b TEXT DEFAULT (lower('X')), c AS (a * 2) STORED)",
            "CREATE TABLE IF NOT EXISTS t2(a REFERENCES base(id))",
            "CREATE INDEX i ON base(lower(name)) WHERE n > 0",
            "CREATE UNIQUE INDEX u ON base(name)",
            "CREATE VIEW v AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 3) SELECT * FROM r, base",
            "CREATE TRIGGER tr AFTER INSERT ON base BEGIN DELETE FROM base WHERE id < 0; UPDATE base SET n = 1; END",
            "CREATE VIRTUAL TABLE docs USING fts5(body)",
        ] {
            assert_eq!(class_of(setup, sql), Ok(Some(Class::Declaration)), "{sql}");
        }
    }

    #[test]
    fn seed_rows_name_their_table() {
        let setup = "CREATE TABLE roles(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);
                     CREATE TABLE other(x);";
        for sql in [
            "INSERT INTO roles(name) VALUES ('admin'), ('user')",
            "INSERT OR IGNORE INTO roles(name) SELECT 'x' FROM other",
            "INSERT INTO roles(name) VALUES ('a') ON CONFLICT(name) DO UPDATE SET name = excluded.name",
            "REPLACE INTO roles(id, name) VALUES (1, 'root')",
        ] {
            assert_eq!(class_of(setup, sql), Ok(Some(Class::Seed { table: "roles".into() })), "{sql}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        let setup = "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT); CREATE TABLE log(m);
                     CREATE TRIGGER wipe AFTER INSERT ON log BEGIN DELETE FROM users; END;";
        for (sql, why) in [
            ("PRAGMA writable_schema=ON", "PRAGMA writable_schema"),
            ("PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys"),
            ("DELETE FROM users", "deletes rows from users"),
            ("UPDATE users SET name = 'x'", "neither"),
            ("DROP TABLE log", "DROP"),
            ("ALTER TABLE users ADD COLUMN x", "ALTER TABLE"),
            ("BEGIN", "transaction control"),
            ("SAVEPOINT s", "transaction control"),
            ("SELECT * FROM users", "neither"),
            ("VACUUM", "neither"),
            ("ATTACH ':memory:' AS other", "ATTACH"),
            ("CREATE TEMP TABLE t(a)", "TEMP"),
            ("CREATE TABLE copy AS SELECT * FROM users", "AS SELECT"),
            ("INSERT INTO log VALUES ('x')", "deletes rows from users (through trigger or view wipe)"),
            ("INSERT INTO sqlite_sequence VALUES ('users', 5)", "SQLite's own table"),
            ("EXPLAIN CREATE TABLE z(a)", "EXPLAIN"),
            ("ANALYZE", "ANALYZE"),
            ("REINDEX", "neither"),
            ("REINDEX users", "neither"),
        ] {
            match class_of(setup, sql) {
                Err(message) => assert!(message.contains(why), "{sql}: {message}"),
                other => panic!("{sql} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn statements_are_split_where_sqlite_says_and_keep_their_line() {
        let sql = "-- header\nCREATE TABLE a(x);\n\n/* c */ CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n\
                   INSERT INTO a VALUES ('x;y');  -- done\n;\nCREATE TABLE b(y)";
        let statements = split(sql);
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 8, 10]);
        assert!(statements[1].text.ends_with("END;"), "{:?}", statements[1]);
        assert_eq!(statements[3].text, "CREATE TABLE b(y)");
        assert_eq!(shown("CREATE   TABLE\n a(x);"), "CREATE TABLE a(x)");
    }
}
