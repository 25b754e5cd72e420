//! Storing one chosen file: reuse it when an earlier decision of the folder stored it (a
//! HeadObject confirms the object), else stream it from Veriff into S3 with a conditional
//! create, checking sizes and hashes on the way ([`StreamCheck`]), and adopt an object that
//! already holds the key only when it holds the same bytes.

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::domain::SafeId;
use crate::error::{ConflictError, Error, IntegrityError, UpstreamError, UpstreamProblem};
use crate::layout;
use crate::manifest::{FileRecord, S3Checksum, StoredObject};
use crate::retry::{self, Failure};
use crate::select::{Chosen, Listing};
use crate::store::{Created, PendingUploads};
use crate::stored::same_checksum;

use super::Archiver;

/// One file to store, or to reuse from an earlier decision's manifest.
pub(super) struct CopyJob {
    pub(super) chosen: Chosen,
    pub(super) key: String,
    pub(super) content_type: String,
    pub(super) earlier: Option<FileRecord>,
}

/// Assigns each chosen file its key, content type and, when an earlier decision stored the
/// same media id, that decision's record.
pub(super) fn plan_copies(
    folder: &str,
    chosen: Vec<Chosen>,
    earlier: &std::collections::HashMap<String, FileRecord>,
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

/// What one download's bytes must match, checked chunk by chunk: at most the listed size
/// (or the maximum), exactly the announced `Content-Length` and the listed size at the end;
/// and their SHA-256. Pure: fed by the copy, tested alone.
#[derive(Debug)]
pub(crate) struct StreamCheck {
    media_id: String,
    announced: Option<u64>,
    listed: Option<u64>,
    limit: u64,
    received: u64,
    hasher: Sha256,
}

impl StreamCheck {
    /// The check of a download of `chosen` announcing `content_length`, with files of at
    /// most `max` bytes; refused at once when the announcement cannot be archived.
    pub(crate) fn new(
        chosen: &Chosen,
        content_length: Option<u64>,
        max: u64,
    ) -> Result<StreamCheck, IntegrityError> {
        let media_id = chosen.media_id.to_string();
        if let Some(problem) = announced_size_problem(content_length, chosen.size, max) {
            return Err(IntegrityError::Media { media_id, problem });
        }
        Ok(StreamCheck {
            media_id,
            announced: content_length,
            listed: chosen.size,
            limit: chosen.size.unwrap_or(max).min(max),
            received: 0,
            hasher: Sha256::new(),
        })
    }

    /// Counts and hashes one chunk; a body longer than allowed fails at once.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), IntegrityError> {
        self.received += chunk.len() as u64;
        if self.received > self.limit {
            return Err(self.integrity(format!(
                "body exceeds the announced or maximum size of {} bytes",
                self.limit
            )));
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The size and lowercase hex SHA-256 of a complete body. A body shorter than its
    /// `Content-Length` was cut off (worth another download); one that differs from the
    /// listed size is not what Veriff listed.
    pub(crate) fn finish(self) -> Result<(u64, String), Failure> {
        if let Some(length) = self.announced.filter(|l| *l != self.received) {
            return Err(Failure::transient(
                UpstreamError::new(
                    "media download",
                    UpstreamProblem::Truncated {
                        media_id: self.media_id.clone(),
                        received: self.received,
                        length,
                    },
                )
                .into(),
            ));
        }
        if let Some(size) = self.listed.filter(|s| *s != self.received) {
            let problem = format!("received {} bytes, metadata size is {size}", self.received);
            return Err(Failure::permanent(self.integrity(problem).into()));
        }
        Ok((self.received, hex::encode(self.hasher.finalize())))
    }

    fn integrity(&self, problem: String) -> IntegrityError {
        IntegrityError::Media {
            media_id: self.media_id.clone(),
            problem,
        }
    }
}

impl Archiver {
    /// The earlier decision's record of this file, when HeadObject confirms the object is
    /// still there with the recorded size and version.
    pub(super) async fn reuse(
        &self,
        job: &CopyJob,
        listing: Listing,
    ) -> Result<Option<FileRecord>, Error> {
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

    /// An object already holds `key` (an earlier failed run, or a concurrent delivery):
    /// adopt it if it is byte for byte what would have been written, else fail. S3's
    /// checksum decides when S3 returns one; otherwise the object is read back and hashed
    /// (an S3-compatible server may keep no checksum, or a torn write may have lost it).
    pub(super) async fn adopt_existing(
        &self,
        key: &str,
        would_be: &S3Checksum,
        size: u64,
        sha256_hex: &str,
    ) -> Result<(StoredObject, Option<String>), Error> {
        let conflict = || ConflictError::OtherContent {
            key: key.to_string(),
        };
        let Some(head) = self.store.head(key, None).await? else {
            return Err(ConflictError::Vanished {
                key: key.to_string(),
            }
            .into());
        };
        if head.size != size {
            return Err(conflict().into());
        }
        let same = match &head.stored.s3_checksum {
            Some(stored) => same_checksum(&stored.value, &would_be.value),
            None => {
                let version = head.stored.version_id.as_deref();
                self.store.sha256_of(key, version).await?.as_deref() == Some(sha256_hex)
            }
        };
        if !same {
            return Err(conflict().into());
        }
        tracing::info!(key, "object already stored with the same content; adopted");
        Ok((head.stored, head.content_type))
    }

    /// Copies one file, retrying the whole download-and-upload on transient failures.
    pub(super) async fn copy_file(
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

    /// One download streamed into one conditional create.
    async fn copy_once(
        &self,
        (session_id, attempt_id): (&SafeId, &SafeId),
        job: &CopyJob,
        listing: Listing,
        pending: &PendingUploads,
    ) -> Result<FileRecord, Failure> {
        let chosen = &job.chosen;
        // The first buffer's bytes before the download opens: a copy waiting for memory
        // holds no connection.
        let first = self
            .budget
            .reserve(self.store.first_buffer_size(chosen.size))
            .await;
        let mut download = self.veriff.open_media(&chosen.media_id).await?;
        let announced = download.content_length;
        let mut check = StreamCheck::new(chosen, announced, self.config.archive.max_file_bytes)
            .map_err(|e| Failure::permanent(e.into()))?;
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
        let streamed: Result<(u64, String), Failure> = async {
            while let Some(chunk) = download.next_chunk().await? {
                check
                    .feed(&chunk)
                    .map_err(|e| Failure::permanent(e.into()))?;
                download.signature.update(&chunk);
                writer.write(chunk).await.map_err(storage_failure)?;
            }
            let (size, sha256) = check.finish()?;
            download
                .signature
                .verify("media download")
                .map_err(Failure::permanent)?;
            Ok((size, sha256))
        }
        .await;
        let (size, sha256) = match streamed {
            Ok(done) => done,
            Err(failure) => {
                writer.abort().await;
                return Err(failure);
            }
        };
        let (written, created) = writer.finish().await.map_err(storage_failure)?;
        debug_assert_eq!(written, size);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{StorageError, StorageProblem};
    use crate::media::MediaKind;

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
        let storage = || StorageError::new("PutObject", StorageProblem::TimedOut);
        assert!(storage_failure(Error::Storage(storage())).retryable);
        assert!(!storage_failure(Error::StorageRefused(storage())).retryable);
        assert!(!storage_failure(ConflictError::OtherManifest.into()).retryable);
        assert!(!storage_failure(IntegrityError::MalformedSignature.into()).retryable);
    }

    fn chosen(size: Option<u64>) -> Chosen {
        Chosen {
            kind: MediaKind::Image,
            media_id: SafeId::parse("m1").unwrap(),
            context: SafeId::parse("face").unwrap(),
            mimetype: None,
            size,
        }
    }

    #[test]
    fn a_stream_is_counted_hashed_and_held_to_its_sizes() {
        let mut check = StreamCheck::new(&chosen(Some(6)), Some(6), 100).unwrap();
        check.feed(b"abc").unwrap();
        check.feed(b"def").unwrap();
        let (size, sha256) = check.finish().unwrap();
        assert_eq!(size, 6);
        assert_eq!(sha256, hex::encode(Sha256::digest(b"abcdef")));

        // Longer than listed: refused on the chunk that crosses the limit.
        let mut check = StreamCheck::new(&chosen(Some(4)), None, 100).unwrap();
        check.feed(b"abcd").unwrap();
        assert!(matches!(
            check.feed(b"e"),
            Err(IntegrityError::Media { .. })
        ));
        // Without a listed size the maximum bounds it.
        let mut check = StreamCheck::new(&chosen(None), None, 3).unwrap();
        assert!(check.feed(b"abcd").is_err());

        // Cut short of its Content-Length: worth another download.
        let mut check = StreamCheck::new(&chosen(Some(6)), Some(6), 100).unwrap();
        check.feed(b"abc").unwrap();
        let failure = check.finish().unwrap_err();
        assert!(failure.retryable);
        assert!(failure.error.to_string().contains("truncated at 3 of 6"));

        // Complete, but not the size Veriff listed (no Content-Length): not retried.
        let mut check = StreamCheck::new(&chosen(Some(6)), None, 100).unwrap();
        check.feed(b"abc").unwrap();
        let failure = check.finish().unwrap_err();
        assert!(!failure.retryable);
        assert_eq!(failure.error.code(), "integrity_check_failed");

        // An announcement that cannot be archived is refused before any byte.
        assert!(StreamCheck::new(&chosen(Some(6)), Some(7), 100).is_err());
        assert!(StreamCheck::new(&chosen(None), Some(101), 100).is_err());
    }
}
