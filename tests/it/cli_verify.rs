//! `veriff-archiver verify`, the built binary run as a subprocess against a real S3 server
//! (s3s-fs over HTTP on loopback) holding an archive the real handler wrote: two sessions,
//! a re-decision, a multipart video, NFC and the kept webhook bodies.
//!
//! Each tampering runs on its own fresh archive and must be found, with the key named and
//! exit code 1; a clean archive exits 0; usage and access errors exit 2.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;
use archiver_devkit::demo::{RESUBMITTED_DECIDED_ATTEMPT_ID, RESUBMITTED_SESSION_ID};
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{demo_scenario, resubmitted_scenario};
use aws_sdk_s3::primitives::ByteStream;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::Value;
use veriff_archiver::layout;
use veriff_archiver::signing::{signature_document, signature_key, statement_bytes};

const SESSION: &str = DEMO_SESSION_ID;
const ATTEMPT: &str = DEMO_ATTEMPT_ID;
/// Over one 5 MiB part: the video is a multipart object with a composite checksum.
const VIDEO_LEN: u64 = 6 * 1024 * 1024 + 123;
const KEY_ID: &str = "arn:aws:kms:us-east-1:111122223333:key/cli-verify-test";

// ---------------------------------------------------------------------------------------
// The archive and the subprocess

/// A fresh archive: the demo session (images, NFC, video) approved then re-decided
/// (`review`), and the resubmitted session's decision, with the webhook bodies kept.
async fn archive() -> Harness {
    let h = Harness::with(&[
        ("ARCHIVE_VIDEOS", "true"),
        ("ARCHIVE_DECISION_PAYLOAD", "true"),
    ])
    .await;
    demo_scenario(&h.fake, VIDEO_LEN);
    let resubmitted = resubmitted_scenario(&h.fake);
    let review =
        archiver_devkit::decision_webhook(SESSION, ATTEMPT, "review", "2025-03-06T00:00:00Z");
    for body in [
        decision(SESSION, ATTEMPT, "approved"),
        review,
        resubmitted.decision_webhook.clone(),
    ] {
        let reply = h.deliver_body(&body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["status"], "archived", "{}", reply.body);
    }
    h
}

/// What one run of the binary did.
type Run = CliRun;

/// Runs `veriff-archiver verify ARGS` with the function's environment for this harness.
async fn verify(h: &Harness, args: &[&str]) -> Run {
    verify_with(h, args, &[]).await
}

/// Same, with more environment variables.
async fn verify_with(h: &Harness, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_veriff-archiver"));
    command
        .arg("verify")
        .args(args)
        .env_clear()
        .envs(cli_env(h))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("verify finishes within 2 minutes")
        .expect("run veriff-archiver");
    CliRun::from_output(out)
}

/// Asserts the exit code, showing the output when it differs.
fn assert_code(run: &Run, code: i32) {
    run.assert_code(code);
}

/// The problem counts of a `--json` summary, by class, in summary order.
fn problem_counts(doc: &Value) -> [u64; 7] {
    [
        "missing",
        "altered",
        "unreadable",
        "unsigned",
        "badSignature",
        "orphans",
        "gaps",
    ]
    .map(|class| {
        let count = doc["summary"][class].as_u64().unwrap();
        assert_eq!(
            doc["problems"][class].as_array().unwrap().len() as u64,
            count,
            "problems.{class} lists as many as summary.{class}"
        );
        count
    })
}

/// Keys of the problems of one class.
fn problem_keys(doc: &Value, class: &str) -> Vec<String> {
    doc["problems"][class]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect()
}

/// Every manifest key in the bucket.
async fn manifest_keys(h: &Harness) -> Vec<String> {
    h.keys()
        .await
        .into_iter()
        .filter(|key| {
            let folder = &key[..=key.rfind('/').unwrap()];
            layout::parse_manifest_key(folder, key).is_some()
        })
        .collect()
}

/// The distinct files (media and webhook bodies) the manifests list: (key, size).
async fn listed_files(h: &Harness) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    for key in manifest_keys(h).await {
        let manifest: Value = serde_json::from_slice(&h.object(&key).await.0).unwrap();
        let payload = Some(&manifest["decisionPayload"]).filter(|p| p.is_object());
        for file in manifest["files"].as_array().unwrap().iter().chain(payload) {
            files.push((
                file["key"].as_str().unwrap().to_string(),
                file["size"].as_u64().unwrap(),
            ));
        }
    }
    files.sort();
    files.dedup();
    files
}

/// The key of the demo attempt's file of this kind (`image`, `video`, `nfc`).
async fn demo_file(h: &Harness, kind: &str) -> String {
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} in {manifest:#}"))["key"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn put(h: &Harness, key: &str, bytes: Vec<u8>) {
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

async fn delete(h: &Harness, key: &str) {
    h.client
        .delete_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
}

/// The test's manifest signing key (KMS holds it in production).
fn signing_key() -> SigningKey {
    SigningKey::from_slice(&[0x5A; 32]).unwrap()
}

/// Writes the public key as PEM into `dir`, returning its path.
fn public_key_pem(dir: &Path) -> String {
    let pem = VerifyingKey::from(&signing_key())
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let path = dir.join("manifest-signing.pem");
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_string()
}

/// Signs every manifest but `except` the way the function does, storing each signature
/// document beside its manifest.
async fn sign_manifests(h: &Harness, except: Option<&str>) {
    for key in manifest_keys(h).await {
        if Some(key.as_str()) == except {
            continue;
        }
        let manifest = h.object(&key).await.0;
        let statement = statement_bytes(&key, &manifest, KEY_ID);
        let signature: Signature = signing_key().sign(&statement);
        let document = signature_document(&statement, signature.to_der().as_bytes(), KEY_ID);
        put(h, &signature_key(&key), document).await;
    }
}

// ---------------------------------------------------------------------------------------
// A clean archive

#[tokio::test]
async fn a_clean_archive_verifies_with_exit_0_and_its_counts() {
    let h = archive().await;
    let files = listed_files(&h).await;
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    // 5 images + NFC + video of the demo attempt, 3 images of the resubmitted one, and
    // the 3 kept webhook bodies; the re-decision reuses the demo attempt's files.
    assert_eq!(files.len(), 7 + 3 + 3, "{files:#?}");

    let run = verify(&h, &["--json"]).await;
    assert_code(&run, 0);
    let doc = run.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["exitCode"], 0);
    assert_eq!(doc["bucket"], BUCKET);
    assert_eq!(doc["prefix"], PREFIX);
    assert_eq!(doc["deep"], false);
    assert_eq!(doc["signaturesChecked"], false);
    let summary = &doc["summary"];
    assert_eq!(summary["sessions"], 2);
    assert_eq!(summary["attempts"], 2);
    assert_eq!(summary["manifests"], 3);
    assert_eq!(summary["files"], files.len() as u64);
    assert_eq!(summary["bytes"], bytes);
    assert_eq!(summary["ok"], files.len() as u64);
    assert_eq!(problem_counts(&doc), [0; 7]);
    // Every session, attempt, manifest and file in detail.
    let sessions: Vec<&str> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap())
        .collect();
    let mut expected_sessions = vec![SESSION, RESUBMITTED_SESSION_ID];
    expected_sessions.sort();
    assert_eq!(sessions, expected_sessions);
    let manifests: Vec<&Value> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["attempts"].as_array().unwrap())
        .flat_map(|a| a["manifests"].as_array().unwrap())
        .collect();
    assert_eq!(manifests.len(), 3);
    let mut kinds: Vec<&str> = Vec::new();
    for manifest in &manifests {
        assert_eq!(manifest["readable"], true);
        assert_eq!(manifest["schemaVersion"], 3);
        assert_eq!(manifest["signature"], "unsigned");
        for file in manifest["files"].as_array().unwrap() {
            assert_eq!(file["result"], "ok", "{file}");
            kinds.push(file["kind"].as_str().unwrap());
        }
        assert_eq!(manifest["decisionPayload"]["result"], "ok");
    }
    for kind in ["image", "video", "nfc"] {
        assert!(kinds.contains(&kind), "a {kind} file in {kinds:?}");
    }
    let statuses: Vec<&str> = manifests
        .iter()
        .map(|m| m["decision"]["status"].as_str().unwrap())
        .collect();
    for status in ["approved", "review", "resubmission_requested"] {
        assert!(statuses.contains(&status), "{statuses:?}");
    }

    // The human output: the summary table, aligned, and the verdict.
    let run = verify(&h, &[]).await;
    assert_code(&run, 0);
    assert!(run.stderr.is_empty(), "no progress bar off a terminal");
    assert_eq!(run.row("sessions"), "2");
    assert_eq!(run.row("attempts"), "2");
    assert_eq!(run.row("manifests"), "3");
    assert_eq!(run.row("files"), files.len().to_string());
    assert!(
        run.row("bytes").starts_with(&format!("{bytes} (")),
        "{}",
        run.stdout
    );
    assert_eq!(run.row("ok"), files.len().to_string());
    for label in [
        "missing",
        "altered",
        "unreadable",
        "orphans",
        "gaps",
        "removed",
        "changed",
        "covered",
        "ledger",
        "unsealed",
        "unarchived",
    ] {
        assert_eq!(run.row(label), "0", "{label}");
    }
    assert_eq!(run.row("unsigned"), "not checked");
    assert_eq!(run.row("bad signature"), "not checked");
    assert_eq!(run.row("signatures"), "not checked");
    assert_eq!(run.row("deep"), "no");
    let table: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| *l != "Summary")
        .skip(1)
        .take_while(|l| !l.starts_with("OK") && !l.starts_with("Problems") && *l != "Ledger")
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 21, "{}", run.stdout);
    let width = table[0].len();
    assert!(
        table.iter().all(|l| l.len() == width),
        "right-aligned values:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with(&format!(
            "OK: 3 manifests and {} files verified, no problem found\n",
            files.len()
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Problems"));
    // Not sealed yet: the ledger has no digest, and the fresh manifests await the seal.
    assert!(
        run.stdout.contains("\nLedger\n  0/0 digests valid\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("  0/0 sealed manifests present; 3 awaiting the next seal\n"),
        "{}",
        run.stdout
    );

    // --deep downloads and hashes everything, and finds it all as recorded.
    let run = verify(&h, &["--deep", "--json", "--concurrency", "3"]).await;
    assert_code(&run, 0);
    let doc = run.json();
    assert_eq!(doc["deep"], true);
    assert_eq!(doc["summary"]["ok"], files.len() as u64);
}

// ---------------------------------------------------------------------------------------
// Tamperings, each on its own archive

#[tokio::test]
async fn an_object_overwritten_with_other_bytes_of_the_same_size_is_altered() {
    let h = archive().await;
    let key = demo_file(&h, "image").await;
    let mut bytes = h.object(&key).await.0;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    put(&h, &key, bytes).await;

    let run = verify(&h, &["--json"]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exitCode"], 1);
    assert_eq!(problem_counts(&doc), [0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(problem_keys(&doc, "altered"), [key.as_str()]);
    let problem = &doc["problems"]["altered"][0];
    assert!(
        problem["expected"].as_str().unwrap().contains("SHA-256"),
        "{problem}"
    );
    assert!(problem["found"].is_string(), "{problem}");
    assert!(
        problem["manifest"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PREFIX}{SESSION}/{ATTEMPT}/manifest-")),
        "{problem}"
    );
    // The file in the session detail carries the result too.
    let results: Vec<&Value> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["attempts"].as_array().unwrap())
        .flat_map(|a| a["manifests"].as_array().unwrap())
        .flat_map(|m| m["files"].as_array().unwrap())
        .filter(|f| f["key"] == key.as_str())
        .collect();
    assert_eq!(
        results.len(),
        2,
        "listed by the decision and the re-decision"
    );
    assert!(results.iter().all(|f| f["result"] == "altered"));

    // The human output names the key, what was expected and what was found.
    let run = verify(&h, &[]).await;
    assert_code(&run, 1);
    assert_eq!(run.row("altered"), "1");
    assert!(run.stdout.contains("\naltered (1): "), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("\n  {key}\n")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("      expected   "), "{}", run.stdout);
    assert!(run.stdout.contains("      found      "), "{}", run.stdout);
    assert!(run.stdout.contains("      listed by  "), "{}", run.stdout);
    assert!(
        run.stdout.ends_with("FAILED: 1 problem (1 altered)\n"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_deleted_object_is_missing() {
    let h = archive().await;
    let key = demo_file(&h, "video").await;
    delete(&h, &key).await;

    let run = verify(&h, &["--json"]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(problem_counts(&doc), [1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(problem_keys(&doc, "missing"), [key.as_str()]);
    assert_eq!(doc["problems"]["missing"][0]["found"], "no such object");
    assert_eq!(
        doc["summary"]["ok"].as_u64().unwrap() + 1,
        doc["summary"]["files"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn signed_manifests_verify_and_an_edited_manifest_fails_its_signature() {
    let h = archive().await;
    let dir = tempfile::tempdir().unwrap();
    let pem = public_key_pem(dir.path());
    sign_manifests(&h, None).await;

    let run = verify(&h, &["--json", "--public-key", &pem]).await;
    assert_code(&run, 0);
    let doc = run.json();
    assert_eq!(doc["signaturesChecked"], true);
    assert_eq!(problem_counts(&doc), [0; 7], "signatures are not orphans");
    let signatures: Vec<&Value> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["attempts"].as_array().unwrap())
        .flat_map(|a| a["manifests"].as_array().unwrap())
        .map(|m| &m["signature"])
        .collect();
    assert_eq!(signatures.len(), 3);
    assert!(signatures.iter().all(|s| *s == "valid"), "{signatures:?}");
    // Without the key, the signatures are there but not checked.
    let doc = verify(&h, &["--json"]).await.json();
    assert_eq!(
        doc["sessions"][0]["attempts"][0]["manifests"][0]["signature"],
        "not_checked"
    );

    // One hash edited in one manifest.
    let manifest_key = manifest_keys(&h)
        .await
        .into_iter()
        .find(|k| k.starts_with(&format!("{PREFIX}{RESUBMITTED_SESSION_ID}/")))
        .unwrap();
    let mut manifest: Value = serde_json::from_slice(&h.object(&manifest_key).await.0).unwrap();
    manifest["files"][0]["sha256"] = Value::from("0".repeat(64));
    put(
        &h,
        &manifest_key,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .await;

    let run = verify(&h, &["--json", "--public-key", &pem]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(problem_counts(&doc), [0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(problem_keys(&doc, "badSignature"), [manifest_key.as_str()]);
    let found = doc["problems"]["badSignature"][0]["found"]
        .as_str()
        .unwrap();
    assert!(found.contains("changed after it was signed"), "{found}");

    let run = verify(&h, &["--public-key", &pem]).await;
    assert_code(&run, 1);
    assert_eq!(run.row("bad signature"), "1");
    assert_eq!(run.row("signatures"), "checked");
    assert!(
        run.stdout.contains(&format!("\n  {manifest_key}\n")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_manifest_without_its_signature_is_unsigned_when_a_key_is_given() {
    let h = archive().await;
    let dir = tempfile::tempdir().unwrap();
    let pem = public_key_pem(dir.path());

    // Nothing signed: every manifest is reported once a key is given.
    let run = verify(&h, &["--json", "--public-key", &pem]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(problem_counts(&doc), [0, 0, 0, 3, 0, 0, 0]);
    let mut keys = problem_keys(&doc, "unsigned");
    keys.sort();
    assert_eq!(keys, manifest_keys(&h).await);

    // All signed but one.
    let unsigned = manifest_keys(&h).await.remove(0);
    sign_manifests(&h, Some(&unsigned)).await;
    let run = verify(&h, &["--json", "--public-key", &pem]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(problem_counts(&doc), [0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(problem_keys(&doc, "unsigned"), [unsigned.as_str()]);
    assert_eq!(
        doc["problems"]["unsigned"][0]["expected"],
        format!("a signature at {}", signature_key(&unsigned))
    );
}

#[tokio::test]
async fn a_stray_object_under_the_prefix_is_an_orphan() {
    let h = archive().await;
    let stray = format!("{PREFIX}{SESSION}/{ATTEMPT}/notes.txt");
    put(&h, &stray, b"written by hand".to_vec()).await;

    let run = verify(&h, &["--json"]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(problem_counts(&doc), [0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(problem_keys(&doc, "orphans"), [stray.as_str()]);

    // Outside any attempt folder, too.
    let loose = format!("{PREFIX}export.csv");
    put(&h, &loose, b"a,b\n".to_vec()).await;
    let run = verify(&h, &[]).await;
    assert_code(&run, 1);
    assert_eq!(run.row("orphans"), "2");
    for key in [&stray, &loose] {
        assert!(
            run.stdout.contains(&format!("\n  {key}\n")),
            "{}",
            run.stdout
        );
    }
}

#[tokio::test]
async fn an_attempt_folder_whose_manifest_was_removed_is_a_gap() {
    let h = archive().await;
    let folder = format!("{PREFIX}{RESUBMITTED_SESSION_ID}/{RESUBMITTED_DECIDED_ATTEMPT_ID}/");
    let manifests: Vec<String> = manifest_keys(&h)
        .await
        .into_iter()
        .filter(|k| k.starts_with(&folder))
        .collect();
    assert_eq!(manifests.len(), 1);
    delete(&h, &manifests[0]).await;

    let run = verify(&h, &["--json"]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(
        problem_counts(&doc),
        [0, 0, 0, 0, 0, 0, 1],
        "a gap, and its files are not reported again as orphans"
    );
    assert_eq!(problem_keys(&doc, "gaps"), [folder.as_str()]);
    assert_eq!(doc["summary"]["manifests"], 2);
}

#[tokio::test]
async fn deep_catches_bytes_changed_behind_the_s3_checksum() {
    let h = archive().await;
    let key = demo_file(&h, "nfc").await;
    // Edit the stored file itself: s3s-fs keeps serving the size, ETag and SHA-256
    // checksum it recorded at PutObject.
    let path = h.bucket.root.join(BUCKET).join(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let (size, _, _, _) = h.head(&key).await;
    assert_eq!(size, bytes.len() as u64);

    let run = verify(&h, &["--json"]).await;
    assert_code(&run, 0);
    assert_eq!(
        problem_counts(&run.json()),
        [0; 7],
        "HeadObject cannot see it"
    );

    let run = verify(&h, &["--json", "--deep"]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(problem_counts(&doc), [0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(problem_keys(&doc, "altered"), [key.as_str()]);
    let found = doc["problems"]["altered"][0]["found"].as_str().unwrap();
    assert!(found.starts_with("SHA-256 "), "{found}");

    let run = verify(&h, &["--deep"]).await;
    assert_code(&run, 1);
    assert_eq!(run.row("deep"), "yes");
    assert!(
        run.stdout.contains(&format!("\n  {key}\n")),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------
// Scope and errors

#[tokio::test]
async fn session_limits_the_audit() {
    let h = archive().await;
    // A problem in the demo session only.
    let stray = format!("{PREFIX}{SESSION}/{ATTEMPT}/notes.txt");
    put(&h, &stray, b"written by hand".to_vec()).await;

    let run = verify(&h, &["--json", "--session", RESUBMITTED_SESSION_ID]).await;
    assert_code(&run, 0);
    let doc = run.json();
    assert_eq!(doc["summary"]["sessions"], 1);
    assert_eq!(doc["summary"]["manifests"], 1);
    assert_eq!(
        doc["summary"]["files"],
        3 + 1,
        "3 images and the webhook body"
    );
    assert_eq!(doc["sessions"][0]["sessionId"], RESUBMITTED_SESSION_ID);

    let run = verify(&h, &["--json", "--session", SESSION]).await;
    assert_code(&run, 1);
    let doc = run.json();
    assert_eq!(doc["summary"]["sessions"], 1);
    assert_eq!(problem_keys(&doc, "orphans"), [stray]);

    // Repeated: both sessions; the human header says which.
    let run = verify(
        &h,
        &["--session", RESUBMITTED_SESSION_ID, "--session", SESSION],
    )
    .await;
    assert_code(&run, 1);
    assert_eq!(run.row("sessions"), "2");
    assert!(
        run.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with(&format!("(session {RESUBMITTED_SESSION_ID}, {SESSION})")),
        "{}",
        run.stdout
    );

    // A session with nothing archived is not "verified": exit 2.
    let run = verify(&h, &["--json", "--session", "no-such-session"]).await;
    assert_code(&run, 2);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("no-such-session"), "{}", run.stderr);
}

#[tokio::test]
async fn usage_configuration_and_access_errors_exit_2() {
    let h = Harness::start().await;

    // No such bucket: an access error, nothing on stdout even with --json.
    for args in [
        &["--bucket", "no-such-bucket"][..],
        &["--bucket", "no-such-bucket", "--json"],
    ] {
        let run = verify(&h, args).await;
        assert_code(&run, 2);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(run.stderr.contains("NoSuchBucket"), "{}", run.stderr);
        assert!(run.stderr.contains("no-such-bucket"), "{}", run.stderr);
    }
    // The same through the environment; --bucket overrides it.
    let run = verify_with(&h, &["--json"], &[("ARCHIVE_BUCKET", "no-such-bucket")]).await;
    assert_code(&run, 2);
    let run = verify_with(
        &h,
        &["--json", "--bucket", BUCKET],
        &[("ARCHIVE_BUCKET", "no-such-bucket")],
    )
    .await;
    assert_code(&run, 0);
    assert_eq!(run.json()["summary"]["sessions"], 0, "an empty archive");

    // A session id that could leave its folder.
    for id in ["../other", "a/b", "", ".hidden"] {
        let run = verify(&h, &["--session", id]).await;
        assert_code(&run, 2);
        assert!(run.stdout.is_empty());
        assert!(run.stderr.contains("--session"), "{id:?}: {}", run.stderr);
    }
    // A bad prefix, an unknown flag, a concurrency of 0, a missing bucket.
    let run = verify(&h, &["--prefix", "a/../b"]).await;
    assert_code(&run, 2);
    assert!(run.stderr.contains("--prefix"), "{}", run.stderr);
    assert_code(&verify(&h, &["--fast"]).await, 2);
    assert_code(&verify(&h, &["--concurrency", "0"]).await, 2);
    let run = verify_with(&h, &[], &[("ARCHIVE_BUCKET", "")]).await;
    assert_code(&run, 2);
    // A public key that is not one; a flag overrides MANIFEST_SIGNING_KEY_ID (no KMS call).
    let dir = tempfile::tempdir().unwrap();
    let not_a_key = dir.path().join("key.pem");
    std::fs::write(&not_a_key, "not a key").unwrap();
    let run = verify_with(
        &h,
        &["--public-key", not_a_key.to_str().unwrap()],
        &[("MANIFEST_SIGNING_KEY_ID", "alias/archive")],
    )
    .await;
    assert_code(&run, 2);
    assert!(run.stderr.contains("--public-key"), "{}", run.stderr);
    let pem = public_key_pem(dir.path());
    let run = verify_with(
        &h,
        &["--json", "--public-key", &pem],
        &[("MANIFEST_SIGNING_KEY_ID", "alias/archive")],
    )
    .await;
    assert_code(&run, 0);
    assert_eq!(run.json()["signaturesChecked"], true);
}
