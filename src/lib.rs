//! # veriff-archiver
//!
//! An AWS Lambda function that turns Veriff identity-verification decisions into a
//! durable, verifiable evidence archive in S3.
//!
//! One path through the code, each step one module:
//!
//! ```text
//! Function URL event ─► allowlist ─► event ─► webhook::authenticate ─► webhook::classify ─┬─► ignored (200)
//!   (outside ALLOWED_SOURCE_CIDRS: 403, nothing else read)                                  └─► decision
//! decision ─┬─ direct mode (default) ─────────────────────────────────────────► archive
//!           └─ queue mode: queue::sender ─► SQS ─► 200 queued
//! SQS batch ─► queue::consumer ─► each distinct decision ─► archive ─► partial batch response
//!
//! archive: decided attempt (given, or the newest) ─► read its folder back:
//!             this decision's manifest there? ─► already archived (200, nothing fetched)
//!          ─► veriff: session and attempt listings, at once ─► select::decided_listing ─►
//!             select ─► each file: reuse (stored by an earlier decision) or copy:
//!             veriff (download) ──stream──► store (conditional create) ─► manifest, last ─► 200
//! any failure before the manifest ─► non-200 (or a failed queue record), no manifest;
//!     Veriff redelivers (or SQS does, then the dead-letter queue); a retry finishes
//! ```
//!
//! - [`domain`]: the domain's words, a leaf every layer uses: [`domain::SafeId`] (an id
//!   safe in a URL or a key, built only by validation), [`domain::Decision`] and its
//!   record, statuses, webhook kinds, [`domain::Secret`].
//! - [`config`]: environment → validated [`config::Config`] (cold start).
//! - [`credentials`]: the Veriff API key and shared secrets, from the environment or from
//!   Secrets Manager (read at cold start, refreshed while warm).
//! - [`allowlist`]: the optional source-address allowlist (`ALLOWED_SOURCE_CIDRS`),
//!   checked before anything else of a request is read.
//! - [`event`]: Lambda HTTP envelopes ↔ raw headers, body bytes, responses.
//! - [`webhook`]: constant-time HMAC check over raw bytes; decision vs other webhooks.
//! - [`media`]: the media model (listings, items, attempts), parsed leniently.
//! - [`veriff`]: the Veriff API: signed requests, response signatures, downloads.
//! - [`retry`]: backoff with jitter and `Retry-After`, bounded by the deadline.
//! - [`select`]: which listing shows the decided attempt, which media to keep, and why the
//!   rest was skipped.
//! - [`layout`]: S3 keys; the only place that turns ids into paths and names manifests.
//! - [`manifest`]: the manifest document (schema v2; v1 still parses).
//! - [`signing`]: signed manifests: the statement KMS signs, and offline verification.
//! - [`budget`]: the copy path's memory budget (`COPY_MEMORY_MIB`), shared by every copy.
//! - [`stored`]: what S3 holds, as records (versions, ETags, checksums) and S3's checksum
//!   arithmetic; pure, shared by the manifest, the writer and the audit's rules.
//! - [`store`]: S3 access: list, read, head, and conditional creates (never an overwrite).
//! - [`archive`]: orchestration of one decision: idempotency, reuse, concurrency.
//! - [`audit`]: reading the archive back (verify, report): manifests, signatures, every
//!   file against its record, orphans and gaps. Never writes. What it reads is judged by
//!   pure functions in `audit/rules.rs`.
//! - [`schedule`]: the seal schedule's entry: a Scheduled Event seals the ledger.
//! - [`handler`]: one event in, one answer out: an HTTP answer for a Function URL event,
//!   a partial batch response for an SQS batch; one log line per stage.
//! - [`queue`]: queue mode: the decision message, sending it (webhook, CLI), and the
//!   consumer that archives SQS batches through the same [`archive::Archiver`].
//! - [`error`]: one error type, mapped to an HTTP status in one place.
//! - [`metrics`]: CloudWatch metrics as Embedded Metric Format lines, one set per invocation.
//! - [`ledger`]: the ledger: a receipt before each manifest, digests sealed on a schedule
//!   (chained, signed, timestamped) that prove the archive complete.
//! - [`tsa`]: RFC 3161 timestamps: the request, the token from a response, offline
//!   verification against the authority's certificate.
//! - [`index`]: the index by customer: entries keyed by a keyed hash of `vendorData` or
//!   `endUserId`, written before each manifest (pure).
//! - [`customer`]: evidence by customer: find, retain, hold, release, erase, reindex.
//! - [`pack`]: the evidence pack of one session (the CLI's `report`): the page, laid out
//!   by an escaping template from an audit and the images it proved, and the owner-only
//!   folder it is written to.
//! - [`backfill`]: archiving past sessions (the CLI's `backfill`): the input, each
//!   session's decision, archiving or enqueueing through the same archiver, the counts.
//! - [`units`]: how numbers read for people (byte sizes, counted nouns), in one place.
//! - [`app`]: the app and its one builder (the Lambda, the CLI and the tests build it the
//!   same way): credentials in force, clients, archiver, signer, queue, secret, metrics.
//! - [`aws`]: every AWS client (S3, KMS, SQS, Secrets Manager), built the SDK way.
//! - [`telemetry`]: logging set-up for `main`.
//!
//! Pure modules (`config`, `event`, `webhook`, `media`, `select`, `layout`, `manifest`) do no
//! I/O and are unit-tested without servers; I/O lives in `veriff`, `store` and `s3`.

pub mod allowlist;
pub mod app;
pub mod archive;
pub mod audit;
pub mod aws;
pub mod backfill;
pub mod budget;
pub mod config;
pub mod credentials;
pub mod customer;
pub mod domain;
pub mod error;
pub mod event;
pub mod handler;
pub mod index;
pub mod layout;
pub mod ledger;
pub mod manifest;
pub mod media;
pub mod metrics;
pub mod pack;
pub mod queue;
pub mod retry;
pub mod schedule;
pub mod select;
pub mod signing;
pub mod store;
pub mod stored;
pub mod telemetry;
pub mod tsa;
pub mod units;
pub mod veriff;
pub mod webhook;

pub use app::App;
pub use config::Config;
pub use error::Error;
