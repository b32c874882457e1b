//! The one reader of user data files: plain lines, TSV (GLUE style: header line, no quoting),
//! CSV (header line, RFC 4180 quoting) and JSONL. `invoke`, `bench` and `eval` all read
//! through it, so a file that one command accepts, the others read the same way; every error
//! names the file and the line.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use serde_json::Value;

/// Formats with named fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// Tab-separated, header line, no quoting (GLUE's SST-2 files).
    Tsv,
    /// Comma-separated with a header line, RFC 4180 quoting.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl DataFormat {
    /// From a file's extension: `.tsv`/`.tab`, `.csv`, `.jsonl`/`.ndjson`.
    pub fn from_path(path: &Path) -> Option<DataFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "tsv" | "tab" => Some(DataFormat::Tsv),
            "csv" => Some(DataFormat::Csv),
            "jsonl" | "ndjson" => Some(DataFormat::Jsonl),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DataFormat::Tsv => "TSV",
            DataFormat::Csv => "CSV",
            DataFormat::Jsonl => "JSONL",
        }
    }
}

/// A field to read from every record.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub name: &'a str,
    /// JSONL: a number is accepted (as its text), not only a string — for labels.
    pub numbers: bool,
}

impl<'a> Column<'a> {
    pub fn text(name: &'a str) -> Column<'a> {
        Column {
            name,
            numbers: false,
        }
    }
    pub fn label(name: &'a str) -> Column<'a> {
        Column {
            name,
            numbers: true,
        }
    }
}

/// The requested fields of one record, and the line it starts on (1-based, header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub values: Vec<String>,
}

/// The bytes as text, or an error naming the first invalid byte.
pub fn decode<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{name} is not UTF-8 (invalid byte at offset {}); save it as UTF-8",
            e.valid_up_to()
        )
    })
}

/// Reads `columns` from every record of a TSV, CSV or JSONL text. Blank JSONL lines are
/// skipped. `hint` says how to pick other columns (e.g. "pick one with --column").
pub fn read_records(
    name: &str,
    bytes: &[u8],
    format: DataFormat,
    columns: &[Column],
    hint: &str,
) -> Result<Vec<Record>> {
    let text = decode(name, bytes)?;
    match format {
        DataFormat::Jsonl => read_jsonl(name, text, columns, hint),
        DataFormat::Tsv | DataFormat::Csv => read_delimited(name, text, format, columns, hint),
    }
}

fn read_delimited(
    name: &str,
    text: &str,
    format: DataFormat,
    columns: &[Column],
    hint: &str,
) -> Result<Vec<Record>> {
    let csv = format == DataFormat::Csv;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if csv { b',' } else { b'\t' })
        .quoting(csv)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .with_context(|| format!("{name}: cannot read the header line"))?
        .clone();
    let positions = columns
        .iter()
        .map(|column| {
            headers
                .iter()
                .position(|h| h.trim() == column.name)
                .ok_or_else(|| {
                    anyhow!(
                        "{name}:1: no column {:?} in the header; the columns are {} ({hint})",
                        column.name,
                        headers.iter().collect::<Vec<_>>().join(", ")
                    )
                })
        })
        .collect::<Result<Vec<usize>>>()?;
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            anyhow!("{name}:{line}: bad {}: {e}", format.name())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let values = positions
            .iter()
            .map(|&i| record.get(i).map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| anyhow!("{name}:{line}: the line has too few columns"))?;
        records.push(Record { line, values });
    }
    Ok(records)
}

fn read_jsonl(name: &str, text: &str, columns: &[Column], hint: &str) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| anyhow!("{name}:{line_no}: not valid JSON ({e})"))?;
        let Value::Object(object) = value else {
            bail!(
                "{name}:{line_no}: a line is one JSON object, not {}",
                ummatics_sentiment_function::protocol::json_type(&value)
            );
        };
        let values = columns
            .iter()
            .map(|column| match object.get(column.name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) if column.numbers => Ok(n.to_string()),
                Some(other) => Err(anyhow!(
                    "{name}:{line_no}: {:?} is not a string (it is {})",
                    column.name,
                    ummatics_sentiment_function::protocol::json_type(other)
                )),
                None => Err(anyhow!(
                    "{name}:{line_no}: no {:?} field ({hint})",
                    column.name
                )),
            })
            .collect::<Result<Vec<String>>>()?;
        records.push(Record {
            line: line_no,
            values,
        });
    }
    Ok(records)
}

/// Texts to classify: plain lines (one text each, blank lines included), or the `column`
/// (default `text`) of a TSV, CSV or JSONL file, by `path`'s extension.
pub fn read_texts(
    name: &str,
    path: &Path,
    bytes: &[u8],
    column: Option<&str>,
) -> Result<Vec<String>> {
    match DataFormat::from_path(path) {
        Some(format) => Ok(read_records(
            name,
            bytes,
            format,
            &[Column::text(column.unwrap_or("text"))],
            "pick one with --column",
        )?
        .into_iter()
        .flat_map(|r| r.values)
        .collect()),
        None => {
            if column.is_some() {
                bail!(
                    "--column applies to .csv, .tsv and .jsonl files; {name} is read as plain lines"
                );
            }
            Ok(decode(name, bytes)?.lines().map(str::to_string).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(name: &str, bytes: &str, column: Option<&str>) -> Result<Vec<String>> {
        read_texts(name, Path::new(name), bytes.as_bytes(), column)
    }

    #[test]
    fn tsv_files_are_read_unquoted_by_column() {
        let tsv = "text\tlabel\nit 's \"quoted\" , here \t1\nbleak\t0\n";
        assert_eq!(
            texts("dev.tsv", tsv, None).unwrap(),
            ["it 's \"quoted\" , here ", "bleak"]
        );
        assert_eq!(texts("dev.tsv", tsv, Some("label")).unwrap(), ["1", "0"]);
        let err = texts("dev.tsv", tsv, Some("review"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no column \"review\"") && err.contains("text, label"),
            "{err}"
        );
        let err = texts("dev.tsv", "text\tlabel\nonly one field\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev.tsv:2: bad TSV"), "{err}");
    }

    #[test]
    fn csv_quotes_and_line_numbers() {
        let csv = "label,text\n1,\"a, quoted\nline\"\n0,plain\n";
        let records = read_records(
            "r.csv",
            csv.as_bytes(),
            DataFormat::Csv,
            &[Column::text("text"), Column::label("label")],
            "",
        )
        .unwrap();
        assert_eq!(records[0].values, ["a, quoted\nline", "1"]);
        assert_eq!(records[1].line, 4, "the line a record starts on");
    }

    #[test]
    fn jsonl_fields_numbers_and_errors() {
        let jsonl = "{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\", \"label\": \"neg\"}\n";
        let records = read_records(
            "x.jsonl",
            jsonl.as_bytes(),
            DataFormat::Jsonl,
            &[Column::text("text"), Column::label("label")],
            "",
        )
        .unwrap();
        assert_eq!(records[0].values, ["a", "1"]);
        assert_eq!((records[1].line, records[1].values[1].as_str()), (3, "neg"));
        let err = texts("x.jsonl", "{\"text\": 5}\n", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.jsonl:1: \"text\" is not a string (it is a number)"),
            "{err}"
        );
        let err = texts("x.jsonl", "[1]\n", None).unwrap_err().to_string();
        assert!(
            err.contains("x.jsonl:1: a line is one JSON object, not a list"),
            "{err}"
        );
        let err = texts("x.jsonl", "{}\nnot json\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.jsonl:1: no \"text\" field"), "{err}");
        let err = texts("x.jsonl", "{\"text\": \"a\"}\nnot json\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.jsonl:2: not valid JSON"), "{err}");
    }

    #[test]
    fn plain_files_take_no_column_and_must_be_utf8() {
        let err = texts("a.txt", "x\ny\n", Some("text"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(".tsv"), "{err}");
        assert_eq!(texts("a.txt", "x\n\ny\n", None).unwrap(), ["x", "", "y"]);
        let err = read_texts("a.txt", Path::new("a.txt"), b"ok\n\xff", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid byte at offset 3"), "{err}");
    }
}
