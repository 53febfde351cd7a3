//! `preflight completions SHELL` and `preflight man`: generated from the
//! clap definition, so they never drift from the real options.

use std::io::{self, Write};

use clap::CommandFactory;

use crate::cli::Cli;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "preflight", &mut out);
    out.flush()?;
    Ok(0)
}

/// Prints the man page, preflight(1), as roff.
pub fn man() -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(0)
}
