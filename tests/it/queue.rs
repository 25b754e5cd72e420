//! Queue mode against a real local SQS (moto_server): the webhook enqueues and answers
//! `queued`; the consumer archives SQS batches through the same archiver, reports failures
//! per record, archives a decision once however often it arrives, and a decision that keeps
//! failing reaches the dead-letter queue after the maximum receives.
//!
//! `#[ignore]`d in a plain `cargo test` (moto_server is installed by scripts/test.sh, which
//! runs them with `--ignored`).

use std::time::Duration;

use crate::support::sqs::{LocalQueue, failed_ids, sqs_client};
use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{Fault, FaultKind, demo_scenario, signed_webhook_event};
use serde_json::Value;
use tokio::time::Instant;
use veriff_archiver::App;

/// The webhook function in queue mode, and the consumer function, over one harness.
struct QueueMode {
    h: Harness,
    q: LocalQueue,
    webhook: App,
    consumer: App,
}

impl QueueMode {
    async fn start(visibility_secs: u32, max_receives: u32) -> QueueMode {
        let h = Harness::with(&[("ARCHIVE_VIDEOS", "true")]).await;
        let q = LocalQueue::start(visibility_secs, max_receives).await;
        let webhook_config = config_for(
            &h.fake.base_url(),
            &[("INGEST_MODE", "queue"), ("ARCHIVE_QUEUE_URL", &q.url)],
        );
        let webhook = App::builder(webhook_config, h.bucket.client.clone())
            .sqs(sqs_client(&q.moto.endpoint()))
            .build()
            .await
            .unwrap();
        let consumer_config = config_for(&h.fake.base_url(), &[("ARCHIVE_VIDEOS", "true")]);
        let consumer = App::builder(consumer_config, h.bucket.client.clone())
            .build()
            .await
            .unwrap();
        QueueMode {
            h,
            q,
            webhook,
            consumer,
        }
    }

    /// Delivers a signed webhook body to the queue-mode webhook.
    async fn deliver(&self, body: &str) -> (u16, Value) {
        let event = signed_webhook_event(body.as_bytes(), SECRET, API_KEY, false);
        let response = self
            .webhook
            .handle(&event, Instant::now() + Duration::from_secs(30))
            .await
            .into_lambda();
        let status = response["statusCode"].as_u64().unwrap() as u16;
        (
            status,
            serde_json::from_str(response["body"].as_str().unwrap()).unwrap(),
        )
    }

    /// One poll of the event source mapping: receive up to `max`, invoke the consumer with
    /// `budget`, delete what succeeded. Returns the messages and the consumer's answer.
    async fn poll(&self, max: i32, budget: Duration) -> (Vec<aws_sdk_sqs::types::Message>, Value) {
        let messages = self
            .q
            .receive(&self.q.url, max, Duration::from_secs(5))
            .await;
        assert!(!messages.is_empty(), "no message to consume");
        let response = self
            .consumer
            .handle_event(self.q.lambda_event(&messages), Instant::now() + budget)
            .await
            .expect("an SQS batch is answered");
        self.q.delete_succeeded(&messages, &response).await;
        (messages, response)
    }
}

/// Makes Veriff refuse the media listing of `session` (403, a failure no retry heals): its
/// decisions fail every time. (A session Veriff answers 404 for is archived without files:
/// see tests/it/full_auto.rs.)
fn refuse_session(fake: &archiver_devkit::FakeVeriff, session: &str) {
    fake.inject(Fault::new(
        format!("/v1/sessions/{session}/media"),
        FaultKind::Status(403),
        1000,
    ));
}

fn media_downloads(h: &Harness) -> usize {
    h.fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/media/"))
        .count()
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn the_webhook_enqueues_the_decision_and_touches_neither_veriff_nor_s3() {
    let mut m = QueueMode::start(30, 5).await;
    let lines = Lines::default();
    m.webhook = m.webhook.clone().with_metrics(Some(lines.metrics("Test")));
    demo_scenario(&m.h.fake, 1_000_000);
    let body = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    let (status, answer) = m.deliver(&body).await;
    let records = lines.take();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (
            records[0]["Entry"].as_str(),
            records[0]["DecisionsQueued"].as_u64()
        ),
        (Some("webhook"), Some(1))
    );
    assert!(
        records[0].get("ArchiveDuration").is_none(),
        "nothing archived by the webhook"
    );
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("queued")),
        "{answer}"
    );
    assert_eq!(answer["sessionId"], DEMO_SESSION_ID);
    assert_eq!(answer["attemptId"], DEMO_ATTEMPT_ID);
    assert!(
        m.h.fake.requests().is_empty(),
        "Veriff not called while Veriff waits"
    );
    assert!(
        m.h.keys().await.is_empty(),
        "nothing written to S3 by the webhook"
    );

    let messages = m.q.receive(&m.q.url, 10, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].message_id.as_deref(),
        answer["messageId"].as_str()
    );
    let text = messages[0].body.as_deref().unwrap();
    let message: Value = serde_json::from_str(text).unwrap();
    assert_eq!(message["schema"], "veriff-archiver/decision/v1");
    assert_eq!(message["sessionId"], DEMO_SESSION_ID);
    assert_eq!(message["attemptId"], DEMO_ATTEMPT_ID);
    assert_eq!(message["source"], "webhook");
    assert_eq!(message["decision"]["status"], "approved");
    assert_eq!(message["decision"]["code"], 9001);
    assert_eq!(
        message["decision"]["decisionTime"],
        "2025-03-04T10:21:07.412Z"
    );
    // Never the body: no name, document number, date of birth or IP.
    for personal in [
        "SARAH",
        "MORGAN",
        "MORGA753116SM9IJ",
        "1967-03-30",
        "186.153.67.122",
        "person",
        "technicalData",
    ] {
        assert!(
            !text.contains(personal),
            "{personal} in the message: {text}"
        );
    }

    // A rejected or ignored webhook sends nothing.
    let forged = signed_webhook_event(body.as_bytes(), "not-the-secret", API_KEY, false);
    let reply = m
        .webhook
        .handle(&forged, Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(reply.into_lambda()["statusCode"], 401);
    let (status, answer) = m
        .deliver(archiver_devkit::fixtures::EVENT_WEBHOOK_STARTED)
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    assert_eq!(m.q.depth(&m.q.url).await, 1, "only the decision was queued");
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn a_batch_reports_exactly_the_record_that_failed() {
    let m = QueueMode::start(30, 5).await;
    demo_scenario(&m.h.fake, 1_000_000);
    // Good: the demo decision. Bad: a session whose media listing Veriff refuses (403,
    // every time), and a message that is not a decision message at all.
    refuse_session(&m.h.fake, "refused-session");
    assert_eq!(
        m.deliver(&decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved"))
            .await
            .0,
        200
    );
    assert_eq!(
        m.deliver(&decision("refused-session", "refused-attempt", "approved"))
            .await
            .0,
        200
    );
    let garbage = m.q.send("{\"schema\": \"something-else\"}").await;
    let unsafe_id = m
        .q
        .send(&format!(
            "{{\"schema\":\"veriff-archiver/decision/v1\",\"sessionId\":\"../escape\",\"attemptId\":null,\"source\":\"webhook\",\"decision\":{}}}",
            serde_json::json!({"status": "approved", "code": null, "reason": null, "reasonCode": null, "decisionTime": null, "vendorData": null, "endUserId": null})
        ))
        .await;

    let messages = m.q.receive(&m.q.url, 10, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 4);
    let id_of = |session: &str| {
        messages
            .iter()
            .find(|msg| msg.body.as_deref().unwrap().contains(session))
            .and_then(|msg| msg.message_id.clone())
            .unwrap()
    };
    let refused = id_of("refused-session");
    let lines = Lines::default();
    let consumer = m.consumer.clone().with_metrics(Some(lines.metrics("Test")));
    let response = consumer
        .handle_event(
            m.q.lambda_event(&messages),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    let mut failed = failed_ids(&response);
    failed.sort();
    let mut expected = vec![refused, garbage, unsafe_id];
    expected.sort();
    assert_eq!(failed, expected, "{response}");
    m.q.delete_succeeded(&messages, &response).await;
    // One metrics summary for the batch, and the failures by code.
    let records = lines.take();
    let summary = &records[0];
    assert_eq!(summary["Entry"], "queue");
    assert_eq!(summary["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Test");
    assert_eq!(
        (
            summary["DecisionsArchived"].as_u64(),
            summary["ArchiveFailures"].as_u64(),
            summary["FilesStored"].as_u64()
        ),
        (Some(1), Some(3), Some(7)),
        "{summary}"
    );
    assert_eq!(
        summary["ArchiveDuration"].as_array().unwrap().len(),
        2,
        "two archives attempted"
    );
    let codes: Vec<(String, u64)> = records[1..]
        .iter()
        .map(|r| {
            (
                r["ErrorCode"].as_str().unwrap().to_string(),
                r["ArchiveFailures"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![("bad_message".into(), 2), ("veriff_unavailable".into(), 1)]
    );

    let manifest =
        m.h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
            .await
            .expect("manifest");
    m.h.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["decisionSource"], "webhook");
    assert!(
        m.h.keys()
            .await
            .iter()
            .all(|k| k.starts_with(&format!("{PREFIX}{DEMO_SESSION_ID}/"))),
        "nothing written for the failed records"
    );
    assert_eq!(
        m.q.depth(&m.q.url).await,
        3,
        "the failed records stay in the queue"
    );
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn a_decision_is_archived_once_however_often_it_arrives() {
    let m = QueueMode::start(30, 5).await;
    demo_scenario(&m.h.fake, 1_000_000);
    let body = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    // The same decision three times (Veriff's retries) and a duplicate delivery by SQS.
    for _ in 0..3 {
        assert_eq!(m.deliver(&body).await.0, 200);
    }
    let messages = m.q.receive(&m.q.url, 10, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 3);
    let mut batch = messages.clone();
    batch.push(messages[0].clone());
    let response = m
        .consumer
        .handle_event(
            m.q.lambda_event(&batch),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty(), "{response}");
    m.q.delete_succeeded(&messages, &response).await;
    let manifests = m.h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await;
    assert_eq!(manifests.len(), 1);
    let files = manifests[0].1["files"].as_array().unwrap().len();
    assert_eq!(files, 7, "5 top-ranked images, the NFC file and the video");
    assert_eq!(
        media_downloads(&m.h),
        files,
        "each file downloaded once in the batch"
    );

    // Again in a later batch, and the same decision through direct mode: nothing new.
    assert_eq!(m.deliver(&body).await.0, 200);
    let (_, response) = m.poll(10, Duration::from_secs(60)).await;
    assert!(failed_ids(&response).is_empty());
    let direct = m.h.deliver_body(&body).await;
    assert_eq!(
        direct.body["status"], "already_archived",
        "{:?}",
        direct.body
    );
    assert_eq!(
        m.h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.len(),
        1
    );
    assert_eq!(media_downloads(&m.h), files, "no second download");
    assert_eq!(m.q.depth(&m.q.url).await, 0);
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn a_decision_that_keeps_failing_reaches_the_dead_letter_queue() {
    // Visibility 1 s so that the test sees every receive; 3 receives before the DLQ.
    let m = QueueMode::start(1, 3).await;
    demo_scenario(&m.h.fake, 1_000_000);
    // Veriff fails persistently for this session's listing.
    m.h.fake.inject(Fault::new(
        format!("/v1/sessions/{DEMO_SESSION_ID}/media"),
        FaultKind::Status(500),
        usize::MAX,
    ));
    assert_eq!(
        m.deliver(&decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved"))
            .await
            .0,
        200
    );

    let mut receives = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let messages = m.q.receive(&m.q.url, 10, Duration::from_secs(3)).await;
        if messages.is_empty() {
            if m.q.depth(&m.q.dlq_url).await == 1 {
                break;
            }
            continue;
        }
        let count: u32 = messages[0]
            .attributes
            .as_ref()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            })
            .and_then(|c| c.parse().ok())
            .unwrap();
        receives.push(count);
        let response = m
            .consumer
            .handle_event(
                m.q.lambda_event(&messages),
                Instant::now() + Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(failed_ids(&response).len(), 1, "{response}");
        m.q.delete_succeeded(&messages, &response).await;
    }
    assert_eq!(
        receives,
        vec![1, 2, 3],
        "received exactly QueueMaxReceiveCount times"
    );
    assert_eq!(
        m.q.depth(&m.q.dlq_url).await,
        1,
        "moved to the dead-letter queue"
    );
    assert_eq!(m.q.depth(&m.q.url).await, 0);
    let parked = m.q.receive(&m.q.dlq_url, 1, Duration::from_secs(3)).await;
    assert!(parked[0].body.as_deref().unwrap().contains(DEMO_SESSION_ID));
    assert!(
        m.h.keys().await.is_empty(),
        "no manifest, no file, for a failed archive"
    );

    // Once the cause is fixed, the redriven message archives (docs/operations.md's redrive).
    m.h.fake.clear_faults();
    m.q.send(parked[0].body.as_deref().unwrap()).await;
    let (_, response) = m.poll(10, Duration::from_secs(60)).await;
    assert!(failed_ids(&response).is_empty(), "{response}");
    assert!(
        m.h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
            .await
            .is_some()
    );
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn a_record_out_of_time_fails_whole_and_comes_back() {
    let m = QueueMode::start(1, 5).await;
    let scenario = demo_scenario(&m.h.fake, 1_000_000);
    assert_eq!(
        m.deliver(&decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved"))
            .await
            .0,
        200
    );
    // Every download is slow: the invocation's time runs out mid-copy.
    for media in &scenario.media {
        m.h.fake.inject(Fault::new(
            format!("/v1/media/{}", media.id),
            FaultKind::Latency(Duration::from_secs(5)),
            usize::MAX,
        ));
    }
    let (_, response) = m.poll(10, Duration::from_secs(3)).await;
    assert_eq!(failed_ids(&response).len(), 1, "{response}");
    assert!(
        m.h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
            .await
            .is_empty(),
        "never half-archived"
    );
    assert_eq!(
        m.h.s3()
            .object_writes()
            .iter()
            .filter(|w| w.key().is_some_and(|k| k.contains("manifest-")))
            .count(),
        0
    );

    assert!(media_downloads(&m.h) > 0, "the copy had started");
    // It comes back after the visibility timeout and completes.
    m.h.fake.clear_faults();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, response) = m.poll(10, Duration::from_secs(60)).await;
    assert!(failed_ids(&response).is_empty(), "{response}");
    let manifest =
        m.h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
            .await
            .expect("manifest");
    m.h.assert_manifest_consistent(&manifest).await;
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn a_queue_that_refuses_the_message_is_a_503_and_veriff_redelivers() {
    let m = QueueMode::start(30, 5).await;
    demo_scenario(&m.h.fake, 1_000_000);
    let missing = m.q.url.replace("/archive", "/no-such-queue");
    let webhook = App::builder(
        config_for(
            &m.h.fake.base_url(),
            &[("INGEST_MODE", "queue"), ("ARCHIVE_QUEUE_URL", &missing)],
        ),
        m.h.bucket.client.clone(),
    )
    .sqs(sqs_client(&m.q.moto.endpoint()))
    .build()
    .await
    .unwrap();
    let body = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    let event = signed_webhook_event(body.as_bytes(), SECRET, API_KEY, false);
    let response = webhook
        .handle(&event, Instant::now() + Duration::from_secs(30))
        .await
        .into_lambda();
    assert_eq!(response["statusCode"], 503, "{response}");
    let answer: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["code"], "queue_unavailable");
    assert_eq!(m.q.depth(&m.q.url).await, 0);
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn queue_mode_logs_no_secret_signature_or_personal_data() {
    let capture = Lines::default();
    veriff_archiver::telemetry::init_with_writer(
        capture.clone(),
        "info,veriff_archiver=trace".parse().unwrap(),
    );
    let m = QueueMode::start(30, 5).await;
    demo_scenario(&m.h.fake, 1_000_000);
    refuse_session(&m.h.fake, "refused-session");
    let body = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    assert_eq!(m.deliver(&body).await.0, 200);
    assert_eq!(
        m.deliver(&decision("refused-session", "refused-attempt", "declined"))
            .await
            .0,
        200
    );
    m.q.send("{\"schema\": \"veriff-archiver/decision/v1\", \"sessionId\": \"SARAH MORGAN")
        .await;
    let (_, response) = m.poll(10, Duration::from_secs(60)).await;
    assert_eq!(failed_ids(&response).len(), 2, "{response}");
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("decision queued") && logs.contains("queue message archived"),
        "{logs}"
    );
    assert!(
        logs.contains("queue message rejected") && logs.contains("archive failed"),
        "{logs}"
    );
    for secret in [
        SECRET,
        API_KEY,
        "SARAH",
        "MORGAN",
        "MORGA753116SM9IJ",
        "1967-03-30",
        "186.153.67.122",
        "Suspected document tampering",
    ] {
        assert!(!logs.contains(secret), "{secret} logged");
    }
    let signature = archiver_devkit::hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
    assert!(!logs.contains(&signature), "a signature was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn backfill_enqueue_sends_decisions_that_the_consumer_archives() {
    use archiver_devkit::demo::{
        RESUBMITTED_DECIDED_ATTEMPT_ID, RESUBMITTED_LATEST_ATTEMPT_ID, RESUBMITTED_SESSION_ID,
    };
    let m = QueueMode::start(30, 5).await;
    demo_scenario(&m.h.fake, 1_000_000);
    archiver_devkit::resubmitted_scenario(&m.h.fake);
    m.h.fake.set_session_decision(
        "pending-session",
        archiver_devkit::fixtures::PENDING_DECISION,
    );
    let input = format!("{DEMO_SESSION_ID}\n{RESUBMITTED_SESSION_ID}\npending-session\n");

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_veriff-archiver"))
        .args([
            "backfill",
            "--sessions",
            "-",
            "--enqueue",
            "--all-attempts",
            "--json",
        ])
        .env_clear()
        .env("VERIFF_API_URL", m.h.fake.base_url())
        .env("VERIFF_API_KEY", API_KEY)
        .env("VERIFF_SHARED_SECRET", SECRET)
        .env("ARCHIVE_QUEUE_URL", &m.q.url)
        .env("AWS_ENDPOINT_URL_SQS", m.q.moto.endpoint())
        .envs(cli_env(&m.h))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run veriff-archiver");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let run = CliRun::from_output(child.wait_with_output().await.unwrap());
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["enqueue"], true);
    assert_eq!(doc["summary"]["queued"], 2, "{doc:#}");
    assert_eq!(doc["summary"]["pending"], 1, "{doc:#}");
    // The demo decision; the resubmitted session's decision and its other attempt.
    assert_eq!(doc["summary"]["messagesSent"], 3, "{doc:#}");
    assert_eq!(media_downloads(&m.h), 0, "nothing downloaded by the CLI");
    assert!(m.h.keys().await.is_empty(), "nothing written by the CLI");

    // The consumer (the Lambda fleet) archives them.
    let (messages, response) = m.poll(10, Duration::from_secs(60)).await;
    assert_eq!(messages.len(), 3);
    assert!(failed_ids(&response).is_empty(), "{response}");
    let demo =
        m.h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
            .await
            .expect("demo manifest");
    assert_eq!(demo["decisionSource"], "decision_endpoint");
    let decided =
        m.h.manifest(RESUBMITTED_SESSION_ID, RESUBMITTED_DECIDED_ATTEMPT_ID)
            .await
            .expect("decided attempt");
    assert_eq!(decided["decisionSource"], "decision_endpoint");
    let latest =
        m.h.manifest(RESUBMITTED_SESSION_ID, RESUBMITTED_LATEST_ATTEMPT_ID)
            .await
            .expect("the other attempt");
    assert_eq!(latest["decisionSource"], "attempts_listing");
    for manifest in [&demo, &decided, &latest] {
        m.h.assert_manifest_consistent(manifest).await;
    }
    assert_eq!(m.q.depth(&m.q.url).await, 0);
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn two_decisions_of_one_attempt_in_a_batch_download_each_file_once() {
    let m = QueueMode::start(30, 5).await;
    demo_scenario(&m.h.fake, 1_000_000);
    let approved = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    let declined = archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "declined",
        "2025-03-05T09:00:00.000Z",
    );
    assert_eq!(m.deliver(&approved).await.0, 200);
    assert_eq!(m.deliver(&declined).await.0, 200);
    let (messages, response) = m.poll(10, Duration::from_secs(60)).await;
    assert_eq!(messages.len(), 2);
    assert!(failed_ids(&response).is_empty(), "{response}");
    let manifests = m.h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await;
    assert_eq!(manifests.len(), 2, "one manifest per decision");
    let files = manifests[0].1["files"].as_array().unwrap().len();
    assert_eq!(
        media_downloads(&m.h),
        files,
        "the second decision reused what the first stored"
    );
    for (_, manifest) in &manifests {
        m.h.assert_manifest_consistent(manifest).await;
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run through scripts/test.sh"]
async fn a_full_auto_result_is_queued_with_its_kind_and_archived_by_the_consumer() {
    let m = QueueMode::start(30, 5).await;
    let essential = archiver_devkit::essential_scenario(&m.h.fake);
    let (session, attempt) = (essential.session_id.as_str(), essential.attempt_id.as_str());
    let (status, answer) = m.deliver(&essential.approved_webhook).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("queued")));
    assert_eq!(answer["sessionId"], session);
    assert!(m.h.fake.requests().is_empty(), "Veriff not called");

    let messages = m.q.receive(&m.q.url, 10, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let text = messages[0].body.as_deref().unwrap();
    let message: Value = serde_json::from_str(text).unwrap();
    assert_eq!(message["decision"]["webhook"], "fullauto");
    assert_eq!(message["decision"]["status"], "approved");
    assert_eq!(message["decision"]["decisionScore"], 0.97);
    assert_eq!(
        message["decision"]["decisionTime"],
        "2025-03-04T12:00:31.207Z"
    );
    for personal in archiver_devkit::fixtures::FULL_AUTO_PERSONAL_VALUES {
        assert!(
            !text.contains(personal),
            "{personal} in the message: {text}"
        );
    }
    // The consumer archives the message it was given (the poll made it invisible: hand the
    // batch over as the event source mapping would).
    let response = m
        .consumer
        .handle_event(
            m.q.lambda_event(&messages),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("an SQS batch is answered");
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    m.q.delete_succeeded(&messages, &response).await;
    let manifests = m.h.manifests(session, attempt).await;
    assert_eq!(manifests.len(), 1);
    let manifest = &manifests[0].1;
    assert_eq!(manifest["decision"]["webhook"], "fullauto");
    assert_eq!(manifest["decision"]["decisionScore"], 0.97);
    assert_eq!(manifest["decisionSource"], "webhook");
    m.h.assert_manifest_consistent(manifest).await;

    // A decision webhook of the same attempt (an integration moved between plans) is another
    // decision: its own manifest, every file reused.
    let downloads = media_downloads(&m.h);
    let decision_webhook =
        archiver_devkit::decision_webhook(session, attempt, "approved", "2025-03-04T12:00:31.207Z");
    let (status, _) = m.deliver(&decision_webhook).await;
    assert_eq!(status, 200);
    let (_, response) = m.poll(10, Duration::from_secs(60)).await;
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    let manifests = m.h.manifests(session, attempt).await;
    assert_eq!(manifests.len(), 2);
    let kinds: Vec<&str> = manifests
        .iter()
        .map(|(_, m)| m["decision"]["webhook"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"fullauto") && kinds.contains(&"decision"),
        "{kinds:?}"
    );
    assert_eq!(
        media_downloads(&m.h),
        downloads,
        "files reused, none downloaded"
    );
}
