//! `ummatics-sentiment bench`: the figures it reports, checked against what is known
//! independently of our code (the texts' token counts come from the fixture's onnxruntime
//! reference, tokenised by Hugging Face `tokenizers`), and its answers to bad input.

use crate::common::{cli, stdout_of};
use predicates::prelude::*;
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-distilbert"
);
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-distilbert-reference.json"
);

/// The reference's texts as a JSONL file, and their mean token count per `tokenizers`.
fn reference_texts(dir: &std::path::Path) -> (std::path::PathBuf, usize, f64) {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(REFERENCE).unwrap()).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let mut jsonl = String::new();
    let mut tokens = 0;
    for case in cases {
        jsonl.push_str(&serde_json::json!({ "text": case["text"] }).to_string());
        jsonl.push('\n');
        tokens += case["input_ids"].as_array().unwrap().len();
    }
    let path = dir.join("texts.jsonl");
    std::fs::write(&path, jsonl).unwrap();
    (path, cases.len(), tokens as f64 / cases.len() as f64)
}

fn ms(report: &Value, section: &str, field: &str) -> f64 {
    report[section][field]
        .as_f64()
        .unwrap_or_else(|| panic!("{section}.{field} missing in {report}"))
}

#[test]
fn json_report_counts_what_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (texts, n, mean_tokens) = reference_texts(dir.path());
    let stdout = stdout_of([
        "--output",
        "json",
        "bench",
        "--model",
        FIXTURE,
        "--texts",
        texts.to_str().unwrap(),
        "--batch",
        "10",
        "--rounds",
        "2",
        "--threads",
        "1",
    ]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["runtime"], "tract");
    assert_eq!(report["texts"], n);
    assert_eq!(report["batch"], 10);
    assert_eq!(report["threads"], 1);
    assert!(
        (report["mean_tokens"].as_f64().unwrap() - mean_tokens).abs() < 1e-9,
        "mean tokens {} vs tokenizers' {mean_tokens}",
        report["mean_tokens"]
    );
    // Two passes over ceil(n / 10) calls.
    assert_eq!(report["warm"]["calls"], 2 * n.div_ceil(10));
    assert_eq!(report["warm"]["texts"], 2 * n);
    let seconds = ms(&report, "warm", "seconds");
    let tps = ms(&report, "warm", "texts_per_s");
    assert!((tps * seconds - 2.0 * n as f64).abs() < 1e-6 * tps.max(1.0));
    let (p50, p95) = (
        ms(&report, "warm", "call_p50_ms"),
        ms(&report, "warm", "call_p95_ms"),
    );
    assert!(p50 > 0.0 && p95 >= p50, "p50 {p50} p95 {p95}");
    assert!(p50 <= seconds * 1000.0);

    let total = ms(&report, "cold_start", "total_ms");
    let parts: f64 = ["process_ms", "load_ms", "optimise_ms", "first_run_ms"]
        .iter()
        .map(|f| ms(&report, "cold_start", f))
        .sum();
    for part in ["load_ms", "optimise_ms", "first_run_ms"] {
        assert!(ms(&report, "cold_start", part) > 0.0, "{part} in {report}");
    }
    assert!(
        (total - parts).abs() < 1.0,
        "total {total} vs parts {parts}"
    );
    let ready = ms(&report, "cold_start", "ready_ms");
    let loaded = parts - ms(&report, "cold_start", "first_run_ms");
    assert!(ready > loaded && ready < total, "ready {ready} in {report}");
    let rss = report["peak_rss_mib"].as_f64().unwrap();
    assert!(rss > 5.0 && rss < 4096.0, "peak RSS {rss} MiB");

    // The load stage by stage: they add up to the load and the optimising, and each one that
    // does work on a model directory took time.
    let stage = |name: &str| {
        report["cold_start"]["stages"][name]
            .as_f64()
            .unwrap_or_else(|| panic!("stage {name} missing in {report}"))
    };
    let loading: f64 = [
        "read_ms",
        "decode_ms",
        "expand_ms",
        "parse_ms",
        "tokenizer_ms",
    ]
    .iter()
    .map(|s| stage(s))
    .sum();
    let preparing: f64 = ["typing_ms", "declutter_ms", "optimise_ms"]
        .iter()
        .map(|s| stage(s))
        .sum();
    assert!(
        (loading - ms(&report, "cold_start", "load_ms")).abs() < 1e-6,
        "{report}"
    );
    assert!(
        (preparing - ms(&report, "cold_start", "optimise_ms")).abs() < 1e-6,
        "{report}"
    );
    for name in [
        "read_ms",
        "decode_ms",
        "parse_ms",
        "tokenizer_ms",
        "typing_ms",
        "declutter_ms",
        "optimise_ms",
        "warm_up_ms",
    ] {
        assert!(stage(name) > 0.0, "{name} in {report}");
    }
    assert!(stage("warm_up_ms") < ms(&report, "cold_start", "first_run_ms"));
}

#[test]
fn human_report_on_sst2_dev_with_the_embedded_model() {
    // The first 100 texts of SST-2 dev: the report is the same shape for 872.
    let dev = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sst2-dev.tsv"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("dev-100.tsv");
    let lines: Vec<&str> = dev.lines().take(101).collect();
    std::fs::write(&head, lines.join("\n") + "\n").unwrap();
    cli()
        .args(["bench", "--threads", "1", "--texts"])
        .arg(&head)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("tract on sst2-minilm (embedded): 100 texts")
                .and(predicate::str::contains(
                    "cold start: process → first result",
                ))
                .and(predicate::str::contains("texts/s"))
                .and(predicate::str::contains("peak RSS")),
        );
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sst2-dev.tsv");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--texts", dev, "--batch", "51"], "51 is not in 1..=50"),
        (vec!["--texts", dev, "--batch", "0"], "0 is not in 1..=50"),
        (
            vec!["--texts", dev, "--rounds", "0"],
            "0 is not in 1..=1000",
        ),
        (
            vec!["--texts", "/nonexistent/texts.txt"],
            "cannot read /nonexistent/texts.txt",
        ),
        (
            vec!["--texts", empty.to_str().unwrap()],
            "no texts to measure with",
        ),
        (
            vec!["--texts", dev, "--column", "review"],
            "no column \"review\"",
        ),
        (
            vec!["--texts", dev, "--model", dir.path().to_str().unwrap()],
            "model.onnx, config.json, tokenizer.json (or vocab.txt) are missing",
        ),
    ];
    for (args, message) in cases {
        cli()
            .arg("bench")
            .args(&args)
            .assert()
            .failure()
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(message));
    }
}
