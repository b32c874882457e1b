//! What arrives at the function and what goes back.
//!
//! Two shapes arrive: a direct invoke (`{"texts": [...]}`, answered with the wire response
//! object) and an HTTP event from a function URL or API Gateway (v2 `requestContext.http`, or
//! v1 `httpMethod`), answered HTTP-style with the body as a JSON *string*.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Classifier;
use crate::protocol::{json_type, Request, RequestError, Response};
use crate::telemetry::Record;

/// The shape of an incoming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `{"texts": [...]}` sent through `Invoke`.
    Direct(Value),
    /// A function-URL or API Gateway request.
    Http(HttpRequest),
    /// Anything else, with the reason it is refused.
    Unsupported(String),
}

/// The parts of an HTTP event the handler needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The decoded body; `Err` holds why it could not be decoded.
    pub body: Result<Vec<u8>, String>,
}

fn http_method(event: &serde_json::Map<String, Value>) -> Option<String> {
    // Function URLs and HTTP APIs (payload 2.0): requestContext.http.method.
    if let Some(method) = event
        .get("requestContext")
        .and_then(|c| c.get("http"))
        .and_then(|h| h.get("method"))
        .and_then(Value::as_str)
    {
        return Some(method.to_string());
    }
    // REST APIs (payload 1.0): httpMethod.
    event
        .get("httpMethod")
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Event {
    /// Tells the event's shape from its fields.
    pub fn parse(value: Value) -> Event {
        let Value::Object(object) = &value else {
            return Event::Direct(value);
        };
        if let Some(method) = http_method(object) {
            let base64 = object
                .get("isBase64Encoded")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let body = match object.get("body") {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(body)) if base64 => base64::engine::general_purpose::STANDARD
                    .decode(body.trim())
                    .map_err(|e| {
                        format!("the request body is marked base64 but is not valid base64 ({e})")
                    }),
                Some(Value::String(body)) => Ok(body.clone().into_bytes()),
                Some(other) => Err(format!(
                    "the event's \"body\" is {}, expected a string",
                    json_type(other)
                )),
            };
            return Event::Http(HttpRequest { method, body });
        }
        if object.contains_key("texts") {
            return Event::Direct(value);
        }
        if object.contains_key("Records") {
            return Event::Unsupported(
                "this function does not handle \"Records\" events (S3, SQS, SNS, Kinesis, DynamoDB); \
                 invoke it with {\"texts\": [...]} or call its function URL"
                    .into(),
            );
        }
        if object.contains_key("detail-type") && object.contains_key("source") {
            return Event::Unsupported(
                "this function does not handle EventBridge events; invoke it with {\"texts\": [...]}"
                    .into(),
            );
        }
        if object.contains_key("requestContext") || object.contains_key("routeKey") {
            return Event::Unsupported(
                "this HTTP event has no method (requestContext.http.method or httpMethod); \
                 send function-URL or API Gateway events unchanged"
                    .into(),
            );
        }
        // An object without `texts`: a direct invoke that forgot the field.
        Event::Direct(value)
    }
}

/// Classifies the validated texts of a request.
pub fn respond(classifier: &Classifier, request: Result<Request, RequestError>) -> Response {
    respond_observed(classifier, request).0
}

/// [`respond`], with the telemetry record of the texts it classified (`None` when it
/// classified none).
pub fn respond_observed(
    classifier: &Classifier,
    request: Result<Request, RequestError>,
) -> (Response, Option<Record>) {
    match request {
        Err(e) => (Response::bad_request(e.0), None),
        Ok(request) => match classifier.classify_observed(&request.texts) {
            Ok((results, usage)) => {
                let record = Record::of(&results, &usage);
                (Response::ok(results), record)
            }
            Err(e) => {
                tracing::error!("inference failed: {e:#}");
                (
                    Response::error(500, format!("inference failed: {e:#}")),
                    None,
                )
            }
        },
    }
}

/// The answer to an HTTP event (function URL, API Gateway): the body is a JSON string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    #[serde(rename = "isBase64Encoded")]
    pub is_base64_encoded: bool,
}

impl From<&Response> for HttpResponse {
    fn from(response: &Response) -> Self {
        let body = serde_json::to_string(&response.body)
            .unwrap_or_else(|e| format!(r#"{{"error":"cannot serialise the response: {e}"}}"#));
        HttpResponse {
            status_code: response.status_code,
            headers: BTreeMap::from([("content-type".to_string(), "application/json".to_string())]),
            body,
            is_base64_encoded: false,
        }
    }
}

/// What the function returns: the wire response for direct invokes, an HTTP response for
/// HTTP events. Scores serialise as f32, shortest form (`0.97024226`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Direct(Response),
    Http(HttpResponse),
}

/// Handles one HTTP request's method and body.
pub fn handle_http(classifier: &Classifier, request: &HttpRequest) -> Response {
    handle_http_observed(classifier, request).0
}

/// [`handle_http`], with the telemetry record of what it classified.
pub fn handle_http_observed(
    classifier: &Classifier,
    request: &HttpRequest,
) -> (Response, Option<Record>) {
    if !request.method.eq_ignore_ascii_case("POST") {
        let response = Response::error(
            405,
            format!(
                "method {} is not allowed; POST a JSON body like {{\"texts\": [\"…\"]}}",
                request.method
            ),
        );
        return (response, None);
    }
    let request = match &request.body {
        Err(e) => Err(RequestError(e.clone())),
        Ok(body) if body.is_empty() => Err(RequestError(
            "the request body is empty; POST a JSON body like {\"texts\": [\"…\"]}".into(),
        )),
        Ok(body) => match std::str::from_utf8(body) {
            Err(e) => Err(RequestError(format!(
                "the request body is not valid UTF-8 (invalid byte at offset {}); send UTF-8 JSON",
                e.valid_up_to()
            ))),
            Ok(text) => Request::from_slice(text.as_bytes()),
        },
    };
    respond_observed(classifier, request)
}

/// The function's whole behaviour: any JSON event in, an answer out. Never fails.
pub fn handle(classifier: &Classifier, event: Value) -> Answer {
    handle_observed(classifier, event).0
}

/// [`handle`], with the telemetry record of what it classified.
pub fn handle_observed(classifier: &Classifier, event: Value) -> (Answer, Option<Record>) {
    match Event::parse(event) {
        Event::Direct(value) => {
            let (response, record) = respond_observed(classifier, Request::from_value(&value));
            (Answer::Direct(response), record)
        }
        Event::Http(request) => {
            let (response, record) = handle_http_observed(classifier, &request);
            (Answer::Http((&response).into()), record)
        }
        Event::Unsupported(reason) => (Answer::Direct(Response::bad_request(reason)), None),
    }
}
