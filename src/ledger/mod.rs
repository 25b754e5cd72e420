//! The ledger: chained digests that prove the archive complete, not only intact.
//!
//! Each manifest write leaves a receipt first; a scheduled seal turns the receipts of a
//! period into one digest that lists every manifest written in it (key, version, size,
//! SHA-256) and the previous digest's key and SHA-256, signed like a manifest and, when a
//! time-stamping authority is configured, timestamped. `veriff-archiver verify` walks the
//! chain: a manifest removed after sealing, a digest deleted or altered, a period no digest
//! covers all show.
//!
//! - `format.rs`: the documents and their keys (pure);
//! - `plan.rs`: the seal's rules: its period, what it reads, what it seals (pure);
//! - `seal.rs`: the seal itself, reading receipts and writing the digest;
//! - `stamp.rs`: RFC 3161 timestamps from the configured authority.

pub mod format;
pub mod plan;
pub mod seal;
pub mod stamp;

pub use format::{Digest, Receipt};
pub use plan::SealSettings;
pub use seal::{SealOutcome, Sealer};
