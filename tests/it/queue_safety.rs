//! The queue consumer's safety paths, with SQS batches built as the event source mapping
//! sends them (no queue needed: the consumer reads only the event): a record without a
//! message id fails the whole batch; an SQS-shaped event that does not parse is an error
//! (the whole batch retried); a status outside `ARCHIVE_STATUSES` is dropped without a call
//! to Veriff; a decision twice in a failing batch reports every copy.

use std::time::Duration;

use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{Fault, FaultKind, decision_webhook, demo_scenario};
use serde_json::{Value, json};
use tokio::time::Instant;
use veriff_archiver::manifest::DecisionSource;
use veriff_archiver::queue::DecisionMessage;
use veriff_archiver::webhook::{Webhook, classify};

use crate::support::*;

/// The queue message body of a decision webhook of the demo session with `status`.
pub(crate) fn message_body(status: &str) -> String {
    let body = decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        status,
        "2025-03-04T10:21:07.412Z",
    );
    let Ok(Webhook::Decision(decision)) = classify(body.as_bytes()) else {
        panic!("the fixture is a decision");
    };
    DecisionMessage::new(&decision, DecisionSource::Webhook).to_body()
}

/// One SQS record as Lambda's event source mapping shapes it.
pub(crate) fn record(message_id: Option<&str>, body: &str) -> Value {
    let mut r = json!({
        "receiptHandle": "handle", "body": body,
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:archive", "awsRegion": "us-east-1",
    });
    if let Some(id) = message_id {
        r["messageId"] = Value::from(id);
    }
    r
}

pub(crate) async fn consume(h: &Harness, records: Vec<Value>) -> Result<Value, String> {
    h.app
        .handle_event(
            json!({ "Records": records }),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .map_err(|e| e.to_string())
}

pub(crate) fn failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a partial batch response: {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_record_without_a_message_id_fails_the_whole_batch() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = message_body("approved");
    let answer = consume(&h, vec![record(Some("m-1"), &body), record(None, &body)])
        .await
        .unwrap();
    // An empty identifier makes Lambda retry every record of the batch.
    assert!(failures(&answer).contains(&String::new()), "{answer}");
}

#[tokio::test]
async fn an_sqs_shaped_event_that_does_not_parse_is_an_error_and_archives_nothing() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let mut bad = record(Some("m-1"), &message_body("approved"));
    bad["messageId"] = json!(17);
    bad["attributes"] = json!("not a map");
    let outcome = consume(&h, vec![bad]).await;
    assert!(
        outcome.is_err(),
        "an unreadable batch must fail whole: {outcome:?}"
    );
    assert_eq!(h.media_downloads(), 0);
    assert!(h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.is_none());
}

#[tokio::test]
async fn a_status_outside_archive_statuses_is_dropped_without_calling_veriff() {
    let h = Harness::with(&[("ARCHIVE_STATUSES", "approved")]).await;
    demo_scenario(&h.fake, 1000);
    let answer = consume(&h, vec![record(Some("m-1"), &message_body("declined"))])
        .await
        .unwrap();
    assert_eq!(
        failures(&answer),
        Vec::<String>::new(),
        "dropped, not retried"
    );
    assert!(h.fake.requests().is_empty(), "no call to Veriff");
    assert!(h.keys().await.is_empty(), "nothing written");
}

#[tokio::test]
async fn a_decision_twice_in_a_failing_batch_reports_every_copy() {
    let h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    h.fake
        .inject(Fault::new("*", FaultKind::Status(500), 1_000));
    let body = message_body("approved");
    let answer = consume(
        &h,
        vec![
            record(Some("m-1"), &body),
            record(Some("m-2"), &body),
            record(Some("m-3"), &message_body("declined")),
        ],
    )
    .await
    .unwrap();
    let mut failed = failures(&answer);
    failed.sort();
    assert_eq!(
        failed,
        ["m-1", "m-2", "m-3"],
        "every copy of each failed decision"
    );
    assert!(h.manifest(DEMO_SESSION_ID, DEMO_ATTEMPT_ID).await.is_none());
}
