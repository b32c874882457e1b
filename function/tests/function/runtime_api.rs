//! The real `bootstrap` binary driven through the Lambda Runtime API protocol by a test-side
//! Runtime API endpoint on 127.0.0.1.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// What the function sent back to the Runtime API.
#[derive(Debug)]
struct Posted {
    path: String,
    error_type: Option<String>,
    body: Value,
}

/// A minimal Runtime API: hands out `events` in order on `/invocation/next` (then keeps the
/// last poll waiting, as Lambda does between invokes) and reports every POST.
fn runtime_api(events: Vec<Vec<u8>>) -> (String, mpsc::Receiver<Posted>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = server
        .server_addr()
        .to_ip()
        .expect("ip address")
        .to_string();
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut events = events.into_iter().enumerate();
        let mut parked = Vec::new();
        for mut request in server.incoming_requests() {
            let url = request.url().to_string();
            if url == "/2018-06-01/runtime/invocation/next" {
                match events.next() {
                    Some((i, event)) => {
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 60_000;
                        let header =
                            |k: &str, v: String| tiny_http::Header::from_bytes(k, v).unwrap();
                        let response = tiny_http::Response::from_data(event)
                            .with_header(header("Lambda-Runtime-Aws-Request-Id", format!("request-{i}")))
                            .with_header(header("Lambda-Runtime-Deadline-Ms", deadline.to_string()))
                            .with_header(header(
                                "Lambda-Runtime-Invoked-Function-Arn",
                                "arn:aws:lambda:us-east-1:123456789012:function:ummatics-sentiment-analysis".into(),
                            ))
                            .with_header(header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".into()))
                            .with_header(header("Content-Type", "application/json".into()));
                        let _ = request.respond(response);
                    }
                    None => parked.push(request),
                }
                continue;
            }
            let mut body = String::new();
            let _ = request.as_reader().read_to_string(&mut body);
            let error_type = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Lambda-Runtime-Function-Error-Type"))
                .map(|h| h.value.to_string());
            let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
            let _ = request.respond(tiny_http::Response::empty(202));
            if sender
                .send(Posted {
                    path: url,
                    error_type,
                    body,
                })
                .is_err()
            {
                break;
            }
        }
    });
    (address, receiver)
}

fn bootstrap(api: &str, model_dir: &std::path::Path) -> Child {
    bootstrap_with(api, model_dir, &[])
}

fn bootstrap_with(api: &str, model_dir: &std::path::Path, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ummatics-sentiment-analysis")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("UMMATICS_MODEL_DIR", model_dir)
        .env("UMMATICS_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bootstrap")
}

fn receive(receiver: &mpsc::Receiver<Posted>, child: &mut Child) -> Posted {
    match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(posted) => posted,
        Err(_) => {
            let _ = child.kill();
            let output =
                std::mem::replace(child, Command::new("true").spawn().unwrap()).wait_with_output();
            panic!("bootstrap posted nothing within 60 s; its output: {output:?}");
        }
    }
}

#[test]
fn invocations_get_responses_and_errors() {
    let events = vec![
        serde_json::to_vec(&json!({"texts": ["I love this!", "This is terrible"]})).unwrap(),
        b"this is not JSON".to_vec(),
        serde_json::to_vec(&json!({"texts": []})).unwrap(),
        serde_json::to_vec(&json!({
            "version": "2.0",
            "requestContext": {"http": {"method": "POST"}},
            "body": "{\"texts\": [\"\"]}",
            "isBase64Encoded": false
        }))
        .unwrap(),
    ];
    let (api, receiver) = runtime_api(events);
    let mut child = bootstrap(&api, &common::fixture_model());

    // next → response: the exact wire contract.
    let first = receive(&receiver, &mut child);
    assert_eq!(
        first.path, "/2018-06-01/runtime/invocation/request-0/response",
        "{first:?}"
    );
    // Byte for byte what the in-process handler answers (scores as shortest f32).
    let expected = ummatics_sentiment_function::handle(
        common::classifier(),
        json!({"texts": ["I love this!", "This is terrible"]}),
    );
    let expected: Value = serde_json::from_str(&serde_json::to_string(&expected).unwrap()).unwrap();
    assert_eq!(first.body, expected);
    assert_eq!(first.body["statusCode"], 200);
    assert_eq!(first.body["body"]["count"], 2);

    // next → error: a payload that is not JSON is a function error, and the runtime goes on.
    let second = receive(&receiver, &mut child);
    assert_eq!(
        second.path, "/2018-06-01/runtime/invocation/request-1/error",
        "{second:?}"
    );
    // A stable, documented error type (not lambda_runtime's Rust type path) and a message
    // that says what the function expects.
    assert_eq!(second.body["errorType"], "InvalidEvent", "{second:?}");
    assert_eq!(
        second.body["errorMessage"],
        format!(
            "the event is not JSON (expected ident at line 1 column 2); {}",
            ummatics_sentiment_function::runtime::EXPECTED_EVENT
        ),
        "{second:?}"
    );

    // next → response: bad input is a 400 in the payload, not a function error.
    let third = receive(&receiver, &mut child);
    assert_eq!(
        third.path,
        "/2018-06-01/runtime/invocation/request-2/response"
    );
    assert_eq!(third.body["statusCode"], 400);
    assert!(third.body["body"]["error"]
        .as_str()
        .unwrap()
        .contains("\"texts\" is empty"));

    // next → response: a function-URL event is answered HTTP-style.
    let fourth = receive(&receiver, &mut child);
    assert_eq!(
        fourth.path,
        "/2018-06-01/runtime/invocation/request-3/response"
    );
    assert_eq!(fourth.body["statusCode"], 200);
    let body: Value = serde_json::from_str(fourth.body["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["count"], 1);

    // Still alive and polling for the next event.
    assert!(
        child.try_wait().unwrap().is_none(),
        "bootstrap exited early"
    );
    child.kill().unwrap();
    // Its INIT went out as an Embedded Metric Format line, for the dashboard's cost.
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let emf: Value = stdout
        .lines()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v.get("_aws").is_some())
        })
        .unwrap_or_else(|| panic!("no EMF line in: {stdout}"));
    assert_eq!(emf["FunctionName"], "ummatics-sentiment-analysis");
    assert!(emf["InitDuration"].as_f64().unwrap() > 0.0, "{emf}");
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
        "InitDuration"
    );
}

fn assert_init_error(model_dir: &std::path::Path, fragments: &[&str]) {
    let (api, receiver) = runtime_api(Vec::new());
    let mut child = bootstrap(&api, model_dir);
    let posted = receive(&receiver, &mut child);
    assert_eq!(posted.path, "/2018-06-01/runtime/init/error", "{posted:?}");
    assert_eq!(posted.error_type.as_deref(), Some("Runtime.ModelLoadError"));
    assert_eq!(posted.body["errorType"], "Runtime.ModelLoadError");
    let message = posted.body["errorMessage"].as_str().unwrap();
    for fragment in fragments {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "bootstrap must exit non-zero after an init error"
    );
}

#[test]
fn missing_model_directory_is_an_init_error() {
    assert_init_error(
        std::path::Path::new("/nonexistent/model"),
        &["/nonexistent/model does not exist"],
    );
}

#[test]
fn broken_model_file_is_an_init_error() {
    let dir = common::copy_fixture(&["config.json", "tokenizer.json"]);
    std::fs::write(dir.path().join("model.onnx"), b"definitely not protobuf").unwrap();
    assert_init_error(dir.path(), &["model.onnx", "cannot load the ONNX graph"]);
}

#[test]
fn missing_tokenizer_is_an_init_error() {
    let dir = common::copy_fixture(&["config.json", "model.onnx"]);
    assert_init_error(dir.path(), &["tokenizer.json (or vocab.txt) is missing"]);
}

/// The EMF lines of a finished bootstrap's stdout that carry the telemetry record.
fn telemetry_lines(child: Child) -> Vec<Value> {
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some() && v.get("Texts").is_some())
        .collect()
}

#[test]
fn each_invocation_prints_its_telemetry_as_emf() {
    // Positive, negative, longer than the window (512 tokens), and blank texts.
    let long = "good ".repeat(2000);
    let texts = json!(["I love this!", "This is terrible", long, "   ", ""]);
    let events = vec![
        serde_json::to_vec(&json!({ "texts": texts })).unwrap(),
        // A 400 classifies nothing: no record.
        serde_json::to_vec(&json!({"texts": []})).unwrap(),
        serde_json::to_vec(&json!({
            "version": "2.0",
            "requestContext": {"http": {"method": "POST"}},
            "body": "{\"texts\": [\"fine\"]}",
            "isBase64Encoded": false
        }))
        .unwrap(),
    ];
    let (api, receiver) = runtime_api(events);
    let mut child = bootstrap_with(
        &api,
        &common::fixture_model(),
        &[("UMMATICS_MODEL_NAME", "tiny-test-model")],
    );
    let first = receive(&receiver, &mut child);
    let _ = receive(&receiver, &mut child);
    let _ = receive(&receiver, &mut child);
    child.kill().unwrap();
    let records = telemetry_lines(child);
    assert_eq!(
        records.len(),
        2,
        "one record per classifying invocation: {records:#?}"
    );
    let emf = &records[0];

    // As EMF: the directive, one dimension set within CloudWatch's limits, every declared
    // metric present as a number.
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "ummatics-sentiment");
    assert!(emf["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    let dimension_sets = directive["Dimensions"].as_array().unwrap();
    assert_eq!(dimension_sets.len(), 1);
    let dimensions = dimension_sets[0].as_array().unwrap();
    assert!(dimensions.len() <= 30, "EMF allows 30 dimensions per set");
    for dimension in dimensions {
        let value = emf[dimension.as_str().unwrap()].as_str().unwrap();
        assert!(
            !value.is_empty() && value.len() <= 1024,
            "{dimension}: {value:?}"
        );
    }
    assert_eq!(emf["FunctionName"], "ummatics-sentiment-analysis");
    assert_eq!(emf["Model"], "tiny-test-model");
    let metrics = directive["Metrics"].as_array().unwrap();
    assert!(metrics.len() <= 100, "EMF allows 100 metrics per directive");
    for metric in metrics {
        let name = metric["Name"].as_str().unwrap();
        assert!(emf[name].is_number(), "{name} is not a number in {emf}");
        assert!(metric["Unit"].is_string());
    }
    // No text content in telemetry.
    let line = emf.to_string();
    for text in ["I love this", "terrible", "good good"] {
        assert!(!line.contains(text), "{text:?} leaked into {line}");
    }

    // Its counts are the response's.
    let results = first.body["body"]["results"].as_array().unwrap();
    let count = |label: &str| results.iter().filter(|r| r["sentiment"] == label).count();
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert_eq!(emf["Texts"], 5.0);
    assert_eq!(
        emf["Positive"].as_f64().unwrap() as usize,
        count("positive")
    );
    assert_eq!(
        emf["Negative"].as_f64().unwrap() as usize,
        count("negative")
    );
    assert_eq!(
        emf["LowConfidence"].as_f64().unwrap() as usize,
        scores.iter().filter(|s| **s < 0.6).count()
    );
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    assert!(
        (emf["MeanScore"].as_f64().unwrap() - mean).abs() < 1e-5,
        "{emf}"
    );
    assert_eq!(
        emf["TextsCut"], 1.0,
        "only the long text is cut at the window"
    );
    // The long text fills the 512-token window; the others are a few tokens each.
    let tokens = emf["Tokens"].as_f64().unwrap();
    assert!((512.0..600.0).contains(&tokens), "{tokens}");
    assert!(emf["ModelTime"].as_f64().unwrap() > 0.0);
    assert!(emf["TokenizeTime"].as_f64().unwrap() >= 0.0);
    // The function-URL call has its own record.
    assert_eq!(records[1]["Texts"], 1.0);
}

#[test]
fn telemetry_off_prints_no_record() {
    let events = vec![serde_json::to_vec(&json!({"texts": ["I love this!"]})).unwrap()];
    let (api, receiver) = runtime_api(events);
    let mut child = bootstrap_with(
        &api,
        &common::fixture_model(),
        &[("UMMATICS_TELEMETRY", "off")],
    );
    let posted = receive(&receiver, &mut child);
    assert_eq!(posted.body["statusCode"], 200);
    child.kill().unwrap();
    assert!(telemetry_lines(child).is_empty());
}

#[test]
fn a_telemetry_switch_that_is_neither_on_nor_off_is_an_init_error() {
    let (api, receiver) = runtime_api(Vec::new());
    let mut child = bootstrap_with(
        &api,
        &common::fixture_model(),
        &[("UMMATICS_TELEMETRY", "maybe")],
    );
    let posted = receive(&receiver, &mut child);
    assert_eq!(posted.path, "/2018-06-01/runtime/init/error", "{posted:?}");
    let message = posted.body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("UMMATICS_TELEMETRY=\"maybe\" is neither on nor off"),
        "{message}"
    );
    assert!(!child.wait().unwrap().success());
}
