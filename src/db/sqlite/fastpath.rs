//! The common case, fast: a live database whose schema is exactly the
//! DDL's statements. Loading a DDL into SQLite costs about 75 µs per table
//! (SQLite re-reads its schema table after each CREATE), so for a converged
//! database the DDL is compared as text first: split into statements by
//! SQLite's own `sqlite3_complete`, and each statement and each live
//! `sqlite_schema.sql` brought to the same form (comments dropped,
//! whitespace outside quotes squeezed, `IF NOT EXISTS` and the case of the
//! leading keywords normalised, as SQLite does when it stores them). Equal
//! sets of statements are the same schema. Anything else — another kind of
//! statement, a comment SQLite keeps, a single difference — falls back to
//! the full comparison, so this can only ever save time. A file that is
//! only CREATE statements SQLite stored word for word holds nothing a
//! schema file may not; every other statement (seed rows included) takes
//! the full path, where SQLite classifies it.

use std::ffi::CString;

use rusqlite::Connection;

use super::coldef::squeeze;

/// The live table names when the live schema is exactly the DDL's
/// statements, else `None`.
pub fn converged(conn: &Connection, ddl: &str) -> rusqlite::Result<Option<Vec<String>>> {
    let Some(mut wanted) = split(ddl).and_then(|s| s.iter().map(|s| canonical_squeezed(s)).collect::<Option<Vec<_>>>())
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        r"SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\_%' ESCAPE '\'",
    )?;
    let mut tables = Vec::new();
    let mut live = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (kind, name, sql): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let Some(text) = canonical(&sql) else { return Ok(None) };
        if kind == "table" {
            tables.push(name);
        }
        live.push(text);
    }
    wanted.sort();
    live.sort();
    Ok((wanted == live).then_some(tables))
}

/// The DDL's statements, squeezed, split where SQLite says a statement is
/// complete. `None` when the text does not end with a complete statement.
fn split(ddl: &str) -> Option<Vec<String>> {
    let mut statements = Vec::new();
    let mut start = 0;
    for (i, _) in ddl.match_indices(';') {
        let candidate = &ddl[start..=i];
        if is_complete(candidate)? {
            let text = squeeze(candidate);
            let text = text.trim_end_matches(';').trim_end();
            if !text.is_empty() {
                statements.push(text.to_string());
            }
            start = i + 1;
        }
    }
    let rest = squeeze(&ddl[start..]);
    if !rest.is_empty() {
        return None; // a last statement without `;`: let SQLite judge it
    }
    Some(statements)
}

fn is_complete(sql: &str) -> Option<bool> {
    let text = CString::new(sql).ok()?;
    // SAFETY: a NUL-terminated string that outlives the call.
    Some(unsafe { rusqlite::ffi::sqlite3_complete(text.as_ptr()) } != 0)
}

/// The form SQLite stores a CREATE statement in, or `None` for anything
/// that is not a CREATE of a `main` object.
fn canonical(statement: &str) -> Option<String> {
    canonical_squeezed(&squeeze(statement))
}

/// `canonical` of a statement `squeeze` has already been through.
fn canonical_squeezed(text: &str) -> Option<String> {
    let text = text.trim_end_matches(';').trim_end();
    let mut rest = keyword(text, "CREATE")?;
    let mut out = String::with_capacity(text.len());
    out.push_str("CREATE");
    for modifier in ["UNIQUE", "VIRTUAL"] {
        if let Some(after) = keyword(rest, modifier) {
            out.push(' ');
            out.push_str(modifier);
            rest = after;
        }
    }
    let (kind, after) = ["TABLE", "INDEX", "VIEW", "TRIGGER"].into_iter().find_map(|k| Some((k, keyword(rest, k)?)))?;
    out.push(' ');
    out.push_str(kind);
    rest = ["IF", "NOT", "EXISTS"].into_iter().try_fold(after, keyword).unwrap_or(after);
    out.push(' ');
    out.push_str(rest);
    Some(out)
}

/// What follows `word` (any case) and one space at the start of `text`;
/// `None` when `text` does not start so or nothing follows.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let (first, rest) = text.split_once(' ')?;
    (first.eq_ignore_ascii_case(word) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_built_from_the_ddl_is_recognised() {
        let ddl =
            "-- users\ncreate  table if not exists users (id INTEGER PRIMARY KEY, name TEXT DEFAULT 'a  b'); -- x\n\
                   CREATE UNIQUE INDEX users_name ON users(name) /* kept by SQLite */;\n\
                   CREATE TRIGGER t AFTER INSERT ON users BEGIN SELECT 1; SELECT 2; END;";
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(ddl).unwrap();
        assert_eq!(converged(&conn, ddl).unwrap(), Some(vec!["users".to_string()]));
    }

    #[test]
    fn any_difference_falls_back() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(a TEXT DEFAULT 'a  b');").unwrap();
        assert_eq!(converged(&conn, "CREATE TABLE t(a TEXT DEFAULT 'a b');").unwrap(), None);
        assert_eq!(converged(&conn, "CREATE TABLE t(a TEXT DEFAULT 'a  b'); CREATE TABLE u(b);").unwrap(), None);
        assert_eq!(
            converged(&conn, "CREATE TABLE t(a TEXT DEFAULT 'a  b'); INSERT INTO t VALUES ('x');").unwrap(),
            None
        );
        assert_eq!(converged(&conn, "CREATE TEMP TABLE t(a TEXT DEFAULT 'a  b');").unwrap(), None);
        // Not declarations: the full path refuses them, so they never pass here.
        assert_eq!(
            converged(&conn, "PRAGMA writable_schema=ON; CREATE TABLE t(a TEXT DEFAULT 'a  b');").unwrap(),
            None
        );
        assert_eq!(converged(&conn, "BEGIN; CREATE TABLE t(a TEXT DEFAULT 'a  b'); COMMIT;").unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn splitting_and_canonical_forms_never_panic(text in "(?s)[ -~\\n;'\"\\[\\]-]{0,200}") {
            if let Some(statements) = split(&text) {
                for s in statements {
                    let _ = canonical(&s);
                }
            }
        }
    }
}
