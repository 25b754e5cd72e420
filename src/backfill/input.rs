//! The backfill's input: session ids, one per line or in a CSV column, streamed with
//! bounded memory. Blank lines are skipped; duplicates are skipped and counted (a 128-bit
//! hash per distinct id); an id that is not a safe key segment is reported with its line
//! number and never reaches a URL or a key. CSV fields are split by the `csv` crate.

use std::collections::HashSet;
use std::io::BufRead;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::SafeId;

/// Longest input line read; a longer one is reported invalid (and skipped to its end).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Characters of an invalid value shown.
pub const MAX_SHOWN_CHARS: usize = 64;

/// How the input lists the session ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One id per line (the whole line, trimmed).
    List,
    /// CSV: the first non-blank line is the header; ids are in column `index`.
    Csv {
        /// Zero-based column index.
        index: usize,
        /// The header's name for it.
        name: String,
    },
}

/// Why the input cannot be read at all (nothing is processed).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The CSV header does not parse.
    #[error("CSV header (line {line}): {problem}")]
    Header {
        /// Its line number.
        line: u64,
        /// What is wrong.
        problem: String,
    },
    /// The header has no column for the ids (or several, or not the one asked for).
    #[error("{0}")]
    Column(String),
}

/// Header names (normalised by [`normalise_header`]) taken for a session id column.
const ID_HEADERS: [&str; 3] = ["sessionid", "verificationid", "session"];
/// Taken only when no [`ID_HEADERS`] name is present.
const FALLBACK_HEADER: &str = "id";

/// A header name compared: lowercase, without `_`, `-`, spaces.
pub fn normalise_header(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The fields of one CSV line (RFC 4180 quoting, by the `csv` crate), trimmed. A quoted
/// field must close on its line: the input is read line by line.
pub fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    if line.matches('"').count() % 2 == 1 {
        return Err("a quoted field is not closed on its line".into());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        None => Ok(vec![String::new()]),
        Some(record) => Ok(record
            .map_err(|e| e.to_string())?
            .iter()
            .map(str::to_string)
            .collect()),
    }
}

/// Whether a first line without a comma is a header rather than an id: it names a session
/// id column (`session_id`, `id`...).
fn looks_like_header(line: &str) -> bool {
    let name = normalise_header(line.trim().trim_matches('"'));
    ID_HEADERS.contains(&name.as_str()) || name == FALLBACK_HEADER
}

/// The column holding the ids: `wanted` (case-insensitive, then normalised), or the one
/// header that names a session id column.
pub fn pick_column(headers: &[String], wanted: Option<&str>) -> Result<usize, String> {
    let listed = || {
        headers
            .iter()
            .map(|h| format!("{:?}", shown(h)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match wanted {
        Some(wanted) => named_column(headers, wanted),
        None => {
            let named = |names: &[&str]| -> Vec<usize> {
                (0..headers.len())
                    .filter(|&i| names.contains(&normalise_header(&headers[i]).as_str()))
                    .collect()
            };
            let found = named(&ID_HEADERS);
            if found.is_empty() {
                named(&[FALLBACK_HEADER])
            } else {
                found
            }
        }
    };
    match (found.as_slice(), wanted) {
        ([index], _) => Ok(*index),
        ([], Some(wanted)) => Err(format!(
            "--column {wanted:?}: no such column in the header (columns: {})",
            listed()
        )),
        (_, Some(wanted)) => Err(format!(
            "--column {wanted:?}: several columns have that name (columns: {})",
            listed()
        )),
        ([], None) => Err(format!(
            "no session id column in the CSV header (columns: {}): name it with --column \
             (recognised: session_id, sessionId, session id, verification_id, session, or id)",
            listed()
        )),
        (several, None) => Err(format!(
            "several columns could hold the session ids ({}): choose one with --column",
            several
                .iter()
                .map(|&i| format!("{:?}", shown(&headers[i])))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The columns named `wanted`: exactly (case aside), else once normalised.
fn named_column(headers: &[String], wanted: &str) -> Vec<usize> {
    let exact: Vec<usize> = (0..headers.len())
        .filter(|&i| headers[i].trim().eq_ignore_ascii_case(wanted.trim()))
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let wanted = normalise_header(wanted);
    (0..headers.len())
        .filter(|&i| normalise_header(&headers[i]) == wanted)
        .collect()
}

/// One input entry, as the reader hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A session id to process (first occurrence).
    Session(SafeId),
    /// A line that is not a usable id.
    Invalid(Invalid),
    /// A session id seen earlier in the input.
    Duplicate,
    /// A blank line (or a CSV row whose id field is empty).
    Blank,
}

/// An input line that is not a usable id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// Line number (1-based) in the input.
    pub line: u64,
    /// The value, escaped and cut to [`MAX_SHOWN_CHARS`] characters.
    pub value: String,
    /// Why it is not used.
    pub reason: String,
}

/// A value for display: escaped (no control characters reach a terminal) and cut.
pub fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_SHOWN_CHARS)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if value.chars().count() > MAX_SHOWN_CHARS {
        out.push('…');
    }
    out
}

/// Reads lines of at most [`MAX_LINE_BYTES`]: `Some(too_long)` for a line, `None` at the
/// end. Invalid UTF-8 is replaced later (such a line is not an id anyway).
fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        if chunk.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(too_long));
        }
    }
}

/// The input after its header: turns lines into [`Entry`]s.
pub struct Reader {
    input: Box<dyn BufRead + Send>,
    format: Format,
    /// Line number of the last line read.
    line: u64,
    seen: HashSet<u128>,
    buf: Vec<u8>,
    /// The first line of a plain list, read while looking for a header.
    pending_first: Option<Entry>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("format", &self.format)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Reads the header (if any) of `input` and decides the [`Format`]: a first line with a
    /// comma, or one naming an id column, or any first line with `column` given, is a CSV
    /// header.
    pub fn open(
        mut input: Box<dyn BufRead + Send>,
        column: Option<&str>,
    ) -> Result<Self, InputError> {
        let mut buf = Vec::new();
        let mut line = 0;
        let first = loop {
            let Some(too_long) = read_line(&mut input, &mut buf)? else {
                break None;
            };
            line += 1;
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_start_matches('\u{feff}').trim();
            if !text.is_empty() {
                break Some((text.to_string(), too_long));
            }
        };
        let mut reader = Reader {
            input,
            format: Format::List,
            line,
            seen: HashSet::new(),
            buf,
            pending_first: None,
        };
        let Some((first, too_long)) = first else {
            return match column {
                Some(c) => Err(InputError::Column(format!(
                    "--column {c:?}: the input is empty (no header)"
                ))),
                None => Ok(reader),
            };
        };
        if !too_long && (column.is_some() || first.contains(',') || looks_like_header(&first)) {
            let headers =
                csv_fields(&first).map_err(|problem| InputError::Header { line, problem })?;
            let index = pick_column(&headers, column).map_err(InputError::Column)?;
            reader.format = Format::Csv {
                index,
                name: headers[index].clone(),
            };
        } else {
            // A plain list: the first line is already an id.
            reader.pending_first = Some(reader.entry(line, &first, too_long));
        }
        Ok(reader)
    }

    /// The format found.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The next entry, `None` at the end of the input.
    pub fn next_entry(&mut self) -> std::io::Result<Option<Entry>> {
        if let Some(entry) = self.pending_first.take() {
            return Ok(Some(entry));
        }
        let mut buf = std::mem::take(&mut self.buf);
        let read = read_line(&mut self.input, &mut buf);
        let entry = match read {
            Ok(Some(too_long)) => {
                self.line += 1;
                let text = String::from_utf8_lossy(&buf).into_owned();
                Ok(Some(self.entry(self.line, &text, too_long)))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.buf = buf;
        entry
    }

    /// The entry of one line.
    fn entry(&mut self, line: u64, text: &str, too_long: bool) -> Entry {
        let invalid = |value: &str, reason: &str| {
            Entry::Invalid(Invalid {
                line,
                value: shown(value),
                reason: reason.into(),
            })
        };
        if too_long {
            return invalid(text, "line longer than 64 KiB");
        }
        let text = text.trim_end_matches(['\r', '\n']);
        let value = match &self.format {
            Format::List => text.trim().to_string(),
            Format::Csv { index, name } => {
                if text.trim().is_empty() {
                    return Entry::Blank;
                }
                match csv_fields(text) {
                    Ok(mut fields) if *index < fields.len() => fields.swap_remove(*index),
                    Ok(_) => {
                        return invalid(text, &format!("the row has no {:?} field", shown(name)));
                    }
                    Err(e) => return invalid(text, &format!("CSV: {e}")),
                }
            }
        };
        if value.is_empty() {
            return Entry::Blank;
        }
        let Ok(id) = SafeId::parse(value.as_str()) else {
            return invalid(
                &value,
                "not a session id (1-128 characters of A-Z a-z 0-9 - _, starting with a \
                 letter or digit)",
            );
        };
        let digest = Sha256::digest(id.as_bytes());
        let key = u128::from_le_bytes(digest[..16].try_into().expect("16 bytes"));
        if self.seen.insert(key) {
            Entry::Session(id)
        } else {
            Entry::Duplicate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str, column: Option<&str>) -> Result<(Format, Vec<Entry>), InputError> {
        let mut r = Reader::open(Box::new(std::io::Cursor::new(text.to_string())), column)?;
        let mut entries = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            entries.push(e);
        }
        Ok((r.format().clone(), entries))
    }

    fn s(id: &str) -> Entry {
        Entry::Session(SafeId::parse(id).unwrap())
    }

    #[test]
    fn csv_fields_split_with_quotes() {
        assert_eq!(csv_fields("a,b ,  c").unwrap(), ["a", "b", "c"]);
        assert_eq!(csv_fields("").unwrap(), [""]);
        assert_eq!(csv_fields("a,,").unwrap(), ["a", "", ""]);
        assert_eq!(
            csv_fields(r#""x, y","say ""hi""", z"#).unwrap(),
            ["x, y", r#"say "hi""#, "z"]
        );
        assert_eq!(csv_fields(r#""q" , b"#).unwrap(), ["q", "b"]);
        assert!(csv_fields(r#""open,b"#).is_err());
        assert!(csv_fields("a,\"b\"\"").is_err());
    }

    #[test]
    fn headers_are_matched_by_a_clear_rule() {
        let h = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(pick_column(&h(&["email", "session_id"]), None), Ok(1));
        assert_eq!(pick_column(&h(&["Session ID", "x"]), None), Ok(0));
        assert_eq!(pick_column(&h(&["sessionId"]), None), Ok(0));
        assert_eq!(pick_column(&h(&["verification-id", "id"]), None), Ok(0));
        // `id` only when nothing better is there.
        assert_eq!(pick_column(&h(&["id", "name"]), None), Ok(0));
        let none = pick_column(&h(&["email", "name"]), None).unwrap_err();
        assert!(none.contains("no session id column") && none.contains("\"email\""));
        let several = pick_column(&h(&["session_id", "verification_id"]), None).unwrap_err();
        assert!(several.contains("several") && several.contains("--column"));
        assert_eq!(pick_column(&h(&["a", "Ref"]), Some("ref")), Ok(1));
        assert_eq!(
            pick_column(&h(&["a", "veriff_ref"]), Some("Veriff Ref")),
            Ok(1)
        );
        assert!(
            pick_column(&h(&["a"]), Some("b"))
                .unwrap_err()
                .contains("no such")
        );
        assert!(
            pick_column(&h(&["ref", "REF"]), Some("ref"))
                .unwrap_err()
                .contains("several")
        );
    }

    #[test]
    fn a_plain_list_is_streamed_with_blanks_duplicates_and_invalid_ids() {
        let (format, entries) =
            reader("\nabc-1\n\n  abc-2 \r\nabc-1\n../etc\nabc-3", None).unwrap();
        assert_eq!(format, Format::List);
        assert_eq!(
            entries,
            vec![
                s("abc-1"),
                Entry::Blank,
                s("abc-2"),
                Entry::Duplicate,
                Entry::Invalid(Invalid {
                    line: 6,
                    value: "../etc".into(),
                    reason: entries_reason(),
                }),
                s("abc-3"),
            ]
        );
    }

    fn entries_reason() -> String {
        "not a session id (1-128 characters of A-Z a-z 0-9 - _, starting with a letter or digit)"
            .into()
    }

    #[test]
    fn a_csv_header_is_found_and_its_column_read() {
        let text = "\u{feff}email,Session ID,status\na@x,s-1,approved\n\"b,c\",\"s-2\",x\n,,\nq,s-1\nshort\n";
        let (format, entries) = reader(text, None).unwrap();
        assert_eq!(
            format,
            Format::Csv {
                index: 1,
                name: "Session ID".into()
            }
        );
        assert_eq!(
            entries[..4],
            [s("s-1"), s("s-2"), Entry::Blank, Entry::Duplicate]
        );
        let Entry::Invalid(invalid) = &entries[4] else {
            panic!("{entries:?}")
        };
        assert_eq!(invalid.line, 6);
        assert!(invalid.reason.contains("no \"Session ID\" field"));
        // A single-column header is recognised by its name; --column forces a header.
        let (_, entries) = reader("session_id\ns-1\n", None).unwrap();
        assert_eq!(entries, [s("s-1")]);
        let (_, entries) = reader("ref\ns-1\n", Some("REF")).unwrap();
        assert_eq!(entries, [s("s-1")]);
        assert!(matches!(
            reader("a,b\n1,2\n", None),
            Err(InputError::Column(_))
        ));
        assert!(matches!(
            reader("email,\"open\nx\n", None),
            Err(InputError::Header { line: 1, .. })
        ));
        assert!(reader("", Some("x")).is_err());
        assert_eq!(reader("", None).unwrap().1, []);
    }

    #[test]
    fn values_shown_are_escaped_and_cut() {
        assert_eq!(shown("a\u{1b}[2J"), "a\\u{1b}[2J");
        let long = "x".repeat(100);
        assert_eq!(shown(&long).chars().count(), MAX_SHOWN_CHARS + 1);
        let (_, entries) = reader(&format!("{}\n", "y".repeat(MAX_LINE_BYTES + 10)), None).unwrap();
        assert!(matches!(&entries[0], Entry::Invalid(i) if i.reason.contains("longer")));
    }
}
