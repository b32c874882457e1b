//! `bootstrap`: the Lambda entry point.
//!
//! Loads the model once at init (errors go to the Runtime API's init-error endpoint), then
//! answers every event with [`ummatics_sentiment_function::handle`].
//! `bootstrap --self-test [--model DIR]` loads the model and checks two fixed sentences.

use std::sync::Arc;

use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent, Runtime};
use serde_json::Value;
use ummatics_sentiment_function::startup::{self, Allocator};
use ummatics_sentiment_function::telemetry::{self, Telemetry};
use ummatics_sentiment_function::{
    build_info, handle_observed, runtime, Classifier, ClassifierOptions,
};

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// Kept in the binary's data (read through `black_box`), so `deploy` and `info` can tell which
/// build a bootstrap file is from its bytes alone, whatever its architecture.
static BUILD_MARKER: &str = build_info::MARKER;

const USAGE: &str =
    "usage: bootstrap                         run as a Lambda function (Runtime API)
       bootstrap --self-test [--model DIR]  load the model and classify two fixed sentences
       bootstrap --version";

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line
        .with_target(false)
        .init();
}

fn self_test(args: &[String]) -> i32 {
    let dir = match args {
        [] => runtime::model_dir(),
        [flag, dir] if flag == "--model" => dir.into(),
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    let started = std::time::Instant::now();
    let result = ClassifierOptions::from_env()
        .and_then(|options| startup::while_loading(|| Classifier::load(&dir, &options)))
        .and_then(|classifier| {
            let mut lines = runtime::self_test(&classifier)?;
            lines.push(format!("load stages: {}", classifier.load_timings()));
            Ok(lines)
        });
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            println!(
                "self-test passed: {} in {:.0?}",
                dir.display(),
                started.elapsed()
            );
            0
        }
        Err(e) => {
            eprintln!("self-test failed: {e:#}");
            1
        }
    }
}

fn main() -> Result<(), Error> {
    // INIT as the function can see it: from here to the model ready.
    let started = std::time::Instant::now();
    // Before the runtime starts its threads (startup::configure may set a variable).
    startup::configure();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(started))
}

async fn run(started: std::time::Instant) -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("--self-test") => std::process::exit(self_test(&args[1..])),
        Some("--version") => {
            let marker = std::hint::black_box(BUILD_MARKER);
            debug_assert!(marker.contains(build_info::VERSION));
            println!("bootstrap {}", build_info::DESCRIPTION);
            return Ok(());
        }
        Some(_) => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }

    // lambda_runtime panics on a missing variable; say what is wrong instead.
    let missing: Vec<&str> = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
    ]
    .into_iter()
    .filter(|name| std::env::var_os(name).is_none_or(|v| v.is_empty()))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "bootstrap runs inside AWS Lambda, which sets {}; to check the model here, run `bootstrap --self-test --model DIR`",
            missing.join(", ")
        );
        std::process::exit(2);
    }
    if std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_ok_and(|v| v.parse::<i32>().is_err()) {
        eprintln!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a whole number of MB");
        std::process::exit(2);
    }

    init_logging();
    let loading = std::time::Instant::now();
    let loaded =
        Telemetry::from_env().and_then(|telemetry| Ok((telemetry, runtime::load_from_env()?)));
    let (telemetry, classifier) = match loaded {
        Ok((telemetry, classifier)) => (telemetry, Arc::new(classifier)),
        Err(error) => {
            tracing::error!("init failed: {error:#}");
            if let Err(report) = runtime::report_init_error(&error).await {
                tracing::error!("could not report the init error: {report:#}");
            }
            std::process::exit(1);
        }
    };
    tracing::info!(
        model = %classifier.source(),
        labels = ?classifier.labels(),
        "model loaded in {:.0?}",
        loading.elapsed()
    );
    // This cold start's INIT as a CloudWatch metric (billed; the Duration metric omits it).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    println!(
        "{}",
        runtime::init_metric_line(&function, started.elapsed().as_secs_f64() * 1000.0, now_ms)
    );
    // What each invocation saw and answered, as one EMF line (see the telemetry module).
    let observer = (telemetry == Telemetry::On)
        .then(|| Arc::new((function, telemetry::model_name(classifier.source()))));

    // Events that are not JSON get a stable `InvalidEvent` error (see runtime::NotJson).
    let not_json = runtime::NotJson::default();
    let seen = not_json.clone();
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let classifier = classifier.clone();
        let observer = observer.clone();
        let invalid = seen.take(&event.context.request_id);
        async move {
            if let Some(diagnostic) = invalid {
                return Err(diagnostic);
            }
            tokio::task::spawn_blocking(move || {
                let (answer, record) = handle_observed(&classifier, event.payload);
                if let (Some(names), Some(record)) = (observer.as_deref(), record) {
                    println!(
                        "{}",
                        record.emf_line(&names.0, &names.1, telemetry::now_ms())
                    );
                }
                answer
            })
            .await
            .map_err(|e| Diagnostic {
                error_type: "Runtime.HandlerPanic".into(),
                error_message: e.to_string(),
            })
        }
    });
    Runtime::new(handler)
        .layer(TracingLayer::new())
        .layer(not_json)
        .run()
        .await
}
