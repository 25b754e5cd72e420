//! The Veriff API: signed requests, response-signature checks, retries, typed metadata and
//! streamed downloads.
//!
//! Requests only ever go to the configured base URL, with a path built from ids that were
//! validated as safe segments; a URL received over the wire is never followed, and
//! redirects are refused.

pub mod client;
pub mod rate;
/// The media model moved to the pure [`crate::media`]; re-exported for existing paths.
pub use crate::media;

pub use crate::media::{MediaItem, MediaKind, MediaList};
pub use client::{BodySignature, MediaDownload, VeriffClient};
pub use rate::RateLimiter;
