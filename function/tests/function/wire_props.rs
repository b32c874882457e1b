//! Issue 16 (5c): any JSON value as an event gets an answer — 200 or 400 (405 for an HTTP
//! method other than POST) — never a panic or an invocation error, and a 200 carries one result
//! per text. Events are drawn from arbitrary JSON and from near-misses of the real shapes
//! (`{"texts": ...}` with odd items, function-URL and API Gateway events with odd bodies).

use crate::common::classifier;
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use ummatics_sentiment_function::handle;
use ummatics_sentiment_function::protocol::MAX_TEXTS_PER_REQUEST;

/// Any JSON value, a few levels deep, with keys that the handler looks at among random ones.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("texts".to_string()),
            Just("text".to_string()),
            Just("body".to_string()),
            Just("httpMethod".to_string()),
            Just("requestContext".to_string()),
            Just("isBase64Encoded".to_string()),
            Just("Records".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// How many items: often at the edges (none, one, around the 50 allowed).
fn sizes() -> impl Strategy<Value = usize> {
    let max = MAX_TEXTS_PER_REQUEST;
    prop_oneof![0..=2usize, max - 2..=max + 2, 0..=max + 3]
}

/// `"texts"` that are nearly right: lists of strings (unicode, empty, spaces) of every size
/// around the limits, lists with a non-string among them, and anything else.
fn texts_value() -> impl Strategy<Value = Value> {
    let strings = || {
        let text = prop_oneof![
            4 => any::<String>(),
            1 => "\\PC{0,400}",
            1 => Just(String::new()),
        ];
        sizes().prop_flat_map(move |n| prop::collection::vec(text.clone(), n))
    };
    let mixed =
        (strings(), any_json(), any::<prop::sample::Index>()).prop_map(|(texts, odd, at)| {
            let mut items: Vec<Value> = texts.into_iter().map(Value::String).collect();
            items.insert(at.index(items.len() + 1), odd);
            items
        });
    prop_oneof![
        6 => strings().prop_map(|t| Value::Array(t.into_iter().map(Value::String).collect())),
        2 => mixed.prop_map(Value::Array),
        1 => any_json(),
    ]
}

/// A direct invoke, a function-URL event or an API Gateway v1 event around `texts`, or any
/// JSON at all.
fn event() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        4 => Just("POST".to_string()),
        1 => Just("post".to_string()),
        1 => Just("GET".to_string()),
        1 => "[A-Z]{0,7}",
    ];
    let body = prop_oneof![
        texts_value().prop_map(|texts| json!({ "texts": texts }).to_string()),
        any_json().prop_map(|v| v.to_string()),
        any::<String>(),
    ];
    prop_oneof![
        3 => texts_value().prop_map(|texts| json!({ "texts": texts })),
        2 => (method.clone(), body.clone(), any::<bool>()).prop_map(|(method, body, b64)| {
            let body = if b64 {
                base64::engine::general_purpose::STANDARD.encode(body)
            } else {
                body
            };
            json!({"requestContext": {"http": {"method": method}}, "body": body,
                   "isBase64Encoded": b64})
        }),
        1 => (method, any_json()).prop_map(|(method, body)| {
            json!({"httpMethod": method, "body": body})
        }),
        2 => any_json(),
    ]
}

/// The texts a well-formed request carries, or `None` when it must be refused.
fn valid_texts(request: &Value) -> Option<usize> {
    let items = request.get("texts")?.as_array()?;
    let ok = !items.is_empty()
        && items.len() <= MAX_TEXTS_PER_REQUEST
        && items.iter().all(Value::is_string);
    ok.then_some(items.len())
}

/// Checks a wire body (`{"results", "count"}` or `{"error"}`) against the status.
fn check_body(status: u64, body: &Value, request: Option<&Value>) -> Result<(), TestCaseError> {
    let expected = request.and_then(valid_texts);
    match status {
        200 => {
            let count = body["count"].as_u64().expect("a 200 has a count");
            let results = body["results"].as_array().expect("a 200 has results");
            prop_assert_eq!(count as usize, results.len());
            prop_assert_eq!(Some(results.len()), expected, "{}", body);
            for r in results {
                let score = r["score"].as_f64().unwrap();
                prop_assert!((0.0..=1.0).contains(&score), "{}", r);
                prop_assert!(r["sentiment"].is_string());
            }
        }
        400 | 405 => {
            prop_assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{}",
                body
            );
            prop_assert_eq!(expected, None, "a valid request refused: {}", body);
        }
        other => prop_assert!(false, "status {} for {}", other, body),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_event_gets_a_200_or_a_400_and_a_200_counts_its_texts(event in event()) {
        let answer = serde_json::to_value(handle(classifier(), event.clone())).unwrap();
        let status = answer["statusCode"].as_u64().expect("a status code");
        let http = event.get("requestContext").and_then(|c| c.get("http")).is_some()
            || event.get("httpMethod").is_some_and(Value::is_string);
        if http && answer["body"].is_string() {
            // An HTTP answer: the body is the wire body as a JSON string.
            let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
            let method = event.pointer("/requestContext/http/method")
                .or_else(|| event.get("httpMethod"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let decoded = match (&event["body"], event["isBase64Encoded"].as_bool()) {
                (Value::String(b), Some(true)) => base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok()),
                (Value::String(b), _) => serde_json::from_str::<Value>(b).ok(),
                _ => None,
            };
            if !method.eq_ignore_ascii_case("POST") {
                prop_assert_eq!(status, 405, "{}", answer);
            }
            check_body(status, &body, decoded.as_ref().filter(|_| method.eq_ignore_ascii_case("POST")))?;
        } else {
            prop_assert_ne!(status, 405);
            let direct = event.get("texts").is_some() || !http;
            check_body(status, &answer["body"], direct.then_some(&event))?;
        }
    }
}
