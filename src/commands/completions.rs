//! `preflight completions SHELL` and `preflight man`: generated from the
//! clap definition, so they never drift from the real options.

use clap::CommandFactory;
use preflight::report;

use super::print_to_stdout;
use crate::cli::Cli;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "preflight", &mut script);
    print_to_stdout(|out| report::generated(&script, out))?;
    Ok(0)
}

/// Prints the man page, preflight(1), as roff.
pub fn man() -> anyhow::Result<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    print_to_stdout(|out| report::generated(&page, out))?;
    Ok(0)
}
