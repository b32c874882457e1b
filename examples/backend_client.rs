//! A backend scoring a list of texts through the deployed function, with nothing but the
//! client crate (`ummatics-sentiment-client`: the protocol and aws-sdk-lambda — no CLI, no
//! model, no inference engine):
//!
//!     cargo run -p ummatics-sentiment-client --example backend_client -- "I love this!" "This is terrible"
//!
//! Texts whose batch failed (function unreachable, throttled past the retries…) come back as
//! failures with their index range and reason; every other text still gets its answer. Built
//! with `--features local` and given `UMMATICS_FALLBACK_MODEL=<model dir>`, those texts are
//! scored in-process by the same model code the function runs (the old client fell back to
//! TextBlob, which disagreed with the model).
//!
//! Set `AWS_ENDPOINT_URL` to a running `ummatics-sentiment serve` for offline development, and
//! `UMMATICS_FUNCTION` to call a staged deployment (`ummatics-sentiment-analysis-<stage>`).

use anyhow::Result;
use ummatics_sentiment_client::{BatchInvoker, InvokerOptions, DEFAULT_FUNCTION};
use ummatics_sentiment_protocol::SentimentResult;

#[tokio::main]
async fn main() -> Result<()> {
    let texts: Vec<String> = std::env::args().skip(1).collect();
    let texts = if texts.is_empty() {
        vec!["I love this!".to_string(), "This is terrible".to_string()]
    } else {
        texts
    };
    let function = std::env::var("UMMATICS_FUNCTION").unwrap_or_else(|_| DEFAULT_FUNCTION.into());

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let invoker = BatchInvoker::new(
        aws_sdk_lambda::Client::new(&config),
        function,
        InvokerOptions::default(),
    );
    let outcome = invoker.classify(&texts, |_| {}).await?;
    let mut results: Vec<Option<SentimentResult>> = outcome.results;
    for failure in &outcome.failures {
        eprintln!(
            "texts {}..{} not scored after {} attempt(s): {}",
            failure.start, failure.end, failure.attempts, failure.error
        );
    }
    score_locally(&texts, &mut results)?;

    let mut unscored = 0;
    for (text, result) in texts.iter().zip(&results) {
        match result {
            Some(r) => println!("{:<9} {:.3}  {text}", r.sentiment, r.score),
            None => {
                unscored += 1;
                println!("{:<9} {:>5}  {text}", "-", "-");
            }
        }
    }
    if unscored > 0 {
        anyhow::bail!("{unscored} of {} text(s) not scored", texts.len());
    }
    Ok(())
}

/// The texts without an answer, scored in-process from `UMMATICS_FALLBACK_MODEL`.
#[cfg(feature = "local")]
fn score_locally(texts: &[String], results: &mut [Option<SentimentResult>]) -> Result<()> {
    let missing: Vec<usize> = (0..texts.len()).filter(|&i| results[i].is_none()).collect();
    let Ok(dir) = std::env::var("UMMATICS_FALLBACK_MODEL") else {
        return Ok(());
    };
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("{} text(s) scored locally with {dir}", missing.len());
    let classifier = ummatics_sentiment_function::Classifier::load(&dir, &Default::default())?;
    let local: Vec<&str> = missing.iter().map(|&i| texts[i].as_str()).collect();
    for (i, r) in missing.into_iter().zip(classifier.classify(&local)?) {
        results[i] = Some(r);
    }
    Ok(())
}

#[cfg(not(feature = "local"))]
fn score_locally(_: &[String], _: &mut [Option<SentimentResult>]) -> Result<()> {
    Ok(())
}
