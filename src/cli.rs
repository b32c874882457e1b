//! Command-line arguments (clap derive): global flags and one `Args` struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ummatics_sentiment_function::ClassifierOptions;

use crate::models::ModelSpec;
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
    /// Measure a model on a labelled data set: accuracy, per-class precision/recall/F1.
    Eval(EvalArgs),
}

/// Which model runs in this process, and how.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model: `mini` (the bundled SST-2 model, the default), a directory holding
    /// model.onnx, config.json and tokenizer.json (or vocab.txt), or a Hugging Face id.
    #[arg(long, value_name = "MODEL", default_value = "mini")]
    pub model: ModelSpec,
    /// Truncate texts to this many tokens (default: the model window, at most 512).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=8192))]
    pub max_tokens: Option<u32>,
    /// Threads for inference (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
}

impl ModelArgs {
    /// The environment's settings (UMMATICS_*), overridden by these flags.
    pub fn options(&self) -> anyhow::Result<ClassifierOptions> {
        let mut options = ClassifierOptions::from_env()?;
        if let Some(n) = self.max_tokens {
            options.max_tokens = Some(n as usize);
        }
        if let Some(n) = self.threads {
            options.threads = Some(n as usize);
        }
        Ok(options)
    }
}

/// Formats `eval` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// Tab-separated, header line, no quoting (GLUE's SST-2 files).
    Tsv,
    /// Comma-separated with a header line, RFC 4180 quoting.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Labelled data: TSV, CSV (header line) or JSONL, with a text and a label
    /// (0/1 or the label names, e.g. negative/positive) per example.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The file's format (default: from its extension).
    #[arg(long, value_enum)]
    pub format: Option<DataFormat>,
    /// The column (or JSON field) holding the text.
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub text_column: String,
    /// The column (or JSON field) holding the label.
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub label_column: String,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// Texts to classify (each argument is one text).
    #[arg(value_name = "TEXT")]
    pub texts: Vec<String>,
    /// Run the model in this process instead of calling the deployed function.
    #[arg(long)]
    pub local: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}
