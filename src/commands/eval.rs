//! `eval`: accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a
//! labelled file.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;
use ummatics_sentiment_function::model::softmax_calibrated;
use ummatics_sentiment_function::Prediction;

use crate::cli::{EvalArgs, GlobalArgs};
use crate::evaluation::{
    expected_calibration_error, fit_temperature, negative_log_likelihood, predict_all, ratio,
    score, ClassScores, Example, LabelledFile, ECE_BINS,
};
use crate::output::{emit, render, table};

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
    /// Expected calibration error of the scores answered (see `evaluation::ECE_BINS`).
    pub ece: Option<f64>,
    /// The model's score temperature (`config.json`'s `score_temperature`); `None` for a
    /// deployed function.
    pub temperature: Option<f64>,
    /// The ECE of the model's raw softmax, when its scores are taken at a temperature.
    pub ece_uncalibrated: Option<f64>,
    /// `--fit-temperature`: the temperature that fits these examples best.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<TemperatureFit>,
    pub seconds: f64,
    pub texts_per_second: f64,
}

/// What `--fit-temperature` found: the temperature minimising the negative log-likelihood of
/// the gold labels, and the raw softmax's figures against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemperatureFit {
    pub temperature: f64,
    pub nll_before: f64,
    pub nll_after: f64,
    pub ece_before: f64,
    pub ece_after: f64,
}

impl TemperatureFit {
    /// Fits on the raw logits of `predictions` against `gold`.
    fn of(predictions: &[Prediction], gold: &[usize]) -> Option<TemperatureFit> {
        if predictions.is_empty() {
            return None;
        }
        let logits: Vec<Vec<f32>> = predictions.iter().map(|p| p.logits.clone()).collect();
        let temperature = fit_temperature(&logits, gold);
        let ece_at = |t: f32| {
            let answers: Vec<(f64, bool)> = predictions
                .iter()
                .zip(gold)
                .map(|(p, &g)| {
                    let scaled = softmax_calibrated(p.logits.iter().copied(), t)
                        .map_or(0.0, |s| f64::from(s.scores[p.label]));
                    (scaled, p.label == g)
                })
                .collect();
            expected_calibration_error(&answers).unwrap_or(0.0)
        };
        Some(TemperatureFit {
            temperature,
            nll_before: negative_log_likelihood(&logits, gold, 1.0),
            nll_after: negative_log_likelihood(&logits, gold, temperature),
            ece_before: ece_at(1.0),
            ece_after: ece_at(temperature as f32),
        })
    }
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
        if let Some(ece) = self.ece {
            let at = match (self.temperature, self.ece_uncalibrated) {
                (Some(t), Some(raw)) => format!(
                    "; scores at temperature {t:.3}, the raw softmax's {:.2} %",
                    raw * 100.0
                ),
                (Some(_), None) => "; scores are the raw softmax".to_string(),
                (None, _) => String::new(),
            };
            writeln!(
                f,
                "calibration ECE {:.2} % ({ECE_BINS} bins{at})",
                ece * 100.0
            )?;
        }
        if let Some(fit) = &self.fit {
            writeln!(
                f,
                "fitted    temperature {:.3} on these examples: NLL {:.4} → {:.4}, ECE {:.2} % → {:.2} % (raw softmax → scaled); \
                 put \"score_temperature\": {:.3} in the model's config.json to answer with such scores",
                fit.temperature,
                fit.nll_before,
                fit.nll_after,
                fit.ece_before * 100.0,
                fit.ece_after * 100.0,
                fit.temperature
            )?;
        }
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
    /// Scores the predictions (label index and score, one per example) of `model` on `data`.
    fn new(
        model: String,
        data: &Path,
        labels: &[String],
        examples: &[Example],
        predicted: &[(usize, f32)],
        seconds: f64,
    ) -> EvalReport {
        let gold: Vec<usize> = examples.iter().map(|e| e.label).collect();
        let labels_predicted: Vec<usize> = predicted.iter().map(|(l, _)| *l).collect();
        let (correct, confusion, classes) = score(labels, &gold, &labels_predicted);
        let answers: Vec<(f64, bool)> = predicted
            .iter()
            .zip(&gold)
            .map(|(&(label, score), &g)| (f64::from(score), label == g))
            .collect();
        EvalReport {
            model,
            data: data.display().to_string(),
            examples: examples.len(),
            correct,
            accuracy: ratio(correct, examples.len()),
            classes,
            confusion,
            ece: expected_calibration_error(&answers),
            temperature: None,
            ece_uncalibrated: None,
            fit: None,
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
    let examples = LabelledFile::read(
        &args.data,
        args.format,
        &args.text_column,
        &args.label_column,
    )?
    .examples(&labels)?;
    let aws = crate::aws::Aws::load(&global.aws).await;
    let invoker = crate::aws::lambda::invoker(&aws, &function, Default::default());
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
    if args.fit_temperature {
        bail!("--fit-temperature needs the model's logits: run it on the model (--model), not on --function");
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
        predicted.push((label, result.score));
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
    // The file first: a bad one is refused before the model's load (seconds) is spent.
    let file = LabelledFile::read(
        &args.data,
        args.format,
        &args.text_column,
        &args.label_column,
    )?;
    let classifier = args.model.load().await?;
    let report = tokio::task::spawn_blocking(move || -> Result<EvalReport> {
        let labels = classifier.labels().to_vec();
        let examples = file.examples(&labels)?;
        let started = Instant::now();
        let predictions = predict_all(&classifier, &examples)?;
        let seconds = started.elapsed().as_secs_f64();
        let predicted: Vec<(usize, f32)> =
            predictions.iter().map(|p| (p.label, p.score())).collect();
        let mut report = EvalReport::new(
            args.model.model.to_string(),
            &args.data,
            &labels,
            &examples,
            &predicted,
            seconds,
        );
        let temperature = classifier.temperature();
        report.temperature = Some(f64::from(temperature));
        if temperature != 1.0 {
            let raw: Vec<(f64, bool)> = predictions
                .iter()
                .zip(&examples)
                .map(|(p, e)| (f64::from(p.probabilities[p.label]), p.label == e.label))
                .collect();
            report.ece_uncalibrated = expected_calibration_error(&raw);
        }
        if args.fit_temperature {
            let gold: Vec<usize> = examples.iter().map(|e| e.label).collect();
            report.fit = TemperatureFit::of(&predictions, &gold);
        }
        Ok(report)
    })
    .await??;
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}
