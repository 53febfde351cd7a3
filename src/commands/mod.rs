//! One module per subcommand, each taking the parsed command line and
//! returning the exit code. This module holds what they share: loading the
//! manifest, the options it implies, and handing output to the reporters.

pub mod completions;
pub mod heal;
pub mod history;
pub mod init;
mod init_scan;
pub mod rollback;
pub mod run;
pub mod schema;
pub mod validate;
pub mod watch;

use std::io::{self, Write};
use std::path::PathBuf;

use preflight::checks::{CheckOptions, Selection};
use preflight::manifest::{self, Manifest};
use preflight::report::{self, Report};
use preflight::safety::Progress;

use crate::cli::{Cli, Format};

/// Finds, reads and validates the manifest the command line names.
pub fn load_manifest(cli: &Cli) -> anyhow::Result<Manifest> {
    let path = manifest::locate(cli.manifest.as_deref())?;
    Ok(manifest::load(&path, cli.root.as_deref())?)
}

/// The root without reading the manifest (history and rollback work even
/// when the manifest no longer validates): `--root`, else the manifest's folder.
pub fn root_only(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(root) = &cli.root {
        return Ok(root.clone());
    }
    let path = manifest::locate(cli.manifest.as_deref())?;
    Ok(match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// The checks and findings the command line selects. An `--only` value
/// that can match nothing the manifest declares is an argument error: a
/// typo would otherwise select nothing and pass.
pub fn selection(cli: &Cli, manifest: &Manifest) -> anyhow::Result<Selection> {
    let selection = Selection { db_only: cli.db_only, fs_only: cli.fs_only, only: cli.only.clone() };
    let unmatched = selection.unmatched(manifest);
    if !unmatched.is_empty() {
        return Err(ArgumentError(format!(
            "--only {} matches nothing {} declares; give a finding ID or prefix as `preflight validate` prints them \
             (e.g. dir:data, file:, db:app.db)",
            unmatched.join(", --only "),
            manifest.file.display()
        ))
        .into());
    }
    Ok(selection)
}

/// A command line that cannot be right whatever the disk holds: never
/// retried by `run --retry-timeout`.
#[derive(Debug)]
pub struct ArgumentError(pub String);

impl std::fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgumentError {}

pub fn options(cli: &Cli, allow_rebuild: bool) -> CheckOptions {
    CheckOptions { allow_rebuild, no_commands: cli.no_commands, deep: cli.deep, ..CheckOptions::default() }
}

pub fn report_format(cli: &Cli) -> report::Format {
    match cli.format {
        Format::Human => report::Format::Human { quiet: cli.quiet },
        Format::Json => report::Format::Json,
        Format::Junit => report::Format::Junit,
    }
}

/// Where long fixes report how far they are: bars on stderr for a human
/// on a terminal, nothing for machines and logs.
pub fn progress(cli: &Cli) -> Box<dyn Progress> {
    report::progress::for_stderr(report_format(cli), report::progress::DELAY)
}

/// Prints the report and returns its exit code; a closed pipe is not an error.
pub fn emit(report: &Report, format: report::Format, out: &mut dyn Write) -> anyhow::Result<u8> {
    match report::render(report, format, out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(report.exit_code()),
    }
}

/// Runs a reporter on stdout; a closed pipe is not an error.
pub fn print_to_stdout(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    match render(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
