//! `preflight heal`: plan, apply, validate again; with `--dry-run`, only
//! the plan, exactly as it would run.

use anyhow::Context;
use preflight::report::Report;
use preflight::{checks, heal};

use super::{emit, load_manifest, options, progress, report_format, selection};
use crate::cli::Cli;

pub fn heal(cli: &Cli, dry_run: bool, allow_rebuild: bool) -> anyhow::Result<u8> {
    let manifest = load_manifest(cli)?;
    let (options, selection) = (options(cli, allow_rebuild), selection(cli, &manifest)?);
    let mut out = anstream::stdout();
    if dry_run {
        let findings = checks::run_all(&manifest, &options, &selection)?;
        return emit(&Report::dry_run(&findings, cli.strict), report_format(cli), &mut out);
    }
    let result = heal::heal(&manifest, &options, &selection, progress(cli).as_ref()).context("heal stopped")?;
    emit(&Report::heal(&result, cli.strict), report_format(cli), &mut out)
}
