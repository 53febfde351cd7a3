//! The manifest as written: serde structs that mirror the TOML/JSON document
//! key for key. They reject unknown keys and wrong types; everything that
//! needs more than a type (paths, modes, durations, duplicates) is checked
//! when they are turned into the typed manifest in `validate.rs`. The JSON
//! Schema printed by `preflight schema` is derived from these structs.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::finding::Severity;

/// A preflight manifest: what an application's working directory must hold.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "preflight manifest")]
pub struct RawManifest {
    /// Manifest format version; must be 1.
    pub version: i64,
    /// The application itself.
    pub app: Option<RawApp>,
    /// The `.env` file.
    pub env: Option<RawEnv>,
    /// Directories that must exist.
    #[serde(default)]
    pub dir: Vec<RawDir>,
    /// State files (JSON, JSON Lines, text).
    #[serde(default)]
    pub file: Vec<RawFile>,
    /// Files an application touches periodically to say it is alive.
    #[serde(default)]
    pub heartbeat: Vec<RawHeartbeat>,
    /// Lock files that may be left behind by a crash.
    #[serde(default)]
    pub lock: Vec<RawLock>,
    /// Pid files of the application.
    #[serde(default)]
    pub pidfile: Vec<RawPidfile>,
    /// SQLite databases and their desired schema.
    #[serde(default)]
    pub database: Vec<RawDatabase>,
    /// Tools that must be installed.
    #[serde(default)]
    pub command: Vec<RawCommand>,
    /// Free space required on the file system holding the root.
    pub disk: Option<RawDisk>,
    /// Disposable files removed once old enough.
    #[serde(default)]
    pub prune: Vec<RawPrune>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    /// The account the application runs as: validate checks that it can use every declared path,
    /// and what heal creates as root is owned by it.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    /// The env file, relative to the root. Default `.env`.
    pub file: Option<String>,
    /// Template copied (mode 0600) when the file is missing; its keys must all be present.
    pub template: Option<String>,
    /// Keys that must be present and non-empty. Never filled automatically.
    #[serde(default)]
    pub required: Vec<String>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDir {
    pub path: String,
    /// Octal permission bits, e.g. "0750". A wider mode on disk is a warning.
    pub mode: Option<String>,
    /// false: the deployment provides it (a mounted volume); never created, missing is critical.
    pub create: Option<bool>,
    /// true: may be a symlink or mount point leading outside the root; heal writes only beneath it.
    pub volume: Option<bool>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Json,
    Jsonl,
    Text,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub path: String,
    /// json (default), jsonl or text.
    #[serde(default)]
    pub format: FileFormat,
    /// Content written when the file is missing or empty. For json, an object
    /// whose keys must all be present; for text, a string.
    pub default: Option<serde_json::Value>,
    /// JSON Schema file; violations are critical and never auto-fixed.
    pub schema: Option<String>,
    /// The application must be able to write the file. Default true.
    pub writable: Option<bool>,
    /// false: damaged JSON is reported, never rewritten (a partial document would be worse than none).
    pub salvage: Option<bool>,
    /// false: the deployment provides it; never created, missing is critical.
    pub create: Option<bool>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub path: String,
    /// Older than this is a warning, e.g. "10m".
    pub max_age: String,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLock {
    /// Glob of lock files, relative to the root, e.g. "state/*.lock".
    pub glob: String,
    /// A lock older than this, or naming a dead process, is stale.
    pub stale_after: String,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnRunning {
    #[default]
    Critical,
    Terminate,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPidfile {
    pub path: String,
    /// What to do when the process named in the file is alive.
    #[serde(default)]
    pub on_running: OnRunning,
    /// Pattern the process's command line must contain before it is terminated.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    pub severity: Option<Severity>,
}

/// How much of a database file `validate` reads to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Integrity {
    /// `PRAGMA quick_check` for files up to 64 MiB; larger files get the
    /// structural checks only (header, page count against the file size,
    /// schema, table roots, WAL header), so the cost does not grow with the data.
    #[default]
    Auto,
    /// `PRAGMA quick_check` whatever the size (reads the whole file).
    Quick,
    /// The structural checks only, whatever the size.
    Off,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// A SQLite database file, relative to the root (or `url_env` for PostgreSQL).
    pub path: Option<String>,
    /// PostgreSQL: the environment variable (process, then `.env`) holding a postgres:// URL.
    pub url_env: Option<String>,
    /// PostgreSQL: the schema compared. Default `public`.
    pub namespace: Option<String>,
    /// PostgreSQL: how long each DDL statement heal runs may wait for a lock. Default `2s`.
    pub lock_timeout: Option<String>,
    /// The desired schema as a SQL DDL file.
    pub schema: String,
    /// SQLite: false means the file must already exist (a restored database); never created.
    pub create: Option<bool>,
    /// Drift that is expected and not reported: table names, `table.column`, globs.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Tables or columns renamed in place before anything is compared.
    #[serde(default)]
    pub rename: Vec<RawRename>,
    /// Values for existing rows when a NOT NULL column without a usable default is added or rebuilt.
    #[serde(default)]
    pub backfill: Vec<RawBackfill>,
    /// SQLite: auto (default), quick or off; the global `--deep` flag runs
    /// `PRAGMA quick_check` whatever this says.
    pub integrity: Option<Integrity>,
    /// Data checks: a query whose rows are violations.
    #[serde(default)]
    pub check: Vec<RawDataCheck>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRename {
    /// The old name: `table` or `table.column`.
    pub from: String,
    /// The new name, of the same form.
    pub to: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackfill {
    /// `table.column`.
    pub column: String,
    /// An SQL expression evaluated per existing row.
    pub value: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDataCheck {
    pub name: String,
    /// A query; every row it returns is a violation.
    pub sql: String,
    /// SQL run by heal, in a transaction, after a backup.
    pub fix: Option<String>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    pub name: String,
    /// Command line run to check the tool, e.g. "python3 --version".
    pub run: String,
    /// Version requirement, e.g. ">=3.8".
    pub version: Option<String>,
    /// Shell command run by heal when the check fails.
    pub fix: Option<String>,
    /// Time limit for `run` and `fix`, e.g. "10s". Default 10s.
    pub timeout: Option<String>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDisk {
    /// Minimum free space, e.g. "1GiB" or "5%".
    pub min_free: String,
    pub severity: Option<Severity>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrune {
    pub glob: String,
    /// Files older than this are removed, e.g. "14d".
    pub older_than: String,
    /// Always keep this many of the newest matching files.
    pub keep_last: Option<u32>,
    pub severity: Option<Severity>,
}
