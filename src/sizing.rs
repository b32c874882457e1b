//! Lambda memory size and cost per 10 000 texts, from measured throughput (BENCHMARKS.md).
//!
//! Lambda bills memory × duration and gives a function CPU in proportion to its memory: one
//! vCPU at 1769 MB. The function runs one inference thread per vCPU Lambda gives, rounded up:
//! one up to 1769 MB, two up to 3538 MB, at most six ([`crate::lambda::threads_for_memory`]). Throughput was measured with `bench/compare.sh` on
//! dedicated cores with 1 and 2 threads; a function with a fraction of a vCPU gets that
//! fraction of the CPU time, so:
//! - 1 thread, m ≤ 1769 MB: seconds per text = 1 / (tps₁ · m/1769): below one vCPU the cost
//!   does not depend on the memory size — only the latency does.
//! - 2 threads: the work is 2 / tps₂ CPU-seconds per text, spread over min(m/1769, 2) vCPUs.
//!   Because 2 threads are less than twice as fast as one, any size above 1769 MB costs more
//!   per text than 1769 MB.

use serde::Serialize;

use crate::lambda::{threads_for_memory, Arch, MB_PER_VCPU};
use crate::models::{Embedded, ModelSpec};
use crate::pricing::{self, prices};

/// Texts per estimate.
pub const TEXTS: f64 = 10_000.0;

/// What `bench/compare.sh` measured for one model on tract (medians; BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measured {
    pub model: &'static str,
    /// Warm texts per second on SST-2 dev (calls of 50) with 1 and with 2 threads.
    pub texts_per_s: [f64; 2],
    /// Peak resident memory of the bench process, MiB.
    pub peak_rss_mib: f64,
    /// Process start to model ready (Lambda's INIT, billed), and the first call of 50 texts
    /// after it, 1 thread: what a cold call adds.
    pub init_ms: f64,
    pub first_call_ms: f64,
    pub measured_on: &'static str,
}

/// A DistilBERT-base SST-2 classifier (66 M parameters, random weights of the exact
/// architecture) — the size of `distilbert-base-uncased-finetuned-sst-2-english`.
pub const DISTILBERT_BASE: Measured = Measured {
    model: "DistilBERT-base (66 M parameters)",
    texts_per_s: [25.8, 40.0],
    peak_rss_mib: 557.0,
    init_ms: 661.0,
    first_call_ms: 1849.0,
    measured_on: "2026-11-29, AMD EPYC (x86_64, AVX2), BENCHMARKS.md",
};

/// The bundled `sst2-mini` (3 layers, dim 128).
pub const SST2_MINI: Measured = Measured {
    model: "sst2-mini (bundled)",
    texts_per_s: [836.0, 1266.0],
    peak_rss_mib: 54.0,
    init_ms: 109.0,
    first_call_ms: 65.0,
    measured_on: "2026-11-29, AMD EPYC (x86_64, AVX2), BENCHMARKS.md",
};

/// The bundled default `sst2-minilm` (6 layers, 384 wide, compact weights: the embedding
/// tables stay 8-bit, the rest is expanded to f32), release build. Speed: 1 thread is the
/// median of `bench/compare.sh`'s three interleaved runs (BENCHMARKS.md); 2 threads come from
/// one `bench` run of two passes, where 1 thread gave 97.0 texts/s — the lower figure is kept.
/// Cold start and memory are the build Lambda runs: the static `bootstrap` under
/// `bench/lambda_emulator.py` (one core, 9 runs, medians, 2026-12-07): Init Duration 131 ms,
/// the first call of 50 texts 550 ms (the host's fast huge-page state; 250–435 ms init in slower ones); peak RSS over the load and four calls 174 MiB (the
/// glibc build's 178 MiB is the one kept; before the tables stayed 8-bit, 252 MiB).
pub const SST2_MINILM: Measured = Measured {
    model: "sst2-minilm (bundled default)",
    texts_per_s: [87.9, 124.6],
    peak_rss_mib: 178.0,
    init_ms: 131.0,
    first_call_ms: 550.0,
    measured_on: "2026-11-30 (speed) and 2026-12-07 (cold start, memory), Intel Xeon (x86_64, AVX-512), release builds",
};

/// The memory `deploy` uses unless told otherwise: [`default_memory`] of both measured models
/// (a test keeps them equal).
pub const DEFAULT_MEMORY_MB: u32 = 1769;

/// Memory the function needs besides the model: the runtime, the image's pages, the request.
const HEADROOM_MB: f64 = 256.0;

/// Seconds of billed duration per text at `memory_mb`.
pub fn seconds_per_text(m: &Measured, memory_mb: u32) -> f64 {
    let vcpus = f64::from(memory_mb) / f64::from(MB_PER_VCPU);
    match threads_for_memory(memory_mb) {
        1 => 1.0 / (m.texts_per_s[0] * vcpus.min(1.0)),
        // Two threads or more: only two were measured, so no gain is assumed beyond them.
        _ => 2.0 / (m.texts_per_s[1] * vcpus.min(2.0)),
    }
}

/// The estimate deploy prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub memory_mb: u32,
    pub gb_seconds_per_10k_texts: f64,
    pub usd_per_10k_texts: f64,
    /// Billed time of one call of 50 texts.
    pub ms_per_call_of_50: f64,
    /// Billed time of a cold call of 50 texts: INIT (billed since August 2025) and the first
    /// call after it.
    pub ms_per_cold_call_of_50: f64,
    pub usd_per_call_of_50: f64,
    pub usd_per_cold_call_of_50: f64,
    /// GB-s per 10 000 texts when every call of 50 is cold (a batch job whose every call
    /// starts an execution environment): the worst case beside the warm figure.
    pub gb_seconds_per_10k_texts_all_cold: f64,
    /// The speed assumed: texts per second on one vCPU (one inference thread).
    pub texts_per_s_per_vcpu: f64,
    /// The model and texts the speed was measured with.
    pub basis: String,
}

impl std::fmt::Display for Estimate {
    /// What it means for the user: the cost and latency, the speed they rest on, and how to
    /// measure their own (Lambda's CPUs differ from the machine this was measured on, and
    /// between Lambda hosts).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "≈ {:.0} GB-s ({}) per 10 000 texts, ≈ {:.0} ms per call of 50\n            \
             a cold call (INIT, billed, + the first call) ≈ {:.0} ms, {} against {} warm; \
             ≈ {:.0} GB-s per 10 000 texts if every call is cold\n            \
             assumes {:.0} texts/s per vCPU ({}); Lambda's CPUs vary, so measure yours: \
             ummatics-sentiment bench",
            self.gb_seconds_per_10k_texts,
            crate::output::usd(self.usd_per_10k_texts),
            self.ms_per_call_of_50,
            self.ms_per_cold_call_of_50,
            crate::output::usd(self.usd_per_cold_call_of_50),
            crate::output::usd(self.usd_per_call_of_50),
            self.gb_seconds_per_10k_texts_all_cold,
            self.texts_per_s_per_vcpu,
            self.basis
        )
    }
}

pub fn gb_seconds_per_10k(m: &Measured, memory_mb: u32) -> f64 {
    pricing::gb_seconds(TEXTS * seconds_per_text(m, memory_mb) * 1000.0, memory_mb)
}

pub fn estimate(m: &Measured, memory_mb: u32, arch: Arch) -> Estimate {
    let gb_s = gb_seconds_per_10k(m, memory_mb);
    let per_gb_s = pricing::per_gb_s(arch);
    let warm_ms = 50.0 * seconds_per_text(m, memory_mb) * 1000.0;
    // Measured on one full vCPU; a smaller share of one stretches it alike.
    let share = (f64::from(memory_mb) / f64::from(MB_PER_VCPU)).min(1.0);
    let cold_ms = (m.init_ms + m.first_call_ms) / share;
    let call_usd = |ms: f64| pricing::call_usd(ms, memory_mb, arch);
    Estimate {
        memory_mb,
        gb_seconds_per_10k_texts: gb_s,
        usd_per_10k_texts: gb_s * per_gb_s + TEXTS / 50.0 * prices::PER_REQUEST,
        ms_per_call_of_50: warm_ms,
        ms_per_cold_call_of_50: cold_ms,
        usd_per_call_of_50: call_usd(warm_ms),
        usd_per_cold_call_of_50: call_usd(cold_ms),
        gb_seconds_per_10k_texts_all_cold: TEXTS / 50.0 * pricing::gb_seconds(cold_ms, memory_mb),
        texts_per_s_per_vcpu: m.texts_per_s[0],
        basis: format!("{}, SST-2-length texts in calls of 50", m.model),
    }
}

/// The cheapest memory size per text that holds the model; among sizes that cost the same
/// (within 0.5 %), the largest, which answers fastest.
pub fn default_memory(m: &Measured) -> u32 {
    let floor = (m.peak_rss_mib * 1.25 + HEADROOM_MB).ceil() as u32;
    let mut best = (u32::MAX, f64::INFINITY);
    for memory in (128..=10_240).filter(|mb| *mb >= floor) {
        let cost = gb_seconds_per_10k(m, memory);
        if cost < best.1 * 0.995 || (cost <= best.1 * 1.005 && memory > best.0) {
            best = (memory, cost.min(best.1));
        }
    }
    best.0
}

/// The least memory the function runs `model` in, with `onnx_bytes` its ONNX file: a
/// built-in model's measured peak resident memory, any other model's twice its file (tract
/// reads the file, then holds the optimised plan's own copy of the weights), plus the
/// runtime's headroom. Below it every call runs out of memory.
pub fn minimum_memory_mb(model: &ModelSpec, onnx_bytes: u64) -> u32 {
    let peak_mib = match model {
        ModelSpec::Embedded(_) => measured_for(model).peak_rss_mib,
        _ => 2.0 * onnx_bytes as f64 / (1024.0 * 1024.0),
    };
    (peak_mib + HEADROOM_MB).ceil() as u32
}

/// The measurement that stands for a model: a built-in one's own, DistilBERT-base's for any
/// other (the size of the models people deploy; smaller ones cost less).
pub fn measured_for(model: &ModelSpec) -> &'static Measured {
    match model {
        ModelSpec::Embedded(Embedded::Minilm) => &SST2_MINILM,
        ModelSpec::Embedded(Embedded::Mini) => &SST2_MINI,
        _ => &DISTILBERT_BASE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_one_vcpu_the_cost_is_flat_and_above_it_rises() {
        let m = &DISTILBERT_BASE;
        let at = |mb| gb_seconds_per_10k(m, mb);
        assert!((at(1024) - at(1769)).abs() / at(1769) < 1e-9);
        assert!(at(2048) > at(1769) * 1.05, "{} vs {}", at(2048), at(1769));
        assert!(at(3538) > at(1769));
        // 1 thread at 1769 MB: 10 000 texts at tps₁ texts/s, billed at 1769/1024 GB.
        let expected = 1769.0 / 1024.0 * 10_000.0 / m.texts_per_s[0];
        assert!((at(1769) - expected).abs() < 1e-6);
    }

    #[test]
    fn the_default_memory_is_the_measured_cheapest() {
        assert_eq!(default_memory(&DISTILBERT_BASE), DEFAULT_MEMORY_MB);
        assert_eq!(default_memory(&SST2_MINI), DEFAULT_MEMORY_MB);
        assert_eq!(default_memory(&SST2_MINILM), DEFAULT_MEMORY_MB);
    }

    #[test]
    fn a_model_that_does_not_fit_moves_the_default_up() {
        let big = Measured {
            peak_rss_mib: 2000.0,
            ..DISTILBERT_BASE
        };
        assert!(default_memory(&big) >= 2756);
    }

    #[test]
    fn the_minimum_memory_is_the_model_peak_plus_headroom() {
        let minilm = ModelSpec::Embedded(Embedded::Minilm);
        assert_eq!(minimum_memory_mb(&minilm, 0), 434);
        assert_eq!(
            minimum_memory_mb(&ModelSpec::Embedded(Embedded::Mini), 0),
            310
        );
        // Another model: twice its file.
        let dir = ModelSpec::Dir("m".into());
        assert_eq!(minimum_memory_mb(&dir, 256 * 1024 * 1024), 768);
        assert!(minimum_memory_mb(&minilm, 0) < DEFAULT_MEMORY_MB);
    }

    #[test]
    fn the_estimate_line_says_what_it_assumes_and_how_to_measure() {
        let e = estimate(&SST2_MINILM, 1769, Arch::X86_64);
        assert_eq!(
            e.to_string(),
            "≈ 197 GB-s ($0.0033) per 10 000 texts, ≈ 569 ms per call of 50\n            \
             a cold call (INIT, billed, + the first call) ≈ 681 ms, $0.000020 against $0.000017 warm; \
             ≈ 235 GB-s per 10 000 texts if every call is cold\n            \
             assumes 88 texts/s per vCPU (sst2-minilm (bundled default), SST-2-length texts in \
             calls of 50); Lambda's CPUs vary, so measure yours: ummatics-sentiment bench"
        );
        assert!(!e.to_string().contains("Xeon"));
    }

    #[test]
    fn estimate_prices_compute_and_requests() {
        let e = estimate(&DISTILBERT_BASE, 1769, Arch::X86_64);
        let compute = e.gb_seconds_per_10k_texts * prices::X86_64_PER_GB_S;
        assert!((e.usd_per_10k_texts - compute - 200.0 * prices::PER_REQUEST).abs() < 1e-12);
        let arm = estimate(&DISTILBERT_BASE, 1769, Arch::Arm64);
        assert!(arm.usd_per_10k_texts < e.usd_per_10k_texts);
        assert!((e.ms_per_call_of_50 - 50_000.0 / 25.8).abs() < 1e-6);
    }

    #[test]
    fn every_call_cold_is_200_cold_calls_of_50() {
        // The default model at 1769 MB (one vCPU): (131 + 550) ms per cold call.
        let e = estimate(&SST2_MINILM, 1769, Arch::X86_64);
        let cold_call_gb_s = 0.681 * 1769.0 / 1024.0;
        assert!((e.gb_seconds_per_10k_texts_all_cold - 200.0 * cold_call_gb_s).abs() < 1e-9);
        assert!(e.gb_seconds_per_10k_texts_all_cold > e.gb_seconds_per_10k_texts);
        // Half a vCPU stretches the cold call, and costs the same GB-s.
        let half = estimate(&SST2_MINILM, 1769 / 2, Arch::X86_64);
        assert!((half.ms_per_cold_call_of_50 - 2.0 * 681.0).abs() < 1.0);
        let text = e.to_string();
        assert!(
            text.contains("235 GB-s per 10 000 texts if every call is cold"),
            "{text}"
        );
    }
}
