//! The integration tests, one binary with a module per area (one link of the AWS SDK and
//! the harness instead of one per file). Each module's own doc says what it covers; the
//! harness is [`support`]: a real S3-compatible server and the Veriff fake on loopback,
//! and the real handler fed with real events.
//!
//! Tests that need a server the default run does not start are `#[ignore]`d and run by
//! module from `scripts/test.sh`, e.g. `cargo test --test it -- --ignored evidence::`
//! (moto_server) or `e2e_bootstrap::` (the release bootstrap under the Runtime Interface
//! Emulator). `tests/log_privacy.rs` stays a binary of its own: it installs the
//! process-wide log subscriber.

mod support;

mod archive;
mod backfill;
mod cli_backfill;
mod cli_report;
mod cli_verify;
mod copy_path;
mod customer;
mod e2e_bootstrap;
mod evidence;
mod faults;
mod full_auto;
mod hostile_input;
mod iam_policy;
mod ledger;
mod metrics;
mod queue;
mod queue_safety;
mod secrets;
mod signing;
mod tsa;
