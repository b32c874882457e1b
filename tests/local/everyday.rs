//! The default model on everyday text (tests/fixtures/everyday.tsv: 100 sentences written and
//! labelled by hand for this test — product reviews, support messages, posts — half of them
//! hard: negation, double negatives, contrast where one clause wins, faint praise).

use clap::Parser;
use ummatics_sentiment::cli::{Cli, Command};
use ummatics_sentiment::input::{read_records, Column, DataFormat};
use ummatics_sentiment::models::{Embedded, ModelSpec};
use ummatics_sentiment_function::ClassifierOptions;

const EVERYDAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/everyday.tsv");
/// 60 more (40 hard, 20 plain), written after the first set and before the model was trained on
/// any generated sentence (they keep away from both sets); a check that what the model learnt
/// from them carries over to sentences nobody tuned anything on.
const HELD_OUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/everyday-heldout.tsv"
);

/// Accuracy of `model` on the plain and on the hard sentences of `path` (which holds
/// `[plain, hard]` sentences), and the misses.
fn score(model: &ModelSpec, path: &str, counts: [usize; 2]) -> (f64, f64, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let rows = read_records(
        path,
        &bytes,
        DataFormat::Tsv,
        &[
            Column::text("text"),
            Column::label("label"),
            Column::text("kind"),
        ],
        "",
    )
    .unwrap();
    assert_eq!(rows.len(), counts[0] + counts[1]);
    let classifier = model.load(&ClassifierOptions::default()).unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r.values[0].as_str()).collect();
    let predictions = classifier.predict(&texts).unwrap();
    let (mut right, mut total) = ([0usize; 2], [0usize; 2]);
    let mut misses = Vec::new();
    for (row, prediction) in rows.iter().zip(&predictions) {
        let hard = match row.values[2].as_str() {
            "plain" => 0,
            "hard" => 1,
            other => panic!("line {}: kind {other:?}", row.line),
        };
        let label: usize = row.values[1].parse().unwrap();
        total[hard] += 1;
        if prediction.label == label {
            right[hard] += 1;
        } else {
            misses.push(format!(
                "{} ({:.2}) {:?}",
                classifier.labels()[prediction.label],
                prediction.score(),
                row.values[0]
            ));
        }
    }
    assert_eq!(total, counts, "plain and hard sentences");
    (
        right[0] as f64 / total[0] as f64,
        right[1] as f64 / total[1] as f64,
        misses,
    )
}

#[test]
fn the_default_model_reads_everyday_text() {
    // The model a command uses when none is named is the one measured here.
    let cli = Cli::try_parse_from(["ummatics-sentiment", "invoke", "--local", "x"]).unwrap();
    let Command::Invoke(args) = cli.command else {
        unreachable!()
    };
    assert_eq!(args.model.model, ModelSpec::Embedded(Embedded::DEFAULT));

    let (plain, hard, misses) = score(&args.model.model, EVERYDAY, [50, 50]);
    eprintln!(
        "default model: plain {:.0} %, hard {:.0} %; misses:\n  {}",
        plain * 100.0,
        hard * 100.0,
        misses.join("\n  ")
    );
    // Issue 14's targets: 90 % plain and 85 % hard. Measured: 98 % and 98 % (the model before,
    // trained on SST-2 alone: 98 % and 76 %; models/sst2-minilm/MODEL_CARD.md).
    assert!(plain >= 0.90, "plain sentences: {plain}");
    assert!(hard >= 0.85, "hard sentences: {hard}");
}

#[test]
fn the_default_model_on_sentences_nobody_tuned_on() {
    let (plain, hard, misses) = score(&ModelSpec::Embedded(Embedded::DEFAULT), HELD_OUT, [20, 40]);
    eprintln!(
        "default model, held-out set: plain {:.0} %, hard {:.1} %; misses:\n  {}",
        plain * 100.0,
        hard * 100.0,
        misses.join("\n  ")
    );
    // Measured: 95 % plain, 82.5 % hard (33 of 40; the model before: 77.5 %). The first set's
    // failure classes shaped the generated training sentences, so that set flatters the model
    // and this one does not: 2.5 points under the 85 % target here (MODEL_CARD.md). The floors
    // keep what was reached.
    assert!(plain >= 0.90, "plain sentences: {plain}");
    assert!(hard >= 0.825, "hard sentences: {hard}");
}

#[test]
fn the_small_model_is_measured_on_the_same_set() {
    // Reported for comparison (README, model cards); it is not held to the targets.
    let (plain, hard, _) = score(&ModelSpec::Embedded(Embedded::Mini), EVERYDAY, [50, 50]);
    eprintln!(
        "sst2-mini: plain {:.0} %, hard {:.0} %",
        plain * 100.0,
        hard * 100.0
    );
    // Measured: 94 % plain, 52 % hard (chance on the hard ones).
    assert!(plain >= 0.90, "plain sentences: {plain}");
}

/// tests/fixtures/everyday-domains.tsv: 432 sentences written by hand over 12 domains (stay,
/// food, shopping, delivery, banking, health, repairs, travel, software, education, housing,
/// telecom), half positive, two thirds of them implicit (an outcome or a fact, no sentiment
/// word: "The leak under our sink was fixed before the weekend."). Written apart from both
/// sentence generators (tools/everyday_data.py, tools/everyday_outcomes.py, which drop
/// anything sharing four words in a row with it) and never trained on.
const DOMAINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/everyday-domains.tsv"
);

/// Right answers of `model` on the domains set: overall, per domain, and per kind and label
/// (`implicit-pos`, …), as (right, total).
fn by_group(model: &ModelSpec) -> std::collections::BTreeMap<String, (usize, usize)> {
    let bytes = std::fs::read(DOMAINS).unwrap();
    let rows = read_records(
        DOMAINS,
        &bytes,
        DataFormat::Tsv,
        &[
            Column::text("text"),
            Column::label("label"),
            Column::text("domain"),
            Column::text("kind"),
        ],
        "",
    )
    .unwrap();
    assert_eq!(rows.len(), 432);
    let classifier = model.load(&ClassifierOptions::default()).unwrap();
    let texts: Vec<&str> = rows.iter().map(|r| r.values[0].as_str()).collect();
    let predictions = classifier.predict(&texts).unwrap();
    let mut groups = std::collections::BTreeMap::new();
    for (row, prediction) in rows.iter().zip(&predictions) {
        let label: usize = row.values[1].parse().unwrap();
        let right = usize::from(prediction.label == label);
        let side = if label == 1 { "pos" } else { "neg" };
        for key in [
            "all".to_string(),
            format!("domain {}", row.values[2]),
            format!("{}-{side}", row.values[3]),
        ] {
            let entry = groups.entry(key).or_insert((0, 0));
            entry.0 += right;
            entry.1 += 1;
        }
    }
    let line: Vec<String> = groups
        .iter()
        .map(|(k, (r, t))| format!("{k} {:.1} %", 100.0 * *r as f64 / *t as f64))
        .collect();
    eprintln!("{model} on everyday-domains.tsv: {}", line.join(", "));
    groups
}

#[test]
fn the_everyday_domains_set_is_scored_by_domain_and_kind() {
    // Issue 36's held-out set, before a model trained for it ships: the floors hold what the
    // shipped models score today (two sentences under each count, for the last bits that
    // differ between CPUs), so any change to them shows. Measured (models/sst2-minilm):
    // 72.0 % overall, explicit 98.6 %, implicit negative 94.4 %, implicit positive 22.9 % —
    // everyday praise that describes an outcome reads as a complaint. Targets for the next
    // default: >= 92 % overall, >= 90 % implicit positive, no domain under 85 %.
    let floors = [
        (
            Embedded::Minilm,
            [
                ("all", 311),
                ("explicit-pos", 71),
                ("explicit-neg", 71),
                ("implicit-neg", 136),
                ("implicit-pos", 33),
            ],
        ),
        (
            Embedded::Mini,
            [
                ("all", 266),
                ("explicit-pos", 66),
                ("explicit-neg", 70),
                ("implicit-neg", 109),
                ("implicit-pos", 21),
            ],
        ),
    ];
    for (model, floors) in floors {
        let groups = by_group(&ModelSpec::Embedded(model));
        assert_eq!(
            groups.keys().filter(|k| k.starts_with("domain ")).count(),
            12
        );
        for (group, measured) in floors {
            let (right, total) = groups[group];
            assert!(
                right + 2 >= measured,
                "{model:?} {group}: {right} of {total}, measured {measured} when the set was made"
            );
        }
    }
}
