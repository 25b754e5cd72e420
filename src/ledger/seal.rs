//! The seal: one digest for the period since the previous one. Run by the schedule (the
//! function invoked with a Scheduled Event) and by `veriff-archiver seal`.
//!
//! It finds the newest digest with three short listings, reads back the digests its
//! look-back reaches, lists the receipts from the look-back on (one listing from a key,
//! whatever the archive's size; each receipt's key names its manifest, so none is read),
//! looks each new manifest up with one HeadObject (a GetObject when S3 keeps no SHA-256
//! of it), and writes the digest with a
//! conditional create at its sequence number: two seals racing cannot fork the chain, the
//! second is refused. The signature (KMS, before anything is written) and the RFC 3161
//! token follow; a signature or token missing from the newest digest (a seal cut short, an
//! authority that was down) is added by the next seal. A seal that fails writes no digest:
//! the next one covers the gap.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;

use super::format::{
    Digest, Erasure, Link, PendingReceipt, digest_key, digest_sequence, digests_prefix,
    erasures_prefix, key_time, ledger_prefix, parse_receipt_key, receipt_partition,
    receipts_prefix, sha256_hex, time_floor_key, timestamp_key,
};
use super::plan::{self, ManifestState, OpenReceipt, SealSettings, Window};
use super::stamp::Timestamper;
use crate::error::{Error, IntegrityError};
use crate::layout;
use crate::signing::{ManifestSigner, signature_key};
use crate::store::{Created, Store};

/// Largest ledger document read: a digest of a busy hour lists tens of thousands of
/// manifests at about 300 bytes each.
const MAX_LEDGER_DOCUMENT: u64 = 256 << 20;

/// Reads in flight at once.
const CONCURRENCY: usize = 32;

/// Writes the ledger's digests. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sealer {
    store: Store,
    prefix: String,
    signer: Option<ManifestSigner>,
    timestamper: Option<Arc<Timestamper>>,
    settings: SealSettings,
}

/// What a seal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealOutcome {
    /// A digest was written.
    Sealed(SealReport),
    /// The newest digest already reaches this moment: nothing to seal yet.
    UpToDate {
        /// The newest digest's sequence number.
        sequence: u64,
    },
    /// Another seal wrote this sequence number first; its digest stands.
    Raced {
        /// The sequence number.
        sequence: u64,
    },
}

/// The digest a seal wrote, in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealReport {
    /// Its sequence number.
    pub sequence: u64,
    /// Its key.
    pub key: String,
    /// Manifests it seals.
    pub manifests: usize,
    /// Receipts whose manifest is not there yet.
    pub pending: usize,
    /// Receipts given up.
    pub abandoned: usize,
    /// Erasure records it seals.
    pub erasures: usize,
    /// Receipts listed (the window and its look-back).
    pub receipts_read: usize,
    /// Whether it is signed.
    pub signed: bool,
    /// Whether its RFC 3161 token is stored (`false` when none is configured or the
    /// authority failed; the next seal retries).
    pub timestamped: bool,
    /// Signatures or tokens added to the previous digest.
    pub repaired: usize,
}

/// The newest digest: its key, bytes and document.
struct Latest {
    key: String,
    bytes: Bytes,
    digest: Digest,
}

impl Sealer {
    /// A sealer of the archive under `prefix` in `store`.
    pub fn new(store: Store, prefix: impl Into<String>, settings: SealSettings) -> Self {
        Sealer {
            store,
            prefix: prefix.into(),
            signer: None,
            timestamper: None,
            settings,
        }
    }

    /// Signs each digest like a manifest.
    pub fn signed_by(mut self, signer: Option<ManifestSigner>) -> Self {
        self.signer = signer;
        self
    }

    /// Timestamps each digest with an RFC 3161 authority.
    pub fn timestamped_by(mut self, timestamper: Option<Timestamper>) -> Self {
        self.timestamper = timestamper.map(Arc::new);
        self
    }

    /// Seals the period since the newest digest, as of `now`.
    pub async fn seal(&self, now: SystemTime) -> Result<SealOutcome, Error> {
        let latest = self.latest().await?;
        let mut repaired = 0;
        if let Some(latest) = &latest {
            repaired = self.complete(&latest.key, &latest.bytes).await?;
        }
        let Some(window) = plan::window(latest.as_ref().map(|l| &l.digest), now, &self.settings)
        else {
            let sequence = latest.map_or(0, |l| l.digest.sequence);
            return Ok(SealOutcome::UpToDate { sequence });
        };
        let sealed_before = self.sealed_before(&window, latest.as_ref()).await?;
        let pending = latest.as_ref().map_or(&[][..], |l| &l.digest.pending[..]);
        let (open, receipts_read) = self.open_receipts(&window, pending).await?;
        let open = plan::still_open(open, &sealed_before);
        let mut states = self
            .manifest_states(open.iter().map(|r| r.manifest_key.clone()))
            .await?;
        let found_by_listing = match window.from {
            None => self.unreceipted_manifests(&mut states).await?,
            Some(_) => Vec::new(),
        };
        let sealed = plan::assemble(open, &states, found_by_listing, now, &self.settings);
        let erasures = plan::erasures_to_seal(self.erasures(&window).await?, &sealed_before);
        let previous = latest.map(|l| Link {
            key: l.key,
            sha256: sha256_hex(&l.bytes),
        });
        let digest = plan::digest(&window, previous, sealed, erasures, now, &self.settings);
        self.write(&window, digest, receipts_read, repaired).await
    }

    /// Writes the digest (signed first, then created, then its signature and token).
    async fn write(
        &self,
        window: &Window,
        digest: Digest,
        receipts_read: usize,
        repaired: usize,
    ) -> Result<SealOutcome, Error> {
        let key = digest_key(&self.prefix, window.sequence);
        let bytes = Bytes::from(digest.to_bytes());
        let signature = match &self.signer {
            Some(signer) => Some(signer.sign(&key, &bytes).await?),
            None => None,
        };
        let created = (self.store)
            .create(&key, bytes.clone(), "application/json", &[])
            .await?;
        if let Created::Exists { .. } = created {
            return Ok(SealOutcome::Raced {
                sequence: window.sequence,
            });
        }
        if let Some(document) = signature {
            self.put(&signature_key(&key), Bytes::from(document))
                .await?;
        }
        let timestamped = self.stamp(&key, &bytes).await;
        Ok(SealOutcome::Sealed(SealReport {
            sequence: window.sequence,
            key,
            manifests: digest.manifests.len(),
            pending: digest.pending.len(),
            abandoned: digest.abandoned.len(),
            erasures: digest.erasures.len(),
            receipts_read,
            signed: self.signer.is_some(),
            timestamped,
            repaired,
        }))
    }

    /// Creates a small document (one already there is kept).
    async fn put(&self, key: &str, body: Bytes) -> Result<(), Error> {
        self.store
            .create(key, body, "application/json", &[])
            .await
            .map(|_| ())
    }

    /// Stores the RFC 3161 token of a digest; `false` (logged) when none is configured
    /// or the authority fails: the digest stands, the next seal tries again.
    async fn stamp(&self, key: &str, bytes: &[u8]) -> bool {
        let Some(timestamper) = &self.timestamper else {
            return false;
        };
        let token = match timestamper.token_for(bytes).await {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(digest = key, error = %e, "no timestamp for the digest yet; the next seal retries");
                return false;
            }
        };
        match self.put(&timestamp_key(key), Bytes::from(token)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(digest = key, error = %e, "the digest's timestamp could not be stored; the next seal retries");
                false
            }
        }
    }

    /// Adds what the newest digest lacks: its signature (when signing is configured) and
    /// its token (when an authority is). Returns how many were added.
    async fn complete(&self, key: &str, bytes: &[u8]) -> Result<usize, Error> {
        let mut added = 0;
        if let Some(signer) = &self.signer {
            let sig_key = signature_key(key);
            if self.store.head(&sig_key, None).await?.is_none() {
                let document = signer.sign(key, bytes).await?;
                self.put(&sig_key, Bytes::from(document)).await?;
                added += 1;
            }
        }
        if self.timestamper.is_some()
            && self.store.head(&timestamp_key(key), None).await?.is_none()
            && self.stamp(key, bytes).await
        {
            added += 1;
        }
        Ok(added)
    }

    /// The newest digest: the highest folder of each of the two levels, then the highest
    /// digest in it; `None` for an archive not sealed yet.
    async fn latest(&self) -> Result<Option<Latest>, Error> {
        let mut folder = digests_prefix(&self.prefix);
        for _ in 0..2 {
            let level = self.store.list_level(&folder).await?;
            match level.folders.last() {
                Some(highest) => folder = highest.clone(),
                None => return Ok(None),
            }
        }
        let level = self.store.list_level(&folder).await?;
        let newest = level
            .objects
            .iter()
            .filter_map(|o| digest_sequence(&self.prefix, &o.key).map(|s| (s, &o.key)))
            .max();
        let Some((_, key)) = newest else {
            return Ok(None);
        };
        self.read_digest(key).await
    }

    async fn read_digest(&self, key: &str) -> Result<Option<Latest>, Error> {
        let Some(bytes) = self.store.read(key, MAX_LEDGER_DOCUMENT).await? else {
            return Ok(None);
        };
        let digest = Digest::parse(&bytes).map_err(|source| IntegrityError::LedgerDocument {
            key: key.to_string(),
            source,
        })?;
        Ok(Some(Latest {
            key: key.to_string(),
            bytes,
            digest,
        }))
    }

    /// Manifest keys and erasure records already sealed by the digests this seal's
    /// look-back reaches (the newest one, and older ones until one ends before it).
    async fn sealed_before(
        &self,
        window: &Window,
        latest: Option<&Latest>,
    ) -> Result<HashSet<String>, Error> {
        let mut sealed = HashSet::new();
        let Some(latest) = latest else {
            return Ok(sealed);
        };
        let mut add = |d: &Digest| {
            sealed.extend(d.manifests.iter().map(|m| m.key.clone()));
            sealed.extend(d.erasures.iter().map(|e| e.record.clone()));
        };
        add(&latest.digest);
        let mut oldest = latest.digest.sequence;
        let mut last_read = latest.digest.clone();
        while !plan::read_back_enough(window, &last_read) && oldest > 0 {
            oldest -= 1;
            let key = digest_key(&self.prefix, oldest);
            match self.read_digest(&key).await? {
                Some(earlier) => {
                    add(&earlier.digest);
                    last_read = earlier.digest;
                }
                None => {
                    tracing::warn!(
                        digest = key,
                        "a digest of the chain is missing; `verify` reports it"
                    );
                    break;
                }
            }
        }
        Ok(sealed)
    }

    /// The receipts to seal, with the number listed: those in the window (their manifest
    /// read from their key: no receipt is read) and those the newest digest carries as
    /// pending.
    async fn open_receipts(
        &self,
        window: &Window,
        pending: &[PendingReceipt],
    ) -> Result<(Vec<OpenReceipt>, usize), Error> {
        let folder = receipts_prefix(&self.prefix);
        let start = window
            .list_from
            .map(|from| time_floor_key(&receipt_partition(&self.prefix, from), from));
        let listed = self.store.list_after(&folder, start.as_deref()).await?;
        let count = listed.len();
        let receipts: Vec<OpenReceipt> = listed
            .into_iter()
            .filter_map(|o| {
                let (written, manifest_key) = parse_receipt_key(&self.prefix, &o.key)?;
                Some(OpenReceipt {
                    key: o.key,
                    manifest_key,
                    written,
                })
            })
            .collect();
        let mut open = plan::receipts_in_window(receipts, window, pending);
        open.extend(pending.iter().filter_map(|p| {
            Some(OpenReceipt {
                key: p.key.clone(),
                manifest_key: p.manifest_key.clone(),
                written: parse_receipt_key(&self.prefix, &p.key)?.0,
            })
        }));
        Ok((open, count))
    }

    /// Whether `key` names a manifest under this archive's prefix (not in the ledger).
    fn is_manifest_key(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(&self.prefix) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [session, attempt, name] => {
                !key.starts_with(&ledger_prefix(&self.prefix))
                    && crate::domain::is_safe_segment(session)
                    && crate::domain::is_safe_segment(attempt)
                    && layout::parse_manifest_key("", name).is_some()
            }
            _ => false,
        }
    }

    /// What S3 holds of each distinct manifest: its version, size and SHA-256 (from S3's
    /// full-object checksum, or by reading it). A missing manifest has no entry.
    async fn manifest_states(
        &self,
        keys: impl Iterator<Item = String>,
    ) -> Result<BTreeMap<String, ManifestState>, Error> {
        let distinct: Vec<String> = keys.collect::<HashSet<_>>().into_iter().collect();
        let looked: Vec<(String, Option<ManifestState>)> = futures_util::stream::iter(distinct)
            .map(|key| async move {
                let state = self.manifest_state(&key).await?;
                Ok::<_, Error>((key, state))
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        Ok(looked
            .into_iter()
            .filter_map(|(key, state)| Some((key, state?)))
            .collect())
    }

    async fn manifest_state(&self, key: &str) -> Result<Option<ManifestState>, Error> {
        let Some(head) = self.store.head(key, None).await? else {
            return Ok(None);
        };
        let from_checksum = head
            .stored
            .s3_checksum
            .as_ref()
            .filter(|c| c.algorithm == "SHA256" && c.checksum_type == "FULL_OBJECT")
            .and_then(|c| {
                base64::engine::general_purpose::STANDARD
                    .decode(&c.value)
                    .ok()
            })
            .filter(|raw| raw.len() == 32)
            .map(hex::encode);
        if let Some(sha256) = from_checksum {
            return Ok(Some(ManifestState {
                version_id: head.stored.version_id,
                size: head.size,
                sha256,
            }));
        }
        let version = head.stored.version_id.as_deref();
        let Some((bytes, served)) = self
            .store
            .read_with_version(key, version, MAX_LEDGER_DOCUMENT)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(ManifestState {
            version_id: served.or(head.stored.version_id),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        }))
    }

    /// The first digest's baseline: every manifest of the archive (one listing of the
    /// prefix) that no receipt announced, with what S3 holds of it.
    async fn unreceipted_manifests(
        &self,
        states: &mut BTreeMap<String, ManifestState>,
    ) -> Result<Vec<(String, ManifestState)>, Error> {
        let listed = self.store.list_folder(&self.prefix).await?;
        let keys = listed
            .into_iter()
            .map(|o| o.key)
            .filter(|k| self.is_manifest_key(k) && !states.contains_key(k));
        let found = self.manifest_states(keys).await?;
        states.extend(found.clone());
        Ok(found.into_iter().collect())
    }

    /// The erasure records written in the window (from its look-back on).
    async fn erasures(&self, window: &Window) -> Result<Vec<Erasure>, Error> {
        let folder = erasures_prefix(&self.prefix);
        let start = window.list_from.map(|from| time_floor_key(&folder, from));
        let listed = self.store.list_after(&folder, start.as_deref()).await?;
        let mut out = Vec::new();
        for object in listed {
            let in_window = key_time(&object.key).is_some_and(|t| t < window.to);
            if !in_window {
                continue;
            }
            let Some(bytes) = self.store.read(&object.key, 1 << 20).await? else {
                continue;
            };
            match serde_json::from_slice::<Erasure>(&bytes) {
                Ok(erasure) if erasure.record == object.key => out.push(erasure),
                _ => tracing::warn!(
                    record = object.key,
                    "an erasure record does not parse; skipped"
                ),
            }
        }
        Ok(out)
    }
}
