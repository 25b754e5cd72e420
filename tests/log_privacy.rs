//! Captures every log line of full runs (success and each failure class) in the production
//! JSON format, at the most verbose level of this crate, and asserts that no secret,
//! signature, API key, body, person name, document number or IP address appears; the one
//! exception is the address of a caller refused by `ALLOWED_SOURCE_CIDRS`, on its refusal
//! line only.

// The harness of tests/it/. This test stays a binary of its own: it installs the
// process-wide log subscriber, and must see only its own requests' lines.
#[path = "it/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{
    DemoMediaKind, Fault, FaultKind, S3Fault, S3FaultKind, demo_scenario, function_url_event,
    hmac_sha256_hex, signed_webhook_event,
};
use serde_json::Value;
use support::*;
use tracing_subscriber::fmt::MakeWriter;

/// A caller outside ALLOWED_SOURCE_CIDRS (documentation range, RFC 5737).
const STRANGER_IP: &str = "198.51.100.77";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn no_secret_signature_body_or_personal_data_is_ever_logged() {
    let capture = Capture::default();
    veriff_archiver::telemetry::init_with_writer(
        capture.clone(),
        "info,veriff_archiver=trace".parse().unwrap(),
    );

    let body = decision(DEMO_SESSION_ID, DEMO_ATTEMPT_ID, "approved");
    let signature = hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
    let mut statuses = Vec::new();

    // Success (with the webhook body kept, ARCHIVE_DECISION_PAYLOAD), duplicate, the
    // ignored event, a status this build does not know, and a decision without attemptId.
    let settings = [
        ("ARCHIVE_VIDEOS", "true"),
        ("VERIFF_MAX_ATTEMPTS", "2"),
        ("ARCHIVE_DECISION_PAYLOAD", "true"),
    ];
    // The metric lines (Embedded Metric Format) are checked like the log lines, and more
    // strictly: not even an id may reach them.
    let metric_lines = Lines::default();
    let mut first = Harness::with(&settings).await;
    first.app = first
        .app
        .clone()
        .with_metrics(Some(metric_lines.metrics("VeriffArchiver")));
    let h = &first;
    demo_scenario(&h.fake, 6 * 1024 * 1024);
    let unknown_status = archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "approved_with_conditions",
        "2025-03-04T11:00:00.000Z",
    );
    let mut no_attempt: Value = serde_json::from_str(&archiver_devkit::decision_webhook(
        DEMO_SESSION_ID,
        DEMO_ATTEMPT_ID,
        "review",
        "2025-03-04T12:00:00.000Z",
    ))
    .unwrap();
    no_attempt["verification"]
        .as_object_mut()
        .unwrap()
        .remove("attemptId");
    let no_attempt = no_attempt.to_string();
    // Full Auto results (the Essential plan), whose extractions are full of personal data.
    let essential = archiver_devkit::essential_scenario(&h.fake);
    for event in [
        signed_webhook_event(body.as_bytes(), SECRET, API_KEY, false),
        signed_webhook_event(body.as_bytes(), SECRET, API_KEY, true),
        signed_webhook_event(
            archiver_devkit::fixtures::EVENT_WEBHOOK_STARTED.as_bytes(),
            SECRET,
            API_KEY,
            false,
        ),
        signed_webhook_event(unknown_status.as_bytes(), SECRET, API_KEY, false),
        signed_webhook_event(no_attempt.as_bytes(), SECRET, API_KEY, false),
        signed_webhook_event(
            essential.approved_webhook.as_bytes(),
            SECRET,
            API_KEY,
            false,
        ),
        signed_webhook_event(essential.declined_webhook.as_bytes(), SECRET, API_KEY, true),
        signed_webhook_event(
            essential.approved_webhook.as_bytes(),
            SECRET,
            API_KEY,
            false,
        ),
    ] {
        statuses.push(h.deliver(event).await.status);
    }
    let stored_payloads = h
        .keys()
        .await
        .into_iter()
        .filter(|k| k.contains("/decision-"))
        .count();
    assert_eq!(stored_payloads, 5, "the webhook bodies were kept");
    // Rejections: wrong signature, wrong API key, malformed envelope, unsafe id.
    let mut wrong = signature.clone();
    wrong.replace_range(0..2, "00");
    for event in [
        function_url_event(body.as_bytes(), &[("x-hmac-signature", &wrong)], false),
        function_url_event(
            body.as_bytes(),
            &[
                ("x-hmac-signature", &signature),
                ("x-auth-client", "leaked-key?"),
            ],
            false,
        ),
        serde_json::json!({"headers": {"x-hmac-signature": signature}, "body": "%%%", "isBase64Encoded": true}),
        signed_webhook_event(
            body.replace(DEMO_SESSION_ID, "../../x").as_bytes(),
            SECRET,
            API_KEY,
            false,
        ),
        signed_webhook_event(
            essential
                .approved_webhook
                .replace(&essential.session_id, "../../x")
                .as_bytes(),
            SECRET,
            API_KEY,
            false,
        ),
    ] {
        statuses.push(h.deliver(event).await.status);
    }
    // Failures: Veriff 500s, a wrong response signature, a truncated download, S3 down, the
    // deadline. In a fresh archive: in the first one every file would be reused.
    // The second archive only takes webhooks from the Function URL envelope's address
    // (ALLOWED_SOURCE_CIDRS): every failure below comes from inside the list, and one
    // stranger's request is refused. The stranger's address is the one IP a log may hold.
    let mut allowlisted = settings.to_vec();
    allowlisted.push(("ALLOWED_SOURCE_CIDRS", "203.0.113.0/24, 2001:db8::/32"));
    let mut second = Harness::with(&allowlisted).await;
    second.app = second
        .app
        .clone()
        .with_metrics(Some(metric_lines.metrics("VeriffArchiver")));
    let h = &second;
    let scenario = demo_scenario(&h.fake, 6 * 1024 * 1024);
    let later = |n: u32| {
        archiver_devkit::decision_webhook(
            DEMO_SESSION_ID,
            DEMO_ATTEMPT_ID,
            "declined",
            &format!("2025-03-0{n}T10:00:00.000Z"),
        )
    };
    let video = format!(
        "/v1/media/{}",
        scenario
            .media
            .iter()
            .find(|m| m.kind == DemoMediaKind::Video)
            .unwrap()
            .id
    );
    h.fake.inject(Fault::new("*", FaultKind::Status(500), 100));
    statuses.push(h.deliver_body(&later(5)).await.status);
    h.fake.clear_faults();
    h.fake.inject(Fault::new(
        format!("/v1/sessions/{DEMO_SESSION_ID}/media"),
        FaultKind::WrongSignature,
        1,
    ));
    statuses.push(h.deliver_body(&later(6)).await.status);
    h.fake.inject(Fault::new(
        video.as_str(),
        FaultKind::Truncate { after: 5_000_000 },
        2,
    ));
    statuses.push(h.deliver_body(&later(7)).await.status);
    h.s3()
        .inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(500), 100));
    statuses.push(h.deliver_body(&later(8)).await.status);
    h.s3().clear_faults();
    h.fake.inject(Fault::new(
        video.as_str(),
        FaultKind::Latency(Duration::from_secs(3)),
        1,
    ));
    let event = signed_webhook_event(later(9).as_bytes(), SECRET, API_KEY, false);
    statuses.push(
        h.deliver_within(event, Duration::from_millis(1500))
            .await
            .status,
    );
    let mut stranger = signed_webhook_event(later(10).as_bytes(), SECRET, API_KEY, false);
    stranger["requestContext"]["http"]["sourceIp"] = STRANGER_IP.into();
    statuses.push(h.deliver(stranger).await.status);
    assert_eq!(
        statuses,
        [
            200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 400, 400, 400, 502, 502, 502, 503,
            504, 403
        ]
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert!(lines.len() >= 20, "{} lines", lines.len());
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "manifest written" && l["session_id"] == DEMO_SESSION_ID)
    );
    assert!(
        lines.iter().any(|l| l["message"] == "manifest written"
            && l["session_id"] == essential.session_id.as_str()),
        "the Full Auto results were archived"
    );
    assert!(lines.iter().any(|l| l["webhook"] == "fullauto"));
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "ERROR" && l["code"] == "deadline_exceeded")
    );
    assert!(lines.iter().any(|l| l["code"] == "unauthorized"));
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["decision_status"] == "approved_with_conditions")
    );

    // The refused caller's address is logged once, on the refusal line, and nowhere else.
    let naming_the_stranger: Vec<&Value> = lines
        .iter()
        .filter(|l| l.to_string().contains(STRANGER_IP))
        .collect();
    assert_eq!(naming_the_stranger.len(), 1, "{naming_the_stranger:#?}");
    assert_eq!(
        (
            &naming_the_stranger[0]["level"],
            &naming_the_stranger[0]["source_ip"],
            &naming_the_stranger[0]["message"]
        ),
        (
            &Value::from("WARN"),
            &Value::from(STRANGER_IP),
            &Value::from("request from outside ALLOWED_SOURCE_CIDRS refused")
        )
    );
    let logs = logs.replace(STRANGER_IP, "<the refused caller>");

    let mut forbidden: Vec<String> = vec![
        SECRET.into(),
        API_KEY.into(),
        "leaked-key?".into(),
        signature.clone(),
        signature.to_ascii_uppercase(),
        wrong.clone(),
        // Personal data of the decision payload.
        "SARAH".into(),
        "MORGAN".into(),
        "MORGA753116SM9IJ".into(),
        "1967-03-30".into(),
        "186.153.67.122".into(),
        // The Function URL envelope's caller IP and the vendor reference.
        archiver_devkit::signing::SOURCE_IP.into(),
        "cust-8d1c2f".into(),
        // Bodies.
        "\"verification\"".into(),
        "\"person\"".into(),
        "technicalData".into(),
        "confidenceCategory".into(),
        "insights".into(),
        "faceLiveness".into(),
    ];
    // The Full Auto extractions' personal values.
    forbidden.extend(
        archiver_devkit::fixtures::FULL_AUTO_PERSONAL_VALUES
            .iter()
            .map(|v| v.to_string()),
    );
    forbidden.extend(signatures_of_every_path(&first));
    forbidden.extend(signatures_of_every_path(&second));
    for needle in &forbidden {
        assert!(
            !logs.contains(needle.as_str()),
            "log output contains {needle:?}"
        );
    }
    let metrics = metric_lines.take();
    let summaries = metrics
        .iter()
        .filter(|m| m.get("DecisionsArchived").is_some())
        .count();
    assert_eq!(
        summaries,
        statuses.len(),
        "one metrics summary per invocation"
    );
    let metrics_text = metrics
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    forbidden.extend([
        STRANGER_IP.to_string(),
        DEMO_SESSION_ID.to_string(),
        DEMO_ATTEMPT_ID.to_string(),
        "approved_with_conditions".into(),
    ]);
    for needle in &forbidden {
        assert!(
            !metrics_text.contains(needle.as_str()),
            "a metric line contains {needle:?}"
        );
    }
    eprintln!(
        "checked {} log lines and {} metric lines for {} forbidden strings",
        lines.len(),
        metrics.len(),
        forbidden.len()
    );
}

/// The HMAC signatures the function put on its Veriff requests.
fn signatures_of_every_path(h: &Harness) -> Vec<String> {
    h.fake
        .requests()
        .iter()
        .filter_map(|r| r.path.rsplit('/').find(|s| s.len() > 20))
        .map(|id| hmac_sha256_hex(SECRET.as_bytes(), id.as_bytes()))
        .collect()
}
