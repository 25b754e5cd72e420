//! S3 writes: a streamed object writer (one PutObject up to the part size, multipart above
//! it), SHA-256 checksums that S3 verifies, and the conditional manifest write.
//!
//! Memory per writer is bounded by one part buffer, whatever the object's size. Every
//! multipart upload is recorded in a [`PendingUploads`] registry until completed or
//! aborted, so that a copy cancelled mid-way (a failed sibling, the deadline) can still be
//! aborted by its invocation. Never logs object contents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Largest manifest read back (a manifest lists at most a few hundred files).
const MAX_MANIFEST_BYTES: i64 = 16 * 1024 * 1024;

/// The archive bucket.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    bucket: String,
    part_size: usize,
}

/// A manifest found in the bucket.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its ETag, for a conditional replacement.
    pub etag: Option<String>,
}

/// How the manifest write is conditioned.
#[derive(Debug, Clone)]
pub enum WriteCondition {
    /// Only if no manifest exists (`If-None-Match: *`).
    Absent,
    /// Only if the manifest is still the one read (`If-Match: <etag>`).
    Unchanged(String),
}

/// Outcome of a conditional manifest write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestWrite {
    /// Written.
    Written,
    /// The condition failed: someone else wrote the manifest in between.
    PreconditionFailed,
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

    /// Reads the manifest at `key`, if any.
    pub async fn get_manifest(&self, key: &str) -> Result<Option<StoredManifest>, Error> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) if http_status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(storage_error("GetObject manifest", &e)),
        };
        if out.content_length().is_some_and(|n| n > MAX_MANIFEST_BYTES) {
            return Err(Error::Storage(
                "existing manifest is implausibly large".into(),
            ));
        }
        let etag = out.e_tag().map(str::to_string);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|_| Error::Storage("GetObject manifest: body interrupted".into()))?
            .into_bytes();
        Ok(Some(StoredManifest { bytes, etag }))
    }

    /// Writes the manifest under `condition`, with a SHA-256 checksum.
    pub async fn put_manifest(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<ManifestWrite, Error> {
        let checksum = b64(&Sha256::digest(&body));
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .body(ByteStream::from(body));
        request = match condition {
            WriteCondition::Absent => request.if_none_match("*"),
            WriteCondition::Unchanged(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(_) => Ok(ManifestWrite::Written),
            // 412: the condition failed; 409: a concurrent conditional write won the race.
            Err(e) if matches!(http_status(&e), Some(412 | 409)) => {
                Ok(ManifestWrite::PreconditionFailed)
            }
            Err(e) => Err(storage_error("PutObject manifest", &e)),
        }
    }

    /// Starts a streamed write of one object. `size_hint`, when known, keeps the buffer of a
    /// small object at its size instead of a whole part.
    pub fn writer(
        &self,
        key: String,
        content_type: String,
        size_hint: Option<u64>,
        metadata: Vec<(&'static str, String)>,
        pending: PendingUploads,
    ) -> ObjectWriter {
        ObjectWriter {
            store: self.clone(),
            key,
            content_type,
            metadata,
            pending,
            buffer: BytesMut::new(),
            buffer_capacity: size_hint
                .map_or(self.part_size, |n| (n as usize).min(self.part_size))
                .max(1),
            upload: None,
            written: 0,
        }
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
                tracing::warn!(key, error = %storage_error("AbortMultipartUpload", &e), "abort failed; the bucket lifecycle rule will clean up")
            }
        }
    }
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

/// A streamed write of one object. Feed it with [`ObjectWriter::write`], then either
/// [`ObjectWriter::finish`] or [`ObjectWriter::abort`]. Holds at most one part in memory.
pub struct ObjectWriter {
    store: Store,
    key: String,
    content_type: String,
    metadata: Vec<(&'static str, String)>,
    pending: PendingUploads,
    buffer: BytesMut,
    buffer_capacity: usize,
    upload: Option<Multipart>,
    written: u64,
}

impl ObjectWriter {
    /// Buffers `chunk`, uploading a part whenever a full part is buffered.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), Error> {
        let part_size = self.store.part_size;
        while !chunk.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer.reserve(self.buffer_capacity);
            }
            let room = part_size - self.buffer.len();
            let take = room.min(chunk.len());
            self.buffer.extend_from_slice(&chunk.split_to(take));
            if self.buffer.len() == part_size {
                let part = self.buffer.split().freeze();
                self.upload_part(part).await?;
            }
        }
        Ok(())
    }

    /// Stores what was written: one PutObject if it fit in one part, else the last part and
    /// CompleteMultipartUpload. Call only after the source's integrity checks passed.
    pub async fn finish(mut self) -> Result<u64, Error> {
        let rest = self.buffer.split().freeze();
        if self.upload.is_none() {
            let len = rest.len() as u64;
            let mut request = self
                .store
                .client
                .put_object()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(b64(&Sha256::digest(&rest)));
            for (name, value) in &self.metadata {
                request = request.metadata(*name, value);
            }
            request
                .body(ByteStream::from(rest))
                .send()
                .await
                .map_err(|e| storage_error("PutObject", &e))?;
            return Ok(len);
        }
        if !rest.is_empty() {
            self.upload_part(rest).await?;
        }
        let upload = self.upload.take().expect("multipart started");
        let result = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&upload.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(upload.parts))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => {
                self.pending.remove(&upload.upload_id);
                Ok(self.written)
            }
            Err(e) => {
                let error = storage_error("CompleteMultipartUpload", &e);
                self.store.abort(&self.key, &upload.upload_id).await;
                self.pending.remove(&upload.upload_id);
                Err(error)
            }
        }
    }

    /// Discards what was written, aborting the multipart upload if one was started.
    pub async fn abort(mut self) {
        if let Some(upload) = self.upload.take() {
            self.store.abort(&self.key, &upload.upload_id).await;
            self.pending.remove(&upload.upload_id);
        }
    }

    async fn upload_part(&mut self, part: Bytes) -> Result<(), Error> {
        if self.upload.is_none() {
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
                .map_err(|e| storage_error("CreateMultipartUpload", &e))?;
            let upload_id = out
                .upload_id()
                .ok_or_else(|| {
                    Error::Storage("CreateMultipartUpload returned no upload id".into())
                })?
                .to_string();
            self.pending.add(&upload_id, &self.key);
            self.upload = Some(Multipart {
                upload_id,
                parts: Vec::new(),
            });
        }
        let upload = self.upload.as_mut().expect("just started");
        let number = upload.parts.len() as i32 + 1;
        let checksum = b64(&Sha256::digest(&part));
        let len = part.len() as u64;
        let out = self
            .store
            .client
            .upload_part()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| storage_error("UploadPart", &e))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .checksum_sha256(checksum)
                .build(),
        );
        self.written += len;
        Ok(())
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn http_status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HasStatus::status_code)
}

trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A short operator-facing description of an SDK error: the operation, the S3 error code
/// or the transport problem. Never includes a body.
fn storage_error<E: ProvideErrorMetadata, R: HasStatus>(
    operation: &str,
    e: &SdkError<E, R>,
) -> Error {
    let detail = match e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status_code();
            let code = service.err().code().unwrap_or("unknown");
            format!("HTTP {status} {code}")
        }
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "connection failed".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "request could not be built".into(),
        _ => "unknown failure".into(),
    };
    Error::Storage(format!("{operation}: {detail}"))
}
