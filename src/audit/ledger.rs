//! The audit's walk of the ledger (a whole-archive `verify`): every digest of the chain
//! with its signature and token, the manifests they seal against the archive as read, on a
//! versioned bucket every version under the prefix (what covers an archived version), and
//! the sessions an auditor expects. The rules are in `chain.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use super::chain::{self, ArchivedManifest, ReadDigest, Versions};
use super::{AuditOptions, AuditReport, Auditor, LedgerOptions, LedgerSummary, Problem};
use crate::error::Error;
use crate::ledger::format::{
    Erasure, digest_sequence, digests_prefix, erasures_prefix, timestamp_key,
};
use crate::signing::signature_key;

/// Largest digest, signature or token read.
const MAX_LEDGER_DOCUMENT: u64 = 256 << 20;

/// Without a digest to say otherwise, the schedule's default interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

impl Auditor {
    /// Walks the ledger and records what it finds in `report` (its problems and its
    /// [`LedgerSummary`]); `times`: when S3 stored each listed object.
    pub(super) async fn walk_ledger(
        &self,
        options: &AuditOptions,
        ledger: &LedgerOptions,
        times: &HashMap<String, SystemTime>,
        report: &mut AuditReport,
    ) -> Result<(), Error> {
        let prefix = &options.prefix;
        let read = self.read_chain(prefix).await?;
        let chain = chain::check_chain(
            prefix,
            read,
            options.public_key.as_ref(),
            ledger.tsa_cert.as_deref(),
        );
        let versions = self.versions(prefix).await?;
        let archived = archived_manifests(report, times);
        let erasures = self.erasure_records(prefix).await?;
        let sealed = chain::check_sealed(
            prefix,
            &chain.digests,
            &archived,
            versions.as_ref(),
            &erasures,
        );
        let newest = chain.digests.last();
        let interval = newest
            .map(|d| Duration::from_secs(d.interval_seconds))
            .filter(|i| !i.is_zero())
            .unwrap_or(DEFAULT_INTERVAL);
        let sealed_keys: BTreeSet<String> = chain
            .digests
            .iter()
            .flat_map(|d| d.manifests.iter().map(|m| m.key.clone()))
            .collect();
        let (unsealed, awaiting) =
            chain::check_unsealed(&archived, &sealed_keys, ledger.now, 2 * interval);
        let covered_files = covered_files(report, versions.as_ref());
        let problems = &mut report.problems;
        problems.ledger.extend(chain.problems);
        problems
            .ledger
            .extend(chain::check_fresh(prefix, newest, ledger.now, 2 * interval));
        problems.removed.extend(sealed.removed);
        problems.changed.extend(sealed.changed);
        problems.covered.extend(sealed.covered);
        problems.covered.extend(covered_files);
        report.problems.unsealed.extend(unsealed);
        report.ledger = Some(LedgerSummary {
            digests: chain.total,
            digests_valid: chain.valid,
            manifests_sealed: sealed.listed,
            manifests_present: sealed.present,
            awaiting_seal: awaiting,
            covered_to: newest.map(|d| d.period.to.clone()),
            interval_seconds: interval.as_secs(),
            erased_sessions: sealed.erased_sessions.iter().cloned().collect(),
            signatures_checked: options.public_key.is_some(),
            timestamps_checked: ledger.tsa_cert.is_some(),
            versions_checked: versions.is_some(),
        });
        self.check_expected(options, &sealed.erased_sessions, report);
        Ok(())
    }

    /// Names the expected sessions (`--expect`) with no archived decision, unless erased.
    pub(super) fn check_expected(
        &self,
        options: &AuditOptions,
        erased: &BTreeSet<String>,
        report: &mut AuditReport,
    ) {
        let archived: BTreeSet<String> = report
            .sessions
            .iter()
            .filter(|s| s.attempts.iter().any(|a| !a.manifests.is_empty()))
            .map(|s| s.session_id.clone())
            .collect();
        let missing = chain::check_expected(
            &options.prefix,
            &options.expected_sessions,
            &archived,
            erased,
        );
        report.problems.unarchived.extend(missing);
    }

    /// Every digest under the ledger's folder, with its signature and token when stored.
    async fn read_chain(&self, prefix: &str) -> Result<Vec<ReadDigest>, Error> {
        let listed = self.store.list_folder(&digests_prefix(prefix)).await?;
        let keys: BTreeSet<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        let digests: Vec<(u64, String)> = listed
            .iter()
            .filter_map(|o| Some((digest_sequence(prefix, &o.key)?, o.key.clone())))
            .collect();
        futures_util::stream::iter(digests)
            .map(|(sequence, key)| {
                let sig = keys.contains(signature_key(&key).as_str());
                let tsr = keys.contains(timestamp_key(&key).as_str());
                async move {
                    let read = |k: String| async move {
                        Ok::<_, Error>(
                            self.store
                                .read(&k, MAX_LEDGER_DOCUMENT)
                                .await?
                                .map(|b| b.to_vec()),
                        )
                    };
                    let bytes = read(key.clone()).await?.unwrap_or_default();
                    let signature = match sig {
                        true => read(signature_key(&key)).await?,
                        false => None,
                    };
                    let token = match tsr {
                        true => read(timestamp_key(&key)).await?,
                        false => None,
                    };
                    Ok::<_, Error>(ReadDigest {
                        sequence,
                        key,
                        bytes,
                        signature,
                        token,
                    })
                }
            })
            .buffered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// The erasure records under the ledger, sealed or not yet (an erasure is reported as
    /// such at once, not only after the next seal). One that does not parse is skipped:
    /// its sessions then show as removed, which is the safe side.
    async fn erasure_records(&self, prefix: &str) -> Result<Vec<Erasure>, Error> {
        let mut out = Vec::new();
        for object in self.store.list_folder(&erasures_prefix(prefix)).await? {
            let Some(bytes) = self.store.read(&object.key, 1 << 20).await? else {
                continue;
            };
            if let Ok(erasure) = serde_json::from_slice::<Erasure>(&bytes)
                && erasure.record == object.key
            {
                out.push(erasure);
            }
        }
        Ok(out)
    }

    /// Every version under the prefix, by key, on a versioned bucket; `None` otherwise.
    async fn versions(&self, prefix: &str) -> Result<Option<Versions>, Error> {
        if !self.store.is_versioned().await? {
            return Ok(None);
        }
        let mut by_key: Versions = HashMap::new();
        for version in self.store.list_versions(prefix).await? {
            by_key.entry(version.key.clone()).or_default().push(version);
        }
        Ok(Some(by_key))
    }
}

/// The manifests the audit read, with the SHA-256 of their bytes and their S3 time.
fn archived_manifests(
    report: &AuditReport,
    times: &HashMap<String, SystemTime>,
) -> BTreeMap<String, ArchivedManifest> {
    report
        .sessions
        .iter()
        .flat_map(|s| &s.attempts)
        .flat_map(|a| &a.manifests)
        .filter_map(|m| {
            Some((
                m.key.clone(),
                ArchivedManifest {
                    sha256: m.sha256.clone()?,
                    last_modified: times.get(&m.key).copied(),
                },
            ))
        })
        .collect()
}

/// Recorded file versions that a newer version or a delete marker covers.
fn covered_files(report: &AuditReport, versions: Option<&Versions>) -> Vec<Problem> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for m in report
        .sessions
        .iter()
        .flat_map(|s| &s.attempts)
        .flat_map(|a| &a.manifests)
    {
        for file in m.files.iter().chain(&m.decision_payload) {
            let version = file.version_id.as_deref();
            if !seen.insert((file.key.as_str(), version)) {
                continue;
            }
            if let Some(cover) = chain::covering(versions, &file.key, version) {
                out.push(Problem {
                    key: file.key.clone(),
                    expected: Some(format!(
                        "the key serves the archived version {}",
                        version.unwrap_or_default()
                    )),
                    found: Some(cover),
                    manifest: Some(m.key.clone()),
                });
            }
        }
    }
    out
}
