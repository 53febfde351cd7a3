//! validate's fast path. Loading the DDL into a scratch namespace costs the
//! server a CREATE per object (seconds for hundreds of tables), while
//! reading the live catalog costs a few queries. So when heal leaves a
//! namespace converged it records, in `preflight.converged`, a hash of the
//! comparison's inputs (the DDL text, `ignore`, renames, server version)
//! and a hash of the live catalog description it found equal to the DDL.
//! A later validate that reads the same live description for the same
//! inputs knows the answer without loading the DDL: the passes and the
//! differences heal could not repair (drift, changes it never makes), kept
//! with the record, are that answer. Any change to the DDL,
//! the manifest's comparison keys, the server version or the live schema
//! (an added column, an index gone INVALID…) changes a hash, and the full
//! comparison runs.

use postgres::GenericClient;
use sha2::{Digest, Sha256};

use super::catalog::Schema;
use super::{Config, Difference, Report, Severity};

/// Where the record lives: its own schema, outside every compared namespace.
pub const TABLE: &str = "preflight.converged";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the comparison depends on besides the live schema.
pub fn inputs_key(config: &Config, server_version: i32) -> String {
    let mut h = Sha256::new();
    h.update(config.ddl.as_bytes());
    for part in
        [&config.namespace, &config.ignore.join("\n"), &format!("{:?}", config.renames), &server_version.to_string()]
    {
        h.update([0u8]);
        h.update(part.as_bytes());
    }
    hex(&h.finalize())
}

/// The live namespace as the catalog describes it (with the extensions and
/// the search path the description was printed under).
pub fn catalog_key(schema: &Schema, extensions: &[String], search_path: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{schema:?}\0{extensions:?}\0{search_path}").as_bytes());
    hex(&h.finalize())
}

/// The answer recorded with the keys: passes, and the differences that
/// have no repair.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub passed: Vec<String>,
    pub differences: Vec<(String, bool, String)>,
}

impl Answer {
    pub fn of(report: &Report) -> Answer {
        Answer {
            passed: report.passed.clone(),
            differences: report
                .differences
                .iter()
                .map(|d| (d.id.clone(), d.severity == Severity::Critical, d.message.clone()))
                .collect(),
        }
    }

    pub fn differences(&self) -> Vec<Difference> {
        self.differences
            .iter()
            .map(|(id, critical, message)| Difference {
                id: id.clone(),
                severity: if *critical { Severity::Critical } else { Severity::Warning },
                message: message.clone(),
                step: None,
            })
            .collect()
    }
}

/// The inputs key and the catalog key.
pub type Keys = (String, String);

/// The recorded keys of `namespace` and their answer, if any.
pub fn read(client: &mut impl GenericClient, namespace: &str) -> Result<Option<(Keys, Answer)>, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])?.get(0);
    if !exists {
        return Ok(None);
    }
    let sql = format!("SELECT inputs_sha256, catalog_sha256, answer FROM {TABLE} WHERE namespace = $1");
    Ok(client.query_opt(&sql, &[&namespace])?.and_then(|r| {
        let answer: Answer = serde_json::from_str(r.get(2)).ok()?;
        Some(((r.get(0), r.get(1)), answer))
    }))
}

/// Records that `namespace` was found converged. Best effort: a role that
/// may not create the table simply keeps the full comparison.
pub fn write(client: &mut postgres::Client, namespace: &str, inputs: &str, catalog: &str, answer: &Answer) {
    let Ok(answer) = serde_json::to_string(answer) else { return };
    let result = client.transaction().and_then(|mut tx| {
        let exists: bool = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])?.get(0);
        // Created once; later heals only update their row (no catalog write).
        if !exists {
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS preflight; \
             CREATE TABLE IF NOT EXISTS {TABLE} (namespace text PRIMARY KEY, inputs_sha256 text NOT NULL, \
                 catalog_sha256 text NOT NULL, answer text NOT NULL, recorded timestamptz NOT NULL DEFAULT now()); \
             COMMENT ON TABLE {TABLE} IS 'preflight: namespaces found converged on their DDL, so validate can skip \
                 loading it; safe to drop'"
            ))?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {TABLE} (namespace, inputs_sha256, catalog_sha256, answer) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (namespace) DO UPDATE SET inputs_sha256 = $2, catalog_sha256 = $3, answer = $4, \
                 recorded = now()"
            ),
            &[&namespace, &inputs, &catalog, &answer],
        )?;
        tx.commit()
    });
    // Not recording only costs speed; the comparison stays complete.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_key() {
        let base = Config::new("db:X", "postgres://h/db", "CREATE TABLE t (a int);");
        let key = inputs_key(&base, 150000);
        let mut other = base.clone();
        other.ddl.push(' ');
        assert_ne!(inputs_key(&other, 150000), key);
        let mut other = base.clone();
        other.ignore.push("t".into());
        assert_ne!(inputs_key(&other, 150000), key);
        assert_ne!(inputs_key(&base, 160000), key);
        let mut other = base.clone();
        other.url = "postgres://elsewhere/db".into();
        assert_eq!(inputs_key(&other, 150000), key, "the URL (and its password) is not part of it");
    }
}
