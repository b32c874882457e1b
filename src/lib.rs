//! The `ummatics-sentiment` command-line tool, as a library: each subcommand is a module of
//! [`commands`] with `pub async fn run(args, &GlobalArgs) -> Result<ExitCode>` (`deploy` takes
//! its checked `DeployPlan`), so tests and other tools can drive them directly. The layers
//! below the commands are listed in the README ("Where things live"); the wire protocol and
//! the batching client are crates of their own, re-exported here as `client`.

pub mod aws;
pub mod bootstrap;
pub mod budget;
pub mod carried;
pub mod cli;
pub mod commands;
pub mod config;
pub mod evaluation;
pub mod image;
pub mod input;
pub mod interrupt;
pub mod lambda;
pub mod models;
pub mod output;
pub mod pricing;
pub mod process;
pub mod release;
pub mod sizing;
pub mod stack;
pub mod telemetry;
pub mod when;

/// The batching Lambda client, from its own crate (a backend links it without the CLI).
pub use ummatics_sentiment_client as client;
