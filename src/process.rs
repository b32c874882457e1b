//! Facts about this process and machine, read from Linux's /proc: age, peak memory, CPU.

use std::time::Duration;

use ummatics_sentiment_function::model::available_cores;

/// Seconds since this process started, from the kernel's record of it (Linux); `None` where
/// there is no /proc.
pub fn process_age() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let start_ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // USER_HZ is 100 on every Linux architecture Lambda runs.
    let age = uptime - start_ticks / 100.0;
    Some(Duration::from_secs_f64(age.max(0.0)))
}

/// The process's peak resident set (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn cpu_name() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
    format!(
        "{}, {} cores",
        model.unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        available_cores()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_an_age_and_a_peak() {
        let age = process_age().expect("/proc/self/stat");
        assert!(age < Duration::from_secs(24 * 3600), "{age:?}");
        assert!(peak_rss_mib().expect("/proc/self/status") > 1.0);
    }
}
