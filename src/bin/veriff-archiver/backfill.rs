//! `veriff-archiver backfill --sessions FILE|-`: the arguments, the progress display and
//! the printed report of [`veriff_archiver::backfill`], which does the work (reading the
//! input, each session's decision, archiving or enqueueing, the counts).
//!
//! Exit codes: 0 when no session failed, 1 when any failed, 2 on a usage or configuration
//! error (nothing is processed), 130 when interrupted (Ctrl-C): the sessions in flight abort
//! their uploads and write no manifest, the summary so far is printed, and the same command
//! run again finishes the job.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::sync::watch;
use tokio::time::Instant;
use veriff_archiver::backfill::{
    self, Backfill, BackfillTally, Done, Entry, Format, Options, Reader, Report,
};
use veriff_archiver::units::{human_bytes, plural};
use veriff_archiver::{App, Config};

use crate::common::{ArchiveArgs, Fatal, aws_clients};
use crate::output::Table;

/// Default of `--concurrency`.
pub const DEFAULT_CONCURRENCY: u16 = 8;
/// Default of `--rate` (Veriff requests per second; Veriff publishes no limit).
pub const DEFAULT_RATE: f64 = 10.0;
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

    fn update(&self, tally: &BackfillTally) {
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
    let config = config(&args)?;
    // The input before any request: a bad file or header costs nothing.
    let from_stdin = args.sessions == "-";
    let input: Box<dyn BufRead + Send> = if from_stdin {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file =
            File::open(&args.sessions).map_err(|e| format!("--sessions {}: {e}", args.sessions))?;
        Box::new(BufReader::with_capacity(64 * 1024, file))
    };
    let reader = Reader::open(input, args.column.as_deref()).map_err(|e| match e {
        backfill::InputError::Io(e) => format!("--sessions: {e}"),
        other => other.to_string(),
    })?;
    let format = reader.format().clone();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let total = (show_progress && !from_stdin)
        .then(|| count_lines(&args.sessions))
        .flatten()
        .map(|lines| lines.saturating_sub(u64::from(matches!(format, Format::Csv { .. }))));
    let app = build_app(&args, config).await?;
    if !args.json {
        println!("{}", header(&args, &format, app.config()));
    }

    let (stop, cancel) = watch::channel(false);
    let backfill = Backfill::new(&app, options(&args), cancel);
    let progress = Arc::new(Progress::new(show_progress, total));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let signals = tokio::spawn(on_ctrl_c(stop, progress.clone(), in_flight.clone()));
    let concurrency = usize::from(args.concurrency);
    let mut end = backfill::run(&backfill, reader, concurrency, in_flight, |event| {
        let backfill::Progress::Entry { entry, done, tally } = event;
        if let (Entry::Session(id), Some((done, line))) = (entry, done) {
            if let (Some(line), false) = (line, args.json) {
                progress.println(line);
            } else if args.dry_run && !args.json {
                progress.println(&format!("{id}  {}", dry_run_note(done)));
            }
        }
        progress.update(tally);
    })
    .await;
    progress.finish();
    signals.abort();
    end.tally.finish(started.elapsed().as_secs_f64());
    let exit_code = if end.interrupted {
        EXIT_INTERRUPTED
    } else {
        u8::from(end.tally.summary.failed > 0)
    };
    print_result(&args, app.config(), &end, exit_code)?;
    if let Some(e) = end.read_error {
        return Err(format!(
            "--sessions: reading the input failed after {} lines: {e} (the sessions read \
             were processed; run the command again)",
            end.tally.entries
        ));
    }
    Ok(ExitCode::from(exit_code))
}

/// The function's configuration, with the bucket and prefix of the flags.
fn config(args: &BackfillArgs) -> Result<Config, Fatal> {
    let bucket = args.archive.bucket.trim().to_string();
    let prefix = args.archive.prefix.clone();
    Config::from_lookup(|name| match name {
        "ARCHIVE_BUCKET" => Some(bucket.clone()),
        "ARCHIVE_PREFIX" => Some(prefix.clone()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| format!("configuration: {e}"))
}

/// The app, as the function builds it, with `--rate` and `--enqueue`'s queue.
async fn build_app(args: &BackfillArgs, config: Config) -> Result<App, Fatal> {
    let mut builder = App::with_aws(config, aws_clients().await).veriff_rate(args.rate);
    if args.enqueue {
        let url = args.queue_url.as_deref().ok_or(
            "--enqueue needs --queue-url or ARCHIVE_QUEUE_URL (the stack's ArchiveQueueUrl \
             output)",
        )?;
        builder = builder.enqueue_to(url.trim());
    }
    builder.build().await.map_err(|e| e.to_string())
}

fn options(args: &BackfillArgs) -> Options {
    Options {
        all_attempts: args.all_attempts,
        full_auto: args.full_auto,
        dry_run: args.dry_run,
        enqueue: args.enqueue,
    }
}

/// The first line: what is read, from where, into where, how fast.
fn header(args: &BackfillArgs, format: &Format, config: &Config) -> String {
    let source = if args.sessions == "-" {
        "standard input".to_string()
    } else {
        args.sessions.clone()
    };
    let format = match format {
        Format::List => "one id per line".to_string(),
        Format::Csv { name, .. } => format!("CSV column {:?}", backfill::input::shown(name)),
    };
    let target = match &args.queue_url {
        Some(url) if args.enqueue => format!("to the queue {}", url.trim()),
        _ => format!(
            "into s3://{}/{}",
            config.archive.bucket, config.archive.prefix
        ),
    };
    let mode = if args.dry_run {
        " --dry-run"
    } else if args.enqueue {
        " --enqueue"
    } else {
        ""
    };
    let attempts = if args.all_attempts {
        ", all attempts"
    } else {
        ""
    };
    format!(
        "veriff-archiver backfill{mode}: {source} ({format}) {target}; concurrency {}, at most \
         {} Veriff requests/s{attempts}",
        args.concurrency, args.rate
    )
}

/// Ctrl-C: stop taking sessions and cancel those in flight; a second one quits at once.
async fn on_ctrl_c(
    stop: watch::Sender<bool>,
    progress: Arc<Progress>,
    in_flight: Arc<AtomicUsize>,
) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    let _ = stop.send(true);
    progress.note(&format!(
        "Interrupted: aborting {} session(s) in flight (their uploads are aborted, no \
         manifest is written); Ctrl-C again to quit at once",
        in_flight.load(std::sync::atomic::Ordering::SeqCst)
    ));
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
}

/// A dry run's line for a session that would not be archived.
fn dry_run_note(done: &Done) -> &'static str {
    match done {
        Done::Pending => "pending (no decision yet)",
        Done::Ignored => "ignored (status not in ARCHIVE_STATUSES)",
        Done::Failed { .. } => "failed (see below)",
        Done::Interrupted => "interrupted",
        Done::Archived { .. } | Done::Queued { .. } => "",
    }
}

/// Prints the report: JSON with `--json`, else the summary table for people.
fn print_result(
    args: &BackfillArgs,
    config: &Config,
    end: &backfill::RunEnd,
    exit_code: u8,
) -> Result<(), Fatal> {
    let tally = &end.tally;
    let text = if args.json {
        let report = Report {
            ok: exit_code == 0,
            exit_code,
            interrupted: end.interrupted,
            dry_run: args.dry_run,
            all_attempts: args.all_attempts,
            enqueue: args.enqueue,
            bucket: config.archive.bucket.clone(),
            prefix: config.archive.prefix.clone(),
            summary: tally.summary.clone(),
            failed: tally.failed.clone(),
            invalid: tally.invalid.clone(),
            not_listed: tally.not_listed.clone(),
        };
        let mut text =
            serde_json::to_string_pretty(&report).map_err(|e| format!("JSON output: {e}"))?;
        text.push('\n');
        text
    } else {
        human(
            tally,
            args.dry_run,
            args.all_attempts,
            args.enqueue,
            end.interrupted,
        )
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing the result: {e}"))
}

/// The output for people: the summary table, every failed session and invalid line, and
/// the verdict.
fn human(
    tally: &BackfillTally,
    dry_run: bool,
    all_attempts: bool,
    enqueue: bool,
    interrupted: bool,
) -> String {
    let mut out = String::from("\nSummary\n");
    out.push_str(&summary_table(tally, dry_run, all_attempts, enqueue).render("  "));
    out.push_str(&listed(tally));
    out.push('\n');
    out.push_str(&verdict(tally, dry_run, enqueue, interrupted));
    out
}

/// The counts, as a table.
fn summary_table(tally: &BackfillTally, dry_run: bool, all_attempts: bool, enqueue: bool) -> Table {
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
        let archived = if dry_run {
            "other attempts to archive"
        } else {
            "other attempts archived"
        };
        table.row([archived.into(), n(s.attempts_archived)]);
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
    table
}

/// Every failed session and invalid line (as many as were kept).
fn listed(tally: &BackfillTally) -> String {
    let s = &tally.summary;
    let mut out = String::new();
    if s.failed > 0 {
        out.push_str(&format!("\nFailed sessions ({})\n", s.failed));
        for f in &tally.failed {
            let message = f.message.escape_debug();
            out.push_str(&format!("  {}  {}  {message}\n", f.session_id, f.code));
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
    out
}

/// The last line: what happened, and what to do next.
fn verdict(tally: &BackfillTally, dry_run: bool, enqueue: bool, interrupted: bool) -> String {
    let s = &tally.summary;
    if interrupted {
        format!(
            "INTERRUPTED: {} in flight stopped (uploads aborted, no manifest written). Run \
             the same command again to finish: what is archived costs no download.\n",
            plural(s.interrupted, "session", "sessions")
        )
    } else if s.failed > 0 {
        format!(
            "FAILED: {} failed. Run the same command again to retry them: what is archived \
             costs no download.\n",
            plural(s.failed, "session", "sessions")
        )
    } else if dry_run {
        "OK (dry run): nothing was written.\n".into()
    } else if enqueue {
        format!(
            "OK: {} queued ({}), {} pending. The queue consumer archives them; watch the \
             dead-letter queue for any that keep failing.\n",
            plural(s.queued, "session", "sessions"),
            plural(s.messages_sent, "message", "messages"),
            s.pending
        )
    } else {
        format!(
            "OK: {} archived, {} already archived, {} pending.\n",
            s.archived, s.already_archived, s.pending
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("inf").is_err());
    }
}
