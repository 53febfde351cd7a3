//! `[[database.check]]` queries: every row they return is a violation. They
//! run on the read-only connection, so a check cannot change the database;
//! only its `fix`, in heal, can.

use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Rows shown in a finding's message.
const SHOWN: usize = 3;
/// Rows counted at most (a check may match a whole table).
const COUNTED: usize = 10_000;

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Clean,
    /// `count` rows (at most [`COUNTED`]); the first few rendered.
    Rows {
        count: usize,
        first: Vec<String>,
    },
    /// The query does not run (yet): a missing table, a syntax error…
    Failed(String),
}

/// Runs a check query.
pub fn run(conn: &Connection, sql: &str) -> Outcome {
    match rows(conn, sql) {
        Ok((0, _)) => Outcome::Clean,
        Ok((count, first)) => Outcome::Rows { count, first },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// How many rows the query returns (bounded), and the first few rendered.
pub fn rows(conn: &Connection, sql: &str) -> anyhow::Result<(usize, Vec<String>)> {
    let mut stmt = conn.prepare(sql)?;
    if !stmt.readonly() {
        anyhow::bail!("a check must be a query (SELECT), not a change");
    }
    let width = stmt.column_count();
    let mut rows = stmt.query([])?;
    let (mut count, mut first) = (0, Vec::new());
    while let Some(row) = rows.next()? {
        if first.len() < SHOWN {
            let values: Vec<String> = (0..width).map(|i| row.get_ref(i).map(render)).collect::<Result<_, _>>()?;
            first.push(format!("({})", values.join(", ")));
        }
        count += 1;
        if count >= COUNTED {
            break;
        }
    }
    Ok((count, first))
}

/// The finding's message for rows found.
pub fn message(count: usize, first: &[String]) -> String {
    let more = if count >= COUNTED { "+" } else { "" };
    let noun = if count == 1 { "row" } else { "rows" };
    format!("the check returns {count}{more} {noun}: {}", first.join(", "))
}

pub fn render(value: ValueRef) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            let short: String = text.chars().take(40).collect();
            let cut = if short.len() < text.len() { "…" } else { "" };
            format!("'{short}{cut}'")
        }
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_and_the_first_shown() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(s TEXT, n INT); INSERT INTO t VALUES ('a', 1), ('a', 2), (NULL, 3), ('b', 4);",
        )
        .unwrap();
        assert_eq!(run(&conn, "SELECT s FROM t WHERE n > 10"), Outcome::Clean);
        let Outcome::Rows { count, first } = run(&conn, "SELECT s, n FROM t") else { panic!() };
        assert_eq!(count, 4);
        assert_eq!(first, ["('a', 1)", "('a', 2)", "(NULL, 3)"]);
        assert!(matches!(run(&conn, "SELECT * FROM nope"), Outcome::Failed(m) if m.contains("no such table")));
        assert!(matches!(run(&conn, "DELETE FROM t"), Outcome::Failed(_)));
    }
}
