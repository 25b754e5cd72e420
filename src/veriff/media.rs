//! Typed media metadata, parsed leniently from Veriff's JSON.
//!
//! Unknown fields are ignored, documented fields may be missing, `null` or of the wrong
//! type: such an item is kept with the field absent so that selection can record why it
//! was skipped, instead of failing the whole decision. The `url` field is deliberately not
//! parsed at all: downloads go by id to the configured base URL. No I/O here.

use serde_json::Value;

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
    pub fn parse(body: &[u8]) -> Result<MediaList, String> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| format!("metadata is not JSON ({})", e.classify_name()))?;
        let obj = doc.as_object().ok_or("metadata is not a JSON object")?;
        match obj.get("status") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "success" => {}
            Some(_) => return Err("metadata status is not \"success\"".into()),
        }
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

fn items(value: Option<&Value>, kind: MediaKind, field: &str) -> Result<Vec<MediaItem>, String> {
    let array = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(format!("metadata field {field} is not an array")),
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
