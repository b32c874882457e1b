//! `logs`: the function's log events. By default those of the last 10 minutes (as `aws logs
//! tail`; "from now on" could never print anything without --follow); `--since` for more; `--follow` polls
//! FilterLogEvents (LiveTail is not everywhere — moto lacks it), de-duplicating by event id and
//! backing off when throttled. REPORT lines are folded into one compact line.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::aws::{logs, Aws, ErrorKind};
use crate::cli::{GlobalArgs, LogsArgs};
use crate::lambda::{log_group, Report};
use crate::output::{stdout_line, OutputFormat};
use crate::when::parse_since;
use ummatics_sentiment_client::retry::throttled_poll;

/// One printed event.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub timestamp_ms: i64,
    pub stream: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// A REPORT line as one short line.
fn compact(report: &Report) -> String {
    let mut line = format!(
        "REPORT {:.1} ms (billed {:.0} ms), {:.0}/{:.0} MB",
        report.duration_ms, report.billed_ms, report.max_memory_used_mb, report.memory_mb
    );
    if let Some(init) = report.init_ms {
        line.push_str(&format!(", cold start {init:.0} ms"));
    }
    line.push_str(&format!(" [{}]", report.request_id));
    line
}

fn print(line: &LogLine, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Human => {
            let t = UNIX_EPOCH + Duration::from_millis(line.timestamp_ms.max(0) as u64);
            let text = match &line.report {
                Some(r) => compact(r),
                None => line.message.trim_end().to_string(),
            };
            stdout_line(format!("{} {text}", humantime::format_rfc3339_millis(t)))
        }
        _ => stdout_line(serde_json::to_string(line)?),
    }
}

/// How far back `logs` reads without `--since`: like `aws logs tail`, the last 10 minutes.
const DEFAULT_SINCE: Duration = Duration::from_secs(600);

/// How far back before the newest event each poll of `--follow` reads again, for events that
/// arrive late with earlier timestamps (Lambda instances deliver their lines independently).
const FOLLOW_OVERLAP: Duration = Duration::from_secs(120);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

pub async fn run(args: LogsArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let aws = Aws::load(&global.aws).await;
    let function = args.function.name(&aws.names);
    let group = log_group(&function);
    let poll = humantime::parse_duration(&args.poll_interval).map_err(|_| {
        anyhow!(
            "--poll-interval {:?} is not a duration (e.g. 2s)",
            args.poll_interval
        )
    })?;
    let start_ms = match &args.since {
        Some(since) => {
            let t = parse_since(since, SystemTime::now())?;
            t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
        }
        None => now_ms() - DEFAULT_SINCE.as_millis() as i64,
    };

    // Event ids already printed, with their timestamps (pruned as the window moves on).
    let mut seen: HashMap<String, i64> = HashMap::new();
    // Each poll reads again from FOLLOW_OVERLAP before the newest event printed: CloudWatch
    // Logs takes events stamped earlier than ones it already holds (several instances,
    // buffered delivery), and a cursor at the newest timestamp would skip them. The ids
    // keep what is read twice from printing twice.
    let overlap_ms = FOLLOW_OVERLAP.as_millis() as i64;
    let mut newest = start_ms;
    let mut throttled_in_a_row = 0;
    let mut printed = 0usize;
    // Installed before the first request, so a Ctrl-C at any moment is seen at the next wait.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot listen for Ctrl-C")?;
    if args.follow {
        eprintln!("following {group} (Ctrl-C to stop)");
    }
    loop {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        let mut throttled = false;
        loop {
            let from = start_ms.max(newest - overlap_ms);
            let filter = args.filter.as_deref();
            match logs::events_page(&aws, &group, (from, None), filter, token.take()).await {
                Ok(page) => {
                    events.extend(page.events);
                    token = page.next;
                    if token.is_none() {
                        break;
                    }
                }
                Err(e) if e.is_not_found() => bail!(
                    "log group {group} does not exist: the function is not deployed here, or has not logged yet"
                ),
                Err(e) if e.kind == ErrorKind::Throttled && args.follow => {
                    throttled = true;
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {group}")),
            }
        }
        events.sort_by_key(|e| (e.timestamp_ms, e.ingestion_ms));
        for event in events {
            let ts = event.timestamp_ms;
            if seen.insert(event.id, ts).is_some() {
                continue;
            }
            let line = LogLine {
                timestamp_ms: ts,
                stream: event.stream,
                report: Report::parse(&event.message),
                message: event.message,
            };
            print(&line, global.output)?;
            printed += 1;
            newest = newest.max(ts);
        }
        if !args.follow {
            if printed == 0 {
                eprintln!(
                    "no events in {group} {}: pass --since 1h (or 2d) for more history, or --follow \
                     to wait for new ones",
                    match &args.since {
                        Some(since) => format!("since {since}"),
                        None => "in the last 10 minutes".to_string(),
                    }
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        // Ids stay as long as their events can be read again: memory bounded by the window.
        seen.retain(|_, ts| *ts >= newest - overlap_ms);
        throttled_in_a_row = if throttled { throttled_in_a_row + 1 } else { 0 };
        let backoff = throttled_poll(poll, throttled_in_a_row);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = interrupt.recv() => return Ok(ExitCode::SUCCESS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_are_parsed() {
        let line = "REPORT RequestId: 3f1c\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\tInit Duration: 151.20 ms\t\n";
        let r = Report::parse(line).unwrap();
        assert_eq!(r.request_id, "3f1c");
        assert_eq!(r.duration_ms, 12.34);
        assert_eq!(r.billed_ms, 13.0);
        assert_eq!(r.memory_mb, 2048.0);
        assert_eq!(r.max_memory_used_mb, 80.0);
        assert_eq!(r.init_ms, Some(151.2));
        assert_eq!(
            compact(&r),
            "REPORT 12.3 ms (billed 13 ms), 80/2048 MB, cold start 151 ms [3f1c]"
        );
        let warm = Report::parse("REPORT RequestId: a\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\t").unwrap();
        assert_eq!(warm.init_ms, None);
        assert!(Report::parse("START RequestId: a Version: $LATEST").is_none());
        assert!(Report::parse("REPORT garbage").is_none());
    }
}
