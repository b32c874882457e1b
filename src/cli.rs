//! Command-line arguments (clap derive): global flags and one `Args` struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "ummatics-sentiment",
    version,
    about = "Transformer sentiment analysis on AWS Lambda: deploy, invoke, serve, observe",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// How results are printed: a table for people, or JSON for programs.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify texts: in-process with --local, or through the deployed function.
    Invoke(InvokeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// Texts to classify (each argument is one text).
    #[arg(value_name = "TEXT")]
    pub texts: Vec<String>,
    /// Run the model in this process instead of calling the deployed function.
    #[arg(long)]
    pub local: bool,
    /// Model directory (model.onnx, config.json, tokenizer.json or vocab.txt); with --local.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Truncate texts to this many tokens (default: the model window, at most 512).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=8192))]
    pub max_tokens: Option<u32>,
    /// Threads for inference (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
}
