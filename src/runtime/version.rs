//! Version numbers printed by tools (`Python 3.11.7`, `v20.1.0`,
//! `go version go1.21.5 linux/amd64`) and semver-style requirements
//! (`>=3.8`, `>=3.8, <4`, `~3.11`, `^1.2`) from the `semver` crate.
//!
//! Tools rarely print strict semver, so the first dotted number in the
//! output is taken, missing parts are zero (`3.8` is `3.8.0`), parts after
//! the third and suffixes such as `rc1` are ignored. A bare requirement
//! (`3.8`) means `^3.8`, as in Cargo; `==3.8` is accepted for `=3.8`.

use semver::{Version, VersionReq};

/// A parsed requirement that remembers how the manifest wrote it.
#[derive(Debug, Clone)]
pub struct Requirement {
    text: String,
    req: VersionReq,
}

impl Requirement {
    /// Parses a requirement, or says why it is not one.
    pub fn parse(text: &str) -> Result<Requirement, String> {
        let normal = text.trim().replace("==", "=");
        let req = VersionReq::parse(&normal).map_err(|e| e.to_string())?;
        Ok(Requirement { text: text.trim().to_string(), req })
    }

    pub fn matches(&self, version: &Version) -> bool {
        self.req.matches(version)
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The first version number in `text`: digits joined by dots (at least one
/// dot), not glued to a preceding digit or dot. `None` when there is none.
pub fn extract(text: &str) -> Option<Version> {
    let bytes = text.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !(bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.')))
        .find_map(|i| dotted_at(&text[i..]))
}

/// Parses `1.2.3…` at the start of `text`, if it has at least two parts.
fn dotted_at(text: &str) -> Option<Version> {
    let mut parts = Vec::new();
    for part in text.split('.') {
        let digits: &str = &part[..part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len())];
        if digits.is_empty() {
            break;
        }
        parts.push(digits.parse::<u64>().ok()?);
        if digits.len() < part.len() {
            break; // a suffix such as `rc1` or ` (main)` ends the number
        }
    }
    if parts.len() < 2 {
        return None;
    }
    Some(Version::new(parts[0], parts[1], parts.get(2).copied().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Option<String> {
        extract(text).map(|v| v.to_string())
    }

    #[test]
    fn versions_are_found_in_common_tool_output() {
        assert_eq!(v("Python 3.11.7").as_deref(), Some("3.11.7"));
        assert_eq!(v("v20.1.0\n").as_deref(), Some("20.1.0"));
        assert_eq!(v("go version go1.21.5 linux/amd64").as_deref(), Some("1.21.5"));
        assert_eq!(v("git version 2.39.2").as_deref(), Some("2.39.2"));
        assert_eq!(v("Python 3.12.0rc1").as_deref(), Some("3.12.0"));
        assert_eq!(v("sqlite 3.45").as_deref(), Some("3.45.0"));
        assert_eq!(v("tool 1.2.3.4").as_deref(), Some("1.2.3"));
        assert_eq!(v("x86_64 build, release 5.10.1").as_deref(), Some("5.10.1"));
    }

    #[test]
    fn text_without_a_dotted_number_has_no_version() {
        assert_eq!(v("usage: tool [options]"), None);
        assert_eq!(v("error 42"), None);
        assert_eq!(v(""), None);
        assert_eq!(v("1."), None);
    }

    #[test]
    fn requirements_accept_newer_and_refuse_older_versions() {
        let req = Requirement::parse(">=3.8").unwrap();
        assert!(req.matches(&Version::new(3, 11, 7)));
        assert!(req.matches(&Version::new(3, 8, 0)));
        assert!(!req.matches(&Version::new(3, 7, 17)));
        assert!(!req.matches(&Version::new(2, 7, 18)));
        let range = Requirement::parse(">=3.8, <4").unwrap();
        assert!(!range.matches(&Version::new(4, 0, 0)));
        assert!(Requirement::parse("==3.11").unwrap().matches(&Version::new(3, 11, 2)));
        assert_eq!(Requirement::parse(" >=3.8 ").unwrap().to_string(), ">=3.8");
    }

    #[test]
    fn nonsense_requirements_are_refused() {
        assert!(Requirement::parse("latest").is_err());
        assert!(Requirement::parse(">=").is_err());
    }
}
