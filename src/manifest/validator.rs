//! The validator's tools: every error points at the file, line and column
//! of the value it is about, with the line shown; paths, globs, durations
//! and modes are checked the same way for every entry.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::locate::{find_key, find_value, line_col, line_text};
use super::{ManifestError, Pattern};
use crate::fsutil;

pub(super) fn with_snippet(file: &Path, source: &str, line: usize, col: usize, message: String) -> ManifestError {
    let message = match line_text(source, line) {
        Some(text) if text.len() <= 200 => format!("{message}\n  {line} | {text}"),
        _ => message,
    };
    ManifestError::at(file, line, col, message)
}

/// Carries the file and its text so every check can point at a line.
pub(super) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) source: &'a str,
    pub(super) root: &'a Path,
    /// Normalised declared path → how many times seen, for duplicates.
    pub(super) seen: HashMap<PathBuf, usize>,
    /// How many times each raw value was looked up, to point at the right one.
    pub(super) occurrences: HashMap<(String, String), usize>,
}

impl Validator<'_> {
    pub(super) fn error_at(&mut self, key: &str, value: &str, message: String) -> ManifestError {
        let nth = self.occurrences.get(&(key.to_string(), value.to_string())).copied().unwrap_or(1).saturating_sub(1);
        let offset = find_value(self.source, Some(key), value, nth).or_else(|| find_value(self.source, None, value, 0));
        let (line, col) = offset.map_or((1, 1), |o| line_col(self.source, o));
        with_snippet(self.file, self.source, line, col, message)
    }

    pub(super) fn error_at_key(&self, key: &str, message: String) -> ManifestError {
        let (line, col) = find_key(self.source, key).map_or((1, 1), |o| line_col(self.source, o));
        with_snippet(self.file, self.source, line, col, message)
    }

    pub(super) fn note(&mut self, key: &str, value: &str) {
        *self.occurrences.entry((key.to_string(), value.to_string())).or_default() += 1;
    }

    /// A relative path that stays inside the root, lexically and on disk.
    pub(super) fn path(&mut self, key: &str, value: &str) -> Result<PathBuf, ManifestError> {
        self.note(key, value);
        let path = self.relative(key, value)?;
        if let Err(e) = fsutil::confine(self.root, &path) {
            return Err(self.error_at(key, value, format!("`{key}` = {value:?} {e}; declare a path inside the root")));
        }
        Ok(path)
    }

    pub(super) fn relative(&mut self, key: &str, value: &str) -> Result<PathBuf, ManifestError> {
        if value.is_empty() {
            return Err(self.error_at_key(key, format!("`{key}` is empty; give a path relative to the root")));
        }
        if value.chars().any(char::is_control) {
            return Err(self.error_at(key, value, format!("`{key}` contains a control character; rename the path")));
        }
        let mut normal = PathBuf::new();
        for component in Path::new(value).components() {
            match component {
                Component::Normal(part) => normal.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.error_at(
                        key,
                        value,
                        format!("`{key}` = {value:?} uses `..` and leaves the root; declare a path inside the root"),
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.error_at(
                        key,
                        value,
                        format!("`{key}` = {value:?} is absolute; write it relative to the root"),
                    ))
                }
            }
        }
        if normal.as_os_str().is_empty() {
            return Err(self.error_at(
                key,
                value,
                format!("`{key}` = {value:?} names the root itself; give a path inside it"),
            ));
        }
        Ok(normal)
    }

    /// A declared path that must not be declared twice.
    pub(super) fn unique_path(&mut self, key: &str, value: &str) -> Result<PathBuf, ManifestError> {
        let path = self.path(key, value)?;
        let count = self.seen.entry(path.clone()).or_default();
        *count += 1;
        if *count > 1 {
            return Err(self.error_at(
                key,
                value,
                format!("`{key}` = {value:?} is declared more than once; keep one entry per path"),
            ));
        }
        Ok(path)
    }

    pub(super) fn glob(&mut self, key: &str, value: &str) -> Result<Pattern, ManifestError> {
        self.note(key, value);
        self.relative(key, value)?;
        let prefix = literal_prefix(value);
        if !prefix.is_empty() {
            if let Err(e) = fsutil::confine(self.root, Path::new(&prefix)) {
                return Err(self.error_at(
                    key,
                    value,
                    format!("`{key}` = {value:?} {e}; declare a pattern inside the root"),
                ));
            }
        }
        Pattern::compile(value.trim_start_matches("./").to_string())
            .map_err(|e| self.error_at(key, value, format!("`{key}` = {value:?} is not a valid glob: {}", e.kind())))
    }

    pub(super) fn duration(&mut self, key: &str, value: &str) -> Result<Duration, ManifestError> {
        self.note(key, value);
        crate::runtime::clock::parse_duration(value).map_err(|e| {
            self.error_at(
                key,
                value,
                format!("`{key}` = {value:?} is not a usable duration ({e}); write e.g. \"30s\", \"10m\", \"14d\""),
            )
        })
    }

    pub(super) fn mode(&mut self, key: &str, value: &str) -> Result<u32, ManifestError> {
        self.note(key, value);
        let digits = value.strip_prefix("0o").unwrap_or(value);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if mode <= 0o7777 && !digits.is_empty() => Ok(mode),
            _ => {
                Err(self.error_at(key, value, format!("`{key}` = {value:?} is not an octal mode; write e.g. \"0750\"")))
            }
        }
    }
}

/// The part of a glob before its first special character, up to a `/`.
pub(super) fn literal_prefix(glob: &str) -> String {
    let end = glob.find(['*', '?', '[', '{']).unwrap_or(glob.len());
    match glob[..end].rfind('/') {
        Some(slash) if end < glob.len() => glob[..slash].to_string(),
        _ if end < glob.len() => String::new(),
        _ => glob.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefix_stops_before_the_first_wildcard() {
        assert_eq!(literal_prefix("state/*.lock"), "state");
        assert_eq!(literal_prefix("*.lock"), "");
        assert_eq!(literal_prefix("logs/app.log"), "logs/app.log");
        assert_eq!(literal_prefix("a/b/**/c"), "a/b");
    }
}
