//! The command line, as clap sees it. Parsed once in `main`, then turned
//! into the library's options.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "preflight", version, about = "Check an application's working directory before it starts, and heal what can be healed without losing data.", long_about = None)]
#[command(
    after_help = "Exit codes: 0 every check passes, 1 critical findings remain or preflight could not run, 2 only warnings remain."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// The manifest (default: ./preflight.toml, then ./preflight.json).
    #[arg(short, long, global = true, value_name = "PATH")]
    pub manifest: Option<PathBuf>,

    /// The directory declared paths are relative to (default: the manifest's folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Only database checks.
    #[arg(long, global = true, conflicts_with = "fs_only")]
    pub db_only: bool,

    /// Only file-system checks (env, dirs, files, locks, heartbeats, pidfiles, prune).
    #[arg(long, global = true)]
    pub fs_only: bool,

    /// Only findings whose ID equals or starts with ID (repeatable). A value that can match nothing the manifest declares is an argument error (exit 1).
    #[arg(long = "only", global = true, value_name = "ID")]
    pub only: Vec<String>,

    /// Print only problems, and nothing when all is well.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// When to colour human output (NO_COLOR is honoured by `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// Warnings count as critical (exit 1 instead of 2).
    #[arg(long, global = true)]
    pub strict: bool,

    /// Skip `[[command]]` checks and their fixes.
    #[arg(long, global = true)]
    pub no_commands: bool,

    /// Full integrity checks (`PRAGMA quick_check`) of every database, whatever its size or `integrity`.
    #[arg(long, global = true)]
    pub deep: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect everything the manifest declares; change nothing.
    Validate,
    /// Validate, apply every safe fix, validate again.
    Heal {
        /// Print the exact plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also rebuild tables whose columns differ in type, nullability, default or key (after a backup).
        #[arg(long)]
        allow_rebuild: bool,
    },
    /// Print the JSON Schema of the manifest.
    Schema,
    /// Launcher mode: validate, heal if needed, validate, then exec CMD when the result is 0 or 2 (with --strict, only 0).
    #[command(
        after_help = "Example: preflight run --retry-timeout 2m -- python3 app.py --port 8000",
        after_long_help = "Deployment: nothing is healed while a path the deployment provides is not there: a \
`create = false` dir, file or database that is missing, or a dir expected to be a mount point (`volume = true` with \
`create = false`, or listed in /etc/fstab) that is still a plain folder. --retry-timeout waits for them first. \
Required keys set in the process environment (docker run --env, systemd Environment=) count, and win over .env. \
With `[app] user`, validate checks that account can use every declared path; heal run as root gives it what it \
creates.\n\nExample: preflight run --retry-timeout 2m -- python3 app.py --port 8000"
    )]
    Run {
        /// Keep validating (and healing) until the result allows a start or this much time has passed; before the first heal, wait for every `create = false` path and expected mount.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        retry_timeout: Option<Duration>,
        /// Pause between two attempts under --retry-timeout.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
        sleep: Duration,
        /// The program to start, and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },
    /// The log of heal runs and their actions, newest first.
    History {
        /// Only this run.
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// JSON output (same as --format json).
        #[arg(long)]
        json: bool,
        /// Per finding ID: how often it was found, healed, and failed.
        #[arg(long)]
        stats: bool,
    },
    /// Undo the last (or the named) heal run from its copies and backups.
    Rollback {
        /// The run ID, as `preflight history` shows it (default: the last run not yet rolled back).
        run: Option<String>,
    },
    /// Write a starter manifest from the directory as it is.
    Init {
        /// Overwrite an existing manifest and schema files.
        #[arg(long)]
        force: bool,
        /// Also dump the PostgreSQL database whose URL this variable holds
        /// (process environment, then .env) as starter DDL; repeatable.
        #[arg(long, value_name = "NAME")]
        database_url_env: Vec<String>,
    },
    /// Heal periodically until SIGINT or SIGTERM, with a circuit breaker for findings that keep coming back.
    Watch {
        /// Time between two heals.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
        interval: Duration,
        /// A finding healed this many times within the last hour is no longer healed, and is reported as critical (flapping).
        #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        max_heals: u32,
        /// Minimum time between two heals of the same finding.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1m")]
        cooldown: Duration,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    preflight::runtime::clock::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 30s, 2m)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    /// JUnit XML, one test case per check, for CI systems.
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    pub fn choice(self) -> anstream::ColorChoice {
        match self {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        }
    }
}
