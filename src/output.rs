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

/// The version of the shape of every report's `--output json` document, its first field
/// `schema_version`: raised when a field is renamed or removed or changes meaning (a new field
/// does not raise it). The shapes are snapshotted in the tests, so a change shows as a diff.
pub const SCHEMA_VERSION: u32 = 1;

/// A report with the schema version before its own fields.
#[derive(Serialize)]
struct Versioned<'a, T> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a T,
}

/// Prints a report as its `Display` (human) or as compact JSON (with `schema_version`).
pub fn emit<T: Display + Serialize>(format: OutputFormat, report: &T) -> anyhow::Result<()> {
    match format {
        OutputFormat::Human => stdout_line(report),
        OutputFormat::Json | OutputFormat::Jsonl => {
            stdout_line(serde_json::to_string(&Versioned {
                schema_version: SCHEMA_VERSION,
                report,
            })?)
        }
    }
}

/// One line on standard output. A reader that went away (`| head`) is an error the caller
/// passes up, and `main` ends quietly on it ([`is_broken_pipe`]); `println!` would panic.
pub fn stdout_line(line: impl Display) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(anyhow::Error::from)
}

/// Whether `error` comes from writing to a pipe whose reader has gone (`... | head -2`): not
/// a failure of this program; it stops quietly, as `cargo` and `aws` do.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
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

/// Whether to colour what goes to a stream: only a terminal, and never with `NO_COLOR` set
/// to anything (no-color.org) or `TERM=dumb`.
pub fn colour(is_terminal: bool) -> bool {
    is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// ✓ in green or ✗ in red when `coloured`, plain otherwise.
pub fn mark(ok: bool, coloured: bool) -> String {
    match (ok, coloured) {
        (true, true) => "\x1b[32m✓\x1b[0m".to_string(),
        (false, true) => "\x1b[31m✗\x1b[0m".to_string(),
        (true, false) => "✓".to_string(),
        (false, false) => "✗".to_string(),
    }
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
    /// The spinner and the display it is drawn in (a terminal).
    bar: Option<(ProgressBar, MultiProgress)>,
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

    /// Whether progress is drawn live (a terminal), rather than written as lines (a log).
    pub fn is_live(&self) -> bool {
        self.multi.is_some()
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
                    bar: Some((bar, multi.clone())),
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
            Some((bar, _)) => bar.set_message(format!("{}: {}", self.title, detail.as_ref())),
            None => eprintln!("    {}", detail.as_ref()),
        }
    }

    /// Ends the step with a result line.
    pub fn done(self, result: impl AsRef<str>) {
        let line = format!("{} {}: {}", self.mark(true), self.title, result.as_ref());
        self.end(line);
    }

    /// Ends the step as failed.
    pub fn fail(self, why: impl AsRef<str>) {
        let line = format!("{} {}: {}", self.mark(false), self.title, why.as_ref());
        self.end(line);
    }

    /// Coloured on a terminal (where the spinners are), plain in a log.
    fn mark(&self, ok: bool) -> String {
        mark(ok, self.bar.is_some() && colour(true))
    }

    /// The result becomes a line printed above the live area and the spinner leaves it: the
    /// live area holds only running steps, so nothing that redraws it (or a prompt written
    /// under it) can erase a finished step.
    fn end(self, line: String) {
        match self.bar {
            Some((bar, multi)) => {
                let _ = multi.println(&line);
                bar.finish_and_clear();
                multi.remove(&bar);
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

/// Asks a yes/no question on the terminal (`[y/N]` appended): `true` only for y or yes.
/// Without a terminal, an error saying `without_terminal`.
pub fn confirm(question: &str, without_terminal: &str) -> anyhow::Result<bool> {
    let answer = ask(&format!("{question} [y/N] "), without_terminal)?;
    Ok(matches!(answer.as_str(), "y" | "Y" | "yes" | "Yes"))
}

/// `ask`, without blocking the async runtime: the answer is read on a thread of its own, so
/// a Ctrl-C at the prompt is seen by whoever waits (and the thread dies with the process).
pub async fn ask_async(prompt: &str, without_terminal: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to ask on: {without_terminal}");
    }
    let (send, receive) = tokio::sync::oneshot::channel();
    let (prompt, without_terminal) = (prompt.to_string(), without_terminal.to_string());
    std::thread::spawn(move || {
        let _ = send.send(ask(&prompt, &without_terminal));
    });
    receive
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the prompt could not be read")))
}

/// `confirm` through [`ask_async`].
pub async fn confirm_async(question: &str, without_terminal: &str) -> anyhow::Result<bool> {
    let answer = ask_async(&format!("{question} [y/N] "), without_terminal).await?;
    Ok(matches!(answer.as_str(), "y" | "Y" | "yes" | "Yes"))
}

/// Bytes for people: 1.2 MB, 268.1 MB.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Decimals that show `x` (in dollars) to two significant digits, and at least cents.
fn usd_decimals(x: f64) -> usize {
    if x <= 0.0 || !x.is_finite() || x >= 0.01 {
        return 2;
    }
    // 0.0042 → 4 decimals, 0.000021 → 6; at most 10 (a ten-billionth of a dollar).
    ((-x.log10()).floor() as usize + 2).clamp(2, 10)
}

/// Dollars for people: cents from a cent up (`$12.34`), two significant digits below one
/// (`$0.0042`, `$0.000021`), `$0` for nothing.
pub fn usd(x: f64) -> String {
    if x == 0.0 {
        return "$0".into();
    }
    format!("${x:.*}", usd_decimals(x))
}

/// A total and its parts, printed so that they add up: all with the decimals the smallest
/// non-zero part needs; when rounding still makes the printed parts miss the printed total,
/// the total says `≈`.
pub fn usd_sum(parts: &[f64]) -> (String, Vec<String>) {
    let total: f64 = parts.iter().sum();
    let decimals = parts
        .iter()
        .filter(|p| **p > 0.0)
        .map(|p| usd_decimals(*p))
        .max()
        .unwrap_or(2);
    let printed: Vec<String> = parts.iter().map(|p| format!("{p:.decimals$}")).collect();
    let total_printed = format!("{total:.decimals$}");
    let printed_sum: f64 = printed.iter().filter_map(|p| p.parse::<f64>().ok()).sum();
    let adds_up = format!("{printed_sum:.decimals$}") == total_printed;
    (
        format!("{}${total_printed}", if adds_up { "" } else { "≈ " }),
        printed.into_iter().map(|p| format!("${p}")).collect(),
    )
}

/// A unit price as AWS writes it: every significant digit, no float noise
/// (`0.0000166667` → `$0.0000166667`).
pub fn usd_price(x: f64) -> String {
    let text = format!("{x:.10}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("${text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_printed_for_people() {
        assert_eq!(usd(0.0), "$0");
        assert_eq!(usd(12.346), "$12.35");
        assert_eq!(usd(0.01), "$0.01");
        assert_eq!(usd(0.004_21), "$0.0042");
        assert_eq!(usd(0.000_020_8), "$0.000021");
        assert_eq!(usd_price(0.000_016_666_7), "$0.0000166667");
        assert_eq!(usd_price(0.000_000_2), "$0.0000002");
        assert_eq!(usd_price(0.000_000_200_000_000_000_000_02), "$0.0000002");
    }

    #[test]
    fn a_total_adds_up_to_its_printed_parts_or_says_approximately() {
        // $0.0001 + $0.0001 = $0.0003 was the old output for these.
        let (total, parts) = usd_sum(&[0.000_149, 0.000_149]);
        assert_eq!(parts, ["$0.00015", "$0.00015"]);
        assert_eq!(total, "$0.00030");
        let (total, parts) = usd_sum(&[0.000_144, 0.000_144]);
        assert_eq!(parts, ["$0.00014", "$0.00014"]);
        assert_eq!(total, "≈ $0.00029");
        let (total, parts) = usd_sum(&[1.5, 0.002]);
        assert_eq!(parts, ["$1.5000", "$0.0020"]);
        assert_eq!(total, "$1.5020");
        let (total, parts) = usd_sum(&[0.0, 0.0]);
        assert_eq!(
            (total.as_str(), parts),
            ("$0.00", vec!["$0.00".to_string(), "$0.00".into()])
        );
    }

    #[test]
    fn ellipsize_keeps_short_and_cuts_long() {
        assert_eq!(ellipsize("short", 10), "short");
        assert_eq!(ellipsize("a\nb", 10), "a b");
        assert_eq!(ellipsize("abcdefghijkl", 5), "abcd…");
        assert_eq!(ellipsize("😀😀😀😀😀😀", 3), "😀😀…");
    }
}
