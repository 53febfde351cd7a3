//! `preflight validate`: every selected check against the disk; nothing
//! is changed.

use preflight::checks;
use preflight::report::Report;

use super::{emit, load_manifest, options, report_format, selection};
use crate::cli::Cli;

pub fn validate(cli: &Cli) -> anyhow::Result<u8> {
    let manifest = load_manifest(cli)?;
    let findings = checks::run_all(&manifest, &options(cli, false), &selection(cli, &manifest)?)?;
    emit(&Report::validate(&findings, cli.strict), report_format(cli), &mut anstream::stdout())
}
