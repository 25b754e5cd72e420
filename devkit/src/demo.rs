//! The built-in demo scenario: one approved session with a realistic media set.
//!
//! Used by the `veriff-fake` binary (local demo) and by tests. The session
//! [`DEMO_SESSION_ID`] / attempt [`DEMO_ATTEMPT_ID`] lists, best first per context,
//! 2 `document-front`, 2 `document-back`, 1 `document-front-pre`, 3 `face` and 1 `face-pre`
//! JPEG images (40–300 KB each, starting with a JPEG SOI marker), one NFC data file and one
//! `selfid_video` of the requested length (streamed, never held in memory).

use serde_json::{Value, json};

use crate::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID, deterministic_bytes};
use crate::signing::uuid_like;
use crate::veriff_fake::{FakeVeriff, MediaContent};

/// Which metadata array a demo media object is listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoMediaKind {
    /// `images`.
    Image,
    /// `videos`.
    Video,
    /// `nfcDocuments` (session media only, not attempt media).
    Nfc,
}

/// One media file of the demo scenario.
#[derive(Clone, Debug)]
pub struct DemoMedia {
    /// Media id (UUID-shaped), served at `/v1/media/{id}`.
    pub id: String,
    /// The array it is listed in.
    pub kind: DemoMediaKind,
    /// `context` (and `name`) of the metadata object.
    pub context: String,
    /// The content served; its length is the listed `size`.
    pub content: MediaContent,
}

impl DemoMedia {
    /// `size` as listed in the metadata (the content length).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.content.len()
    }

    /// The metadata `mimetype`.
    #[must_use]
    pub fn mimetype(&self) -> &str {
        self.content.mimetype()
    }
}

/// What [`demo_scenario`] registered.
#[derive(Clone, Debug)]
pub struct DemoScenario {
    /// The session id ([`DEMO_SESSION_ID`]).
    pub session_id: String,
    /// The only attempt ([`DEMO_ATTEMPT_ID`]).
    pub attempt_id: String,
    /// All media, in listing order (images ranked best first, then the video, then NFC).
    pub media: Vec<DemoMedia>,
    /// Body served for `GET /v1/sessions/{session_id}/media`.
    pub session_media_json: String,
    /// Body served for `GET /v1/attempts/{attempt_id}/media` (no `nfcDocuments`).
    pub attempt_media_json: String,
    /// Body served for `GET /v1/sessions/{session_id}/attempts`.
    pub attempts_json: String,
}

/// Seed of the demo video's generated content.
pub const DEMO_VIDEO_SEED: u64 = 0x5E1F_1D00;

/// Image contexts of the demo, in ranked order.
const IMAGE_CONTEXTS: [&str; 9] = [
    "document-front",
    "document-front",
    "document-back",
    "document-back",
    "document-front-pre",
    "face",
    "face",
    "face",
    "face-pre",
];

/// Size of the demo NFC data file (as in Veriff's example).
const NFC_SIZE: usize = 29_584;

/// A JPEG-looking image of `len` bytes: SOI + APP0 marker, deterministic bytes, EOI.
fn jpeg_like(seed: u64, len: usize) -> Vec<u8> {
    let mut data = deterministic_bytes(seed, len);
    data[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
    let n = data.len();
    data[n - 2..].copy_from_slice(&[0xFF, 0xD9]);
    data
}

/// Builds the demo media set without registering it (see [`demo_scenario`]).
#[must_use]
pub fn demo_media(video_len: u64) -> Vec<DemoMedia> {
    let mut media = Vec::new();
    for (i, context) in IMAGE_CONTEXTS.iter().enumerate() {
        let seed = 1_000 + i as u64;
        let size_seed = deterministic_bytes(seed ^ 0xA5A5, 8);
        let r = u64::from_le_bytes(size_seed.try_into().expect("8 bytes"));
        let len = usize::try_from(40_000 + r % 260_001).expect("at most 300 KB");
        media.push(DemoMedia {
            id: uuid_like(&[b"demo-image", &seed.to_le_bytes()]),
            kind: DemoMediaKind::Image,
            context: (*context).to_owned(),
            content: MediaContent::bytes(jpeg_like(seed, len), "image/jpeg"),
        });
    }
    media.push(DemoMedia {
        id: uuid_like(&[b"demo-video", &DEMO_VIDEO_SEED.to_le_bytes()]),
        kind: DemoMediaKind::Video,
        context: "selfid_video".to_owned(),
        content: MediaContent::generated(video_len, DEMO_VIDEO_SEED, "video/mp4"),
    });
    media.push(DemoMedia {
        id: uuid_like(&[b"demo-nfc"]),
        kind: DemoMediaKind::Nfc,
        context: "document-nfc".to_owned(),
        content: MediaContent::bytes(
            deterministic_bytes(2_000, NFC_SIZE),
            "application/octet-stream",
        ),
    });
    media
}

fn metadata_object(m: &DemoMedia, session_id: &str) -> Value {
    let mut obj = json!({
        "id": m.id,
        "name": m.context,
        "context": m.context,
        "timestamp": null,
        "size": m.size(),
        "mimetype": m.mimetype(),
        "url": format!("https://exampleURL.com/v1/media/{}", m.id),
        "sessionId": session_id,
    });
    if m.kind == DemoMediaKind::Video {
        // Roughly 750 kB per second of selfie video, at least one second.
        obj["duration"] = json!((m.size() / 750_000).max(1));
    }
    obj
}

/// Registers the demo scenario on `fake` and returns what was registered.
///
/// `video_len` is the size of the `selfid_video` in bytes (generated with
/// [`DEMO_VIDEO_SEED`], see [`deterministic_bytes`]).
pub fn demo_scenario(fake: &FakeVeriff, video_len: u64) -> DemoScenario {
    let session_id = DEMO_SESSION_ID;
    let attempt_id = DEMO_ATTEMPT_ID;
    let media = demo_media(video_len);
    let list = |kind: DemoMediaKind| -> Vec<Value> {
        media
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| metadata_object(m, session_id))
            .collect()
    };
    let session_media_json = json!({
        "status": "success",
        "images": list(DemoMediaKind::Image),
        "videos": list(DemoMediaKind::Video),
        "nfcDocuments": list(DemoMediaKind::Nfc),
    })
    .to_string();
    let attempt_media_json = json!({
        "status": "success",
        "images": list(DemoMediaKind::Image),
        "videos": list(DemoMediaKind::Video),
    })
    .to_string();
    let attempts_json = json!({
        "status": "success",
        "verifications": [{
            "id": attempt_id,
            "status": "approved",
            "createdTime": "2025-03-04T10:15:55.000Z",
        }],
    })
    .to_string();

    fake.set_session_media(session_id, session_media_json.clone());
    fake.set_attempt_media(attempt_id, attempt_media_json.clone());
    fake.set_session_attempts(session_id, attempts_json.clone());
    for m in &media {
        fake.set_media(&m.id, m.content.clone());
    }
    DemoScenario {
        session_id: session_id.to_owned(),
        attempt_id: attempt_id.to_owned(),
        media,
        session_media_json,
        attempt_media_json,
        attempts_json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_media_shape() {
        let media = demo_media(1_000_000);
        assert_eq!(media.len(), 11);
        let contexts: Vec<&str> = media
            .iter()
            .filter(|m| m.kind == DemoMediaKind::Image)
            .map(|m| m.context.as_str())
            .collect();
        assert_eq!(contexts, IMAGE_CONTEXTS);
        for m in &media {
            assert_eq!(m.id.len(), 36);
            if m.kind == DemoMediaKind::Image {
                assert!((40_000..=300_000).contains(&m.size()), "{}", m.size());
                let MediaContent::Bytes { data, .. } = &m.content else {
                    panic!("images are in memory");
                };
                assert_eq!(&data[..3], &[0xFF, 0xD8, 0xFF]);
            }
        }
        let mut ids: Vec<&str> = media.iter().map(|m| m.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), media.len(), "ids are unique");
        // Deterministic across calls.
        assert_eq!(demo_media(5)[3].id, media[3].id);
        assert_eq!(demo_media(5)[3].content, media[3].content);
    }
}
