//! Full Auto results (Veriff's Self-Serve Essential plan, which sends no decision webhook)
//! through the real handler, against the Veriff fake and a real S3 server: archived like
//! decisions, idempotent, separate from a decision webhook of the same attempt, filtered by
//! `ARCHIVE_STATUSES`; and a session Veriff deleted, recorded once without files.

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID, FULL_AUTO_PERSONAL_VALUES};
use archiver_devkit::{
    DemoMediaKind, FakeVeriff, Fault, FaultKind, demo_scenario, full_auto_webhook, hmac_sha256_hex,
};
use serde_json::Value;

const FULL_AUTO_TIME: &str = "2025-03-04T10:16:30.120Z";

/// The demo session's Full Auto result.
fn full_auto(decision: &str) -> String {
    full_auto_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        decision,
        FULL_AUTO_TIME,
        Some(0.97),
    )
}

#[tokio::test]
async fn a_full_auto_result_archives_exactly_the_decided_attempt_once() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1_000_000);
    let reply = h.deliver_body(&full_auto("approved")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "archived");
    assert_eq!(reply.body["attemptIdSource"], "given");
    assert_eq!(reply.body["mediaUnavailable"], false);
    // The top image of each of the 5 contexts and the NFC file; 4 lower-ranked images and
    // the video (ARCHIVE_VIDEOS is off) skipped.
    assert_eq!(
        (reply.body["files"].as_u64(), reply.body["skipped"].as_u64()),
        (Some(6), Some(5))
    );

    let manifests = h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await;
    assert_eq!(manifests.len(), 1);
    let (key, manifest) = &manifests[0];
    assert_eq!(reply.body["manifestKey"], key.as_str());
    h.assert_manifest_consistent(manifest).await;
    assert_eq!(manifest["schemaVersion"], 3);
    let decision = &manifest["decision"];
    assert_eq!(decision["webhook"], "fullauto");
    assert_eq!(decision["status"], "approved");
    assert_eq!(decision["decisionScore"], 0.97);
    assert_eq!(decision["decisionTime"], FULL_AUTO_TIME);
    assert_eq!(decision["vendorData"], "cust-8d1c2f");
    for field in ["code", "reason", "reasonCode", "endUserId"] {
        assert!(decision[field].is_null(), "{field}: {decision}");
    }
    assert_eq!(manifest["decisionSource"], "webhook");
    let kinds: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "image").count(), 5);
    assert_eq!(kinds.iter().filter(|k| **k == "nfc").count(), 1);
    let reasons: Vec<&str> = manifest["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.iter().filter(|r| **r == "lower_ranked").count(), 4);
    assert_eq!(
        reasons.iter().filter(|r| **r == "videos_disabled").count(),
        1
    );
    // Each chosen image is the first of its context in Veriff's ranking.
    for file in manifest["files"].as_array().unwrap() {
        let context = file["context"].as_str().unwrap();
        let first = scenario
            .media
            .iter()
            .find(|m| m.context == context)
            .unwrap();
        assert_eq!(file["mediaId"], first.id.as_str(), "{context}");
    }
    // Nothing of the extractions reaches the manifest.
    let text = manifest.to_string();
    for personal in FULL_AUTO_PERSONAL_VALUES {
        assert!(!text.contains(personal), "{personal} in the manifest");
    }
    for field in ["person", "insights", "confidenceCategory", "document"] {
        assert!(
            !text.contains(&format!("\"{field}\"")),
            "{field} in the manifest"
        );
    }

    // A redelivery is already archived: no download, no Veriff call at all.
    h.fake.reset_requests();
    let again = h.deliver_body(&full_auto("approved")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "already_archived");
    assert_eq!(again.body["manifestKey"], key.as_str());
    assert!(h.fake.requests().is_empty(), "{:?}", h.fake.requests());
    assert_eq!(h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.len(), 1);
}

#[tokio::test]
async fn a_full_auto_result_and_a_decision_webhook_of_one_attempt_are_two_decisions() {
    let h = Harness::with(&[("ARCHIVE_DECISION_PAYLOAD", "true")]).await;
    demo_scenario(&h.fake, 1_000_000);
    let body = full_auto("approved");
    let first = h.deliver_body(&body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let downloads = h.media_downloads();
    assert_eq!(downloads, 6);

    // The same status at the same time, by the decision webhook: another decision.
    let webhook = archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "approved",
        FULL_AUTO_TIME,
    );
    let second = h.deliver_body(&webhook).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["status"], "archived");
    assert_eq!(second.body["reused"], 6, "every file reused");
    assert_eq!(h.media_downloads(), downloads, "nothing downloaded again");
    assert_ne!(second.body["manifestKey"], first.body["manifestKey"]);

    let manifests = h.manifests(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await;
    assert_eq!(manifests.len(), 2);
    let by_kind = |kind: &str| {
        manifests
            .iter()
            .find(|(_, m)| m["decision"]["webhook"] == kind)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("no {kind} manifest"))
    };
    let (full, decision) = (by_kind("fullauto"), by_kind("decision"));
    assert_eq!(decision["decision"]["code"], 9001);
    assert!(decision["decision"].get("decisionScore").is_none());
    assert_eq!(
        full["files"],
        decision["files"].clone(),
        "the same stored files"
    );
    for (_, manifest) in &manifests {
        h.assert_manifest_consistent(manifest).await;
    }
    // ARCHIVE_DECISION_PAYLOAD keeps each body byte for byte, the Full Auto one included.
    let payload = h
        .object(full["decisionPayload"]["key"].as_str().unwrap())
        .await
        .0;
    assert_eq!(payload, body.as_bytes());
    assert_eq!(
        full["decisionPayload"]["signatureHeader"],
        "x-hmac-signature"
    );
    // Both redeliveries are already archived.
    for redelivered in [&body, &webhook] {
        let reply = h.deliver_body(redelivered).await;
        assert_eq!(reply.body["status"], "already_archived", "{}", reply.body);
    }
}

#[tokio::test]
async fn archive_statuses_filter_full_auto_decisions_too() {
    let h = Harness::with(&[("ARCHIVE_STATUSES", "approved,declined")]).await;
    demo_scenario(&h.fake, 1_000_000);
    for decision in ["resubmission_requested", "expired", "abandoned"] {
        let reply = h.deliver_body(&full_auto(decision)).await;
        assert_eq!(
            (reply.status, &reply.body["status"], &reply.body["reason"]),
            (
                200,
                &Value::from("ignored"),
                &Value::from("status_not_archived")
            ),
            "{decision}"
        );
    }
    assert!(h.keys().await.is_empty());
    assert!(
        h.fake.requests().is_empty(),
        "Veriff not called for ignored results"
    );
    let reply = h.deliver_body(&full_auto("declined")).await;
    assert_eq!(reply.body["status"], "archived", "{}", reply.body);
}

#[tokio::test]
async fn malformed_full_auto_results_are_refused_and_write_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1_000_000);
    let mut doc: Value = serde_json::from_str(&full_auto("approved")).unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut d = doc.clone();
                d.as_object_mut().unwrap().remove("sessionId");
                d
            },
            "sessionId is missing or not a safe identifier",
        ),
        (
            {
                let mut d = doc.clone();
                d["attemptId"] = "../x".into();
                d
            },
            "attemptId is not a safe identifier",
        ),
        (
            {
                let mut d = doc.clone();
                d["data"]["verification"]["decision"] = serde_json::json!({"value": "approved"});
                d
            },
            "data.verification.decision is missing or not a string",
        ),
        (
            {
                doc["verification"] =
                    serde_json::json!({"id": DEMO_SESSION_ID, "status": "approved"});
                doc
            },
            "both a decision webhook",
        ),
    ];
    for (body, reason) in cases {
        let reply = h.deliver_body(&body.to_string()).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.body["code"], "bad_payload");
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{message}");
    }
    assert!(h.keys().await.is_empty());
    assert!(h.fake.requests().is_empty());
}

/// Asks the fake to delete `session_id`, as an integrator would with Veriff's
/// `DELETE /v1/sessions/{id}` (signed over the session id).
async fn delete_at_veriff(fake: &FakeVeriff, session_id: &str) {
    let response = reqwest::Client::new()
        .delete(format!("{}/v1/sessions/{session_id}", fake.base_url()))
        .header("X-AUTH-CLIENT", API_KEY)
        .header(
            "X-HMAC-SIGNATURE",
            hmac_sha256_hex(SECRET.as_bytes(), session_id.as_bytes()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_session_veriff_deleted_is_recorded_once_without_files() {
    let lines = Lines::default();
    let mut h = Harness::start().await;
    h.app = h.app.clone().with_metrics(Some(lines.metrics("Test")));
    demo_scenario(&h.fake, 1_000_000);
    delete_at_veriff(&h.fake, DEMO_SESSION_ID).await;
    // Veriff then sends an abandoned decision for the deleted session (its docs).
    let abandoned = archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "abandoned",
        "2025-03-04T11:00:00.000Z",
    );
    let reply = h.deliver_body(&abandoned).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "archived");
    assert_eq!(
        (
            reply.body["files"].as_u64(),
            reply.body["mediaUnavailable"].as_bool()
        ),
        (Some(0), Some(true))
    );
    let manifest = h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.unwrap();
    h.assert_manifest_consistent(&manifest).await;
    assert_eq!(manifest["files"], serde_json::json!([]));
    assert_eq!(manifest["skipped"], serde_json::json!([]));
    assert_eq!(
        manifest["mediaUnavailable"]["reason"],
        "not_found_at_veriff"
    );
    assert_eq!(
        manifest["mediaUnavailable"]["endpoints"],
        serde_json::json!([
            format!("GET /v1/sessions/{DEMO_SESSION_ID}/media"),
            format!("GET /v1/attempts/{DEMO_ATTEMPT_ID}/media"),
        ])
    );
    assert_eq!(h.media_downloads(), 0);
    let records = lines.take();
    assert_eq!(records[0]["DecisionsMediaUnavailable"], 1);
    assert_eq!(records[0]["ArchiveFailures"], 0);

    // Veriff's hourly redeliveries end there: already archived, Veriff not called.
    h.fake.reset_requests();
    let again = h.deliver_body(&abandoned).await;
    assert_eq!(again.body["status"], "already_archived");
    assert_eq!(again.body["mediaUnavailable"], true);
    assert!(h.fake.requests().is_empty());
    assert_eq!(lines.take()[0]["DecisionsMediaUnavailable"], 0);
}

#[tokio::test]
async fn a_full_auto_result_of_a_deleted_session_is_recorded_in_each_media_source_mode() {
    for (mode, endpoints) in [("attempt", 1), ("session", 1), ("combined", 2)] {
        let h = Harness::with(&[("MEDIA_SOURCE", mode)]).await;
        demo_scenario(&h.fake, 1_000_000);
        delete_at_veriff(&h.fake, DEMO_SESSION_ID).await;
        let reply = h.deliver_body(&full_auto("expired")).await;
        assert_eq!(reply.status, 200, "{mode}: {}", reply.body);
        let manifest = h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.unwrap();
        assert_eq!(manifest["decision"]["webhook"], "fullauto", "{mode}");
        assert_eq!(
            manifest["mediaUnavailable"]["endpoints"]
                .as_array()
                .unwrap()
                .len(),
            endpoints,
            "{mode}"
        );
        assert_eq!(manifest["mediaSource"]["mode"], mode);
    }
}

#[tokio::test]
async fn a_404_veriff_did_not_sign_or_from_one_listing_only_fails_and_writes_nothing() {
    let h = Harness::start().await;
    let scenario = demo_scenario(&h.fake, 1_000_000);
    delete_at_veriff(&h.fake, DEMO_SESSION_ID).await;
    // An unsigned 404 could be anyone's (a proxy, a misrouted URL): not a deletion.
    h.fake.inject(Fault::new(
        format!("/v1/sessions/{DEMO_SESSION_ID}/media"),
        FaultKind::Unsigned,
        1,
    ));
    let reply = h.deliver_body(&full_auto("approved")).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(h.keys().await.is_empty(), "no manifest");

    // One listing not found while the other answers: not a documented state; retried.
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1_000_000);
    h.fake.inject(Fault::new(
        format!("/v1/sessions/{DEMO_SESSION_ID}/media"),
        FaultKind::Status(404),
        1,
    ));
    let reply = h.deliver_body(&full_auto("approved")).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(reply.body["message"].as_str().unwrap().contains("HTTP 404"));
    assert!(h.keys().await.is_empty(), "no manifest");
    // The retry finds both listings, and archives.
    let reply = h.deliver_body(&full_auto("approved")).await;
    assert_eq!(reply.body["status"], "archived", "{}", reply.body);
    assert!(scenario.media.iter().any(|m| m.kind == DemoMediaKind::Nfc));
}

#[tokio::test]
async fn the_v3_schema_accepts_v2_manifests_and_holds_v3_to_its_new_fields() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1_000_000);
    let reply = h
        .deliver_body(&decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved"))
        .await;
    assert_eq!(reply.status, 200);
    let v3 = h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.unwrap();
    assert!(manifest_schema_errors(&v3).is_empty());

    // The same manifest as a build before Full Auto wrote it: valid for both schemas.
    let mut v2 = v3.clone();
    v2["schemaVersion"] = 2.into();
    v2["decision"].as_object_mut().unwrap().remove("webhook");
    assert!(
        manifest_schema_errors(&v2).is_empty(),
        "{:?}",
        manifest_schema_errors(&v2)
    );
    let v2_schema: Value =
        serde_json::from_str(include_str!("../../schema/manifest-v2.schema.json")).unwrap();
    let v2_validator = jsonschema::validator_for(&v2_schema).unwrap();
    assert!(v2_validator.is_valid(&v2));
    assert!(
        !v2_validator.is_valid(&v3),
        "v2's schema knows no v3 manifest"
    );

    let invalid = |edit: &dyn Fn(&mut Value)| {
        let mut m = v3.clone();
        edit(&mut m);
        !manifest_schema_errors(&m).is_empty()
    };
    assert!(invalid(&|m| {
        m["decision"].as_object_mut().unwrap().remove("webhook");
    }));
    assert!(invalid(&|m| m["decision"]["webhook"] = "event".into()));
    assert!(invalid(&|m| m["decision"]["decisionScore"] = "high".into()));
    assert!(invalid(&|m| {
        m["schemaVersion"] = 2.into();
        m["decision"]["decisionScore"] = 0.5.into();
        m["decision"].as_object_mut().unwrap().remove("webhook");
    }));
    assert!(
        invalid(&|m| {
            m["mediaUnavailable"] = serde_json::json!({
                "reason": "not_found_at_veriff",
                "endpoints": [format!("GET /v1/sessions/{DEMO_SESSION_ID}/media")]
            });
        }),
        "mediaUnavailable beside stored files"
    );
    assert!(!invalid(&|m| {
        m["files"] = serde_json::json!([]);
        m["mediaUnavailable"] = serde_json::json!({
            "reason": "not_found_at_veriff",
            "endpoints": [format!("GET /v1/sessions/{DEMO_SESSION_ID}/media")]
        });
    }));
}
