//! `preflight history`: the persisted log of heal runs, newest first, as
//! text or JSON; `--stats` counts, per finding ID, how often it was found,
//! healed and failed, to show an installation's recurring problems.

use anyhow::bail;
use preflight::report;
use preflight::safety::history;

use super::{print_to_stdout, root_only};
use crate::cli::{Cli, Format};

pub fn history(cli: &Cli, only_run: Option<&str>, json: bool, want_stats: bool) -> anyhow::Result<u8> {
    let root = root_only(cli)?;
    let entries = history::read(&root)?;
    let json = json || cli.format == Format::Json;
    if want_stats {
        let stats = history::stats(&entries);
        print_to_stdout(|out| report::history::stats(&stats, json, out))?;
        return Ok(0);
    }
    let mut runs = history::runs(&entries);
    if let Some(id) = only_run {
        runs.retain(|r| r.run == id);
        if runs.is_empty() {
            bail!("no run {id} in {}; `preflight history` lists the runs", history::path(&root).display());
        }
    }
    print_to_stdout(|out| report::history::runs(&runs, json, out))?;
    Ok(0)
}
