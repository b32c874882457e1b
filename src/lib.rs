//! The `ummatics-sentiment` command-line tool, as a library: every subcommand is a module with
//! `pub async fn run(args, ctx)`, so tests and other tools can drive them directly.

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
pub mod process;
pub mod release;
pub mod sizing;
pub mod stack;
pub mod telemetry;
pub mod when;

/// The batching Lambda client, from its own crate (a backend links it without the CLI).
pub use ummatics_sentiment_client as client;
