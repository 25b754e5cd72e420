//! The domain's words, shared by every layer: [`SafeId`] (an id that may stand in a URL path
//! or an S3 key, built only by validation), [`Decision`] and its [`DecisionRecord`],
//! [`DecisionStatus`], [`WebhookKind`] and [`Secret`].
//!
//! A leaf: this module imports nothing of the crate, so every other module may use it
//! without tying a knot. No I/O, no logging.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest id or context accepted in a key or URL path.
pub const MAX_SEGMENT_LEN: usize = 128;

/// Whether `s` may be used as one path segment of a key or URL: 1-128 ASCII letters,
/// digits, `-` or `_`, starting with a letter or digit. This deliberately accepts Veriff's
/// documented ids that are not valid hex UUIDs, and rejects `.`, `/`, `%`, control and
/// non-ASCII characters outright.
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An id (session, attempt, media) or context that is a safe path segment
/// ([`is_safe_segment`]). The only way to make one is [`SafeId::parse`] (or deserializing,
/// which validates the same way), so a `SafeId` in a URL or a key carries that guarantee.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SafeId(String);

/// A value refused as a [`SafeId`]. Never shows the value (it came from the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a safe identifier (1-128 of A-Z a-z 0-9 - _, starting with a letter or digit)")]
pub struct UnsafeId;

impl SafeId {
    /// Validates `value` as a safe path segment.
    pub fn parse(value: impl Into<String>) -> Result<SafeId, UnsafeId> {
        let value = value.into();
        if is_safe_segment(&value) {
            Ok(SafeId(value))
        } else {
            Err(UnsafeId)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SafeId {
    type Error = UnsafeId;
    fn try_from(value: String) -> Result<SafeId, UnsafeId> {
        SafeId::parse(value)
    }
}

impl TryFrom<&str> for SafeId {
    type Error = UnsafeId;
    fn try_from(value: &str) -> Result<SafeId, UnsafeId> {
        SafeId::parse(value)
    }
}

impl From<SafeId> for String {
    fn from(id: SafeId) -> String {
        id.0
    }
}

impl std::ops::Deref for SafeId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SafeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SafeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for SafeId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SafeId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for SafeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SafeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A secret string whose `Debug` output never shows its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret's bytes, for keying an HMAC or comparing in constant time.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
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

/// Which of Veriff's webhooks decided a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// The decision webhook (`verification.status`): Veriff's Plus and Premium plans, and
    /// every manifest written before schema v3.
    #[default]
    Decision,
    /// The Full Auto webhook (`eventType: "fullauto"`, `data.verification.decision`): the
    /// Self-Serve Essential plan, which sends no decision webhook.
    #[serde(rename = "fullauto")]
    FullAuto,
}

impl WebhookKind {
    /// The name used in manifests, queue messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Decision => "decision",
            WebhookKind::FullAuto => "fullauto",
        }
    }
}

/// The recorded, non-personal fields of a decision: what a manifest's `decision` object and
/// a queue message hold. Two deliveries of one decision have equal records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Which webhook decided (schema v3; absent in older manifests: the decision webhook).
    #[serde(default)]
    pub webhook: WebhookKind,
    /// `verification.status` (Full Auto: `data.verification.decision`) as sent.
    pub status: String,
    /// `verification.code`, when a number (or a numeric string). Full Auto sends none.
    pub code: Option<i64>,
    /// `verification.reason`. Full Auto sends none.
    pub reason: Option<String>,
    /// `verification.reasonCode`: documented as a string, sent as a number; kept as sent.
    /// Full Auto sends none.
    pub reason_code: Option<Value>,
    /// `verification.decisionTime` (Full Auto: `time`), as sent (precision varies).
    pub decision_time: Option<String>,
    /// `verification.vendorData` (Full Auto: `vendorData`): the integrator's own reference.
    pub vendor_data: Option<String>,
    /// `verification.endUserId` (Full Auto: `endUserId`).
    pub end_user_id: Option<String>,
    /// Full Auto's `data.verification.decisionScore` (0 to 1: how likely the session is
    /// genuine), when it is a number. Not personal data. Absent for decision webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_score: Option<f64>,
}

impl DecisionRecord {
    /// A record of `status` from `webhook`, every other field absent.
    pub fn new(webhook: WebhookKind, status: impl Into<String>) -> DecisionRecord {
        DecisionRecord {
            webhook,
            status: status.into(),
            ..DecisionRecord::default()
        }
    }
}

/// A decision of one session (a decision webhook or a Full Auto result): its ids and its
/// recorded fields. Never holds person, document or IP data: there is no field for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The session (`verification.id`; Full Auto: `sessionId`).
    pub session_id: SafeId,
    /// The decided attempt (`verification.attemptId`; Full Auto: `attemptId`). Some
    /// payloads carry none: the archive then resolves the session's newest attempt.
    pub attempt_id: Option<SafeId>,
    /// What the manifest records of it.
    pub record: DecisionRecord,
}

impl Decision {
    /// A decision of `session_id`, `attempt_id`, with `record`.
    pub fn new(session_id: SafeId, attempt_id: Option<SafeId>, record: DecisionRecord) -> Self {
        Decision {
            session_id,
            attempt_id,
            record,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safe_id_reads_compares_and_looks_up_as_its_text() {
        let id = SafeId::parse("abc-1").unwrap();
        let as_ref: &str = id.as_ref();
        assert_eq!(as_ref, "abc-1");
        let borrowed: &str = std::borrow::Borrow::borrow(&id);
        assert_eq!(borrowed, "abc-1");
        assert!(id == *"abc-1");
        assert!(id != *"abc-2");
        assert!(id == "abc-1");
        assert!(id != "abc-2");
        let set: std::collections::HashSet<SafeId> = [id.clone()].into();
        assert!(set.contains("abc-1"));
        assert!(!set.contains("abc-2"));
    }

    #[test]
    fn safe_segments_accept_documented_ids_and_reject_escapes() {
        for ok in [
            "f04bdb47-d3be-4b28-b028-a652feb060b5",
            "e7ab18d1-5545-5e47-af7b-e23gb6247f80",
            "document-front-pre",
            "selfid_video",
            &"a".repeat(128),
        ] {
            assert!(is_safe_segment(ok), "{ok}");
            assert_eq!(SafeId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a%2Fb",
            "a\\b",
            "a\0b",
            "a\nb",
            "-lead",
            "_lead",
            "é",
            "a.b",
            " a",
            &"a".repeat(129),
        ] {
            assert!(!is_safe_segment(bad), "{bad:?}");
            assert_eq!(SafeId::parse(bad), Err(UnsafeId), "{bad:?}");
        }
    }

    #[test]
    fn a_safe_id_deserializes_only_when_safe_and_serializes_as_a_string() {
        let id: SafeId = serde_json::from_str(r#""abc-1""#).unwrap();
        assert_eq!(id, "abc-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""abc-1""#);
        for bad in [r#""../x""#, r#""""#, "5", "null"] {
            assert!(serde_json::from_str::<SafeId>(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{id} {id:?}"), "abc-1 \"abc-1\"");
        assert!(!UnsafeId.to_string().contains("../x"));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2");
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
    fn a_record_names_its_webhook_and_keeps_absent_fields_absent() {
        let record = DecisionRecord::new(WebhookKind::FullAuto, "approved");
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["webhook"], "fullauto");
        assert!(json.get("decisionScore").is_none());
        assert!(json["code"].is_null());
        let back: DecisionRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
        // Records written before schema v3 have no `webhook`: the decision webhook.
        let old: DecisionRecord = serde_json::from_str(
            r#"{"status":"approved","code":9001,"reason":null,"reasonCode":null,"decisionTime":null,"vendorData":null,"endUserId":null}"#,
        )
        .unwrap();
        assert_eq!(old.webhook, WebhookKind::Decision);
        assert_eq!(WebhookKind::FullAuto.as_str(), "fullauto");
        assert_eq!(WebhookKind::Decision.as_str(), "decision");
    }
}
