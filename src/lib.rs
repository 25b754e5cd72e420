//! # veriff-archiver
//!
//! An AWS Lambda function that turns Veriff identity-verification decisions into a
//! durable, verifiable evidence archive in S3.
//!
//! One path through the code, each step one module:
//!
//! ```text
//! Function URL event ─► event ─► webhook::authenticate ─► webhook::classify ─┬─► ignored (200)
//!                                                                            └─► decision
//! decision ─► archive: manifest exists? ─► veriff (list media) ─► select ─► copy each,
//!             concurrently: veriff (download) ──stream──► store (S3) ─► manifest, last ─► 200
//! any failure before the manifest ─► non-200, no manifest (Veriff redelivers; a retry finishes)
//! ```
//!
//! - [`config`]: environment → validated [`config::Config`] (cold start).
//! - [`event`]: Lambda HTTP envelopes ↔ raw headers, body bytes, responses.
//! - [`webhook`]: constant-time HMAC check over raw bytes; decision vs other webhooks.
//! - [`veriff`]: the Veriff API: signed requests, response signatures, typed metadata, downloads.
//! - [`retry`]: backoff with jitter and `Retry-After`, bounded by the deadline.
//! - [`select`]: which media to keep, and why the rest was skipped.
//! - [`layout`]: S3 keys; the only place that turns ids into paths.
//! - [`manifest`]: the manifest document (schema v1).
//! - [`store`]: S3 writes: put or multipart, checksums, conditional manifest write.
//! - [`archive`]: orchestration of one decision, idempotency, concurrency.
//! - [`handler`]: one event in, one HTTP answer out, one log line per stage.
//! - [`error`]: one error type, mapped to an HTTP status in one place.
//! - [`s3`], [`telemetry`]: client and logging set-up for `main`.
//!
//! Pure modules (`config`, `event`, `webhook`, `select`, `layout`, `manifest`) do no I/O and
//! are unit-tested without servers; I/O lives in `veriff`, `store` and `s3`.

pub mod archive;
pub mod config;
pub mod error;
pub mod event;
pub mod handler;
pub mod layout;
pub mod manifest;
pub mod media;
pub mod retry;
pub mod s3;
pub mod select;
pub mod store;
pub mod telemetry;
pub mod veriff;
pub mod webhook;

pub use config::Config;
pub use error::Error;
pub use handler::App;
