//! Raw manifest → typed manifest. Parsing errors come from the TOML or JSON
//! parser with their position; the checks below add what types cannot say.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::line_col;
use super::raw::*;
use super::validator::{with_snippet, Validator};
use super::*;
use crate::fsutil;

/// Parses TOML or JSON (by extension) into the raw structs.
pub fn parse(file: &Path, source: &str) -> Result<RawManifest, ManifestError> {
    let is_json = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(source).map_err(|e| {
            let message = strip_json_position(&e.to_string());
            with_snippet(file, source, e.line().max(1), e.column().max(1), message)
        })
    } else {
        toml::from_str(source).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(source, s.start));
            with_snippet(file, source, line, col, e.message().trim().to_string())
        })
    }
}

fn strip_json_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Checks everything the raw structs cannot and builds the typed manifest.
pub fn validate(file: &Path, source: &str, raw: RawManifest, root: &Path) -> Result<Manifest, ManifestError> {
    let mut v = Validator { file, source, root, seen: HashMap::new(), occurrences: HashMap::new() };
    if raw.version != 1 {
        return Err(v.error_at_key(
            "version",
            format!("`version` = {} is not supported; this preflight reads version = 1", raw.version),
        ));
    }
    let app = raw.app.map(|a| AppSpec { user: a.user });
    if let Some(user) = app.as_ref().and_then(|a| a.user.as_deref()) {
        let valid = !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid {
            return Err(v.error_at("user", user, format!("`user` = {user:?} is not a valid account name")));
        }
    }
    declare_volumes(&mut v, &raw.dir)?;
    let env = raw.env.map(|e| env_spec(&mut v, e)).transpose()?;
    let dirs = raw
        .dir
        .into_iter()
        .map(|d| {
            Ok(DirSpec {
                path: v.unique_path("path", &d.path)?,
                mode: d.mode.map(|m| v.mode("mode", &m)).transpose()?,
                create: d.create.unwrap_or(true),
                volume: d.volume.unwrap_or(false),
                severity: d.severity,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    let files = raw.file.into_iter().map(|f| file_spec(&mut v, f)).collect::<Result<_, _>>()?;
    let heartbeats = raw
        .heartbeat
        .into_iter()
        .map(|h| {
            Ok(HeartbeatSpec {
                path: v.unique_path("path", &h.path)?,
                max_age: v.duration("max_age", &h.max_age)?,
                severity: h.severity,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    let locks = raw
        .lock
        .into_iter()
        .map(|l| {
            Ok(LockSpec {
                glob: v.glob("glob", &l.glob)?,
                stale_after: v.duration("stale_after", &l.stale_after)?,
                severity: l.severity,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    let pidfiles = raw
        .pidfile
        .into_iter()
        .map(|p| {
            Ok(PidfileSpec {
                path: v.unique_path("path", &p.path)?,
                on_running: p.on_running,
                match_pattern: p.match_,
                severity: p.severity,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    let (databases, postgres) = super::database::specs(&mut v, raw.database)?;
    let commands = commands(&mut v, raw.command)?;
    let disk = raw
        .disk
        .map(|d| Ok::<_, ManifestError>(DiskSpec { min_free: min_free(&mut v, &d.min_free)?, severity: d.severity }))
        .transpose()?;
    let prunes = raw
        .prune
        .into_iter()
        .map(|p| {
            Ok(PruneSpec {
                glob: v.glob("glob", &p.glob)?,
                older_than: v.duration("older_than", &p.older_than)?,
                keep_last: p.keep_last.unwrap_or(0),
                severity: p.severity,
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    let manifest = Manifest {
        file: file.to_path_buf(),
        root: root.to_path_buf(),
        app,
        env,
        dirs,
        files,
        heartbeats,
        locks,
        pidfiles,
        databases,
        postgres,
        commands,
        disk,
        prunes,
    };
    refuse_globs_over_declared_paths(&mut v, &manifest)?;
    Ok(manifest)
}

/// Declares the `volume = true` dirs as second roots before any path is
/// confined, so paths beneath a volume that leads out of the root are
/// accepted (and confined to the volume instead).
fn declare_volumes(v: &mut Validator, dirs: &[RawDir]) -> Result<(), ManifestError> {
    let mut volumes = Vec::new();
    for dir in dirs.iter().filter(|d| d.volume == Some(true)) {
        volumes.push(v.relative("path", &dir.path)?);
    }
    fsutil::declare_volumes(v.root, &volumes);
    Ok(())
}

/// `[[lock]]` and `[[prune]]` remove what they match: a pattern that can
/// match `.env`, a path another entry declares, a database's journal or a
/// schema would delete the application's secrets or data.
fn refuse_globs_over_declared_paths(v: &mut Validator, m: &Manifest) -> Result<(), ManifestError> {
    let mut protected: Vec<(PathBuf, String)> = vec![(PathBuf::from(".env"), "the .env file".into())];
    let mut add = |path: &Path, what: &str| protected.push((path.to_path_buf(), what.to_string()));
    if let Some(env) = &m.env {
        add(&env.file, "the [env] file");
        if let Some(template) = &env.template {
            add(template, "the [env] template");
        }
    }
    for d in &m.dirs {
        add(&d.path, "a [[dir]]");
    }
    for f in &m.files {
        add(&f.path, "a [[file]]");
        if let Some(schema) = &f.schema {
            add(schema, "a schema file");
        }
    }
    for h in &m.heartbeats {
        add(&h.path, "a [[heartbeat]]");
    }
    for p in &m.pidfiles {
        add(&p.path, "a [[pidfile]]");
    }
    for d in &m.databases {
        add(&d.path, "a [[database]]");
        add(&d.schema, "a schema file");
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut journal = d.path.clone().into_os_string();
            journal.push(suffix);
            add(Path::new(&journal), "a [[database]]'s journal");
        }
    }
    for d in &m.postgres {
        add(&d.schema, "a schema file");
    }
    if let Ok(own) = m.file.strip_prefix(&m.root) {
        add(own, "the manifest");
    }
    let rules = m.locks.iter().map(|l| ("lock", &l.glob)).chain(m.prunes.iter().map(|p| ("prune", &p.glob)));
    for (table, glob) in rules {
        if let Some((path, what)) = protected.iter().find(|(p, _)| glob.is_match(p)) {
            return Err(v.error_at(
                "glob",
                glob.as_str(),
                format!(
                    "`glob` = {:?} of a [[{table}]] can match `{}`, {what}, and would remove it; \
                     narrow the pattern (e.g. \"state/*.lock\")",
                    glob.as_str(),
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn env_spec(v: &mut Validator, e: RawEnv) -> Result<EnvSpec, ManifestError> {
    let file = v.unique_path("file", e.file.as_deref().unwrap_or(".env"))?;
    let template = e.template.map(|t| v.path("template", &t)).transpose()?;
    for key in &e.required {
        v.note("required", key);
        let valid =
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid {
            return Err(v.error_at(
                "required",
                key,
                format!("required key {key:?} is not a valid variable name; use letters, digits and `_`"),
            ));
        }
    }
    Ok(EnvSpec { file, template, required: e.required, severity: e.severity })
}

fn file_spec(v: &mut Validator, f: RawFile) -> Result<FileSpec, ManifestError> {
    let path = v.unique_path("path", &f.path)?;
    let schema = f.schema.map(|s| v.path("schema", &s)).transpose()?;
    if let Some(default) = &f.default {
        let ok = match f.format {
            FileFormat::Text => default.is_string(),
            FileFormat::Json => true,
            FileFormat::Jsonl => default.is_array(),
        };
        if !ok {
            let what = if f.format == FileFormat::Text { "a string" } else { "an array of lines (values)" };
            return Err(v.error_at(
                "path",
                &f.path,
                format!("the `default` of {:?} must be {what} for this format", f.path),
            ));
        }
    }
    Ok(FileSpec {
        path,
        format: f.format,
        default: f.default,
        schema,
        writable: f.writable.unwrap_or(true),
        salvage: f.salvage.unwrap_or(true),
        create: f.create.unwrap_or(true),
        severity: f.severity,
    })
}

fn commands(v: &mut Validator, raw: Vec<RawCommand>) -> Result<Vec<CommandSpec>, ManifestError> {
    let mut names = HashMap::new();
    raw.into_iter()
        .map(|c| {
            v.note("name", &c.name);
            if names.insert(c.name.clone(), ()).is_some() {
                return Err(v.error_at(
                    "name",
                    &c.name,
                    format!("command {:?} is declared twice; keep one entry per name", c.name),
                ));
            }
            if c.run.trim().is_empty() {
                return Err(v.error_at("name", &c.name, format!("command {:?} has an empty `run`", c.name)));
            }
            if let Some(req) = &c.version {
                v.note("version", req);
                if let Err(e) = crate::runtime::version::Requirement::parse(req) {
                    return Err(v.error_at(
                        "version",
                        req,
                        format!("`version` = {req:?} is not a version requirement ({e}); write e.g. \">=3.8\""),
                    ));
                }
            }
            let timeout = match &c.timeout {
                Some(t) => v.duration("timeout", t)?,
                None => Duration::from_secs(10),
            };
            Ok(CommandSpec { name: c.name, run: c.run, version: c.version, fix: c.fix, timeout, severity: c.severity })
        })
        .collect()
}

fn min_free(v: &mut Validator, value: &str) -> Result<MinFree, ManifestError> {
    v.note("min_free", value);
    parse_min_free(value).ok_or_else(|| {
        v.error_at(
            "min_free",
            value,
            format!("`min_free` = {value:?} is not a size; write e.g. \"1GiB\", \"500MB\" or \"5%\""),
        )
    })
}

/// `"1GiB"`, `"500 MB"`, `"1024"` (bytes) or `"5%"`.
pub fn parse_min_free(value: &str) -> Option<MinFree> {
    let value = value.trim();
    if let Some(percent) = value.strip_suffix('%') {
        let p: f64 = percent.trim().parse().ok()?;
        return (0.0..=100.0).contains(&p).then_some(MinFree::Percent(p));
    }
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let number: f64 = value[..split].parse().ok()?;
    let unit = value[split..].trim().to_ascii_lowercase();
    let factor: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => return None,
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(MinFree::Bytes(bytes as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_free_reads_sizes_and_percentages() {
        assert_eq!(parse_min_free("1GiB"), Some(MinFree::Bytes(1 << 30)));
        assert_eq!(parse_min_free("500 MB"), Some(MinFree::Bytes(500_000_000)));
        assert_eq!(parse_min_free("5%"), Some(MinFree::Percent(5.0)));
        assert_eq!(parse_min_free("150%"), None);
        assert_eq!(parse_min_free("lots"), None);
    }
}
