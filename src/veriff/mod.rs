//! The Veriff API: signed requests, response-signature checks, retries, typed metadata and
//! streamed downloads.
//!
//! Requests only ever go to the configured base URL, with a path built from ids that were
//! validated as safe segments; a URL received over the wire is never followed, and
//! redirects are refused.

pub mod client;
pub mod media;

pub use client::{BodySignature, MediaDownload, VeriffClient};
pub use media::{MediaItem, MediaKind, MediaList};
