//! The `preflight` binary: parse arguments, run the command, print the
//! report, exit with the launcher contract's code.

mod cli;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command, Format};
use preflight::checks::{self, CheckOptions, Selection};
use preflight::heal;
use preflight::manifest;
use preflight::report::{self, Report};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on bad arguments, which a launcher would read as "go".
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    cli.color.choice().write_global();
    let command = command_name(&cli.command);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            let _ = match cli.format {
                Format::Json => report::json_error(command, &message, &mut anstream::stdout()),
                Format::Human => report::human_error(&message, &mut anstream::stderr()),
            };
            ExitCode::from(1)
        }
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Validate => "validate",
        Command::Heal { .. } => "heal",
        Command::Schema => "schema",
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    if let Command::Schema = cli.command {
        let schema = serde_json::to_string_pretty(&manifest::json_schema())?;
        writeln!(io::stdout(), "{schema}")?;
        return Ok(0);
    }
    let path = manifest::locate(cli.manifest.as_deref())?;
    let manifest = manifest::load(&path, cli.root.as_deref())?;
    let selection = Selection { db_only: cli.db_only, fs_only: cli.fs_only, only: cli.only.clone() };
    let allow_rebuild = matches!(cli.command, Command::Heal { allow_rebuild: true, .. });
    let options = CheckOptions { allow_rebuild, no_commands: cli.no_commands };
    let format = match cli.format {
        Format::Human => report::Format::Human { quiet: cli.quiet },
        Format::Json => report::Format::Json,
    };
    let mut out = anstream::stdout();
    let code = match cli.command {
        Command::Validate => {
            let findings = checks::run_all(&manifest, &options, &selection)?;
            emit(&Report::validate(&findings, cli.strict), format, &mut out)?
        }
        Command::Heal { dry_run: true, .. } => {
            let findings = checks::run_all(&manifest, &options, &selection)?;
            emit(&Report::dry_run(&findings, cli.strict), format, &mut out)?
        }
        Command::Heal { dry_run: false, .. } => {
            let result = heal::heal(&manifest, &options, &selection).context("heal stopped")?;
            emit(&Report::heal(&result, cli.strict), format, &mut out)?
        }
        Command::Schema => unreachable!("handled above"),
    };
    Ok(code)
}

/// Prints the report and returns its exit code; a closed pipe is not an error.
fn emit(report: &Report, format: report::Format, out: &mut dyn Write) -> anyhow::Result<u8> {
    match report::render(report, format, out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(report.exit_code()),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}
