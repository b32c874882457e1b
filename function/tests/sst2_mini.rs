//! The bundled models/sst2-mini through tract agrees with onnxruntime on SST-2 dev.

mod common;

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

#[test]
fn tract_agrees_with_onnxruntime_on_every_dev_sentence() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let classifier =
        Classifier::load(root.join("models/sst2-mini"), &ClassifierOptions::default()).unwrap();
    assert!(!classifier.uses_fixed_batch_plans());
    let dev = std::fs::read_to_string(common::fixtures().join("sst2-dev.tsv")).unwrap();
    let texts: Vec<&str> = dev
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(texts.len(), 872);
    let reference: OrtPredictions = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("sst2-mini-dev-onnxruntime.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(reference.predictions.len(), texts.len());

    let predictions = classifier.predict(&texts).unwrap();
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
        "tract vs onnxruntime on SST-2 dev: {agreement:.4} label agreement, max |Δp| {worst:e}"
    );
    assert!(
        agreement >= 0.999,
        "{disagreements} of {} labels differ",
        texts.len()
    );
}
