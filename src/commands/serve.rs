//! `serve`: the function's real handler on a local HTTP endpoint that speaks the Lambda Invoke
//! API (`POST /2015-03-31/functions/{name}/invocations`) and the function-URL shape
//! (`POST /`), so any SDK pointed at it with an endpoint URL works unchanged — the backend's
//! offline development mode.
//!
//! It behaves like a Lambda function with a concurrency limit, not like an open door:
//! `--concurrency` invocations run at once, `--queue` more may wait, and the rest are answered
//! at once with Lambda's 429 `TooManyRequestsException` (and `Retry-After`) before their body
//! is read. A request's headers, then its body, must arrive within `--read-timeout`. So memory
//! is bounded: the model, plus at most (concurrency + queue) bodies of at most 6 MB and their
//! parsed events. Every refusal is a Lambda-shaped JSON error. The first Ctrl-C stops
//! accepting and finishes what is in flight; a second one exits at once.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use ummatics_sentiment_function::event::{
    handle_http_observed, handle_observed, HttpRequest, HttpResponse,
};
use ummatics_sentiment_function::protocol::MAX_PAYLOAD_BYTES;
use ummatics_sentiment_function::telemetry::Record;
use ummatics_sentiment_function::Classifier;

use crate::aws::Names;
use crate::cli::{GlobalArgs, ServeArgs};

struct Served {
    classifier: Classifier,
    telemetry: Option<crate::telemetry::Sink>,
    function: String,
    memory_mb: u32,
    invocations: AtomicU64,
    limits: Limits,
    /// One permit per invocation that may run.
    running: Semaphore,
    /// One permit per request that may be read and wait: running + queued.
    admitted: Arc<Semaphore>,
}

impl Served {
    /// Writes an invocation's telemetry record where `--telemetry` says.
    fn observe(&self, record: Option<Record>) {
        if let (Some(sink), Some(record)) = (&self.telemetry, record) {
            sink.write(&record);
        }
    }
}

/// How much `serve` takes on at once: checked values from the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Invocations running at once.
    pub concurrency: usize,
    /// Requests waiting for a slot.
    pub queue: usize,
    /// Longest wait for the headers, and again for the body.
    pub read_timeout: Duration,
}

impl Limits {
    pub fn from_args(args: &ServeArgs) -> Result<Limits> {
        if args.read_timeout.is_zero() {
            bail!("--read-timeout must be more than zero (e.g. 10s)");
        }
        let concurrency = args
            .concurrency
            .map_or_else(ummatics_sentiment_function::model::available_cores, |n| {
                n as usize
            });
        Ok(Limits {
            concurrency,
            queue: args.queue.map_or(2 * concurrency, |n| n as usize),
            read_timeout: args.read_timeout,
        })
    }
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
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = match name {
        Ok(Path(name)) => name,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                format!("the function name in the path is not valid: {e}"),
            )
        }
    };
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
    let Ok(_slot) = state.running.acquire().await else {
        return shutting_down();
    };
    let started = Instant::now();
    let state2 = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let (answer, record) = handle_observed(&state2.classifier, event);
        state2.observe(record);
        answer
    })
    .await;
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
        return unknown_operation(method, uri).await;
    }
    if body.len() > MAX_PAYLOAD_BYTES {
        return too_large();
    }
    let request = HttpRequest {
        method: method.to_string(),
        body: Ok(body.to_vec()),
    };
    let Ok(_slot) = state.running.acquire().await else {
        return shutting_down();
    };
    let state2 = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let (answer, record) = handle_http_observed(&state2.classifier, &request);
        state2.observe(record);
        HttpResponse::from(&answer)
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

/// Lambda's answer when no slot is free and the queue is full: 429, before the body is read.
fn too_many_requests(limits: &Limits) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [("content-type", "application/json"), ("retry-after", "1")],
        json!({
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": format!(
                "Rate Exceeded. (serve runs {} invocation(s) at once and queues {}; see --concurrency and --queue)",
                limits.concurrency, limits.queue
            ),
        })
        .to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("TooManyRequestsException"),
    );
    response
}

fn shutting_down() -> Response {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceException",
        "serve is shutting down",
    )
}

/// Every request passes here first: it takes a place (running or queued) or is refused with
/// 429 unread; then its body is read, within the limit and the read timeout.
async fn admit(State(state): State<Arc<Served>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(_place) = state.admitted.clone().try_acquire_owned() else {
        // The client is likely still sending: read and drop what it sends (nothing is kept)
        // so that it gets to read the 429 instead of a reset connection.
        tokio::spawn(discard(body, state.limits.read_timeout));
        return too_many_requests(&state.limits);
    };
    let bytes = match read_body(body, state.limits.read_timeout).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Reads an admitted request's body, up to a little more than the limit (so "too large" is
/// decided on the real size), for as long as it keeps arriving: each piece within `idle`, like
/// nginx's `client_body_timeout`. A deadline for the whole body would refuse a client that is
/// slow only because this machine is busy; a stalled one gets 408 after `idle`.
async fn read_body(body: Body, idle: Duration) -> Result<bytes::Bytes, Response> {
    use http_body_util::BodyExt;
    let mut body = http_body_util::Limited::new(body, MAX_PAYLOAD_BYTES + 1);
    let mut bytes = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(too_large())
            }
            Ok(Some(Err(e))) => {
                return Err(api_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    format!("the request body could not be read: {e}"),
                ))
            }
            Err(_) => {
                return Err(api_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeoutException",
                    format!(
                        "the request body stopped arriving for {}: send it without such \
                         pauses, or start serve with a longer --read-timeout",
                        humantime::format_duration(idle)
                    ),
                ))
            }
        }
    }
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(too_large());
    }
    Ok(bytes.freeze())
}

/// Reads a refused request's body to its end, keeping nothing: at most 6 MB, for as long as it
/// keeps arriving (each piece within the read timeout). A deadline for the whole body would
/// cut off a client that is slow only because the machine is busy — the moment a 429 is
/// answered — and closing with its bytes unread resets the connection before it reads the 429.
async fn discard(body: Body, idle: Duration) {
    use http_body_util::BodyExt;
    let mut body = http_body_util::Limited::new(body, MAX_PAYLOAD_BYTES + 1);
    while let Ok(Some(Ok(_frame))) = tokio::time::timeout(idle, body.frame()).await {}
}

/// Anything but POST on the Invoke API's path.
async fn unknown_operation(method: Method, uri: Uri) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("{method} {} is not an operation this endpoint serves; invoke with POST /2015-03-31/functions/NAME/invocations", uri.path()),
    )
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
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke).fallback(unknown_operation),
        )
        .fallback(any(function_url))
        // `admit` has read the body within the 6 MB limit already.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

/// Accepts connections until the first Ctrl-C (or SIGTERM), each with the header read
/// timeout; then finishes what is in flight. A second Ctrl-C exits at once.
async fn accept_until_interrupted(
    listener: tokio::net::TcpListener,
    app: Router,
    read_timeout: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    eprintln!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(read_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(app.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or is too slow is its own business.
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted again: exiting without waiting");
            std::process::exit(130);
        }
    });
    graceful.shutdown().await;
}

pub async fn run(args: ServeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let function = args
        .function
        .name(&Names::for_stage(global.aws.stage.as_deref()));
    let limits = Limits::from_args(&args)?;
    // The file first: a bad path is refused before the model's load (seconds) is spent.
    let telemetry = args
        .telemetry
        .as_deref()
        .map(|path| crate::telemetry::Sink::open(path, &function, &args.model.model.metric_name()))
        .transpose()?;
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
        telemetry,
        function: function.clone(),
        memory_mb: 2048,
        invocations: AtomicU64::new(0),
        limits,
        running: Semaphore::new(limits.concurrency),
        admitted: Arc::new(Semaphore::new(limits.concurrency + limits.queue)),
    });
    // The first stdout line is the endpoint, so scripts and tests can read the port.
    crate::output::stdout_line(format!("http://{local}"))?;
    eprintln!(
        "serving {function} ({source}) on http://{local}: {} invocation(s) at once, {} queued, {} read timeout",
        limits.concurrency,
        limits.queue,
        humantime::format_duration(limits.read_timeout)
    );
    eprintln!("  Invoke API:   POST http://{local}/2015-03-31/functions/{function}/invocations");
    eprintln!("  function URL: POST http://{local}/");
    eprintln!("  e.g. AWS_ENDPOINT_URL=http://{local} ummatics-sentiment invoke \"I love this!\"");
    let served = state.clone();
    accept_until_interrupted(listener, router(state), limits.read_timeout).await;
    eprintln!(
        "served {} invocation(s)",
        served.invocations.load(Ordering::Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}
