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
use ummatics_sentiment_function::protocol::{Response, SentimentResult, MAX_TEXT_BYTES};

use crate::aws::Aws;
use crate::cli::{GlobalArgs, InvokeArgs};
use crate::client::{BatchFailure, BatchInvoker, InvokerOptions};
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
        parse_file(&name, path, &bytes, args.column.as_deref())?
    } else {
        if std::io::stdin().is_terminal() {
            bail!(
                "no texts to classify: pass them as arguments (`ummatics-sentiment invoke \"I love this!\"`), \
                 with --file FILE, or on stdin, one per line"
            );
        }
        parse_file(
            "stdin",
            Path::new("-"),
            &read_stdin()?,
            args.column.as_deref(),
        )?
    };
    if texts.is_empty() {
        bail!("no texts to classify: the input is empty");
    }
    if let Some((i, text)) = texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.len() > MAX_TEXT_BYTES)
    {
        bail!(
            "text {} is {} bytes, more than the {MAX_TEXT_BYTES} bytes the function accepts per text; shorten it",
            i + 1,
            text.len()
        );
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

/// Plain lines (one text each), JSONL (`{"text": …}`, field settable), CSV or TSV (header
/// line, `--column`; TSV unquoted, as GLUE's SST-2 files), chosen by extension; stdin is plain
/// lines unless `--column` says otherwise.
pub(crate) fn parse_file(
    name: &str,
    path: &Path,
    bytes: &[u8],
    column: Option<&str>,
) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name} is not UTF-8 (invalid byte at offset {}); save it as UTF-8",
            e.valid_up_to()
        )
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl") | Some("ndjson") => {
            let field = column.unwrap_or("text");
            let mut texts = Vec::new();
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(line)
                    .with_context(|| format!("{name}:{}: not a JSON object", n + 1))?;
                match value.get(field) {
                    Some(Value::String(s)) => texts.push(s.clone()),
                    Some(other) => bail!(
                        "{name}:{}: field {field:?} is {}, not a string",
                        n + 1,
                        ummatics_sentiment_function::protocol::json_type(other)
                    ),
                    None => bail!(
                        "{name}:{}: no {field:?} field (pick another with --column)",
                        n + 1
                    ),
                }
            }
            Ok(texts)
        }
        Some(extension @ ("csv" | "tsv")) => {
            let field = column.unwrap_or("text");
            let tsv = extension == "tsv";
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(if tsv { b'\t' } else { b',' })
                .quoting(!tsv)
                .from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .with_context(|| format!("{name}: cannot read the header line"))?
                .clone();
            let Some(index) = headers.iter().position(|h| h == field) else {
                bail!(
                    "{name}: no column {field:?}; the columns are {} (pick one with --column)",
                    headers.iter().collect::<Vec<_>>().join(", ")
                );
            };
            let mut texts = Vec::new();
            for (n, record) in reader.records().enumerate() {
                let record = record.with_context(|| {
                    format!("{name}:{}: bad {}", n + 2, extension.to_uppercase())
                })?;
                texts.push(
                    record
                        .get(index)
                        .with_context(|| format!("{name}:{}: no column {field:?}", n + 2))?
                        .to_string(),
                );
            }
            Ok(texts)
        }
        _ => {
            if column.is_some() {
                bail!(
                    "--column applies to .csv, .tsv and .jsonl files; {name} is read as plain lines"
                );
            }
            Ok(text.lines().map(str::to_string).collect())
        }
    }
}

pub async fn run(args: InvokeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(payload) = &args.payload {
        return raw_payload(&args, payload, global).await;
    }
    let texts = read_texts(&args)?;
    let report = if args.local {
        let options = args.model.options()?;
        let hub_dir = tempfile::tempdir()?;
        let model = args.model.model.clone().resolve(hub_dir.path()).await?;
        let texts2 = texts.clone();
        let results = tokio::task::spawn_blocking(move || -> Result<_> {
            let classifier = model.load(&options)?;
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
        let aws = Aws::load(global).await;
        let function = args.function.clone().unwrap_or(aws.names.function.clone());
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
    let answer = if args.local {
        let options = args.model.options()?;
        let hub_dir = tempfile::tempdir()?;
        let model = args.model.model.clone().resolve(hub_dir.path()).await?;
        tokio::task::spawn_blocking(move || -> Result<Value> {
            let classifier = model.load(&options)?;
            Ok(serde_json::to_value(
                ummatics_sentiment_function::event::handle(&classifier, event),
            )?)
        })
        .await??
    } else {
        let aws = Aws::load(global).await;
        let function = args.function.clone().unwrap_or(aws.names.function.clone());
        let out = aws
            .lambda()
            .invoke()
            .function_name(&function)
            .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(
                &event,
            )?))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(crate::aws::describe(&e)))
            .with_context(|| format!("cannot invoke {function}"))?;
        if let Some(kind) = out.function_error() {
            eprintln!("function error: {kind}");
        }
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
    };
    println!("{answer}");
    let ok = answer
        .get("statusCode")
        .and_then(Value::as_u64)
        .is_none_or(|s| s < 400);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_files_are_read_unquoted_by_column() {
        let tsv = "text\tlabel\nit 's \"quoted\" , here \t1\nbleak\t0\n";
        let texts = parse_file("dev.tsv", Path::new("dev.tsv"), tsv.as_bytes(), None).unwrap();
        assert_eq!(texts, ["it 's \"quoted\" , here ", "bleak"]);
        let labels = parse_file(
            "dev.tsv",
            Path::new("dev.tsv"),
            tsv.as_bytes(),
            Some("label"),
        )
        .unwrap();
        assert_eq!(labels, ["1", "0"]);
        let err = parse_file(
            "dev.tsv",
            Path::new("dev.tsv"),
            tsv.as_bytes(),
            Some("review"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no column \"review\"") && err.contains("text, label"),
            "{err}"
        );
        let ragged = "text\tlabel\nonly one field\n";
        let err = parse_file("dev.tsv", Path::new("dev.tsv"), ragged.as_bytes(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev.tsv:2: bad TSV"), "{err}");
    }

    #[test]
    fn plain_files_take_no_column() {
        let err = parse_file("a.txt", Path::new("a.txt"), b"x\ny\n", Some("text"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(".tsv"), "{err}");
        let texts = parse_file("a.txt", Path::new("a.txt"), b"x\ny\n", None).unwrap();
        assert_eq!(texts, ["x", "y"]);
    }
}
