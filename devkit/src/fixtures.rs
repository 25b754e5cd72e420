//! Documented Veriff payloads, verbatim, and deterministic test content.
//!
//! The media-metadata examples are copied byte for byte from Veriff's reference pages
//! (`sessions-id-media.md`, `attempts-id-media.txt`), including their oddities: ids that are
//! not valid UUIDs, arrays that are missing entirely, and (for the attempt examples) no
//! indentation at all. Serve them verbatim with
//! [`FakeVeriff::set_session_media`](crate::FakeVeriff::set_session_media) and friends.
//!
//! [`deterministic_bytes`] is the generator behind
//! [`MediaContent::Generated`](crate::MediaContent::Generated): tests can recompute any
//! served file (or its SHA-256) without storing it.

use serde_json::Value;

/// `standard_verification` example of `GET /v1/sessions/{id}/media`: one `document-front` image, no videos.
pub const STANDARD_VERIFICATION: &str = r#"{
  "status": "success",
  "images": [
    {
      "id": "d69a07cf-4434-4d36-be6c-d22af7dc01fb",
      "name": "document-front",
      "context": "document-front",
      "timestamp": null,
      "size": 245678,
      "mimetype": "image/jpeg",
      "url": "https://exampleURL.com/v1/media/d69a07cf-4434-4d36-be6c-d22af7dc01fb",
      "sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5"
    }
  ],
  "videos": []
}"#;

/// `proof_of_address` example of `GET /v1/sessions/{id}/media`: one `address-front` image, no videos.
pub const PROOF_OF_ADDRESS: &str = r#"{
  "status": "success",
  "images": [
    {
      "id": "a1b2c3d4-e5f6-4a5b-8c9d-e0f1a2b3c4d5",
      "name": "address-front",
      "context": "address-front",
      "timestamp": null,
      "size": 312456,
      "mimetype": "image/jpeg",
      "url": "https://exampleURL.com/v1/media/a1b2c3d4-e5f6-4a5b-8c9d-e0f1a2b3c4d5",
      "sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5"
    }
  ],
  "videos": []
}"#;

/// `video_verification` example of `GET /v1/sessions/{id}/media`: one `selfid_video` and no `images` key at all.
///
/// Note the id `f5g6h7i8-j9k0-4l1m-9n2o-p3q4r5s6t7u8` is not hexadecimal.
pub const VIDEO_VERIFICATION: &str = r#"{
  "status": "success",
  "videos": [
    {
      "id": "f5g6h7i8-j9k0-4l1m-9n2o-p3q4r5s6t7u8",
      "name": "selfid_video",
      "context": "selfid_video",
      "timestamp": null,
      "size": 4567890,
      "mimetype": "video/mp4",
      "url": "https://exampleURL.com/v1/media/f5g6h7i8-j9k0-4l1m-9n2o-p3q4r5s6t7u8",
      "sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5",
      "duration": 8
    }
  ]
}"#;

/// `nfcDocuments_verification` example of `GET /v1/sessions/{id}/media`: one NFC data file and neither `images` nor `videos`.
pub const NFC_DOCUMENTS_VERIFICATION: &str = r#"{
  "status": "success",
  "nfcDocuments": [
    {
      "id": "908d041f-e66e-47de-9664-0950a201fd85",
      "name": "document-nfc",
      "context": "document-nfc",
      "timestamp": null,
      "size": 29584,
      "mimetype": "application/octet-stream",
      "url": "https://exampleURL.com/v1/media/908d041f-e66e-47de-9664-0950a201fd85",
      "sessionId": "86c71df5-c163-4022-9c94-1fb6dc903a98"
    }
  ]
}"#;

/// `no_media_uploaded` example of `GET /v1/sessions/{id}/media`: empty `images` and `videos`.
pub const NO_MEDIA_UPLOADED: &str = r#"{
  "status": "success",
  "images": [],
  "videos": []
}"#;

/// Standard-attempt example of `GET /v1/attempts/{id}/media`: three images.
///
/// Two of the ids (`e7ab18d1-5545-5e47-af7b-e23gb6247f80`, `a2cd45e3-6656-6f58-bg8c-f34hc7358g91`)
/// are not valid UUIDs (they contain `g`/`h`): clients must accept them as opaque path segments.
pub const ATTEMPT_STANDARD: &str = r#"{
"status": "success",
"images": [
{
"id": "d69a07cf-4434-4d36-be6c-d22af7dc01fb",
"name": "document-front",
"context": "document-front",
"timestamp": null,
"size": 245678,
"mimetype": "image/jpeg",
"url": "https://exampleURL.com/v1/media/d69a07cf-4434-4d36-be6c-d22af7dc01fb",
"sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5"
},
{
"id": "e7ab18d1-5545-5e47-af7b-e23gb6247f80",
"name": "document-back",
"context": "document-back",
"timestamp": null,
"size": 238956,
"mimetype": "image/jpeg",
"url": "https://exampleURL.com/v1/media/e7ab18d1-5545-5e47-af7b-e23gb6247f80",
"sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5"
},
{
"id": "a2cd45e3-6656-6f58-bg8c-f34hc7358g91",
"name": "face",
"context": "face",
"timestamp": null,
"size": 198432,
"mimetype": "image/jpeg",
"url": "https://exampleURL.com/v1/media/a2cd45e3-6656-6f58-bg8c-f34hc7358g91",
"sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5"
}
],
"videos": []
}"#;

/// Video example of `GET /v1/attempts/{id}/media`: one `selfid_video` (non-hex id) and no `images` key.
pub const ATTEMPT_VIDEO: &str = r#"{
"status": "success",
"videos": [
{
"id": "b3de56f4-7767-7g69-ch9d-g45id8469h02",
"name": "selfid_video",
"context": "selfid_video",
"timestamp": null,
"size": 1456789,
"mimetype": "video/mp4",
"url": "https://exampleURL.com/v1/media/b3de56f4-7767-7g69-ch9d-g45id8469h02",
"sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5",
"duration": 8
}
]
}"#;

/// No-media example of `GET /v1/attempts/{id}/media`: empty `images` and `videos`.
pub const ATTEMPT_NO_MEDIA: &str = r#"{
"status": "success",
"images": [],
"videos": []
}"#;

/// The decision webhook payload example of `CONTRACT.md` section 1 (session
/// `f04bdb47-d3be-4b28-b028-a652feb060b5`, attempt `e30122d1-740b-4764-853f-470374a7abf4`, `approved`).
///
/// It contains personal data (`person`, `document`, `technicalData.ip`) on purpose, so tests can
/// check that none of it leaks into logs or archives.
pub const DECISION_WEBHOOK: &str = r#"{
  "status": "success",
  "verification": {
    "id": "f04bdb47-d3be-4b28-b028-a652feb060b5",
    "attemptId": "e30122d1-740b-4764-853f-470374a7abf4",
    "vendorData": "cust-8d1c2f",
    "endUserId": null,
    "status": "approved",
    "code": 9001,
    "reason": null,
    "reasonCode": null,
    "decisionTime": "2025-03-04T10:21:07.412Z",
    "acceptanceTime": "2025-03-04T10:15:55.000Z",
    "person": { "firstName": "SARAH", "lastName": "MORGAN", "dateOfBirth": "1967-03-30" },
    "document": { "type": "DRIVERS_LICENSE", "number": "MORGA753116SM9IJ", "country": "GB" },
    "additionalVerifiedData": {},
    "riskLabels": [],
    "comments": []
  },
  "technicalData": { "ip": "186.153.67.122" }
}"#;

/// A Full Auto webhook (Veriff's Self-Serve Essential plan, which sends no decision
/// webhook) for the demo session: the shape public client code types and Veriff's
/// `full-auto-webhook` page describes (`eventType: "fullauto"`, ids at the top level, the
/// decision and its `decisionScore` in `data.verification`, no reason or decision codes).
///
/// The extractions (`person`, `document`, each field `{confidenceCategory, value,
/// sources}`) carry the fictitious personal data of [`DECISION_WEBHOOK`] on purpose, and
/// more (an id number, an address), so tests can check that none of it leaks.
pub const FULL_AUTO_WEBHOOK: &str = r#"{
  "status": "success",
  "eventType": "fullauto",
  "sessionId": "f04bdb47-d3be-4b28-b028-a652feb060b5",
  "attemptId": "e30122d1-740b-4764-853f-470374a7abf4",
  "vendorData": "cust-8d1c2f",
  "endUserId": null,
  "version": "1.0.0",
  "acceptanceTime": "2025-03-04T10:15:55.000Z",
  "time": "2025-03-04T10:16:30.120Z",
  "data": {
    "verification": {
      "decisionScore": 0.97,
      "decision": "approved",
      "person": {
        "firstName": { "confidenceCategory": "high", "value": "SARAH", "sources": ["MRZ", "VIZ"] },
        "lastName": { "confidenceCategory": "high", "value": "MORGAN", "sources": ["MRZ", "VIZ"] },
        "dateOfBirth": { "confidenceCategory": "high", "value": "1967-03-30", "sources": ["MRZ", "VIZ"] },
        "idNumber": { "confidenceCategory": "medium", "value": "38703300123", "sources": ["VIZ"] },
        "nationality": { "confidenceCategory": "high", "value": "GB", "sources": ["MRZ", "VIZ"] },
        "address": { "confidenceCategory": "low", "value": "12 Ashdown Lane, Leeds LS6 2QT", "components": {}, "sources": ["VIZ"] }
      },
      "document": {
        "number": { "confidenceCategory": "high", "value": "MORGA753116SM9IJ", "sources": ["MRZ", "VIZ"] },
        "type": { "value": "DRIVERS_LICENSE" },
        "country": { "value": "GB" },
        "validUntil": { "confidenceCategory": "high", "value": "2031-05-17", "sources": ["VIZ"] }
      },
      "insights": [
        { "label": "documentAccepted", "result": "yes", "category": "document" },
        { "label": "documentNotExpired", "result": "yes", "category": "document" },
        { "label": "faceLiveness", "result": "yes", "category": "biometric" },
        { "label": "faceSimilarToPortrait", "result": "yes", "category": "biometric" },
        { "label": "expectedTrafficBehaviour", "result": "yes", "category": "fraud" }
      ]
    }
  }
}"#;

/// [`FULL_AUTO_WEBHOOK`] with `sessionId`, `attemptId`, `data.verification.decision`,
/// `time` and `data.verification.decisionScore` replaced (`None`: `null`). The
/// extractions and insights are kept. Pretty-printed JSON with keys in alphabetical order.
#[must_use]
pub fn full_auto_webhook(
    session_id: &str,
    attempt_id: &str,
    decision: &str,
    time: &str,
    decision_score: Option<f64>,
) -> String {
    let mut payload: Value =
        serde_json::from_str(FULL_AUTO_WEBHOOK).expect("FULL_AUTO_WEBHOOK is valid JSON");
    payload["sessionId"] = Value::from(session_id);
    payload["attemptId"] = Value::from(attempt_id);
    payload["time"] = Value::from(time);
    let verification = &mut payload["data"]["verification"];
    verification["decision"] = Value::from(decision);
    verification["decisionScore"] = decision_score.map_or(Value::Null, Value::from);
    serde_json::to_string_pretty(&payload).expect("a JSON value always serializes")
}

/// The personal values of [`FULL_AUTO_WEBHOOK`]'s extractions (and of
/// [`DECISION_WEBHOOK`]): none may reach a log line, a metric or a manifest.
pub const FULL_AUTO_PERSONAL_VALUES: [&str; 9] = [
    "SARAH",
    "MORGAN",
    "1967-03-30",
    "38703300123",
    "12 Ashdown Lane",
    "MORGA753116SM9IJ",
    "2031-05-17",
    "DRIVERS_LICENSE",
    "LS6 2QT",
];

/// `GET /v1/sessions/{id}/decision` while the session has no decision yet (Veriff: "the
/// response status is success, but verification is null"). Once decided, that endpoint
/// answers with the decision webhook's shape (see [`decision_webhook`]).
pub const PENDING_DECISION: &str = r#"{"status":"success","verification":null}"#;

/// An event webhook (`action: "started"`, code 7001): signed like a decision but with no
/// `verification` object. The archiver must acknowledge it with 200 and do nothing.
pub const EVENT_WEBHOOK_STARTED: &str = r#"{"id":"f04bdb47-d3be-4b28-b028-a652feb060b5","attemptId":"e30122d1-740b-4764-853f-470374a7abf4","feature":"selfid","code":7001,"action":"started","vendorData":"cust-8d1c2f","endUserId":null}"#;

/// The `submitted` (code 7002) counterpart of [`EVENT_WEBHOOK_STARTED`].
pub const EVENT_WEBHOOK_SUBMITTED: &str = r#"{"id":"f04bdb47-d3be-4b28-b028-a652feb060b5","attemptId":"e30122d1-740b-4764-853f-470374a7abf4","feature":"selfid","code":7002,"action":"submitted","vendorData":"cust-8d1c2f","endUserId":null}"#;

/// Session id used by [`DECISION_WEBHOOK`] and the demo scenario.
pub const DEMO_SESSION_ID: &str = "f04bdb47-d3be-4b28-b028-a652feb060b5";

/// Attempt id used by [`DECISION_WEBHOOK`] and the demo scenario.
pub const DEMO_ATTEMPT_ID: &str = "e30122d1-740b-4764-853f-470374a7abf4";

/// The decision code the Veriff docs most commonly give for a decision `status`
/// (`None` for statuses this crate does not know). Consumers must branch on `status`,
/// not on the code: the docs disagree on codes.
#[must_use]
pub fn decision_code(status: &str) -> Option<u16> {
    match status {
        "approved" => Some(9001),
        "declined" => Some(9102),
        "resubmission_requested" => Some(9103),
        "expired" | "abandoned" => Some(9104),
        "review" => Some(9121),
        _ => None,
    }
}

/// [`DECISION_WEBHOOK`] with `verification.id`, `verification.attemptId`,
/// `verification.status` and `verification.decisionTime` replaced.
///
/// `verification.code` follows [`decision_code`] (kept as in the example for unknown
/// statuses). `declined` and `resubmission_requested` get a `reason` and a numeric
/// `reasonCode` (102 / 201; numeric, as Veriff sends them although documented as
/// strings). Everything else, including the personal data in `person`, `document` and
/// `technicalData`, is kept so tests can check it never leaks. The output is pretty-printed
/// JSON with keys in alphabetical order (Veriff does not guarantee any order).
#[must_use]
pub fn decision_webhook(
    session_id: &str,
    attempt_id: &str,
    status: &str,
    decision_time: &str,
) -> String {
    let mut payload: Value =
        serde_json::from_str(DECISION_WEBHOOK).expect("DECISION_WEBHOOK is valid JSON");
    let verification = &mut payload["verification"];
    verification["id"] = Value::from(session_id);
    verification["attemptId"] = Value::from(attempt_id);
    verification["status"] = Value::from(status);
    verification["decisionTime"] = Value::from(decision_time);
    if let Some(code) = decision_code(status) {
        verification["code"] = Value::from(code);
    }
    let (reason, reason_code) = match status {
        "declined" => (
            Value::from("Suspected document tampering."),
            Value::from(102),
        ),
        "resubmission_requested" => (
            Value::from("Video and/or photos missing."),
            Value::from(201),
        ),
        _ => (Value::Null, Value::Null),
    };
    verification["reason"] = reason;
    verification["reasonCode"] = reason_code;
    serde_json::to_string_pretty(&payload).expect("a JSON value always serializes")
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output for `state`.
fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `index`-th 64-bit word of the SplitMix64 stream seeded with `seed`.
fn word(seed: u64, index: u64) -> [u8; 8] {
    splitmix64_mix(seed.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA)))
        .to_le_bytes()
}

/// Fills `buf` with bytes `offset .. offset + buf.len()` of the deterministic stream for
/// `seed` (see [`deterministic_bytes`]). Any chunking of the stream yields the same bytes,
/// which is what lets [`MediaContent::Generated`](crate::MediaContent::Generated) stream
/// large files without holding them.
pub fn fill_deterministic(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut out = &mut buf[..];
    // Unaligned head.
    let head = (pos % 8) as usize;
    if head != 0 && !out.is_empty() {
        let w = word(seed, pos / 8);
        let n = (8 - head).min(out.len());
        out[..n].copy_from_slice(&w[head..head + n]);
        out = &mut out[n..];
        pos += n as u64;
    }
    let mut chunks = out.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word(seed, pos / 8));
        pos += 8;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let w = word(seed, pos / 8);
        let n = rest.len();
        rest.copy_from_slice(&w[..n]);
    }
}

/// `len` pseudo-random bytes determined by `seed` (SplitMix64, little-endian words).
///
/// Fast (several hundred MB/s), not cryptographic. The same stream is served by
/// [`MediaContent::Generated`](crate::MediaContent::Generated).
#[must_use]
pub fn deterministic_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0_u8; len];
    fill_deterministic(seed, 0, &mut buf);
    buf
}

/// Lowercase hex SHA-256 of `deterministic_bytes(seed, len)`, computed in 64 KiB chunks
/// (constant memory, so usable for multi-GiB generated media).
#[must_use]
pub fn deterministic_sha256_hex(seed: u64, len: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut offset = 0_u64;
    while offset < len {
        let n = usize::try_from((len - offset).min(buf.len() as u64)).unwrap_or(buf.len());
        fill_deterministic(seed, offset, &mut buf[..n]);
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_fixtures_are_valid_json() {
        for (name, text) in [
            ("STANDARD_VERIFICATION", STANDARD_VERIFICATION),
            ("PROOF_OF_ADDRESS", PROOF_OF_ADDRESS),
            ("VIDEO_VERIFICATION", VIDEO_VERIFICATION),
            ("NFC_DOCUMENTS_VERIFICATION", NFC_DOCUMENTS_VERIFICATION),
            ("NO_MEDIA_UPLOADED", NO_MEDIA_UPLOADED),
            ("ATTEMPT_STANDARD", ATTEMPT_STANDARD),
            ("ATTEMPT_VIDEO", ATTEMPT_VIDEO),
            ("ATTEMPT_NO_MEDIA", ATTEMPT_NO_MEDIA),
            ("DECISION_WEBHOOK", DECISION_WEBHOOK),
            ("EVENT_WEBHOOK_STARTED", EVENT_WEBHOOK_STARTED),
            ("EVENT_WEBHOOK_SUBMITTED", EVENT_WEBHOOK_SUBMITTED),
        ] {
            let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(v.is_object(), "{name}");
        }
    }

    #[test]
    fn fixture_shapes() {
        let v: Value = serde_json::from_str(ATTEMPT_STANDARD).unwrap();
        let images = v["images"].as_array().unwrap();
        assert_eq!(images.len(), 3);
        assert_eq!(images[1]["id"], "e7ab18d1-5545-5e47-af7b-e23gb6247f80");
        let v: Value = serde_json::from_str(VIDEO_VERIFICATION).unwrap();
        assert!(v.get("images").is_none());
        assert_eq!(v["videos"][0]["duration"], 8);
        let v: Value = serde_json::from_str(NFC_DOCUMENTS_VERIFICATION).unwrap();
        assert_eq!(v["nfcDocuments"][0]["context"], "document-nfc");
        assert!(ATTEMPT_NO_MEDIA.starts_with("{\n\"status\""));
        let v: Value = serde_json::from_str(EVENT_WEBHOOK_STARTED).unwrap();
        assert!(v.get("verification").is_none());
        assert_eq!(v["code"], 7001);
        assert_eq!(v["action"], "started");
    }

    #[test]
    fn decision_webhook_replaces_fields_and_keeps_personal_data() {
        let text = decision_webhook("sess-1", "att-1", "declined", "2025-03-04T10:21:07.412345Z");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], "success");
        assert_eq!(v["verification"]["id"], "sess-1");
        assert_eq!(v["verification"]["attemptId"], "att-1");
        assert_eq!(v["verification"]["status"], "declined");
        assert_eq!(v["verification"]["code"], 9102);
        assert_eq!(v["verification"]["reasonCode"], 102);
        assert_eq!(
            v["verification"]["decisionTime"],
            "2025-03-04T10:21:07.412345Z"
        );
        assert_eq!(v["verification"]["person"]["lastName"], "MORGAN");
        assert_eq!(v["verification"]["document"]["number"], "MORGA753116SM9IJ");
        assert_eq!(v["technicalData"]["ip"], "186.153.67.122");

        let v: Value = serde_json::from_str(&decision_webhook("s", "a", "approved", "t")).unwrap();
        assert_eq!(v["verification"]["code"], 9001);
        assert!(v["verification"]["reasonCode"].is_null());
    }

    #[test]
    fn deterministic_stream_is_chunking_independent() {
        let whole = deterministic_bytes(42, 1000);
        assert_eq!(whole, deterministic_bytes(42, 1000));
        assert_ne!(whole, deterministic_bytes(43, 1000));
        for (start, len) in [(0, 0), (0, 3), (3, 5), (5, 16), (7, 1), (13, 987), (999, 1)] {
            let mut buf = vec![0_u8; len];
            fill_deterministic(42, start as u64, &mut buf);
            assert_eq!(buf, whole[start..start + len], "start {start} len {len}");
        }
        assert_eq!(
            deterministic_sha256_hex(7, 200_000),
            crate::signing::sha256_hex(&deterministic_bytes(7, 200_000))
        );
    }
}
