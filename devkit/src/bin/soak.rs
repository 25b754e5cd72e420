//! The soak: many decisions through the release `bootstrap`, with every fault at once from
//! one seeded schedule, then an oracle over the end state that does not trust the
//! function's own bookkeeping.
//!
//! `soak --seed N --decisions N [--mode direct|queue|both] --bootstrap PATH [--workers N]
//! [--plan-only]` (`scripts/soak.sh` builds the bootstrap and starts what it needs).
//!
//! Real parts: the release bootstrap (several processes, each behind a Lambda Runtime API
//! on loopback, killed with SIGKILL and restarted), the devkit's Veriff fake, s3s-fs (the
//! archive) and, in queue mode, moto_server's SQS.
//!
//! The world (from the seed): sessions of one or two attempts (a resubmitted first one),
//! images, NFC files and videos of several sizes (multipart above 5 MiB), sessions Veriff
//! deleted (404 listings), Full Auto results; decisions, re-decisions, late older
//! decisions, duplicates delivered at once. Each delivery draws faults from the same seed:
//! Veriff 5xx, 429 with Retry-After, latency, truncated and reset bodies, wrong and missing
//! signatures; S3 5xx, SlowDown, latency, 412 on a write, an outage of several requests;
//! the function killed mid-invocation, or given a deadline too short. Every decision is
//! redelivered until it is answered 200 (at most 40 times, as Veriff retries), and queue
//! records come back after their visibility timeout until the consumer takes them.
//!
//! The oracle: the ledger sealed, then `verify --deep` with the ledger (the library's
//! auditor) clean; every decision exactly one manifest naming its own attempt, each listed
//! medium stored with its bytes or skipped with a reason; no multipart upload open beyond
//! the kills and deadlines that could leave one (the bucket's lifecycle rule aborts them);
//! downloads per medium within the bound of 4 tries per delivery that could download;
//! no personal value, secret or signature in any log line. The same seed gives the same
//! schedule (its SHA-256 is printed; `--plan-only` prints it without running).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use archiver_devkit::runtime_api::RuntimeApi;
use archiver_devkit::{
    FakeConfig, FakeVeriff, Fault, FaultKind, LocalS3, MediaContent, MotoServer, S3Fault,
    S3FaultKind, decision_webhook, full_auto_webhook, signed_webhook_event,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const API_KEY: &str = "soak-api-key";
const SECRET: &str = "soak-shared-secret";
const BUCKET: &str = "veriff-archive";
const PREFIX: &str = "soak/";
const S3_ACCESS_KEY: &str = "soak-access-key";
const S3_SECRET_KEY: &str = "soak-secret-key";
/// Deliveries of one decision before the soak gives up on it (Veriff retries for days).
const MAX_DELIVERIES: usize = 40;
/// The function's tries per download (src/retry.rs, `max_attempts`).
const TRIES_PER_DOWNLOAD: usize = 4;
/// A normal invocation's time limit.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------------------------------
// The seeded generator (SplitMix64: small, well known, and the same everywhere).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------------------
// The world.

#[derive(Debug, Clone, serde::Serialize)]
struct Medium {
    id: String,
    field: &'static str,
    context: String,
    size: u64,
    seed: u64,
    mimetype: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Attempt {
    id: String,
    media: Vec<Medium>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Session {
    id: String,
    attempts: Vec<Attempt>,
    /// Veriff deleted it: every listing answers 404.
    deleted: bool,
}

/// One decision to deliver (`copies` at once).
#[derive(Debug, Clone, serde::Serialize)]
struct Planned {
    session: usize,
    attempt: usize,
    status: &'static str,
    time: String,
    full_auto: bool,
    copies: usize,
    /// Faults drawn for each delivery (by delivery number, then copy).
    faults: Vec<Vec<FaultPlan>>,
}

/// A fault of the schedule.
#[derive(Debug, Clone, serde::Serialize)]
enum FaultPlan {
    VeriffStatus(u16),
    VeriffTooMany,
    VeriffLatency(u64),
    VeriffTruncate,
    VeriffReset,
    VeriffWrongSignature,
    VeriffUnsigned,
    S3Status(u16),
    S3Latency(u64),
    S3PreconditionFailed,
    S3Outage(usize),
    Kill(u64),
    Deadline(u64),
}

impl FaultPlan {
    fn class(&self) -> &'static str {
        match self {
            FaultPlan::VeriffStatus(_) => "veriff 5xx",
            FaultPlan::VeriffTooMany => "veriff 429 + Retry-After",
            FaultPlan::VeriffLatency(_) => "veriff latency",
            FaultPlan::VeriffTruncate => "veriff truncated body",
            FaultPlan::VeriffReset => "veriff reset body",
            FaultPlan::VeriffWrongSignature => "veriff wrong signature",
            FaultPlan::VeriffUnsigned => "veriff missing signature",
            FaultPlan::S3Status(503) => "s3 SlowDown",
            FaultPlan::S3Status(_) => "s3 5xx",
            FaultPlan::S3Latency(_) => "s3 latency",
            FaultPlan::S3PreconditionFailed => "s3 412 on a write",
            FaultPlan::S3Outage(_) => "s3 outage",
            FaultPlan::Kill(_) => "function SIGKILL",
            FaultPlan::Deadline(_) => "function deadline",
        }
    }

    fn draw(rng: &mut Rng) -> FaultPlan {
        match rng.below(13) {
            0 => FaultPlan::VeriffStatus([500, 502, 503][rng.below(3) as usize]),
            1 => FaultPlan::VeriffTooMany,
            2 => FaultPlan::VeriffLatency(rng.range(20, 400)),
            3 => FaultPlan::VeriffTruncate,
            4 => FaultPlan::VeriffReset,
            5 => FaultPlan::VeriffWrongSignature,
            6 => FaultPlan::VeriffUnsigned,
            7 => FaultPlan::S3Status([500, 503][rng.below(2) as usize]),
            8 => FaultPlan::S3Latency(rng.range(10, 200)),
            9 => FaultPlan::S3PreconditionFailed,
            10 => FaultPlan::S3Outage(rng.range(3, 12) as usize),
            11 => FaultPlan::Kill(rng.range(5, 600)),
            _ => FaultPlan::Deadline(rng.range(2_100, 3_500)),
        }
    }
}

struct World {
    sessions: Vec<Session>,
    decisions: Vec<Planned>,
}

fn medium(rng: &mut Rng, tag: &str, n: usize) -> Medium {
    let (field, context, size, mimetype) = match rng.below(20) {
        0 => (
            "videos",
            "selfid_video".to_string(),
            rng.range(1 << 20, 12 << 20),
            "video/mp4",
        ),
        1 | 2 => (
            "nfcDocuments",
            format!("nfc-{n}"),
            rng.range(2_000, 40_000),
            "application/octet-stream",
        ),
        _ => (
            "images",
            ["document-front", "document-back", "face", "face-pre"][rng.below(4) as usize]
                .to_string(),
            rng.range(5_000, 300_000),
            "image/jpeg",
        ),
    };
    Medium {
        id: format!("{tag}-m{n}"),
        field,
        context,
        size,
        seed: rng.next(),
        mimetype,
    }
}

fn plan(seed: u64, decisions: usize) -> World {
    let mut rng = Rng(seed);
    let mut sessions = Vec::new();
    let mut planned = Vec::new();
    let time = |n: usize, minutes: usize| {
        format!(
            "2025-03-{:02}T{:02}:{:02}:07.412Z",
            1 + n % 28,
            (n / 28) % 24,
            minutes % 60
        )
    };
    while planned.len() < decisions {
        let s = sessions.len();
        let id = format!("50a4{s:04x}-0000-4000-8000-{seed:012x}");
        let resubmitted = rng.chance(20);
        let attempts: Vec<Attempt> = (0..if resubmitted { 2 } else { 1 })
            .map(|a| {
                let tag = format!("{id}-{a}");
                let count = rng.range(2, 6) as usize;
                Attempt {
                    id: format!("{id}-a{a}"),
                    media: (0..count).map(|n| medium(&mut rng, &tag, n)).collect(),
                }
            })
            .collect();
        let deleted = rng.chance(4);
        let last = attempts.len() - 1;
        let mut decide = |attempt: usize,
                          status: &'static str,
                          minute: usize,
                          full_auto: bool,
                          rng: &mut Rng| {
            let copies = if rng.chance(15) { 2 } else { 1 };
            let faults = (0..MAX_DELIVERIES)
                .map(|d| {
                    (0..copies)
                        .flat_map(|_| {
                            // Fewer faults as redeliveries go on, as outages end.
                            let n = if d < 6 { rng.below(3) } else { rng.below(2) };
                            (0..n).map(|_| FaultPlan::draw(rng)).collect::<Vec<_>>()
                        })
                        .collect()
                })
                .collect();
            planned.push(Planned {
                session: s,
                attempt,
                status,
                time: time(s, minute),
                full_auto,
                copies,
                faults,
            });
        };
        if deleted {
            decide(last, "expired", 0, false, &mut rng);
        } else {
            if resubmitted {
                decide(0, "resubmission_requested", 1, false, &mut rng);
            }
            let full_auto = rng.chance(15);
            let status = if rng.chance(75) {
                "approved"
            } else {
                "declined"
            };
            decide(last, status, 10, full_auto, &mut rng);
            if rng.chance(10) {
                // A re-decision, or a late older decision delivered after it.
                let minute = if rng.chance(50) { 20 } else { 5 };
                decide(last, "declined", minute, false, &mut rng);
            }
        }
        sessions.push(Session {
            id,
            attempts,
            deleted,
        });
    }
    planned.truncate(decisions);
    // Shuffle the delivery order (a late older decision may come first, or last).
    for i in (1..planned.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        planned.swap(i, j);
    }
    World {
        sessions,
        decisions: planned,
    }
}

fn schedule_digest(world: &World) -> String {
    let text = serde_json::to_vec(&(&world.sessions, &world.decisions)).expect("JSON");
    hex::encode(Sha256::digest(text))
}

fn listing(session: &Session, attempt: &Attempt) -> String {
    let mut doc = json!({"status": "success", "images": [], "videos": [], "nfcDocuments": []});
    for m in &attempt.media {
        let mut item = json!({
            "id": m.id, "name": m.context, "context": m.context, "timestamp": null,
            "size": m.size, "mimetype": m.mimetype,
            "url": format!("https://example.com/v1/media/{}", m.id), "sessionId": session.id,
        });
        if m.field == "videos" {
            item["duration"] = json!(1 + m.size / 750_000);
        }
        doc[m.field].as_array_mut().expect("array").push(item);
    }
    doc.to_string()
}

fn register(fake: &FakeVeriff, world: &World) {
    for session in world.sessions.iter().filter(|s| !s.deleted) {
        let last = session.attempts.last().expect("an attempt");
        fake.set_session_media(&session.id, listing(session, last));
        let mut verifications = Vec::new();
        for (i, attempt) in session.attempts.iter().enumerate() {
            fake.set_attempt_media(&attempt.id, listing(session, attempt));
            verifications.push(json!({"id": attempt.id, "status": "submitted",
                "createdTime": format!("2025-03-01T10:0{i}:00.000Z")}));
            for m in &attempt.media {
                fake.set_media(&m.id, MediaContent::generated(m.size, m.seed, m.mimetype));
            }
        }
        fake.set_session_attempts(
            &session.id,
            json!({"status": "success", "verifications": verifications}).to_string(),
        );
    }
}

fn body_of(world: &World, d: &Planned) -> String {
    let session = &world.sessions[d.session];
    let attempt = &session.attempts[d.attempt];
    if d.full_auto {
        full_auto_webhook(&session.id, &attempt.id, d.status, &d.time, Some(0.93))
    } else {
        decision_webhook(&session.id, &attempt.id, d.status, &d.time)
    }
}

// ---------------------------------------------------------------------------------------
// The function: bootstrap processes behind Runtime APIs.

struct Worker {
    api: RuntimeApi,
    child: Mutex<Child>,
    /// Bumped on every kill: invocations waiting on this worker give up.
    generation: tokio::sync::watch::Sender<u64>,
    env: Vec<(String, String)>,
    log: PathBuf,
    bootstrap: PathBuf,
}

impl Worker {
    async fn start(bootstrap: &Path, env: Vec<(String, String)>, log: PathBuf) -> Res<Worker> {
        let api = RuntimeApi::start()
            .await
            .map_err(|e| format!("Runtime API: {e}"))?;
        let child = spawn(bootstrap, &api, &env, &log)?;
        Ok(Worker {
            api,
            child: Mutex::new(child),
            generation: tokio::sync::watch::channel(0).0,
            env,
            log,
            bootstrap: bootstrap.to_path_buf(),
        })
    }

    /// SIGKILL, then a fresh process on the same Runtime API.
    fn kill_and_restart(&self) -> Res<()> {
        let mut child = self.child.lock().expect("child");
        let _ = child.kill();
        let _ = child.wait();
        *child = spawn(&self.bootstrap, &self.api, &self.env, &self.log)?;
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Invokes; `Err` when the function failed, timed out or was killed meanwhile.
    async fn invoke(&self, event: Value, timeout: Duration) -> Res<Value> {
        let mut generation = self.generation.subscribe();
        tokio::select! {
            outcome = self.api.invoke(event, timeout) => outcome,
            _ = generation.changed() => Err("killed".into()),
        }
    }
}

fn spawn(bootstrap: &Path, api: &RuntimeApi, env: &[(String, String)], log: &Path) -> Res<Child> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("log: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("log: {e}"))?;
    Command::new(bootstrap)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
        .env("AWS_LAMBDA_FUNCTION_NAME", "veriff-archiver")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", bootstrap.display()))
}

// ---------------------------------------------------------------------------------------
// The run.

#[derive(Default)]
struct Tally {
    faults: Mutex<BTreeMap<&'static str, usize>>,
    deliveries: AtomicUsize,
    redeliveries: AtomicUsize,
    kills: AtomicUsize,
    deadlines: AtomicUsize,
    /// Per decision: deliveries that could download (not answered already_archived).
    downloading: Mutex<HashMap<usize, usize>>,
    /// Decisions never answered 200 within the bound.
    gave_up: Mutex<Vec<usize>>,
    queue_receives: AtomicUsize,
    queue_redriven: AtomicUsize,
    /// Queue mode: records received per session (each could download).
    session_receives: Mutex<HashMap<String, usize>>,
}

struct Parts {
    fake: FakeVeriff,
    s3: LocalS3,
    client: Client,
    _root: tempfile::TempDir,
    logs: PathBuf,
}

fn s3_client(endpoint: &str) -> Client {
    Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
                None,
                None,
                "soak",
            ))
            .build(),
    )
}

/// Applies one fault of the schedule; returns a kill delay or an invocation deadline.
fn apply(
    parts: &Parts,
    world: &World,
    d: &Planned,
    fault: &FaultPlan,
    rng: &mut Rng,
    tally: &Tally,
) -> (Option<u64>, Option<u64>) {
    *tally
        .faults
        .lock()
        .expect("tally")
        .entry(fault.class())
        .or_default() += 1;
    let attempt = &world.sessions[d.session].attempts[d.attempt];
    let mut some_medium = || {
        let m = &attempt.media[rng.below(attempt.media.len() as u64) as usize];
        format!("/v1/media/{}", m.id)
    };
    match fault {
        FaultPlan::VeriffStatus(code) => {
            parts
                .fake
                .inject(Fault::new("*", FaultKind::Status(*code), 1))
        }
        FaultPlan::VeriffTooMany => parts.fake.inject(Fault::new(
            "*",
            FaultKind::TooManyRequests {
                retry_after_secs: 1,
            },
            1,
        )),
        FaultPlan::VeriffLatency(ms) => parts.fake.inject(Fault::new(
            "*",
            FaultKind::Latency(Duration::from_millis(*ms)),
            2,
        )),
        FaultPlan::VeriffTruncate => parts.fake.inject(Fault::new(
            some_medium(),
            FaultKind::Truncate { after: 100 },
            1,
        )),
        FaultPlan::VeriffReset => parts.fake.inject(Fault::new(
            some_medium(),
            FaultKind::ResetMidBody { after: 50 },
            1,
        )),
        FaultPlan::VeriffWrongSignature => {
            parts
                .fake
                .inject(Fault::new("*", FaultKind::WrongSignature, 1))
        }
        FaultPlan::VeriffUnsigned => parts.fake.inject(Fault::new("*", FaultKind::Unsigned, 1)),
        FaultPlan::S3Status(code) => {
            parts
                .s3
                .inject(S3Fault::new(None, S3FaultKind::Status(*code), 1))
        }
        FaultPlan::S3Latency(ms) => parts.s3.inject(S3Fault::new(
            None,
            S3FaultKind::Latency(Duration::from_millis(*ms)),
            3,
        )),
        FaultPlan::S3PreconditionFailed => {
            parts
                .s3
                .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(412), 1))
        }
        FaultPlan::S3Outage(n) => parts
            .s3
            .inject(S3Fault::new(None, S3FaultKind::Status(503), *n)),
        FaultPlan::Kill(ms) => return (Some(*ms), None),
        FaultPlan::Deadline(ms) => return (None, Some(*ms)),
    }
    (None, None)
}

/// Delivers one decision (each copy) until it is answered 200; returns the answers'
/// statuses.
async fn deliver(
    parts: &Parts,
    world: &World,
    workers: &[Arc<Worker>],
    index: usize,
    tally: &Tally,
    seed: u64,
) -> Res<()> {
    let d = &world.decisions[index];
    let event = signed_webhook_event(body_of(world, d).as_bytes(), SECRET, API_KEY, false);
    let copies = futures_util::stream::iter(0..d.copies).map(|copy| {
        let event = event.clone();
        async move {
            let mut rng = Rng(seed ^ (index as u64) << 8 ^ copy as u64);
            for delivery in 0..MAX_DELIVERIES {
                tally.deliveries.fetch_add(1, Ordering::Relaxed);
                if delivery > 0 {
                    tally.redeliveries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50 * delivery.min(10) as u64)).await;
                }
                let worker = &workers[rng.below(workers.len() as u64) as usize];
                let (mut kill, mut deadline) = (None, None);
                let faults: Vec<&FaultPlan> = d.faults[delivery].iter().collect();
                for fault in faults {
                    let (k, dl) = apply(parts, world, d, fault, &mut rng, tally);
                    kill = kill.or(k);
                    deadline = deadline.or(dl);
                }
                if let Some(ms) = kill {
                    tally.kills.fetch_add(1, Ordering::Relaxed);
                    let worker = worker.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        let _ = worker.kill_and_restart();
                    });
                }
                if deadline.is_some() {
                    tally.deadlines.fetch_add(1, Ordering::Relaxed);
                }
                let timeout = deadline.map_or(INVOKE_TIMEOUT, Duration::from_millis);
                match worker.invoke(event.clone(), timeout).await {
                    Ok(answer) if answer["statusCode"] == 200 => {
                        let body: Value = answer["body"]
                            .as_str()
                            .and_then(|b| serde_json::from_str(b).ok())
                            .unwrap_or(Value::Null);
                        if body["status"] != "already_archived" {
                            *tally
                                .downloading
                                .lock()
                                .expect("tally")
                                .entry(index)
                                .or_default() += 1;
                        }
                        return;
                    }
                    _ => {
                        *tally
                            .downloading
                            .lock()
                            .expect("tally")
                            .entry(index)
                            .or_default() += 1;
                    }
                }
            }
            tally.gave_up.lock().expect("tally").push(index);
        }
    });
    copies.buffer_unordered(2).collect::<Vec<()>>().await;
    Ok(())
}

fn function_env(parts: &Parts, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("VERIFF_API_URL", parts.fake.base_url()),
        ("VERIFF_API_KEY", API_KEY.into()),
        ("VERIFF_SHARED_SECRET", SECRET.into()),
        ("ARCHIVE_BUCKET", BUCKET.into()),
        ("ARCHIVE_PREFIX", PREFIX.into()),
        ("ARCHIVE_VIDEOS", "true".into()),
        ("PART_SIZE_MIB", "5".into()),
        ("COPY_MEMORY_MIB", "32".into()),
        ("AWS_ENDPOINT_URL_S3", parts.s3.endpoint()),
        (
            "ARCHIVE_INDEX_KEY",
            "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// Queue mode: receives, invokes the consumer, deletes what it took, until every message
/// is gone (failed records come back after the visibility timeout).
async fn consume(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    arn: &str,
    consumers: &[Arc<Worker>],
    tally: &Tally,
    done_delivering: &tokio::sync::watch::Receiver<bool>,
    seed: u64,
) -> Res<()> {
    let mut rng = Rng(seed ^ 0xC0_5E);
    let mut idle_rounds = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(5)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ReceiveMessage: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        let messages = out.messages().to_vec();
        if messages.is_empty() {
            let attrs = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .map_err(|e| format!("GetQueueAttributes: {e}"))?;
            let count = |name| {
                attrs
                    .attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let waiting = count(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
            ) + count(
                aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            );
            if *done_delivering.borrow() && waiting == 0 {
                idle_rounds += 1;
                if idle_rounds >= 2 {
                    return Ok(());
                }
            }
            continue;
        }
        idle_rounds = 0;
        tally
            .queue_receives
            .fetch_add(messages.len(), Ordering::Relaxed);
        for m in &messages {
            let body: Value = m
                .body()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            if let Some(session) = body["sessionId"].as_str() {
                *tally
                    .session_receives
                    .lock()
                    .expect("tally")
                    .entry(session.to_string())
                    .or_default() += 1;
            }
        }
        let redriven = messages
            .iter()
            .filter(|m| {
                m.attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                    .is_some_and(|c| c != "1")
            })
            .count();
        tally.queue_redriven.fetch_add(redriven, Ordering::Relaxed);
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                    "body": m.body(), "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
                })
            })
            .collect();
        let worker = &consumers[rng.below(consumers.len() as u64) as usize];
        if rng.chance(10) {
            tally.kills.fetch_add(1, Ordering::Relaxed);
            *tally
                .faults
                .lock()
                .expect("tally")
                .entry("consumer SIGKILL")
                .or_default() += 1;
            let worker = worker.clone();
            let ms = rng.range(5, 400);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = worker.kill_and_restart();
            });
        }
        let failed: BTreeSet<String> = match worker
            .invoke(json!({"Records": records}), INVOKE_TIMEOUT)
            .await
        {
            Ok(answer) => answer["batchItemFailures"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            // The whole batch failed: every record comes back.
            Err(_) => messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_string))
                .collect(),
        };
        for m in &messages {
            if failed.contains(m.message_id().unwrap_or_default()) {
                continue;
            }
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("DeleteMessage: {e}"))?;
        }
    }
}

/// Breaks the archive as an insider or a bug would: the first stored file overwritten
/// with other bytes, the last manifest deleted.
async fn sabotage(parts: &Parts) -> Res<()> {
    let listed = parts
        .client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(PREFIX)
        .send()
        .await
        .map_err(|e| format!("list: {e}"))?;
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    let file = keys
        .iter()
        .find(|k| !k.contains("/manifest-") && !k.contains("/ledger/") && !k.contains("/index/"));
    let manifest = keys
        .iter()
        .rev()
        .find(|k| k.contains("/manifest-") && !k.contains("/ledger/") && !k.contains("/index/"));
    if let Some(key) = file {
        parts
            .client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(b"sabotage".to_vec().into())
            .send()
            .await
            .map_err(|e| format!("put: {e}"))?;
    }
    if let Some(key) = manifest {
        parts
            .client
            .delete_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("delete: {e}"))?;
    }
    println!("sabotaged: overwrote {file:?}, deleted {manifest:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The oracle.

/// A decision as its manifest records it: Full Auto or not, status, decision time.
type DecisionId<'a> = (bool, &'a str, &'a str);

struct Verdict {
    lines: Vec<(String, bool, String)>,
}

impl Verdict {
    fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.lines.push((name.to_string(), ok, detail));
    }
    fn passed(&self) -> bool {
        self.lines.iter().all(|(_, ok, _)| *ok)
    }
}

async fn oracle(parts: &Parts, world: &World, tally: &Tally) -> Res<Verdict> {
    use veriff_archiver::audit::{AuditOptions, Auditor, LedgerOptions};
    use veriff_archiver::manifest::Manifest;
    use veriff_archiver::store::Store;
    let mut v = Verdict { lines: Vec::new() };
    let store = Store::new(parts.client.clone(), BUCKET, 5 << 20);

    // verify --deep with the ledger (sealed by the run).
    let auditor = Auditor::new(parts.client.clone(), BUCKET);
    let options = AuditOptions {
        prefix: PREFIX.into(),
        sessions: Vec::new(),
        deep: true,
        concurrency: 16,
        public_key: None,
        ledger: Some(LedgerOptions {
            tsa_cert: None,
            now: SystemTime::now(),
        }),
        expected_sessions: Vec::new(),
    };
    let report = auditor
        .audit(&options, &|_, _| {})
        .await
        .map_err(|e| format!("verify: {e}"))?;
    let problems = report.summary.problems();
    let ledger = report
        .ledger
        .as_ref()
        .map(|l| {
            format!(
                "{}/{} digests valid, {}/{} manifests present",
                l.digests_valid, l.digests, l.manifests_present, l.manifests_sealed
            )
        })
        .unwrap_or_default();
    v.check(
        "verify --deep with the ledger: clean",
        problems == 0,
        format!(
            "{} files checked, {problems} problem(s); {ledger}",
            report.summary.files
        ),
    );

    // Every decision: exactly one manifest, its own attempt's media stored or skipped.
    let mut expected: BTreeMap<(usize, usize), BTreeSet<DecisionId<'_>>> = BTreeMap::new();
    for d in &world.decisions {
        expected.entry((d.session, d.attempt)).or_default().insert((
            d.full_auto,
            d.status,
            d.time.as_str(),
        ));
    }
    let (mut manifests, mut wrong) = (0usize, Vec::new());
    let mut stored_keys = BTreeSet::new();
    for ((s, a), wanted) in &expected {
        let session = &world.sessions[*s];
        let attempt = &session.attempts[*a];
        let folder = format!("{PREFIX}{}/{}/", session.id, attempt.id);
        let listed = store
            .list_folder(&folder)
            .await
            .map_err(|e| format!("list: {e}"))?;
        let mut found: BTreeMap<(bool, String, String), usize> = BTreeMap::new();
        for object in listed
            .iter()
            .filter(|o| o.key.contains("/manifest-") && o.key.ends_with(".json"))
        {
            let bytes = store
                .read(&object.key, 16 << 20)
                .await
                .map_err(|e| format!("read: {e}"))?
                .unwrap_or_default();
            let Ok(manifest) = Manifest::parse(&bytes) else {
                wrong.push(format!("{}: unreadable", object.key));
                continue;
            };
            manifests += 1;
            let full_auto = serde_json::to_value(&manifest.decision)
                .ok()
                .and_then(|d| d["webhook"].as_str().map(|w| w == "fullauto"))
                .unwrap_or(false);
            let time = manifest.decision.decision_time.clone().unwrap_or_default();
            *found
                .entry((full_auto, manifest.decision.status.clone(), time))
                .or_default() += 1;
            let media: BTreeMap<&str, &Medium> =
                attempt.media.iter().map(|m| (m.id.as_str(), m)).collect();
            let mut covered = BTreeSet::new();
            for file in &manifest.files {
                stored_keys.insert(file.key.clone());
                match media.get(file.media_id.as_str()) {
                    Some(m) => {
                        let want = archiver_devkit::deterministic_sha256_hex(m.seed, m.size);
                        if file.sha256 != want {
                            wrong.push(format!(
                                "{}: {} recorded with another SHA-256",
                                object.key, file.media_id
                            ));
                        }
                        covered.insert(file.media_id.as_str());
                    }
                    None => wrong.push(format!(
                        "{}: {} is not of the decided attempt",
                        object.key, file.media_id
                    )),
                }
            }
            for skipped in &manifest.skipped {
                if let Some(id) = &skipped.media_id {
                    covered.insert(id.as_str());
                }
            }
            if session.deleted {
                if !manifest.files.is_empty() || manifest.media_unavailable.is_none() {
                    wrong.push(format!(
                        "{}: a deleted session's manifest must be empty and say why",
                        object.key
                    ));
                }
            } else if let Some(missing) = attempt
                .media
                .iter()
                .find(|m| !covered.contains(m.id.as_str()))
            {
                wrong.push(format!(
                    "{}: {} neither stored nor skipped",
                    object.key, missing.id
                ));
            }
        }
        for (full_auto, status, time) in wanted {
            let n = found
                .remove(&(*full_auto, status.to_string(), time.to_string()))
                .unwrap_or(0);
            if n != 1 {
                wrong.push(format!(
                    "{folder}: {n} manifests for decision {status} at {time}"
                ));
            }
        }
        for (decision, n) in found {
            wrong.push(format!(
                "{folder}: {n} manifest(s) of a decision never sent: {decision:?}"
            ));
        }
    }
    v.check(
        "every decision: exactly one manifest, its attempt's media stored with their bytes or skipped",
        wrong.is_empty(),
        if wrong.is_empty() { format!("{manifests} manifests for {} decisions", world.decisions.len()) } else { wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ") },
    );

    // Multipart uploads left open: only kills and deadlines can leave one.
    let open = parts.s3.multipart_uploads().open();
    let could = tally.kills.load(Ordering::Relaxed) + tally.deadlines.load(Ordering::Relaxed);
    v.check(
        "multipart uploads left open (the lifecycle rule aborts them after a day)",
        open <= could,
        format!("{open} open, at most {could} (kills + deadlines)"),
    );

    // Downloads per medium within the bound.
    let mut downloads: HashMap<String, usize> = HashMap::new();
    for r in parts.fake.requests() {
        if let Some(id) = r.path.strip_prefix("/v1/media/") {
            *downloads.entry(id.to_string()).or_default() += 1;
        }
    }
    let downloading = tally.downloading.lock().expect("tally").clone();
    let receives = tally.session_receives.lock().expect("tally").clone();
    let mut over = Vec::new();
    let mut most = 0.0f64;
    for session in &world.sessions {
        for (a, attempt) in session.attempts.iter().enumerate() {
            // Deliveries of decisions that could download this attempt's media (the session
            // listing names the last attempt's, so its decisions count for it too).
            let tries: usize = world
                .decisions
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    world.sessions[d.session].id == session.id
                        && (d.attempt == a || a + 1 == session.attempts.len())
                })
                .map(|(i, _)| downloading.get(&i).copied().unwrap_or(0))
                .sum::<usize>()
                + receives.get(&session.id).copied().unwrap_or(0);
            for m in &attempt.media {
                let n = downloads.get(&m.id).copied().unwrap_or(0);
                if tries > 0 {
                    most = most.max(n as f64 / tries as f64);
                }
                if n > TRIES_PER_DOWNLOAD * tries {
                    over.push(format!("{}: {n} downloads for {tries} deliveries", m.id));
                }
            }
        }
    }
    v.check(
        "downloads per medium <= 4 tries x deliveries that could download",
        over.is_empty(),
        if over.is_empty() {
            format!("most: {most:.2} downloads per such delivery")
        } else {
            over.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        },
    );

    // No personal value, secret or signature in any log line.
    let mut forbidden: Vec<String> = vec![
        SECRET.into(),
        API_KEY.into(),
        "SARAH".into(),
        "MORGAN".into(),
        "MORGA753116SM9IJ".into(),
        "1967-03-30".into(),
        "186.153.67.122".into(),
        "cust-8d1c2f".into(),
        archiver_devkit::signing::SOURCE_IP.into(),
    ];
    forbidden.extend(
        archiver_devkit::fixtures::FULL_AUTO_PERSONAL_VALUES
            .iter()
            .map(|v| v.to_string()),
    );
    let mut lines = 0;
    let mut leaks = Vec::new();
    for entry in std::fs::read_dir(&parts.logs).map_err(|e| e.to_string())? {
        let text = std::fs::read_to_string(entry.map_err(|e| e.to_string())?.path())
            .map_err(|e| e.to_string())?;
        for line in text.lines() {
            lines += 1;
            if let Some(f) = forbidden.iter().find(|f| line.contains(f.as_str())) {
                leaks.push(format!("{f:?} in a log line"));
            }
        }
    }
    v.check(
        "no personal value, secret or signature in any log line",
        leaks.is_empty(),
        if leaks.is_empty() {
            format!("{lines} lines, {} forbidden strings", forbidden.len())
        } else {
            leaks.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        },
    );

    let gave_up = tally.gave_up.lock().expect("tally").len();
    v.check(
        "every delivery answered 200 within 40 redeliveries",
        gave_up == 0,
        format!("{gave_up} gave up"),
    );
    Ok(v)
}

// ---------------------------------------------------------------------------------------

struct Args {
    seed: u64,
    decisions: usize,
    modes: Vec<&'static str>,
    bootstrap: Option<PathBuf>,
    workers: usize,
    plan_only: bool,
    /// Break the end state before the oracle (one stored file overwritten, one manifest
    /// deleted): the oracle must then fail, which shows it can.
    sabotage: bool,
}

fn parse_args() -> Res<Args> {
    let usage = "usage: soak --seed N --decisions N [--mode direct|queue|both] --bootstrap PATH [--workers N] [--plan-only] [--sabotage]";
    let mut args = Args {
        seed: 1,
        decisions: 100,
        modes: vec!["direct"],
        bootstrap: None,
        workers: 3,
        plan_only: false,
        sabotage: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{usage}"))
        };
        match a.as_str() {
            "--seed" => {
                args.seed = value()?
                    .parse()
                    .map_err(|_| "--seed: a number".to_string())?
            }
            "--decisions" => {
                args.decisions = value()?
                    .parse()
                    .map_err(|_| "--decisions: a number".to_string())?
            }
            "--workers" => {
                args.workers = value()?
                    .parse()
                    .map_err(|_| "--workers: a number".to_string())?
            }
            "--bootstrap" => args.bootstrap = Some(PathBuf::from(value()?)),
            "--mode" => {
                args.modes = match value()?.as_str() {
                    "direct" => vec!["direct"],
                    "queue" => vec!["queue"],
                    "both" => vec!["direct", "queue"],
                    other => return Err(format!("--mode {other:?}\n{usage}")),
                }
            }
            "--plan-only" => args.plan_only = true,
            "--sabotage" => args.sabotage = true,
            other => return Err(format!("unknown argument {other:?}\n{usage}")),
        }
    }
    if args.workers == 0 || args.decisions == 0 {
        return Err(format!(
            "--workers and --decisions must be at least 1\n{usage}"
        ));
    }
    Ok(args)
}

async fn run_mode(args: &Args, mode: &str, bootstrap: &Path) -> Res<bool> {
    let world = plan(args.seed, args.decisions);
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let s3 = LocalS3::start(&root.path().join("s3"), S3_ACCESS_KEY, S3_SECRET_KEY)
        .await
        .map_err(|e| format!("S3: {e}"))?;
    let fake = FakeVeriff::start(FakeConfig {
        sign_media: true,
        ..FakeConfig::new(API_KEY, SECRET)
    })
    .await
    .map_err(|e| format!("fake: {e}"))?;
    let client = s3_client(&s3.endpoint());
    client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .map_err(|e| format!("CreateBucket: {e}"))?;
    let parts = Parts {
        fake,
        s3,
        client,
        _root: root,
        logs,
    };
    register(&parts.fake, &world);
    let tally = Tally::default();
    let started = Instant::now();

    let mut moto = None;
    let (webhook_env, queue) = if mode == "queue" {
        let server = MotoServer::start()
            .await
            .map_err(|e| format!("moto_server: {e}"))?;
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::new()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .endpoint_url(server.endpoint())
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "a", "b", None, None, "soak",
                ))
                .build(),
        );
        let url = sqs
            .create_queue()
            .queue_name("soak")
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "3",
            )
            .send()
            .await
            .map_err(|e| format!("CreateQueue: {e}"))?
            .queue_url
            .unwrap_or_default();
        let arn = "arn:aws:sqs:us-east-1:123456789012:soak".to_string();
        let env = function_env(
            &parts,
            &[
                ("INGEST_MODE", "queue".into()),
                ("ARCHIVE_QUEUE_URL", url.clone()),
                ("AWS_ENDPOINT_URL_SQS", server.endpoint()),
            ],
        );
        moto = Some(server);
        (env, Some((sqs, url, arn)))
    } else {
        (function_env(&parts, &[]), None)
    };
    let mut workers = Vec::new();
    for w in 0..args.workers {
        workers.push(Arc::new(
            Worker::start(
                bootstrap,
                webhook_env.clone(),
                parts.logs.join(format!("webhook-{w}.log")),
            )
            .await?,
        ));
    }
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let consumer = match &queue {
        Some((sqs, url, arn)) => {
            let mut consumers = Vec::new();
            for w in 0..args.workers {
                consumers.push(Arc::new(
                    Worker::start(
                        bootstrap,
                        function_env(&parts, &[]),
                        parts.logs.join(format!("consumer-{w}.log")),
                    )
                    .await?,
                ));
            }
            Some((sqs.clone(), url.clone(), arn.clone(), consumers))
        }
        None => None,
    };
    let delivering = async {
        futures_util::stream::iter(0..world.decisions.len())
            .map(|i| deliver(&parts, &world, &workers, i, &tally, args.seed))
            .buffer_unordered(args.workers * 2)
            .collect::<Vec<Res<()>>>()
            .await
            .into_iter()
            .collect::<Res<Vec<()>>>()?;
        let _ = done_tx.send(true);
        Ok::<(), String>(())
    };
    match &consumer {
        Some((sqs, url, arn, consumers)) => {
            let (a, b) = tokio::join!(
                delivering,
                consume(sqs, url, arn, consumers, &tally, &done_rx, args.seed)
            );
            a?;
            b?;
        }
        None => delivering.await?,
    }
    parts.fake.clear_faults();
    parts.s3.clear_faults();
    let wall = started.elapsed();
    // Let killed processes' last lines reach their logs, then stop everything.
    for w in workers
        .iter()
        .chain(consumer.iter().flat_map(|c| c.3.iter()))
    {
        let _ = w.child.lock().expect("child").kill();
    }
    drop(moto);

    // The ledger sealed, as the schedule would, before anything can be broken.
    let sealer = veriff_archiver::ledger::Sealer::new(
        veriff_archiver::store::Store::new(parts.client.clone(), BUCKET, 5 << 20),
        PREFIX,
        veriff_archiver::ledger::SealSettings {
            grace: Duration::ZERO,
            ..Default::default()
        },
    );
    sealer
        .seal(SystemTime::now())
        .await
        .map_err(|e| format!("seal: {e}"))?;
    if args.sabotage {
        sabotage(&parts).await?;
    }
    let verdict = oracle(&parts, &world, &tally).await?;
    println!(
        "\nmode {mode}: seed {}, schedule sha256 {}",
        args.seed,
        schedule_digest(&world)
    );
    println!(
        "  decisions {} ({} sessions, {} resubmitted, {} deleted at Veriff, {} Full Auto, {} with a duplicate delivered at once)",
        world.decisions.len(),
        world.sessions.len(),
        world
            .sessions
            .iter()
            .filter(|s| s.attempts.len() > 1)
            .count(),
        world.sessions.iter().filter(|s| s.deleted).count(),
        world.decisions.iter().filter(|d| d.full_auto).count(),
        world.decisions.iter().filter(|d| d.copies > 1).count()
    );
    println!(
        "  deliveries {} (redeliveries {}); wall time {:.1} s",
        tally.deliveries.load(Ordering::Relaxed),
        tally.redeliveries.load(Ordering::Relaxed),
        wall.as_secs_f64()
    );
    if queue.is_some() {
        println!(
            "  queue: {} records received, {} of them redriven",
            tally.queue_receives.load(Ordering::Relaxed),
            tally.queue_redriven.load(Ordering::Relaxed)
        );
    }
    let faults = tally.faults.lock().expect("tally").clone();
    println!(
        "  faults injected: {} in all",
        faults.values().sum::<usize>()
    );
    for (class, n) in &faults {
        println!("    {class:<28} {n}");
    }
    for (name, ok, detail) in &verdict.lines {
        println!("  {} {name}: {detail}", if *ok { "PASS" } else { "FAIL" });
    }
    println!(
        "  verdict: {}",
        if verdict.passed() { "PASS" } else { "FAIL" }
    );
    Ok(verdict.passed())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.plan_only {
        println!(
            "seed {}, schedule sha256 {}",
            args.seed,
            schedule_digest(&plan(args.seed, args.decisions))
        );
        return ExitCode::SUCCESS;
    }
    let Some(bootstrap) = args.bootstrap.clone() else {
        eprintln!("--bootstrap PATH: the release bootstrap (scripts/soak.sh builds it)");
        return ExitCode::from(2);
    };
    let mut all = true;
    for mode in &args.modes {
        match run_mode(&args, mode, &bootstrap).await {
            Ok(passed) => all &= passed,
            Err(e) => {
                eprintln!("soak failed to run ({mode}): {e}");
                return ExitCode::from(2);
            }
        }
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
