//! `bench`: what a user of the function feels, measured in this process — cold start (process
//! start → first result, split into load / optimise / first run), warm throughput, per-call
//! latency and peak memory — on a texts file, sent in calls of `--batch` texts as the client
//! sends them. `tools/bench_reference.py` prints the same figures for the PyTorch stack we
//! replace and for onnxruntime; `bench/compare.sh` runs all three.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;

use crate::cli::{BenchArgs, GlobalArgs};
use crate::input;
use crate::output::{emit, render, table};
use crate::process::{cpu_name, peak_rss_mib, process_age};
use ummatics_sentiment_function::model::available_cores;
use ummatics_sentiment_function::LoadTimings;

/// Process start → the first result, and where the time went.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    /// Everything below, plus the time from process start to the model load (runtime start,
    /// argument parsing, reading the texts).
    pub total_ms: f64,
    /// Process start → the model loaded and tried, ready to answer: what Lambda reports as
    /// Init Duration.
    pub ready_ms: f64,
    /// Process start → the start of the model load.
    pub process_ms: f64,
    /// Reading the files, parsing the graph and the tokenizer.
    pub load_ms: f64,
    /// Optimising the graph into a runnable plan.
    pub optimise_ms: f64,
    /// The classifier's own test run plus the first call's texts.
    pub first_run_ms: f64,
    /// The model load stage by stage (they add up to `load_ms` + `optimise_ms` + the test run).
    pub stages: Stages,
}

/// The model load's stages, in milliseconds (see `ummatics_sentiment_function::LoadTimings`).
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    pub read_ms: f64,
    pub decode_ms: f64,
    pub expand_ms: f64,
    pub parse_ms: f64,
    pub tokenizer_ms: f64,
    pub typing_ms: f64,
    pub declutter_ms: f64,
    pub optimise_ms: f64,
    pub warm_up_ms: f64,
}

impl From<&LoadTimings> for Stages {
    fn from(t: &LoadTimings) -> Stages {
        Stages {
            read_ms: millis(t.read),
            decode_ms: millis(t.decode),
            expand_ms: millis(t.expand),
            parse_ms: millis(t.parse),
            tokenizer_ms: millis(t.tokenizer),
            typing_ms: millis(t.typing),
            declutter_ms: millis(t.declutter),
            optimise_ms: millis(t.optimise),
            warm_up_ms: millis(t.warm_up),
        }
    }
}

/// The steady state: every call after the first.
#[derive(Debug, Clone, Serialize)]
pub struct Warm {
    pub calls: usize,
    pub texts: usize,
    pub seconds: f64,
    pub texts_per_s: f64,
    pub call_p50_ms: f64,
    pub call_p95_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// What ran: `tract` here; the reference script says `pytorch` or `onnxruntime`.
    pub runtime: String,
    pub model: String,
    pub texts_file: String,
    pub texts: usize,
    /// Mean tokens per text, special tokens included.
    pub mean_tokens: f64,
    pub batch: usize,
    pub threads: usize,
    pub cold_start: ColdStart,
    pub warm: Warm,
    /// The process's peak resident memory (VmHWM), MiB.
    pub peak_rss_mib: f64,
    pub cpu: String,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} on {}: {} texts from {} (mean {:.1} tokens), calls of {}, {} thread{}, {}",
            self.runtime,
            self.model,
            self.texts,
            self.texts_file,
            self.mean_tokens,
            self.batch,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.cpu,
        )?;
        let mut rows = table(vec!["measure", "value"]);
        let ms = |v: f64| format!("{v:.0} ms");
        let c = &self.cold_start;
        let w = &self.warm;
        for (name, value) in [
            ("cold start: process → first result", ms(c.total_ms)),
            ("  process start → ready (init)", ms(c.ready_ms)),
            ("  process start → load", ms(c.process_ms)),
            ("  load (read + parse)", ms(c.load_ms)),
            ("    read model.onnx", ms(c.stages.read_ms)),
            ("    decode the protobuf", ms(c.stages.decode_ms)),
            ("    expand compact weights", ms(c.stages.expand_ms)),
            ("    build the graph", ms(c.stages.parse_ms)),
            ("    config + tokenizer", ms(c.stages.tokenizer_ms)),
            ("  optimise", ms(c.optimise_ms)),
            ("    types and shapes", ms(c.stages.typing_ms)),
            ("    declutter", ms(c.stages.declutter_ms)),
            ("    optimise into a plan", ms(c.stages.optimise_ms)),
            ("  first run", ms(c.first_run_ms)),
            ("    test run (part of init)", ms(c.stages.warm_up_ms)),
            ("warm throughput", format!("{:.1} texts/s", w.texts_per_s)),
            (
                "warm call latency p50 / p95",
                format!("{:.0} / {:.0} ms", w.call_p50_ms, w.call_p95_ms),
            ),
            ("peak RSS", format!("{:.0} MiB", self.peak_rss_mib)),
        ] {
            rows.add_row(vec![
                Cell::new(name),
                Cell::new(value).set_alignment(CellAlignment::Right),
            ]);
        }
        write!(f, "{}", render(&rows))
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(args: BenchArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let age_at_start = process_age().unwrap_or_default();
    let texts = read_texts(&args.texts, args.column.as_deref())?;
    let options = args.model.options()?;
    let threads = options.threads.unwrap_or_else(available_cores);
    // A Hub model is downloaded first; the download is not part of the cold start.
    let hub_dir = tempfile::tempdir()?;
    let spec = args.model.model.clone();
    let downloaded = matches!(spec, crate::models::ModelSpec::Hub(_));
    let download_started = Instant::now();
    let spec = spec.resolve(hub_dir.path()).await?;
    let download = if downloaded {
        download_started.elapsed()
    } else {
        Duration::ZERO
    };
    let batch = args.batch as usize;
    let rounds = args.rounds as usize;
    let model_name = args.model.model.to_string();
    let texts_file = args.texts.display().to_string();

    let report = tokio::task::spawn_blocking(move || -> Result<BenchReport> {
        let load_started = Instant::now();
        let classifier = spec.load(&options)?;
        let timings = classifier.load_timings();
        let calls: Vec<&[String]> = texts.chunks(batch).collect();
        classifier
            .classify(calls[0])
            .context("classification failed")?;
        let first_result = load_started.elapsed();
        let process_ms = millis(age_at_start + (load_started - started) - download);
        let cold_start = ColdStart {
            total_ms: process_ms + millis(first_result),
            ready_ms: process_ms + millis(timings.total()),
            process_ms,
            load_ms: millis(timings.loading()),
            optimise_ms: millis(timings.preparing()),
            first_run_ms: millis(
                first_result.saturating_sub(timings.loading() + timings.preparing()),
            ),
            stages: Stages::from(&timings),
        };

        let mut latencies = Vec::with_capacity(calls.len() * rounds);
        let warm_started = Instant::now();
        for _ in 0..rounds {
            for call in &calls {
                let t = Instant::now();
                classifier.classify(call).context("classification failed")?;
                latencies.push(millis(t.elapsed()));
            }
        }
        let seconds = warm_started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let encodings = classifier.encode(&texts)?;
        let tokens: usize = encodings.iter().map(|e| e.get_ids().len()).sum();
        Ok(BenchReport {
            runtime: "tract".into(),
            model: model_name,
            texts_file,
            texts: texts.len(),
            mean_tokens: tokens as f64 / texts.len() as f64,
            batch,
            threads,
            cold_start,
            warm: Warm {
                calls: latencies.len(),
                texts: texts.len() * rounds,
                seconds,
                texts_per_s: (texts.len() * rounds) as f64 / seconds,
                call_p50_ms: quantile(&latencies, 0.50),
                call_p95_ms: quantile(&latencies, 0.95),
            },
            peak_rss_mib: peak_rss_mib().unwrap_or(f64::NAN),
            cpu: cpu_name(),
        })
    })
    .await??;
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn read_texts(path: &Path, column: Option<&str>) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let texts = input::read_texts(&path.display().to_string(), path, &bytes, column)?;
    if texts.is_empty() {
        bail!(
            "{}: no texts to measure with; give a file with one text per line (or a text column)",
            path.display()
        );
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 10.0);
        assert_eq!(quantile(&v, 0.95), 19.0);
        assert_eq!(quantile(&v, 1.0), 20.0);
        assert_eq!(quantile(&[7.0], 0.95), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
