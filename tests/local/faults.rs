//! Issue 16 (5b): the batching client — `invoke` and the library's `BatchInvoker` — against a
//! `serve` behind a proxy that answers 500s and 429s, drops connections before and after the
//! function ran, and delays. Every text must come back exactly once, in input order, with the
//! function's answer or reported failed by index, and the exit code must say which.
//!
//! The proxy decides per batch (from the batch's first text, `t<index> ...`) and per attempt,
//! so which batches fault is fixed while the order requests arrive in is not.

use crate::common;
use crate::serve::{lambda_at, Serve, FUNCTION};

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ummatics_sentiment::client::{BatchInvoker, InvokerOptions};
use ummatics_sentiment_function::protocol::SentimentResult;
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

const TEXTS: usize = 10_000;
const BATCH: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    /// Forward after a pause (a slow link).
    Slow,
    /// 500 `ServiceException`.
    Fail,
    /// 429 `TooManyRequestsException`.
    Throttle,
    /// Close the connection with the request unread (the function never ran).
    DropBefore,
    /// Forward, then close without answering (the function ran; its answer is lost).
    DropAfter,
}

/// What the proxy does with attempt `attempt` (1-based) of batch `batch`.
type Plan = fn(batch: usize, attempt: usize) -> Action;

/// A faulty first attempt for one batch in five, of every kind in turn; later attempts pass.
fn transient(batch: usize, attempt: usize) -> Action {
    if attempt > 1 || batch % 5 != 2 {
        return if batch.is_multiple_of(7) {
            Action::Slow
        } else {
            Action::Forward
        };
    }
    match (batch / 5) % 4 {
        0 => Action::Fail,
        1 => Action::Throttle,
        2 => Action::DropBefore,
        _ => Action::DropAfter,
    }
}

/// Batches 7, 77 and 147 fail every time; the rest as in [`transient`].
fn doomed(batch: usize, attempt: usize) -> Action {
    if DOOMED.contains(&batch) {
        Action::Fail
    } else {
        transient(batch, attempt)
    }
}
const DOOMED: [usize; 3] = [7, 77, 147];

struct Proxy {
    endpoint: String,
    stop: Arc<AtomicBool>,
    /// Requests the proxy passed on to `serve` (each one an invocation).
    forwarded: Arc<AtomicUsize>,
    /// Attempts seen per batch.
    attempts: Arc<Mutex<HashMap<usize, usize>>>,
}

impl Proxy {
    fn start(upstream: &str, plan: Plan) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(Mutex::new(HashMap::new()));
        let (s, f, a) = (stop.clone(), forwarded.clone(), attempts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (upstream, f, a) = (upstream.clone(), f.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = relay(stream, &upstream, plan, &f, &a);
                });
            }
        });
        Proxy {
            endpoint,
            stop,
            forwarded,
            attempts,
        }
    }

    fn attempts(&self) -> HashMap<usize, usize> {
        self.attempts.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

/// One request per connection: read it, act on the plan, close.
fn relay(
    mut client: TcpStream,
    upstream: &str,
    plan: Plan,
    forwarded: &AtomicUsize,
    attempts: &Mutex<HashMap<usize, usize>>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, body) = read_request(&mut client)?;
    let batch = first_index(&body) / BATCH;
    let attempt = {
        let mut seen = attempts.lock().unwrap();
        let n = seen.entry(batch).or_insert(0);
        *n += 1;
        *n
    };
    let answer = |client: &mut TcpStream, status: &str, kind: &str| {
        let body = format!(r#"{{"Type":"Service","message":"injected {kind}"}}"#);
        write!(
            client,
            "HTTP/1.1 {status}\r\nx-amzn-errortype: {kind}\r\nRetry-After: 0\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match plan(batch, attempt) {
        Action::Fail => answer(&mut client, "500 Internal Server Error", "ServiceException"),
        Action::Throttle => answer(
            &mut client,
            "429 Too Many Requests",
            "TooManyRequestsException",
        ),
        Action::DropBefore => client.shutdown(Shutdown::Both),
        action @ (Action::Forward | Action::Slow | Action::DropAfter) => {
            if action == Action::Slow {
                std::thread::sleep(Duration::from_millis(300));
            }
            forwarded.fetch_add(1, Ordering::SeqCst);
            let response = forward(upstream, &head, &body)?;
            if action == Action::DropAfter {
                client.shutdown(Shutdown::Both)
            } else {
                client.write_all(&response)
            }
        }
    }
}

/// The request's head (up to the blank line) and its `Content-Length` body.
fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("the SDK sends Content-Length");
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}

/// The index in the batch's first text, `t<index> ...`.
fn first_index(body: &[u8]) -> usize {
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    let first = event["texts"][0].as_str().unwrap();
    first[1..].split(' ').next().unwrap().parse().unwrap()
}

/// Sends the request to `serve` on a fresh connection that closes after the answer.
fn forward(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream)?;
    let mut lines = head.trim_end().split("\r\n");
    let mut request = format!("{}\r\n", lines.next().unwrap_or_default());
    for line in lines {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("connection: close\r\n\r\n");
    server.write_all(request.as_bytes())?;
    server.write_all(body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    Ok(response)
}

fn texts() -> &'static [String] {
    static TEXTS_: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TEXTS_.get_or_init(make_texts)
}

fn make_texts() -> Vec<String> {
    const WORDS: [&str; 6] = [
        "loved it",
        "awful, never again",
        "fine I guess",
        "a wonderful surprise",
        "broken on arrival",
        "ok",
    ];
    (0..TEXTS)
        .map(|i| format!("t{i} {}", WORDS[i % WORDS.len()]))
        .collect()
}

/// The model's answers for [`texts`], computed once for the three tests.
fn expected() -> &'static [SentimentResult] {
    static EXPECTED: std::sync::OnceLock<Vec<SentimentResult>> = std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| {
        Classifier::load(
            "tests/fixtures/tiny-distilbert",
            &ClassifierOptions::default(),
        )
        .unwrap()
        .classify(texts())
        .unwrap()
    })
}

/// Runs `invoke --output jsonl` through the proxy: exit code, stderr, the JSONL lines.
fn invoke_through(proxy: &Proxy, file: &std::path::Path) -> (i32, String, Vec<serde_json::Value>) {
    let output = common::with_endpoint(&mut common::cli(), &proxy.endpoint)
        .args([
            "--output",
            "jsonl",
            "invoke",
            "--function",
            FUNCTION,
            "--concurrency",
            "8",
            "--file",
        ])
        .arg(file)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let lines = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        lines,
    )
}

/// Every text once, in order; answers equal to the model's; the failed indices returned.
fn check_lines(
    lines: &[serde_json::Value],
    texts: &[String],
    want: &[SentimentResult],
) -> Vec<usize> {
    assert_eq!(lines.len(), texts.len(), "every text exactly once");
    let mut failed = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i, "in input order: {line}");
        assert_eq!(line["text"], texts[i].as_str());
        if line.get("error").is_some() {
            failed.push(i);
        } else {
            assert_eq!(line["sentiment"], want[i].sentiment.as_str(), "{line}");
            let score = line["score"].as_f64().unwrap();
            assert!((score - want[i].score as f64).abs() < 1e-6, "{line}");
        }
    }
    failed
}

fn input_file(dir: &tempfile::TempDir, texts: &[String]) -> std::path::PathBuf {
    let file = dir.path().join("texts.txt");
    std::fs::write(&file, texts.join("\n") + "\n").unwrap();
    file
}

#[test]
fn transient_faults_are_retried_and_every_text_is_answered_once_in_order() {
    // Room for every invoke in flight: the only faults are the proxy's.
    let serve = Serve::start_with(&["--concurrency", "4", "--queue", "16"]);
    let proxy = Proxy::start(&serve.endpoint, transient);
    let texts = texts();
    let want = expected();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, lines) = invoke_through(&proxy, &input_file(&dir, texts));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        check_lines(&lines, texts, want).is_empty(),
        "nothing fails: {stderr}"
    );
    assert!(stderr.contains("10000 texts"), "{stderr}");
    // One faulty first attempt for every fifth batch, and a second attempt that passed.
    let attempts = proxy.attempts();
    let batches = TEXTS / BATCH;
    assert_eq!(attempts.len(), batches);
    for batch in 0..batches {
        let want_attempts = if batch % 5 == 2 { 2 } else { 1 };
        assert_eq!(attempts[&batch], want_attempts, "batch {batch}");
    }
    // The function ran once per batch, plus once for each answer the proxy threw away.
    let lost_answers = (0..batches)
        .filter(|&b| transient(b, 1) == Action::DropAfter)
        .count();
    assert!(lost_answers > 0);
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        batches + lost_answers
    );
}

#[test]
fn batches_that_keep_failing_are_reported_by_index_and_the_exit_code_says_so() {
    let serve = Serve::start_with(&["--concurrency", "4", "--queue", "16"]);
    let proxy = Proxy::start(&serve.endpoint, doomed);
    let texts = texts();
    let want = expected();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, lines) = invoke_through(&proxy, &input_file(&dir, texts));
    assert_eq!(code, 1, "{stderr}");
    let failed = check_lines(&lines, texts, want);
    // Every doomed batch failed; whatever else failed ran out of the retry budget, and failed
    // as a whole batch.
    for batch in DOOMED {
        assert!(failed.contains(&(batch * BATCH)), "batch {batch}: {stderr}");
    }
    for &i in &failed {
        let error = lines[i]["error"].as_str().unwrap();
        assert!(
            error.contains("injected") || error.contains("budget"),
            "{error}"
        );
        let batch = i / BATCH;
        assert!((batch * BATCH..(batch + 1) * BATCH).all(|j| failed.contains(&j)));
    }
    let failed_batches = failed.len() / BATCH;
    assert!(
        stderr.contains(&format!(
            "{failed_batches} batch(es) FAILED ({} texts)",
            failed.len()
        )),
        "{stderr}"
    );
    // A doomed batch is tried up to --max-attempts (4) times, while the budget lasts.
    for batch in DOOMED {
        assert!((2..=4).contains(&proxy.attempts()[&batch]), "batch {batch}");
    }
}

/// The library client over the same faults: results by position, failures by range.
#[test]
fn the_library_client_reports_failed_ranges_and_keeps_positions() {
    let serve = Serve::start_with(&["--concurrency", "4", "--queue", "16"]);
    let proxy = Proxy::start(&serve.endpoint, doomed);
    let texts = texts();
    let want = expected();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(async {
        let options = InvokerOptions {
            concurrency: 8,
            backoff: Duration::from_millis(20),
            ..InvokerOptions::default()
        };
        BatchInvoker::new(lambda_at(&proxy.endpoint), FUNCTION, options)
            .classify(texts, |_| {})
            .await
            .unwrap()
    });
    assert!(!outcome.is_complete());
    assert_eq!(outcome.invokes, TEXTS / BATCH);
    let failed: Vec<usize> = outcome
        .failures
        .iter()
        .flat_map(|f| f.start..f.end)
        .collect();
    for batch in DOOMED {
        assert!(outcome
            .failures
            .iter()
            .any(|f| f.start == batch * BATCH && f.end == (batch + 1) * BATCH));
    }
    for (i, result) in outcome.results.iter().enumerate() {
        match result {
            Some(r) => {
                assert!(!failed.contains(&i));
                assert_eq!(r.sentiment, want[i].sentiment, "text {i}");
            }
            None => assert!(failed.contains(&i), "text {i} neither answered nor failed"),
        }
    }
}
