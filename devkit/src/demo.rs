//! The built-in demo scenarios.
//!
//! Used by the `veriff-fake` binary (local demo) and by tests.
//!
//! - [`demo_scenario`]: one approved session with a realistic media set. The session
//!   [`DEMO_SESSION_ID`] / attempt [`DEMO_ATTEMPT_ID`] lists, best first per context,
//!   2 `document-front`, 2 `document-back`, 1 `document-front-pre`, 3 `face` and 1 `face-pre`
//!   JPEG images (40–300 KB each, starting with a JPEG SOI marker), one NFC data file and one
//!   `selfid_video` of the requested length (streamed, never held in memory).
//! - [`resubmitted_scenario`]: a session whose decided attempt is not its latest one. Attempt
//!   [`RESUBMITTED_DECIDED_ATTEMPT_ID`] got `resubmission_requested`; the end user then made
//!   attempt [`RESUBMITTED_LATEST_ATTEMPT_ID`] with different images and an NFC document, so
//!   the session media listing shows attempt 2 while the decision is about attempt 1.
//! - [`essential_scenario`]: a session of an integration on Veriff's Self-Serve Essential
//!   plan, decided by Full Auto webhooks only ([`full_auto_webhook`]): two document images
//!   of one side (the first is archived), a back, two faces and an NFC data file.

use serde_json::{Value, json};

use crate::fixtures::{
    DECISION_WEBHOOK, DEMO_ATTEMPT_ID, DEMO_SESSION_ID, decision_webhook, deterministic_bytes,
    full_auto_webhook,
};
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
/// [`DEMO_VIDEO_SEED`], see [`deterministic_bytes`]). `GET /v1/sessions/{id}/decision`
/// serves [`DECISION_WEBHOOK`].
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
    fake.set_session_decision(session_id, DECISION_WEBHOOK);
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

/// Session id of [`resubmitted_scenario`].
pub const RESUBMITTED_SESSION_ID: &str = "3c9e1f52-8a47-4d0b-9b6e-5f21c4d7a803";

/// The decided attempt of [`resubmitted_scenario`] (attempt 1, `resubmission_requested`).
pub const RESUBMITTED_DECIDED_ATTEMPT_ID: &str = "a7d4e2b9-61c3-4f85-8e0a-2b9c7d415f66";

/// The latest attempt of [`resubmitted_scenario`] (attempt 2, `submitted`, not decided).
pub const RESUBMITTED_LATEST_ATTEMPT_ID: &str = "5b18c6fe-0d92-4a73-a4c1-e8f3097b2d1c";

/// `decisionTime` of the decision of [`resubmitted_scenario`].
pub const RESUBMITTED_DECISION_TIME: &str = "2025-03-04T10:21:07.412Z";

/// `createdTime` of the decided attempt (attempt 1) of [`resubmitted_scenario`].
const RESUBMITTED_DECIDED_CREATED: &str = "2025-03-04T10:15:55.000Z";

/// `createdTime` of the latest attempt (attempt 2), after the decision of attempt 1.
const RESUBMITTED_LATEST_CREATED: &str = "2025-03-04T10:23:41.000Z";

/// Image contexts of each attempt of [`resubmitted_scenario`].
const RESUBMITTED_CONTEXTS: [&str; 3] = ["document-front", "document-back", "face"];

/// What [`resubmitted_scenario`] registered.
#[derive(Clone, Debug)]
pub struct ResubmittedScenario {
    /// The session id ([`RESUBMITTED_SESSION_ID`]).
    pub session_id: String,
    /// Attempt 1, the one the decision is about ([`RESUBMITTED_DECIDED_ATTEMPT_ID`]).
    pub decided_attempt_id: String,
    /// Attempt 2, the session's latest ([`RESUBMITTED_LATEST_ATTEMPT_ID`]).
    pub latest_attempt_id: String,
    /// Attempt 1's images (`document-front`, `document-back`, `face`), in listing order.
    pub decided_media: Vec<DemoMedia>,
    /// Attempt 2's images (same contexts, other ids and bytes), in listing order.
    pub latest_media: Vec<DemoMedia>,
    /// Attempt 2's NFC data file, listed only by the session media endpoint.
    pub nfc: DemoMedia,
    /// The decision webhook body (see [`resubmitted_decision_webhook`]).
    pub decision_webhook: String,
    /// Body served for `GET /v1/sessions/{session_id}/media`: attempt 2's images and NFC.
    pub session_media_json: String,
    /// Body served for `GET /v1/attempts/{decided_attempt_id}/media` (no `nfcDocuments`).
    pub decided_attempt_media_json: String,
    /// Body served for `GET /v1/attempts/{latest_attempt_id}/media` (no `nfcDocuments`).
    pub latest_attempt_media_json: String,
    /// Body served for `GET /v1/sessions/{session_id}/attempts` (both attempts).
    pub attempts_json: String,
}

impl ResubmittedScenario {
    /// Every media file of the scenario (attempt 1, attempt 2, then the NFC file).
    pub fn all_media(&self) -> impl Iterator<Item = &DemoMedia> {
        self.decided_media
            .iter()
            .chain(&self.latest_media)
            .chain(std::iter::once(&self.nfc))
    }
}

/// The images of attempt `attempt` (1 or 2) of [`resubmitted_scenario`]: 40–100 KB JPEG-like.
fn resubmitted_images(attempt: u8) -> Vec<DemoMedia> {
    RESUBMITTED_CONTEXTS
        .iter()
        .enumerate()
        .map(|(i, context)| {
            let seed = 3_000 + 100 * u64::from(attempt) + i as u64;
            let size_seed = deterministic_bytes(seed ^ 0xA5A5, 8);
            let r = u64::from_le_bytes(size_seed.try_into().expect("8 bytes"));
            let len = usize::try_from(40_000 + r % 60_001).expect("at most 100 KB");
            DemoMedia {
                id: uuid_like(&[b"resubmitted-image", &seed.to_le_bytes()]),
                kind: DemoMediaKind::Image,
                context: (*context).to_owned(),
                content: MediaContent::bytes(jpeg_like(seed, len), "image/jpeg"),
            }
        })
        .collect()
}

/// The decision webhook of [`resubmitted_scenario`]: [`decision_webhook`] for
/// [`RESUBMITTED_SESSION_ID`] / [`RESUBMITTED_DECIDED_ATTEMPT_ID`],
/// `resubmission_requested` at [`RESUBMITTED_DECISION_TIME`].
#[must_use]
pub fn resubmitted_decision_webhook() -> String {
    decision_webhook(
        RESUBMITTED_SESSION_ID,
        RESUBMITTED_DECIDED_ATTEMPT_ID,
        "resubmission_requested",
        RESUBMITTED_DECISION_TIME,
    )
}

/// Registers the resubmitted scenario on `fake` (see the [module docs](self)) and returns
/// what was registered.
///
/// `GET /v1/sessions/{id}/media` lists attempt 2's images and NFC document (`videos` is
/// empty); `GET /v1/attempts/{id}/media` lists each attempt's own images (no
/// `nfcDocuments`); `GET /v1/sessions/{id}/attempts` lists attempt 1
/// (`resubmission_requested`) and then the newer attempt 2 (`submitted`), each with its
/// `createdTime`; `GET /v1/sessions/{id}/decision` serves the decision webhook body. All
/// media content is registered.
pub fn resubmitted_scenario(fake: &FakeVeriff) -> ResubmittedScenario {
    let session_id = RESUBMITTED_SESSION_ID;
    let decided_media = resubmitted_images(1);
    let latest_media = resubmitted_images(2);
    let nfc = DemoMedia {
        id: uuid_like(&[b"resubmitted-nfc"]),
        kind: DemoMediaKind::Nfc,
        context: "document-nfc".to_owned(),
        content: MediaContent::bytes(
            deterministic_bytes(3_900, NFC_SIZE),
            "application/octet-stream",
        ),
    };
    let list = |media: &[DemoMedia]| -> Vec<Value> {
        media
            .iter()
            .map(|m| metadata_object(m, session_id))
            .collect()
    };
    let attempt_json = |media: &[DemoMedia]| {
        json!({ "status": "success", "images": list(media), "videos": [] }).to_string()
    };
    let session_media_json = json!({
        "status": "success",
        "images": list(&latest_media),
        "videos": [],
        "nfcDocuments": list(std::slice::from_ref(&nfc)),
    })
    .to_string();
    let decided_attempt_media_json = attempt_json(&decided_media);
    let latest_attempt_media_json = attempt_json(&latest_media);
    let attempts_json = json!({
        "status": "success",
        "verifications": [
            {
                "id": RESUBMITTED_DECIDED_ATTEMPT_ID,
                "status": "resubmission_requested",
                "createdTime": RESUBMITTED_DECIDED_CREATED,
            },
            {
                "id": RESUBMITTED_LATEST_ATTEMPT_ID,
                "status": "submitted",
                "createdTime": RESUBMITTED_LATEST_CREATED,
            },
        ],
    })
    .to_string();
    let decision_webhook = resubmitted_decision_webhook();

    fake.set_session_media(session_id, session_media_json.clone());
    fake.set_attempt_media(
        RESUBMITTED_DECIDED_ATTEMPT_ID,
        decided_attempt_media_json.clone(),
    );
    fake.set_attempt_media(
        RESUBMITTED_LATEST_ATTEMPT_ID,
        latest_attempt_media_json.clone(),
    );
    fake.set_session_attempts(session_id, attempts_json.clone());
    fake.set_session_decision(session_id, decision_webhook.clone());
    let scenario = ResubmittedScenario {
        session_id: session_id.to_owned(),
        decided_attempt_id: RESUBMITTED_DECIDED_ATTEMPT_ID.to_owned(),
        latest_attempt_id: RESUBMITTED_LATEST_ATTEMPT_ID.to_owned(),
        decided_media,
        latest_media,
        nfc,
        decision_webhook,
        session_media_json,
        decided_attempt_media_json,
        latest_attempt_media_json,
        attempts_json,
    };
    for m in scenario.all_media() {
        fake.set_media(&m.id, m.content.clone());
    }
    scenario
}

/// Session id of [`essential_scenario`].
pub const ESSENTIAL_SESSION_ID: &str = "7d0e4b21-93a6-4f1c-b58e-0c2d9a6e41f7";

/// The one attempt of [`essential_scenario`].
pub const ESSENTIAL_ATTEMPT_ID: &str = "c41f8a03-2e7b-4d95-a6c0-9b3e5f71d2a8";

/// `time` of the approved Full Auto result of [`essential_scenario`].
pub const ESSENTIAL_APPROVED_TIME: &str = "2025-03-04T12:00:31.207Z";

/// `time` of a later declined Full Auto result of the same attempt (an operator's review in
/// the Customer Portal, say).
pub const ESSENTIAL_DECLINED_TIME: &str = "2025-03-05T08:14:02.550Z";

/// Image contexts of [`essential_scenario`], in ranked order.
const ESSENTIAL_CONTEXTS: [&str; 5] = [
    "document-front",
    "document-front",
    "document-back",
    "face",
    "face",
];

/// What [`essential_scenario`] registered.
#[derive(Clone, Debug)]
pub struct EssentialScenario {
    /// The session id ([`ESSENTIAL_SESSION_ID`]).
    pub session_id: String,
    /// The attempt ([`ESSENTIAL_ATTEMPT_ID`]).
    pub attempt_id: String,
    /// The images in listing order, then the NFC data file.
    pub media: Vec<DemoMedia>,
    /// The approved Full Auto webhook body (score 0.97).
    pub approved_webhook: String,
    /// A later declined Full Auto webhook body of the same attempt (score 0.12).
    pub declined_webhook: String,
}

/// Registers the Essential-plan scenario on `fake`: its media listings (the session's with
/// the NFC file), its attempts listing (one `approved` attempt), and every file. Veriff
/// sends such sessions' results as Full Auto webhooks only; the fake serves no
/// `GET /v1/sessions/{id}/decision` for it (404).
pub fn essential_scenario(fake: &FakeVeriff) -> EssentialScenario {
    let session_id = ESSENTIAL_SESSION_ID;
    let mut media: Vec<DemoMedia> = ESSENTIAL_CONTEXTS
        .iter()
        .enumerate()
        .map(|(i, context)| {
            let seed = 5_000 + i as u64;
            DemoMedia {
                id: uuid_like(&[b"essential-image", &seed.to_le_bytes()]),
                kind: DemoMediaKind::Image,
                context: (*context).to_owned(),
                content: MediaContent::bytes(jpeg_like(seed, 30_000 + 7_000 * i), "image/jpeg"),
            }
        })
        .collect();
    media.push(DemoMedia {
        id: uuid_like(&[b"essential-nfc"]),
        kind: DemoMediaKind::Nfc,
        context: "document-nfc".to_owned(),
        content: MediaContent::bytes(
            deterministic_bytes(5_900, NFC_SIZE),
            "application/octet-stream",
        ),
    });
    let list = |kind: DemoMediaKind| -> Vec<Value> {
        media
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| metadata_object(m, session_id))
            .collect()
    };
    fake.set_session_media(
        session_id,
        json!({
            "status": "success",
            "images": list(DemoMediaKind::Image),
            "videos": [],
            "nfcDocuments": list(DemoMediaKind::Nfc),
        })
        .to_string(),
    );
    fake.set_attempt_media(
        ESSENTIAL_ATTEMPT_ID,
        json!({ "status": "success", "images": list(DemoMediaKind::Image), "videos": [] })
            .to_string(),
    );
    fake.set_session_attempts(
        session_id,
        json!({
            "status": "success",
            "verifications": [{
                "id": ESSENTIAL_ATTEMPT_ID,
                "status": "approved",
                "createdTime": "2025-03-04T11:59:02.000Z",
            }],
        })
        .to_string(),
    );
    for m in &media {
        fake.set_media(&m.id, m.content.clone());
    }
    EssentialScenario {
        session_id: session_id.to_owned(),
        attempt_id: ESSENTIAL_ATTEMPT_ID.to_owned(),
        media,
        approved_webhook: full_auto_webhook(
            session_id,
            ESSENTIAL_ATTEMPT_ID,
            "approved",
            ESSENTIAL_APPROVED_TIME,
            Some(0.97),
        ),
        declined_webhook: full_auto_webhook(
            session_id,
            ESSENTIAL_ATTEMPT_ID,
            "declined",
            ESSENTIAL_DECLINED_TIME,
            Some(0.12),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubmitted_images_shape() {
        let (one, two) = (resubmitted_images(1), resubmitted_images(2));
        for (a, b) in one.iter().zip(&two) {
            assert_eq!(a.context, b.context);
            assert_ne!(a.id, b.id);
            assert_ne!(a.content, b.content);
        }
        for m in one.iter().chain(&two) {
            assert_eq!(m.id.len(), 36);
            assert!((40_000..=100_000).contains(&m.size()), "{}", m.size());
            let MediaContent::Bytes { data, .. } = &m.content else {
                panic!("images are in memory");
            };
            assert_eq!(&data[..3], &[0xFF, 0xD8, 0xFF]);
        }
        let demo = demo_media(1);
        let mut ids: Vec<&str> = one
            .iter()
            .chain(&two)
            .chain(&demo)
            .map(|m| m.id.as_str())
            .collect();
        ids.push(RESUBMITTED_SESSION_ID);
        ids.push(RESUBMITTED_DECIDED_ATTEMPT_ID);
        ids.push(RESUBMITTED_LATEST_ATTEMPT_ID);
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids are unique");
        let webhook: Value = serde_json::from_str(&resubmitted_decision_webhook()).unwrap();
        assert_eq!(webhook["verification"]["id"], RESUBMITTED_SESSION_ID);
        assert_eq!(
            webhook["verification"]["attemptId"],
            RESUBMITTED_DECIDED_ATTEMPT_ID
        );
        assert_eq!(webhook["verification"]["status"], "resubmission_requested");
        assert_eq!(webhook["verification"]["code"], 9103);
        assert!(RESUBMITTED_LATEST_CREATED > RESUBMITTED_DECISION_TIME);
        assert!(RESUBMITTED_DECISION_TIME > RESUBMITTED_DECIDED_CREATED);
    }

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
