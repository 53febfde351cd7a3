//! What `preflight init` finds in an existing directory, and the starter
//! manifest it renders from it. Everything declared here passes on the
//! directory as it is; what would not pass is written as a comment saying
//! why.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};
use walkdir::WalkDir;

/// Folders never scanned: tool caches and dependency trees.
const SKIPPED_DIRS: [&str; 4] = ["node_modules", "target", "__pycache__", "venv"];
/// How deep databases and JSON files are looked for.
const MAX_DEPTH: usize = 4;
/// JSON files larger than this are not read (they are data, not state).
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// The `[env]` section, keys only.
#[derive(Debug, Default)]
pub struct EnvFound {
    /// Keys of `.env.example`.
    pub template_keys: Vec<String>,
    /// Whether `.env` exists.
    pub env_exists: bool,
    /// Template keys set to a non-empty value in `.env` (values are not kept).
    pub set_keys: Vec<String>,
    /// Template keys absent from `.env`.
    pub missing_keys: Vec<String>,
}

/// A PostgreSQL namespace dumped from the catalog.
#[derive(Debug)]
pub struct PgFound {
    pub url_env: String,
    /// `schemas/<variable, lower-cased>.sql`.
    pub schema: PathBuf,
    pub ddl: String,
}

#[derive(Debug)]
pub struct DbFound {
    pub path: PathBuf,
    /// `schemas/<path with / as _, extension dropped>.sql`.
    pub schema: PathBuf,
    /// The DDL, statement by statement, in creation order.
    pub ddl: String,
}

#[derive(Debug)]
pub struct JsonFound {
    pub path: PathBuf,
    /// The top-level keys with empty values of the same kind.
    pub default: Map<String, Value>,
    pub writable: bool,
}

/// Everything found, and the notes rendered as comments.
#[derive(Debug, Default)]
pub struct Found {
    pub dirs: Vec<(PathBuf, u32)>,
    pub env: Option<EnvFound>,
    pub databases: Vec<DbFound>,
    /// PostgreSQL databases named by `--database-url-env`.
    pub postgres: Vec<PgFound>,
    pub files: Vec<JsonFound>,
    pub notes: Vec<String>,
}

/// Inspects `root`. `manifest` is left out of the JSON files.
pub fn scan(root: &Path, manifest: &Path) -> anyhow::Result<Found> {
    let mut found = Found::default();
    for entry in fs::read_dir(root).with_context(|| format!("cannot read {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(entry.path())?;
        if meta.is_dir() && !skipped(&name) {
            found.dirs.push((PathBuf::from(&name), meta.mode() & 0o777));
        }
    }
    found.dirs.sort();
    found.env = scan_env(root, &mut found.notes);
    for entry in WalkDir::new(root)
        .min_depth(1)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skipped(&e.file_name().to_string_lossy()))
    {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root)?.to_path_buf();
        let name = entry.file_name().to_string_lossy();
        if is_sqlite_name(&name) && has_sqlite_header(entry.path()) {
            found.databases.push(scan_database(entry.path(), rel)?);
        } else if name.ends_with(".json") && !name.ends_with(".schema.json") && entry.path() != manifest {
            scan_json(entry.path(), rel, &mut found);
        }
    }
    Ok(found)
}

fn skipped(name: &str) -> bool {
    name.starts_with('.') || SKIPPED_DIRS.contains(&name)
}

fn scan_env(root: &Path, notes: &mut Vec<String>) -> Option<EnvFound> {
    let template = fs::read_to_string(root.join(".env.example")).ok()?;
    let Some(template_keys) = env_keys(&template) else {
        notes.push(".env.example does not parse; no [env] section was written".into());
        return None;
    };
    let mut env = EnvFound { template_keys, ..Default::default() };
    let Ok(text) = fs::read_to_string(root.join(".env")) else {
        return Some(env);
    };
    env.env_exists = true;
    // A .env that does not parse counts as holding none of the keys.
    let pairs = preflight::checks::parse_env(&text).unwrap_or_default();
    for key in &env.template_keys {
        match pairs.iter().rev().find(|(k, _)| k == key) {
            Some((_, value)) if !value.trim().is_empty() => env.set_keys.push(key.clone()),
            Some(_) => {}
            None => env.missing_keys.push(key.clone()),
        }
    }
    Some(env)
}

/// The keys of an env file, in order, without their values.
fn env_keys(text: &str) -> Option<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    for (key, _) in preflight::checks::parse_env(text).ok()? {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Some(keys)
}

fn is_sqlite_name(name: &str) -> bool {
    [".db", ".sqlite", ".sqlite3"].iter().any(|ext| name.ends_with(ext))
}

fn has_sqlite_header(path: &Path) -> bool {
    preflight::db::sqlite::has_sqlite_header(path).unwrap_or(false)
}

fn scan_database(path: &Path, rel: PathBuf) -> anyhow::Result<DbFound> {
    let ddl = dump_schema(path).with_context(|| format!("cannot read the schema of {}", rel.display()))?;
    let stem = rel.with_extension("").to_string_lossy().replace('/', "_");
    Ok(DbFound { schema: PathBuf::from("schemas").join(format!("{stem}.sql")), path: rel, ddl })
}

/// The database's own DDL, in creation order, each statement ending in `;`.
pub fn dump_schema(path: &Path) -> rusqlite::Result<String> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let statements = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(statements.iter().map(|s| format!("{};\n", s.trim_end_matches(';'))).collect::<Vec<_>>().join("\n"))
}

fn scan_json(path: &Path, rel: PathBuf, found: &mut Found) {
    let Ok(meta) = fs::metadata(path) else { return };
    if meta.len() > MAX_JSON_BYTES {
        found.notes.push(format!("{} is larger than 16 MiB and was not declared", rel.display()));
        return;
    }
    let value = fs::read(path).ok().and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let Some(Value::Object(object)) = value else {
        found.notes.push(format!("{} is not a JSON object and was not declared", rel.display()));
        return;
    };
    let mut default = Map::new();
    for (key, value) in object {
        match empty_like(&value) {
            Some(empty) => {
                default.insert(key, empty);
            }
            None => {
                found.notes.push(format!("{}: key {key:?} is null, which TOML cannot hold; left out", rel.display()))
            }
        }
    }
    found.files.push(JsonFound { path: rel, default, writable: writable(path, &meta) });
}

/// An empty value of the same kind; `None` for null.
fn empty_like(value: &Value) -> Option<Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => Value::Bool(false),
        Value::Number(_) => Value::from(0),
        Value::String(_) => Value::from(""),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Object(_) => Value::Object(Map::new()),
    })
}

/// As the file check sees it: the owner's write bit, else access(2).
fn writable(path: &Path, meta: &fs::Metadata) -> bool {
    use std::os::unix::ffi::OsStrExt;
    if meta.uid() == preflight::fsutil::current_uid() {
        return meta.mode() & 0o200 != 0;
    }
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: c_path is a valid NUL-terminated string for the call's duration.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys_keep_order_and_drop_values() {
        assert_eq!(env_keys("A=1\n# c\nexport B=\"x\"\nA=2\n").unwrap(), ["A", "B"]);
        assert!(env_keys("A=1\nB C\n").is_none());
    }

    #[test]
    fn empty_values_keep_the_kind() {
        assert_eq!(empty_like(&serde_json::json!([1, 2])), Some(serde_json::json!([])));
        assert_eq!(empty_like(&serde_json::json!({"a": 1})), Some(serde_json::json!({})));
        assert_eq!(empty_like(&serde_json::json!("x")), Some(serde_json::json!("")));
        assert_eq!(empty_like(&Value::Null), None);
    }

    #[test]
    fn schema_dump_is_the_databases_own_ddl_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE); CREATE INDEX i ON t(name);",
        )
        .unwrap();
        drop(conn);
        let ddl = dump_schema(&path).unwrap();
        assert_eq!(
            ddl,
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);\n\nCREATE INDEX i ON t(name);\n"
        );
    }
}
