//! Webhook authentication over raw bytes, then classification: decision or anything else.
//!
//! [`authenticate`] runs before any parsing: it checks the optional API-key header and the
//! HMAC-SHA256 signature of the exact body bytes against every configured shared secret,
//! in constant time (`hmac`'s `verify_slice`). [`classify`] then decides whether the body
//! is a decision (a top-level `verification` object with a string `status`) and extracts
//! only the decision fields the archive needs: never the person, document or IP data.
//! No I/O, no logging here.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::domain::{Decision, DecisionRecord, SafeId, Secret, WebhookKind};
use crate::event::HttpRequest;

type HmacSha256 = Hmac<Sha256>;

/// Header names carrying the body signature, oldest first.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-hmac-signature", "vrf-hmac-signature"];
/// Header names carrying the integration's API key.
pub const API_KEY_HEADERS: [&str; 2] = ["x-auth-client", "vrf-auth-client"];

/// Why a webhook was not authenticated. Displays without revealing any header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither signature header is present.
    #[error("no x-hmac-signature or vrf-hmac-signature header")]
    MissingSignature,
    /// A signature header is not the hex of a 32-byte HMAC-SHA256.
    #[error("signature header is not a hex-encoded SHA-256 HMAC")]
    MalformedSignature,
    /// No configured secret produces the given signature for this body.
    #[error("signature does not match the body")]
    SignatureMismatch,
    /// An API-key header is present and differs from the configured key.
    #[error("API key header does not match the configured key")]
    ApiKeyMismatch,
}

/// Checks the API key (when sent) and the body signature against all `secrets`.
pub fn authenticate(
    req: &HttpRequest,
    api_key: &Secret,
    secrets: &[Secret],
) -> Result<(), AuthError> {
    authenticate_signed(req, api_key, secrets).map(|_| ())
}

/// The signature that authenticated a webhook: kept with the stored body, so that anyone
/// with the shared secret can check the body's origin later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The header that carried it (lower case).
    pub header: &'static str,
    /// Its value, lowercase hex.
    pub hex: String,
}

/// Like [`authenticate`], returning the signature that matched.
pub fn authenticate_signed(
    req: &HttpRequest,
    api_key: &Secret,
    secrets: &[Secret],
) -> Result<VerifiedSignature, AuthError> {
    for name in API_KEY_HEADERS {
        for value in req.header_values(name) {
            if !constant_time_eq(value.trim().as_bytes(), api_key.expose().as_bytes()) {
                return Err(AuthError::ApiKeyMismatch);
            }
        }
    }
    let mut seen = false;
    let mut malformed = false;
    for name in SIGNATURE_HEADERS {
        for value in req.header_values(name) {
            seen = true;
            match decode_signature(value) {
                Some(sig)
                    if secrets
                        .iter()
                        .any(|s| hmac_matches(s.expose().as_bytes(), &req.body, &sig)) =>
                {
                    return Ok(VerifiedSignature {
                        header: name,
                        hex: hex::encode(sig),
                    });
                }
                Some(_) => {}
                None => malformed = true,
            }
        }
    }
    Err(match (seen, malformed) {
        (false, _) => AuthError::MissingSignature,
        (true, true) => AuthError::MalformedSignature,
        (true, false) => AuthError::SignatureMismatch,
    })
}

/// Decodes a hex signature of either case into its 32 bytes.
fn decode_signature(value: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(value.trim(), &mut out).ok()?;
    Some(out)
}

/// Constant-time check that `signature` is HMAC-SHA256(`secret`, `data`).
pub fn hmac_matches(secret: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.verify_slice(signature).is_ok()
}

/// Lowercase hex HMAC-SHA256 of `data` keyed with `secret` (how Veriff signs).
pub fn hmac_hex(secret: &[u8], data: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Byte-slice equality whose time does not depend on where the slices differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len_differs = a.len() != b.len();
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    !len_differs & (diff == 0)
}

/// What an authenticated webhook turned out to be.
// One value per request, moved once into the archive: boxing the decision would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Webhook {
    /// A decision to archive (subject to the configured statuses): a decision webhook or a
    /// Full Auto result ([`Decision::webhook`] says which).
    Decision(Decision),
    /// Any other webhook: acknowledged and ignored. The `&str` names its kind.
    Other(&'static str),
}

/// Why an authenticated decision cannot be archived (a permanent, 4xx problem). Each names
/// the field at fault as the webhook kind spells it, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The session id (`verification.id`, or Full Auto's `sessionId`) is missing, not a
    /// string, or not a safe path segment.
    #[error("{0} is missing or not a safe identifier")]
    BadSessionId(&'static str),
    /// The attempt id (`verification.attemptId`, or Full Auto's `attemptId`) is present but
    /// not a string, or not a safe path segment.
    #[error("{0} is not a safe identifier")]
    BadAttemptId(&'static str),
    /// A Full Auto result without a string `data.verification.decision`.
    #[error("data.verification.decision is missing or not a string")]
    BadFullAutoDecision,
    /// A body that is both a decision webhook (a top-level `verification` object) and a
    /// Full Auto result (`eventType: "fullauto"`): which session it decides is ambiguous.
    #[error(
        "the body is both a decision webhook (verification) and a Full Auto result (eventType fullauto)"
    )]
    AmbiguousKind,
}

/// The `eventType` of a Full Auto result.
pub const FULL_AUTO_EVENT_TYPE: &str = "fullauto";

/// Classifies an authenticated body. Non-JSON and non-decision bodies are [`Webhook::Other`].
///
/// A decision webhook is a body whose top-level `verification` object has a string
/// `status`; a Full Auto result is a body with `eventType: "fullauto"`. A body that claims
/// to be both is refused ([`PayloadError::AmbiguousKind`]).
pub fn classify(body: &[u8]) -> Result<Webhook, PayloadError> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Ok(Webhook::Other("not_json"));
    };
    let verification = doc.get("verification").filter(|v| v.is_object());
    let full_auto = doc.get("eventType").and_then(Value::as_str) == Some(FULL_AUTO_EVENT_TYPE);
    match (verification, full_auto) {
        (Some(_), true) => Err(PayloadError::AmbiguousKind),
        (None, true) => full_auto_decision(&doc).map(Webhook::Decision),
        (Some(v), false) => match v.get("status").and_then(Value::as_str) {
            Some(status) => decision_webhook(v, status).map(Webhook::Decision),
            None => Ok(Webhook::Other(other_kind(&doc))),
        },
        (None, false) => Ok(Webhook::Other(other_kind(&doc))),
    }
}

/// The id at `field` of `object`: absent or `null` is `None`; a safe segment is kept; any
/// other value is `Err(())`.
fn optional_id(object: &Value, field: &str) -> Result<Option<SafeId>, ()> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => SafeId::parse(id.as_str()).map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// The id at `field` of `object`, which must be there and safe.
fn required_id(object: &Value, field: &'static str) -> Result<SafeId, PayloadError> {
    object
        .get(field)
        .and_then(Value::as_str)
        .and_then(|id| SafeId::parse(id).ok())
        .ok_or(PayloadError::BadSessionId(field))
}

/// A decision webhook's recorded fields, from its `verification` object.
fn decision_webhook(v: &Value, status: &str) -> Result<Decision, PayloadError> {
    let text = |field: &str| v.get(field).and_then(Value::as_str).map(str::to_string);
    let session_id =
        required_id(v, "id").map_err(|_| PayloadError::BadSessionId("verification.id"))?;
    // Only `verification.id` names the session, and only `verification.attemptId` the
    // attempt: other ids in the payload (riskLabels[].sessionIds,
    // biometricAuthentication.matchedSessionId) belong to other sessions.
    let attempt_id = optional_id(v, "attemptId")
        .map_err(|()| PayloadError::BadAttemptId("verification.attemptId"))?;
    let code = match v.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let reason_code = v
        .get("reasonCode")
        .filter(|c| c.is_number() || c.is_string())
        .cloned();
    let record = DecisionRecord {
        webhook: WebhookKind::Decision,
        status: status.to_string(),
        code,
        reason: text("reason"),
        reason_code,
        decision_time: text("decisionTime"),
        vendor_data: text("vendorData"),
        end_user_id: text("endUserId"),
        decision_score: None,
    };
    Ok(Decision::new(session_id, attempt_id, record))
}

/// A Full Auto result's recorded fields: the ids, times and references at the top level,
/// the decision and its score in `data.verification`. The extractions (`person`,
/// `document`) and `insights` beside them are personal data and are never read.
fn full_auto_decision(doc: &Value) -> Result<Decision, PayloadError> {
    let text = |field: &str| doc.get(field).and_then(Value::as_str).map(str::to_string);
    let session_id = required_id(doc, "sessionId")?;
    let attempt_id =
        optional_id(doc, "attemptId").map_err(|()| PayloadError::BadAttemptId("attemptId"))?;
    let verification = doc
        .get("data")
        .and_then(|d| d.get("verification"))
        .filter(|v| v.is_object());
    let status = verification
        .and_then(|v| v.get("decision"))
        .and_then(Value::as_str)
        .ok_or(PayloadError::BadFullAutoDecision)?;
    let record = DecisionRecord {
        webhook: WebhookKind::FullAuto,
        status: status.to_string(),
        decision_time: text("time"),
        vendor_data: text("vendorData"),
        end_user_id: text("endUserId"),
        decision_score: verification
            .and_then(|v| v.get("decisionScore"))
            .and_then(Value::as_f64),
        ..DecisionRecord::default()
    };
    Ok(Decision::new(session_id, attempt_id, record))
}

fn other_kind(doc: &Value) -> &'static str {
    let has = |k: &str| doc.get(k).is_some();
    if has("action") && (has("feature") || has("code")) {
        "event"
    } else if has("checkType") || has("matchStatus") {
        "watchlist_screening"
    } else if has("eventType") {
        "event_type"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "abcdef12-abcd-abcd-abcd-abcdef012345";
    const VECTOR_BODY: &str = r#"{"verification":{"callback":"https://veriff.com","person":{"firstName":"John","lastName":"Smith"},"document":{"type":"PASSPORT","country":"EE"},"vendorData":"unique id of the end-user","timestamp":"2016-05-19T08:30:25.597Z"}}"#;
    const VECTOR_HMAC: &str = "0dcab73ddd20062616d104231c7439657546a5c24e4691977da93bb854c31e25";

    fn req(headers: &[(&str, &str)], body: &str) -> HttpRequest {
        HttpRequest {
            method: Some("POST".into()),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn key() -> Secret {
        Secret::new("api-key")
    }

    #[test]
    fn contract_test_vector() {
        assert_eq!(
            hmac_hex(VECTOR_SECRET.as_bytes(), VECTOR_BODY.as_bytes()),
            VECTOR_HMAC
        );
        let secrets = [Secret::new(VECTOR_SECRET)];
        let ok = req(&[("X-HMAC-SIGNATURE", VECTOR_HMAC)], VECTOR_BODY);
        assert_eq!(authenticate(&ok, &key(), &secrets), Ok(()));
    }

    #[test]
    fn upper_case_hex_and_vrf_header_are_accepted() {
        let secrets = [Secret::new(VECTOR_SECRET)];
        let upper = VECTOR_HMAC.to_ascii_uppercase();
        for name in [
            "x-hmac-signature",
            "VRF-HMAC-SIGNATURE",
            "Vrf-Hmac-Signature",
        ] {
            let r = req(&[(name, &upper)], VECTOR_BODY);
            assert_eq!(authenticate(&r, &key(), &secrets), Ok(()), "{name}");
        }
    }

    #[test]
    fn any_configured_secret_authenticates_during_rotation() {
        let secrets = [Secret::new("new-secret"), Secret::new(VECTOR_SECRET)];
        let r = req(&[("x-hmac-signature", VECTOR_HMAC)], VECTOR_BODY);
        assert_eq!(authenticate(&r, &key(), &secrets), Ok(()));
        let only_new = [Secret::new("new-secret")];
        assert_eq!(
            authenticate(&r, &key(), &only_new),
            Err(AuthError::SignatureMismatch)
        );
    }

    #[test]
    fn wrong_missing_and_malformed_signatures_are_rejected() {
        let secrets = [Secret::new(VECTOR_SECRET)];
        // Right length, one bit off.
        let mut wrong = VECTOR_HMAC.to_string();
        wrong.replace_range(63..64, "4");
        assert_eq!(
            authenticate(
                &req(&[("x-hmac-signature", &wrong)], VECTOR_BODY),
                &key(),
                &secrets
            ),
            Err(AuthError::SignatureMismatch)
        );
        assert_eq!(
            authenticate(&req(&[], VECTOR_BODY), &key(), &secrets),
            Err(AuthError::MissingSignature)
        );
        for bad in ["", "zz", &VECTOR_HMAC[..62], &format!("{VECTOR_HMAC}00")] {
            assert_eq!(
                authenticate(
                    &req(&[("x-hmac-signature", bad)], VECTOR_BODY),
                    &key(),
                    &secrets
                ),
                Err(AuthError::MalformedSignature),
                "{bad:?}"
            );
        }
        // The body is signed, not a re-serialisation of it.
        let reformatted = VECTOR_BODY.replace(':', ": ");
        assert_eq!(
            authenticate(
                &req(&[("x-hmac-signature", VECTOR_HMAC)], &reformatted),
                &key(),
                &secrets
            ),
            Err(AuthError::SignatureMismatch)
        );
        // The legacy plain-SHA-256 header is not authentication.
        assert_eq!(
            authenticate(
                &req(&[("x-signature", VECTOR_HMAC)], VECTOR_BODY),
                &key(),
                &secrets
            ),
            Err(AuthError::MissingSignature)
        );
    }

    #[test]
    fn api_key_header_must_match_when_present() {
        let secrets = [Secret::new(VECTOR_SECRET)];
        let good = req(
            &[
                ("x-hmac-signature", VECTOR_HMAC),
                ("X-AUTH-CLIENT", "api-key"),
            ],
            VECTOR_BODY,
        );
        assert_eq!(authenticate(&good, &key(), &secrets), Ok(()));
        let bad = req(
            &[
                ("x-hmac-signature", VECTOR_HMAC),
                ("vrf-auth-client", "other"),
            ],
            VECTOR_BODY,
        );
        assert_eq!(
            authenticate(&bad, &key(), &secrets),
            Err(AuthError::ApiKeyMismatch)
        );
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"abcd", b"abc"), "a longer left side");
        // Differences that cancel out when accumulated with XOR instead of OR.
        assert!(!constant_time_eq(b"ab", b"ba"));
    }

    const DECISION: &str = r#"{"status":"success","verification":{"id":"f04bdb47-d3be-4b28-b028-a652feb060b5","attemptId":"e30122d1-740b-4764-853f-470374a7abf4","vendorData":"cust-8d1c2f","endUserId":null,"status":"approved","code":9001,"reason":null,"reasonCode":102,"decisionTime":"2025-03-04T10:21:07.412Z","person":{"firstName":"SARAH"},"document":{"number":"MORGA753116SM9IJ"}},"technicalData":{"ip":"186.153.67.122"}}"#;

    #[test]
    fn decisions_keep_only_non_personal_fields() {
        let Webhook::Decision(d) = classify(DECISION.as_bytes()).unwrap() else {
            panic!("not a decision")
        };
        assert_eq!(d.session_id, "f04bdb47-d3be-4b28-b028-a652feb060b5");
        assert_eq!(
            d.attempt_id.as_deref(),
            Some("e30122d1-740b-4764-853f-470374a7abf4")
        );
        assert_eq!(d.record.status, "approved");
        assert_eq!(d.record.code, Some(9001));
        assert_eq!(d.record.reason_code, Some(serde_json::json!(102)));
        assert_eq!(d.record.vendor_data.as_deref(), Some("cust-8d1c2f"));
        assert_eq!(d.record.end_user_id, None);
        let printed = format!("{d:?}{}", serde_json::to_string(&d.record).unwrap());
        for pii in ["SARAH", "MORGA753116SM9IJ", "186.153.67.122"] {
            assert!(!printed.contains(pii));
        }
    }

    #[test]
    fn other_webhooks_are_not_decisions() {
        let cases = [
            (
                r#"{"id":"x","attemptId":"y","feature":"selfid","code":7001,"action":"started"}"#,
                "event",
            ),
            (
                r#"{"checkType":"updated_result","sessionId":"x","matchStatus":"no_match","hits":[]}"#,
                "watchlist_screening",
            ),
            (
                r#"{"eventType":"user_defined_status","data":{"verification":{"status":"x"}}}"#,
                "event_type",
            ),
            (r#"{"verification":{"status":7}}"#, "unknown"),
            (r#"{"verification":"approved"}"#, "unknown"),
            ("[1,2]", "unknown"),
            ("not json", "not_json"),
        ];
        for (body, kind) in cases {
            assert_eq!(
                classify(body.as_bytes()).unwrap(),
                Webhook::Other(kind),
                "{body}"
            );
        }
    }

    #[test]
    fn each_webhook_kind_needs_all_of_its_fields() {
        for (body, kind) in [
            (r#"{"action":"started","code":7001}"#, "event"),
            (r#"{"action":"started"}"#, "unknown"),
            (r#"{"feature":"selfid","code":7001}"#, "unknown"),
            (r#"{"matchStatus":"no_match"}"#, "watchlist_screening"),
            (r#"{"checkType":"initial_result"}"#, "watchlist_screening"),
            ("{}", "unknown"),
        ] {
            assert_eq!(
                classify(body.as_bytes()).unwrap(),
                Webhook::Other(kind),
                "{body}"
            );
        }
    }

    #[test]
    fn a_decision_code_may_be_a_number_or_a_numeric_string() {
        for (code, expected) in [
            ("9102", Some(9102)),
            (r#""9103""#, Some(9103)),
            (r#"" 9104 ""#, Some(9104)),
            (r#""soon""#, None),
            ("null", None),
            ("[9001]", None),
        ] {
            let body =
                format!(r#"{{"verification":{{"id":"abc","status":"declined","code":{code}}}}}"#);
            let Webhook::Decision(d) = classify(body.as_bytes()).unwrap() else {
                panic!("not a decision: {body}")
            };
            assert_eq!(d.record.code, expected, "{body}");
        }
    }

    #[test]
    fn unsafe_ids_are_rejected() {
        for (id, attempt) in [
            ("../x", "a"),
            ("a/b", "a"),
            ("", "a"),
            ("ok", "a%2Fb"),
            ("ok", ".."),
        ] {
            let body = format!(
                r#"{{"verification":{{"id":"{id}","attemptId":"{attempt}","status":"approved"}}}}"#
            );
            assert!(classify(body.as_bytes()).is_err(), "{id} {attempt}");
        }
        for wrong_type in [r#""attemptId":5"#, r#""attemptId":{}"#, r#""attemptId":"""#] {
            let body =
                format!(r#"{{"verification":{{"id":"abc",{wrong_type},"status":"approved"}}}}"#);
            assert_eq!(
                classify(body.as_bytes()),
                Err(PayloadError::BadAttemptId("verification.attemptId")),
                "{body}"
            );
        }
    }

    #[test]
    fn a_decision_without_attempt_id_is_still_a_decision() {
        // As in public client code: no attemptId, and other sessions' ids elsewhere.
        for body in [
            r#"{"verification":{"id":"abc","status":"approved","riskLabels":[{"label":"x","sessionIds":["other1"]}]}}"#,
            r#"{"verification":{"id":"abc","attemptId":null,"status":"declined","biometricAuthentication":{"matchedSessionId":"other2"}}}"#,
        ] {
            let Webhook::Decision(d) = classify(body.as_bytes()).unwrap() else {
                panic!("not a decision: {body}")
            };
            assert_eq!(d.session_id, "abc");
            assert_eq!(d.attempt_id, None);
        }
    }

    #[test]
    fn authentication_reports_the_matching_signature() {
        let secrets = [Secret::new(VECTOR_SECRET)];
        let upper = VECTOR_HMAC.to_ascii_uppercase();
        let r = req(
            &[("x-hmac-signature", "00"), ("vrf-hmac-signature", &upper)],
            VECTOR_BODY,
        );
        assert_eq!(
            authenticate_signed(&r, &key(), &secrets),
            Ok(VerifiedSignature {
                header: "vrf-hmac-signature",
                hex: VECTOR_HMAC.into()
            })
        );
    }

    /// A Full Auto result as Veriff's page documents it, with personal extractions.
    const FULL_AUTO: &str = r#"{"status":"success","eventType":"fullauto","sessionId":"f04bdb47-d3be-4b28-b028-a652feb060b5","attemptId":"e30122d1-740b-4764-853f-470374a7abf4","vendorData":"cust-8d1c2f","endUserId":null,"version":"1.0.0","acceptanceTime":"2025-03-04T10:15:55.000Z","time":"2025-03-04T10:16:30.120Z","data":{"verification":{"decision":"approved","decisionScore":0.97,"person":{"firstName":{"value":"SARAH","confidenceCategory":"high","sources":["VIZ"]},"idNumber":{"value":"38703300123"}},"document":{"number":{"value":"MORGA753116SM9IJ"},"type":{"value":"DRIVERS_LICENSE"}},"insights":[{"label":"documentAccepted","result":"yes","category":"document"}]}}}"#;

    #[test]
    fn a_full_auto_result_is_a_decision_of_its_session_and_attempt() {
        let Webhook::Decision(d) = classify(FULL_AUTO.as_bytes()).unwrap() else {
            panic!("not a decision")
        };
        assert_eq!(d.record.webhook, WebhookKind::FullAuto);
        assert_eq!(d.session_id, "f04bdb47-d3be-4b28-b028-a652feb060b5");
        assert_eq!(
            d.attempt_id.as_deref(),
            Some("e30122d1-740b-4764-853f-470374a7abf4")
        );
        assert_eq!(d.record.status, "approved");
        assert_eq!(
            d.record.decision_time.as_deref(),
            Some("2025-03-04T10:16:30.120Z")
        );
        assert_eq!(d.record.decision_score, Some(0.97));
        assert_eq!(d.record.vendor_data.as_deref(), Some("cust-8d1c2f"));
        assert_eq!(
            (d.record.code, &d.record.reason, &d.record.reason_code),
            (None, &None, &None)
        );
        let printed = format!("{d:?}{}", serde_json::to_string(&d.record).unwrap());
        for pii in [
            "SARAH",
            "MORGA753116SM9IJ",
            "38703300123",
            "DRIVERS_LICENSE",
        ] {
            assert!(!printed.contains(pii), "{pii} in {printed}");
        }
        assert!(printed.contains(r#""webhook":"fullauto""#), "{printed}");
        assert_eq!(d.record.end_user_id, None, "endUserId is null here");
        // The end user's id is kept when sent (it names the customer in the integrator's
        // system, as in the decision webhook).
        let with_user = full_auto_with(|v| v["endUserId"] = "user-42".into());
        let Webhook::Decision(d) = classify(&with_user).unwrap() else {
            panic!("not a decision")
        };
        assert_eq!(d.record.end_user_id.as_deref(), Some("user-42"));
    }

    /// `FULL_AUTO` with `edit` applied to its parsed JSON.
    fn full_auto_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut doc: Value = serde_json::from_str(FULL_AUTO).unwrap();
        edit(&mut doc);
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn hostile_full_auto_bodies_are_refused_naming_the_field() {
        let cases: Vec<(Vec<u8>, PayloadError)> = vec![
            (
                full_auto_with(|d| {
                    d.as_object_mut().unwrap().remove("sessionId");
                }),
                PayloadError::BadSessionId("sessionId"),
            ),
            (
                full_auto_with(|d| d["sessionId"] = "../other".into()),
                PayloadError::BadSessionId("sessionId"),
            ),
            (
                full_auto_with(|d| d["sessionId"] = 7.into()),
                PayloadError::BadSessionId("sessionId"),
            ),
            (
                full_auto_with(|d| d["attemptId"] = "a/b".into()),
                PayloadError::BadAttemptId("attemptId"),
            ),
            (
                full_auto_with(|d| d["attemptId"] = serde_json::json!({})),
                PayloadError::BadAttemptId("attemptId"),
            ),
            (
                full_auto_with(|d| d["data"]["verification"]["decision"] = 1.into()),
                PayloadError::BadFullAutoDecision,
            ),
            (
                full_auto_with(|d| d["data"]["verification"]["decision"] = Value::Null),
                PayloadError::BadFullAutoDecision,
            ),
            (
                full_auto_with(|d| d["data"] = serde_json::json!([])),
                PayloadError::BadFullAutoDecision,
            ),
            (
                full_auto_with(|d| {
                    d["verification"] = serde_json::json!({"id": "x", "status": "approved"})
                }),
                PayloadError::AmbiguousKind,
            ),
            (
                full_auto_with(|d| d["verification"] = serde_json::json!({})),
                PayloadError::AmbiguousKind,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                classify(&body),
                Err(expected.clone()),
                "{}",
                String::from_utf8_lossy(&body)
            );
            let message = expected.to_string();
            for pii in ["SARAH", "other", "MORGA"] {
                assert!(!message.contains(pii), "{message}");
            }
        }
    }

    #[test]
    fn full_auto_fields_may_be_missing_or_of_another_type() {
        let body = full_auto_with(|d| {
            let d = d.as_object_mut().unwrap();
            d.remove("attemptId");
            d.remove("time");
            d.insert("vendorData".into(), 5.into());
            d["data"]["verification"]["decisionScore"] = "high".into();
        });
        let Webhook::Decision(d) = classify(&body).unwrap() else {
            panic!("not a decision")
        };
        assert_eq!(d.attempt_id, None, "resolved as the newest attempt later");
        assert_eq!(d.record.decision_time, None);
        assert_eq!(d.record.vendor_data, None);
        assert_eq!(d.record.decision_score, None);
        assert_eq!(d.record.status, "approved");
        // Only "fullauto" makes an eventType a decision.
        let other = full_auto_with(|d| d["eventType"] = "FullAuto".into());
        assert_eq!(classify(&other), Ok(Webhook::Other("event_type")));
    }

    #[test]
    fn a_decision_webhook_with_another_event_type_stays_a_decision() {
        let body = r#"{"eventType":"user_defined_status","verification":{"id":"abc","status":"approved"}}"#;
        let Webhook::Decision(d) = classify(body.as_bytes()).unwrap() else {
            panic!("not a decision")
        };
        assert_eq!(d.record.webhook, WebhookKind::Decision);
    }
}
