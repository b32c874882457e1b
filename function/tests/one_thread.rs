//! `threads: Some(1)` is one thread: tokenising and the model both run on the calling thread,
//! not on rayon's global pool or a pool of tract's. Its own test binary (one process, one test),
//! so the process's CPU time is this test's.

use std::path::Path;
use std::time::Duration;

use ummatics_sentiment_function::{Classifier, ClassifierOptions};

/// User + system CPU time from a `/proc/.../stat` file (fields 14 and 15, in clock ticks of
/// 10 ms).
fn cpu(stat: &str) -> Duration {
    let text = std::fs::read_to_string(stat).unwrap();
    // The command name (field 2) may hold spaces: count from after its closing parenthesis.
    let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[test]
fn one_thread_tokenises_and_multiplies_on_the_calling_thread() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-distilbert");
    let options = ClassifierOptions {
        threads: Some(1),
        // A short window, so tokenising (bounded by the window's byte budget, ~1 KB a text)
        // is most of the work: if it ran elsewhere, most CPU time would be elsewhere.
        max_tokens: Some(8),
        ..ClassifierOptions::default()
    };
    let classifier = Classifier::load(&model, &options).unwrap();
    assert_eq!(classifier.threads(), 1);
    let text = "a fine day, though not a great one; the film was long and slow. ".repeat(16);
    let texts: Vec<&str> = (0..50).map(|_| text.as_str()).collect();

    let (process, thread) = (cpu("/proc/self/stat"), cpu("/proc/thread-self/stat"));
    let mut calls = 0;
    // At least a second of CPU, so that the 10 ms ticks are small beside it.
    while cpu("/proc/thread-self/stat") - thread < Duration::from_secs(1) && calls < 2_000 {
        classifier.classify(&texts).unwrap();
        calls += 1;
    }
    let on_this_thread = cpu("/proc/thread-self/stat") - thread;
    let in_process = cpu("/proc/self/stat") - process;
    let elsewhere = in_process.saturating_sub(on_this_thread);
    assert!(
        elsewhere <= in_process / 20 + Duration::from_millis(30),
        "{calls} calls: {elsewhere:?} of {in_process:?} CPU ran on other threads"
    );
}
