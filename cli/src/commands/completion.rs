//! `skiff completion SHELL`: shell completion scripts generated from the
//! clap definitions, so they never drift from the real flags.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::args::{Cli, CompletionArgs};

pub fn run(arguments: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(
        arguments.shell,
        &mut command,
        "skiff",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}
