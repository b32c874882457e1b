//! Lambda's `REPORT` log line: what an invoke was billed.

use std::collections::HashMap;

use serde::Serialize;

/// The fields of a Lambda `REPORT` log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub request_id: String,
    pub duration_ms: f64,
    pub billed_ms: f64,
    pub memory_mb: f64,
    pub max_memory_used_mb: f64,
    pub init_ms: Option<f64>,
}

impl Report {
    /// Parses `REPORT RequestId: … Duration: 12.34 ms Billed Duration: 13 ms Memory Size:
    /// 2048 MB Max Memory Used: 80 MB Init Duration: 150.00 ms` (tab-separated on Lambda).
    pub fn parse(message: &str) -> Option<Report> {
        let rest = message.trim_start().strip_prefix("REPORT ")?;
        let mut fields = HashMap::new();
        for part in rest.split('\t').flat_map(|p| p.split("  ")) {
            if let Some((k, v)) = part.split_once(':') {
                fields.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let number =
            |key: &str| -> Option<f64> { fields.get(key)?.split_whitespace().next()?.parse().ok() };
        Some(Report {
            request_id: fields.get("RequestId")?.clone(),
            duration_ms: number("Duration")?,
            billed_ms: number("Billed Duration")?,
            memory_mb: number("Memory Size")?,
            max_memory_used_mb: number("Max Memory Used")?,
            init_ms: number("Init Duration"),
        })
    }

    /// The last REPORT line of a log text (e.g. an invoke's decoded `LogResult` tail).
    pub fn last_in(log: &str) -> Option<Report> {
        log.lines().rev().find_map(Report::parse)
    }
}
