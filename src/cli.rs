//! The command line, as clap sees it. Parsed once in `main`, then turned
//! into the library's options.

use std::path::PathBuf;

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

    /// Only findings whose ID equals or starts with ID (repeatable).
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
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
