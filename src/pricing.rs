//! What Lambda costs, in one place: the price table, GB-seconds of a duration at a memory
//! size, one call's price, a window's cost with the free tier and a 30-day projection
//! (`metrics`), and the worst case of a public URL's capped concurrency (`deploy`). `sizing`
//! and the commands price with these, never with their own arithmetic.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::aws::logs::BilledInit;
use crate::lambda::Arch;
use crate::output::{usd, usd_price, usd_sum};

/// The price table: us-east-1, the first pricing tier (first 6 billion GB-s a month).
/// Source: https://aws.amazon.com/lambda/pricing/ — read 2026-11-29.
pub mod prices {
    pub const AS_OF: &str = "2026-11-29";
    pub const SOURCE: &str = "https://aws.amazon.com/lambda/pricing/ (us-east-1, tier 1)";
    /// Dollars per GB-second of duration.
    pub const X86_64_PER_GB_S: f64 = 0.000_016_666_7;
    pub const ARM64_PER_GB_S: f64 = 0.000_013_333_4;
    /// Dollars per request.
    pub const PER_REQUEST: f64 = 0.20 / 1_000_000.0;
    /// The monthly free tier (shared by both architectures).
    pub const FREE_GB_S_PER_MONTH: f64 = 400_000.0;
    pub const FREE_REQUESTS_PER_MONTH: f64 = 1_000_000.0;
}

/// Dollars per GB-second of duration on this architecture.
pub fn per_gb_s(arch: Arch) -> f64 {
    match arch {
        Arch::X86_64 => prices::X86_64_PER_GB_S,
        Arch::Arm64 => prices::ARM64_PER_GB_S,
    }
}

/// The GB-seconds `ms` of execution bill at `memory_mb`.
pub fn gb_seconds(ms: f64, memory_mb: u32) -> f64 {
    ms / 1000.0 * f64::from(memory_mb) / 1024.0
}

/// One call of `ms` at `memory_mb`: its duration and its request.
pub fn call_usd(ms: f64, memory_mb: u32, arch: Arch) -> f64 {
    gb_seconds(ms, memory_mb) * per_gb_s(arch) + prices::PER_REQUEST
}

/// The most a public function URL can cost in an hour of compute: every one of `cap`
/// instances busy for the whole hour at `memory_mb` (requests are billed on top, per million).
pub fn worst_case_compute_per_hour(cap: u32, memory_mb: u32, arch: Arch) -> f64 {
    f64::from(cap) * gb_seconds(3_600_000.0, memory_mb) * per_gb_s(arch)
}

/// What the window cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub memory_mb: u32,
    pub architecture: String,
    /// Billed GB-seconds: the invocations' `Duration` plus the cold starts' INIT.
    pub gb_seconds: f64,
    /// The part of `gb_seconds` that is INIT (cold starts); `None` when the REPORT lines could
    /// not be read (then `gb_seconds` is `Duration` alone).
    pub init_gb_seconds: Option<f64>,
    /// The cold starts the INIT figures come from.
    pub init: Option<BilledInit>,
    /// Why the INIT figures are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_error: Option<String>,
    pub requests: f64,
    pub compute_usd: f64,
    pub requests_usd: f64,
    /// Before the free tier.
    pub total_usd: f64,
    /// The same rate over 30 days, before the free tier.
    pub projected_30d_usd: f64,
    /// The 30-day projection after the monthly free tier.
    pub projected_30d_after_free_tier_usd: f64,
    pub free_tier_gb_seconds: f64,
    pub free_tier_requests: f64,
    pub price_per_gb_s: f64,
    pub price_per_request: f64,
    pub prices_as_of: &'static str,
    pub prices_source: &'static str,
}

/// Cost of `duration_ms_total` of execution, the billed INIT of cold starts (`Err`: why it is
/// unknown) and `requests` invocations over `window`.
pub fn cost(
    duration_ms_total: f64,
    init: Result<BilledInit, String>,
    requests: f64,
    memory_mb: u32,
    arch: Arch,
    window: Duration,
) -> Cost {
    let per_gb_s = per_gb_s(arch);
    let gb_s = |ms: f64| gb_seconds(ms, memory_mb);
    let init_gb_seconds = init.as_ref().ok().map(|i| gb_s(i.init_ms));
    let gb_seconds = gb_s(duration_ms_total) + init_gb_seconds.unwrap_or(0.0);
    let compute_usd = gb_seconds * per_gb_s;
    let requests_usd = requests * prices::PER_REQUEST;
    let scale = (30.0 * 86_400.0) / window.as_secs_f64().max(1.0);
    let month_gb_s = gb_seconds * scale;
    let month_requests = requests * scale;
    let after_free = (month_gb_s - prices::FREE_GB_S_PER_MONTH).max(0.0) * per_gb_s
        + (month_requests - prices::FREE_REQUESTS_PER_MONTH).max(0.0) * prices::PER_REQUEST;
    Cost {
        memory_mb,
        architecture: arch.lambda_name().to_string(),
        gb_seconds,
        init_gb_seconds,
        init_error: init.as_ref().err().cloned(),
        init: init.ok(),
        requests,
        compute_usd,
        requests_usd,
        total_usd: compute_usd + requests_usd,
        projected_30d_usd: (compute_usd + requests_usd) * scale,
        projected_30d_after_free_tier_usd: after_free,
        free_tier_gb_seconds: prices::FREE_GB_S_PER_MONTH,
        free_tier_requests: prices::FREE_REQUESTS_PER_MONTH,
        price_per_gb_s: per_gb_s,
        price_per_request: prices::PER_REQUEST,
        prices_as_of: prices::AS_OF,
        prices_source: prices::SOURCE,
    }
}

impl fmt::Display for Cost {
    /// Three lines: the window's cost and its parts (which add up as printed), the 30-day
    /// projection, and the prices used.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self;
        let (total, parts) = usd_sum(&[c.compute_usd, c.requests_usd]);
        writeln!(
            f,
            "cost       {:.1} GB-s ({} MB, {}) + {:.0} requests = {total} ({} compute + {} requests)",
            c.gb_seconds, c.memory_mb, c.architecture, c.requests, parts[0], parts[1]
        )?;
        match (&c.init, c.init_gb_seconds) {
            (Some(init), Some(gb_s)) => writeln!(
                f,
                "cold starts {}{}, {:.1} s of billed INIT = {:.1} GB-s ({}), included above",
                if init.truncated { "at least " } else { "" },
                init.cold_starts,
                init.init_ms / 1000.0,
                gb_s,
                usd(gb_s * c.price_per_gb_s)
            )?,
            _ => writeln!(
                f,
                "cold starts unknown ({}): the cost above is Duration alone, without billed INIT",
                c.init_error.as_deref().unwrap_or("not read")
            )?,
        }
        writeln!(
            f,
            "30 days    {} at this rate; {} after the monthly free tier ({:.0} GB-s, {:.0} requests)",
            usd(c.projected_30d_usd),
            usd(c.projected_30d_after_free_tier_usd),
            c.free_tier_gb_seconds,
            c.free_tier_requests
        )?;
        write!(
            f,
            "prices     {} per GB-s, {} per 1M requests, as of {} ({})",
            usd_price(c.price_per_gb_s),
            usd(c.price_per_request * 1e6),
            c.prices_as_of,
            c.prices_source
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_case_cost_is_every_capped_instance_busy_all_hour() {
        // 10 × 3600 s × 2 GB × $0.0000166667 = $1.20.
        let cost = worst_case_compute_per_hour(10, 2048, Arch::X86_64);
        assert!((cost - 1.2).abs() < 0.001, "{cost}");
    }

    #[test]
    fn cost_lines_are_money_for_people() {
        // 12 calls of 500 ms at 1769 MB in an hour, two of them cold with 400 ms of INIT each.
        let init = BilledInit {
            cold_starts: 2,
            init_ms: 800.0,
            truncated: false,
        };
        let c = cost(
            6_000.0,
            Ok(init),
            12.0,
            1769,
            Arch::X86_64,
            Duration::from_secs(3600),
        );
        assert_eq!(
            c.to_string(),
            format!(
                "cost       11.7 GB-s (1769 MB, x86_64) + 12 requests = $0.0001982 ($0.0001958 compute + $0.0000024 requests)\n\
                 cold starts 2, 0.8 s of billed INIT = 1.4 GB-s ($0.000023), included above\n\
                 30 days    $0.14 at this rate; $0 after the monthly free tier (400000 GB-s, 1000000 requests)\n\
                 prices     $0.0000166667 per GB-s, $0.20 per 1M requests, as of {} ({})",
                prices::AS_OF,
                prices::SOURCE
            )
        );
        // INIT unknown: said, and the cost is Duration's alone.
        let c = cost(
            6_000.0,
            Err("cannot read the REPORT lines".into()),
            12.0,
            1769,
            Arch::X86_64,
            Duration::from_secs(3600),
        );
        assert!((c.gb_seconds - 6.0 * 1769.0 / 1024.0).abs() < 1e-9);
        assert!(c.to_string().contains(
            "cold starts unknown (cannot read the REPORT lines): the cost above is Duration alone"
        ));
    }

    #[test]
    fn cost_of_known_inputs() {
        // 10,000 invokes of 250 ms at 2048 MB on x86_64 over one day.
        let c = cost(
            10_000.0 * 250.0,
            Ok(BilledInit::default()),
            10_000.0,
            2048,
            Arch::X86_64,
            Duration::from_secs(86_400),
        );
        assert!((c.gb_seconds - 5_000.0).abs() < 1e-9); // 2,500 s × 2 GB
        assert!((c.compute_usd - 5_000.0 * 0.000_016_666_7).abs() < 1e-12);
        assert!((c.requests_usd - 0.002).abs() < 1e-12);
        assert!((c.total_usd - (0.083_333_5 + 0.002)).abs() < 1e-9);
        assert!((c.projected_30d_usd - c.total_usd * 30.0).abs() < 1e-9);
        // 150,000 GB-s and 300,000 requests a month: inside the free tier.
        assert_eq!(c.projected_30d_after_free_tier_usd, 0.0);
        // arm64 is ~20 % cheaper per GB-s.
        let a = cost(
            10_000.0 * 250.0,
            Ok(BilledInit::default()),
            10_000.0,
            2048,
            Arch::Arm64,
            Duration::from_secs(86_400),
        );
        assert!((a.compute_usd / c.compute_usd - 0.8).abs() < 1e-4);
        // Past the free tier: 1,000,000 GB-s a month → 600,000 billable.
        let big = cost(
            1_000_000.0 * 1000.0,
            Ok(BilledInit::default()),
            0.0,
            1024,
            Arch::X86_64,
            Duration::from_secs(30 * 86_400),
        );
        assert!((big.gb_seconds - 1_000_000.0).abs() < 1e-6);
        assert!((big.projected_30d_after_free_tier_usd - 600_000.0 * 0.000_016_666_7).abs() < 1e-6);
    }

    #[test]
    fn a_call_is_its_duration_and_its_request() {
        // 1 s at 1024 MB = 1 GB-s.
        assert!((gb_seconds(1000.0, 1024) - 1.0).abs() < 1e-12);
        let call = call_usd(1000.0, 1024, Arch::X86_64);
        assert!((call - prices::X86_64_PER_GB_S - prices::PER_REQUEST).abs() < 1e-15);
    }
}
