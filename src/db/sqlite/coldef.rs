//! The exact text of each column definition in a CREATE TABLE statement,
//! so that `ALTER TABLE ADD COLUMN` uses the DDL's own words (CHECK,
//! REFERENCES, GENERATED… included). This is a splitter, not a parser: it
//! only knows quotes, comments and parentheses, and finds the commas at the
//! top level of the column list. Its result is trusted only when the names
//! it finds are the ones SQLite reported, in the same order.

/// `(name, definition)` of each column, in order, or `None` when the text
/// cannot be split with certainty.
pub fn column_definitions(create_sql: &str, expected: &[String]) -> Option<Vec<(String, String)>> {
    let segments = split_body(create_sql)?;
    let columns: Vec<(String, String)> = segments
        .into_iter()
        .map(|s| squeeze(&s))
        .filter(|s| !is_table_constraint(s))
        .map(|s| first_identifier(&s).map(|name| (name, s.clone())))
        .collect::<Option<_>>()?;
    let names_match = columns.len() == expected.len()
        && columns.iter().zip(expected).all(|((name, _), want)| name.eq_ignore_ascii_case(want));
    names_match.then_some(columns)
}

/// The top-level comma-separated items between the first `(` and its match.
fn split_body(sql: &str) -> Option<Vec<String>> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut start = 0;
    let mut items = Vec::new();
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_quoted(bytes, i, c)?,
            b'[' => i = bytes[i..].iter().position(|&b| b == b']').map(|p| i + p + 1)?,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p + 1)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = sql[i + 2..].find("*/").map(|p| i + 2 + p + 2)?,
            b'(' => {
                depth += 1;
                if depth == 1 {
                    start = i + 1;
                }
                i += 1;
            }
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    items.push(sql[start..i].trim().to_string());
                    return Some(items);
                }
                i += 1;
            }
            b',' if depth == 1 => {
                items.push(sql[start..i].trim().to_string());
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// `text` with comments removed and every run of whitespace outside
/// quotes turned into one space, trimmed. Quoted strings and identifiers
/// are kept byte for byte, so two texts that squeeze to the same string
/// are the same tokens.
pub fn squeeze(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut space = false;
    while i < bytes.len() {
        let (next, blank) = match bytes[i] {
            q @ (b'"' | b'\'' | b'`') => (skip_quoted(bytes, i, q).unwrap_or(bytes.len()), false),
            b'[' => (bytes[i..].iter().position(|&b| b == b']').map_or(bytes.len(), |p| i + p + 1), false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                (bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p + 1), true)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                (text[i + 2..].find("*/").map_or(bytes.len(), |p| i + 4 + p), true)
            }
            b if b.is_ascii_whitespace() => (i + 1, true),
            // A run of plain bytes is copied in one go; no special byte is
            // inside a multi-byte UTF-8 character, so the run ends on a
            // character boundary.
            _ => (i + 1 + bytes[i + 1..].iter().position(|&b| is_special(b)).unwrap_or(bytes.len() - i - 1), false),
        };
        if blank {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push_str(&text[i..next]);
        }
        i = next;
    }
    out
}

/// Bytes that may start a quote, a comment or a blank.
fn is_special(b: u8) -> bool {
    SPECIAL[b as usize]
}

/// `is_special` as a table: one load per byte in the copy loop, which
/// every statement of every schema goes through on each validate.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = matches!(c, b'"' | b'\'' | b'`' | b'[' | b'-' | b'/') || c.is_ascii_whitespace();
        b += 1;
    }
    table
};

/// Index just past the closing quote; a doubled quote is an escaped one.
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

fn is_table_constraint(item: &str) -> bool {
    let word: String = item.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"].iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// The leading identifier of a column definition, unquoted.
fn first_identifier(item: &str) -> Option<String> {
    let bytes = item.as_bytes();
    match bytes.first()? {
        &q @ (b'"' | b'\'' | b'`') => {
            let end = skip_quoted(bytes, 0, q)?;
            let doubled = String::from_utf8(vec![q, q]).ok()?;
            Some(item[1..end - 1].replace(&doubled, &(q as char).to_string()))
        }
        b'[' => item.find(']').map(|end| item[1..end].to_string()),
        _ => {
            let end = item.find(|c: char| c.is_whitespace() || c == '(' || c == ',').unwrap_or(item.len());
            Some(item[..end].to_string())
        }
    }
}

/// `name` quoted as an SQL identifier: `"a""b"`.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A statement without its comments, whitespace outside quotes squeezed,
/// trailing semicolons dropped: equal results are the same tokens.
pub fn normalize(sql: &str) -> String {
    squeeze(sql).trim_end_matches(';').trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_columns_and_skips_table_constraints() {
        let sql = "CREATE TABLE \"a(b\" (id INTEGER, \"odd \"\"x\"\", y\" TEXT DEFAULT 'a,b' CHECK (length(id) > 0), \
                   -- a comment, with a comma\n [sel] NUMERIC(10, 2), PRIMARY KEY (id), UNIQUE(sel)) STRICT";
        let cols = column_definitions(sql, &names(&["id", "odd \"x\", y", "sel"])).unwrap();
        assert_eq!(cols[1].1, "\"odd \"\"x\"\", y\" TEXT DEFAULT 'a,b' CHECK (length(id) > 0)");
        assert_eq!(squeeze(" a  /* x */ 'b  c' -- d\n\te "), "a 'b  c' e");
        assert!(cols[2].1.ends_with("[sel] NUMERIC(10, 2)"));
    }

    #[test]
    fn refuses_when_names_disagree_with_sqlite() {
        assert!(column_definitions("CREATE TABLE t(a, b)", &names(&["a"])).is_none());
        assert!(column_definitions("CREATE TABLE t(a, b", &names(&["a", "b"])).is_none());
    }

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "(?s).{0,200}", names in proptest::collection::vec("[a-z\"\\[ ]{0,4}", 0..4)) {
            let _ = column_definitions(&text, &names);
            let squeezed = squeeze(&text);
            proptest::prop_assert_eq!(squeeze(&squeezed), squeezed.clone(), "squeeze is idempotent");
        }
    }
}
