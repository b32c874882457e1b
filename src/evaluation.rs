//! Scoring a model on labelled text, below the commands that do it (`eval`, and `deploy
//! --gate`): reading labelled files, predicting, and the confusion matrix.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use ummatics_sentiment_function::Classifier;

use crate::input::{read_records, Column, DataFormat};

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

/// A labelled file read and checked — columns, fields, at least one example — with its labels
/// still as written: matching them to a model's labels is the one check that needs the model,
/// so `eval` reads the file first and refuses a bad one before spending seconds on a load.
#[derive(Debug, Clone)]
pub struct LabelledFile {
    path: PathBuf,
    /// (text, label as written, line)
    rows: Vec<(String, String, u64)>,
}

impl LabelledFile {
    /// Reads and checks `path`; errors name the file and the line.
    pub fn read(
        path: &Path,
        format: Option<DataFormat>,
        text_column: &str,
        label_column: &str,
    ) -> Result<LabelledFile> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(path, &bytes, format, text_column, label_column)
    }

    /// Checks `bytes`, the contents of `path` (which names the format when `format` does not,
    /// and the file in errors).
    pub fn parse(
        path: &Path,
        bytes: &[u8],
        format: Option<DataFormat>,
        text_column: &str,
        label_column: &str,
    ) -> Result<LabelledFile> {
        let Some(format) = format.or_else(|| DataFormat::from_path(path)) else {
            bail!(
                "cannot tell the format of {} from its name; pass --format tsv, csv, jsonl or json",
                path.display()
            );
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            bail!("{} is empty: it holds no examples", path.display());
        }
        let name = path.display().to_string();
        let rows = read_records(
            &name,
            bytes,
            format,
            &[Column::text(text_column), Column::label(label_column)],
            "name the columns with --text-column / --label-column",
        )?
        .into_iter()
        .map(|record| {
            let [text, label]: [String; 2] = record
                .values
                .try_into()
                .map_err(|_| anyhow!("{name}:{}: expected two fields", record.line))?;
            Ok((text, label, record.line))
        })
        .collect::<Result<Vec<_>>>()?;
        if rows.is_empty() {
            bail!("{} holds no examples", path.display());
        }
        Ok(LabelledFile {
            path: path.to_path_buf(),
            rows,
        })
    }

    /// The examples, each label matched to an index of `labels` (`0`, `1`, … or a name in any
    /// case); the first label that matches none is refused with its line.
    pub fn examples(self, labels: &[String]) -> Result<Vec<Example>> {
        let path = self.path;
        self.rows
            .into_iter()
            .map(|(text, raw, line)| {
                let label = parse_label(&raw, labels)
                    .ok_or_else(|| unknown_label(&path, line, &raw, labels))?;
                Ok(Example { text, label, line })
            })
            .collect()
    }
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

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: usize, b: usize) -> f64 {
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

/// The predicted label of every example, in order (in chunks, so memory stays bounded).
pub fn predict_all(classifier: &Classifier, examples: &[Example]) -> Result<Vec<usize>> {
    let mut predicted = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        predicted.extend(classifier.predict(&texts)?.into_iter().map(|p| p.label));
    }
    Ok(predicted)
}

/// The share of examples predicted right.
pub fn accuracy(examples: &[Example], predicted: &[usize]) -> f64 {
    let correct = examples
        .iter()
        .zip(predicted)
        .filter(|(e, &p)| e.label == p)
        .count();
    ratio(correct, examples.len())
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
