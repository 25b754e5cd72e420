//! Fault injection: every fault either heals within the invocation (200) or answers non-200
//! with no manifest; a redelivery after the fault clears completes the archive; a manifest
//! only ever lists files stored with the listed hash. docs/testing.md "Reliability" tabulates these.

use std::time::Duration;

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{
    DemoMediaKind, DemoScenario, Fault, FaultKind, MediaContent, S3Fault, S3FaultKind,
    demo_scenario, deterministic_bytes,
};

const SESSION: &str = DEMO_SESSION_ID;
const ATTEMPT: &str = DEMO_ATTEMPT_ID;

fn approved() -> String {
    decision(SESSION, ATTEMPT, "approved")
}

fn metadata_path() -> String {
    format!("/v1/sessions/{SESSION}/media")
}

fn media_path(scenario: &DemoScenario, kind: DemoMediaKind) -> String {
    format!(
        "/v1/media/{}",
        scenario.media.iter().find(|m| m.kind == kind).unwrap().id
    )
}

/// Asserts the failed state (no manifest), clears every fault, redelivers and checks the
/// archive is complete and consistent.
async fn assert_redelivery_completes(h: &Harness) {
    assert!(
        h.manifest(SESSION, ATTEMPT).await.is_none(),
        "no manifest after a failure"
    );
    h.fake.clear_faults();
    if let Some(s3) = &h.s3 {
        s3.clear_faults();
    }
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "redelivery: {}", reply.body);
    let manifest = h
        .manifest(SESSION, ATTEMPT)
        .await
        .expect("manifest after redelivery");
    h.assert_manifest_consistent(&manifest).await;
}

// ---- Veriff faults -------------------------------------------------------------------

#[tokio::test]
async fn slow_veriff_responses_past_the_client_timeout_are_retried() {
    let h = Harness::with(&[("VERIFF_TIMEOUT_MS", "300"), ("ARCHIVE_VIDEOS", "true")]).await;
    let scenario = demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        metadata_path(),
        FaultKind::Latency(Duration::from_secs(2)),
        1,
    ));
    h.fake.inject(Fault::new(
        media_path(&scenario, DemoMediaKind::Video),
        FaultKind::Latency(Duration::from_secs(2)),
        1,
    ));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(h.fake.count(&metadata_path()), 2);
    assert_eq!(
        h.fake.count(&media_path(&scenario, DemoMediaKind::Video)),
        2
    );

    // Always slow: 502 after the configured attempts, then a redelivery heals.
    let h = Harness::with(&[("VERIFF_TIMEOUT_MS", "300"), ("VERIFF_MAX_ATTEMPTS", "2")]).await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        metadata_path(),
        FaultKind::Latency(Duration::from_secs(2)),
        10,
    ));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (502, Some("veriff_unavailable")),
        "{}",
        reply.body
    );
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    assert_redelivery_completes(&h).await;
}

#[tokio::test]
async fn connection_resets_mid_download_fail_cleanly_then_heal() {
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("VERIFF_MAX_ATTEMPTS", "2")]).await;
    let scenario = demo_scenario(&h.fake, 12 * 1024 * 1024);
    h.fake.inject(Fault::new(
        media_path(&scenario, DemoMediaKind::Video),
        FaultKind::ResetMidBody {
            after: 6 * 1024 * 1024,
        },
        5,
    ));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    h.assert_started_uploads_were_aborted("a reset mid-download");
    assert_redelivery_completes(&h).await;
}

#[tokio::test]
async fn a_429_storm_with_retry_after_is_waited_out_or_reported() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        metadata_path(),
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        3,
    ));
    let started = std::time::Instant::now();
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "three Retry-After waits honoured"
    );

    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "2")]).await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        "*",
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        50,
    ));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(reply.body["message"].as_str().unwrap().contains("429"));
    assert_redelivery_completes(&h).await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_fails_fast_instead_of_sleeping() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        metadata_path(),
        FaultKind::TooManyRequests {
            retry_after_secs: 120,
        },
        1,
    ));
    let started = std::time::Instant::now();
    let event =
        archiver_devkit::signed_webhook_event(approved().as_bytes(), SECRET, API_KEY, false);
    let reply = h.deliver_within(event, Duration::from_secs(20)).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not sleep into the deadline"
    );
}

#[tokio::test]
async fn a_5xx_burst_is_absorbed_by_backoff() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    for status in [500, 502, 503] {
        h.fake.inject(Fault::new("*", FaultKind::Status(status), 1));
    }
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
}

#[tokio::test]
async fn garbage_or_oversized_metadata_is_an_upstream_failure() {
    for (name, body) in [
        (
            "html",
            bytes::Bytes::from_static(b"<html>502 Bad Gateway</html>"),
        ),
        (
            "truncated json",
            bytes::Bytes::from_static(br#"{"status":"success","images":[{"id":"#),
        ),
        (
            "wrong shape",
            bytes::Bytes::from_static(br#"{"status":"success","images":{"id":"x"}}"#),
        ),
        (
            "status fail",
            bytes::Bytes::from_static(br#"{"status":"fail","code":"1101"}"#),
        ),
        (
            "oversized",
            bytes::Bytes::from(format!(
                "{{\"status\":\"success\",\"pad\":\"{}\"}}",
                "x".repeat(5 * 1024 * 1024)
            )),
        ),
    ] {
        let h = Harness::start().await;
        demo_scenario(&h.fake, 1000);
        h.fake
            .inject(Fault::new(metadata_path(), FaultKind::Body(body), 1));
        let reply = h.deliver_body(&approved()).await;
        assert_eq!(reply.status, 502, "{name}: {}", reply.body);
        assert_eq!(h.media_downloads(), 0, "{name}: nothing downloaded");
        assert_redelivery_completes(&h).await;
    }
}

#[tokio::test]
async fn metadata_sizes_that_lie_in_either_direction_are_integrity_failures() {
    for (listed, served) in [(999u64, 1000usize), (1001, 1000), (0, 1000)] {
        let h = Harness::start().await;
        h.fake.set_media(
            "m1",
            MediaContent::bytes(deterministic_bytes(1, served), "image/jpeg"),
        );
        h.set_listing(format!(r#"{{"status":"success","images":[{{"id":"m1","context":"face","size":{listed},"mimetype":"image/jpeg"}}]}}"#));
        let reply = h.deliver_body(&approved()).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (502, Some("integrity_check_failed")),
            "{listed}: {}",
            reply.body
        );
        assert!(h.keys().await.is_empty(), "nothing stored");
        assert_eq!(
            h.fake.count("/v1/media/m1"),
            1,
            "integrity failures are not retried in the invocation"
        );
    }
}

#[tokio::test]
async fn the_maximum_file_size_holds_even_when_the_metadata_omits_or_lies_about_size() {
    let h = Harness::with(&[("MAX_FILE_MIB", "1")]).await;
    let big = 3 * 1024 * 1024;
    h.fake
        .set_media("big", MediaContent::generated(big, 9, "image/png"));
    // No size at all: the stream is cut at the maximum.
    h.set_listing(
        r#"{"status":"success","images":[{"id":"big","context":"face","mimetype":"image/png"}]}"#,
    );
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (502, Some("integrity_check_failed")),
        "{}",
        reply.body
    );
    assert!(h.keys().await.is_empty());
    // An honest size above the maximum: skipped and listed, not downloaded.
    h.set_listing(format!(r#"{{"status":"success","images":[{{"id":"big","context":"face","size":{big},"mimetype":"image/png"}}]}}"#));
    h.fake.reset_requests();
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    assert_eq!(manifest["skipped"][0]["reason"], "too_large");
    assert_eq!(h.media_downloads(), 0);
}

#[tokio::test]
async fn an_unknown_media_id_is_a_502_naming_veriffs_404() {
    let h = Harness::start().await;
    h.set_listing(r#"{"status":"success","images":[{"id":"gone","context":"face","size":10,"mimetype":"image/jpeg"}]}"#);
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        reply.body["message"].as_str().unwrap().contains("HTTP 404"),
        "{}",
        reply.body
    );
    assert_eq!(h.fake.count("/v1/media/gone"), 1, "a 404 is not retried");
    assert!(h.keys().await.is_empty());
}

// ---- S3 faults -----------------------------------------------------------------------

#[tokio::test]
async fn s3_throttling_and_5xx_bursts_are_retried_by_the_sdk() {
    // One attempt per file copy: the archiver's own whole-file retry is off, so only the
    // SDK can have retried.
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "1")]).await;
    demo_scenario(&h.fake, 1000);
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(503), 2));
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(500), 1));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    // Each file was downloaded once: no copy was started over.
    let files = manifest["files"].as_array().unwrap().len();
    assert_eq!(h.media_downloads(), files, "one download per file");
    // The three refused PUTs were each sent again, to the same key, and stored.
    let puts: Vec<_> = h
        .s3()
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    let refused: Vec<_> = puts.iter().filter(|r| r.status >= 500).collect();
    assert_eq!(refused.len(), 3, "{puts:#?}");
    for failed in refused {
        assert!(
            puts.iter()
                .any(|r| r.path == failed.path && r.status == 200),
            "{} was not retried: {puts:#?}",
            failed.path
        );
    }
}

#[tokio::test]
async fn a_persistent_s3_failure_answers_503_with_no_manifest() {
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "2")]).await;
    demo_scenario(&h.fake, 1000);
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(500), 1000));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{}",
        reply.body
    );
    assert_redelivery_completes(&h).await;
}

#[tokio::test]
async fn slow_s3_writes_only_slow_the_archive_down() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    h.s3().inject(S3Fault::new(
        Some("PUT"),
        S3FaultKind::Latency(Duration::from_millis(300)),
        20,
    ));
    let reply = h.deliver_body(&approved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
}

#[tokio::test]
async fn the_s3_server_stopped_mid_copy_fails_cleanly_and_a_redelivery_completes() {
    let mut h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("VERIFF_MAX_ATTEMPTS", "2")]).await;
    demo_scenario(&h.fake, 12 * 1024 * 1024);
    h.s3().inject(S3Fault::new(
        Some("PUT"),
        S3FaultKind::Latency(Duration::from_millis(200)),
        100,
    ));
    let s3 = h.s3.take().unwrap();
    let body = approved();
    let (reply, ()) = tokio::join!(h.deliver_body(&body), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s3.shutdown().await;
    });
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (503, Some("storage_unavailable")),
        "{}",
        reply.body
    );
    h.restart_s3().await;
    assert_redelivery_completes(&h).await;
}

#[tokio::test]
async fn the_s3_server_restarted_mid_copy_never_leaves_an_inconsistent_manifest() {
    let mut h = Harness::with(&[("ARCHIVE_VIDEOS", "true")]).await;
    demo_scenario(&h.fake, 12 * 1024 * 1024);
    h.s3().inject(S3Fault::new(
        Some("PUT"),
        S3FaultKind::Latency(Duration::from_millis(100)),
        100,
    ));
    let s3 = h.s3.take().unwrap();
    let root = h.bucket.root.clone();
    let addr = s3.addr();
    let body = approved();
    let (reply, restarted) = tokio::join!(h.deliver_body(&body), async move {
        tokio::time::sleep(Duration::from_millis(250)).await;
        s3.shutdown().await;
        archiver_devkit::LocalS3::start_on(&root, S3_ACCESS_KEY, S3_SECRET_KEY, addr)
            .await
            .unwrap()
    });
    h.s3 = Some(restarted);
    // Healed by retries within the invocation, or failed cleanly: never a partial manifest.
    match reply.status {
        200 => {
            h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
                .await
        }
        503 => assert_redelivery_completes(&h).await,
        other => panic!("unexpected {other}: {}", reply.body),
    }
}

// ---- The Lambda deadline ------------------------------------------------------------------

#[tokio::test]
async fn the_deadline_arriving_mid_multipart_copy_answers_504_and_aborts_uploads() {
    // A second kept back to abort and answer: room for a busy CI machine.
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("DEADLINE_MARGIN_MS", "1000")]).await;
    demo_scenario(&h.fake, 16 * 1024 * 1024);
    h.s3().inject(S3Fault::new(
        Some("PUT"),
        S3FaultKind::Latency(Duration::from_millis(900)),
        100,
    ));
    let event =
        archiver_devkit::signed_webhook_event(approved().as_bytes(), SECRET, API_KEY, false);
    let started = std::time::Instant::now();
    let reply = h.deliver_within(event, Duration::from_millis(3500)).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (504, Some("deadline_exceeded")),
        "{}",
        reply.body
    );
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "answered before the deadline"
    );
    h.s3().clear_faults();
    h.assert_started_uploads_were_aborted("the deadline mid-copy");
    assert_redelivery_completes(&h).await;
}

// ---- Duplicates ----------------------------------------------------------------------------

#[tokio::test]
async fn the_same_webhook_twice_at_once_and_again_later_makes_exactly_one_archive() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = approved();
    let (a, b) = tokio::join!(h.deliver_body(&body), h.deliver_body(&body));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    let statuses = [
        a.body["status"].as_str().unwrap(),
        b.body["status"].as_str().unwrap(),
    ];
    assert!(statuses.contains(&"archived"), "{statuses:?}");
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    let files = manifest["files"].as_array().unwrap().len();
    assert!(h.media_downloads() <= 2 * files);

    // "An hour later": nothing is downloaded and the manifest is untouched.
    h.fake.reset_requests();
    let later = h.deliver_body(&body).await;
    assert_eq!(
        (later.status, later.body["status"].as_str()),
        (200, Some("already_archived"))
    );
    assert!(h.fake.requests().is_empty());
    assert_eq!(h.manifest(SESSION, ATTEMPT).await.unwrap(), manifest);
}
