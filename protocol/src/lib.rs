//! The wire contract shared by the function and every client.
//!
//! Request: `{"texts": ["I love this!", "This is terrible"]}`.
//! Response: `{"statusCode": 200, "body": {"results": [{"sentiment": "positive", "score": 0.98}, …], "count": 2}}`,
//! or `{"statusCode": 400, "body": {"error": "<what was wrong and how to fix it>"}}`.
//!
//! This is the exact shape the replaced Python function produced; existing backends parse it,
//! so field names and nesting must not drift.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// At most this many texts in one request. The client batches at 50, as the old backend did;
/// 50 texts of full 512-token length stay well inside the 60 s function timeout.
pub const MAX_TEXTS_PER_REQUEST: usize = 50;

/// At most this many bytes (UTF-8) in one text, before truncation to the model window.
/// Tokenising is linear in the text length, so this bounds the work a single text can cause.
/// It is far above what a 512-token window can use (~3 KB of English) and leaves room for
/// callers that send whole documents.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Why a text is over [`MAX_TEXT_BYTES`] (`None` when it is not), to follow the text's name:
/// "texts[3] is 1200000 bytes, more than the 1048576 bytes allowed per text". One wording for
/// the function, the CLI and the client.
pub fn oversize(text: &str) -> Option<String> {
    (text.len() > MAX_TEXT_BYTES).then(|| {
        format!(
            "is {} bytes, more than the {MAX_TEXT_BYTES} bytes allowed per text",
            text.len()
        )
    })
}

/// Lambda's synchronous invoke payload limit (request and response), in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// A direct-invoke request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub texts: Vec<String>,
}

/// The label and probability for one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentResult {
    /// The model's `id2label` entry, lower-cased (`negative` / `positive` for SST-2).
    pub sentiment: String,
    /// Softmax probability of that label.
    pub score: f32,
}

/// The body of a successful response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsBody {
    pub results: Vec<SentimentResult>,
    pub count: usize,
}

/// The body of a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Either body; untagged so it serialises exactly as the contract says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Body {
    Results(ResultsBody),
    Error(ErrorBody),
}

/// The response of a direct invoke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub body: Body,
}

impl Response {
    pub fn ok(results: Vec<SentimentResult>) -> Self {
        let count = results.len();
        Response {
            status_code: 200,
            body: Body::Results(ResultsBody { results, count }),
        }
    }

    pub fn error(status_code: u16, message: impl Into<String>) -> Self {
        Response {
            status_code,
            body: Body::Error(ErrorBody {
                error: message.into(),
            }),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::error(400, message)
    }

    /// The results of a 200 response; the status and error message of anything else (a 200
    /// with an error body, or results under another status, counts as an error too).
    pub fn into_results(self) -> Result<Vec<SentimentResult>, (u16, String)> {
        match (self.status_code, self.body) {
            (200, Body::Results(body)) => Ok(body.results),
            (status, Body::Error(body)) => Err((status, body.error)),
            (status, Body::Results(_)) => Err((status, "results under a non-200 status".into())),
        }
    }
}

/// Why a request was refused. The message says what was wrong and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

const EXPECTED: &str = r#"send {"texts": ["first text", "second text"]}"#;

/// Describes the JSON type of a value, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Request {
    /// Validates a decoded JSON value against the contract and the limits.
    ///
    /// Every text is kept: empty and whitespace-only strings are valid and get a result.
    pub fn from_value(value: &Value) -> Result<Request, RequestError> {
        let object = match value {
            Value::Object(object) => object,
            other => {
                return Err(RequestError(format!(
                    "the request must be a JSON object, got {}; {EXPECTED}",
                    json_type(other)
                )))
            }
        };
        let texts = match object.get("texts") {
            Some(texts) => texts,
            None => {
                let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
                keys.sort_unstable();
                let found = if keys.is_empty() {
                    "the object is empty".to_string()
                } else {
                    format!(
                        "found {}",
                        keys.iter()
                            .map(|k| format!("\"{k}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let hint = if object.contains_key("text") {
                    r#" (a single text goes in a list: {"texts": ["…"]})"#
                } else {
                    ""
                };
                return Err(RequestError(format!(
                    "the request has no \"texts\" field ({found}){hint}; {EXPECTED}"
                )));
            }
        };
        let items = match texts {
            Value::Array(items) => items,
            Value::String(_) => {
                return Err(RequestError(format!(
                "\"texts\" must be a list of strings, got a string; wrap it in a list: {EXPECTED}"
            )))
            }
            other => {
                return Err(RequestError(format!(
                    "\"texts\" must be a list of strings, got {}; {EXPECTED}",
                    json_type(other)
                )))
            }
        };
        if items.is_empty() {
            return Err(RequestError(format!(
                "\"texts\" is empty; send at least one text: {EXPECTED}"
            )));
        }
        if items.len() > MAX_TEXTS_PER_REQUEST {
            return Err(RequestError(format!(
                "\"texts\" has {} items, more than the {MAX_TEXTS_PER_REQUEST} allowed per request; \
                 split them into batches of at most {MAX_TEXTS_PER_REQUEST} (`ummatics-sentiment invoke` does this for you)",
                items.len()
            )));
        }
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(text) if text.len() > MAX_TEXT_BYTES => {
                    return Err(RequestError(format!(
                        "texts[{index}] {}; shorten it (the model reads only its first 512 tokens anyway)",
                        oversize(text).unwrap_or_default()
                    )))
                }
                Value::String(text) => out.push(text.clone()),
                other => {
                    return Err(RequestError(format!(
                        "texts[{index}] is {}, but every item of \"texts\" must be a string",
                        json_type(other)
                    )))
                }
            }
        }
        Ok(Request { texts: out })
    }

    /// Parses and validates raw JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Request, RequestError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            RequestError(format!("the request is not valid JSON ({e}); {EXPECTED}"))
        })?;
        Self::from_value(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn responses_read_back_into_results_or_errors() {
        let wire = r#"{"statusCode":200,"body":{"results":[{"sentiment":"positive","score":0.98}],"count":1}}"#;
        let results = serde_json::from_str::<Response>(wire)
            .unwrap()
            .into_results()
            .unwrap();
        assert_eq!(results[0].sentiment, "positive");
        let wire = r#"{"statusCode":400,"body":{"error":"no texts"}}"#;
        let err = serde_json::from_str::<Response>(wire)
            .unwrap()
            .into_results()
            .unwrap_err();
        assert_eq!(err, (400, "no texts".to_string()));
    }

    #[test]
    fn response_serialises_to_the_exact_contract() {
        let response = Response::ok(vec![
            SentimentResult {
                sentiment: "positive".into(),
                score: 0.98,
            },
            SentimentResult {
                sentiment: "negative".into(),
                score: 0.95,
            },
        ]);
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"statusCode":200,"body":{"results":[{"sentiment":"positive","score":0.98},{"sentiment":"negative","score":0.95}],"count":2}}"#
        );
        let error = Response::bad_request("nope");
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"statusCode":400,"body":{"error":"nope"}}"#
        );
    }

    #[test]
    fn response_round_trips() {
        let text = r#"{"statusCode":200,"body":{"results":[{"sentiment":"positive","score":0.5}],"count":1}}"#;
        let parsed: Response = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
        let text = r#"{"statusCode":400,"body":{"error":"x"}}"#;
        let parsed: Response = serde_json::from_str(text).unwrap();
        assert!(matches!(parsed.body, Body::Error(_)));
    }

    #[test]
    fn keeps_empty_and_whitespace_texts() {
        let request = Request::from_value(&json!({"texts": ["", "   ", "ok"]})).unwrap();
        assert_eq!(request.texts, vec!["", "   ", "ok"]);
    }

    #[test]
    fn limits_are_enforced_at_the_edge() {
        let at_limit: Vec<String> = vec!["a".into(); MAX_TEXTS_PER_REQUEST];
        assert!(Request::from_value(&json!({ "texts": at_limit })).is_ok());
        let big = "x".repeat(MAX_TEXT_BYTES);
        assert!(Request::from_value(&json!({ "texts": [big] })).is_ok());
        let too_big = "x".repeat(MAX_TEXT_BYTES + 1);
        let err = Request::from_value(&json!({ "texts": ["fine", too_big] })).unwrap_err();
        assert!(err.0.contains("texts[1]"), "{err}");
    }
}
