//! Human and JSON rendering from the same structs.

use std::fmt::Display;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and sentences.
    Human,
    /// One JSON document on stdout.
    Json,
}

/// Prints a report as its `Display` (human) or as compact JSON.
pub fn emit<T: Display + Serialize>(format: OutputFormat, report: &T) -> anyhow::Result<()> {
    match format {
        OutputFormat::Human => println!("{report}"),
        OutputFormat::Json => println!("{}", serde_json::to_string(report)?),
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
