//! What the live rows must satisfy for a step to succeed: no duplicates
//! under a new UNIQUE index or constraint, no NULL under a new NOT NULL.
//! Checked read-only before a fix is offered (a fix known to fail is not
//! offered; its message says why), and used to name the cause when a
//! step fails at heal time (SQLite says "UNIQUE constraint failed: t.a";
//! the report says which values are duplicated, and how often).

use rusqlite::Connection;

use super::coldef::quote;
use super::datacheck::render;

/// Duplicate values shown in a message.
const SHOWN: usize = 5;
/// Duplicate groups counted at most.
const COUNTED: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// No two rows of `table` share a value of `columns` (rows with a NULL
    /// there apart, as UNIQUE allows).
    Distinct { table: String, columns: Vec<String> },
    /// No row of `table` is NULL in `column`.
    NotNull { table: String, column: String },
}

impl Need {
    /// Why the rows of the live database do not satisfy it, or `None`.
    pub fn unmet(&self, conn: &Connection) -> rusqlite::Result<Option<String>> {
        match self {
            Need::Distinct { table, columns } => {
                // Checked first: SQLite reads an unknown "name" as a string literal.
                for column in columns {
                    if !has_column(conn, table, column)? {
                        return Ok(None); // a column the step adds: its values are not known yet
                    }
                }
                duplicates(conn, table, columns)
            }
            Need::NotNull { table, column } if !has_column(conn, table, column)? => {
                let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| r.get(0))?;
                Ok((n > 0)
                    .then(|| format!("{n} {} of {} would have no value in {}", rows(n), quote(table), quote(column))))
            }
            Need::NotNull { table, column } => {
                let sql = format!("SELECT count(*) FROM {} WHERE {} IS NULL", quote(table), quote(column));
                let n: i64 = conn.query_row(&sql, [], |r| r.get(0))?;
                Ok((n > 0).then(|| {
                    format!("{n} {} of {} {} no value (NULL) in {}", rows(n), quote(table), has(n), quote(column))
                }))
            }
        }
    }
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let sql = "SELECT count(*) FROM pragma_table_xinfo(?1) WHERE name = ?2 COLLATE NOCASE";
    let n: i64 = conn.query_row(sql, [table, column], |r| r.get(0))?;
    Ok(n > 0)
}

fn rows(n: i64) -> &'static str {
    if n == 1 {
        "row"
    } else {
        "rows"
    }
}

fn has(n: i64) -> &'static str {
    if n == 1 {
        "has"
    } else {
        "have"
    }
}

fn duplicates(conn: &Connection, table: &str, columns: &[String]) -> rusqlite::Result<Option<String>> {
    let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let list = list.join(", ");
    let present: Vec<String> = columns.iter().map(|c| format!("{} IS NOT NULL", quote(c))).collect();
    let sql = format!(
        "SELECT {list}, count(*) FROM {} WHERE {} GROUP BY {list} HAVING count(*) > 1 ORDER BY count(*) DESC, {list}",
        quote(table),
        present.join(" AND ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut found = stmt.query([])?;
    let (mut shown, mut groups) = (Vec::new(), 0usize);
    while let Some(row) = found.next()? {
        groups += 1;
        if shown.len() < SHOWN {
            let values: Vec<String> =
                (0..columns.len()).map(|i| row.get_ref(i).map(render)).collect::<Result<_, _>>()?;
            let count: i64 = row.get(columns.len())?;
            shown.push(format!("({}) ×{count}", values.join(", ")));
        }
        if groups >= COUNTED {
            break;
        }
    }
    if groups == 0 {
        return Ok(None);
    }
    let more = match groups - shown.len() {
        0 => String::new(),
        n if groups >= COUNTED => format!(" and {n}+ more"),
        n => format!(" and {n} more"),
    };
    Ok(Some(format!(
        "UNIQUE over {}({list}) fails on the rows: duplicate values {}{more}",
        quote(table),
        shown.join(", ")
    )))
}

/// The cause of SQLite's constraint error `error`, from the rows: the
/// duplicate values of a UNIQUE failure, the row count of a NOT NULL one.
/// `rebuilt` is the live table a rebuild copies (SQLite names its
/// temporary copy in the message). Run after the step was rolled back.
pub fn explain(conn: &Connection, error: &str, rebuilt: Option<&str>) -> Option<String> {
    let need = if let Some(rest) = error.split("UNIQUE constraint failed: ").nth(1) {
        let pairs: Vec<(&str, &str)> = rest.split(", ").filter_map(|p| p.trim().split_once('.')).collect();
        let table = pairs.first()?.0;
        let columns = pairs.iter().map(|(_, c)| c.to_string()).collect();
        Need::Distinct { table: table.to_string(), columns }
    } else {
        let rest = error.split("NOT NULL constraint failed: ").nth(1)?;
        let (table, column) = rest.trim().split_once('.')?;
        Need::NotNull { table: table.to_string(), column: column.to_string() }
    };
    let need = match (need, rebuilt) {
        (Need::Distinct { columns, .. }, Some(live)) => Need::Distinct { table: live.to_string(), columns },
        (Need::NotNull { column, .. }, Some(live)) => Need::NotNull { table: live.to_string(), column },
        (need, None) => need,
    };
    need.unmet(conn).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(a INT, b TEXT);
             INSERT INTO t VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, 'y'), (2, 'y'), (3, NULL), (3, NULL), (4, 'z');
             INSERT INTO t VALUES (5, 'a'), (5, 'a'), (6, 'b'), (6, 'b'), (7, 'c'), (7, 'c'), (8, 'd'), (8, 'd');",
        )
        .unwrap();
        conn
    }

    #[test]
    fn duplicates_are_listed_most_frequent_first_nulls_apart() {
        let conn = db();
        let need = Need::Distinct { table: "t".into(), columns: vec!["a".into(), "b".into()] };
        let message = need.unmet(&conn).unwrap().unwrap();
        assert!(
            message.starts_with(
                "UNIQUE over \"t\"(\"a\", \"b\") fails on the rows: duplicate values (1, 'x') ×3, (2, 'y') ×2"
            ),
            "{message}"
        );
        assert!(message.ends_with(" and 1 more"), "{message}");
        assert!(!message.contains("NULL"), "{message}");
        let one = Need::Distinct { table: "t".into(), columns: vec!["b".into()] };
        conn.execute_batch("DELETE FROM t WHERE a <> 4").unwrap();
        assert_eq!(one.unmet(&conn).unwrap(), None);
    }

    #[test]
    fn sqlite_errors_are_explained_from_the_rows() {
        let conn = db();
        let unique = explain(&conn, "UNIQUE constraint failed: _preflight_new_t.a", Some("t")).unwrap();
        assert!(unique.contains("(1) ×3, (2) ×2, (3) ×2"), "{unique}");
        let null = explain(&conn, "NOT NULL constraint failed: t.b", None).unwrap();
        assert_eq!(null, "2 rows of \"t\" have no value (NULL) in \"b\"");
        let added = explain(&conn, "NOT NULL constraint failed: _preflight_new_t.uid", Some("t")).unwrap();
        assert_eq!(added, "16 rows of \"t\" would have no value in \"uid\"");
        assert_eq!(explain(&conn, "CHECK constraint failed: x", None), None);
    }
}
