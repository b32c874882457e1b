//! `ummatics-sentiment eval`, and the default (embedded) model measured by it.

use std::path::Path;

use crate::common::{cli, stdout_of};
use predicates::prelude::*;
use serde_json::Value;

const DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sst2-dev.tsv");
const CARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/sst2-minilm/MODEL_CARD.md"
);

/// The accuracy the model card states, in percent: the line `Accuracy (tract, eval): NN.NN %`.
fn card_accuracy() -> f64 {
    let card = std::fs::read_to_string(CARD).unwrap();
    let line = card
        .lines()
        .find(|l| l.contains("SST-2 dev accuracy (tract, `ummatics-sentiment eval`)"))
        .expect("the model card states the eval accuracy");
    let number = line
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .split(' ')
        .next()
        .unwrap();
    let number = number.trim_matches('*');
    number
        .parse()
        .unwrap_or_else(|_| panic!("not a number in {line:?}"))
}

fn eval_json(args: &[&str]) -> Value {
    let stdout = stdout_of(["eval", "--output", "json"].iter().chain(args));
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn embedded_model_scores_what_its_card_says_on_sst2_dev() {
    let report = eval_json(&["--data", DEV]);
    assert_eq!(report["examples"], 872);
    let accuracy = report["accuracy"].as_f64().unwrap() * 100.0;
    let stated = card_accuracy();
    assert!(
        (accuracy - stated).abs() <= 0.1,
        "eval says {accuracy:.2} %, the card says {stated:.2} %"
    );
    assert!(accuracy >= 90.0, "below the 90 % target: {accuracy:.2} %");
    let confusion = report["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 872);
    assert_eq!(report["classes"][0]["support"], 428);
    assert_eq!(report["classes"][1]["support"], 444);
}

#[test]
fn human_report_names_every_figure() {
    // The report's shape does not depend on the model: the small one keeps this test quick.
    cli()
        .args(["eval", "--model", "mini", "--data", DEV])
        .assert()
        .success()
        .stdout(predicate::str::contains("accuracy"))
        .stdout(predicate::str::contains("precision"))
        .stdout(predicate::str::contains("true \\ predicted"))
        .stdout(predicate::str::contains("texts/s"));
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn csv_and_jsonl_with_named_labels_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "reviews.csv",
        "id,review,sentiment\n1,\"I love it, truly\",positive\n2,\"awful, just awful\",NEGATIVE\n",
    );
    // The small model: the test is about reading the files; both models read these texts right.
    let report = eval_json(&[
        "--model",
        "mini",
        "--data",
        &csv,
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
    ]);
    assert_eq!(report["examples"], 2);
    // The label names map to the right classes: both texts are read correctly, and the
    // confusion matrix (rows true, columns predicted: negative, positive) is the identity.
    assert_eq!(report["accuracy"], 1.0, "{report}");
    assert_eq!(report["confusion"], serde_json::json!([[1, 0], [0, 1]]));
    let jsonl = write(
        dir.path(),
        "reviews.jsonl",
        "{\"text\": \"what a wonderful film\", \"label\": 1}\n\n{\"text\": \"dull and boring\", \"label\": \"negative\"}\n",
    );
    let report = eval_json(&["--model", "mini", "--data", &jsonl]);
    assert_eq!(report["examples"], 2);
    assert_eq!(report["confusion"], serde_json::json!([[1, 0], [0, 1]]));
    let json = write(
        dir.path(),
        "reviews.json",
        "[{\"text\": \"what a wonderful film\", \"label\": 1},\n {\"text\": \"dull and boring\", \"label\": \"negative\"}]\n",
    );
    let report = eval_json(&["--model", "mini", "--data", &json]);
    assert_eq!(report["examples"], 2);
    assert_eq!(report["confusion"], serde_json::json!([[1, 0], [0, 1]]));
}

fn eval_fails(args: &[&str], message: &str) {
    cli()
        .arg("eval")
        .args(args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(message));
}

#[test]
fn bad_files_are_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    eval_fails(
        &["--data", &write(d, "a.tsv", "sentence\tlabel\nok\t1\n")],
        "no column \"text\" in the header",
    );
    eval_fails(
        &[
            "--data",
            &write(d, "b.tsv", "text\tlabel\ngood\t1\nmeh\tneutral\n"),
        ],
        "b.tsv:3: unknown label \"neutral\"",
    );
    eval_fails(
        &["--data", &write(d, "c.tsv", "text\tlabel\ngood\t7\n")],
        "c.tsv:2: unknown label \"7\"",
    );
    eval_fails(
        &["--data", &write(d, "d.tsv", "text\tlabel\n")],
        "holds no examples",
    );
    eval_fails(&["--data", &write(d, "e.tsv", "")], "holds no examples");
    eval_fails(
        &["--data", &write(d, "f.tsv", "text\tlabel\ngood\t1\nbad\n")],
        "f.tsv:3",
    );
    eval_fails(
        &[
            "--data",
            &write(d, "g.jsonl", "{\"text\": \"x\", \"label\": 1}\nnot json\n"),
        ],
        "g.jsonl:2: not valid JSON",
    );
    eval_fails(
        &["--data", &write(d, "h.jsonl", "{\"label\": 1}\n")],
        "h.jsonl:1: no \"text\" field",
    );
    eval_fails(
        &[
            "--data",
            &write(d, "i.jsonl", "{\"text\": 5, \"label\": 1}\n"),
        ],
        "i.jsonl:1: \"text\" is not a string",
    );
    eval_fails(
        &["--data", &write(d, "data.txt", "text\tlabel\n")],
        "pass --format tsv, csv, jsonl or json",
    );
    eval_fails(
        &["--data", "/no/such/file.tsv"],
        "cannot read /no/such/file.tsv",
    );
    // The file is read before the model is loaded: with a model directory that cannot load,
    // the file's fault is what is reported (and no load's seconds are spent on a bad file).
    let empty_model = tempfile::tempdir().unwrap();
    let model = empty_model.path().to_str().unwrap();
    eval_fails(
        &[
            "--model",
            model,
            "--data",
            &write(d, "j.tsv", "sentence\tlabel\nok\t1\n"),
        ],
        "j.tsv:1: no column \"text\" in the header",
    );
    // A good file then meets the model's fault.
    cli()
        .args(["eval", "--model", model, "--data"])
        .arg(write(d, "k.tsv", "text\tlabel\nok\t1\n"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("model.onnx"));
}

#[test]
fn a_hugging_face_id_offline_names_the_way_out() {
    let cache = tempfile::tempdir().unwrap();
    cli()
        .env("HF_ENDPOINT", "http://127.0.0.1:9") // no Hub answers
        .env("HF_HOME", cache.path())
        .args(["eval", "--data", DEV, "--model"])
        .arg("distilbert/distilbert-base-uncased-finetuned-sst-2-english")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("pass --model DIR"));
}
