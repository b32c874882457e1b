//! The function's telemetry end to end: records written by a local run of the function's
//! code, published the way CloudWatch publishes Embedded Metric Format lines (moto does not
//! extract EMF from logs, so the harness does), then read by `metrics`; and the drift alarms
//! `deploy` makes on them.

use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;

use crate::common::{json_of, shape, standins, StandIns};

/// Publishes EMF lines as CloudWatch does: for every directive in `_aws.CloudWatchMetrics`,
/// every dimension set and every metric, a datum with the dimension values and the metric's
/// value from the record's root, at the record's timestamp moved back by `ago`.
async fn publish_emf(cw: &aws_sdk_cloudwatch::Client, lines: &[Value], ago: Duration) {
    for record in lines {
        let aws = &record["_aws"];
        let at = UNIX_EPOCH + Duration::from_millis(aws["Timestamp"].as_u64().unwrap()) - ago;
        for directive in aws["CloudWatchMetrics"].as_array().unwrap() {
            let namespace = directive["Namespace"].as_str().unwrap();
            for set in directive["Dimensions"].as_array().unwrap() {
                let dimensions: Vec<Dimension> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        let name = d.as_str().unwrap();
                        Dimension::builder()
                            .name(name)
                            .value(record[name].as_str().unwrap())
                            .build()
                    })
                    .collect();
                let mut put = cw.put_metric_data().namespace(namespace);
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap();
                    put = put.metric_data(
                        MetricDatum::builder()
                            .metric_name(name)
                            .set_dimensions(Some(dimensions.clone()))
                            .value(record[name].as_f64().unwrap())
                            .unit(StandardUnit::from(metric["Unit"].as_str().unwrap()))
                            .timestamp(DateTime::from(at))
                            .build(),
                    );
                }
                put.send().await.unwrap();
            }
        }
    }
}

/// `invoke --local --telemetry FILE` of `texts` for `function`, in calls of two texts: the
/// response and the records.
fn local_run(s: &StandIns, function: &str, texts: &[&str]) -> (Value, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.jsonl");
    let response = json_of(
        s.cli("default")
            .args(["--output", "json", "invoke", "--local", "--batch-size", "2"])
            .args(["--function", function, "--telemetry"])
            .arg(&file)
            .args(texts),
    );
    let records = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (response, records)
}

fn sum(records: &[Value], metric: &str) -> f64 {
    records.iter().map(|r| r[metric].as_f64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_the_mix_confidence_and_cut_share_per_period() {
    let s = standins();
    // Unique per run: moto keeps what earlier runs put there.
    let function = &format!("telemetry-fn-{}", std::process::id());
    let long = "the plot is good and the cast is good ".repeat(200);
    // An hour and a half ago (mid-period), mostly praise and one text cut at the window; ten
    // minutes ago, mostly
    // complaints.
    let (earlier, earlier_records) = local_run(
        &s,
        function,
        &[
            "I love this!",
            "A wonderful, moving film.",
            "Terrible.",
            &long,
            "Great fun.",
        ],
    );
    let (later, later_records) = local_run(
        &s,
        function,
        &[
            "This is terrible",
            "Awful and boring.",
            "I hated every minute.",
            "Fine.",
        ],
    );
    assert_eq!(earlier_records.len(), 3, "one record per call of two");
    assert_eq!(later_records.len(), 2);
    // The records say what the responses say.
    for (response, records) in [(&earlier, &earlier_records), (&later, &later_records)] {
        let results = response["body"]["results"].as_array().unwrap();
        let negative = results
            .iter()
            .filter(|r| r["sentiment"] == "negative")
            .count();
        assert_eq!(sum(records, "Negative") as usize, negative, "{response:#}");
        assert_eq!(sum(records, "Texts") as usize, results.len());
        for record in records.iter() {
            assert_eq!(record["FunctionName"], function.as_str());
            assert_eq!(record["Model"], "sst2-minilm");
        }
    }
    assert_eq!(sum(&earlier_records, "TextsCut"), 1.0, "the long text");

    let cw = aws_sdk_cloudwatch::Client::new(&s.sdk().await);
    publish_emf(&cw, &earlier_records, Duration::from_secs(90 * 60)).await;
    publish_emf(&cw, &later_records, Duration::from_secs(10 * 60)).await;

    let metrics = [
        "metrics",
        "--function",
        function,
        "--since",
        "3h",
        "--period",
        "1h",
        "--memory",
        "2048",
        "--arch",
        "x86_64",
    ];
    let report = json_of(s.cli("default").args(["--output", "json"]).args(metrics));
    assert_eq!(report["schema_version"], 1, "{report:#}");
    insta::assert_snapshot!("metrics_json_shape", shape(&report));
    let answers = &report["answers"];
    assert_eq!(
        answers["models"],
        serde_json::json!(["sst2-minilm"]),
        "{answers:#}"
    );
    let all: Vec<Value> = earlier_records
        .iter()
        .chain(&later_records)
        .cloned()
        .collect();
    let texts = sum(&all, "Texts");
    assert_eq!(answers["texts"], texts);
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(
        close(&answers["negative_share"], sum(&all, "Negative") / texts),
        "{answers:#}"
    );
    assert!(close(
        &answers["low_confidence_share"],
        sum(&all, "LowConfidence") / texts
    ));
    assert!(close(&answers["cut_share"], 1.0 / texts));
    assert!(close(
        &answers["tokens_per_text"],
        sum(&all, "Tokens") / texts
    ));
    // Per period: the two hours with texts have their own shares; the hour between has none.
    let periods: Vec<&Value> = answers["periods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["texts"].as_f64().unwrap() > 0.0)
        .collect();
    assert_eq!(periods.len(), 2, "{answers:#}");
    let share = |records: &[Value], metric: &str| sum(records, metric) / sum(records, "Texts");
    assert!(close(
        &periods[0]["negative_share"],
        share(&earlier_records, "Negative")
    ));
    assert!(close(
        &periods[1]["negative_share"],
        share(&later_records, "Negative")
    ));
    assert!(close(
        &periods[0]["cut_share"],
        share(&earlier_records, "TextsCut")
    ));
    assert!(close(&periods[1]["cut_share"], 0.0));
    assert!(
        periods[1]["negative_share"].as_f64() > periods[0]["negative_share"].as_f64(),
        "the mix moved towards complaints: {answers:#}"
    );

    // For people: the shares with their trend.
    let out = s.cli("default").args(metrics).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("answers    {texts:.0} texts by sst2-minilm")),
        "{text}"
    );
    for row in [
        "negative",
        "low confidence (score < 0.6)",
        "cut at the model's window",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("{row}: {text}"));
        assert!(line.contains('%'), "{line}");
    }

    // A function without telemetry says so instead of showing zeros.
    let quiet = format!("{function}-quiet");
    let out = s
        .cli("default")
        .args([
            "metrics",
            "--function",
            &quiet,
            "--memory",
            "2048",
            "--arch",
            "x86_64",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no telemetry in this window"));
}

async fn alarms(
    sdk: &aws_config::SdkConfig,
    function: &str,
) -> Vec<aws_sdk_cloudwatch::types::MetricAlarm> {
    let all = aws_sdk_cloudwatch::Client::new(sdk)
        .describe_alarms()
        .send()
        .await
        .unwrap();
    all.metric_alarms()
        .iter()
        .filter(|a| {
            a.alarm_description()
                .is_some_and(|d| d.contains(&format!("texts {function} (")))
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_alarms_watch_the_telemetry_with_the_thresholds_given() {
    let s = standins();
    let stage = "drift";
    let function = "ummatics-sentiment-analysis-drift";
    s.destroy(stage);
    let sdk = s.sdk().await;

    // Telemetry off and an alarm on it: refused before anything is built.
    let out = s
        .deploy(
            stage,
            &["--telemetry", "off", "--alarm-negative-share", "0.6"],
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("alarm-negative-share (flag) watches the telemetry metrics, and telemetry is off (flag)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    json_of(&mut s.deploy(
        stage,
        &[
            "--model",
            "mini",
            "--alarm-negative-share",
            "0.6",
            "--alarm-low-confidence",
            "30%",
            "--alarm-email",
            "ops@example.com",
        ],
    ));
    let mut made = alarms(&sdk, function).await;
    made.sort_by(|a, b| a.threshold().partial_cmp(&b.threshold()).unwrap());
    assert_eq!(made.len(), 2, "{made:#?}");
    for (alarm, threshold, metric) in [
        (&made[0], 0.3, "LowConfidence"),
        (&made[1], 0.6, "Negative"),
    ] {
        assert_eq!(alarm.threshold(), Some(threshold));
        assert_eq!(
            alarm.comparison_operator().map(|c| c.as_str()),
            Some("GreaterThanThreshold")
        );
        assert!(
            !alarm.alarm_actions().is_empty(),
            "notifies the alarm e-mail's topic"
        );
        let queries = alarm.metrics();
        let expression = queries.iter().find_map(|q| q.expression()).unwrap();
        assert_eq!(expression, "IF(texts >= 10, answered / texts, 0)");
        let watched: Vec<(&str, Vec<(&str, &str)>)> = queries
            .iter()
            .filter_map(|q| q.metric_stat())
            .map(|stat| {
                let m = stat.metric().unwrap();
                (
                    m.metric_name().unwrap(),
                    m.dimensions()
                        .iter()
                        .map(|d| (d.name().unwrap(), d.value().unwrap()))
                        .collect(),
                )
            })
            .collect();
        let dims = vec![("FunctionName", function), ("Model", "sst2-mini")];
        assert!(watched.contains(&(metric, dims.clone())), "{watched:?}");
        assert!(watched.contains(&("Texts", dims)), "{watched:?}");
    }

    // Left out on the next deploy: gone.
    json_of(&mut s.deploy(stage, &["--model", "mini"]));
    assert!(alarms(&sdk, function).await.is_empty());
    s.destroy(stage);
}
