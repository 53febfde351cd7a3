//! The `preflight` binary: parse arguments, run the command, print the
//! report, exit with the launcher contract's code.

mod cli;
mod commands;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command, Format};
use commands::emit;
use preflight::checks;
use preflight::heal;
use preflight::manifest;
use preflight::report::{self, Report};

fn main() -> ExitCode {
    ignore_file_size_signal();
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
                Format::Junit => report::junit_error(command, &message, &mut anstream::stdout()),
                Format::Human => report::human_error(&message, &mut anstream::stderr()),
            };
            ExitCode::from(1)
        }
    }
}

/// Over a file-size limit (`ulimit -f`), the kernel kills the writer with
/// SIGXFSZ unless it is ignored; ignored, the write fails with EFBIG and heal
/// reports the file it could not write, leaving the original in place.
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Validate => "validate",
        Command::Heal { .. } => "heal",
        Command::Schema => "schema",
        Command::Run { .. } => "run",
        Command::History { .. } => "history",
        Command::Rollback { .. } => "rollback",
        Command::Init { .. } => "init",
        Command::Watch { .. } => "watch",
        Command::Completions { .. } => "completions",
        Command::Man => "man",
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&manifest::json_schema())?;
            writeln!(io::stdout(), "{schema}")?;
            return Ok(0);
        }
        Command::Completions { shell } => return commands::completions::completions(*shell),
        Command::Man => return commands::completions::man(),
        Command::Init { force } => return commands::init::init(cli, *force),
        Command::History { run, json, stats } => return commands::history::history(cli, run.as_deref(), *json, *stats),
        Command::Rollback { run } => return commands::rollback::rollback(cli, run.as_deref()),
        Command::Run { retry_timeout, sleep, cmd } => {
            let retry = commands::run::Retry { timeout: *retry_timeout, sleep: *sleep };
            return commands::run::run(cli, retry, cmd);
        }
        _ => {}
    }
    let manifest = commands::load_manifest(cli)?;
    let selection = commands::selection(cli);
    let allow_rebuild = matches!(cli.command, Command::Heal { allow_rebuild: true, .. });
    let options = commands::options(cli, allow_rebuild);
    let format = commands::report_format(cli);
    let mut out = anstream::stdout();
    let code = match &cli.command {
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
        Command::Watch { interval, max_heals, cooldown } => {
            let breaker = commands::watch::Breaker { max_heals: *max_heals, cooldown: *cooldown };
            commands::watch::watch(cli, &manifest, *interval, breaker)?
        }
        _ => unreachable!("handled above"),
    };
    Ok(code)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}
