//! S3 key layout: where each archived file and the manifest live.
//!
//! One folder per decided attempt: `<prefix><sessionId>/<attemptId>/`, holding one file per
//! chosen media (`<context>.<ext>`, or `<context>.<mediaId>.<ext>` where two chosen files
//! would share a name) and `manifest.json`. Every segment that comes from the wire is checked
//! by [`is_safe_segment`] first, so no key can leave the session's folder. No I/O here.

use std::collections::HashMap;

use crate::select::Chosen;
use crate::veriff::media::MediaKind;

/// Longest id or context accepted in a key or URL path.
pub const MAX_SEGMENT_LEN: usize = 128;

/// Whether `s` may be used as one path segment of a key or URL: 1-128 ASCII letters,
/// digits, `-` or `_`, starting with a letter or digit. This deliberately accepts Veriff's
/// documented ids that are not valid hex UUIDs, and rejects `.`, `/`, `%`, control and
/// non-ASCII characters outright.
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT_LEN
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The archive folder of one decided attempt: `<prefix><sessionId>/<attemptId>/`.
/// Callers pass ids already validated with [`is_safe_segment`].
pub fn attempt_folder(prefix: &str, session_id: &str, attempt_id: &str) -> String {
    debug_assert!(is_safe_segment(session_id) && is_safe_segment(attempt_id));
    format!("{prefix}{session_id}/{attempt_id}/")
}

/// The manifest key inside an attempt folder.
pub fn manifest_key(folder: &str) -> String {
    format!("{folder}manifest.json")
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

/// One chosen file's naming inputs.
#[derive(Debug, Clone, Copy)]
pub struct NameInput<'a> {
    /// Veriff media id (safe segment).
    pub media_id: &'a str,
    /// Media context (safe segment).
    pub context: &'a str,
    /// File extension.
    pub ext: &'a str,
}

/// Deterministic, collision-free object keys for the chosen files of one folder.
/// `<context>.<ext>` when that name is unique among the inputs, else `<context>.<mediaId>.<ext>`
/// for every file sharing it. Safe segments never contain `.`, so a one-dot name can never
/// equal a two-dot name, and two-dot names differ because media ids are unique. No
/// extension is `json`, so no file can take the manifest's key.
pub fn file_keys(folder: &str, files: &[NameInput<'_>]) -> Vec<String> {
    let mut uses: HashMap<(&str, &str), usize> = HashMap::new();
    for f in files {
        *uses.entry((f.context, f.ext)).or_default() += 1;
    }
    files
        .iter()
        .map(|f| {
            debug_assert!(is_safe_segment(f.context) && is_safe_segment(f.media_id));
            if uses[&(f.context, f.ext)] == 1 {
                format!("{folder}{}.{}", f.context, f.ext)
            } else {
                format!("{folder}{}.{}.{}", f.context, f.media_id, f.ext)
            }
        })
        .collect()
}

/// The object key of each chosen file, in order: the extension from its mimetype, the name
/// from [`file_keys`]. The one place the archive (and its tests) derive keys.
pub fn keys_for(folder: &str, chosen: &[Chosen]) -> Vec<String> {
    let exts: Vec<&'static str> = chosen
        .iter()
        .map(|c| extension_for(c.mimetype.as_deref(), c.kind))
        .collect();
    let names: Vec<NameInput<'_>> = chosen
        .iter()
        .zip(&exts)
        .map(|(c, ext)| NameInput {
            media_id: &c.media_id,
            context: &c.context,
            ext,
        })
        .collect();
    file_keys(folder, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_segments_accept_documented_ids_and_reject_escapes() {
        for ok in [
            "f04bdb47-d3be-4b28-b028-a652feb060b5",
            "e7ab18d1-5545-5e47-af7b-e23gb6247f80",
            "document-front-pre",
            "selfid_video",
        ] {
            assert!(is_safe_segment(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a%2Fb",
            "a\\b",
            "a\0b",
            "a\nb",
            "-lead",
            "_lead",
            "é",
            "a.b",
            " a",
            &"a".repeat(129),
        ] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
    }

    #[test]
    fn keys_live_in_the_attempt_folder() {
        let folder = attempt_folder("veriff/", "s1", "a1");
        assert_eq!(folder, "veriff/s1/a1/");
        assert_eq!(manifest_key(&folder), "veriff/s1/a1/manifest.json");
        let keys = file_keys(
            &folder,
            &[
                NameInput {
                    media_id: "m1",
                    context: "document-front",
                    ext: "jpg",
                },
                NameInput {
                    media_id: "m2",
                    context: "document-nfc",
                    ext: "bin",
                },
                NameInput {
                    media_id: "m3",
                    context: "document-nfc",
                    ext: "bin",
                },
            ],
        );
        assert_eq!(
            keys,
            [
                "veriff/s1/a1/document-front.jpg",
                "veriff/s1/a1/document-nfc.m2.bin",
                "veriff/s1/a1/document-nfc.m3.bin",
            ]
        );
    }

    #[test]
    fn disambiguated_names_cannot_collide_with_plain_ones() {
        // Found by the hostile-input property tests: with '-' as the joiner,
        // ("manifest", id "x") and ("manifest-x", id "y") both became "manifest-x.bin".
        let files = [
            NameInput {
                media_id: "i",
                context: "a-b",
                ext: "bin",
            },
            NameInput {
                media_id: "b",
                context: "a",
                ext: "bin",
            },
            NameInput {
                media_id: "c",
                context: "a",
                ext: "bin",
            },
            NameInput {
                media_id: "x",
                context: "manifest",
                ext: "bin",
            },
            NameInput {
                media_id: "y",
                context: "manifest-x",
                ext: "bin",
            },
        ];
        let keys = file_keys("f/", &files);
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        assert!(!keys.iter().any(|k| k == "f/manifest.json"));
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
}
