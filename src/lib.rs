//! The `ummatics-sentiment` command-line tool, as a library: every subcommand is a module with
//! `pub async fn run(args, ctx)`, so tests and other tools can drive them directly.

pub mod cli;
pub mod commands;
pub mod models;
pub mod output;
