//! Benchmark of veriff-archiver: speed, memory and cold start, printed as plain-text tables.
//!
//! ```text
//! cargo run --release --locked -p archiver-devkit --features bench --bin bench -- [--smoke] [--only N] [--bootstrap PATH]
//! ```
//!
//! Everything runs on loopback against the devkit's Veriff fake (per-request latency,
//! generated media streamed without being held) and its S3 server (s3s-fs), started in this
//! process:
//!
//! 1. End-to-end time of one decision (`App::handle` with a signed Function URL event) with
//!    1, 4, 16 and 64 images of 500 KB, at 0 and 30 ms of latency per Veriff request, with
//!    `COPY_CONCURRENCY` 4 and 1: median of 5 runs, each a fresh session; and 1 image at
//!    30 ms with both media listings (combined mode) against one (`MEDIA_SOURCE=session`).
//! 2. Throughput archiving one 256 MiB video (8 MiB parts) next to a raw loopback baseline:
//!    the same GET streamed into a plain sequential aws-sdk-s3 multipart upload.
//! 3. Peak resident memory (`VmHWM`) of the release `bootstrap` archiving a 16 MiB and a
//!    1 GiB video, run under [`RuntimeApi`] (a Lambda Runtime API on loopback).
//! 4. Cold start: `exec` of the `bootstrap` to its first `GET /runtime/invocation/next`, and
//!    the first (and a second, warm) invocation with a 3-image decision; 20 runs, with the
//!    credentials in environment variables and (with moto_server) read from Secrets
//!    Manager at cold start.
//! 5. Size of the release `bootstrap`.
//! 6. `veriff-archiver verify`: files checked per second by `Auditor::audit` (the library
//!    call the command makes) over an archive of many small decisions, at concurrency 32,
//!    with HeadObject only and with `--deep` (every object downloaded and hashed).
//! 7. `veriff-archiver backfill`: the CLI binary, run as a subprocess on 10,000 decided
//!    sessions (1-2 images of 4 KB each) at 30 ms per Veriff request, `--concurrency 32`,
//!    `--rate 10000` (so the latency, not the cap, bounds it): sessions per second and peak
//!    RSS (`VmHWM` polled), then the same command again (everything already archived).
//!    `--backfill-sessions N` changes the count. s3s-fs walks the whole bucket for every
//!    ListObjectsV2 (one per session), so at thousands of sessions the local S3 server, not
//!    the CLI, bounds the throughput (quadratic in the archive's size).
//!
//! 8. Queue mode: the webhook's answer time for a decision of 16 images of 500 KB, median
//!    of 50 warm invocations of the release bootstrap per mode: direct (archives, then
//!    answers) against queue (one SQS `SendMessage` to moto_server, then answers). Skipped
//!    without moto_server.
//! 12. `find` of one customer among 100,000 sessions' index entries and manifests (s3s-fs),
//!     against listing the archive; and the S3 requests one decision costs with the index on.
//! 13. `retain` of a customer's 20 sessions on moto_server (Object Lock), against a script
//!     that reads and extends one version at a time. Skipped without moto_server.
//!
//! `--smoke` uses tiny sizes and single runs (for CI, so the benchmark cannot rot); its
//! numbers mean nothing. Items 3-5 and 8 need `--bootstrap PATH` (`scripts/bench.sh` builds it).
//! Item 7 runs the `veriff-archiver` binary next to this one (`target/<profile>/`), or
//! `--cli PATH` (`scripts/bench.sh` builds it with `cargo build --bin veriff-archiver`).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use archiver_devkit::runtime_api::RuntimeApi;
use archiver_devkit::{
    FakeConfig, FakeVeriff, LocalS3, MediaContent, decision_webhook, deterministic_bytes,
    hmac_sha256_hex, signed_webhook_event,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use veriff_archiver::ledger::{SealOutcome, SealSettings, Sealer};
use veriff_archiver::store::Store;
use veriff_archiver::{App, Config};

mod customers;

const API_KEY: &str = "bench-api-key";
const SECRET: &str = "bench-shared-secret";
const BUCKET: &str = "veriff-archive";
const PREFIX: &str = "veriff/";
const S3_ACCESS_KEY: &str = "bench-access-key";
const S3_SECRET_KEY: &str = "bench-secret-key";
const MIB: u64 = 1024 * 1024;
const DECISION_TIME: &str = "2025-03-04T10:21:07.412Z";

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------
// Arguments and parameters

struct Args {
    smoke: bool,
    only: Option<u8>,
    bootstrap: Option<PathBuf>,
    cli: Option<PathBuf>,
    /// Item 7's session count, instead of the mode's.
    backfill_sessions: Option<usize>,
}

const USAGE: &str =
    "usage: bench [--smoke] [--only 1-13] [--bootstrap PATH] [--cli PATH] [--backfill-sessions N]";

fn parse_args() -> Res<Args> {
    let mut args = Args {
        smoke: false,
        only: None,
        bootstrap: None,
        cli: None,
        backfill_sessions: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => args.smoke = true,
            "--only" => {
                let n = it.next().and_then(|v| v.parse::<u8>().ok());
                match n {
                    Some(n @ 1..=13) => args.only = Some(n),
                    _ => return Err(format!("--only takes 1-13\n{USAGE}")),
                }
            }
            "--bootstrap" => {
                let path = PathBuf::from(it.next().ok_or(USAGE)?);
                if !path.is_file() {
                    return Err(format!("--bootstrap {}: not a file", path.display()));
                }
                args.bootstrap = Some(path);
            }
            "--cli" => {
                let path = PathBuf::from(it.next().ok_or(USAGE)?);
                if !path.is_file() {
                    return Err(format!("--cli {}: not a file", path.display()));
                }
                args.cli = Some(path);
            }
            "--backfill-sessions" => {
                let n = it.next().and_then(|v| v.parse::<usize>().ok());
                match n {
                    Some(n @ 1..) => args.backfill_sessions = Some(n),
                    _ => return Err(format!("--backfill-sessions takes a count\n{USAGE}")),
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// Sizes and repetitions of one benchmark mode.
struct Params {
    runs: usize,
    image_counts: Vec<usize>,
    image_size: usize,
    latencies_ms: Vec<u64>,
    video_len: u64,
    throughput_runs: usize,
    memory_videos: [u64; 2],
    cold_runs: usize,
    /// Item 6: decisions in the audited archive, files per decision, bytes per file.
    audit_decisions: usize,
    audit_files: usize,
    audit_file_size: usize,
    audit_runs: usize,
    /// Item 7: sessions backfilled.
    backfill_sessions: usize,
    /// Item 8: webhook answers timed per mode.
    queue_runs: usize,
    /// Item 9: the video timed over the realistic link, the images, and the two videos of
    /// the memory case.
    link_video_len: u64,
    link_image_size: u64,
    link_rss_video_len: u64,
    /// Item 10: the video copied under a CPU quota.
    hash_video_len: u64,
    /// Item 11: manifests written in the busy hour; objects of the large archives (the
    /// listing baseline is timed on the first); new manifests sealed in them.
    seal_busy_manifests: usize,
    seal_archive_objects: [usize; 2],
    seal_new_manifests: usize,
    /// Item 12: other customers' sessions in the archive; the customer's own.
    find_sessions: usize,
    find_customer_sessions: usize,
    /// Item 13: the customer's sessions whose retention is extended.
    retain_sessions: usize,
}

impl Params {
    fn full() -> Params {
        Params {
            runs: 5,
            image_counts: vec![1, 4, 16, 64],
            image_size: 500_000,
            latencies_ms: vec![0, 30],
            video_len: 256 * MIB,
            throughput_runs: 3,
            memory_videos: [16 * MIB, 1024 * MIB],
            cold_runs: 20,
            audit_decisions: 200,
            audit_files: 5,
            audit_file_size: 50_000,
            audit_runs: 3,
            backfill_sessions: 10_000,
            queue_runs: 50,
            link_video_len: 256 * MIB,
            link_image_size: 500_000,
            link_rss_video_len: 1024 * MIB,
            hash_video_len: 128 * MIB,
            seal_busy_manifests: 10_000,
            seal_archive_objects: [100_000, 1_000_000],
            seal_new_manifests: 100,
            find_sessions: 100_000,
            find_customer_sessions: 5,
            retain_sessions: 20,
        }
    }

    fn smoke() -> Params {
        Params {
            runs: 1,
            image_counts: vec![1, 4, 16],
            image_size: 100_000,
            latencies_ms: vec![0, 30],
            video_len: 16 * MIB,
            throughput_runs: 1,
            memory_videos: [16 * MIB, 24 * MIB],
            cold_runs: 3,
            audit_decisions: 10,
            audit_files: 5,
            audit_file_size: 10_000,
            audit_runs: 1,
            backfill_sessions: 50,
            queue_runs: 3,
            link_video_len: 8 * MIB,
            link_image_size: 100_000,
            link_rss_video_len: 16 * MIB,
            hash_video_len: 8 * MIB,
            seal_busy_manifests: 200,
            seal_archive_objects: [2_000, 5_000],
            seal_new_manifests: 10,
            find_sessions: 2_000,
            find_customer_sessions: 3,
            retain_sessions: 3,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tables

/// A fixed-width plain-text table (first column left-aligned, the others right-aligned).
struct Table {
    title: String,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Left-align the first column (labels); otherwise every column is right-aligned.
    left_first: bool,
}

impl Table {
    fn new(title: impl Into<String>, head: &[&str]) -> Table {
        Table {
            title: title.into(),
            head: head.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
            left_first: true,
        }
    }

    fn targets(title: impl Into<String>) -> Table {
        Table::new(title, &["measurement", "measured", "target", "result"])
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A row with a target: `pass` decides PASS / MISS.
    fn check(&mut self, what: &str, measured: String, target: &str, pass: bool) {
        let verdict = if pass { "PASS" } else { "MISS" };
        self.row(vec![what.into(), measured, target.into(), verdict.into()]);
    }

    /// A row that is context for the targets, not a target itself.
    fn info(&mut self, what: &str, measured: String) {
        self.row(vec![what.into(), measured, "-".into(), "info".into()]);
    }

    fn print(&self) {
        let mut widths: Vec<usize> = self.head.iter().map(String::len).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 && self.left_first {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            println!("{}", parts.join("  ").trim_end());
        };
        println!("\n{}", self.title);
        line(&self.head);
        let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        println!("{}", "-".repeat(total));
        for row in &self.rows {
            line(row);
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn size_label(bytes: u64) -> String {
    if bytes >= 1024 * MIB {
        format!("{} GiB", bytes / (1024 * MIB))
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// Median, min and max of non-empty samples.
fn stats(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut s = samples.to_vec();
    s.sort();
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    };
    (median, s[0], s[n - 1])
}

// ---------------------------------------------------------------------------------------
// The loopback environment

/// The Veriff fake and the S3 server on loopback, with an S3 client.
struct Env {
    fake: FakeVeriff,
    s3: LocalS3,
    client: Client,
    root: tempfile::TempDir,
    ids: AtomicU64,
}

impl Env {
    async fn start() -> Res<Env> {
        let root = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let s3 = LocalS3::start(&root.path().join("s3"), S3_ACCESS_KEY, S3_SECRET_KEY)
            .await
            .map_err(|e| format!("S3 server: {e}"))?;
        let fake = FakeVeriff::start(FakeConfig::new(API_KEY, SECRET))
            .await
            .map_err(|e| format!("Veriff fake: {e}"))?;
        let client = s3_client(&s3.endpoint());
        client
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .map_err(|e| format!("CreateBucket: {}", DisplayErrorContext(&e)))?;
        Ok(Env {
            fake,
            s3,
            client,
            root,
            ids: AtomicU64::new(0),
        })
    }

    /// The function's environment (as Lambda would set it) with `overrides`.
    fn function_env(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("VERIFF_API_URL", self.fake.base_url()),
            ("VERIFF_API_KEY", API_KEY.into()),
            ("VERIFF_SHARED_SECRET", SECRET.into()),
            ("ARCHIVE_BUCKET", BUCKET.into()),
            ("ARCHIVE_PREFIX", PREFIX.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in overrides {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_string(), (*v).to_string()));
        }
        env
    }

    /// An in-process app configured like the function, as the tests build it.
    async fn app(&self, overrides: &[(&str, &str)]) -> Res<App> {
        self.app_with(overrides, self.client.clone()).await
    }

    /// Like [`Env::app`], on another S3 server's `client`.
    async fn app_with(&self, overrides: &[(&str, &str)], client: Client) -> Res<App> {
        let env: HashMap<String, String> = self.function_env(overrides).into_iter().collect();
        let config = Config::from_lookup(|k| env.get(k).cloned())
            .map_err(|e| format!("configuration: {e}"))?;
        App::builder(config, client)
            .build()
            .await
            .map_err(|e| format!("app: {e}"))
    }

    /// A fresh (session id, attempt id), so idempotency never short-circuits a run.
    fn fresh_ids(&self, tag: &str) -> (String, String) {
        let n = self.ids.fetch_add(1, Ordering::SeqCst);
        (
            format!("bench-{tag}-{n:06}-s"),
            format!("bench-{tag}-{n:06}-a"),
        )
    }

    /// Registers a fresh session listing `items` (id, kind, context, size, mimetype) and
    /// returns its signed decision event with the session's ids.
    fn decision(&self, tag: &str, items: &[MediaEntry]) -> (Value, String, String) {
        let (session_id, attempt_id) = self.fresh_ids(tag);
        let list = |kind: &str| -> Vec<Value> {
            items
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| {
                    json!({
                        "id": m.id, "name": m.context, "context": m.context, "timestamp": null,
                        "size": m.size, "mimetype": m.mimetype,
                        "url": format!("https://example.com/v1/media/{}", m.id),
                        "sessionId": session_id,
                    })
                })
                .collect()
        };
        let document = json!({
            "status": "success",
            "images": list("image"),
            "videos": list("video"),
            "nfcDocuments": [],
        });
        self.fake
            .set_session_media(&session_id, document.to_string());
        // The decided attempt's own listing: the same media, so combined mode (the default)
        // archives from the session listing, as for a session decided on its latest attempt.
        self.fake
            .set_attempt_media(&attempt_id, document.to_string());
        let body = decision_webhook(&session_id, &attempt_id, "approved", DECISION_TIME);
        let event = signed_webhook_event(body.as_bytes(), SECRET, API_KEY, false);
        (event, session_id, attempt_id)
    }

    /// Deletes every object of a session (keeps the disk small between runs).
    async fn purge(&self, prefix: &str) -> Res<()> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| format!("ListObjectsV2: {}", DisplayErrorContext(&e)))?;
        for object in listed.contents() {
            if let Some(key) = object.key() {
                self.client
                    .delete_object()
                    .bucket(BUCKET)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| format!("DeleteObject: {}", DisplayErrorContext(&e)))?;
            }
        }
        Ok(())
    }
}

/// One media item listed in a session's metadata.
#[derive(Clone)]
struct MediaEntry {
    id: String,
    kind: &'static str,
    context: String,
    size: u64,
    mimetype: &'static str,
}

fn s3_client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
            None,
            None,
            "bench",
        ))
        .build();
    Client::from_conf(config)
}

/// The handler's answer body, which must say `archived` with `files` files.
fn expect_archived(response: &Value, files: usize) -> Res<Value> {
    let status = response["statusCode"].as_u64();
    let body: Value = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    if status != Some(200) || body["status"] != "archived" || body["files"] != files {
        return Err(format!(
            "expected 200 archived with {files} files, got {status:?} {body}"
        ));
    }
    Ok(body)
}

async fn handle(app: &App, event: &Value, files: usize) -> Res<Duration> {
    let started = Instant::now();
    let response = app
        .handle(event, Instant::now() + Duration::from_secs(600))
        .await
        .into_lambda();
    let elapsed = started.elapsed();
    expect_archived(&response, files)?;
    Ok(elapsed)
}

// ---------------------------------------------------------------------------------------
// 1. End-to-end decision time

async fn bench_images(env: &Env, p: &Params) -> Res<Vec<Table>> {
    let max = p.image_counts.iter().copied().max().unwrap_or(1);
    let images: Vec<MediaEntry> = (0..max)
        .map(|i| MediaEntry {
            id: format!("bench-image-{i:03}"),
            kind: "image",
            context: format!("img-{i}"),
            size: p.image_size as u64,
            mimetype: "image/jpeg",
        })
        .collect();
    for (i, m) in images.iter().enumerate() {
        let data = deterministic_bytes(0xB0 + i as u64, p.image_size);
        env.fake
            .set_media(&m.id, MediaContent::bytes(data, "image/jpeg"));
    }
    let concurrencies = [4_usize, 1];
    let mut apps: Vec<App> = Vec::new();
    for c in concurrencies {
        apps.push(env.app(&[("COPY_CONCURRENCY", &c.to_string())]).await?);
    }
    // Warm containers: connection pools open, as for every invocation but the first.
    env.fake.set_latency(Duration::ZERO);
    for app in &apps {
        let (event, ..) = env.decision("warm", &images[..1]);
        handle(app, &event, 1).await?;
    }

    let mut grid = Table::new(
        format!(
            "1. Decision end to end: N images of {} KB, median of {} run(s), each a fresh session",
            p.image_size / 1000,
            p.runs
        ),
        &[
            "images",
            "latency",
            "concurrency",
            "median",
            "min",
            "max",
            "MB/s",
        ],
    );
    grid.left_first = false;
    let mut medians: HashMap<(usize, u64, usize), Duration> = HashMap::new();
    for &latency in &p.latencies_ms {
        env.fake.set_latency(Duration::from_millis(latency));
        for &n in &p.image_counts {
            for (app, &concurrency) in apps.iter().zip(&concurrencies) {
                let mut samples = Vec::new();
                for _ in 0..p.runs {
                    let (event, session_id, _) = env.decision("img", &images[..n]);
                    samples.push(handle(app, &event, n).await?);
                    env.purge(&format!("{PREFIX}{session_id}/")).await?;
                }
                let (median, min, max) = stats(&samples);
                medians.insert((n, latency, concurrency), median);
                grid.row(vec![
                    n.to_string(),
                    format!("{latency} ms"),
                    concurrency.to_string(),
                    ms(median),
                    ms(min),
                    ms(max),
                    format!("{:.0}", mb_per_s((n * p.image_size) as u64, median)),
                ]);
            }
        }
    }

    // The cost of reading both media listings (combined mode, the default) against one
    // (MEDIA_SOURCE=session, the single listing that schema v1 archives read): 1 image at
    // 30 ms, concurrency 4, runs interleaved so that drift hits both alike.
    let mut listing_cost = None;
    if p.latencies_ms.contains(&30) {
        env.fake.set_latency(Duration::from_millis(30));
        let single = env
            .app(&[("COPY_CONCURRENCY", "4"), ("MEDIA_SOURCE", "session")])
            .await?;
        let (mut both_samples, mut one_samples) = (Vec::new(), Vec::new());
        for _ in 0..(2 * p.runs).max(1) {
            for (app, samples) in [(&apps[0], &mut both_samples), (&single, &mut one_samples)] {
                let (event, session_id, _) = env.decision("listing", &images[..1]);
                samples.push(handle(app, &event, 1).await?);
                env.purge(&format!("{PREFIX}{session_id}/")).await?;
            }
        }
        listing_cost = Some((stats(&both_samples).0, stats(&one_samples).0));
    }
    env.fake.set_latency(Duration::ZERO);

    let mut targets = Table::targets("1. Decision end to end: targets");
    if let Some((both, one)) = listing_cost {
        targets.info(
            "1 image, 30 ms: both listings (combined, the default)",
            ms(both),
        );
        targets.info(
            "1 image, 30 ms: one listing (MEDIA_SOURCE=session)",
            ms(one),
        );
        let r = both.as_secs_f64() / one.as_secs_f64();
        targets.check(
            "both listings / one listing, 1 image, 30 ms",
            format!("{r:.2}x"),
            "<= 1.10x",
            r <= 1.10,
        );
    }
    let big = if p.image_counts.contains(&16) {
        16
    } else {
        max
    };
    let ratio = |c: usize| {
        let t = |n: usize| medians.get(&(n, 30, c)).copied();
        match (t(big), t(1)) {
            (Some(a), Some(b)) => Some(a.as_secs_f64() / b.as_secs_f64()),
            _ => None,
        }
    };
    if let Some(r) = ratio(4) {
        targets.check(
            &format!("time({big})/time(1), 30 ms latency, concurrency 4"),
            format!("{r:.2}x"),
            "<= 3.00x",
            r <= 3.0,
        );
    }
    if let Some(r) = ratio(1) {
        targets.info(
            &format!("time({big})/time(1), 30 ms latency, concurrency 1"),
            format!("{r:.2}x"),
        );
    }
    for &n in &p.image_counts {
        if let (Some(c4), Some(c1)) = (medians.get(&(n, 30, 4)), medians.get(&(n, 30, 1))) {
            targets.info(
                &format!("speed-up of concurrency 4 over 1, {n} images, 30 ms"),
                format!("{:.2}x", c1.as_secs_f64() / c4.as_secs_f64()),
            );
        }
    }
    Ok(vec![grid, targets])
}

// ---------------------------------------------------------------------------------------
// 2. Throughput of one large video

async fn bench_throughput(env: &Env, p: &Params) -> Res<Vec<Table>> {
    let len = p.video_len;
    let media_id = "bench-video-throughput";
    env.fake
        .set_media(media_id, MediaContent::generated(len, 0x7A11, "video/mp4"));
    let video = [MediaEntry {
        id: media_id.into(),
        kind: "video",
        context: "selfid_video".into(),
        size: len,
        mimetype: "video/mp4",
    }];
    let app = env
        .app(&[("ARCHIVE_VIDEOS", "true"), ("PART_SIZE_MIB", "8")])
        .await?;
    let http = reqwest::Client::new();
    let part = 8 * MIB as usize;
    // Warm container: a decision with no media opens the Veriff and S3 connections.
    let (event, ..) = env.decision("warm", &[]);
    handle(&app, &event, 0).await?;

    let mut samples: [Vec<Duration>; 7] = Default::default();
    let [
        archiver,
        baseline,
        complete,
        baseline_sha,
        pipelined,
        upload,
        download,
    ] = &mut samples;
    for run in 0..p.throughput_runs {
        let (event, session_id, _) = env.decision("video", &video);
        archiver.push(handle(&app, &event, 1).await?);
        env.purge(&format!("{PREFIX}{session_id}/")).await?;

        let key = format!("baseline/run-{run}.mp4");
        for (checksum, pipeline, samples) in [
            (Checksum::SdkDefault, false, &mut *baseline),
            (Checksum::Sha256, false, &mut *baseline_sha),
            (Checksum::Sha256, true, &mut *pipelined),
        ] {
            let source = Source::Http(signed_media_get(env, &http, media_id).await?);
            let started = Instant::now();
            let copy = multipart_copy(env, source, &key, part, checksum, pipeline).await?;
            samples.push(started.elapsed());
            if copy.bytes != len {
                return Err(format!("baseline copied {} of {len} bytes", copy.bytes));
            }
            if checksum == Checksum::SdkDefault {
                complete.push(copy.complete);
            }
            env.purge("baseline/").await?;
        }

        let source = Source::Memory {
            part: Bytes::from(deterministic_bytes(7, part)),
            remaining: len,
        };
        let started = Instant::now();
        multipart_copy(env, source, &key, part, Checksum::SdkDefault, false).await?;
        upload.push(started.elapsed());
        env.purge("baseline/").await?;

        let started = Instant::now();
        let received = download_only(env, &http, media_id).await?;
        download.push(started.elapsed());
        if received != len {
            return Err(format!("download-only read {received} of {len} bytes"));
        }
    }
    let [
        archiver,
        baseline,
        complete,
        baseline_sha,
        pipelined,
        upload,
        download,
    ] = samples.map(|s| stats(&s).0);
    let (a, b) = (mb_per_s(len, archiver), mb_per_s(len, baseline));
    let rate = |d: Duration| format!("{:.0} MB/s ({})", mb_per_s(len, d), ms(d));

    let mut table = Table::targets(format!(
        "2. Throughput: one {} video, 8 MiB parts, median of {} run(s) (MB = 10^6 bytes)",
        size_label(len),
        p.throughput_runs
    ));
    table.info("archiver end to end (App::handle)", rate(archiver));
    table.info(
        "baseline: GET -> sequential multipart upload",
        rate(baseline),
    );
    table.check(
        "archiver / baseline",
        format!("{:.0}%", 100.0 * a / b),
        ">= 70%",
        a / b >= 0.70,
    );
    table.info("  of which CompleteMultipartUpload (s3s-fs)", ms(complete));
    table.info(
        "baseline + SHA-256 part checksums (as the archiver)",
        rate(baseline_sha),
    );
    table.info(
        "  same, one UploadPart in flight while reading on",
        rate(pipelined),
    );
    table.info("upload only (parts from memory, sequential)", rate(upload));
    table.info("download only (GET, body discarded)", rate(download));
    let sha = sha256_speed();
    table.info("SHA-256, one core, in memory", format!("{sha:.0} MB/s"));
    Ok(vec![table])
}

/// Which checksums the baseline sends with its parts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checksum {
    /// Whatever the SDK adds by default (CRC32 on UploadPart).
    SdkDefault,
    /// A SHA-256 of each part, computed before sending it, as the archiver does.
    Sha256,
}

/// Where the baseline's bytes come from.
enum Source {
    /// A media download.
    Http(reqwest::Response),
    /// The same in-memory part over and over, `remaining` bytes in all.
    Memory { part: Bytes, remaining: u64 },
}

impl Source {
    async fn next_chunk(&mut self) -> Res<Option<Bytes>> {
        match self {
            Source::Http(response) => response.chunk().await.map_err(|e| format!("download: {e}")),
            Source::Memory { part, remaining } => {
                let n = (*remaining).min(part.len() as u64);
                *remaining -= n;
                Ok((n > 0).then(|| part.slice(..n as usize)))
            }
        }
    }
}

struct CopyTiming {
    bytes: u64,
    complete: Duration,
}

/// The plainest copy: cut the source into `part_size` parts, each uploaded before the
/// next is read, then CompleteMultipartUpload.
async fn multipart_copy(
    env: &Env,
    mut source: Source,
    key: &str,
    part_size: usize,
    checksum: Checksum,
    pipelined: bool,
) -> Res<CopyTiming> {
    let s3 = &env.client;
    let mut create = s3.create_multipart_upload().bucket(BUCKET).key(key);
    if checksum == Checksum::Sha256 {
        create = create.checksum_algorithm(ChecksumAlgorithm::Sha256);
    }
    let upload = create
        .send()
        .await
        .map_err(|e| format!("CreateMultipartUpload: {}", DisplayErrorContext(&e)))?;
    let upload_id = upload.upload_id().ok_or("no upload id")?.to_string();
    let mut parts = Vec::new();
    let mut buffer = BytesMut::new();
    let mut total = 0_u64;
    let mut in_flight: Option<tokio::task::JoinHandle<Res<CompletedPart>>> = None;
    let mut number = 0;
    let mut send = async |body: Bytes, parts: &mut Vec<CompletedPart>| -> Res<()> {
        number += 1;
        let upload = upload_part(
            s3.clone(),
            key.to_string(),
            upload_id.clone(),
            number,
            body,
            checksum,
        );
        if pipelined {
            // At most one part uploading while the next one is read.
            if let Some(previous) = in_flight.take() {
                parts.push(previous.await.map_err(|e| e.to_string())??);
            }
            in_flight = Some(tokio::spawn(upload));
        } else {
            parts.push(upload.await?);
        }
        Ok(())
    };
    while let Some(mut chunk) = source.next_chunk().await? {
        total += chunk.len() as u64;
        while !chunk.is_empty() {
            if buffer.capacity() == 0 {
                buffer.reserve(part_size);
            }
            let take = (part_size - buffer.len()).min(chunk.len());
            buffer.extend_from_slice(&chunk.split_to(take));
            if buffer.len() == part_size {
                send(buffer.split().freeze(), &mut parts).await?;
            }
        }
    }
    if !buffer.is_empty() {
        send(buffer.split().freeze(), &mut parts).await?;
    }
    if let Some(last) = in_flight.take() {
        parts.push(last.await.map_err(|e| e.to_string())??);
    }
    let started = Instant::now();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("CompleteMultipartUpload: {}", DisplayErrorContext(&e)))?;
    Ok(CopyTiming {
        bytes: total,
        complete: started.elapsed(),
    })
}

/// One UploadPart, with a SHA-256 checksum if asked.
async fn upload_part(
    s3: Client,
    key: String,
    upload_id: String,
    number: i32,
    body: Bytes,
    checksum: Checksum,
) -> Res<CompletedPart> {
    let mut request = s3
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(number);
    let sha256 = (checksum == Checksum::Sha256)
        .then(|| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body)));
    if let Some(sha256) = &sha256 {
        request = request
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256);
    }
    let out = request
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| format!("UploadPart: {}", DisplayErrorContext(&e)))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_string))
        .set_checksum_sha256(sha256)
        .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
        .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_string))
        .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_string))
        .build())
}

/// `GET /v1/media/{id}` signed as Veriff requires (the HMAC of the id).
async fn signed_media_get(
    env: &Env,
    http: &reqwest::Client,
    media_id: &str,
) -> Res<reqwest::Response> {
    http.get(format!("{}/v1/media/{media_id}", env.fake.base_url()))
        .header("X-AUTH-CLIENT", API_KEY)
        .header(
            "X-HMAC-SIGNATURE",
            hmac_sha256_hex(SECRET.as_bytes(), media_id.as_bytes()),
        )
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GET media: {e}"))
}

async fn download_only(env: &Env, http: &reqwest::Client, media_id: &str) -> Res<u64> {
    let mut response = signed_media_get(env, http, media_id).await?;
    let mut total = 0_u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("download: {e}"))?
    {
        total += chunk.len() as u64;
    }
    Ok(total)
}

/// SHA-256 throughput of this build on one core (MB/s).
fn sha256_speed() -> f64 {
    let data = deterministic_bytes(1, 64 * MIB as usize);
    let started = std::time::Instant::now();
    let digest = Sha256::digest(&data);
    let elapsed = started.elapsed();
    std::hint::black_box(digest);
    mb_per_s(data.len() as u64, elapsed)
}

// ---------------------------------------------------------------------------------------
// The release bootstrap under the Runtime API

/// A `bootstrap` process served by its own [`RuntimeApi`]. Killed on drop.
struct Function {
    child: Child,
    api: RuntimeApi,
    spawned_at: Instant,
    log: PathBuf,
}

impl Function {
    async fn spawn(env: &Env, bootstrap: &Path, overrides: &[(&str, &str)]) -> Res<Function> {
        let api = RuntimeApi::start()
            .await
            .map_err(|e| format!("Runtime API: {e}"))?;
        let log = env.root.path().join("bootstrap.log");
        let out = File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut command = Command::new(bootstrap);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
            .env("AWS_LAMBDA_FUNCTION_NAME", "veriff-archiver")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/veriff-archiver")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef",
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_ENDPOINT_URL_S3", env.s3.endpoint())
            .envs(env.function_env(overrides))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bootstrap.display()))?;
        Ok(Function {
            child,
            api,
            spawned_at,
            log,
        })
    }

    /// Time from `exec` to the first `GET /runtime/invocation/next`.
    async fn init_duration(&mut self) -> Res<Duration> {
        let polled = tokio::select! {
            at = self.api.wait_first_poll(Duration::from_secs(30)) => {
                at.ok_or_else(|| "no poll within 30 s".to_string())
            }
            status = exited(&mut self.child) => Err(format!("bootstrap exited during init ({status})")),
        };
        let at = polled.map_err(|e| format!("{e}; {}", self.log_tail()))?;
        Ok(at.duration_since(self.spawned_at.into_std()))
    }

    /// Invokes the function; fails at once if the process dies.
    async fn invoke(&mut self, event: Value, timeout: Duration) -> Res<Value> {
        let result = tokio::select! {
            r = self.api.invoke(event, timeout) => r,
            status = exited(&mut self.child) => Err(format!("bootstrap exited ({status})")),
        };
        result.map_err(|e| format!("{e}; {}", self.log_tail()))
    }

    /// A field of `/proc/PID/status` in KiB (`VmHWM`, `VmRSS`).
    fn status_kib(&self, field: &str) -> Res<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("/proc status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {field} in /proc/PID/status"))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "bootstrap log tail:\n{}",
            lines[lines.len().saturating_sub(10)..].join("\n")
        )
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resolves when the child has exited.
async fn exited(child: &mut Child) -> String {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => return e.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. Peak memory

async fn bench_memory(env: &Env, p: &Params, bootstrap: &Path) -> Res<Vec<Table>> {
    let mut peaks = Vec::new();
    let mut rows = Vec::new();
    for (i, &len) in p.memory_videos.iter().enumerate() {
        let media_id = format!("bench-video-memory-{i}");
        env.fake.set_media(
            &media_id,
            MediaContent::generated(len, 0x3E30 + i as u64, "video/mp4"),
        );
        let video = [MediaEntry {
            id: media_id,
            kind: "video",
            context: "selfid_video".into(),
            size: len,
            mimetype: "video/mp4",
        }];
        let mut function = Function::spawn(env, bootstrap, &[("ARCHIVE_VIDEOS", "true")]).await?;
        function.init_duration().await?;
        let after_init = function.status_kib("VmRSS")?;
        let (event, session_id, _) = env.decision("memory", &video);
        let started = Instant::now();
        let response = function.invoke(event, Duration::from_secs(900)).await?;
        let elapsed = started.elapsed();
        expect_archived(&response, 1)?;
        let hwm = function.status_kib("VmHWM")?;
        let rss = function.status_kib("VmRSS")?;
        drop(function);
        env.purge(&format!("{PREFIX}{session_id}/")).await?;
        peaks.push(hwm);
        rows.push((len, hwm, rss, after_init, elapsed));
    }
    let mut table = Table::targets(
        "3. Peak memory of the release bootstrap (VmHWM after the invocation; PART_SIZE_MIB=8)",
    );
    for &(len, _, rss, after_init, elapsed) in &rows {
        table.info(
            &format!(
                "{} video: RSS after init / after the invocation",
                size_label(len)
            ),
            format!("{} / {}", mib(after_init), mib(rss)),
        );
        table.info(
            &format!("{} video: invocation time", size_label(len)),
            format!("{} ({:.0} MB/s)", ms(elapsed), mb_per_s(len, elapsed)),
        );
    }
    let [(small, small_peak), (large, large_peak)] = [
        (p.memory_videos[0], peaks[0]),
        (p.memory_videos[1], peaks[1]),
    ];
    table.info(
        &format!("{} video: peak RSS", size_label(small)),
        mib(small_peak),
    );
    table.check(
        &format!("{} video: peak RSS", size_label(large)),
        mib(large_peak),
        "< 64 MiB",
        large_peak < 64 * 1024,
    );
    let diff = large_peak.abs_diff(small_peak);
    table.check(
        &format!("peak({}) - peak({})", size_label(large), size_label(small)),
        mib(diff),
        "<= 4 MiB",
        diff <= 4 * 1024,
    );
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// 4. Cold start

async fn bench_cold_start(env: &Env, p: &Params, bootstrap: &Path) -> Res<Vec<Table>> {
    let images: Vec<MediaEntry> = ["document-front", "document-back", "face"]
        .iter()
        .enumerate()
        .map(|(i, context)| MediaEntry {
            id: format!("bench-cold-image-{i}"),
            kind: "image",
            context: (*context).into(),
            size: 200_000,
            mimetype: "image/jpeg",
        })
        .collect();
    for (i, m) in images.iter().enumerate() {
        env.fake.set_media(
            &m.id,
            MediaContent::bytes(deterministic_bytes(0xC0 + i as u64, 200_000), "image/jpeg"),
        );
    }
    // The credentials as environment variables (the default), and, with moto_server, read
    // from a Secrets Manager secret at cold start (VERIFF_SECRET_ARN).
    let moto = match archiver_devkit::MotoServer::find_executable() {
        Ok(_) => Some(
            archiver_devkit::MotoServer::start()
                .await
                .map_err(|e| format!("moto_server: {e}"))?,
        ),
        Err(_) => None,
    };
    let mut configurations: Vec<(String, Vec<(String, String)>)> =
        vec![("credentials in environment variables".into(), vec![])];
    if let Some(moto) = &moto {
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::new()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
                .endpoint_url(moto.endpoint())
                .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                    S3_ACCESS_KEY,
                    S3_SECRET_KEY,
                    None,
                    None,
                    "bench",
                ))
                .build(),
        );
        let arn = secrets
            .create_secret()
            .name("bench-veriff-credentials")
            .secret_string(json!({"apiKey": API_KEY, "sharedSecret": SECRET}).to_string())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "CreateSecret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?
            .arn
            .unwrap_or_default();
        configurations.push((
            "credentials from Secrets Manager (moto_server)".into(),
            vec![
                ("VERIFF_API_KEY".into(), String::new()),
                ("VERIFF_SHARED_SECRET".into(), String::new()),
                ("VERIFF_SECRET_ARN".into(), arn),
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), moto.endpoint()),
            ],
        ));
    }
    let mut table = Table::new(
        format!(
            "4. Cold start of the release bootstrap, {} runs per configuration (3 images of 200 KB \
             per decision)",
            p.cold_runs
        ),
        &[
            "configuration",
            "measurement",
            "median",
            "min",
            "max",
            "target",
            "result",
        ],
    );
    for (label, overrides) in &configurations {
        let overrides: Vec<(&str, &str)> = overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (mut init, mut first, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..p.cold_runs {
            let mut function = Function::spawn(env, bootstrap, &overrides).await?;
            init.push(function.init_duration().await?);
            for samples in [&mut first, &mut warm] {
                let (event, session_id, _) = env.decision("cold", &images);
                let started = Instant::now();
                let response = function.invoke(event, Duration::from_secs(60)).await?;
                samples.push(started.elapsed());
                expect_archived(&response, images.len())?;
                env.purge(&format!("{PREFIX}{session_id}/")).await?;
            }
        }
        let mut row = |what: &str, samples: &[Duration], target: Option<(&str, Duration)>| {
            let (median, min, max) = stats(samples);
            let (target, verdict) = match target {
                Some((label, limit)) => (label, if median < limit { "PASS" } else { "MISS" }),
                None => ("-", "info"),
            };
            table.row(vec![
                label.clone(),
                what.into(),
                ms(median),
                ms(min),
                ms(max),
                target.into(),
                verdict.into(),
            ]);
        };
        row(
            "exec -> first /next (init)",
            &init,
            Some(("median < 20 ms", Duration::from_millis(20))),
        );
        row("first invocation", &first, None);
        row("second invocation (warm)", &warm, None);
    }
    if moto.is_none() {
        println!("\nitem 4: the Secrets Manager configuration skipped (no moto_server)");
    }
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// 8. Queue mode: the webhook's answer time, against direct mode

async fn bench_queue(env: &Env, p: &Params, bootstrap: &Path) -> Res<Vec<Table>> {
    let moto = archiver_devkit::MotoServer::start()
        .await
        .map_err(|e| format!("moto_server: {e}"))?;
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::new()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url(moto.endpoint())
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
                None,
                None,
                "bench",
            ))
            .build(),
    );
    let queue_url = sqs
        .create_queue()
        .queue_name("bench-archive")
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreateQueue: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            )
        })?
        .queue_url
        .unwrap_or_default();
    let images: Vec<MediaEntry> = (0..16)
        .map(|i| MediaEntry {
            id: format!("bench-queue-image-{i}"),
            kind: "image",
            context: format!("context-{i}"),
            size: 500_000,
            mimetype: "image/jpeg",
        })
        .collect();
    for (i, m) in images.iter().enumerate() {
        env.fake.set_media(
            &m.id,
            MediaContent::bytes(deterministic_bytes(0xD0 + i as u64, 500_000), "image/jpeg"),
        );
    }
    let sqs_endpoint = moto.endpoint();
    // (label, environment overrides, the answer's status)
    type Mode<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let modes: [Mode; 2] = [
        (
            "direct (archives 16 images, then answers)",
            vec![],
            "archived",
        ),
        (
            "queue (sends one SQS message, then answers)",
            vec![
                ("INGEST_MODE", "queue"),
                ("ARCHIVE_QUEUE_URL", queue_url.as_str()),
                ("AWS_ENDPOINT_URL_SQS", sqs_endpoint.as_str()),
            ],
            "queued",
        ),
    ];
    let mut table = Table::new(
        format!(
            "8. Webhook answer time, release bootstrap, warm, {} decisions of 16 images of 500 KB \
             per mode (local SQS: moto_server)",
            p.queue_runs
        ),
        &["mode", "median", "min", "max", "vs direct"],
    );
    let mut direct_median = None;
    for (label, overrides, status) in modes {
        let mut function = Function::spawn(env, bootstrap, &overrides).await?;
        function.init_duration().await?;
        let mut samples = Vec::new();
        // The first invocation warms the clients; it is not counted.
        for run in 0..=p.queue_runs {
            let (event, session_id, _) = env.decision("queue", &images);
            let started = Instant::now();
            let response = function.invoke(event, Duration::from_secs(60)).await?;
            let elapsed = started.elapsed();
            let body: Value = response["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            if body["status"] != status {
                return Err(format!("{label}: expected {status}, got {response}"));
            }
            if run > 0 {
                samples.push(elapsed);
            }
            env.purge(&format!("{PREFIX}{session_id}/")).await?;
        }
        let (median, min, max) = stats(&samples);
        let ratio = match direct_median {
            None => {
                direct_median = Some(median);
                "1.00x".to_string()
            }
            Some(direct) => format!(
                "{:.2}x ({:.0}x faster)",
                median.as_secs_f64() / direct.as_secs_f64(),
                direct.as_secs_f64() / median.as_secs_f64().max(1e-9)
            ),
        };
        table.row(vec![label.into(), ms(median), ms(min), ms(max), ratio]);
    }
    let _ = sqs.purge_queue().queue_url(&queue_url).send().await;
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// 9. A realistic link: Veriff 30 ms per request and 40 MB/s per download; S3 10 ms per request

/// Veriff's per-request latency and per-stream bandwidth, and S3's per-request latency.
const LINK_VERIFF_LATENCY: Duration = Duration::from_millis(30);
const LINK_VERIFF_BANDWIDTH: u64 = 40_000_000;
const LINK_S3_LATENCY: Duration = Duration::from_millis(10);

fn set_link(env: &Env, on: bool) {
    if on {
        env.fake.set_latency(LINK_VERIFF_LATENCY);
        env.fake.set_download_bandwidth(Some(LINK_VERIFF_BANDWIDTH));
        env.s3.set_latency(LINK_S3_LATENCY);
    } else {
        env.fake.set_latency(Duration::ZERO);
        env.fake.set_download_bandwidth(None);
        env.s3.set_latency(Duration::ZERO);
    }
}

fn images(tag: &str, count: usize, size: u64) -> Vec<MediaEntry> {
    (0..count)
        .map(|i| MediaEntry {
            id: format!("bench-{tag}-image-{i:02}"),
            kind: "image",
            context: format!("context-{i:02}"),
            size,
            mimetype: "image/jpeg",
        })
        .collect()
}

fn register(env: &Env, items: &[MediaEntry], seed: u64) {
    for (i, m) in items.iter().enumerate() {
        let content = if m.kind == "video" {
            MediaContent::generated(m.size, seed + i as u64, m.mimetype)
        } else {
            MediaContent::bytes(
                deterministic_bytes(seed + i as u64, m.size as usize),
                m.mimetype,
            )
        };
        env.fake.set_media(&m.id, content);
    }
}

async fn bench_link(env: &Env, p: &Params, bootstrap: &Path) -> Res<Vec<Table>> {
    set_link(env, true);
    let result = bench_link_inner(env, p, bootstrap).await;
    set_link(env, false);
    result
}

async fn bench_link_inner(env: &Env, p: &Params, bootstrap: &Path) -> Res<Vec<Table>> {
    let mut table = Table::targets(format!(
        "9. Realistic link: Veriff {} ms per request and {} MB/s per download stream, S3 {} ms \
         per request (defaults: COPY_MEMORY_MIB=64, COPY_CONCURRENCY=16, PART_SIZE_MIB=8)",
        LINK_VERIFF_LATENCY.as_millis(),
        LINK_VERIFF_BANDWIDTH / 1_000_000,
        LINK_S3_LATENCY.as_millis()
    ));
    let app = env.app(&[("ARCHIVE_VIDEOS", "true")]).await?;

    // The video: against the time its download alone takes at the link's bandwidth.
    let video = [MediaEntry {
        id: "bench-link-video".into(),
        kind: "video",
        context: "selfid_video".into(),
        size: p.link_video_len,
        mimetype: "video/webm",
    }];
    register(env, &video, 0x9100);
    let floor = Duration::from_secs_f64(p.link_video_len as f64 / LINK_VERIFF_BANDWIDTH as f64);
    let (event, session_id, _) = env.decision("link-video", &video);
    let archived = handle(&app, &event, 1).await?;
    env.purge(&format!("{PREFIX}{session_id}/")).await?;
    // Today's copy path (before this change), as the raw copy reproduces it: each part
    // uploaded before the next is read, one SHA-256 per part.
    let http = reqwest::Client::new();
    let started = Instant::now();
    let response = signed_media_get(env, &http, "bench-link-video").await?;
    multipart_copy(
        env,
        Source::Http(response),
        "bench-link/sequential-video",
        8 * MIB as usize,
        Checksum::Sha256,
        false,
    )
    .await?;
    let sequential = started.elapsed();
    env.purge("bench-link/").await?;
    let started = Instant::now();
    let downloaded = download_only(env, &http, "bench-link-video").await?;
    let download_alone = started.elapsed();
    if downloaded != p.link_video_len {
        return Err(format!(
            "downloaded {downloaded} of {} bytes",
            p.link_video_len
        ));
    }
    let ratio = archived.as_secs_f64() / floor.as_secs_f64();
    table.info(
        &format!(
            "{} video: the download alone, as the fake serves it",
            size_label(p.link_video_len)
        ),
        format!(
            "{} ({:.2}x floor)",
            ms(download_alone),
            download_alone.as_secs_f64() / floor.as_secs_f64()
        ),
    );
    table.info(
        &format!(
            "{} video: download floor at 40 MB/s",
            size_label(p.link_video_len)
        ),
        ms(floor),
    );
    table.info(
        &format!(
            "{} video: before (each part uploaded before the next is read)",
            size_label(p.link_video_len)
        ),
        format!(
            "{} ({:.2}x floor)",
            ms(sequential),
            sequential.as_secs_f64() / floor.as_secs_f64()
        ),
    );
    table.check(
        &format!(
            "{} video: archived now (reading overlaps uploading)",
            size_label(p.link_video_len)
        ),
        format!("{} ({ratio:.2}x floor)", ms(archived)),
        "<= 1.10x floor",
        ratio <= 1.10,
    );

    // 16 small images against one: all at once now; four at a time before.
    let sixteen = images("link", 16, p.link_image_size);
    register(env, &sixteen, 0x9200);
    let time = |app: App, items: Vec<MediaEntry>, tag: &'static str| async move {
        let mut samples = Vec::new();
        for _ in 0..3 {
            let (event, session_id, _) = env.decision(tag, &items);
            samples.push(handle(&app, &event, items.len()).await?);
            env.purge(&format!("{PREFIX}{session_id}/")).await?;
        }
        Ok::<Duration, String>(stats(&samples).0)
    };
    let one = time(app.clone(), sixteen[..1].to_vec(), "link-one").await?;
    let all = time(app.clone(), sixteen.clone(), "link-sixteen").await?;
    let before = time(
        env.app(&[("COPY_CONCURRENCY", "4")]).await?,
        sixteen.clone(),
        "link-sixteen-before",
    )
    .await?;
    let label = format!("{} KB", p.link_image_size / 1000);
    table.info(&format!("1 image of {label} (median of 3)"), ms(one));
    table.info(
        &format!("16 images of {label}, before (4 files at a time)"),
        format!(
            "{} ({:.2}x one image)",
            ms(before),
            before.as_secs_f64() / one.as_secs_f64()
        ),
    );
    let ratio = all.as_secs_f64() / one.as_secs_f64();
    table.check(
        &format!("16 images of {label}, now (all at once)"),
        format!("{} ({ratio:.2}x one image)", ms(all)),
        "<= 1.5x one image",
        ratio <= 1.5,
    );

    // Peak memory of the release bootstrap for 16 images and two large videos at once.
    let mut mix = images("link-mix", 16, p.link_image_size);
    for i in 0..2 {
        mix.push(MediaEntry {
            id: format!("bench-link-mix-video-{i}"),
            kind: "video",
            context: format!("video-{i}"),
            size: p.link_rss_video_len,
            mimetype: "video/webm",
        });
    }
    register(env, &mix, 0x9300);
    let mut function = Function::spawn(env, bootstrap, &[("ARCHIVE_VIDEOS", "true")]).await?;
    function.init_duration().await?;
    let (event, session_id, _) = env.decision("link-mix", &mix);
    let started = Instant::now();
    let response = function.invoke(event, Duration::from_secs(900)).await?;
    let elapsed = started.elapsed();
    expect_archived(&response, mix.len())?;
    let hwm = function.status_kib("VmHWM")?;
    drop(function);
    env.purge(&format!("{PREFIX}{session_id}/")).await?;
    table.info(
        &format!(
            "16 images + two {} videos: invocation time",
            size_label(p.link_rss_video_len)
        ),
        ms(elapsed),
    );
    table.check(
        &format!(
            "16 images + two {} videos: peak RSS of the release bootstrap",
            size_label(p.link_rss_video_len)
        ),
        mib(hwm),
        "< 64 + 16 MiB",
        hwm < (64 + 16) * 1024,
    );
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// 10. What the two SHA-256 passes cost at Lambda's default memory

/// A function of M MB gets about M/1769 of a vCPU (1,769 MB is one full vCPU).
const LAMBDA_256_MB_CPU_SHARE: f64 = 256.0 / 1769.0;
const LAMBDA_512_MB_CPU_SHARE: f64 = 512.0 / 1769.0;

/// Puts `pid` in a cgroup (v1 `cpu` controller) limited to `share` of one CPU; `None` when
/// cgroups are not writable here (not root, or cgroup v2 only).
fn cpu_quota(pid: u32, share: f64) -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/sys/fs/cgroup/cpu/veriff-bench-{pid}"));
    std::fs::create_dir(&dir).ok()?;
    let period = 100_000_u64;
    let quota = ((period as f64) * share).round() as u64;
    let ok = std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string()).is_ok()
        && std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()).is_ok()
        && std::fs::write(dir.join("cgroup.procs"), pid.to_string()).is_ok();
    if ok {
        Some(dir)
    } else {
        let _ = std::fs::remove_dir(&dir);
        None
    }
}

async fn bench_hashing(env: &Env, p: &Params, bootstrap: &Path) -> Res<Vec<Table>> {
    let video = [MediaEntry {
        id: "bench-hash-video".into(),
        kind: "video",
        context: "selfid_video".into(),
        size: p.hash_video_len,
        mimetype: "video/webm",
    }];
    register(env, &video, 0xA100);
    let sha = sha256_speed();
    let mut table = Table::targets(format!(
        "10. The two SHA-256 passes (per part for S3, whole file for the manifest) at Lambda's \
         CPU share: a {} video on loopback",
        size_label(p.hash_video_len)
    ));
    table.info(
        "SHA-256 on one full core (this machine)",
        format!("{sha:.0} MB/s"),
    );
    for (label, share) in [
        ("one full core", 1.0),
        (
            "512 MB function's share (0.289 vCPU)",
            LAMBDA_512_MB_CPU_SHARE,
        ),
        (
            "256 MB function's share (0.145 vCPU)",
            LAMBDA_256_MB_CPU_SHARE,
        ),
    ] {
        let mut function = Function::spawn(env, bootstrap, &[("ARCHIVE_VIDEOS", "true")]).await?;
        let cgroup = cpu_quota(function.child.id(), share);
        if cgroup.is_none() {
            table.info(
                label,
                "skipped: no writable cgroup (cpu controller) here".into(),
            );
            continue;
        }
        function.init_duration().await?;
        let (event, session_id, _) = env.decision("hash", &video);
        let started = Instant::now();
        let response = function.invoke(event, Duration::from_secs(900)).await?;
        let elapsed = started.elapsed();
        expect_archived(&response, 1)?;
        drop(function);
        if let Some(dir) = cgroup {
            let _ = std::fs::remove_dir(dir);
        }
        env.purge(&format!("{PREFIX}{session_id}/")).await?;
        let rate = mb_per_s(p.hash_video_len, elapsed);
        table.info(
            &format!("{label}: copy rate"),
            format!("{rate:.0} MB/s ({})", ms(elapsed)),
        );
        table.info(
            &format!("{label}: SHA-256 alone, two passes / one pass"),
            format!("{:.0} / {:.0} MB/s", sha * share / 2.0, sha * share),
        );
    }
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// 5. Binary size

fn bench_size(bootstrap: &Path) -> Res<Vec<Table>> {
    let bytes = std::fs::read(bootstrap).map_err(|e| format!("{}: {e}", bootstrap.display()))?;
    let size = bytes.len() as u64;
    // A stripped ELF has no .symtab section (its name would be in .shstrtab).
    let stripped = !bytes.windows(8).any(|w| w == b".symtab\0");
    let mut table = Table::targets("5. Release bootstrap size (as built, no compression)");
    table.check(
        &format!(
            "binary size ({})",
            if stripped { "stripped" } else { "NOT stripped" }
        ),
        format!("{size} B = {:.2} MiB", size as f64 / MIB as f64),
        "< 12 MB",
        size < 12_000_000,
    );
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// 6. verify: files checked per second

/// Where item 6 builds its archive: apart from what the other items leave under `PREFIX`.
const AUDIT_PREFIX: &str = "audit/";

async fn bench_audit(env: &Env, p: &Params) -> Res<Vec<Table>> {
    use futures_util::StreamExt as _;
    use veriff_archiver::audit::{AuditOptions, Auditor};

    // The archive: `audit_decisions` sessions of `audit_files` images each, written by the
    // function (4 decisions in flight).
    let images: Vec<MediaEntry> = (0..p.audit_files)
        .map(|i| MediaEntry {
            id: format!("bench-audit-image-{i}"),
            kind: "image",
            context: format!("img-{i}"),
            size: p.audit_file_size as u64,
            mimetype: "image/jpeg",
        })
        .collect();
    for (i, m) in images.iter().enumerate() {
        let data = deterministic_bytes(0xA0D + i as u64, p.audit_file_size);
        env.fake
            .set_media(&m.id, MediaContent::bytes(data, "image/jpeg"));
    }
    env.fake.set_latency(Duration::ZERO);
    let app = env.app(&[("ARCHIVE_PREFIX", AUDIT_PREFIX)]).await?;
    let started = Instant::now();
    let events: Vec<Value> = (0..p.audit_decisions)
        .map(|_| env.decision("audit", &images).0)
        .collect();
    let built: Vec<Res<Duration>> = futures_util::stream::iter(&events)
        .map(|event| handle(&app, event, images.len()))
        .buffer_unordered(4)
        .collect()
        .await;
    built.into_iter().collect::<Res<Vec<_>>>()?;
    let build_time = started.elapsed();
    let files = (p.audit_decisions * p.audit_files) as u64;
    let bytes = files * p.audit_file_size as u64;

    let auditor = Auditor::new(env.client.clone(), BUCKET);
    let audit = |deep: bool, concurrency: usize| {
        let auditor = auditor.clone();
        async move {
            let options = AuditOptions {
                prefix: AUDIT_PREFIX.into(),
                sessions: Vec::new(),
                deep,
                concurrency,
                public_key: None,
                ledger: None,
                expected_sessions: Vec::new(),
            };
            let started = Instant::now();
            // The first progress call comes once the listing and the manifests are read.
            let checking = std::sync::OnceLock::new();
            let report = auditor
                .audit(&options, &|_, _| {
                    checking.get_or_init(Instant::now);
                })
                .await
                .map_err(|e| format!("audit: {e}"))?;
            let elapsed = started.elapsed();
            let reading = checking
                .get()
                .map_or(elapsed, |at| at.duration_since(started));
            let s = &report.summary;
            if s.files != files || s.ok != files || s.problems() != 0 {
                return Err(format!(
                    "audit: expected {files} files all ok, got {} files, {} ok, {} problems",
                    s.files,
                    s.ok,
                    s.problems()
                ));
            }
            Ok::<_, String>((elapsed, reading))
        }
    };
    // One unmeasured pass: connections open, as on a second run of the command.
    audit(false, 32).await?;

    let mut table = Table::new(
        format!(
            "6. verify (Auditor::audit): {} decisions x {} files of {} KB = {files} files, {:.1} MB; \
             median of {} run(s)",
            p.audit_decisions,
            p.audit_files,
            p.audit_file_size / 1000,
            bytes as f64 / 1e6,
            p.audit_runs
        ),
        &[
            "checks",
            "concurrency",
            "median",
            "min",
            "max",
            "files/s",
            "MB/s",
            "of which list + manifests",
        ],
    );
    let modes: [(&str, bool, usize, usize); 3] = [
        ("HeadObject (default)", false, 32, p.audit_runs),
        (
            "HeadObject + download + SHA-256 (--deep)",
            true,
            32,
            p.audit_runs,
        ),
        ("HeadObject, one at a time", false, 1, 1),
    ];
    for (label, deep, concurrency, runs) in modes {
        let (mut samples, mut reading) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (elapsed, read) = audit(deep, concurrency).await?;
            samples.push(elapsed);
            reading.push(read);
        }
        let (median, min, max) = stats(&samples);
        table.row(vec![
            label.into(),
            concurrency.to_string(),
            ms(median),
            ms(min),
            ms(max),
            format!("{:.0}", files as f64 / median.as_secs_f64()),
            if deep {
                format!("{:.0}", mb_per_s(bytes, median))
            } else {
                "-".into()
            },
            ms(stats(&reading).0),
        ]);
    }
    table.row(vec![
        "(archive written by the function, 4 decisions in flight)".into(),
        "-".into(),
        ms(build_time),
        "-".into(),
        "-".into(),
        format!("{:.0}", files as f64 / build_time.as_secs_f64()),
        format!("{:.0}", mb_per_s(bytes, build_time)),
        "-".into(),
    ]);
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------
// Item 11: the ledger's seal

/// S3 requests by kind, from the local server's log.
fn request_mix(requests: &[archiver_devkit::S3Request]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in requests {
        let kind = match r.method.as_str() {
            "GET" if r.has_query_param("list-type") || r.has_query_param("versions") => "LIST",
            "GET" => "GET",
            "HEAD" => "HEAD",
            "PUT" => "PUT",
            other => other,
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the archive does for one decision, as far as the ledger sees it: the receipt,
/// then the manifest (a few hundred bytes here), both conditional creates.
async fn write_sealable(store: &Store, prefix: &str, n: usize) -> Res<()> {
    use veriff_archiver::ledger::format::{Receipt, receipt_key};
    let key = format!(
        "{prefix}session-{n:07}/attempt-{n:07}/manifest-20250304T102107{:06}Z-{:016x}.json",
        n % 1_000_000,
        n
    );
    let bytes = Bytes::from(format!(
        "{{\"schemaVersion\":3,\"bench\":{n},\"pad\":\"{}\"}}",
        "x".repeat(300)
    ));
    let at = SystemTime::now();
    let receipt = Receipt::of(&key, &bytes, at);
    let receipt_key = receipt_key(prefix, at, &key);
    for (k, b) in [
        (receipt_key.as_str(), Bytes::from(receipt.to_bytes())),
        (key.as_str(), bytes),
    ] {
        store
            .create(k, b, "application/json", &[])
            .await
            .map_err(|e| format!("write {k}: {e}"))?;
    }
    Ok(())
}

/// Seals once; the time, the requests it made, and what it sealed.
async fn timed_seal(env: &Env, sealer: &Sealer) -> Res<(Duration, String, usize)> {
    env.s3.reset_requests();
    let started = Instant::now();
    let outcome = sealer
        .seal(SystemTime::now())
        .await
        .map_err(|e| format!("seal: {e}"))?;
    let elapsed = started.elapsed();
    let manifests = match outcome {
        SealOutcome::Sealed(r) => r.manifests,
        other => return Err(format!("seal: {other:?}")),
    };
    Ok((elapsed, request_mix(&env.s3.requests()), manifests))
}

/// The baseline a seal without receipts needs at least: every object of the archive listed
/// (ListObjectsV2, 1,000 keys a page) and each manifest's HeadObject.
async fn listing_baseline(env: &Env, prefix: &str) -> Res<(Duration, String, usize)> {
    use futures_util::StreamExt as _;
    env.s3.reset_requests();
    let started = Instant::now();
    let store = Store::new(env.client.clone(), BUCKET, 5 << 20);
    let listed = store
        .list_folder(prefix)
        .await
        .map_err(|e| format!("list: {e}"))?;
    let manifests: Vec<String> = listed
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.contains("/manifest-") && !k.contains("/ledger/"))
        .collect();
    let heads = futures_util::stream::iter(&manifests)
        .map(|k| store.head(k, None))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for head in heads {
        head.map_err(|e| format!("head: {e}"))?;
    }
    Ok((
        started.elapsed(),
        request_mix(&env.s3.requests()),
        manifests.len(),
    ))
}

/// Writes `count` objects of an archive made earlier straight into the local server's
/// folder (as many files; far faster than as many PutObjects, and the seal never reads
/// them anyway).
fn fill_archive(env: &Env, prefix: &str, count: usize) -> Res<()> {
    let bucket = env.root.path().join("s3").join(BUCKET);
    for n in 0..count {
        let folder = bucket.join(format!(
            "{prefix}old-session-{:05}/attempt-{:05}",
            n / 100,
            n / 100
        ));
        if n % 100 == 0 {
            std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        let name = if n % 10 == 0 {
            format!(
                "manifest-20240101T000000{:06}Z-{n:016x}.json",
                n % 1_000_000
            )
        } else {
            format!("image-{n}.jpg")
        };
        std::fs::write(folder.join(name), b"x").map_err(|e| format!("fill: {e}"))?;
    }
    Ok(())
}

async fn bench_seal(env: &Env, p: &Params) -> Res<Vec<Table>> {
    use futures_util::StreamExt as _;
    let store = Store::new(env.client.clone(), BUCKET, 5 << 20);
    let settings = SealSettings::default();
    let mut table = Table::new(
        "Item 11: the ledger's seal (local s3s-fs; one digest per seal)",
        &["case", "manifests sealed", "seal time", "S3 requests"],
    );

    // A busy hour: N manifests written, then one seal; the next seal (an empty hour).
    let busy = "seal-busy/";
    let sealer = Sealer::new(store.clone(), busy, settings);
    timed_seal(env, &sealer).await?;
    let written = Instant::now();
    let writes: Vec<Res<()>> = futures_util::stream::iter(0..p.seal_busy_manifests)
        .map(|n| write_sealable(&store, busy, n))
        .buffer_unordered(64)
        .collect()
        .await;
    writes.into_iter().collect::<Res<Vec<_>>>()?;
    let write_time = written.elapsed();
    let (t, requests, n) = timed_seal(env, &sealer).await?;
    table.row(vec![
        format!("{} manifests in the period", p.seal_busy_manifests),
        n.to_string(),
        ms(t),
        requests,
    ]);
    let (t, requests, n) = listing_baseline(env, busy).await?;
    table.row(vec![
        "  baseline: list the archive, head each manifest".into(),
        n.to_string(),
        ms(t),
        requests,
    ]);
    let (t, requests, n) = timed_seal(env, &sealer).await?;
    table.row(vec![
        "the next period, nothing written".into(),
        n.to_string(),
        ms(t),
        requests,
    ]);

    // Large archives made earlier, sealed once while empty: new manifests on top.
    for (i, &objects) in p.seal_archive_objects.iter().enumerate() {
        let prefix = format!("seal-big-{i}/");
        let sealer = Sealer::new(store.clone(), &prefix, settings);
        timed_seal(env, &sealer).await?;
        let filling = Instant::now();
        fill_archive(env, &prefix, objects)?;
        eprintln!(
            "(item 11: {objects} objects written in {:.1} s)",
            filling.elapsed().as_secs_f64()
        );
        for n in 0..p.seal_new_manifests {
            write_sealable(&store, &prefix, n).await?;
        }
        let (t, requests, sealed) = timed_seal(env, &sealer).await?;
        table.row(vec![
            format!("archive of {objects} objects, {} new", p.seal_new_manifests),
            sealed.to_string(),
            ms(t),
            requests,
        ]);
        if i == 0 {
            let (t, requests, n) = listing_baseline(env, &prefix).await?;
            table.row(vec![
                "  baseline: list the archive, head each manifest".into(),
                n.to_string(),
                ms(t),
                requests,
            ]);
        } else {
            table.row(vec![
                "  baseline: list the archive, head each manifest".into(),
                (objects / 10 + p.seal_new_manifests).to_string(),
                "not timed".into(),
                format!(
                    "{} LIST, {} HEAD (computed)",
                    objects.div_ceil(1000),
                    objects / 10 + p.seal_new_manifests
                ),
            ]);
        }
    }
    let mut notes = Table::new(
        "Item 11: writing the busy hour",
        &["manifests", "time", "per second"],
    );
    notes.row(vec![
        p.seal_busy_manifests.to_string(),
        ms(write_time),
        format!(
            "{:.0}",
            p.seal_busy_manifests as f64 / write_time.as_secs_f64()
        ),
    ]);
    Ok(vec![table, notes])
}

// ---------------------------------------------------------------------------------------
// 7. backfill: sessions per second and peak memory of the CLI

/// Where item 7 archives: apart from the other items.
const BACKFILL_PREFIX: &str = "backfill/";
/// Veriff latency of item 7.
const BACKFILL_LATENCY: Duration = Duration::from_millis(30);
/// Size of each image of item 7.
const BACKFILL_IMAGE: usize = 4_000;

/// The `veriff-archiver` binary built with this benchmark's profile (`target/<profile>/`).
fn sibling_cli() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join("veriff-archiver");
    path.is_file().then_some(path)
}

/// One backfill run: wall time, peak RSS (KiB), Veriff requests made, the JSON report.
async fn run_backfill(
    env: &Env,
    cli: &Path,
    sessions: &Path,
) -> Res<(Duration, u64, usize, Value)> {
    let out_path = env.root.path().join("backfill.json");
    let err_path = env.root.path().join("backfill.log");
    let out = File::create(&out_path).map_err(|e| format!("output file: {e}"))?;
    let err = File::create(&err_path).map_err(|e| format!("log file: {e}"))?;
    let requests_before = env.fake.requests().len();
    let started = Instant::now();
    let mut child = Command::new(cli)
        .arg("backfill")
        .arg("--sessions")
        .arg(sessions)
        .args(["--concurrency", "32", "--rate", "10000", "--json"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .env("AWS_ENDPOINT_URL_S3", env.s3.endpoint())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.function_env(&[("ARCHIVE_PREFIX", BACKFILL_PREFIX)]))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", cli.display()))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let report: Value = serde_json::from_str(&text).map_err(|e| {
        let log = std::fs::read_to_string(&err_path).unwrap_or_default();
        format!("backfill ({status}) printed no JSON report ({e}): {log}")
    })?;
    if !status.success() || report["summary"]["failed"] != 0 {
        return Err(format!("backfill exited with {status}: {report}"));
    }
    Ok((
        elapsed,
        peak,
        env.fake.requests().len() - requests_before,
        report,
    ))
}

async fn bench_backfill(env: &Env, p: &Params, cli: &Path) -> Res<Vec<Table>> {
    let n = p.backfill_sessions;
    // The sessions: each decided on its only attempt, with 1 or 2 images of 4 KB.
    let mut ids = String::new();
    let mut files = 0;
    for i in 0..n {
        let session_id = format!("backfill-{i:06}-s");
        let attempt_id = format!("backfill-{i:06}-a");
        let images: Vec<Value> = (0..1 + i % 2)
            .map(|j| {
                let id = format!("backfill-{i:06}-m{j}");
                let data = deterministic_bytes((i * 2 + j) as u64, BACKFILL_IMAGE);
                env.fake
                    .set_media(&id, MediaContent::bytes(data, "image/jpeg"));
                json!({
                    "id": id, "name": format!("face-{j}"), "context": format!("face-{j}"),
                    "timestamp": null, "size": BACKFILL_IMAGE, "mimetype": "image/jpeg",
                    "url": format!("https://example.com/v1/media/{id}"), "sessionId": session_id,
                })
            })
            .collect();
        files += images.len();
        let document =
            json!({ "status": "success", "images": images, "videos": [], "nfcDocuments": [] })
                .to_string();
        env.fake.set_session_media(&session_id, document.clone());
        env.fake.set_attempt_media(&attempt_id, document);
        env.fake.set_session_decision(
            &session_id,
            decision_webhook(&session_id, &attempt_id, "approved", DECISION_TIME),
        );
        ids.push_str(&session_id);
        ids.push('\n');
    }
    let list = env.root.path().join("backfill-sessions.txt");
    std::fs::write(&list, ids).map_err(|e| format!("session list: {e}"))?;
    env.fake.set_latency(BACKFILL_LATENCY);

    let (first, first_peak, requests, report) = run_backfill(env, cli, &list).await?;
    if report["summary"]["archived"] != n {
        return Err(format!(
            "backfill archived {} of {n}",
            report["summary"]["archived"]
        ));
    }
    let (again, again_peak, again_requests, report) = run_backfill(env, cli, &list).await?;
    if report["summary"]["alreadyArchived"] != n {
        return Err(format!(
            "rerun: {} of {n} already archived",
            report["summary"]["alreadyArchived"]
        ));
    }
    env.fake.set_latency(Duration::ZERO);

    let per_session = requests as f64 / n as f64;
    let rate = |d: Duration| format!("{:.0}", n as f64 / d.as_secs_f64());
    let mut table = Table::new(
        format!(
            "7. backfill (the veriff-archiver binary, {} build): {n} sessions, {files} images of \
             4 KB, {} ms per Veriff request, --concurrency 32 --rate 10000",
            if cli.to_string_lossy().contains("/release/") {
                "release"
            } else {
                "debug"
            },
            BACKFILL_LATENCY.as_millis()
        ),
        &[
            "run",
            "time",
            "sessions/s",
            "Veriff requests",
            "peak RSS (VmHWM)",
        ],
    );
    table.row(vec![
        "first run (everything archived)".into(),
        ms(first),
        rate(first),
        format!("{requests} ({per_session:.1}/session)"),
        mib(first_peak),
    ]);
    table.row(vec![
        "same command again (all already archived)".into(),
        ms(again),
        rate(again),
        format!(
            "{again_requests} ({:.1}/session)",
            again_requests as f64 / n as f64
        ),
        mib(again_peak),
    ]);
    table.row(vec![
        format!("at the default --rate 10: {per_session:.1} requests/session"),
        format!("~{:.0} min", n as f64 * per_session / 10.0 / 60.0),
        format!("{:.1}", 10.0 / per_session),
        "-".into(),
        "-".into(),
    ]);
    Ok(vec![table])
}

// ---------------------------------------------------------------------------------------

fn machine_line(args: &Args) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rustc unknown".into());
    let date = humantime::format_rfc3339_seconds(SystemTime::now());
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mode = if args.smoke {
        "smoke (tiny sizes, numbers not meaningful)"
    } else {
        "full"
    };
    format!(
        "veriff-archiver bench: {date}; nproc {cpus}; {model}; {rustc}; bench {build} build; {mode}"
    )
}

async fn run(args: &Args) -> Res<()> {
    let mut p = if args.smoke {
        Params::smoke()
    } else {
        Params::full()
    };
    if let Some(n) = args.backfill_sessions {
        p.backfill_sessions = n;
    }
    let wanted = |n: u8| args.only.is_none_or(|o| o == n);
    println!("{}", machine_line(args));
    let env = Env::start().await?;
    let mut missing = Vec::new();
    let cli = args.cli.clone().or_else(sibling_cli);
    for item in 1..=13_u8 {
        if !wanted(item) {
            continue;
        }
        let started = Instant::now();
        let tables = match (item, args.bootstrap.as_deref()) {
            (1, _) => bench_images(&env, &p).await?,
            (2, _) => bench_throughput(&env, &p).await?,
            (3, Some(b)) => bench_memory(&env, &p, b).await?,
            (4, Some(b)) => bench_cold_start(&env, &p, b).await?,
            (5, Some(b)) => bench_size(b)?,
            (6, _) => bench_audit(&env, &p).await?,
            (11, _) => bench_seal(&env, &p).await?,
            (12, _) => customers::bench_find(&env, &p).await?,
            (13, _) => match archiver_devkit::MotoServer::find_executable() {
                Ok(_) => customers::bench_retain(&env, &p).await?,
                Err(e) => {
                    println!("\nitem 13 skipped: it needs moto_server for Object Lock ({e})");
                    continue;
                }
            },
            (9, Some(b)) => bench_link(&env, &p, b).await?,
            (10, Some(b)) => bench_hashing(&env, &p, b).await?,
            (8, Some(b)) => match archiver_devkit::MotoServer::find_executable() {
                Ok(_) => bench_queue(&env, &p, b).await?,
                Err(e) => {
                    println!("\nitem 8 skipped: it needs moto_server for a local SQS ({e})");
                    continue;
                }
            },
            (7, _) => match &cli {
                Some(cli) => bench_backfill(&env, &p, cli).await?,
                None => {
                    println!(
                        "\nitem 7 skipped: no veriff-archiver binary next to this benchmark; build \
                         it with `cargo build{} --bin veriff-archiver` or give --cli PATH",
                        if cfg!(debug_assertions) {
                            ""
                        } else {
                            " --release"
                        }
                    );
                    continue;
                }
            },
            _ => {
                missing.push(item.to_string());
                continue;
            }
        };
        for table in &tables {
            table.print();
        }
        eprintln!(
            "(item {item} took {:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    if !missing.is_empty() {
        println!(
            "\nitems {} skipped: they need --bootstrap PATH (scripts/bench.sh builds it)",
            missing.join(", ")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench failed: {message}");
            ExitCode::FAILURE
        }
    }
}
