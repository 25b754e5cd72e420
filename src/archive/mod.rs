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
//!
//! The steps live in submodules: [`folder`] (what the attempt folder holds), `listing`
//! (Veriff's attempts and media listings), `copy` (reuse or stream one file) and `record`
//! (the webhook body, the signature, a lost race).

mod copy;
mod folder;
mod listing;
mod record;

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::time::Instant;

use crate::budget::CopyBudget;
use crate::config::Config;
use crate::domain::{Decision, SafeId};
use crate::error::Error;
use crate::layout::{self, DecisionName};
use crate::manifest::{
    AttemptIdSource, DecisionSource, FileRecord, Manifest, ManifestInput, MediaUnavailable,
    SourceRecord,
};
use crate::select::{Listing, SelectOptions, Skipped, select};
use crate::signing::{ManifestSigner, signature_key};
use crate::store::{Created, PendingUploads, Store};
use crate::veriff::VeriffClient;
use crate::webhook::VerifiedSignature;

pub use copy::announced_size_problem;
use copy::{CopyJob, plan_copies};
use folder::Folder;
use listing::Listed;

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

/// A decision located in the archive: its attempt (given or resolved), its folder and what
/// the folder already holds. The first step of both [`Archiver::plan`] and an archive.
struct Prepared {
    attempt_id: SafeId,
    attempt_id_source: AttemptIdSource,
    folder: String,
    existing: Folder,
}

/// The files a new decision's manifest will list: what to store or reuse, and what not.
struct Selected {
    jobs: Vec<CopyJob>,
    skipped: Vec<Skipped>,
    listing: Listing,
    source: SourceRecord,
    unavailable: Option<MediaUnavailable>,
}

/// The files stored or reused for a decision, in selection order.
struct Stored {
    files: Vec<FileRecord>,
    reused: usize,
    bytes_stored: u64,
}

impl Archiver {
    /// Assembles an archiver from its clients.
    pub fn new(config: Arc<Config>, veriff: VeriffClient, store: Store) -> Self {
        Archiver {
            budget: CopyBudget::new(config.copy.memory),
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
            self.config.copy.concurrency,
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
        let prepared = self.prepare(decision, deadline).await?;
        let attempt_id = prepared.attempt_id.clone();
        if let Some((_, manifest, _)) = prepared.existing.recording(decision, &attempt_id) {
            return Ok(Plan {
                attempt_id,
                already_archived: true,
                files: manifest.files.len(),
                bytes: manifest.total_bytes(),
                reusable: manifest.files.len(),
                skipped: manifest.skipped.len(),
            });
        }
        let selected = self.select_files(decision, &prepared, deadline).await?;
        Ok(Plan {
            already_archived: false,
            files: selected.jobs.len(),
            bytes: selected.jobs.iter().filter_map(|j| j.chosen.size).sum(),
            reusable: selected.jobs.iter().filter(|j| j.earlier.is_some()).count(),
            skipped: selected.skipped.len(),
            attempt_id,
        })
    }

    /// The decided attempt (given, or the session's newest), its folder, and what the
    /// folder already holds.
    async fn prepare(&self, decision: &Decision, deadline: Instant) -> Result<Prepared, Error> {
        let (attempt_id, attempt_id_source) = match &decision.attempt_id {
            Some(id) => (id.clone(), AttemptIdSource::Given),
            None => (
                self.resolve_attempt(&decision.session_id, deadline).await?,
                AttemptIdSource::Resolved,
            ),
        };
        let folder = layout::attempt_folder(
            &self.config.archive.prefix,
            &decision.session_id,
            &attempt_id,
        );
        let existing = Folder::read(&self.store, &folder).await?;
        Ok(Prepared {
            attempt_id,
            attempt_id_source,
            folder,
            existing,
        })
    }

    async fn archive_until(
        &self,
        decision: &Decision,
        origin: Origin<'_>,
        deadline: Instant,
        pending: &PendingUploads,
    ) -> Result<Outcome, Error> {
        let started = Instant::now();
        let prepared = self.prepare(decision, deadline).await?;
        let (attempt_id, source) = (&prepared.attempt_id, prepared.attempt_id_source);
        if let Some((key, manifest, bytes)) = prepared.existing.recording(decision, attempt_id) {
            tracing::info!(
                session_id = decision.session_id.as_str(),
                attempt_id = attempt_id.as_str(),
                files = manifest.files.len(),
                "already archived"
            );
            // A signature the earlier delivery could not write (KMS down) is written now.
            let signed = prepared.existing.keys.contains(&signature_key(key))
                || self.sign_existing(key, bytes).await?;
            return Ok(already_archived(manifest, key, source, signed));
        }
        let manifest_key = self.manifest_key(decision, &prepared);
        let selected = self.select_files(decision, &prepared, deadline).await?;
        let ids = (&decision.session_id, attempt_id);
        let stored = self.store_files(ids, &selected, deadline, pending).await?;
        let decision_payload = match origin.body.filter(|_| self.config.archive.decision_payload) {
            Some(body) => {
                let key = DecisionName::of(decision, attempt_id).payload_key(&prepared.folder);
                Some(self.store_payload(&key, body).await?)
            }
            None => None,
        };
        let mut manifest = Manifest::new(
            ManifestInput {
                decision,
                attempt_id,
                attempt_id_source: source,
                media_source: selected.source,
                decision_source: origin.source,
            },
            stored.files,
            selected.skipped,
            decision_payload,
            SystemTime::now(),
        );
        manifest.media_unavailable = selected.unavailable;
        let written = self.write_manifest(&manifest_key, &manifest).await?;
        if !written.created {
            return self
                .after_lost_race(&manifest_key, decision, attempt_id, source)
                .await;
        }
        tracing::info!(
            session_id = decision.session_id.as_str(),
            attempt_id = attempt_id.as_str(),
            files = manifest.files.len(),
            reused = stored.reused,
            bytes = manifest.total_bytes(),
            skipped = manifest.skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "manifest written"
        );
        Ok(Outcome {
            kind: OutcomeKind::Archived,
            attempt_id: attempt_id.clone(),
            attempt_id_source: source,
            manifest_key,
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            skipped: manifest.skipped.len(),
            reused: stored.reused,
            bytes_stored: stored.bytes_stored,
            signed: written.signed,
            media_unavailable: manifest.media_unavailable.is_some(),
        })
    }

    /// The key of this decision's manifest: its name, at the first revision no unreadable
    /// object holds (it is never overwritten).
    fn manifest_key(&self, decision: &Decision, prepared: &Prepared) -> String {
        let name = DecisionName::of(decision, &prepared.attempt_id);
        let revision = prepared.existing.free_revision(&name);
        if revision > 1 {
            tracing::warn!(
                session_id = decision.session_id.as_str(),
                attempt_id = prepared.attempt_id.as_str(),
                revision,
                "an unreadable object holds this decision's manifest key; writing the next revision"
            );
        }
        name.manifest_key(&prepared.folder, revision)
    }

    /// Lists the decided attempt's media and selects the files: each with its key, and
    /// the earlier decision's record when one stored it.
    async fn select_files(
        &self,
        decision: &Decision,
        prepared: &Prepared,
        deadline: Instant,
    ) -> Result<Selected, Error> {
        let started = Instant::now();
        let attempt_id = &prepared.attempt_id;
        let Listed {
            decided,
            source,
            unavailable,
        } = self
            .list_media(&decision.session_id, attempt_id, deadline)
            .await?;
        let selection = select(
            &decided.media,
            SelectOptions {
                videos: self.config.archive.videos,
                max_file_bytes: self.config.archive.max_file_bytes,
            },
        );
        let mut skipped = selection.skipped;
        skipped.extend(decided.later_attempt.iter().cloned());
        tracing::info!(
            session_id = decision.session_id.as_str(),
            attempt_id = attempt_id.as_str(),
            listing = decided.listing.as_str(),
            listings_matched = decided.listings_matched,
            listed = decided.media.len(),
            chosen = selection.chosen.len(),
            skipped = skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "media listed and selected"
        );
        let earlier = prepared.existing.earlier_files();
        Ok(Selected {
            jobs: plan_copies(&prepared.folder, selection.chosen, &earlier),
            skipped,
            listing: decided.listing,
            source,
            unavailable,
        })
    }

    /// Reuses or copies every selected file, at most `COPY_CONCURRENCY` at once (and within
    /// the container's copy slots when shared). The first failure stops the others.
    async fn store_files(
        &self,
        ids: (&SafeId, &SafeId),
        selected: &Selected,
        deadline: Instant,
        pending: &PendingUploads,
    ) -> Result<Stored, Error> {
        let listing = selected.listing;
        // Unordered, so a large file never holds back the start of the next copies; the
        // manifest lists files in selection order all the same.
        let mut files: Vec<(usize, FileRecord, bool)> =
            futures_util::stream::iter(selected.jobs.iter().enumerate())
                .map(|(index, job)| async move {
                    let _slot = match &self.copy_slots {
                        Some(slots) => Some(slots.acquire().await.map_err(|_| Error::Cancelled)?),
                        None => None,
                    };
                    if let Some(record) = self.reuse(job, listing).await? {
                        return Ok::<_, Error>((index, record, true));
                    }
                    let record = self.copy_file(ids, job, listing, deadline, pending).await?;
                    Ok((index, record, false))
                })
                .buffer_unordered(self.config.copy.concurrency)
                .try_collect()
                .await?;
        files.sort_unstable_by_key(|(index, _, _)| *index);
        let reused = files.iter().filter(|(_, _, reused)| *reused).count();
        let bytes_stored = files
            .iter()
            .filter(|(_, _, reused)| !*reused)
            .map(|(_, record, _)| record.size)
            .sum();
        Ok(Stored {
            files: files.into_iter().map(|(_, record, _)| record).collect(),
            reused,
            bytes_stored,
        })
    }

    /// Writes the manifest with a conditional create, signed first (a KMS failure leaves
    /// no manifest behind) and its signature document beside it.
    async fn write_manifest(&self, key: &str, manifest: &Manifest) -> Result<Written, Error> {
        let bytes = Bytes::from(manifest.to_bytes());
        let signature = self.signature_for(key, &bytes).await?;
        self.write_index_entries(key, manifest).await?;
        self.write_receipt(key, &bytes).await?;
        let created = self
            .store
            .create(key, bytes, "application/json", &[])
            .await?;
        if let Created::Exists { .. } = created {
            return Ok(Written {
                created: false,
                signed: false,
            });
        }
        let signed = match signature {
            Some(document) => {
                self.store_signature(key, document).await?;
                true
            }
            None => false,
        };
        Ok(Written {
            created: true,
            signed,
        })
    }
}

/// What [`Archiver::write_manifest`] did.
struct Written {
    /// The manifest was created (`false`: another delivery holds the key).
    created: bool,
    /// Its signature document stands beside it.
    signed: bool,
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
