//! The copy path's memory budget and overlap (`COPY_MEMORY_MIB`, `COPY_CONCURRENCY`),
//! observed from the Veriff fake's side against a real S3 server:
//! - small images all download at once (the connection cap, not a file count, limits them);
//! - the byte budget bounds how many files are in flight, whatever `COPY_CONCURRENCY`;
//! - a budget of a single part still copies large files (no copy waits on another forever);
//! - the next part is read while the current one uploads, and no further (two part buffers
//!   per file at most);
//! - two videos under a one-part budget never hold a part each beyond it.

use std::time::Duration;

use crate::support::*;
use archiver_devkit::{S3Fault, S3FaultKind};
use serde_json::json;

/// These tests move tens of MiB through a debug build: on a CI machine whose cores are
/// busy, the harness's 2 s Veriff timeout can pass between two reads of the fake's
/// generated stream ("media download: timed out"). Timeouts are not what they test.
const VERIFF_TIMEOUT_MS: &str = "VERIFF_TIMEOUT_MS";
const PATIENT: &str = "20000";

const SESSION: &str = "copy-path-session";
const ATTEMPT: &str = "copy-path-attempt";

/// A listing of `images` images of `image_size` bytes, each its own context (so all are
/// chosen), and optionally videos; registers their content.
fn listing(h: &Harness, images: usize, image_size: u64, videos: &[u64]) {
    let image_items: Vec<_> = (0..images)
        .map(|i| {
            json!({"id": format!("cp-image-{i}"), "name": format!("context-{i}"), "context": format!("context-{i}"),
                   "timestamp": null, "size": image_size, "mimetype": "image/jpeg",
                   "url": "https://example.com/x", "sessionId": SESSION})
        })
        .collect();
    let video_items: Vec<_> = videos
        .iter()
        .enumerate()
        .map(|(i, size)| {
            json!({"id": format!("cp-video-{i}"), "name": format!("video-{i}"), "context": format!("video-{i}"),
                   "timestamp": null, "size": size, "mimetype": "video/webm", "duration": 1,
                   "url": "https://example.com/x", "sessionId": SESSION})
        })
        .collect();
    let document =
        json!({"status": "success", "images": image_items, "videos": video_items}).to_string();
    serve_metadata(&h.fake, &document, Some(SESSION), Some(ATTEMPT));
}

async fn archive(h: &Harness) -> serde_json::Value {
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.body["status"], "archived", "{:?}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.expect("manifest");
    h.assert_manifest_consistent(&manifest).await;
    manifest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_images_all_download_at_once() {
    let h = Harness::with(&[]).await;
    listing(&h, 16, 200_000, &[]);
    // 200 KB at 1 MB/s: each download lasts 200 ms, so concurrent ones overlap.
    h.fake.set_download_bandwidth(Some(1_000_000));
    let manifest = archive(&h).await;
    assert_eq!(manifest["files"].as_array().unwrap().len(), 16);
    // Every download may start at once: COPY_CONCURRENCY 16 (the default) caps them, the
    // 3.2 MB are well inside the 64 MiB budget. A busy machine may start the last ones
    // after the first have finished, so the peak is bounded above exactly and below by
    // more than any file count under the cap (4, the next test's) could give.
    let peak = h.fake.max_media_in_flight();
    assert!((9..=16).contains(&peak), "{peak} downloads at once");

    // COPY_CONCURRENCY is the connection cap.
    let h = Harness::with(&[("COPY_CONCURRENCY", "4")]).await;
    listing(&h, 16, 200_000, &[]);
    h.fake.set_download_bandwidth(Some(1_000_000));
    archive(&h).await;
    let peak = h.fake.max_media_in_flight();
    assert!(
        (2..=4).contains(&peak),
        "{peak} downloads at once under a cap of 4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_budget_bounds_the_files_in_flight() {
    // 16 images of 1 MiB with a 5 MiB budget: at most 5 buffers, so at most 5 downloads.
    let h = Harness::with(&[("COPY_MEMORY_MIB", "5"), ("COPY_CONCURRENCY", "16")]).await;
    listing(&h, 16, 1024 * 1024, &[]);
    h.fake.set_download_bandwidth(Some(10_000_000));
    let manifest = archive(&h).await;
    assert_eq!(manifest["files"].as_array().unwrap().len(), 16);
    let peak = h.fake.max_media_in_flight();
    assert!(
        (2..=5).contains(&peak),
        "{peak} downloads at once under a 5 MiB budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_of_one_part_still_copies_large_files() {
    // Two videos of three parts each and images, with room for one 5 MiB part in total:
    // every copy waits its turn, none forever.
    let h = Harness::with(&[
        ("COPY_MEMORY_MIB", "5"),
        ("PART_SIZE_MIB", "5"),
        ("ARCHIVE_VIDEOS", "true"),
        (VERIFF_TIMEOUT_MS, PATIENT),
    ])
    .await;
    listing(&h, 4, 300_000, &[12 * 1024 * 1024, 11 * 1024 * 1024]);
    let manifest = tokio::time::timeout(Duration::from_secs(60), archive(&h))
        .await
        .expect("no deadlock");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 6);
    // The small images may share the budget; a video's part takes all of it.
    assert!(h.fake.max_media_in_flight() <= 4);
}

/// Stalls the first UploadPart for `stall`, delivers, and samples the bytes the fake has
/// sent every 50 ms while the stall lasts: (the delivery's reply, the least and the most
/// bytes sent during the stall's last half).
async fn during_a_stalled_upload(h: &Harness, stall: Duration) -> (Reply, u64) {
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Latency(stall), 1));
    let body = decision(SESSION, ATTEMPT, "approved");
    let finished = std::sync::atomic::AtomicBool::new(false);
    let delivery = async {
        let reply = h.deliver_body(&body).await;
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        reply
    };
    let sampled = async {
        // Wait for the first UploadPart to reach S3, then sample until the stall ends.
        loop {
            let uploading = h
                .s3()
                .requests()
                .iter()
                .any(|r| r.method == "PUT" && r.query.contains("partNumber=1"));
            if uploading || finished.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = tokio::time::Instant::now();
        let mut most = 0;
        while started.elapsed() < stall - Duration::from_millis(500)
            && !finished.load(std::sync::atomic::Ordering::SeqCst)
        {
            most = most.max(h.fake.media_bytes_sent());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        most
    };
    tokio::join!(delivery, sampled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_part_is_read_while_the_current_one_uploads_and_no_further() {
    // A 64 MiB video in 16 MiB parts; the first UploadPart takes 10 s. Meanwhile the copy
    // reads the second part (the overlap), and stops there: a file holds at most two part
    // buffers, the one uploading and the next. Were the writer to stop waiting for the
    // upload in flight, all four parts would be read under the 64 MiB budget.
    let h = Harness::with(&[
        ("PART_SIZE_MIB", "16"),
        ("COPY_MEMORY_MIB", "64"),
        ("ARCHIVE_VIDEOS", "true"),
        (VERIFF_TIMEOUT_MS, PATIENT),
    ])
    .await;
    listing(&h, 0, 0, &[64 * 1024 * 1024]);
    let part = 16 * 1024 * 1024_u64;
    let (reply, most) = during_a_stalled_upload(&h, Duration::from_secs(10)).await;
    eprintln!("one video: {most} bytes read during the stall (parts of {part})");
    assert_eq!(reply.body["status"], "archived", "{:?}", reply.body);
    assert!(
        most >= 2 * part,
        "while part 1 uploaded, only {most} bytes were read (two parts are {})",
        2 * part
    );
    // What the fake has sent includes what the sockets buffer (about 7 MB per stream on
    // loopback here), so the bound is "no third part", not "exactly two".
    assert!(
        most < 3 * part,
        "while part 1 uploaded, {most} bytes were read: a third part buffer"
    );
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_videos_never_hold_more_part_buffers_than_the_budget() {
    // Two 48 MiB videos in 16 MiB parts under a budget of one part: while the first part
    // uploads (stalled 10 s), neither video may read another part: the bytes read stay
    // within one part (and what the sockets buffer).
    let h = Harness::with(&[
        ("PART_SIZE_MIB", "16"),
        ("COPY_MEMORY_MIB", "16"),
        ("ARCHIVE_VIDEOS", "true"),
        (VERIFF_TIMEOUT_MS, "60000"),
    ])
    .await;
    listing(&h, 0, 0, &[48 * 1024 * 1024, 48 * 1024 * 1024]);
    let part = 16 * 1024 * 1024_u64;
    let (reply, most) = during_a_stalled_upload(&h, Duration::from_secs(10)).await;
    eprintln!("two videos: {most} bytes read during the stall (parts of {part})");
    assert_eq!(reply.body["status"], "archived", "{:?}", reply.body);
    assert!(most >= part, "the first part was read: {most}");
    // Sockets buffer some MB per stream (about 6 MB for both here): the bound is "no
    // second part buffer", which a video holding a part beside the uploading one breaks.
    assert!(
        most < 2 * part,
        "{most} bytes read while one part uploaded under a one-part budget: a second part buffer"
    );
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    h.assert_manifest_consistent(&manifest).await;
}
