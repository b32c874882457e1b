//! `serve --telemetry` and `invoke --local --telemetry`: the function's telemetry record (one
//! CloudWatch EMF line per invocation, see `ummatics_sentiment_function::telemetry`) written
//! where a user can read it offline: a file (appended to) or stderr (`-`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use ummatics_sentiment_function::telemetry::{self, Record};

/// Where local runs write their records, and the dimensions they carry.
pub struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
    function: String,
    model: String,
    failed: std::sync::atomic::AtomicBool,
}

impl Sink {
    /// Opens `path` for appending (`-`: stderr); the records carry `function` and `model` as
    /// their dimensions.
    pub fn open(path: &Path, function: &str, model: &str) -> Result<Sink> {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stderr())
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| {
                    format!(
                        "--telemetry {}: cannot open it for writing; name a file in a writable directory, or - for stderr",
                        path.display()
                    )
                })?;
            Box::new(std::io::LineWriter::new(file))
        };
        Ok(Sink {
            out: Mutex::new(out),
            function: function.to_string(),
            model: model.to_string(),
            failed: false.into(),
        })
    }

    /// Writes one record as its EMF line. A failed write is said once on stderr; the
    /// invocations go on.
    pub fn write(&self, record: &Record) {
        let line = record.emf_line(&self.function, &self.model, telemetry::now_ms());
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            if !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("warning: cannot write the telemetry record ({e}); later records may be missing too (said once)");
            }
        }
    }
}
