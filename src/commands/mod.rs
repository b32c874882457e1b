//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod eval;
pub mod invoke;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Invoke(args) => invoke::run(args, &cli.global).await,
        Command::Eval(args) => eval::run(args, &cli.global).await,
    }
}
