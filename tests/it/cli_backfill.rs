//! `veriff-archiver backfill`, the built binary run as a subprocess against a real S3 server
//! (s3s-fs on loopback) and the Veriff fake (decision and attempts endpoints, signed
//! responses, latency and faults).
//!
//! A mixed list (decided sessions, a pending one, a session with three attempts with and
//! without `--all-attempts`, an id with `../`, a duplicate line) is archived and checked,
//! then run again: zero media downloads. An interrupted run (SIGINT mid-way) exits 130 and
//! leaves no multipart upload open; a rerun completes a consistent archive. 429 storms slow
//! the run down without failing it; `--rate` spaces requests; `--dry-run` writes nothing;
//! CSV headers are found or refused; `--json` is parsed and its counts checked.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;
use archiver_devkit::demo::{
    RESUBMITTED_DECIDED_ATTEMPT_ID, RESUBMITTED_LATEST_ATTEMPT_ID, RESUBMITTED_SESSION_ID,
};
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID, PENDING_DECISION};
use archiver_devkit::{
    FakeVeriff, Fault, FaultKind, MediaContent, demo_scenario, deterministic_bytes,
    resubmitted_scenario,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// The session with three attempts: declined, then resubmission requested, then approved
/// (the decided one).
const THREE: &str = "three-attempts-session";
const THREE_ATTEMPTS: [(&str, &str); 3] = [
    ("three-attempt-1", "declined"),
    ("three-attempt-2", "resubmission_requested"),
    ("three-attempt-3", "approved"),
];
const PENDING: &str = "pending-session";
const DECISION_TIME: &str = "2025-03-04T10:21:07.412Z";

// ---------------------------------------------------------------------------------------
// Scenarios and the subprocess

/// A listing document of `images` JPEG images (and a video of `video` bytes) under ids
/// derived from `tag`; registers the content. Returns the document.
fn register_media(
    fake: &FakeVeriff,
    session: &str,
    tag: &str,
    images: usize,
    video: Option<u64>,
) -> String {
    let mut listed = Vec::new();
    for i in 0..images {
        let id = format!("{tag}-image-{i}");
        let size = 2_000 + 97 * i;
        let seed = tag.bytes().map(u64::from).sum::<u64>() * 31 + i as u64;
        fake.set_media(
            &id,
            MediaContent::bytes(deterministic_bytes(seed, size), "image/jpeg"),
        );
        listed.push(json!({
            "id": id, "name": format!("face-{i}"), "context": format!("face-{i}"),
            "timestamp": null, "size": size, "mimetype": "image/jpeg",
            "url": format!("https://example.com/v1/media/{id}"), "sessionId": session,
        }));
    }
    let mut videos = Vec::new();
    if let Some(len) = video {
        let id = format!("{tag}-video");
        let seed = tag.bytes().map(u64::from).sum::<u64>() + 0x7777;
        fake.set_media(&id, MediaContent::generated(len, seed, "video/mp4"));
        videos.push(json!({
            "id": id, "name": "selfid_video", "context": "selfid_video", "timestamp": null,
            "size": len, "mimetype": "video/mp4", "duration": 1,
            "url": format!("https://example.com/v1/media/{id}"), "sessionId": session,
        }));
    }
    json!({ "status": "success", "images": listed, "videos": videos, "nfcDocuments": [] })
        .to_string()
}

/// A decided session with one attempt (its session and attempt listings the same).
fn decided_session(fake: &FakeVeriff, session: &str, images: usize, video: Option<u64>) -> String {
    let attempt = format!("{session}-a");
    let document = register_media(fake, session, session, images, video);
    fake.set_session_media(session, document.clone());
    fake.set_attempt_media(&attempt, document);
    fake.set_session_attempts(
        session,
        json!({"status": "success", "verifications": [
            {"id": attempt, "status": "approved", "createdTime": "2025-03-04T10:15:55.000Z"}
        ]})
        .to_string(),
    );
    fake.set_session_decision(
        session,
        archiver_devkit::decision_webhook(session, &attempt, "approved", DECISION_TIME),
    );
    attempt
}

/// The three-attempt session: each attempt lists two images of its own; the session
/// listing shows the last attempt (the decided one).
fn three_attempts(fake: &FakeVeriff) {
    let mut verifications = Vec::new();
    for (i, (attempt, status)) in THREE_ATTEMPTS.iter().enumerate() {
        let document = register_media(fake, THREE, attempt, 2, None);
        fake.set_attempt_media(attempt, document.clone());
        if i == 2 {
            fake.set_session_media(THREE, document);
        }
        verifications.push(json!({
            "id": attempt, "status": status,
            "createdTime": format!("2025-03-0{}T10:00:00.000Z", i + 1),
        }));
    }
    fake.set_session_attempts(
        THREE,
        json!({"status": "success", "verifications": verifications}).to_string(),
    );
    fake.set_session_decision(
        THREE,
        archiver_devkit::decision_webhook(THREE, THREE_ATTEMPTS[2].0, "approved", DECISION_TIME),
    );
}

/// What one run of the binary did.
type Run = CliRun;

/// The command for `veriff-archiver backfill ARGS` with the function's environment.
fn command(h: &Harness, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_veriff-archiver"));
    command
        .arg("backfill")
        .args(args)
        .env_clear()
        .env("VERIFF_API_URL", h.fake.base_url())
        .env("VERIFF_API_KEY", API_KEY)
        .env("VERIFF_SHARED_SECRET", SECRET)
        .env("VERIFF_TIMEOUT_MS", "5000")
        .env("PART_SIZE_MIB", "5")
        .envs(cli_env(h))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `backfill --sessions - ARGS` with `input` on stdin.
async fn backfill(h: &Harness, input: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["--sessions", "-"];
    all.extend_from_slice(args);
    let mut child = command(h, &all, env).spawn().expect("run veriff-archiver");
    let mut stdin = child.stdin.take().unwrap();
    // A run refused at start (exit 2) may close stdin before reading it: not an error here.
    let _ = stdin.write_all(input.as_bytes()).await;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("backfill finishes within 2 minutes")
        .expect("veriff-archiver output");
    CliRun::from_output(out)
}

/// The manifests of one attempt folder (schema-validated by the harness).
async fn manifests(h: &Harness, session: &str, attempt: &str) -> Vec<Value> {
    h.manifests(session, attempt)
        .await
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// The only manifest of an attempt folder, checked against the stored files.
async fn only_manifest(h: &Harness, session: &str, attempt: &str) -> Value {
    let all = manifests(h, session, attempt).await;
    assert_eq!(
        all.len(),
        1,
        "one manifest in {session}/{attempt}: {all:#?}"
    );
    let manifest = all.into_iter().next().unwrap();
    h.assert_manifest_consistent(&manifest).await;
    manifest
}

fn counts(doc: &Value, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|n| {
            doc["summary"][n]
                .as_u64()
                .unwrap_or_else(|| panic!("summary.{n} in {doc:#}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The mixed list

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_list_is_archived_then_all_attempts_then_a_rerun_downloads_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1_000_000);
    let resubmitted = resubmitted_scenario(&h.fake);
    three_attempts(&h.fake);
    h.fake.set_session_decision(PENDING, PENDING_DECISION);
    let input = format!(
        "{DEMO_SESSION_ID}\n\n{RESUBMITTED_SESSION_ID}\n{THREE}\n{PENDING}\n../{DEMO_SESSION_ID}\n\
         {DEMO_SESSION_ID}\n"
    );

    // 1. Without --all-attempts: each decision, from the decision endpoint.
    let run = backfill(&h, &input, &[], &[]).await;
    run.assert_code(0);
    assert_eq!(run.row("sessions read"), "6");
    assert_eq!(run.row("distinct"), "4");
    assert_eq!(run.row("duplicates (skipped)"), "1");
    assert_eq!(run.row("invalid (skipped)"), "1");
    assert_eq!(run.row("archived"), "3");
    assert_eq!(run.row("already archived"), "0");
    assert_eq!(run.row("pending (no decision yet)"), "1");
    assert_eq!(run.row("failed"), "0");
    assert!(
        run.stdout.contains("line 6  \"../f04bdb47"),
        "the invalid line is reported with its number:\n{}",
        run.stdout
    );
    assert!(
        h.fake.requests().iter().all(|r| !r.path.contains("..")),
        "an invalid id never reaches a URL"
    );
    assert!(h.keys().await.iter().all(|k| !k.contains("..")));

    let demo = only_manifest(&h, DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await;
    assert_eq!(demo["decisionSource"], "decision_endpoint");
    assert_eq!(demo["decision"]["status"], "approved");
    let decided = only_manifest(&h, RESUBMITTED_SESSION_ID, RESUBMITTED_DECIDED_ATTEMPT_ID).await;
    assert_eq!(decided["decisionSource"], "decision_endpoint");
    assert_eq!(decided["decision"]["status"], "resubmission_requested");
    assert_eq!(decided["files"].as_array().unwrap().len(), 3);
    let three = only_manifest(&h, THREE, THREE_ATTEMPTS[2].0).await;
    assert_eq!(three["decisionSource"], "decision_endpoint");
    for (attempt, _) in &THREE_ATTEMPTS[..2] {
        assert!(
            manifests(&h, THREE, attempt).await.is_empty(),
            "{attempt}: not without --all-attempts"
        );
    }
    assert!(
        manifests(&h, RESUBMITTED_SESSION_ID, RESUBMITTED_LATEST_ATTEMPT_ID)
            .await
            .is_empty()
    );
    assert!(
        h.keys().await.iter().all(|k| !k.contains(PENDING)),
        "nothing for the pending session"
    );

    // 2. --all-attempts: the other attempts, each in its folder with its own manifest.
    h.fake.reset_requests();
    let run = backfill(&h, &input, &["--all-attempts", "--json"], &[]).await;
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["allAttempts"], true);
    assert_eq!(
        counts(
            &doc,
            &[
                "archived",
                "alreadyArchived",
                "pending",
                "failed",
                "attemptsArchived",
                "attemptsAlreadyArchived"
            ]
        ),
        [2, 1, 1, 0, 3, 0],
        "{doc:#}"
    );
    // Only the other attempts' media were downloaded: the resubmitted session's latest
    // attempt (3 images, and the NFC file: the session listing shows that attempt), and
    // 2 + 2 images for the three-attempt session's first two.
    assert_eq!(h.media_downloads(), 8);
    assert_eq!(doc["summary"]["filesStored"], 8);
    for (i, (attempt, status)) in THREE_ATTEMPTS[..2].iter().enumerate() {
        let m = only_manifest(&h, THREE, attempt).await;
        assert_eq!(m["decisionSource"], "attempts_listing", "attempt {}", i + 1);
        assert_eq!(
            m["decision"]["status"], *status,
            "the status the listing gives"
        );
        assert_eq!(m["attemptId"], *attempt);
        assert_eq!(m["files"].as_array().unwrap().len(), 2);
    }
    let latest = only_manifest(&h, RESUBMITTED_SESSION_ID, RESUBMITTED_LATEST_ATTEMPT_ID).await;
    assert_eq!(latest["decisionSource"], "attempts_listing");
    assert_eq!(latest["decision"]["status"], "submitted");
    let latest_ids: Vec<&str> = latest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["mediaId"].as_str().unwrap())
        .collect();
    for m in resubmitted.latest_media.iter().chain([&resubmitted.nfc]) {
        assert!(latest_ids.contains(&m.id.as_str()), "{} archived", m.id);
    }
    // The decided attempts still hold exactly their one manifest.
    only_manifest(&h, THREE, THREE_ATTEMPTS[2].0).await;
    only_manifest(&h, RESUBMITTED_SESSION_ID, RESUBMITTED_DECIDED_ATTEMPT_ID).await;

    // 3. The same command again: everything already archived, zero media downloads.
    h.fake.reset_requests();
    h.s3().reset_requests();
    let run = backfill(&h, &input, &["--all-attempts", "--json"], &[]).await;
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(
        counts(
            &doc,
            &[
                "archived",
                "alreadyArchived",
                "pending",
                "attemptsArchived",
                "attemptsAlreadyArchived",
                "filesStored"
            ]
        ),
        [0, 3, 1, 0, 3, 0],
        "{doc:#}"
    );
    assert_eq!(h.media_downloads(), 0, "a rerun downloads nothing");
    assert!(
        h.s3().requests().iter().all(|r| !r.is_object_write()),
        "a rerun writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_report_lists_failed_and_invalid_sessions_and_exits_1() {
    let h = Harness::start().await;
    decided_session(&h.fake, "good-session", 2, None);
    h.fake.set_session_decision(PENDING, PENDING_DECISION);
    // "unknown-session" has no decision endpoint: the fake answers 404.
    let input =
        "good-session\nunknown-session\npending-session\nbad id\n\"quoted\"\ngood-session\n";
    let run = backfill(&h, input, &["--json", "--concurrency", "2"], &[]).await;
    run.assert_code(1);
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exitCode"], 1);
    assert_eq!(doc["interrupted"], false);
    assert_eq!(doc["dryRun"], false);
    assert_eq!(doc["bucket"], BUCKET);
    assert_eq!(doc["prefix"], PREFIX);
    assert_eq!(
        counts(
            &doc,
            &[
                "sessionsRead",
                "distinct",
                "duplicates",
                "invalid",
                "archived",
                "alreadyArchived",
                "pending",
                "failed",
                "interrupted",
                "filesStored",
                "filesReused"
            ]
        ),
        [6, 3, 1, 2, 1, 0, 1, 1, 0, 2, 0],
        "{doc:#}"
    );
    assert!(doc["summary"]["bytes"].as_u64().unwrap() > 0);
    assert!(doc["summary"]["elapsedSeconds"].as_f64().is_some());
    assert!(doc["summary"]["sessionsPerSecond"].as_f64().is_some());
    let failed = doc["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["sessionId"], "unknown-session");
    assert!(!failed[0]["code"].as_str().unwrap().is_empty());
    assert!(
        failed[0]["message"].as_str().unwrap().contains("404"),
        "{doc:#}"
    );
    let invalid = doc["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 2);
    assert_eq!(invalid[0]["line"], 4);
    assert_eq!(invalid[0]["value"], "bad id");
    assert_eq!(invalid[1]["line"], 5);
    assert_eq!(invalid[1]["value"], "\\\"quoted\\\"", "escaped");
    assert!(
        invalid[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a session id")
    );

    // The same in the human output: the failed session with its reason, and exit 1.
    let run = backfill(&h, input, &[], &[]).await;
    run.assert_code(1);
    assert_eq!(run.row("already archived"), "1");
    assert!(run.stdout.contains("Failed sessions (1)"), "{}", run.stdout);
    assert!(run.stdout.contains("  unknown-session  "), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAILED: 1 session failed"),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------
// Input formats and usage errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_headers_are_found_or_refused_with_exit_2() {
    let h = Harness::start().await;
    decided_session(&h.fake, "csv-session-1", 1, None);
    decided_session(&h.fake, "csv-session-2", 1, None);

    let csv = "email,Session ID,note\n\
               a@example.com,csv-session-1,\"first, with a comma\"\n\
               \"b@example.com\",\"csv-session-2\",\"say \"\"hi\"\"\"\n";
    let run = backfill(&h, csv, &["--json"], &[]).await;
    run.assert_code(0);
    assert_eq!(
        counts(&run.json(), &["sessionsRead", "archived", "invalid"]),
        [2, 2, 0]
    );
    only_manifest(&h, "csv-session-1", "csv-session-1-a").await;
    only_manifest(&h, "csv-session-2", "csv-session-2-a").await;

    // A file, and --column naming a column no rule would pick.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.csv");
    std::fs::write(&path, "ref;x,Veriff Ref\nq,csv-session-1\n").unwrap();
    let path = path.to_str().unwrap();
    let mut child = command(
        &h,
        &["--sessions", path, "--column", "veriff ref", "--json"],
        &[],
    )
    .spawn()
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().await.unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(counts(&doc, &["alreadyArchived"]), [1]);

    for (input, args, expected) in [
        (
            "session_id,verification_id\nx,y\n",
            &[][..],
            "several columns",
        ),
        ("email,name\nx,y\n", &[][..], "no session id column"),
        (
            "email,name\nx,y\n",
            &["--column", "session"][..],
            "no such column",
        ),
        ("email,\"open\nx\n", &[][..], "CSV header"),
    ] {
        let run = backfill(&h, input, args, &[]).await;
        run.assert_code(2);
        assert!(
            run.stderr.contains(expected),
            "{expected:?} in {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "nothing on stdout for a usage error");
    }
    let run = backfill(&h, "email,name\nx,y\n", &[], &[]).await;
    assert!(
        run.stderr.contains("\"email\", \"name\""),
        "headers listed: {}",
        run.stderr
    );

    // Configuration errors name the variable, and nothing is requested.
    h.fake.reset_requests();
    let mut cmd = command(&h, &["--sessions", "-"], &[]);
    cmd.env_remove("VERIFF_API_KEY");
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VERIFF_API_KEY"));
    let run = backfill(&h, "x\n", &["--rate", "0"], &[]).await;
    run.assert_code(2);
    let run = backfill(&h, "x\n", &["--prefix", "../up"], &[]).await;
    run.assert_code(2);
    assert!(run.stderr.contains("ARCHIVE_PREFIX"), "{}", run.stderr);
    assert!(
        h.fake.requests().is_empty(),
        "no Veriff request on a usage error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_looks_up_and_writes_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1_000_000);
    resubmitted_scenario(&h.fake);
    three_attempts(&h.fake);
    h.fake.set_session_decision(PENDING, PENDING_DECISION);
    let input = format!("{DEMO_SESSION_ID}\n{RESUBMITTED_SESSION_ID}\n{THREE}\n{PENDING}\n");
    h.s3().reset_requests();

    let run = backfill(&h, &input, &["--dry-run", "--all-attempts"], &[]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("OK (dry run): nothing was written."),
        "{}",
        run.stdout
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(THREE))
        .unwrap_or_else(|| panic!("a line for {THREE}:\n{}", run.stdout));
    assert!(
        line.contains("three-attempt-1 (declined, from the attempts listing): 2 files"),
        "{line}"
    );
    assert!(
        run.stdout.contains(&format!("{PENDING}  pending")),
        "{}",
        run.stdout
    );
    assert_eq!(run.row("to archive"), "3");
    assert_eq!(run.row("other attempts to archive"), "3");

    let run = backfill(&h, &input, &["--dry-run", "--json"], &[]).await;
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["dryRun"], true);
    // The demo decision: 9 images select to 7 (best per context) plus the NFC file, the
    // resubmitted decided attempt 3 images, the three-attempt session's decided attempt 2.
    assert_eq!(
        counts(&doc, &["archived", "pending", "filesReused"]),
        [3, 1, 0],
        "{doc:#}"
    );
    assert!(doc["summary"]["filesStored"].as_u64().unwrap() >= 5);
    assert!(doc["summary"]["bytes"].as_u64().unwrap() > 0);

    assert_eq!(h.media_downloads(), 0, "a dry run downloads nothing");
    let writes: Vec<_> = h
        .s3()
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .collect();
    assert!(writes.is_empty(), "a dry run writes nothing: {writes:#?}");
    assert!(h.keys().await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Interruption, 429 storms, the rate cap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_leaves_no_open_upload_and_a_rerun_completes_the_archive() {
    const SESSIONS: usize = 24;
    // Over one 5 MiB part: every video is a multipart upload.
    const VIDEO: u64 = 6 * 1024 * 1024 + 17;
    let env = [("ARCHIVE_VIDEOS", "true")];
    let h = Harness::start().await;
    let ids: Vec<String> = (0..SESSIONS)
        .map(|i| format!("int-session-{i:02}"))
        .collect();
    for id in &ids {
        decided_session(&h.fake, id, 1, Some(VIDEO));
    }
    h.fake.set_latency(Duration::from_millis(150));
    let input = ids.join("\n") + "\n";

    let mut child = command(&h, &["--sessions", "-", "--concurrency", "4"], &env)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    // Mid-way: a multipart upload under way, far from all sessions done.
    let started = tokio::time::Instant::now();
    let uploads_started = |h: &Harness| {
        h.s3()
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.has_query_param("uploads"))
    };
    while h.media_downloads() < 6 || !uploads_started(&h) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run makes progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("stops promptly after Ctrl-C")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "exit 130\n{stdout}\n{stderr}");
    assert!(stdout.contains("INTERRUPTED"), "{stdout}");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    let interrupted: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("interrupted"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("an interrupted row: {stdout}"));
    assert!(interrupted >= 1, "sessions were in flight: {stdout}");

    // No multipart upload left open: every one started was completed or aborted.
    let uploads = h.multipart_uploads();
    assert!(
        uploads.started >= 1 && uploads.aborted >= 1,
        "the interruption came while videos were being copied: {uploads:?}"
    );
    assert_eq!(
        uploads.open(),
        0,
        "each multipart upload completed or aborted"
    );
    // Every manifest written lists files that are all there; an unfinished session has no
    // manifest.
    let mut done_before = 0;
    for id in &ids {
        let all = manifests(&h, id, &format!("{id}-a")).await;
        if let Some(m) = all.first() {
            h.assert_manifest_consistent(m).await;
            done_before += 1;
        }
    }
    assert!(
        done_before < SESSIONS,
        "interrupted mid-way ({done_before} done)"
    );

    // The same command again finishes the job; what was done costs no download.
    h.fake.set_latency(Duration::ZERO);
    h.fake.reset_requests();
    let run = backfill(&h, &input, &["--json", "--concurrency", "4"], &env).await;
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(
        counts(&doc, &["archived", "alreadyArchived", "failed"]),
        [(SESSIONS - done_before) as u64, done_before as u64, 0],
        "{doc:#}"
    );
    assert!(
        h.media_downloads() <= 2 * (SESSIONS - done_before),
        "only unfinished sessions are downloaded"
    );
    for id in &ids {
        let m = only_manifest(&h, id, &format!("{id}-a")).await;
        assert_eq!(m["files"].as_array().unwrap().len(), 2, "image and video");
    }
    assert_eq!(h.multipart_uploads().open(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_slows_the_run_down_without_failing_sessions() {
    let h = Harness::start().await;
    let ids: Vec<String> = (0..4).map(|i| format!("storm-session-{i}")).collect();
    for id in &ids {
        decided_session(&h.fake, id, 2, None);
    }
    h.fake.inject(Fault::new(
        "*",
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        10,
    ));
    let started = std::time::Instant::now();
    let run = backfill(
        &h,
        &(ids.join("\n") + "\n"),
        &["--json", "--rate", "1000"],
        &[("VERIFF_MAX_ATTEMPTS", "10")],
    )
    .await;
    let elapsed = started.elapsed();
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(counts(&doc, &["archived", "failed"]), [4, 0], "{doc:#}");
    let throttled = h.fake.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 10, "the storm was served");
    assert!(
        elapsed >= Duration::from_secs(1),
        "Retry-After was honoured: {elapsed:?}"
    );
    for id in &ids {
        only_manifest(&h, id, &format!("{id}-a")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_caps_veriff_requests_across_sessions() {
    let h = Harness::start().await;
    let ids: Vec<String> = (0..12).map(|i| format!("rate-session-{i:02}")).collect();
    for id in &ids {
        h.fake.set_session_decision(id, PENDING_DECISION);
    }
    // 12 requests (one decision lookup each) at 20 per second: the last at least 550 ms
    // after the first, whatever the concurrency.
    let run = backfill(
        &h,
        &(ids.join("\n") + "\n"),
        &["--json", "--rate", "20", "--concurrency", "12"],
        &[],
    )
    .await;
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(counts(&doc, &["pending"]), [12]);
    let elapsed = doc["summary"]["elapsedSeconds"].as_f64().unwrap();
    assert!(elapsed >= 0.5, "12 requests at 20/s took {elapsed} s");
    assert_eq!(h.fake.requests().len(), 12);
}

// ---------------------------------------------------------------------------------------
// --full-auto: the Essential plan, whose sessions have no decision endpoint answer

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_auto_sessions_are_archived_from_the_attempts_listing() {
    let h = Harness::start().await;
    let essential = archiver_devkit::essential_scenario(&h.fake);
    three_attempts(&h.fake);
    // A session whose newest attempt is still being processed: pending, not an error.
    let waiting = "essential-waiting";
    h.fake.set_session_attempts(
        waiting,
        json!({"status": "success", "verifications": [
            {"id": "essential-waiting-a", "status": "submitted", "createdTime": "2025-03-04T10:00:00.000Z"}
        ]})
        .to_string(),
    );
    let input = format!("{}\n{THREE}\n{waiting}\n", essential.session_id);

    // Without --full-auto the decision endpoint has nothing for an Essential session (404).
    let run = backfill(&h, &format!("{}\n", essential.session_id), &[], &[]).await;
    run.assert_code(1);

    h.fake.reset_requests();
    let run = backfill(&h, &input, &["--full-auto", "--json"], &[]).await;
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(
        counts(&doc, &["archived", "pending", "failed"]),
        [2, 1, 0],
        "{doc:#}"
    );
    assert!(
        h.fake
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/decision")),
        "--full-auto never asks the decision endpoint"
    );
    let manifest = only_manifest(&h, &essential.session_id, &essential.attempt_id).await;
    assert_eq!(manifest["decisionSource"], "attempts_listing");
    assert_eq!(manifest["decision"]["webhook"], "fullauto");
    assert_eq!(manifest["decision"]["status"], "approved");
    assert!(manifest["decision"]["decisionTime"].is_null());
    assert!(manifest["decision"].get("decisionScore").is_none());
    assert_eq!(manifest["files"].as_array().unwrap().len(), 4);
    // The newest attempt of the three is the decided one; earlier ones need --all-attempts.
    let three = only_manifest(&h, THREE, THREE_ATTEMPTS[2].0).await;
    assert_eq!(three["decision"]["webhook"], "fullauto");
    assert!(manifests(&h, THREE, THREE_ATTEMPTS[0].0).await.is_empty());
    assert!(h.keys().await.iter().all(|k| !k.contains(waiting)));

    // With --all-attempts, every earlier attempt too, recorded as Full Auto decisions; the
    // decided attempt is already archived.
    let run = backfill(
        &h,
        &input,
        &["--full-auto", "--all-attempts", "--json"],
        &[],
    )
    .await;
    run.assert_code(0);
    for (attempt, status) in &THREE_ATTEMPTS[..2] {
        let manifest = only_manifest(&h, THREE, attempt).await;
        assert_eq!(manifest["decision"]["webhook"], "fullauto");
        assert_eq!(manifest["decision"]["status"], *status);
        assert_eq!(manifest["decisionSource"], "attempts_listing");
    }
    // A Full Auto webhook arriving later for the same attempt is a decision of its own,
    // with its time and score: a second manifest, every file reused.
    let downloads = h.media_downloads();
    let reply = h.deliver_body(&essential.approved_webhook).await;
    assert_eq!(reply.body["status"], "archived", "{}", reply.body);
    assert_eq!(reply.body["reused"], 4);
    assert_eq!(h.media_downloads(), downloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_quits_at_once_without_waiting_for_the_aborts() {
    const VIDEO: u64 = 6 * 1024 * 1024 + 17;
    let env = [("ARCHIVE_VIDEOS", "true")];
    let h = Harness::start().await;
    let ids: Vec<String> = (0..8).map(|i| format!("twice-{i:02}")).collect();
    for id in &ids {
        decided_session(&h.fake, id, 1, Some(VIDEO));
    }
    h.fake.set_latency(Duration::from_millis(150));
    // Aborting an upload takes 60 s: after the first Ctrl-C the run waits on it.
    h.s3().inject(archiver_devkit::S3Fault::new(
        Some("DELETE"),
        archiver_devkit::S3FaultKind::Latency(Duration::from_secs(60)),
        100,
    ));
    let mut child = command(&h, &["--sessions", "-", "--concurrency", "4"], &env)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all((ids.join("\n") + "\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let started = tokio::time::Instant::now();
    let has = |h: &Harness, method: &str, param: &str| {
        h.s3()
            .requests()
            .iter()
            .any(|r| r.method == method && r.has_query_param(param))
    };
    while !has(&h, "POST", "uploads") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "an upload starts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("running").to_string();
    let interrupt = || {
        assert!(
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    interrupt();
    // The first Ctrl-C aborts the uploads in flight: wait until an abort is stalled at S3.
    while !has(&h, "DELETE", "uploadId") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "an abort is sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    interrupt();
    let out = tokio::time::timeout(Duration::from_secs(45), child.wait_with_output())
        .await
        .expect("the second Ctrl-C quits before the 60 s abort ends")
        .unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("INTERRUPTED"),
        "no summary: it quit at once\n{stdout}"
    );
    assert!(
        h.s3()
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.status == 0),
        "an abort was still unanswered when it quit"
    );
}
