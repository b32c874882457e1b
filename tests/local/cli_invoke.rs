//! `ummatics-sentiment invoke --local` as a user runs it.

use crate::common;

use crate::common::{cli, stdout_of};
use predicates::prelude::*;
use serde_json::Value;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-distilbert"
);

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
    let stdout = stdout_of([
        "invoke",
        "--local",
        "--model",
        MODEL,
        "--output",
        "json",
        "I love this!",
        "This is terrible",
    ]);
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
    let stdout = stdout_of([
        "invoke",
        "--local",
        "--model",
        MODEL,
        "I love this!",
        "",
        "This is terrible",
    ]);
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
        let base = ["invoke", "--local", "--model", MODEL, "--output", "json"];
        stdout_of(base.iter().chain(extra).chain([&long.as_str()]))
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
fn missing_model_directory() {
    cli()
        .args(["invoke", "--local", "--model", "/no/such/model", "hi"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "model directory /no/such/model does not exist",
        ));
}

/// A function that cannot be reached: every text is reported failed with the reason, the
/// exit code is 1, nothing is made up.
#[test]
fn unreachable_function_fails_every_batch_loudly() {
    common::with_endpoint(&mut cli(), "http://127.0.0.1:9")
        .env("UMMATICS_AWS_MAX_ATTEMPTS", "1")
        .args(["invoke", "hi", "there"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILED"))
        .stdout(predicate::str::contains(
            "texts 1–2 failed after 4 attempt(s)",
        ))
        .stderr(predicate::str::contains("1 batch(es) FAILED"));
}

/// `invoke --local` on the fixture model with these extra arguments and the text "hi".
fn invoke_fixture(extra: &[&str]) -> assert_cmd::assert::Assert {
    cli()
        .args(["invoke", "--local", "--model", MODEL])
        .args(extra)
        .arg("hi")
        .assert()
}

#[test]
fn bad_flag_values_are_usage_errors() {
    invoke_fixture(&["--max-tokens", "1"])
        .code(2)
        .stderr(predicate::str::contains("--max-tokens"));
    invoke_fixture(&["--threads", "0"]).code(2);
    invoke_fixture(&["--output", "yaml"])
        .code(2)
        .stderr(predicate::str::contains("possible values: human, json"));
    invoke_fixture(&["--max-tokens", "4096"])
        .code(1)
        .stderr(predicate::str::contains("larger than the model window"));
}

/// Everyday sentences whose sentiment nobody would dispute.
const POSITIVE: [&str; 10] = [
    "I love this!",
    "This is the best movie I have seen all year.",
    "The food was delicious and the staff were wonderful.",
    "What a fantastic performance, truly brilliant.",
    "I am so happy with this purchase.",
    "A beautiful, moving and funny film.",
    "Great service, I will definitely come back.",
    "The hotel was clean, comfortable and charming.",
    "An excellent book, I enjoyed every page.",
    "Thank you, this is perfect!",
];
const NEGATIVE: [&str; 10] = [
    "This is terrible",
    "The worst film I have ever seen.",
    "The food was cold and the service was awful.",
    "I hate this, it is a complete waste of money.",
    "Boring, dull and far too long.",
    "A painful, stupid and lifeless movie.",
    "The product broke after one day, very disappointing.",
    "Rude staff and a dirty room.",
    "I regret buying this, it is useless.",
    "What a mess, nothing works.",
];

#[test]
fn embedded_model_gets_the_obvious_cases_right() {
    let args = ["invoke", "--local", "--output", "json"];
    let stdout = stdout_of(args.iter().chain(&POSITIVE).chain(&NEGATIVE));
    let response: Value = serde_json::from_str(&stdout).unwrap();
    let results = response["body"]["results"].as_array().unwrap();
    let expected = POSITIVE
        .iter()
        .map(|t| (t, "positive"))
        .chain(NEGATIVE.iter().map(|t| (t, "negative")));
    let wrong: Vec<String> = expected
        .zip(results)
        .filter(|((_, want), got)| got["sentiment"] != *want)
        .map(|((text, want), got)| format!("{text:?}: {} (expected {want})", got["sentiment"]))
        .collect();
    assert!(wrong.is_empty(), "misclassified: {wrong:#?}");
}

#[test]
fn default_model_is_the_embedded_one_and_needs_no_files() {
    let dir = tempfile::tempdir().unwrap();
    cli()
        .current_dir(dir.path())
        .args(["invoke", "--local", "I love this!"])
        .assert()
        .success()
        .stdout(predicate::str::contains("positive"));
}

/// Issue 16: the work per text is bounded by the model window. Six 1,000,000-byte texts of `!`
/// (a million tokens each, a 6 MB request) must cost at most 64 MiB more than six texts that
/// merely fill the window — before the bound, tokenising them in full cost ~160 MB more.
#[test]
fn a_six_megabyte_token_dense_request_costs_little_more_than_full_window_texts() {
    let dir = tempfile::tempdir().unwrap();
    let dense = dir.path().join("dense.txt");
    let plain = dir.path().join("plain.txt");
    std::fs::write(&dense, format!("{}\n", "!".repeat(1_000_000)).repeat(6)).unwrap();
    std::fs::write(&plain, format!("{}\n", "good ".repeat(600)).repeat(6)).unwrap();
    let peak = |file: &std::path::Path| peak_rss_of_local_invoke(file, "json");
    let (plain, dense) = (peak(&plain), peak(&dense));
    eprintln!("peak RSS: full-window texts {plain:.0} MiB, 6 MB token-dense {dense:.0} MiB");
    assert!(
        dense - plain <= 64.0,
        "6 MB of token-dense text peaked at {dense:.0} MiB, {:.0} MiB over full-window texts ({plain:.0} MiB)",
        dense - plain
    );
}

/// Issue 16: input and output stream. 10,000 texts of 1,000 bytes (10 MB) peak no higher than
/// 1,000 of them (1 MB) give or take 16 MiB — holding every text and result, as before, cost
/// about five times the input (some 45 MiB more here).
#[test]
fn memory_does_not_grow_with_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("{}\n", "x".repeat(999));
    let small = dir.path().join("small.txt");
    let large = dir.path().join("large.txt");
    std::fs::write(&small, line.repeat(1_000)).unwrap();
    std::fs::write(&large, line.repeat(10_000)).unwrap();
    let peak = |file: &std::path::Path| peak_rss_of_local_invoke(file, "jsonl");
    let (small, large) = (peak(&small), peak(&large));
    eprintln!("peak RSS: 1,000 texts {small:.0} MiB, 10,000 texts {large:.0} MiB");
    assert!(
        large - small <= 16.0,
        "10 MB of input peaked at {large:.0} MiB, {:.0} MiB over 1 MB of it",
        large - small
    );
}

/// JSONL output gives each text's position (`index`, 0-based, what `--skip` counts) and the
/// line it came from (`line`, blank JSONL lines included).
#[test]
fn skip_and_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(
        &file,
        "{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n",
    )
    .unwrap();
    let stdout = stdout_of([
        "invoke",
        "--local",
        "--model",
        MODEL,
        "--output",
        "jsonl",
        "--skip",
        "1",
        "--file",
        file.to_str().unwrap(),
    ]);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(u64, u64, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["index"].as_u64().unwrap(),
                l["line"].as_u64().unwrap(),
                l["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, 3, "b"), (2, 4, "c")]);
    cli()
        .args([
            "invoke", "--local", "--model", MODEL, "--skip", "3", "--file",
        ])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("all skipped (--skip 3)"));
}

/// A SAM test event (the function's own request, pretty-printed) is read as its texts, each
/// with the line it is on; the same request piped as a line is refused, not classified as
/// one text.
#[test]
fn a_request_file_is_its_texts_and_a_request_line_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        "{\n  \"texts\": [\n    \"I love this!\",\n    \"This is terrible\"\n  ]\n}\n",
    )
    .unwrap();
    let stdout = stdout_of([
        "invoke",
        "--local",
        "--output",
        "jsonl",
        "--file",
        event.to_str().unwrap(),
    ]);
    let seen: Vec<(u64, String, String)> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["text"].as_str().unwrap().to_string(),
                l["sentiment"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (3, "I love this!".into(), "positive".into()),
            (4, "This is terrible".into(), "negative".into())
        ]
    );
    cli()
        .args(["invoke", "--local", "--file", "-"])
        .write_stdin("{\"texts\": [\"I love this!\"]}\n")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("positive").not())
        .stderr(predicate::str::contains("stdin:1: this line is a request"));
}

/// Ctrl-C prints what is done, in order, and says where to go on from.
#[test]
fn an_interrupted_invoke_says_where_to_resume() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.txt");
    std::fs::write(&file, format!("{}\n", "x".repeat(999)).repeat(50_000)).unwrap();
    let mut child = common::cli_process()
        .args([
            "invoke", "--local", "--model", MODEL, "--output", "jsonl", "--file",
        ])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut indices = Vec::new();
    let mut line = String::new();
    while indices.len() < 100 && stdout.read_line(&mut line).unwrap() > 0 {
        let value: Value = serde_json::from_str(&line).unwrap();
        indices.push(value["index"].as_u64().unwrap());
        line.clear();
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    while stdout.read_line(&mut line).unwrap() > 0 {
        let value: Value = serde_json::from_str(&line).unwrap();
        indices.push(value["index"].as_u64().unwrap());
        line.clear();
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let n = indices.len() as u64;
    assert!(n < 50_000, "it was not interrupted");
    assert_eq!(
        indices,
        (0..n).collect::<Vec<_>>(),
        "in order, none missing"
    );
    assert!(
        stderr.contains(&format!("rerun with --skip {n}")),
        "{stderr}"
    );
}

/// Peak RSS (MiB) of `invoke --local` on the fixture model over `file`; it must succeed.
fn peak_rss_of_local_invoke(file: &std::path::Path, output: &str) -> f64 {
    let (status, mib) = common::run_measuring_peak_rss(common::cli_process().args([
        "invoke",
        "--local",
        "--model",
        MODEL,
        "--output",
        output,
        "--file",
        file.to_str().unwrap(),
    ]));
    assert!(status.success(), "{status}");
    mib
}

/// `invoke --local ... | head`: every output format ends quietly when the reader has gone,
/// and so do the commands that print one report (`eval`) and `invoke --payload`.
#[test]
fn a_reader_that_goes_away_ends_every_output_quietly() {
    let texts: Vec<String> = (0..120)
        .map(|i| format!("text number {i} is fine"))
        .collect();
    for format in ["human", "json", "jsonl"] {
        common::assert_quiet_on_closed_pipe(
            common::cli_process()
                .args(["--output", format, "invoke", "--local", "--model", MODEL])
                .args(&texts),
            &format!("invoke --output {format}"),
        );
    }
    common::assert_quiet_on_closed_pipe(
        common::cli_process().args([
            "--output",
            "json",
            "eval",
            "--model",
            MODEL,
            "--data",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/everyday.tsv"),
        ]),
        "eval --output json",
    );
}

/// SAM's and the console's test events for the function's own event shapes (function URL,
/// base64 or not, and API Gateway) are read as the function reads them: their body's texts.
/// Events it does not handle are refused with the function's own reason.
#[test]
fn lambda_http_events_in_a_file_are_read_as_the_function_reads_them() {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/events");
    for event in [
        "function-url.json",
        "function-url-base64.json",
        "api-gateway-v1.json",
    ] {
        let stdout = stdout_of([
            "invoke",
            "--local",
            "--model",
            "mini",
            "--output",
            "jsonl",
            "--file",
            events.join(event).to_str().unwrap(),
        ]);
        let seen: Vec<(String, String)> = stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|l| {
                (
                    l["text"].as_str().unwrap().to_string(),
                    l["sentiment"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("I love this!".to_string(), "positive".to_string()),
                ("This is terrible".to_string(), "negative".to_string())
            ],
            "{event}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let s3 = dir.path().join("s3.json");
    std::fs::write(&s3, r#"{"Records": [{"s3": {"bucket": {"name": "b"}}}]}"#).unwrap();
    let out = cli()
        .args(["invoke", "--local", "--model", MODEL, "--file"])
        .arg(&s3)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not handle \"Records\" events"),
        "{stderr}"
    );
    // Nothing was printed, so nothing says "(printed)" or to skip.
    assert!(
        !stderr.contains("printed") && !stderr.contains("--skip"),
        "{stderr}"
    );
    let bodiless = dir.path().join("get.json");
    std::fs::write(
        &bodiless,
        r#"{"version": "2.0", "requestContext": {"http": {"method": "GET"}}}"#,
    )
    .unwrap();
    let out = cli()
        .args(["invoke", "--local", "--model", MODEL, "--file"])
        .arg(&bodiless)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP event (GET) without a body"));
}

/// An input that is bad from its first text stops with the reason, and says nothing of
/// "printed" texts or `--skip` (there are none to skip); one bad after good texts does.
#[test]
fn skip_advice_only_when_texts_were_printed() {
    let dir = tempfile::tempdir().unwrap();
    let bad_first = dir.path().join("bad.jsonl");
    std::fs::write(&bad_first, "not json\n{\"text\": \"fine\"}\n").unwrap();
    let out = cli()
        .args(["invoke", "--local", "--model", MODEL, "--file"])
        .arg(&bad_first)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("nothing was classified"), "{stderr}");
    assert!(!stderr.contains("--skip"), "{stderr}");
}

/// A byte-order mark is not part of the first text; JSONL scores are written as the wire
/// writes them (one rounding for both); blank texts are classified as sent, with one warning
/// naming where they are.
#[test]
fn a_bom_is_dropped_scores_round_once_and_blank_texts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("texts.txt");
    std::fs::write(&file, "\u{feff}I love this!\n\n   \nThis is terrible\n").unwrap();
    let out = cli()
        .args([
            "invoke", "--local", "--model", "mini", "--output", "jsonl", "--file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "blank texts are kept: {stdout}");
    assert_eq!(lines[0]["text"], "I love this!");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 2 text(s) are empty or blank (#2, #3)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    // The same score, written the same way, in JSONL and in the wire's JSON.
    let json: Value = serde_json::from_str(&stdout_of([
        "invoke",
        "--local",
        "--model",
        "mini",
        "--output",
        "json",
        "I love this!",
    ]))
    .unwrap();
    let wire = json["body"]["results"][0]["score"].to_string();
    let jsonl_line = stdout.lines().next().unwrap();
    assert!(
        jsonl_line.contains(&format!("\"score\":{wire}")),
        "{jsonl_line} vs {wire}"
    );
    assert!(wire.len() <= 12, "{wire}");
}
