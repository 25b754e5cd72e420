//! The manifest: the JSON document that proves what was archived for one decision.
//!
//! Written last, once per decision, only after every file it lists is stored. Schema v3
//! is documented in docs/evidence-format.md ("Manifest schema") and in `schema/manifest-v3.schema.json`
//! (which validates v2 manifests too): v3 adds which webhook decided (`decision.webhook`,
//! `decision.decisionScore` for Full Auto results) and `mediaUnavailable`.
//! It carries the decision's non-personal fields, the listings read, each stored file with
//! its SHA-256 and S3's own record of it (version id, ETag, checksum), each skipped item
//! with its reason, and, when kept, the SHA-256 of the webhook body. No person, document
//! or IP data ever reaches it: [`DecisionRecord`] has no field for them. Schema v1 and v2
//! manifests still parse: their later fields are absent (a v2 decision came from the
//! decision webhook).
//! No I/O here.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::domain::{Decision, DecisionRecord, SafeId};
use crate::media::MediaKind;
use crate::select::{Listing, Skipped};
pub use crate::stored::{S3Checksum, StoredObject};

/// Why stored bytes are not a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of a manifest's shape (or an id is not a safe path segment).
    #[error("not a manifest ({0})")]
    Json(#[source] serde_json::Error),
    /// A schema version this build does not know.
    #[error("unknown manifest schema version {0}")]
    UnknownVersion(u32),
}

/// The manifest schema version this build writes.
pub const SCHEMA_VERSION: u32 = 3;

/// The manifest document (v3; v1 and v2 documents parse with the later fields absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Schema version: 3 when written by this build, 1 or 2 for older archives.
    pub schema_version: u32,
    /// Veriff session id.
    pub session_id: SafeId,
    /// Decided attempt id.
    pub attempt_id: SafeId,
    /// Whether the payload gave the attempt id or it was resolved as the session's newest
    /// attempt (v2; absent in v1, where it was always given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_id_source: Option<AttemptIdSource>,
    /// The decision being archived: its recorded fields (the ids are above).
    pub decision: DecisionRecord,
    /// The metadata listings read, and which one the files came from.
    pub media_source: SourceRecord,
    /// When the archive was completed (RFC 3339, UTC).
    pub archived_at: String,
    /// Which build wrote it.
    pub archiver: ArchiverRecord,
    /// Every stored file.
    pub files: Vec<FileRecord>,
    /// Every listed item that was not stored, with the reason.
    pub skipped: Vec<Skipped>,
    /// The stored webhook body, when `ARCHIVE_DECISION_PAYLOAD` is on (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_payload: Option<PayloadRecord>,
    /// Where the decision came from (v2; absent in manifests written before backfill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_source: Option<DecisionSource>,
    /// Why no file could be listed although the decision may have had some (v3): Veriff no
    /// longer has the session's media. Absent when the listings were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_unavailable: Option<MediaUnavailable>,
}

/// Why a decision's manifest lists no files: Veriff answered every media listing with an
/// authenticated 404 (a signed answer of Veriff's own, not a proxy's). The session was
/// deleted (`DELETE /v1/sessions/{id}`, whose data is gone within 12 hours), or its media
/// are past Veriff's retention. Recorded so that the decision is archived honestly once,
/// instead of being retried for Veriff's 7 days of redeliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaUnavailable {
    /// Always `not_found_at_veriff` in this build.
    pub reason: String,
    /// The requests answered 404, as `GET /v1/sessions/<id>/media`.
    pub endpoints: Vec<String>,
}

/// The [`MediaUnavailable::reason`] of listings Veriff answered 404.
pub const NOT_FOUND_AT_VERIFF: &str = "not_found_at_veriff";

/// Where an archived decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// Veriff's decision webhook.
    Webhook,
    /// `GET /v1/sessions/{id}/decision` (`veriff-archiver backfill`), or for a Full Auto
    /// session `GET /v1/sessions/{id}/decision/fullauto` (`decision.webhook` says which).
    DecisionEndpoint,
    /// An earlier attempt of `GET /v1/sessions/{id}/attempts` (`backfill --all-attempts`):
    /// only its status is known, as the listing gives it.
    AttemptsListing,
}

/// Where the decided attempt's id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptIdSource {
    /// `verification.attemptId` of the decision.
    Given,
    /// The newest attempt of `GET /v1/sessions/{id}/attempts`: the decision carried none.
    Resolved,
}

/// The listings read for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRecord {
    /// `combined`, `session` or `attempt` (v1 wrote this as `kind`).
    #[serde(alias = "kind")]
    pub mode: String,
    /// The listing the files came from (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<Listing>,
    /// In combined mode: whether the session listing showed the decided attempt (`null` in
    /// the single-endpoint modes).
    #[serde(default)]
    pub listings_matched: Option<bool>,
    /// The requests made, e.g. `GET /v1/sessions/<id>/media` (v2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// The one request made (v1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
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
    /// Content-Type stored on the object (empty when S3 keeps none).
    pub content_type: String,
    /// Bytes stored.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes stored.
    pub sha256: String,
    /// The listing that listed it (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<Listing>,
    /// S3's record of the object (v2; absent in v1).
    #[serde(flatten)]
    pub stored: StoredObject,
}

/// The stored webhook body of the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadRecord {
    /// Full S3 key.
    pub key: String,
    /// Bytes stored.
    pub size: u64,
    /// Lowercase hex SHA-256 of the body.
    pub sha256: String,
    /// The header whose HMAC authenticated it (its value is in the object's metadata).
    pub signature_header: String,
    /// S3's record of the object.
    #[serde(flatten)]
    pub stored: StoredObject,
}

/// What a manifest is built from, besides the files.
#[derive(Debug, Clone)]
pub struct ManifestInput<'a> {
    /// The decision.
    pub decision: &'a Decision,
    /// The decided attempt.
    pub attempt_id: &'a SafeId,
    /// Where the attempt id came from.
    pub attempt_id_source: AttemptIdSource,
    /// The listings read.
    pub media_source: SourceRecord,
    /// Where the decision came from.
    pub decision_source: DecisionSource,
}

impl Manifest {
    /// Builds the manifest of a completed archive.
    pub fn new(
        input: ManifestInput<'_>,
        files: Vec<FileRecord>,
        skipped: Vec<Skipped>,
        decision_payload: Option<PayloadRecord>,
        archived_at: SystemTime,
    ) -> Manifest {
        Manifest {
            schema_version: SCHEMA_VERSION,
            session_id: input.decision.session_id.clone(),
            attempt_id: input.attempt_id.clone(),
            attempt_id_source: Some(input.attempt_id_source),
            decision: input.decision.record.clone(),
            media_source: input.media_source,
            archived_at: humantime::format_rfc3339_millis(archived_at).to_string(),
            archiver: ArchiverRecord {
                name: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            files,
            skipped,
            decision_payload,
            decision_source: Some(input.decision_source),
            media_unavailable: None,
        }
    }

    /// Parses a stored manifest of schema v1, v2 or v3; anything else (or ids that are not
    /// safe path segments) is an error.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        if !matches!(manifest.schema_version, 1..=SCHEMA_VERSION) {
            return Err(ManifestError::UnknownVersion(manifest.schema_version));
        }
        Ok(manifest)
    }

    /// Whether this manifest already archives exactly `decision`, decided in `attempt_id`
    /// (a redelivery): the same session, attempt and recorded fields.
    pub fn records(&self, decision: &Decision, attempt_id: &SafeId) -> bool {
        self.session_id == decision.session_id
            && self.attempt_id == *attempt_id
            && self.decision == decision.record
    }

    /// The decision this manifest records, with its ids (the attempt as given, unless it was
    /// resolved).
    pub fn recorded_decision(&self) -> Decision {
        let attempt_id = (self.attempt_id_source != Some(AttemptIdSource::Resolved))
            .then(|| self.attempt_id.clone());
        Decision::new(self.session_id.clone(), attempt_id, self.decision.clone())
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
    use crate::domain::WebhookKind;
    use crate::select::SkipReason;
    use std::time::{Duration, UNIX_EPOCH};

    fn id(s: &str) -> SafeId {
        SafeId::parse(s).unwrap()
    }

    fn decision(time: &str) -> Decision {
        Decision::new(
            id("s1"),
            Some(id("a1")),
            DecisionRecord {
                code: Some(9001),
                reason_code: Some(serde_json::json!(102)),
                decision_time: Some(time.into()),
                vendor_data: Some("cust-1".into()),
                ..DecisionRecord::new(WebhookKind::Decision, "approved")
            },
        )
    }

    #[test]
    fn the_recorded_decision_keeps_a_given_attempt_and_drops_a_resolved_one() {
        let d = decision("2025-03-04T10:21:07.412Z");
        let mut m = manifest(&d);
        assert_eq!(m.recorded_decision().attempt_id, Some(id("a1")), "given");
        assert_eq!(m.recorded_decision().record, d.record);
        m.attempt_id_source = Some(AttemptIdSource::Resolved);
        assert_eq!(
            m.recorded_decision().attempt_id,
            None,
            "resolved again on a retry"
        );
        m.attempt_id_source = None;
        assert_eq!(
            m.recorded_decision().attempt_id,
            Some(id("a1")),
            "v1: given"
        );
    }

    fn manifest(d: &Decision) -> Manifest {
        Manifest::new(
            ManifestInput {
                decision: d,
                attempt_id: &id("a1"),
                attempt_id_source: AttemptIdSource::Given,
                media_source: SourceRecord {
                    mode: "combined".into(),
                    listing: Some(Listing::Session),
                    listings_matched: Some(true),
                    endpoints: vec![
                        "GET /v1/sessions/s1/media".into(),
                        "GET /v1/attempts/a1/media".into(),
                    ],
                    endpoint: None,
                },
                decision_source: DecisionSource::Webhook,
            },
            vec![FileRecord {
                key: "s1/a1/face.m1.jpg".into(),
                media_id: "m1".into(),
                kind: MediaKind::Image,
                context: "face".into(),
                mimetype: Some("image/jpeg".into()),
                content_type: "image/jpeg".into(),
                size: 3,
                sha256: "ab".repeat(32),
                listing: Some(Listing::Session),
                stored: StoredObject {
                    version_id: None,
                    etag: Some("\"e\"".into()),
                    s3_checksum: Some(S3Checksum {
                        algorithm: "SHA256".into(),
                        checksum_type: "FULL_OBJECT".into(),
                        value: "q1==".into(),
                    }),
                },
            }],
            vec![Skipped {
                kind: MediaKind::Image,
                media_id: Some("m2".into()),
                context: Some("face".into()),
                reason: SkipReason::LowerRanked,
            }],
            None,
            UNIX_EPOCH + Duration::from_millis(1_741_083_667_412),
        )
    }

    #[test]
    fn schema_v3_field_names() {
        let m = manifest(&decision("2025-03-04T10:21:07.412Z"));
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["schemaVersion"], 3);
        assert_eq!(v["decision"]["webhook"], "decision");
        assert!(v["decision"].get("decisionScore").is_none());
        assert!(v.get("mediaUnavailable").is_none());
        assert_eq!(v["sessionId"], "s1");
        assert_eq!(v["attemptId"], "a1");
        assert_eq!(v["attemptIdSource"], "given");
        assert_eq!(v["archivedAt"], "2025-03-04T10:21:07.412Z");
        assert_eq!(v["decision"]["status"], "approved");
        assert_eq!(v["decision"]["reasonCode"], 102);
        assert_eq!(v["decision"]["decisionTime"], "2025-03-04T10:21:07.412Z");
        assert_eq!(v["decision"]["vendorData"], "cust-1");
        assert!(v["decision"].get("sessionId").is_none());
        assert!(v["decision"].get("attemptId").is_none());
        assert_eq!(v["mediaSource"]["mode"], "combined");
        assert_eq!(v["mediaSource"]["listing"], "session");
        assert_eq!(v["mediaSource"]["listingsMatched"], true);
        assert_eq!(
            v["mediaSource"]["endpoints"][1],
            "GET /v1/attempts/a1/media"
        );
        let file = &v["files"][0];
        assert_eq!(file["kind"], "image");
        assert_eq!(file["mediaId"], "m1");
        assert_eq!(file["listing"], "session");
        assert!(file["versionId"].is_null() && file.get("versionId").is_some());
        assert_eq!(file["etag"], "\"e\"");
        assert_eq!(file["s3Checksum"]["type"], "FULL_OBJECT");
        assert_eq!(file["s3Checksum"]["algorithm"], "SHA256");
        assert_eq!(v["skipped"][0]["reason"], "lower_ranked");
        assert!(v.get("decisionPayload").is_none());
        assert_eq!(v["decisionSource"], "webhook");
        assert_eq!(m.total_bytes(), 3);
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn v1_manifests_still_parse() {
        // Written by veriff-archiver 0.1.0 before schema v2.
        let v1 = br#"{"schemaVersion":1,"sessionId":"s1","attemptId":"a1",
          "decision":{"status":"approved","code":9001,"reason":null,"reasonCode":102,
            "decisionTime":"2025-03-04T10:21:07.412Z","vendorData":"cust-1","endUserId":null},
          "mediaSource":{"kind":"session","endpoint":"GET /v1/sessions/s1/media"},
          "archivedAt":"2025-03-04T10:21:09.000Z",
          "archiver":{"name":"veriff-archiver","version":"0.1.0"},
          "files":[{"key":"veriff/s1/a1/face.jpg","mediaId":"m1","kind":"image","context":"face",
            "mimetype":"image/jpeg","contentType":"image/jpeg","size":3,"sha256":"abab"}],
          "skipped":[]}"#;
        let m = Manifest::parse(v1).unwrap();
        assert_eq!(m.schema_version, 1);
        assert_eq!(m.media_source.mode, "session");
        assert_eq!(
            m.media_source.endpoint.as_deref(),
            Some("GET /v1/sessions/s1/media")
        );
        assert_eq!(m.attempt_id_source, None);
        assert_eq!(m.files[0].stored, StoredObject::default());
        assert_eq!(m.files[0].listing, None);
        assert!(m.records(&decision("2025-03-04T10:21:07.412Z"), &id("a1")));
        let future =
            String::from_utf8_lossy(v1).replace("\"schemaVersion\":1", "\"schemaVersion\":4");
        assert!(Manifest::parse(future.as_bytes()).is_err());
        assert!(Manifest::parse(b"{\"schemaVersion\":2}").is_err());
        assert!(Manifest::parse(b"\x00garbage").is_err());
    }

    #[test]
    fn a_manifest_records_only_its_own_decision() {
        let d = decision("2025-03-04T10:21:07.412Z");
        let back = Manifest::parse(&manifest(&d).to_bytes()).unwrap();
        assert!(back.records(&d, &id("a1")));
        assert!(!back.records(&d, &id("a2")), "another attempt");
        let mut later = d.clone();
        later.record.decision_time = Some("2025-03-05T10:21:07.412123Z".into());
        assert!(!back.records(&later, &id("a1")));
        for change in [
            |d: &mut Decision| d.record.status = "declined".into(),
            |d: &mut Decision| d.record.code = Some(9102),
            |d: &mut Decision| d.record.reason = Some("x".into()),
            |d: &mut Decision| d.record.reason_code = None,
            |d: &mut Decision| d.record.vendor_data = None,
            |d: &mut Decision| d.record.end_user_id = Some("u".into()),
            |d: &mut Decision| d.session_id = id("s2"),
            |d: &mut Decision| d.record.webhook = WebhookKind::FullAuto,
            |d: &mut Decision| d.record.decision_score = Some(0.9),
        ] {
            let mut other = d.clone();
            change(&mut other);
            assert!(!back.records(&other, &id("a1")), "{other:?}");
        }
    }

    #[test]
    fn v2_manifests_parse_as_decision_webhooks_and_full_auto_round_trips() {
        let d = decision("2025-03-04T10:21:07.412Z");
        let mut v: serde_json::Value = serde_json::from_slice(&manifest(&d).to_bytes()).unwrap();
        v["schemaVersion"] = 2.into();
        v["decision"].as_object_mut().unwrap().remove("webhook");
        let v2 = Manifest::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(v2.decision.webhook, WebhookKind::Decision);
        assert!(
            v2.records(&d, &id("a1")),
            "a v2 manifest records its decision webhook"
        );

        let mut full_auto = d.clone();
        full_auto.record.webhook = WebhookKind::FullAuto;
        full_auto.record.code = None;
        full_auto.record.reason_code = None;
        full_auto.record.decision_score = Some(0.97);
        let mut m = manifest(&full_auto);
        m.media_unavailable = Some(MediaUnavailable {
            reason: NOT_FOUND_AT_VERIFF.into(),
            endpoints: vec!["GET /v1/sessions/s1/media".into()],
        });
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["decision"]["webhook"], "fullauto");
        assert_eq!(v["decision"]["decisionScore"], 0.97);
        assert_eq!(v["mediaUnavailable"]["reason"], "not_found_at_veriff");
        let back = Manifest::parse(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(back.records(&full_auto, &id("a1")));
        assert!(
            !back.records(&d, &id("a1")),
            "the decision webhook is another decision"
        );
        assert!(!v2.records(&full_auto, &id("a1")));
    }
}
