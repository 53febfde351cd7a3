//! The manifest, parsed once into typed structs. `load` finds and reads the
//! file, `raw` mirrors its syntax, `validate` turns it into the typed
//! `Manifest` the checks see. Every error names the file, line and column.

mod database;
mod error;
mod locate;
pub mod raw;
mod validate;
mod validator;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ManifestError;
pub use raw::{FileFormat, Integrity, OnRunning};

use crate::finding::Severity;

/// The validated manifest. Paths are relative to `root`, normalised, and
/// known not to leave it.
#[derive(Debug)]
pub struct Manifest {
    /// The manifest file itself.
    pub file: PathBuf,
    /// The directory every declared path is relative to.
    pub root: PathBuf,
    pub app: Option<AppSpec>,
    pub env: Option<EnvSpec>,
    pub dirs: Vec<DirSpec>,
    pub files: Vec<FileSpec>,
    pub heartbeats: Vec<HeartbeatSpec>,
    pub locks: Vec<LockSpec>,
    pub pidfiles: Vec<PidfileSpec>,
    /// SQLite databases (`[[database]] path = …`).
    pub databases: Vec<DatabaseSpec>,
    /// PostgreSQL databases (`[[database]] url_env = …`).
    pub postgres: Vec<PostgresSpec>,
    pub commands: Vec<CommandSpec>,
    pub disk: Option<DiskSpec>,
    pub prunes: Vec<PruneSpec>,
}

impl Manifest {
    /// Every single path the manifest declares (not globs), relative to the root.
    pub fn declared_paths(&self) -> impl Iterator<Item = &Path> {
        let env = self.env.iter().flat_map(|e| std::iter::once(e.file.as_path()).chain(e.template.as_deref()));
        env.chain(self.dirs.iter().map(|d| d.path.as_path()))
            .chain(self.files.iter().map(|f| f.path.as_path()))
            .chain(self.heartbeats.iter().map(|h| h.path.as_path()))
            .chain(self.pidfiles.iter().map(|p| p.path.as_path()))
            .chain(self.databases.iter().map(|d| d.path.as_path()))
    }
}

#[derive(Debug)]
pub struct AppSpec {
    /// The account the application runs as.
    pub user: Option<String>,
}

#[derive(Debug)]
pub struct EnvSpec {
    pub file: PathBuf,
    pub template: Option<PathBuf>,
    pub required: Vec<String>,
    pub severity: Option<Severity>,
}

#[derive(Debug)]
pub struct DirSpec {
    pub path: PathBuf,
    pub mode: Option<u32>,
    /// false: never created; missing is critical.
    pub create: bool,
    /// May be a symlink or mount point leading outside the root.
    pub volume: bool,
    pub severity: Option<Severity>,
}

#[derive(Debug)]
pub struct FileSpec {
    pub path: PathBuf,
    pub format: FileFormat,
    pub default: Option<serde_json::Value>,
    pub schema: Option<PathBuf>,
    pub writable: bool,
    /// false: damaged JSON is reported, never rewritten.
    pub salvage: bool,
    /// false: never created; missing is critical.
    pub create: bool,
    pub severity: Option<Severity>,
}

#[derive(Debug)]
pub struct HeartbeatSpec {
    pub path: PathBuf,
    pub max_age: Duration,
    pub severity: Option<Severity>,
}

/// A relative, `/`-separated glob of the manifest, checked once: `*` and
/// `?` do not cross `/`, `**` does. Its matcher (a regex) is built on the
/// first path that has the glob's literal start and end (`state/`, `.lock`
/// in `state/*.lock`): building it costs more than the rest of a validate
/// of a small manifest spends on globs, and most paths are told apart by
/// those literals alone.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    glob: globset::Glob,
    /// Text every match starts with, and text every match ends with.
    prefix: String,
    suffix: String,
    matcher: std::sync::OnceLock<globset::GlobMatcher>,
}

/// Bytes with a meaning of their own in a glob; literal text is what lies
/// outside them.
const GLOB_SPECIAL: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

impl Pattern {
    pub fn compile(text: String) -> Result<Pattern, globset::Error> {
        let glob = globset::GlobBuilder::new(&text).literal_separator(true).build()?;
        let mut prefix = &text[..text.find(GLOB_SPECIAL).unwrap_or(text.len())];
        let mut suffix = match text.rfind(GLOB_SPECIAL) {
            Some(at) => &text[at + 1..],
            None => "", // no wildcard: the prefix is the whole text
        };
        if text.contains("**") {
            // `a/**/b` matches `a/b`, and `**/b` matches `b`: the `/` next
            // to a `**` may not be there.
            (prefix, suffix) = (prefix.trim_end_matches('/'), suffix.trim_start_matches('/'));
        }
        let (prefix, suffix) = (prefix.to_string(), suffix.to_string());
        Ok(Pattern { text, glob, prefix, suffix, matcher: std::sync::OnceLock::new() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_match(&self, path: impl AsRef<Path>) -> bool {
        let path = path.as_ref();
        let bytes = path.as_os_str().as_encoded_bytes();
        let (prefix, suffix) = (self.prefix.as_bytes(), self.suffix.as_bytes());
        if !bytes.starts_with(prefix) || !bytes.ends_with(suffix) {
            return false;
        }
        self.matcher.get_or_init(|| self.glob.compile_matcher()).is_match(path)
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::Pattern;

    #[test]
    fn the_literal_filter_never_changes_what_a_glob_matches() {
        let globs = [
            "state/*.lock",
            "logs/*.log",
            "*.log",
            "**/*.tmp",
            "a/**/b",
            "run/x?.pid",
            "data/[ab]*.db",
            "x/{a,b}.json",
            "exact/name.lock",
            "a\\*b",
            "cache/**",
            "*",
            "**",
            "logs/app-*-old.log",
            "**/b",
            "a/**",
            "x/**/y/*.z",
        ];
        let paths = [
            "state/a.lock",
            "state/sub/a.lock",
            "state/.lock",
            "state/a.lockx",
            "logs/a.log",
            "logs/x/a.log",
            "a.log",
            "x/y/z.tmp",
            "z.tmp",
            "a/b",
            "a/x/y/b",
            "run/x1.pid",
            "run/x12.pid",
            "data/a1.db",
            "data/c1.db",
            "x/a.json",
            "x/c.json",
            "exact/name.lock",
            "exact/name.lockx",
            "a*b",
            "axb",
            "cache/x/y",
            "cache",
            "logs/app-1-old.log",
            "logs/app--old.log",
            "logs/app-old.log",
            "",
            "state",
            "b",
            "a",
            "x/y/q.z",
            "x/y/y/q.z",
        ];
        for glob in globs {
            let pattern = Pattern::compile(glob.to_string()).unwrap();
            let reference = globset::GlobBuilder::new(glob).literal_separator(true).build().unwrap().compile_matcher();
            for path in paths {
                assert_eq!(pattern.is_match(path), reference.is_match(path), "{glob} on {path:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_literal_filter_agrees_with_globset_on_random_globs(
            glob in "(a|b|/|\\*|\\*\\*|\\?|\\.|\\[ab\\]|\\{a,b/\\}){0,7}",
            path in "(a|b|/|\\.){0,7}",
        ) {
            let Ok(reference) = globset::GlobBuilder::new(&glob).literal_separator(true).build() else { return Ok(()) };
            let pattern = Pattern::compile(glob.clone()).unwrap();
            proptest::prop_assert_eq!(pattern.is_match(&path), reference.compile_matcher().is_match(&path), "{} on {:?}", glob, path);
        }
    }

    #[test]
    fn a_path_without_the_literals_never_builds_the_matcher() {
        let pattern = Pattern::compile("state/*.lock".into()).unwrap();
        assert!(!pattern.is_match("state/VERSION") && !pattern.is_match("logs/a.lock"));
        assert!(pattern.matcher.get().is_none());
        assert!(pattern.is_match("state/a.lock"));
        assert!(pattern.matcher.get().is_some());
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug)]
pub struct LockSpec {
    pub glob: Pattern,
    pub stale_after: Duration,
    pub severity: Option<Severity>,
}

#[derive(Debug)]
pub struct PidfileSpec {
    pub path: PathBuf,
    pub on_running: OnRunning,
    pub match_pattern: Option<String>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSpec {
    pub path: PathBuf,
    pub schema: PathBuf,
    /// false: the file must already exist; never created.
    pub create: bool,
    pub convergence: Convergence,
    pub checks: Vec<DataCheckSpec>,
    /// How much of the file validation reads (see `Integrity`).
    pub integrity: Integrity,
    pub severity: Option<Severity>,
}

/// A PostgreSQL schema (`namespace`) converging on a DDL file.
#[derive(Debug)]
pub struct PostgresSpec {
    /// The variable holding the URL (process environment, then `.env`).
    pub url_env: String,
    pub schema: PathBuf,
    pub namespace: String,
    pub lock_timeout: Duration,
    pub convergence: Convergence,
    pub checks: Vec<DataCheckSpec>,
    pub severity: Option<Severity>,
}

/// How a live schema is brought to the DDL beyond plain comparison, the
/// same for every engine.
#[derive(Debug, Clone, Default)]
pub struct Convergence {
    /// Expected drift, not reported: names, `table.column`, globs of either.
    pub ignore: Vec<String>,
    pub renames: Vec<RenameSpec>,
    pub backfills: Vec<BackfillSpec>,
}

/// A table (`column` is `None`) or a column renamed in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameSpec {
    pub table: String,
    pub column: Option<String>,
    /// The new table name (for a column rename, the same table).
    pub to_table: String,
    pub to_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSpec {
    pub table: String,
    pub column: String,
    /// An SQL expression, evaluated per existing row.
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct DataCheckSpec {
    pub name: String,
    pub sql: String,
    pub fix: Option<String>,
    pub severity: Option<Severity>,
}

#[derive(Debug)]
pub struct CommandSpec {
    pub name: String,
    pub run: String,
    pub version: Option<String>,
    pub fix: Option<String>,
    pub timeout: Duration,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    Percent(f64),
}

#[derive(Debug)]
pub struct DiskSpec {
    pub min_free: MinFree,
    pub severity: Option<Severity>,
}

#[derive(Debug)]
pub struct PruneSpec {
    pub glob: Pattern,
    pub older_than: Duration,
    pub keep_last: u32,
    pub severity: Option<Severity>,
}

/// Manifest file names looked for, in order, when `-m` is not given.
pub const DEFAULT_NAMES: [&str; 2] = ["preflight.toml", "preflight.json"];

/// Finds the manifest: the given path, else `preflight.toml` then
/// `preflight.json` in the current directory.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ManifestError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    DEFAULT_NAMES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| ManifestError::NotFound(DEFAULT_NAMES.join(" or ")))
}

/// Reads, parses and validates the manifest at `path`. `root` overrides the
/// default root (the manifest's folder).
pub fn load(path: &Path, root: Option<&Path>) -> Result<Manifest, ManifestError> {
    let bytes = std::fs::read(path).map_err(|source| ManifestError::Read { file: path.to_path_buf(), source })?;
    let source = String::from_utf8(bytes).map_err(|e| {
        let (line, col) = locate::line_col(&String::from_utf8_lossy(e.as_bytes()), e.utf8_error().valid_up_to());
        ManifestError::at(path, line, col, "the manifest is not valid UTF-8".to_string())
    })?;
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let raw = validate::parse(path, &source)?;
    crate::fsutil::remembering_folders(|| validate::validate(path, &source, raw, &root))
}

/// Parses a manifest from text, for tests and fuzzing; `name` decides the
/// syntax (`.json` means JSON, anything else TOML).
pub fn load_str(name: &Path, source: &str, root: &Path) -> Result<Manifest, ManifestError> {
    let raw = validate::parse(name, source)?;
    validate::validate(name, source, raw, root)
}

/// The JSON Schema of the manifest, derived from the raw structs.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawManifest)).expect("a schema always serialises")
}
