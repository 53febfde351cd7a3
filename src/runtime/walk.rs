//! The files a manifest glob (`state/*.lock`, `logs/**/*.log`) matches
//! under the root. The walk starts at the glob's literal folder prefix
//! (through it when it is a declared volume dir), otherwise never follows
//! a symlink (a symlink is not a match either), never leaves the root,
//! and skips the tool's own `.preflight` folder so that no rule can match
//! its quarantine, backups or history.

use std::fs;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::fsutil;

/// A regular file matched by a glob.
#[derive(Debug)]
pub struct Match {
    /// Relative to the root.
    pub rel: PathBuf,
    pub meta: fs::Metadata,
}

/// Every regular file under `root` whose relative path `is_match`es, in
/// path order; `glob` is the pattern's text, which says where to walk.
/// Unreadable folders are skipped, and so is `private` (relative to the
/// root): the tool's own folder. An `Err` means the glob's folder leads out
/// of the root.
pub fn matches(
    root: &Path,
    glob: &str,
    is_match: impl Fn(&Path) -> bool,
    private: &Path,
) -> anyhow::Result<Vec<Match>> {
    let (prefix, depth) = split(glob);
    if prefix.starts_with(private) {
        return Ok(Vec::new());
    }
    let start = fsutil::resolve(root, &prefix)?;
    // A volume dir may be a symlink (confined as a root of its own): the
    // walk starts through it. Any other symlink holds nothing.
    let is_volume = fsutil::volumes(root).contains(&prefix);
    let meta = if is_volume { fs::metadata(&start) } else { fs::symlink_metadata(&start) };
    if !meta.is_ok_and(|m| m.is_dir()) {
        return Ok(Vec::new()); // a missing folder (or a symlink to one) holds nothing
    }
    let state_dir = root.join(private);
    let mut walker = WalkDir::new(&start).follow_links(false).min_depth(1).sort_by_file_name();
    if let Some(depth) = depth {
        walker = walker.max_depth(depth);
    }
    let mut found = Vec::new();
    for entry in walker.into_iter().filter_entry(|e| e.path() != state_dir).filter_map(Result::ok) {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        if is_match(rel) {
            if let Ok(meta) = entry.metadata() {
                found.push(Match { rel: rel.to_path_buf(), meta });
            }
        }
    }
    Ok(found)
}

/// The glob's leading folders without wildcards, and how many levels below
/// them it can match (`None` with `**`: any depth).
fn split(glob: &str) -> (PathBuf, Option<usize>) {
    let parts: Vec<&str> = glob.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let is_literal = |p: &&&str| !p.contains(['*', '?', '[', '{', '\\']);
    let literal = parts.iter().take(parts.len().saturating_sub(1)).take_while(is_literal).count();
    let prefix: PathBuf = parts[..literal].iter().collect();
    let rest = &parts[literal..];
    let depth = if rest.iter().any(|p| p.contains("**")) { None } else { Some(rest.len()) };
    (prefix, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(glob: &str) -> impl Fn(&Path) -> bool {
        let glob = globset::GlobBuilder::new(glob).literal_separator(true).build().unwrap().compile_matcher();
        move |p| glob.is_match(p)
    }

    fn names(root: &Path, glob: &str) -> Vec<String> {
        let found = matches(root, glob, matcher(glob), Path::new(".preflight")).unwrap();
        found.into_iter().map(|m| m.rel.display().to_string()).collect()
    }

    fn touch(root: &Path, rel: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x").unwrap();
    }

    #[test]
    fn globs_split_into_a_folder_and_a_depth() {
        assert_eq!(split("state/*.lock"), (PathBuf::from("state"), Some(1)));
        assert_eq!(split("*.lock"), (PathBuf::new(), Some(1)));
        assert_eq!(split("a/b/**/*.log"), (PathBuf::from("a/b"), None));
        assert_eq!(split("a/*/c.log"), (PathBuf::from("a"), Some(2)));
        assert_eq!(split("state/app.lock"), (PathBuf::from("state"), Some(1)));
    }

    #[test]
    fn a_star_stays_in_its_folder_and_a_double_star_descends() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "logs/a.log");
        touch(root.path(), "logs/old/b.log");
        touch(root.path(), "logs/c.txt");
        assert_eq!(names(root.path(), "logs/*.log"), ["logs/a.log"]);
        assert_eq!(names(root.path(), "logs/**/*.log"), ["logs/a.log", "logs/old/b.log"]);
    }

    #[test]
    fn symlinks_are_neither_followed_nor_matched() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        touch(outside.path(), "secret.log");
        touch(root.path(), "logs/a.log");
        std::os::unix::fs::symlink(outside.path(), root.path().join("logs/out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.log"), root.path().join("logs/link.log")).unwrap();
        assert_eq!(names(root.path(), "logs/**/*.log"), ["logs/a.log"]);
    }

    #[test]
    fn a_folder_symlinked_out_of_the_root_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        touch(outside.path(), "x.log");
        std::os::unix::fs::symlink(outside.path(), root.path().join("logs")).unwrap();
        assert!(matches(root.path(), "logs/*.log", matcher("logs/*.log"), Path::new(".preflight")).is_err());
    }

    #[test]
    fn the_tools_own_folder_is_never_matched() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), ".preflight/quarantine/r/a.log");
        touch(root.path(), "a.log");
        assert_eq!(names(root.path(), "**/*.log"), ["a.log"]);
        touch(root.path(), ".preflight/lock");
        assert!(names(root.path(), ".preflight/*").is_empty());
        assert!(names(root.path(), "*/lock").is_empty());
    }

    #[test]
    fn a_missing_folder_matches_nothing() {
        let root = tempfile::tempdir().unwrap();
        assert!(names(root.path(), "nowhere/*.lock").is_empty());
    }
}
