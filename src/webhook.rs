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

use crate::config::Secret;
use crate::event::HttpRequest;
use crate::layout::is_safe_segment;

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

/// The decision statuses Veriff documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DecisionStatus {
    /// `approved`
    Approved,
    /// `declined`
    Declined,
    /// `resubmission_requested`
    ResubmissionRequested,
    /// `review`
    Review,
    /// `expired`
    Expired,
    /// `abandoned`
    Abandoned,
}

impl DecisionStatus {
    /// Parses Veriff's wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "approved" => Self::Approved,
            "declined" => Self::Declined,
            "resubmission_requested" => Self::ResubmissionRequested,
            "review" => Self::Review,
            "expired" => Self::Expired,
            "abandoned" => Self::Abandoned,
            _ => return None,
        })
    }
    /// Veriff's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Declined => "declined",
            Self::ResubmissionRequested => "resubmission_requested",
            Self::Review => "review",
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
        }
    }
}

/// The non-personal fields of a decision webhook that the archive records.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Session id (`verification.id`), validated as a safe path segment.
    #[serde(skip)]
    pub session_id: String,
    /// Decided attempt (`verification.attemptId`), validated as a safe path segment.
    /// Some payloads carry none: the archive then resolves the session's newest attempt.
    #[serde(skip)]
    pub attempt_id: Option<String>,
    /// `verification.status` as sent.
    pub status: String,
    /// `verification.code`, when a number (or a numeric string).
    pub code: Option<i64>,
    /// `verification.reason`.
    pub reason: Option<String>,
    /// `verification.reasonCode`: documented as a string, sent as a number; kept as sent.
    pub reason_code: Option<Value>,
    /// `verification.decisionTime`, as sent (precision varies).
    pub decision_time: Option<String>,
    /// `verification.vendorData`: the integrator's own reference.
    pub vendor_data: Option<String>,
    /// `verification.endUserId`.
    pub end_user_id: Option<String>,
}

/// What an authenticated webhook turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Webhook {
    /// A decision to archive (subject to the configured statuses).
    Decision(Decision),
    /// Any other webhook: acknowledged and ignored. The `&str` names its kind.
    Other(&'static str),
}

/// Why an authenticated decision cannot be archived (a permanent, 4xx problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// `verification.id` is missing, not a string, or not a safe path segment.
    #[error("verification.id is missing or not a safe identifier")]
    BadSessionId,
    /// `verification.attemptId` is present but not a string, or not a safe path segment.
    #[error("verification.attemptId is not a safe identifier")]
    BadAttemptId,
}

/// Classifies an authenticated body. Non-JSON and non-decision bodies are [`Webhook::Other`].
pub fn classify(body: &[u8]) -> Result<Webhook, PayloadError> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Ok(Webhook::Other("not_json"));
    };
    let verification = doc.get("verification").filter(|v| v.is_object());
    let Some(status) = verification
        .and_then(|v| v.get("status"))
        .and_then(Value::as_str)
    else {
        return Ok(Webhook::Other(other_kind(&doc)));
    };
    let v = verification.expect("checked above");
    let text = |field: &str| v.get(field).and_then(Value::as_str).map(str::to_string);
    let session_id = text("id")
        .filter(|id| is_safe_segment(id))
        .ok_or(PayloadError::BadSessionId)?;
    // Only `verification.id` names the session, and only `verification.attemptId` the
    // attempt: other ids in the payload (riskLabels[].sessionIds,
    // biometricAuthentication.matchedSessionId) belong to other sessions.
    let attempt_id = match v.get("attemptId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if is_safe_segment(id) => Some(id.clone()),
        Some(_) => return Err(PayloadError::BadAttemptId),
    };
    let code = match v.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let reason_code = v
        .get("reasonCode")
        .filter(|c| c.is_number() || c.is_string())
        .cloned();
    Ok(Webhook::Decision(Decision {
        session_id,
        attempt_id,
        status: status.to_string(),
        code,
        reason: text("reason"),
        reason_code,
        decision_time: text("decisionTime"),
        vendor_data: text("vendorData"),
        end_user_id: text("endUserId"),
    }))
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
        "unrecognised"
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
        assert_eq!(d.status, "approved");
        assert_eq!(d.code, Some(9001));
        assert_eq!(d.reason_code, Some(serde_json::json!(102)));
        assert_eq!(d.vendor_data.as_deref(), Some("cust-8d1c2f"));
        assert_eq!(d.end_user_id, None);
        let printed = format!("{d:?}{}", serde_json::to_string(&d).unwrap());
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
                r#"{"eventType":"fullauto","data":{"verification":{"status":"approved"}}}"#,
                "event_type",
            ),
            (r#"{"verification":{"status":7}}"#, "unrecognised"),
            (r#"{"verification":"approved"}"#, "unrecognised"),
            ("[1,2]", "unrecognised"),
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
            (r#"{"action":"started"}"#, "unrecognised"),
            (r#"{"feature":"selfid","code":7001}"#, "unrecognised"),
            (r#"{"matchStatus":"no_match"}"#, "watchlist_screening"),
            (r#"{"checkType":"initial_result"}"#, "watchlist_screening"),
            ("{}", "unrecognised"),
        ] {
            assert_eq!(
                classify(body.as_bytes()).unwrap(),
                Webhook::Other(kind),
                "{body}"
            );
        }
    }

    #[test]
    fn decision_statuses_round_trip_and_unknown_ones_are_none() {
        for name in [
            "approved",
            "declined",
            "resubmission_requested",
            "review",
            "expired",
            "abandoned",
        ] {
            let status = DecisionStatus::parse(name).expect(name);
            assert_eq!(status.as_str(), name);
        }
        assert_eq!(DecisionStatus::parse("approved_with_conditions"), None);
        assert_eq!(DecisionStatus::parse("Approved"), None);
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
            assert_eq!(d.code, expected, "{body}");
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
                Err(PayloadError::BadAttemptId),
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
}
