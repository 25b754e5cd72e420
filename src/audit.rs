//! Reading the archive back to prove it: every manifest parses (v1 or v2) and its signature
//! holds, every file it lists is still stored as recorded, and nothing is stored that no
//! manifest lists. The read side of `veriff-archiver verify` and `report`; it never writes.
//!
//! A file is checked without a download: `HeadObject` with checksum mode (of the recorded
//! version, when one is recorded) must show the recorded size, ETag and S3 checksum. With
//! `deep`, the object is also downloaded and its SHA-256 recomputed, which catches a change
//! that kept S3's metadata. Objects listed by several manifests (a re-decided attempt) are
//! checked once. Listing is paginated, and checks run concurrently up to `concurrency`.
//!
//! This file does the reading; the rules that judge what was read (folders, orphans, gaps,
//! what a stored object must match, the counts) are pure functions in `audit/rules.rs`.

mod chain;
mod class;
mod ledger;
mod proof;
mod rules;

pub use class::ProblemClass;
pub use proof::{FileId, all_files};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use bytes::Bytes;
use futures_util::StreamExt;
use p256::ecdsa::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::DecisionRecord;
use crate::error::Error;
use crate::manifest::{Manifest, MediaUnavailable, S3Checksum};
use crate::select::Skipped;
use crate::signing::{self, signature_key};
use crate::store::Store;
use proof::Downloaded;
use rules::{Expected, FolderObjects};

/// Largest manifest or signature document read: 16 MiB, hundreds of times the tens of
/// kilobytes of the manifests this archiver writes.
const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// What to audit, and how.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The archive prefix (empty or ending in `/`).
    pub prefix: String,
    /// Only these sessions; empty: every session under the prefix.
    pub sessions: Vec<String>,
    /// Also download every object and recompute its SHA-256.
    pub deep: bool,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// The manifest signing key's public half. When given, every manifest must carry a
    /// valid signature; when not, signatures are not checked.
    pub public_key: Option<VerifyingKey>,
    /// Walk the ledger too (a whole-archive audit; `None`: no ledger walk).
    pub ledger: Option<LedgerOptions>,
    /// Sessions that must have an archived decision (`verify --expect`).
    pub expected_sessions: Vec<String>,
}

/// How the ledger is walked.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// The time-stamping authority's certificate (PEM or DER): every digest must carry a
    /// token that verifies against it.
    pub tsa_cert: Option<Vec<u8>>,
    /// The moment the audit judges staleness from.
    pub now: std::time::SystemTime,
}

/// The result of an audit: counts, problems by class, and every session in detail.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// The bucket audited.
    pub bucket: String,
    /// The prefix audited.
    pub prefix: String,
    /// Whether objects were downloaded and hashed.
    pub deep: bool,
    /// Whether manifest signatures were checked (a public key was given).
    pub signatures_checked: bool,
    /// Counts.
    pub summary: Summary,
    /// Every problem, by class.
    pub problems: Problems,
    /// Every session, attempt, manifest and file, in key order.
    pub sessions: Vec<SessionAudit>,
    /// The ledger, when it was walked (a whole-archive audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerSummary>,
}

/// What the walk of the ledger found, in the spirit of CloudTrail's `validate-logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerSummary {
    /// Digests the chain should hold (0 to the highest sequence found).
    pub digests: u64,
    /// Of them, valid (there, linked, and signed and timestamped when asked).
    pub digests_valid: u64,
    /// Distinct manifests the digests seal (erased sessions aside).
    pub manifests_sealed: u64,
    /// Of them, stored exactly as sealed.
    pub manifests_present: u64,
    /// Manifests younger than two seal intervals waiting for the next seal.
    pub awaiting_seal: u64,
    /// The period the chain covers: from its first digest's start (none: everything
    /// before) to its newest digest's end.
    pub covered_to: Option<String>,
    /// The seal interval recorded by the newest digest, in seconds.
    pub interval_seconds: u64,
    /// Sessions erased on purpose, by erasure records in the ledger.
    pub erased_sessions: Vec<String>,
    /// Whether digest signatures were checked.
    pub signatures_checked: bool,
    /// Whether RFC 3161 tokens were checked (`--tsa-cert`).
    pub timestamps_checked: bool,
    /// Whether versions were listed (a versioned bucket), so covered versions are found.
    pub versions_checked: bool,
}

/// The counts of an audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Sessions with at least one object.
    pub sessions: u64,
    /// Attempt folders.
    pub attempts: u64,
    /// Manifests found (readable or not).
    pub manifests: u64,
    /// Distinct stored files the manifests list (media and decision bodies).
    pub files: u64,
    /// Their recorded bytes.
    pub bytes: u64,
    /// Files found exactly as recorded.
    pub ok: u64,
    /// Files a manifest lists that are gone.
    pub missing: u64,
    /// Files that differ from their record.
    pub altered: u64,
    /// Manifests that do not parse.
    pub unreadable: u64,
    /// Manifests without a signature, when signatures are checked.
    pub unsigned: u64,
    /// Manifests whose signature does not verify.
    pub bad_signature: u64,
    /// Objects no manifest lists.
    pub orphans: u64,
    /// Attempt folders holding files but no manifest.
    pub gaps: u64,
    /// Sealed manifests that are gone.
    pub removed: u64,
    /// Sealed manifests stored with other bytes.
    pub changed: u64,
    /// Archived versions a newer version or a delete marker covers.
    pub covered: u64,
    /// Problems of the ledger's chain (digests missing, altered, out of order, unsigned,
    /// untimestamped) and of its freshness.
    pub ledger: u64,
    /// Manifests older than two seal intervals that no digest seals.
    pub unsealed: u64,
    /// Expected sessions (`--expect`) with no archived decision.
    pub unarchived: u64,
}

/// Every problem found, by class.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problems {
    /// Files a manifest lists that are gone.
    pub missing: Vec<Problem>,
    /// Files that differ from their record.
    pub altered: Vec<Problem>,
    /// Manifests that do not parse.
    pub unreadable: Vec<Problem>,
    /// Manifests without a signature.
    pub unsigned: Vec<Problem>,
    /// Manifests whose signature does not verify.
    pub bad_signature: Vec<Problem>,
    /// Objects no manifest lists.
    pub orphans: Vec<Problem>,
    /// Attempt folders with files but no manifest.
    pub gaps: Vec<Problem>,
    /// Sealed manifests that are gone.
    pub removed: Vec<Problem>,
    /// Sealed manifests stored with other bytes.
    pub changed: Vec<Problem>,
    /// Archived versions a newer version or a delete marker covers.
    pub covered: Vec<Problem>,
    /// The ledger's chain and freshness.
    pub ledger: Vec<Problem>,
    /// Manifests older than two seal intervals that no digest seals.
    pub unsealed: Vec<Problem>,
    /// Expected sessions with no archived decision.
    pub unarchived: Vec<Problem>,
}

/// One problem: the key, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The object (or folder, for a gap).
    pub key: String,
    /// What the record says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// The manifest that lists it, for file problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// One session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAudit {
    /// Session id.
    pub session_id: String,
    /// Its attempt folders.
    pub attempts: Vec<AttemptAudit>,
}

/// One attempt folder.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptAudit {
    /// Attempt id.
    pub attempt_id: String,
    /// The folder's key prefix.
    pub folder: String,
    /// Its manifests, oldest decision first.
    pub manifests: Vec<ManifestAudit>,
}

/// How a manifest's signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureCheck {
    /// A signature document verifies with the public key.
    Valid,
    /// A signature document does not verify.
    Invalid,
    /// No signature document (a problem only when signatures are checked).
    Unsigned,
    /// A signature document is there, but no public key was given.
    NotChecked,
}

/// One manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestAudit {
    /// Its key.
    pub key: String,
    /// Whether it parsed.
    pub readable: bool,
    /// Schema version (1, 2 or 3), when readable.
    pub schema_version: Option<u32>,
    /// The decision's non-personal fields, when readable.
    pub decision: Option<DecisionRecord>,
    /// When it was written.
    pub archived_at: Option<String>,
    /// Its signature.
    pub signature: SignatureCheck,
    /// The files it lists, each with this run's result.
    pub files: Vec<FileAudit>,
    /// The stored webhook body, when kept.
    pub decision_payload: Option<FileAudit>,
    /// The items it lists as not stored.
    pub skipped: Vec<Skipped>,
    /// Why it lists no files because Veriff no longer had the media (schema v3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_unavailable: Option<MediaUnavailable>,
    /// The SHA-256 of the manifest's bytes as read (what a digest seals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One file a manifest lists, with this run's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAudit {
    /// Its key.
    pub key: String,
    /// Veriff media id (empty for a decision body).
    pub media_id: String,
    /// `image`, `video`, `nfc`, or `decision` for a webhook body.
    pub kind: String,
    /// Media context.
    pub context: String,
    /// Content-Type as recorded.
    pub content_type: String,
    /// Recorded size.
    pub size: u64,
    /// Recorded SHA-256.
    pub sha256: String,
    /// Recorded version id.
    pub version_id: Option<String>,
    /// Recorded ETag.
    pub etag: Option<String>,
    /// Recorded S3 checksum.
    pub s3_checksum: Option<S3Checksum>,
    /// This run's result.
    pub result: FileResult,
    /// What differed, when it did.
    pub detail: Option<String>,
}

/// The result of checking one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileResult {
    /// Stored exactly as recorded.
    Ok,
    /// Gone.
    Missing,
    /// Stored, but not as recorded.
    Altered,
}

impl FileResult {
    /// The name `verify --json` gives it (`ok`, `missing`, `altered`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileResult::Ok => "ok",
            FileResult::Missing => "missing",
            FileResult::Altered => "altered",
        }
    }
}

/// What the audit listed: attempt folders, strays (key, size), and when S3 stored each
/// object.
type Listing = (
    BTreeMap<String, FolderObjects>,
    Vec<(String, u64)>,
    HashMap<String, std::time::SystemTime>,
);

/// Reads an archive back. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Auditor {
    store: Store,
}

impl Auditor {
    /// An auditor of `bucket` through `client`.
    ///
    /// The SDK's own validation of response checksums is limited to requests that ask for
    /// it: with `deep`, bytes that no longer match S3's stored checksum must be hashed and
    /// reported as altered, not fail the download (and the whole audit) mid-body.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        let client = Client::from_conf(
            client
                .config()
                .to_builder()
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                )
                .build(),
        );
        Auditor {
            store: Store::new(client, bucket, 5 * 1024 * 1024),
        }
    }

    /// Audits the archive. `progress(done, total)` is called as files are checked.
    pub async fn audit(
        &self,
        options: &AuditOptions,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<AuditReport, Error> {
        let mut report = AuditReport {
            bucket: self.store.bucket().to_string(),
            prefix: options.prefix.clone(),
            deep: options.deep,
            signatures_checked: options.public_key.is_some(),
            ..AuditReport::default()
        };
        let (folders, strays, times) = self.list(options).await?;
        for (key, size) in strays {
            let problem = rules::orphan(&key, size, "outside any attempt folder");
            report.problems.orphans.push(problem);
        }

        // Read every folder's manifests (and signatures), concurrently and in order.
        let read: Vec<(AttemptAudit, Problems)> = futures_util::stream::iter(&folders)
            .map(|(folder, objects)| async move {
                let mut problems = Problems::default();
                let attempt = self
                    .read_attempt(folder, objects, options, &mut problems)
                    .await?;
                Ok::<_, Error>((attempt, problems))
            })
            .buffered(options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut attempts = Vec::with_capacity(read.len());
        for (attempt, problems) in read {
            report.problems.append(problems);
            attempts.push(attempt);
        }
        let expected = rules::collate(&folders, &attempts, &mut report.problems);

        // Check every distinct file, concurrently.
        let total = expected.len() as u64;
        let done = AtomicU64::new(0);
        progress(0, total);
        let results: Vec<rules::Checked> = futures_util::stream::iter(expected)
            .map(|file| {
                let done = &done;
                async move {
                    let (result, detail) = self.check(&file, options.deep).await?;
                    progress(done.fetch_add(1, Ordering::SeqCst) + 1, total);
                    Ok::<_, Error>((file, result, detail))
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;

        rules::record_results(
            results,
            &mut report.summary,
            &mut report.problems,
            &mut attempts,
        );
        report.sessions = rules::into_sessions(&folders, attempts);
        if let Some(ledger) = &options.ledger {
            self.walk_ledger(options, ledger, &times, &mut report)
                .await?;
        } else if !options.expected_sessions.is_empty() {
            self.check_expected(options, &Default::default(), &mut report);
        }
        rules::count(&mut report.summary, &report.problems, &report.sessions);
        Ok(report)
    }

    /// Downloads the distinct files of an audited `report` that `wanted` picks (each at
    /// most `max_bytes`, `concurrency` at once) and recomputes their SHA-256. Returns the
    /// bytes of each file that hashes to its record; one that does not (or is gone by now)
    /// is recorded in `report` as altered (or missing), so what is shown and the audit's
    /// result agree. Files the audit already found broken are not downloaded.
    pub async fn prove(
        &self,
        report: &mut AuditReport,
        wanted: &dyn Fn(&FileAudit) -> bool,
        max_bytes: u64,
        concurrency: usize,
    ) -> Result<HashMap<FileId, Bytes>, Error> {
        let files = proof::to_prove(report, wanted);
        let downloads: Vec<_> = futures_util::stream::iter(files)
            .map(|file| async move {
                let version = file.id.version_id.as_deref();
                let bytes = self
                    .store
                    .read_version(&file.id.key, version, max_bytes)
                    .await?;
                Ok::<_, Error>((file, bytes))
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut proven = HashMap::new();
        for download in downloads {
            let (file, bytes) = download?;
            let found = match &bytes {
                Some(b) => Downloaded::Hashed(hex::encode(Sha256::digest(b))),
                None => Downloaded::Gone,
            };
            if let (true, Some(bytes)) = (proof::record_download(report, &file, &found), bytes) {
                proven.insert(file.id, bytes);
            }
        }
        Ok(proven)
    }

    /// Lists the objects to audit, sorted into attempt folders; the rest are strays.
    async fn list(&self, options: &AuditOptions) -> Result<Listing, Error> {
        let prefixes: Vec<String> = if options.sessions.is_empty() {
            vec![options.prefix.clone()]
        } else {
            options
                .sessions
                .iter()
                .map(|s| format!("{}{s}/", options.prefix))
                .collect()
        };
        let mut folders: BTreeMap<String, FolderObjects> = BTreeMap::new();
        let mut strays = Vec::new();
        let mut times = HashMap::new();
        // The ledger beside the session folders is walked on its own (`ledger_audit`); the
        // index by customer is derived from the manifests (`reindex` rebuilds it).
        let ledger = crate::ledger::format::ledger_prefix(&options.prefix);
        let index = crate::index::index_prefix(&options.prefix);
        for prefix in prefixes {
            let mut objects = self.store.list_folder(&prefix).await?;
            objects.retain(|o| !o.key.starts_with(&ledger) && !o.key.starts_with(&index));
            times.extend(
                objects
                    .iter()
                    .filter_map(|o| Some((o.key.clone(), o.last_modified?))),
            );
            strays.extend(rules::sort_into_folders(
                &options.prefix,
                objects,
                &mut folders,
            ));
        }
        Ok((folders, strays, times))
    }

    /// Reads the manifests (and signatures) of one attempt folder.
    async fn read_attempt(
        &self,
        folder: &str,
        objects: &FolderObjects,
        options: &AuditOptions,
        problems: &mut Problems,
    ) -> Result<AttemptAudit, Error> {
        let mut manifests = Vec::new();
        for key in rules::manifest_keys_in_order(folder, objects) {
            let bytes = self
                .store
                .read(key, MAX_DOCUMENT_BYTES)
                .await?
                .unwrap_or_default();
            let signature = self
                .check_signature(key, &bytes, &objects.keys, options, problems)
                .await?;
            let mut audit = match Manifest::parse(&bytes) {
                Ok(m) => rules::manifest_audit(key, m, signature),
                Err(reason) => {
                    rules::unreadable_manifest(key, reason.to_string(), signature, problems)
                }
            };
            audit.sha256 = Some(crate::ledger::format::sha256_hex(&bytes));
            manifests.push(audit);
        }
        Ok(AttemptAudit {
            attempt_id: objects.attempt_id.clone(),
            folder: folder.to_string(),
            manifests,
        })
    }

    /// Checks a manifest's signature document, when a public key is given; a missing or
    /// failing one is recorded as a problem.
    async fn check_signature(
        &self,
        key: &str,
        manifest: &[u8],
        keys: &BTreeMap<String, u64>,
        options: &AuditOptions,
        problems: &mut Problems,
    ) -> Result<SignatureCheck, Error> {
        let sig_key = signature_key(key);
        let has_signature = keys.contains_key(&sig_key);
        let Some(public_key) = &options.public_key else {
            return Ok(rules::unchecked_signature(has_signature));
        };
        if !has_signature {
            problems.unsigned.push(Problem {
                key: key.to_string(),
                expected: Some(format!("a signature at {sig_key}")),
                found: Some("none".into()),
                manifest: None,
            });
            return Ok(SignatureCheck::Unsigned);
        }
        let document = self
            .store
            .read(&sig_key, MAX_DOCUMENT_BYTES)
            .await?
            .unwrap_or_default();
        match signing::verify(&document, key, manifest, public_key) {
            Ok(_) => Ok(SignatureCheck::Valid),
            Err(reason) => {
                problems.bad_signature.push(Problem {
                    key: key.to_string(),
                    expected: Some("a signature that verifies with the public key".into()),
                    found: Some(reason.to_string()),
                    manifest: None,
                });
                Ok(SignatureCheck::Invalid)
            }
        }
    }

    /// Checks one file: HeadObject (of the recorded version), then with `deep` its bytes.
    async fn check(
        &self,
        file: &Expected,
        deep: bool,
    ) -> Result<(FileResult, Option<String>), Error> {
        let version = file.version_id.as_deref();
        let Some(head) = self.store.head(&file.key, version).await? else {
            return Ok((FileResult::Missing, Some("no such object".into())));
        };
        if let Some(difference) = rules::head_difference(file, &head) {
            return Ok((FileResult::Altered, Some(difference)));
        }
        if deep {
            let Some(sha256) = self.store.sha256_of(&file.key, version).await? else {
                return Ok((FileResult::Missing, Some("no such object".into())));
            };
            if let Some(difference) = rules::sha256_difference(file, &sha256) {
                return Ok((FileResult::Altered, Some(difference)));
            }
        }
        Ok((FileResult::Ok, None))
    }
}
