//! `eval`: accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a
//! labelled file.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;

use crate::cli::{EvalArgs, GlobalArgs};
use crate::evaluation::{predict_all, ratio, score, ClassScores, Example, LabelledFile};
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
    pub seconds: f64,
    pub texts_per_second: f64,
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
    let examples = LabelledFile::read(
        &args.data,
        args.format,
        &args.text_column,
        &args.label_column,
    )?
    .examples(&labels)?;
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
        let predicted = predict_all(&classifier, &examples)?;
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
