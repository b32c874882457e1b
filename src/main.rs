//! `ummatics-sentiment`: parse arguments, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use ummatics_sentiment::{cli::Cli, commands, output};
use ummatics_sentiment_function::startup::{self, Allocator};

/// mimalloc: the static CLI's in-process inference (invoke --local, eval, bench, serve) is
/// then as fast as a glibc build's (see `startup`).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

fn main() -> ExitCode {
    // Before the runtime starts its threads (startup::configure may set a variable).
    startup::configure();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(run());
            // Blocking work a Ctrl-C abandoned (a gzip, a digest) is not waited for.
            runtime.shutdown_background();
            code
        }
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
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
