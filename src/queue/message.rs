//! The queue message of one decision: the fields the manifest keeps, never the webhook body.
//!
//! A standard (not FIFO) queue carries it: delivery is at least once, and the consumer is
//! idempotent (a decision maps to one manifest key; a second delivery finds it and downloads
//! nothing). This module does no I/O; a message from the queue is validated as strictly as a
//! webhook: ids must be safe path segments before they reach a URL or an S3 key.

use serde::{Deserialize, Serialize};

use crate::domain::{Decision, DecisionRecord, SafeId};
use crate::manifest::DecisionSource;

/// The `schema` of the messages this build writes and reads.
pub const SCHEMA: &str = "veriff-archiver/decision/v1";

/// Largest message body read (SQS allows 1 MiB; a decision's fields are a few hundred bytes).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// One decision to archive, as sent to the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionMessage {
    /// Always [`SCHEMA`]: a consumer never guesses at a shape it does not know.
    pub schema: String,
    /// The session id.
    pub session_id: SafeId,
    /// The decided attempt, when the decision named it.
    pub attempt_id: Option<SafeId>,
    /// Where the decision came from (the manifest's `decisionSource`).
    pub source: DecisionSource,
    /// The decision's recorded fields (webhook kind, status, code, reason, times,
    /// vendorData, endUserId, Full Auto's score).
    pub decision: DecisionRecord,
}

/// A message as read from the queue, before its ids are validated.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    schema: String,
    session_id: String,
    attempt_id: Option<String>,
    source: DecisionSource,
    decision: DecisionRecord,
}

/// Why a queue message cannot be archived. Never echoes the message's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The record carries no body.
    #[error("the record has no body")]
    Empty,
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("the message exceeds {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// Not JSON of the message's shape.
    #[error("the message is not a decision message: {0}")]
    Malformed(String),
    /// Another schema than [`SCHEMA`].
    #[error("unknown message schema (this build reads {SCHEMA})")]
    UnknownSchema,
    /// The session or attempt id is not a safe identifier.
    #[error("the {0} id is not a safe identifier")]
    UnsafeId(&'static str),
}

impl DecisionMessage {
    /// The message for `decision` from `source`.
    pub fn new(decision: &Decision, source: DecisionSource) -> DecisionMessage {
        DecisionMessage {
            schema: SCHEMA.to_string(),
            session_id: decision.session_id.clone(),
            attempt_id: decision.attempt_id.clone(),
            source,
            decision: decision.record.clone(),
        }
    }

    /// The message body (JSON).
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a decision message always serialises")
    }

    /// Parses and validates a message body.
    pub fn parse(body: Option<&str>) -> Result<DecisionMessage, MessageError> {
        let body = body.ok_or(MessageError::Empty)?;
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge);
        }
        let value: serde_json::Value =
            serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.classify_name()))?;
        if value.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            return Err(MessageError::UnknownSchema);
        }
        let wire: WireMessage = serde_json::from_value(value)
            .map_err(|e| MessageError::Malformed(e.classify_name()))?;
        let session_id =
            SafeId::parse(wire.session_id).map_err(|_| MessageError::UnsafeId("session"))?;
        let attempt_id = wire
            .attempt_id
            .map(SafeId::parse)
            .transpose()
            .map_err(|_| MessageError::UnsafeId("attempt"))?;
        Ok(DecisionMessage {
            schema: wire.schema,
            session_id,
            attempt_id,
            source: wire.source,
            decision: wire.decision,
        })
    }

    /// The decision to archive, with its ids.
    pub fn decision(&self) -> Decision {
        Decision::new(
            self.session_id.clone(),
            self.attempt_id.clone(),
            self.decision.clone(),
        )
    }

    /// A key equal for two messages of the same decision: duplicates within a batch are
    /// archived once.
    pub fn identity(&self) -> String {
        self.to_body()
    }
}

/// The kind of a JSON error, without the excerpt of input some messages carry.
trait ClassifyName {
    fn classify_name(&self) -> String;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> String {
        let kind = match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "wrong shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        format!("{kind} at line {} column {}", self.line(), self.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decision() -> Decision {
        Decision::new(
            SafeId::parse("s-1").unwrap(),
            Some(SafeId::parse("a-1").unwrap()),
            DecisionRecord {
                code: Some(9001),
                reason_code: Some(json!(102)),
                decision_time: Some("2026-11-30T10:00:00.123456Z".into()),
                vendor_data: Some("ref-1".into()),
                ..DecisionRecord::new(crate::domain::WebhookKind::Decision, "approved")
            },
        )
    }

    #[test]
    fn a_message_round_trips_to_the_same_decision() {
        let message = DecisionMessage::new(&decision(), DecisionSource::Webhook);
        let body = message.to_body();
        let parsed = DecisionMessage::parse(Some(&body)).unwrap();
        assert_eq!(parsed, message);
        assert_eq!(parsed.decision(), decision());
        assert_eq!(parsed.source, DecisionSource::Webhook);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["schema"], SCHEMA);
        assert_eq!(value["sessionId"], "s-1");
        assert_eq!(value["attemptId"], "a-1");
        assert_eq!(value["decision"]["status"], "approved");
        // The ids live once, at the top; the decision object is what the manifest keeps.
        assert!(value["decision"].get("sessionId").is_none());
    }

    #[test]
    fn a_message_without_attempt_keeps_it_unresolved() {
        let mut d = decision();
        d.attempt_id = None;
        let body = DecisionMessage::new(&d, DecisionSource::DecisionEndpoint).to_body();
        let parsed = DecisionMessage::parse(Some(&body)).unwrap();
        assert_eq!(parsed.decision().attempt_id, None);
        assert_eq!(parsed.source, DecisionSource::DecisionEndpoint);
    }

    #[test]
    fn unsafe_ids_and_strange_shapes_are_refused() {
        let good = serde_json::to_value(DecisionMessage::new(&decision(), DecisionSource::Webhook))
            .unwrap();
        let with = |pointer: &str, value: serde_json::Value| {
            let mut v = good.clone();
            *v.pointer_mut(pointer).unwrap() = value;
            DecisionMessage::parse(Some(&v.to_string()))
        };
        assert_eq!(
            with("/sessionId", json!("../x")),
            Err(MessageError::UnsafeId("session"))
        );
        assert_eq!(
            with("/sessionId", json!("")),
            Err(MessageError::UnsafeId("session"))
        );
        assert_eq!(
            with("/attemptId", json!("a/b")),
            Err(MessageError::UnsafeId("attempt"))
        );
        assert_eq!(
            with("/schema", json!("v0")),
            Err(MessageError::UnknownSchema)
        );
        assert!(matches!(
            with("/source", json!("ftp")),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            with("/decision", json!({"code": 1})),
            Err(MessageError::Malformed(_))
        ));
        assert_eq!(DecisionMessage::parse(None), Err(MessageError::Empty));
        assert!(matches!(
            DecisionMessage::parse(Some("{\"schema\": \"veriff-archiver/decision/v1\", \"sessionId\": \"SECRET")),
            Err(MessageError::Malformed(m)) if !m.contains("SECRET")
        ));
        let huge = format!("\"{}\"", "x".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(
            DecisionMessage::parse(Some(&huge)),
            Err(MessageError::TooLarge)
        );
    }

    #[test]
    fn the_size_limit_is_256_kib_inclusive_and_errors_name_their_kind_and_place() {
        assert_eq!(MAX_MESSAGE_BYTES, 262_144);
        let at_limit = format!("\"{}\"", "x".repeat(MAX_MESSAGE_BYTES - 2));
        assert_eq!(at_limit.len(), MAX_MESSAGE_BYTES);
        assert_eq!(
            DecisionMessage::parse(Some(&at_limit)),
            Err(MessageError::UnknownSchema),
            "read, not refused for its size"
        );
        assert_eq!(
            DecisionMessage::parse(Some("{\"schema\": 1")),
            Err(MessageError::Malformed(
                "truncated JSON at line 1 column 12".into()
            ))
        );
        assert_eq!(
            DecisionMessage::parse(Some("{\n  nope")),
            Err(MessageError::Malformed(
                "invalid JSON at line 2 column 3".into()
            ))
        );
    }

    #[test]
    fn identity_tells_decisions_apart() {
        let a = DecisionMessage::new(&decision(), DecisionSource::Webhook);
        let mut other = decision();
        other.record.decision_time = Some("2026-11-30T11:00:00Z".into());
        let b = DecisionMessage::new(&other, DecisionSource::Webhook);
        assert_eq!(a.identity(), a.clone().identity());
        assert_ne!(a.identity(), b.identity());
    }
}
