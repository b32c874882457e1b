//! `serve` speaks the Lambda Invoke API: the real aws-sdk-lambda client (through our batching
//! client) and raw HTTP against a running `serve`, and `invoke` (remote mode) through it.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ummatics_sentiment::client::{BatchInvoker, InvokerOptions};
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

const MODEL: &str = "tests/fixtures/tiny-distilbert";
pub(crate) const FUNCTION: &str = "serve-test";

/// A running `serve` on a free port; stopped (SIGINT) on drop, its stderr kept.
pub(crate) struct Serve {
    pub(crate) child: Option<Child>,
    pub(crate) endpoint: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    pub(crate) fn start() -> Serve {
        Serve::start_with(&[])
    }

    /// `serve` with these extra arguments.
    pub(crate) fn start_with(extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("ummatics-sentiment"))
            .args([
                "serve",
                "--port",
                "0",
                "--model",
                MODEL,
                "--function",
                FUNCTION,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("http://127.0.0.1:"),
            "serve printed {line:?}"
        );
        Serve {
            child: Some(child),
            endpoint: line.trim().to_string(),
            log,
            _dir: dir,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Invocations served, with the number of texts each carried.
    fn invocations(&self) -> Vec<usize> {
        self.log()
            .lines()
            .filter(|l| l.starts_with("invoke #"))
            .map(|l| {
                l.split(": ")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    fn lambda(&self) -> aws_sdk_lambda::Client {
        lambda_at(&self.endpoint)
    }

    /// Ctrl-C: drains and exits 0.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }
}

/// An SDK Lambda client for `endpoint` (a `serve`, or something in front of it).
pub(crate) fn lambda_at(endpoint: &str) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn local(texts: &[String]) -> Vec<ummatics_sentiment_function::protocol::SentimentResult> {
    Classifier::load(MODEL, &ClassifierOptions::default())
        .unwrap()
        .classify(texts)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_client_batches_1234_texts_into_25_invokes_in_order() {
    let serve = Serve::start();
    let words = [
        "great", "awful", "fine", "boring", "lovely", "terrible", "ok",
    ];
    let texts: Vec<String> = (0..1234)
        .map(|i| format!("{} movie number {i}, {}", words[i % 7], words[(i / 7) % 7]))
        .collect();
    let invoker = BatchInvoker::new(serve.lambda(), FUNCTION, InvokerOptions::default());
    let outcome = invoker.classify(&texts, |_| {}).await.unwrap();
    assert!(outcome.is_complete(), "{:?}", outcome.failures);
    assert_eq!(outcome.invokes, 25);
    let served = serve.invocations();
    assert_eq!(served.len(), 25, "{}", serve.log());
    assert_eq!(served.iter().sum::<usize>(), 1234);
    assert!(served.iter().all(|&n| n <= 50));
    let expected = local(&texts);
    let got: Vec<_> = outcome.results.into_iter().map(Option::unwrap).collect();
    assert_eq!(got, expected, "results are not in input order");
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_size_not_count_splits_big_texts() {
    let serve = Serve::start();
    // 20 texts of ~700 KB: 8 fit under 6 MB, so 3 invokes although 20 < 50.
    let texts: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "{i} {}",
                if i % 2 == 0 { "good " } else { "awful" }.repeat(140_000)
            )
        })
        .collect();
    let invoker = BatchInvoker::new(serve.lambda(), FUNCTION, InvokerOptions::default());
    let outcome = invoker.classify(&texts, |_| {}).await.unwrap();
    assert!(outcome.is_complete(), "{:?}", outcome.failures);
    assert_eq!(outcome.invokes, 3);
    let mut served = serve.invocations();
    served.sort();
    assert_eq!(served, vec![4, 8, 8]);
    assert!(outcome.results.iter().all(Option::is_some));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_over_the_limit_is_refused_by_the_library_before_anything_is_sent() {
    let serve = Serve::start();
    let mut texts: Vec<String> = (0..120).map(|i| format!("text {i} is nice")).collect();
    // The function refuses texts over 1 MiB, which would sink the whole batch 50..100: the
    // client applies the same limit first and names the text.
    texts[60] = "a ".repeat(600_000);
    let invoker = BatchInvoker::new(serve.lambda(), FUNCTION, InvokerOptions::default());
    let error = invoker
        .classify(&texts, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("text 60 is 1200000 bytes, more than the 1048576 bytes"),
        "{error}"
    );
    assert_eq!(
        serve.invocations(),
        Vec::<usize>::new(),
        "something was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_answered_as_lambda_answers_them() {
    let mut serve = Serve::start();
    let http = reqwest::Client::new();
    let url = format!(
        "{}/2015-03-31/functions/{FUNCTION}/invocations",
        serve.endpoint
    );

    let r = http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "InvalidRequestContentException"
    );

    let r = http
        .post(format!(
            "{}/2015-03-31/functions/other/invocations",
            serve.endpoint
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");

    let r = http
        .get(format!("{}/2015-03-31/functions", serve.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-amzn-errortype"], "UnknownOperationException");

    let huge = format!(r#"{{"texts": ["{}"]}}"#, "x".repeat(6_300_000));
    let r = http.post(&url).body(huge).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "RequestEntityTooLargeException"
    );

    // Bad events are the function's 400, inside a 200 Invoke answer (as on Lambda).
    let r = http
        .post(&url)
        .body(r#"{"texts": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["statusCode"], 400);

    // Log tail: a REPORT line with the billed duration, base64 like Lambda's.
    let r = http
        .post(&url)
        .header("X-Amz-Log-Type", "Tail")
        .body(r#"{"texts": ["I love this!"]}"#)
        .send()
        .await
        .unwrap();
    let tail = r.headers()["x-amz-log-result"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(ummatics_sentiment::client::billed_ms_from_log_tail(&tail).is_some());
    // …and the serving process's peak memory, as Lambda reports Max Memory Used.
    let report = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &tail).unwrap(),
    )
    .unwrap();
    let used: u64 = report
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Max Memory Used in {report:?}"));
    assert!(used > 0, "{report}");

    // The function-URL shape on POST /.
    let r = http
        .post(format!("{}/", serve.endpoint))
        .body(r#"{"texts": ["I love this!", "This is terrible"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["count"], 2);
    let r = http
        .get(format!("{}/", serve.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    let status = serve.interrupt();
    assert!(status.success(), "Ctrl-C should exit 0: {status:?}");
    assert!(serve.log().contains("shutting down"));
}

#[test]
fn invoke_command_goes_through_serve() {
    let serve = Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("texts.jsonl");
    let texts: Vec<String> = (0..120).map(|i| format!("review {i}: loved it")).collect();
    std::fs::write(
        &file,
        texts
            .iter()
            .map(|t| serde_json::json!({ "text": t, "id": 7 }).to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let output = common::with_endpoint(&mut common::cli(), &serve.endpoint)
        .args([
            "--output",
            "jsonl",
            "invoke",
            "--function",
            FUNCTION,
            "--log",
            "--file",
        ])
        .arg(&file)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("120 texts, 3 invoke(s)"), "{stderr}");
    assert!(stderr.contains("billed"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 120);
    let expected = local(&texts);
    for (i, (line, want)) in lines.iter().zip(&expected).enumerate() {
        assert_eq!(line["index"], i);
        assert_eq!(line["sentiment"], want.sentiment.as_str());
    }
}

/// A function that does not exist: one error that says what to do, no table of FAILED rows,
/// for batches and for `--payload` alike.
#[test]
fn invoking_a_function_that_does_not_exist_says_what_to_do() {
    let serve = Serve::start();
    let expected = "error: no function nope in us-east-1: deploy it (`ummatics-sentiment deploy`) \
                    or pass --function / --stage / --region\n";
    for extra in [
        &["I love this!", "This is terrible"][..],
        &["--payload", r#"{"texts": ["I love this!"]}"#][..],
    ] {
        let output = common::with_endpoint(&mut common::cli(), &serve.endpoint)
            .args(["--region", "us-east-1", "invoke", "--function", "nope"])
            .args(extra)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&output.stderr), expected);
        assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    }
}

/// `--payload` exits 1 when the function answers with an error (a body with no `statusCode`,
/// which used to pass as success) or with a `statusCode` of 400 or more.
#[test]
fn payload_exit_code_follows_the_function() {
    let serve = Serve::start();
    let run = |payload: &str| {
        common::with_endpoint(&mut common::cli(), &serve.endpoint)
            .args(["invoke", "--function", FUNCTION, "--payload", payload])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    };
    let ok = run(r#"{"texts": ["I love this!"]}"#);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let bad = run(r#"{"texts": []}"#);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stdout).contains("\"statusCode\":400"));
}

/// The old backend's boto3 call works unchanged against `serve` (boto3 comes with moto).
#[test]
fn boto3_backend_example_works_against_serve() {
    let serve = Serve::start();
    let out = Command::new("python3")
        .args([
            "examples/python_backend.py",
            "I love this!",
            "This is terrible",
        ])
        .env("AWS_ENDPOINT_URL", &serve.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("SENTIMENT_LAMBDA_FUNCTION", FUNCTION)
        .output()
        .unwrap();
    assert_scored_lines(&out, &["I love this!", "This is terrible"], false);
    assert_eq!(serve.invocations(), vec![2]);
}

/// A backend example's run: it succeeded and printed one line per text, starting with the
/// label the model gives (and, with `scores`, its score to three places).
fn assert_scored_lines(out: &std::process::Output, texts: &[&str], scores: bool) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), texts.len(), "{stdout}");
    for (line, want) in lines.iter().zip(local(&texts)) {
        assert!(line.starts_with(&want.sentiment), "{line} vs {want:?}");
        if scores {
            assert!(
                line.contains(&format!("{:.3}", want.score)),
                "{line} vs {want:?}"
            );
        }
    }
}

/// The Rust backend example, built from the client crate alone, scores through `serve`; with
/// the function unreachable it names the texts it could not score and exits non-zero.
#[test]
fn rust_backend_example_works_against_serve_and_reports_what_failed() {
    // cargo test builds every package's examples beside the test binaries.
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/backend_client");
    assert!(
        example.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        example.display()
    );
    let serve = Serve::start();
    let run = |endpoint: &str| {
        Command::new(&example)
            .args(["I love this!", "This is terrible"])
            .env("UMMATICS_FUNCTION", FUNCTION)
            .env_remove("UMMATICS_FALLBACK_MODEL")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let out = run(&serve.endpoint);
    assert_scored_lines(&out, &["I love this!", "This is terrible"], true);
    assert_eq!(serve.invocations(), vec![2]);

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let out = run(&url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("texts 0..2 not scored") && stderr.contains("2 of 2 text(s) not scored"),
        "{stderr}"
    );
}

/// What a backend links: the client crate's dependency tree holds the protocol and the Lambda
/// SDK, none of the CLI's or the model's crates.
#[test]
fn the_client_crate_links_none_of_the_cli() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "ummatics-sentiment-client",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for needed in ["ummatics-sentiment-protocol", "aws-sdk-lambda"] {
        assert!(crates.contains(needed), "{needed} missing: {crates:?}");
    }
    for banned in [
        "clap",
        "bollard",
        "tract-onnx",
        "tract-core",
        "axum",
        "hf-hub",
        "indicatif",
        "tokenizers",
        "ummatics-sentiment",
        "ummatics-sentiment-function",
    ] {
        assert!(!crates.contains(banned), "the client links {banned}");
    }
}

/// The old backend's switch: `USE_LAMBDA_SENTIMENT=false` sends the same call to the local
/// model behind `serve` (no AWS settings at all); with nothing listening, or a value that is
/// neither true nor false, it says what to do.
#[test]
fn python_backend_uses_the_local_model_when_lambda_is_off() {
    let serve = Serve::start();
    let run = |use_lambda: &str, url: &str| {
        Command::new("python3")
            .args(["examples/python_backend.py", "I love this!"])
            .env_remove("AWS_ENDPOINT_URL")
            .env("USE_LAMBDA_SENTIMENT", use_lambda)
            .env("SENTIMENT_LOCAL_URL", url)
            .env("SENTIMENT_LAMBDA_FUNCTION", FUNCTION)
            .output()
            .unwrap()
    };
    let out = run("false", &serve.endpoint);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = local(&["I love this!".to_string()]);
    assert!(stdout.starts_with(&want[0].sentiment), "{stdout}");
    assert_eq!(serve.invocations(), vec![1]);

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let out = run("no", &url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no local model answers at"), "{stderr}");
    assert!(stderr.contains("ummatics-sentiment serve"), "{stderr}");

    let out = run("maybe", &serve.endpoint);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("USE_LAMBDA_SENTIMENT='maybe' is neither true nor false"),
        "{stderr}"
    );
}

/// `SENTIMENT_LAMBDA_FUNCTION`, the old backend's setting, names the function for `invoke`
/// when `--function` is not given; the flag still wins.
#[test]
fn the_old_backends_function_variable_is_honoured() {
    let serve = Serve::start();
    let output = common::with_endpoint(&mut common::cli(), &serve.endpoint)
        .env("SENTIMENT_LAMBDA_FUNCTION", FUNCTION)
        .args(["invoke", "I love this!"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(serve.invocations(), vec![1]);
    let output = common::with_endpoint(&mut common::cli(), &serve.endpoint)
        .env("SENTIMENT_LAMBDA_FUNCTION", FUNCTION)
        .args(["invoke", "--function", "other", "I love this!"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no function other"));
}

/// `eval --function` scores the deployed function the way `eval` scores a local model: the
/// same texts through `serve` must give the same report.
#[test]
fn eval_through_the_function_matches_local_eval() {
    let serve = Serve::start();
    let data = "tests/fixtures/sst2-dev.tsv";
    let remote = common::json_of(
        common::with_endpoint(&mut common::cli(), &serve.endpoint).args([
            "--output",
            "json",
            "eval",
            "--function",
            FUNCTION,
            "--data",
            data,
        ]),
    );
    let local = common::json_of(
        common::cli().args(["--output", "json", "eval", "--model", MODEL, "--data", data]),
    );
    assert_eq!(remote["examples"], 872);
    assert_eq!(remote["correct"], local["correct"]);
    assert_eq!(remote["confusion"], local["confusion"]);
    assert_eq!(serve.invocations().len(), 18); // 872 texts in batches of 50
}

/// `serve` works offline with no AWS credentials at all: against a loopback endpoint the CLI
/// signs with placeholders. Elsewhere missing credentials fail at once, never retried.
#[test]
fn no_credentials_work_against_serve_and_fail_once_elsewhere() {
    let serve = Serve::start();
    let home = tempfile::tempdir().unwrap();
    let bare = |command: &mut assert_cmd::Command| {
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_REGION", "us-east-1")
            .env("UMMATICS_AWS_MAX_ATTEMPTS", "4");
    };
    let mut command = common::cli();
    bare(&mut command);
    let output = command
        .args(["--endpoint-url", &serve.endpoint])
        .args([
            "--output",
            "jsonl",
            "invoke",
            "--function",
            FUNCTION,
            "loved it",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"sentiment\""));

    // Not loopback (a documentation address, never reached): the credential chain fails first,
    // and that is said once.
    let mut command = common::cli();
    bare(&mut command);
    let output = command
        .args(["--endpoint-url", "http://192.0.2.1:9"])
        .args(["invoke", "--function", FUNCTION, "loved it"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("no usable AWS credentials"), "{said}");
    assert!(said.contains("after 1 attempt(s)"), "{said}");
}

/// `serve --telemetry FILE` and `invoke --local --telemetry -` write the deployed function's
/// EMF record for each call, with the same figures for the same texts; no text leaves in it.
#[tokio::test(flavor = "multi_thread")]
async fn serve_and_local_invoke_write_the_same_telemetry_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.jsonl");
    let serve = Serve::start_with(&["--telemetry", file.to_str().unwrap()]);
    let texts = ["I love this!", "This is terrible", "   "];
    let payload = serde_json::json!({ "texts": texts }).to_string();
    let out = serve
        .lambda()
        .invoke()
        .function_name(FUNCTION)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .unwrap();
    assert!(out.function_error().is_none());
    // A refused request classifies nothing: no record.
    serve
        .lambda()
        .invoke()
        .function_name(FUNCTION)
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"texts": []}"#))
        .send()
        .await
        .unwrap();
    let served: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(served.len(), 1, "{served:?}");

    let local = common::cli()
        .args([
            "invoke",
            "--local",
            "--model",
            MODEL,
            "--function",
            FUNCTION,
        ])
        .args(["--telemetry", "-"])
        .args(texts)
        .output()
        .unwrap();
    assert!(local.status.success());
    let stderr = String::from_utf8_lossy(&local.stderr);
    let local: serde_json::Value = stderr
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no record on stderr: {stderr}"));
    let record = &served[0];
    assert_eq!(record["FunctionName"], FUNCTION);
    assert_eq!(record["Model"], local["Model"]);
    assert_eq!(
        record["_aws"]["CloudWatchMetrics"],
        local["_aws"]["CloudWatchMetrics"]
    );
    for metric in [
        "Texts",
        "Tokens",
        "TextsCut",
        "Positive",
        "Negative",
        "LowConfidence",
        "MeanScore",
    ] {
        assert_eq!(record[metric], local[metric], "{metric}");
    }
    assert_eq!(record["Texts"], 3.0);
    assert!(!record.to_string().contains("love"));

    // Without --local there is no local record to write.
    let refused = common::cli()
        .args(["invoke", "--telemetry", "-", "x"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--local"));

    // A file that cannot be written: refused, said, before the model is loaded.
    for command in [
        &["serve", "--port", "0"][..],
        &["invoke", "--local", "x"][..],
    ] {
        let out = common::cli()
            .args(command)
            .args(["--model", MODEL, "--telemetry", "/nonexistent/dir/t.jsonl"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("--telemetry /nonexistent/dir/t.jsonl: cannot open it for writing"),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
