//! The one reader of user data files: plain lines, TSV (GLUE style: header line, no quoting),
//! CSV (header line, RFC 4180 quoting), JSONL, and JSON documents (the function's own request
//! `{"texts": [...]}`, e.g. a SAM test event, or an array). `invoke`, `bench` and `eval` all read
//! through it, so a file that one command accepts, the others read the same way; every error
//! names the file and the line.

use std::io::{BufRead, Read as _};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use serde_json::Value;
use ummatics_sentiment_function::protocol::MAX_TEXT_BYTES;

/// Formats with named fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// Tab-separated, header line, no quoting (GLUE's SST-2 files).
    Tsv,
    /// Comma-separated with a header line, RFC 4180 quoting.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON document: a request `{"texts": [...]}` or an array of texts or of objects.
    Json,
}

impl DataFormat {
    /// From a file's extension: `.tsv`/`.tab`, `.csv`, `.jsonl`/`.ndjson`.
    pub fn from_path(path: &Path) -> Option<DataFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "tsv" | "tab" => Some(DataFormat::Tsv),
            "csv" => Some(DataFormat::Csv),
            "jsonl" | "ndjson" => Some(DataFormat::Jsonl),
            "json" => Some(DataFormat::Json),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DataFormat::Tsv => "TSV",
            DataFormat::Csv => "CSV",
            DataFormat::Jsonl => "JSONL",
            DataFormat::Json => "JSON",
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

/// Longest JSONL line read into memory: a 1 MiB text with JSON escapes and other fields.
pub const MAX_JSONL_LINE: usize = 8 * 1024 * 1024;

/// Largest JSON document read (it is read whole; JSONL streams any size).
pub const MAX_JSON_DOCUMENT: usize = 64 * 1024 * 1024;

/// One record as it is read: where it starts, and its fields — or, for a plain line or JSONL
/// line too long to hold, `Err` with why (its bytes were skipped, nothing kept).
pub type Read = std::result::Result<Record, Oversize>;

/// A line too long to read into memory, skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    pub line: u64,
    pub why: String,
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
    decode(name, bytes)?;
    records(name, Box::new(bytes), Some(format), columns, hint)?
        .map(|r| match r? {
            Ok(record) => Ok(record),
            Err(o) => bail!("{name}:{}: {}", o.line, o.why),
        })
        .collect()
}

/// Records read one at a time from `reader` (memory: one record): plain lines when `format`
/// is `None` (one text each, blank lines included), else TSV, CSV or JSONL `columns`.
pub fn records<'a>(
    name: &str,
    reader: Box<dyn BufRead + Send + 'a>,
    format: Option<DataFormat>,
    columns: &[Column],
    hint: &str,
) -> Result<Box<dyn Iterator<Item = Result<Read>> + Send + 'a>> {
    let name = name.to_string();
    // A UTF-8 byte-order mark (what some Windows editors write first) is no part of a text.
    let mut reader = reader;
    if reader
        .fill_buf()
        .is_ok_and(|start| start.starts_with(b"\xEF\xBB\xBF"))
    {
        reader.consume(3);
    }
    Ok(match format {
        None => Box::new(Lines::new(&name, reader, MAX_TEXT_BYTES + 2).map(move |l| {
            let l = l?;
            if let Ok((line, text)) = &l {
                if is_request(text) {
                    bail!(
                        "{name}:{line}: this line is a request {{\"texts\": [...]}}, not a text \
                         to classify: save it as a .json file and pass that with --file, or send \
                         it whole with --payload"
                    );
                }
            }
            Ok(l.map(|(line, text)| Record {
                line,
                values: vec![text],
            }))
        })),
        Some(DataFormat::Jsonl) => {
            let columns: Vec<(String, bool)> = columns
                .iter()
                .map(|c| (c.name.to_string(), c.numbers))
                .collect();
            let hint = hint.to_string();
            Box::new(
                Lines::new(&name, reader, MAX_JSONL_LINE)
                    .filter(|l| !matches!(l, Ok(Ok((_, text))) if text.trim().is_empty()))
                    .map(move |l| match l? {
                        Ok((line, text)) => {
                            Ok(Ok(jsonl_record(&name, line, &text, &columns, &hint)?))
                        }
                        Err(o) => Ok(Err(o)),
                    }),
            )
        }
        Some(DataFormat::Json) => Box::new(
            json_document(&name, reader, columns, hint)?
                .into_iter()
                .map(|record| Ok(Ok(record))),
        ),
        Some(format) => delimited(name, reader, format, columns, hint)?,
    })
}

/// The records of a JSON document: the texts of a request `{"texts": [...]}` (what the
/// function takes, e.g. a SAM test event), or the items of an array (texts, or objects with
/// `columns`). Each record's line is where its item starts.
fn json_document(
    name: &str,
    mut reader: Box<dyn BufRead + Send + '_>,
    columns: &[Column],
    hint: &str,
) -> Result<Vec<Record>> {
    use serde_json::value::RawValue;
    let mut bytes = Vec::new();
    (&mut reader)
        .take(MAX_JSON_DOCUMENT as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    if bytes.len() > MAX_JSON_DOCUMENT {
        bail!(
            "{name} is more than {} MiB: a .json file is read whole; write one object per line \
             (.jsonl) or one text per line, which are read as they stream",
            MAX_JSON_DOCUMENT >> 20
        );
    }
    let document = decode(name, &bytes)?;
    let not_json = |e: serde_json::Error| {
        anyhow!(
            "{name}:{}: not valid JSON ({e}); a .json file is one document: a request \
             {{\"texts\": [...]}} or an array",
            e.line()
        )
    };
    // RawValue keeps each item as a slice of `document`, so its line can be found.
    #[derive(serde::Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        texts: Option<&'a RawValue>,
    }
    let start = document.trim_start();
    let (list, request) = if start.starts_with('{') {
        let texts = serde_json::from_str::<Request>(document)
            .map_err(not_json)?
            .texts;
        match texts {
            Some(texts) if texts.get().starts_with('[') => (texts.get(), true),
            Some(_) => bail!(
                "{name}: \"texts\" is not an array; a request is {{\"texts\": [\"...\", ...]}}"
            ),
            None => {
                // A Lambda event of the function's own shapes (what `sam local generate-event`
                // and the console's test events give): its body is the request, read as the
                // function reads it.
                use ummatics_sentiment_function::event::Event;
                let value: Value = serde_json::from_str(document).map_err(not_json)?;
                match Event::parse(value) {
                    Event::Http(http) => {
                        let body = http.body.map_err(|why| {
                            anyhow!("{name} is a {} event, but {why}", http.method)
                        })?;
                        if body.iter().all(u8::is_ascii_whitespace) {
                            bail!(
                                "{name} is an HTTP event ({}) without a body; its body must be \
                                 the request {{\"texts\": [...]}}",
                                http.method
                            );
                        }
                        return json_document(
                            &format!("{name} (the event's body)"),
                            Box::new(std::io::Cursor::new(body)),
                            columns,
                            hint,
                        );
                    }
                    Event::Unsupported(why) => bail!("{name}: {why}"),
                    Event::Direct(_) => bail!(
                        "{name} holds an object without \"texts\", not a request {{\"texts\": \
                         [...]}}, a function-URL or API Gateway event, or an array; for one \
                         object per line, name the file .jsonl"
                    ),
                }
            }
        }
    } else if start.starts_with('[') {
        (document, false)
    } else {
        let value: Value = serde_json::from_str(document).map_err(not_json)?;
        bail!(
            "{name} holds {}, not a request {{\"texts\": [...]}} or an array of texts",
            ummatics_sentiment_function::protocol::json_type(&value)
        );
    };
    if request && columns.len() > 1 {
        bail!(
            "{name} is a request {{\"texts\": [...]}}: it has texts and nothing else; this \
             command needs {} for each example (an array of objects, or .jsonl)",
            columns
                .iter()
                .map(|c| format!("{:?}", c.name))
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
    let items: Vec<&RawValue> = serde_json::from_str(list).map_err(not_json)?;
    let mut records = Vec::with_capacity(items.len());
    // Items come in document order: count newlines from the last item on, not from the start.
    let (mut counted, mut line) = (0, 1u64);
    for (i, raw) in items.into_iter().enumerate() {
        let offset = raw.get().as_ptr() as usize - document.as_ptr() as usize;
        line += document[counted..offset].matches('\n').count() as u64;
        counted = offset;
        let at = if request {
            format!("{name}:{line}: texts[{i}]")
        } else {
            format!("{name}:{line}: item {i}")
        };
        let value: Value = serde_json::from_str(raw.get()).map_err(not_json)?;
        let values = match value {
            Value::String(text) if columns.len() == 1 => vec![text],
            Value::Object(object) if !request => object_fields(
                &object,
                columns.iter().map(|c| (c.name, c.numbers)),
                &at,
                hint,
            )?,
            other => bail!(
                "{at} is {}, not {}",
                ummatics_sentiment_function::protocol::json_type(&other),
                if request {
                    "a string: a request's texts are strings"
                } else if columns.len() > 1 {
                    "an object with the fields asked for"
                } else {
                    "a string or an object with the text field"
                }
            ),
        };
        records.push(Record { line, values });
    }
    Ok(records)
}

/// A plain line that is the function's request (`{"texts": [...]}`) was not meant as a text.
fn is_request(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && matches!(
            serde_json::from_str::<Value>(text),
            Ok(Value::Object(o)) if o.get("texts").is_some_and(Value::is_array)
        )
}

/// Lines of at most `cap` bytes, as UTF-8 without their `\n` or `\r\n`; a longer line is
/// skipped (read, not kept) and reported as [`Oversize`].
struct Lines<'a> {
    name: String,
    reader: Box<dyn BufRead + Send + 'a>,
    cap: usize,
    line: u64,
    offset: u64,
    failed: bool,
}

impl<'a> Lines<'a> {
    fn new(name: &str, reader: Box<dyn BufRead + Send + 'a>, cap: usize) -> Lines<'a> {
        Lines {
            name: name.to_string(),
            reader,
            cap,
            line: 0,
            offset: 0,
            failed: false,
        }
    }

    fn read(&mut self) -> Result<Option<std::result::Result<(u64, String), Oversize>>> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(self.cap as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", self.name))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if buf.last() != Some(&b'\n') && buf.len() > self.cap {
            let rest = self
                .reader
                .skip_until(b'\n')
                .with_context(|| format!("cannot read {}", self.name))?;
            let bytes = buf.len() + rest - usize::from(rest > 0);
            self.offset += (buf.len() + rest) as u64;
            return Ok(Some(Err(Oversize {
                line: self.line,
                why: format!(
                    "the line is {bytes} bytes, more than the {} read per line",
                    self.cap
                ),
            })));
        }
        let start = self.offset;
        self.offset += buf.len() as u64;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let text = String::from_utf8(buf).map_err(|e| {
            anyhow!(
                "{} is not UTF-8 (invalid byte at offset {}, line {}); save it as UTF-8",
                self.name,
                start + e.utf8_error().valid_up_to() as u64,
                self.line
            )
        })?;
        Ok(Some(Ok((self.line, text))))
    }
}

impl Iterator for Lines<'_> {
    type Item = Result<std::result::Result<(u64, String), Oversize>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.read().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

fn delimited<'a>(
    name: String,
    reader: Box<dyn BufRead + Send + 'a>,
    format: DataFormat,
    columns: &[Column],
    hint: &str,
) -> Result<Box<dyn Iterator<Item = Result<Read>> + Send + 'a>> {
    let csv = format == DataFormat::Csv;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if csv { b',' } else { b'\t' })
        .quoting(csv)
        .has_headers(true)
        .from_reader(reader);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(&name, format, e))
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
    let mut failed = false;
    Ok(Box::new(reader.into_records().map_while(move |record| {
        if failed {
            return None;
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                failed = true;
                return Some(Err(csv_error(&name, format, e)));
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let values = positions
            .iter()
            .map(|&i| record.get(i).map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| anyhow!("{name}:{line}: the line has too few columns"));
        failed = values.is_err();
        Some(values.map(|values| Ok(Record { line, values })))
    })))
}

fn csv_error(name: &str, format: DataFormat, e: csv::Error) -> anyhow::Error {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    if let csv::ErrorKind::Utf8 { err, .. } = e.kind() {
        return anyhow!(
            "{name}:{line}: not UTF-8 (field {}); save it as UTF-8",
            err.field() + 1
        );
    }
    anyhow!("{name}:{line}: bad {}: {e}", format.name())
}

fn jsonl_record(
    name: &str,
    line_no: u64,
    line: &str,
    columns: &[(String, bool)],
    hint: &str,
) -> Result<Record> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| anyhow!("{name}:{line_no}: not valid JSON ({e})"))?;
    let Value::Object(object) = value else {
        bail!(
            "{name}:{line_no}: a line is one JSON object, not {}",
            ummatics_sentiment_function::protocol::json_type(&value)
        );
    };
    let values = object_fields(
        &object,
        columns.iter().map(|(c, numbers)| (c.as_str(), *numbers)),
        &format!("{name}:{line_no}"),
        hint,
    )?;
    Ok(Record {
        line: line_no,
        values,
    })
}

/// The `columns` (name, numbers accepted) of a JSON object, as text; errors start with `at`.
fn object_fields<'c>(
    object: &serde_json::Map<String, Value>,
    columns: impl IntoIterator<Item = (&'c str, bool)>,
    at: &str,
    hint: &str,
) -> Result<Vec<String>> {
    columns
        .into_iter()
        .map(|(column, numbers)| match object.get(column) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if numbers => Ok(n.to_string()),
            Some(other) => Err(anyhow!(
                "{at}: {column:?} is not a string (it is {})",
                ummatics_sentiment_function::protocol::json_type(other)
            )),
            None => Err(anyhow!("{at}: no {column:?} field ({hint})")),
        })
        .collect()
}

/// The format texts are read in: by `path`'s extension, plain lines otherwise (where
/// `--column` does not apply).
pub fn text_format(name: &str, path: &Path, column: Option<&str>) -> Result<Option<DataFormat>> {
    let format = DataFormat::from_path(path);
    if format.is_none() && column.is_some() {
        bail!(
            "--column applies to .csv, .tsv, .jsonl and .json files; {name} is read as plain lines"
        );
    }
    Ok(format)
}

/// Texts to classify: plain lines (one text each, blank lines included), or the `column`
/// (default `text`) of a TSV, CSV or JSONL file, by `path`'s extension.
pub fn read_texts(
    name: &str,
    path: &Path,
    bytes: &[u8],
    column: Option<&str>,
) -> Result<Vec<String>> {
    let format = text_format(name, path, column)?;
    decode(name, bytes)?;
    records(
        name,
        Box::new(bytes),
        format,
        &[Column::text(column.unwrap_or("text"))],
        "pick one with --column",
    )?
    .map(|r| match r? {
        Ok(mut record) => Ok(record.values.swap_remove(0)),
        Err(o) => bail!("{name}:{}: {}", o.line, o.why),
    })
    .collect()
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
    fn json_documents_are_requests_or_arrays_with_lines() {
        // The function's own request, pretty-printed as a SAM test event.
        let event = "{\n  \"texts\": [\n    \"I love this!\",\n    \"This is terrible\"\n  ]\n}\n";
        assert_eq!(
            texts("event.json", event, None).unwrap(),
            ["I love this!", "This is terrible"]
        );
        let lines: Vec<u64> = records(
            "event.json",
            Box::new(event.as_bytes()),
            Some(DataFormat::Json),
            &[Column::text("text")],
            "",
        )
        .unwrap()
        .map(|r| r.unwrap().unwrap().line)
        .collect();
        assert_eq!(lines, [3, 4]);
        // Arrays: of texts, or of objects (a column picks the field).
        assert_eq!(texts("a.json", r#"["a", "b"]"#, None).unwrap(), ["a", "b"]);
        assert_eq!(
            texts(
                "a.json",
                r#"[{"review": "x"}, {"review": "y"}]"#,
                Some("review")
            )
            .unwrap(),
            ["x", "y"]
        );
        // Eval reads labelled objects; a request has no labels.
        let labelled = read_records(
            "d.json",
            br#"[{"text": "fine", "label": 1}]"#,
            DataFormat::Json,
            &[Column::text("text"), Column::label("label")],
            "",
        )
        .unwrap();
        assert_eq!(labelled[0].values, ["fine", "1"]);
        let err = read_records(
            "d.json",
            br#"{"texts": ["fine"]}"#,
            DataFormat::Json,
            &[Column::text("text"), Column::label("label")],
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs \"text\" and \"label\""), "{err}");
        // Every error names the file, the line and the item.
        for (doc, expected) in [
            (
                "{\"texts\": [\"a\",\n 5]}",
                "x.json:2: texts[1] is a number, not a string",
            ),
            ("[\"a\",\n{}]", "x.json:2: item 1: no \"text\" field"),
            ("{\"texts\": \"a\"}", "\"texts\" is not an array"),
            ("{\"text\": \"a\"}", "an object without \"texts\""),
            ("\"a\"", "holds a string"),
            ("[\"a\",\n", "x.json:2: not valid JSON"),
        ] {
            let err = texts("x.json", doc, None).unwrap_err().to_string();
            assert!(err.contains(expected), "{doc:?}: {err}");
        }
    }

    #[test]
    fn a_request_on_a_plain_line_is_refused_not_classified() {
        let err = texts("stdin", "fine\n{\"texts\": [\"a\", \"b\"]}\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stdin:2: this line is a request"), "{err}");
        assert!(err.contains("--payload"), "{err}");
        // Braces alone, or JSON that is not a request, are texts like any other.
        assert_eq!(
            texts("a.txt", "{great}\n{\"text\": 1}\n", None).unwrap(),
            ["{great}", "{\"text\": 1}"]
        );
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
