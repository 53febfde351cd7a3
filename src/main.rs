//! The `preflight` binary: parse arguments, run the command, print the
//! report, exit with the launcher contract's code.

mod cli;
mod commands;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Format};
use preflight::report;

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
        Command::Validate => commands::validate::validate(cli),
        Command::Heal { dry_run, allow_rebuild } => commands::heal::heal(cli, *dry_run, *allow_rebuild),
        Command::Schema => commands::schema::schema(),
        Command::Completions { shell } => commands::completions::completions(*shell),
        Command::Man => commands::completions::man(),
        Command::Init { force, database_url_env } => commands::init::init(cli, *force, database_url_env),
        Command::History { run, json, stats } => commands::history::history(cli, run.as_deref(), *json, *stats),
        Command::Rollback { run } => commands::rollback::rollback(cli, run.as_deref()),
        Command::Run { retry_timeout, sleep, cmd } => {
            let retry = commands::run::Retry { timeout: *retry_timeout, sleep: *sleep };
            commands::run::run(cli, retry, cmd)
        }
        Command::Watch { interval, max_heals, cooldown } => {
            let manifest = commands::load_manifest(cli)?;
            commands::selection(cli, &manifest)?; // an argument error stops it before the first cycle
            let breaker = commands::watch::Breaker { max_heals: *max_heals, cooldown: *cooldown };
            commands::watch::watch(cli, &manifest, *interval, breaker)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}
