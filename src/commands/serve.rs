//! `serve`: the function's real handler on a local HTTP endpoint that speaks the Lambda Invoke
//! API (`POST /2015-03-31/functions/{name}/invocations`) and the function-URL shape
//! (`POST /`), so any SDK pointed at it with an endpoint URL works unchanged — the backend's
//! offline development mode.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use ummatics_sentiment_function::event::{handle, handle_http, HttpRequest, HttpResponse};
use ummatics_sentiment_function::protocol::MAX_PAYLOAD_BYTES;
use ummatics_sentiment_function::Classifier;

use crate::aws::Names;
use crate::cli::{GlobalArgs, ServeArgs};

struct Served {
    classifier: Classifier,
    function: String,
    memory_mb: u32,
    invocations: AtomicU64,
}

/// Lambda's error shape: `x-amzn-ErrorType` and a JSON body with `Type` and `message`.
fn api_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let mut response = (
        status,
        [("content-type", "application/json")],
        json!({"Type": "User", "message": message.into()}).to_string(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(kind) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// `POST /2015-03-31/functions/{name}/invocations`
async fn invoke(
    State(state): State<Arc<Served>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = match check_request(&state, &name, &headers, &body) {
        Ok(event) => event,
        Err(refusal) => return refusal.into_response(),
    };
    // Counted now, before the event moves to the handler (the body is not parsed twice).
    let texts = event
        .get("texts")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let id = request_id();
    let started = Instant::now();
    let state2 = state.clone();
    let answer = tokio::task::spawn_blocking(move || handle(&state2.classifier, event)).await;
    let elapsed = started.elapsed();
    let n = state.invocations.fetch_add(1, Ordering::Relaxed) + 1;
    let (payload, function_error) = match answer {
        Ok(answer) => (serde_json::to_vec(&answer).unwrap_or_default(), None),
        Err(e) => (
            json!({"errorType": "Runtime.Panic", "errorMessage": e.to_string()})
                .to_string()
                .into_bytes(),
            Some("Unhandled"),
        ),
    };
    eprintln!(
        "invoke #{n} {id}: {texts} text(s), {} bytes in, {:.1} ms{}",
        body.len(),
        elapsed.as_secs_f64() * 1e3,
        function_error
            .map(|e| format!(", function error {e}"))
            .unwrap_or_default()
    );
    let tail = headers
        .get("x-amz-log-type")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tail"))
        .then(|| log_tail(&id, elapsed, state.memory_mb));
    invoke_response(&id, payload, function_error, tail)
}

/// Lambda's refusal of an Invoke request: status, error type, message.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        api_error(self.0, self.1, self.2)
    }
}

/// The event of an Invoke request, or Lambda's refusal: another function's name, an
/// invocation type other than RequestResponse, a payload over 6 MB, a body that is not JSON.
fn check_request(
    state: &Served,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Refusal> {
    // FunctionName may be a name, a partial or a full ARN, with a :qualifier.
    let bare = name
        .rsplit(":function:")
        .next()
        .unwrap_or(name)
        .split(':')
        .next()
        .unwrap_or_default();
    if bare != state.function {
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "Function not found: {name} (this endpoint serves {})",
                state.function
            ),
        ));
    }
    if headers
        .get("x-amz-invocation-type")
        .is_some_and(|v| v != "RequestResponse")
    {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "serve answers RequestResponse invocations only".into(),
        ));
    }
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            too_large_message(),
        ));
    }
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {e}"),
        )
    })
}

/// The base64 log tail Lambda returns with `X-Amz-Log-Type: Tail`: START, END and a REPORT
/// line with this invocation's duration and the process's peak memory.
fn log_tail(id: &str, elapsed: std::time::Duration, memory_mb: u32) -> String {
    let ms = elapsed.as_secs_f64() * 1e3;
    let tail = format!(
        "START RequestId: {id} Version: $LATEST\nEND RequestId: {id}\nREPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {} MB\t\n",
        ms.ceil() as u64,
        // Whole MB, rounded down, as Lambda's REPORT line has it.
        crate::process::peak_rss_mib().map_or(0, |mib| mib as u64)
    );
    base64::engine::general_purpose::STANDARD.encode(tail)
}

/// Invoke's 200 answer: the payload, the request id, the version, and the function-error and
/// log-result headers when there are any.
fn invoke_response(
    id: &str,
    payload: Vec<u8>,
    function_error: Option<&'static str>,
    log_tail: Option<String>,
) -> Response {
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        payload,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        "x-amzn-requestid",
        HeaderValue::from_str(id).expect("ascii id"),
    );
    h.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    if let Some(kind) = function_error {
        h.insert("x-amz-function-error", HeaderValue::from_static(kind));
    }
    if let Some(tail) = log_tail {
        h.insert(
            "x-amz-log-result",
            HeaderValue::from_str(&tail).expect("base64"),
        );
    }
    response
}

fn too_large_message() -> String {
    format!(
        "Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
    )
}

fn too_large() -> Response {
    api_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        too_large_message(),
    )
}

/// `POST /` (any path not under the Invoke API): the function-URL shape.
async fn function_url(
    State(state): State<Arc<Served>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if uri.path().starts_with("/2015-03-31/") {
        return api_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("{method} {} is not an operation this endpoint serves; invoke with POST /2015-03-31/functions/NAME/invocations", uri.path()),
        );
    }
    if body.len() > MAX_PAYLOAD_BYTES {
        return too_large();
    }
    let request = HttpRequest {
        method: method.to_string(),
        body: Ok(body.to_vec()),
    };
    let state2 = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        HttpResponse::from(&handle_http(&state2.classifier, &request))
    })
    .await;
    match answer {
        Ok(r) => (
            StatusCode::from_u16(r.status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("content-type", "application/json")],
            r.body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the handler panicked: {e}"),
        )
            .into_response(),
    }
}

/// Ctrl-C (SIGINT) or SIGTERM: stop accepting, finish what is in flight, exit 0.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    eprintln!("shutting down: finishing requests in flight");
}

/// The router, for `serve` and for tests.
fn router(state: Arc<Served>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .fallback(any(function_url))
        // Refuse bodies above the limit ourselves, with Lambda's error; read a little more
        // than the limit so "too large" is decided on the real size.
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES + 1024 * 1024))
        .with_state(state)
}

pub async fn run(args: ServeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let function = args
        .function
        .name(&Names::for_stage(global.aws.stage.as_deref()));
    let classifier = args.model.load().await.context("cannot load the model")?;
    let addr = SocketAddr::new(args.host, args.port);
    if !args.host.is_loopback() {
        eprintln!(
            "warning: serving on {} makes the endpoint reachable from other machines; it has no authentication",
            args.host
        );
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (is another serve running? pick --port)")
    })?;
    let local = listener.local_addr()?;
    let source = classifier.source().to_string();
    let state = Arc::new(Served {
        classifier,
        function: function.clone(),
        memory_mb: 2048,
        invocations: AtomicU64::new(0),
    });
    // The first stdout line is the endpoint, so scripts and tests can read the port.
    println!("http://{local}");
    eprintln!("serving {function} ({source}) on http://{local}");
    eprintln!("  Invoke API:   POST http://{local}/2015-03-31/functions/{function}/invocations");
    eprintln!("  function URL: POST http://{local}/");
    eprintln!("  e.g. AWS_ENDPOINT_URL=http://{local} ummatics-sentiment invoke \"I love this!\"");
    let served = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    eprintln!(
        "served {} invocation(s)",
        served.invocations.load(Ordering::Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}
