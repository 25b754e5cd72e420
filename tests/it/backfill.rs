//! The backfill use case in-process (`veriff_archiver::backfill`), on the harness's app:
//! what each session does, the counts, the dry run, enqueue without a queue, and a run
//! cancelled mid-way. The CLI around it (arguments, progress, exit codes, printing) is
//! tested as a subprocess in `cli_backfill.rs`.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID, PENDING_DECISION};
use archiver_devkit::{Fault, FaultKind, demo_scenario, essential_scenario};
use tokio::sync::watch;
use veriff_archiver::backfill::{self, Backfill, Done, Entry, Options, Reader};
use veriff_archiver::domain::SafeId;

fn reader(text: &str) -> Reader {
    Reader::open(Box::new(Cursor::new(text.to_string())), None).expect("input")
}

fn id(s: &str) -> SafeId {
    SafeId::parse(s).unwrap()
}

/// Runs a backfill of `input` with `options` to its end; returns what each session did.
async fn run(
    h: &Harness,
    input: &str,
    options: Options,
) -> (backfill::RunEnd, Vec<(String, Done, Option<String>)>) {
    let (_stop, cancel) = watch::channel(false);
    let backfill = Backfill::new(&h.app, options, cancel);
    let mut seen = Vec::new();
    let end = backfill::run(
        &backfill,
        reader(input),
        4,
        Arc::new(AtomicUsize::new(0)),
        |backfill::Progress::Entry { entry, done, .. }| {
            if let (Entry::Session(id), Some((done, line))) = (entry, done) {
                seen.push((id.to_string(), done.clone(), line.map(str::to_string)));
            }
        },
    )
    .await;
    (end, seen)
}

#[tokio::test]
async fn each_session_is_archived_pending_ignored_or_failed_and_counted() {
    let h = Harness::with(&[("ARCHIVE_STATUSES", "approved,declined")]).await;
    demo_scenario(&h.fake, 1000);
    h.fake
        .set_session_decision("pending-session", PENDING_DECISION);
    let review = "review-session";
    h.fake.set_session_decision(
        review,
        archiver_devkit::decision_webhook(review, "review-a", "review", "2025-03-04T10:00:00Z"),
    );
    let input = format!(
        "{DEMO_SESSION_ID}\npending-session\n{review}\nunknown-session\n../x\n\n{DEMO_SESSION_ID}\n"
    );
    let (end, seen) = run(&h, &input, Options::default()).await;
    assert!(!end.interrupted && end.read_error.is_none());
    let s = &end.tally.summary;
    assert_eq!(
        [s.sessions_read, s.distinct, s.duplicates, s.invalid],
        [6, 4, 1, 1]
    );
    assert_eq!(
        [s.archived, s.pending, s.ignored, s.failed],
        [1, 1, 1, 1],
        "{seen:#?}"
    );
    assert_eq!(end.tally.failed[0].session_id, "unknown-session");
    assert_eq!(end.tally.failed[0].code, "veriff_unavailable");
    assert_eq!(end.tally.invalid[0].line, 5);
    let manifest = h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.unwrap();
    assert_eq!(manifest["decisionSource"], "decision_endpoint");
    h.assert_manifest_consistent(&manifest).await;
    assert!(h.keys().await.iter().all(|k| !k.contains(review)));

    // Again: already archived, no download.
    let downloads = h.media_downloads();
    let (end, _) = run(&h, &format!("{DEMO_SESSION_ID}\n"), Options::default()).await;
    assert_eq!(end.tally.summary.already_archived, 1);
    assert_eq!(h.media_downloads(), downloads);
}

#[tokio::test]
async fn a_dry_run_plans_each_session_and_writes_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let (end, seen) = run(
        &h,
        &format!("{DEMO_SESSION_ID}\n"),
        Options {
            dry_run: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(end.tally.summary.archived, 1, "would be archived");
    let (_, done, line) = &seen[0];
    let Done::Archived { already, work } = done else {
        panic!("{done:?}")
    };
    assert!(!already);
    assert_eq!((work.files_stored, work.files_reused), (6, 0));
    let line = line.as_deref().unwrap();
    assert!(
        line.starts_with(&format!(
            "{DEMO_SESSION_ID}  attempt {DEMO_ATTEMPT_ID} (approved): 6 files"
        )),
        "{line}"
    );
    assert!(h.keys().await.is_empty(), "nothing written");
    assert_eq!(h.media_downloads(), 0, "nothing downloaded");
}

#[tokio::test]
async fn enqueueing_without_a_queue_fails_each_session_and_sends_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let (end, _) = run(
        &h,
        &format!("{DEMO_SESSION_ID}\n"),
        Options {
            enqueue: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(end.tally.summary.failed, 1);
    assert_eq!(end.tally.failed[0].code, "queue_unavailable");
    assert!(h.keys().await.is_empty());
}

#[tokio::test]
async fn full_auto_sessions_take_their_decision_from_the_attempts_listing() {
    let h = Harness::start().await;
    let essential = essential_scenario(&h.fake);
    let (end, _) = run(
        &h,
        &format!("{}\n", essential.session_id),
        Options {
            full_auto: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(end.tally.summary.archived, 1);
    let manifest = h
        .manifest(&essential.session_id, &essential.attempt_id)
        .await
        .unwrap();
    assert_eq!(manifest["decision"]["webhook"], "fullauto");
    assert_eq!(manifest["decisionSource"], "attempts_listing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_its_sessions_leaves_no_upload_open_and_a_rerun_finishes() {
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true")]).await;
    demo_scenario(&h.fake, 12 * 1024 * 1024);
    // The video streams slowly: the session is in flight, mid-upload, when cancelled.
    h.fake.set_download_bandwidth(Some(2 * 1024 * 1024));
    let (stop, cancel) = watch::channel(false);
    let backfill = Backfill::new(&h.app, Options::default(), cancel);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        stop.send(true).unwrap();
    });
    let end = backfill::run(
        &backfill,
        reader(&format!("{DEMO_SESSION_ID}\n")),
        1,
        in_flight,
        |_| {},
    )
    .await;
    stopper.await.unwrap();
    assert!(end.interrupted);
    assert_eq!(end.tally.summary.interrupted, 1);
    assert!(h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.is_none());
    h.assert_started_uploads_were_aborted("a cancelled backfill");

    h.fake.set_download_bandwidth(None);
    let (_stop, cancel) = watch::channel(false);
    let backfill = Backfill::new(&h.app, Options::default(), cancel);
    let session = backfill.session(&id(DEMO_SESSION_ID)).await;
    assert!(
        matches!(session.0, Done::Archived { already: false, .. }),
        "{session:?}"
    );
    h.assert_manifest_consistent(&h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.unwrap())
        .await;
    // A failure of Veriff mid-run is that session's alone.
    h.fake.inject(Fault::new(
        "/v1/sessions/other/decision",
        FaultKind::Status(403),
        10,
    ));
    let (end, _) = run(
        &h,
        &format!("other\n{DEMO_SESSION_ID}\n"),
        Options::default(),
    )
    .await;
    assert_eq!(
        (end.tally.summary.failed, end.tally.summary.already_archived),
        (1, 1)
    );
}

/// A reader that yields `text`, then fails (a network share that drops, a pipe that breaks).
struct BreaksAfter(std::io::Cursor<Vec<u8>>);

impl std::io::Read for BreaksAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("the input broke off")),
            n => Ok(n),
        }
    }
}

#[tokio::test]
async fn input_that_breaks_off_finishes_what_was_read_and_reports_the_error() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let text = format!("{DEMO_SESSION_ID}\nunknown-session\n");
    let input = std::io::BufReader::new(BreaksAfter(std::io::Cursor::new(text.into_bytes())));
    let reader = Reader::open(Box::new(input), None).expect("the first line reads");
    let (_stop, cancel) = watch::channel(false);
    let backfill = Backfill::new(&h.app, Options::default(), cancel);
    let end = backfill::run(&backfill, reader, 4, Arc::new(AtomicUsize::new(0)), |_| {}).await;
    let error = end.read_error.expect("the read error is reported");
    assert!(error.to_string().contains("broke off"), "{error}");
    assert_eq!(
        end.tally.summary.sessions_read, 2,
        "both lines before the break"
    );
    assert_eq!(end.tally.summary.archived, 1, "what was read is finished");
    assert!(h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.is_some());
}

#[tokio::test]
async fn the_lists_stop_at_their_cap_and_the_counts_stay_exact() {
    let h = Harness::start().await;
    let over = 3;
    let input = "../not-an-id\n".repeat(backfill::MAX_LISTED + over);
    let (end, _) = run(&h, &input, Options::default()).await;
    let tally = end.tally;
    assert_eq!(tally.summary.invalid as usize, backfill::MAX_LISTED + over);
    assert_eq!(tally.invalid.len(), backfill::MAX_LISTED);
    assert_eq!(tally.not_listed.invalid as usize, over);
    assert!(h.fake.requests().is_empty());
}
