//! Scoring a model on labelled text, below the commands that do it (`eval`, and `deploy
//! --gate`): reading labelled files, predicting, and the confusion matrix.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use ummatics_sentiment_function::{Classifier, ClassifierOptions, Prediction};

use crate::input::{read_records, Column, DataFormat};
use crate::models::ModelFiles;

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

/// The prediction of every example, in order (in chunks, so memory stays bounded).
pub fn predict_all(classifier: &Classifier, examples: &[Example]) -> Result<Vec<Prediction>> {
    let mut predicted = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        predicted.extend(classifier.predict(&texts)?);
    }
    Ok(predicted)
}

/// Bins of the expected calibration error (equal width over the confidence, as in Guo et al.
/// 2017, "On Calibration of Modern Neural Networks").
pub const ECE_BINS: usize = 15;

/// The expected calibration error: over [`ECE_BINS`] equal-width bins of the confidence (the
/// score of the answered label), the gap between mean confidence and accuracy, weighted by
/// the bin's share of the examples. 0 = scores mean what they say. `None` without examples.
pub fn expected_calibration_error(answers: &[(f64, bool)]) -> Option<f64> {
    if answers.is_empty() {
        return None;
    }
    let mut bins = [(0usize, 0.0f64, 0usize); ECE_BINS];
    for &(confidence, correct) in answers {
        let i = ((confidence * ECE_BINS as f64).ceil() as usize).clamp(1, ECE_BINS) - 1;
        bins[i].0 += 1;
        bins[i].1 += confidence;
        bins[i].2 += usize::from(correct);
    }
    let n = answers.len() as f64;
    Some(
        bins.iter()
            .filter(|(count, _, _)| *count > 0)
            .map(|&(count, sum, right)| {
                let count_f = count as f64;
                (sum / count_f - right as f64 / count_f).abs() * count_f / n
            })
            .sum(),
    )
}

/// The mean negative log-likelihood of the gold labels under softmax(logits / t).
pub fn negative_log_likelihood(logits: &[Vec<f32>], gold: &[usize], t: f64) -> f64 {
    let total: f64 = logits
        .iter()
        .zip(gold)
        .map(|(row, &g)| {
            let scaled: Vec<f64> = row.iter().map(|&x| f64::from(x) / t).collect();
            let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = max + scaled.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            log_sum - scaled[g]
        })
        .sum();
    total / logits.len().max(1) as f64
}

/// The temperature that minimises the negative log-likelihood of the gold labels (temperature
/// scaling, Guo et al. 2017), searched over 0.05–20 on a log scale (golden-section: the NLL is
/// unimodal in log t). Labels do not change with it; only how sure the scores are.
pub fn fit_temperature(logits: &[Vec<f32>], gold: &[usize]) -> f64 {
    let nll = |log_t: f64| negative_log_likelihood(logits, gold, log_t.exp());
    let (mut lo, mut hi) = (0.05f64.ln(), 20f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (nll(a), nll(b));
    for _ in 0..80 {
        if fa < fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - ratio * (hi - lo);
            fa = nll(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + ratio * (hi - lo);
            fb = nll(b);
        }
    }
    ((lo + hi) / 2.0).exp()
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

/// A model as it will ship (its files, as a deploy carries them) scored on a labelled file:
/// (examples, accuracy). The files are written to a temporary directory and loaded as the
/// function loads them, so the score is the shipped model's. Blocking: run it off the async
/// workers.
pub fn score_files(files: &ModelFiles, file: LabelledFile) -> Result<(usize, f64)> {
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    files.write_to(dir.path())?;
    let options = ClassifierOptions::default();
    let classifier = ummatics_sentiment_function::startup::while_loading(|| {
        Classifier::load(dir.path(), &options)
    })?;
    let examples = file.examples(classifier.labels())?;
    let predicted: Vec<usize> = predict_all(&classifier, &examples)?
        .iter()
        .map(|p| p.label)
        .collect();
    Ok((examples.len(), accuracy(&examples, &predicted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_of_known_answers() {
        // Sure and right: no gap. Sure (0.9) and right half the time: a gap of 0.4.
        assert_eq!(
            expected_calibration_error(&[(1.0, true), (1.0, true)]),
            Some(0.0)
        );
        let e = expected_calibration_error(&[(0.9, true), (0.9, false)]).unwrap();
        assert!((e - 0.4).abs() < 1e-12, "{e}");
        // Two bins, each half of the data: 0.5 × |0.95 − 1| + 0.5 × |0.55 − 0.5|.
        let e =
            expected_calibration_error(&[(0.95, true), (0.55, true), (0.55, false), (0.95, true)])
                .unwrap();
        assert!((e - 0.05).abs() < 1e-12, "{e}");
        assert_eq!(expected_calibration_error(&[]), None);
    }

    #[test]
    fn temperature_fitting_recovers_a_known_temperature() {
        // Logits ±2 (a gap of 4), with labels such that the true probability is that of a gap of 2:
        // sigmoid(4) ≈ 0.982 overconfident; sigmoid(2) ≈ 0.881 right 88.1 % of the time.
        let p = 1.0 / (1.0 + (-2.0f64).exp());
        let n = 10_000;
        let right = (p * n as f64).round() as usize;
        let logits: Vec<Vec<f32>> = (0..n).map(|_| vec![-2.0, 2.0]).collect();
        let gold: Vec<usize> = (0..n).map(|i| usize::from(i < right)).collect();
        let t = fit_temperature(&logits, &gold);
        assert!((t - 2.0).abs() < 0.01, "{t}");
        assert!(
            negative_log_likelihood(&logits, &gold, t)
                < negative_log_likelihood(&logits, &gold, 1.0)
        );
    }

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
