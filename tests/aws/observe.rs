//! `metrics` and `logs` against moto, seeded with PutMetricData and PutLogEvents.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{assert_quiet_on_closed_pipe, json_of, standins};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_sum_seeded_points_and_price_them() {
    let s = standins();
    // Unique per run: moto keeps what earlier runs put there.
    let function = &format!("metrics-fn-{}", std::process::id());
    let cw = aws_sdk_cloudwatch::Client::new(&s.sdk().await);
    let now = SystemTime::now();
    let dim = Dimension::builder()
        .name("FunctionName")
        .value(function)
        .build();
    let datum = |name: &str, value: f64, ago_min: u64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(name)
            .dimensions(dim.clone())
            .value(value)
            .unit(unit)
            .timestamp(DateTime::from(now - Duration::from_secs(ago_min * 60)))
            .build()
    };
    // 3 invocations (one failed) of 200, 300 and 500 ms, an hour apart or close together.
    cw.put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(datum("Invocations", 2.0, 120, StandardUnit::Count))
        .metric_data(datum("Invocations", 1.0, 10, StandardUnit::Count))
        .metric_data(datum("Errors", 1.0, 10, StandardUnit::Count))
        .metric_data(datum("Duration", 200.0, 120, StandardUnit::Milliseconds))
        .metric_data(datum("Duration", 300.0, 120, StandardUnit::Milliseconds))
        .metric_data(datum("Duration", 500.0, 10, StandardUnit::Milliseconds))
        .metric_data(datum("ConcurrentExecutions", 2.0, 10, StandardUnit::Count))
        .send()
        .await
        .unwrap();

    // Its REPORT lines: two cold starts (150 + 250 ms of INIT, billed) and a warm call.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&s.sdk().await);
    let group = format!("/aws/lambda/{function}");
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s1")
        .send()
        .await
        .unwrap();
    put_at(
        &logs,
        &group,
        &[
            "REPORT RequestId: c1\tDuration: 200.00 ms\tBilled Duration: 350 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\tInit Duration: 150.00 ms\t",
            "REPORT RequestId: w1\tDuration: 300.00 ms\tBilled Duration: 300 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\t",
        ],
        now - Duration::from_secs(120 * 60),
    )
    .await;
    put_at(
        &logs,
        &group,
        &["REPORT RequestId: c2\tDuration: 500.00 ms\tBilled Duration: 750 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\tInit Duration: 250.00 ms\t"],
        now - Duration::from_secs(10 * 60),
    )
    .await;

    // `metrics` of the seeded function, priced at 2 GB x86_64 (after the global flags).
    let metrics = [
        "metrics",
        "--function",
        function,
        "--since",
        "6h",
        "--memory",
        "2048",
        "--arch",
        "x86_64",
    ];
    let report = json_of(s.cli("metrics").args(["--output", "json"]).args(metrics));
    assert_eq!(report["period_s"], 3600, "{report:#}");
    assert_eq!(report["invocations"], 3.0);
    assert_eq!(report["errors"], 1.0);
    assert!((report["error_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(report["duration_max_ms"], 500.0);
    assert!((report["duration_avg_ms"].as_f64().unwrap() - 1000.0 / 3.0).abs() < 1e-9);
    // moto computes no percentiles: shown as unavailable, not as 0.
    assert!(report["duration_p95_ms"].is_null());
    // 1,000 ms of Duration and 400 ms of INIT at 2 GB = 2.8 GB-s; hand-computed dollars at
    // the x86 price.
    let cost = &report["cost"];
    assert!(
        (cost["gb_seconds"].as_f64().unwrap() - 2.8).abs() < 1e-9,
        "{cost:#}"
    );
    assert!((cost["init_gb_seconds"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    assert_eq!(cost["init"]["cold_starts"], 2, "{cost:#}");
    let expected = 2.8 * 0.000_016_666_7 + 3.0 * 0.000_000_2;
    assert!((cost["total_usd"].as_f64().unwrap() - expected).abs() < 1e-12);
    assert!((cost["projected_30d_usd"].as_f64().unwrap() - expected * 120.0).abs() < 1e-9);

    let human = s.cli("metrics").args(metrics).output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.status.success(),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    assert!(text.contains("Invocations") && text.contains('█'), "{text}");
    assert!(text.contains("unavailable"), "{text}");
    assert!(
        text.contains("cold starts 2, 0.4 s of billed INIT = 0.8 GB-s"),
        "{text}"
    );

    // `metrics | head`: the reader going away ends it quietly, in both formats.
    for format in ["human", "json"] {
        assert_quiet_on_closed_pipe(
            s.cli_process("metrics")
                .args(["--output", format])
                .args(metrics),
            &format!("metrics --output {format}"),
        );
    }

    // No function and no --memory: a clear error, not a guess.
    let out = s
        .cli("metrics")
        .args(["metrics", "--function", "no-such-fn"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--memory"));
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn put(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, messages: &[&str]) {
    put_at(logs, group, messages, SystemTime::now()).await
}

async fn put_at(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    messages: &[&str],
    at: SystemTime,
) {
    let mut request = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name("s1");
    for m in messages {
        request = request.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(ms(at))
                .message(*m)
                .build()
                .unwrap(),
        );
    }
    request.send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_history_report_lines_and_follow() {
    let s = standins();
    let function = &format!("logs-fn-{}", std::process::id());
    let group = format!("/aws/lambda/{function}");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&s.sdk().await);
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s1")
        .send()
        .await
        .unwrap();
    // An hour old: outside logs' default window (the last 10 minutes), inside --since 2h.
    put_at(
        &logs,
        &group,
        &["an event from an hour ago"],
        SystemTime::now() - Duration::from_secs(3600),
    )
    .await;
    put(&logs, &group, &[
        "START RequestId: r1 Version: $LATEST",
        "REPORT RequestId: r1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 2048 MB\tMax Memory Used: 80 MB\tInit Duration: 151.20 ms\t",
    ])
    .await;

    // History: both events, the REPORT folded into one line.
    let out = s
        .cli("logs")
        .args(["logs", "--function", function, "--since", "10m"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("START RequestId: r1"), "{text}");
    assert!(
        text.contains("REPORT 12.3 ms (billed 13 ms), 80/2048 MB, cold start 151 ms [r1]"),
        "{text}"
    );

    assert!(!text.contains("an hour ago"), "{text}");
    let out = s
        .cli("logs")
        .args(["logs", "--function", function, "--since", "2h"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("an event from an hour ago"));

    // Default: the last 10 minutes (as `aws logs tail`), so the recent events show and the
    // hour-old one does not.
    let out = s
        .cli("logs")
        .args(["logs", "--function", function])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("START RequestId: r1"), "{text}");
    assert!(!text.contains("an hour ago"), "{text}");
    // Nothing in the window: says so, and where to look.
    let quiet = format!("{function}-quiet");
    logs.create_log_group()
        .log_group_name(format!("/aws/lambda/{quiet}"))
        .send()
        .await
        .unwrap();
    let out = s
        .cli("logs")
        .args(["logs", "--function", &quiet])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        said.contains(&format!(
            "no events in /aws/lambda/{quiet} in the last 10 minutes: pass --since 1h"
        )),
        "{said}"
    );

    // `logs | head`: the reader going away ends it quietly, in both formats.
    for format in ["human", "json"] {
        assert_quiet_on_closed_pipe(
            s.cli_process("logs")
                .args(["--output", format, "logs", "--function", function]),
            &format!("logs --output {format}"),
        );
    }

    // --follow: picks up events written after it started, each once, and stops on Ctrl-C.
    let mut follow = Command::new(assert_cmd::cargo::cargo_bin("ummatics-sentiment"))
        .env("AWS_ENDPOINT_URL", &s.aws_endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .args([
            "logs",
            "--function",
            function,
            "--follow",
            "--poll-interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(follow.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("following"), "{first}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    put(&logs, &group, &["new event one"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    put(&logs, &group, &["new event two"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Written now, stamped 30 s ago (another instance's buffered line): older than every
    // event follow has printed, so a cursor at the newest timestamp would skip it.
    put_at(
        &logs,
        &group,
        &["a late event from another instance"],
        SystemTime::now() - Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Command::new("kill")
        .args(["-INT", &follow.id().to_string()])
        .status()
        .unwrap();
    let output = follow.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "Ctrl-C should exit 0: {:?}",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches("new event one").count(), 1, "{text}");
    assert_eq!(text.matches("new event two").count(), 1, "{text}");
    assert_eq!(
        text.matches("a late event from another instance").count(),
        1,
        "{text}"
    );
    // It starts with the last 10 minutes, each event once, and nothing older.
    assert_eq!(text.matches("START RequestId: r1").count(), 1, "{text}");
    assert!(!text.contains("an hour ago"), "{text}");
}

/// `metrics --function X` prices X with X's own memory and architecture (it used to take the
/// stage's default function's): two functions, the same metrics, different memory sizes.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_price_each_function_with_its_own_memory() {
    let s = standins();
    let id = std::process::id();
    let small = format!("price-small-{id}");
    let large = format!("price-large-{id}");
    // Two zip functions (boto3 comes with moto; nothing runs them).
    let script = format!(
        r#"
import io, json, zipfile, boto3
iam = boto3.client("iam")
role = iam.create_role(RoleName="price-role-{id}", AssumeRolePolicyDocument=json.dumps({{
    "Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {{"Service": "lambda.amazonaws.com"}}}}]}}))["Role"]["Arn"]
code = io.BytesIO()
with zipfile.ZipFile(code, "w") as z:
    z.writestr("app.py", "def handler(event, context):\n    return event\n")
lam = boto3.client("lambda")
for name, memory, arch in [("{small}", 512, "x86_64"), ("{large}", 3008, "arm64")]:
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={{"ZipFile": code.getvalue()}}, MemorySize=memory, Architectures=[arch])
"#
    );
    s.boto3(&script);

    let cw = aws_sdk_cloudwatch::Client::new(&s.sdk().await);
    let at = DateTime::from(SystemTime::now() - Duration::from_secs(600));
    for function in [&small, &large] {
        let dim = Dimension::builder()
            .name("FunctionName")
            .value(function)
            .build();
        cw.put_metric_data()
            .namespace("AWS/Lambda")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("Invocations")
                    .dimensions(dim.clone())
                    .value(1.0)
                    .unit(StandardUnit::Count)
                    .timestamp(at)
                    .build(),
            )
            .metric_data(
                MetricDatum::builder()
                    .metric_name("Duration")
                    .dimensions(dim)
                    .value(1024.0)
                    .unit(StandardUnit::Milliseconds)
                    .timestamp(at)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let cost = |function: &str| {
        json_of(s.cli("metrics").args([
            "--output",
            "json",
            "metrics",
            "--function",
            function,
            "--since",
            "1h",
        ]))["cost"]
            .clone()
    };
    let (a, b) = (cost(&small), cost(&large));
    assert_eq!(a["memory_mb"], 512, "{a:#}");
    assert_eq!(a["architecture"], "x86_64", "{a:#}");
    assert_eq!(b["memory_mb"], 3008, "{b:#}");
    assert_eq!(b["architecture"], "arm64", "{b:#}");
    // 1.024 s at 0.5 GB and at 2.9375 GB.
    assert!(
        (a["gb_seconds"].as_f64().unwrap() - 0.512).abs() < 1e-9,
        "{a:#}"
    );
    assert!(
        (b["gb_seconds"].as_f64().unwrap() - 3.008).abs() < 1e-9,
        "{b:#}"
    );
}
