//! The `preflight` binary: parse arguments, run the command, print the
//! report, exit with the launcher contract's code.
//!
//! It starts at the C `main`, not through std's runtime start-up: that
//! start-up reads and parses /proc/self/maps to place the main thread's
//! stack-overflow guard, a tenth of what `preflight --version` costs, paid
//! on every start of the application. What else it does and matters here
//! is done by `start` (see there); a stack overflow is then a plain SIGSEGV
//! instead of a message and SIGABRT.
#![cfg_attr(not(test), no_main)]
// The entry point below is left out of test builds, which have their own.
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod commands;

use std::io;

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command, Format};
use preflight::report;

/// The process's entry point, called by the C runtime with the arguments
/// std has already captured (`std::env::args_os` works as usual).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    start();
    // A panic is reported by the panic hook, as under std's start-up, and
    // ends the process with std's code for it.
    let code = std::panic::catch_unwind(preflight_main).map_or(101, |code| code);
    // std's start-up flushed stdout at exit; a report may end without `\n`.
    let _ = io::Write::flush(&mut io::stdout());
    code.into()
}

/// What std's start-up did that this program relies on:
/// - descriptors 0, 1 and 2 are open (on `/dev/null` if they were closed),
///   so that no file preflight opens becomes stdout and takes its report;
/// - SIGPIPE is ignored, so that a reader gone away is an `EPIPE` error
///   (a launcher's `| head`) and not a silent death mid-heal; std's
///   `Command` still gives children the default disposition.
///
/// And one of its own: SIGXFSZ is ignored (`ignore_file_size_signal`).
fn start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: `fds` is a valid array of three pollfds for the whole call.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    for fd in fds.iter().filter(|fd| polled >= 0 && fd.revents & libc::POLLNVAL != 0) {
        // SAFETY: a C string literal; the lowest free descriptor is `fd.fd`,
        // since the ones below it are open.
        if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != fd.fd {
            std::process::abort();
        }
    }
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    ignore_file_size_signal();
}

/// `Cli::try_parse`, without freeing clap's command tree piece by piece
/// afterwards (more instructions than the parse itself): the process ends
/// soon and the memory goes with it.
fn parse_arguments() -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command)));
    std::mem::forget(command);
    parsed
}

fn preflight_main() -> u8 {
    let cli = match parse_arguments() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on bad arguments, which a launcher would read as "go".
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    cli.color.choice().write_global();
    let command = command_name(&cli.command);
    match run(&cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let message = format!("{e:#}");
            let _ = match cli.format {
                Format::Json => report::json_error(command, &message, &mut anstream::stdout()),
                Format::Junit => report::junit_error(command, &message, &mut anstream::stdout()),
                Format::Human => report::human_error(&message, &mut anstream::stderr()),
            };
            1
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
