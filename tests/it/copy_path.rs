//! The copy path's memory budget and overlap (`COPY_MEMORY_MIB`, `COPY_CONCURRENCY`),
//! observed from the Veriff fake's side against a real S3 server:
//! - small images all download at once (the connection cap, not a file count, limits them);
//! - the byte budget bounds how many files are in flight, whatever `COPY_CONCURRENCY`;
//! - a budget of a single part still copies large files (no copy waits on another forever);
//! - the next part is read while the current one uploads.

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
    assert_eq!(
        h.fake.max_media_in_flight(),
        16,
        "COPY_CONCURRENCY 16 (default), 3.2 MB of 64 MiB budget"
    );

    // COPY_CONCURRENCY is the connection cap.
    let h = Harness::with(&[("COPY_CONCURRENCY", "4")]).await;
    listing(&h, 16, 200_000, &[]);
    h.fake.set_download_bandwidth(Some(1_000_000));
    archive(&h).await;
    assert_eq!(h.fake.max_media_in_flight(), 4);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_part_is_read_while_the_current_one_uploads() {
    // A 64 MiB video in 16 MiB parts; the first UploadPart takes 5 s. Meanwhile the copy
    // goes on reading: the second part fills. Without the overlap, reading would stop at
    // the first part (plus what the sockets buffer, well under a part here).
    let h = Harness::with(&[
        ("PART_SIZE_MIB", "16"),
        ("COPY_MEMORY_MIB", "64"),
        ("ARCHIVE_VIDEOS", "true"),
        (VERIFF_TIMEOUT_MS, PATIENT),
    ])
    .await;
    listing(&h, 0, 0, &[64 * 1024 * 1024]);
    let part = 16 * 1024 * 1024_u64;
    h.s3().inject(S3Fault::new(
        Some("PUT"),
        S3FaultKind::Latency(Duration::from_secs(5)),
        1,
    ));
    let body = decision(SESSION, ATTEMPT, "approved");
    let finished = std::sync::atomic::AtomicBool::new(false);
    let delivery = async {
        let reply = h.deliver_body(&body).await;
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        reply
    };
    let sampled = async {
        // Wait for the first UploadPart to reach S3 (or the delivery to end: a failure,
        // reported below), then give the copy 4 s (a debug build on a busy machine reads,
        // hashes and generates 16 MiB well within that).
        loop {
            let uploading = h
                .s3()
                .requests()
                .iter()
                .any(|r| r.method == "PUT" && r.query.contains("partNumber=1"));
            if uploading {
                break;
            }
            if finished.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        Some(h.fake.media_bytes_sent())
    };
    let (reply, sent) = tokio::join!(delivery, sampled);
    assert_eq!(reply.body["status"], "archived", "{:?}", reply.body);
    let sent = sent.expect("the first UploadPart reached S3");
    assert!(
        sent >= 2 * part,
        "while part 1 uploaded, only {sent} bytes were read (two parts are {})",
        2 * part
    );
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
}
