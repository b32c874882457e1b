//! Command-line arguments (clap derive): global flags and one `Args` struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

use crate::aws::{AwsArgs, Names};
use crate::config::SettingFlags;
use crate::input::DataFormat;
use crate::lambda::Arch;
use crate::models::{Embedded, ModelSpec};
use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "ummatics-sentiment",
    version = ummatics_sentiment_function::build_info::DESCRIPTION,
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
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check what deploy needs: AWS credentials, region, the function (carried, or the toolchain
    /// to build it), Docker (optional), the model.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment doctor\n  ummatics-sentiment doctor --arch arm64 --stage prod\n  ummatics-sentiment --output json doctor"
    )]
    Doctor(DoctorArgs),
    /// Build the function image (with the function this binary carries), push it to ECR and
    /// create or update the stack.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment deploy                       # the built-in model, IAM-auth URL\n  ummatics-sentiment deploy --stage prod --yes    # [stages.prod] of ./ummatics-sentiment.toml\n  ummatics-sentiment deploy --dry-run --arch arm64    # show the plan, change nothing"
    )]
    Deploy(DeployArgs),
    /// Show the deployed stack, function, URL, dashboard and images, and the stage's settings
    /// from the configuration file.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment info\n  ummatics-sentiment info --stage prod --output json\n  ummatics-sentiment info --stage prod --config deploy/ummatics-sentiment.toml"
    )]
    Info(InfoArgs),
    /// Print the least-privilege IAM policy a backend needs to invoke the function, or with
    /// --deployer the one deploy, rollback and destroy need.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment policy > invoke-policy.json\n  ummatics-sentiment policy --stage prod\n  ummatics-sentiment policy --deployer > deployer-policy.json"
    )]
    Policy(PolicyArgs),
    /// The stage's releases, newest first, the live one marked (every deploy that changed
    /// the stack is one).
    #[command(
        after_help = "Examples:\n  ummatics-sentiment releases\n  ummatics-sentiment releases --stage prod --output json"
    )]
    Releases,
    /// Put an earlier release live again in one stack update: no rebuild, no push, same URL.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment rollback              # to the release before the live one\n  ummatics-sentiment rollback --to 3 --yes\n  ummatics-sentiment rollback --stage prod --dry-run"
    )]
    Rollback(RollbackArgs),
    /// Delete the stack, the image repository, the logs and the budget: nothing billable is left.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment destroy\n  ummatics-sentiment destroy --stage dev --yes"
    )]
    Destroy(DestroyArgs),
    /// Classify texts: through the deployed function, or in-process with --local.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment invoke --local \"I love this!\" \"This is terrible\"\n  ummatics-sentiment --output jsonl invoke --file reviews.txt > results.jsonl\n  ummatics-sentiment invoke --payload '{\"texts\": [\"I love this!\"]}'"
    )]
    Invoke(InvokeArgs),
    /// Run the function locally behind the Lambda Invoke API (for SDKs) and a function URL.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment serve                        # http://127.0.0.1:3001\n  AWS_ENDPOINT_URL=http://127.0.0.1:3001 ummatics-sentiment invoke \"I love this!\"\n  ummatics-sentiment serve --port 0 --concurrency 4 --queue 8"
    )]
    Serve(ServeArgs),
    /// The function's CloudWatch metrics and what they cost (GB-s, requests, dollars).
    #[command(
        after_help = "Examples:\n  ummatics-sentiment metrics\n  ummatics-sentiment metrics --since 7d --period 1d\n  ummatics-sentiment --output json metrics --stage prod"
    )]
    Metrics(MetricsArgs),
    /// The function's logs: the last 10 minutes by default, --since for more, --follow to tail.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment logs --follow\n  ummatics-sentiment logs --since 1h --filter ERROR"
    )]
    Logs(LogsArgs),
    /// Measure a model on a labelled data set: accuracy, per-class precision/recall/F1.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment eval --data sst2-dev.tsv\n  ummatics-sentiment eval --data reviews.csv --text-column review --label-column sentiment\n  ummatics-sentiment eval --data sst2-dev.tsv --function ummatics-sentiment-analysis"
    )]
    Eval(EvalArgs),
    /// Measure the model in this process: cold start (load / optimise / first run), warm
    /// texts/s, per-batch p50/p95 latency, peak memory.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment bench --texts sst2-dev.tsv\n  ummatics-sentiment bench --texts sst2-dev.tsv --threads 1 --rounds 3 --output json"
    )]
    Bench(BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Examples:\n  ummatics-sentiment completions bash > /etc/bash_completion.d/ummatics-sentiment\n  ummatics-sentiment completions zsh > ~/.zfunc/_ummatics-sentiment\n  ummatics-sentiment completions fish > ~/.config/fish/completions/ummatics-sentiment.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(
        after_help = "Examples:\n  ummatics-sentiment man > ummatics-sentiment.1 && man ./ummatics-sentiment.1\n  ummatics-sentiment man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write `ummatics-sentiment.1` and a page per subcommand (`ummatics-sentiment-deploy.1`, …)
    /// into this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Image builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderChoice {
    Auto,
    Docker,
    Oci,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The model deploy would ship (checked that it resolves).
    #[arg(long, value_name = "MODEL", default_value = Embedded::DEFAULT.spec())]
    pub model: ModelSpec,
    /// The architecture deploy would build for.
    #[arg(long, value_enum, default_value_t = Arch::X86_64)]
    pub arch: Arch,
    /// Check the toolchain `deploy --build-function` needs (Rust, the musl target, a C compiler
    /// or zig), even when this binary carries the function.
    #[arg(long)]
    pub build_function: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The stage's settings from a file (default: ./ummatics-sentiment.toml when present).
    #[command(flatten)]
    pub config: ConfigArg,
    /// Settings that the configuration file may also give; a flag beats the file.
    #[command(flatten)]
    pub settings: SettingFlags,
    /// A prebuilt static `bootstrap` binary instead of the function this binary carries.
    #[arg(long, value_name = "PATH", conflicts_with = "build_function")]
    pub bootstrap: Option<PathBuf>,
    /// Compile the function from this checkout with cargo instead of using the one this binary
    /// carries (development; a build without a carried function does this inside a checkout).
    #[arg(long)]
    pub build_function: bool,
    /// How the image is made: `docker` (the engine, via its API), `oci` (written directly,
    /// no daemon), or `auto` (the engine when one answers, else oci). Default: auto.
    #[arg(long, value_enum)]
    pub builder: Option<BuilderChoice>,
    /// Skip running `bootstrap --self-test` on the built artifact before pushing.
    #[arg(long)]
    pub no_smoke_test: bool,
    /// Base image for the function image (default: scratch, which needs no pull).
    #[arg(long, value_name = "IMAGE", default_value = "scratch")]
    pub base_image: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Take over a same-named stack or ECR repository that this tool did not make (deploy
    /// refuses them otherwise): it gets this stage's tags, lifecycle policy and template.
    #[arg(long)]
    pub adopt: bool,
    /// Create a stage the configuration file does not define (deploy refuses a `--stage` that
    /// is neither in the file nor deployed: a typo would make a new billable stack).
    #[arg(long)]
    pub new_stage: bool,
    /// Show what would change and stop: nothing is created, pushed or updated.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before applying the change set.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show cargo's own output while the function is built (without it: a progress line every
    /// 30 s in a log, and cargo's last lines if the build fails).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// `--config FILE`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// The configuration file: defaults and `[stages.NAME]` tables for deploy's settings
    /// (default: ummatics-sentiment.toml in the current directory, when there is one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// The policy for the identity that deploys (deploy, rollback, destroy, info, metrics,
    /// logs, doctor): every action this tool and CloudFormation call for it, limited to this
    /// tool's resource names in every stage and region.
    #[arg(long)]
    pub deployer: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// The configuration file whose settings for this stage are shown beside what is deployed
    /// (default: ummatics-sentiment.toml in the current directory, when there is one).
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The release to put live (`releases` lists them); default: the one before the live one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub to: Option<u32>,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show what would change, change nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
}

/// `--registry` and `--insecure-registry`, as deploy and destroy take them.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// The registry the stage's images go to instead of the ECR endpoint (HOST:PORT, or a
    /// URL), the ECR token still the credential; destroy deletes the images there too. Only
    /// with --endpoint-url (stand-ins): Lambda pulls images only from ECR in the function's
    /// region.
    #[arg(long, value_name = "HOST:PORT")]
    pub registry: Option<String>,
    /// Allow `--registry http://HOST` for a host that is not this machine: the ECR token then
    /// crosses the network in clear text.
    #[arg(long, requires = "registry")]
    pub insecure_registry: bool,
}

impl RegistryArgs {
    /// Refuses an address that is not a registry's, or plain HTTP to another machine without
    /// `--insecure-registry`.
    pub fn check(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(registry) = &self.registry {
            crate::image::registry::endpoint_url(registry, self.insecure_registry)
                .context("--registry is refused")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Do not ask to type the stack name.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Which model runs in this process, and how.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The model: `minilm` (built in, the default: 90 % on SST-2), `mini` (built in, small and
    /// fast, 82 %), a directory holding model.onnx, config.json and tokenizer.json (or
    /// vocab.txt), or a Hugging Face id.
    #[arg(long, value_name = "MODEL", default_value = Embedded::DEFAULT.spec())]
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

    /// Resolves the model (a Hub id is downloaded once) and loads it off the async threads.
    pub async fn load(&self) -> anyhow::Result<Classifier> {
        let options = self.options()?;
        let hub_dir = tempfile::tempdir()?;
        let model = self.model.clone().resolve(hub_dir.path()).await?;
        tokio::task::spawn_blocking(move || model.load(&options)).await?
    }
}

/// Which deployed function a command talks to.
#[derive(Debug, Clone, Args)]
pub struct FunctionArgs {
    /// The function (default: the stage's function name, `ummatics-sentiment-analysis[-STAGE]`);
    /// the old backend's SENTIMENT_LAMBDA_FUNCTION is honoured.
    #[arg(
        long,
        value_name = "NAME",
        env = "SENTIMENT_LAMBDA_FUNCTION",
        hide_env_values = true
    )]
    pub function: Option<String>,
}

impl FunctionArgs {
    /// The name given, or the stage's function.
    pub fn name(&self, names: &Names) -> String {
        self.function
            .clone()
            .unwrap_or_else(|| names.function.clone())
    }
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Labelled data: TSV, CSV (header line), JSONL or a JSON array of objects, with a text
    /// and a label (0/1 or the label names, e.g. negative/positive) per example.
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
    /// Evaluate the deployed function NAME (through the batching client) instead of a model
    /// in this process; its labels are taken to be negative, positive (SST-2).
    #[arg(long, value_name = "NAME")]
    pub function: Option<String>,
    /// Also fit the score temperature on these examples (temperature scaling: the one that
    /// minimises the log-loss of the raw logits) and report it with the calibration error
    /// before and after. Fit on data the model was not trained on, and not on the data you
    /// then report.
    #[arg(long, conflicts_with = "function")]
    pub fit_temperature: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The texts: plain lines, JSONL (`text` field), CSV or TSV (`text` column, e.g. SST-2's
    /// dev.tsv), or a `.json` request `{"texts": [...]}` or array.
    #[arg(long, value_name = "FILE")]
    pub texts: PathBuf,
    /// The JSON/JSONL field or CSV/TSV column holding the text.
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Texts per call, as the client sends them to the function (at most 50).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub batch: u32,
    /// Passes over the texts after the first result; per-batch figures cover all of them.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// Texts to classify (each argument is one text). Without any, texts come from --file or
    /// stdin (one per line).
    #[arg(value_name = "TEXT")]
    pub texts: Vec<String>,
    /// Read texts from a file: plain lines, JSONL (`.jsonl`, a `text` field), CSV or TSV
    /// (`.csv`, `.tsv`, a `text` column), or JSON (`.json`: the function's request
    /// `{"texts": [...]}`, a SAM or console test event — function URL or API Gateway — or an
    /// array); `-` for stdin. (No `-f`: that is `logs --follow`, as in `tail -f`.)
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The JSON/JSONL field or CSV/TSV column holding the text.
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Send this JSON as the whole event, like `aws lambda invoke --payload`, and print the
    /// answer as it comes back.
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,
    /// Run the model in this process instead of calling the deployed function.
    #[arg(long)]
    pub local: bool,
    #[command(flatten)]
    pub function: FunctionArgs,
    /// Texts per invoke (requests also stay under Lambda's 6 MB limit).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub batch_size: u32,
    /// Invokes in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Ask for each invoke's log tail and report the billed duration.
    #[arg(long)]
    pub log: bool,
    /// Skip the input's first N texts (to go on after an interrupted run: it says which N).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip: u64,
    /// With --local: append each call's telemetry record (the deployed function's CloudWatch
    /// EMF line: counts, shares, times; no text) to FILE, or `-` for stderr.
    #[arg(long, value_name = "FILE", requires = "local")]
    pub telemetry: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one; the first line printed is the endpoint).
    #[arg(long, value_name = "PORT", default_value_t = 3001)]
    pub port: u16,
    /// Address to listen on; anything but loopback is warned about (no authentication).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Invocations that run at once, like a function's concurrency (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,
    /// Requests that may wait for a free slot; beyond them Lambda's 429
    /// `TooManyRequestsException` is answered, with `Retry-After` (default: twice
    /// --concurrency).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub queue: Option<u32>,
    /// Longest wait for a request's headers, and for each piece of its body, before it is
    /// refused (`10s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub read_timeout: std::time::Duration,
    /// Append each invocation's telemetry record (the deployed function's CloudWatch EMF line:
    /// counts, shares, times; no text) to FILE, or `-` for stderr.
    #[arg(long, value_name = "FILE")]
    pub telemetry: Option<PathBuf>,
    #[command(flatten)]
    pub function: FunctionArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// The window: `30m`, `24h`, `7d` back from now, or an ISO date (`2026-11-01`).
    #[arg(long, value_name = "WHEN", default_value = "24h")]
    pub since: String,
    /// Period per point (`300`, `5m`, `1h`); default 1 h up to a day, 1 d beyond.
    #[arg(long, value_name = "DURATION")]
    pub period: Option<String>,
    #[command(flatten)]
    pub function: FunctionArgs,
    /// Memory to price with (default: read from the function).
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u32).range(128..=10240))]
    pub memory: Option<u32>,
    /// Architecture to price with (default: read from the function).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Start this far back (`10m`, `2h`) or at an ISO date; default: the last 10 minutes.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Keep polling for new events until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// A CloudWatch Logs filter pattern, e.g. `ERROR` or `"REPORT"`.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub function: FunctionArgs,
    /// How often --follow polls.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub poll_interval: String,
}
