//! `ummatics-sentiment`: parse arguments, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use ummatics_sentiment::{cli::Cli, commands};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
