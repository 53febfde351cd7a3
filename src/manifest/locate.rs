//! Finding where in the manifest text a value sits, so errors found after
//! parsing (a duplicate path, a bad mode) still carry a line and column.
//! Both TOML and JSON write a string value between quotes, so a search for
//! the quoted value works for either syntax.

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

/// The byte offset of the `nth` (0-based) quoted occurrence of `value`;
/// with `key`, only occurrences written as that key's value count.
pub fn find_value(source: &str, key: Option<&str>, value: &str, nth: usize) -> Option<usize> {
    let mut hits = ['"', '\'']
        .iter()
        .flat_map(|q| {
            let needle = format!("{q}{value}{q}");
            source.match_indices(&needle).map(|(i, _)| i).collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    hits.retain(|&at| key.is_none_or(|k| is_value_of(source, at, k)));
    hits.sort_unstable();
    hits.get(nth).copied()
}

/// Whether the text just before `at` is `key =` (TOML) or `"key":` (JSON).
fn is_value_of(source: &str, at: usize, key: &str) -> bool {
    let before = source[..at].trim_end();
    let Some(before) = before.strip_suffix('=').or_else(|| before.strip_suffix(':')) else {
        return false;
    };
    let before = before.trim_end();
    let before = before.strip_suffix('"').unwrap_or(before);
    before.ends_with(key) && !before[..before.len() - key.len()].ends_with(|c: char| c.is_alphanumeric() || c == '_')
}

/// The byte offset of a key (`key =` in TOML, `"key":` in JSON).
pub fn find_key(source: &str, key: &str) -> Option<usize> {
    source
        .lines()
        .scan(0usize, |offset, line| {
            let start = *offset;
            *offset += line.len() + 1;
            Some((start, line))
        })
        .find_map(|(start, line)| {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let bare = trimmed.strip_prefix('"').unwrap_or(trimmed);
            let rest = bare.strip_prefix(key)?;
            let rest = rest.strip_prefix('"').unwrap_or(rest).trim_start();
            (rest.starts_with('=') || rest.starts_with(':')).then_some(start + indent)
        })
}

/// The text of the 1-based `line`, for quoting under an error.
pub fn line_text(source: &str, line: usize) -> Option<&str> {
    source.lines().nth(line.checked_sub(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn find_value_returns_the_nth_quoted_occurrence() {
        let src = "a = \"data\"\nb = 'data'\nc = \"database\"";
        assert_eq!(find_value(src, None, "data", 0), Some(4));
        assert_eq!(find_value(src, None, "data", 1), Some(15));
        assert_eq!(find_value(src, None, "data", 2), None);
        assert_eq!(find_value(src, Some("b"), "data", 0), Some(15));
        assert_eq!(find_value("{\"ab\": \"x\", \"b\": \"x\"}", Some("b"), "x", 0), Some(17));
    }

    #[test]
    fn find_key_matches_toml_and_json() {
        assert_eq!(find_key("x = 1\nversion = 2", "version"), Some(6));
        assert_eq!(find_key("{\n  \"version\": 2}", "version"), Some(4));
        assert_eq!(find_key("versions = 2", "version"), None);
    }
}
