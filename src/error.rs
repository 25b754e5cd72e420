//! One error type for the whole request path, and the single place where each error
//! becomes an HTTP status and a stable machine-readable code.
//!
//! Each variant carries structured context: which request or S3 operation, which status or
//! error code, which key; the error that caused it, when there is one, is its `source()`
//! (a transport, SDK or parse error), kept for the chain but never part of the message.
//! Messages are written for operators: they name what failed and never carry a secret, a
//! signature, a request body or any personal data from the webhook.

use crate::event::EnvelopeError;
use crate::webhook::{AuthError, PayloadError};

/// The error a failed transport, SDK call or parse leaves behind, as a `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can stop one invocation from archiving a decision.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Lambda event is not an HTTP envelope we understand, or its body is too large.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The request came from outside `ALLOWED_SOURCE_CIDRS` (or could not show where it came
    /// from): refused before anything else is read. The message never holds the address.
    #[error("source address not allowed: {0}")]
    SourceNotAllowed(#[from] SourceRefusal),
    /// The request used a method other than POST (its name, reduced to ASCII letters).
    #[error("method {0} not allowed; Veriff webhooks are POSTed")]
    MethodNotAllowed(String),
    /// The webhook could not be authenticated.
    #[error("webhook authentication failed: {0}")]
    Unauthorized(#[from] AuthError),
    /// An authenticated decision whose content cannot be archived (for example an unsafe id).
    #[error("decision payload rejected: {0}")]
    BadPayload(#[from] PayloadError),
    /// Veriff answered with an error, an unreadable answer, or not at all.
    #[error("Veriff API failure: {0}")]
    Upstream(#[from] UpstreamError),
    /// Bytes received do not match what was announced (length, size, signature).
    #[error("integrity check failed: {0}")]
    Integrity(#[from] IntegrityError),
    /// S3 failed an operation in a way a retry may heal (5xx, throttling, a dropped
    /// connection).
    #[error("S3 failure: {0}")]
    Storage(#[source] StorageError),
    /// S3 refused an operation in a way no retry heals (access denied, no such bucket,
    /// invalid credentials): the copy fails at once, without downloading again.
    #[error("S3 refused the request: {0}")]
    StorageRefused(#[source] StorageError),
    /// The manifest could not be signed (KMS refused or failed, or no signer was built).
    #[error("manifest signing failed: {0}")]
    Signing(#[from] SigningError),
    /// An object the archive needs to create is already stored with other content, or
    /// another delivery wrote a different manifest under this decision's key.
    #[error("conflict with a stored object: {0}")]
    Conflict(#[from] ConflictError),
    /// The archive queue did not take the decision (queue mode): Veriff redelivers.
    #[error("archive queue failure: {0}")]
    QueueUnavailable(#[from] QueueError),
    /// The operator stopped the job (Ctrl-C in `veriff-archiver backfill`) before the
    /// archive was complete; open uploads were aborted and no manifest written.
    #[error("stopped before the archive was complete")]
    Cancelled,
    /// The invocation's deadline arrived before the archive was complete.
    #[error("deadline reached before the archive was complete")]
    Deadline,
}

/// Why a request's source address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceRefusal {
    /// Its address is outside `ALLOWED_SOURCE_CIDRS`.
    #[error("the request came from outside ALLOWED_SOURCE_CIDRS")]
    Outside,
    /// The event shows no source address (not a Function URL request).
    #[error(
        "the event carries no requestContext source address (not a Function URL request), \
         and ALLOWED_SOURCE_CIDRS is set"
    )]
    NoAddress,
    /// The event's source address is not an IP address.
    #[error("the event's requestContext source address is not an IP address")]
    MalformedAddress,
}

/// A Veriff request that failed: which one (`what`, e.g. `session media metadata`), what
/// happened, and the transport or parse error behind it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct UpstreamError {
    /// The request, named for operators (never its URL).
    pub what: &'static str,
    /// What went wrong.
    pub problem: UpstreamProblem,
    /// The error behind it, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

impl UpstreamError {
    /// A failure of `what` with no underlying error.
    pub fn new(what: &'static str, problem: UpstreamProblem) -> UpstreamError {
        UpstreamError {
            what,
            problem,
            source: None,
        }
    }

    /// A failure of `what` caused by `source`.
    pub fn caused_by(
        what: &'static str,
        problem: UpstreamProblem,
        source: impl Into<BoxError>,
    ) -> UpstreamError {
        UpstreamError {
            what,
            problem,
            source: Some(source.into()),
        }
    }
}

/// What went wrong with a Veriff request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamProblem {
    /// A status other than success (Veriff's own error code, when its body carried one).
    #[error("HTTP {status}{}", veriff_code.as_deref().map(|c| format!(" (Veriff code {c})")).unwrap_or_default())]
    Status {
        /// The HTTP status.
        status: u16,
        /// Veriff's `code` from the error body (digits only).
        veriff_code: Option<String>,
    },
    /// A 404 that is not Veriff's own (unsigned or wrongly signed).
    #[error("HTTP 404 without a valid response signature")]
    UnsignedNotFound,
    /// One media listing answered 404 while the other answered.
    #[error("HTTP 404 while the other media listing answered")]
    OneListingNotFound,
    /// No answer in time.
    #[error("timed out")]
    TimedOut,
    /// The connection could not be made.
    #[error("connection failed")]
    ConnectionFailed,
    /// The body broke off.
    #[error("body interrupted")]
    BodyInterrupted,
    /// A redirect, which is never followed.
    #[error("redirect refused")]
    RedirectRefused,
    /// Any other transport failure.
    #[error("request failed")]
    RequestFailed,
    /// A body larger than accepted.
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A media download shorter than its `Content-Length`.
    #[error("media {media_id}: body truncated at {received} of {length} bytes")]
    Truncated {
        /// The media id.
        media_id: String,
        /// Bytes received.
        received: u64,
        /// Bytes announced.
        length: u64,
    },
    /// An answer that does not parse as documented (the parse error's description).
    #[error("{0}")]
    Unreadable(String),
    /// The decision endpoint answered with another session's decision.
    #[error("the answer names another session")]
    OtherSession,
    /// The attempts listing lists no attempt to archive.
    #[error("the session lists no attempt to archive")]
    NoAttempt,
    /// An attempt id from the attempts listing is not a safe identifier.
    #[error("an attempt id is not a safe identifier")]
    UnsafeAttemptId,
    /// The credentials are not loaded (Secrets Manager not read yet).
    #[error("no Veriff credentials loaded: cannot sign the request")]
    NoCredentials,
}

/// Bytes or answers that do not match what was announced or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    /// A response signature header that is not the hex of a SHA-256 HMAC.
    #[error("Veriff response signature is not hex SHA-256")]
    MalformedSignature,
    /// A metadata response without the signature Veriff documents.
    #[error(
        "{what}: response carries no X-HMAC-SIGNATURE (set \
         VERIFF_REQUIRE_RESPONSE_SIGNATURE=false only if Veriff stopped signing)"
    )]
    Unsigned {
        /// The request.
        what: &'static str,
    },
    /// A response whose signature does not match its body.
    #[error("{what}: response signature does not match the body")]
    SignatureMismatch {
        /// The request.
        what: &'static str,
    },
    /// A media file whose size differs from what was announced, or is too large.
    #[error("media {media_id}: {problem}")]
    Media {
        /// The media id.
        media_id: String,
        /// What differed.
        problem: String,
    },
    /// A ledger document (a digest of the chain) that does not parse.
    #[error("ledger document {key} does not parse: {source}")]
    LedgerDocument {
        /// Its key.
        key: String,
        /// Why.
        #[source]
        source: crate::ledger::format::LedgerError,
    },
    /// S3 echoed another checksum than the one computed for the bytes sent.
    #[error("S3 stored {key} with checksum {found}, expected {expected}")]
    EchoedChecksum {
        /// The object key.
        key: String,
        /// The checksum S3 echoed.
        found: String,
        /// The checksum of the bytes sent.
        expected: String,
    },
}

/// An S3 operation that failed: which one, how, and the SDK error behind it.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {problem}")]
pub struct StorageError {
    /// The S3 operation (`PutObject`, `UploadPart`...).
    pub operation: &'static str,
    /// What went wrong.
    pub problem: StorageProblem,
    /// The SDK error behind it, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

impl StorageError {
    /// A failure of `operation` with no underlying error.
    pub fn new(operation: &'static str, problem: StorageProblem) -> StorageError {
        StorageError {
            operation,
            problem,
            source: None,
        }
    }
}

/// What went wrong with an S3 operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageProblem {
    /// S3 answered with an error (HTTP status and S3's error code).
    #[error("HTTP {status} {code}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// S3's error code (`SlowDown`, `AccessDenied`...).
        code: String,
    },
    /// No answer in time.
    #[error("timed out")]
    TimedOut,
    /// The connection could not be made.
    #[error("connection failed")]
    ConnectionFailed,
    /// An answer the SDK could not read.
    #[error("unreadable response")]
    UnreadableResponse,
    /// The request could not be built.
    #[error("request could not be built")]
    NotBuilt,
    /// Anything else the SDK reported.
    #[error("unknown failure")]
    Unknown,
    /// An object's body broke off while it was read.
    #[error("body interrupted")]
    BodyInterrupted,
    /// An object larger than the reader accepts.
    #[error("object is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// `CreateMultipartUpload` answered without an upload id.
    #[error("returned no upload id")]
    NoUploadId,
    /// The background task of a part's upload failed to run.
    #[error("the part's upload task failed")]
    TaskFailed,
    /// The object is in an archived storage class (S3 Glacier Flexible Retrieval or Deep
    /// Archive, `InvalidObjectState`): it must be restored before it can be read.
    #[error("{0}")]
    Archived(Box<ArchivedObject>),
}

/// An object that must be restored before it can be read, and the command that does it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{key} (version {version}) is in an archived storage class (GLACIER or DEEP_ARCHIVE) and \
     must be restored before it can be read: aws s3api restore-object --bucket {bucket} --key \
     '{key}' --version-id '{version}' --restore-request Days=7, or `veriff-archiver restore` \
     for whole sessions (docs/operations.md, \"Storage classes\")"
)]
pub struct ArchivedObject {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The version asked for (`current` when none).
    pub version: String,
}

/// A manifest that could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("{problem}")]
pub struct SigningError {
    /// What went wrong.
    pub problem: SigningProblem,
    /// The KMS error behind it, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

/// What went wrong when signing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningProblem {
    /// KMS `Sign` failed, with KMS's error code.
    #[error("KMS Sign: {code}")]
    Kms {
        /// KMS's error code, or `no answer`.
        code: String,
    },
    /// KMS answered without a signature.
    #[error("KMS Sign returned no signature")]
    NoSignature,
    /// `MANIFEST_SIGNING_KEY_ID` is set but the app was built without a signer.
    #[error("MANIFEST_SIGNING_KEY_ID is set but no KMS signer was built")]
    NoSigner,
}

impl From<SigningProblem> for SigningError {
    fn from(problem: SigningProblem) -> SigningError {
        SigningError {
            problem,
            source: None,
        }
    }
}

/// An object the archive needs, held by something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConflictError {
    /// The key holds other bytes than the archive would write.
    #[error("{key} is already stored with other content; it is left as it is")]
    OtherContent {
        /// The key.
        key: String,
    },
    /// A conditional create said the key was taken, and then nothing was there.
    #[error("{key} was reported to exist, and then was not found")]
    Vanished {
        /// The key.
        key: String,
    },
    /// Another delivery wrote a manifest of another decision under this decision's key.
    #[error("another delivery wrote a different manifest under this decision's key")]
    OtherManifest,
}

/// The archive queue did not take a message.
#[derive(Debug, thiserror::Error)]
#[error("{problem}")]
pub struct QueueError {
    /// What went wrong.
    pub problem: QueueProblem,
    /// The SQS error behind it, when there is one.
    #[source]
    pub source: Option<BoxError>,
}

/// What went wrong with the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueProblem {
    /// SQS `SendMessage` failed (its error code, or how the call failed).
    #[error("SendMessage: {0}")]
    Send(String),
    /// Queue mode without a queue client.
    #[error("INGEST_MODE=queue but no queue client was built")]
    NoClient,
}

impl Error {
    /// The HTTP status answered to the webhook sender. Anything but 200 makes Veriff retry.
    pub fn status(&self) -> u16 {
        match self {
            Error::Envelope(EnvelopeError::Malformed(_)) | Error::BadPayload(_) => 400,
            Error::Envelope(EnvelopeError::BodyTooLarge { .. }) => 413,
            Error::Unauthorized(_) => 401,
            Error::SourceNotAllowed(_) => 403,
            Error::MethodNotAllowed(_) => 405,
            Error::Upstream(_) | Error::Integrity(_) => 502,
            Error::Storage(_)
            | Error::StorageRefused(_)
            | Error::Signing(_)
            | Error::Conflict(_)
            | Error::QueueUnavailable(_) => 503,
            Error::Cancelled => 503,
            Error::Deadline => 504,
        }
    }

    /// A short stable code for the JSON error body and for log filters.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Envelope(EnvelopeError::Malformed(_)) => "bad_envelope",
            Error::Envelope(EnvelopeError::BodyTooLarge { .. }) => "body_too_large",
            Error::SourceNotAllowed(_) => "source_not_allowed",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Unauthorized(_) => "unauthorized",
            Error::BadPayload(_) => "bad_payload",
            Error::Upstream(_) => "veriff_unavailable",
            Error::Integrity(_) => "integrity_check_failed",
            Error::Storage(_) => "storage_unavailable",
            Error::StorageRefused(_) => "storage_refused",
            Error::Signing(_) => "signing_unavailable",
            Error::Conflict(_) => "conflict",
            Error::QueueUnavailable(_) => "queue_unavailable",
            Error::Cancelled => "cancelled",
            Error::Deadline => "deadline_exceeded",
        }
    }

    /// A Veriff failure of `what`, with no underlying error.
    pub fn upstream(what: &'static str, problem: UpstreamProblem) -> Error {
        Error::Upstream(UpstreamError::new(what, problem))
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn storage() -> StorageError {
        StorageError::new("PutObject", StorageProblem::TimedOut)
    }

    /// Every variant, with the status and code the answers table documents.
    fn documented() -> Vec<(Error, u16, &'static str)> {
        vec![
            (
                EnvelopeError::Malformed("x".into()).into(),
                400,
                "bad_envelope",
            ),
            (SourceRefusal::Outside.into(), 403, "source_not_allowed"),
            (
                Error::MethodNotAllowed("GET".into()),
                405,
                "method_not_allowed",
            ),
            (
                EnvelopeError::BodyTooLarge { limit: 1 }.into(),
                413,
                "body_too_large",
            ),
            (AuthError::MissingSignature.into(), 401, "unauthorized"),
            (PayloadError::BadFullAutoDecision.into(), 400, "bad_payload"),
            (
                Error::upstream("x", UpstreamProblem::TimedOut),
                502,
                "veriff_unavailable",
            ),
            (
                IntegrityError::MalformedSignature.into(),
                502,
                "integrity_check_failed",
            ),
            (Error::Storage(storage()), 503, "storage_unavailable"),
            (Error::StorageRefused(storage()), 503, "storage_refused"),
            (
                SigningError::from(SigningProblem::NoSignature).into(),
                503,
                "signing_unavailable",
            ),
            (ConflictError::OtherManifest.into(), 503, "conflict"),
            (
                QueueError {
                    problem: QueueProblem::NoClient,
                    source: None,
                }
                .into(),
                503,
                "queue_unavailable",
            ),
            (Error::Cancelled, 503, "cancelled"),
            (Error::Deadline, 504, "deadline_exceeded"),
        ]
    }

    #[test]
    fn every_error_has_its_documented_status_and_code() {
        let cases = documented();
        for (error, status, code) in &cases {
            assert_eq!(error.status(), *status, "{error:?}");
            assert_eq!(error.code(), *code, "{error:?}");
        }
        // A new variant must be added to the table above: this match does not compile
        // until it is, and the count keeps the table from dropping one.
        let variants = cases
            .iter()
            .map(|(e, _, _)| match e {
                Error::Envelope(EnvelopeError::Malformed(_)) => 0,
                Error::Envelope(EnvelopeError::BodyTooLarge { .. }) => 1,
                Error::SourceNotAllowed(_) => 2,
                Error::MethodNotAllowed(_) => 3,
                Error::Unauthorized(_) => 4,
                Error::BadPayload(_) => 5,
                Error::Upstream(_) => 6,
                Error::Integrity(_) => 7,
                Error::Storage(_) => 8,
                Error::StorageRefused(_) => 9,
                Error::Signing(_) => 10,
                Error::Conflict(_) => 11,
                Error::QueueUnavailable(_) => 12,
                Error::Cancelled => 13,
                Error::Deadline => 14,
            })
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(variants.len(), 15, "each variant appears once");
    }

    #[test]
    fn messages_carry_the_context_and_sources_keep_the_cause() {
        let cause = std::io::Error::other("socket reset by peer");
        let error = Error::Upstream(UpstreamError::caused_by(
            "media download",
            UpstreamProblem::BodyInterrupted,
            cause,
        ));
        assert_eq!(
            error.to_string(),
            "Veriff API failure: media download: body interrupted"
        );
        let upstream = error.source().expect("the upstream error");
        assert_eq!(
            upstream.source().map(ToString::to_string).as_deref(),
            Some("socket reset by peer"),
            "the cause is kept in the chain, out of the message"
        );
        let status = Error::upstream(
            "session media metadata",
            UpstreamProblem::Status {
                status: 401,
                veriff_code: Some("1818".into()),
            },
        );
        assert_eq!(
            status.to_string(),
            "Veriff API failure: session media metadata: HTTP 401 (Veriff code 1818)"
        );
        let refused = Error::StorageRefused(StorageError::new(
            "PutObject",
            StorageProblem::Status {
                status: 403,
                code: "AccessDenied".into(),
            },
        ));
        assert_eq!(
            refused.to_string(),
            "S3 refused the request: PutObject: HTTP 403 AccessDenied"
        );
        assert!(refused.source().is_some());
    }

    #[test]
    fn the_answer_table_lists_every_code() {
        let table = include_str!("../docs/operations.md");
        for (_, status, code) in documented() {
            assert!(
                table.contains(&format!("`{code}`")),
                "docs/operations.md does not document the code {code} ({status})"
            );
        }
    }
}
