//! Which media to keep, and why the rest was skipped.
//!
//! Images: the first valid item of each `context`, in the order Veriff returned (that order
//! is the ranking; `-pre` contexts are contexts of their own). Videos: the same, when
//! enabled. NFC documents: every one. Items with a missing or unsafe id or context, a
//! repeated id, or an announced size above the limit are skipped, and do not claim their
//! context. Every skipped item is reported with its reason. No I/O here.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::layout::{MAX_SEGMENT_LEN, is_safe_segment};
use crate::veriff::media::{MediaItem, MediaKind, MediaList};

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

/// A file chosen for the archive. `media_id` and `context` are safe path segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// Which array it came from.
    pub kind: MediaKind,
    /// Veriff media id.
    pub media_id: String,
    /// Media context.
    pub context: String,
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
    let mut taken: HashSet<(MediaKind, String)> = HashSet::new();

    let all = list
        .images
        .iter()
        .chain(list.videos.iter())
        .chain(list.nfc_documents.iter());
    for item in all {
        match judge(item, options, &seen_ids, &taken) {
            Ok(chosen) => {
                seen_ids.insert(chosen.media_id.clone());
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
    taken: &HashSet<(MediaKind, String)>,
) -> Result<Chosen, SkipReason> {
    let id = item.id.as_deref().ok_or(SkipReason::MissingId)?;
    if !is_safe_segment(id) {
        return Err(SkipReason::UnsafeId);
    }
    let context = match (item.kind, item.context.as_deref()) {
        (_, Some(c)) => c,
        (MediaKind::Nfc, None) => NFC_CONTEXT,
        (_, None) => return Err(SkipReason::MissingContext),
    };
    if !is_safe_segment(context) {
        return Err(SkipReason::UnsafeContext);
    }
    if seen_ids.contains(id) {
        return Err(SkipReason::DuplicateMediaId);
    }
    if item.kind == MediaKind::Video && !options.videos {
        return Err(SkipReason::VideosDisabled);
    }
    if item.kind != MediaKind::Nfc && taken.contains(&(item.kind, context.to_string())) {
        return Err(SkipReason::LowerRanked);
    }
    if item.size.is_some_and(|s| s > options.max_file_bytes) {
        return Err(SkipReason::TooLarge);
    }
    Ok(Chosen {
        kind: item.kind,
        media_id: id.to_string(),
        context: context.to_string(),
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

    #[test]
    fn nothing_to_select_from_an_empty_list() {
        assert_eq!(select(&MediaList::default(), OPTS), Selection::default());
    }
}
