//! The batching Lambda client, usable as a library by backends: texts are split into invokes
//! of at most `batch_size` texts **and** under Lambda's 6 MB request limit (each text within
//! the function's 1 MiB per-text limit), `concurrency` invokes run at once, results come back
//! in input order, and a batch that finally fails is reported with its index range while every
//! other result is still returned.
//!
//! Retries happen here only (the SDK's own retries are turned off for this client, so one batch
//! is never sent 3 × 4 times): throttles, 5xx and dropped connections up to `max_attempts`
//! with the project's one backoff schedule ([`retry::Backoff`]); failures that would recur — out of memory, timeouts, other function errors,
//! other 4xx — at most once more; and all retries of one call share a budget.

pub mod report;
pub mod retry;
pub mod sdk_error;

/// The function a deployment without `--stage` makes (the old system's name, which existing
/// backends call); `--stage NAME` makes `<this>-NAME`.
pub const DEFAULT_FUNCTION: &str = "ummatics-sentiment-analysis";

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine;
use futures_util::StreamExt;
use serde::Serialize;
use ummatics_sentiment_protocol::{
    oversize, Response, SentimentResult, MAX_PAYLOAD_BYTES, MAX_TEXTS_PER_REQUEST,
};

use crate::sdk_error::{AwsError, ErrorKind};

/// `{"texts":[` + `]}`.
const ENVELOPE_BYTES: usize = r#"{"texts":[]}"#.len();

/// How to call the function.
#[derive(Debug, Clone)]
pub struct InvokerOptions {
    /// Texts per invoke (1..=50).
    pub batch_size: usize,
    /// Invokes in flight at once.
    pub concurrency: usize,
    /// Attempts per batch for transient failures (throttles, 5xx, dropped connections);
    /// failures that would recur get at most two.
    pub max_attempts: u32,
    /// Retries one `classify` call may make in all, across its batches (a function that fails
    /// everything is not called `max_attempts` times per batch); at least this many, or one
    /// per five batches when that is more.
    pub retry_budget: usize,
    /// First backoff; doubled per attempt, with jitter, capped ([`retry::Backoff`]).
    pub backoff: Duration,
    /// Ask Lambda for the log tail (`LogType: Tail`) to read billed durations.
    pub log_tail: bool,
}

impl Default for InvokerOptions {
    fn default() -> Self {
        InvokerOptions {
            batch_size: MAX_TEXTS_PER_REQUEST,
            concurrency: 4,
            max_attempts: 4,
            retry_budget: 10,
            backoff: Duration::from_millis(200),
            log_tail: false,
        }
    }
}

/// The batching rule, one text at a time: at most `batch_size` texts per batch, and a request
/// payload under Lambda's 6 MB.
#[derive(Debug, Clone)]
pub struct Packer {
    batch_size: usize,
    count: usize,
    bytes: usize,
}

impl Packer {
    pub fn new(batch_size: usize) -> Result<Packer> {
        if batch_size == 0 || batch_size > MAX_TEXTS_PER_REQUEST {
            bail!("the batch size must be 1–{MAX_TEXTS_PER_REQUEST}, not {batch_size}");
        }
        Ok(Packer {
            batch_size,
            count: 0,
            bytes: ENVELOPE_BYTES,
        })
    }

    /// Takes text number `index` (0-based, for messages): whether it starts a new batch (the
    /// current one is full without it), or why no request can carry it.
    pub fn add(&mut self, index: usize, text: &str) -> std::result::Result<bool, String> {
        if let Some(why) = oversize(text) {
            return Err(format!(
                "text {index} {why} (its batch would be refused whole); shorten or split it"
            ));
        }
        let size = serde_json::to_string(text).map_or(usize::MAX, |json| json.len());
        if ENVELOPE_BYTES + size >= MAX_PAYLOAD_BYTES {
            return Err(format!(
                "text {index} is {size} bytes as JSON: no request can carry it (Lambda takes less \
                 than {MAX_PAYLOAD_BYTES} bytes per invoke); shorten or split it"
            ));
        }
        let new = self.count > 0
            && (self.count == self.batch_size || self.bytes + 1 + size >= MAX_PAYLOAD_BYTES);
        if new {
            self.count = 0;
            self.bytes = ENVELOPE_BYTES;
        }
        self.bytes += usize::from(self.count > 0) + size;
        self.count += 1;
        Ok(new)
    }

    /// Ends the current batch (the next text starts a new one).
    pub fn cut(&mut self) {
        self.count = 0;
        self.bytes = ENVELOPE_BYTES;
    }
}

/// Splits texts into index ranges of at most `batch_size` texts whose request payload stays
/// under the 6 MB limit. A text that cannot fit in any request is an error naming it.
pub fn plan_batches(texts: &[String], batch_size: usize) -> Result<Vec<Range<usize>>> {
    let mut packer = Packer::new(batch_size)?;
    let mut batches = Vec::new();
    let mut start = 0;
    for (i, text) in texts.iter().enumerate() {
        if packer.add(i, text).map_err(anyhow::Error::msg)? {
            batches.push(start..i);
            start = i;
        }
    }
    if start < texts.len() {
        batches.push(start..texts.len());
    }
    Ok(batches)
}

/// Retries one call may still make, shared by its batches. A stream of batches earns one more
/// per five batches sent.
#[derive(Debug)]
pub struct RetryBudget {
    left: AtomicUsize,
    sent: AtomicUsize,
    earns: bool,
}

impl RetryBudget {
    /// A fixed budget (a call whose batches are all known).
    pub fn fixed(retries: usize) -> RetryBudget {
        RetryBudget {
            left: AtomicUsize::new(retries),
            sent: AtomicUsize::new(0),
            earns: false,
        }
    }

    /// A budget that grows by one per five batches sent (a stream of batches).
    pub fn growing(retries: usize) -> RetryBudget {
        RetryBudget {
            earns: true,
            ..RetryBudget::fixed(retries)
        }
    }

    fn sent_one(&self) {
        if self.earns && (self.sent.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(5) {
            self.left.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn grant(&self) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A batch that failed after its retries.
#[derive(Debug, Clone, Serialize)]
pub struct BatchFailure {
    /// First index (0-based, inclusive).
    pub start: usize,
    /// Last index (exclusive).
    pub end: usize,
    pub attempts: u32,
    pub error: String,
}

/// What a bulk call returned.
#[derive(Debug, Clone, Serialize)]
pub struct InvokeOutcome {
    /// One per input text, in order; `None` where its batch failed.
    pub results: Vec<Option<SentimentResult>>,
    pub failures: Vec<BatchFailure>,
    pub invokes: usize,
    /// Sum of the `Billed Duration` of each successful invoke's REPORT line (log tail only).
    pub billed_ms: Option<f64>,
    pub wall: Duration,
}

impl InvokeOutcome {
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Calls one function in batches.
#[derive(Debug, Clone)]
pub struct BatchInvoker {
    lambda: aws_sdk_lambda::Client,
    function: String,
    options: InvokerOptions,
}

/// One batch's answer.
#[derive(Debug)]
pub struct Answered {
    pub results: Vec<SentimentResult>,
    /// Billed duration from the log tail, when asked for.
    pub billed_ms: Option<f64>,
}

/// Why a batch has no answer.
#[derive(Debug)]
pub enum BatchError {
    /// It failed, after this many attempts.
    Failed { error: String, attempts: u32 },
    /// There is no such function: no batch can succeed, so the whole call stops.
    NoFunction,
}

/// Whether trying a failed invoke again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttles, 5xx, dropped connections and timeouts of the connection: up to
    /// `max_attempts`, with backoff.
    Transient,
    /// Would most likely recur (out of memory, the function's timeout, other function errors,
    /// other 4xx): one more try.
    Once,
    /// The function answered, and the answer is wrong or a refusal: never.
    Never,
}

impl Retry {
    /// Attempts in all for this kind of failure.
    fn attempts(self, max_attempts: u32) -> u32 {
        match self {
            Retry::Transient => max_attempts.max(1),
            Retry::Once => max_attempts.clamp(1, 2),
            Retry::Never => 1,
        }
    }

    /// For a failed call: transient failures (throttles, the service's own, no answer) up
    /// to the attempts; no credentials never; any other refusal once more.
    pub fn for_error(error: &AwsError) -> Retry {
        match error.kind {
            _ if error.retryable() => Retry::Transient,
            ErrorKind::Credentials => Retry::Never,
            _ => Retry::Once,
        }
    }
}

/// One invoke's result, or why it failed and whether trying again may help.
enum Attempt {
    Done(Answered),
    Failed(String, Retry),
    NoFunction,
}

/// What to do when the function does not exist (a `ResourceNotFoundException`).
pub fn no_function_message(function: &str, region: &str) -> String {
    format!(
        "no function {function} in {region}: deploy it (`ummatics-sentiment deploy`) or pass \
         --function / --stage / --region"
    )
}

impl BatchInvoker {
    pub fn new(
        lambda: aws_sdk_lambda::Client,
        function: impl Into<String>,
        options: InvokerOptions,
    ) -> Self {
        // The client retries; the SDK does not (else one batch could go out 3 × 4 times).
        let config = lambda
            .config()
            .to_builder()
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .build();
        BatchInvoker {
            lambda: aws_sdk_lambda::Client::from_conf(config),
            function: function.into(),
            options,
        }
    }

    /// Classifies every text; `on_batch(done_texts)` is called as batches finish (progress).
    pub async fn classify(
        &self,
        texts: &[String],
        on_batch: impl Fn(usize) + Send + Sync,
    ) -> Result<InvokeOutcome> {
        let started = Instant::now();
        let batches = plan_batches(texts, self.options.batch_size)?;
        let invokes = batches.len();
        let budget = RetryBudget::fixed(self.options.retry_budget.max(invokes / 5));
        let budget = &budget;
        let mut results: Vec<Option<SentimentResult>> = vec![None; texts.len()];
        let mut failures = Vec::new();
        let mut billed: Option<f64> = None;
        let mut stream = futures_util::stream::iter(batches.into_iter().map(|range| async {
            let outcome = self.run_batch(&texts[range.clone()], budget).await;
            (range, outcome)
        }))
        .buffer_unordered(self.options.concurrency.max(1));
        while let Some((range, outcome)) = stream.next().await {
            match outcome {
                Ok(answered) => {
                    for (slot, result) in results[range.clone()].iter_mut().zip(answered.results) {
                        *slot = Some(result);
                    }
                    if let Some(ms) = answered.billed_ms {
                        *billed.get_or_insert(0.0) += ms;
                    }
                }
                Err(BatchError::Failed { error, attempts }) => failures.push(BatchFailure {
                    start: range.start,
                    end: range.end,
                    attempts,
                    error,
                }),
                Err(BatchError::NoFunction) => bail!(self.no_function()),
            }
            on_batch(range.len());
        }
        failures.sort_by_key(|f| f.start);
        Ok(InvokeOutcome {
            results,
            failures,
            invokes,
            billed_ms: billed,
            wall: started.elapsed(),
        })
    }

    /// What to do about the function not existing.
    pub fn no_function(&self) -> String {
        let region = self.lambda.config().region().map(|r| r.to_string());
        no_function_message(&self.function, region.as_deref().unwrap_or("this region"))
    }

    /// The options in use.
    pub fn options(&self) -> &InvokerOptions {
        &self.options
    }

    /// Runs one batch (planned with [`Packer`]), retrying as its failures allow while the
    /// call's budget lasts.
    pub async fn run_batch(
        &self,
        texts: &[String],
        budget: &RetryBudget,
    ) -> Result<Answered, BatchError> {
        budget.sent_one();
        let payload = serde_json::to_vec(&serde_json::json!({ "texts": texts })).map_err(|e| {
            BatchError::Failed {
                error: e.to_string(),
                attempts: 0,
            }
        })?;
        let mut delays =
            retry::Backoff::new(self.options.max_attempts, self.options.backoff).delays();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, retry) = match self.invoke_once(&payload, texts.len()).await {
                Attempt::Done(answered) => return Ok(answered),
                Attempt::NoFunction => return Err(BatchError::NoFunction),
                Attempt::Failed(error, retry) => (error, retry),
            };
            if attempt >= retry.attempts(self.options.max_attempts) {
                return Err(BatchError::Failed {
                    error,
                    attempts: attempt,
                });
            }
            // Only a retry that will happen draws on the call's budget.
            if !budget.grant() {
                return Err(BatchError::Failed {
                    error: format!("{error} (not retried: the call's retry budget is spent)"),
                    attempts: attempt,
                });
            }
            let delay = delays.next().unwrap_or(retry::MAX_DELAY);
            tokio::time::sleep(delay).await;
        }
    }

    async fn invoke_once(&self, payload: &[u8], expected: usize) -> Attempt {
        let mut request = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload.to_vec()));
        if self.options.log_tail {
            request = request.log_type(LogType::Tail);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let error = AwsError::from_sdk(&e);
                let retry = Retry::for_error(&error);
                return match error.kind {
                    ErrorKind::NotFound => Attempt::NoFunction,
                    // No credentials stay no credentials: never tried again.
                    ErrorKind::Credentials => Attempt::Failed(
                        format!(
                            "{error}: no usable AWS credentials (aws login, aws sso login or \
                             aws configure; `ummatics-sentiment doctor` says which)"
                        ),
                        retry,
                    ),
                    _ => Attempt::Failed(error.message, retry),
                };
            }
        };
        let billed = out.log_result().and_then(billed_ms_from_log_tail);
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = out.function_error() {
            let message = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
            // Out of memory, the function's timeout, a crash: likely to recur; tried once more.
            return Attempt::Failed(format!("function error ({kind}): {message}"), Retry::Once);
        }
        let response: Response = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Failed(
                    format!(
                        "the function's answer is not the wire response ({e}): {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ),
                    Retry::Never,
                )
            }
        };
        match response.into_results() {
            Ok(results) if results.len() == expected => Attempt::Done(Answered {
                results,
                billed_ms: billed,
            }),
            Ok(results) => Attempt::Failed(
                format!(
                    "the function returned {} results for {expected} texts",
                    results.len()
                ),
                Retry::Never,
            ),
            Err((status, error)) => Attempt::Failed(
                format!("the function answered {status}: {error}"),
                Retry::Never,
            ),
        }
    }
}

/// `Billed Duration: N ms` from the base64 log tail Lambda returns with `LogType: Tail`.
pub fn billed_ms_from_log_tail(log_result: &str) -> Option<f64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(log_result)
        .ok()?;
    crate::report::Report::last_in(&String::from_utf8_lossy(&bytes)).map(|r| r.billed_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ummatics_sentiment_protocol::MAX_TEXT_BYTES;

    #[test]
    fn batches_split_on_count_and_on_bytes() {
        let texts: Vec<String> = (0..1234).map(|i| format!("text {i}")).collect();
        let batches = plan_batches(&texts, 50).unwrap();
        assert_eq!(batches.len(), 25);
        assert_eq!(batches[0], 0..50);
        assert_eq!(batches[24], 1200..1234);

        // 700 KB texts: eight fit under 6 MB, not fifty.
        let big: Vec<String> = (0..20).map(|_| "x".repeat(700_000)).collect();
        let batches = plan_batches(&big, 50).unwrap();
        assert_eq!(batches, vec![0..8, 8..16, 16..20]);
        for b in &batches {
            let payload =
                serde_json::to_vec(&serde_json::json!({"texts": &big[b.clone()]})).unwrap();
            assert!(payload.len() < MAX_PAYLOAD_BYTES);
        }
        // The byte rule is exact: the planned payload size is the serialized size.
        // Seven texts (each within the per-text limit) whose payload is one byte under the
        // limit go in one batch; one byte more splits them.
        let fixed = 7 * 2 + 6; // quotes and commas
        let last = MAX_PAYLOAD_BYTES - 1 - ENVELOPE_BYTES - fixed - 6 * 900_000;
        let mut tight: Vec<String> = (0..6).map(|_| "y".repeat(900_000)).collect();
        tight.push("y".repeat(last));
        assert_eq!(plan_batches(&tight, 50).unwrap(), vec![0..7]);
        let payload = serde_json::to_vec(&serde_json::json!({ "texts": &tight })).unwrap();
        assert_eq!(payload.len(), MAX_PAYLOAD_BYTES - 1);
        tight[6].push('y');
        assert_eq!(plan_batches(&tight, 50).unwrap(), vec![0..6, 6..7]);
        let too_big = vec!["a".into(), "y".repeat(MAX_PAYLOAD_BYTES)];
        let err = plan_batches(&too_big, 50).unwrap_err().to_string();
        assert!(err.contains("text 1 is"), "{err}");
        assert!(plan_batches(&texts, 51).is_err());
        assert!(plan_batches(&[], 50).unwrap().is_empty());
    }

    #[test]
    fn a_text_over_the_function_limit_is_refused_by_the_library_naming_it() {
        let texts = vec!["ok".to_string(), "x".repeat(MAX_TEXT_BYTES + 1)];
        let err = plan_batches(&texts, 50).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("text 1 is {} bytes", MAX_TEXT_BYTES + 1)),
            "{err}"
        );
        let at_limit = vec!["x".repeat(MAX_TEXT_BYTES)];
        assert_eq!(plan_batches(&at_limit, 50).unwrap(), vec![0..1]);
    }

    #[test]
    fn failures_that_would_recur_are_retried_at_most_once() {
        use crate::sdk_error::{AwsError, ErrorKind};
        let error = |kind| AwsError {
            kind,
            code: None,
            message: String::new(),
        };
        for (kind, retry) in [
            (ErrorKind::Transport, Retry::Transient),
            (ErrorKind::Throttled, Retry::Transient),
            (ErrorKind::ServiceFailure, Retry::Transient),
            (ErrorKind::Refused, Retry::Once),
            (ErrorKind::Credentials, Retry::Never),
        ] {
            assert_eq!(Retry::for_error(&error(kind)), retry, "{kind:?}");
        }
        assert_eq!(Retry::Transient.attempts(4), 4);
        assert_eq!(Retry::Once.attempts(4), 2);
        assert_eq!(Retry::Once.attempts(1), 1);
        assert_eq!(Retry::Never.attempts(4), 1);
    }

    #[test]
    fn billed_duration_is_read_from_the_report_line() {
        let tail = "START RequestId: 1\nEND RequestId: 1\nREPORT RequestId: 1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\t\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        assert_eq!(billed_ms_from_log_tail(&encoded), Some(13.0));
        assert_eq!(billed_ms_from_log_tail("not base64!"), None);
    }
}
