//! `ummatics-sentiment`: parse arguments, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use ummatics_sentiment::{cli::Cli, commands, output};
use ummatics_sentiment_function::allocator::{self, Allocator};

/// mimalloc: the static CLI's in-process inference (invoke --local, eval, bench, serve) is
/// then as fast as a glibc build's (see `allocator`).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    allocator::configure();
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(code) => code,
        // The reader of our output went away (`| head`): nothing is wrong, stop quietly.
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
