//! A missing or broken model directory is refused with a message naming the file and the fault.

use crate::common;

use std::path::Path;
use std::process::Command;

use crate::common::copy_fixture;
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

fn load_error(dir: &Path) -> String {
    let err = Classifier::load(dir, &ClassifierOptions::default()).expect_err("must not load");
    format!("{err:#}")
}

fn assert_contains(message: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}

const ALL: [&str; 3] = ["model.onnx", "config.json", "tokenizer.json"];

#[test]
fn directory_missing_or_a_file() {
    assert_contains(
        &load_error(Path::new("/no/such/model")),
        &["model directory /no/such/model does not exist"],
    );
    let dir = copy_fixture(&ALL);
    assert_contains(
        &load_error(&dir.path().join("config.json")),
        &["not a directory"],
    );
}

#[test]
fn each_required_file_missing() {
    for missing in ["model.onnx", "config.json"] {
        let files: Vec<&str> = ALL.iter().copied().filter(|f| *f != missing).collect();
        let dir = copy_fixture(&files);
        assert_contains(&load_error(dir.path()), &[missing, "is missing"]);
    }
    let dir = copy_fixture(&["model.onnx", "config.json"]);
    assert_contains(
        &load_error(dir.path()),
        &["tokenizer.json (or vocab.txt) is missing"],
    );
}

#[test]
fn broken_config() {
    let dir = copy_fixture(&ALL);
    let config = dir.path().join("config.json");
    std::fs::write(&config, "{ not json").unwrap();
    assert_contains(&load_error(dir.path()), &["config.json", "not valid JSON"]);
    std::fs::write(&config, r#"{"max_position_embeddings": 512}"#).unwrap();
    assert_contains(&load_error(dir.path()), &["config.json", "no \"id2label\""]);
    std::fs::write(
        &config,
        r#"{"id2label": {"0": "NEGATIVE", "x": "POSITIVE"}}"#,
    )
    .unwrap();
    assert_contains(&load_error(dir.path()), &["id2label key \"x\""]);
    std::fs::write(&config, r#"{"id2label": {"0": "NEGATIVE", "1": 7}}"#).unwrap();
    assert_contains(
        &load_error(dir.path()),
        &["id2label[\"1\"] is not a string"],
    );
    std::fs::write(&config, r#"{"id2label": {"0": "ONLY"}}"#).unwrap();
    assert_contains(&load_error(dir.path()), &["at least two labels"]);
    std::fs::write(
        &config,
        r#"{"id2label": {"0": "A", "1": "B"}, "max_position_embeddings": "big"}"#,
    )
    .unwrap();
    assert_contains(
        &load_error(dir.path()),
        &["max_position_embeddings must be a whole number"],
    );
}

#[test]
fn labels_that_do_not_match_the_graph() {
    let dir = copy_fixture(&ALL);
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"id2label": {"0": "NEGATIVE", "1": "NEUTRAL", "2": "POSITIVE"}, "max_position_embeddings": 512}"#,
    )
    .unwrap();
    assert_contains(
        &load_error(dir.path()),
        &["logits of shape [1, 2], expected [1, 3]", "id2label"],
    );
}

#[test]
fn broken_graph_and_tokenizer() {
    let dir = copy_fixture(&ALL);
    std::fs::write(dir.path().join("model.onnx"), b"\x08\x07garbage").unwrap();
    assert_contains(
        &load_error(dir.path()),
        &["model.onnx", "cannot load the ONNX graph"],
    );
    // Empty (it is mapped, not read: an empty map must still be an error, not a crash).
    let dir = copy_fixture(&ALL);
    std::fs::write(dir.path().join("model.onnx"), b"").unwrap();
    assert_contains(&load_error(dir.path()), &["model.onnx"]);
    let dir = copy_fixture(&ALL);
    std::fs::write(dir.path().join("tokenizer.json"), "{\"version\": 1}").unwrap();
    assert_contains(
        &load_error(dir.path()),
        &["tokenizer.json", "cannot load the tokenizer"],
    );
}

fn self_test(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
    command
        .args(args)
        .env_remove("UMMATICS_MAX_TOKENS")
        .env_remove("UMMATICS_THREADS");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn bootstrap_self_test_reports_what_is_wrong() {
    let model = common::fixture_model();
    let model = model.to_str().unwrap();
    // The random-weight fixture cannot tell sentiment: the self-test must say so and fail.
    let (code, text) = self_test(&["--self-test", "--model", model], &[]);
    assert_eq!(code, 1, "{text}");
    assert_contains(
        &text,
        &["self-test failed", "misclassifies", "expected negative"],
    );
    let (code, text) = self_test(&["--self-test", "--model", "/no/such/dir"], &[]);
    assert_eq!(code, 1);
    assert_contains(&text, &["/no/such/dir does not exist"]);
    let (code, text) = self_test(
        &["--self-test", "--model", model],
        &[("UMMATICS_MAX_TOKENS", "lots")],
    );
    assert_eq!(code, 1);
    assert_contains(
        &text,
        &["UMMATICS_MAX_TOKENS=\"lots\" is not a whole number"],
    );
    // The bundled SST-2 model passes.
    let mini = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/sst2-mini");
    let (code, text) = self_test(&["--self-test", "--model", mini.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{text}");
    assert_contains(&text, &["self-test passed", "positive", "negative"]);
    let (code, text) = self_test(&["--frobnicate"], &[]);
    assert_eq!(code, 2);
    assert_contains(&text, &["usage: bootstrap"]);
}

#[test]
fn bootstrap_outside_lambda_says_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_contains(
        &String::from_utf8_lossy(&output.stderr),
        &["AWS_LAMBDA_RUNTIME_API", "--self-test"],
    );
}
