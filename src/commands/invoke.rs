//! `invoke`: texts in, labels out.

use std::fmt;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;
use ummatics_sentiment_function::protocol::{Response, SentimentResult, MAX_TEXT_BYTES};

use crate::cli::{GlobalArgs, InvokeArgs};
use crate::output::{ellipsize, emit, render, table};

/// What `invoke` prints: the wire response, and the texts for the human table.
#[derive(Debug)]
pub struct InvokeReport {
    pub texts: Vec<String>,
    pub results: Vec<SentimentResult>,
}

impl Serialize for InvokeReport {
    /// JSON output is exactly the function's wire response.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Response::ok(self.results.clone()).serialize(serializer)
    }
}

impl fmt::Display for InvokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut table = table(["#", "sentiment", "score", "text"]);
        for (i, (text, result)) in self.texts.iter().zip(&self.results).enumerate() {
            table.add_row([
                Cell::new(i + 1).set_alignment(CellAlignment::Right),
                Cell::new(&result.sentiment),
                Cell::new(format!("{:.4}", result.score)).set_alignment(CellAlignment::Right),
                Cell::new(ellipsize(text, 72)),
            ]);
        }
        write!(f, "{}", render(&table))
    }
}

fn check_texts(texts: &[String]) -> Result<()> {
    if texts.is_empty() {
        bail!("no texts to classify: pass them as arguments, e.g. `ummatics-sentiment invoke --local \"I love this!\"`");
    }
    for (i, text) in texts.iter().enumerate() {
        if text.len() > MAX_TEXT_BYTES {
            bail!(
                "text {} is {} bytes, more than the {MAX_TEXT_BYTES} bytes the function accepts per text; shorten it",
                i + 1,
                text.len()
            );
        }
    }
    Ok(())
}

pub async fn run(args: InvokeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if !args.local {
        bail!("invoking a deployed function is not available in this build yet; pass --local to run the model in this process");
    }
    check_texts(&args.texts)?;
    let options = args.model.options()?;
    let model = args.model.model;
    let texts = args.texts;
    let results = tokio::task::spawn_blocking(move || -> Result<_> {
        let classifier = model.load(&options)?;
        let results = classifier
            .classify(&texts)
            .context("classification failed")?;
        Ok((texts, results))
    })
    .await??;
    let (texts, results) = results;
    emit(global.output, &InvokeReport { texts, results })?;
    Ok(ExitCode::SUCCESS)
}
