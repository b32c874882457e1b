//! CloudWatch Logs calls: a log group's tags, its deletion, the cold starts its REPORT lines
//! record, and pages of its events (`logs`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Aws, AwsError, Found};
use crate::lambda::{log_group, Report};

/// The log group's tags, or `None` when there is no such group.
pub async fn log_group_tags(aws: &Aws, name: &str) -> Result<Option<BTreeMap<String, String>>> {
    let out = aws
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(AwsError::from)
        .context("cannot list log groups")?;
    let Some(arn) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
        .map(|g| {
            g.arn()
                .unwrap_or_default()
                .trim_end_matches(":*")
                .to_string()
        })
    else {
        return Ok(None);
    };
    let tags = aws
        .logs()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot read the tags of log group {name}"))?;
    Ok(Some(
        tags.tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    ))
}

/// Deletes a log group; `false` when there was none.
pub async fn delete_log_group(aws: &Aws, name: &str) -> Result<bool> {
    let deleted = aws
        .logs()
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot delete log group {name}"))?;
    Ok(deleted.is_some())
}

/// The INIT phases Lambda billed in a window: since August 2025 every function's INIT is
/// billed (container images' always was), and the `Duration` metric leaves it out. Read from
/// the REPORT lines' `Init Duration`, one per cold start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BilledInit {
    pub cold_starts: u64,
    pub init_ms: f64,
    /// More REPORT lines than were read ([`MAX_INIT_PAGES`] pages): the figures are a floor.
    pub truncated: bool,
}

/// Pages of REPORT lines `billed_init` reads at most (10 000 events each).
pub const MAX_INIT_PAGES: usize = 50;

/// The cold starts of `function` between `start_ms` and `end_ms` (FilterLogEvents on its log
/// group for `"Init Duration"`); a function with no log group has had none.
pub async fn billed_init(
    aws: &Aws,
    function: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<BilledInit> {
    let group = log_group(function);
    let mut total = BilledInit::default();
    let mut token: Option<String> = None;
    for _ in 0..MAX_INIT_PAGES {
        let window = (start_ms, Some(end_ms));
        let page = events_page(aws, &group, window, Some("\"Init Duration\""), token.take())
            .await
            .found()
            .with_context(|| format!("cannot read the REPORT lines of {group}"))?;
        let Some(page) = page else {
            return Ok(total);
        };
        for event in &page.events {
            if let Some(init) = Report::parse(&event.message).and_then(|r| r.init_ms) {
                total.cold_starts += 1;
                total.init_ms += init;
            }
        }
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(total),
        }
    }
    total.truncated = true;
    Ok(total)
}

/// One log event.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub id: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub stream: String,
    pub message: String,
}

/// One page of FilterLogEvents and the token of the next (`None`: the last page).
#[derive(Debug, Clone)]
pub struct LogPage {
    pub events: Vec<LogEvent>,
    pub next: Option<String>,
}

/// FilterLogEvents on `group` over `(start_ms, end_ms)` (no end: up to now), with CloudWatch's
/// filter pattern if any. Typed: a missing group is [`AwsError::is_not_found`], a throttle
/// [`super::ErrorKind::Throttled`].
pub async fn events_page(
    aws: &Aws,
    group: &str,
    (start_ms, end_ms): (i64, Option<i64>),
    pattern: Option<&str>,
    token: Option<String>,
) -> Result<LogPage, AwsError> {
    let page = aws
        .logs()
        .filter_log_events()
        .log_group_name(group)
        .start_time(start_ms)
        .set_end_time(end_ms)
        .set_filter_pattern(pattern.map(str::to_string))
        .set_next_token(token)
        .send()
        .await?;
    Ok(LogPage {
        events: page
            .events()
            .iter()
            .filter_map(|e| {
                Some(LogEvent {
                    id: e.event_id()?.to_string(),
                    timestamp_ms: e.timestamp().unwrap_or(0),
                    ingestion_ms: e.ingestion_time().unwrap_or(0),
                    stream: e.log_stream_name().unwrap_or_default().to_string(),
                    message: e.message().unwrap_or_default().to_string(),
                })
            })
            .collect(),
        next: page.next_token().map(str::to_string),
    })
}
