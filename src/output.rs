//! Human and JSON rendering from the same structs.

use std::fmt::Display;
use std::io::IsTerminal;
use std::time::Duration;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and sentences.
    Human,
    /// One JSON document on stdout.
    Json,
    /// One JSON object per line (invoke: one per input text); other commands print JSON.
    Jsonl,
}

/// Prints a report as its `Display` (human) or as compact JSON.
pub fn emit<T: Display + Serialize>(format: OutputFormat, report: &T) -> anyhow::Result<()> {
    match format {
        OutputFormat::Human => println!("{report}"),
        OutputFormat::Json | OutputFormat::Jsonl => {
            println!("{}", serde_json::to_string(report)?)
        }
    }
    Ok(())
}

/// Columns separated by spaces, a rule under the header, nothing else.
const TABLE_STYLE: TableStyle =
    TableStyle::new().header_separator(LineStyle::new('─', '─', '─', '─'));

/// A table in the house style with this header.
pub fn table<H: Into<comfy_table::Row>>(header: H) -> Table {
    let mut table = Table::new();
    table
        .load_style(TABLE_STYLE)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// Renders a table without the trailing blanks comfy-table pads the last column with (they
/// only get in the way of copy-paste) and without a final newline.
pub fn render(table: &Table) -> String {
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Shortens a text for a table cell: one line, at most `width` characters.
pub fn ellipsize(text: &str, width: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut out: String = one_line.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Live progress on stderr: spinners and bars (indicatif) on a terminal, one plain line per
/// event otherwise (CI logs, pipes), nothing extra in JSON mode's stdout either way.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

/// One running step: a spinner on a terminal; a line when it starts and one when it ends
/// otherwise.
pub struct Step {
    bar: Option<ProgressBar>,
    title: String,
}

impl Progress {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { multi }
    }

    /// Starts a step.
    pub fn step(&self, title: impl Into<String>) -> Step {
        let title = title.into();
        match &self.multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                        .expect("static template"),
                );
                bar.set_message(title.clone());
                bar.enable_steady_tick(Duration::from_millis(100));
                Step {
                    bar: Some(bar),
                    title,
                }
            }
            None => {
                eprintln!("==> {title}");
                Step { bar: None, title }
            }
        }
    }

    /// A line that stays, above any spinners.
    pub fn line(&self, text: impl AsRef<str>) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text.as_ref());
            }
            None => eprintln!("    {}", text.as_ref()),
        }
    }

    /// A byte-count bar (e.g. one layer of a push); plain mode reports only its end.
    pub fn bytes(&self, title: impl Into<String>, total: u64) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("  {msg:24} [{bar:30}] {bytes}/{total_bytes}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(title.into());
        Some(bar)
    }
}

impl Progress {
    /// A counting bar (texts done of total); plain mode shows nothing.
    pub fn count(&self, title: impl Into<String>, total: u64) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(title.into());
        Some(bar)
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Step {
    /// Updates what the step is doing.
    pub fn set(&self, detail: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {}", self.title, detail.as_ref())),
            None => eprintln!("    {}", detail.as_ref()),
        }
    }

    /// Ends the step with a result line.
    pub fn done(self, result: impl AsRef<str>) {
        let line = format!("✓ {}: {}", self.title, result.as_ref());
        match self.bar {
            Some(bar) => {
                bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
                bar.finish_with_message(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Ends the step as failed.
    pub fn fail(self, why: impl AsRef<str>) {
        let line = format!("✗ {}: {}", self.title, why.as_ref());
        match self.bar {
            Some(bar) => {
                bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
                bar.finish_with_message(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

/// Asks a question on the terminal and returns the trimmed answer. Without a terminal on
/// stdin there is no one to ask: the error says `without_terminal` (what to pass instead).
pub fn ask(prompt: &str, without_terminal: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to ask on: {without_terminal}");
    }
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}

/// Bytes for people: 1.2 MB, 268.1 MB.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsize_keeps_short_and_cuts_long() {
        assert_eq!(ellipsize("short", 10), "short");
        assert_eq!(ellipsize("a\nb", 10), "a b");
        assert_eq!(ellipsize("abcdefghijkl", 5), "abcd…");
        assert_eq!(ellipsize("😀😀😀😀😀😀", 3), "😀😀…");
    }
}
