//! Typed media metadata, parsed leniently from Veriff's JSON.
//!
//! Unknown fields are ignored, documented fields may be missing, `null` or of the wrong
//! type: such an item is kept with the field absent so that selection can record why it
//! was skipped, instead of failing the whole decision. The `url` field is deliberately not
//! parsed at all: downloads go by id to the configured base URL. Also the attempts
//! listing of a session, and which attempt is the newest. No I/O here.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Why a listing does not parse. Never quotes the listing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Not JSON (the parse error's class).
    #[error("{what} is not JSON ({class})")]
    NotJson {
        /// The document.
        what: &'static str,
        /// `syntax error`, `truncated`...
        class: &'static str,
    },
    /// JSON, but not an object.
    #[error("{what} is not a JSON object")]
    NotObject {
        /// The document.
        what: &'static str,
    },
    /// `status` other than `success`.
    #[error("{what} status is not \"success\"")]
    NotSuccess {
        /// The document.
        what: &'static str,
    },
    /// An array field that is not an array.
    #[error("{what} field {field} is not an array")]
    NotArray {
        /// The document.
        what: &'static str,
        /// The field.
        field: &'static str,
    },
}

/// The kind of a media file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// From `images`.
    Image,
    /// From `videos`.
    Video,
    /// From `nfcDocuments`.
    Nfc,
}

impl MediaKind {
    /// The name the manifest records (`image`, `video`, `nfc`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Nfc => "nfc",
        }
    }
}

/// One entry of `images`, `videos` or `nfcDocuments`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaItem {
    /// Which array it came from.
    pub kind: MediaKind,
    /// Media id, when it is a string.
    pub id: Option<String>,
    /// Context, when it is a string.
    pub context: Option<String>,
    /// Mimetype, when it is a string.
    pub mimetype: Option<String>,
    /// Announced size in bytes, when it is a non-negative integer.
    pub size: Option<u64>,
    /// Video duration in seconds, when present.
    pub duration: Option<u64>,
}

/// The media metadata of a session or attempt, each array in Veriff's ranked order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaList {
    /// Images, best first.
    pub images: Vec<MediaItem>,
    /// Videos, best first.
    pub videos: Vec<MediaItem>,
    /// NFC documents (unsorted).
    pub nfc_documents: Vec<MediaItem>,
}

impl MediaList {
    /// Parses a metadata response body. Fails only when the body is not a JSON object, says
    /// `"status"` other than `"success"`, or has an array field that is not an array.
    pub fn parse(body: &[u8]) -> Result<MediaList, MediaError> {
        let what = "metadata";
        let obj = success_object(body, what)?;
        Ok(MediaList {
            images: items(obj.get("images"), MediaKind::Image, "images")?,
            videos: items(obj.get("videos"), MediaKind::Video, "videos")?,
            nfc_documents: items(obj.get("nfcDocuments"), MediaKind::Nfc, "nfcDocuments")?,
        })
    }

    /// Total number of entries.
    pub fn len(&self) -> usize {
        self.images.len() + self.videos.len() + self.nfc_documents.len()
    }

    /// Whether there is no media at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids of the images and videos (not NFC documents), order aside: what identifies
    /// the attempt a listing belongs to.
    pub fn image_and_video_ids(&self) -> BTreeSet<&str> {
        self.images
            .iter()
            .chain(&self.videos)
            .filter_map(|item| item.id.as_deref())
            .collect()
    }

    /// Whether `other` lists the same attempt: the same image and video ids, order aside.
    pub fn same_attempt_as(&self, other: &MediaList) -> bool {
        self.image_and_video_ids() == other.image_and_video_ids()
    }
}

/// One attempt of a session, from `GET /v1/sessions/{id}/attempts`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptInfo {
    /// Attempt id, when it is a string.
    pub id: Option<String>,
    /// The attempt's status as Veriff gives it (`approved`, `declined`, `submitted`...).
    pub status: Option<String>,
    /// `createdTime`, as sent.
    pub created_time: Option<String>,
}

/// Parses the attempts listing `{"status":"success","verifications":[...]}`.
pub fn parse_attempts(body: &[u8]) -> Result<Vec<AttemptInfo>, MediaError> {
    let what = "attempts listing";
    let obj = success_object(body, what)?;
    let array = match obj.get("verifications") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(MediaError::NotArray {
                what,
                field: "verifications",
            });
        }
    };
    Ok(array
        .iter()
        .map(|entry| {
            let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
            AttemptInfo {
                id: text("id"),
                status: text("status"),
                created_time: text("createdTime"),
            }
        })
        .collect())
}

/// The newest attempt with an id: the latest `createdTime`; among attempts whose times are
/// equal or unreadable, the one listed last (Veriff lists attempts oldest first).
pub fn newest_attempt(attempts: &[AttemptInfo]) -> Option<&AttemptInfo> {
    let time = |a: &AttemptInfo| {
        a.created_time
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    };
    attempts
        .iter()
        .filter(|a| a.id.is_some())
        .enumerate()
        .max_by(|(i, a), (j, b)| time(a).cmp(&time(b)).then(i.cmp(j)))
        .map(|(_, a)| a)
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong types",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// A Veriff answer's JSON object, when its `status` is absent, `null` or `success`.
fn success_object(body: &[u8], what: &'static str) -> Result<Map<String, Value>, MediaError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| MediaError::NotJson {
        what,
        class: e.classify_name(),
    })?;
    let Value::Object(obj) = doc else {
        return Err(MediaError::NotObject { what });
    };
    match obj.get("status") {
        None | Some(Value::Null) => Ok(obj),
        Some(Value::String(s)) if s == "success" => Ok(obj),
        Some(_) => Err(MediaError::NotSuccess { what }),
    }
}

fn items(
    value: Option<&Value>,
    kind: MediaKind,
    field: &'static str,
) -> Result<Vec<MediaItem>, MediaError> {
    let array = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(MediaError::NotArray {
                what: "metadata",
                field,
            });
        }
    };
    Ok(array
        .iter()
        .map(|entry| {
            let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
            MediaItem {
                kind,
                id: text("id"),
                context: text("context"),
                mimetype: text("mimetype"),
                size: entry.get("size").and_then(Value::as_u64),
                duration: entry.get("duration").and_then(Value::as_u64),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_counts_every_kind_and_is_empty_only_without_any() {
        let body = br#"{"status":"success","images":[{"id":"a"},{"id":"b"}],
            "videos":[{"id":"v"}],"nfcDocuments":[{"id":"n1"},{"id":"n2"},{"id":"n3"}]}"#;
        let list = MediaList::parse(body).unwrap();
        assert_eq!(list.len(), 6);
        assert!(!list.is_empty());
        let videos_only = MediaList::parse(br#"{"videos":[{"id":"v"}]}"#).unwrap();
        assert_eq!(videos_only.len(), 1);
        assert!(!videos_only.is_empty());
        let none = MediaList::parse(br#"{"status":"success","images":[]}"#).unwrap();
        assert_eq!(none.len(), 0);
        assert!(none.is_empty());
    }

    #[test]
    fn a_body_that_is_not_json_says_how() {
        let class = |body: &[u8]| match MediaList::parse(body) {
            Err(MediaError::NotJson { class, .. }) => class,
            other => panic!("{other:?}"),
        };
        assert_eq!(class(b"<html>"), "syntax error");
        assert_eq!(class(br#"{"images":["#), "truncated");
        assert_eq!(class(b""), "truncated");
        assert!(
            MediaList::parse(b"nope")
                .unwrap_err()
                .to_string()
                .contains("(syntax error)")
        );
    }

    #[test]
    fn media_kinds_name_themselves_as_the_manifest_records_them() {
        for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Nfc] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }

    #[test]
    fn nfc_documents_may_be_absent_null_or_empty() {
        for body in [
            r#"{"status":"success","images":[],"videos":[]}"#,
            r#"{"status":"success","images":[],"videos":[],"nfcDocuments":null}"#,
            r#"{"status":"success","nfcDocuments":[]}"#,
        ] {
            assert!(
                MediaList::parse(body.as_bytes()).unwrap().is_empty(),
                "{body}"
            );
        }
    }

    #[test]
    fn wrong_types_are_kept_as_absent_fields() {
        let body =
            r#"{"images":[{"id":5,"context":null,"size":"12","mimetype":["x"],"extra":{}}]}"#;
        let list = MediaList::parse(body.as_bytes()).unwrap();
        assert_eq!(list.images.len(), 1);
        let item = &list.images[0];
        assert_eq!(
            (item.id.as_deref(), item.context.as_deref(), item.size),
            (None, None, None)
        );
    }

    #[test]
    fn listings_of_the_same_attempt_match_in_any_order() {
        let a = MediaList::parse(
            br#"{"images":[{"id":"i1"},{"id":"i2"}],"videos":[{"id":"v1"}],"nfcDocuments":[{"id":"n1"}]}"#,
        )
        .unwrap();
        let b = MediaList::parse(br#"{"images":[{"id":"i2"},{"id":"i1"}],"videos":[{"id":"v1"}]}"#)
            .unwrap();
        assert!(a.same_attempt_as(&b), "order and NFC documents aside");
        let c = MediaList::parse(br#"{"images":[{"id":"i1"}],"videos":[{"id":"v1"}]}"#).unwrap();
        assert!(!a.same_attempt_as(&c));
        let d = MediaList::parse(br#"{"images":[{"id":"i1"},{"id":"i2"}]}"#).unwrap();
        assert!(!a.same_attempt_as(&d), "a missing video differs");
        assert!(MediaList::default().same_attempt_as(&MediaList::default()));
    }

    #[test]
    fn the_newest_attempt_is_the_latest_created() {
        let body = br#"{"status":"success","verifications":[
            {"id":"a2","status":"submitted","createdTime":"2025-03-04T10:30:00.000Z"},
            {"id":"a1","status":"resubmission_requested","createdTime":"2025-03-04T10:15:55.000Z"},
            {"status":"approved","createdTime":"2030-01-01T00:00:00.000Z"},
            {"id":"a0","createdTime":"never"}]}"#;
        let attempts = parse_attempts(body).unwrap();
        assert_eq!(attempts.len(), 4);
        assert_eq!(newest_attempt(&attempts).unwrap().id.as_deref(), Some("a2"));
        // Equal or unreadable times: the last listed wins.
        let tie = parse_attempts(br#"{"verifications":[{"id":"x"},{"id":"y"}]}"#).unwrap();
        assert_eq!(newest_attempt(&tie).unwrap().id.as_deref(), Some("y"));
        assert_eq!(newest_attempt(&[]), None);
        assert!(parse_attempts(br#"{"status":"fail"}"#).is_err());
        assert!(parse_attempts(br#"{"verifications":{}}"#).is_err());
        assert!(parse_attempts(b"[").is_err());
    }

    #[test]
    fn failures_are_reported() {
        for body in [
            "",
            "[]",
            "{\"status\":\"fail\"}",
            "{\"images\":{}}",
            "{\"images\":[",
            "\"x\"",
        ] {
            assert!(MediaList::parse(body.as_bytes()).is_err(), "{body}");
        }
    }
}
