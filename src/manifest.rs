//! The manifest: the JSON document that proves what was archived for one decided attempt.
//!
//! Written last, only after every chosen file is stored. Schema version 1 is documented in
//! README.md ("Manifest schema"). It carries the decision's non-personal fields, the media
//! endpoint used, each stored file with its SHA-256, and each skipped item with its reason.
//! No person, document or IP data ever reaches it: [`Decision`] has no field for them.
//! No I/O here.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::select::Skipped;
use crate::veriff::media::MediaKind;
use crate::webhook::Decision;

/// The manifest schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The manifest document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Veriff session id.
    pub session_id: String,
    /// Decided attempt id.
    pub attempt_id: String,
    /// The decision being archived.
    pub decision: Decision,
    /// The metadata endpoint that listed the media.
    pub media_source: SourceRecord,
    /// When the archive was completed (RFC 3339, UTC).
    pub archived_at: String,
    /// Which build wrote it.
    pub archiver: ArchiverRecord,
    /// Every stored file.
    pub files: Vec<FileRecord>,
    /// Every listed item that was not stored, with the reason.
    pub skipped: Vec<Skipped>,
}

/// The endpoint that listed the media.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRecord {
    /// `session` or `attempt`.
    pub kind: String,
    /// The request made, e.g. `GET /v1/sessions/<id>/media`.
    pub endpoint: String,
}

/// The archiver build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiverRecord {
    /// Crate name.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// One stored file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    /// Full S3 key.
    pub key: String,
    /// Veriff media id.
    pub media_id: String,
    /// `image`, `video` or `nfc`.
    pub kind: MediaKind,
    /// Media context.
    pub context: String,
    /// Mimetype as Veriff listed it.
    pub mimetype: Option<String>,
    /// Content-Type stored on the object.
    pub content_type: String,
    /// Bytes stored.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes stored.
    pub sha256: String,
}

impl Manifest {
    /// Builds the manifest of a completed archive.
    pub fn new(
        decision: &Decision,
        media_source: SourceRecord,
        files: Vec<FileRecord>,
        skipped: Vec<Skipped>,
        archived_at: SystemTime,
    ) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            session_id: decision.session_id.clone(),
            attempt_id: decision.attempt_id.clone(),
            decision: decision.clone(),
            media_source,
            archived_at: humantime::format_rfc3339_millis(archived_at).to_string(),
            archiver: ArchiverRecord {
                name: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            files,
            skipped,
        }
    }

    /// Whether this manifest already archives exactly `decision` (a redelivery).
    pub fn records(&self, decision: &Decision) -> bool {
        let d = &self.decision;
        self.session_id == decision.session_id
            && self.attempt_id == decision.attempt_id
            && d.status == decision.status
            && d.code == decision.code
            && d.reason == decision.reason
            && d.reason_code == decision.reason_code
            && d.decision_time == decision.decision_time
            && d.vendor_data == decision.vendor_data
            && d.end_user_id == decision.end_user_id
    }

    /// Whether this manifest's decision is strictly newer than `decision`, judged by
    /// `decisionTime`. Unknown or unparsable times are never "newer": the incoming
    /// decision then replaces the manifest.
    pub fn supersedes(&self, decision: &Decision) -> bool {
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        };
        match (
            parse(&self.decision.decision_time),
            parse(&decision.decision_time),
        ) {
            (Some(ours), Some(theirs)) => ours > theirs,
            _ => false,
        }
    }

    /// Serialises the manifest (pretty, with a trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("manifest serialises");
        out.push(b'\n');
        out
    }

    /// Total bytes of the stored files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::SkipReason;
    use std::time::{Duration, UNIX_EPOCH};

    fn decision(time: &str) -> Decision {
        Decision {
            session_id: "s1".into(),
            attempt_id: "a1".into(),
            status: "approved".into(),
            code: Some(9001),
            reason: None,
            reason_code: Some(serde_json::json!(102)),
            decision_time: Some(time.into()),
            vendor_data: Some("cust-1".into()),
            end_user_id: None,
        }
    }

    fn manifest(d: &Decision) -> Manifest {
        Manifest::new(
            d,
            SourceRecord {
                kind: "session".into(),
                endpoint: "GET /v1/sessions/s1/media".into(),
            },
            vec![FileRecord {
                key: "s1/a1/face.jpg".into(),
                media_id: "m1".into(),
                kind: MediaKind::Image,
                context: "face".into(),
                mimetype: Some("image/jpeg".into()),
                content_type: "image/jpeg".into(),
                size: 3,
                sha256: "ab".repeat(32),
            }],
            vec![Skipped {
                kind: MediaKind::Image,
                media_id: Some("m2".into()),
                context: Some("face".into()),
                reason: SkipReason::LowerRanked,
            }],
            UNIX_EPOCH + Duration::from_millis(1_741_083_667_412),
        )
    }

    #[test]
    fn schema_v1_field_names() {
        let m = manifest(&decision("2025-03-04T10:21:07.412Z"));
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["schemaVersion"], 1);
        assert_eq!(v["sessionId"], "s1");
        assert_eq!(v["attemptId"], "a1");
        assert_eq!(v["archivedAt"], "2025-03-04T10:21:07.412Z");
        assert_eq!(v["decision"]["status"], "approved");
        assert_eq!(v["decision"]["reasonCode"], 102);
        assert_eq!(v["decision"]["decisionTime"], "2025-03-04T10:21:07.412Z");
        assert_eq!(v["decision"]["vendorData"], "cust-1");
        assert!(v["decision"].get("sessionId").is_none());
        assert_eq!(v["mediaSource"]["kind"], "session");
        assert_eq!(v["files"][0]["kind"], "image");
        assert_eq!(v["files"][0]["mediaId"], "m1");
        assert_eq!(v["skipped"][0]["reason"], "lower_ranked");
        assert_eq!(m.total_bytes(), 3);
    }

    #[test]
    fn round_trip_keeps_the_decision_fingerprint() {
        let d = decision("2025-03-04T10:21:07.412Z");
        let mut back: Manifest = serde_json::from_slice(&manifest(&d).to_bytes()).unwrap();
        assert!(back.records(&d));
        let mut later = d.clone();
        later.decision_time = Some("2025-03-05T10:21:07.412123Z".into());
        assert!(!back.records(&later));
        assert!(!back.supersedes(&later));
        back.decision.decision_time = later.decision_time.clone();
        assert!(back.supersedes(&d));
        let mut garbled = d.clone();
        garbled.decision_time = Some("yesterday".into());
        assert!(!back.supersedes(&garbled));
    }
}
