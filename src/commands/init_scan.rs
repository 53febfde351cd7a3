//! What `preflight init` finds in an existing directory, and the starter
//! manifest it renders from it. Everything declared here passes on the
//! directory as it is; what would not pass is written as a comment saying
//! why.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use preflight::runtime::account::Account;
use preflight::runtime::mounts;
use serde_json::{Map, Value};
use walkdir::WalkDir;

/// Folders never scanned: tool caches and dependency trees.
const SKIPPED_DIRS: [&str; 4] = ["node_modules", "target", "__pycache__", "venv"];
/// How deep databases and JSON files are looked for.
const MAX_DEPTH: usize = 4;
/// JSON files larger than this are not read (they are data, not state).
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Env templates, by the names frameworks give them, in order of preference.
pub const TEMPLATE_NAMES: [&str; 4] = [".env.example", ".env.template", ".env.sample", ".env.dist"];
/// Source files: a top-level folder holding any is code, and its
/// subfolders are not the app's data.
const CODE_EXTENSIONS: [&str; 16] =
    ["py", "js", "mjs", "ts", "rs", "go", "rb", "php", "java", "kt", "cs", "c", "h", "cpp", "swift", "ex"];
/// Key names whose values are not copied into a default.
const SECRET_WORDS: [&str; 8] = ["password", "passwd", "secret", "token", "apikey", "api_key", "private", "credential"];

/// A folder to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFound {
    pub path: PathBuf,
    pub mode: u32,
    /// A mount point or a symlink: the deployment provides it.
    pub provided: bool,
    /// It leads out of the root (a symlink) or is a mount point.
    pub volume: bool,
    /// Why it is provided, for a comment.
    pub why: Option<String>,
    /// Its owner, for `[app] user`; a code folder's does not count.
    pub owner: Option<u32>,
}

/// The `[env]` section, keys only.
#[derive(Debug, Default)]
pub struct EnvFound {
    /// The template's file name (`.env.example`, `.env.template`, …).
    pub template: String,
    /// Keys of the template.
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
    /// The file's own shape: objects with their keys, the values it holds
    /// (what the app can use), arrays empty; secret-looking keys left out.
    pub default: Map<String, Value>,
    pub writable: bool,
}

/// Everything found, and the notes rendered as comments.
#[derive(Debug, Default)]
pub struct Found {
    pub dirs: Vec<DirFound>,
    /// The account that owns every data folder, when it is not root.
    pub app_user: Option<String>,
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
        if !skipped(&name) {
            found.dirs.extend(scan_dir(root, Path::new(&name)));
        }
    }
    found.dirs.sort_by(|a, b| a.path.cmp(&b.path));
    found.app_user = app_user(&found.dirs, &mut found.notes);
    found.env = scan_env(root, &mut found.notes);
    scan_files(root, Path::new(""), manifest, &mut found)?;
    // The walk does not follow symlinks; a volume linked in is the app's too.
    let linked: Vec<PathBuf> = found.dirs.iter().filter(|d| d.volume).map(|d| d.path.clone()).collect();
    for dir in linked.iter().filter(|d| root.join(d).is_symlink()) {
        scan_files(root, dir, manifest, &mut found)?;
    }
    Ok(found)
}

/// Databases and JSON files under `root/start`.
fn scan_files(root: &Path, start: &Path, manifest: &Path, found: &mut Found) -> anyhow::Result<()> {
    let base = root.join(start);
    for entry in WalkDir::new(&base)
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
        let rel = start.join(entry.path().strip_prefix(&base)?);
        let name = entry.file_name().to_string_lossy();
        if is_sqlite_name(&name) && has_sqlite_header(entry.path()) {
            found.databases.push(scan_database(entry.path(), rel)?);
        } else if name.ends_with(".json") && !name.ends_with(".schema.json") && entry.path() != manifest {
            scan_json(entry.path(), rel, found);
        }
    }
    Ok(())
}

fn skipped(name: &str) -> bool {
    name.starts_with('.') || SKIPPED_DIRS.contains(&name)
}

/// A top-level folder and, unless it holds code, the folders inside it
/// (`data/attachments`): an app that created them expects them.
fn scan_dir(root: &Path, rel: &Path) -> Vec<DirFound> {
    let abs = root.join(rel);
    let Ok(link) = fs::symlink_metadata(&abs) else { return Vec::new() };
    let Ok(meta) = fs::metadata(&abs) else { return Vec::new() };
    if !meta.is_dir() {
        return Vec::new();
    }
    let mut top = DirFound {
        path: rel.to_path_buf(),
        mode: meta.mode() & 0o777,
        provided: false,
        volume: false,
        why: None,
        owner: Some(meta.uid()),
    };
    let outside = abs.canonicalize().ok().zip(root.canonicalize().ok()).is_some_and(|(t, r)| !t.starts_with(r));
    if link.file_type().is_symlink() && outside {
        (top.provided, top.volume) = (true, true);
        top.why = Some("a symlink out of the root: the deployment provides it".into());
    } else if !link.file_type().is_symlink() && mounts::is_mount_point(&abs).unwrap_or(false) {
        (top.provided, top.volume) = (true, true);
        top.why = Some("a mount point: the deployment mounts it, preflight must not create it".into());
    }
    if holds_code(&abs) {
        top.owner = None;
        return vec![top];
    }
    let mut dirs = vec![top];
    let walk = WalkDir::new(&abs).min_depth(1).max_depth(MAX_DEPTH - 1).sort_by_file_name().into_iter();
    for entry in walk.filter_entry(|e| !skipped(&e.file_name().to_string_lossy())).flatten() {
        if !entry.file_type().is_dir() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(inner) = entry.path().strip_prefix(&abs) else { continue };
        dirs.push(DirFound {
            path: rel.join(inner),
            mode: meta.mode() & 0o777,
            provided: false,
            volume: false,
            why: None,
            owner: Some(meta.uid()),
        });
    }
    dirs
}

/// Whether a folder holds source files (within the scanned depth).
fn holds_code(dir: &Path) -> bool {
    WalkDir::new(dir)
        .max_depth(MAX_DEPTH)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skipped(&e.file_name().to_string_lossy()))
        .flatten()
        .filter(|e| e.file_type().is_file())
        .any(|e| e.path().extension().and_then(|x| x.to_str()).is_some_and(|x| CODE_EXTENSIONS.contains(&x)))
}

/// The account owning every data folder, when that is one account other
/// than root: the app most likely runs as it.
fn app_user(dirs: &[DirFound], notes: &mut Vec<String>) -> Option<String> {
    let mut owners: Vec<u32> = dirs.iter().filter_map(|d| d.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    match owners[..] {
        [uid] if uid != 0 => match Account::name_of(uid) {
            Some(name) => Some(name),
            None => {
                notes.push(format!("the data folders belong to uid {uid}, which has no account name here"));
                None
            }
        },
        [_, _, ..] => {
            notes.push("the data folders belong to several accounts; set [app] user to the one the app runs as".into());
            None
        }
        _ => None,
    }
}

fn scan_env(root: &Path, notes: &mut Vec<String>) -> Option<EnvFound> {
    let (name, template) =
        TEMPLATE_NAMES.iter().find_map(|name| fs::read_to_string(root.join(name)).ok().map(|t| (*name, t)))?;
    let Some(template_keys) = env_keys(&template) else {
        notes.push(format!("{name} does not parse; no [env] section was written"));
        return None;
    };
    let mut env = EnvFound { template: name.to_string(), template_keys, ..Default::default() };
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
    let mut left_out = Vec::new();
    let default = shape(object, "", &mut left_out);
    for (key, why) in left_out {
        found.notes.push(format!("{}: key {key:?} {why}; left out of the default", rel.display()));
    }
    found.files.push(JsonFound { path: rel, default, writable: writable(path, &meta) });
}

/// The default `init` writes for a JSON object found on disk: the same
/// keys, nested objects kept the same way, the scalar values the app
/// wrote (a value it can use, where `""` or `0` might not be), arrays
/// empty (they hold records, which are data). Null (TOML has none) and
/// keys that look like secrets are left out and listed in `left_out`.
fn shape(object: Map<String, Value>, prefix: &str, left_out: &mut Vec<(String, &'static str)>) -> Map<String, Value> {
    let mut default = Map::new();
    for (key, value) in object {
        let path = format!("{prefix}{key}");
        let lower = key.to_ascii_lowercase();
        let kept = match value {
            _ if SECRET_WORDS.iter().any(|w| lower.contains(w)) => {
                left_out.push((path, "looks like a secret"));
                continue;
            }
            Value::Null => {
                left_out.push((path, "is null, which TOML cannot hold"));
                continue;
            }
            Value::Object(inner) => Value::Object(shape(inner, &format!("{path}."), left_out)),
            Value::Array(_) => Value::Array(Vec::new()),
            scalar => scalar,
        };
        default.insert(key, kept);
    }
    default
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
    fn defaults_keep_the_files_shape_and_leave_secrets_out() {
        let found = serde_json::json!({
            "mode": "live", "retries": 3, "items": [1, 2], "nested": {"level": "info", "gone": null},
            "api_token": "sk-live-x", "db": {"password": "p"}
        });
        let Value::Object(object) = found else { unreachable!() };
        let mut left_out = Vec::new();
        let default = shape(object, "", &mut left_out);
        assert_eq!(
            Value::Object(default),
            serde_json::json!({"mode": "live", "retries": 3, "items": [], "nested": {"level": "info"}, "db": {}})
        );
        let keys: Vec<&str> = left_out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["nested.gone", "api_token", "db.password"]);
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
