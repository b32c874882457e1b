//! `invoke`: texts in, labels out — through the deployed function (batched, concurrent,
//! retried, order kept) or in-process with `--local`.

use std::fmt;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;
use serde_json::{json, Value};
use ummatics_sentiment_function::protocol::{oversize, Response, SentimentResult};

use crate::aws::Aws;
use crate::cli::{GlobalArgs, InvokeArgs};
use crate::client::{no_function_message, BatchFailure, BatchInvoker, InvokerOptions};
use crate::output::{ellipsize, render, table, OutputFormat, Progress};

/// What `invoke` prints: per text its result (or `None` where its batch failed).
#[derive(Debug)]
pub struct InvokeReport {
    pub texts: Vec<String>,
    pub results: Vec<Option<SentimentResult>>,
    pub failures: Vec<BatchFailure>,
}

impl Serialize for InvokeReport {
    /// JSON output is the function's wire response, merged across invokes; when batches
    /// failed, the body also lists them and their texts' results are `null`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.failures.is_empty() {
            let results: Vec<SentimentResult> = self.results.iter().flatten().cloned().collect();
            return Response::ok(results).serialize(serializer);
        }
        json!({
            "statusCode": 200,
            "body": {
                "results": self.results,
                "count": self.results.len(),
                "failures": self.failures,
            }
        })
        .serialize(serializer)
    }
}

impl fmt::Display for InvokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut table = table(["#", "sentiment", "score", "text"]);
        for (i, (text, result)) in self.texts.iter().zip(&self.results).enumerate() {
            let (sentiment, score) = match result {
                Some(r) => (r.sentiment.clone(), format!("{:.4}", r.score)),
                None => ("FAILED".to_string(), "-".to_string()),
            };
            table.add_row([
                Cell::new(i + 1).set_alignment(CellAlignment::Right),
                Cell::new(sentiment),
                Cell::new(score).set_alignment(CellAlignment::Right),
                Cell::new(ellipsize(text, 72)),
            ]);
        }
        write!(f, "{}", render(&table))?;
        for failure in &self.failures {
            write!(
                f,
                "\ntexts {}–{} failed after {} attempt(s): {}",
                failure.start + 1,
                failure.end,
                failure.attempts,
                failure.error
            )?;
        }
        Ok(())
    }
}

impl InvokeReport {
    /// One JSON object per input text, in input order, ready to join back by `index`.
    fn jsonl(&self) -> String {
        let mut out = String::new();
        for (i, (text, result)) in self.texts.iter().zip(&self.results).enumerate() {
            let line = match result {
                Some(r) => {
                    json!({"index": i, "text": text, "sentiment": r.sentiment, "score": r.score})
                }
                None => {
                    let error = self
                        .failures
                        .iter()
                        .find(|f| (f.start..f.end).contains(&i))
                        .map(|f| f.error.clone())
                        .unwrap_or_default();
                    json!({"index": i, "text": text, "error": error})
                }
            };
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }
}

/// Where the texts come from, in order of precedence: arguments, `--file`, stdin.
pub fn read_texts(args: &InvokeArgs) -> Result<Vec<String>> {
    let texts = if !args.texts.is_empty() {
        if args.file.is_some() {
            bail!("pass texts as arguments or with --file, not both");
        }
        args.texts.clone()
    } else if let Some(path) = &args.file {
        let (name, bytes) = if path.as_os_str() == "-" {
            ("stdin".to_string(), read_stdin()?)
        } else {
            (
                path.display().to_string(),
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            )
        };
        crate::input::read_texts(&name, path, &bytes, args.column.as_deref())?
    } else {
        if std::io::stdin().is_terminal() {
            bail!(
                "no texts to classify: pass them as arguments (`ummatics-sentiment invoke \"I love this!\"`), \
                 with --file FILE, or on stdin, one per line"
            );
        }
        crate::input::read_texts(
            "stdin",
            Path::new("-"),
            &read_stdin()?,
            args.column.as_deref(),
        )?
    };
    if texts.is_empty() {
        bail!("no texts to classify: the input is empty");
    }
    if let Some((i, why)) = texts
        .iter()
        .enumerate()
        .find_map(|(i, t)| Some((i, oversize(t)?)))
    {
        bail!("text {} {why}; shorten it", i + 1);
    }
    Ok(texts)
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read stdin")?;
    Ok(bytes)
}

pub async fn run(args: InvokeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(payload) = &args.payload {
        return raw_payload(&args, payload, global).await;
    }
    let texts = read_texts(&args)?;
    let report = if args.local {
        let classifier = args.model.load().await?;
        let texts2 = texts.clone();
        let results = tokio::task::spawn_blocking(move || -> Result<_> {
            classifier
                .classify(&texts2)
                .context("classification failed")
        })
        .await??;
        InvokeReport {
            texts,
            results: results.into_iter().map(Some).collect(),
            failures: Vec::new(),
        }
    } else {
        let aws = Aws::load(&global.aws).await;
        let function = args.function.name(&aws.names);
        let invoker = BatchInvoker::new(
            aws.lambda(),
            &function,
            InvokerOptions {
                batch_size: args.batch_size as usize,
                concurrency: args.concurrency as usize,
                log_tail: args.log,
                ..InvokerOptions::default()
            },
        );
        let progress = Progress::new();
        let bar = (texts.len() > 200)
            .then(|| progress.count("classifying", texts.len() as u64))
            .flatten();
        let outcome = invoker
            .classify(&texts, |n| {
                if let Some(bar) = &bar {
                    bar.inc(n as u64);
                }
            })
            .await?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{} texts, {} invoke(s) of {function}, {:.2} s{}{}",
            texts.len(),
            outcome.invokes,
            outcome.wall.as_secs_f64(),
            outcome
                .billed_ms
                .map(|ms| format!(", billed {ms:.0} ms"))
                .unwrap_or_default(),
            if outcome.failures.is_empty() {
                String::new()
            } else {
                format!(", {} batch(es) FAILED", outcome.failures.len())
            }
        );
        InvokeReport {
            texts,
            results: outcome.results,
            failures: outcome.failures,
        }
    };
    match global.output {
        OutputFormat::Human => println!("{report}"),
        OutputFormat::Json => println!("{}", serde_json::to_string(&report)?),
        OutputFormat::Jsonl => print!("{}", report.jsonl()),
    }
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--payload JSON`: sends it as is (like `aws lambda invoke`) and prints what comes back.
async fn raw_payload(args: &InvokeArgs, payload: &str, global: &GlobalArgs) -> Result<ExitCode> {
    if !args.texts.is_empty() || args.file.is_some() {
        bail!("--payload sends its JSON as the whole event: drop the texts and --file");
    }
    let event: Value = serde_json::from_str(payload).context(
        "--payload is not JSON; pass the event, e.g. --payload '{\"texts\": [\"I love this!\"]}'",
    )?;
    let (answer, function_error) = if args.local {
        let classifier = args.model.load().await?;
        let answer = tokio::task::spawn_blocking(move || -> Result<Value> {
            Ok(serde_json::to_value(
                ummatics_sentiment_function::event::handle(&classifier, event),
            )?)
        })
        .await??;
        (answer, None)
    } else {
        let aws = Aws::load(&global.aws).await;
        let function = args.function.name(&aws.names);
        let out = aws
            .lambda()
            .invoke()
            .function_name(&function)
            .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(
                &event,
            )?))
            .send()
            .await;
        let out = match out {
            Err(e) if crate::aws::error_code(&e) == Some("ResourceNotFoundException") => {
                bail!(no_function_message(&function, &aws.region()))
            }
            other => other
                .map_err(|e| anyhow::anyhow!(crate::aws::describe(&e)))
                .with_context(|| format!("cannot invoke {function}"))?,
        };
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        let answer = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()));
        (answer, out.function_error().map(str::to_string))
    };
    println!("{answer}");
    Ok(raw_exit_code(&answer, function_error.as_deref()))
}

/// `--payload`'s exit status: a function error (Lambda's `X-Amz-Function-Error`, whose body
/// has no `statusCode`) or a `statusCode` of 400 or more fails; anything else succeeds.
fn raw_exit_code(answer: &Value, function_error: Option<&str>) -> ExitCode {
    if let Some(kind) = function_error {
        eprintln!(
            "function error ({kind}): {}",
            answer["errorMessage"].as_str().unwrap_or("no message")
        );
        return ExitCode::FAILURE;
    }
    match answer.get("statusCode").and_then(Value::as_u64) {
        Some(status) if status >= 400 => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_error_fails_the_payload_call_even_without_a_status_code() {
        let error = json!({"errorType": "Runtime.OutOfMemory", "errorMessage": "killed"});
        assert_eq!(raw_exit_code(&error, Some("Unhandled")), ExitCode::FAILURE);
        assert_eq!(raw_exit_code(&error, None), ExitCode::SUCCESS);
        let bad = json!({"statusCode": 400, "body": {"error": "x"}});
        assert_eq!(raw_exit_code(&bad, None), ExitCode::FAILURE);
        let ok = json!({"statusCode": 200, "body": {"results": [], "count": 0}});
        assert_eq!(raw_exit_code(&ok, None), ExitCode::SUCCESS);
    }
}
