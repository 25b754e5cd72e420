//! The evidence-grade archive: the decided attempt exactly (both media listings), nothing
//! ever overwritten, one manifest per decision, the webhook body kept on request, schema v1
//! archives still readable, and Object Lock.
//!
//! Every case runs against s3s-fs. The core cases run again against moto_server, which
//! enforces S3 Object Lock and conditional writes like AWS: those are `#[ignore]`d here
//! because they need `moto_server` (installed into `.venv-moto/` by scripts/test.sh, which runs
//! them with `-- --ignored`).

use std::time::Duration;

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{
    DemoMediaKind, Fault, FaultKind, S3Fault, S3FaultKind, demo_scenario, hmac_sha256_hex,
    resubmitted_scenario,
};
use serde_json::{Value, json};
use veriff_archiver::layout::{self, DecisionName};
use veriff_archiver::webhook::{self, Webhook};

const SESSION: &str = DEMO_SESSION_ID;
const ATTEMPT: &str = DEMO_ATTEMPT_ID;

fn ids(manifest: &Value) -> Vec<String> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["mediaId"].as_str().unwrap().to_string())
        .collect()
}

fn without_attempt_id(body: &str) -> String {
    let mut doc: Value = serde_json::from_str(body).unwrap();
    doc["verification"]
        .as_object_mut()
        .unwrap()
        .remove("attemptId");
    doc.to_string()
}

/// The manifest key of the decision `body` in its given attempt's folder.
fn manifest_key_of(body: &str) -> String {
    let Ok(Webhook::Decision(d)) = webhook::classify(body.as_bytes()) else {
        panic!("not a decision")
    };
    let attempt = d.attempt_id.clone().unwrap();
    let folder = layout::attempt_folder(PREFIX, &d.session_id, &attempt);
    DecisionName::of(&d, &attempt).manifest_key(&folder, 1)
}

// ---------------------------------------------------------------------------------------
// The decided attempt, exactly
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_later_attempt_with_other_images_and_nfc_is_never_archived_as_the_decided_one() {
    let h = Harness::start().await;
    let scenario = resubmitted_scenario(&h.fake);
    let reply = h.deliver_body(&scenario.decision_webhook).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["attemptId"],
        scenario.decided_attempt_id.as_str()
    );

    let manifest = h
        .manifest(&scenario.session_id, &scenario.decided_attempt_id)
        .await
        .expect("manifest in the decided attempt's folder");
    h.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["mediaSource"]["mode"], "combined");
    assert_eq!(manifest["mediaSource"]["listing"], "attempt");
    assert_eq!(manifest["mediaSource"]["listingsMatched"], false);
    // Exactly the decided attempt's images, byte for byte, from the attempt listing.
    let mut expected: Vec<String> = scenario
        .decided_media
        .iter()
        .map(|m| m.id.clone())
        .collect();
    let mut got = ids(&manifest);
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    for file in manifest["files"].as_array().unwrap() {
        assert_eq!(file["listing"], "attempt");
        let media = scenario
            .decided_media
            .iter()
            .find(|m| m.id == file["mediaId"].as_str().unwrap())
            .unwrap();
        let archiver_devkit::MediaContent::Bytes { data, .. } = &media.content else {
            panic!("images are in memory")
        };
        assert_eq!(
            h.object(file["key"].as_str().unwrap()).await.0,
            data.to_vec()
        );
    }
    // The session's NFC document belongs to the later attempt: listed as skipped, with why.
    let later: Vec<&Value> = manifest["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reason"] == "later_attempt")
        .collect();
    assert_eq!(later.len(), 1, "{manifest:#}");
    assert_eq!(later[0]["mediaId"], scenario.nfc.id.as_str());
    assert_eq!(later[0]["kind"], "nfc");
    // Nothing of the later attempt was downloaded or stored.
    for media in scenario.latest_media.iter().chain([&scenario.nfc]) {
        assert_eq!(h.fake.count(&format!("/v1/media/{}", media.id)), 0);
    }
    assert!(
        h.keys()
            .await
            .iter()
            .all(|k| !k.contains(&scenario.latest_attempt_id))
    );
    // Both listings were read (at the same time: see the benchmark for the latency).
    assert_eq!(
        h.fake
            .count(&format!("/v1/sessions/{}/media", scenario.session_id)),
        1
    );
    assert_eq!(
        h.fake.count(&format!(
            "/v1/attempts/{}/media",
            scenario.decided_attempt_id
        )),
        1
    );
}

#[tokio::test]
async fn a_failing_attempt_listing_is_retried_then_the_right_attempt_is_archived() {
    let h = Harness::start().await;
    let scenario = resubmitted_scenario(&h.fake);
    let listing = format!("/v1/attempts/{}/media", scenario.decided_attempt_id);
    h.fake
        .inject(Fault::new(listing.as_str(), FaultKind::Status(503), 1));
    let reply = h.deliver_body(&scenario.decision_webhook).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(h.fake.count(&listing), 2, "retried once");
    let manifest = h
        .manifest(&scenario.session_id, &scenario.decided_attempt_id)
        .await
        .unwrap();
    assert_eq!(manifest["mediaSource"]["listing"], "attempt");
    assert_eq!(ids(&manifest).len(), scenario.decided_media.len());

    // A listing that keeps failing fails the decision: no manifest, Veriff redelivers.
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "2")]).await;
    let scenario = resubmitted_scenario(&h.fake);
    h.fake
        .inject(Fault::new(listing.as_str(), FaultKind::Status(500), 10));
    let reply = h.deliver_body(&scenario.decision_webhook).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(h.keys().await.is_empty());
}

#[tokio::test]
async fn the_single_endpoint_modes_read_one_listing_each() {
    for (mode, listing, path) in [
        (
            "session",
            "session",
            format!("/v1/sessions/{SESSION}/media"),
        ),
        (
            "attempt",
            "attempt",
            format!("/v1/attempts/{ATTEMPT}/media"),
        ),
    ] {
        let path = format!("GET {path}");
        let h = Harness::with(&[("MEDIA_SOURCE", mode)]).await;
        demo_scenario(&h.fake, 1000);
        let reply = h
            .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
            .await;
        assert_eq!(reply.status, 200, "{mode}: {}", reply.body);
        let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
        assert_eq!(manifest["mediaSource"]["mode"], mode);
        assert_eq!(manifest["mediaSource"]["listing"], listing);
        assert_eq!(manifest["mediaSource"]["listingsMatched"], Value::Null);
        assert_eq!(manifest["mediaSource"]["endpoints"], json!([path]));
        let metadata_requests = h
            .fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/media") && !r.path.starts_with("/v1/media/"))
            .count();
        assert_eq!(metadata_requests, 1, "{mode}");
    }
}

#[tokio::test]
async fn a_decision_without_attempt_id_archives_the_sessions_newest_attempt() {
    // A session with one attempt: resolved to it.
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = without_attempt_id(&decision(SESSION, ATTEMPT, "approved"));
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["attemptId"], ATTEMPT);
    assert_eq!(reply.body["attemptIdSource"], "resolved");
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    assert_eq!(manifest["attemptIdSource"], "resolved");
    h.assert_manifest_consistent(&manifest).await;
    assert_eq!(h.fake.count(&format!("/v1/sessions/{SESSION}/attempts")), 1);
    // A redelivery resolves again and finds the manifest.
    let again = h.deliver_body(&body).await;
    assert_eq!(again.body["status"], "already_archived", "{}", again.body);

    // Two attempts, the older listed first: the newest by createdTime is archived, and the
    // session listing shows it, so its NFC document is archived too.
    let h = Harness::start().await;
    let scenario = resubmitted_scenario(&h.fake);
    let reply = h
        .deliver_body(&without_attempt_id(&scenario.decision_webhook))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["attemptId"], scenario.latest_attempt_id.as_str());
    let manifest = h
        .manifest(&scenario.session_id, &scenario.latest_attempt_id)
        .await
        .unwrap();
    assert_eq!(manifest["mediaSource"]["listingsMatched"], true);
    assert!(ids(&manifest).contains(&scenario.nfc.id));

    // Ids elsewhere in the payload never name the session.
    let mut doc: Value = serde_json::from_str(&body).unwrap();
    doc["verification"]["riskLabels"] = json!([{"label": "x", "sessionIds": ["../other-session"]}]);
    doc["verification"]["biometricAuthentication"] =
        json!({"matchedSessionId": "f04bdb47-0000-0000-0000-000000000000"});
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let reply = h.deliver_body(&doc.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        h.keys()
            .await
            .iter()
            .all(|k| k.starts_with(&format!("{PREFIX}{SESSION}/{ATTEMPT}/")))
    );
}

#[tokio::test]
async fn unsigned_metadata_fails_closed_unless_the_option_says_otherwise() {
    for listing in [
        format!("/v1/sessions/{SESSION}/media"),
        format!("/v1/attempts/{ATTEMPT}/media"),
    ] {
        let h = Harness::start().await;
        demo_scenario(&h.fake, 1000);
        h.fake
            .inject(Fault::new(listing.as_str(), FaultKind::Unsigned, 10));
        let reply = h
            .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
            .await;
        assert_eq!(reply.status, 502, "{listing}: {}", reply.body);
        assert_eq!(reply.body["code"], "integrity_check_failed");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("no X-HMAC-SIGNATURE")
        );
        assert_eq!(h.media_downloads(), 0);
        assert!(h.keys().await.is_empty());
    }
    let h = Harness::with(&[("VERIFF_REQUIRE_RESPONSE_SIGNATURE", "false")]).await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new("*", FaultKind::Unsigned, 2));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // A wrong signature still fails, whatever the option.
    let h = Harness::with(&[("VERIFF_REQUIRE_RESPONSE_SIGNATURE", "false")]).await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        format!("/v1/sessions/{SESSION}/media"),
        FaultKind::WrongSignature,
        10,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
}

#[tokio::test]
async fn an_unknown_status_is_archived_when_all_are_and_ignored_when_a_list_is_set() {
    let body = archiver_devkit::decision_webhook(
        SESSION,
        ATTEMPT,
        "approved_with_conditions",
        "2025-03-04T10:21:07.412Z",
    );
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.body["status"], "archived", "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    assert_eq!(manifest["decision"]["status"], "approved_with_conditions");

    let h = Harness::with(&[("ARCHIVE_STATUSES", "approved,declined")]).await;
    demo_scenario(&h.fake, 1000);
    let reply = h.deliver_body(&body).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("ignored"))
    );
    assert!(h.keys().await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Nothing overwritten, one manifest per decision
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn two_deliveries_racing_on_conditional_creates_end_in_one_manifest() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    // Veriff answers slowly, so both deliveries read the empty folder before either writes.
    h.fake.set_latency(Duration::from_millis(60));
    let body = decision(SESSION, ATTEMPT, "approved");
    let (a, b) = tokio::join!(h.deliver_body(&body), h.deliver_body(&body));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    let mut statuses = [
        a.body["status"].as_str().unwrap(),
        b.body["status"].as_str().unwrap(),
    ];
    statuses.sort_unstable();
    assert_eq!(statuses, ["already_archived", "archived"]);
    let manifests = h.manifests(SESSION, ATTEMPT).await;
    assert_eq!(manifests.len(), 1, "one manifest");
    h.assert_manifest_consistent(&manifests[0].1).await;
    // Both copied every file; every second write of a key lost the race with a 412.
    let writes = h.s3().object_writes();
    let lost = writes.iter().filter(|w| w.status == 412).count();
    let files = manifests[0].1["files"].as_array().unwrap().len();
    assert_eq!(
        lost,
        files + 1,
        "one 412 per file and for the manifest: {writes:#?}"
    );
    assert!(
        writes
            .iter()
            .all(|w| w.if_none_match.as_deref() == Some("*"))
    );
}

#[tokio::test]
async fn an_unreadable_manifest_left_behind_is_kept_and_the_next_revision_written() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    let key = manifest_key_of(&body);
    let garbage = b"{\"schemaVersion\": 2, \"truncat".to_vec();
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(garbage.clone().into())
        .send()
        .await
        .unwrap();

    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "archived");
    let written = reply.body["manifestKey"].as_str().unwrap();
    assert_eq!(written, key.replace(".json", "-r2.json"));
    assert_eq!(
        h.object(&key).await.0,
        garbage,
        "the unreadable object is untouched"
    );
    let manifests = h.manifests(SESSION, ATTEMPT).await;
    assert_eq!(manifests.len(), 2);
    let (_, readable) = manifests.iter().find(|(k, _)| k == written).unwrap();
    h.assert_manifest_consistent(readable).await;
    // A redelivery finds the readable revision.
    let again = h.deliver_body(&body).await;
    assert_eq!(again.body["status"], "already_archived", "{}", again.body);
    assert_eq!(again.body["manifestKey"], written);
}

#[tokio::test]
async fn a_stored_file_with_other_bytes_is_never_overwritten() {
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "1")]).await;
    let scenario = demo_scenario(&h.fake, 1000);
    let face = scenario.media.iter().find(|m| m.context == "face").unwrap();
    let key = format!("{PREFIX}{SESSION}/{ATTEMPT}/face.{}.jpg", face.id);
    let planted = b"written by hand, not by Veriff".to_vec();
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(planted.clone().into())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["code"], "conflict");
    assert_eq!(h.object(&key).await.0, planted, "left as it was");
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none());
}

#[tokio::test]
async fn an_object_without_an_s3_checksum_is_read_back_before_it_is_adopted() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1000);
    let face = scenario.media.iter().find(|m| m.context == "face").unwrap();
    let archiver_devkit::MediaContent::Bytes { data, .. } = &face.content else {
        panic!()
    };
    let key = format!("{PREFIX}{SESSION}/{ATTEMPT}/face.{}.jpg", face.id);
    // The same bytes, stored with no SHA-256 checksum (the SDK's default CRC32 only).
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .content_type("image/jpeg")
        .body(data.to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(h.head(&key).await.3, None, "no SHA-256 checksum stored");
    h.s3().reset_requests();
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // It was read back once to be hashed.
    let reads = h
        .s3()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&format!("face.{}.jpg", face.id)))
        .count();
    assert_eq!(reads, 1);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    let record = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key.as_str())
        .unwrap();
    assert_eq!(
        record["s3Checksum"],
        Value::Null,
        "S3 keeps none: none recorded"
    );
    assert_eq!(record["sha256"], sha256_hex(data));
}

#[tokio::test]
async fn files_left_by_a_failed_run_are_adopted_when_they_hold_the_same_bytes() {
    // One copy at a time, so the images are stored before the video fails.
    let h = Harness::with(&[
        ("VERIFF_MAX_ATTEMPTS", "1"),
        ("ARCHIVE_VIDEOS", "true"),
        ("COPY_CONCURRENCY", "1"),
    ])
    .await;
    let scenario = demo_scenario(&h.fake, 6 * 1024 * 1024);
    let video = scenario
        .media
        .iter()
        .find(|m| m.kind == DemoMediaKind::Video)
        .unwrap();
    h.fake.inject(Fault::new(
        format!("/v1/media/{}", video.id),
        FaultKind::Status(404),
        1,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    let orphans = h.keys().await.len();
    assert_eq!(orphans, 5, "the images were stored before the failure");
    h.s3().reset_requests();
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
    // The earlier objects were not replaced: their conditional creates answered 412.
    let lost = h
        .s3()
        .object_writes()
        .iter()
        .filter(|w| w.status == 412)
        .count();
    assert_eq!(lost, orphans);
}

/// A demo decision with a 12 MiB video in 5 MiB parts (a three-part upload), archived;
/// then its manifest deleted, so that a redelivery copies every file again onto keys that
/// already hold them. Returns the video's key.
async fn archived_then_manifest_deleted(h: &Harness) -> String {
    demo_scenario(&h.fake, 12 * 1024 * 1024);
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    let video = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "video")
        .expect("the video is archived")["key"]
        .as_str()
        .unwrap()
        .to_string();
    for (key, _) in h.manifests(SESSION, ATTEMPT).await {
        h.client
            .delete_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
    }
    h.s3().reset_requests();
    video
}

#[tokio::test]
async fn a_large_file_already_at_its_key_is_adopted_after_complete_answers_412() {
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("PART_SIZE_MIB", "5")]).await;
    let video = archived_then_manifest_deleted(&h).await;
    let before = h.object(&video).await.0;
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "archived", "{}", reply.body);
    let requests = h.s3().requests();
    let completed_412 = requests
        .iter()
        .filter(|r| r.method == "POST" && r.has_query_param("uploadId") && r.status == 412)
        .count();
    assert_eq!(
        completed_412, 1,
        "CompleteMultipartUpload met the stored video"
    );
    h.assert_started_uploads_were_aborted("the refused upload");
    assert_eq!(h.object(&video).await.0, before, "the stored video kept");
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
}

#[tokio::test]
async fn a_large_file_with_other_bytes_at_its_key_is_never_overwritten() {
    let h = Harness::with(&[
        ("ARCHIVE_VIDEOS", "true"),
        ("PART_SIZE_MIB", "5"),
        ("VERIFF_MAX_ATTEMPTS", "1"),
    ])
    .await;
    let video = archived_then_manifest_deleted(&h).await;
    let planted = vec![7u8; 11 * 1024 * 1024];
    h.client
        .delete_object()
        .bucket(BUCKET)
        .key(&video)
        .send()
        .await
        .unwrap();
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(&video)
        .body(planted.clone().into())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["code"], "conflict");
    assert_eq!(h.object(&video).await.0, planted, "left as it was");
    h.assert_started_uploads_were_aborted("the refused upload");
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none());
}

#[tokio::test]
async fn s3_refusals_that_never_heal_fail_at_once_without_downloading_again() {
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "4")]).await;
    let scenario = demo_scenario(&h.fake, 1000);
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(403), 100));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["code"], "storage_refused");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{}",
        reply.body
    );
    for media in &scenario.media {
        assert!(
            h.fake.count(&format!("/v1/media/{}", media.id)) <= 1,
            "{} downloaded again",
            media.context
        );
    }
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none());
}

// ---------------------------------------------------------------------------------------
// The signed webhook body, kept on request
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_webhook_body_is_kept_byte_for_byte_with_its_signature_when_asked() {
    let h = Harness::with(&[("ARCHIVE_DECISION_PAYLOAD", "true")]).await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    let payload = &manifest["decisionPayload"];
    let key = payload["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("{PREFIX}{SESSION}/{ATTEMPT}/decision-")));
    let (stored, content_type) = h.object(key).await;
    assert_eq!(stored, body.as_bytes(), "byte for byte");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(payload["sha256"], sha256_hex(body.as_bytes()));
    assert_eq!(payload["size"], body.len());
    assert_eq!(payload["signatureHeader"], "x-hmac-signature");
    // Anyone with the shared secret can check the stored body against Veriff's signature.
    let head = h
        .client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let metadata = head.metadata().unwrap();
    assert_eq!(
        metadata["veriff-signature"],
        hmac_sha256_hex(SECRET.as_bytes(), &stored)
    );
    assert_eq!(metadata["veriff-signature-header"], "x-hmac-signature");
    // The manifest itself carries no personal data.
    let text = manifest.to_string();
    for pii in ["SARAH", "MORGAN", "MORGA753116SM9IJ", "186.153.67.122"] {
        assert!(!text.contains(pii), "{pii}");
    }
    // Off by default.
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    assert_eq!(h.deliver_body(&body).await.status, 200);
    assert!(h.keys().await.iter().all(|k| !k.contains("/decision-")));
    assert!(
        h.manifest(SESSION, ATTEMPT)
            .await
            .unwrap()
            .get("decisionPayload")
            .is_none()
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------
// Archives written by schema v1
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_v1_archive_stays_readable_and_its_files_are_reused() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    // What veriff-archiver 0.1.0 left: <context>.<ext> files and one manifest.json.
    let face = scenario.media.iter().find(|m| m.context == "face").unwrap();
    let archiver_devkit::MediaContent::Bytes { data, .. } = &face.content else {
        panic!()
    };
    let folder = format!("{PREFIX}{SESSION}/{ATTEMPT}/");
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(format!("{folder}face.jpg"))
        .content_type("image/jpeg")
        .body(data.to_vec().into())
        .send()
        .await
        .unwrap();
    let v1 = json!({
        "schemaVersion": 1, "sessionId": SESSION, "attemptId": ATTEMPT,
        "decision": {"status": "approved", "code": 9001, "reason": null, "reasonCode": null,
            "decisionTime": "2025-03-04T10:21:07.412Z", "vendorData": "cust-8d1c2f",
            "endUserId": null},
        "mediaSource": {"kind": "session", "endpoint": format!("GET /v1/sessions/{SESSION}/media")},
        "archivedAt": "2025-03-04T10:21:09.000Z",
        "archiver": {"name": "veriff-archiver", "version": "0.1.0"},
        "files": [{"key": format!("{folder}face.jpg"), "mediaId": face.id, "kind": "image",
            "context": "face", "mimetype": "image/jpeg", "contentType": "image/jpeg",
            "size": data.len(), "sha256": sha256_hex(data)}],
        "skipped": []
    });
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(format!("{folder}manifest.json"))
        .body(serde_json::to_vec(&v1).unwrap().into())
        .send()
        .await
        .unwrap();
    // Check the hand-made v1 decision fields match the delivered body's.
    let Ok(Webhook::Decision(d)) = webhook::classify(body.as_bytes()) else {
        panic!()
    };
    assert_eq!(d.record.reason_code, None);

    // A redelivery of the decision v1 recorded: already archived, no Veriff request.
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.body["status"], "already_archived", "{}", reply.body);
    assert_eq!(reply.body["manifestKey"], format!("{folder}manifest.json"));
    assert!(h.fake.requests().is_empty());

    // A new decision: a v2 manifest next to it; the face image v1 stored is reused.
    let review =
        archiver_devkit::decision_webhook(SESSION, ATTEMPT, "review", "2025-03-05T10:00:00.000Z");
    let reply = h.deliver_body(&review).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["reused"], 1);
    assert_eq!(h.fake.count(&format!("/v1/media/{}", face.id)), 0);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    assert_eq!(manifest["schemaVersion"], 3);
    let reused = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["mediaId"] == face.id.as_str())
        .unwrap();
    assert_eq!(reused["key"], format!("{folder}face.jpg"));
    h.assert_manifest_consistent(&manifest).await;
}

// ---------------------------------------------------------------------------------------
// The same archive on moto_server, with Object Lock
// ---------------------------------------------------------------------------------------

/// First archive, a re-decision reusing every file, and redeliveries.
/// Archives, re-decides (files reused, none downloaded again), redelivers both (nothing
/// done). `versioned`: the bucket keeps versions (every file records its version id; on
/// s3s-fs, which keeps none, each records its ETag).
async fn archive_redecide_redeliver(h: &Harness, versioned: bool) {
    let scenario = demo_scenario(&h.fake, 11 * 1024 * 1024);
    let approved = decision(SESSION, ATTEMPT, "approved");
    let reply = h.deliver_body(&approved).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "archived");
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 7, "images, NFC and the video");
    for file in files {
        if versioned {
            assert!(file["versionId"].is_string(), "versioned bucket: {file}");
        } else {
            assert!(
                file["versionId"].is_null() && file["etag"].is_string(),
                "{file}"
            );
        }
    }
    let video = files.iter().find(|f| f["kind"] == "video").unwrap();
    assert_eq!(video["s3Checksum"]["type"], "COMPOSITE");
    assert!(
        scenario
            .media
            .iter()
            .any(|m| m.kind == DemoMediaKind::Video)
    );

    let downloads = h.media_downloads();
    let review =
        archiver_devkit::decision_webhook(SESSION, ATTEMPT, "review", "2025-03-06T00:00:00Z");
    let reply = h.deliver_body(&review).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["reused"], 7);
    assert_eq!(h.media_downloads(), downloads);
    let manifests = h.manifests(SESSION, ATTEMPT).await;
    assert_eq!(manifests.len(), 2);
    for (_, m) in &manifests {
        h.assert_manifest_consistent(m).await;
    }
    for body in [&approved, &review] {
        assert_eq!(
            h.deliver_body(body).await.body["status"],
            "already_archived"
        );
    }
}

#[tokio::test]
async fn archive_redecide_redeliver_on_s3s_fs() {
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true")]).await;
    archive_redecide_redeliver(&h, false).await;
}

#[tokio::test]
#[ignore = "needs moto_server: scripts/test.sh installs it and runs this with --ignored"]
async fn archive_redecide_redeliver_on_moto() {
    let h = Harness::on_moto(&[("ARCHIVE_VIDEOS", "true")], None).await;
    archive_redecide_redeliver(&h, true).await;
}

#[tokio::test]
#[ignore = "needs moto_server: scripts/test.sh installs it and runs this with --ignored"]
async fn a_locked_bucket_takes_the_archive_and_refuses_deletes_and_overwrites() {
    let h = Harness::on_moto(&[("ARCHIVE_VIDEOS", "true")], Some(("COMPLIANCE", 1))).await;
    archive_redecide_redeliver(&h, true).await;
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    let file = &manifest["files"][0];
    let key = file["key"].as_str().unwrap();
    let version = file["versionId"].as_str().unwrap();

    // Deleting the stored version is refused, under COMPLIANCE retention.
    let deleted = h
        .client
        .delete_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(version)
        .send()
        .await;
    let error = deleted.expect_err("a locked version cannot be deleted");
    // AWS answers 403, moto 400: both with the code AccessDenied.
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&error),
        Some("AccessDenied"),
        "{error:?}"
    );
    // A conditional create onto the key is refused; an unconditional PUT only adds a
    // version: the stored version stays, byte for byte.
    let before = h.object(key).await.0;
    let conditional = h
        .client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .if_none_match("*")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(b"other bytes".to_vec().into())
        .send()
        .await;
    assert_eq!(
        conditional
            .expect_err("the key exists")
            .raw_response()
            .map(|r| r.status().as_u16()),
        Some(412)
    );
    h.client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(b"other bytes".to_vec().into())
        .send()
        .await
        .expect("a new version");
    let stored = h
        .client
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(stored.to_vec(), before, "the archived version is unchanged");
    let head = h
        .client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("COMPLIANCE"),
        "the bucket's default retention applies to what the function wrote"
    );
    assert!(head.object_lock_retain_until_date().is_some());
}

#[tokio::test]
#[ignore = "needs moto_server: scripts/test.sh installs it and runs this with --ignored"]
async fn two_deliveries_racing_on_moto_end_in_one_manifest() {
    let h = Harness::on_moto(&[], Some(("GOVERNANCE", 1))).await;
    demo_scenario(&h.fake, 1000);
    h.fake.set_latency(Duration::from_millis(60));
    let body = decision(SESSION, ATTEMPT, "approved");
    let (a, b) = tokio::join!(h.deliver_body(&body), h.deliver_body(&body));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    let manifests = h.manifests(SESSION, ATTEMPT).await;
    assert_eq!(manifests.len(), 1);
    h.assert_manifest_consistent(&manifests[0].1).await;
}
