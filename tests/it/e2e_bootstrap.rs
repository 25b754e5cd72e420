//! The release `bootstrap` under AWS's Lambda Runtime Interface Emulator (RIE), fed the
//! ready-made events in `events/`, against the Veriff fake and a real S3 server.
//!
//! Needs the built artifact and the emulator, so it is `#[ignore]`d in a plain `cargo test`;
//! `scripts/test.sh` (the README's test command, run by CI) builds both and runs it with
//! `VERIFF_ARCHIVER_BOOTSTRAP` and `VERIFF_ARCHIVER_RIE` set.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{
    FakeConfig, FakeVeriff, LocalS3, demo_scenario, essential_scenario, resubmitted_scenario,
    signed_webhook_event,
};
use serde_json::Value;

/// Kills the emulator (and with it the bootstrap) when the test ends, however it ends.
struct Emulator {
    child: Child,
    url: String,
    /// The emulator's and the bootstrap's output (log lines and metric lines).
    log: tempfile::NamedTempFile,
}

impl Emulator {
    /// Everything written so far.
    fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The Embedded Metric Format records written so far.
    fn metric_records(&self) -> Vec<Value> {
        self.output()
            .lines()
            .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
            .map(|l| serde_json::from_str(l).expect("a metric line is JSON"))
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- emulator output\n{}", self.output());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn required_path(var: &str) -> PathBuf {
    let path = PathBuf::from(
        std::env::var(var).unwrap_or_else(|_| panic!("set {var} (scripts/test.sh does)")),
    );
    assert!(path.is_file(), "{var}={} is not a file", path.display());
    path
}

fn start_emulator(veriff_url: &str, s3_endpoint: &str) -> Emulator {
    start_emulator_with(veriff_url, s3_endpoint, &[])
}

/// The emulator with these extra (or overriding) environment variables.
fn start_emulator_with(veriff_url: &str, s3_endpoint: &str, extra: &[(&str, &str)]) -> Emulator {
    start_emulator_full(veriff_url, s3_endpoint, extra, true)
}

/// The emulator; with `credentials`, VERIFF_API_KEY and VERIFF_SHARED_SECRET are set.
fn start_emulator_full(
    veriff_url: &str,
    s3_endpoint: &str,
    extra: &[(&str, &str)],
    credentials: bool,
) -> Emulator {
    let bootstrap = required_path("VERIFF_ARCHIVER_BOOTSTRAP");
    let rie = required_path("VERIFF_ARCHIVER_RIE");
    let (api_port, rapid_port) = (free_port(), free_port());
    let log = tempfile::NamedTempFile::new().expect("log file");
    // One file description for both streams, so that neither overwrites the other.
    let output = log.reopen().expect("log file");
    let child = Command::new(rie)
        .arg("--runtime-interface-emulator-address")
        .arg(format!("127.0.0.1:{api_port}"))
        .arg("--runtime-api-address")
        .arg(format!("127.0.0.1:{rapid_port}"))
        .arg("--log-level")
        .arg("error")
        .arg(bootstrap)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "60")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint)
        .env("VERIFF_API_URL", veriff_url)
        .envs(
            [
                ("VERIFF_API_KEY", API_KEY),
                ("VERIFF_SHARED_SECRET", SECRET),
            ]
            .into_iter()
            .filter(|_| credentials),
        )
        .env("ARCHIVE_BUCKET", BUCKET)
        .env("ARCHIVE_PREFIX", PREFIX)
        .env("ARCHIVE_VIDEOS", "true")
        .env("ARCHIVE_DECISION_PAYLOAD", "true")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("log file"))
        .stderr(output)
        .spawn()
        .expect("start the Runtime Interface Emulator");
    Emulator {
        child,
        url: format!("http://127.0.0.1:{api_port}/2015-03-31/functions/function/invocations"),
        log,
    }
}

/// Invokes the function with an event; returns the Function URL response (status, body).
async fn invoke(http: &reqwest::Client, emulator: &Emulator, event: &str) -> (u16, Value) {
    let result = invoke_raw(http, emulator, event).await;
    let status = result["statusCode"].as_u64().expect("statusCode") as u16;
    let body = serde_json::from_str(result["body"].as_str().expect("body")).expect("JSON body");
    (status, body)
}

/// Invokes the function with an event; returns the invocation's result document, which
/// must not be a failed invocation.
async fn invoke_raw(http: &reqwest::Client, emulator: &Emulator, event: &str) -> Value {
    let result = invoke_result(http, emulator, event).await;
    assert!(
        result.get("errorType").is_none(),
        "the handler itself failed: {result}"
    );
    result
}

/// Invokes the function with an event; returns the invocation's result document, whatever
/// it is.
async fn invoke_result(http: &reqwest::Client, emulator: &Emulator, event: &str) -> Value {
    let mut last_error = None;
    for _ in 0..100 {
        match http
            .post(&emulator.url)
            .body(event.to_string())
            .send()
            .await
        {
            Ok(response) => {
                let text = response.text().await.expect("invocation result");
                // The emulator answers a failed init with no JSON at all.
                return serde_json::from_str(&text).unwrap_or_else(
                    |_| serde_json::json!({"errorType": "no JSON answer", "answer": text}),
                );
            }
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("emulator never answered: {last_error:?}");
}

fn event(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
#[ignore = "needs the release bootstrap and the RIE: run through scripts/test.sh"]
async fn release_bootstrap_archives_under_the_runtime_interface_emulator() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(root.path(), S3_ACCESS_KEY, S3_SECRET_KEY)
        .await
        .unwrap();
    let client = s3_client(&s3.endpoint(), S3_SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let fake = FakeVeriff::start(FakeConfig::new(API_KEY, SECRET))
        .await
        .unwrap();
    let video_len = 9 * 1024 * 1024; // two parts: exercises multipart in the release build
    demo_scenario(&fake, video_len);
    let emulator = start_emulator(&fake.base_url(), &s3.endpoint());
    let http = reqwest::Client::new();
    let view = Bucket {
        client: client.clone(),
        root: root.path().to_path_buf(),
        validate_checksums: true,
    };

    // Rejected and ignored events write nothing, call nothing, and the runtime keeps serving.
    let (status, body) = invoke(&http, &emulator, &event("bad-signature.json")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = invoke(&http, &emulator, "[\"not an HTTP event\"]").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = invoke(&http, &emulator, &event("event-started.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    assert!(view.keys().await.is_empty(), "nothing written");
    assert!(fake.requests().is_empty(), "Veriff never called");

    // The decision is archived.
    let (status, body) = invoke(&http, &emulator, &event("decision-approved.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("archived")),
        "{body}"
    );
    assert_eq!(
        body["files"], 7,
        "5 top-ranked images, the NFC file and the video: {body}"
    );
    let manifest = view
        .manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
        .await
        .expect("manifest");
    view.assert_manifest_consistent(&manifest).await;
    let video = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "video")
        .unwrap();
    assert_eq!(video["size"], video_len);
    assert_eq!(video["s3Checksum"]["type"], "COMPOSITE");
    // Combined mode, the default: both listings read, and they show the same attempt.
    assert_eq!(manifest["mediaSource"]["mode"], "combined");
    assert_eq!(manifest["mediaSource"]["listingsMatched"], true);
    // The webhook body is kept next to the manifest, byte for byte.
    let payload_key = manifest["decisionPayload"]["key"].as_str().unwrap();
    let approved: Value = serde_json::from_str(&event("decision-approved.json")).unwrap();
    assert_eq!(
        view.object(payload_key).await.0,
        approved["body"].as_str().unwrap().as_bytes()
    );

    // The base64 copy of the same decision is a duplicate: nothing downloaded again.
    fake.reset_requests();
    let (status, body) = invoke(&http, &emulator, &event("decision-approved-base64.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("already_archived")),
        "{body}"
    );
    assert!(fake.requests().is_empty());

    // A later decision of the same attempt gets its own manifest, reusing every file.
    let (status, body) = invoke(&http, &emulator, &event("decision-declined.json")).await;
    assert_eq!(
        (status, body["status"].as_str(), body["reused"].as_u64()),
        (200, Some("archived"), Some(7)),
        "{body}"
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path.starts_with("/v1/media/")),
        "no media downloaded again"
    );
    // Every invocation wrote its metrics (Embedded Metric Format) on stdout: one summary
    // each, in the default namespace.
    let summaries: Vec<Value> = emulator
        .metric_records()
        .into_iter()
        .filter(|r| r.get("DecisionsArchived").is_some())
        .collect();
    assert_eq!(summaries.len(), 6, "{summaries:#?}");
    for summary in &summaries {
        assert_eq!(
            summary["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "VeriffArchiver"
        );
        assert_eq!(summary["Entry"], "webhook");
    }
    let total = |name: &str| {
        summaries
            .iter()
            .map(|s| s[name].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(
        [
            total("WebhooksRejected"),
            total("WebhooksIgnored"),
            total("DecisionsArchived"),
            total("DecisionsAlreadyArchived")
        ],
        [2, 1, 2, 1]
    );
    assert_eq!((total("FilesStored"), total("FilesReused")), (7, 7));
    let manifests = view.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await;
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[1].1["decision"]["status"], "declined");
    for (_, manifest) in &manifests {
        view.assert_manifest_consistent(manifest).await;
    }

    // A session whose latest attempt is not the decided one: the decided attempt's files,
    // from the attempt listing; the later attempt's NFC document skipped.
    let scenario = resubmitted_scenario(&fake);
    let resubmitted =
        signed_webhook_event(scenario.decision_webhook.as_bytes(), SECRET, API_KEY, false);
    let (status, body) = invoke(&http, &emulator, &resubmitted.to_string()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("archived")),
        "{body}"
    );
    let manifest = view
        .manifest(&scenario.session_id, &scenario.decided_attempt_id)
        .await
        .expect("manifest in the decided attempt's folder");
    view.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["mediaSource"]["listingsMatched"], false);
    assert_eq!(
        manifest["files"].as_array().unwrap().len(),
        scenario.decided_media.len()
    );
    assert!(
        manifest["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["reason"] == "later_attempt")
    );

    // The Essential plan's Full Auto result (events/fullauto-approved.json) is a decision:
    // archived with its kind and score; the declined result of the same attempt is another
    // decision, every file reused.
    let essential = essential_scenario(&fake);
    let (status, body) = invoke(&http, &emulator, &event("fullauto-approved.json")).await;
    assert_eq!(
        (status, body["status"].as_str(), body["files"].as_u64()),
        (200, Some("archived"), Some(4)),
        "document-front, document-back, face and the NFC file: {body}"
    );
    let manifest = view
        .manifest(&essential.session_id, &essential.attempt_id)
        .await
        .expect("the Full Auto manifest");
    view.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["decision"]["webhook"], "fullauto");
    assert_eq!(manifest["decision"]["decisionScore"], 0.97);
    assert_eq!(manifest["skipped"].as_array().unwrap().len(), 2);
    let fullauto: Value = serde_json::from_str(&event("fullauto-approved.json")).unwrap();
    let payload_key = manifest["decisionPayload"]["key"].as_str().unwrap();
    assert_eq!(
        view.object(payload_key).await.0,
        fullauto["body"].as_str().unwrap().as_bytes(),
        "the Full Auto body kept byte for byte"
    );
    let (status, body) = invoke(&http, &emulator, &event("fullauto-approved.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("already_archived")),
        "{body}"
    );
    let (status, body) = invoke(&http, &emulator, &event("fullauto-declined.json")).await;
    assert_eq!(
        (status, body["status"].as_str(), body["reused"].as_u64()),
        (200, Some("archived"), Some(4)),
        "{body}"
    );

    // The seal schedule's Scheduled Event (events/seal-scheduled.json): the ledger's first
    // digest, listing every manifest written above, with its metrics record.
    let manifests_written = view
        .keys()
        .await
        .iter()
        .filter(|k| k.contains("/manifest-") && !k.ends_with(".sig.json"))
        .count();
    let sealed = invoke_raw(&http, &emulator, &event("seal-scheduled.json")).await;
    assert_eq!(sealed["status"], "sealed", "{sealed}");
    assert_eq!(sealed["sequence"], 0);
    assert_eq!(
        sealed["manifests"].as_u64(),
        Some(manifests_written as u64),
        "{sealed}"
    );
    let digest_key = sealed["digest"].as_str().unwrap();
    let digest: Value = serde_json::from_slice(&view.object(digest_key).await.0).unwrap();
    assert_eq!(digest["schema"], "veriff-archiver/ledger-digest/v1");
    assert_eq!(
        digest["manifests"].as_array().unwrap().len(),
        manifests_written
    );
    let seal_records: Vec<Value> = emulator
        .metric_records()
        .into_iter()
        .filter(|r| r["Entry"] == "seal")
        .collect();
    assert_eq!(seal_records.len(), 1, "{seal_records:#?}");
    assert_eq!(seal_records[0]["DigestsSealed"], 1);
    assert_eq!(
        seal_records[0]["ManifestsSealed"].as_u64(),
        Some(manifests_written as u64)
    );
}

#[tokio::test]
#[ignore = "needs the release bootstrap, the RIE and moto_server: run through scripts/test.sh"]
async fn release_bootstrap_enqueues_and_consumes_in_queue_mode() {
    use crate::support::sqs::{LocalQueue, failed_ids};
    let root = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(root.path(), S3_ACCESS_KEY, S3_SECRET_KEY)
        .await
        .unwrap();
    let client = s3_client(&s3.endpoint(), S3_SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let fake = FakeVeriff::start(FakeConfig::new(API_KEY, SECRET))
        .await
        .unwrap();
    demo_scenario(&fake, 1_000_000);
    let q = LocalQueue::start(30, 5).await;
    let sqs_endpoint = q.moto.endpoint();
    let webhook = start_emulator_with(
        &fake.base_url(),
        &s3.endpoint(),
        &[
            ("INGEST_MODE", "queue"),
            ("ARCHIVE_QUEUE_URL", &q.url),
            ("ARCHIVE_DECISION_PAYLOAD", "false"),
            ("AWS_ENDPOINT_URL_SQS", &sqs_endpoint),
        ],
    );
    let consumer = start_emulator_with(&fake.base_url(), &s3.endpoint(), &[]);
    let http = reqwest::Client::new();
    let view = Bucket {
        client: client.clone(),
        root: root.path().to_path_buf(),
        validate_checksums: true,
    };

    // The webhook role: authenticate, classify, one message, `queued`.
    let (status, body) = invoke(&http, &webhook, &event("bad-signature.json")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = invoke(&http, &webhook, &event("decision-approved.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("queued")),
        "{body}"
    );
    let unknown = crate::support::decision("refused-session", "refused-attempt", "approved");
    let unknown = signed_webhook_event(unknown.as_bytes(), SECRET, API_KEY, false);
    let (status, body) = invoke(&http, &webhook, &unknown.to_string()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("queued")),
        "{body}"
    );
    assert!(
        fake.requests().is_empty(),
        "the webhook never calls Veriff in queue mode"
    );
    assert!(view.keys().await.is_empty(), "nor writes to S3");

    // The consumer role: one SQS event of both records; the partial batch response names
    // exactly the one that fails (a session whose media listing Veriff refuses: 403).
    fake.inject(archiver_devkit::Fault::new(
        "/v1/sessions/refused-session/media",
        archiver_devkit::FaultKind::Status(403),
        1000,
    ));
    let messages = q.receive(&q.url, 10, Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 2);
    let failing = messages
        .iter()
        .find(|m| m.body.as_deref().unwrap().contains("refused-session"))
        .and_then(|m| m.message_id.clone())
        .unwrap();
    let response = invoke_raw(&http, &consumer, &q.lambda_event(&messages).to_string()).await;
    assert_eq!(failed_ids(&response), vec![failing], "{response}");
    let manifest = view
        .manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID)
        .await
        .expect("manifest");
    view.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["files"].as_array().unwrap().len(), 7, "{manifest}");
    assert_eq!(manifest["decisionSource"], "webhook");
}

/// A signed Function URL event that is not a decision: `ignored` when the signature holds,
/// 401 otherwise, and no Veriff call either way.
fn started_event(secret: &str) -> String {
    signed_webhook_event(
        archiver_devkit::fixtures::EVENT_WEBHOOK_STARTED.as_bytes(),
        secret,
        API_KEY,
        false,
    )
    .to_string()
}

#[tokio::test]
#[ignore = "needs the release bootstrap, the RIE and moto_server: run through scripts/test.sh"]
async fn release_bootstrap_reads_rotates_and_keeps_credentials_from_secrets_manager() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(root.path(), S3_ACCESS_KEY, S3_SECRET_KEY)
        .await
        .unwrap();
    s3_client(&s3.endpoint(), S3_SECRET_KEY)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let fake = FakeVeriff::start(FakeConfig::new(API_KEY, SECRET))
        .await
        .unwrap();
    demo_scenario(&fake, 1_000_000);
    let moto = archiver_devkit::MotoServer::start()
        .await
        .expect("moto_server");
    let secrets = crate::support::secrets_client(&moto.endpoint());
    let value =
        |shared: &str| serde_json::json!({"apiKey": API_KEY, "sharedSecret": shared}).to_string();
    let arn = secrets
        .create_secret()
        .name("veriff-credentials")
        .secret_string(value(SECRET))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let endpoint = moto.endpoint();
    // Neither VERIFF_API_KEY nor VERIFF_SHARED_SECRET: the credentials come from the secret.
    let veriff_url = fake.base_url();
    let start = |secret_id: &str| {
        start_emulator_without_credentials(
            &veriff_url,
            &s3.endpoint(),
            &[
                ("VERIFF_SECRET_ARN", secret_id),
                ("SECRET_REFRESH_SECONDS", "2"),
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint),
            ],
        )
    };
    let http = reqwest::Client::new();

    // Read at cold start: a decision signed with the secret's shared secret is archived.
    let emulator = start(&arn);
    let (status, body) = invoke(&http, &emulator, &event("decision-approved.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("archived")),
        "{body}"
    );
    let (status, _) = invoke(&http, &emulator, &started_event("rotated-secret")).await;
    assert_eq!(status, 401, "not yet a valid secret");

    // A rotation: the new secret first, the old one still listed. Picked up once the
    // refresh interval has passed, with no restart.
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(value(&format!("rotated-secret,{SECRET}")))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, body) = invoke(&http, &emulator, &started_event("rotated-secret")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );
    let (status, _) = invoke(&http, &emulator, &started_event(SECRET)).await;
    assert_eq!(
        status, 200,
        "the previous secret still authenticates during the rotation"
    );
    assert!(
        emulator
            .output()
            .contains("Veriff credentials changed in Secrets Manager")
    );

    // The new key and secret in use towards Veriff: Veriff now knows only the rotated
    // credentials (the fake restarted with them, same address). A re-decision makes the
    // function list the media again: accepted only with the new API key, and its answers
    // are signed with the new secret, which the function must check.
    let addr = fake.addr();
    fake.shutdown().await;
    let fake = FakeVeriff::start_on(FakeConfig::new("rotated-key", "rotated-secret"), addr)
        .await
        .unwrap();
    demo_scenario(&fake, 1_000_000);
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(
            serde_json::json!({"apiKey": "rotated-key", "sharedSecret": "rotated-secret"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let redecided = signed_webhook_event(
        archiver_devkit::decision_webhook(
            archiver_devkit::fixtures::DEMO_SESSION_ID,
            archiver_devkit::fixtures::DEMO_ATTEMPT_ID,
            "declined",
            "2025-03-05T08:00:00.000Z",
        )
        .as_bytes(),
        "rotated-secret",
        "rotated-key",
        false,
    )
    .to_string();
    let (status, body) = invoke(&http, &emulator, &redecided).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("archived")),
        "{body}"
    );
    assert!(
        fake.requests().iter().any(|r| r.path.ends_with("/media")),
        "Veriff was called with the rotated key"
    );
    let rotated_event = |secret: &str| {
        signed_webhook_event(
            archiver_devkit::fixtures::EVENT_WEBHOOK_STARTED.as_bytes(),
            secret,
            "rotated-key",
            false,
        )
        .to_string()
    };

    // The refresh fails while warm (the secret is gone): the last good value stays, and
    // the next attempt waits for the next interval (one warning per interval, not one per
    // invocation).
    secrets
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let warning = "could not refresh the Veriff credentials from Secrets Manager; keeping the last good value";
    for _ in 0..4 {
        let (status, _) = invoke(&http, &emulator, &rotated_event("rotated-secret")).await;
        assert_eq!(status, 200, "the last good credentials are kept");
    }
    assert_eq!(
        emulator.output().matches(warning).count(),
        1,
        "one failed refresh within the interval, however many invocations"
    );
    let (status, _) = invoke(&http, &emulator, &rotated_event("never-a-secret")).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, _) = invoke(&http, &emulator, &rotated_event("rotated-secret")).await;
    assert_eq!(status, 200);
    let output = emulator.output();
    assert_eq!(
        output.matches(warning).count(),
        2,
        "the next interval tries again: {output}"
    );
    for secret in [SECRET, "rotated-secret", API_KEY, "rotated-key"] {
        assert!(
            !output.contains(secret),
            "{secret} in the function's output"
        );
    }
    drop(emulator);

    // Missing at cold start: the init fails with a clear line; nothing is served.
    let emulator = start("arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf");
    let result = invoke_result(&http, &emulator, &started_event(SECRET)).await;
    assert!(
        result.get("errorType").is_some(),
        "the invocation must fail: {result}"
    );
    let output = emulator.output();
    assert!(
        output.contains(
            "cannot read the Veriff credentials from Secrets Manager; the function does not start"
        ),
        "{output}"
    );
    assert!(output.contains("ResourceNotFoundException"), "{output}");
}

/// The emulator with the function's environment, but without VERIFF_API_KEY and
/// VERIFF_SHARED_SECRET.
fn start_emulator_without_credentials(
    veriff_url: &str,
    s3_endpoint: &str,
    extra: &[(&str, &str)],
) -> Emulator {
    start_emulator_full(veriff_url, s3_endpoint, extra, false)
}

/// An event from `events/` with its Function URL source address replaced.
fn event_from(name: &str, source: Value) -> String {
    let mut event: Value = serde_json::from_str(&event(name)).unwrap();
    event["requestContext"]["http"]["sourceIp"] = source;
    event.to_string()
}

#[tokio::test]
#[ignore = "needs the release bootstrap and the RIE: run through scripts/test.sh"]
async fn release_bootstrap_refuses_sources_outside_allowed_source_cidrs() {
    let root = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(root.path(), S3_ACCESS_KEY, S3_SECRET_KEY)
        .await
        .unwrap();
    let client = s3_client(&s3.endpoint(), S3_SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let fake = FakeVeriff::start(FakeConfig::new(API_KEY, SECRET))
        .await
        .unwrap();
    demo_scenario(&fake, 1000);
    let http = reqwest::Client::new();
    let view = Bucket {
        client: client.clone(),
        root: root.path().to_path_buf(),
        validate_checksums: true,
    };
    // The events' source address (203.0.113.10) is inside the list.
    let emulator = start_emulator_with(
        &fake.base_url(),
        &s3.endpoint(),
        &[("ALLOWED_SOURCE_CIDRS", "203.0.113.0/24, 2001:db8::/32")],
    );

    let mut no_context: Value = serde_json::from_str(&event("decision-approved.json")).unwrap();
    no_context.as_object_mut().unwrap().remove("requestContext");
    for (what, refused) in [
        (
            "IPv4 outside",
            event_from("decision-approved.json", "198.51.100.7".into()),
        ),
        (
            "IPv6 outside",
            event_from("decision-approved.json", "2001:db9::7".into()),
        ),
        (
            "malformed",
            event_from("decision-approved.json", "not-an-address".into()),
        ),
        ("no requestContext", no_context.to_string()),
        // Refused before the signature is looked at: a 403, not a 401.
        (
            "bad signature from outside",
            event_from("bad-signature.json", "198.51.100.7".into()),
        ),
    ] {
        let (status, body) = invoke(&http, &emulator, &refused).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("source_not_allowed")),
            "{what}: {body}"
        );
    }
    assert!(fake.requests().is_empty(), "Veriff never called");
    assert!(view.keys().await.is_empty(), "nothing written");

    // Inside: IPv4 (the events' own address) and IPv6.
    let (status, body) = invoke(&http, &emulator, &event("decision-approved.json")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("archived")),
        "{body}"
    );
    let inside_v6 = event_from("decision-approved-base64.json", "2001:db8::7".into());
    let (status, body) = invoke(&http, &emulator, &inside_v6).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("already_archived")),
        "{body}"
    );
    let (status, _) = invoke(&http, &emulator, &event("bad-signature.json")).await;
    assert_eq!(
        status, 401,
        "inside the list, the signature is still checked"
    );

    // The refused callers' addresses are logged, each on its refusal line; the allowed
    // sender's address and the end user's never.
    let output = emulator.output();
    let refusals: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("request from outside ALLOWED_SOURCE_CIDRS refused"))
        .collect();
    assert_eq!(refusals.len(), 3, "{output}");
    assert_eq!(output.matches("198.51.100.7").count(), 2, "{output}");
    assert_eq!(output.matches("2001:db9::7").count(), 1, "{output}");
    for never in ["203.0.113.10", "2001:db8::7", "not-an-address"] {
        assert!(!output.contains(never), "{never} logged: {output}");
    }
    let metrics = emulator.metric_records();
    let rejected: u64 = metrics
        .iter()
        .filter(|r| r.get("DecisionsArchived").is_some())
        .filter_map(|r| r.get("WebhooksRejected").and_then(Value::as_u64))
        .sum();
    assert_eq!(rejected, 6, "five refusals and one bad signature");
    let refused_by_code = metrics
        .iter()
        .filter(|r| r["ErrorCode"] == "source_not_allowed")
        .count();
    assert_eq!(refused_by_code, 5, "per-ErrorCode records");
    drop(emulator);

    // An invalid list stops the function at cold start, naming the variable.
    let emulator = start_emulator_with(
        &fake.base_url(),
        &s3.endpoint(),
        &[("ALLOWED_SOURCE_CIDRS", "203.0.113.7/24")],
    );
    let result = invoke_result(&http, &emulator, &event("decision-approved.json")).await;
    assert!(
        result.get("errorType").is_some(),
        "the init must fail: {result}"
    );
    let output = emulator.output();
    assert!(
        output.contains("ALLOWED_SOURCE_CIDRS: entry 1 (\\\"203.0.113.7/24\\\") has bits set after its prefix length: did you mean 203.0.113.0/24?"),
        "{output}"
    );
}
