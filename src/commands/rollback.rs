//! `preflight rollback [RUN]`: undo the last (or the named) heal run, or
//! refuse with every reason when the disk changed after it. The rollback
//! is itself a run in the history, marked `rollback_of`.

use preflight::report;
use preflight::safety::rollback;

use super::{print_to_stdout, root_only};
use crate::cli::{Cli, Format};

pub fn rollback(cli: &Cli, run: Option<&str>) -> anyhow::Result<u8> {
    let root = root_only(cli)?;
    // Loading the manifest declares its volume dirs, so what a run wrote
    // beneath one can be undone; rollback works without it otherwise.
    let _ = super::load_manifest(cli);
    let result = rollback::rollback(&root, run, &preflight::heal::new_run_id(), &preflight::heal::now)?;
    print_to_stdout(|out| report::rollback::render(&result, cli.format == Format::Json, out))?;
    Ok(u8::from(result.failed()))
}
