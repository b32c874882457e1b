//! `metrics`: the function's CloudWatch metrics over a window, with a sparkline per metric,
//! and what they cost: GB-seconds from Duration and the cold starts' billed INIT (REPORT
//! lines) × configured memory, requests, dollars at the
//! architecture's price, the free tier shown apart, and a 30-day projection.

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::aws::lambda::function_info;
use crate::aws::logs::billed_init;
use crate::aws::{cloudwatch, Aws};
use crate::cli::{GlobalArgs, MetricsArgs};
use crate::output::{emit, render, table};
use crate::pricing::{cost, Cost};
use crate::when::parse_since;
use ummatics_sentiment_function::telemetry::{Metric as Telemetry, LOW_CONFIDENCE, NAMESPACE};

/// One metric over the window.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub metric: String,
    pub stat: String,
    /// One value per period from the window's start; `None` where CloudWatch has no point.
    pub values: Vec<Option<f64>>,
    /// Sum (for Sum), mean of the points (Average, p95), or max (Maximum); `None` when
    /// unavailable.
    pub summary: Option<f64>,
    pub available: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    pub function: String,
    pub start: String,
    pub end: String,
    pub period_s: i32,
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    pub error_rate: Option<f64>,
    pub duration_avg_ms: Option<f64>,
    pub duration_max_ms: Option<f64>,
    pub duration_p95_ms: Option<f64>,
    pub concurrency_max: Option<f64>,
    pub series: Vec<Series>,
    /// What the model answered (the function's telemetry records).
    pub answers: Answers,
    pub cost: Cost,
}

/// The function's telemetry over the window, summed over the models it ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answers {
    /// The models that answered in the window (the `Model` dimension's values).
    pub models: Vec<String>,
    pub texts: f64,
    /// Shares of the texts: answered negative, with a score under `low_confidence_below`,
    /// cut at the model's window; `None` without texts.
    pub negative_share: Option<f64>,
    pub low_confidence_share: Option<f64>,
    pub cut_share: Option<f64>,
    pub low_confidence_below: f32,
    pub tokens_per_text: Option<f64>,
    /// The same shares per period (`None` where no text was answered).
    pub periods: Vec<AnswerPeriod>,
    /// Why the telemetry could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnswerPeriod {
    pub texts: f64,
    pub negative_share: Option<f64>,
    pub low_confidence_share: Option<f64>,
    pub cut_share: Option<f64>,
}

impl Answers {
    /// Shares from per-period sums of texts, negative, low-confidence, cut and tokens.
    fn from_sums(models: Vec<String>, sums: &[Vec<Option<f64>>; 5]) -> Answers {
        let [texts, negative, unsure, cut, tokens] = sums;
        let total = |v: &[Option<f64>]| v.iter().flatten().sum::<f64>() + 0.0;
        let share = |part: f64, whole: f64| (whole > 0.0).then(|| part / whole);
        let all = total(texts);
        Answers {
            models,
            texts: all,
            negative_share: share(total(negative), all),
            low_confidence_share: share(total(unsure), all),
            cut_share: share(total(cut), all),
            low_confidence_below: LOW_CONFIDENCE,
            tokens_per_text: share(total(tokens), all),
            periods: (0..texts.len())
                .map(|i| {
                    let n = texts[i].unwrap_or(0.0);
                    let of = |v: &[Option<f64>]| share(v[i].unwrap_or(0.0), n);
                    AnswerPeriod {
                        texts: n,
                        negative_share: of(negative),
                        low_confidence_share: of(unsure),
                        cut_share: of(cut),
                    }
                })
                .collect(),
            error: None,
        }
    }

    fn column(&self, pick: impl Fn(&AnswerPeriod) -> Option<f64>) -> Vec<Option<f64>> {
        self.periods.iter().map(pick).collect()
    }
}

impl fmt::Display for Answers {
    /// One line of totals, then a share per row with its trend per period.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.error {
            return writeln!(f, "answers    unknown ({error})");
        }
        if self.texts <= 0.0 {
            return writeln!(
                f,
                "answers    no telemetry in this window (it comes with each invocation while the stage's telemetry is on)"
            );
        }
        writeln!(
            f,
            "answers    {:.0} texts by {}, {:.1} tokens each on average",
            self.texts,
            self.models.join(", "),
            self.tokens_per_text.unwrap_or(0.0)
        )?;
        let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
        let mut t = table(["share of texts", "value", "trend"]);
        let rows: [(String, Option<f64>, Vec<Option<f64>>); 3] = [
            (
                "negative".to_string(),
                self.negative_share,
                self.column(|p| p.negative_share),
            ),
            (
                format!("low confidence (score < {})", self.low_confidence_below),
                self.low_confidence_share,
                self.column(|p| p.low_confidence_share),
            ),
            (
                "cut at the model's window".to_string(),
                self.cut_share,
                self.column(|p| p.cut_share),
            ),
        ];
        for (name, value, trend) in rows {
            t.add_row([name, percent(value), sparkline(&trend)]);
        }
        writeln!(f, "{}", render(&t))
    }
}

/// ▁▂▃▄▅▆▇█ scaled to the series' maximum; blanks where there is no point.
pub fn sparkline(values: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().flatten().cloned().fold(0.0_f64, f64::max);
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if max <= 0.0 => BARS[0],
            Some(x) => BARS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

impl fmt::Display for MetricsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} from {} to {} ({} s periods)",
            self.function, self.start, self.end, self.period_s
        )?;
        let mut t = table(["metric", "stat", "value", "trend"]);
        for s in &self.series {
            let value = match (s.summary, s.stat.as_str()) {
                (None, _) => "unavailable".to_string(),
                (Some(v), "Sum") => format!("{v:.0}"),
                (Some(v), _) if s.metric == "Duration" => format!("{v:.1} ms"),
                (Some(v), _) => format!("{v:.1}"),
            };
            t.add_row([
                s.metric.clone(),
                s.stat.clone(),
                value,
                sparkline(&s.values),
            ]);
        }
        writeln!(f, "{}", render(&t))?;
        writeln!(
            f,
            "error rate {}",
            self.error_rate
                .map(|r| format!("{:.2} %", r * 100.0))
                .unwrap_or_else(|| "- (no invocations)".into())
        )?;
        write!(f, "{}", self.answers)?;
        write!(f, "{}", self.cost)
    }
}

/// 1 h periods up to a day, 1 d beyond (as the Serverless Framework does), or `--period`.
pub fn choose_period(window: Duration, requested: Option<&str>) -> Result<i32> {
    if let Some(p) = requested {
        let secs = match p.parse::<u64>() {
            Ok(n) => n,
            Err(_) => humantime::parse_duration(p)
                .map_err(|_| anyhow!("--period {p:?} is not a duration (60, 5m, 1h, 1d)"))?
                .as_secs(),
        };
        if secs < 60 || secs % 60 != 0 {
            bail!("--period must be a multiple of 60 seconds, not {secs}");
        }
        return i32::try_from(secs).context("--period is too long");
    }
    Ok(if window <= Duration::from_secs(86_400) {
        3600
    } else {
        86_400
    })
}

pub async fn run(args: MetricsArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let now = SystemTime::now();
    let start = parse_since(&args.since, now)?;
    let window = now.duration_since(start).unwrap_or_default();
    let period = choose_period(window, args.period.as_deref())?;
    let aws = Aws::load(&global.aws).await;
    let function = args.function.name(&aws.names);

    let (memory_mb, arch) = match (args.memory, args.arch) {
        (Some(m), Some(a)) => (m, a),
        (m, a) => {
            // The function being measured, not the stage's: its memory and architecture
            // set the price.
            let info = function_info(&aws, &function).await?.with_context(|| {
                format!("function {function} is not deployed here; pass --memory and --arch to price its metrics anyway")
            })?;
            (m.unwrap_or(info.memory_mb as u32), a.unwrap_or(info.arch()))
        }
    };

    let slots = (window.as_secs() as f64 / f64::from(period))
        .ceil()
        .max(1.0) as usize;
    let wanted = [
        ("Invocations", "Sum"),
        ("Errors", "Sum"),
        ("Throttles", "Sum"),
        ("Duration", "Average"),
        ("Duration", "Maximum"),
        ("Duration", "Sum"),
        ("ConcurrentExecutions", "Maximum"),
    ];
    let span = Window {
        start,
        end: now,
        period,
        slots,
    };
    let lambda_metrics = [("FunctionName", function.as_str())];
    let mut series = fetch(&aws, "AWS/Lambda", &lambda_metrics, &wanted, &span).await?;
    // Percentiles on their own: some endpoints (moto) cannot compute them; then "unavailable".
    match fetch(
        &aws,
        "AWS/Lambda",
        &lambda_metrics,
        &[("Duration", "p95")],
        &span,
    )
    .await
    {
        Ok(mut p95) => series.append(&mut p95),
        Err(_) => series.push(Series {
            metric: "Duration".into(),
            stat: "p95".into(),
            values: vec![None; slots],
            summary: None,
            available: false,
        }),
    }
    let get = |m: &str, s: &str| series.iter().find(|x| x.metric == m && x.stat == s);
    let sum = |m: &str| get(m, "Sum").and_then(|x| x.summary).unwrap_or(0.0);
    let invocations = sum("Invocations");
    let errors = sum("Errors");
    let duration_total = get("Duration", "Sum")
        .and_then(|x| x.summary)
        .unwrap_or(0.0);
    let epoch_ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64
    };
    let init = billed_init(&aws, &function, epoch_ms(start), epoch_ms(now))
        .await
        .map_err(|e| format!("{e:#}"));
    let report = MetricsReport {
        function: function.clone(),
        start: humantime::format_rfc3339_seconds(start).to_string(),
        end: humantime::format_rfc3339_seconds(now).to_string(),
        period_s: period,
        invocations,
        errors,
        throttles: sum("Throttles"),
        error_rate: (invocations > 0.0).then(|| errors / invocations),
        duration_avg_ms: (invocations > 0.0)
            .then(|| duration_total / invocations)
            .or(get("Duration", "Average").and_then(|x| x.summary)),
        duration_max_ms: get("Duration", "Maximum").and_then(|x| x.summary),
        duration_p95_ms: get("Duration", "p95").and_then(|x| x.summary),
        concurrency_max: get("ConcurrentExecutions", "Maximum").and_then(|x| x.summary),
        answers: answers(&aws, &function, &span)
            .await
            .unwrap_or_else(|e| Answers {
                error: Some(format!("{e:#}")),
                low_confidence_below: LOW_CONFIDENCE,
                ..Answers::default()
            }),
        cost: cost(duration_total, init, invocations, memory_mb, arch, window),
        series: series
            .into_iter()
            .filter(|s| !(s.metric == "Duration" && s.stat == "Sum"))
            .collect(),
    };
    emit(global.output, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// The window the report covers, in periods.
struct Window {
    start: SystemTime,
    end: SystemTime,
    period: i32,
    slots: usize,
}

/// The function's telemetry: the models that answered (the `Model` values its records carry,
/// from ListMetrics), then the per-period sums of each, added up.
async fn answers(aws: &Aws, function: &str, window: &Window) -> Result<Answers> {
    let models = cloudwatch::dimension_values(
        aws,
        NAMESPACE,
        Telemetry::Texts.name(),
        ("FunctionName", function),
        "Model",
    )
    .await
    .context("cannot list the function's telemetry metrics")?;
    let wanted: Vec<(&str, &str)> = [
        Telemetry::Texts,
        Telemetry::Negative,
        Telemetry::LowConfidence,
        Telemetry::TextsCut,
        Telemetry::Tokens,
    ]
    .iter()
    .map(|m| (m.name(), "Sum"))
    .collect();
    let mut sums: [Vec<Option<f64>>; 5] = std::array::from_fn(|_| vec![None; window.slots]);
    for model in &models {
        let dimensions = [("FunctionName", function), ("Model", model.as_str())];
        let series = fetch(aws, NAMESPACE, &dimensions, &wanted, window).await?;
        for (sum, s) in sums.iter_mut().zip(&series) {
            for (cell, value) in sum.iter_mut().zip(&s.values) {
                if let Some(v) = value {
                    *cell = Some(cell.unwrap_or(0.0) + v);
                }
            }
        }
    }
    Ok(Answers::from_sums(models, &sums))
}

/// The wanted (metric, statistic) series over the window, one value per period.
async fn fetch(
    aws: &Aws,
    namespace: &str,
    dimensions: &[(&str, &str)],
    wanted: &[(&str, &str)],
    window: &Window,
) -> Result<Vec<Series>> {
    let Window {
        start,
        end,
        period,
        slots,
    } = *window;
    let query = cloudwatch::Query {
        namespace,
        dimensions,
        wanted,
        start,
        end,
        period,
    };
    let points = cloudwatch::metric_data(aws, query).await?;
    let start_secs = cloudwatch::epoch_secs(start);
    Ok(wanted
        .iter()
        .zip(points)
        .map(|((metric, stat), pts)| {
            let mut values = vec![None; slots];
            for (t, v) in &pts {
                let slot = ((t - start_secs).max(0) / i64::from(period)) as usize;
                if let Some(cell) = values.get_mut(slot.min(slots - 1)) {
                    *cell = Some(match (*cell, *stat) {
                        (Some(old), "Sum") => old + v,
                        (Some(old), "Maximum") => f64::max(old, *v),
                        (_, _) => *v,
                    });
                }
            }
            let summary = summary_of(&values, stat);
            Series {
                metric: metric.to_string(),
                stat: stat.to_string(),
                values,
                summary,
                available: true,
            }
        })
        .collect())
}

/// What a series sums up to: the sum (Sum), the largest value (Maximum), else the mean of the
/// values there are; `None` when there are none (a Sum of none is 0). The sum is +0, never -0:
/// Rust's f64 sum of nothing is -0.0, which printed `Invocations Sum -0` and `$-0.00` for a
/// new function.
fn summary_of(values: &[Option<f64>], stat: &str) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    match stat {
        "Sum" => Some(present.iter().sum::<f64>() + 0.0),
        _ if present.is_empty() => None,
        "Maximum" => present.iter().copied().reduce(f64::max),
        _ => Some(present.iter().sum::<f64>() / present.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::logs::BilledInit;
    use crate::lambda::Arch;

    #[test]
    fn a_function_with_no_datapoints_sums_to_plus_zero() {
        let none = summary_of(&[None, None, None], "Sum").unwrap();
        assert!(none.is_sign_positive(), "{none}");
        assert_eq!(format!("{none:.0}"), "0");
        assert_eq!(serde_json::to_string(&none).unwrap(), "0.0");
        let c = cost(
            none,
            Ok(BilledInit::default()),
            none,
            1769,
            Arch::X86_64,
            Duration::from_secs(3600),
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("-0"), "{json}");
        assert_eq!(summary_of(&[None, None], "Average"), None);
        assert_eq!(summary_of(&[Some(2.0), None, Some(4.0)], "Sum"), Some(6.0));
        assert_eq!(
            summary_of(&[Some(2.0), None, Some(4.0)], "Maximum"),
            Some(4.0)
        );
        assert_eq!(
            summary_of(&[Some(2.0), None, Some(4.0)], "Average"),
            Some(3.0)
        );
    }

    #[test]
    fn periods() {
        assert_eq!(
            choose_period(Duration::from_secs(3600), None).unwrap(),
            3600
        );
        assert_eq!(
            choose_period(Duration::from_secs(86_400), None).unwrap(),
            3600
        );
        assert_eq!(
            choose_period(Duration::from_secs(86_401), None).unwrap(),
            86_400
        );
        assert_eq!(
            choose_period(Duration::from_secs(60), Some("5m")).unwrap(),
            300
        );
        assert!(choose_period(Duration::from_secs(60), Some("90")).is_err());
    }

    #[test]
    fn sparkline_scales_to_the_maximum() {
        assert_eq!(sparkline(&[Some(0.0), Some(7.0), None, Some(3.5)]), "▁█ ▅");
        assert_eq!(sparkline(&[Some(0.0), Some(0.0)]), "▁▁");
    }
}
