//! S3 access for the archive: reading a folder back (list, read, head) and creating
//! objects. Every write is a conditional create (`If-None-Match: *` on PutObject and on
//! CompleteMultipartUpload): this module has no way to overwrite or delete a stored
//! object.
//!
//! Objects are written by a streamed [`ObjectWriter`] (one PutObject up to the part size,
//! multipart above it), with SHA-256 checksums that S3 verifies on every request, and the
//! checksum S3 will store (full-object or composite) computed on the way, so the manifest
//! can record it. Memory per writer is bounded by one part buffer. Every multipart upload
//! is recorded in a [`PendingUploads`] registry until completed or aborted, so that a copy
//! cancelled mid-way (a failed sibling, the deadline) can still be aborted by its
//! invocation. Never logs object contents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

mod list;

pub use list::{Level, ListedVersion, Restore, needs_restore};

use crate::budget::{CopyBudget, Reservation};
use crate::error::{Error, IntegrityError, StorageError, StorageProblem};
use crate::stored::{
    ObjectHead, S3Checksum, StoredObject, checksum_type_of, composite_checksum,
    full_object_checksum,
};

/// S3 error codes that no retry can heal: the copy fails at once instead of downloading
/// the file again (wrong bucket, missing permission, bad credentials, unusable KMS key).
pub const PERMANENT_S3_CODES: [&str; 12] = [
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidAccessKeyId",
    "InvalidBucketName",
    "InvalidSecurity",
    "NoSuchBucket",
    "SignatureDoesNotMatch",
    "InvalidObjectState",
    "KMS.DisabledException",
    "KMS.NotFoundException",
    "KMS.KMSInvalidStateException",
];

/// The archive bucket.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    bucket: String,
    part_size: usize,
}

/// The result of a conditional create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// Stored: S3's record of the new object.
    Stored(StoredObject),
    /// An object already holds the key (412): nothing was written. `would_be` is the
    /// checksum the new object would have had, to compare with the existing one.
    Exists {
        /// The checksum of the bytes that were not written.
        would_be: S3Checksum,
    },
}

/// Multipart uploads started and not yet completed or aborted, by upload id.
#[derive(Debug, Clone, Default)]
pub struct PendingUploads(Arc<Mutex<HashMap<String, String>>>);

impl PendingUploads {
    fn add(&self, upload_id: &str, key: &str) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(upload_id.into(), key.into());
    }
    fn remove(&self, upload_id: &str) {
        self.0.lock().expect("not poisoned").remove(upload_id);
    }
    fn take_all(&self) -> Vec<(String, String)> {
        self.0.lock().expect("not poisoned").drain().collect()
    }
    /// How many uploads are pending.
    pub fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store {
    /// A store writing to `bucket` with parts of `part_size` bytes (at least 5 MiB on AWS).
    pub fn new(client: Client, bucket: impl Into<String>, part_size: usize) -> Self {
        Store {
            client,
            bucket: bucket.into(),
            part_size,
        }
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Reads a whole object of at most `max_bytes`; `None` when there is none.
    pub async fn read(&self, key: &str, max_bytes: u64) -> Result<Option<Bytes>, Error> {
        self.read_version(key, None, max_bytes).await
    }

    /// Reads a whole object (of `version_id`, when given) of at most `max_bytes`; `None`
    /// when there is no such object or version.
    pub async fn read_version(
        &self,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<Option<Bytes>, Error> {
        Ok(self
            .read_with_version(key, version_id, max_bytes)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// Like [`Store::read_version`], with the version id S3 served (versioned buckets).
    pub async fn read_with_version(
        &self,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<Option<(Bytes, Option<String>)>, Error> {
        let Some(out) = self.get(key, version_id).await? else {
            return Ok(None);
        };
        if out
            .content_length()
            .is_some_and(|n| n.max(0) as u64 > max_bytes)
        {
            return Err(Error::Storage(StorageError::new(
                "GetObject",
                StorageProblem::TooLarge { limit: max_bytes },
            )));
        }
        let served = out.version_id().map(str::to_string);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| interrupted("GetObject", e))?
            .into_bytes();
        Ok(Some((bytes, served)))
    }

    /// The lowercase hex SHA-256 of an object's bytes, streamed (`None` when there is no
    /// such object). For objects whose checksum S3 does not return.
    pub async fn sha256_of(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let Some(out) = self.get(key, version_id).await? else {
            return Ok(None);
        };
        let mut body = out.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| interrupted("GetObject", e))?
        {
            hasher.update(&chunk);
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    /// GetObject (of `version_id`, when given); `None` when there is no such object.
    async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, Error> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
        {
            Ok(out) => Ok(Some(out)),
            // A version id S3 does not know (or one malformed for it): no such version.
            Err(e) if matches!(http_status(&e), Some(404 | 400)) && version_id.is_some() => {
                Ok(None)
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("InvalidObjectState") => {
                Err(Error::StorageRefused(StorageError::new(
                    "GetObject",
                    StorageProblem::Archived(Box::new(crate::error::ArchivedObject {
                        bucket: self.bucket.clone(),
                        key: key.to_string(),
                        version: version_id.unwrap_or("current").to_string(),
                    })),
                )))
            }
            Err(e) => Err(storage_error("GetObject", e)),
        }
    }

    /// HeadObject with checksum mode, of the current version or of `version_id`; `None`
    /// when there is no such object (or version).
    pub async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectHead>, Error> {
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(http_status(&e), Some(404 | 400)) && version_id.is_some() => {
                return Ok(None);
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) if http_status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(storage_error("HeadObject", e)),
        };
        let s3_checksum = out.checksum_sha256().map(|value| S3Checksum {
            algorithm: "SHA256".into(),
            checksum_type: checksum_type_of(value),
            value: value.to_string(),
        });
        Ok(Some(ObjectHead {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            content_type: out.content_type().map(str::to_string),
            stored: StoredObject {
                version_id: out.version_id().map(str::to_string),
                etag: out.e_tag().map(str::to_string),
                s3_checksum,
            },
        }))
    }

    /// Creates a small object in one conditional PutObject with a SHA-256 checksum.
    pub async fn create(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&'static str, String)],
    ) -> Result<Created, Error> {
        let checksum = full_object_checksum(&Sha256::digest(&body));
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum.value);
        for (name, value) in metadata {
            request = request.metadata(*name, value);
        }
        match request.body(ByteStream::from(body)).send().await {
            Ok(out) => {
                check_echoed_checksum(key, out.checksum_sha256(), &checksum)?;
                Ok(Created::Stored(StoredObject {
                    version_id: out.version_id().map(str::to_string),
                    etag: out.e_tag().map(str::to_string),
                    s3_checksum: Some(checksum),
                }))
            }
            Err(e) if is_precondition_failed(&e) => Ok(Created::Exists { would_be: checksum }),
            Err(e) => Err(storage_error("PutObject", e)),
        }
    }

    /// Starts a streamed conditional create of one object. `first` is the budget
    /// reservation for its first buffer: `size_hint` bytes when known and smaller than a
    /// part, else one part. Further part buffers are drawn from the same budget as they
    /// are needed; at most two exist per object (one filling, one uploading).
    pub fn writer(
        &self,
        key: String,
        content_type: String,
        size_hint: Option<u64>,
        metadata: Vec<(&'static str, String)>,
        pending: PendingUploads,
        first: Reservation,
    ) -> ObjectWriter {
        ObjectWriter {
            budget: first.budget().clone(),
            store: self.clone(),
            key,
            content_type,
            metadata,
            pending,
            reservation: Some(first),
            buffer: BytesMut::new(),
            buffer_capacity: first_buffer_size(size_hint, self.part_size),
            upload: None,
            in_flight: None,
            part_digests: Vec::new(),
            written: 0,
        }
    }

    /// The bytes the first buffer of an object of `size_hint` bytes needs.
    pub fn first_buffer_size(&self, size_hint: Option<u64>) -> usize {
        first_buffer_size(size_hint, self.part_size)
    }

    /// Aborts every upload still registered in `pending` (best effort, logged).
    pub async fn abort_pending(&self, pending: &PendingUploads) {
        for (upload_id, key) in pending.take_all() {
            self.abort(&key, &upload_id).await;
        }
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(key, "multipart upload aborted"),
            Err(e) => {
                tracing::warn!(key, error = %storage_error("AbortMultipartUpload", e), "abort failed; the bucket lifecycle rule will clean up")
            }
        }
    }
}

/// A small object's buffer is its size; anything else (or unknown) gets one part.
fn first_buffer_size(size_hint: Option<u64>, part_size: usize) -> usize {
    size_hint
        .map_or(part_size, |n| (n as usize).min(part_size))
        .max(1)
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

/// A part whose upload finished.
struct UploadedPart {
    part: CompletedPart,
    digest: [u8; 32],
    len: u64,
}

/// A streamed conditional create of one object. Feed it with [`ObjectWriter::write`], then
/// either [`ObjectWriter::finish`] or [`ObjectWriter::abort`].
///
/// Reading and uploading overlap: when a part is full its upload starts in the background
/// and the next part fills meanwhile. At most one part uploads while the next one fills, so
/// an object holds at most two part buffers, both drawn from the [`CopyBudget`].
pub struct ObjectWriter {
    store: Store,
    key: String,
    content_type: String,
    metadata: Vec<(&'static str, String)>,
    pending: PendingUploads,
    budget: CopyBudget,
    /// The budget behind `buffer` (taken by the part upload it becomes).
    reservation: Option<Reservation>,
    buffer: BytesMut,
    buffer_capacity: usize,
    upload: Option<Multipart>,
    /// The part uploading now, with the reservation of its buffer.
    in_flight: Option<JoinHandle<Result<UploadedPart, Error>>>,
    part_digests: Vec<[u8; 32]>,
    written: u64,
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Dropped mid-copy (deadline, cancel): stop the upload in flight, so that its
        // buffer is given back now. The multipart upload is aborted through `pending`.
        if let Some(handle) = self.in_flight.take() {
            handle.abort();
        }
    }
}

impl ObjectWriter {
    /// Buffers `chunk`, starting a part's upload whenever a full part is buffered.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), Error> {
        let part_size = self.store.part_size;
        while !chunk.is_empty() {
            if self.buffer.capacity() == 0 {
                if self.reservation.is_none() {
                    self.reservation = Some(self.next_buffer().await?);
                }
                self.buffer.reserve(self.buffer_capacity);
            }
            let room = part_size - self.buffer.len();
            let take = room.min(chunk.len());
            self.buffer.extend_from_slice(&chunk.split_to(take));
            if self.buffer.len() == part_size {
                let part = self.buffer.split().freeze();
                self.buffer = BytesMut::new();
                self.buffer_capacity = part_size;
                self.start_part(part).await?;
            }
        }
        Ok(())
    }

    /// The reservation for the next part buffer: taken now if the budget has it, else after
    /// the part in flight finished (which frees its buffer). Never waits while holding one.
    async fn next_buffer(&mut self) -> Result<Reservation, Error> {
        let part_size = self.store.part_size;
        if let Some(reservation) = self.budget.try_reserve(part_size) {
            return Ok(reservation);
        }
        self.wait_in_flight().await?;
        Ok(self.budget.reserve(part_size).await)
    }

    /// Uploads `part` in the background (after the previous one finished).
    async fn start_part(&mut self, part: Bytes) -> Result<(), Error> {
        if self.upload.is_none() {
            self.create_upload().await?;
        }
        self.wait_in_flight().await?;
        let upload = self.upload.as_ref().expect("started above");
        let number = (self.part_digests.len() + 1) as i32;
        let client = self.store.client.clone();
        let bucket = self.store.bucket.clone();
        let key = self.key.clone();
        let upload_id = upload.upload_id.clone();
        let reservation = self.reservation.take();
        self.in_flight = Some(tokio::spawn(async move {
            let uploaded = upload_part(client, bucket, key, upload_id, number, part).await;
            drop(reservation);
            uploaded
        }));
        Ok(())
    }

    /// Waits for the part in flight, if any, and records it.
    async fn wait_in_flight(&mut self) -> Result<(), Error> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let uploaded = handle.await.map_err(|e| {
            Error::Storage(StorageError {
                operation: "UploadPart",
                problem: StorageProblem::TaskFailed,
                source: Some(Box::new(e)),
            })
        })??;
        let upload = self.upload.as_mut().expect("a part implies an upload");
        upload.parts.push(uploaded.part);
        self.part_digests.push(uploaded.digest);
        self.written += uploaded.len;
        Ok(())
    }

    async fn create_upload(&mut self) -> Result<(), Error> {
        let mut request = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .content_type(&self.content_type)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        for (name, value) in &self.metadata {
            request = request.metadata(*name, value);
        }
        let out = request
            .send()
            .await
            .map_err(|e| storage_error("CreateMultipartUpload", e))?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| {
                Error::Storage(StorageError::new(
                    "CreateMultipartUpload",
                    StorageProblem::NoUploadId,
                ))
            })?
            .to_string();
        self.pending.add(&upload_id, &self.key);
        self.upload = Some(Multipart {
            upload_id,
            parts: Vec::new(),
        });
        Ok(())
    }

    /// Stores what was written, if the key is still free: one PutObject if it fit in one
    /// part, else the last part and CompleteMultipartUpload, both with `If-None-Match: *`.
    /// Call only after the source's integrity checks passed. Returns the size and the
    /// outcome; on [`Created::Exists`] nothing was stored.
    pub async fn finish(mut self) -> Result<(u64, Created), Error> {
        let rest = self.buffer.split().freeze();
        if self.upload.is_none() {
            let len = rest.len() as u64;
            let metadata = std::mem::take(&mut self.metadata);
            let created = self
                .store
                .create(&self.key, rest, &self.content_type, &metadata)
                .await?;
            return Ok((len, created));
        }
        if !rest.is_empty() {
            self.start_part(rest).await?;
        }
        self.wait_in_flight().await?;
        let upload = self.upload.take().expect("multipart started");
        let checksum = composite_checksum(&self.part_digests);
        let result = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&upload.upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(upload.parts))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(out) => {
                self.pending.remove(&upload.upload_id);
                check_echoed_checksum(&self.key, out.checksum_sha256(), &checksum)?;
                Ok((
                    self.written,
                    Created::Stored(StoredObject {
                        version_id: out.version_id().map(str::to_string),
                        etag: out.e_tag().map(str::to_string),
                        s3_checksum: Some(checksum),
                    }),
                ))
            }
            Err(e) => {
                let outcome = if is_precondition_failed(&e) {
                    Ok((self.written, Created::Exists { would_be: checksum }))
                } else {
                    Err(storage_error("CompleteMultipartUpload", e))
                };
                self.store.abort(&self.key, &upload.upload_id).await;
                self.pending.remove(&upload.upload_id);
                outcome
            }
        }
    }

    /// Discards what was written: stops the part in flight and aborts the multipart upload
    /// if one was started.
    pub async fn abort(mut self) {
        if let Some(handle) = self.in_flight.take() {
            handle.abort();
            let _ = handle.await;
        }
        if let Some(upload) = self.upload.take() {
            self.store.abort(&self.key, &upload.upload_id).await;
            self.pending.remove(&upload.upload_id);
        }
    }
}

/// One UploadPart with its SHA-256 checksum (computed here, off the reading path).
async fn upload_part(
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    number: i32,
    part: Bytes,
) -> Result<UploadedPart, Error> {
    let digest: [u8; 32] = Sha256::digest(&part).into();
    let checksum = b64(&digest);
    let len = part.len() as u64;
    let out = client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(&checksum)
        .body(ByteStream::from(part))
        .send()
        .await
        .map_err(|e| storage_error("UploadPart", e))?;
    Ok(UploadedPart {
        part: CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_string))
            .checksum_sha256(checksum)
            .build(),
        digest,
        len,
    })
}

/// When S3 echoes the checksum it stored, it must be the one computed here.
fn check_echoed_checksum(
    key: &str,
    echoed: Option<&str>,
    expected: &S3Checksum,
) -> Result<(), Error> {
    match echoed {
        Some(value) if value != expected.value => Err(IntegrityError::EchoedChecksum {
            key: key.to_string(),
            found: value.to_string(),
            expected: expected.value.clone(),
        }
        .into()),
        _ => Ok(()),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn http_status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HasStatus::status_code)
}

/// A conditional create lost: 412, or 409 when a concurrent conditional write was in
/// progress (AWS answers `ConditionalRequestConflict`; retrying would then see 412).
fn is_precondition_failed<E, R: HasStatus>(e: &SdkError<E, R>) -> bool {
    matches!(http_status(e), Some(412 | 409))
}

pub(crate) trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A short operator-facing description of an SDK error: the operation, the S3 error code
/// or the transport problem. Never includes a body. Codes in [`PERMANENT_S3_CODES`] give
/// [`Error::StorageRefused`], everything else [`Error::Storage`].
pub(crate) fn storage_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: HasStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let (problem, refused) = match &e {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            let problem = StorageProblem::Status {
                status: service.raw().status_code(),
                code: code.to_string(),
            };
            (problem, PERMANENT_S3_CODES.contains(&code))
        }
        SdkError::TimeoutError(_) => (StorageProblem::TimedOut, false),
        SdkError::DispatchFailure(_) => (StorageProblem::ConnectionFailed, false),
        SdkError::ResponseError(_) => (StorageProblem::UnreadableResponse, false),
        SdkError::ConstructionFailure(_) => (StorageProblem::NotBuilt, false),
        _ => (StorageProblem::Unknown, false),
    };
    let error = StorageError {
        operation,
        problem,
        source: Some(Box::new(e)),
    };
    if refused {
        Error::StorageRefused(error)
    } else {
        Error::Storage(error)
    }
}

/// A body that broke off while it was read.
fn interrupted(
    operation: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Storage(StorageError {
        operation,
        problem: StorageProblem::BodyInterrupted,
        source: Some(Box::new(e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_checksum_must_match() {
        let expected = full_object_checksum(&Sha256::digest(b"x"));
        assert!(check_echoed_checksum("k", None, &expected).is_ok());
        assert!(check_echoed_checksum("k", Some(&expected.value), &expected).is_ok());
        assert!(matches!(
            check_echoed_checksum("k", Some("other"), &expected),
            Err(Error::Integrity(_))
        ));
    }
}
