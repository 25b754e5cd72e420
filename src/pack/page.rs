//! What the evidence pack's page shows, as plain values: the audited session in time
//! order, each decision's non-personal fields, each file with its record and this run's
//! result, and the proven images as `data:` URIs. `templates/report.html` lays it out
//! (askama escapes every value).
//!
//! Pure: built from an [`AuditReport`] and the bytes [`crate::audit::Auditor::prove`]
//! returned.

use std::collections::HashMap;
use std::time::SystemTime;

use askama::Template;
use base64::Engine;
use bytes::Bytes;

use crate::audit::{
    AttemptAudit, AuditReport, FileAudit, FileId, FileResult, ManifestAudit, Problem, ProblemClass,
    SignatureCheck,
};
use crate::domain::WebhookKind;
use crate::layout::{self, UNKNOWN_TIME};
use crate::units::exact_bytes;

/// The page's Content-Security-Policy: inline styles and `data:` images, nothing else (no
/// script, no request of any kind).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

/// The page's only style sheet (the export's index page uses it too).
pub(super) const STYLE: &str = include_str!("../../templates/report.css");

/// The whole page.
#[derive(Template)]
#[template(path = "report.html")]
pub struct Page<'a> {
    csp: &'static str,
    style: &'static str,
    session: &'a str,
    bucket: &'a str,
    prefix: &'a str,
    generated_at: String,
    deep: bool,
    signatures_checked: bool,
    files: u64,
    problems: u64,
    breakdown: String,
    counts: Vec<Count>,
    problem_lists: Vec<(&'static str, &'a [Problem])>,
    attempts: Vec<AttemptView<'a>>,
    version: &'static str,
}

/// One number of the summary table; `alarm` when it counts problems and is not zero.
struct Count {
    n: u64,
    alarm: bool,
}

/// One attempt folder.
struct AttemptView<'a> {
    id: &'a str,
    n: usize,
    total: usize,
    folder: &'a str,
    decisions: Vec<DecisionView<'a>>,
}

/// One decision (manifest).
struct DecisionView<'a> {
    n: usize,
    total: usize,
    status: String,
    time: String,
    fields: Vec<(&'static str, String)>,
    signature: &'static str,
    signature_class: &'static str,
    key: &'a str,
    unavailable: Option<String>,
    readable: bool,
    files: Vec<FileView<'a>>,
    payload: Option<FileView<'a>>,
    skipped: Vec<[String; 4]>,
}

/// One file's card.
struct FileView<'a> {
    problem: bool,
    anchor: Option<String>,
    title: String,
    /// The anchor of the card that already shows the same stored image.
    same_as: Option<String>,
    /// The image as a `data:` URI, and its alternative text.
    image: Option<(String, String)>,
    /// What the file is, when it is not shown.
    line: Option<String>,
    result: &'static str,
    detail: Option<&'a str>,
    sha256: &'a str,
    size: String,
    key: &'a str,
    version: &'a str,
    media_id: Option<&'a str>,
    content_type: String,
}

impl<'a> Page<'a> {
    /// The page of `session` from its audit and the images proven byte for byte.
    pub fn new(
        report: &'a AuditReport,
        session: &'a str,
        images: &HashMap<FileId, Bytes>,
        generated_at: SystemTime,
    ) -> Self {
        let s = &report.summary;
        let plain = [s.attempts, s.manifests, s.files, s.bytes, s.ok];
        let counts = plain
            .iter()
            .map(|&n| Count { n, alarm: false })
            .chain(ProblemClass::ARCHIVE.iter().map(|&c| Count {
                n: s.count(c),
                alarm: s.count(c) > 0,
            }))
            .collect();
        let problem_lists = ProblemClass::ALL
            .iter()
            .map(|&c| (c.title(), report.problems.of(c)))
            .filter(|(_, list)| !list.is_empty())
            .collect();
        Page {
            csp: CONTENT_SECURITY_POLICY,
            style: STYLE,
            session,
            bucket: &report.bucket,
            prefix: if report.prefix.is_empty() {
                "(none)"
            } else {
                &report.prefix
            },
            generated_at: humantime::format_rfc3339_seconds(generated_at).to_string(),
            deep: report.deep,
            signatures_checked: report.signatures_checked,
            files: s.files,
            problems: s.problems(),
            breakdown: s.breakdown(),
            counts,
            problem_lists,
            attempts: attempts(report, session, images),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

impl Page<'_> {
    /// The page as HTML: every value escaped for its place.
    pub fn html(&self) -> Result<String, askama::Error> {
        self.render()
    }
}

/// The session's attempts in time order, each with its decisions and files. A stored
/// image is shown once; later cards of the same object point to the first.
fn attempts<'a>(
    report: &'a AuditReport,
    session: &str,
    images: &HashMap<FileId, Bytes>,
) -> Vec<AttemptView<'a>> {
    let ordered: Vec<&AttemptAudit> = report
        .sessions
        .iter()
        .filter(|s| s.session_id == session)
        .flat_map(|s| attempts_in_time_order(&s.attempts))
        .collect();
    let decisions: usize = ordered.iter().map(|a| a.manifests.len()).sum();
    let mut cards = Cards {
        images,
        shown: HashMap::new(),
    };
    let mut decision_no = 0;
    let mut out = Vec::with_capacity(ordered.len());
    for (i, attempt) in ordered.iter().enumerate() {
        let mut views = Vec::with_capacity(attempt.manifests.len());
        for manifest in &attempt.manifests {
            decision_no += 1;
            let numbered = (decision_no, decisions);
            views.push(decision(
                manifest,
                numbered,
                report.signatures_checked,
                &mut cards,
            ));
        }
        out.push(AttemptView {
            id: &attempt.attempt_id,
            n: i + 1,
            total: ordered.len(),
            folder: &attempt.folder,
            decisions: views,
        });
    }
    out
}

/// The decision time a manifest sorts by: as the archive names it (UTC, sortable).
fn decision_sort_time(manifest: &ManifestAudit) -> Option<String> {
    let from_decision = manifest
        .decision
        .as_ref()
        .map(|d| layout::sortable_time(d.decision_time.as_deref()));
    let from_key = || {
        layout::parse_manifest_key("", manifest.key.rsplit('/').next().unwrap_or_default())
            .and_then(|n| n.decision)
            .map(|d| d.time)
    };
    from_decision
        .or_else(from_key)
        .filter(|t| t != UNKNOWN_TIME)
}

/// Attempts in time order: by their earliest decision; attempts without a dated decision
/// last, by id.
fn attempts_in_time_order(attempts: &[AttemptAudit]) -> Vec<&AttemptAudit> {
    let mut sorted: Vec<(Option<String>, &AttemptAudit)> = attempts
        .iter()
        .map(|a| (a.manifests.iter().filter_map(decision_sort_time).min(), a))
        .collect();
    sorted.sort_by(|(ta, a), (tb, b)| match (ta, tb) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.attempt_id.cmp(&b.attempt_id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.attempt_id.cmp(&b.attempt_id),
    });
    sorted.into_iter().map(|(_, a)| a).collect()
}

/// One decision's view: its fields, signature, files and what was not archived.
fn decision<'a>(
    manifest: &'a ManifestAudit,
    (n, total): (usize, usize),
    signatures_checked: bool,
    cards: &mut Cards,
) -> DecisionView<'a> {
    let decided = manifest.decision.as_ref();
    let (signature, signature_class) = match manifest.signature {
        SignatureCheck::Valid => ("valid: verified with the public key", "ok"),
        SignatureCheck::Invalid => ("INVALID: does not verify with the public key", "bad"),
        SignatureCheck::Unsigned if signatures_checked => {
            ("MISSING: the manifest is not signed", "bad")
        }
        SignatureCheck::Unsigned => ("not signed", "neutral"),
        SignatureCheck::NotChecked => ("signed; not checked (no public key given)", "neutral"),
    };
    let readable = manifest.readable;
    DecisionView {
        n,
        total,
        status: decided.map_or_else(|| "unreadable manifest".into(), |d| d.status.clone()),
        time: decided
            .and_then(|d| d.decision_time.clone())
            .unwrap_or_else(|| "time unknown".into()),
        fields: decision_fields(manifest),
        signature,
        signature_class,
        key: &manifest.key,
        unavailable: manifest
            .media_unavailable
            .as_ref()
            .map(|gone| gone.endpoints.join(" and ")),
        readable,
        files: if readable {
            manifest.files.iter().map(|f| cards.card(f)).collect()
        } else {
            Vec::new()
        },
        payload: manifest
            .decision_payload
            .as_ref()
            .filter(|_| readable)
            .map(|f| cards.card(f)),
        skipped: manifest
            .skipped
            .iter()
            .filter(|_| readable)
            .map(|item| {
                let reason = item.reason;
                [
                    item.kind.as_str().to_string(),
                    item.media_id.clone().unwrap_or_else(|| "(none)".into()),
                    item.context.clone().unwrap_or_else(|| "(none)".into()),
                    format!("{}: {}", reason.as_str(), reason.explanation()),
                ]
            })
            .collect(),
    }
}

/// The labelled fields of a decision, from `Decided by` to `Schema version`.
fn decision_fields(manifest: &ManifestAudit) -> Vec<(&'static str, String)> {
    let none = || "none".to_string();
    let mut fields = Vec::new();
    if let Some(d) = &manifest.decision {
        let decided_by = match d.webhook {
            WebhookKind::Decision => "the decision webhook",
            WebhookKind::FullAuto => "a Full Auto result (Essential plan)",
        };
        fields.push(("Decided by", decided_by.to_string()));
        fields.push(("Status", d.status.clone()));
        if let Some(score) = d.decision_score {
            fields.push(("Decision score", score.to_string()));
        }
        fields.push(("Code", d.code.map_or_else(none, |c| c.to_string())));
        fields.push(("Reason", d.reason.clone().unwrap_or_else(none)));
        let reason_code = match &d.reason_code {
            None | Some(serde_json::Value::Null) => none(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        fields.push(("Reason code", reason_code));
        fields.push((
            "Decision time",
            d.decision_time.clone().unwrap_or_else(none),
        ));
    } else {
        let unreadable = "the manifest does not parse: see Problems".to_string();
        fields.push(("Status", unreadable));
    }
    fields.push((
        "Archived at",
        manifest.archived_at.clone().unwrap_or_else(none),
    ));
    let schema = manifest.schema_version.map(|v| v.to_string());
    fields.push(("Schema version", schema.unwrap_or_else(|| "unknown".into())));
    fields
}

/// The file cards made so far: which stored object each first card shows, by anchor.
struct Cards<'i> {
    images: &'i HashMap<FileId, Bytes>,
    shown: HashMap<FileId, String>,
}

impl Cards<'_> {
    /// The card of one file: the image itself (first time), a pointer to the card that
    /// shows it, or a line saying what the file is.
    fn card<'a>(&mut self, file: &'a FileAudit) -> FileView<'a> {
        let id = FileId::of(file);
        let anchor = format!("file-{}", self.shown.len() + 1);
        let earlier = self.shown.get(&id).cloned();
        let size = exact_bytes(file.size);
        let content_type = if file.content_type.is_empty() {
            "no content type".to_string()
        } else {
            file.content_type.clone()
        };
        let proven = self.images.get(&id).zip(inline_mime(file));
        let (same_as, image, line) = match (proven, earlier.clone()) {
            (Some(_), Some(earlier)) => (Some(earlier), None, None),
            (Some((bytes, mime)), None) => {
                let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                let alt = format!("{} image, {size}", file.context);
                (
                    None,
                    Some((format!("data:{mime};base64,{data}"), alt)),
                    None,
                )
            }
            (None, _) => (None, None, Some(media_line(file, &content_type, &size))),
        };
        if earlier.is_none() {
            self.shown.insert(id, anchor.clone());
        }
        FileView {
            problem: file.result != FileResult::Ok,
            anchor: earlier.is_none().then_some(anchor),
            title: match file.kind.as_str() {
                "decision" => "Webhook body".to_string(),
                kind => format!("{}: {}", kind_label(kind), file.context),
            },
            same_as,
            image,
            line,
            result: file.result.as_str(),
            detail: file.detail.as_deref(),
            sha256: &file.sha256,
            size,
            key: &file.key,
            version: file.version_id.as_deref().unwrap_or("none recorded"),
            media_id: Some(file.media_id.as_str()).filter(|m| !m.is_empty()),
            content_type,
        }
    }
}

/// The line that stands for a file the page does not show.
fn media_line(file: &FileAudit, content_type: &str, size: &str) -> String {
    match file.kind.as_str() {
        "image" => {
            let why = match file.result {
                FileResult::Missing => "the object is missing from the archive".to_string(),
                FileResult::Altered => {
                    "the stored object differs from its record, so it is not evidence".to_string()
                }
                FileResult::Ok if inline_mime(file).is_none() => {
                    format!(
                        "its content type ({content_type}) is not an image type a browser shows"
                    )
                }
                FileResult::Ok => "it is too large to embed".to_string(),
            };
            format!("Image ({content_type}), {size}: not shown, {why}.")
        }
        "video" => format!(
            "Video ({content_type}), {size}: a recording of the verification session, not \
             shown inline; it is in the archive at the key below."
        ),
        "nfc" => format!(
            "NFC data ({content_type}), {size}: data read from the identity document's chip, \
             not shown; it is in the archive at the key below."
        ),
        "decision" => {
            format!("Decision webhook body ({content_type}), {size}: not shown (personal data).")
        }
        kind => format!("File of kind {kind} ({content_type}), {size}: not shown."),
    }
}

fn kind_label(kind: &str) -> &str {
    match kind {
        "image" => "Image",
        "video" => "Video",
        "nfc" => "NFC data",
        other => other,
    }
}

/// The content type to inline a file with: an image whose recorded content type is a plain
/// `image/<subtype>` token (anything else would not be a safe `data:` URI).
pub fn inline_mime(file: &FileAudit) -> Option<&str> {
    let mime = file.content_type.trim();
    let subtype = mime.strip_prefix("image/")?;
    let token = !subtype.is_empty()
        && subtype
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    (file.kind == "image" && token).then_some(mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(kind: &str, content_type: &str) -> FileAudit {
        FileAudit {
            key: "p/s/a/k".into(),
            media_id: "m".into(),
            kind: kind.into(),
            context: "face".into(),
            content_type: content_type.into(),
            size: 1,
            sha256: "00".into(),
            version_id: None,
            etag: None,
            s3_checksum: None,
            result: FileResult::Ok,
            detail: None,
        }
    }

    #[test]
    fn only_images_with_a_plain_image_type_are_inlined() {
        assert_eq!(
            inline_mime(&file("image", "image/jpeg")),
            Some("image/jpeg")
        );
        assert_eq!(
            inline_mime(&file("image", "image/svg+xml")),
            Some("image/svg+xml")
        );
        assert_eq!(inline_mime(&file("image", "")), None);
        assert_eq!(inline_mime(&file("image", "image/")), None);
        assert_eq!(inline_mime(&file("image", "image/png;base64,AAAA")), None);
        assert_eq!(inline_mime(&file("image", "image/png\" onload=\"x")), None);
        assert_eq!(inline_mime(&file("image", "text/html")), None);
        assert_eq!(inline_mime(&file("video", "image/gif")), None);
        assert_eq!(inline_mime(&file("nfc", "image/png")), None);
    }

    #[test]
    fn a_file_not_shown_is_described() {
        let mut missing = file("image", "image/png");
        missing.result = FileResult::Missing;
        assert_eq!(
            media_line(&missing, "image/png", "1 byte"),
            "Image (image/png), 1 byte: not shown, the object is missing from the archive."
        );
        assert!(
            media_line(&file("image", "text/html"), "text/html", "1 byte")
                .contains("its content type (text/html) is not an image type a browser shows")
        );
        assert!(media_line(&file("nfc", ""), "x", "2 bytes").starts_with("NFC data (x), 2 bytes"));
        assert!(media_line(&file("odd", ""), "x", "2 bytes").starts_with("File of kind odd"));
    }

    #[test]
    fn a_stored_image_is_shown_once_and_pointed_to_after() {
        let face = file("image", "image/png");
        let images = HashMap::from([(FileId::of(&face), Bytes::from_static(b"PNG"))]);
        let mut cards = Cards {
            images: &images,
            shown: HashMap::new(),
        };
        let first = cards.card(&face);
        assert_eq!(first.anchor.as_deref(), Some("file-1"));
        let (src, alt) = first.image.unwrap();
        assert_eq!(src, "data:image/png;base64,UE5H");
        assert_eq!(alt, "face image, 1 byte");
        let again = cards.card(&face);
        assert_eq!(again.anchor, None);
        assert_eq!(again.same_as.as_deref(), Some("file-1"));
        assert!(again.image.is_none() && again.line.is_none());
    }
}
