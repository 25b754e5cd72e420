//! End-to-end behaviour of the archiving pipeline: real handler, real Function URL events,
//! the Veriff fake and a real S3 server on loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;
use archiver_devkit::fixtures::{self, DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{
    DemoMediaKind, Fault, FaultKind, MediaContent, demo_scenario, deterministic_bytes,
    function_url_event, hmac_sha256_hex, signed_webhook_event,
};
use serde_json::{Value, json};

const SESSION: &str = DEMO_SESSION_ID;
const ATTEMPT: &str = DEMO_ATTEMPT_ID;

fn files_by_context(manifest: &Value) -> HashMap<String, Value> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["context"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

#[tokio::test]
async fn images_and_nfc_are_archived_top_ranked_per_context_with_a_manifest() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1_000_000);

    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "archived");
    assert_eq!(reply.body["files"], 6);

    let manifest = h
        .manifest(SESSION, ATTEMPT)
        .await
        .expect("manifest written");
    h.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["schemaVersion"], 3);
    assert_eq!(manifest["attemptIdSource"], "given");
    assert_eq!(manifest["decision"]["status"], "approved");
    assert_eq!(manifest["decision"]["code"], 9001);
    assert_eq!(manifest["decision"]["vendorData"], "cust-8d1c2f");
    // Combined mode (the default): both listings read, they match, the session's is used.
    assert_eq!(manifest["mediaSource"]["mode"], "combined");
    assert_eq!(manifest["mediaSource"]["listing"], "session");
    assert_eq!(manifest["mediaSource"]["listingsMatched"], true);
    assert_eq!(
        manifest["mediaSource"]["endpoints"],
        json!([
            format!("GET /v1/sessions/{SESSION}/media"),
            format!("GET /v1/attempts/{ATTEMPT}/media")
        ])
    );

    // The top-ranked image of each context, byte for byte, and the NFC file.
    let by_context = files_by_context(&manifest);
    let mut expected_contexts: Vec<&str> = vec![
        "document-front",
        "document-back",
        "document-front-pre",
        "face",
        "face-pre",
        "document-nfc",
    ];
    expected_contexts.sort();
    let mut got: Vec<&str> = by_context.keys().map(String::as_str).collect();
    got.sort();
    assert_eq!(got, expected_contexts);
    for context in expected_contexts {
        let top = scenario
            .media
            .iter()
            .find(|m| m.context == context)
            .unwrap();
        let file = &by_context[context];
        assert_eq!(
            file["mediaId"],
            top.id.as_str(),
            "{context} is the first listed"
        );
        let MediaContent::Bytes { data, .. } = &top.content else {
            panic!()
        };
        assert_eq!(
            h.object(file["key"].as_str().unwrap()).await.0,
            data.to_vec(),
            "{context} bytes"
        );
    }
    // Keys carry the media id; every file records S3's checksum of it.
    assert_eq!(
        by_context["face"]["key"],
        format!(
            "{PREFIX}{SESSION}/{ATTEMPT}/face.{}.jpg",
            by_context["face"]["mediaId"].as_str().unwrap()
        )
    );
    assert_eq!(
        by_context["document-nfc"]["key"],
        format!(
            "{PREFIX}{SESSION}/{ATTEMPT}/document-nfc.{}.bin",
            by_context["document-nfc"]["mediaId"].as_str().unwrap()
        )
    );
    assert_eq!(by_context["face"]["listing"], "session");
    assert_eq!(by_context["face"]["s3Checksum"]["type"], "FULL_OBJECT");
    let (face_bytes, _) = h.object(by_context["face"]["key"].as_str().unwrap()).await;
    assert_eq!(
        by_context["face"]["s3Checksum"]["value"],
        base64_sha256(&face_bytes)
    );
    assert_eq!(by_context["document-nfc"]["kind"], "nfc");
    assert_eq!(by_context["face"]["contentType"], "image/jpeg");
    let head = h
        .client
        .head_object()
        .bucket(BUCKET)
        .key(by_context["face"]["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let metadata = head.metadata().unwrap();
    assert_eq!(metadata["veriff-session-id"], SESSION);
    assert_eq!(metadata["veriff-attempt-id"], ATTEMPT);
    assert_eq!(
        metadata["veriff-media-id"],
        by_context["face"]["mediaId"].as_str().unwrap()
    );
    assert_eq!(metadata["veriff-context"], "face");

    // Everything else is listed as skipped, with its reason; the video is off by default.
    let skipped = manifest["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 5);
    assert_eq!(
        skipped
            .iter()
            .filter(|s| s["reason"] == "lower_ranked")
            .count(),
        4
    );
    assert_eq!(
        skipped
            .iter()
            .filter(|s| s["reason"] == "videos_disabled")
            .count(),
        1
    );

    // The personal data of the webhook never reaches the archive.
    let text = manifest.to_string();
    for pii in [
        "SARAH",
        "MORGAN",
        "MORGA753116SM9IJ",
        "186.153.67.122",
        "1967-03-30",
    ] {
        assert!(!text.contains(pii), "{pii} in manifest");
    }
    // Every request to Veriff was authenticated.
    assert!(
        h.fake
            .requests()
            .iter()
            .all(|r| r.auth_ok && r.status == 200)
    );
}

#[tokio::test]
async fn videos_are_archived_when_enabled_and_large_files_go_multipart() {
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true")]).await;
    let video_len = 12 * 1024 * 1024 + 12_345; // three 5 MiB parts
    let scenario = demo_scenario(&h.fake, video_len);
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    let video = &files_by_context(&manifest)["selfid_video"];
    assert_eq!(video["kind"], "video");
    assert_eq!(video["size"], video_len);
    assert_eq!(video["contentType"], "video/mp4");
    let expected = archiver_devkit::deterministic_sha256_hex(
        archiver_devkit::demo::DEMO_VIDEO_SEED,
        video_len,
    );
    assert_eq!(video["sha256"], expected.as_str());
    assert_eq!(
        video["key"],
        format!(
            "{PREFIX}{SESSION}/{ATTEMPT}/selfid_video.{}.mp4",
            video["mediaId"].as_str().unwrap()
        )
    );
    // Three parts: S3 stores a composite checksum of the part checksums.
    assert_eq!(video["s3Checksum"]["type"], "COMPOSITE");
    assert!(
        video["s3Checksum"]["value"]
            .as_str()
            .unwrap()
            .ends_with("-3"),
        "{video}"
    );
    assert!(
        scenario
            .media
            .iter()
            .any(|m| m.kind == DemoMediaKind::Video)
    );
    let uploads = h.multipart_uploads();
    assert_eq!(
        (uploads.started, uploads.completed, uploads.aborted),
        (1, 1, 0),
        "the video's one multipart upload, completed"
    );
}

#[tokio::test]
async fn documented_session_examples_are_archived_verbatim() {
    for (name, document, expected_files) in [
        ("standard_verification", fixtures::STANDARD_VERIFICATION, 1),
        ("proof_of_address", fixtures::PROOF_OF_ADDRESS, 1),
        ("video_verification", fixtures::VIDEO_VERIFICATION, 0),
        (
            "nfcDocuments_verification",
            fixtures::NFC_DOCUMENTS_VERIFICATION,
            1,
        ),
        ("no_media_uploaded", fixtures::NO_MEDIA_UPLOADED, 0),
    ] {
        let h = Harness::start().await;
        let served = serve_metadata(&h.fake, document, Some(SESSION), Some(ATTEMPT));
        let reply = h
            .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
            .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        let manifest = h.manifest(SESSION, ATTEMPT).await.expect(name);
        h.assert_manifest_consistent(&manifest).await;
        let files = manifest["files"].as_array().unwrap();
        assert_eq!(files.len(), expected_files, "{name}");
        for f in files {
            let bytes = h.object(f["key"].as_str().unwrap()).await.0;
            assert_eq!(bytes, served[f["mediaId"].as_str().unwrap()], "{name}");
        }
    }
}

#[tokio::test]
async fn documented_attempt_example_with_non_hex_ids_is_archived_from_the_attempt_endpoint() {
    let h = Harness::with(&[("MEDIA_SOURCE", "attempt")]).await;
    let served = serve_metadata(&h.fake, fixtures::ATTEMPT_STANDARD, None, Some(ATTEMPT));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "declined"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["mediaSource"]["mode"], "attempt");
    assert_eq!(manifest["mediaSource"]["listingsMatched"], Value::Null);
    assert_eq!(
        manifest["mediaSource"]["endpoints"],
        json!([format!("GET /v1/attempts/{ATTEMPT}/media")])
    );
    assert_eq!(manifest["decision"]["status"], "declined");
    let by_context = files_by_context(&manifest);
    assert_eq!(by_context.len(), 3);
    // `e7ab18d1-5545-5e47-af7b-e23gb6247f80` is not hex, and still works.
    assert_eq!(
        by_context["document-back"]["mediaId"],
        "e7ab18d1-5545-5e47-af7b-e23gb6247f80"
    );
    for f in by_context.values() {
        assert_eq!(
            h.object(f["key"].as_str().unwrap()).await.0,
            served[f["mediaId"].as_str().unwrap()]
        );
    }
    assert_eq!(h.fake.count(&format!("/v1/attempts/{ATTEMPT}/media")), 1);
    assert_eq!(h.fake.count(&format!("/v1/sessions/{SESSION}/media")), 0);
}

#[tokio::test]
async fn a_session_without_media_gets_an_empty_manifest() {
    let h = Harness::start().await;
    h.set_listing(fixtures::NO_MEDIA_UPLOADED);
    let reply = h.deliver_body(&decision(SESSION, ATTEMPT, "expired")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["files"], 0);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    assert_eq!(manifest["files"], json!([]));
    assert_eq!(manifest["skipped"], json!([]));
    assert_eq!(h.media_downloads(), 0);
}

#[tokio::test]
async fn non_decision_webhooks_are_acknowledged_and_do_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    // Each is answered with the kind recognised (a Full Auto result is a decision: see
    // tests/it/full_auto.rs).
    for (body, kind) in [
        (fixtures::EVENT_WEBHOOK_STARTED, "event"),
        (fixtures::EVENT_WEBHOOK_SUBMITTED, "event"),
        (
            r#"{"checkType":"updated_result","sessionId":"f04bdb47-d3be-4b28-b028-a652feb060b5","matchStatus":"no_match","hits":[]}"#,
            "watchlist_screening",
        ),
        (
            r#"{"eventType":"user-status.created","data":{"verification":{"status":"approved"}}}"#,
            "event_type",
        ),
        (r#"{"status":"success"}"#, "unknown"),
    ] {
        let reply = h.deliver_body(body).await;
        assert_eq!(reply.status, 200, "{body}");
        assert_eq!(reply.body["status"], "ignored");
        assert_eq!(reply.body["reason"], kind, "{body}");
    }
    assert!(h.fake.requests().is_empty(), "no Veriff call");
    assert!(h.keys().await.is_empty(), "nothing written");
}

#[tokio::test]
async fn statuses_not_configured_are_ignored() {
    let h = Harness::with(&[("ARCHIVE_STATUSES", "approved,declined")]).await;
    demo_scenario(&h.fake, 1000);
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "resubmission_requested"))
        .await;
    assert_eq!(
        (reply.status, reply.body["reason"].as_str()),
        (200, Some("status_not_archived"))
    );
    assert!(h.keys().await.is_empty());
}

#[tokio::test]
async fn forged_or_unsigned_webhooks_are_rejected_before_any_work() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    let good = hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
    let mut wrong = good.clone();
    wrong.replace_range(0..1, if good.starts_with('0') { "1" } else { "0" });
    let other_secret = hmac_sha256_hex(b"not-the-secret", body.as_bytes());
    for (name, headers) in [
        (
            "wrong signature",
            vec![("x-hmac-signature", wrong.as_str())],
        ),
        (
            "other secret",
            vec![("x-hmac-signature", other_secret.as_str())],
        ),
        ("missing signature", vec![]),
        ("garbage signature", vec![("x-hmac-signature", "not-hex")]),
        (
            "legacy x-signature only",
            vec![("x-signature", good.as_str())],
        ),
        (
            "wrong api key",
            vec![
                ("x-hmac-signature", good.as_str()),
                ("x-auth-client", "someone-else"),
            ],
        ),
    ] {
        let reply = h
            .deliver(function_url_event(body.as_bytes(), &headers, false))
            .await;
        assert_eq!(reply.status, 401, "{name}: {}", reply.body);
        assert_eq!(reply.body["code"], "unauthorized");
    }
    assert!(h.fake.requests().is_empty(), "no Veriff call");
    assert!(h.keys().await.is_empty(), "nothing written");
}

#[tokio::test]
async fn allowed_source_cidrs_refuses_other_callers_before_reading_anything() {
    let h = Harness::with(&[("ALLOWED_SOURCE_CIDRS", "203.0.113.0/24, 2001:db8::/32")]).await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    let from = |source: Value| {
        let mut event = signed_webhook_event(body.as_bytes(), SECRET, API_KEY, false);
        event["requestContext"]["http"]["sourceIp"] = source;
        event
    };
    // Refused with a valid signature: from outside the list (IPv4 and IPv6, and an IPv4
    // address written as IPv6), from a malformed address, from no address at all.
    let mut no_context = from(Value::Null);
    no_context.as_object_mut().unwrap().remove("requestContext");
    // Refused before the body is read: an oversized, broken body is a 403, not a 413 or 400.
    let mut oversized = from("198.51.100.7".into());
    oversized["body"] = "%".repeat(1024 * 1024).into();
    oversized["isBase64Encoded"] = true.into();
    for (name, event) in [
        ("IPv4 outside", from("198.51.100.7".into())),
        ("next to the range", from("203.0.114.0".into())),
        ("IPv6 outside", from("2001:db9::1".into())),
        (
            "IPv4-mapped IPv6 outside",
            from("::ffff:198.51.100.7".into()),
        ),
        ("malformed", from("203.0.113.10, 198.51.100.7".into())),
        ("not a string", from(3405803786u32.into())),
        ("null", from(Value::Null)),
        ("no requestContext", no_context),
        ("oversized body from outside", oversized),
    ] {
        let reply = h.deliver(event).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (403, Some("source_not_allowed")),
            "{name}: {}",
            reply.body
        );
        assert!(
            !reply.body.to_string().contains("198.51.100.7"),
            "the answer never echoes the address: {}",
            reply.body
        );
    }
    assert!(h.fake.requests().is_empty(), "no Veriff call");
    assert!(h.keys().await.is_empty(), "nothing written");

    // Inside the list: IPv4, IPv6 and IPv4-mapped IPv6 are archived (then already archived).
    let reply = h.deliver(from("203.0.113.10".into())).await;
    assert_eq!(reply.body["status"], "archived", "{}", reply.body);
    for inside in ["2001:db8::9", "::ffff:203.0.113.200"] {
        let reply = h.deliver(from(inside.into())).await;
        assert_eq!(
            reply.body["status"], "already_archived",
            "{inside}: {}",
            reply.body
        );
    }
    // Inside the list, a forged signature is still a 401: the list adds a check, it never
    // replaces one.
    let forged = function_url_event(body.as_bytes(), &[("x-hmac-signature", "00")], false);
    assert_eq!(h.deliver(forged).await.status, 401);
}

#[tokio::test]
async fn upper_case_vrf_and_base64_signed_webhooks_are_accepted() {
    let body = decision(SESSION, ATTEMPT, "approved");
    let sig = hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
    let upper = sig.to_ascii_uppercase();
    let cases: Vec<(&str, Value)> = vec![
        (
            "upper-case hex",
            function_url_event(
                body.as_bytes(),
                &[("X-HMAC-SIGNATURE", &upper), ("X-AUTH-CLIENT", API_KEY)],
                false,
            ),
        ),
        (
            "vrf- headers",
            function_url_event(
                body.as_bytes(),
                &[("vrf-hmac-signature", &sig), ("vrf-auth-client", API_KEY)],
                false,
            ),
        ),
        (
            "base64 body",
            signed_webhook_event(body.as_bytes(), SECRET, API_KEY, true),
        ),
    ];
    for (name, event) in cases {
        let h = Harness::start().await;
        demo_scenario(&h.fake, 1000);
        let reply = h.deliver(event).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert_eq!(reply.body["status"], "archived", "{name}");
    }
}

#[tokio::test]
async fn a_webhook_signed_with_the_previous_secret_is_accepted_during_rotation() {
    let h = Harness::with(&[(
        "VERIFF_SHARED_SECRET",
        &format!("new-secret-after-rotation,{SECRET}"),
    )])
    .await;
    demo_scenario(&h.fake, 1000);
    // The webhook is signed with the previous secret and accepted. API calls are signed with
    // the first (new) secret, which this Veriff does not know yet: refused with code 1818.
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(
        reply.status, 502,
        "the fake does not know the new secret yet: {}",
        reply.body
    );
    assert!(
        reply.body["message"].as_str().unwrap().contains("1818"),
        "{}",
        reply.body
    );

    // Once Veriff (the fake) knows both, the same delivery archives.
    let fake = archiver_devkit::FakeConfig {
        secrets: vec!["new-secret-after-rotation".into(), SECRET.into()],
        sign_media: true,
        ..archiver_devkit::FakeConfig::new(API_KEY, SECRET)
    };
    let h = Harness::with_fake(
        fake,
        &[(
            "VERIFF_SHARED_SECRET",
            &format!("new-secret-after-rotation,{SECRET}"),
        )],
    )
    .await;
    demo_scenario(&h.fake, 1000);
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn veriff_500_then_success_is_retried_within_the_invocation() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let metadata = format!("/v1/sessions/{SESSION}/media");
    h.fake
        .inject(Fault::new(metadata.as_str(), FaultKind::Status(500), 2));
    let first_image = demo_scenario(&h.fake, 1000).media[0].id.clone();
    h.fake.inject(Fault::new(
        format!("/v1/media/{first_image}"),
        FaultKind::Status(503),
        1,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(h.fake.count(&metadata), 3);
    assert_eq!(h.fake.count(&format!("/v1/media/{first_image}")), 2);
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
}

#[tokio::test]
async fn veriff_429_retry_after_is_honoured() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let metadata = format!("/v1/sessions/{SESSION}/media");
    h.fake.inject(Fault::new(
        metadata.as_str(),
        FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    ));
    let started = std::time::Instant::now();
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(h.fake.count(&metadata), 2);
}

#[tokio::test]
async fn persistent_failures_answer_5xx_and_leave_no_manifest() {
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "2")]).await;
    demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new("*", FaultKind::Status(500), 100));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.body["code"], "veriff_unavailable");
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none());
    h.fake.clear_faults();
    let retry = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
}

#[tokio::test]
async fn a_truncated_download_fails_cleanly_and_a_redelivery_completes_the_archive() {
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("VERIFF_MAX_ATTEMPTS", "2")]).await;
    let video_len = 11 * 1024 * 1024;
    let scenario = demo_scenario(&h.fake, video_len);
    let video = scenario
        .media
        .iter()
        .find(|m| m.kind == DemoMediaKind::Video)
        .unwrap();
    // Past the first 5 MiB part, so a multipart upload is open when the stream breaks.
    h.fake.inject(Fault::new(
        format!("/v1/media/{}", video.id),
        FaultKind::Truncate {
            after: 7 * 1024 * 1024,
        },
        2,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        h.manifest(SESSION, ATTEMPT).await.is_none(),
        "no manifest after a failure"
    );
    h.assert_started_uploads_were_aborted("a truncated download");

    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    assert_eq!(
        files_by_context(&manifest)["selfid_video"]["size"],
        video_len
    );
}

#[tokio::test]
async fn a_single_truncation_is_healed_within_the_invocation() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1000);
    let face = scenario.media.iter().find(|m| m.context == "face").unwrap();
    h.fake.inject(Fault::new(
        format!("/v1/media/{}", face.id),
        FaultKind::ResetMidBody { after: 1000 },
        1,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
}

#[tokio::test]
async fn a_bad_response_signature_is_an_upstream_failure() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1000);
    h.fake.inject(Fault::new(
        format!("/v1/sessions/{SESSION}/media"),
        FaultKind::WrongSignature,
        1,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.body["code"], "integrity_check_failed");
    assert_eq!(
        h.media_downloads(),
        0,
        "nothing downloaded from unverified metadata"
    );

    let face = scenario.media.iter().find(|m| m.context == "face").unwrap();
    h.fake.inject(Fault::new(
        format!("/v1/media/{}", face.id),
        FaultKind::WrongSignature,
        1,
    ));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none());
    // A clean redelivery archives.
    assert_eq!(
        h.deliver_body(&decision(SESSION, ATTEMPT, "approved"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_duplicate_delivery_downloads_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    assert_eq!(h.deliver_body(&body).await.status, 200);
    let first = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.fake.reset_requests();
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "already_archived");
    assert!(h.fake.requests().is_empty(), "no Veriff call at all");
    assert_eq!(
        h.manifest(SESSION, ATTEMPT).await.unwrap(),
        first,
        "manifest untouched"
    );
}

#[tokio::test]
async fn every_decision_keeps_its_own_manifest_and_a_redecision_downloads_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let review =
        archiver_devkit::decision_webhook(SESSION, ATTEMPT, "review", "2025-03-04T10:21:07.412Z");
    let approved = archiver_devkit::decision_webhook(
        SESSION,
        ATTEMPT,
        "approved",
        "2025-03-05T08:00:00.123456Z",
    );
    let declined_earlier =
        archiver_devkit::decision_webhook(SESSION, ATTEMPT, "declined", "2025-03-04T09:00:00Z");
    let first = h.deliver_body(&review).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let downloads = h.media_downloads();
    assert_eq!(downloads, 6);

    // A new decision for the archived attempt: zero media downloads, and no write to any
    // key that exists (only the new manifest is created).
    h.s3().reset_requests();
    let reply = h.deliver_body(&approved).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("archived")),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["reused"], 6);
    assert_eq!(h.media_downloads(), downloads, "no GET /v1/media");
    let writes = h.s3().object_writes();
    assert_eq!(
        writes.len(),
        2,
        "only the ledger's receipt, then the new manifest: {writes:?}"
    );
    assert!(writes[0].path.contains("/ledger/receipts/"), "{writes:?}");
    assert!(writes[1].path.contains("/manifest-20250305T080000123456Z-"));
    assert!(
        writes
            .iter()
            .all(|w| w.if_none_match.as_deref() == Some("*"))
    );

    // Both manifests exist, both valid against what is stored; names sort by time.
    let manifests = h.manifests(SESSION, ATTEMPT).await;
    let statuses: Vec<&str> = manifests
        .iter()
        .map(|(_, m)| m["decision"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["review", "approved"]);
    for (_, m) in &manifests {
        h.assert_manifest_consistent(m).await;
    }
    // The re-decision's manifest lists the very objects (same keys, versions, hashes).
    assert_eq!(manifests[0].1["files"], manifests[1].1["files"]);
    assert_eq!(
        reply.body["manifestKey"].as_str(),
        Some(manifests[1].0.as_str())
    );

    // A decision that arrives late, older than the archived ones, is archived too, under
    // its own manifest: nothing is replaced.
    let reply = h.deliver_body(&declined_earlier).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("archived"))
    );
    let manifests = h.manifests(SESSION, ATTEMPT).await;
    let statuses: Vec<&str> = manifests
        .iter()
        .map(|(_, m)| m["decision"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["declined", "review", "approved"]);
    assert_eq!(h.media_downloads(), downloads);
    // Every object the function wrote was a conditional create.
    assert!(
        h.s3()
            .object_writes()
            .iter()
            .all(|w| w.if_none_match.as_deref() == Some("*"))
    );
    // And each redelivery is already archived.
    for body in [&review, &approved, &declined_earlier] {
        let reply = h.deliver_body(body).await;
        assert_eq!(reply.body["status"], "already_archived", "{}", reply.body);
    }
}

#[tokio::test]
async fn a_metadata_url_pointing_elsewhere_is_never_fetched() {
    let (canary_url, hits) = canary().await;
    let h = Harness::start().await;
    let document = fixtures::STANDARD_VERIFICATION.replace("https://exampleURL.com", &canary_url);
    assert!(document.contains(&canary_url));
    serve_metadata(&h.fake, &document, Some(SESSION), Some(ATTEMPT));
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        h.fake
            .count("/v1/media/d69a07cf-4434-4d36-be6c-d22af7dc01fb"),
        1,
        "downloaded by id"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "canary never contacted");
}

#[tokio::test]
async fn hostile_ids_and_contexts_cannot_escape_the_session_folder() {
    let h = Harness::start().await;
    let ok = deterministic_bytes(7, 500);
    h.fake
        .set_media("good-id", MediaContent::bytes(ok.clone(), "image/jpeg"));
    let hostile = json!({
        "status": "success",
        "images": [
            {"id": "../../../other-session/x", "context": "face", "size": 500, "mimetype": "image/jpeg"},
            {"id": "good-id", "context": "../../escape", "size": 500, "mimetype": "image/jpeg"},
            {"id": "good-id", "context": "face%2F..%2F..", "size": 500, "mimetype": "image/jpeg"},
            {"id": "good-id", "context": "face\u{0}", "size": 500, "mimetype": "image/jpeg"},
            {"id": "a/b", "context": "document-front", "size": 500, "mimetype": "image/jpeg"},
            {"id": "good-id", "context": "document-back", "size": 500, "mimetype": "image/jpeg\r\nx-amz-acl: public-read"},
        ],
        "videos": [],
        "nfcDocuments": [{"id": "..", "context": "document-nfc", "size": 1}]
    });
    h.set_listing(hostile.to_string());
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let manifest = h.manifest(SESSION, ATTEMPT).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    for key in h.keys().await {
        assert!(
            key.starts_with(&format!("{PREFIX}{SESSION}/{ATTEMPT}/")),
            "{key}"
        );
    }
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["contentType"], "application/octet-stream");
    assert_eq!(manifest["skipped"].as_array().unwrap().len(), 6);
    assert!(h.fake.requests().iter().all(|r| {
        r.path == format!("/v1/sessions/{SESSION}/media")
            || r.path == format!("/v1/attempts/{ATTEMPT}/media")
            || r.path == "/v1/media/good-id"
    }));

    // A hostile session id in the (authenticated) webhook is refused outright.
    let evil = decision(SESSION, ATTEMPT, "approved").replace(SESSION, "../../etc");
    let reply = h.deliver_body(&evil).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
}

#[tokio::test]
async fn the_deadline_answers_504_with_no_manifest_and_no_open_upload() {
    // The work stops at 2 s, leaving a second to abort (a busy CI machine needs room).
    let h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("DEADLINE_MARGIN_MS", "1000")]).await;
    // A 24 MiB video at 8 MiB/s: its first 5 MiB part is uploaded (a multipart upload open)
    // well before the work stops (2 s), and the download cannot finish before it (3 s).
    demo_scenario(&h.fake, 24 * 1024 * 1024);
    h.fake.set_download_bandwidth(Some(8 * 1024 * 1024));
    let event = signed_webhook_event(
        decision(SESSION, ATTEMPT, "approved").as_bytes(),
        SECRET,
        API_KEY,
        false,
    );
    let reply = h.deliver_within(event, Duration::from_millis(3000)).await;
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none());
    h.assert_started_uploads_were_aborted("the deadline mid-download");
}

#[tokio::test]
async fn metadata_whose_size_lies_is_an_integrity_failure() {
    let h = Harness::with(&[("VERIFF_MAX_ATTEMPTS", "1")]).await;
    h.fake.set_media(
        "m1",
        MediaContent::bytes(deterministic_bytes(1, 1000), "image/jpeg"),
    );
    h.set_listing(r#"{"status":"success","images":[{"id":"m1","context":"face","size":999,"mimetype":"image/jpeg"}]}"#);
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.body["code"], "integrity_check_failed");
    assert!(h.keys().await.is_empty());
}

#[tokio::test]
async fn malformed_envelopes_are_400_and_wrong_methods_405() {
    let h = Harness::start().await;
    let reply = h
        .deliver(json!({"headers": {}, "body": "@@@", "isBase64Encoded": true}))
        .await;
    assert_eq!(reply.status, 400);
    let reply = h.deliver(json!([1, 2, 3])).await;
    assert_eq!(reply.status, 400);
    let mut get = function_url_event(b"", &[], false);
    get["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(h.deliver(get).await.status, 405);
}

/// A TCP server that only counts the connections it receives: a place no request may go.
async fn canary() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, hits)
}

#[tokio::test]
async fn a_redirect_from_veriff_is_refused_and_never_followed() {
    let (canary_url, hits) = canary().await;
    // A "Veriff" that answers every request with a redirect to the canary.
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_url = format!("http://{}", redirector.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = redirector.accept().await {
            let location = format!("{canary_url}/v1/sessions/{SESSION}/media");
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let h = Harness::with(&[("VERIFF_API_URL", &redirector_url)]).await;
    let reply = h
        .deliver_body(&decision(SESSION, ATTEMPT, "approved"))
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(
        reply.body["message"].as_str().unwrap().contains("HTTP 302"),
        "{}",
        reply.body
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "redirect target never contacted"
    );
    assert!(h.keys().await.is_empty());
}
