//! Orchestration of one decision: find the decided attempt, read its folder back, list and
//! select the media, reuse or copy each file concurrently, and write the decision's own
//! manifest last.
//!
//! The invariants:
//! - a manifest exists only when every file it lists is stored with the listed hash;
//! - nothing stored is ever overwritten: every write is a conditional create, and a file
//!   an earlier decision already stored is reused (after a HeadObject confirms it), not
//!   downloaded again;
//! - every decision keeps its own manifest; a redelivery finds it and downloads nothing.
//!
//! Any failure before the manifest write returns an error (a non-200 answer, so Veriff
//! redelivers), and multipart uploads left behind are aborted.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::budget::CopyBudget;
use crate::config::{Config, MediaSource};
use crate::domain::{Decision, SafeId};
use crate::error::Error;
use crate::layout::{self, DecisionName, ManifestName};
use crate::manifest::{
    AttemptIdSource, DecisionSource, FileRecord, Manifest, ManifestInput, MediaUnavailable,
    NOT_FOUND_AT_VERIFF, PayloadRecord, SourceRecord, StoredObject,
};
use crate::media::{MediaList, newest_attempt};
use crate::retry::{self, Failure};
use crate::select::{
    Chosen, DecidedListing, Listing, MediaAvailability, SelectOptions, decided_media, select,
};
use crate::signing::{ManifestSigner, signature_key};
use crate::store::{Created, PendingUploads, Store};
use crate::stored::same_checksum;
use crate::veriff::VeriffClient;
use crate::webhook::VerifiedSignature;

/// Largest manifest read back (a manifest lists at most a few hundred files).
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// What archiving a decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Files stored or reused, and the decision's manifest written.
    Archived,
    /// A manifest already records this decision: nothing was downloaded or written.
    AlreadyArchived,
}

/// The result of archiving one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Archived now, or already.
    pub kind: OutcomeKind,
    /// The decided attempt (given by the decision, or resolved).
    pub attempt_id: SafeId,
    /// Whether the attempt id was given or resolved.
    pub attempt_id_source: AttemptIdSource,
    /// The key of the manifest that records the decision.
    pub manifest_key: String,
    /// Files the manifest lists.
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// Items listed but not stored.
    pub skipped: usize,
    /// Files an earlier decision had stored, reused without a download.
    pub reused: usize,
    /// Bytes downloaded and stored now (the files not reused).
    pub bytes_stored: u64,
    /// Whether a signature document stands beside the manifest (`MANIFEST_SIGNING_KEY_ID`).
    pub signed: bool,
    /// Whether the manifest records that Veriff no longer had the media
    /// ([`Manifest::media_unavailable`]).
    pub media_unavailable: bool,
}

/// The webhook body as received, with the signature that authenticated it.
#[derive(Debug, Clone, Copy)]
pub struct SignedBody<'a> {
    /// The raw bytes.
    pub bytes: &'a [u8],
    /// The signature that matched them.
    pub signature: &'a VerifiedSignature,
}

/// Where a decision comes from, and its signed webhook body when it came by webhook.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The source, as the manifest records it.
    pub source: DecisionSource,
    /// The webhook body (kept with `ARCHIVE_DECISION_PAYLOAD`); `None` for other sources.
    pub body: Option<SignedBody<'a>>,
}

/// What archiving a decision would do (see [`Archiver::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The decided attempt.
    pub attempt_id: SafeId,
    /// A manifest already records the decision: nothing would be done.
    pub already_archived: bool,
    /// Files that would be listed.
    pub files: usize,
    /// Their announced bytes (files without an announced size count 0).
    pub bytes: u64,
    /// Of those, files an earlier decision stored, reused without a download.
    pub reusable: usize,
    /// Items that would be listed as skipped.
    pub skipped: usize,
}

/// Archives decisions. Built once per container; cheap to share.
#[derive(Debug, Clone)]
pub struct Archiver {
    config: Arc<Config>,
    veriff: VeriffClient,
    store: Store,
    signer: Option<ManifestSigner>,
    /// The bytes of copy buffers, shared by every copy of this archiver and its clones
    /// (`COPY_MEMORY_MIB`).
    budget: CopyBudget,
    /// Copy slots shared by every archive of this archiver (see
    /// [`Archiver::sharing_copy_slots`]); `None`: each archive has its own
    /// `COPY_CONCURRENCY`.
    copy_slots: Option<Arc<tokio::sync::Semaphore>>,
}

/// The media listed for a decided attempt.
struct Listed {
    /// The listing chosen (empty when the media are unavailable).
    decided: DecidedListing,
    /// The listings read, as the manifest records them.
    source: SourceRecord,
    /// Why there is nothing to list, when Veriff no longer has the media.
    unavailable: Option<MediaUnavailable>,
}

/// One file to store, or to reuse from an earlier decision's manifest.
struct CopyJob {
    chosen: Chosen,
    key: String,
    content_type: String,
    earlier: Option<FileRecord>,
}

/// What an attempt folder already holds.
#[derive(Debug, Default)]
struct Folder {
    /// Manifests found, newest decision first, each parsed or not, with their bytes.
    manifests: Vec<(String, ManifestName, Option<Manifest>, Bytes)>,
    /// Every key in the folder.
    keys: HashSet<String>,
}

impl Folder {
    /// The readable manifest that records this decision, if any.
    fn recording(
        &self,
        decision: &Decision,
        attempt_id: &SafeId,
    ) -> Option<(&str, &Manifest, &Bytes)> {
        self.manifests.iter().find_map(|(key, _, m, bytes)| {
            m.as_ref()
                .filter(|m| m.records(decision, attempt_id))
                .map(|m| (key.as_str(), m, bytes))
        })
    }

    /// The first revision of `name`'s manifest key not held by another object.
    fn free_revision(&self, name: &DecisionName) -> u32 {
        let taken = self
            .manifests
            .iter()
            .filter(|(_, n, _, _)| n.decision.as_ref() == Some(name))
            .map(|(_, n, _, _)| n.revision)
            .max();
        taken.map_or(1, |r| r + 1)
    }

    /// Files stored by earlier decisions, by media id (the newest decision's record wins).
    fn earlier_files(&self) -> HashMap<String, FileRecord> {
        let mut files = HashMap::new();
        for (_, _, manifest, _) in &self.manifests {
            for file in manifest.iter().flat_map(|m| &m.files) {
                files
                    .entry(file.media_id.clone())
                    .or_insert_with(|| file.clone());
            }
        }
        files
    }
}

impl Archiver {
    /// Assembles an archiver from its clients.
    pub fn new(config: Arc<Config>, veriff: VeriffClient, store: Store) -> Self {
        Archiver {
            budget: CopyBudget::new(config.copy_memory),
            config,
            veriff,
            store,
            signer: None,
            copy_slots: None,
        }
    }

    /// Makes `COPY_CONCURRENCY` a bound on the files in flight across every archive this
    /// archiver (and its clones) runs at once, as when the queue consumer archives a batch
    /// concurrently: memory stays within the part buffers `COPY_CONCURRENCY` allows.
    pub fn sharing_copy_slots(mut self) -> Self {
        self.copy_slots = Some(Arc::new(tokio::sync::Semaphore::new(
            self.config.copy_concurrency,
        )));
        self
    }

    /// Veriff requests (and whole downloads) retried so far by this archiver's client.
    pub fn veriff_retries(&self) -> u64 {
        self.veriff.retries()
    }

    /// Signs every manifest with `signer` (`MANIFEST_SIGNING_KEY_ID`).
    pub fn with_signer(mut self, signer: Option<ManifestSigner>) -> Self {
        self.signer = signer;
        self
    }

    /// Archives `decision` (and its webhook body, when configured and given), finishing
    /// (or failing and cleaning up) before `deadline` minus the configured margin.
    pub async fn archive(
        &self,
        decision: &Decision,
        body: Option<SignedBody<'_>>,
        deadline: Instant,
    ) -> Result<Outcome, Error> {
        let origin = Origin {
            source: DecisionSource::Webhook,
            body,
        };
        self.archive_from(decision, origin, deadline, std::future::pending())
            .await
    }

    /// Archives a decision from any source, through the same path as a webhook's. When
    /// `cancel` completes first (Ctrl-C in the CLI), the work stops, open multipart uploads
    /// are aborted, no manifest is written, and the answer is [`Error::Cancelled`].
    pub async fn archive_from(
        &self,
        decision: &Decision,
        origin: Origin<'_>,
        deadline: Instant,
        cancel: impl Future<Output = ()>,
    ) -> Result<Outcome, Error> {
        let work_deadline = deadline
            .checked_sub(self.config.deadline_margin)
            .unwrap_or_else(Instant::now);
        let pending = PendingUploads::default();
        let work = tokio::time::timeout_at(
            work_deadline,
            self.archive_until(decision, origin, work_deadline, &pending),
        );
        let result = tokio::select! {
            result = work => result.unwrap_or(Err(Error::Deadline)),
            () = cancel => Err(Error::Cancelled),
        };
        if !pending.is_empty() {
            // Cancelled copies left multipart uploads open: abort them with the time left.
            let _ = tokio::time::timeout_at(deadline, self.store.abort_pending(&pending)).await;
        }
        result
    }

    /// What archiving `decision` would do, without writing anything (`backfill --dry-run`):
    /// the decided attempt, whether a manifest already records the decision, and the files
    /// it would store (their announced bytes) or reuse.
    pub async fn plan(&self, decision: &Decision, deadline: Instant) -> Result<Plan, Error> {
        let session_id = &decision.session_id;
        let attempt_id = match &decision.attempt_id {
            Some(id) => id.clone(),
            None => self.resolve_attempt(session_id, deadline).await?,
        };
        let folder = layout::attempt_folder(&self.config.prefix, session_id, &attempt_id);
        let existing = self.read_folder(&folder).await?;
        if let Some((_, manifest, _)) = existing.recording(decision, &attempt_id) {
            return Ok(Plan {
                attempt_id,
                already_archived: true,
                files: manifest.files.len(),
                bytes: manifest.total_bytes(),
                reusable: manifest.files.len(),
                skipped: manifest.skipped.len(),
            });
        }
        let decided = self
            .list_media(session_id, &attempt_id, deadline)
            .await?
            .decided;
        let selection = select(
            &decided.media,
            SelectOptions {
                videos: self.config.archive_videos,
                max_file_bytes: self.config.max_file_bytes,
            },
        );
        let earlier = existing.earlier_files();
        Ok(Plan {
            already_archived: false,
            files: selection.chosen.len(),
            bytes: selection.chosen.iter().filter_map(|c| c.size).sum(),
            reusable: selection
                .chosen
                .iter()
                .filter(|c| earlier.contains_key(c.media_id.as_str()))
                .count(),
            skipped: selection.skipped.len() + decided.later_attempt.len(),
            attempt_id,
        })
    }

    async fn archive_until(
        &self,
        decision: &Decision,
        origin: Origin<'_>,
        deadline: Instant,
        pending: &PendingUploads,
    ) -> Result<Outcome, Error> {
        let body = origin.body;
        let started = Instant::now();
        let session_id = &decision.session_id;
        let (attempt_id, attempt_id_source) = match &decision.attempt_id {
            Some(id) => (id.clone(), AttemptIdSource::Given),
            None => (
                self.resolve_attempt(session_id, deadline).await?,
                AttemptIdSource::Resolved,
            ),
        };
        let attempt_id = &attempt_id;
        let folder = layout::attempt_folder(&self.config.prefix, session_id, attempt_id);
        let name = DecisionName::of(decision, attempt_id);

        let existing = self.read_folder(&folder).await?;
        if let Some((key, manifest, bytes)) = existing.recording(decision, attempt_id) {
            tracing::info!(
                %session_id,
                %attempt_id,
                files = manifest.files.len(),
                "already archived"
            );
            // A signature the earlier delivery could not write (KMS down) is written now.
            let signed = existing.keys.contains(&signature_key(key))
                || self.sign_existing(key, bytes).await?;
            return Ok(already_archived(manifest, key, attempt_id_source, signed));
        }
        let revision = existing.free_revision(&name);
        if revision > 1 {
            tracing::warn!(
                %session_id,
                %attempt_id,
                revision,
                "an unreadable object holds this decision's manifest key; writing the next revision"
            );
        }
        let manifest_key = name.manifest_key(&folder, revision);

        let Listed {
            decided,
            source: media_source,
            unavailable,
        } = self.list_media(session_id, attempt_id, deadline).await?;
        let selection = select(
            &decided.media,
            SelectOptions {
                videos: self.config.archive_videos,
                max_file_bytes: self.config.max_file_bytes,
            },
        );
        let mut skipped = selection.skipped;
        skipped.extend(decided.later_attempt.iter().cloned());
        tracing::info!(
            %session_id,
            %attempt_id,
            listing = decided.listing.as_str(),
            listings_matched = decided.listings_matched,
            listed = decided.media.len(),
            chosen = selection.chosen.len(),
            skipped = skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "media listed and selected"
        );

        let jobs = plan_copies(&folder, selection.chosen, &existing.earlier_files());
        let listing = decided.listing;
        // Unordered, so a large file never holds back the start of the next copies; the
        // manifest lists files in selection order all the same.
        let mut files: Vec<(usize, FileRecord, bool)> =
            futures_util::stream::iter(jobs.iter().enumerate())
                .map(|(index, job)| async move {
                    let _slot = match &self.copy_slots {
                        Some(slots) => Some(slots.acquire().await.map_err(|_| Error::Cancelled)?),
                        None => None,
                    };
                    if let Some(record) = self.reuse(job, listing).await? {
                        return Ok::<_, Error>((index, record, true));
                    }
                    let ids = (session_id, attempt_id);
                    let record = self.copy_file(ids, job, listing, deadline, pending).await?;
                    Ok((index, record, false))
                })
                .buffer_unordered(self.config.copy_concurrency)
                .try_collect()
                .await?;
        files.sort_unstable_by_key(|(index, _, _)| *index);
        let reused = files.iter().filter(|(_, _, reused)| *reused).count();
        let bytes_stored: u64 = files
            .iter()
            .filter(|(_, _, reused)| !*reused)
            .map(|(_, record, _)| record.size)
            .sum();
        let files: Vec<FileRecord> = files.into_iter().map(|(_, record, _)| record).collect();

        let decision_payload = match body.filter(|_| self.config.archive_decision_payload) {
            Some(body) => Some(self.store_payload(&name.payload_key(&folder), body).await?),
            None => None,
        };

        let mut manifest = Manifest::new(
            ManifestInput {
                decision,
                attempt_id,
                attempt_id_source,
                media_source,
                decision_source: origin.source,
            },
            files,
            skipped,
            decision_payload,
            SystemTime::now(),
        );
        manifest.media_unavailable = unavailable;
        let manifest_bytes = Bytes::from(manifest.to_bytes());
        // Signed before anything is written: a KMS failure leaves no manifest behind.
        let signature = self.signature_for(&manifest_key, &manifest_bytes).await?;
        let created = self
            .store
            .create(
                &manifest_key,
                manifest_bytes.clone(),
                "application/json",
                &[],
            )
            .await?;
        if let Created::Exists { .. } = created {
            return self
                .after_lost_race(&manifest_key, decision, attempt_id, attempt_id_source)
                .await;
        }
        let signed = match signature {
            Some(document) => {
                self.store_signature(&manifest_key, document).await?;
                true
            }
            None => false,
        };
        tracing::info!(
            %session_id,
            %attempt_id,
            files = manifest.files.len(),
            reused,
            bytes = manifest.total_bytes(),
            skipped = manifest.skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "manifest written"
        );
        Ok(Outcome {
            kind: OutcomeKind::Archived,
            attempt_id: attempt_id.clone(),
            attempt_id_source,
            manifest_key,
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            skipped: manifest.skipped.len(),
            reused,
            bytes_stored,
            signed,
            media_unavailable: manifest.media_unavailable.is_some(),
        })
    }

    /// The signature document of the manifest bytes at `key`, when signing is configured.
    async fn signature_for(&self, key: &str, manifest: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match &self.signer {
            Some(signer) => Ok(Some(signer.sign(key, manifest).await?)),
            None if self.config.manifest_signing_key_id.is_some() => Err(Error::Signing(
                "MANIFEST_SIGNING_KEY_ID is set but no KMS signer was built".into(),
            )),
            None => Ok(None),
        }
    }

    /// Stores a signature document beside the manifest at `key` (conditional create: one
    /// already there, from a concurrent delivery, is kept).
    async fn store_signature(&self, key: &str, document: Vec<u8>) -> Result<(), Error> {
        self.store
            .create(
                &signature_key(key),
                Bytes::from(document),
                "application/json",
                &[],
            )
            .await?;
        Ok(())
    }

    /// Signs an existing manifest that has no signature yet (an earlier delivery failed
    /// between the two writes). `false` when signing is not configured.
    async fn sign_existing(&self, key: &str, manifest: &[u8]) -> Result<bool, Error> {
        match self.signature_for(key, manifest).await? {
            Some(document) => {
                self.store_signature(key, document).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The session's newest attempt, for a decision that names none.
    async fn resolve_attempt(
        &self,
        session_id: &SafeId,
        deadline: Instant,
    ) -> Result<SafeId, Error> {
        let attempts = self.veriff.attempts(session_id, deadline).await?;
        let newest = newest_attempt(&attempts)
            .and_then(|a| a.id.clone())
            .ok_or_else(|| {
                Error::Upstream("session attempts: the session lists no attempt to archive".into())
            })?;
        let id = SafeId::parse(newest).map_err(|_| {
            Error::Upstream(
                "session attempts: the newest attempt id is not a safe identifier".into(),
            )
        })?;
        tracing::info!(
            %session_id,
            attempt_id = id.as_str(),
            attempts = attempts.len(),
            "decision carries no attemptId; archiving the session's newest attempt"
        );
        Ok(id)
    }

    /// Lists the folder and reads every manifest in it.
    async fn read_folder(&self, folder: &str) -> Result<Folder, Error> {
        let mut manifests = Vec::new();
        let mut keys = HashSet::new();
        for object in self.store.list_folder(folder).await? {
            keys.insert(object.key.clone());
            let Some(name) = layout::parse_manifest_key(folder, &object.key) else {
                continue;
            };
            let (parsed, bytes) = match self.store.read(&object.key, MAX_MANIFEST_BYTES).await {
                Ok(Some(bytes)) => (Manifest::parse(&bytes).ok(), bytes),
                Ok(None) => continue,
                Err(Error::Storage(_)) if object.size > MAX_MANIFEST_BYTES => (None, Bytes::new()),
                Err(e) => return Err(e),
            };
            manifests.push((object.key, name, parsed, bytes));
        }
        // Newest decision first: per-decision names sort by decision time.
        manifests.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(Folder { manifests, keys })
    }

    /// Reads the listings the configured mode asks for (both at once in combined mode) and
    /// decides which one to archive from. When Veriff answered every listing with an
    /// authenticated 404, the listing is empty and [`Listed::unavailable`] says why.
    async fn list_media(
        &self,
        session_id: &SafeId,
        attempt_id: &SafeId,
        deadline: Instant,
    ) -> Result<Listed, Error> {
        let session = self
            .veriff
            .media_listing(Listing::Session, session_id, deadline);
        let attempt = self
            .veriff
            .media_listing(Listing::Attempt, attempt_id, deadline);
        let (session, attempt) = match self.config.media_source {
            MediaSource::Combined => {
                let (s, a) = tokio::try_join!(session, attempt)?;
                (Some(s), Some(a))
            }
            MediaSource::Session => (Some(session.await?), None),
            MediaSource::Attempt => (None, Some(attempt.await?)),
        };
        let endpoint = |listing| match listing {
            Listing::Session => VeriffClient::listing_endpoint(listing, session_id),
            Listing::Attempt => VeriffClient::listing_endpoint(listing, attempt_id),
        };
        let mut endpoints = Vec::new();
        if session.is_some() {
            endpoints.push(endpoint(Listing::Session));
        }
        if attempt.is_some() {
            endpoints.push(endpoint(Listing::Attempt));
        }
        let (decided, unavailable) = match decided_media(session, attempt)
            .expect("at least one listing was read")
        {
            MediaAvailability::Listed(decided) => (decided, None),
            MediaAvailability::Gone(listings) => {
                tracing::warn!(
                    %session_id,
                    %attempt_id,
                    "Veriff answered 404 to every media listing (session deleted, or media past \
                         Veriff's retention); the decision is recorded with no files"
                );
                let gone = MediaUnavailable {
                    reason: NOT_FOUND_AT_VERIFF.into(),
                    endpoints: listings.into_iter().map(endpoint).collect(),
                };
                let empty = DecidedListing {
                    media: MediaList::default(),
                    listing: match self.config.media_source {
                        MediaSource::Attempt => Listing::Attempt,
                        MediaSource::Combined | MediaSource::Session => Listing::Session,
                    },
                    listings_matched: None,
                    later_attempt: Vec::new(),
                };
                (empty, Some(gone))
            }
            MediaAvailability::Inconsistent(listing) => {
                return Err(Error::Upstream(format!(
                    "{}: HTTP 404 while the other media listing answered",
                    endpoint(listing)
                )));
            }
        };
        let record = SourceRecord {
            mode: self.config.media_source.as_str().into(),
            listing: Some(decided.listing),
            listings_matched: decided.listings_matched,
            endpoints,
            endpoint: None,
        };
        Ok(Listed {
            decided,
            source: record,
            unavailable,
        })
    }

    /// The earlier decision's record of this file, when HeadObject confirms the object is
    /// still there with the recorded size and version.
    async fn reuse(&self, job: &CopyJob, listing: Listing) -> Result<Option<FileRecord>, Error> {
        let Some(earlier) = &job.earlier else {
            return Ok(None);
        };
        let version = earlier.stored.version_id.as_deref();
        let Some(head) = self.store.head(&earlier.key, version).await? else {
            tracing::warn!(
                key = earlier.key.as_str(),
                "a file an earlier manifest lists is gone; storing it again"
            );
            return Ok(None);
        };
        let checksum_differs = match (&earlier.stored.s3_checksum, &head.stored.s3_checksum) {
            (Some(recorded), Some(found)) => !same_checksum(&recorded.value, &found.value),
            _ => false,
        };
        if head.size != earlier.size || checksum_differs {
            tracing::warn!(
                key = earlier.key.as_str(),
                "a file an earlier manifest lists has changed; not reusing it"
            );
            return Ok(None);
        }
        let mut record = earlier.clone();
        record.listing = Some(listing);
        // A v1 record has no S3 details yet: take them from the HeadObject.
        if record.stored == StoredObject::default() {
            record.stored = head.stored;
        }
        Ok(Some(record))
    }

    /// Another delivery wrote this decision's manifest first: fine if it records the same
    /// decision.
    async fn after_lost_race(
        &self,
        manifest_key: &str,
        decision: &Decision,
        attempt_id: &SafeId,
        attempt_id_source: AttemptIdSource,
    ) -> Result<Outcome, Error> {
        let stored = self.store.read(manifest_key, MAX_MANIFEST_BYTES).await?;
        let parsed = stored.as_ref().map(|bytes| Manifest::parse(bytes));
        match (parsed, stored.as_ref()) {
            (Some(Ok(m)), Some(bytes)) if m.records(decision, attempt_id) => {
                let signed = self.sign_existing(manifest_key, bytes).await?;
                Ok(already_archived(
                    &m,
                    manifest_key,
                    attempt_id_source,
                    signed,
                ))
            }
            _ => Err(Error::Conflict(
                "another delivery wrote a different manifest under this decision's key".into(),
            )),
        }
    }

    /// Stores the webhook body next to the manifest, with its signature in the metadata.
    async fn store_payload(&self, key: &str, body: SignedBody<'_>) -> Result<PayloadRecord, Error> {
        let digest = Sha256::digest(body.bytes);
        let metadata = [
            ("veriff-signature", body.signature.hex.clone()),
            ("veriff-signature-header", body.signature.header.to_string()),
        ];
        let stored = match self
            .store
            .create(
                key,
                Bytes::copy_from_slice(body.bytes),
                "application/json",
                &metadata,
            )
            .await?
        {
            Created::Stored(stored) => stored,
            Created::Exists { would_be } => {
                self.adopt_existing(
                    key,
                    &would_be,
                    body.bytes.len() as u64,
                    &hex::encode(digest),
                )
                .await?
                .0
            }
        };
        Ok(PayloadRecord {
            key: key.to_string(),
            size: body.bytes.len() as u64,
            sha256: hex::encode(digest),
            signature_header: body.signature.header.to_string(),
            stored,
        })
    }

    /// An object already holds `key` (an earlier failed run, or a concurrent delivery):
    /// adopt it if it is byte for byte what would have been written, else fail. S3's
    /// checksum decides when S3 returns one; otherwise the object is read back and hashed
    /// (an S3-compatible server may keep no checksum, or a torn write may have lost it).
    async fn adopt_existing(
        &self,
        key: &str,
        would_be: &crate::manifest::S3Checksum,
        size: u64,
        sha256_hex: &str,
    ) -> Result<(StoredObject, Option<String>), Error> {
        let conflict = || {
            Error::Conflict(format!(
                "{key} is already stored with other content; it is left as it is"
            ))
        };
        let Some(head) = self.store.head(key, None).await? else {
            return Err(Error::Conflict(format!(
                "{key} was reported to exist, and then was not found"
            )));
        };
        if head.size != size {
            return Err(conflict());
        }
        let same = match &head.stored.s3_checksum {
            Some(stored) => same_checksum(&stored.value, &would_be.value),
            None => {
                let version = head.stored.version_id.as_deref();
                self.store.sha256_of(key, version).await?.as_deref() == Some(sha256_hex)
            }
        };
        if !same {
            return Err(conflict());
        }
        tracing::info!(key, "object already stored with the same content; adopted");
        Ok((head.stored, head.content_type))
    }

    /// Copies one file, retrying the whole download-and-upload on transient failures.
    async fn copy_file(
        &self,
        ids: (&SafeId, &SafeId),
        job: &CopyJob,
        listing: Listing,
        deadline: Instant,
        pending: &PendingUploads,
    ) -> Result<FileRecord, Error> {
        let started = Instant::now();
        let record = retry::run(self.veriff.retry_policy(), deadline, |attempt| {
            if attempt > 1 {
                self.veriff.note_retry();
            }
            self.copy_once(ids, job, listing, pending)
        })
        .await?;
        tracing::info!(
            session_id = ids.0.as_str(),
            attempt_id = ids.1.as_str(),
            media_id = job.chosen.media_id.as_str(),
            context = job.chosen.context.as_str(),
            bytes = record.size,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "file stored"
        );
        Ok(record)
    }

    async fn copy_once(
        &self,
        (session_id, attempt_id): (&SafeId, &SafeId),
        job: &CopyJob,
        listing: Listing,
        pending: &PendingUploads,
    ) -> Result<FileRecord, Failure> {
        let chosen = &job.chosen;
        let max = self.config.max_file_bytes;
        let integrity = |msg: String| {
            Failure::permanent(Error::Integrity(format!(
                "media {}: {msg}",
                chosen.media_id
            )))
        };

        // The first buffer's bytes before the download opens: a copy waiting for memory
        // holds no connection.
        let first = self
            .budget
            .reserve(self.store.first_buffer_size(chosen.size))
            .await;
        let mut download = self.veriff.open_media(&chosen.media_id).await?;
        let announced = download.content_length;
        if let Some(message) = announced_size_problem(announced, chosen.size, max) {
            return Err(integrity(message));
        }
        let limit = chosen.size.unwrap_or(max).min(max);

        let mut writer = self.store.writer(
            job.key.clone(),
            job.content_type.clone(),
            announced.or(chosen.size),
            vec![
                ("veriff-session-id", session_id.to_string()),
                ("veriff-attempt-id", attempt_id.to_string()),
                ("veriff-media-id", chosen.media_id.to_string()),
                ("veriff-context", chosen.context.to_string()),
            ],
            pending.clone(),
            first,
        );
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        let streamed: Result<(), Failure> = async {
            while let Some(chunk) = download.next_chunk().await? {
                received += chunk.len() as u64;
                if received > limit {
                    return Err(integrity(format!(
                        "body exceeds the announced or maximum size of {limit} bytes"
                    )));
                }
                hasher.update(&chunk);
                download.signature.update(&chunk);
                writer.write(chunk).await.map_err(storage_failure)?;
            }
            if let Some(length) = announced.filter(|l| *l != received) {
                return Err(Failure::transient(Error::Upstream(format!(
                    "media {}: body truncated at {received} of {length} bytes",
                    chosen.media_id
                ))));
            }
            if let Some(size) = chosen.size.filter(|s| *s != received) {
                return Err(integrity(format!(
                    "received {received} bytes, metadata size is {size}"
                )));
            }
            Ok(())
        }
        .await;
        let verified = streamed.and_then(|()| {
            download
                .signature
                .verify("media download")
                .map_err(Failure::permanent)
        });
        if let Err(failure) = verified {
            writer.abort().await;
            return Err(failure);
        }
        let (size, created) = writer.finish().await.map_err(storage_failure)?;
        let sha256 = hex::encode(hasher.finalize());
        // An adopted object keeps the Content-Type it was stored with (none, after a torn
        // write on some S3-compatible servers): the manifest records what is stored.
        let (stored, content_type) = match created {
            Created::Stored(stored) => (stored, job.content_type.clone()),
            Created::Exists { would_be } => {
                let (stored, content_type) = self
                    .adopt_existing(&job.key, &would_be, size, &sha256)
                    .await
                    .map_err(storage_failure)?;
                (stored, content_type.unwrap_or_default())
            }
        };
        Ok(FileRecord {
            key: job.key.clone(),
            media_id: chosen.media_id.to_string(),
            kind: chosen.kind,
            context: chosen.context.to_string(),
            mimetype: chosen.mimetype.clone(),
            content_type,
            size,
            sha256,
            listing: Some(listing),
            stored,
        })
    }
}

/// The outcome for a decision a stored manifest already records.
fn already_archived(
    manifest: &Manifest,
    key: &str,
    source: AttemptIdSource,
    signed: bool,
) -> Outcome {
    Outcome {
        kind: OutcomeKind::AlreadyArchived,
        attempt_id: manifest.attempt_id.clone(),
        attempt_id_source: manifest.attempt_id_source.unwrap_or(source),
        manifest_key: key.to_string(),
        files: manifest.files.len(),
        bytes: manifest.total_bytes(),
        skipped: manifest.skipped.len(),
        reused: 0,
        bytes_stored: 0,
        signed,
        media_unavailable: manifest.media_unavailable.is_some(),
    }
}

/// Why a download's announced `Content-Length` cannot be archived, if it cannot: above the
/// maximum, or different from the size the metadata listed.
pub fn announced_size_problem(
    content_length: Option<u64>,
    listed_size: Option<u64>,
    max: u64,
) -> Option<String> {
    let length = content_length?;
    if length > max {
        return Some(format!(
            "Content-Length {length} exceeds the {max}-byte maximum"
        ));
    }
    match listed_size {
        Some(size) if size != length => Some(format!(
            "Content-Length {length} differs from metadata size {size}"
        )),
        _ => None,
    }
}

/// A storage error inside a copy: retried (with a new download) unless S3 refused in a way
/// no retry heals, or the object exists with other content.
fn storage_failure(error: Error) -> Failure {
    match error {
        Error::StorageRefused(_) | Error::Conflict(_) | Error::Integrity(_) => {
            Failure::permanent(error)
        }
        other => Failure::transient(other),
    }
}

/// Assigns each chosen file its key, content type and, when an earlier decision stored the
/// same media id, that decision's record.
fn plan_copies(
    folder: &str,
    chosen: Vec<Chosen>,
    earlier: &HashMap<String, FileRecord>,
) -> Vec<CopyJob> {
    let keys = layout::keys_for(folder, &chosen);
    chosen
        .into_iter()
        .zip(keys)
        .map(|(chosen, key)| CopyJob {
            content_type: layout::content_type_for(chosen.mimetype.as_deref()),
            earlier: earlier.get(chosen.media_id.as_str()).cloned(),
            chosen,
            key,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DecisionRecord, WebhookKind};

    #[test]
    fn announced_sizes_are_checked_against_the_maximum_and_the_listing() {
        assert_eq!(announced_size_problem(None, Some(5), 10), None);
        assert_eq!(announced_size_problem(Some(5), Some(5), 10), None);
        assert_eq!(announced_size_problem(Some(10), None, 10), None);
        assert!(
            announced_size_problem(Some(11), None, 10)
                .unwrap()
                .contains("exceeds the 10-byte maximum")
        );
        assert!(
            announced_size_problem(Some(6), Some(5), 10)
                .unwrap()
                .contains("differs from metadata size 5")
        );
    }

    #[test]
    fn only_healing_storage_errors_are_retried() {
        assert!(storage_failure(Error::Storage("503".into())).retryable);
        assert!(!storage_failure(Error::StorageRefused("AccessDenied".into())).retryable);
        assert!(!storage_failure(Error::Conflict("x".into())).retryable);
        assert!(!storage_failure(Error::Integrity("x".into())).retryable);
    }

    #[test]
    fn a_folder_names_the_next_free_manifest_revision() {
        let a = SafeId::parse("a").unwrap();
        let d = Decision::new(
            SafeId::parse("s").unwrap(),
            Some(a.clone()),
            DecisionRecord {
                decision_time: Some("2025-03-04T10:21:07.412Z".into()),
                ..DecisionRecord::new(WebhookKind::Decision, "approved")
            },
        );
        let name = DecisionName::of(&d, &a);
        let mut folder = Folder::default();
        assert_eq!(folder.free_revision(&name), 1);
        let key = name.manifest_key("f/", 1);
        let parsed = layout::parse_manifest_key("f/", &key).unwrap();
        folder.manifests.push((key, parsed, None, Bytes::new()));
        assert_eq!(folder.free_revision(&name), 2);
        assert!(
            folder.recording(&d, &a).is_none(),
            "unreadable records nothing"
        );
    }
}
