//! The audit's rules, apart from the reading: which listed objects make up an attempt
//! folder, in which order a folder's manifests are read, what a stored object must match,
//! which objects are orphans and which folders are gaps, and how it all is counted.
//!
//! Pure functions over what [`super::Auditor`] read from S3, so each rule is unit-tested
//! (and mutation-tested, see `mutants.md`) without a bucket.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    AttemptAudit, FileAudit, FileResult, ManifestAudit, Problem, Problems, SessionAudit,
    SignatureCheck, Summary,
};
use crate::domain::SafeId;
use crate::layout;
use crate::manifest::{FileRecord, Manifest, S3Checksum};
use crate::signing::signature_key;
use crate::stored::{ListedObject, ObjectHead, same_checksum};

/// The objects of one attempt folder, as listed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct FolderObjects {
    pub session_id: String,
    pub attempt_id: String,
    /// Every key in the folder, with its size.
    pub keys: BTreeMap<String, u64>,
}

/// What one file record must match, and which manifest listed it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expected {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    pub s3_checksum: Option<S3Checksum>,
    pub manifest: String,
}

impl Problems {
    /// Moves every problem of `other` to the end of this one's lists.
    pub(super) fn append(&mut self, mut other: Problems) {
        self.missing.append(&mut other.missing);
        self.altered.append(&mut other.altered);
        self.unreadable.append(&mut other.unreadable);
        self.unsigned.append(&mut other.unsigned);
        self.bad_signature.append(&mut other.bad_signature);
        self.orphans.append(&mut other.orphans);
        self.gaps.append(&mut other.gaps);
        self.removed.append(&mut other.removed);
        self.changed.append(&mut other.changed);
        self.covered.append(&mut other.covered);
        self.ledger.append(&mut other.ledger);
        self.unsealed.append(&mut other.unsealed);
        self.unarchived.append(&mut other.unarchived);
    }
}

/// One file's check: the record, its result, and what differed.
pub(super) type Checked = (Expected, FileResult, Option<String>);

/// Sorts listed objects into attempt folders (`<prefix><session>/<attempt>/<name>`, both ids
/// safe segments, the name without a `/`). Anything else under the prefix is a stray,
/// returned with its size.
pub(super) fn sort_into_folders(
    prefix: &str,
    objects: Vec<ListedObject>,
    folders: &mut BTreeMap<String, FolderObjects>,
) -> Vec<(String, u64)> {
    let mut strays = Vec::new();
    for object in objects {
        let rest = object.key.strip_prefix(prefix).unwrap_or_default();
        let parts: Vec<&str> = rest.splitn(3, '/').collect();
        let ids = match parts.as_slice() {
            [session, attempt, name] if !name.is_empty() && !name.contains('/') => {
                SafeId::parse(*session)
                    .ok()
                    .zip(SafeId::parse(*attempt).ok())
            }
            _ => None,
        };
        let Some((session, attempt)) = ids else {
            strays.push((object.key, object.size));
            continue;
        };
        let folder = layout::attempt_folder(prefix, &session, &attempt);
        let entry = folders.entry(folder).or_insert_with(|| FolderObjects {
            session_id: session.to_string(),
            attempt_id: attempt.to_string(),
            keys: BTreeMap::new(),
        });
        entry.keys.insert(object.key, object.size);
    }
    strays
}

/// The manifests of a folder in reading order: the legacy `manifest.json` first, then the
/// per-decision manifests by name (decision time, then fingerprint and revision).
pub(super) fn manifest_keys_in_order<'a>(folder: &str, objects: &'a FolderObjects) -> Vec<&'a str> {
    let mut keys: Vec<(bool, &str)> = objects
        .keys
        .keys()
        .filter_map(|k| {
            layout::parse_manifest_key(folder, k).map(|n| (n.decision.is_some(), k.as_str()))
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, key)| key).collect()
}

/// A manifest's signature as far as the listing tells, with no public key to check it.
pub(super) fn unchecked_signature(has_signature: bool) -> SignatureCheck {
    if has_signature {
        SignatureCheck::NotChecked
    } else {
        SignatureCheck::Unsigned
    }
}

/// Compares what `HeadObject` found with the record. `None` when it matches; else what
/// differs: size, version, ETag or S3 checksum (in that order). A value S3 does not report
/// (or the record does not hold) is not compared.
pub(super) fn head_difference(file: &Expected, head: &ObjectHead) -> Option<String> {
    if head.size != file.size {
        return Some(format!("{} bytes", head.size));
    }
    if let (Some(recorded), Some(found)) = (&file.version_id, &head.stored.version_id)
        && recorded != found
    {
        return Some(format!("version {found}"));
    }
    if let (Some(recorded), Some(found)) = (&file.etag, &head.stored.etag)
        && recorded != found
    {
        return Some(format!("ETag {found}"));
    }
    if let (Some(recorded), Some(found)) = (&file.s3_checksum, &head.stored.s3_checksum)
        && !same_checksum(&recorded.value, &found.value)
    {
        return Some(format!("S3 checksum {}", found.value));
    }
    None
}

/// Compares a recomputed SHA-256 with the record: `None` when equal.
pub(super) fn sha256_difference(file: &Expected, sha256: &str) -> Option<String> {
    (sha256 != file.sha256).then(|| format!("SHA-256 {sha256}"))
}

/// Gathers, from every folder's manifests, the distinct files to check (a key and version
/// listed by several manifests once, with the first manifest that lists it). Records as
/// problems the objects of a folder that no manifest lists (orphans; a manifest and its
/// signature count as listed) and the folders holding objects but no manifest (gaps).
/// `attempts` holds one entry per folder, in the folders' order.
pub(super) fn collate(
    folders: &BTreeMap<String, FolderObjects>,
    attempts: &[AttemptAudit],
    problems: &mut Problems,
) -> Vec<Expected> {
    let mut expected: Vec<Expected> = Vec::new();
    let mut seen: HashSet<(String, Option<String>)> = HashSet::new();
    for ((folder, objects), attempt) in folders.iter().zip(attempts) {
        let mut listed: HashSet<String> = HashSet::new();
        for manifest in &attempt.manifests {
            listed.insert(manifest.key.clone());
            listed.insert(signature_key(&manifest.key));
            for file in manifest.files.iter().chain(&manifest.decision_payload) {
                listed.insert(file.key.clone());
                if seen.insert((file.key.clone(), file.version_id.clone())) {
                    expected.push(Expected {
                        key: file.key.clone(),
                        size: file.size,
                        sha256: file.sha256.clone(),
                        version_id: file.version_id.clone(),
                        etag: file.etag.clone(),
                        s3_checksum: file.s3_checksum.clone(),
                        manifest: manifest.key.clone(),
                    });
                }
            }
        }
        if attempt.manifests.is_empty() {
            problems.gaps.push(Problem {
                key: folder.clone(),
                expected: Some("a manifest".into()),
                found: Some(format!("{} object(s) and no manifest", objects.keys.len())),
                manifest: None,
            });
            continue;
        }
        for (key, size) in &objects.keys {
            if !listed.contains(key) {
                problems
                    .orphans
                    .push(orphan(key, *size, "that no manifest lists"));
            }
        }
    }
    expected
}

/// An orphan: `size` bytes at `key`, and why no manifest accounts for them.
pub(super) fn orphan(key: &str, size: u64, why: &str) -> Problem {
    Problem {
        key: key.to_string(),
        expected: None,
        found: Some(format!("{size} bytes {why}")),
        manifest: None,
    }
}

/// Records the checks: counts the files, their bytes and those found intact in `summary`,
/// lists each missing or altered file as a problem, and sets each manifest's file entries
/// (every manifest listing the same key and version) to its result.
pub(super) fn record_results(
    results: Vec<Checked>,
    summary: &mut Summary,
    problems: &mut Problems,
    attempts: &mut [AttemptAudit],
) {
    let mut by_key: HashMap<(String, Option<String>), (FileResult, Option<String>)> =
        HashMap::new();
    for (file, result, detail) in results {
        summary.files += 1;
        summary.bytes += file.size;
        let problem = || Problem {
            key: file.key.clone(),
            expected: Some(expected_text(&file)),
            found: detail.clone(),
            manifest: Some(file.manifest.clone()),
        };
        match result {
            FileResult::Ok => summary.ok += 1,
            FileResult::Missing => problems.missing.push(problem()),
            FileResult::Altered => problems.altered.push(problem()),
        }
        by_key.insert((file.key, file.version_id), (result, detail));
    }
    for manifest in attempts.iter_mut().flat_map(|a| a.manifests.iter_mut()) {
        for file in manifest
            .files
            .iter_mut()
            .chain(manifest.decision_payload.iter_mut())
        {
            if let Some((result, detail)) = by_key.get(&(file.key.clone(), file.version_id.clone()))
            {
                file.result = *result;
                file.detail = detail.clone();
            }
        }
    }
}

/// Groups attempts (one per folder, in the folders' order) into sessions, in id order.
pub(super) fn into_sessions(
    folders: &BTreeMap<String, FolderObjects>,
    attempts: Vec<AttemptAudit>,
) -> Vec<SessionAudit> {
    let mut sessions: BTreeMap<String, Vec<AttemptAudit>> = BTreeMap::new();
    for (attempt, objects) in attempts.into_iter().zip(folders.values()) {
        sessions
            .entry(objects.session_id.clone())
            .or_default()
            .push(attempt);
    }
    sessions
        .into_iter()
        .map(|(session_id, attempts)| SessionAudit {
            session_id,
            attempts,
        })
        .collect()
}

/// Fills the summary's counts of sessions, attempts and manifests, and of each class of
/// problem.
pub(super) fn count(summary: &mut Summary, problems: &Problems, sessions: &[SessionAudit]) {
    summary.sessions = sessions.len() as u64;
    summary.attempts = sessions.iter().map(|s| s.attempts.len() as u64).sum();
    summary.manifests = sessions
        .iter()
        .flat_map(|s| &s.attempts)
        .map(|a| a.manifests.len() as u64)
        .sum();
    summary.missing = problems.missing.len() as u64;
    summary.altered = problems.altered.len() as u64;
    summary.unreadable = problems.unreadable.len() as u64;
    summary.unsigned = problems.unsigned.len() as u64;
    summary.bad_signature = problems.bad_signature.len() as u64;
    summary.orphans = problems.orphans.len() as u64;
    summary.gaps = problems.gaps.len() as u64;
    summary.removed = problems.removed.len() as u64;
    summary.changed = problems.changed.len() as u64;
    summary.covered = problems.covered.len() as u64;
    summary.ledger = problems.ledger.len() as u64;
    summary.unsealed = problems.unsealed.len() as u64;
    summary.unarchived = problems.unarchived.len() as u64;
}

/// What a file's record says, for a problem's `expected`.
pub(super) fn expected_text(file: &Expected) -> String {
    let mut text = format!("{} bytes, SHA-256 {}", file.size, file.sha256);
    if let Some(version) = &file.version_id {
        text.push_str(&format!(", version {version}"));
    }
    if let Some(etag) = &file.etag {
        text.push_str(&format!(", ETag {etag}"));
    }
    if let Some(checksum) = &file.s3_checksum {
        text.push_str(&format!(", S3 checksum {}", checksum.value));
    }
    text
}

/// A file record, not yet checked.
pub(super) fn file_audit(record: &FileRecord) -> FileAudit {
    FileAudit {
        key: record.key.clone(),
        media_id: record.media_id.clone(),
        kind: serde_json::to_value(record.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        context: record.context.clone(),
        content_type: record.content_type.clone(),
        size: record.size,
        sha256: record.sha256.clone(),
        version_id: record.stored.version_id.clone(),
        etag: record.stored.etag.clone(),
        s3_checksum: record.stored.s3_checksum.clone(),
        result: FileResult::Ok,
        detail: None,
    }
}

/// A readable manifest, its files (and stored webhook body) not yet checked.
pub(super) fn manifest_audit(
    key: &str,
    manifest: Manifest,
    signature: SignatureCheck,
) -> ManifestAudit {
    let decision_payload = manifest.decision_payload.as_ref().map(|p| FileAudit {
        key: p.key.clone(),
        media_id: String::new(),
        kind: "decision".into(),
        context: "webhook body".into(),
        content_type: "application/json".into(),
        size: p.size,
        sha256: p.sha256.clone(),
        version_id: p.stored.version_id.clone(),
        etag: p.stored.etag.clone(),
        s3_checksum: p.stored.s3_checksum.clone(),
        result: FileResult::Ok,
        detail: None,
    });
    ManifestAudit {
        key: key.to_string(),
        readable: true,
        schema_version: Some(manifest.schema_version),
        files: manifest.files.iter().map(file_audit).collect(),
        decision: Some(manifest.decision),
        archived_at: Some(manifest.archived_at),
        signature,
        decision_payload,
        skipped: manifest.skipped,
        media_unavailable: manifest.media_unavailable,
        sha256: None,
    }
}

/// A manifest that does not parse: listed with no files, and its problem recorded.
pub(super) fn unreadable_manifest(
    key: &str,
    reason: String,
    signature: SignatureCheck,
    problems: &mut Problems,
) -> ManifestAudit {
    problems.unreadable.push(Problem {
        key: key.to_string(),
        expected: Some("a v1, v2 or v3 manifest".into()),
        found: Some(reason),
        manifest: None,
    });
    ManifestAudit {
        key: key.to_string(),
        readable: false,
        schema_version: None,
        decision: None,
        archived_at: None,
        signature,
        files: Vec::new(),
        decision_payload: None,
        skipped: Vec::new(),
        media_unavailable: None,
        sha256: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DecisionRecord, WebhookKind};
    use crate::manifest::{
        ArchiverRecord, AttemptIdSource, PayloadRecord, SourceRecord, StoredObject,
    };
    use crate::media::MediaKind;
    use crate::select::{SkipReason, Skipped};

    fn listed(key: &str, size: u64) -> ListedObject {
        ListedObject {
            key: key.into(),
            size,
            last_modified: None,
        }
    }

    fn checksum(value: &str) -> S3Checksum {
        S3Checksum {
            algorithm: "SHA256".into(),
            checksum_type: "FULL_OBJECT".into(),
            value: value.into(),
        }
    }

    fn expected(key: &str) -> Expected {
        Expected {
            key: key.into(),
            size: 10,
            sha256: "ab".repeat(32),
            version_id: Some("v1".into()),
            etag: Some("\"e1\"".into()),
            s3_checksum: Some(checksum("c1=")),
            manifest: "s/a/manifest-x.json".into(),
        }
    }

    fn head_of(file: &Expected) -> ObjectHead {
        ObjectHead {
            size: file.size,
            content_type: Some("image/jpeg".into()),
            stored: StoredObject {
                version_id: file.version_id.clone(),
                etag: file.etag.clone(),
                s3_checksum: file.s3_checksum.clone(),
            },
        }
    }

    fn file(key: &str, version: Option<&str>) -> FileAudit {
        FileAudit {
            key: key.into(),
            media_id: "m".into(),
            kind: "image".into(),
            context: "face".into(),
            content_type: "image/jpeg".into(),
            size: 7,
            sha256: "cd".repeat(32),
            version_id: version.map(str::to_string),
            etag: None,
            s3_checksum: None,
            result: FileResult::Ok,
            detail: None,
        }
    }

    fn manifest_entry(key: &str, files: Vec<FileAudit>) -> ManifestAudit {
        ManifestAudit {
            key: key.into(),
            readable: true,
            schema_version: Some(2),
            decision: None,
            archived_at: None,
            signature: SignatureCheck::NotChecked,
            files,
            decision_payload: None,
            skipped: Vec::new(),
            media_unavailable: None,
            sha256: None,
        }
    }

    fn attempt(folder: &str, manifests: Vec<ManifestAudit>) -> AttemptAudit {
        AttemptAudit {
            attempt_id: "a".into(),
            folder: folder.into(),
            manifests,
        }
    }

    fn folder(session: &str, attempt: &str, keys: &[(&str, u64)]) -> FolderObjects {
        FolderObjects {
            session_id: session.into(),
            attempt_id: attempt.into(),
            keys: keys.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        }
    }

    /// A problem that only names its key.
    fn problem(key: &str) -> Problem {
        Problem {
            key: key.into(),
            expected: None,
            found: None,
            manifest: None,
        }
    }

    const M1: &str = "p/s1/a1/manifest-20250304T102107412000Z-0123456789abcdef.json";
    const M2: &str = "p/s1/a1/manifest-20250305T000000000000Z-fedcba9876543210.json";

    #[test]
    fn objects_are_sorted_into_attempt_folders_and_the_rest_are_strays() {
        let mut folders = BTreeMap::new();
        let strays = sort_into_folders(
            "p/",
            vec![
                listed("p/s1/a1/face.m1.jpg", 3),
                listed("p/s1/a1/manifest.json", 4),
                listed("p/s1/a2/face.m2.jpg", 5),
                listed("p/s2/a1/nfc.m3.bin", 6),
                listed("p/s1/a1/deeper/x.jpg", 7),
                listed("p/s1/loose.jpg", 8),
                listed("p/s1/a1/", 9),
                listed("p/-s/a1/x.jpg", 10),
                listed("p/s1/a.b/x.jpg", 11),
                listed("p/readme.txt", 12),
                listed("elsewhere/s1/a1/x.jpg", 13),
            ],
            &mut folders,
        );
        assert_eq!(
            strays,
            vec![
                ("p/s1/a1/deeper/x.jpg".to_string(), 7),
                ("p/s1/loose.jpg".to_string(), 8),
                ("p/s1/a1/".to_string(), 9),
                ("p/-s/a1/x.jpg".to_string(), 10),
                ("p/s1/a.b/x.jpg".to_string(), 11),
                ("p/readme.txt".to_string(), 12),
                ("elsewhere/s1/a1/x.jpg".to_string(), 13),
            ]
        );
        assert_eq!(folders.len(), 3);
        assert_eq!(
            folders["p/s1/a1/"],
            folder(
                "s1",
                "a1",
                &[("p/s1/a1/face.m1.jpg", 3), ("p/s1/a1/manifest.json", 4)]
            )
        );
        assert_eq!(
            folders["p/s1/a2/"],
            folder("s1", "a2", &[("p/s1/a2/face.m2.jpg", 5)])
        );
        assert_eq!(
            folders["p/s2/a1/"],
            folder("s2", "a1", &[("p/s2/a1/nfc.m3.bin", 6)])
        );

        // A second listing (another session's prefix) adds to the same folders.
        let strays = sort_into_folders("p/", vec![listed("p/s1/a1/face.m9.jpg", 1)], &mut folders);
        assert!(strays.is_empty());
        assert_eq!(folders["p/s1/a1/"].keys.len(), 3);
    }

    #[test]
    fn an_empty_prefix_sorts_from_the_bucket_root() {
        let mut folders = BTreeMap::new();
        let strays = sort_into_folders("", vec![listed("s1/a1/x.jpg", 1)], &mut folders);
        assert!(strays.is_empty());
        assert_eq!(folders["s1/a1/"].session_id, "s1");
        assert_eq!(folders["s1/a1/"].attempt_id, "a1");
    }

    #[test]
    fn manifests_are_read_legacy_first_then_by_decision_name() {
        let objects = folder(
            "s1",
            "a1",
            &[
                (M2, 1),
                ("p/s1/a1/face.m1.jpg", 1),
                (&signature_key(M1), 1),
                ("p/s1/a1/manifest.json", 1),
                (M1, 1),
                ("p/s1/a1/notes.json", 1),
            ],
        );
        assert_eq!(
            manifest_keys_in_order("p/s1/a1/", &objects),
            vec!["p/s1/a1/manifest.json", M1, M2]
        );
        // Keys of another folder are not this folder's manifests.
        assert!(manifest_keys_in_order("p/s1/a2/", &objects).is_empty());
    }

    #[test]
    fn without_a_public_key_a_signature_is_only_noted() {
        assert_eq!(unchecked_signature(true), SignatureCheck::NotChecked);
        assert_eq!(unchecked_signature(false), SignatureCheck::Unsigned);
    }

    #[test]
    fn a_head_matching_the_record_has_no_difference() {
        let file = expected("k");
        assert_eq!(head_difference(&file, &head_of(&file)), None);
    }

    #[test]
    fn each_recorded_value_that_differs_is_named() {
        let file = expected("k");
        let mut head = head_of(&file);
        head.size = 11;
        assert_eq!(head_difference(&file, &head).as_deref(), Some("11 bytes"));
        head.size = 9;
        assert_eq!(head_difference(&file, &head).as_deref(), Some("9 bytes"));

        let mut head = head_of(&file);
        head.stored.version_id = Some("v2".into());
        assert_eq!(head_difference(&file, &head).as_deref(), Some("version v2"));

        let mut head = head_of(&file);
        head.stored.etag = Some("\"e2\"".into());
        assert_eq!(
            head_difference(&file, &head).as_deref(),
            Some("ETag \"e2\"")
        );

        let mut head = head_of(&file);
        head.stored.s3_checksum = Some(checksum("c2="));
        assert_eq!(
            head_difference(&file, &head).as_deref(),
            Some("S3 checksum c2=")
        );

        // Several differences: the size is named first, then the version, then the ETag.
        let mut head = head_of(&file);
        head.stored.etag = Some("\"e2\"".into());
        head.stored.s3_checksum = Some(checksum("c2="));
        assert_eq!(
            head_difference(&file, &head).as_deref(),
            Some("ETag \"e2\"")
        );
        head.stored.version_id = Some("v2".into());
        assert_eq!(head_difference(&file, &head).as_deref(), Some("version v2"));
        head.size = 1;
        assert_eq!(head_difference(&file, &head).as_deref(), Some("1 bytes"));
    }

    #[test]
    fn values_missing_on_either_side_are_not_compared() {
        let file = expected("k");
        let mut head = head_of(&file);
        head.stored = StoredObject::default();
        assert_eq!(head_difference(&file, &head), None);

        let mut bare = expected("k");
        bare.version_id = None;
        bare.etag = None;
        bare.s3_checksum = None;
        assert_eq!(head_difference(&bare, &head_of(&file)), None);
    }

    #[test]
    fn a_composite_checksum_matches_without_its_part_count() {
        let mut file = expected("k");
        file.s3_checksum = Some(checksum("c1=-3"));
        let mut head = head_of(&file);
        head.stored.s3_checksum = Some(checksum("c1="));
        assert_eq!(head_difference(&file, &head), None);
    }

    #[test]
    fn a_recomputed_hash_must_equal_the_record() {
        let file = expected("k");
        assert_eq!(sha256_difference(&file, &"ab".repeat(32)), None);
        let other = "ef".repeat(32);
        assert_eq!(
            sha256_difference(&file, &other),
            Some(format!("SHA-256 {other}"))
        );
    }

    #[test]
    fn collate_lists_each_stored_version_once_with_its_first_manifest() {
        let a1 = "p/s1/a1/";
        let a2 = "p/s1/a2/";
        let shared = "p/s1/a1/face.m1.jpg";
        let mut with_payload = manifest_entry(M2, vec![file(shared, None)]);
        let mut payload = file("p/s1/a1/decision-x.json", None);
        payload.kind = "decision".into();
        with_payload.decision_payload = Some(payload);
        let attempts = vec![
            attempt(
                a1,
                vec![
                    manifest_entry(
                        M1,
                        vec![file(shared, None), file("p/s1/a1/doc.m2.jpg", None)],
                    ),
                    with_payload,
                ],
            ),
            attempt(
                a2,
                vec![manifest_entry(
                    "p/s1/a2/manifest.json",
                    // The same key at another version is another file to check.
                    vec![
                        file("p/s1/a2/x.jpg", Some("v1")),
                        file("p/s1/a2/x.jpg", Some("v2")),
                    ],
                )],
            ),
        ];
        let folders: BTreeMap<String, FolderObjects> = [
            (
                a1.to_string(),
                folder(
                    "s1",
                    "a1",
                    &[
                        (shared, 7),
                        ("p/s1/a1/doc.m2.jpg", 7),
                        ("p/s1/a1/decision-x.json", 7),
                        (M1, 1),
                        (&signature_key(M1), 1),
                        (M2, 1),
                    ],
                ),
            ),
            (
                a2.to_string(),
                folder(
                    "s1",
                    "a2",
                    &[("p/s1/a2/x.jpg", 7), ("p/s1/a2/manifest.json", 1)],
                ),
            ),
        ]
        .into_iter()
        .collect();
        let mut problems = Problems::default();
        let expected = collate(&folders, &attempts, &mut problems);
        let listed: Vec<(&str, Option<&str>, &str)> = expected
            .iter()
            .map(|e| (e.key.as_str(), e.version_id.as_deref(), e.manifest.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (shared, None, M1),
                ("p/s1/a1/doc.m2.jpg", None, M1),
                ("p/s1/a1/decision-x.json", None, M2),
                ("p/s1/a2/x.jpg", Some("v1"), "p/s1/a2/manifest.json"),
                ("p/s1/a2/x.jpg", Some("v2"), "p/s1/a2/manifest.json"),
            ]
        );
        let first = &expected[0];
        assert_eq!(
            (first.size, first.sha256.as_str()),
            (7, "cd".repeat(32).as_str())
        );
        assert!(problems.orphans.is_empty(), "{:?}", problems.orphans);
        assert!(problems.gaps.is_empty());
    }

    #[test]
    fn collate_finds_orphans_and_gaps() {
        let folders: BTreeMap<String, FolderObjects> = [
            (
                "p/s1/a1/".to_string(),
                folder(
                    "s1",
                    "a1",
                    &[
                        ("p/s1/a1/face.m1.jpg", 7),
                        ("p/s1/a1/extra.jpg", 42),
                        (M1, 1),
                        (&signature_key(M2), 1),
                    ],
                ),
            ),
            (
                "p/s1/a2/".to_string(),
                folder("s1", "a2", &[("p/s1/a2/x.jpg", 1), ("p/s1/a2/y.jpg", 2)]),
            ),
        ]
        .into_iter()
        .collect();
        let attempts = vec![
            attempt(
                "p/s1/a1/",
                vec![manifest_entry(M1, vec![file("p/s1/a1/face.m1.jpg", None)])],
            ),
            attempt("p/s1/a2/", Vec::new()),
        ];
        let mut problems = Problems::default();
        let expected = collate(&folders, &attempts, &mut problems);
        assert_eq!(expected.len(), 1);
        let orphans: Vec<(&str, Option<&str>)> = problems
            .orphans
            .iter()
            .map(|p| (p.key.as_str(), p.found.as_deref()))
            .collect();
        let stray_signature = signature_key(M2);
        assert_eq!(
            orphans,
            vec![
                ("p/s1/a1/extra.jpg", Some("42 bytes that no manifest lists")),
                (
                    stray_signature.as_str(),
                    Some("1 bytes that no manifest lists")
                ),
            ]
        );
        assert_eq!(
            problems.gaps,
            vec![Problem {
                key: "p/s1/a2/".into(),
                expected: Some("a manifest".into()),
                found: Some("2 object(s) and no manifest".into()),
                manifest: None,
            }]
        );
    }

    #[test]
    fn results_are_counted_and_set_on_every_manifest_listing_the_file() {
        let shared = "p/s1/a1/face.m1.jpg";
        let mut second = manifest_entry(M2, vec![file(shared, None)]);
        second.decision_payload = Some(file("p/s1/a1/decision-x.json", None));
        let mut attempts = vec![attempt(
            "p/s1/a1/",
            vec![
                manifest_entry(M1, vec![file(shared, None), file("p/s1/a1/doc.jpg", None)]),
                second,
            ],
        )];
        let mut gone = expected(shared);
        gone.version_id = None;
        gone.size = 100;
        let mut changed = expected("p/s1/a1/decision-x.json");
        changed.version_id = None;
        changed.size = 20;
        let mut intact = expected("p/s1/a1/doc.jpg");
        intact.version_id = None;
        intact.size = 3;
        let results = vec![
            (
                gone.clone(),
                FileResult::Missing,
                Some("no such object".into()),
            ),
            (changed.clone(), FileResult::Altered, Some("5 bytes".into())),
            (intact, FileResult::Ok, None),
        ];
        let mut summary = Summary::default();
        let mut problems = Problems::default();
        record_results(results, &mut summary, &mut problems, &mut attempts);

        assert_eq!((summary.files, summary.bytes, summary.ok), (3, 123, 1));
        assert_eq!(
            problems.missing,
            vec![Problem {
                key: shared.into(),
                expected: Some(expected_text(&gone)),
                found: Some("no such object".into()),
                manifest: Some(gone.manifest.clone()),
            }]
        );
        assert_eq!(problems.altered.len(), 1);
        assert_eq!(problems.altered[0].key, "p/s1/a1/decision-x.json");
        assert_eq!(problems.altered[0].found.as_deref(), Some("5 bytes"));

        let manifests = &attempts[0].manifests;
        assert_eq!(manifests[0].files[0].result, FileResult::Missing);
        assert_eq!(
            manifests[0].files[0].detail.as_deref(),
            Some("no such object")
        );
        assert_eq!(manifests[0].files[1].result, FileResult::Ok);
        assert_eq!(manifests[1].files[0].result, FileResult::Missing);
        let payload = manifests[1].decision_payload.as_ref().unwrap();
        assert_eq!(payload.result, FileResult::Altered);
        assert_eq!(payload.detail.as_deref(), Some("5 bytes"));
    }

    #[test]
    fn a_result_applies_only_to_its_own_version() {
        let mut attempts = vec![attempt(
            "p/s1/a1/",
            vec![manifest_entry(
                M1,
                vec![
                    file("p/s1/a1/x.jpg", Some("v1")),
                    file("p/s1/a1/x.jpg", Some("v2")),
                ],
            )],
        )];
        let mut v2 = expected("p/s1/a1/x.jpg");
        v2.version_id = Some("v2".into());
        let mut summary = Summary::default();
        let mut problems = Problems::default();
        record_results(
            vec![(v2, FileResult::Missing, None)],
            &mut summary,
            &mut problems,
            &mut attempts,
        );
        let files = &attempts[0].manifests[0].files;
        assert_eq!(files[0].result, FileResult::Ok);
        assert_eq!(files[1].result, FileResult::Missing);
    }

    #[test]
    fn attempts_are_grouped_into_sessions_and_counted() {
        let folders: BTreeMap<String, FolderObjects> = [
            ("p/s1/a1/".to_string(), folder("s1", "a1", &[])),
            ("p/s1/a2/".to_string(), folder("s1", "a2", &[])),
            ("p/s2/a9/".to_string(), folder("s2", "a9", &[])),
        ]
        .into_iter()
        .collect();
        let attempts = vec![
            attempt(
                "p/s1/a1/",
                vec![manifest_entry(M1, vec![]), manifest_entry(M2, vec![])],
            ),
            attempt("p/s1/a2/", vec![manifest_entry("m", vec![])]),
            attempt("p/s2/a9/", Vec::new()),
        ];
        let sessions = into_sessions(&folders, attempts);
        let shape: Vec<(&str, Vec<&str>)> = sessions
            .iter()
            .map(|s| {
                (
                    s.session_id.as_str(),
                    s.attempts.iter().map(|a| a.folder.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("s1", vec!["p/s1/a1/", "p/s1/a2/"]),
                ("s2", vec!["p/s2/a9/"]),
            ]
        );

        let problems = Problems {
            missing: vec![problem("1")],
            altered: vec![problem("1"), problem("2")],
            unreadable: vec![problem("1"), problem("2"), problem("3")],
            unsigned: vec![problem("1"); 4],
            bad_signature: vec![problem("1"); 5],
            orphans: vec![problem("1"); 6],
            gaps: vec![problem("1"); 7],
            removed: vec![problem("1"); 8],
            changed: vec![problem("1"); 9],
            covered: vec![problem("1"); 10],
            ledger: vec![problem("1"); 11],
            unsealed: vec![problem("1"); 12],
            unarchived: vec![problem("1"); 13],
        };
        let mut summary = Summary {
            files: 99,
            ..Summary::default()
        };
        count(&mut summary, &problems, &sessions);
        assert_eq!(
            summary,
            Summary {
                sessions: 2,
                attempts: 3,
                manifests: 3,
                files: 99,
                bytes: 0,
                ok: 0,
                missing: 1,
                altered: 2,
                unreadable: 3,
                unsigned: 4,
                bad_signature: 5,
                orphans: 6,
                gaps: 7,
                removed: 8,
                changed: 9,
                covered: 10,
                ledger: 11,
                unsealed: 12,
                unarchived: 13,
            }
        );
        assert_eq!(summary.problems(), 91);
    }

    #[test]
    fn problems_of_every_class_are_appended() {
        let class = |n: &str| vec![problem(&format!("{n}-1"))];
        let mut all = Problems {
            missing: class("missing"),
            ..Problems::default()
        };
        all.append(Problems {
            missing: class("missing-b"),
            altered: class("altered"),
            unreadable: class("unreadable"),
            unsigned: class("unsigned"),
            bad_signature: class("bad"),
            orphans: class("orphan"),
            gaps: class("gap"),
            removed: class("removed"),
            changed: class("changed"),
            covered: class("covered"),
            ledger: class("ledger"),
            unsealed: class("unsealed"),
            unarchived: class("unarchived"),
        });
        let keys = |v: &[Problem]| v.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&all.missing), ["missing-1", "missing-b-1"]);
        assert_eq!(keys(&all.altered), ["altered-1"]);
        assert_eq!(keys(&all.unreadable), ["unreadable-1"]);
        assert_eq!(keys(&all.unsigned), ["unsigned-1"]);
        assert_eq!(keys(&all.bad_signature), ["bad-1"]);
        assert_eq!(keys(&all.orphans), ["orphan-1"]);
        assert_eq!(keys(&all.gaps), ["gap-1"]);
        assert_eq!(keys(&all.removed), ["removed-1"]);
        assert_eq!(keys(&all.changed), ["changed-1"]);
        assert_eq!(keys(&all.covered), ["covered-1"]);
        assert_eq!(keys(&all.ledger), ["ledger-1"]);
        assert_eq!(keys(&all.unsealed), ["unsealed-1"]);
        assert_eq!(keys(&all.unarchived), ["unarchived-1"]);
    }

    #[test]
    fn an_orphan_names_its_size_and_why() {
        assert_eq!(
            orphan("p/x", 12, "outside any attempt folder"),
            Problem {
                key: "p/x".into(),
                expected: None,
                found: Some("12 bytes outside any attempt folder".into()),
                manifest: None,
            }
        );
    }

    #[test]
    fn the_expected_text_names_every_recorded_value() {
        let file = expected("k");
        assert_eq!(
            expected_text(&file),
            format!(
                "10 bytes, SHA-256 {}, version v1, ETag \"e1\", S3 checksum c1=",
                "ab".repeat(32)
            )
        );
        let mut bare = file.clone();
        bare.version_id = None;
        bare.etag = None;
        bare.s3_checksum = None;
        assert_eq!(
            expected_text(&bare),
            format!("10 bytes, SHA-256 {}", "ab".repeat(32))
        );
    }

    fn stored(version: &str) -> StoredObject {
        StoredObject {
            version_id: Some(version.into()),
            etag: Some(format!("\"etag-{version}\"")),
            s3_checksum: Some(checksum(&format!("sum-{version}"))),
        }
    }

    fn sample_manifest(payload: bool) -> Manifest {
        Manifest {
            schema_version: 2,
            session_id: SafeId::parse("s1").unwrap(),
            attempt_id: SafeId::parse("a1").unwrap(),
            attempt_id_source: Some(AttemptIdSource::Given),
            decision: DecisionRecord {
                code: Some(9001),
                decision_time: Some("2025-03-04T10:21:07.412Z".into()),
                ..DecisionRecord::new(WebhookKind::Decision, "approved")
            },
            media_source: SourceRecord {
                mode: "combined".into(),
                listing: None,
                listings_matched: None,
                endpoints: Vec::new(),
                endpoint: None,
            },
            archived_at: "2025-03-04T10:22:00.000Z".into(),
            archiver: ArchiverRecord {
                name: "veriff-archiver".into(),
                version: "0".into(),
            },
            files: [MediaKind::Image, MediaKind::Video, MediaKind::Nfc]
                .into_iter()
                .enumerate()
                .map(|(i, kind)| FileRecord {
                    key: format!("s1/a1/f{i}"),
                    media_id: format!("m{i}"),
                    kind,
                    context: format!("ctx{i}"),
                    mimetype: None,
                    content_type: format!("type/{i}"),
                    size: 100 + i as u64,
                    sha256: format!("{i}").repeat(64),
                    listing: None,
                    stored: stored(&format!("v{i}")),
                })
                .collect(),
            skipped: vec![Skipped {
                kind: MediaKind::Image,
                media_id: Some("m9".into()),
                context: Some("face".into()),
                reason: SkipReason::LowerRanked,
            }],
            decision_payload: payload.then(|| PayloadRecord {
                key: "s1/a1/decision.json".into(),
                size: 55,
                sha256: "9".repeat(64),
                signature_header: "x-hmac-signature".into(),
                stored: stored("vp"),
            }),
            decision_source: None,
            media_unavailable: None,
        }
    }

    #[test]
    fn a_readable_manifest_lists_its_records_unchecked() {
        let audit = manifest_audit("s1/a1/m.json", sample_manifest(true), SignatureCheck::Valid);
        assert_eq!(audit.key, "s1/a1/m.json");
        assert!(audit.readable);
        assert_eq!(audit.schema_version, Some(2));
        assert_eq!(audit.decision.as_ref().unwrap().status, "approved");
        assert_eq!(
            audit.archived_at.as_deref(),
            Some("2025-03-04T10:22:00.000Z")
        );
        assert_eq!(audit.signature, SignatureCheck::Valid);
        assert_eq!(audit.skipped.len(), 1);
        let kinds: Vec<&str> = audit.files.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["image", "video", "nfc"]);
        let f = &audit.files[1];
        assert_eq!(
            (
                f.key.as_str(),
                f.media_id.as_str(),
                f.context.as_str(),
                f.content_type.as_str(),
                f.size,
                f.sha256.as_str(),
            ),
            (
                "s1/a1/f1",
                "m1",
                "ctx1",
                "type/1",
                101,
                "1".repeat(64).as_str()
            )
        );
        assert_eq!(f.version_id.as_deref(), Some("v1"));
        assert_eq!(f.etag.as_deref(), Some("\"etag-v1\""));
        assert_eq!(f.s3_checksum, Some(checksum("sum-v1")));
        assert_eq!((f.result, f.detail.as_deref()), (FileResult::Ok, None));

        let p = audit.decision_payload.as_ref().unwrap();
        assert_eq!(
            (
                p.key.as_str(),
                p.media_id.as_str(),
                p.kind.as_str(),
                p.context.as_str(),
                p.content_type.as_str(),
                p.size,
            ),
            (
                "s1/a1/decision.json",
                "",
                "decision",
                "webhook body",
                "application/json",
                55
            )
        );
        assert_eq!(p.sha256, "9".repeat(64));
        assert_eq!(p.version_id.as_deref(), Some("vp"));
        assert_eq!(p.etag.as_deref(), Some("\"etag-vp\""));
        assert_eq!(p.s3_checksum, Some(checksum("sum-vp")));
        assert_eq!(p.result, FileResult::Ok);

        let without = manifest_audit("k", sample_manifest(false), SignatureCheck::Unsigned);
        assert!(without.decision_payload.is_none());
    }

    #[test]
    fn the_read_limit_holds_a_manifest_of_far_more_files_than_a_session_has() {
        // A session stores 10 to 20 files; a manifest listing 200 must still be read whole.
        let mut big = sample_manifest(true);
        let record = big.files[0].clone();
        big.files = (0..200)
            .map(|i| FileRecord {
                key: format!("archive/session-{i:04}/attempt/document-front.{i:036}.jpeg"),
                ..record.clone()
            })
            .collect();
        let size = big.to_bytes().len() as u64;
        assert!(size > 100 * 1024, "{size}");
        assert!(size <= super::super::MAX_DOCUMENT_BYTES, "{size}");
    }

    #[test]
    fn an_unreadable_manifest_is_listed_empty_and_recorded() {
        let mut problems = Problems::default();
        let audit = unreadable_manifest(
            "s1/a1/manifest.json",
            "expected value at line 1".into(),
            SignatureCheck::Invalid,
            &mut problems,
        );
        assert!(!audit.readable);
        assert_eq!(audit.key, "s1/a1/manifest.json");
        assert_eq!(audit.signature, SignatureCheck::Invalid);
        assert!(audit.files.is_empty() && audit.decision.is_none());
        assert_eq!(
            problems.unreadable,
            vec![Problem {
                key: "s1/a1/manifest.json".into(),
                expected: Some("a v1, v2 or v3 manifest".into()),
                found: Some("expected value at line 1".into()),
                manifest: None,
            }]
        );
    }
}
