//! Orchestration of one decision: idempotency check, media listing, selection, bounded
//! concurrent copies, and the manifest written last.
//!
//! The invariant: a manifest exists only when every file it lists is stored with the listed
//! hash. Any failure before the manifest write returns an error (a non-200 answer, so
//! Veriff redelivers), and multipart uploads left behind are aborted. A redelivery of an
//! archived decision finds the manifest and downloads nothing.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::layout;
use crate::manifest::{FileRecord, Manifest};
use crate::retry::{self, Failure};
use crate::select::{Chosen, SelectOptions, select};
use crate::store::{ManifestWrite, PendingUploads, Store, WriteCondition};
use crate::veriff::VeriffClient;
use crate::webhook::Decision;

/// What archiving a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Files copied and the manifest written.
    Archived {
        /// Files stored.
        files: usize,
        /// Bytes stored.
        bytes: u64,
        /// Items listed but not stored.
        skipped: usize,
    },
    /// The manifest already records this decision: nothing was downloaded.
    AlreadyArchived {
        /// Files the manifest lists.
        files: usize,
    },
    /// The manifest records a newer decision of the same attempt: left untouched.
    Superseded,
}

/// Archives decisions. Built once per container; cheap to share.
#[derive(Debug, Clone)]
pub struct Archiver {
    config: Arc<Config>,
    veriff: VeriffClient,
    store: Store,
}

/// One file to copy.
struct CopyJob {
    chosen: Chosen,
    key: String,
    content_type: String,
}

impl Archiver {
    /// Assembles an archiver from its clients.
    pub fn new(config: Arc<Config>, veriff: VeriffClient, store: Store) -> Self {
        Archiver {
            config,
            veriff,
            store,
        }
    }

    /// Archives `decision`, finishing (or failing and cleaning up) before `deadline` minus
    /// the configured margin.
    pub async fn archive(&self, decision: &Decision, deadline: Instant) -> Result<Outcome, Error> {
        let work_deadline = deadline
            .checked_sub(self.config.deadline_margin)
            .unwrap_or_else(Instant::now);
        let pending = PendingUploads::default();
        let result = tokio::time::timeout_at(
            work_deadline,
            self.archive_until(decision, work_deadline, &pending),
        )
        .await
        .unwrap_or(Err(Error::Deadline));
        if !pending.is_empty() {
            // Cancelled copies left multipart uploads open: abort them with the time left.
            let _ = tokio::time::timeout_at(deadline, self.store.abort_pending(&pending)).await;
        }
        result
    }

    async fn archive_until(
        &self,
        decision: &Decision,
        deadline: Instant,
        pending: &PendingUploads,
    ) -> Result<Outcome, Error> {
        let started = Instant::now();
        let (session_id, attempt_id) = (decision.session_id.as_str(), decision.attempt_id.as_str());
        let folder = layout::attempt_folder(&self.config.prefix, session_id, attempt_id);
        let manifest_key = layout::manifest_key(&folder);

        let condition = match self.store.get_manifest(&manifest_key).await? {
            None => WriteCondition::Absent,
            Some(stored) => {
                match serde_json::from_slice::<Manifest>(&stored.bytes) {
                    Ok(existing) if existing.records(decision) => {
                        tracing::info!(
                            session_id,
                            attempt_id,
                            files = existing.files.len(),
                            "already archived"
                        );
                        return Ok(Outcome::AlreadyArchived {
                            files: existing.files.len(),
                        });
                    }
                    Ok(existing) if existing.supersedes(decision) => {
                        tracing::info!(
                            session_id,
                            attempt_id,
                            "a newer decision is archived; leaving it"
                        );
                        return Ok(Outcome::Superseded);
                    }
                    Ok(_) => tracing::info!(
                        session_id,
                        attempt_id,
                        "new decision for an archived attempt"
                    ),
                    Err(_) => tracing::warn!(
                        session_id,
                        attempt_id,
                        "existing manifest unreadable; replacing it"
                    ),
                }
                let etag = stored
                    .etag
                    .ok_or_else(|| Error::Storage("existing manifest has no ETag".into()))?;
                WriteCondition::Unchanged(etag)
            }
        };

        let (media, source) = self
            .veriff
            .media_list(self.config.media_source, session_id, attempt_id, deadline)
            .await?;
        let selection = select(
            &media,
            SelectOptions {
                videos: self.config.archive_videos,
                max_file_bytes: self.config.max_file_bytes,
            },
        );
        tracing::info!(
            session_id,
            attempt_id,
            endpoint = source.kind.as_str(),
            listed = media.len(),
            chosen = selection.chosen.len(),
            skipped = selection.skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "media listed and selected"
        );

        let jobs = plan_copies(&folder, selection.chosen);
        // Unordered, so a large file never holds back the start of the next copies; the
        // manifest lists files in selection order all the same.
        let mut files: Vec<(usize, FileRecord)> =
            futures_util::stream::iter(jobs.iter().enumerate())
                .map(|(index, job)| async move {
                    let record = self.copy_file(decision, job, deadline, pending).await?;
                    Ok::<_, Error>((index, record))
                })
                .buffer_unordered(self.config.copy_concurrency)
                .try_collect()
                .await?;
        files.sort_unstable_by_key(|(index, _)| *index);
        let files: Vec<FileRecord> = files.into_iter().map(|(_, record)| record).collect();

        let manifest = Manifest::new(
            decision,
            source,
            files,
            selection.skipped,
            SystemTime::now(),
        );
        match self
            .store
            .put_manifest(&manifest_key, manifest.to_bytes(), condition)
            .await?
        {
            ManifestWrite::Written => {}
            ManifestWrite::PreconditionFailed => {
                return self.after_lost_race(&manifest_key, decision).await;
            }
        }
        tracing::info!(
            session_id,
            attempt_id,
            files = manifest.files.len(),
            bytes = manifest.total_bytes(),
            skipped = manifest.skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "manifest written"
        );
        Ok(Outcome::Archived {
            files: manifest.files.len(),
            bytes: manifest.total_bytes(),
            skipped: manifest.skipped.len(),
        })
    }

    /// Another invocation wrote the manifest first: fine if it records the same decision.
    async fn after_lost_race(
        &self,
        manifest_key: &str,
        decision: &Decision,
    ) -> Result<Outcome, Error> {
        let stored = self.store.get_manifest(manifest_key).await?;
        match stored.map(|s| serde_json::from_slice::<Manifest>(&s.bytes)) {
            Some(Ok(m)) if m.records(decision) => Ok(Outcome::AlreadyArchived {
                files: m.files.len(),
            }),
            Some(Ok(m)) if m.supersedes(decision) => Ok(Outcome::Superseded),
            _ => Err(Error::Conflict(
                "another delivery wrote a different manifest first".into(),
            )),
        }
    }

    /// Copies one file, retrying the whole download-and-upload on transient failures.
    async fn copy_file(
        &self,
        decision: &Decision,
        job: &CopyJob,
        deadline: Instant,
        pending: &PendingUploads,
    ) -> Result<FileRecord, Error> {
        let started = Instant::now();
        let record = retry::run(self.veriff.retry_policy(), deadline, |_| {
            self.copy_once(decision, job, pending)
        })
        .await?;
        tracing::info!(
            session_id = decision.session_id.as_str(),
            attempt_id = decision.attempt_id.as_str(),
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
        decision: &Decision,
        job: &CopyJob,
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

        let mut download = self.veriff.open_media(&chosen.media_id).await?;
        let announced = download.content_length;
        if let Some(length) = announced {
            if length > max {
                return Err(integrity(format!(
                    "Content-Length {length} exceeds the {max}-byte maximum"
                )));
            }
            if let Some(size) = chosen.size.filter(|s| *s != length) {
                return Err(integrity(format!(
                    "Content-Length {length} differs from metadata size {size}"
                )));
            }
        }
        let limit = chosen.size.unwrap_or(max).min(max);

        let mut writer = self.store.writer(
            job.key.clone(),
            job.content_type.clone(),
            announced.or(chosen.size),
            vec![
                ("veriff-session-id", decision.session_id.clone()),
                ("veriff-attempt-id", decision.attempt_id.clone()),
                ("veriff-media-id", chosen.media_id.clone()),
                ("veriff-context", chosen.context.clone()),
            ],
            pending.clone(),
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
                writer.write(chunk).await.map_err(Failure::transient)?;
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
        let size = writer.finish().await.map_err(Failure::transient)?;
        Ok(FileRecord {
            key: job.key.clone(),
            media_id: chosen.media_id.clone(),
            kind: chosen.kind,
            context: chosen.context.clone(),
            mimetype: chosen.mimetype.clone(),
            content_type: job.content_type.clone(),
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Assigns each chosen file its key and content type.
fn plan_copies(folder: &str, chosen: Vec<Chosen>) -> Vec<CopyJob> {
    let keys = layout::keys_for(folder, &chosen);
    chosen
        .into_iter()
        .zip(keys)
        .map(|(chosen, key)| CopyJob {
            content_type: layout::content_type_for(chosen.mimetype.as_deref()),
            chosen,
            key,
        })
        .collect()
}
