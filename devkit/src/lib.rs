//! Development tooling for `veriff-archiver`.
//!
//! **Dev-only**: this crate is a dev-dependency of the archiver and the home of local demo
//! binaries. It is never linked into the Lambda binary (`bootstrap`), and it contains test
//! doubles that deliberately accept fixed credentials.
//!
//! Modules:
//! - [`signing`]: Veriff HMAC-SHA256 signatures and realistic Lambda Function URL events
//!   (payload format 2.0), signed like Veriff's webhooks.
//! - [`fixtures`]: Veriff's documented payloads verbatim (media metadata examples, the
//!   decision webhook, an event webhook), a Full Auto webhook of the documented shape, and
//!   the deterministic byte generator behind generated media.
//! - [`veriff_fake`]: [`FakeVeriff`], a faithful fake of the Veriff API (authentication,
//!   signatures, error bodies, session deletion) on loopback, with fault injection and a
//!   request log.
//! - [`demo`]: the demo scenarios (a session with documents, faces, NFC data and a video; a
//!   session whose decided attempt is not its latest; a session of the Essential plan,
//!   decided by Full Auto webhooks).
//! - [`s3_server`]: [`LocalS3`], a real S3-compatible server (`s3s-fs`, SigV4 verified) on
//!   loopback, with fault injection and a request log.
//! - [`moto`]: [`MotoServer`], a launcher for an external `moto_server` (S3 with Object Lock
//!   and conditional writes enforced) on loopback.
//! - [`tsa`]: [`TsaServer`], a real RFC 3161 time-stamping authority (`openssl ts`) on
//!   loopback, that can be taken down.
//!
//! Binaries: `veriff-fake` (the fake with the demo scenario), `local-s3` (the S3 server),
//! `sign-event` (prints a signed Function URL event for a body file). Each has `--help`.

#![warn(missing_docs)]

pub mod cli;
pub mod demo;
pub mod fixtures;
pub mod moto;
pub mod runtime_api;
pub mod s3_server;
mod server;
pub mod signing;
pub mod tsa;
pub mod veriff_fake;

pub use demo::{
    DemoMedia, DemoMediaKind, DemoScenario, EssentialScenario, ResubmittedScenario, demo_media,
    demo_scenario, essential_scenario, resubmitted_decision_webhook, resubmitted_scenario,
};
pub use fixtures::{
    decision_webhook, deterministic_bytes, deterministic_sha256_hex, full_auto_webhook,
};
pub use moto::MotoServer;
pub use s3_server::{
    LocalS3, MultipartUploads, S3Fault, S3FaultKind, S3Request, create_bucket_dir,
};
pub use signing::{function_url_event, hmac_sha256_hex, signed_webhook_event};
pub use tsa::{TsaKey, TsaServer};
pub use veriff_fake::{FakeConfig, FakeVeriff, Fault, FaultKind, MediaContent, RecordedRequest};
