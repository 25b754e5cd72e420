//! Reading Veriff for a decision: the session's newest attempt (for a decision that names
//! none) and the media listings of the decided attempt.

use tokio::time::Instant;

use crate::config::MediaSource;
use crate::domain::SafeId;
use crate::error::{Error, UpstreamProblem};
use crate::manifest::{MediaUnavailable, NOT_FOUND_AT_VERIFF, SourceRecord};
use crate::media::{MediaList, newest_attempt};
use crate::select::{DecidedListing, Listing, MediaAvailability, decided_media};
use crate::veriff::VeriffClient;

use super::Archiver;

/// The media listed for a decided attempt.
pub(super) struct Listed {
    /// The listing chosen (empty when the media are unavailable).
    pub(super) decided: DecidedListing,
    /// The listings read, as the manifest records them.
    pub(super) source: SourceRecord,
    /// Why there is nothing to list, when Veriff no longer has the media.
    pub(super) unavailable: Option<MediaUnavailable>,
}

impl Archiver {
    /// The session's newest attempt, for a decision that names none.
    pub(super) async fn resolve_attempt(
        &self,
        session_id: &SafeId,
        deadline: Instant,
    ) -> Result<SafeId, Error> {
        let what = "session attempts";
        let attempts = self.veriff.attempts(session_id, deadline).await?;
        let newest = newest_attempt(&attempts)
            .and_then(|a| a.id.clone())
            .ok_or_else(|| Error::upstream(what, UpstreamProblem::NoAttempt))?;
        let id = SafeId::parse(newest)
            .map_err(|_| Error::upstream(what, UpstreamProblem::UnsafeAttemptId))?;
        tracing::info!(
            %session_id,
            attempt_id = id.as_str(),
            attempts = attempts.len(),
            "decision carries no attemptId; archiving the session's newest attempt"
        );
        Ok(id)
    }

    /// Reads the listings the configured mode asks for (both at once in combined mode) and
    /// decides which one to archive from. When Veriff answered every listing with an
    /// authenticated 404, the listing is empty and [`Listed::unavailable`] says why.
    pub(super) async fn list_media(
        &self,
        session_id: &SafeId,
        attempt_id: &SafeId,
        deadline: Instant,
    ) -> Result<Listed, Error> {
        let session = self
            .veriff
            .media_listing(Listing::Session, session_id, deadline);
        let attempt = self
            .veriff
            .media_listing(Listing::Attempt, attempt_id, deadline);
        let (session, attempt) = match self.config.archive.media_source {
            MediaSource::Combined => {
                let (s, a) = tokio::try_join!(session, attempt)?;
                (Some(s), Some(a))
            }
            MediaSource::Session => (Some(session.await?), None),
            MediaSource::Attempt => (None, Some(attempt.await?)),
        };
        let endpoint = |listing| match listing {
            Listing::Session => VeriffClient::listing_endpoint(listing, session_id),
            Listing::Attempt => VeriffClient::listing_endpoint(listing, attempt_id),
        };
        let read: Vec<Listing> = [
            session.as_ref().map(|_| Listing::Session),
            attempt.as_ref().map(|_| Listing::Attempt),
        ]
        .into_iter()
        .flatten()
        .collect();
        let availability = decided_media(session, attempt).expect("at least one listing was read");
        let (decided, unavailable) = match availability {
            MediaAvailability::Listed(decided) => (decided, None),
            MediaAvailability::Gone(listings) => {
                tracing::warn!(
                    %session_id,
                    %attempt_id,
                    "Veriff answered 404 to every media listing (session deleted, or media past \
                     Veriff's retention); the decision is recorded with no files"
                );
                let gone = MediaUnavailable {
                    reason: NOT_FOUND_AT_VERIFF.into(),
                    endpoints: listings.into_iter().map(endpoint).collect(),
                };
                (self.empty_listing(), Some(gone))
            }
            MediaAvailability::Inconsistent(listing) => {
                return Err(Error::upstream(
                    listing_name(listing),
                    UpstreamProblem::OneListingNotFound,
                ));
            }
        };
        let source = SourceRecord {
            mode: self.config.archive.media_source.as_str().into(),
            listing: Some(decided.listing),
            listings_matched: decided.listings_matched,
            endpoints: read.into_iter().map(endpoint).collect(),
            endpoint: None,
        };
        Ok(Listed {
            decided,
            source,
            unavailable,
        })
    }

    /// The listing of a decision whose media Veriff no longer has: nothing, from the
    /// listing the configured mode reads first.
    fn empty_listing(&self) -> DecidedListing {
        DecidedListing {
            media: MediaList::default(),
            listing: match self.config.archive.media_source {
                MediaSource::Attempt => Listing::Attempt,
                MediaSource::Combined | MediaSource::Session => Listing::Session,
            },
            listings_matched: None,
            later_attempt: Vec::new(),
        }
    }
}

/// The request a listing is, named for operators.
fn listing_name(listing: Listing) -> &'static str {
    match listing {
        Listing::Session => "session media metadata",
        Listing::Attempt => "attempt media metadata",
    }
}
