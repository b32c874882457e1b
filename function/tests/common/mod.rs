//! Shared helpers for the function's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use ummatics_sentiment_function::{Classifier, ClassifierOptions};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn fixture_model() -> PathBuf {
    fixtures().join("tiny-distilbert")
}

/// One text of the onnxruntime reference written by tools/make_fixture_model.py.
#[derive(Debug, Deserialize)]
pub struct ReferenceCase {
    pub name: String,
    pub text: String,
    pub input_ids: Vec<u32>,
    pub probabilities: Vec<f64>,
    pub label: String,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub max_tokens: usize,
    pub labels: Vec<String>,
    pub cases: Vec<ReferenceCase>,
}

pub fn reference() -> Reference {
    reference_named("tiny-distilbert")
}

pub fn reference_named(name: &str) -> Reference {
    let path = fixtures().join(format!("{name}-reference.json"));
    let text = std::fs::read_to_string(&path).expect("reference file");
    serde_json::from_str(&text).expect("reference JSON")
}

/// The fixture classifier, loaded once per test binary.
pub fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        Classifier::load(fixture_model(), &ClassifierOptions::default())
            .expect("fixture model loads")
    })
}

/// Copies the named files of the fixture model into a fresh temporary directory.
pub fn copy_fixture(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in files {
        std::fs::copy(fixture_model().join(name), dir.path().join(name))
            .expect("copy fixture file");
    }
    dir
}
