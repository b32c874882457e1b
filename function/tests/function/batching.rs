//! A text's result does not depend on what it is batched with, and order is kept.

use crate::common::{classifier, reference};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// 50 texts: the reference texts plus generated ones of many lengths.
fn fifty_texts() -> Vec<String> {
    let mut texts: Vec<String> = reference().cases.into_iter().map(|c| c.text).collect();
    let words = [
        "good", "bad", "film", "plot", "great", "awful", "the", "was", "not", "!",
    ];
    let mut i = 0;
    while texts.len() < 50 {
        let n = 1 + (i * 7) % 90;
        texts.push(
            (0..n)
                .map(|j| words[(i + j * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" "),
        );
        i += 1;
    }
    texts
}

#[test]
fn results_are_identical_alone_batched_and_shuffled() {
    let texts = fifty_texts();
    let classifier = classifier();
    let alone: Vec<_> = texts
        .iter()
        .map(|t| classifier.predict(&[t.as_str()]).unwrap().remove(0))
        .collect();
    let batched = classifier.predict(&texts).unwrap();
    assert_eq!(batched.len(), texts.len());

    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(7));
    let shuffled_texts: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
    let shuffled = classifier.predict(&shuffled_texts).unwrap();

    for i in 0..texts.len() {
        assert_eq!(
            batched[i], alone[i],
            "text {i} batched vs alone: {:?}",
            texts[i]
        );
    }
    for (position, &i) in order.iter().enumerate() {
        assert_eq!(shuffled[position], alone[i], "text {i} shuffled vs alone");
    }
}

#[test]
fn duplicates_and_empty_texts_each_get_a_result() {
    let texts = ["", "same", "same", "   ", ""];
    let results = classifier().classify(&texts).unwrap();
    assert_eq!(results.len(), texts.len());
    assert_eq!(results[1], results[2]);
    assert_eq!(results[0], results[4]);
}
