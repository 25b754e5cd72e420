//! S3 key layout: where each archived file, manifest and decision body lives.
//!
//! One folder per decided attempt, `<prefix><sessionId>/<attemptId>/`, holding:
//! - one object per stored media file, `<context>.<mediaId>.<ext>`: the media id makes the
//!   key unique and stable, so the same media is never written twice under two names;
//! - one manifest per decision, `manifest-<time>-<fingerprint>.json`, where `<time>` is the
//!   decision time (UTC, microseconds, fixed width) so that names sort by decision time,
//!   and `<fingerprint>` identifies the decision, so that a redelivery maps to the same key;
//! - with `ARCHIVE_DECISION_PAYLOAD`, the webhook body as `decision-<time>-<fingerprint>.json`;
//! - in archives written before schema v2, one `manifest.json` (read, never written).
//!
//! Every segment that comes from the wire is a [`SafeId`] (validated when it was read), so
//! no key can leave the session's folder. No I/O here.

use sha2::{Digest, Sha256};

use crate::domain::{Decision, SafeId, WebhookKind};
use crate::media::MediaKind;
use crate::select::Chosen;

/// The name of the single manifest that schema v1 archives kept in each attempt folder.
pub const LEGACY_MANIFEST_NAME: &str = "manifest.json";

/// The `<time>` part of names whose decision time is missing or unreadable: sorts first.
pub const UNKNOWN_TIME: &str = "00000000T000000000000Z";

/// The archive folder of one decided attempt: `<prefix><sessionId>/<attemptId>/`.
pub fn attempt_folder(prefix: &str, session_id: &SafeId, attempt_id: &SafeId) -> String {
    format!("{prefix}{session_id}/{attempt_id}/")
}

/// The key of the v1 manifest of an attempt folder (never written by this version).
pub fn legacy_manifest_key(folder: &str) -> String {
    format!("{folder}{LEGACY_MANIFEST_NAME}")
}

/// What names one decision in its folder: its time and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionName {
    /// Decision time as `YYYYMMDDTHHMMSSffffffZ` (UTC), or [`UNKNOWN_TIME`].
    pub time: String,
    /// 16 lowercase hex digits of the SHA-256 of the decision's recorded fields.
    pub fingerprint: String,
}

impl DecisionName {
    /// The name of `decision`, decided in `attempt_id`. A redelivery gives the same name;
    /// any change of a recorded field (status, code, reason, time...) gives another.
    pub fn of(decision: &Decision, attempt_id: &SafeId) -> DecisionName {
        let record = &decision.record;
        let time = sortable_time(record.decision_time.as_deref());
        let mut canonical = serde_json::json!([
            decision.session_id,
            attempt_id,
            record.status,
            record.code,
            record.reason,
            record.reason_code,
            record.decision_time,
            record.vendor_data,
            record.end_user_id,
        ]);
        // A Full Auto result is its own decision, even with the same status and time as a
        // decision webhook of the attempt. Decision webhooks keep the names they had before
        // Full Auto existed, so their redeliveries still find their manifests.
        if record.webhook == WebhookKind::FullAuto {
            let fields = canonical.as_array_mut().expect("an array");
            fields.push(WebhookKind::FullAuto.as_str().into());
            fields.push(serde_json::json!(record.decision_score));
        }
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        DecisionName {
            time,
            fingerprint: hex::encode(&digest[..8]),
        }
    }

    /// The manifest key in `folder`: revision 1 is the normal one; later revisions exist
    /// only when an unreadable object holds the earlier key (it is never overwritten).
    pub fn manifest_key(&self, folder: &str, revision: u32) -> String {
        match revision {
            0 | 1 => format!("{folder}manifest-{}-{}.json", self.time, self.fingerprint),
            n => format!(
                "{folder}manifest-{}-{}-r{n}.json",
                self.time, self.fingerprint
            ),
        }
    }

    /// The key of the decision's webhook body in `folder`.
    pub fn payload_key(&self, folder: &str) -> String {
        format!("{folder}decision-{}-{}.json", self.time, self.fingerprint)
    }
}

/// A decision time as names carry it: `YYYYMMDDTHHMMSSffffffZ` (UTC, microseconds, fixed
/// width, so names sort by time), or [`UNKNOWN_TIME`] when missing or unreadable.
pub fn sortable_time(decision_time: Option<&str>) -> String {
    decision_time
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok())
        .map(|t| {
            humantime::format_rfc3339_micros(t)
                .to_string()
                .replace(['-', ':', '.'], "")
        })
        .filter(|t| t.len() == UNKNOWN_TIME.len())
        .unwrap_or_else(|| UNKNOWN_TIME.to_string())
}

/// A manifest's name parsed back from a key of an attempt folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestName {
    /// The decision's name; `None` for the legacy `manifest.json`.
    pub decision: Option<DecisionName>,
    /// The revision (1 unless an unreadable object held the first key).
    pub revision: u32,
}

/// Recognises a manifest key directly inside `folder` (v2 per-decision names and the v1
/// `manifest.json`); anything else is `None`.
pub fn parse_manifest_key(folder: &str, key: &str) -> Option<ManifestName> {
    let name = key.strip_prefix(folder)?;
    if name == LEGACY_MANIFEST_NAME {
        return Some(ManifestName {
            decision: None,
            revision: 1,
        });
    }
    let stem = name.strip_prefix("manifest-")?.strip_suffix(".json")?;
    let (time, rest) = stem.split_once('-')?;
    let (fingerprint, revision) = match rest.split_once("-r") {
        None => (rest, 1),
        Some((fp, n)) => (
            fp,
            n.parse::<u32>()
                .ok()
                .filter(|v| *v >= 2 && v.to_string() == n)?,
        ),
    };
    let time_ok = time.len() == UNKNOWN_TIME.len()
        && time.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            21 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    let fingerprint_ok = fingerprint.len() == 16
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (time_ok && fingerprint_ok).then(|| ManifestName {
        decision: Some(DecisionName {
            time: time.to_string(),
            fingerprint: fingerprint.to_string(),
        }),
        revision,
    })
}

/// File extension for a Veriff mimetype (`bin` when unknown).
pub fn extension_for(mimetype: Option<&str>, kind: MediaKind) -> &'static str {
    match mimetype.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
        Some("image/jpeg" | "image/jpg") => "jpg",
        Some("image/png") => "png",
        Some("image/heif") => "heif",
        Some("image/heic") => "heic",
        Some("image/webp") => "webp",
        Some("application/pdf" | "image/pdf") => "pdf",
        Some("video/mp4") => "mp4",
        Some("video/webm") => "webm",
        Some("video/quicktime") => "mov",
        _ if kind == MediaKind::Video => "video",
        _ => "bin",
    }
}

/// The `Content-Type` stored with an object: the mimetype when it is a well-formed
/// `type/subtype`, with Veriff's aliases normalised; `application/octet-stream` otherwise.
pub fn content_type_for(mimetype: Option<&str>) -> String {
    let Some(m) = mimetype.map(|m| m.trim().to_ascii_lowercase()) else {
        return "application/octet-stream".into();
    };
    match m.as_str() {
        "image/jpg" => return "image/jpeg".into(),
        "image/pdf" => return "application/pdf".into(),
        _ => {}
    }
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match m.split_once('/') {
        Some((t, sub)) if token(t) && token(sub) => m,
        _ => "application/octet-stream".into(),
    }
}

/// The object key of one media file: `<folder><context>.<mediaId>.<ext>`. Contexts and
/// media ids are safe segments (no `.`), so the two dots always split the name back into
/// its parts, and no extension is `json`, so no media key can take a manifest's or a
/// decision body's key.
pub fn media_key(folder: &str, context: &SafeId, media_id: &SafeId, ext: &str) -> String {
    format!("{folder}{context}.{media_id}.{ext}")
}

/// The object key of each chosen file, in order: the extension from its mimetype, the name
/// from [`media_key`]. The one place the archive (and its tests) derive media keys. Keys
/// are unique because selection never chooses a media id twice.
pub fn keys_for(folder: &str, chosen: &[Chosen]) -> Vec<String> {
    chosen
        .iter()
        .map(|c| {
            let ext = extension_for(c.mimetype.as_deref(), c.kind);
            media_key(folder, &c.context, &c.media_id, ext)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::DecisionRecord;

    fn id(s: &str) -> SafeId {
        SafeId::parse(s).unwrap()
    }

    fn decision(time: Option<&str>) -> Decision {
        Decision::new(
            id("s1"),
            Some(id("a1")),
            DecisionRecord {
                code: Some(9001),
                decision_time: time.map(str::to_string),
                ..DecisionRecord::new(WebhookKind::Decision, "approved")
            },
        )
    }

    #[test]
    fn keys_live_in_the_attempt_folder() {
        let folder = attempt_folder("veriff/", &id("s1"), &id("a1"));
        assert_eq!(folder, "veriff/s1/a1/");
        assert_eq!(legacy_manifest_key(&folder), "veriff/s1/a1/manifest.json");
        assert_eq!(
            media_key(&folder, &id("document-nfc"), &id("m2"), "bin"),
            "veriff/s1/a1/document-nfc.m2.bin"
        );
        let name = DecisionName::of(&decision(Some("2025-03-04T10:21:07.412Z")), &id("a1"));
        assert_eq!(name.time, "20250304T102107412000Z");
        assert_eq!(name.fingerprint.len(), 16);
        assert_eq!(
            name.manifest_key(&folder, 1),
            format!(
                "veriff/s1/a1/manifest-20250304T102107412000Z-{}.json",
                name.fingerprint
            )
        );
        assert_eq!(
            name.payload_key(&folder),
            format!(
                "veriff/s1/a1/decision-20250304T102107412000Z-{}.json",
                name.fingerprint
            )
        );
        assert!(name.manifest_key(&folder, 3).ends_with("-r3.json"));
    }

    #[test]
    fn manifest_names_sort_by_decision_time_and_identify_the_decision() {
        let times = [
            None,
            Some("2025-03-04T09:00:00Z"),
            Some("2025-03-04T10:21:07.412Z"),
            Some("2025-03-04T10:21:07.412001Z"),
            Some("2025-03-05T00:00:00.000Z"),
        ];
        let keys: Vec<String> = times
            .iter()
            .map(|t| DecisionName::of(&decision(*t), &id("a1")).manifest_key("f/", 1))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "lexical order is decision-time order");
        assert!(keys[0].contains(UNKNOWN_TIME));
        // Same decision, same name; any recorded field changed, another name.
        let d = decision(Some("2025-03-04T10:21:07.412Z"));
        assert_eq!(
            DecisionName::of(&d, &id("a1")),
            DecisionName::of(&d.clone(), &id("a1"))
        );
        let mut declined = d.clone();
        declined.record.status = "declined".into();
        assert_ne!(
            DecisionName::of(&d, &id("a1")).fingerprint,
            DecisionName::of(&declined, &id("a1")).fingerprint
        );
        assert_ne!(
            DecisionName::of(&d, &id("a1")).fingerprint,
            DecisionName::of(&d, &id("a2")).fingerprint
        );
        // A resolved attempt names the decision as if the payload had given it.
        let mut resolved = d.clone();
        resolved.attempt_id = None;
        assert_eq!(
            DecisionName::of(&d, &id("a1")),
            DecisionName::of(&resolved, &id("a1"))
        );
    }

    #[test]
    fn decision_webhooks_keep_their_names_and_full_auto_results_get_their_own() {
        // The name a decision webhook had before Full Auto existed: redeliveries of
        // decisions archived by earlier builds must find their manifests.
        let d = decision(Some("2025-03-04T10:21:07.412Z"));
        assert_eq!(
            DecisionName::of(&d, &id("a1")).fingerprint,
            "3c10c2b292ac7711"
        );
        let mut full_auto = d.clone();
        full_auto.record.webhook = WebhookKind::FullAuto;
        full_auto.record.code = None;
        full_auto.record.decision_score = Some(0.97);
        let mut as_webhook = full_auto.clone();
        as_webhook.record.webhook = WebhookKind::Decision;
        let name = DecisionName::of(&full_auto, &id("a1"));
        assert_eq!(name.time, DecisionName::of(&d, &id("a1")).time);
        assert_ne!(
            name.fingerprint,
            DecisionName::of(&as_webhook, &id("a1")).fingerprint,
            "the same fields from a decision webhook are another decision"
        );
        let mut rescored = full_auto.clone();
        rescored.record.decision_score = Some(0.5);
        assert_ne!(
            name.fingerprint,
            DecisionName::of(&rescored, &id("a1")).fingerprint
        );
        assert_eq!(name, DecisionName::of(&full_auto.clone(), &id("a1")));
    }

    #[test]
    fn manifest_keys_parse_back() {
        let name = DecisionName::of(&decision(Some("2025-03-04T10:21:07.412Z")), &id("a1"));
        for revision in [1, 2, 17] {
            let key = name.manifest_key("p/s/a/", revision);
            assert_eq!(
                parse_manifest_key("p/s/a/", &key),
                Some(ManifestName {
                    decision: Some(name.clone()),
                    revision
                }),
                "{key}"
            );
        }
        assert_eq!(
            parse_manifest_key("p/s/a/", "p/s/a/manifest.json"),
            Some(ManifestName {
                decision: None,
                revision: 1
            })
        );
        for other in [
            "p/s/a/face.m1.jpg",
            &name.payload_key("p/s/a/"),
            "p/s/a/manifest-x-0123456789abcdef.json",
            "p/s/a/manifest-20250304T102107412000Z-0123456789ABCDEF.json",
            "p/s/a/manifest-20250304T102107412000Z-0123456789abcdef-r1.json",
            "p/s/a/manifest-20250304T102107412000Z-0123456789abcdef-r.json",
            "p/s/a/manifest-20250304T102107412000Z-0123456789abcdef-r02.json",
            "p/s/a/manifest-20250304T102107412000Z-0123456789abcdef.sig.json",
            "p/s/b/manifest.json",
            "p/s/a/x/manifest.json",
        ] {
            assert_eq!(parse_manifest_key("p/s/a/", other), None, "{other}");
        }
    }

    #[test]
    fn chosen_files_get_unique_keys_with_their_media_ids() {
        let chosen = |media: &str, context: &str, mimetype: &str, kind| Chosen {
            kind,
            media_id: id(media),
            context: id(context),
            mimetype: Some(mimetype.into()),
            size: None,
        };
        let keys = keys_for(
            "f/",
            &[
                chosen("m1", "document-front", "image/jpeg", MediaKind::Image),
                chosen(
                    "m2",
                    "document-nfc",
                    "application/octet-stream",
                    MediaKind::Nfc,
                ),
                chosen(
                    "m3",
                    "document-nfc",
                    "application/octet-stream",
                    MediaKind::Nfc,
                ),
                chosen("v1", "selfid_video", "video/mp4", MediaKind::Video),
            ],
        );
        assert_eq!(
            keys,
            [
                "f/document-front.m1.jpg",
                "f/document-nfc.m2.bin",
                "f/document-nfc.m3.bin",
                "f/selfid_video.v1.mp4",
            ]
        );
        // No media key is ever taken for a manifest.
        assert!(keys.iter().all(|k| parse_manifest_key("f/", k).is_none()));
    }

    #[test]
    fn mimetypes_map_to_extensions_and_content_types() {
        assert_eq!(extension_for(Some("image/jpg"), MediaKind::Image), "jpg");
        assert_eq!(extension_for(Some("IMAGE/PNG"), MediaKind::Image), "png");
        assert_eq!(
            extension_for(Some("application/octet-stream"), MediaKind::Nfc),
            "bin"
        );
        assert_eq!(extension_for(None, MediaKind::Video), "video");
        assert_eq!(content_type_for(Some("image/jpg")), "image/jpeg");
        assert_eq!(content_type_for(Some("video/mp4")), "video/mp4");
        assert_eq!(
            content_type_for(Some("text/html\r\nx: y")),
            "application/octet-stream"
        );
        assert_eq!(content_type_for(None), "application/octet-stream");
    }

    #[test]
    fn every_known_mimetype_has_its_extension() {
        for (mimetype, ext) in [
            ("image/jpeg", "jpg"),
            ("image/jpg", "jpg"),
            (" image/png ", "png"),
            ("image/heif", "heif"),
            ("image/heic", "heic"),
            ("image/webp", "webp"),
            ("application/pdf", "pdf"),
            ("image/pdf", "pdf"),
            ("video/mp4", "mp4"),
            ("video/webm", "webm"),
            ("video/quicktime", "mov"),
        ] {
            for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Nfc] {
                assert_eq!(extension_for(Some(mimetype), kind), ext, "{mimetype}");
            }
        }
        // Unknown: `video` for videos, `bin` for anything else.
        assert_eq!(
            extension_for(Some("video/x-new"), MediaKind::Video),
            "video"
        );
        assert_eq!(extension_for(Some("video/x-new"), MediaKind::Image), "bin");
        assert_eq!(extension_for(None, MediaKind::Image), "bin");
        assert_eq!(extension_for(None, MediaKind::Nfc), "bin");
    }

    #[test]
    fn content_types_are_well_formed_tokens_or_octet_stream() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for (mimetype, stored) in [
            ("image/pdf", "application/pdf".to_string()),
            ("IMAGE/PNG", "image/png".into()),
            ("image/svg+xml", "image/svg+xml".into()),
            ("x-a.b!#$&^_/y-z", "x-a.b!#$&^_/y-z".into()),
            (&format!("{long}/{long}"), format!("{long}/{long}")),
        ] {
            assert_eq!(content_type_for(Some(mimetype)), stored, "{mimetype}");
        }
        for malformed in [
            "imagepng".to_string(),
            "/png".into(),
            "image/".into(),
            "image /png".into(),
            "image/png;x=1".into(),
            format!("{too_long}/png"),
            format!("image/{too_long}"),
        ] {
            assert_eq!(
                content_type_for(Some(&malformed)),
                "application/octet-stream",
                "{malformed}"
            );
        }
    }

    #[test]
    fn manifest_keys_with_a_malformed_time_or_fingerprint_are_not_manifests() {
        let good_time = "20250304T102107412000Z";
        let good_fingerprint = "0123456789abcdef";
        let key = |time: &str, fingerprint: &str| format!("f/manifest-{time}-{fingerprint}.json");
        assert!(parse_manifest_key("f/", &key(good_time, good_fingerprint)).is_some());
        for time in [
            "20250304X102107412000Z",
            "20250304T102107412000X",
            "2025a304T102107412000Z",
            "20250304T1021074120009",
            "20250304T10210741200Z",
            "20250304T1021074120000Z",
        ] {
            assert_eq!(
                parse_manifest_key("f/", &key(time, good_fingerprint)),
                None,
                "{time}"
            );
        }
        for fingerprint in ["0123456789abcde", "0123456789abcdef0", "0123456789abcdeg"] {
            assert_eq!(
                parse_manifest_key("f/", &key(good_time, fingerprint)),
                None,
                "{fingerprint}"
            );
        }
        let second = parse_manifest_key(
            "f/",
            &format!("f/manifest-{good_time}-{good_fingerprint}-r2.json"),
        );
        assert_eq!(second.map(|m| m.revision), Some(2));
    }
}
