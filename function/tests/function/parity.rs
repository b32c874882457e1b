//! tract against the committed onnxruntime reference, tokenisation included.

use crate::common;

use crate::common::{classifier, copy_fixture, reference};
use ummatics_sentiment_function::{Classifier, ClassifierOptions, Prediction};

const TOLERANCE: f64 = 1e-4;
/// How far a probability may move between batch compositions on the fixed-batch-plan fallback
/// (README, "The function").
const FALLBACK_BATCH_TOLERANCE: f64 = 1e-5;

fn max_delta(predictions: &[Prediction]) -> f64 {
    max_delta_against(&reference(), predictions)
}

fn max_delta_against(reference: &common::Reference, predictions: &[Prediction]) -> f64 {
    assert_eq!(
        predictions.len(),
        reference.cases.len(),
        "one prediction per reference case"
    );
    let mut worst: f64 = 0.0;
    for (case, prediction) in reference.cases.iter().zip(predictions) {
        assert_eq!(
            prediction.probabilities.len(),
            case.probabilities.len(),
            "{}",
            case.name
        );
        for (got, want) in prediction.probabilities.iter().zip(&case.probabilities) {
            let delta = (*got as f64 - want).abs();
            assert!(
                delta <= TOLERANCE,
                "{}: tract p={got} onnxruntime p={want} (|Δ|={delta:e})",
                case.name
            );
            worst = worst.max(delta);
        }
        assert_eq!(
            reference.labels[prediction.label], case.label,
            "{}: label differs",
            case.name
        );
    }
    worst
}

#[test]
fn reference_covers_the_required_cases() {
    let reference = reference();
    assert!(reference.cases.len() >= 20);
    assert!(reference.cases.iter().any(|c| c.text.is_empty()));
    assert!(
        reference
            .cases
            .iter()
            .any(|c| c.input_ids.len() == reference.max_tokens),
        "a text longer than the window"
    );
    assert_eq!(classifier().max_tokens(), reference.max_tokens);
}

#[test]
fn tokenisation_matches_the_python_tokenizer() {
    let reference = reference();
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let encodings = classifier().encode(&texts).unwrap();
    for (case, encoding) in reference.cases.iter().zip(&encodings) {
        assert_eq!(
            encoding.get_ids(),
            case.input_ids.as_slice(),
            "{}",
            case.name
        );
    }
}

#[test]
fn probabilities_match_onnxruntime_in_one_batch() {
    let reference = reference();
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let predictions = classifier().predict(&texts).unwrap();
    let worst = max_delta(&predictions);
    eprintln!("max |Δp| tract vs onnxruntime, batched: {worst:e}");
}

#[test]
fn probabilities_match_onnxruntime_one_at_a_time() {
    let reference = reference();
    let predictions: Vec<Prediction> = reference
        .cases
        .iter()
        .map(|c| classifier().predict(&[c.text.as_str()]).unwrap().remove(0))
        .collect();
    let worst = max_delta(&predictions);
    eprintln!("max |Δp| tract vs onnxruntime, one at a time: {worst:e}");
}

#[test]
fn vocab_txt_without_tokenizer_json_gives_the_same_results() {
    let dir = copy_fixture(&[
        "model.onnx",
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
    ]);
    let classifier = Classifier::load(dir.path(), &ClassifierOptions::default()).unwrap();
    let reference = reference();
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let encodings = classifier.encode(&texts).unwrap();
    for (case, encoding) in reference.cases.iter().zip(&encodings) {
        assert_eq!(
            encoding.get_ids(),
            case.input_ids.as_slice(),
            "{}",
            case.name
        );
    }
    max_delta(&classifier.predict(&texts).unwrap());
}

/// Loads the fixture model with this truncation window.
fn load_with_window(max_tokens: usize) -> anyhow::Result<Classifier> {
    let options = ClassifierOptions {
        max_tokens: Some(max_tokens),
        ..ClassifierOptions::default()
    };
    Classifier::load(common::fixture_model(), &options)
}

#[test]
fn truncation_window_is_settable() {
    let classifier = load_with_window(16).unwrap();
    let reference = reference();
    let long = reference
        .cases
        .iter()
        .find(|c| c.input_ids.len() == 512)
        .unwrap();
    let encoding = &classifier.encode(&[long.text.as_str()]).unwrap()[0];
    assert_eq!(encoding.get_ids().len(), 16);
    // Same first 15 tokens as the full encoding, then [SEP].
    assert_eq!(&encoding.get_ids()[..15], &long.input_ids[..15]);
    assert_eq!(encoding.get_ids()[15], *long.input_ids.last().unwrap());
    // And the model reads only that window: shorter input, different probabilities.
    let short = classifier.predict(&[long.text.as_str()]).unwrap().remove(0);
    let full = common::classifier()
        .predict(&[long.text.as_str()])
        .unwrap()
        .remove(0);
    assert_ne!(short.probabilities, full.probabilities);
}

#[test]
fn a_window_larger_than_the_model_is_refused() {
    let err = load_with_window(1024).unwrap_err();
    assert!(
        format!("{err:#}").contains("larger than the model window (512"),
        "{err:#}"
    );
}

#[test]
fn transformers5_export_falls_back_to_fixed_batch_plans() {
    // transformers >= 5's legacy exporter flattens over [batch, sequence]; tract cannot
    // optimise that with two symbols, so the classifier builds a plan per batch size.
    let reference = common::reference_named("tiny-distilbert-tf5");
    let classifier = Classifier::load(
        common::fixtures().join("tiny-distilbert-tf5"),
        &ClassifierOptions::default(),
    )
    .unwrap();
    assert!(classifier.uses_fixed_batch_plans());
    assert!(
        !common::classifier().uses_fixed_batch_plans(),
        "the main fixture optimises symbolically"
    );
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    // 25 texts in one call (micro-batches split 16 + 8 + 1 …), then each alone.
    let batched = classifier.predict(&texts).unwrap();
    let worst = max_delta_against(&reference, &batched);
    let alone: Vec<Prediction> = texts
        .iter()
        .map(|t| classifier.predict(&[*t]).unwrap().remove(0))
        .collect();
    // Plans for different batch sizes may pick different matmul kernels (AVX2, AVX-512, NEON
    // tile shapes) and so sum in another order: the README promises agreement within
    // FALLBACK_BATCH_TOLERANCE and the same label, not bit-identity, on this path.
    assert_eq!(alone.len(), batched.len());
    let mut spread: f64 = 0.0;
    for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
        assert_eq!(a.label, b.label, "{}: label alone vs batched", texts[i]);
        assert_eq!(a.probabilities.len(), b.probabilities.len());
        for (x, y) in a.probabilities.iter().zip(&b.probabilities) {
            let delta = (*x as f64 - *y as f64).abs();
            assert!(
                delta <= FALLBACK_BATCH_TOLERANCE,
                "{}: p alone {x} vs batched {y} (|Δ|={delta:e})",
                texts[i]
            );
            spread = spread.max(delta);
        }
    }
    eprintln!(
        "max |Δp| tract (fixed-batch plans) vs onnxruntime: {worst:e}; alone vs batched: {spread:e}"
    );
}
