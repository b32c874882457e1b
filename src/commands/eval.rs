//! `eval`: accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a
//! labelled file.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{DataFormat, EvalArgs, GlobalArgs};
use crate::output::{emit, render, table};

/// One labelled text and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub label: usize,
    pub line: u64,
}

fn format_of(path: &Path, format: Option<DataFormat>) -> Result<DataFormat> {
    if let Some(format) = format {
        return Ok(format);
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("tsv") | Some("tab") => Ok(DataFormat::Tsv),
        Some("csv") => Ok(DataFormat::Csv),
        Some("jsonl") | Some("ndjson") => Ok(DataFormat::Jsonl),
        _ => bail!(
            "cannot tell the format of {} from its name; pass --format tsv, csv or jsonl",
            path.display()
        ),
    }
}

/// Reads a label as an index (`0`, `1`) or a label name (any case).
fn parse_label(raw: &str, labels: &[String]) -> Option<usize> {
    let raw = raw.trim();
    if let Ok(index) = raw.parse::<usize>() {
        return (index < labels.len()).then_some(index);
    }
    let lower = raw.to_lowercase();
    labels.iter().position(|l| *l == lower)
}

fn unknown_label(path: &Path, line: u64, raw: &str, labels: &[String]) -> anyhow::Error {
    anyhow!(
        "{}:{line}: unknown label {raw:?}; expected 0..{} or one of {}",
        path.display(),
        labels.len() - 1,
        labels.join(", ")
    )
}

fn read_delimited(
    path: &Path,
    bytes: &[u8],
    format: DataFormat,
    text_column: &str,
    label_column: &str,
    labels: &[String],
) -> Result<Vec<Example>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if format == DataFormat::Tsv {
            b'\t'
        } else {
            b','
        })
        .quoting(format == DataFormat::Csv)
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header line", path.display()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            anyhow!(
                "{}:1: no column {name:?} in the header (columns: {}); name the columns with --text-column / --label-column",
                path.display(),
                headers.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (text_at, label_at) = (column(text_column)?, column(label_column)?);
    let mut examples = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow!("{}:{line}: {e}", path.display())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let (Some(text), Some(raw)) = (record.get(text_at), record.get(label_at)) else {
            bail!("{}:{line}: the line has too few columns", path.display());
        };
        let label =
            parse_label(raw, labels).ok_or_else(|| unknown_label(path, line, raw, labels))?;
        examples.push(Example {
            text: text.to_string(),
            label,
            line,
        });
    }
    Ok(examples)
}

fn read_jsonl(
    path: &Path,
    bytes: &[u8],
    text_field: &str,
    label_field: &str,
    labels: &[String],
) -> Result<Vec<Example>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{}: not UTF-8 (invalid byte at offset {})",
            path.display(),
            e.valid_up_to()
        )
    })?;
    let mut examples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| anyhow!("{}:{line_no}: not valid JSON ({e})", path.display()))?;
        let field = |name: &str| {
            value
                .get(name)
                .ok_or_else(|| anyhow!("{}:{line_no}: no {name:?} field", path.display()))
        };
        let text = field(text_field)?.as_str().ok_or_else(|| {
            anyhow!(
                "{}:{line_no}: {text_field:?} is not a string",
                path.display()
            )
        })?;
        let raw = match field(label_field)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => bail!(
                "{}:{line_no}: {label_field:?} is {other}, expected a number or a label name",
                path.display()
            ),
        };
        let label =
            parse_label(&raw, labels).ok_or_else(|| unknown_label(path, line_no, &raw, labels))?;
        examples.push(Example {
            text: text.to_string(),
            label,
            line: line_no,
        });
    }
    Ok(examples)
}

/// Reads every example of a labelled file; errors name the file and the line.
pub fn read_examples(
    path: &Path,
    format: Option<DataFormat>,
    text_column: &str,
    label_column: &str,
    labels: &[String],
) -> Result<Vec<Example>> {
    let format = format_of(path, format)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("{} is empty: it holds no examples", path.display());
    }
    let examples = match format {
        DataFormat::Jsonl => read_jsonl(path, &bytes, text_column, label_column, labels)?,
        _ => read_delimited(path, &bytes, format, text_column, label_column, labels)?,
    };
    if examples.is_empty() {
        bail!("{} holds no examples", path.display());
    }
    Ok(examples)
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// What `eval` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub data: String,
    pub examples: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub classes: Vec<ClassScores>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    pub seconds: f64,
    pub texts_per_second: f64,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Scores predictions against gold labels.
pub fn score(
    labels: &[String],
    gold: &[usize],
    predicted: &[usize],
) -> (usize, Vec<Vec<usize>>, Vec<ClassScores>) {
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (&g, &p) in gold.iter().zip(predicted) {
        confusion[g][p] += 1;
    }
    let correct = (0..n).map(|i| confusion[i][i]).sum();
    let classes = (0..n)
        .map(|c| {
            let tp = confusion[c][c];
            let predicted_c: usize = (0..n).map(|g| confusion[g][c]).sum();
            let support: usize = confusion[c].iter().sum();
            let precision = ratio(tp, predicted_c);
            let recall = ratio(tp, support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            ClassScores {
                label: labels[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    (correct, confusion, classes)
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model     {}", self.model)?;
        writeln!(f, "data      {} ({} examples)", self.data, self.examples)?;
        writeln!(
            f,
            "accuracy  {:.2} % ({} / {})",
            self.accuracy * 100.0,
            self.correct,
            self.examples
        )?;
        writeln!(f)?;
        let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        let mut scores = table(["class", "precision", "recall", "f1", "support"]);
        for c in &self.classes {
            scores.add_row([
                Cell::new(&c.label),
                right(format!("{:.4}", c.precision)),
                right(format!("{:.4}", c.recall)),
                right(format!("{:.4}", c.f1)),
                right(c.support.to_string()),
            ]);
        }
        writeln!(f, "{}", render(&scores))?;
        writeln!(f)?;
        let mut header = vec!["true \\ predicted".to_string()];
        header.extend(self.classes.iter().map(|c| c.label.clone()));
        let mut confusion = table(header);
        for (c, row) in self.classes.iter().zip(&self.confusion) {
            let mut cells = vec![Cell::new(&c.label)];
            cells.extend(row.iter().map(|n| right(n.to_string())));
            confusion.add_row(cells);
        }
        writeln!(f, "{}", render(&confusion))?;
        writeln!(f)?;
        write!(
            f,
            "{} texts in {:.2} s ({:.0} texts/s)",
            self.examples, self.seconds, self.texts_per_second
        )
    }
}

impl EvalReport {
    /// Scores the predictions (label indices, one per example) of `model` on `data`.
    fn new(
        model: String,
        data: &Path,
        labels: &[String],
        examples: &[Example],
        predicted: &[usize],
        seconds: f64,
    ) -> EvalReport {
        let gold: Vec<usize> = examples.iter().map(|e| e.label).collect();
        let (correct, confusion, classes) = score(labels, &gold, predicted);
        EvalReport {
            model,
            data: data.display().to_string(),
            examples: examples.len(),
            correct,
            accuracy: ratio(correct, examples.len()),
            classes,
            confusion,
            seconds,
            texts_per_second: examples.len() as f64 / seconds.max(1e-9),
        }
    }
}

/// The SST-2 labels a deployed function answers with.
const REMOTE_LABELS: [&str; 2] = ["negative", "positive"];

/// `eval --function NAME`: the same report, predictions from the deployed function.
async fn run_remote(args: EvalArgs, function: String, global: &GlobalArgs) -> Result<ExitCode> {
    let labels: Vec<String> = REMOTE_LABELS.iter().map(|s| s.to_string()).collect();
    let examples = read_examples(
        &args.data,
        args.format,
        &args.text_column,
        &args.label_column,
        &labels,
    )?;
    let aws = crate::aws::Aws::load(global).await;
    let invoker = crate::client::BatchInvoker::new(aws.lambda(), &function, Default::default());
    let texts: Vec<String> = examples.iter().map(|e| e.text.clone()).collect();
    let started = Instant::now();
    let outcome = invoker.classify(&texts, |_| {}).await?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(f) = outcome.failures.first() {
        bail!(
            "{} batch(es) failed, e.g. texts {}–{}: {}; no score without every prediction",
            outcome.failures.len(),
            f.start + 1,
            f.end,
            f.error
        );
    }
    let mut predicted = Vec::with_capacity(texts.len());
    for (i, result) in outcome.results.into_iter().enumerate() {
        let result = result.context("a result is missing")?;
        let label = labels
            .iter()
            .position(|l| *l == result.sentiment)
            .with_context(|| {
                format!(
                    "the function answered {:?} for text {}; eval --function expects {}",
                    result.sentiment,
                    i + 1,
                    labels.join("/")
                )
            })?;
        predicted.push(label);
    }
    let report = EvalReport::new(
        format!("function {function}"),
        &args.data,
        &labels,
        &examples,
        &predicted,
        seconds,
    );
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: EvalArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(function) = args.function.clone() {
        return run_remote(args, function, global).await;
    }
    let options = args.model.options()?;
    let hub_dir = tempfile::tempdir()?;
    let model = args.model.model.clone().resolve(hub_dir.path()).await?;
    let report = tokio::task::spawn_blocking(move || -> Result<EvalReport> {
        let classifier = model.load(&options)?;
        let labels = classifier.labels().to_vec();
        let examples = read_examples(
            &args.data,
            args.format,
            &args.text_column,
            &args.label_column,
            &labels,
        )?;
        let started = Instant::now();
        let mut predicted = Vec::with_capacity(examples.len());
        for chunk in examples.chunks(256) {
            let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
            predicted.extend(classifier.predict(&texts)?.into_iter().map(|p| p.label));
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(EvalReport::new(
            model.to_string(),
            &args.data,
            &labels,
            &examples,
            &predicted,
            seconds,
        ))
    })
    .await??;
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_known_confusion_matrix() {
        let labels = vec!["negative".to_string(), "positive".to_string()];
        // 3 true negatives, 1 false positive, 2 false negatives, 4 true positives.
        let gold = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
        let predicted = [0, 0, 0, 1, 0, 0, 1, 1, 1, 1];
        let (correct, confusion, classes) = score(&labels, &gold, &predicted);
        assert_eq!(correct, 7);
        assert_eq!(confusion, vec![vec![3, 1], vec![2, 4]]);
        assert!((classes[0].precision - 3.0 / 5.0).abs() < 1e-12);
        assert!((classes[0].recall - 3.0 / 4.0).abs() < 1e-12);
        assert!((classes[0].f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert!((classes[1].precision - 4.0 / 5.0).abs() < 1e-12);
        assert!((classes[1].recall - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(classes[1].support, 6);
    }

    #[test]
    fn a_class_never_predicted_scores_zero_not_nan() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let (_, _, classes) = score(&labels, &[0, 1], &[0, 0]);
        assert_eq!(classes[1].precision, 0.0);
        assert_eq!(classes[1].f1, 0.0);
    }

    #[test]
    fn labels_by_index_or_name() {
        let labels = vec!["negative".to_string(), "positive".to_string()];
        assert_eq!(parse_label("0", &labels), Some(0));
        assert_eq!(parse_label(" 1 ", &labels), Some(1));
        assert_eq!(parse_label("POSITIVE", &labels), Some(1));
        assert_eq!(parse_label("2", &labels), None);
        assert_eq!(parse_label("neutral", &labels), None);
    }
}
