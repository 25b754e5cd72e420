//! `veriff-archiver backfill --sessions FILE|-`: archive sessions decided before the function
//! was deployed, or whose webhooks were lost (Veriff stops retrying after 7 days).
//!
//! For each session id of the input: `GET /v1/sessions/{id}/decision`; a session without a
//! decision yet is `pending` (not an error); a decision is archived by
//! [`Archiver::archive_from`], the webhook's own code path (selection, layout, manifest,
//! idempotency, integrity checks), with `decisionSource: "decision_endpoint"` in the
//! manifest. A session already archived costs no media download (`already_archived`).
//!
//! `--full-auto` (an integration on Veriff's Self-Serve Essential plan, whose results are
//! Full Auto webhooks): Veriff's API reference documents no decision endpoint for Full Auto
//! sessions, so each session's decision is its newest attempt of
//! `GET /v1/sessions/{id}/attempts`, when its status there is a decision status; it is
//! archived as a Full Auto decision with `decisionSource: "attempts_listing"` (the status
//! as listed, no time or score).
//!
//! `--all-attempts` also reads `GET /v1/sessions/{id}/attempts` and archives every other
//! attempt of the session in its own attempt folder, with its own manifest (one manifest per
//! decision): a decision built from the listing (the attempt's status as listed, no decision
//! time, code or reason), `decisionSource: "attempts_listing"`, the media of that attempt
//! only. A failure of any attempt fails the session.
//!
//! Input: one session id per line, or a CSV file with a header (see [`Format`]). Blank lines
//! are skipped; duplicates are skipped and counted; an id that is not a safe key segment is
//! reported `invalid` with its line number and never reaches a URL or a key. The input is
//! streamed: memory is bounded whatever its length (a 128-bit hash per distinct id, about
//! 32 bytes each, for duplicate detection; and the failed and invalid entries, at most
//! [`MAX_LISTED`] of each).
//!
//! Exit codes: 0 when no session failed, 1 when any failed, 2 on a usage or configuration
//! error (nothing is processed), 130 when interrupted (Ctrl-C): the sessions in flight abort
//! their uploads and write no manifest, the summary so far is printed, and the same command
//! run again finishes the job.

use std::collections::HashSet;
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use veriff_archiver::Config;
use veriff_archiver::archive::{Archiver, Origin, OutcomeKind, Plan};
use veriff_archiver::domain::{Decision, DecisionRecord, DecisionStatus, SafeId, WebhookKind};
use veriff_archiver::error::{Error, UpstreamProblem};
use veriff_archiver::manifest::DecisionSource;
use veriff_archiver::media::newest_attempt;
use veriff_archiver::queue::{DecisionMessage, DecisionQueue};
use veriff_archiver::signing::ManifestSigner;
use veriff_archiver::store::Store;
use veriff_archiver::veriff::{RateLimiter, VeriffClient};

use crate::common::{ArchiveArgs, Fatal};
use crate::output::{Table, human_bytes, plural};

/// Default of `--concurrency`.
pub const DEFAULT_CONCURRENCY: u16 = 8;
/// Default of `--rate` (Veriff requests per second; Veriff publishes no limit).
pub const DEFAULT_RATE: f64 = 10.0;
/// The time one session (its decision and, with `--all-attempts`, every attempt) may take.
const SESSION_BUDGET: Duration = Duration::from_secs(15 * 60);
/// Longest input line read; a longer one is reported invalid (and skipped to its end).
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Failed sessions and invalid lines listed at most (each); the counts stay exact.
pub const MAX_LISTED: usize = 10_000;
/// Characters of an invalid value shown.
const MAX_SHOWN_CHARS: usize = 64;
/// Input entries read ahead of the sessions in flight.
const READ_AHEAD: usize = 1024;
/// The exit code of an interrupted run (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Flags of `backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The session ids: a file, or `-` for standard input. One id per line, or CSV with a
    /// header row (the id column is found by name, or named with --column).
    #[arg(long, value_name = "FILE|-")]
    pub sessions: String,
    /// The CSV column holding the session ids (header name, case-insensitive). Makes the
    /// first non-blank line a header even without a comma.
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Also archive every other attempt of each session (from the attempts listing), each
    /// in its own attempt folder with its own manifest.
    #[arg(long)]
    pub all_attempts: bool,
    /// The integration is on Veriff's Self-Serve Essential plan (Full Auto results, no
    /// decision webhook): each session's decision is its newest attempt in the attempts
    /// listing, recorded as a Full Auto decision with `decisionSource: attempts_listing`.
    /// Veriff's API reference lists no decision endpoint for Full Auto sessions.
    #[arg(long)]
    pub full_auto: bool,
    /// Sessions processed at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_CONCURRENCY,
        value_parser = clap::value_parser!(u16).range(1..=256)
    )]
    pub concurrency: u16,
    /// Veriff requests per second at most, across all sessions (media downloads included).
    #[arg(long, value_name = "PER_SECOND", default_value_t = DEFAULT_RATE, value_parser = parse_rate)]
    pub rate: f64,
    /// Look the decisions and media listings up and print what would be archived; write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send each decision (and, with --all-attempts, each other attempt) to the archive
    /// queue instead of archiving it here: the queue-mode consumer archives it on the
    /// Lambda fleet. Veriff is still asked for each decision (at --rate); nothing is
    /// downloaded or written here.
    #[arg(long, conflicts_with = "dry_run")]
    pub enqueue: bool,
    /// The archive queue's URL, for --enqueue (the stack's ArchiveQueueUrl output).
    #[arg(long, env = "ARCHIVE_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,
    /// Print one JSON document on stdout instead of tables (no progress bar).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 100_000.0 => Ok(rate),
        _ => Err("a number of requests per second, above 0 and at most 100000".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Input

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

/// Splits one CSV line into fields: `,` separates; a field starting with `"` is quoted,
/// `""` inside it is one `"`, and it may hold commas. Fields are trimmed of surrounding
/// spaces. A quoted field spanning lines is not supported (the line is an error).
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed on its line".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("text after a closing quote".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim_end().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim_end().to_string());
        }
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
    if let Some(wanted) = wanted {
        let exact: Vec<usize> = (0..headers.len())
            .filter(|&i| headers[i].trim().eq_ignore_ascii_case(wanted.trim()))
            .collect();
        let found = if exact.is_empty() {
            let wanted = normalise_header(wanted);
            (0..headers.len())
                .filter(|&i| normalise_header(&headers[i]) == wanted)
                .collect()
        } else {
            exact
        };
        return match found.as_slice() {
            [index] => Ok(*index),
            [] => Err(format!(
                "--column {wanted:?}: no such column in the header (columns: {})",
                listed()
            )),
            _ => Err(format!(
                "--column {wanted:?}: several columns have that name (columns: {})",
                listed()
            )),
        };
    }
    let named = |names: &[&str]| -> Vec<usize> {
        (0..headers.len())
            .filter(|&i| names.contains(&normalise_header(&headers[i]).as_str()))
            .collect()
    };
    let mut found = named(&ID_HEADERS);
    if found.is_empty() {
        found = named(&[FALLBACK_HEADER]);
    }
    match found.as_slice() {
        [index] => Ok(*index),
        [] => Err(format!(
            "no session id column in the CSV header (columns: {}): name it with --column \
             (recognised: session_id, sessionId, session id, verification_id, session, or id)",
            listed()
        )),
        several => Err(format!(
            "several columns could hold the session ids ({}): choose one with --column",
            several
                .iter()
                .map(|&i| format!("{:?}", shown(&headers[i])))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
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
fn shown(value: &str) -> String {
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

/// Reads lines of at most [`MAX_LINE_BYTES`]: `Some((line, too_long))`, `None` at the end.
/// Invalid UTF-8 is replaced (such a line is not an id anyway).
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

impl Reader {
    /// Reads the header (if any) of `input` and decides the [`Format`].
    pub fn open(mut input: Box<dyn BufRead + Send>, column: Option<&str>) -> Result<Self, Fatal> {
        let mut buf = Vec::new();
        let mut line = 0;
        let first = loop {
            match read_line(&mut input, &mut buf).map_err(|e| format!("--sessions: {e}"))? {
                None => break None,
                Some(too_long) => {
                    line += 1;
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim_start_matches('\u{feff}').trim();
                    if !text.is_empty() {
                        break Some((text.to_string(), too_long));
                    }
                }
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
                Some(c) => Err(format!("--column {c:?}: the input is empty (no header)")),
                None => Ok(reader),
            };
        };
        if !too_long && (column.is_some() || first.contains(',') || looks_like_header(&first)) {
            let headers =
                split_csv_line(&first).map_err(|e| format!("CSV header (line {line}): {e}"))?;
            let index = pick_column(&headers, column)?;
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
                match split_csv_line(text) {
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

/// Lines of a file (a cheap first pass, for the progress bar's length and ETA).
fn count_lines(path: &str) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let mut buf = vec![0u8; 256 * 1024];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Some(lines + u64::from(last != b'\n'))
}

// ---------------------------------------------------------------------------------------
// One session

/// What was done (or, with `--dry-run`, would be done) for one session.
#[derive(Debug)]
enum Done {
    /// Archived now (`already` = every manifest was there already).
    Archived { already: bool, work: Work },
    /// No decision yet.
    Pending,
    /// The decision's status is not in `ARCHIVE_STATUSES`: ignored, as the webhook would.
    Ignored,
    /// Failed: the error's code and message.
    Failed { code: &'static str, message: String },
    /// Stopped by Ctrl-C before it was complete (nothing written for the unfinished part).
    Interrupted,
    /// `--enqueue`: this many messages sent (the decision, and other attempts).
    Queued { messages: u64 },
}

/// Counts of what one session did.
#[derive(Debug, Default, Clone, Copy)]
struct Work {
    attempts_archived: u64,
    attempts_already: u64,
    files_stored: u64,
    files_reused: u64,
    bytes: u64,
}

impl Work {
    /// A manifest of `files` files written (or planned), `reused` of them without a download.
    fn add(&mut self, files: usize, reused: usize, bytes: u64) {
        self.files_stored += files.saturating_sub(reused) as u64;
        self.files_reused += reused as u64;
        self.bytes += bytes;
    }
}

/// What every session shares.
struct Context {
    config: Arc<Config>,
    veriff: VeriffClient,
    archiver: Archiver,
    all_attempts: bool,
    /// `--full-auto`: decisions from the attempts listing, as Full Auto decisions.
    full_auto: bool,
    dry_run: bool,
    /// `--enqueue`: the queue decisions go to instead of being archived here.
    queue: Option<DecisionQueue>,
    cancel: watch::Receiver<bool>,
}

/// Completes when Ctrl-C was pressed (never if the sender is gone without it).
async fn cancelled(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Context {
    /// `work`, or `None` if Ctrl-C comes first.
    async fn or_cancel<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => None,
            value = work => Some(value),
        }
    }

    /// Processes one session; with `--dry-run`, only plans it.
    async fn session(&self, id: &SafeId) -> (Done, Option<String>) {
        let deadline = Instant::now() + SESSION_BUDGET;
        let failed = |e: Error| Done::Failed {
            code: e.code(),
            message: e.to_string(),
        };
        let (found, source) = if self.full_auto {
            (
                self.or_cancel(self.full_auto_decision(id, deadline)).await,
                DecisionSource::AttemptsListing,
            )
        } else {
            (
                self.or_cancel(self.veriff.decision(id, deadline)).await,
                DecisionSource::DecisionEndpoint,
            )
        };
        let decision = match found {
            None => return (Done::Interrupted, None),
            Some(Err(e)) => return (failed(e), None),
            Some(Ok(None)) => return (Done::Pending, None),
            Some(Ok(Some(decision))) => decision,
        };
        if !self
            .config
            .archives(DecisionStatus::parse(&decision.record.status))
        {
            return (Done::Ignored, None);
        }
        if let Some(queue) = &self.queue {
            return match self.enqueue(queue, &decision, source, deadline).await {
                Ok(messages) => (Done::Queued { messages }, None),
                Err(Error::Cancelled) => (Done::Interrupted, None),
                Err(e) => (failed(e), None),
            };
        }
        let result = if self.dry_run {
            self.plan(&decision, deadline).await
        } else {
            self.archive(&decision, source, deadline).await
        };
        match result {
            Ok((done, line)) => (done, line),
            Err(Error::Cancelled) => (Done::Interrupted, None),
            Err(e) => (failed(e), None),
        }
    }

    /// `--full-auto`: the session's newest attempt as a Full Auto decision, when its status
    /// in the attempts listing is a decision (`approved`, `declined`...); `None` while it
    /// is not (`created`, `submitted`...).
    async fn full_auto_decision(
        &self,
        session_id: &SafeId,
        deadline: Instant,
    ) -> Result<Option<Decision>, Error> {
        let attempts = self.veriff.attempts(session_id, deadline).await?;
        let Some(newest) = newest_attempt(&attempts) else {
            return Ok(None);
        };
        let id = SafeId::parse(newest.id.clone().unwrap_or_default())
            .map_err(|_| Error::upstream("session attempts", UpstreamProblem::UnsafeAttemptId))?;
        let Some(status) = newest
            .status
            .as_deref()
            .filter(|s| DecisionStatus::parse(s).is_some())
        else {
            return Ok(None);
        };
        Ok(Some(Decision::new(
            session_id.clone(),
            Some(id),
            DecisionRecord::new(WebhookKind::FullAuto, status),
        )))
    }

    /// Sends the decision and, with `--all-attempts`, every other attempt to the queue.
    /// Returns the messages sent. A duplicate (a rerun) costs the consumer nothing.
    async fn enqueue(
        &self,
        queue: &DecisionQueue,
        decision: &Decision,
        source: DecisionSource,
        deadline: Instant,
    ) -> Result<u64, Error> {
        let mut messages = vec![DecisionMessage::new(decision, source)];
        if self.all_attempts {
            let decided = match &decision.attempt_id {
                Some(id) => id.to_string(),
                None => {
                    let attempts = self
                        .or_cancel(self.veriff.attempts(&decision.session_id, deadline))
                        .await
                        .ok_or(Error::Cancelled)??;
                    newest_attempt(&attempts)
                        .and_then(|a| a.id.clone())
                        .unwrap_or_default()
                }
            };
            for attempt in self.earlier_attempts(decision, &decided, deadline).await? {
                messages.push(DecisionMessage::new(
                    &attempt,
                    DecisionSource::AttemptsListing,
                ));
            }
        }
        for message in &messages {
            self.or_cancel(queue.send(message))
                .await
                .ok_or(Error::Cancelled)??;
        }
        Ok(messages.len() as u64)
    }

    /// Archives the decision and, with `--all-attempts`, every other attempt.
    async fn archive(
        &self,
        decision: &Decision,
        source: DecisionSource,
        deadline: Instant,
    ) -> Result<(Done, Option<String>), Error> {
        let mut work = Work::default();
        let mut already = true;
        let origin = Origin { source, body: None };
        let outcome = self
            .archiver
            .archive_from(decision, origin, deadline, cancelled(self.cancel.clone()))
            .await?;
        if outcome.kind == OutcomeKind::Archived {
            already = false;
            work.add(outcome.files, outcome.reused, outcome.bytes);
        }
        if self.all_attempts {
            for attempt in self
                .earlier_attempts(decision, &outcome.attempt_id, deadline)
                .await?
            {
                let origin = Origin {
                    source: DecisionSource::AttemptsListing,
                    body: None,
                };
                let done = self
                    .archiver
                    .archive_from(&attempt, origin, deadline, cancelled(self.cancel.clone()))
                    .await?;
                match done.kind {
                    OutcomeKind::Archived => {
                        already = false;
                        work.attempts_archived += 1;
                        work.add(done.files, done.reused, done.bytes);
                    }
                    OutcomeKind::AlreadyArchived => work.attempts_already += 1,
                }
            }
        }
        Ok((Done::Archived { already, work }, None))
    }

    /// What archiving would do, as a line for people.
    async fn plan(
        &self,
        decision: &Decision,
        deadline: Instant,
    ) -> Result<(Done, Option<String>), Error> {
        let plan = self
            .or_cancel(self.archiver.plan(decision, deadline))
            .await
            .ok_or(Error::Cancelled)??;
        let mut work = Work::default();
        let mut already = plan.already_archived;
        let mut parts = Vec::new();
        let describe = |what: String, plan: &Plan, work: &mut Work| {
            if plan.already_archived {
                format!("{what}: already archived")
            } else {
                work.add(plan.files, plan.reusable, plan.bytes);
                format!(
                    "{what}: {} ({}), {} reusable, {} skipped",
                    plural(plan.files as u64, "file", "files"),
                    human_bytes(plan.bytes),
                    plan.reusable,
                    plan.skipped
                )
            }
        };
        parts.push(describe(
            format!(
                "attempt {} ({})",
                plan.attempt_id,
                shown(&decision.record.status)
            ),
            &plan,
            &mut work,
        ));
        if self.all_attempts {
            for attempt in self
                .earlier_attempts(decision, &plan.attempt_id, deadline)
                .await?
            {
                let earlier = self
                    .or_cancel(self.archiver.plan(&attempt, deadline))
                    .await
                    .ok_or(Error::Cancelled)??;
                if earlier.already_archived {
                    work.attempts_already += 1;
                } else {
                    already = false;
                    work.attempts_archived += 1;
                }
                parts.push(describe(
                    format!(
                        "attempt {} ({}, from the attempts listing)",
                        earlier.attempt_id,
                        shown(&attempt.record.status)
                    ),
                    &earlier,
                    &mut work,
                ));
            }
        }
        let line = format!("{}  {}", decision.session_id, parts.join("; "));
        Ok((Done::Archived { already, work }, Some(line)))
    }

    /// The session's attempts other than `decided`, each as a decision built from the
    /// attempts listing: its status as listed (`unknown` when none), no time, code or
    /// reason.
    async fn earlier_attempts(
        &self,
        decision: &Decision,
        decided: &str,
        deadline: Instant,
    ) -> Result<Vec<Decision>, Error> {
        let session_id = &decision.session_id;
        let attempts = self
            .or_cancel(self.veriff.attempts(session_id, deadline))
            .await
            .ok_or(Error::Cancelled)??;
        let mut out = Vec::new();
        for attempt in attempts {
            let Some(id) = attempt.id else { continue };
            if id == decided {
                continue;
            }
            let id = SafeId::parse(id).map_err(|_| {
                Error::upstream("session attempts", UpstreamProblem::UnsafeAttemptId)
            })?;
            if out
                .iter()
                .any(|d: &Decision| d.attempt_id.as_ref() == Some(&id))
            {
                continue;
            }
            let status = attempt
                .status
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "unknown".into());
            out.push(Decision::new(
                session_id.clone(),
                Some(id),
                DecisionRecord::new(decision.record.webhook, status),
            ));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// The tally and the report

/// Counts of the run (the `summary` of the JSON document).
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Non-blank input lines after the header: ids read (with invalid and duplicate ones).
    pub sessions_read: u64,
    /// Distinct valid session ids read.
    pub distinct: u64,
    /// Lines repeating an id read before (skipped).
    pub duplicates: u64,
    /// Lines that are not a session id (skipped).
    pub invalid: u64,
    /// Sessions archived now (at least one manifest written; with `--dry-run`: would be).
    pub archived: u64,
    /// Sessions whose every manifest was already there (nothing downloaded).
    pub already_archived: u64,
    /// Sessions without a decision yet.
    pub pending: u64,
    /// Decisions whose status `ARCHIVE_STATUSES` leaves out.
    pub ignored: u64,
    /// Sessions that failed (listed in `failed`).
    pub failed: u64,
    /// Sessions stopped by Ctrl-C (nothing written for them; a rerun finishes them).
    pub interrupted: u64,
    /// `--enqueue`: sessions whose decision was sent to the archive queue.
    pub queued: u64,
    /// `--enqueue`: messages sent (decisions, and other attempts with `--all-attempts`).
    pub messages_sent: u64,
    /// Other attempts archived now (`--all-attempts`).
    pub attempts_archived: u64,
    /// Other attempts already archived (`--all-attempts`).
    pub attempts_already_archived: u64,
    /// Files downloaded and stored (with `--dry-run`: would be).
    pub files_stored: u64,
    /// Files reused from an earlier manifest, without a download.
    pub files_reused: u64,
    /// Bytes of the files the manifests written list.
    pub bytes: u64,
    /// Wall time of the run.
    pub elapsed_seconds: f64,
    /// Sessions processed per second.
    pub sessions_per_second: f64,
}

/// A failed session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    /// The session id.
    pub session_id: String,
    /// The error's stable code (`upstream_error`, `storage_error`...).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillDocument {
    /// No session failed and the run was not interrupted.
    pub ok: bool,
    /// The process's exit code: 0, 1 or 130.
    pub exit_code: u8,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// `--dry-run`: nothing was written; counts say what would be done.
    pub dry_run: bool,
    /// `--all-attempts`.
    pub all_attempts: bool,
    /// `--enqueue`: decisions were sent to the archive queue, not archived here.
    pub enqueue: bool,
    /// The archive bucket.
    pub bucket: String,
    /// The key prefix.
    pub prefix: String,
    /// The counts.
    pub summary: Summary,
    /// Failed sessions, in completion order (at most [`MAX_LISTED`]).
    pub failed: Vec<Failed>,
    /// Invalid lines, in input order (at most [`MAX_LISTED`]).
    pub invalid: Vec<Invalid>,
    /// Failed sessions and invalid lines counted but not listed (beyond [`MAX_LISTED`]).
    pub not_listed: NotListed,
}

/// Entries counted but beyond [`MAX_LISTED`].
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotListed {
    /// Failed sessions not listed.
    pub failed: u64,
    /// Invalid lines not listed.
    pub invalid: u64,
}

/// The running tally.
#[derive(Default)]
struct Tally {
    summary: Summary,
    failed: Vec<Failed>,
    invalid: Vec<Invalid>,
    not_listed: NotListed,
    /// Entries handled (lines after the header, blank ones included).
    entries: u64,
}

impl Tally {
    fn entry(&mut self, entry: &Entry) {
        self.entries += 1;
        let s = &mut self.summary;
        match entry {
            Entry::Blank => {}
            Entry::Duplicate => {
                s.sessions_read += 1;
                s.duplicates += 1;
            }
            Entry::Invalid(invalid) => {
                s.sessions_read += 1;
                s.invalid += 1;
                if self.invalid.len() < MAX_LISTED {
                    self.invalid.push(invalid.clone());
                } else {
                    self.not_listed.invalid += 1;
                }
            }
            Entry::Session(_) => {
                s.sessions_read += 1;
                s.distinct += 1;
            }
        }
    }

    fn done(&mut self, id: String, done: Done) {
        let s = &mut self.summary;
        match done {
            Done::Archived { already, work } => {
                if already {
                    s.already_archived += 1;
                } else {
                    s.archived += 1;
                }
                s.attempts_archived += work.attempts_archived;
                s.attempts_already_archived += work.attempts_already;
                s.files_stored += work.files_stored;
                s.files_reused += work.files_reused;
                s.bytes += work.bytes;
            }
            Done::Pending => s.pending += 1,
            Done::Ignored => s.ignored += 1,
            Done::Interrupted => s.interrupted += 1,
            Done::Queued { messages } => {
                s.queued += 1;
                s.messages_sent += messages;
            }
            Done::Failed { code, message } => {
                s.failed += 1;
                if self.failed.len() < MAX_LISTED {
                    self.failed.push(Failed {
                        session_id: id,
                        code,
                        message,
                    });
                } else {
                    self.not_listed.failed += 1;
                }
            }
        }
    }

    fn progress_message(&self) -> String {
        let s = &self.summary;
        format!(
            "archived {} · already {} · queued {} · pending {} · failed {} · invalid {}",
            s.archived, s.already_archived, s.queued, s.pending, s.failed, s.invalid
        )
    }
}

/// A progress display on stderr (only on a terminal): a bar with an ETA when the input's
/// length is known (a file), a spinner with the counts and the rate otherwise (stdin).
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(enabled: bool, total: Option<u64>) -> Progress {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{wide_bar} {pos}/{len} lines ({rate}, {eta} left)\n{msg}"
            } else {
                "{spinner} {pos} lines ({rate}, {elapsed}) {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .with_key(
                        "rate",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.1}/s", state.per_sec());
                        },
                    )
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar }
    }

    fn update(&self, tally: &Tally) {
        if let Some(bar) = &self.bar {
            bar.set_position(tally.entries);
            bar.set_message(tally.progress_message());
        }
    }

    /// Prints a line on stdout without tearing the bar.
    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The command

/// Runs `backfill`.
pub async fn run(args: BackfillArgs) -> Result<ExitCode, Fatal> {
    let started = Instant::now();
    let bucket = args.archive.bucket.trim().to_string();
    let prefix = args.archive.prefix.clone();
    let config = Config::from_lookup(|name| match name {
        "ARCHIVE_BUCKET" => Some(bucket.clone()),
        "ARCHIVE_PREFIX" => Some(prefix.clone()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| format!("configuration: {e}"))?;
    let config = Arc::new(config);

    // The input before any request: a bad file or header costs nothing.
    let from_stdin = args.sessions == "-";
    let input: Box<dyn BufRead + Send> = if from_stdin {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file =
            File::open(&args.sessions).map_err(|e| format!("--sessions {}: {e}", args.sessions))?;
        Box::new(BufReader::with_capacity(64 * 1024, file))
    };
    let reader = Reader::open(input, args.column.as_deref())?;
    let format = reader.format().clone();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let total = (show_progress && !from_stdin)
        .then(|| count_lines(&args.sessions))
        .flatten()
        .map(|lines| lines.saturating_sub(u64::from(matches!(format, Format::Csv { .. }))));

    let sdk = veriff_archiver::s3::sdk_config_from_env().await;
    if let Some(settings) = &config.secret {
        // VERIFF_SECRET_ARN, as the function reads it: once, for the whole run.
        let source = veriff_archiver::credentials::SecretSource::new(
            veriff_archiver::s3::secrets_client(&sdk),
            settings.secret_id.clone(),
            settings.refresh_every,
        );
        let credentials = source
            .read()
            .await
            .map_err(|e| format!("VERIFF_SECRET_ARN: {e}"))?;
        config.credentials.replace(credentials);
    }
    let s3 = veriff_archiver::s3::client(&sdk);
    let veriff = VeriffClient::new(&config)
        .map_err(|e| format!("Veriff HTTP client: {e}"))?
        .with_rate_limit(Arc::new(RateLimiter::per_second(args.rate)));
    let store = Store::new(s3, config.bucket.clone(), config.part_size);
    let signer = config
        .manifest_signing_key_id
        .as_ref()
        .map(|key| ManifestSigner::new(veriff_archiver::s3::kms_client(&sdk), key.clone()));
    let archiver = Archiver::new(config.clone(), veriff.clone(), store).with_signer(signer);
    let queue = match (args.enqueue, &args.queue_url) {
        (false, _) => None,
        (true, None) => {
            return Err(
                "--enqueue needs --queue-url or ARCHIVE_QUEUE_URL (the stack's \
                        ArchiveQueueUrl output)"
                    .into(),
            );
        }
        (true, Some(url)) => Some(DecisionQueue::new(
            veriff_archiver::s3::sqs_client(&sdk),
            url.trim(),
        )),
    };

    let (stop, cancel) = watch::channel(false);
    let context = Context {
        config: config.clone(),
        veriff,
        archiver,
        all_attempts: args.all_attempts,
        full_auto: args.full_auto,
        dry_run: args.dry_run,
        queue,
        cancel: cancel.clone(),
    };
    let progress = Arc::new(Progress::new(show_progress, total));

    if !args.json {
        let source = if from_stdin {
            "standard input".to_string()
        } else {
            args.sessions.clone()
        };
        let format = match &format {
            Format::List => "one id per line".to_string(),
            Format::Csv { name, .. } => format!("CSV column {:?}", shown(name)),
        };
        let target = match &args.queue_url {
            Some(url) if args.enqueue => format!("to the queue {}", url.trim()),
            _ => format!("into s3://{}/{}", config.bucket, config.prefix),
        };
        println!(
            "veriff-archiver backfill{}: {source} ({format}) {target}; concurrency {}, \
             at most {} Veriff requests/s{}",
            if args.dry_run {
                " --dry-run"
            } else if args.enqueue {
                " --enqueue"
            } else {
                ""
            },
            args.concurrency,
            args.rate,
            if args.all_attempts {
                ", all attempts"
            } else {
                ""
            }
        );
    }

    // Ctrl-C: stop taking sessions, cancel those in flight; a second one quits at once.
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let signals = {
        let progress = progress.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let _ = stop.send(true);
            progress.note(&format!(
                "Interrupted: aborting {} session(s) in flight (their uploads are aborted, \
                 no manifest is written); Ctrl-C again to quit at once",
                in_flight.load(std::sync::atomic::Ordering::SeqCst)
            ));
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        })
    };

    // The reader runs on its own thread (blocking reads), READ_AHEAD entries ahead.
    let (tx, rx) = mpsc::channel::<std::io::Result<Entry>>(READ_AHEAD);
    std::thread::spawn(move || {
        let mut reader = reader;
        loop {
            let next = reader.next_entry();
            let end = !matches!(next, Ok(Some(_)));
            let item = match next {
                Ok(Some(entry)) => Ok(entry),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if tx.blocking_send(item).is_err() || end {
                break;
            }
        }
    });
    let entries = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .take_until(cancelled(cancel.clone()));

    let context = &context;
    let in_flight_ref = &in_flight;
    let results = entries
        .map(|item| async move {
            match item {
                Ok(Entry::Session(id)) => {
                    in_flight_ref.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (done, line) = context.session(&id).await;
                    in_flight_ref.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    Ok((Entry::Session(id), Some((done, line))))
                }
                Ok(other) => Ok((other, None)),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(usize::from(args.concurrency));
    let mut results = std::pin::pin!(results);

    let mut tally = Tally::default();
    let mut read_error = None;
    while let Some(result) = results.next().await {
        match result {
            Ok((entry, done)) => {
                tally.entry(&entry);
                if let (Entry::Session(id), Some((done, line))) = (entry, done) {
                    if let (Some(line), false) = (line, args.json) {
                        progress.println(&line);
                    } else if args.dry_run && !args.json {
                        let what = match &done {
                            Done::Pending => "pending (no decision yet)",
                            Done::Ignored => "ignored (status not in ARCHIVE_STATUSES)",
                            Done::Failed { .. } => "failed (see below)",
                            Done::Interrupted => "interrupted",
                            Done::Archived { .. } | Done::Queued { .. } => "",
                        };
                        progress.println(&format!("{id}  {what}"));
                    }
                    tally.done(id.to_string(), done);
                }
            }
            Err(e) => {
                // The input broke off: finish what is in flight, then report it.
                read_error.get_or_insert(e);
            }
        }
        progress.update(&tally);
    }
    progress.finish();
    let interrupted = *cancel.borrow();
    signals.abort();

    let elapsed = started.elapsed().as_secs_f64();
    tally.summary.elapsed_seconds = (elapsed * 1000.0).round() / 1000.0;
    let processed = tally.summary.distinct as f64;
    tally.summary.sessions_per_second = if elapsed > 0.0 {
        ((processed / elapsed) * 100.0).round() / 100.0
    } else {
        0.0
    };
    let exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else {
        u8::from(tally.summary.failed > 0)
    };
    let text = if args.json {
        let document = BackfillDocument {
            ok: exit_code == 0,
            exit_code,
            interrupted,
            dry_run: args.dry_run,
            all_attempts: args.all_attempts,
            enqueue: args.enqueue,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            summary: tally.summary,
            failed: tally.failed,
            invalid: tally.invalid,
            not_listed: tally.not_listed,
        };
        let mut text =
            serde_json::to_string_pretty(&document).map_err(|e| format!("JSON output: {e}"))?;
        text.push('\n');
        text
    } else {
        human(
            &tally,
            args.dry_run,
            args.all_attempts,
            args.enqueue,
            interrupted,
        )
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing the result: {e}"))?;
    if let Some(e) = read_error {
        return Err(format!(
            "--sessions: reading the input failed after {} lines: {e} (the sessions read \
             were processed; run the command again)",
            tally.entries
        ));
    }
    Ok(ExitCode::from(exit_code))
}

/// The output for people: the summary table, every failed session and invalid line, and
/// the verdict.
fn human(
    tally: &Tally,
    dry_run: bool,
    all_attempts: bool,
    enqueue: bool,
    interrupted: bool,
) -> String {
    let s = &tally.summary;
    let n = |v: u64| v.to_string();
    let mut table = Table::new();
    table.row(["sessions read".into(), n(s.sessions_read)]);
    table.row(["distinct".into(), n(s.distinct)]);
    table.row(["duplicates (skipped)".into(), n(s.duplicates)]);
    table.row(["invalid (skipped)".into(), n(s.invalid)]);
    table.row(["", ""]);
    if enqueue {
        table.row(["queued".into(), n(s.queued)]);
        table.row(["messages sent".into(), n(s.messages_sent)]);
    } else {
        let archived = if dry_run { "to archive" } else { "archived" };
        table.row([archived.into(), n(s.archived)]);
        table.row(["already archived".into(), n(s.already_archived)]);
    }
    table.row(["pending (no decision yet)".into(), n(s.pending)]);
    if s.ignored > 0 {
        table.row(["ignored (ARCHIVE_STATUSES)".into(), n(s.ignored)]);
    }
    table.row(["failed".into(), n(s.failed)]);
    table.row(["interrupted".into(), n(s.interrupted)]);
    table.row(["", ""]);
    if all_attempts && !enqueue {
        let label = if dry_run {
            "other attempts to archive"
        } else {
            "other attempts archived"
        };
        table.row([label.into(), n(s.attempts_archived)]);
        table.row([
            "other attempts already archived".into(),
            n(s.attempts_already_archived),
        ]);
    }
    if !enqueue {
        let stored = if dry_run {
            "files to download"
        } else {
            "files stored"
        };
        table.row([stored.into(), n(s.files_stored)]);
        table.row(["files reused (no download)".into(), n(s.files_reused)]);
        table.row([
            "bytes".into(),
            format!("{} ({})", s.bytes, human_bytes(s.bytes)),
        ]);
    }
    table.row(["elapsed".into(), format!("{:.1} s", s.elapsed_seconds)]);
    table.row(["sessions/s".into(), format!("{:.1}", s.sessions_per_second)]);

    let mut out = String::from("\nSummary\n");
    out.push_str(&table.render("  "));
    if s.failed > 0 {
        out.push_str(&format!("\nFailed sessions ({})\n", s.failed));
        for f in &tally.failed {
            out.push_str(&format!(
                "  {}  {}  {}\n",
                f.session_id,
                f.code,
                f.message.escape_debug()
            ));
        }
        if tally.not_listed.failed > 0 {
            out.push_str(&format!("  ... and {} more\n", tally.not_listed.failed));
        }
    }
    if s.invalid > 0 {
        out.push_str(&format!("\nInvalid lines ({})\n", s.invalid));
        for i in &tally.invalid {
            out.push_str(&format!(
                "  line {}  \"{}\"  {}\n",
                i.line, i.value, i.reason
            ));
        }
        if tally.not_listed.invalid > 0 {
            out.push_str(&format!("  ... and {} more\n", tally.not_listed.invalid));
        }
    }
    out.push('\n');
    if interrupted {
        out.push_str(&format!(
            "INTERRUPTED: {} in flight stopped (uploads aborted, no manifest written). Run \
             the same command again to finish: what is archived costs no download.\n",
            plural(s.interrupted, "session", "sessions")
        ));
    } else if s.failed > 0 {
        out.push_str(&format!(
            "FAILED: {} failed. Run the same command again to retry them: what is archived \
             costs no download.\n",
            plural(s.failed, "session", "sessions")
        ));
    } else if dry_run {
        out.push_str("OK (dry run): nothing was written.\n");
    } else if enqueue {
        out.push_str(&format!(
            "OK: {} queued ({}), {} pending. The queue consumer archives them; watch the \
             dead-letter queue for any that keep failing.\n",
            plural(s.queued, "session", "sessions"),
            plural(s.messages_sent, "message", "messages"),
            s.pending
        ));
    } else {
        out.push_str(&format!(
            "OK: {} archived, {} already archived, {} pending.\n",
            s.archived, s.already_archived, s.pending
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str, column: Option<&str>) -> Result<(Format, Vec<Entry>), Fatal> {
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
        assert_eq!(split_csv_line("a,b ,  c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_csv_line("").unwrap(), [""]);
        assert_eq!(split_csv_line("a,,").unwrap(), ["a", "", ""]);
        assert_eq!(
            split_csv_line(r#""x, y","say ""hi""", z"#).unwrap(),
            ["x, y", r#"say "hi""#, "z"]
        );
        assert_eq!(split_csv_line(r#" "q" ,b"#).unwrap(), ["q", "b"]);
        assert!(split_csv_line(r#""open,b"#).is_err());
        assert!(split_csv_line(r#""a"b,c"#).is_err());
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
        assert!(reader("a,b\n1,2\n", None).is_err());
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

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("inf").is_err());
    }
}
