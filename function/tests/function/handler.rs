//! The wire contract and every kind of bad input, through the real handler and model.

use crate::common;

use crate::common::classifier;
use base64::Engine;
use serde_json::{json, Value};
use ummatics_sentiment_function::handle;
use ummatics_sentiment_function::protocol::{MAX_TEXTS_PER_REQUEST, MAX_TEXT_BYTES};

fn direct(event: Value) -> Value {
    serde_json::to_value(handle(classifier(), event)).unwrap()
}

/// Asserts a direct-invoke 400 whose message contains every fragment.
fn assert_bad(event: Value, fragments: &[&str]) {
    let answer = direct(event.clone());
    assert_eq!(answer["statusCode"], 400, "{event} → {answer}");
    let error = answer["body"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {answer}"));
    for fragment in fragments {
        assert!(
            error.contains(fragment),
            "{event}: {error:?} lacks {fragment:?}"
        );
    }
    assert_eq!(
        answer["body"].as_object().unwrap().len(),
        1,
        "only an error: {answer}"
    );
}

fn url_event(method: &str, body: Option<&str>, base64: bool) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": "/"}},
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// Runs an HTTP event; returns (status, parsed body) after checking the HTTP shape.
fn http(event: Value) -> (u64, Value) {
    let answer = direct(event);
    assert_eq!(
        answer["headers"]["content-type"], "application/json",
        "{answer}"
    );
    assert_eq!(answer["isBase64Encoded"], false);
    let body = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("body is not a string: {answer}"));
    (
        answer["statusCode"].as_u64().unwrap(),
        serde_json::from_str(body).unwrap(),
    )
}

#[test]
fn direct_invoke_returns_the_exact_wire_shape() {
    let answer = direct(json!({"texts": ["I love this!", "This is terrible"]}));
    let reference = common::reference();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(
        answer.as_object().unwrap().len(),
        2,
        "only statusCode and body: {answer}"
    );
    assert_eq!(answer["body"]["count"], 2);
    let results = answer["body"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (result, case) in results.iter().zip(&reference.cases[..2]) {
        assert_eq!(
            result.as_object().unwrap().len(),
            2,
            "only sentiment and score: {result}"
        );
        assert_eq!(result["sentiment"], case.label.as_str());
        let score = result["score"].as_f64().unwrap();
        let expected = case.probabilities.iter().cloned().fold(0.0, f64::max);
        assert!((score - expected).abs() < 1e-4, "{score} vs {expected}");
    }
}

#[test]
fn empty_and_whitespace_texts_get_results() {
    let answer = direct(json!({"texts": ["", " ", "\n\t"]}));
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["body"]["count"], 3);
}

#[test]
fn missing_texts() {
    assert_bad(
        json!({}),
        &[
            "no \"texts\" field",
            "the object is empty",
            r#"{"texts": ["#,
        ],
    );
    assert_bad(
        json!({"text": "hello"}),
        &[
            "no \"texts\" field",
            "found \"text\"",
            "a single text goes in a list",
        ],
    );
}

#[test]
fn texts_not_a_list() {
    assert_bad(
        json!({"texts": "hello"}),
        &[
            "must be a list of strings, got a string",
            "wrap it in a list",
        ],
    );
    assert_bad(
        json!({"texts": 3}),
        &["must be a list of strings, got a number"],
    );
    assert_bad(json!({"texts": {"a": "b"}}), &["got an object"]);
}

#[test]
fn texts_null() {
    assert_bad(
        json!({"texts": null}),
        &["must be a list of strings, got null"],
    );
}

#[test]
fn non_string_items() {
    assert_bad(
        json!({"texts": ["ok", 5]}),
        &["texts[1] is a number", "must be a string"],
    );
    assert_bad(json!({"texts": [null]}), &["texts[0] is null"]);
    assert_bad(
        json!({"texts": ["a", "b", ["nested"]]}),
        &["texts[2] is a list"],
    );
    assert_bad(
        json!({"texts": [{"text": "x"}]}),
        &["texts[0] is an object"],
    );
    assert_bad(json!({"texts": [true]}), &["texts[0] is a boolean"]);
}

#[test]
fn empty_list() {
    assert_bad(
        json!({"texts": []}),
        &["\"texts\" is empty", "at least one text"],
    );
}

#[test]
fn over_the_limits() {
    let texts = vec!["x"; MAX_TEXTS_PER_REQUEST + 1];
    assert_bad(
        json!({ "texts": texts }),
        &[
            "has 51 items",
            "more than the 50 allowed",
            "split them into batches",
        ],
    );
    let huge = "a ".repeat(MAX_TEXT_BYTES / 2 + 1);
    assert_bad(
        json!({ "texts": ["fine", huge] }),
        &[
            "texts[1] is 1048578 bytes",
            "1048576 bytes allowed per text",
        ],
    );
}

#[test]
fn not_an_object_is_refused() {
    assert_bad(
        json!(["I love this!"]),
        &["must be a JSON object, got a list"],
    );
    assert_bad(
        json!("I love this!"),
        &["must be a JSON object, got a string"],
    );
    assert_bad(Value::Null, &["must be a JSON object, got null"]);
    assert_bad(json!(42), &["got a number"]);
}

#[test]
fn unknown_event_shapes() {
    assert_bad(
        json!({"Records": [{"eventSource": "aws:s3"}]}),
        &["does not handle \"Records\" events"],
    );
    assert_bad(
        json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        &["EventBridge"],
    );
    assert_bad(
        json!({"requestContext": {"stage": "x"}, "body": "{}"}),
        &["HTTP event has no method"],
    );
}

#[test]
fn function_url_event_gets_an_http_answer() {
    let (status, body) = http(url_event(
        "POST",
        Some(r#"{"texts": ["I love this!", ""]}"#),
        false,
    ));
    assert_eq!(status, 200);
    assert_eq!(body["count"], 2);
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
}

#[test]
fn base64_body_is_decoded() {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(r#"{"texts": ["This is terrible"]}"#);
    let (status, body) = http(url_event("POST", Some(&encoded), true));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1);
}

#[test]
fn api_gateway_v1_event_is_understood() {
    let event = json!({"httpMethod": "POST", "path": "/", "body": r#"{"texts": ["ok"]}"#, "isBase64Encoded": false});
    let (status, body) = http(event);
    assert_eq!(status, 200, "{body}");
}

fn assert_http_bad(event: Value, status: u64, fragment: &str) {
    let (got, body) = http(event);
    assert_eq!(got, status, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains(fragment), "{error:?} lacks {fragment:?}");
}

#[test]
fn url_invalid_json() {
    assert_http_bad(
        url_event("POST", Some("{texts: [oops"), false),
        400,
        "not valid JSON",
    );
}

#[test]
fn url_invalid_base64() {
    assert_http_bad(
        url_event("POST", Some("%%%not base64%%%"), true),
        400,
        "not valid base64",
    );
}

#[test]
fn url_invalid_utf8() {
    let encoded = base64::engine::general_purpose::STANDARD.encode(b"{\"texts\": [\"\xff\xfe\"]}");
    assert_http_bad(
        url_event("POST", Some(&encoded), true),
        400,
        "not valid UTF-8 (invalid byte at offset 12)",
    );
}

#[test]
fn url_empty_body_and_wrong_method() {
    assert_http_bad(url_event("POST", None, false), 400, "body is empty");
    assert_http_bad(url_event("POST", Some(""), false), 400, "body is empty");
    assert_http_bad(
        url_event("GET", None, false),
        405,
        "method GET is not allowed",
    );
}

#[test]
fn url_validation_errors_are_the_same_as_direct_ones() {
    assert_http_bad(
        url_event("POST", Some(r#"{"texts": []}"#), false),
        400,
        "\"texts\" is empty",
    );
    assert_http_bad(
        url_event("POST", Some(r#"{"texts": [1]}"#), false),
        400,
        "texts[0] is a number",
    );
}

#[test]
fn url_body_of_the_wrong_type() {
    let mut event = url_event("POST", None, false);
    event["body"] = json!({"texts": ["x"]});
    assert_http_bad(event, 400, "\"body\" is an object, expected a string");
}

#[test]
fn adversarial_texts_get_results_not_panics() {
    let max = MAX_TEXT_BYTES;
    let texts = vec![
        "a".repeat(max),                                    // one 1 MiB "word"
        "😀".repeat(max / 4),                               // 1 MiB of emoji
        "no spaces".repeat(max / 9 / 8),                    // long run-on text
        "\u{0301}".repeat(10_000),                          // combining marks with no base
        "\u{202e}reversed\u{202c} \u{200d}\u{feff}".into(), // bidi and zero-width controls
        "\0\0\0".into(),
        "[CLS] [SEP] [PAD] [MASK]".repeat(200),
        "\u{10ffff}\u{e000}".into(), // private-use, last code point
    ];
    let started = std::time::Instant::now();
    let answer = direct(json!({ "texts": texts }));
    assert_eq!(
        answer["statusCode"],
        200,
        "{}",
        &answer.to_string()[..200.min(answer.to_string().len())]
    );
    assert_eq!(answer["body"]["count"], texts.len());
    for result in answer["body"]["results"].as_array().unwrap() {
        let score = result["score"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&score), "{result}");
    }
    eprintln!("adversarial batch: {:?}", started.elapsed());
}

#[test]
fn every_example_event_gets_sentiment() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let answer = direct(event);
        assert_eq!(answer["statusCode"], 200, "{}: {answer}", path.display());
        let body = match &answer["body"] {
            Value::String(text) => serde_json::from_str(text).unwrap(),
            other => other.clone(),
        };
        assert_eq!(body["count"], 2, "{}: {answer}", path.display());
        seen += 1;
    }
    assert_eq!(seen, 4, "example events in {}", dir.display());
}
