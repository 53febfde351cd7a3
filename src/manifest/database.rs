//! `[[database]]` entries: a SQLite `path` or a PostgreSQL `url_env`, and
//! what both share (schema file, data checks, ignore, rename, backfill).

use std::collections::HashSet;

use super::raw::{RawBackfill, RawDataCheck, RawDatabase, RawRename};
use super::validator::Validator;
use super::*;

/// Default `lock_timeout` of PostgreSQL DDL.
const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn specs(
    v: &mut Validator,
    raw: Vec<RawDatabase>,
) -> Result<(Vec<DatabaseSpec>, Vec<PostgresSpec>), ManifestError> {
    let (mut sqlite, mut postgres) = (Vec::new(), Vec::new());
    let mut urls = HashSet::new();
    for d in raw {
        match (&d.path, &d.url_env) {
            (Some(_), Some(url_env)) => {
                return Err(
                    v.error_at_key("url_env", format!("database {url_env:?} has both `path` and `url_env`; give one"))
                );
            }
            (Some(path), None) => {
                let path = path.clone();
                sqlite.push(sqlite_spec(v, &path, d)?);
            }
            (None, Some(url_env)) => {
                if !urls.insert(url_env.clone()) {
                    return Err(v.error_at(
                        "url_env",
                        url_env,
                        format!("`url_env` = {url_env:?} is declared more than once"),
                    ));
                }
                postgres.push(postgres_spec(v, d)?);
            }
            (None, None) => {
                return Err(v.error_at_key(
                    "schema",
                    "a [[database]] needs `path` (a SQLite file) or `url_env` (a PostgreSQL URL)".into(),
                ))
            }
        }
    }
    Ok((sqlite, postgres))
}

fn sqlite_spec(v: &mut Validator, path: &str, d: RawDatabase) -> Result<DatabaseSpec, ManifestError> {
    for (key, given) in [("namespace", d.namespace.is_some()), ("lock_timeout", d.lock_timeout.is_some())] {
        if given {
            return Err(v.error_at_key(
                key,
                format!("`{key}` applies to PostgreSQL (`url_env`), not to the SQLite file {path:?}"),
            ));
        }
    }
    let path_buf = v.unique_path("path", path)?;
    let schema = v.path("schema", &d.schema)?;
    let checks = data_checks(v, path, d.check)?;
    let convergence = convergence(v, d.ignore, d.rename, d.backfill)?;
    Ok(DatabaseSpec {
        path: path_buf,
        schema,
        create: d.create.unwrap_or(true),
        convergence,
        checks,
        integrity: d.integrity.unwrap_or_default(),
        severity: d.severity,
    })
}

fn postgres_spec(v: &mut Validator, d: RawDatabase) -> Result<PostgresSpec, ManifestError> {
    let url_env = d.url_env.unwrap_or_default();
    v.note("url_env", &url_env);
    if !is_variable_name(&url_env) {
        return Err(v.error_at("url_env", &url_env, format!("`url_env` = {url_env:?} is not a valid variable name")));
    }
    if d.create.is_some() {
        return Err(v.error_at_key(
            "create",
            "`create` applies to SQLite files; a PostgreSQL database is never created".into(),
        ));
    }
    if d.integrity.is_some() {
        return Err(v.error_at_key(
            "integrity",
            "`integrity` applies to SQLite files (how much of the file validate reads)".into(),
        ));
    }
    let namespace = d.namespace.unwrap_or_else(|| "public".into());
    if namespace.is_empty() || namespace.chars().any(char::is_control) {
        return Err(v.error_at_key("namespace", format!("`namespace` = {namespace:?} is not a schema name")));
    }
    let lock_timeout = match &d.lock_timeout {
        Some(t) => v.duration("lock_timeout", t)?,
        None => LOCK_TIMEOUT,
    };
    let schema = v.path("schema", &d.schema)?;
    let checks = data_checks(v, &url_env, d.check)?;
    let convergence = convergence(v, d.ignore, d.rename, d.backfill)?;
    Ok(PostgresSpec { url_env, schema, namespace, lock_timeout, convergence, checks, severity: d.severity })
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn data_checks(v: &mut Validator, database: &str, raw: Vec<RawDataCheck>) -> Result<Vec<DataCheckSpec>, ManifestError> {
    let mut names = HashSet::new();
    raw.into_iter()
        .map(|c| {
            v.note("name", &c.name);
            if c.name.trim().is_empty() || c.sql.trim().is_empty() {
                return Err(
                    v.error_at_key("sql", format!("a check of database {database:?} has an empty `name` or `sql`"))
                );
            }
            if !names.insert(c.name.clone()) {
                return Err(v.error_at(
                    "name",
                    &c.name,
                    format!("check {:?} is declared twice for database {database:?}", c.name),
                ));
            }
            Ok(DataCheckSpec { name: c.name, sql: c.sql, fix: c.fix, severity: c.severity })
        })
        .collect()
}

fn convergence(
    v: &mut Validator,
    ignore: Vec<String>,
    renames: Vec<RawRename>,
    backfills: Vec<RawBackfill>,
) -> Result<Convergence, ManifestError> {
    for pattern in &ignore {
        v.note("ignore", pattern);
        if pattern.is_empty() || globset::Glob::new(pattern).is_err() {
            return Err(v.error_at("ignore", pattern, format!("`ignore` entry {pattern:?} is not a name or glob")));
        }
    }
    let renames = renames.into_iter().map(|r| rename(v, r)).collect::<Result<_, _>>()?;
    let backfills = backfills.into_iter().map(|b| backfill(v, b)).collect::<Result<_, _>>()?;
    Ok(Convergence { ignore, renames, backfills })
}

/// `table` or `table.column`, each part non-empty.
fn split_name(name: &str) -> Option<(String, Option<String>)> {
    let mut parts = name.splitn(2, '.');
    let table = parts.next().filter(|t| !t.is_empty() && !t.chars().any(char::is_control))?;
    match parts.next() {
        None => Some((table.to_string(), None)),
        Some(column) if !column.is_empty() && !column.contains('.') && !column.chars().any(char::is_control) => {
            Some((table.to_string(), Some(column.to_string())))
        }
        Some(_) => None,
    }
}

fn rename(v: &mut Validator, r: RawRename) -> Result<RenameSpec, ManifestError> {
    v.note("from", &r.from);
    v.note("to", &r.to);
    let bad = |v: &mut Validator, why: String| v.error_at("from", &r.from, why);
    let (Some((table, column)), Some((to_table, to_column))) = (split_name(&r.from), split_name(&r.to)) else {
        return Err(bad(v, format!("rename {:?} → {:?}: write `table` or `table.column` on both sides", r.from, r.to)));
    };
    match (&column, &to_column) {
        (None, None) if table != to_table => {}
        (Some(c), Some(t)) if table == to_table && c != t => {}
        _ => {
            return Err(bad(
                v,
                format!(
                "rename {:?} → {:?}: rename a table to another table, or a column to another column of the same table",
                r.from, r.to
            ),
            ))
        }
    }
    Ok(RenameSpec { table, column, to_table, to_column })
}

fn backfill(v: &mut Validator, b: RawBackfill) -> Result<BackfillSpec, ManifestError> {
    v.note("column", &b.column);
    let Some((table, Some(column))) = split_name(&b.column) else {
        return Err(v.error_at(
            "column",
            &b.column,
            format!("backfill `column` = {:?}: write `table.column`", b.column),
        ));
    };
    if b.value.trim().is_empty() {
        return Err(v.error_at("column", &b.column, format!("backfill of {:?} has an empty `value`", b.column)));
    }
    Ok(BackfillSpec { table, column, value: b.value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_table_and_column() {
        assert_eq!(split_name("users"), Some(("users".into(), None)));
        assert_eq!(split_name("users.uid"), Some(("users".into(), Some("uid".into()))));
        assert_eq!(split_name("a.b.c"), None);
        assert_eq!(split_name(".b"), None);
        assert_eq!(split_name("a."), None);
    }

    #[test]
    fn variable_names() {
        assert!(is_variable_name("DATABASE_URL"));
        assert!(!is_variable_name("1URL"));
        assert!(!is_variable_name("A-B"));
    }
}
