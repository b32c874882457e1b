//! Hugging Face ids: downloaded once through the Hub's HTTP protocol (here a stand-in on
//! 127.0.0.1 serving a fixture as `ummatics/tiny-sst2`, with ranges, ETags and commit headers
//! as the Hub sends them), `onnx/model.onnx` preferred, then served from the cache.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::cli;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use predicates::prelude::*;

const FIXTURE: &str = "tests/fixtures/tiny-distilbert";

struct Hub {
    files: HashMap<String, Vec<u8>>,
    downloads: AtomicUsize,
}

async fn resolve(
    State(hub): State<Arc<Hub>>,
    Path((owner, name, revision, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let key = format!("{owner}/{name}/{file}");
    let Some(bytes) = hub.files.get(&key) else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    assert_eq!(revision, "main");
    let total = bytes.len();
    let (start, end) = headers
        .get("range")
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| {
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = b.parse().unwrap_or(total - 1);
            (a, b.min(total - 1))
        })
        .unwrap_or((0, total - 1));
    if end > start {
        hub.downloads.fetch_add(1, Ordering::Relaxed);
    }
    let etag = format!("\"{:x}\"", content_tag(bytes));
    (
        StatusCode::PARTIAL_CONTENT,
        [
            ("etag", etag),
            (
                "x-repo-commit",
                "0123456789abcdef0123456789abcdef01234567".to_string(),
            ),
            ("content-range", format!("bytes {start}-{end}/{total}")),
        ],
        bytes[start..=end].to_vec(),
    )
        .into_response()
}

fn content_tag(bytes: &[u8]) -> u128 {
    // A stable per-content tag is all the cache needs.
    bytes.iter().fold(0xcbf29ce484222325u128, |h, b| {
        (h ^ u128::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Starts the Hub stand-in; returns its endpoint and state.
async fn start_hub() -> (String, Arc<Hub>, tokio::task::JoinHandle<()>) {
    let read = |f: &str| std::fs::read(format!("{FIXTURE}/{f}")).unwrap();
    let files = HashMap::from([
        // The ONNX export under onnx/, as the Hub's transformers.js/optimum layouts have it.
        (
            "ummatics/tiny-sst2/onnx/model.onnx".to_string(),
            read("model.onnx"),
        ),
        (
            "ummatics/tiny-sst2/config.json".to_string(),
            read("config.json"),
        ),
        (
            "ummatics/tiny-sst2/tokenizer.json".to_string(),
            read("tokenizer.json"),
        ),
    ]);
    let hub = Arc::new(Hub {
        files,
        downloads: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route(
            "/{owner}/{name}/resolve/{revision}/{*file}",
            axum::routing::get(resolve),
        )
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (endpoint, hub, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_ids_download_once_then_come_from_the_cache() {
    let (endpoint, hub, server) = start_hub().await;
    let cache = tempfile::tempdir().unwrap();
    let local = |endpoint: &str| {
        let mut c = cli();
        c.env("HF_ENDPOINT", endpoint)
            .env("HF_HOME", cache.path())
            .args([
                "--output",
                "json",
                "invoke",
                "--local",
                "--model",
                "ummatics/tiny-sst2",
                "I love this!",
            ]);
        c
    };
    let expected = common::stdout_of([
        "--output",
        "json",
        "invoke",
        "--local",
        "--model",
        FIXTURE,
        "I love this!",
    ]);

    let first = tokio::task::spawn_blocking({
        let mut c = local(&endpoint);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&first.stdout), expected);
    assert!(
        hub.downloads.load(Ordering::Relaxed) >= 3,
        "nothing was downloaded"
    );

    // The Hub gone: the cache answers.
    server.abort();
    let second = tokio::task::spawn_blocking({
        let mut c = local("http://127.0.0.1:9");
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&second.stdout), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_hub_id_names_the_way_out() {
    let (endpoint, _hub, _server) = start_hub().await;
    let cache = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        cli()
            .env("HF_ENDPOINT", &endpoint)
            .env("HF_HOME", cache.path())
            .args([
                "invoke",
                "--local",
                "--model",
                "ummatics/no-such-model",
                "hi",
            ])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "cannot download \"ummatics/no-such-model\"",
            ))
            .stderr(predicate::str::contains("pass --model DIR"));
    })
    .await;
    out.unwrap();
}
