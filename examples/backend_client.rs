//! A backend scoring a list of texts through the deployed function, falling back to the same
//! model in-process when the function cannot be reached (the old client fell back to
//! TextBlob, which disagreed with the model; this fallback gives the model's own answers).
//!
//!     cargo run --example backend_client -- "I love this!" "This is terrible"
//!
//! Set AWS_ENDPOINT_URL to a running `ummatics-sentiment serve` for offline development.

use anyhow::Result;
use ummatics_sentiment::aws::Names;
use ummatics_sentiment::client::{BatchInvoker, InvokerOptions};
use ummatics_sentiment::models::{Embedded, ModelSpec};
use ummatics_sentiment_function::protocol::SentimentResult;
use ummatics_sentiment_function::ClassifierOptions;

#[tokio::main]
async fn main() -> Result<()> {
    let texts: Vec<String> = std::env::args().skip(1).collect();
    let texts = if texts.is_empty() {
        vec!["I love this!".to_string(), "This is terrible".to_string()]
    } else {
        texts
    };

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let invoker = BatchInvoker::new(
        aws_sdk_lambda::Client::new(&config),
        Names::for_stage(None).function,
        InvokerOptions::default(),
    );
    let outcome = invoker.classify(&texts, |_| {}).await?;

    // Texts whose batch failed (function unreachable, throttled past the retries…) are scored
    // locally with the bundled model; every text gets an answer.
    let mut results: Vec<Option<SentimentResult>> = outcome.results;
    let missing: Vec<usize> = (0..texts.len()).filter(|&i| results[i].is_none()).collect();
    if !missing.is_empty() {
        eprintln!(
            "{} text(s) scored locally: {:?}",
            missing.len(),
            outcome.failures
        );
        let classifier =
            ModelSpec::Embedded(Embedded::DEFAULT).load(&ClassifierOptions::default())?;
        let local_texts: Vec<&str> = missing.iter().map(|&i| texts[i].as_str()).collect();
        let local = classifier.classify(&local_texts)?;
        for (i, r) in missing.into_iter().zip(local) {
            results[i] = Some(r);
        }
    }
    for (text, result) in texts.iter().zip(results.into_iter().flatten()) {
        println!("{:<9} {:.3}  {text}", result.sentiment, result.score);
    }
    Ok(())
}
