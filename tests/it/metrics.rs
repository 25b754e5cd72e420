//! The function's CloudWatch metrics (Embedded Metric Format lines), parsed and checked for
//! each outcome of a Function URL event: archived, already archived, ignored, rejected (by
//! code) and failed (by code), with files, bytes, durations and Veriff retries; and never
//! an id or anything personal in a metric line. Queue mode's `queued` and the consumer's
//! records are checked in `tests/it/queue.rs` (they need a real SQS); the consumer's
//! lines are checked as EMF here, from a batch built as the event source mapping sends it.

use std::sync::{Arc, Mutex};

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{
    Fault, FaultKind, S3Fault, S3FaultKind, demo_scenario, function_url_event, signed_webhook_event,
};
use serde_json::Value;
use veriff_archiver::metrics::Metrics;

const NAMESPACE: &str = "VeriffArchiverTest";

/// Checks a record against the EMF specification's rules that CloudWatch enforces: the
/// directive, every declared metric present as a number (or an array of numbers), every
/// dimension present as a string. Returns (dimension sets, metric name -> (unit, value)).
fn check_emf(record: &Value) -> (Value, std::collections::BTreeMap<String, (String, Value)>) {
    let directive = &record["_aws"]["CloudWatchMetrics"];
    assert_eq!(directive.as_array().unwrap().len(), 1, "{record}");
    let directive = &directive[0];
    assert_eq!(directive["Namespace"], NAMESPACE);
    assert!(record["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    let dimensions = directive["Dimensions"].clone();
    for set in dimensions.as_array().unwrap() {
        for name in set.as_array().unwrap() {
            let name = name.as_str().unwrap();
            assert!(
                record[name].is_string(),
                "dimension {name} missing in {record}"
            );
        }
    }
    let mut metrics = std::collections::BTreeMap::new();
    for metric in directive["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap().to_string();
        let unit = metric["Unit"].as_str().unwrap().to_string();
        assert!(["Count", "Bytes", "Milliseconds"].contains(&unit.as_str()));
        let value = record[&name].clone();
        assert!(
            value.is_number()
                || value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_number)),
            "{name} has no numeric value in {record}"
        );
        metrics.insert(name, (unit, value));
    }
    (dimensions, metrics)
}

/// The summary record of one invocation (asserted to be exactly one), as name -> value.
fn summary(records: &[Value]) -> std::collections::BTreeMap<String, Value> {
    let summaries: Vec<&Value> = records
        .iter()
        .filter(|r| r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == serde_json::json!([[]]))
        .collect();
    assert_eq!(
        summaries.len(),
        1,
        "one summary per invocation: {records:#?}"
    );
    assert_eq!(summaries[0]["Entry"], "webhook");
    let (_, metrics) = check_emf(summaries[0]);
    for (name, unit) in [
        ("DecisionsArchived", "Count"),
        ("DecisionsAlreadyArchived", "Count"),
        ("DecisionsQueued", "Count"),
        ("WebhooksIgnored", "Count"),
        ("WebhooksRejected", "Count"),
        ("ArchiveFailures", "Count"),
        ("FilesStored", "Count"),
        ("FilesReused", "Count"),
        ("BytesStored", "Bytes"),
        ("VeriffRetries", "Count"),
        ("DecisionsMediaUnavailable", "Count"),
    ] {
        assert_eq!(metrics[name].0, unit, "{name}");
    }
    metrics.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// The per-code records: (metric, code, count).
fn by_code(records: &[Value]) -> Vec<(String, String, u64)> {
    records
        .iter()
        .filter(|r| r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] != serde_json::json!([[]]))
        .map(|r| {
            let (dimensions, metrics) = check_emf(r);
            assert_eq!(dimensions, serde_json::json!([["ErrorCode"]]));
            assert_eq!(metrics.len(), 1);
            let (name, (unit, value)) = metrics.into_iter().next().unwrap();
            assert_eq!(unit, "Count");
            (
                name,
                r["ErrorCode"].as_str().unwrap().to_string(),
                value.as_u64().unwrap(),
            )
        })
        .collect()
}

fn counts(s: &std::collections::BTreeMap<String, Value>) -> [u64; 6] {
    [
        "DecisionsArchived",
        "DecisionsAlreadyArchived",
        "DecisionsQueued",
        "WebhooksIgnored",
        "WebhooksRejected",
        "ArchiveFailures",
    ]
    .map(|n| s[n].as_u64().unwrap())
}

#[tokio::test]
async fn every_outcome_publishes_its_metrics_and_nothing_personal() {
    let lines = Lines::default();
    let mut h = Harness::with(&[("ARCHIVE_VIDEOS", "true"), ("VERIFF_MAX_ATTEMPTS", "2")]).await;
    h.app = h.app.clone().with_metrics(Some(Metrics::to_writer(
        NAMESPACE,
        Arc::new(Mutex::new(lines.clone())),
    )));
    let scenario = demo_scenario(&h.fake, 1_000_000);
    let body = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    let mut all = Vec::new();

    // Archived, with one retried Veriff request.
    h.fake.inject(Fault::new(
        format!("/v1/sessions/{DEMO_SESSION_ID}/media"),
        FaultKind::Status(503),
        1,
    ));
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.body["status"], "archived", "{:?}", reply.body);
    let records = lines.take();
    let s = summary(&records);
    assert_eq!(counts(&s), [1, 0, 0, 0, 0, 0]);
    assert_eq!(s["FilesStored"], 7);
    assert_eq!(s["FilesReused"], 0);
    let manifest = h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.unwrap();
    let bytes: u64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    assert_eq!(s["BytesStored"], bytes);
    assert_eq!(s["VeriffRetries"], 1);
    assert_eq!(s["ArchiveDuration"].as_array().unwrap().len(), 1);
    assert!(by_code(&records).is_empty());
    all.extend(records);

    // Already archived: no files, no bytes.
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.body["status"], "already_archived");
    let records = lines.take();
    let s = summary(&records);
    assert_eq!(counts(&s), [0, 1, 0, 0, 0, 0]);
    assert_eq!(
        (
            s["FilesStored"].as_u64(),
            s["BytesStored"].as_u64(),
            s["VeriffRetries"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    all.extend(records);

    // A later decision of the same attempt: archived, every file reused.
    let declined = archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "declined",
        "2025-03-05T10:00:00.000Z",
    );
    assert_eq!(h.deliver_body(&declined).await.body["status"], "archived");
    let records = lines.take();
    let s = summary(&records);
    assert_eq!(counts(&s), [1, 0, 0, 0, 0, 0]);
    assert_eq!(
        (
            s["FilesStored"].as_u64(),
            s["FilesReused"].as_u64(),
            s["BytesStored"].as_u64()
        ),
        (Some(0), Some(7), Some(0))
    );
    all.extend(records);

    // Ignored: not a decision. No duration (nothing archived).
    let started = signed_webhook_event(
        archiver_devkit::fixtures::EVENT_WEBHOOK_STARTED.as_bytes(),
        SECRET,
        API_KEY,
        false,
    );
    assert_eq!(h.deliver(started).await.body["status"], "ignored");
    let records = lines.take();
    let s = summary(&records);
    assert_eq!(counts(&s), [0, 0, 0, 1, 0, 0]);
    assert!(!s.contains_key("ArchiveDuration"));
    all.extend(records);

    // Rejected: a forged signature (401) and an unsafe id (400), each by its code.
    let forged = function_url_event(
        body.as_bytes(),
        &[("x-hmac-signature", &"0".repeat(64))],
        false,
    );
    assert_eq!(h.deliver(forged).await.status, 401);
    let records = lines.take();
    assert_eq!(counts(&summary(&records)), [0, 0, 0, 0, 1, 0]);
    assert_eq!(
        by_code(&records),
        vec![("WebhooksRejected".into(), "unauthorized".into(), 1)]
    );
    all.extend(records);
    let unsafe_id = body.replace(DEMO_SESSION_ID, "../../etc");
    assert_eq!(h.deliver_body(&unsafe_id).await.status, 400);
    let records = lines.take();
    assert_eq!(
        by_code(&records),
        vec![("WebhooksRejected".into(), "bad_payload".into(), 1)]
    );
    all.extend(records);

    // Failed: S3 refuses (503 storage_refused) for a new decision.
    let other = archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "review",
        "2025-03-06T10:00:00.000Z",
    );
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(403), 100));
    let reply = h.deliver_body(&other).await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (503, Some("storage_refused")),
        "{:?}",
        reply.body
    );
    let records = lines.take();
    let s = summary(&records);
    assert_eq!(counts(&s), [0, 0, 0, 0, 0, 1]);
    assert_eq!(
        s["ArchiveDuration"].as_array().unwrap().len(),
        1,
        "failed archives are timed too"
    );
    assert_eq!(
        by_code(&records),
        vec![("ArchiveFailures".into(), "storage_refused".into(), 1)]
    );
    all.extend(records);
    h.s3().clear_faults();

    // Failed: Veriff down (502 veriff_unavailable), retried once (VERIFF_MAX_ATTEMPTS=2).
    h.fake.inject(Fault::new("*", FaultKind::Status(500), 100));
    let reply = h
        .deliver_body(&archiver_devkit::decision_webhook(
            DEMO_SESSION_ID,
            DEMO_ATTEMPT_ID,
            "expired",
            "2025-03-07T10:00:00.000Z",
        ))
        .await;
    assert_eq!(reply.body["code"], "veriff_unavailable");
    let records = lines.take();
    let s = summary(&records);
    assert!(s["VeriffRetries"].as_u64().unwrap() >= 1, "{s:?}");
    assert_eq!(
        by_code(&records),
        vec![("ArchiveFailures".into(), "veriff_unavailable".into(), 1)]
    );
    all.extend(records);

    // Nothing personal, no id, no secret in any metric line.
    let text = all
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let mut forbidden = vec![
        DEMO_SESSION_ID.to_string(),
        DEMO_ATTEMPT_ID.to_string(),
        SECRET.into(),
        API_KEY.into(),
        "SARAH".into(),
        "MORGAN".into(),
        "MORGA753116SM9IJ".into(),
        "1967-03-30".into(),
        "186.153.67.122".into(),
        "cust-8d1c2f".into(),
    ];
    forbidden.extend(scenario.media.iter().map(|m| m.id.clone()));
    for value in forbidden {
        assert!(!text.contains(&value), "{value} in a metric line");
    }
    // The only dimension is ErrorCode, and its values are the stable codes.
    for record in &all {
        for key in record.as_object().unwrap().keys() {
            assert!(
                key == "_aws"
                    || key == "Entry"
                    || key == "ErrorCode"
                    || key.chars().next().unwrap().is_ascii_uppercase(),
                "unexpected field {key}"
            );
        }
    }
}

#[tokio::test]
async fn the_queue_consumers_metric_lines_are_emf_too() {
    use crate::queue_safety::{consume, failures, message_body, record};
    let lines = Lines::default();
    let mut h = Harness::start().await;
    h.app = h.app.clone().with_metrics(Some(Metrics::to_writer(
        NAMESPACE,
        Arc::new(Mutex::new(lines.clone())),
    )));
    demo_scenario(&h.fake, 1000);
    let body = message_body("approved");
    let answer = consume(
        &h,
        vec![
            record(Some("m-1"), &body),
            record(Some("m-2"), &body),
            record(Some("m-3"), "{\"not\": \"a decision message\"}"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(failures(&answer), ["m-3"]);
    let records = lines.take();
    assert!(!records.is_empty());
    let summaries: Vec<&Value> = records
        .iter()
        .filter(|r| r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == serde_json::json!([[]]))
        .collect();
    assert_eq!(summaries.len(), 1, "one summary per batch: {records:#?}");
    assert_eq!(summaries[0]["Entry"], "queue");
    let (_, metrics) = check_emf(summaries[0]);
    assert_eq!(
        metrics["DecisionsArchived"].1, 1,
        "the two copies are one decision"
    );
    assert_eq!(metrics["ArchiveFailures"].1, 1);
    assert_eq!(
        by_code(&records),
        [("ArchiveFailures".to_string(), "bad_message".to_string(), 1)]
    );
    let text = records.iter().map(Value::to_string).collect::<String>();
    for needle in [DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "m-1", "cust-8d1c2f"] {
        assert!(!text.contains(needle), "{needle} in a metric line");
    }
}
