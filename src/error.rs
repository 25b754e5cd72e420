//! One error type for the whole request path, and the single place where each error
//! becomes an HTTP status and a stable machine-readable code.
//!
//! Messages are written for operators: they name what failed (an endpoint kind, an S3
//! operation, a byte count) and never carry a secret, a signature, a request body or any
//! personal data from the webhook.

use crate::webhook::AuthError;

/// Everything that can stop one invocation from archiving a decision.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Lambda event is not an HTTP envelope we understand (or its base64 is broken).
    #[error("malformed Lambda HTTP event: {0}")]
    BadEnvelope(String),
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
    /// S3 refused or failed an operation.
    #[error("S3 failure: {0}")]
    Storage(String),
    /// Another invocation changed the manifest while this one was writing it.
    #[error("manifest changed concurrently: {0}")]
    Conflict(String),
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
            Error::MethodNotAllowed(_) => 405,
            Error::BodyTooLarge { .. } => 413,
            Error::Upstream(_) | Error::Integrity(_) => 502,
            Error::Storage(_) | Error::Conflict(_) => 503,
            Error::Deadline => 504,
        }
    }

    /// A short stable code for the JSON error body and for log filters.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadEnvelope(_) => "bad_envelope",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::Unauthorized(_) => "unauthorized",
            Error::BadPayload(_) => "bad_payload",
            Error::Upstream(_) => "veriff_unavailable",
            Error::Integrity(_) => "integrity_check_failed",
            Error::Storage(_) => "storage_unavailable",
            Error::Conflict(_) => "conflict",
            Error::Deadline => "deadline_exceeded",
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_4xx_and_server_side_failures_5xx() {
        assert_eq!(Error::BadEnvelope("x".into()).status(), 400);
        assert_eq!(
            Error::Unauthorized(AuthError::MissingSignature).status(),
            401
        );
        assert_eq!(Error::BodyTooLarge { limit: 1 }.status(), 413);
        assert_eq!(Error::Upstream("x".into()).status(), 502);
        assert_eq!(Error::Storage("x".into()).status(), 503);
        assert_eq!(Error::Deadline.status(), 504);
    }
}
