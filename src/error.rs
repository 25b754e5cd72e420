//! One error type for the whole request path, and the single place where each error
//! becomes an HTTP status and a stable machine-readable code.
//!
//! Messages are written for operators: they name what failed (an endpoint kind, an S3
//! operation, a byte count) and never carry a secret, a signature, a request body or any
//! personal data from the webhook.

use crate::event::EnvelopeError;
use crate::webhook::AuthError;

/// Everything that can stop one invocation from archiving a decision.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Lambda event is not an HTTP envelope we understand (or its base64 is broken).
    #[error("malformed Lambda HTTP event: {0}")]
    BadEnvelope(String),
    /// The request came from outside `ALLOWED_SOURCE_CIDRS` (or could not show where it came
    /// from): refused before anything else is read. The message never holds the address.
    #[error("source address not allowed: {0}")]
    SourceNotAllowed(String),
    /// The request used a method other than POST.
    #[error("method {0} not allowed; Veriff webhooks are POSTed")]
    MethodNotAllowed(String),
    /// The webhook body is larger than the configured limit.
    #[error("request body exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The webhook could not be authenticated.
    #[error("webhook authentication failed: {0}")]
    Unauthorized(AuthError),
    /// An authenticated decision whose content cannot be archived (for example an unsafe id).
    #[error("decision payload rejected: {0}")]
    BadPayload(String),
    /// Veriff answered with an error, an unverifiable answer, or not at all.
    #[error("Veriff API failure: {0}")]
    Upstream(String),
    /// Bytes received do not match what was announced (length, size, signature).
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// S3 failed an operation in a way a retry may heal (5xx, throttling, a dropped
    /// connection).
    #[error("S3 failure: {0}")]
    Storage(String),
    /// S3 refused an operation in a way no retry heals (access denied, no such bucket,
    /// invalid credentials): the copy fails at once, without downloading again.
    #[error("S3 refused the request: {0}")]
    StorageRefused(String),
    /// The manifest could not be signed (KMS refused or failed, or no signer was built).
    #[error("manifest signing failed: {0}")]
    Signing(String),
    /// An object the archive needs to create is already stored with other content, or
    /// another delivery wrote a different manifest under this decision's key.
    #[error("conflict with a stored object: {0}")]
    Conflict(String),
    /// The archive queue did not take the decision (queue mode): Veriff redelivers.
    #[error("archive queue failure: {0}")]
    QueueUnavailable(String),
    /// The operator stopped the job (Ctrl-C in `veriff-archiver backfill`) before the
    /// archive was complete; open uploads were aborted and no manifest written.
    #[error("stopped before the archive was complete")]
    Cancelled,
    /// The invocation's deadline arrived before the archive was complete.
    #[error("deadline reached before the archive was complete")]
    Deadline,
}

impl Error {
    /// The HTTP status answered to the webhook sender. Anything but 200 makes Veriff retry.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadEnvelope(_) | Error::BadPayload(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::SourceNotAllowed(_) => 403,
            Error::MethodNotAllowed(_) => 405,
            Error::BodyTooLarge { .. } => 413,
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
            Error::BadEnvelope(_) => "bad_envelope",
            Error::SourceNotAllowed(_) => "source_not_allowed",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::BodyTooLarge { .. } => "body_too_large",
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
}

impl From<EnvelopeError> for Error {
    fn from(error: EnvelopeError) -> Error {
        match error {
            EnvelopeError::Malformed(what) => Error::BadEnvelope(what),
            EnvelopeError::BodyTooLarge { limit } => Error::BodyTooLarge { limit },
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant, with the status and code the README's answer table documents.
    fn documented() -> Vec<(Error, u16, &'static str)> {
        let s = || String::from("x");
        vec![
            (Error::BadEnvelope(s()), 400, "bad_envelope"),
            (Error::SourceNotAllowed(s()), 403, "source_not_allowed"),
            (Error::MethodNotAllowed(s()), 405, "method_not_allowed"),
            (Error::BodyTooLarge { limit: 1 }, 413, "body_too_large"),
            (
                Error::Unauthorized(AuthError::MissingSignature),
                401,
                "unauthorized",
            ),
            (Error::BadPayload(s()), 400, "bad_payload"),
            (Error::Upstream(s()), 502, "veriff_unavailable"),
            (Error::Integrity(s()), 502, "integrity_check_failed"),
            (Error::Storage(s()), 503, "storage_unavailable"),
            (Error::StorageRefused(s()), 503, "storage_refused"),
            (Error::Signing(s()), 503, "signing_unavailable"),
            (Error::Conflict(s()), 503, "conflict"),
            (Error::QueueUnavailable(s()), 503, "queue_unavailable"),
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
                Error::BadEnvelope(_)
                | Error::SourceNotAllowed(_)
                | Error::MethodNotAllowed(_)
                | Error::BodyTooLarge { .. }
                | Error::Unauthorized(_)
                | Error::BadPayload(_)
                | Error::Upstream(_)
                | Error::Integrity(_)
                | Error::Storage(_)
                | Error::StorageRefused(_)
                | Error::Signing(_)
                | Error::Conflict(_)
                | Error::QueueUnavailable(_)
                | Error::Cancelled
                | Error::Deadline => std::mem::discriminant(e),
            })
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(variants.len(), 15, "each variant appears once");
    }

    #[test]
    fn readme_answer_table_lists_every_code() {
        let readme = include_str!("../README.md");
        for (_, status, code) in documented() {
            assert!(
                readme.contains(&format!("`{code}`")),
                "README.md does not document the code {code} ({status})"
            );
        }
    }
}
