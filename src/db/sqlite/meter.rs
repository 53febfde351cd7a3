//! How far a rebuild's copy is: SQLite's update hook counts the rows
//! inserted while a task is armed, and every `EVERY` rows the count goes to
//! the task. The hook costs a relaxed atomic load per row changed on the
//! connection (and an increment while armed); it never stops a statement.
//! The total is estimated from the old table's rowid span, two b-tree
//! seeks, without reading the table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::Action;
use rusqlite::Connection;

use super::coldef::{literal, quote};
use crate::safety::Task;

/// Rows between two reports to the task.
const EVERY: u64 = 1 << 14;

#[derive(Default)]
struct Shared {
    armed: AtomicBool,
    rows: AtomicU64,
    task: Mutex<Option<Box<dyn Task>>>,
}

/// Counts rows inserted on one connection for the task it is armed with.
#[derive(Clone, Default)]
pub struct RowMeter(Arc<Shared>);

impl RowMeter {
    /// Installs the counting hook on `conn` (it replaces any update hook).
    pub fn install(conn: &mut Connection) -> rusqlite::Result<RowMeter> {
        let meter = RowMeter::default();
        let shared = Arc::clone(&meter.0);
        conn.update_hook(Some(move |action: Action, _: &str, _: &str, _: i64| {
            if action != Action::SQLITE_INSERT || !shared.armed.load(Ordering::Relaxed) {
                return;
            }
            let rows = shared.rows.fetch_add(1, Ordering::Relaxed) + 1;
            if rows % EVERY == 0 {
                if let Some(task) = shared.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    task.advance(rows);
                }
            }
        }))?;
        Ok(meter)
    }

    /// From now on, rows inserted are counted (from 0) for `task`.
    pub fn arm(&self, task: Box<dyn Task>) {
        *self.0.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        self.0.rows.store(0, Ordering::Relaxed);
        self.0.armed.store(true, Ordering::Relaxed);
    }

    /// Stops counting: the task, told the last count, back to the caller.
    pub fn disarm(&self) -> Option<Box<dyn Task>> {
        self.0.armed.store(false, Ordering::Relaxed);
        let task = self.0.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = &task {
            task.advance(self.0.rows.load(Ordering::Relaxed));
        }
        task
    }
}

/// About how many rows `table` holds, from the span of its rowids (exact
/// unless rows were deleted); `None` for a table without rowids, or when
/// every name of the rowid is a column's.
pub fn estimated_rows(conn: &Connection, table: &str) -> Option<u64> {
    let columns: Vec<String> = conn
        .prepare(&format!("SELECT lower(name) FROM pragma_table_xinfo({})", literal(table)))
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .ok()?;
    let rowid = ["rowid", "_rowid_", "oid"].into_iter().find(|n| !columns.iter().any(|c| c == n))?;
    let t = quote(table);
    // Two subqueries: each min() or max() alone is one seek.
    let sql = format!("SELECT (SELECT max({rowid}) FROM {t}) - (SELECT min({rowid}) FROM {t}) + 1");
    let span: Option<i64> = conn.query_row(&sql, [], |r| r.get(0)).ok()?;
    span.and_then(|n| u64::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::progress::recording::Recording;
    use crate::safety::Progress;

    #[test]
    fn rows_inserted_while_armed_are_counted_for_the_task() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a(x); CREATE TABLE b(x);").unwrap();
        let meter = RowMeter::install(&mut conn).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO a SELECT i FROM n",
        )
        .unwrap();
        let progress = Recording::default();
        meter.arm(progress.task("copy", estimated_rows(&conn, "a")));
        conn.execute_batch("INSERT INTO b SELECT x FROM a; INSERT INTO b SELECT x FROM a;").unwrap();
        conn.execute_batch("UPDATE b SET x = x + 1").unwrap(); // not an insert
        meter.disarm().unwrap().finish();
        conn.execute_batch("INSERT INTO b SELECT x FROM a").unwrap(); // no longer armed
        assert_eq!(progress.assert_task("copy", 1), Some(20_000));
        assert_eq!(progress.advances("copy"), [EVERY, 2 * EVERY, 40_000]);
    }

    #[test]
    fn the_estimate_is_the_rowid_span_or_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t(id) VALUES (5), (7), (104);
             CREATE TABLE hidden(rowid, v); INSERT INTO hidden VALUES (1, 2);
             CREATE TABLE w(k PRIMARY KEY) WITHOUT ROWID; CREATE TABLE e(v);",
        )
        .unwrap();
        assert_eq!(estimated_rows(&conn, "t"), Some(100));
        assert_eq!(estimated_rows(&conn, "hidden"), Some(1), "_rowid_ is still the rowid");
        assert_eq!(estimated_rows(&conn, "w"), None);
        assert_eq!(estimated_rows(&conn, "e"), None, "empty: nothing to estimate");
    }
}
