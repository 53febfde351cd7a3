//! `[[database.check]]` queries: each row returned is a violation. They run
//! wrapped as a subquery (so only a query is accepted) inside a read-only
//! savepoint: a check cannot change anything; only its `fix`, in heal, can.

use postgres::{SimpleQueryMessage, Transaction};

use super::connect::describe;

/// Rows shown in a finding's message.
const SHOWN: usize = 3;
/// Rows counted at most (a check may match a whole table).
const COUNTED: usize = 10_000;

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Clean,
    Rows { count: usize, first: Vec<String> },
    Failed(String),
}

/// Runs one check; the transaction must already be read-only.
pub fn run(tx: &mut Transaction<'_>, sql: &str) -> Outcome {
    if tx.batch_execute("SAVEPOINT preflight_check").is_err() {
        return Outcome::Failed("cannot open a savepoint".into());
    }
    let outcome = match rows(tx, sql) {
        Ok((0, _)) => Outcome::Clean,
        Ok((count, first)) => Outcome::Rows { count, first },
        Err(e) => Outcome::Failed(e),
    };
    // A failed query aborts only the savepoint.
    let _ = tx.batch_execute("ROLLBACK TO SAVEPOINT preflight_check; RELEASE SAVEPOINT preflight_check");
    outcome
}

/// How many rows the query returns (bounded), and the first few rendered.
pub fn rows(tx: &mut Transaction<'_>, sql: &str) -> Result<(usize, Vec<String>), String> {
    let query = sql.trim().trim_end_matches(';');
    let wrapped = format!("SELECT * FROM ({query}\n) AS preflight_check LIMIT {COUNTED}");
    let messages = tx.simple_query(&wrapped).map_err(|e| describe(&e))?;
    let mut count = 0;
    let mut first = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            if first.len() < SHOWN {
                let values: Vec<String> = (0..row.len()).map(|i| render(row.get(i))).collect();
                first.push(format!("({})", values.join(", ")));
            }
            count += 1;
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

fn render(value: Option<&str>) -> String {
    match value {
        None => "NULL".into(),
        Some(text) => {
            let short: String = text.chars().take(40).flat_map(char::escape_default).collect();
            let cut = if text.chars().count() > 40 { "…" } else { "" };
            format!("'{short}{cut}'")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_count_and_render() {
        assert_eq!(message(1, &["('a')".into()]), "the check returns 1 row: ('a')");
        assert!(message(COUNTED, &[]).contains("10000+ rows"));
        assert_eq!(render(None), "NULL");
        assert_eq!(render(Some("a\nb")), "'a\\nb'");
    }
}
