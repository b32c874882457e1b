//! `eval`: accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a
//! labelled file.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;

use crate::cli::{EvalArgs, GlobalArgs};
use crate::input::{read_records, Column, DataFormat};
use crate::output::{emit, render, table};

/// One labelled text and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub label: usize,
    pub line: u64,
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

/// Reads every example of a labelled file; errors name the file and the line.
pub fn read_examples(
    path: &Path,
    format: Option<DataFormat>,
    text_column: &str,
    label_column: &str,
    labels: &[String],
) -> Result<Vec<Example>> {
    let Some(format) = format.or_else(|| DataFormat::from_path(path)) else {
        bail!(
            "cannot tell the format of {} from its name; pass --format tsv, csv or jsonl",
            path.display()
        );
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("{} is empty: it holds no examples", path.display());
    }
    let name = path.display().to_string();
    let examples = read_records(
        &name,
        &bytes,
        format,
        &[Column::text(text_column), Column::label(label_column)],
        "name the columns with --text-column / --label-column",
    )?
    .into_iter()
    .map(|record| {
        let [text, raw]: [String; 2] = record
            .values
            .try_into()
            .map_err(|_| anyhow!("{name}:{}: expected two fields", record.line))?;
        let label = parse_label(&raw, labels)
            .ok_or_else(|| unknown_label(path, record.line, &raw, labels))?;
        Ok(Example {
            text,
            label,
            line: record.line,
        })
    })
    .collect::<Result<Vec<Example>>>()?;
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
    let aws = crate::aws::Aws::load(&global.aws).await;
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
    let classifier = args.model.load().await?;
    let report = tokio::task::spawn_blocking(move || -> Result<EvalReport> {
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
            args.model.model.to_string(),
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
