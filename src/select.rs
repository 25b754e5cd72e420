//! Which media to keep, and why the rest was skipped.
//!
//! Images: the first valid item of each `context`, in the order Veriff returned (that order
//! is the ranking; `-pre` contexts are contexts of their own). Videos: the same, when
//! enabled. NFC documents: every one. Items with a missing or unsafe id or context, a
//! repeated id, or an announced size above the limit are skipped, and do not claim their
//! context. Every skipped item is reported with its reason.
//!
//! Before selection, [`decided_listing`] picks the listing that shows the decided attempt
//! when both media endpoints were read. No I/O here.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::domain::{MAX_SEGMENT_LEN, SafeId};
use crate::media::{MediaItem, MediaKind, MediaList};

/// Which Veriff listing a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listing {
    /// `GET /v1/sessions/{sessionId}/media`: the session's latest attempt, with NFC data.
    Session,
    /// `GET /v1/attempts/{attemptId}/media`: exactly the decided attempt, without NFC data.
    Attempt,
}

impl Listing {
    /// The name used in the manifest and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Session => "session",
            Listing::Attempt => "attempt",
        }
    }
}

/// The listing to archive a decision from, as [`decided_listing`] chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecidedListing {
    /// The media to select from.
    pub media: MediaList,
    /// Where it came from.
    pub listing: Listing,
    /// With both listings read: whether the session listing showed the decided attempt.
    pub listings_matched: Option<bool>,
    /// Items that belong to a later attempt (the session's NFC documents when the
    /// listings differ), reported as skipped.
    pub later_attempt: Vec<Skipped>,
}

/// Chooses what to archive from the listings read. With both: the session listing when
/// it shows the decided attempt (the same image and video ids as the attempt listing,
/// order aside), NFC documents included; otherwise the attempt listing, and the session's
/// NFC documents are skipped as belonging to a later attempt. With one, that one.
/// `None` only when neither listing was read.
pub fn decided_listing(
    session: Option<MediaList>,
    attempt: Option<MediaList>,
) -> Option<DecidedListing> {
    let single = |media, listing| DecidedListing {
        media,
        listing,
        listings_matched: None,
        later_attempt: Vec::new(),
    };
    match (session, attempt) {
        (None, None) => None,
        (Some(session), None) => Some(single(session, Listing::Session)),
        (None, Some(attempt)) => Some(single(attempt, Listing::Attempt)),
        (Some(session), Some(attempt)) if session.same_attempt_as(&attempt) => {
            Some(DecidedListing {
                listings_matched: Some(true),
                ..single(session, Listing::Session)
            })
        }
        (Some(session), Some(attempt)) => {
            let later_attempt = session
                .nfc_documents
                .iter()
                .map(|item| Skipped {
                    kind: item.kind,
                    media_id: item.id.as_deref().map(truncate),
                    context: item.context.as_deref().map(truncate),
                    reason: SkipReason::LaterAttempt,
                })
                .collect();
            Some(DecidedListing {
                media: attempt,
                listing: Listing::Attempt,
                listings_matched: Some(false),
                later_attempt,
            })
        }
    }
}

/// What the listings read say about the decided attempt's media (see [`decided_media`]).
#[derive(Debug, Clone, PartialEq)]
pub enum MediaAvailability {
    /// Every listing read answered: archive from the one [`decided_listing`] chose.
    Listed(DecidedListing),
    /// Every listing read answered an authenticated 404: Veriff no longer has the session's
    /// media (deleted, or past its retention). The listings, in the order read.
    Gone(Vec<Listing>),
    /// One listing answered and the other was not found: not a state Veriff documents, so
    /// the archive fails (and is retried) rather than guess. The listing not found.
    Inconsistent(Listing),
}

/// Decides from the listings read: the outer `Option` is whether a listing was read (the
/// configured `MEDIA_SOURCE`), the inner whether Veriff had it (`None`: an authenticated
/// 404). `None` only when no listing was read.
pub fn decided_media(
    session: Option<Option<MediaList>>,
    attempt: Option<Option<MediaList>>,
) -> Option<MediaAvailability> {
    let read: Vec<Listing> = [
        session.as_ref().map(|_| Listing::Session),
        attempt.as_ref().map(|_| Listing::Attempt),
    ]
    .into_iter()
    .flatten()
    .collect();
    match (session, attempt) {
        (None, None) => None,
        (Some(None) | None, Some(None) | None) => Some(MediaAvailability::Gone(read)),
        (Some(None), Some(Some(_))) => Some(MediaAvailability::Inconsistent(Listing::Session)),
        (Some(Some(_)), Some(None)) => Some(MediaAvailability::Inconsistent(Listing::Attempt)),
        (session, attempt) => {
            decided_listing(session.flatten(), attempt.flatten()).map(MediaAvailability::Listed)
        }
    }
}

/// The context Veriff gives every NFC document.
pub const NFC_CONTEXT: &str = "document-nfc";

/// Selection settings.
#[derive(Debug, Clone, Copy)]
pub struct SelectOptions {
    /// Whether videos are archived.
    pub videos: bool,
    /// Largest announced size accepted.
    pub max_file_bytes: u64,
}

/// A file chosen for the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// Which array it came from.
    pub kind: MediaKind,
    /// Veriff media id.
    pub media_id: SafeId,
    /// Media context.
    pub context: SafeId,
    /// Mimetype as Veriff reported it.
    pub mimetype: Option<String>,
    /// Announced size.
    pub size: Option<u64>,
}

/// Why an item was not archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A better-ranked item of the same kind and context was chosen.
    LowerRanked,
    /// Videos are not archived by configuration.
    VideosDisabled,
    /// The item has no string id.
    MissingId,
    /// The id is not a safe path segment.
    UnsafeId,
    /// The item has no string context.
    MissingContext,
    /// The context is not a safe path segment.
    UnsafeContext,
    /// The same media id appeared earlier in the metadata.
    DuplicateMediaId,
    /// The announced size is above the configured maximum.
    TooLarge,
    /// Listed by the session endpoint, but it belongs to a later attempt than the decided
    /// one (the session's NFC documents, when the two listings differ).
    LaterAttempt,
}

impl SkipReason {
    /// Every reason.
    pub const ALL: [SkipReason; 9] = [
        SkipReason::LowerRanked,
        SkipReason::VideosDisabled,
        SkipReason::MissingId,
        SkipReason::UnsafeId,
        SkipReason::MissingContext,
        SkipReason::UnsafeContext,
        SkipReason::DuplicateMediaId,
        SkipReason::TooLarge,
        SkipReason::LaterAttempt,
    ];

    /// The name the manifest records (`lower_ranked`).
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::LowerRanked => "lower_ranked",
            SkipReason::VideosDisabled => "videos_disabled",
            SkipReason::MissingId => "missing_id",
            SkipReason::UnsafeId => "unsafe_id",
            SkipReason::MissingContext => "missing_context",
            SkipReason::UnsafeContext => "unsafe_context",
            SkipReason::DuplicateMediaId => "duplicate_media_id",
            SkipReason::TooLarge => "too_large",
            SkipReason::LaterAttempt => "later_attempt",
        }
    }

    /// What the reason means, for a person.
    pub fn explanation(self) -> &'static str {
        match self {
            SkipReason::LowerRanked => {
                "a better-ranked file of the same kind and context was archived"
            }
            SkipReason::VideosDisabled => "videos are not archived by configuration",
            SkipReason::MissingId => "no media id",
            SkipReason::UnsafeId => "the media id is not a safe path segment",
            SkipReason::MissingContext => "no context",
            SkipReason::UnsafeContext => "the context is not a safe path segment",
            SkipReason::DuplicateMediaId => "the same media id was listed earlier",
            SkipReason::TooLarge => "larger than the configured maximum",
            SkipReason::LaterAttempt => "it belongs to a later attempt than the decided one",
        }
    }
}

/// A skipped item, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Which array it came from.
    pub kind: MediaKind,
    /// Its id, as sent (truncated to 128 characters).
    pub media_id: Option<String>,
    /// Its context, as sent (truncated to 128 characters).
    pub context: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// The outcome of selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Files to copy, in metadata order (images, then videos, then NFC).
    pub chosen: Vec<Chosen>,
    /// Everything else.
    pub skipped: Vec<Skipped>,
}

/// Chooses the files to archive from a media list.
pub fn select(list: &MediaList, options: SelectOptions) -> Selection {
    let mut selection = Selection::default();
    let mut seen_ids: HashSet<String> = HashSet::new();
    let mut taken: HashSet<(MediaKind, SafeId)> = HashSet::new();

    let all = list
        .images
        .iter()
        .chain(list.videos.iter())
        .chain(list.nfc_documents.iter());
    for item in all {
        match judge(item, options, &seen_ids, &taken) {
            Ok(chosen) => {
                seen_ids.insert(chosen.media_id.to_string());
                if chosen.kind != MediaKind::Nfc {
                    taken.insert((chosen.kind, chosen.context.clone()));
                }
                selection.chosen.push(chosen);
            }
            Err(reason) => {
                if let Some(id) = item
                    .id
                    .as_ref()
                    .filter(|_| reason == SkipReason::LowerRanked)
                {
                    seen_ids.insert(id.clone());
                }
                selection.skipped.push(Skipped {
                    kind: item.kind,
                    media_id: item.id.as_deref().map(truncate),
                    context: item.context.as_deref().map(truncate),
                    reason,
                });
            }
        }
    }
    selection
}

fn judge(
    item: &MediaItem,
    options: SelectOptions,
    seen_ids: &HashSet<String>,
    taken: &HashSet<(MediaKind, SafeId)>,
) -> Result<Chosen, SkipReason> {
    let id = item.id.as_deref().ok_or(SkipReason::MissingId)?;
    let media_id = SafeId::parse(id).map_err(|_| SkipReason::UnsafeId)?;
    let context = match (item.kind, item.context.as_deref()) {
        (_, Some(c)) => c,
        (MediaKind::Nfc, None) => NFC_CONTEXT,
        (_, None) => return Err(SkipReason::MissingContext),
    };
    let context = SafeId::parse(context).map_err(|_| SkipReason::UnsafeContext)?;
    if seen_ids.contains(id) {
        return Err(SkipReason::DuplicateMediaId);
    }
    if item.kind == MediaKind::Video && !options.videos {
        return Err(SkipReason::VideosDisabled);
    }
    if item.kind != MediaKind::Nfc && taken.contains(&(item.kind, context.clone())) {
        return Err(SkipReason::LowerRanked);
    }
    if item.size.is_some_and(|s| s > options.max_file_bytes) {
        return Err(SkipReason::TooLarge);
    }
    Ok(Chosen {
        kind: item.kind,
        media_id,
        context,
        mimetype: item.mimetype.clone(),
        size: item.size,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_SEGMENT_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_name_themselves_as_the_manifest_records_them() {
        use std::collections::HashSet;
        for reason in SkipReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::from(reason.as_str())
            );
        }
        let explained: HashSet<&str> = SkipReason::ALL.iter().map(|r| r.explanation()).collect();
        assert_eq!(explained.len(), SkipReason::ALL.len());
        assert_eq!(
            SkipReason::VideosDisabled.explanation(),
            "videos are not archived by configuration"
        );
        assert_eq!(SkipReason::MissingId.explanation(), "no media id");
    }

    fn item(kind: MediaKind, id: &str, context: &str) -> MediaItem {
        MediaItem {
            kind,
            id: Some(id.into()),
            context: Some(context.into()),
            mimetype: Some("image/jpeg".into()),
            size: Some(100),
            duration: None,
        }
    }

    const OPTS: SelectOptions = SelectOptions {
        videos: false,
        max_file_bytes: 1000,
    };

    fn ids(s: &Selection) -> Vec<&str> {
        s.chosen.iter().map(|c| c.media_id.as_str()).collect()
    }

    #[test]
    fn first_of_each_context_wins_and_pre_is_its_own_context() {
        use MediaKind::Image;
        let list = MediaList {
            images: vec![
                item(Image, "f1", "document-front"),
                item(Image, "p1", "document-front-pre"),
                item(Image, "f2", "document-front"),
                item(Image, "face1", "face"),
                item(Image, "p2", "document-front-pre"),
            ],
            ..Default::default()
        };
        let s = select(&list, OPTS);
        assert_eq!(ids(&s), ["f1", "p1", "face1"]);
        let skipped: Vec<_> = s
            .skipped
            .iter()
            .map(|k| (k.media_id.as_deref().unwrap(), k.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                ("f2", SkipReason::LowerRanked),
                ("p2", SkipReason::LowerRanked)
            ]
        );
    }

    #[test]
    fn every_nfc_document_and_videos_only_when_enabled() {
        let list = MediaList {
            videos: vec![
                item(MediaKind::Video, "v1", "selfid_video"),
                item(MediaKind::Video, "v2", "selfid_video"),
            ],
            nfc_documents: vec![
                item(MediaKind::Nfc, "n1", "document-nfc"),
                MediaItem {
                    context: None,
                    ..item(MediaKind::Nfc, "n2", "")
                },
            ],
            ..Default::default()
        };
        let off = select(&list, OPTS);
        assert_eq!(ids(&off), ["n1", "n2"]);
        assert!(
            off.skipped
                .iter()
                .all(|k| k.reason == SkipReason::VideosDisabled)
        );
        let on = select(
            &list,
            SelectOptions {
                videos: true,
                ..OPTS
            },
        );
        assert_eq!(ids(&on), ["v1", "n1", "n2"]);
        assert_eq!(on.chosen[2].context, NFC_CONTEXT);
        assert_eq!(on.skipped[0].reason, SkipReason::LowerRanked);
    }

    #[test]
    fn unsafe_or_invalid_items_are_skipped_without_claiming_the_context() {
        use MediaKind::Image;
        let list = MediaList {
            images: vec![
                item(Image, "../../etc", "face"),
                item(Image, "ok1", "../face"),
                MediaItem {
                    id: None,
                    ..item(Image, "", "face")
                },
                MediaItem {
                    size: Some(5000),
                    ..item(Image, "big", "face")
                },
                item(Image, "ok2", "face"),
                item(Image, "ok2", "document-back"),
                item(Image, "nul", "face\0"),
            ],
            ..Default::default()
        };
        let s = select(&list, OPTS);
        assert_eq!(ids(&s), ["ok2"]);
        let reasons: Vec<_> = s.skipped.iter().map(|k| k.reason).collect();
        assert_eq!(
            reasons,
            [
                SkipReason::UnsafeId,
                SkipReason::UnsafeContext,
                SkipReason::MissingId,
                SkipReason::TooLarge,
                SkipReason::DuplicateMediaId,
                SkipReason::UnsafeContext,
            ]
        );
    }

    fn listing(images: &[&str], nfc: &[&str]) -> MediaList {
        MediaList {
            images: images
                .iter()
                .map(|id| item(MediaKind::Image, id, "face"))
                .collect(),
            nfc_documents: nfc
                .iter()
                .map(|id| item(MediaKind::Nfc, id, NFC_CONTEXT))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_session_listing_is_used_when_it_shows_the_decided_attempt() {
        let decided = decided_listing(
            Some(listing(&["i1", "i2"], &["n1"])),
            Some(listing(&["i2", "i1"], &[])),
        )
        .unwrap();
        assert_eq!(decided.listing, Listing::Session);
        assert_eq!(decided.listings_matched, Some(true));
        assert_eq!(decided.media.nfc_documents.len(), 1, "NFC included");
        assert!(decided.later_attempt.is_empty());
    }

    #[test]
    fn a_later_attempt_leaves_the_decided_one_from_the_attempt_listing() {
        let decided = decided_listing(
            Some(listing(&["later1"], &["n-later"])),
            Some(listing(&["i1", "i2"], &[])),
        )
        .unwrap();
        assert_eq!(decided.listing, Listing::Attempt);
        assert_eq!(decided.listings_matched, Some(false));
        assert_eq!(decided.media.image_and_video_ids().len(), 2);
        assert!(decided.media.nfc_documents.is_empty());
        assert_eq!(
            decided.later_attempt,
            [Skipped {
                kind: MediaKind::Nfc,
                media_id: Some("n-later".into()),
                context: Some(NFC_CONTEXT.into()),
                reason: SkipReason::LaterAttempt,
            }]
        );
    }

    #[test]
    fn an_attempt_listing_keeps_nfc_documents_of_its_own() {
        // Veriff documents none in the attempt listing; were it to send some, they are the
        // decided attempt's, and kept whether or not the session listing was read.
        let decided = decided_listing(
            Some(listing(&["later1"], &["n-later"])),
            Some(listing(&["i1"], &["n-own"])),
        )
        .unwrap();
        assert_eq!(decided.listing, Listing::Attempt);
        let nfc: Vec<_> = decided
            .media
            .nfc_documents
            .iter()
            .map(|n| n.id.as_deref())
            .collect();
        assert_eq!(nfc, [Some("n-own")]);
        assert_eq!(decided.later_attempt.len(), 1);
        let alone = decided_listing(None, Some(listing(&["i1"], &["n-own"]))).unwrap();
        assert_eq!(alone.media.nfc_documents.len(), 1);
    }

    #[test]
    fn a_listing_is_named_in_logs_as_in_the_manifest() {
        for listing in [Listing::Session, Listing::Attempt] {
            let in_manifest = serde_json::to_value(listing).unwrap();
            assert_eq!(in_manifest, listing.as_str(), "{listing:?}");
        }
        assert_eq!(Listing::Session.as_str(), "session");
        assert_eq!(Listing::Attempt.as_str(), "attempt");
    }

    #[test]
    fn an_id_that_lost_its_context_is_not_taken_again_elsewhere() {
        use MediaKind::Image;
        // f2 is the same file whichever context lists it: lower ranked in `face`, it is not
        // stored again as `document-back`. An id skipped for its size is not claimed.
        let list = MediaList {
            images: vec![
                item(Image, "f1", "face"),
                item(Image, "f2", "face"),
                item(Image, "f2", "document-back"),
                MediaItem {
                    size: Some(1001),
                    ..item(Image, "big", "document-front")
                },
                item(Image, "big", "document-front-pre"),
            ],
            ..Default::default()
        };
        let s = select(&list, OPTS);
        assert_eq!(ids(&s), ["f1", "big"]);
        let reasons: Vec<_> = s.skipped.iter().map(|k| k.reason).collect();
        assert_eq!(
            reasons,
            [
                SkipReason::LowerRanked,
                SkipReason::DuplicateMediaId,
                SkipReason::TooLarge
            ]
        );
    }

    #[test]
    fn a_file_of_exactly_the_size_limit_is_taken() {
        let at_limit = MediaItem {
            size: Some(OPTS.max_file_bytes),
            ..item(MediaKind::Image, "i1", "face")
        };
        let s = select(
            &MediaList {
                images: vec![at_limit],
                ..Default::default()
            },
            OPTS,
        );
        assert_eq!(ids(&s), ["i1"]);
    }

    #[test]
    fn a_single_listing_is_used_as_it_is() {
        let s = decided_listing(Some(listing(&["i1"], &["n1"])), None).unwrap();
        assert_eq!((s.listing, s.listings_matched), (Listing::Session, None));
        assert_eq!(s.media.nfc_documents.len(), 1);
        let a = decided_listing(None, Some(listing(&["i1"], &[]))).unwrap();
        assert_eq!((a.listing, a.listings_matched), (Listing::Attempt, None));
        assert_eq!(decided_listing(None, None), None);
    }

    #[test]
    fn nothing_to_select_from_an_empty_list() {
        assert_eq!(select(&MediaList::default(), OPTS), Selection::default());
    }

    #[test]
    fn listings_not_found_mean_the_media_are_gone_only_when_every_one_was() {
        let list = || Some(MediaList::default());
        let gone = |l: Vec<Listing>| Some(MediaAvailability::Gone(l));
        assert_eq!(decided_media(None, None), None);
        assert_eq!(
            decided_media(Some(None), Some(None)),
            gone(vec![Listing::Session, Listing::Attempt])
        );
        assert_eq!(
            decided_media(Some(None), None),
            gone(vec![Listing::Session])
        );
        assert_eq!(
            decided_media(None, Some(None)),
            gone(vec![Listing::Attempt])
        );
        assert_eq!(
            decided_media(Some(None), Some(list())),
            Some(MediaAvailability::Inconsistent(Listing::Session))
        );
        assert_eq!(
            decided_media(Some(list()), Some(None)),
            Some(MediaAvailability::Inconsistent(Listing::Attempt))
        );
        for (session, attempt, listing) in [
            (Some(list()), Some(list()), Listing::Session),
            (Some(list()), None, Listing::Session),
            (None, Some(list()), Listing::Attempt),
        ] {
            let Some(MediaAvailability::Listed(decided)) = decided_media(session, attempt) else {
                panic!("listed")
            };
            assert_eq!(decided.listing, listing);
        }
    }
}
