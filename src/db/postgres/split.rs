//! Cutting a DDL file into statements, the way psql does: on `;` outside
//! quotes, dollar quotes and comments. Nothing here understands SQL beyond
//! its lexical layer; what a statement *does* is learned from the server
//! (`desired.rs`). The leading words are kept so that a statement which
//! could change live data is refused before it is ever sent.

/// One statement of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// 1-based line of its first word.
    pub line: usize,
    /// The text, without the final `;`.
    pub text: String,
    /// Its first words, upper-cased when bare (quoted ones keep their quotes).
    pub words: Vec<String>,
}

impl Statement {
    /// Do the first words read `expected` (bare words, any case)?
    pub fn starts_with(&self, expected: &[&str]) -> bool {
        expected.len() <= self.words.len() && expected.iter().zip(&self.words).all(|(e, w)| w == e)
    }
}

/// How many leading words are kept.
const WORDS: usize = 8;

/// Splits `text`; an unterminated quote or comment is an error with its line.
pub fn split(text: &str) -> Result<Vec<Statement>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut words: Vec<String> = Vec::new();
    let mut first_line: Option<usize> = None;
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // psql meta-commands (`\connect`, pg_dump's `\restrict`) are not SQL.
        if c == '\\' && current.trim().is_empty() && at_line_start(&chars, i) {
            return Err(format!("line {line}: psql meta-command is not SQL"));
        }
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let start = line;
            let mut depth = 0;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(ch), _) => {
                        if *ch == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                    (None, _) => return Err(format!("line {start}: comment is never closed")),
                }
            }
            current.push(' ');
            continue;
        }
        if c == ';' {
            if let Some(l) = first_line.take() {
                out.push(Statement { line: l, text: current.trim().to_string(), words: std::mem::take(&mut words) });
            }
            current.clear();
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            if c == '\n' {
                line += 1;
            }
            current.push(c);
            i += 1;
            continue;
        }
        first_line.get_or_insert(line);
        let start = i;
        let start_line = line;
        if c == '\'' || c == '"' || ((c == 'E' || c == 'e') && next == Some('\'')) {
            let escapes = c != '\'' && c != '"';
            let quote = if escapes { '\'' } else { c };
            i += if escapes { 2 } else { 1 };
            loop {
                match chars.get(i) {
                    None => return Err(format!("line {start_line}: quoted text is never closed")),
                    Some('\\') if escapes => i += 2,
                    Some(&q) if q == quote => {
                        if chars.get(i + 1) == Some(&quote) {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(ch) => {
                        if *ch == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            if c == '"' && words.len() < WORDS {
                words.push(chars[start..i].iter().collect());
            }
        } else if let Some(tag) = dollar_tag(&chars, i) {
            i += tag.len();
            loop {
                if i >= chars.len() {
                    return Err(format!("line {start_line}: dollar-quoted text is never closed"));
                }
                if chars[i..].starts_with(&tag) {
                    i += tag.len();
                    break;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            if words.len() < WORDS {
                words.push(chars[start..i].iter().collect::<String>().to_uppercase());
            }
        } else {
            i += 1;
            if words.len() < WORDS && !c.is_alphanumeric() {
                words.push(c.to_string());
            }
        }
        current.extend(&chars[start..i]);
    }
    if let Some(l) = first_line {
        out.push(Statement { line: l, text: current.trim().to_string(), words });
    }
    Ok(out)
}

fn at_line_start(chars: &[char], i: usize) -> bool {
    chars[..i].iter().rev().take_while(|c| **c != '\n').all(|c| c.is_whitespace())
}

/// `$tag$` starting at `i`, if any (`$1` parameters are not tags).
fn dollar_tag(chars: &[char], i: usize) -> Option<Vec<char>> {
    if chars.get(i) != Some(&'$') {
        return None;
    }
    let mut j = i + 1;
    while let Some(&c) = chars.get(j) {
        if c == '$' {
            return Some(chars[i..=j].to_vec());
        }
        if !(c.is_alphanumeric() || c == '_') || (j == i + 1 && c.is_ascii_digit()) {
            return None;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_comments_and_dollar_quotes() {
        let text = "-- head\nCREATE TABLE a (x text DEFAULT ';');\n/* c; /* nested; */ */\n\
                    CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                    COMMENT ON TABLE a IS E'it''s; \\' here';\nINSERT INTO \"A;b\" VALUES (1)";
        let s = split(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].line, 2);
        assert_eq!(s[0].words[..3], ["CREATE", "TABLE", "A"]);
        assert_eq!(s[1].line, 4);
        assert!(s[1].text.contains("SELECT 1;"));
        assert_eq!(s[2].line, 5);
        assert_eq!(s[3].words[..3], ["INSERT", "INTO", "\"A;b\""]);
        assert!(s[3].starts_with(&["INSERT", "INTO"]));
    }

    #[test]
    fn line_numbers_count_newlines_inside_quotes() {
        let s = split("CREATE VIEW v AS SELECT 'a\nb';\n\nDROP TABLE t;").unwrap();
        assert_eq!(s[1].line, 4);
    }

    #[test]
    fn unterminated_text_and_meta_commands_are_errors_with_lines() {
        assert_eq!(split("SELECT 1;\nSELECT 'x").unwrap_err(), "line 2: quoted text is never closed");
        assert_eq!(split("\\restrict abc\nCREATE TABLE t();").unwrap_err(), "line 1: psql meta-command is not SQL");
        assert!(split("/* open").is_err());
        assert!(split("SELECT $a$ x").is_err());
    }

    #[test]
    fn empty_statements_are_skipped() {
        assert_eq!(split(";;  ;\n-- only a comment\n").unwrap(), vec![]);
    }
}
