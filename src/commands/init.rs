//! `preflight init [--force]`: write a starter manifest (and each
//! database's schema under `schemas/`) from the directory as it is, then
//! validate it there. Existing files are kept unless `--force`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use preflight::fsutil;
use preflight::manifest;
use preflight::safety::atomic::AtomicWriter;
use preflight::safety::confined::Root;
use preflight::{checks, db};
use serde_json::Value;

use super::init_scan::{scan, EnvFound, Found, PgFound};
use super::{options, selection};
use crate::cli::Cli;

pub fn init(cli: &Cli, force: bool, database_url_env: &[String]) -> anyhow::Result<u8> {
    let path = cli.manifest.clone().unwrap_or_else(|| PathBuf::from(manifest::DEFAULT_NAMES[0]));
    if path.extension().is_some_and(|e| e == "json") {
        bail!("init writes TOML: name the manifest {}", path.with_extension("toml").display());
    }
    let root = cli.root.clone().unwrap_or_else(|| fsutil::parent_dir(&path).to_path_buf());
    if path.exists() && !force {
        bail!("{} already exists; use --force to overwrite it", path.display());
    }
    let mut found = scan(&root, &path)?;
    for name in database_url_env {
        found.postgres.push(dump_postgres(&root, name)?);
    }
    // Schemas are written through handles beneath the root: a symlinked
    // `schemas/` is refused, never written through.
    let handle = Root::open(&root)?;
    let schemas =
        found.databases.iter().map(|d| (&d.schema, &d.ddl)).chain(found.postgres.iter().map(|p| (&p.schema, &p.ddl)));
    // Every refusal comes before the first write.
    for (schema, ddl) in schemas.clone() {
        refuse_overwrite(&handle, schema, ddl.as_bytes(), force)?;
    }
    for (schema, ddl) in schemas {
        write_schema(&handle, schema, ddl.as_bytes())?;
    }
    let folder = Root::open(fsutil::parent_dir(&path))?;
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    let write = |text: String| {
        let mut writer = AtomicWriter::in_dir(folder.dir().try_clone()?, name)?;
        writer.write_all(text.as_bytes())?;
        writer.commit().with_context(|| format!("cannot write {}", path.display()))?;
        let manifest = manifest::load(&path, cli.root.as_deref())?;
        let findings = checks::run_all(&manifest, &options(cli, false), &selection(cli, &manifest)?)?;
        Ok::<_, anyhow::Error>(findings)
    };
    let mut findings = write(render(&found, AppUser::Write))?;
    // Every line written passes where it came from: an account that cannot
    // use what it would own is suggested in a comment instead.
    let denied = |f: &&preflight::finding::Finding| f.id.ends_with(":access") || f.id.ends_with(":mode");
    if found.app_user.is_some() && findings.problems.iter().any(|f| denied(&f)) {
        findings = write(render(&found, AppUser::Comment("it cannot use every declared path today")))?;
    }
    let code = preflight::finding::exit_code(&findings.problems, cli.strict);
    let mut out = anstream::stdout();
    writeln!(
        out,
        "wrote {} ({} directories, {} databases, {} JSON files{}); validate: {}",
        path.display(),
        found.dirs.len(),
        found.databases.len(),
        found.files.len(),
        if found.env.is_some() { ", .env" } else { "" },
        preflight::finding::status_word(code)
    )?;
    for schema in found.databases.iter().map(|d| &d.schema).chain(found.postgres.iter().map(|p| &p.schema)) {
        writeln!(out, "wrote {}", schema.display())?;
    }
    Ok(code)
}

/// The `public` namespace of the database `name`'s URL points at (process
/// environment, then `root/.env`), dumped from its catalog.
fn dump_postgres(root: &Path, name: &str) -> anyhow::Result<PgFound> {
    let from_file = || {
        let text = std::fs::read_to_string(root.join(".env")).ok()?;
        checks::parse_env(&text).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    };
    let url = std::env::var(name).ok().or_else(from_file);
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        bail!("{name} is not set in the environment or in .env");
    };
    if !db::postgres::is_postgres_url(&url) {
        bail!("{name} does not hold a postgres:// or postgresql:// URL");
    }
    let ddl = db::postgres::dump(&url, "public").map_err(|e| anyhow::anyhow!("cannot dump {name}: {e}"))?;
    Ok(PgFound {
        url_env: name.to_string(),
        schema: PathBuf::from(format!("schemas/{}.sql", name.to_lowercase())),
        ddl,
    })
}

/// What is at `rel` beneath the root now (a FIFO or device is refused at once).
fn existing(root: &Root, rel: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(mut file) = root.open_read(rel).with_context(|| format!("cannot read {}", rel.display()))? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", rel.display()))?;
    Ok(Some(bytes))
}

/// Refuses when a different file is at `rel` and `force` is off.
fn refuse_overwrite(root: &Root, rel: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    match existing(root, rel)? {
        Some(existing) if existing != bytes && !force => {
            bail!("{} already exists with other content; use --force to overwrite it", rel.display())
        }
        _ => Ok(()),
    }
}

/// Writes a schema file, unless it already holds exactly `bytes`.
fn write_schema(root: &Root, rel: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if existing(root, rel).is_ok_and(|existing| existing.as_deref() == Some(bytes)) {
        return Ok(());
    }
    let (dir, name) =
        root.create_parent(rel, &mut Vec::new()).with_context(|| format!("cannot write {}", rel.display()))?;
    let mut writer = AtomicWriter::in_dir(dir, &name)?;
    writer.write_all(bytes)?;
    writer.commit().with_context(|| format!("cannot write {}", rel.display()))
}

/// Whether `[app] user` is written, or left as a comment saying why.
pub enum AppUser<'a> {
    Write,
    Comment(&'a str),
}

/// The manifest text.
pub fn render(found: &Found, app_user: AppUser) -> String {
    let mut s =
        String::from("# Starter manifest written by `preflight init`: review it, then commit it.\nversion = 1\n");
    for note in &found.notes {
        let _ = writeln!(s, "# note: {note}");
    }
    match (&found.app_user, app_user) {
        (Some(user), AppUser::Write) => {
            let _ = write!(
                s,
                "\n# The data folders belong to {user}: the app runs as it.\n[app]\nuser = {}\n",
                quote(user)
            );
        }
        (Some(user), AppUser::Comment(why)) => {
            let _ = write!(s, "\n# The data folders belong to {user}, but {why}:\n# [app]\n# user = {}\n", quote(user));
        }
        (None, _) => {}
    }
    if let Some(env) = &found.env {
        render_env(env, &mut s);
    }
    for dir in &found.dirs {
        let _ = write!(s, "\n[[dir]]\npath = {}\nmode = \"{:04o}\"\n", quote(&dir.path.to_string_lossy()), dir.mode);
        if dir.provided {
            let _ = writeln!(s, "create = false  # {}", dir.why.as_deref().unwrap_or("the deployment provides it"));
        }
        if dir.volume {
            s.push_str("volume = true\n");
        }
    }
    for file in &found.files {
        let _ = write!(s, "\n[[file]]\npath = {}\nformat = \"json\"\n", quote(&file.path.to_string_lossy()));
        let _ = writeln!(s, "default = {}", inline(&Value::Object(file.default.clone())));
        if !file.writable {
            s.push_str("writable = false  # not writable today\n");
        }
    }
    for db in &found.databases {
        let _ = write!(
            s,
            "\n[[database]]\npath = {}\nschema = {}\n",
            quote(&db.path.to_string_lossy()),
            quote(&db.schema.to_string_lossy())
        );
    }
    for pg in &found.postgres {
        let _ = write!(
            s,
            "\n[[database]]\nurl_env = {}\nschema = {}\nnamespace = \"public\"\nlock_timeout = \"2s\"\n",
            quote(&pg.url_env),
            quote(&pg.schema.to_string_lossy())
        );
    }
    s
}

fn render_env(env: &EnvFound, s: &mut String) {
    let list = |keys: &[String]| keys.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let template = quote(&env.template);
    s.push_str(&format!("\n# {} keys: {}\n", env.template, env.template_keys.join(", ")));
    if !env.env_exists {
        s.push_str("# .env does not exist yet, so [env] is commented out; `preflight heal` would copy the template.\n");
        let _ = writeln!(s, "# [env]\n# template = {template}");
        return;
    }
    s.push_str("[env]\nfile = \".env\"\n");
    if env.missing_keys.is_empty() {
        let _ = writeln!(s, "template = {template}");
    } else {
        let _ = writeln!(s, "# template = {template}  # .env lacks {}", env.missing_keys.join(", "));
    }
    let _ = writeln!(s, "required = [{}]", list(&env.set_keys));
}

/// A TOML basic string (or bare key): JSON's escapes are TOML's, except
/// DEL, which TOML wants escaped.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default().replace('\u{7f}', "\\u007F")
}

fn key(text: &str) -> String {
    let bare = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        text.to_string()
    } else {
        quote(text)
    }
}

/// An inline TOML value for the empty values `init` writes.
fn inline(value: &Value) -> String {
    match value {
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => {
            let members: Vec<String> = map.iter().map(|(k, v)| format!("{} = {}", key(k), inline(v))).collect();
            format!("{{ {} }}", members.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::String(text) => quote(text),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inline_tables_round_trip_through_toml() {
        let value = json!({"open positions": [], "n": 0, "ok": false, "name": "", "nested": {}, "odd\"key\u{7f}": ""});
        let text = format!("default = {}\n", inline(&value));
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        let back = serde_json::to_value(&parsed["default"]).unwrap();
        assert_eq!(back, value);
    }
}
