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
    let mut command = Cli::command();
    command.build();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    // The top page lists subcommands by name only: each one with options of
    // its own (run's deployment flags above all) follows as its own page.
    let shared: Vec<&str> = command.get_arguments().map(|a| a.get_id().as_str()).collect();
    let own_options = |sub: &&clap::Command| sub.get_arguments().any(|a| !shared.contains(&a.get_id().as_str()));
    for sub in command.get_subcommands().filter(own_options) {
        let name = format!("preflight-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone()).title(name).render(&mut page)?;
    }
    print_to_stdout(|out| report::generated(&page, out))?;
    Ok(0)
}
