//! Glue between the Lambda Runtime API and the handler: where the model lives in the image,
//! how init errors are reported, and the self-test the image build runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use anyhow::{Context, Result};
use lambda_runtime::tower;
use lambda_runtime::{Diagnostic, LambdaInvocation};
use lambda_runtime_api_client::{body::Body, build_request, PooledClient};

use crate::model::{Classifier, ClassifierOptions};

/// Environment variable naming the model directory inside the image.
pub const ENV_MODEL_DIR: &str = "UMMATICS_MODEL_DIR";

/// Two fixed sentences whose labels any sentiment model gets right; the self-test checks them.
pub const SELF_TEST: [(&str, &str); 2] = [
    ("I love this! It is wonderful.", "positive"),
    ("This is terrible, I hate it.", "negative"),
];

/// `$UMMATICS_MODEL_DIR`, else `$LAMBDA_TASK_ROOT/model`, else `/var/task/model`.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_MODEL_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let root = std::env::var_os("LAMBDA_TASK_ROOT")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/var/task".into());
    PathBuf::from(root).join("model")
}

/// Loads the classifier the way the function does at init.
pub fn load_from_env() -> Result<Classifier> {
    let options = ClassifierOptions::from_env()?;
    crate::startup::while_loading(|| Classifier::load(model_dir(), &options))
}

/// Reports a failed init through the Runtime API (`/runtime/init/error`), so Lambda shows the
/// message instead of a bare "Runtime exited".
pub async fn report_init_error(error: &anyhow::Error) -> Result<()> {
    let diagnostic = serde_json::json!({
        "errorType": "Runtime.ModelLoadError",
        "errorMessage": format!("{error:#}"),
    });
    let request = build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header(
            "lambda-runtime-function-error-type",
            "Runtime.ModelLoadError",
        )
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&diagnostic)?))
        .context("cannot build the init-error request")?;
    let client = PooledClient::builder().build();
    let response = client
        .call(request)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the Runtime API: {e}"))?;
    if !response.status().is_success() {
        anyhow::bail!(
            "the Runtime API answered {} to the init error",
            response.status()
        );
    }
    Ok(())
}

/// Classifies [`SELF_TEST`] and checks the labels. Returns a report line per sentence.
pub fn self_test(classifier: &Classifier) -> Result<Vec<String>> {
    let texts: Vec<&str> = SELF_TEST.iter().map(|(t, _)| *t).collect();
    let results = classifier.classify(&texts)?;
    let mut lines = Vec::new();
    let mut wrong = Vec::new();
    for ((text, expected), result) in SELF_TEST.iter().zip(&results) {
        lines.push(format!(
            "{:<9} {:.4}  {text}",
            result.sentiment, result.score
        ));
        if result.sentiment != *expected {
            wrong.push(format!(
                "{text:?} → {} (expected {expected})",
                result.sentiment
            ));
        }
    }
    if !wrong.is_empty() {
        anyhow::bail!(
            "the model in {} misclassifies: {}",
            classifier.source(),
            wrong.join("; ")
        );
    }
    Ok(lines)
}

/// The error type a function error carries when the event is not JSON (documented in the
/// README): stable, unlike lambda_runtime's own, which is a Rust type path.
pub const INVALID_EVENT: &str = "InvalidEvent";

/// The CloudWatch namespace of the function's own metrics.
pub const METRICS_NAMESPACE: &str = crate::telemetry::NAMESPACE;

/// A CloudWatch Embedded Metric Format line (printed to stdout, which Lambda sends to the
/// function's log group, where CloudWatch turns it into a metric): this cold start's INIT, in
/// milliseconds from `main` to the model ready, as `InitDuration` by `FunctionName`. The
/// dashboard's cost adds it to `Duration`, which leaves INIT out although Lambda bills it.
pub fn init_metric_line(function: &str, init_ms: f64, timestamp_ms: u128) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": "InitDuration", "Unit": "Milliseconds"}],
            }],
        },
        "FunctionName": function,
        "InitDuration": (init_ms * 1000.0).round() / 1000.0,
    })
    .to_string()
}

/// What the function expects, for the `InvalidEvent` message.
pub const EXPECTED_EVENT: &str = r#"the event must be JSON: {"texts": ["I love this!", ...]} (at most 50 texts), or a function URL request whose body is that JSON"#;

/// Invocations whose event was not JSON, by request id, with the parse error.
#[derive(Debug, Clone, Default)]
pub struct NotJson(Arc<Mutex<HashMap<String, String>>>);

impl NotJson {
    /// If this request's event was not JSON: the `InvalidEvent` diagnostic to answer with
    /// (taken: a request id is answered once).
    pub fn take(&self, request_id: &str) -> Option<Diagnostic> {
        let error = self.0.lock().ok()?.remove(request_id)?;
        Some(Diagnostic {
            error_type: INVALID_EVENT.to_string(),
            error_message: format!("the event is not JSON ({error}); {EXPECTED_EVENT}"),
        })
    }
}

impl<S> tower::Layer<S> for NotJson {
    type Service = NotJsonService<S>;
    fn layer(&self, inner: S) -> NotJsonService<S> {
        NotJsonService {
            inner,
            seen: self.clone(),
        }
    }
}

/// lambda_runtime fails an event that is not JSON before any handler runs, with its own Rust
/// type path as the error type. This service lets such an event through as `null` and
/// records why, so the handler answers [`INVALID_EVENT`] (see [`NotJson::take`]).
pub struct NotJsonService<S> {
    inner: S,
    seen: NotJson,
}

impl<S> tower::Service<LambdaInvocation> for NotJsonService<S>
where
    S: tower::Service<LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&invocation.body) {
            if let Ok(mut seen) = self.seen.0.lock() {
                seen.insert(invocation.context.request_id.clone(), error.to_string());
            }
            invocation.body = bytes::Bytes::from_static(b"null");
        }
        self.inner.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_metric_is_an_emf_line() {
        let line = init_metric_line("fn-a", 489.123_456, 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(v["FunctionName"], "fn-a");
        assert_eq!(v["InitDuration"], 489.123);
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], METRICS_NAMESPACE);
        assert_eq!(spec["Dimensions"], serde_json::json!([["FunctionName"]]));
        assert_eq!(spec["Metrics"][0]["Name"], "InitDuration");
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_u64);
    }
}
