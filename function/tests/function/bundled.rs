//! The bundled models through tract agree with onnxruntime on SST-2 dev: models/sst2-minilm
//! (the default; compact int8 weights, expanded to f32 by the loader) and models/sst2-mini.

use crate::common;

use serde::Deserialize;
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

#[derive(Deserialize)]
struct OrtPrediction {
    label: usize,
    positive: f64,
}

#[derive(Deserialize)]
struct OrtPredictions {
    predictions: Vec<OrtPrediction>,
}

/// Runs `models/NAME` on SST-2 dev and compares it with `tests/fixtures/NAME-dev-onnxruntime.json`
/// (written by the model's training script); returns tract's accuracy.
fn agrees_with_onnxruntime(name: &str) -> f64 {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let classifier = Classifier::load(
        root.join("models").join(name),
        &ClassifierOptions::default(),
    )
    .unwrap();
    assert!(!classifier.uses_fixed_batch_plans());
    let dev = std::fs::read_to_string(common::fixtures().join("sst2-dev.tsv")).unwrap();
    let texts: Vec<&str> = dev
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(texts.len(), 872);
    let reference: OrtPredictions = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join(format!("{name}-dev-onnxruntime.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(reference.predictions.len(), texts.len());

    let predictions = classifier.predict(&texts).unwrap();
    let labels: Vec<u8> = dev
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    let correct = predictions
        .iter()
        .zip(&labels)
        .filter(|(p, &l)| p.label == l as usize)
        .count();
    let mut disagreements = 0;
    let mut worst: f64 = 0.0;
    for (i, (ours, theirs)) in predictions.iter().zip(&reference.predictions).enumerate() {
        if ours.label != theirs.label {
            disagreements += 1;
        }
        let delta = (ours.probabilities[1] as f64 - theirs.positive).abs();
        assert!(
            delta <= 1e-4,
            "sentence {i}: tract {} onnxruntime {}",
            ours.probabilities[1],
            theirs.positive
        );
        worst = worst.max(delta);
    }
    let agreement = 1.0 - disagreements as f64 / texts.len() as f64;
    eprintln!(
        "{name}: tract vs onnxruntime on SST-2 dev: {agreement:.4} label agreement, max |Δp| {worst:e}; accuracy {correct}/872"
    );
    assert!(
        agreement >= 0.999,
        "{disagreements} of {} labels differ",
        texts.len()
    );
    correct as f64 / texts.len() as f64
}

#[test]
fn the_default_model_agrees_with_onnxruntime_and_scores_90_percent() {
    let accuracy = agrees_with_onnxruntime("sst2-minilm");
    assert!(accuracy >= 0.90, "sst2-minilm: {accuracy}");
}

#[test]
fn the_small_model_agrees_with_onnxruntime() {
    let accuracy = agrees_with_onnxruntime("sst2-mini");
    assert!((accuracy - 0.8211).abs() < 0.002, "sst2-mini: {accuracy}");
}
