//! `ummatics-sentiment invoke --local` as a user runs it.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-distilbert"
);

fn cli() -> Command {
    let mut command = Command::cargo_bin("ummatics-sentiment").unwrap();
    command
        .env_remove("UMMATICS_MAX_TOKENS")
        .env_remove("UMMATICS_THREADS");
    command
}

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tiny-distilbert-reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn json_output_is_the_exact_wire_response() {
    let output = cli()
        .args([
            "invoke",
            "--local",
            "--model",
            MODEL,
            "--output",
            "json",
            "I love this!",
            "This is terrible",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON document: {stdout}");
    let response: Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&String> = response.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["body", "statusCode"]);
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["body"]["count"], 2);
    let reference = reference();
    for (i, result) in response["body"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let case = &reference["cases"][i];
        assert_eq!(result["sentiment"], case["label"]);
        let want = case["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .fold(0.0, f64::max);
        assert!((result["score"].as_f64().unwrap() - want).abs() < 1e-4);
    }
}

#[test]
fn human_output_is_a_table_in_input_order() {
    let output = cli()
        .args([
            "invoke",
            "--local",
            "--model",
            MODEL,
            "I love this!",
            "",
            "This is terrible",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("sentiment") && lines[0].contains("score") && lines[0].contains("text"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 2 + 3, "{stdout}");
    assert!(
        lines[2].trim_start().starts_with("1 ") && lines[2].ends_with("I love this!"),
        "{stdout}"
    );
    assert!(lines[3].trim_start().starts_with("2 "), "{stdout}");
    assert!(lines[4].ends_with("This is terrible"), "{stdout}");
    assert!(
        lines.iter().all(|l| l == &l.trim_end()),
        "no trailing blanks"
    );
}

#[test]
fn truncation_flag_changes_what_the_model_reads() {
    let long = reference()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "long_over_512_tokens")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let run = |extra: &[&str]| {
        let output = cli()
            .args(["invoke", "--local", "--model", MODEL, "--output", "json"])
            .args(extra)
            .arg(&long)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    assert_ne!(run(&[]), run(&["--max-tokens", "8"]));
}

#[test]
fn no_texts() {
    cli()
        .args(["invoke", "--local", "--model", MODEL])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no texts to classify"));
}

#[test]
fn local_needs_a_model() {
    cli()
        .args(["invoke", "--local", "hi"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--model DIR"));
}

#[test]
fn missing_model_directory() {
    cli()
        .args(["invoke", "--local", "--model", "/no/such/model", "hi"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "model directory /no/such/model does not exist",
        ));
}

#[test]
fn remote_invoke_is_not_pretended() {
    cli()
        .args(["invoke", "hi"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("pass --local"));
}

#[test]
fn bad_flag_values_are_usage_errors() {
    cli()
        .args([
            "invoke",
            "--local",
            "--model",
            MODEL,
            "--max-tokens",
            "1",
            "hi",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--max-tokens"));
    cli()
        .args([
            "invoke",
            "--local",
            "--model",
            MODEL,
            "--threads",
            "0",
            "hi",
        ])
        .assert()
        .code(2);
    cli()
        .args([
            "invoke", "--local", "--model", MODEL, "--output", "yaml", "hi",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("possible values: human, json"));
    cli()
        .args([
            "invoke",
            "--local",
            "--model",
            MODEL,
            "--max-tokens",
            "4096",
            "hi",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("larger than the model window"));
}
