//! What the model saw and answered, per invocation, as one CloudWatch Embedded Metric Format
//! (EMF) record: counts and times only, never a text.
//!
//! The function prints the record to stdout, which Lambda sends to the function's log group,
//! where CloudWatch turns it into metrics with no API call and no latency. Namespace
//! [`NAMESPACE`], one dimension set ([`DIMENSIONS`]: the function and the model), so each
//! deployed model costs [`Metric::ALL`]`.len()` custom metrics ($0.30 per metric-month each,
//! the first 10 of an account free). `serve` and `invoke --local` write the same record.

use serde::Serialize;

use crate::model::Usage;
use crate::protocol::SentimentResult;

/// The CloudWatch namespace of the function's own metrics (also `InitDuration`'s).
pub const NAMESPACE: &str = "ummatics-sentiment";

/// `UMMATICS_TELEMETRY`: `on` (the default) or `off` (no record is printed).
pub const ENV_TELEMETRY: &str = "UMMATICS_TELEMETRY";

/// `UMMATICS_MODEL_NAME`: the `Model` dimension (deploy sets it; else the model directory's
/// name).
pub const ENV_MODEL_NAME: &str = "UMMATICS_MODEL_NAME";

/// A score below this is a low-confidence answer.
pub const LOW_CONFIDENCE: f32 = 0.6;

/// The record's one dimension set. Few on purpose: every combination of values is a billed
/// metric.
pub const DIMENSIONS: [&str; 2] = ["FunctionName", "Model"];

/// CloudWatch's longest dimension value, in characters.
pub const MAX_DIMENSION_VALUE: usize = 1024;

/// Whether the function prints its telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Telemetry {
    #[default]
    On,
    Off,
}

impl Telemetry {
    /// Reads [`ENV_TELEMETRY`]: unset or empty is on.
    pub fn from_env() -> anyhow::Result<Telemetry> {
        match std::env::var(ENV_TELEMETRY) {
            Err(std::env::VarError::NotPresent) => Ok(Telemetry::On),
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!("{ENV_TELEMETRY} is not valid UTF-8; set it to on or off")
            }
            Ok(value) => Telemetry::parse(&value).ok_or_else(|| {
                anyhow::anyhow!(
                    "{ENV_TELEMETRY}={value:?} is neither on nor off; set one of them or unset it"
                )
            }),
        }
    }

    /// `on`/`off` (also `true`/`false`, `1`/`0`; any case); empty is on.
    pub fn parse(value: &str) -> Option<Telemetry> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "on" | "true" | "1" => Some(Telemetry::On),
            "off" | "false" | "0" => Some(Telemetry::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Telemetry::On => "on",
            Telemetry::Off => "off",
        }
    }
}

/// The metrics of a record, with their CloudWatch names and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Texts,
    Tokens,
    TextsCut,
    Positive,
    Negative,
    LowConfidence,
    MeanScore,
    TokenizeTime,
    ModelTime,
}

impl Metric {
    pub const ALL: [Metric; 9] = [
        Metric::Texts,
        Metric::Tokens,
        Metric::TextsCut,
        Metric::Positive,
        Metric::Negative,
        Metric::LowConfidence,
        Metric::MeanScore,
        Metric::TokenizeTime,
        Metric::ModelTime,
    ];

    /// The CloudWatch metric name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Texts => "Texts",
            Metric::Tokens => "Tokens",
            Metric::TextsCut => "TextsCut",
            Metric::Positive => "Positive",
            Metric::Negative => "Negative",
            Metric::LowConfidence => "LowConfidence",
            Metric::MeanScore => "MeanScore",
            Metric::TokenizeTime => "TokenizeTime",
            Metric::ModelTime => "ModelTime",
        }
    }

    /// The CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::MeanScore => "None",
            Metric::TokenizeTime | Metric::ModelTime => "Milliseconds",
            _ => "Count",
        }
    }
}

/// One invocation's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Texts classified.
    pub texts: usize,
    /// Tokens the model read (special tokens included).
    pub tokens: usize,
    /// Texts longer than the model's window (the model read their start).
    pub cut: usize,
    pub positive: usize,
    pub negative: usize,
    /// Answers whose score is below [`LOW_CONFIDENCE`].
    pub low_confidence: usize,
    /// The mean of the answers' scores.
    pub mean_score: f64,
    pub tokenize_ms: f64,
    pub model_ms: f64,
}

impl Record {
    /// The record of one classified request; `None` when it had no text.
    pub fn of(results: &[SentimentResult], usage: &Usage) -> Option<Record> {
        if results.is_empty() {
            return None;
        }
        let count = |label: &str| results.iter().filter(|r| r.sentiment == label).count();
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        Some(Record {
            texts: results.len(),
            tokens: usage.tokens,
            cut: usage.cut,
            positive: count("positive"),
            negative: count("negative"),
            low_confidence: results.iter().filter(|r| r.score < LOW_CONFIDENCE).count(),
            mean_score: results.iter().map(|r| f64::from(r.score)).sum::<f64>()
                / results.len() as f64,
            tokenize_ms: ms(usage.tokenize),
            model_ms: ms(usage.model),
        })
    }

    /// The value of one metric.
    pub fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Texts => self.texts as f64,
            Metric::Tokens => self.tokens as f64,
            Metric::TextsCut => self.cut as f64,
            Metric::Positive => self.positive as f64,
            Metric::Negative => self.negative as f64,
            Metric::LowConfidence => self.low_confidence as f64,
            Metric::MeanScore => (self.mean_score * 1e6).round() / 1e6,
            Metric::TokenizeTime => self.tokenize_ms,
            Metric::ModelTime => self.model_ms,
        }
    }

    /// The EMF line: one JSON object on one line, every metric of [`Metric::ALL`] as a number,
    /// dimensioned by `function` and `model` (cut to CloudWatch's length; an empty value
    /// becomes `-`, which CloudWatch requires to be non-empty).
    pub fn emf_line(&self, function: &str, model: &str, timestamp_ms: u64) -> String {
        let mut object = serde_json::Map::new();
        object.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [DIMENSIONS],
                    "Metrics": Metric::ALL
                        .iter()
                        .map(|m| serde_json::json!({"Name": m.name(), "Unit": m.unit()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        object.insert("FunctionName".into(), dimension_value(function).into());
        object.insert("Model".into(), dimension_value(model).into());
        for metric in Metric::ALL {
            object.insert(metric.name().into(), self.value(metric).into());
        }
        serde_json::Value::Object(object).to_string()
    }
}

fn dimension_value(value: &str) -> String {
    let value: String = value.chars().take(MAX_DIMENSION_VALUE).collect();
    if value.trim().is_empty() {
        "-".to_string()
    } else {
        value
    }
}

/// The `Model` dimension: [`ENV_MODEL_NAME`], else the last part of the model's source (its
/// directory or embedded name).
pub fn model_name(source: &str) -> String {
    if let Some(name) = std::env::var(ENV_MODEL_NAME)
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        return name;
    }
    source
        .trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(source)
        .to_string()
}

/// Milliseconds since the Unix epoch (EMF's `Timestamp`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(sentiment: &str, score: f32) -> SentimentResult {
        SentimentResult {
            sentiment: sentiment.into(),
            score,
        }
    }

    #[test]
    fn a_record_counts_what_the_answers_say() {
        let usage = Usage {
            tokens: 40,
            cut: 1,
            tokenize: std::time::Duration::from_micros(1500),
            model: std::time::Duration::from_millis(20),
        };
        let answers = [
            result("positive", 0.99),
            result("negative", 0.55),
            result("negative", 0.9),
        ];
        let record = Record::of(&answers, &usage).unwrap();
        assert_eq!((record.texts, record.positive, record.negative), (3, 1, 2));
        assert_eq!(record.low_confidence, 1);
        assert!((record.mean_score - (0.99 + 0.55 + 0.9) / 3.0).abs() < 1e-6);
        assert_eq!((record.tokens, record.cut), (40, 1));
        assert_eq!((record.tokenize_ms, record.model_ms), (1.5, 20.0));
        assert!(Record::of(&[], &usage).is_none());
    }

    #[test]
    fn the_line_is_emf_with_every_metric() {
        let record = Record::of(&[result("positive", 0.7)], &Usage::default()).unwrap();
        let line = record.emf_line("fn-a", "", 1_700_000_000_000);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], NAMESPACE);
        assert_eq!(
            spec["Dimensions"],
            serde_json::json!([["FunctionName", "Model"]])
        );
        assert_eq!(v["Model"], "-", "an empty dimension value is not allowed");
        let declared: Vec<&str> = spec["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(declared.len(), Metric::ALL.len());
        for name in declared {
            assert!(v[name].is_number(), "{name} in {line}");
        }
        assert_eq!(v["Texts"], 1.0);
        assert_eq!(v["MeanScore"], 0.7);
    }

    #[test]
    fn switches_and_names() {
        assert_eq!(Telemetry::parse("OFF"), Some(Telemetry::Off));
        assert_eq!(Telemetry::parse(""), Some(Telemetry::On));
        assert_eq!(Telemetry::parse("maybe"), None);
        assert_eq!(model_name("/var/task/model/"), "model");
        assert_eq!(model_name("sst2-minilm"), "sst2-minilm");
    }
}
