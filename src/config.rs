//! `ummatics-sentiment.toml`: a stage's deploy settings in a file instead of flags.
//!
//! ```toml
//! memory = 1769                  # every stage
//! alarm-email = "ops@example.com"
//!
//! [stages.prod]                  # `--stage prod` only
//! memory = 3538
//! public-url = true
//! reserved-concurrency = 20
//! gate = "data/sst2-dev.tsv"     # relative to this file
//! ```
//!
//! Keys are the deploy flags' names. A flag beats the stage's table, which beats the file's top
//! level, which beats the built-in default; [`StageSettings::resolve`] is the one place where
//! the three become checked values, each remembering where it came from ([`Source`]). Unknown
//! keys, wrong types and bad values are errors naming the key and its line.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::aws::parse_stage;
use crate::lambda::{Arch, MEMORY_MB, TIMEOUT_S};
use crate::models::{Embedded, ModelSpec};
use crate::sizing::DEFAULT_MEMORY_MB;
use ummatics_sentiment_function::telemetry::Telemetry;

/// The file looked for in the current directory when `--config` is not given.
pub const FILE_NAME: &str = "ummatics-sentiment.toml";

/// The most a file may hold: a settings file, not a data set.
const MAX_BYTES: u64 = 1024 * 1024;

/// One table of settings: the file's top level, or a `[stages.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Table {
    model: Option<Spanned<String>>,
    memory: Option<Spanned<i64>>,
    timeout: Option<Spanned<i64>>,
    arch: Option<Spanned<String>>,
    public_url: Option<Spanned<bool>>,
    reserved_concurrency: Option<Spanned<i64>>,
    alarm_email: Option<Spanned<String>>,
    budget: Option<Spanned<toml::Value>>,
    budget_email: Option<Spanned<String>>,
    log_retention_days: Option<Spanned<i64>>,
    telemetry: Option<Spanned<toml::Value>>,
    alarm_negative_share: Option<Spanned<toml::Value>>,
    alarm_low_confidence: Option<Spanned<toml::Value>>,
    gate: Option<Spanned<String>>,
    min_accuracy: Option<Spanned<toml::Value>>,
    /// The AWS connection (after the flags, before AWS_REGION / AWS_PROFILE).
    region: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    /// How deploy makes and pushes the image (its flags of the same names).
    registry: Option<Spanned<String>>,
    builder: Option<Spanned<String>>,
    bootstrap: Option<Spanned<String>>,
    /// Only at the top level.
    stages: Option<Spanned<BTreeMap<String, Spanned<Table>>>>,
}

/// Deploy's settings that `ummatics-sentiment.toml` may also give: each is `None` unless the
/// flag is on the command line, so that the flag, the file and the default can be told apart
/// (`config::StageSettings::resolve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingFlags {
    /// The model to bake into the image: `minilm` (the default), `mini`, a directory, or a
    /// Hugging Face id (downloaded once into the Hugging Face cache).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<ModelSpec>,
    /// Function memory in MB (default 1769). The default is the cheapest per text by
    /// measurement (BENCHMARKS.md): Lambda gives one vCPU at 1769 MB; below it cost per text
    /// is the same and answers are slower, above it the second vCPU costs more than it speeds
    /// up.
    #[arg(long, value_name = "MB", value_parser = crate::lambda::parse_memory_mb)]
    pub memory: Option<u32>,
    /// Function timeout in seconds (default 60).
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(*TIMEOUT_S.start() as i64..=*TIMEOUT_S.end() as i64))]
    pub timeout: Option<u32>,
    /// Instruction set of the function (default x86_64).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Make the function URL public (auth NONE); `--public-url=false` overrides a file's
    /// `public-url = true`. Default: AWS_IAM (signed requests only).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub public_url: Option<bool>,
    /// The most instances of the function that run at once (Lambda's reserved concurrency);
    /// beyond it callers get 429. Default: none, or 10 with --public-url, so that anyone's
    /// traffic can cost at most the printed worst case per hour.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reserved_concurrency: Option<u32>,
    /// Email address notified when the function reports errors.
    #[arg(long, value_name = "ADDRESS")]
    pub alarm_email: Option<String>,
    /// A monthly AWS Budgets cost budget in US dollars over the function's services (Lambda,
    /// ECR, CloudWatch), e-mailing at 80 % forecast and 100 % actual spend. `0` removes it;
    /// left out, a budget an earlier deploy made stays.
    #[arg(long, value_name = "USD", value_parser = crate::budget::parse_usd, allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// Where --budget's alerts go (default: --alarm-email).
    #[arg(long, value_name = "ADDRESS")]
    pub budget_email: Option<String>,
    /// Days the function's logs are kept (default 14).
    #[arg(long, value_name = "DAYS", value_parser = parse_retention)]
    pub log_retention_days: Option<u32>,
    /// The function's telemetry: one CloudWatch Embedded Metric Format record per invocation
    /// (texts, tokens, cut texts, negative/positive, low-confidence answers, times; never a
    /// text), shown by `metrics` and the dashboard. `off` stops it (default on; 9 custom
    /// metrics per model, $0.30 each a month).
    #[arg(long, value_name = "on|off", value_parser = parse_telemetry)]
    pub telemetry: Option<Telemetry>,
    /// A CloudWatch alarm (e-mailing --alarm-email) when more than this share of an hour's
    /// texts is answered negative, e.g. 0.6 or 60%: a sign that the texts, or the model's
    /// reading of them, changed.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub alarm_negative_share: Option<f64>,
    /// A CloudWatch alarm (e-mailing --alarm-email) when more than this share of an hour's
    /// texts gets a score under 0.6 (the model unsure), e.g. 0.3.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub alarm_low_confidence: Option<f64>,
    /// Before anything is built or pushed, score the model on this labelled file (`eval`'s
    /// formats: TSV/CSV/JSONL with `text` and `label`) and refuse the deploy when it scores
    /// below --min-accuracy, or below the live release's score on the same file.
    #[arg(long, value_name = "FILE")]
    pub gate: Option<PathBuf>,
    /// The accuracy --gate requires, as a fraction (0.90, the default) or a percentage (90%).
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub min_accuracy: Option<f64>,
}

/// `on` or `off` (also true/false, 1/0).
pub fn parse_telemetry(raw: &str) -> Result<Telemetry, String> {
    Telemetry::parse(raw).ok_or_else(|| format!("{raw:?} is neither on nor off"))
}

/// A fraction in (0, 1], written `0.9` or `90%`.
pub fn parse_fraction(raw: &str) -> Result<f64, String> {
    let (number, scale) = match raw.trim().strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (raw.trim(), 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number; write e.g. 0.90 or 90%"))?;
    let fraction = value / scale;
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(format!(
            "{raw:?} is not an accuracy between 0 and 1 (or 0% and 100%)"
        ));
    }
    Ok(fraction)
}

/// The retention periods CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub fn parse_retention(s: &str) -> Result<u32, String> {
    let days: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of days"))?;
    if LOG_RETENTION_DAYS.contains(&days) {
        Ok(days)
    } else {
        Err(format!(
            "CloudWatch Logs keeps logs for one of {LOG_RETENTION_DAYS:?} days, not {days}"
        ))
    }
}

/// A configuration file, read and parsed, for one stage.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    text: String,
    top: Table,
    /// The stage's table, when the file has one for it.
    stage: Option<(String, Table)>,
    /// The stages the file names.
    pub stages: Vec<String>,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A command-line flag.
    Flag,
    /// A line of the configuration file, in a stage's table or at its top level.
    File {
        path: PathBuf,
        line: usize,
        stage: Option<String>,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Flag => f.write_str("flag"),
            Source::File { path, line, stage } => {
                write!(f, "{}:{line}", path.display())?;
                match stage {
                    Some(stage) => write!(f, " [stages.{stage}]"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    fn new(value: T, source: Source) -> Sourced<T> {
        Sourced { value, source }
    }
}

impl Config {
    /// `--config PATH` (which must exist), else `ummatics-sentiment.toml` in the current
    /// directory when there is one, else no file.
    pub fn find(explicit: Option<&Path>, stage: Option<&str>) -> Result<Option<Config>> {
        match explicit {
            Some(path) => Config::load(path, stage).map(Some),
            None => {
                let path = Path::new(FILE_NAME);
                if path.is_file() {
                    Config::load(path, stage).map(Some)
                } else {
                    Ok(None)
                }
            }
        }
    }

    pub fn load(path: &Path, stage: Option<&str>) -> Result<Config> {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "cannot read the configuration file {} (--config): check the path",
                path.display()
            )
        })?;
        if !meta.is_file() {
            bail!(
                "{} is not a file: --config takes a {FILE_NAME}-style TOML file",
                path.display()
            );
        }
        if meta.len() > MAX_BYTES {
            bail!(
                "{} is {} bytes: a configuration file holds settings, at most {MAX_BYTES} bytes",
                path.display(),
                meta.len()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
        Config::parse(path, text, stage)
    }

    /// Parses `text` as the file at `path` (which names it in errors and anchors relative
    /// paths), picking `stage`'s table.
    pub fn parse(path: &Path, text: String, stage: Option<&str>) -> Result<Config> {
        let mut top: Table = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(1);
            // The line itself names the key (serde's type errors do not).
            let written = text.lines().nth(line - 1).unwrap_or("").trim();
            anyhow!(
                "{}:{line}: {}{}",
                path.display(),
                e.message()
                    .trim_end()
                    .replace('\n', " ")
                    .replace("expected i64", "expected a whole number"),
                if written.is_empty() {
                    String::new()
                } else {
                    format!(" (in `{}`)", written.chars().take(80).collect::<String>())
                }
            )
        })?;
        let mut stages = Vec::new();
        let mut picked = None;
        if let Some(tables) = top.stages.take() {
            for (name, table) in tables.into_inner() {
                let line = line_of(&text, table.span().start);
                parse_stage(&name)
                    .map_err(|e| anyhow!("{}:{line}: [stages.{name}]: {e}", path.display()))?;
                let table = table.into_inner();
                if let Some(nested) = &table.stages {
                    bail!(
                        "{}:{}: [stages.{name}] holds `stages`: stage tables do not nest; \
                         write [stages.NAME] at the top level",
                        path.display(),
                        line_of(&text, nested.span().start)
                    );
                }
                if Some(name.as_str()) == stage {
                    picked = Some((name.clone(), table));
                }
                stages.push(name);
            }
        }
        let config = Config {
            path: path.to_path_buf(),
            text,
            top,
            stage: picked,
            stages,
        };
        Ok(config)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stage's table name when the file has one for it.
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_ref().map(|(name, _)| name.as_str())
    }

    /// The file's value for a key: the stage's table first, then the top level.
    fn get<'a, T>(
        &'a self,
        key: fn(&Table) -> &Option<Spanned<T>>,
    ) -> Option<(&'a T, FileValue<'a>)> {
        let from = |table: &'a Table, stage: Option<&'a str>| {
            key(table).as_ref().map(|spanned| {
                (
                    spanned.get_ref(),
                    FileValue {
                        config: self,
                        span: spanned.span(),
                        stage,
                    },
                )
            })
        };
        self.stage
            .as_ref()
            .and_then(|(name, table)| from(table, Some(name.as_str())))
            .or_else(|| from(&self.top, None))
    }
}

/// The file's text-valued keys outside deploy's function settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKey {
    Region,
    Profile,
    Registry,
    Builder,
    Bootstrap,
}

impl TextKey {
    fn name(self) -> &'static str {
        match self {
            TextKey::Region => "region",
            TextKey::Profile => "profile",
            TextKey::Registry => "registry",
            TextKey::Builder => "builder",
            TextKey::Bootstrap => "bootstrap",
        }
    }
}

/// A text value of the file (the stage's table over the top level), where it is, and how to
/// say what is wrong with it.
#[derive(Debug, Clone)]
pub struct FileText {
    pub value: String,
    pub source: Source,
    key: &'static str,
    /// `PATH:LINE`.
    location: String,
    /// A path written in the file: relative to the file's directory.
    pub path: PathBuf,
}

impl FileText {
    /// An error about this value: the file, the line and the key.
    pub fn error(&self, message: impl fmt::Display) -> anyhow::Error {
        anyhow!("{}: {}: {message}", self.location, self.key)
    }
}

impl Config {
    /// The file's value for `key`, if any; an empty one is refused where it is.
    pub fn text(&self, key: TextKey) -> Result<Option<FileText>> {
        let found = match key {
            TextKey::Region => self.get(|t| &t.region),
            TextKey::Profile => self.get(|t| &t.profile),
            TextKey::Registry => self.get(|t| &t.registry),
            TextKey::Builder => self.get(|t| &t.builder),
            TextKey::Bootstrap => self.get(|t| &t.bootstrap),
        };
        let Some((value, at)) = found else {
            return Ok(None);
        };
        if value.trim().is_empty() {
            return Err(at.error(key.name(), "is empty: give a value, or remove the key"));
        }
        Ok(Some(FileText {
            value: value.clone(),
            source: at.source(),
            key: key.name(),
            location: format!("{}:{}", self.path.display(), at.line()),
            path: at.path(value),
        }))
    }
}

/// Where in the file a value sits.
#[derive(Debug, Clone)]
struct FileValue<'a> {
    config: &'a Config,
    span: Range<usize>,
    stage: Option<&'a str>,
}

impl FileValue<'_> {
    fn line(&self) -> usize {
        line_of(&self.config.text, self.span.start)
    }

    fn source(&self) -> Source {
        Source::File {
            path: self.config.path.clone(),
            line: self.line(),
            stage: self.stage.map(str::to_string),
        }
    }

    /// An error about this value: the file, the line and the key.
    fn error(&self, key: &str, message: impl fmt::Display) -> anyhow::Error {
        anyhow!(
            "{}:{}: {key}: {message}",
            self.config.path.display(),
            self.line()
        )
    }

    /// A path written in the file, relative to the file's directory.
    fn path(&self, written: &str) -> PathBuf {
        let written = Path::new(written);
        if written.is_absolute() {
            return written.to_path_buf();
        }
        match self.config.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(written),
            _ => written.to_path_buf(),
        }
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A whole number in `range`, as the file wrote it.
fn in_range(
    value: i64,
    range: std::ops::RangeInclusive<u32>,
    what: &str,
) -> std::result::Result<u32, String> {
    u32::try_from(value)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            format!(
                "{value} is out of range: {what} is {}–{}",
                range.start(),
                range.end()
            )
        })
}

/// Roughly an address: SNS checks it for real (and mails a confirmation).
fn check_email(raw: &str) -> std::result::Result<String, String> {
    if raw.contains('@') && !raw.contains(char::is_whitespace) {
        Ok(raw.to_string())
    } else {
        Err(format!("{raw:?} is not an email address"))
    }
}

/// The settings a deploy uses for one stage, each with its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSettings {
    pub model: Sourced<ModelSpec>,
    pub memory_mb: Sourced<u32>,
    pub timeout_s: Sourced<u32>,
    pub arch: Sourced<Arch>,
    pub public_url: Sourced<bool>,
    /// `None`: no cap given (a public URL then gets deploy's default cap).
    pub reserved_concurrency: Sourced<Option<u32>>,
    pub alarm_email: Sourced<Option<String>>,
    /// US dollars a month; `Some(0.0)`: remove the budget; `None`: leave it as it is.
    pub budget_usd: Sourced<Option<f64>>,
    /// Where the budget's alerts go (`None`: the alarm e-mail).
    pub budget_email: Sourced<Option<String>>,
    pub log_retention_days: Sourced<u32>,
    pub telemetry: Sourced<Telemetry>,
    /// Drift alarms' thresholds, as fractions (`None`: no alarm).
    pub alarm_negative_share: Sourced<Option<f64>>,
    pub alarm_low_confidence: Sourced<Option<f64>>,
    pub gate: Sourced<Option<PathBuf>>,
    pub min_accuracy: Sourced<f64>,
}

/// The reserved concurrency a public URL gets when none is given: deploy sets it, and the
/// settings table says so.
pub const PUBLIC_URL_CAP: u32 = 10;

/// The built-in defaults.
pub const DEFAULT_TIMEOUT_S: u32 = 60;
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 14;
pub const DEFAULT_MIN_ACCURACY: f64 = 0.90;

impl StageSettings {
    /// Flags over the stage's table over the file's top level over the defaults, checked.
    pub fn resolve(flags: &SettingFlags, config: Option<&Config>) -> Result<StageSettings> {
        // The file's value for a key, and where it is.
        macro_rules! file {
            ($key:ident) => {
                config.and_then(|c| c.get(|t| &t.$key))
            };
        }
        let settings = StageSettings {
            model: layer(
                flags.model.clone(),
                file!(model),
                ModelSpec::Embedded(Embedded::DEFAULT),
                |raw, at| model_setting(raw, at),
            )?,
            memory_mb: layer(flags.memory, file!(memory), DEFAULT_MEMORY_MB, |&v, at| {
                in_range(v, MEMORY_MB, "Lambda's memory in MB").map_err(|e| at.error("memory", e))
            })?,
            timeout_s: layer(
                flags.timeout,
                file!(timeout),
                DEFAULT_TIMEOUT_S,
                |&v, at| {
                    in_range(v, TIMEOUT_S, "Lambda's timeout in seconds")
                        .map_err(|e| at.error("timeout", e))
                },
            )?,
            arch: layer(flags.arch, file!(arch), Arch::X86_64, |raw, at| {
                Arch::from_str(raw, true)
                    .map_err(|_| at.error("arch", format!("{raw:?} is not x86_64 or arm64")))
            })?,
            public_url: layer(flags.public_url, file!(public_url), false, |&v, _| Ok(v))?,
            reserved_concurrency: layer(
                flags.reserved_concurrency.map(Some),
                file!(reserved_concurrency),
                None,
                |&v, at| {
                    in_range(v, 1..=10_000, "reserved concurrency")
                        .map(Some)
                        .map_err(|e| at.error("reserved-concurrency", e))
                },
            )?,
            alarm_email: layer(
                flags.alarm_email.clone().map(Some),
                file!(alarm_email),
                None,
                |raw, at| {
                    check_email(raw)
                        .map(Some)
                        .map_err(|e| at.error("alarm-email", e))
                },
            )?,
            budget_usd: layer(flags.budget.map(Some), file!(budget), None, |v, at| {
                let written = number_text(v).map_err(|t| {
                    at.error(
                        "budget",
                        format!("a {t} is not an amount: write 5, 12.50 or \"$5\""),
                    )
                })?;
                crate::budget::parse_usd(&written)
                    .map(Some)
                    .map_err(|e| at.error("budget", e))
            })?,
            budget_email: layer(
                flags.budget_email.clone().map(Some),
                file!(budget_email),
                None,
                |raw, at| {
                    check_email(raw)
                        .map(Some)
                        .map_err(|e| at.error("budget-email", e))
                },
            )?,
            log_retention_days: layer(
                flags.log_retention_days,
                file!(log_retention_days),
                DEFAULT_LOG_RETENTION_DAYS,
                |&v, at| {
                    parse_retention(&v.to_string()).map_err(|e| at.error("log-retention-days", e))
                },
            )?,
            telemetry: layer(flags.telemetry, file!(telemetry), Telemetry::On, |v, at| {
                let parsed = match v {
                    toml::Value::Boolean(true) => Some(Telemetry::On),
                    toml::Value::Boolean(false) => Some(Telemetry::Off),
                    toml::Value::String(s) => Telemetry::parse(s),
                    _ => None,
                };
                parsed.ok_or_else(|| {
                    at.error("telemetry", format!("{v:?} is neither \"on\" nor \"off\""))
                })
            })?,
            alarm_negative_share: layer(
                flags.alarm_negative_share.map(Some),
                file!(alarm_negative_share),
                None,
                |v, at| fraction_setting(v, at, "alarm-negative-share"),
            )?,
            alarm_low_confidence: layer(
                flags.alarm_low_confidence.map(Some),
                file!(alarm_low_confidence),
                None,
                |v, at| fraction_setting(v, at, "alarm-low-confidence"),
            )?,
            gate: layer(
                flags.gate.clone().map(Some),
                file!(gate),
                None,
                |raw, at| {
                    if raw.trim().is_empty() {
                        return Err(
                            at.error("gate", "is empty: name a labelled file, or remove the key")
                        );
                    }
                    Ok(Some(at.path(raw)))
                },
            )?,
            min_accuracy: layer(
                flags.min_accuracy,
                file!(min_accuracy),
                DEFAULT_MIN_ACCURACY,
                |v, at| {
                    let written = number_text(v).map_err(|t| {
                        at.error(
                            "min-accuracy",
                            format!("a {t} is not a number: write 0.90 or \"90%\""),
                        )
                    })?;
                    parse_fraction(&written).map_err(|e| at.error("min-accuracy", e))
                },
            )?,
        };
        settings.check_together(flags)?;
        Ok(settings)
    }

    /// What no one setting can check alone: an alarm on telemetry that is off, a budget with
    /// no address for its alerts (or an address with no budget), a minimum accuracy with no
    /// gate. The addresses given as flags are checked here too (a file's were, in `resolve`).
    fn check_together(&self, flags: &SettingFlags) -> Result<()> {
        if let Some(email) = &flags.alarm_email {
            check_email(email).map_err(|e| anyhow!("--alarm-email {e}"))?;
        }
        if let Some(email) = &flags.budget_email {
            check_email(email).map_err(|e| anyhow!("--budget-email {e}"))?;
        }
        if self.telemetry.value == Telemetry::Off {
            for (name, alarm) in [
                ("alarm-negative-share", &self.alarm_negative_share),
                ("alarm-low-confidence", &self.alarm_low_confidence),
            ] {
                if alarm.value.is_some() {
                    bail!(
                        "{name} ({}) watches the telemetry metrics, and telemetry is off ({}): \
                         turn telemetry on or drop the alarm",
                        alarm.source,
                        self.telemetry.source
                    );
                }
            }
        }
        let budgeted = self.budget_usd.value.is_some_and(|usd| usd > 0.0);
        if budgeted && self.budget_email.value.is_none() && self.alarm_email.value.is_none() {
            bail!(
                "budget ({}) e-mails its alerts, and no address is given: add --budget-email \
                 ADDRESS (or `budget-email = \"ADDRESS\"` in the file)",
                self.budget_usd.source
            );
        }
        if !budgeted && self.budget_email.value.is_some() {
            bail!(
                "budget-email ({}) is where --budget's alerts go, and no budget is given: add \
                 --budget USD (or `budget = 5` in the file)",
                self.budget_email.source
            );
        }
        if self.gate.value.is_none() && self.min_accuracy.source != Source::Default {
            bail!(
                "min-accuracy ({}) is the accuracy --gate requires, and no gate file is given: \
                 add --gate FILE (or `gate = \"FILE\"` in the file)",
                self.min_accuracy.source
            );
        }
        Ok(())
    }

    /// Each setting's name, value as people read it, and source, in the file's key order.
    pub fn rows(&self) -> Vec<(&'static str, String, &Source)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        vec![
            ("model", self.model.value.to_string(), &self.model.source),
            (
                "memory",
                format!("{} MB", self.memory_mb.value),
                &self.memory_mb.source,
            ),
            (
                "timeout",
                format!("{} s", self.timeout_s.value),
                &self.timeout_s.source,
            ),
            (
                "arch",
                self.arch.value.lambda_name().to_string(),
                &self.arch.source,
            ),
            (
                "public-url",
                self.public_url.value.to_string(),
                &self.public_url.source,
            ),
            (
                "reserved-concurrency",
                match (self.reserved_concurrency.value, self.public_url.value) {
                    (Some(n), _) => n.to_string(),
                    // What deploy sets: a public URL is never left without a cap.
                    (None, true) => format!("{PUBLIC_URL_CAP} (a public URL's cap)"),
                    (None, false) => "none".to_string(),
                },
                &self.reserved_concurrency.source,
            ),
            (
                "alarm-email",
                opt(&self.alarm_email.value),
                &self.alarm_email.source,
            ),
            (
                "budget",
                match self.budget_usd.value {
                    None => "none (an existing one stays)".to_string(),
                    Some(0.0) => "none (removed)".to_string(),
                    Some(usd) => format!("${usd:.2}/month"),
                },
                &self.budget_usd.source,
            ),
            (
                "budget-email",
                opt(&self.budget_email.value),
                &self.budget_email.source,
            ),
            (
                "log-retention-days",
                self.log_retention_days.value.to_string(),
                &self.log_retention_days.source,
            ),
            (
                "gate",
                opt(&self.gate.value.as_ref().map(|p| p.display().to_string())),
                &self.gate.source,
            ),
            (
                "min-accuracy",
                format!("{:.2}", self.min_accuracy.value),
                &self.min_accuracy.source,
            ),
            (
                "telemetry",
                self.telemetry.value.as_str().to_string(),
                &self.telemetry.source,
            ),
            (
                "alarm-negative-share",
                share(self.alarm_negative_share.value),
                &self.alarm_negative_share.source,
            ),
            (
                "alarm-low-confidence",
                share(self.alarm_low_confidence.value),
                &self.alarm_low_confidence.source,
            ),
        ]
    }
}

/// A drift alarm's threshold as people read it.
fn share(value: Option<f64>) -> String {
    value.map_or_else(
        || "none".to_string(),
        |v| format!("{:.0} % of an hour's texts", v * 100.0),
    )
}

/// The file's `model`: a directory is relative to the file, a built-in name or Hub id is not.
fn model_setting(raw: &str, at: &FileValue<'_>) -> Result<ModelSpec> {
    let relative = at.path(raw);
    let spelled = if relative.is_dir() {
        relative.to_string_lossy().into_owned()
    } else {
        raw.to_string()
    };
    ModelSpec::from_str(&spelled).map_err(|e| at.error("model", e))
}

/// A fraction setting of the file (`0.6`, `"60%"`).
fn fraction_setting(v: &toml::Value, at: &FileValue<'_>, key: &str) -> Result<Option<f64>> {
    let written = number_text(v)
        .map_err(|t| at.error(key, format!("a {t} is not a number: write 0.6 or \"60%\"")))?;
    parse_fraction(&written)
        .map(Some)
        .map_err(|e| at.error(key, e))
}

/// A number the file may write as a float, an integer or a string (`"90%"`, `"$5"`), as the
/// text its flag's parser reads; otherwise the TOML type's name, for the error.
fn number_text(value: &toml::Value) -> std::result::Result<String, &'static str> {
    match value {
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::String(s) => Ok(s.clone()),
        other => Err(other.type_str()),
    }
}

/// The flag if given, else the file's value (checked by `check`), else the default.
fn layer<T, R>(
    flag: Option<T>,
    file: Option<(&R, FileValue<'_>)>,
    default: T,
    check: impl FnOnce(&R, &FileValue<'_>) -> Result<T>,
) -> Result<Sourced<T>> {
    // The file's value is checked even when a flag overrides it: a bad line is an error
    // whether or not this run uses it.
    let from_file = match file {
        Some((raw, at)) => Some(Sourced::new(check(raw, &at)?, at.source())),
        None => None,
    };
    Ok(match (flag, from_file) {
        (Some(value), _) => Sourced::new(value, Source::Flag),
        (None, Some(value)) => value,
        (None, None) => Sourced::new(default, Source::Default),
    })
}

/// Lines for people: one per setting, with its source.
pub struct SettingsTable<'a>(pub &'a StageSettings);

impl fmt::Display for SettingsTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value, source) in self.0.rows() {
            writeln!(f, "  {name:<21} {value:<24} ({source})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_public_url_shows_the_cap_deploy_sets() {
        let public = resolve("public-url = true\n", None, &SettingFlags::default()).unwrap();
        let row = public
            .rows()
            .into_iter()
            .find(|(name, _, _)| *name == "reserved-concurrency")
            .unwrap();
        assert_eq!(row.1, "10 (a public URL's cap)");
        let private = resolve("memory = 2048\n", None, &SettingFlags::default()).unwrap();
        let row = private
            .rows()
            .into_iter()
            .find(|(name, _, _)| *name == "reserved-concurrency")
            .unwrap();
        assert_eq!(row.1, "none");
    }

    use super::*;

    fn parse(text: &str, stage: Option<&str>) -> Result<Config> {
        Config::parse(
            Path::new("conf/ummatics-sentiment.toml"),
            text.to_string(),
            stage,
        )
    }

    fn resolve(text: &str, stage: Option<&str>, flags: &SettingFlags) -> Result<StageSettings> {
        StageSettings::resolve(flags, Some(&parse(text, stage)?))
    }

    const FILE: &str = "\
# every stage
memory = 2048
alarm-email = \"ops@example.com\"

[stages.prod]
memory = 3538
public-url = true
gate = \"data/dev.tsv\"
min-accuracy = \"91%\"

[stages.dev]
timeout = 30
";

    #[test]
    fn flags_beat_the_stage_which_beats_the_top_level_which_beats_defaults() {
        let flags = SettingFlags {
            timeout: Some(120),
            ..SettingFlags::default()
        };
        let s = resolve(FILE, Some("prod"), &flags).unwrap();
        let file = |line, stage: Option<&str>| Source::File {
            path: "conf/ummatics-sentiment.toml".into(),
            line,
            stage: stage.map(str::to_string),
        };
        assert_eq!(s.memory_mb, Sourced::new(3538, file(6, Some("prod"))));
        assert_eq!(s.timeout_s, Sourced::new(120, Source::Flag));
        assert_eq!(
            s.alarm_email,
            Sourced::new(Some("ops@example.com".into()), file(3, None))
        );
        assert_eq!(s.arch, Sourced::new(Arch::X86_64, Source::Default));
        assert!(s.public_url.value);
        // Paths in the file are relative to the file.
        assert_eq!(s.gate.value, Some(PathBuf::from("conf/data/dev.tsv")));
        assert!((s.min_accuracy.value - 0.91).abs() < 1e-9);
        assert_eq!(
            s.memory_mb.source.to_string(),
            "conf/ummatics-sentiment.toml:6 [stages.prod]"
        );

        let dev = resolve(FILE, Some("dev"), &SettingFlags::default()).unwrap();
        assert_eq!(dev.memory_mb, Sourced::new(2048, file(2, None)));
        assert_eq!(dev.timeout_s, Sourced::new(30, file(12, Some("dev"))));
        assert!(!dev.public_url.value);

        // No stage: the top level only; a stage the file does not name: the same.
        let plain = resolve(FILE, None, &SettingFlags::default()).unwrap();
        assert_eq!(plain.memory_mb.value, 2048);
        assert_eq!(plain.timeout_s, Sourced::new(60, Source::Default));
        let config = parse(FILE, Some("qa")).unwrap();
        assert_eq!(config.stage(), None);
        assert_eq!(config.stages, ["dev", "prod"]);
    }

    #[test]
    fn bad_files_name_the_key_and_the_line() {
        let cases: &[(&str, &[&str])] = &[
            (
                "memory = 1769\nmemroy = 2048\n",
                &[":2:", "unknown field `memroy`"],
            ),
            ("memory = \"big\"\n", &[":1:", "invalid type", "memory"]),
            (
                "timeout = 60\nmemory = 99999\n",
                &[":2:", "memory", "128–10240"],
            ),
            ("timeout = 0\n", &[":1:", "timeout", "1–900"]),
            ("memory = -5\n", &[":1:", "memory", "out of range"]),
            ("arch = \"sparc\"\n", &[":1:", "arch", "x86_64 or arm64"]),
            (
                "log-retention-days = 10\n",
                &[":1:", "log-retention-days", "14"],
            ),
            (
                "reserved-concurrency = 0\n",
                &[":1:", "reserved-concurrency"],
            ),
            (
                "gate = \"d.tsv\"\nmin-accuracy = 1.5\n",
                &[":2:", "min-accuracy"],
            ),
            (
                "gate = \"d.tsv\"\nmin-accuracy = true\n",
                &[":2:", "min-accuracy", "not a number"],
            ),
            ("model = \"\"\n", &[":1:", "model", "empty"]),
            (
                "alarm-email = \"ops\"\n",
                &[":1:", "alarm-email", "not an email address"],
            ),
            (
                "[stages.prod]\nmemroy = 1\n",
                &[":2:", "unknown field `memroy`"],
            ),
            (
                "[stages.Prod]\nmemory = 2048\n",
                &[":1:", "[stages.Prod]", "stage name"],
            ),
            ("[stages.prod.stages.x]\nmemory = 2048\n", &["do not nest"]),
            ("memory = 1769\nmemory = 2048\n", &[":2:", "duplicate key"]),
            ("memory = \n", &[":1:"]),
            ("[stages]\nprod = 3\n", &[":2:", "invalid type"]),
        ];
        for (text, wanted) in cases {
            let error = match resolve(text, Some("prod"), &SettingFlags::default()) {
                Ok(s) => panic!("{text:?} was accepted: {s:?}"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                error.starts_with("conf/ummatics-sentiment.toml"),
                "{text:?}: {error}"
            );
            for w in *wanted {
                assert!(error.contains(w), "{text:?}: {error:?} lacks {w:?}");
            }
        }
    }

    #[test]
    fn a_bad_value_is_an_error_even_when_a_flag_overrides_it() {
        let flags = SettingFlags {
            memory: Some(2048),
            ..SettingFlags::default()
        };
        let error = resolve("memory = 5\n", None, &flags).unwrap_err();
        assert!(format!("{error:#}").contains(":1: memory"), "{error:#}");
    }

    #[test]
    fn min_accuracy_without_a_gate_is_refused_wherever_it_comes_from() {
        let error = resolve("min-accuracy = 0.8\n", None, &SettingFlags::default()).unwrap_err();
        assert!(format!("{error:#}").contains("no gate file"), "{error:#}");
        let flags = SettingFlags {
            min_accuracy: Some(0.8),
            ..SettingFlags::default()
        };
        assert!(StageSettings::resolve(&flags, None).is_err());
        let gated = resolve("gate = \"dev.tsv\"\nmin-accuracy = 0.8\n", None, &flags).unwrap();
        assert_eq!(gated.min_accuracy, Sourced::new(0.8, Source::Flag));
    }

    #[test]
    fn without_a_file_everything_is_a_default() {
        let s = StageSettings::resolve(&SettingFlags::default(), None).unwrap();
        assert!(s
            .rows()
            .iter()
            .all(|(_, _, source)| **source == Source::Default));
        assert_eq!(s.memory_mb.value, DEFAULT_MEMORY_MB);
    }

    #[test]
    fn the_example_file_in_the_readme_and_examples_parses() {
        let text = include_str!("../examples/ummatics-sentiment.toml");
        let config = Config::parse(
            Path::new("examples/ummatics-sentiment.toml"),
            text.into(),
            Some("prod"),
        )
        .unwrap();
        assert!(!config.stages.is_empty());
        StageSettings::resolve(&SettingFlags::default(), Some(&config)).unwrap();
    }
}
