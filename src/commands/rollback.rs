//! `preflight rollback [RUN]`: undo the last (or the named) heal run, or
//! refuse with every reason when the disk changed after it. The rollback
//! is itself a run in the history, marked `rollback_of`. Changes heal made
//! in a PostgreSQL database are undone by its engine, which needs the
//! manifest (for the URL's variable and its `.env`).

use preflight::safety::history::{Entry, Outcome};
use preflight::safety::rollback;
use preflight::{checks, db, report};

use super::{print_to_stdout, root_only};
use crate::cli::{Cli, Format};

pub fn rollback(cli: &Cli, run: Option<&str>) -> anyhow::Result<u8> {
    let root = root_only(cli)?;
    // Loading the manifest declares its volume dirs, so what a run wrote
    // beneath one can be undone; rollback works without it otherwise. It
    // also names the databases whose changes the engines undo.
    let manifest = super::load_manifest(cli);
    let databases = |entries: &[&Entry]| -> Vec<Entry> {
        match &manifest {
            Ok(manifest) => {
                let url_of = |name: &str| checks::env_variable(&manifest.root, manifest, name);
                db::postgres::history::undo_entries(manifest, &url_of, entries)
            }
            Err(e) => entries
                .iter()
                .map(|entry| Entry {
                    id: entry.id.clone(),
                    action: format!("undo {}", entry.action),
                    outcome: Outcome::Failed,
                    detail: format!("the manifest is needed to reach the database: {e:#}"),
                    ..Default::default()
                })
                .collect(),
        }
    };
    let result = rollback::rollback(&root, run, &preflight::heal::new_run_id(), &preflight::heal::now, &databases)?;
    print_to_stdout(|out| report::rollback::render(&result, cli.format == Format::Json, out))?;
    Ok(u8::from(result.failed()))
}
