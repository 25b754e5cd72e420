//! The ledger's rules, apart from the reading: whether the chain of digests holds (every
//! sequence number there, each digest linking to the exact bytes of the one before,
//! periods end to end, signatures and timestamps when asked), and what the sealed record
//! says of the archive as it is now: manifests removed or changed since they were sealed,
//! archived versions covered by newer ones, manifests left unsealed too long, a ledger
//! that stopped, and expected sessions with nothing archived.
//!
//! Pure: [`super::Auditor`] reads the digests, their signatures and tokens, and the bucket.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use p256::ecdsa::VerifyingKey;

use super::Problem;
use crate::ledger::format::{Digest, Erasure, digest_key, sha256_hex};
use crate::signing;
use crate::store::ListedVersion;

/// One digest object of the chain as read: its sequence (from its key), its bytes, and
/// its signature document and RFC 3161 token when stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReadDigest {
    pub sequence: u64,
    pub key: String,
    pub bytes: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub token: Option<Vec<u8>>,
}

/// How the chain checks out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ChainCheck {
    /// Digests that should be there (from 0 to the highest sequence found).
    pub total: u64,
    /// Digests without any problem.
    pub valid: u64,
    /// Every problem of the chain.
    pub problems: Vec<Problem>,
    /// The digests that parse, in sequence order.
    pub digests: Vec<Digest>,
}

fn problem(key: &str, expected: impl Into<String>, found: impl Into<String>) -> Problem {
    Problem {
        key: key.to_string(),
        expected: Some(expected.into()),
        found: Some(found.into()),
        manifest: None,
    }
}

/// Checks the chain. `public_key`: every digest must carry a signature that verifies;
/// `tsa_cert`: every digest must carry a token that verifies against it.
pub(super) fn check_chain(
    prefix: &str,
    mut read: Vec<ReadDigest>,
    public_key: Option<&VerifyingKey>,
    tsa_cert: Option<&[u8]>,
) -> ChainCheck {
    read.sort_by_key(|d| d.sequence);
    let mut check = ChainCheck {
        total: read.last().map_or(0, |d| d.sequence + 1),
        ..ChainCheck::default()
    };
    let mut bad: BTreeSet<u64> = BTreeSet::new();
    let by_sequence: BTreeMap<u64, &ReadDigest> = read.iter().map(|d| (d.sequence, d)).collect();
    for sequence in 0..check.total {
        if !by_sequence.contains_key(&sequence) {
            bad.insert(sequence);
            check.problems.push(problem(
                &digest_key(prefix, sequence),
                format!("digest {sequence} of the chain"),
                "no such object: the digest was deleted",
            ));
        }
    }
    let mut previous: Option<(&ReadDigest, Digest)> = None;
    for d in &read {
        let mut found = Vec::new();
        let parsed = match Digest::parse(&d.bytes) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                found.push(format!("it does not parse ({e})"));
                None
            }
        };
        if let Some(doc) = &parsed {
            found.extend(link_problems(prefix, d, doc, previous.as_ref()));
        }
        found.extend(seal_problems(d, public_key, tsa_cert));
        if !found.is_empty() {
            bad.insert(d.sequence);
            check.problems.push(problem(
                &d.key,
                format!("digest {} of an unbroken chain", d.sequence),
                found.join("; "),
            ));
        }
        previous = parsed.clone().map(|p| (d, p));
        check.digests.extend(parsed);
    }
    check.valid = check.total - bad.len() as u64;
    check
}

/// What is wrong with a digest's place in the chain: its own sequence, its link to the
/// one before (key and SHA-256 of its exact bytes), and its period's start.
fn link_problems(
    prefix: &str,
    d: &ReadDigest,
    doc: &Digest,
    previous: Option<&(&ReadDigest, Digest)>,
) -> Vec<String> {
    let mut found = Vec::new();
    if doc.sequence != d.sequence {
        found.push(format!(
            "it says it is digest {} (out of order, or moved)",
            doc.sequence
        ));
    }
    match (&doc.previous, d.sequence) {
        (None, 0) => {}
        (Some(_), 0) => found.push("the first digest links to a previous one".into()),
        (None, _) => found.push("it links to no previous digest".into()),
        (Some(link), sequence) => {
            let expected_key = digest_key(prefix, sequence - 1);
            if link.key != expected_key {
                found.push(format!("it links to {}, not {expected_key}", link.key));
            } else if let Some((prev, prev_doc)) =
                previous.filter(|(p, _)| p.sequence == sequence - 1)
            {
                let actual = sha256_hex(&prev.bytes);
                if link.sha256 != actual {
                    found.push(format!(
                        "it records SHA-256 {} for digest {}, which now hashes to {actual} \
                         (altered or replaced)",
                        link.sha256,
                        sequence - 1
                    ));
                }
                if doc.period.from.as_deref() != Some(prev_doc.period.to.as_str()) {
                    found.push(format!(
                        "its period starts at {}, not where digest {} ends ({})",
                        doc.period.from.as_deref().unwrap_or("the beginning"),
                        sequence - 1,
                        prev_doc.period.to
                    ));
                }
            }
        }
    }
    found
}

/// A missing or failing signature (with a public key) or token (with a certificate).
fn seal_problems(
    d: &ReadDigest,
    public_key: Option<&VerifyingKey>,
    tsa_cert: Option<&[u8]>,
) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(key) = public_key {
        match &d.signature {
            None => found.push("it is not signed".into()),
            Some(document) => {
                if let Err(e) = signing::verify(document, &d.key, &d.bytes, key) {
                    found.push(format!("its signature fails ({e})"));
                }
            }
        }
    }
    if let Some(cert) = tsa_cert {
        let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&d.bytes).into();
        match &d.token {
            None => found.push("it has no RFC 3161 token".into()),
            Some(token) => {
                if let Err(e) = crate::tsa::verify(token, &sha, cert) {
                    found.push(format!("its RFC 3161 token fails ({e})"));
                }
            }
        }
    }
    found
}

/// A manifest of the archive as the audit read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArchivedManifest {
    /// SHA-256 of the bytes read.
    pub sha256: String,
    /// When S3 stored it.
    pub last_modified: Option<SystemTime>,
}

/// Every version under the prefix, by key (versioned buckets).
pub(super) type Versions = HashMap<String, Vec<ListedVersion>>;

/// What the archive shows of the manifests the chain seals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SealedCheck {
    /// Sealed manifests (distinct keys).
    pub listed: u64,
    /// Of them, stored as sealed.
    pub present: u64,
    /// Gone (naming the session).
    pub removed: Vec<Problem>,
    /// Stored with other bytes than sealed.
    pub changed: Vec<Problem>,
    /// Still stored below a newer version or a delete marker.
    pub covered: Vec<Problem>,
    /// Sessions erased on purpose (erasure records), whose manifests are not missing.
    pub erased_sessions: BTreeSet<String>,
}

/// The session of a manifest key under `prefix`.
fn session_of<'k>(prefix: &str, key: &'k str) -> &'k str {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(key)
}

/// Checks each sealed manifest against the archive: there with its sealed bytes, gone,
/// changed, or (on a versioned bucket) covered; sessions erased on purpose are set apart.
pub(super) fn check_sealed(
    prefix: &str,
    digests: &[Digest],
    archived: &BTreeMap<String, ArchivedManifest>,
    versions: Option<&Versions>,
    unsealed_erasures: &[Erasure],
) -> SealedCheck {
    let mut out = SealedCheck::default();
    let sealed_erasures = digests.iter().flat_map(|d| &d.erasures);
    for erasure in sealed_erasures.chain(unsealed_erasures) {
        out.erased_sessions
            .extend(erasure.sessions.iter().map(|s| s.to_string()));
    }
    let mut seen = BTreeSet::new();
    for d in digests {
        for m in &d.manifests {
            if !seen.insert(m.key.as_str()) {
                continue;
            }
            let session = session_of(prefix, &m.key);
            if out.erased_sessions.contains(session) {
                continue;
            }
            out.listed += 1;
            let expected = format!(
                "sealed by digest {} ({} bytes, SHA-256 {}{})",
                d.sequence,
                m.size,
                m.sha256,
                m.version_id
                    .as_deref()
                    .map(|v| format!(", version {v}"))
                    .unwrap_or_default()
            );
            let found = match archived.get(&m.key) {
                Some(a) if a.sha256 == m.sha256 => {
                    out.present += 1;
                    continue;
                }
                Some(a) => format!("SHA-256 {}", a.sha256),
                None => String::new(),
            };
            let covered_by = covering(versions, &m.key, m.version_id.as_deref());
            let problem = |found: String| Problem {
                key: m.key.clone(),
                expected: Some(expected.clone()),
                found: Some(found),
                manifest: None,
            };
            match (covered_by, found.is_empty()) {
                (Some(cover), _) => out.covered.push(problem(cover)),
                (None, true) => out.removed.push(problem(format!(
                    "no such object: session {session} no longer has this decision"
                ))),
                (None, false) => out
                    .changed
                    .push(problem(format!("{found} (changed since sealed)"))),
            }
        }
    }
    out
}

/// When `version_id` of `key` still exists below what the key now serves: what covers it.
pub(super) fn covering(
    versions: Option<&Versions>,
    key: &str,
    version_id: Option<&str>,
) -> Option<String> {
    let all = versions?.get(key)?;
    let version_id = version_id?;
    let archived = all
        .iter()
        .find(|v| v.version_id == version_id && !v.delete_marker)?;
    if archived.is_latest {
        return None;
    }
    let latest = all.iter().find(|v| v.is_latest);
    Some(match latest {
        Some(v) if v.delete_marker => format!(
            "a delete marker ({}) covers version {version_id}: the key serves nothing, the \
             evidence survives below",
            v.version_id
        ),
        Some(v) => format!(
            "version {} covers version {version_id}: the key serves other bytes, the \
             evidence survives below",
            v.version_id
        ),
        None => format!("version {version_id} is not the key's current version"),
    })
}

/// Archived manifests no digest seals that are older than `max_age` (problems), and how
/// many younger ones await the next seal.
pub(super) fn check_unsealed(
    archived: &BTreeMap<String, ArchivedManifest>,
    sealed: &BTreeSet<String>,
    now: SystemTime,
    max_age: Duration,
) -> (Vec<Problem>, u64) {
    let mut problems = Vec::new();
    let mut awaiting = 0;
    for (key, a) in archived {
        if sealed.contains(key) {
            continue;
        }
        let age = a
            .last_modified
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        if age > max_age {
            problems.push(Problem {
                key: key.clone(),
                expected: Some(format!(
                    "sealed by a digest within {} of being written",
                    humantime::format_duration(max_age)
                )),
                found: Some(format!(
                    "in no digest, {} after it was written",
                    humantime::format_duration(Duration::from_secs(age.as_secs()))
                )),
                manifest: None,
            });
        } else {
            awaiting += 1;
        }
    }
    (problems, awaiting)
}

/// A ledger whose newest digest ends more than `max_age` ago: the period since is covered
/// by no digest.
pub(super) fn check_fresh(
    prefix: &str,
    newest: Option<&Digest>,
    now: SystemTime,
    max_age: Duration,
) -> Option<Problem> {
    let newest = newest?;
    let end = newest.period_end()?;
    let since = now.duration_since(end).ok()?;
    (since > max_age).then(|| Problem {
        key: digest_key(prefix, newest.sequence + 1),
        expected: Some(format!(
            "a digest at least every {} (two seal intervals)",
            humantime::format_duration(max_age)
        )),
        found: Some(format!(
            "no digest covers the {} since {} (the seal stopped)",
            humantime::format_duration(Duration::from_secs(since.as_secs())),
            newest.period.to
        )),
        manifest: None,
    })
}

/// Expected sessions (the auditor's list) with no archived decision, unless erased.
pub(super) fn check_expected(
    prefix: &str,
    expected: &[String],
    archived_sessions: &BTreeSet<String>,
    erased: &BTreeSet<String>,
) -> Vec<Problem> {
    expected
        .iter()
        .filter(|s| !archived_sessions.contains(*s) && !erased.contains(*s))
        .map(|s| Problem {
            key: format!("{prefix}{s}/"),
            expected: Some(format!(
                "an archived decision of session {s} (it is in the list given)"
            )),
            found: Some("no manifest under the session's folder".into()),
            manifest: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SafeId;
    use crate::ledger::format::{DIGEST_SCHEMA, Link, Period, SealedManifest};

    fn at(rfc: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc).unwrap()
    }

    fn doc(sequence: u64, from: Option<&str>, to: &str, previous: Option<Link>) -> Digest {
        Digest {
            schema: DIGEST_SCHEMA.into(),
            sequence,
            period: Period {
                from: from.map(str::to_string),
                to: to.into(),
            },
            sealed_at: to.into(),
            interval_seconds: 3600,
            previous,
            manifests: vec![],
            pending: vec![],
            abandoned: vec![],
            erasures: vec![],
            archiver: "t".into(),
        }
    }

    /// A chain of `n` linked digests (hourly periods).
    fn chain(n: u64) -> Vec<ReadDigest> {
        let mut out: Vec<ReadDigest> = Vec::new();
        for s in 0..n {
            let from = (s > 0).then(|| format!("2026-12-03T{:02}:00:00Z", s - 1 + 8));
            let to = format!("2026-12-03T{:02}:00:00Z", s + 8);
            let previous = out.last().map(|p| Link {
                key: p.key.clone(),
                sha256: sha256_hex(&p.bytes),
            });
            let d = doc(s, from.as_deref(), &to, previous);
            out.push(ReadDigest {
                sequence: s,
                key: digest_key("p/", s),
                bytes: d.to_bytes(),
                signature: None,
                token: None,
            });
        }
        out
    }

    #[test]
    fn an_unbroken_chain_is_all_valid() {
        let c = check_chain("p/", chain(4), None, None);
        assert_eq!((c.total, c.valid), (4, 4));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.digests.len(), 4);
        let empty = check_chain("p/", vec![], None, None);
        assert_eq!((empty.total, empty.valid), (0, 0));
    }

    #[test]
    fn a_deleted_digest_breaks_the_chain() {
        let mut read = chain(4);
        read.remove(1);
        let c = check_chain("p/", read, None, None);
        assert_eq!((c.total, c.valid), (4, 3));
        assert_eq!(c.problems[0].key, digest_key("p/", 1));
        assert!(c.problems[0].found.as_deref().unwrap().contains("deleted"));
    }

    #[test]
    fn an_altered_digest_is_named_by_its_successor() {
        let mut read = chain(3);
        read[1].bytes = String::from_utf8(read[1].bytes.clone())
            .unwrap()
            .replace("\"archiver\": \"t\"", "\"archiver\": \"x\"")
            .into_bytes();
        let c = check_chain("p/", read, None, None);
        assert_eq!(c.valid, 2);
        assert_eq!(c.problems.len(), 1);
        assert_eq!(c.problems[0].key, digest_key("p/", 2));
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("altered or replaced")
        );
    }

    #[test]
    fn reordered_or_unlinked_digests_break_the_chain() {
        // Digest 2's document stored as digest 1 and the other way round.
        let mut read = chain(3);
        let (a, b) = (read[1].bytes.clone(), read[2].bytes.clone());
        read[1].bytes = b;
        read[2].bytes = a;
        let c = check_chain("p/", read, None, None);
        assert!(
            c.problems
                .iter()
                .any(|p| p.found.as_deref().unwrap().contains("out of order"))
        );
        assert!(c.valid < 3);
        // A digest that links to nothing, or a first digest that links to something.
        let mut read = chain(2);
        let mut d1 = Digest::parse(&read[1].bytes).unwrap();
        d1.previous = None;
        read[1].bytes = d1.to_bytes();
        let c = check_chain("p/", read, None, None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("links to no previous")
        );
        let mut read = chain(1);
        let mut d0 = Digest::parse(&read[0].bytes).unwrap();
        d0.previous = Some(Link {
            key: "k".into(),
            sha256: "s".into(),
        });
        read[0].bytes = d0.to_bytes();
        let c = check_chain("p/", read, None, None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("first digest links")
        );
    }

    #[test]
    fn a_gap_between_periods_and_a_wrong_link_key_are_named() {
        let mut read = chain(2);
        let mut d1 = Digest::parse(&read[1].bytes).unwrap();
        d1.period.from = Some("2026-12-03T08:30:00Z".into());
        read[1].bytes = d1.to_bytes();
        let c = check_chain("p/", read, None, None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("its period starts at")
        );
        let mut read = chain(2);
        let mut d1 = Digest::parse(&read[1].bytes).unwrap();
        d1.previous.as_mut().unwrap().key = "p/elsewhere.json".into();
        read[1].bytes = d1.to_bytes();
        let c = check_chain("p/", read, None, None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("links to p/elsewhere.json")
        );
        let mut read = chain(2);
        read[0].bytes = b"not json".to_vec();
        let c = check_chain("p/", read, None, None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("does not parse")
        );
    }

    #[test]
    fn signatures_and_tokens_are_required_when_asked() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let public = *key.verifying_key();
        let c = check_chain("p/", chain(1), Some(&public), None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("not signed")
        );
        let mut read = chain(1);
        read[0].signature = Some(b"{}".to_vec());
        let c = check_chain("p/", read, Some(&public), None);
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("signature fails")
        );
        let c = check_chain("p/", chain(1), None, Some(b"cert"));
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("no RFC 3161 token")
        );
        let mut read = chain(1);
        read[0].token = Some(b"x".to_vec());
        let c = check_chain("p/", read, None, Some(b"cert"));
        assert!(
            c.problems[0]
                .found
                .as_deref()
                .unwrap()
                .contains("token fails")
        );
    }

    fn sealed(key: &str, sha: &str, version: Option<&str>) -> SealedManifest {
        SealedManifest {
            key: key.into(),
            version_id: version.map(str::to_string),
            size: 3,
            sha256: sha.into(),
            receipt: None,
        }
    }

    fn archived(sha: &str) -> ArchivedManifest {
        ArchivedManifest {
            sha256: sha.into(),
            last_modified: Some(at("2026-12-03T08:00:00Z")),
        }
    }

    fn version(key: &str, id: &str, latest: bool, marker: bool) -> ListedVersion {
        ListedVersion {
            key: key.into(),
            version_id: id.into(),
            is_latest: latest,
            delete_marker: marker,
            size: 3,
            storage_class: None,
            last_modified: None,
        }
    }

    #[test]
    fn sealed_manifests_are_present_removed_changed_covered_or_erased() {
        let mut d = doc(0, None, "2026-12-03T09:00:00Z", None);
        d.manifests = vec![
            sealed("p/s1/a/m.json", "aa", Some("v1")),
            sealed("p/s2/a/m.json", "bb", Some("v1")),
            sealed("p/s3/a/m.json", "cc", Some("v1")),
            sealed("p/s4/a/m.json", "dd", Some("v1")),
            sealed("p/s5/a/m.json", "ee", Some("v1")),
            sealed("p/gone/a/m.json", "ff", None),
        ];
        d.erasures = vec![Erasure {
            subject: "h".into(),
            sessions: vec![SafeId::parse("gone").unwrap()],
            erased_at: "2026-12-03T09:00:00Z".into(),
            by: "arn".into(),
            record: "p/ledger/erasures/x.json".into(),
        }];
        let mut d2 = doc(
            1,
            Some("2026-12-03T09:00:00Z"),
            "2026-12-03T10:00:00Z",
            None,
        );
        d2.manifests = vec![sealed("p/s1/a/m.json", "aa", Some("v1"))];
        let archive = BTreeMap::from([
            ("p/s1/a/m.json".to_string(), archived("aa")),
            ("p/s3/a/m.json".to_string(), archived("xx")),
            ("p/s4/a/m.json".to_string(), archived("yy")),
        ]);
        let versions: Versions = HashMap::from([
            (
                "p/s4/a/m.json".to_string(),
                vec![
                    version("p/s4/a/m.json", "v2", true, false),
                    version("p/s4/a/m.json", "v1", false, false),
                ],
            ),
            (
                "p/s5/a/m.json".to_string(),
                vec![
                    version("p/s5/a/m.json", "d1", true, true),
                    version("p/s5/a/m.json", "v1", false, false),
                ],
            ),
        ]);
        let c = check_sealed("p/", &[d, d2], &archive, Some(&versions), &[]);
        assert_eq!(
            (c.listed, c.present),
            (5, 1),
            "the erased session set apart, s1 once"
        );
        let keys = |v: &[Problem]| v.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&c.removed), ["p/s2/a/m.json"]);
        assert!(
            c.removed[0]
                .found
                .as_deref()
                .unwrap()
                .contains("session s2 no longer has")
        );
        assert!(
            c.removed[0]
                .expected
                .as_deref()
                .unwrap()
                .contains("sealed by digest 0 (3 bytes, SHA-256 bb, version v1)")
        );
        assert_eq!(keys(&c.changed), ["p/s3/a/m.json"]);
        assert_eq!(keys(&c.covered), ["p/s4/a/m.json", "p/s5/a/m.json"]);
        assert!(
            c.covered[0]
                .found
                .as_deref()
                .unwrap()
                .contains("version v2 covers version v1")
        );
        assert!(
            c.covered[1]
                .found
                .as_deref()
                .unwrap()
                .contains("delete marker (d1)")
        );
        assert_eq!(c.erased_sessions, BTreeSet::from(["gone".to_string()]));
        // Without versions, the same are removed or changed.
        let mut d = doc(0, None, "2026-12-03T09:00:00Z", None);
        d.manifests = vec![sealed("p/s4/a/m.json", "dd", Some("v1"))];
        let c = check_sealed("p/", &[d.clone()], &archive, None, &[]);
        assert_eq!(keys(&c.changed), ["p/s4/a/m.json"]);
        // An erasure record not sealed yet counts too (erase, then verify at once).
        let record = Erasure {
            subject: "h".into(),
            sessions: vec![SafeId::parse("s4").unwrap()],
            erased_at: "2026-12-03T09:00:00Z".into(),
            by: "arn".into(),
            record: "p/ledger/erasures/y.json".into(),
        };
        let c = check_sealed("p/", &[d], &archive, None, &[record]);
        assert!(c.changed.is_empty());
        assert_eq!(c.listed, 0);
    }

    #[test]
    fn covering_needs_the_version_still_there_and_not_served() {
        let versions: Versions =
            HashMap::from([("k".to_string(), vec![version("k", "v1", true, false)])]);
        assert_eq!(
            covering(Some(&versions), "k", Some("v1")),
            None,
            "it is served"
        );
        assert_eq!(
            covering(Some(&versions), "k", Some("v0")),
            None,
            "hard-deleted: not covered"
        );
        assert_eq!(covering(Some(&versions), "k", None), None);
        assert_eq!(covering(None, "k", Some("v1")), None);
        assert_eq!(covering(Some(&versions), "other", Some("v1")), None);
    }

    #[test]
    fn old_unsealed_manifests_are_problems_and_young_ones_await_the_seal() {
        let archive = BTreeMap::from([
            ("old".to_string(), archived("a")),
            ("sealed".to_string(), archived("b")),
            (
                "young".to_string(),
                ArchivedManifest {
                    sha256: "c".into(),
                    last_modified: Some(at("2026-12-03T10:30:00Z")),
                },
            ),
        ]);
        let sealed = BTreeSet::from(["sealed".to_string()]);
        let (problems, awaiting) = check_unsealed(
            &archive,
            &sealed,
            at("2026-12-03T11:00:00Z"),
            Duration::from_secs(7200),
        );
        assert_eq!(awaiting, 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "old");
        assert!(problems[0].found.as_deref().unwrap().contains("3h after"));
        let (none, _) = check_unsealed(
            &archive,
            &sealed,
            at("2026-12-03T10:00:00Z"),
            Duration::from_secs(7200),
        );
        assert!(none.is_empty(), "exactly two intervals is still fine");
    }

    #[test]
    fn a_ledger_that_stopped_is_named() {
        let d = doc(4, None, "2026-12-03T08:00:00Z", None);
        let max = Duration::from_secs(7200);
        assert_eq!(
            check_fresh("p/", Some(&d), at("2026-12-03T10:00:00Z"), max),
            None
        );
        let p = check_fresh("p/", Some(&d), at("2026-12-03T10:00:01Z"), max).unwrap();
        assert_eq!(p.key, digest_key("p/", 5));
        assert!(p.found.unwrap().contains("since 2026-12-03T08:00:00Z"));
        assert_eq!(
            check_fresh("p/", None, at("2026-12-03T10:00:00Z"), max),
            None
        );
    }

    #[test]
    fn expected_sessions_without_a_decision_are_named_unless_erased() {
        let archived = BTreeSet::from(["a".to_string()]);
        let erased = BTreeSet::from(["e".to_string()]);
        let p = check_expected(
            "p/",
            &["a".into(), "b".into(), "e".into()],
            &archived,
            &erased,
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "p/b/");
    }
}
