//! Proving files by their bytes after an audit: which stored files to download (each
//! distinct object once), and how a download that disagrees with the record changes the
//! audit, so that what a reader is shown and the audit's result never disagree.
//!
//! Pure: [`super::Auditor::prove`] does the downloads.

use std::fmt::Write as _;

use super::{AuditReport, FileAudit, FileResult, Problem};

/// A stored object as a manifest records it: its key and recorded version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// The object's key.
    pub key: String,
    /// The recorded version id, when one was recorded.
    pub version_id: Option<String>,
}

impl FileId {
    /// The id of an audited file.
    pub fn of(file: &FileAudit) -> Self {
        FileId {
            key: file.key.clone(),
            version_id: file.version_id.clone(),
        }
    }
}

/// One file to download and hash: what it must hash to, and the first manifest that
/// lists it (named in a problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ToProve {
    pub id: FileId,
    pub sha256: String,
    pub manifest: String,
}

/// Every file (media and webhook bodies) of every manifest in the report.
pub fn all_files(report: &AuditReport) -> impl Iterator<Item = &FileAudit> {
    report
        .sessions
        .iter()
        .flat_map(|s| &s.attempts)
        .flat_map(|a| &a.manifests)
        .flat_map(|m| m.files.iter().chain(&m.decision_payload))
}

/// The distinct files the audit found intact that `wanted` picks, in report order.
pub(super) fn to_prove(report: &AuditReport, wanted: &dyn Fn(&FileAudit) -> bool) -> Vec<ToProve> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for session in &report.sessions {
        for manifest in session.attempts.iter().flat_map(|a| &a.manifests) {
            for file in manifest.files.iter().chain(&manifest.decision_payload) {
                let id = FileId::of(file);
                if file.result == FileResult::Ok && wanted(file) && seen.insert(id.clone()) {
                    out.push(ToProve {
                        id,
                        sha256: file.sha256.clone(),
                        manifest: manifest.key.clone(),
                    });
                }
            }
        }
    }
    out
}

/// What a download showed: the SHA-256 of the bytes, or no object at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Downloaded {
    /// The object's bytes hash to this (lowercase hex).
    Hashed(String),
    /// No such object (or version).
    Gone,
}

/// Records what a download found when it disagrees with the record: every listing of the
/// file turns missing or altered, the counts move from ok, and one problem names the
/// first manifest that lists it. A download that agrees changes nothing; returns whether
/// the file proved intact.
pub(super) fn record_download(
    report: &mut AuditReport,
    file: &ToProve,
    downloaded: &Downloaded,
) -> bool {
    let (result, detail) = match downloaded {
        Downloaded::Hashed(found) if *found == file.sha256 => return true,
        Downloaded::Hashed(found) => (
            FileResult::Altered,
            format!("SHA-256 {found} (downloaded to prove it)"),
        ),
        Downloaded::Gone => (
            FileResult::Missing,
            "no such object (downloaded to prove it)".to_string(),
        ),
    };
    let mut record = None;
    for session in &mut report.sessions {
        for manifest in session.attempts.iter_mut().flat_map(|a| &mut a.manifests) {
            let files = manifest
                .files
                .iter_mut()
                .chain(&mut manifest.decision_payload);
            for listed in files.filter(|f| FileId::of(f) == file.id) {
                listed.result = result;
                listed.detail = Some(detail.clone());
                record.get_or_insert((listed.size, listed.sha256.clone()));
            }
        }
    }
    let (size, sha256) = record.unwrap_or_default();
    let mut expected = format!("{size} bytes, SHA-256 {sha256}");
    if let Some(version) = &file.id.version_id {
        let _ = write!(expected, ", version {version}");
    }
    let problem = Problem {
        key: file.id.key.clone(),
        expected: Some(expected),
        found: Some(detail),
        manifest: Some(file.manifest.clone()),
    };
    let summary = &mut report.summary;
    summary.ok = summary.ok.saturating_sub(1);
    if result == FileResult::Missing {
        summary.missing += 1;
        report.problems.missing.push(problem);
    } else {
        summary.altered += 1;
        report.problems.altered.push(problem);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AttemptAudit, ManifestAudit, SessionAudit, SignatureCheck, Summary};

    fn file(key: &str, sha256: &str, version: Option<&str>) -> FileAudit {
        FileAudit {
            key: key.into(),
            media_id: "m".into(),
            kind: "image".into(),
            context: "face".into(),
            content_type: "image/jpeg".into(),
            size: 10,
            sha256: sha256.into(),
            version_id: version.map(str::to_string),
            etag: None,
            s3_checksum: None,
            result: FileResult::Ok,
            detail: None,
        }
    }

    fn manifest(key: &str, files: Vec<FileAudit>, body: Option<FileAudit>) -> ManifestAudit {
        ManifestAudit {
            key: key.into(),
            readable: true,
            schema_version: Some(3),
            decision: None,
            archived_at: None,
            signature: SignatureCheck::Unsigned,
            files,
            decision_payload: body,
            skipped: vec![],
            media_unavailable: None,
            sha256: None,
        }
    }

    /// Two decisions of one attempt listing the same face; the first also a body.
    fn report() -> AuditReport {
        let first = manifest(
            "p/s/a/m1.json",
            vec![
                file("p/s/a/face", "aa", Some("v1")),
                file("p/s/a/doc", "bb", None),
            ],
            Some(file("p/s/a/body", "cc", None)),
        );
        let second = manifest(
            "p/s/a/m2.json",
            vec![file("p/s/a/face", "aa", Some("v1"))],
            None,
        );
        AuditReport {
            summary: Summary {
                files: 3,
                ok: 3,
                ..Summary::default()
            },
            sessions: vec![SessionAudit {
                session_id: "s".into(),
                attempts: vec![AttemptAudit {
                    attempt_id: "a".into(),
                    folder: "p/s/a/".into(),
                    manifests: vec![first, second],
                }],
            }],
            ..AuditReport::default()
        }
    }

    #[test]
    fn file_results_name_themselves_as_verify_json_does() {
        for result in [FileResult::Ok, FileResult::Missing, FileResult::Altered] {
            assert_eq!(
                serde_json::to_value(result).unwrap(),
                serde_json::Value::from(result.as_str())
            );
        }
    }

    #[test]
    fn each_wanted_intact_file_is_proved_once_naming_the_first_manifest() {
        let mut r = report();
        let all = to_prove(&r, &|_| true);
        let keys: Vec<&str> = all.iter().map(|f| f.id.key.as_str()).collect();
        assert_eq!(keys, ["p/s/a/face", "p/s/a/doc", "p/s/a/body"]);
        assert_eq!(all[0].manifest, "p/s/a/m1.json");
        assert_eq!(all[0].sha256, "aa");
        assert_eq!(all[0].id.version_id.as_deref(), Some("v1"));

        let faces = to_prove(&r, &|f| f.key.ends_with("face"));
        assert_eq!(faces.len(), 1);

        // A file the audit already found broken is not downloaded again.
        r.sessions[0].attempts[0].manifests[0].files[1].result = FileResult::Missing;
        let keys: Vec<String> = to_prove(&r, &|_| true)
            .into_iter()
            .map(|f| f.id.key)
            .collect();
        assert_eq!(keys, ["p/s/a/face", "p/s/a/body"]);
    }

    #[test]
    fn a_matching_download_changes_nothing() {
        let mut r = report();
        let face = to_prove(&r, &|_| true).remove(0);
        assert!(record_download(
            &mut r,
            &face,
            &Downloaded::Hashed("aa".into())
        ));
        assert_eq!(r.summary.ok, 3);
        assert!(r.problems.altered.is_empty() && r.problems.missing.is_empty());
    }

    #[test]
    fn an_altered_download_marks_every_listing_and_moves_one_count() {
        let mut r = report();
        let face = to_prove(&r, &|_| true).remove(0);
        assert!(!record_download(
            &mut r,
            &face,
            &Downloaded::Hashed("ff".into())
        ));
        let manifests = &r.sessions[0].attempts[0].manifests;
        for m in manifests {
            assert_eq!(m.files[0].result, FileResult::Altered);
            assert_eq!(
                m.files[0].detail.as_deref(),
                Some("SHA-256 ff (downloaded to prove it)")
            );
        }
        assert_eq!(
            manifests[0].files[1].result,
            FileResult::Ok,
            "the other file"
        );
        assert_eq!(
            (r.summary.ok, r.summary.altered, r.summary.missing),
            (2, 1, 0)
        );
        assert_eq!(
            r.problems.altered,
            [Problem {
                key: "p/s/a/face".into(),
                expected: Some("10 bytes, SHA-256 aa, version v1".into()),
                found: Some("SHA-256 ff (downloaded to prove it)".into()),
                manifest: Some("p/s/a/m1.json".into()),
            }]
        );
    }

    #[test]
    fn a_vanished_download_is_missing_including_a_webhook_body() {
        let mut r = report();
        let body = to_prove(&r, &|f| f.key.ends_with("body")).remove(0);
        assert!(!record_download(&mut r, &body, &Downloaded::Gone));
        let payload = r.sessions[0].attempts[0].manifests[0]
            .decision_payload
            .as_ref()
            .unwrap();
        assert_eq!(payload.result, FileResult::Missing);
        assert_eq!(
            (r.summary.ok, r.summary.altered, r.summary.missing),
            (2, 0, 1)
        );
        assert_eq!(
            r.problems.missing[0].expected.as_deref(),
            Some("10 bytes, SHA-256 cc")
        );
        assert_eq!(
            r.problems.missing[0].found.as_deref(),
            Some("no such object (downloaded to prove it)")
        );
        assert_eq!(all_files(&r).count(), 4);
    }
}
