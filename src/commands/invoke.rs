//! `invoke`: texts in, labels out — through the deployed function (batched, concurrent,
//! retried, order kept) or in-process with `--local`.
//!
//! Input and output stream: a reader thread reads texts one at a time into a bounded channel,
//! they are packed into batches (≤ `--batch-size` texts, < 6 MB), at most `--concurrency`
//! batches are in flight, and each batch's results are printed, in input order, as soon as it
//! and every batch before it are done. Memory is bounded by about 2 × concurrency × one batch,
//! whatever the input's length. Ctrl-C prints what is done and says how to resume
//! (`--skip N`).

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use comfy_table::{Cell, CellAlignment};
use futures_util::StreamExt;
use serde_json::Value;
use ummatics_sentiment_function::protocol::SentimentResult;
use ummatics_sentiment_function::telemetry::Record;
use ummatics_sentiment_function::Classifier;

use crate::aws::Aws;
use crate::cli::{GlobalArgs, InvokeArgs};
use crate::client::{
    no_function_message, BatchError, BatchFailure, BatchInvoker, InvokerOptions, Packer,
    RetryBudget,
};
use crate::input::{records, text_format, Column};
use crate::output::{ellipsize, render, table, OutputFormat};

/// Human output for up to this many texts is one table sized to its content; beyond it, rows
/// are printed as they come in fixed-width columns.
const TABLE_ROWS: usize = 1000;

/// One input text: its position among the texts (0-based, `--skip`ped ones included), the
/// line it starts on (1-based; for arguments, the argument's position), and the text — or
/// why it cannot be sent.
#[derive(Debug, Clone)]
struct Text {
    index: usize,
    line: u64,
    text: String,
    refused: Option<String>,
}

/// Where the texts come from.
enum Source {
    Args(Vec<String>),
    Reader {
        name: String,
        path: PathBuf,
        reader: Box<dyn BufRead + Send>,
    },
}

impl Source {
    /// In order of precedence: arguments, `--file`, stdin.
    fn from_args(args: &InvokeArgs) -> Result<Source> {
        if !args.texts.is_empty() {
            if args.file.is_some() {
                bail!("pass texts as arguments or with --file, not both");
            }
            return Ok(Source::Args(args.texts.clone()));
        }
        let stdin =
            || -> Box<dyn BufRead + Send> { Box::new(std::io::BufReader::new(std::io::stdin())) };
        match &args.file {
            Some(path) if path.as_os_str() == "-" => Ok(Source::Reader {
                name: "stdin".into(),
                path: path.clone(),
                reader: stdin(),
            }),
            Some(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Ok(Source::Reader {
                    name: path.display().to_string(),
                    path: path.clone(),
                    reader: Box::new(std::io::BufReader::with_capacity(256 * 1024, file)),
                })
            }
            None => {
                if std::io::stdin().is_terminal() {
                    bail!(
                        "no texts to classify: pass them as arguments (`ummatics-sentiment invoke \"I love this!\"`), \
                         with --file FILE, or on stdin, one per line"
                    );
                }
                Ok(Source::Reader {
                    name: "stdin".into(),
                    path: PathBuf::from("-"),
                    reader: stdin(),
                })
            }
        }
    }

    /// Sends every text after the first `skip` into `tx` (blocking; run on its own thread);
    /// a read error is sent as the last item.
    fn send_all(
        self,
        column: Option<String>,
        skip: usize,
        tx: tokio::sync::mpsc::Sender<Result<Text>>,
    ) {
        let refuse = |text: &str| ummatics_sentiment_function::protocol::oversize(text);
        match self {
            Source::Args(texts) => {
                for (i, text) in texts.into_iter().enumerate().skip(skip) {
                    let refused = refuse(&text).map(|why| format!("text {i} {why}; shorten it"));
                    let text = Text {
                        index: i,
                        line: i as u64 + 1,
                        text,
                        refused,
                    };
                    if tx.blocking_send(Ok(text)).is_err() {
                        return;
                    }
                }
            }
            Source::Reader { name, path, reader } => {
                let column = column.as_deref();
                let read = text_format(&name, &path, column).and_then(|format| {
                    records(
                        &name,
                        reader,
                        format,
                        &[Column::text(column.unwrap_or("text"))],
                        "pick one with --column",
                    )
                });
                let records = match read {
                    Ok(records) => records,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                for (i, record) in records.enumerate().skip(skip) {
                    let text = match record {
                        Ok(Ok(mut record)) => {
                            let text = record.values.swap_remove(0);
                            let refused = refuse(&text).map(|why| {
                                format!("text {i} (line {}) {why}; shorten it", record.line)
                            });
                            Ok(Text {
                                index: i,
                                line: record.line,
                                text,
                                refused,
                            })
                        }
                        Ok(Err(o)) => Ok(Text {
                            index: i,
                            line: o.line,
                            text: String::new(),
                            refused: Some(format!(
                                "text {i} (line {}): {}; shorten it",
                                o.line, o.why
                            )),
                        }),
                        Err(e) => Err(e),
                    };
                    let stop = text.is_err();
                    if tx.blocking_send(text).is_err() || stop {
                        return;
                    }
                }
            }
        }
    }
}

/// Texts sent together, or one refused text.
struct Batch {
    texts: Vec<Text>,
    refused: bool,
}

/// A batch's outcome: its texts and their results, or why they have none.
struct Done {
    texts: Vec<Text>,
    outcome: std::result::Result<Vec<SentimentResult>, Failure>,
    billed_ms: Option<f64>,
}

#[derive(Debug, Clone)]
struct Failure {
    error: String,
    attempts: u32,
}

/// Why the stream of results stopped early.
enum Stop {
    /// The input could not be read further (the texts before are printed).
    Input(anyhow::Error),
    /// Nothing more can succeed (no such function, the model failed).
    Fatal(anyhow::Error),
}

/// What classifies a batch.
#[derive(Clone)]
enum Engine {
    Local(Arc<(Classifier, Option<crate::telemetry::Sink>)>),
    Remote(Arc<(BatchInvoker, RetryBudget)>),
}

impl Engine {
    async fn run(self, batch: Batch) -> Result<Done> {
        if batch.refused {
            let error = batch.texts[0].refused.clone().unwrap_or_default();
            return Ok(Done {
                texts: batch.texts,
                outcome: Err(Failure { error, attempts: 0 }),
                billed_ms: None,
            });
        }
        let strings: Vec<String> = batch.texts.iter().map(|t| t.text.clone()).collect();
        match self {
            Engine::Local(local) => {
                let results = tokio::task::spawn_blocking(move || {
                    let (classifier, sink) = &*local;
                    let (results, usage) = classifier.classify_observed(&strings)?;
                    if let (Some(sink), Some(record)) = (sink, Record::of(&results, &usage)) {
                        sink.write(&record);
                    }
                    anyhow::Ok(results)
                })
                .await?
                .context("classification failed")?;
                Ok(Done {
                    texts: batch.texts,
                    outcome: Ok(results),
                    billed_ms: None,
                })
            }
            Engine::Remote(remote) => {
                let (invoker, budget) = &*remote;
                match invoker.run_batch(&strings, budget).await {
                    Ok(answered) => Ok(Done {
                        texts: batch.texts,
                        outcome: Ok(answered.results),
                        billed_ms: answered.billed_ms,
                    }),
                    Err(BatchError::Failed { error, attempts }) => Ok(Done {
                        texts: batch.texts,
                        outcome: Err(Failure { error, attempts }),
                        billed_ms: None,
                    }),
                    Err(BatchError::NoFunction) => bail!(invoker.no_function()),
                }
            }
        }
    }
}

/// Packs the texts arriving on `rx` into batches; a read error ends the stream after the
/// batch it interrupts.
fn batches(
    rx: tokio::sync::mpsc::Receiver<Result<Text>>,
    packer: Packer,
) -> impl futures_util::Stream<Item = Result<Batch>> {
    struct State {
        rx: tokio::sync::mpsc::Receiver<Result<Text>>,
        packer: Packer,
        current: Vec<Text>,
        queued: std::collections::VecDeque<Result<Batch>>,
        ended: bool,
    }
    let state = State {
        rx,
        packer,
        current: Vec::new(),
        queued: Default::default(),
        ended: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.queued.pop_front() {
                return Some((item, s));
            }
            if s.ended {
                return None;
            }
            let flush = |s: &mut State| {
                if !s.current.is_empty() {
                    let texts = std::mem::take(&mut s.current);
                    s.queued.push_back(Ok(Batch {
                        texts,
                        refused: false,
                    }));
                }
                s.packer.cut();
            };
            match s.rx.recv().await {
                None => {
                    flush(&mut s);
                    s.ended = true;
                }
                Some(Err(e)) => {
                    flush(&mut s);
                    s.queued.push_back(Err(e));
                    s.ended = true;
                }
                Some(Ok(text)) if text.refused.is_some() => {
                    flush(&mut s);
                    s.queued.push_back(Ok(Batch {
                        texts: vec![text],
                        refused: true,
                    }));
                }
                Some(Ok(text)) => match s.packer.add(text.index, &text.text) {
                    Ok(true) => {
                        let texts = std::mem::replace(&mut s.current, vec![text]);
                        s.queued.push_back(Ok(Batch {
                            texts,
                            refused: false,
                        }));
                    }
                    Ok(false) => s.current.push(text),
                    Err(why) => {
                        flush(&mut s);
                        let text = Text {
                            refused: Some(why),
                            ..text
                        };
                        s.queued.push_back(Ok(Batch {
                            texts: vec![text],
                            refused: true,
                        }));
                    }
                },
            }
        }
    })
}

/// Writes results as they come, in the chosen format.
struct Printer {
    format: OutputFormat,
    out: std::io::BufWriter<std::io::Stdout>,
    /// Texts printed (or, for the small human table, held to be printed).
    done: usize,
    failed_texts: usize,
    failed_batches: usize,
    /// Failed ranges, adjacent ones with the same error merged.
    failures: Vec<BatchFailure>,
    /// Human output: rows held until the table is known to be small.
    held: Vec<(Text, std::result::Result<SentimentResult, String>)>,
    streaming_rows: bool,
    /// Texts that are empty or only whitespace: how many, and the first few positions (1-based).
    blank: usize,
    blank_at: Vec<usize>,
}

impl Printer {
    fn new(format: OutputFormat) -> Printer {
        Printer {
            format,
            out: std::io::BufWriter::new(std::io::stdout()),
            done: 0,
            failed_texts: 0,
            failed_batches: 0,
            failures: Vec::new(),
            held: Vec::new(),
            streaming_rows: false,
            blank: 0,
            blank_at: Vec::new(),
        }
    }

    fn note_failure(&mut self, texts: &[Text], failure: &Failure) {
        let (start, end) = (texts[0].index, texts[texts.len() - 1].index + 1);
        self.failed_texts += texts.len();
        self.failed_batches += 1;
        if let Some(last) = self.failures.last_mut() {
            if last.end == start && last.error == failure.error {
                last.end = end;
                last.attempts = last.attempts.max(failure.attempts);
                return;
            }
        }
        self.failures.push(BatchFailure {
            start,
            end,
            attempts: failure.attempts,
            error: failure.error.clone(),
        });
    }

    fn print(&mut self, done: Done) -> Result<()> {
        if let Err(failure) = &done.outcome {
            self.note_failure(&done.texts, failure);
        }
        let results: Vec<std::result::Result<SentimentResult, String>> = match done.outcome {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(failure) => vec![Err(failure.error); done.texts.len()],
        };
        for (text, result) in done.texts.into_iter().zip(results) {
            self.row(text, result)?;
        }
        self.out.flush().context("cannot write the results")
    }

    fn row(
        &mut self,
        text: Text,
        result: std::result::Result<SentimentResult, String>,
    ) -> Result<()> {
        let first = self.done == 0;
        self.done += 1;
        if text.text.trim().is_empty() {
            self.blank += 1;
            if self.blank_at.len() < 10 {
                self.blank_at.push(text.index + 1);
            }
        }
        match self.format {
            OutputFormat::Jsonl => {
                // Serialized, not built as a `Value`: the score stays an f32 written as the
                // wire writes it (shortest form), not widened to 16 digits.
                #[derive(serde::Serialize)]
                struct Line<'a> {
                    index: usize,
                    line: u64,
                    text: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    sentiment: Option<&'a str>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    score: Option<f32>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    error: Option<&'a str>,
                }
                let line = Line {
                    index: text.index,
                    line: text.line,
                    text: &text.text,
                    sentiment: result.as_ref().ok().map(|r| r.sentiment.as_str()),
                    score: result.as_ref().ok().map(|r| r.score),
                    error: result.as_ref().err().map(String::as_str),
                };
                serde_json::to_writer(&mut self.out, &line)?;
                writeln!(self.out)?;
            }
            OutputFormat::Json => {
                self.out.write_all(if first {
                    b"{\"statusCode\":200,\"body\":{\"results\":["
                } else {
                    b","
                })?;
                match &result {
                    Ok(r) => serde_json::to_writer(&mut self.out, r)?,
                    Err(_) => self.out.write_all(b"null")?,
                }
            }
            OutputFormat::Human => {
                if self.streaming_rows {
                    writeln!(self.out, "{}", human_row(&text, &result))?;
                } else {
                    self.held.push((text, result));
                    if self.held.len() > TABLE_ROWS {
                        self.streaming_rows = true;
                        writeln!(
                            self.out,
                            "{:>9}   {:<9}   {:>6}   text\n{}",
                            "#",
                            "sentiment",
                            "score",
                            "─".repeat(45)
                        )?;
                        for (text, result) in std::mem::take(&mut self.held) {
                            writeln!(self.out, "{}", human_row(&text, &result))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes the output: the human table or the end of the JSON document, and the failures.
    fn finish(mut self) -> Result<()> {
        if self.blank > 0 {
            // Kept (the contract counts every text) but said: a blank text has no sentiment,
            // and its score means nothing.
            let more = self.blank - self.blank_at.len();
            eprintln!(
                "warning: {} text(s) are empty or blank (#{}{}): each is classified as sent, \
                 but its sentiment and score say nothing; drop them from the input",
                self.blank,
                self.blank_at
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", #"),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
        match self.format {
            OutputFormat::Jsonl => {}
            OutputFormat::Json => {
                if self.done == 0 {
                    self.out
                        .write_all(b"{\"statusCode\":200,\"body\":{\"results\":[")?;
                }
                write!(self.out, "],\"count\":{}", self.done)?;
                if !self.failures.is_empty() {
                    write!(
                        self.out,
                        ",\"failures\":{}",
                        serde_json::to_string(&self.failures)?
                    )?;
                }
                writeln!(self.out, "}}}}")?;
            }
            OutputFormat::Human => {
                if !self.streaming_rows && !self.held.is_empty() {
                    let mut table = table(["#", "sentiment", "score", "text"]);
                    for (text, result) in &self.held {
                        let (sentiment, score) = cells(result);
                        table.add_row([
                            Cell::new(text.index + 1).set_alignment(CellAlignment::Right),
                            Cell::new(sentiment),
                            Cell::new(score).set_alignment(CellAlignment::Right),
                            Cell::new(ellipsize(&text.text, 72)),
                        ]);
                    }
                    writeln!(self.out, "{}", render(&table))?;
                }
                for f in &self.failures {
                    writeln!(
                        self.out,
                        "texts {}–{} failed after {} attempt(s): {}",
                        f.start + 1,
                        f.end,
                        f.attempts,
                        f.error
                    )?;
                }
            }
        }
        self.out.flush().context("cannot write the results")
    }
}

fn cells(result: &std::result::Result<SentimentResult, String>) -> (String, String) {
    match result {
        Ok(r) => (r.sentiment.clone(), format!("{:.4}", r.score)),
        Err(_) => ("FAILED".to_string(), "-".to_string()),
    }
}

fn human_row(text: &Text, result: &std::result::Result<SentimentResult, String>) -> String {
    let (sentiment, score) = cells(result);
    let mut row = String::new();
    let _ = write!(
        row,
        "{:>9}   {sentiment:<9}   {score:>6}   {}",
        text.index + 1,
        ellipsize(&text.text, 72)
    );
    row.trim_end().to_string()
}

pub async fn run(args: InvokeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(payload) = &args.payload {
        return raw_payload(&args, payload, global).await;
    }
    let source = Source::from_args(&args)?;
    let skip = args.skip as usize;
    let batch_size = args.batch_size as usize;
    let (engine, concurrency, function) = if args.local {
        // The file first: a bad path is refused before the model's load (seconds) is spent.
        let sink = local_telemetry(&args, global)?;
        let classifier = args.model.load().await?;
        (Engine::Local(Arc::new((classifier, sink))), 1, None)
    } else {
        let aws = Aws::load(&global.aws).await;
        let function = args.function.name(&aws.names);
        let options = InvokerOptions {
            batch_size,
            concurrency: args.concurrency as usize,
            log_tail: args.log,
            ..InvokerOptions::default()
        };
        let budget = RetryBudget::growing(options.retry_budget);
        let invoker = crate::aws::lambda::invoker(&aws, &function, options);
        (
            Engine::Remote(Arc::new((invoker, budget))),
            args.concurrency as usize,
            Some(function),
        )
    };
    let packer = Packer::new(batch_size)?;
    // Texts read ahead: enough to keep every batch in flight busy, no more.
    let (tx, rx) = tokio::sync::mpsc::channel(batch_size * concurrency);
    let column = args.column.clone();
    std::thread::spawn(move || source.send_all(column, skip, tx));

    let started = Instant::now();
    let mut results = std::pin::pin!(batches(rx, packer)
        .map(|batch| {
            let engine = engine.clone();
            async move {
                match batch {
                    Ok(batch) => engine.run(batch).await.map_err(Stop::Fatal),
                    Err(e) => Err(Stop::Input(e)),
                }
            }
        })
        .buffered(concurrency));
    let mut printer = Printer::new(global.output);
    let (mut invokes, mut billed) = (0usize, None::<f64>);
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let stopped: Option<Stop> = loop {
        tokio::select! {
            next = results.next() => match next {
                None => break None,
                Some(Ok(done)) => {
                    invokes += usize::from(done.texts.first().is_some_and(|t| t.refused.is_none()));
                    if let Some(ms) = done.billed_ms {
                        *billed.get_or_insert(0.0) += ms;
                    }
                    printer.print(done)?;
                }
                Some(Err(e)) => break Some(e),
            },
            _ = &mut interrupt => {
                let next = skip + printer.done;
                printer.finish()?;
                eprintln!(
                    "interrupted: the first {next} text(s) of the input are printed; to go on, rerun with --skip {next}"
                );
                return Ok(ExitCode::from(130));
            }
        }
    };
    let (done, failed, failed_batches) =
        (printer.done, printer.failed_texts, printer.failed_batches);
    if let Some(Stop::Fatal(e)) = stopped {
        if done == 0 {
            return Err(e);
        }
        printer.finish()?;
        return Err(e.context(format!(
            "stopped after {} text(s) of the input (printed); rerun with --skip {} to go on",
            skip + done,
            skip + done
        )));
    }
    if stopped.is_none() && done == 0 {
        bail!(if skip > 0 {
            format!("no texts to classify: the input has {skip} or fewer texts, all skipped (--skip {skip})")
        } else {
            "no texts to classify: the input is empty".to_string()
        });
    }
    printer.finish()?;
    if let Some(function) = function {
        eprintln!(
            "{done} texts, {invokes} invoke(s) of {function}, {:.2} s{}{}",
            started.elapsed().as_secs_f64(),
            billed
                .map(|ms| format!(", billed {ms:.0} ms"))
                .unwrap_or_default(),
            if failed == 0 {
                String::new()
            } else {
                format!(", {failed_batches} batch(es) FAILED ({failed} texts)")
            }
        );
    }
    if let Some(Stop::Input(e)) = stopped {
        // Said only when it is true: texts were printed, and skipping them goes on after.
        if done == 0 {
            return Err(e.context("nothing was classified: fix the input and run again"));
        }
        let next = skip + done;
        return Err(e.context(format!(
            "stopped after {next} text(s) of the input (printed); fix the input and rerun with --skip {next} to go on"
        )));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--telemetry FILE` of a local run: its records carry the function name the stage's function
/// (or `--function`) would, so they can be read as the deployed function's.
fn local_telemetry(
    args: &InvokeArgs,
    global: &GlobalArgs,
) -> Result<Option<crate::telemetry::Sink>> {
    let Some(path) = args.telemetry.as_deref() else {
        return Ok(None);
    };
    let function = args
        .function
        .name(&crate::aws::Names::for_stage(global.aws.stage.as_deref()));
    crate::telemetry::Sink::open(path, &function, &args.model.model.metric_name()).map(Some)
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
        let sink = local_telemetry(args, global)?;
        let classifier = args.model.load().await?;
        let answer = tokio::task::spawn_blocking(move || -> Result<Value> {
            let (answer, record) =
                ummatics_sentiment_function::event::handle_observed(&classifier, event);
            if let (Some(sink), Some(record)) = (&sink, record) {
                sink.write(&record);
            }
            Ok(serde_json::to_value(answer)?)
        })
        .await??;
        (answer, None)
    } else {
        let aws = Aws::load(&global.aws).await;
        let function = args.function.name(&aws.names);
        let out =
            match crate::aws::lambda::invoke(&aws, &function, serde_json::to_vec(&event)?).await {
                Err(e) if e.is_not_found() => bail!(no_function_message(&function, &aws.region())),
                other => other.with_context(|| format!("cannot invoke {function}"))?,
            };
        let body = &out.payload;
        let answer = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()));
        (answer, out.function_error)
    };
    crate::output::stdout_line(&answer)?;
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
    use serde_json::json;

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
