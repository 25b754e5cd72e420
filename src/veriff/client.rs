//! HTTP client for the four Veriff endpoints this function uses.
//!
//! Every request carries `X-AUTH-CLIENT` and `X-HMAC-SIGNATURE` (HMAC-SHA256 of the path id
//! with the current shared secret). A response signature is verified over the raw body with
//! any configured secret. Metadata responses (media listings, attempts) must carry one,
//! as Veriff documents, unless `VERIFF_REQUIRE_RESPONSE_SIGNATURE=false`; a download is
//! checked when it carries one (Veriff does not say that downloads are signed). 429, 408, 5xx, timeouts and connection errors
//! are retried by [`crate::retry`]; other statuses fail at once. The client is built once
//! per container and shared by all invocations.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use sha2::Sha256;
use tokio::time::Instant;

use crate::config::VeriffSettings;
use crate::credentials::CredentialsHandle;
use crate::domain::{Decision, SafeId, Secret};
use crate::error::{Error, IntegrityError, UpstreamError, UpstreamProblem};
use crate::media::{AttemptInfo, MediaError, MediaList, parse_attempts};
use crate::retry::{self, Failure, RetryPolicy, parse_retry_after};
use crate::select::Listing;
use crate::veriff::RateLimiter;
use crate::webhook::{SIGNATURE_HEADERS, hmac_hex};
use crate::webhook::{Webhook, classify};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest metadata document accepted.
pub const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;

/// What a signed JSON GET found.
enum Fetched {
    /// The verified body of a 2xx answer.
    Body(Vec<u8>),
    /// An authenticated 404.
    NotFound,
}

/// A client for the Veriff API.
#[derive(Clone)]
pub struct VeriffClient {
    http: reqwest::Client,
    base_url: String,
    /// The API key and shared secrets in force (read per request: a rotation picked up by
    /// a refresh applies to the next request).
    credentials: CredentialsHandle,
    /// Retries of Veriff requests and of whole media downloads, since the client was built.
    retries: Arc<AtomicU64>,
    request_timeout: Duration,
    retry: RetryPolicy,
    require_signature: bool,
    limiter: Option<Arc<RateLimiter>>,
}

impl std::fmt::Debug for VeriffClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VeriffClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl VeriffClient {
    /// Builds the client (connection pool, TLS) from the configuration, signing with the
    /// credentials in force in `credentials`.
    pub fn new(
        config: &VeriffSettings,
        credentials: CredentialsHandle,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .read_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()?;
        Ok(VeriffClient {
            http,
            base_url: config.api_url.clone(),
            credentials,
            retries: Arc::new(AtomicU64::new(0)),
            request_timeout: config.timeout,
            retry: RetryPolicy {
                max_attempts: config.max_attempts,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(5),
            },
            require_signature: config.require_response_signature,
            limiter: None,
        })
    }

    /// Caps every request of this client (and its clones) with `limiter`.
    pub fn with_rate_limit(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Retries of Veriff requests (and of whole media copies) so far, by this client and
    /// its clones.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Counts one retry (see [`VeriffClient::retries`]).
    pub fn note_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits for the rate limit, if there is one.
    async fn pace(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
    }

    /// `GET /v1/sessions/{id}/decision`, Veriff's answer for polling when webhook delivery
    /// fails: the session's decision, or `None` while it has none (`verification` null or
    /// without a status). Only the non-personal fields are kept, as for a webhook.
    pub async fn decision(
        &self,
        session_id: &SafeId,
        deadline: Instant,
    ) -> Result<Option<Decision>, Error> {
        let what = "session decision";
        let body = self
            .get_signed_json("sessions", session_id, "/decision", what, deadline)
            .await?;
        match classify(&body) {
            Ok(Webhook::Decision(decision)) if decision.session_id == *session_id => {
                Ok(Some(decision))
            }
            Ok(Webhook::Decision(_)) => Err(Error::upstream(what, UpstreamProblem::OtherSession)),
            Ok(Webhook::Other(_)) => Ok(None),
            Err(e) => {
                Err(
                    UpstreamError::caused_by(what, UpstreamProblem::Unreadable(e.to_string()), e)
                        .into(),
                )
            }
        }
    }

    /// The retry policy used for Veriff calls (and for whole-file copies).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// `GET /v1/<collection>/<id>[/<tail>]`, signed with the current secret over `id`.
    fn signed_get(
        &self,
        collection: &str,
        id: &SafeId,
        tail: &str,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let credentials = self.credentials.current();
        let secret = credentials
            .signing_secret()
            .ok_or_else(|| Error::upstream("Veriff request", UpstreamProblem::NoCredentials))?;
        let url = format!("{}/v1/{collection}/{id}{tail}", self.base_url);
        Ok(self
            .http
            .get(url)
            .header("X-AUTH-CLIENT", credentials.api_key.expose())
            .header(
                "X-HMAC-SIGNATURE",
                hmac_hex(secret.expose().as_bytes(), id.as_bytes()),
            ))
    }

    /// The request line of a listing, as the manifest records it.
    pub fn listing_endpoint(listing: Listing, id: &SafeId) -> String {
        match listing {
            Listing::Session => format!("GET /v1/sessions/{id}/media"),
            Listing::Attempt => format!("GET /v1/attempts/{id}/media"),
        }
    }

    /// Fetches and verifies one media listing: the session's (`id` is the session id) or
    /// the attempt's (`id` is the attempt id).
    ///
    /// `Ok(None)` when Veriff answers an authenticated 404 (a signed answer of Veriff's own;
    /// unsigned, it counts only with `VERIFF_REQUIRE_RESPONSE_SIGNATURE=false`): the session
    /// was deleted, or its media are past Veriff's retention.
    pub async fn media_listing(
        &self,
        listing: Listing,
        id: &SafeId,
        deadline: Instant,
    ) -> Result<Option<MediaList>, Error> {
        let (collection, what) = match listing {
            Listing::Session => ("sessions", "session media metadata"),
            Listing::Attempt => ("attempts", "attempt media metadata"),
        };
        match self
            .fetch_signed_json(collection, id, "/media", what, deadline)
            .await?
        {
            Fetched::Body(body) => MediaList::parse(&body)
                .map(Some)
                .map_err(|e| unreadable(what, e)),
            Fetched::NotFound => Ok(None),
        }
    }

    /// Fetches and verifies `GET /v1/sessions/{id}/attempts`.
    pub async fn attempts(
        &self,
        session_id: &SafeId,
        deadline: Instant,
    ) -> Result<Vec<AttemptInfo>, Error> {
        let what = "session attempts";
        let body = self
            .get_signed_json("sessions", session_id, "/attempts", what, deadline)
            .await?;
        parse_attempts(&body).map_err(|e| unreadable(what, e))
    }

    /// A JSON GET with retries, a size limit and the response signature checked (and
    /// required, unless configured otherwise). An authenticated 404 is an error here.
    async fn get_signed_json(
        &self,
        collection: &str,
        id: &SafeId,
        tail: &str,
        what: &'static str,
        deadline: Instant,
    ) -> Result<Vec<u8>, Error> {
        match self
            .fetch_signed_json(collection, id, tail, what, deadline)
            .await?
        {
            Fetched::Body(body) => Ok(body),
            Fetched::NotFound => Err(Error::upstream(
                what,
                UpstreamProblem::Status {
                    status: 404,
                    veriff_code: None,
                },
            )),
        }
    }

    /// Like [`VeriffClient::get_signed_json`], telling an authenticated 404 apart: a 404
    /// whose body carries Veriff's valid response signature (or any 404 when signatures are
    /// not required). An unsigned or wrongly signed 404 fails like any other 4xx.
    async fn fetch_signed_json(
        &self,
        collection: &str,
        id: &SafeId,
        tail: &str,
        what: &'static str,
        deadline: Instant,
    ) -> Result<Fetched, Error> {
        retry::run(self.retry, deadline, |attempt| async move {
            if attempt > 1 {
                self.note_retry();
            }
            self.pace().await;
            let request = self
                .signed_get(collection, id, tail)
                .map_err(Failure::permanent)?
                .header("Accept", "application/json")
                .timeout(self.request_timeout);
            let response = request
                .send()
                .await
                .map_err(|e| transport_failure(what, e))?;
            if response.status() == StatusCode::NOT_FOUND {
                return self.authenticated_not_found(what, response).await;
            }
            let response = check_status(what, response).await?;
            let body = self.read_signed(what, response, MAX_METADATA_BYTES).await?;
            Ok(Fetched::Body(body))
        })
        .await
    }

    /// A 404's answer: [`Fetched::NotFound`] when Veriff signed it (or signatures are not
    /// required), else the usual 4xx failure.
    async fn authenticated_not_found(
        &self,
        what: &'static str,
        response: Response,
    ) -> Result<Fetched, Failure> {
        match self.read_signed(what, response, 4096).await {
            Ok(_) => Ok(Fetched::NotFound),
            Err(failure) if failure.retryable => Err(failure),
            Err(failure) => Err(Failure::permanent(
                UpstreamError::caused_by(what, UpstreamProblem::UnsignedNotFound, failure.error)
                    .into(),
            )),
        }
    }

    /// Reads a response body of at most `limit` bytes and checks its signature (required
    /// unless configured otherwise).
    async fn read_signed(
        &self,
        what: &'static str,
        response: Response,
        limit: usize,
    ) -> Result<Vec<u8>, Failure> {
        let mut signature = BodySignature::from_headers(
            response.headers(),
            &self.credentials.current().shared_secrets,
        )
        .map_err(Failure::permanent)?;
        if self.require_signature {
            signature.require(what).map_err(Failure::permanent)?;
        }
        let body = read_limited(what, response, limit).await?;
        signature.update(&body);
        signature.verify(what).map_err(Failure::permanent)?;
        Ok(body)
    }

    /// Opens `GET /v1/media/{id}` for streaming: one attempt, whose failure says whether
    /// it is worth retrying. The caller retries the whole copy (request and body together).
    pub async fn open_media(&self, media_id: &SafeId) -> Result<MediaDownload, Failure> {
        let what = "media download";
        let request = self
            .signed_get("media", media_id, "")
            .map_err(Failure::permanent)?;
        self.pace().await;
        // The client's read timeout bounds each body read, not the wait for the status
        // line: bound that separately, or a server that never answers holds the copy until
        // the invocation's deadline.
        let response = tokio::time::timeout(self.request_timeout, request.send())
            .await
            .map_err(|_| Failure::transient(Error::upstream(what, UpstreamProblem::TimedOut)))?
            .map_err(|e| transport_failure(what, e))?;
        let response = check_status(what, response).await?;
        let signature = BodySignature::from_headers(
            response.headers(),
            &self.credentials.current().shared_secrets,
        )
        .map_err(Failure::permanent)?;
        Ok(MediaDownload {
            content_length: response.content_length(),
            response,
            signature,
        })
    }
}

/// An open media download.
#[derive(Debug)]
pub struct MediaDownload {
    response: Response,
    /// The announced `Content-Length`, if any.
    pub content_length: Option<u64>,
    /// The response signature check, fed as the body streams.
    pub signature: BodySignature,
}

impl MediaDownload {
    /// The next chunk of the body; `None` at its end. A broken stream is a transient failure.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        self.response
            .chunk()
            .await
            .map_err(|e| transport_failure("media download", e))
    }
}

/// Verification of a response's `X-HMAC-SIGNATURE` over its streamed body.
pub struct BodySignature {
    expected: Option<[u8; 32]>,
    macs: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for BodySignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySignature")
            .field("present", &self.expected.is_some())
            .finish()
    }
}

impl BodySignature {
    /// Reads the signature header; an absent header means nothing to verify.
    pub fn from_headers(headers: &HeaderMap, secrets: &[Secret]) -> Result<Self, Error> {
        let value = SIGNATURE_HEADERS.iter().find_map(|name| headers.get(*name));
        let Some(value) = value else {
            return Ok(BodySignature {
                expected: None,
                macs: Vec::new(),
            });
        };
        let mut expected = [0u8; 32];
        value
            .to_str()
            .ok()
            .and_then(|v| hex::decode_to_slice(v.trim(), &mut expected).ok())
            .ok_or(IntegrityError::MalformedSignature)?;
        let macs = secrets
            .iter()
            .map(|s| Hmac::<Sha256>::new_from_slice(s.expose().as_bytes()).expect("any key length"))
            .collect();
        Ok(BodySignature {
            expected: Some(expected),
            macs,
        })
    }

    /// Fails when the response carried no signature at all.
    pub fn require(&self, what: &'static str) -> Result<(), Error> {
        if self.expected.is_none() {
            return Err(IntegrityError::Unsigned { what }.into());
        }
        Ok(())
    }

    /// Feeds body bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        for mac in &mut self.macs {
            mac.update(chunk);
        }
    }

    /// Checks the signature once the whole body was fed (constant-time per secret).
    pub fn verify(&mut self, what: &'static str) -> Result<(), Error> {
        let Some(expected) = self.expected else {
            return Ok(());
        };
        if std::mem::take(&mut self.macs)
            .into_iter()
            .any(|mac| mac.verify_slice(&expected).is_ok())
        {
            Ok(())
        } else {
            Err(IntegrityError::SignatureMismatch { what }.into())
        }
    }
}

/// Maps a non-success status to a failure, retryable for 408, 429 and 5xx.
async fn check_status(what: &'static str, response: Response) -> Result<Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let retryable = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error();
    // Veriff's error body carries a code worth logging (e.g. 1818 = signature mismatch).
    let code = read_limited(what, response, 4096)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| match v.get("code") {
            Some(serde_json::Value::String(s))
                if s.len() <= 8 && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(s.clone())
            }
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
    let problem = UpstreamProblem::Status {
        status: status.as_u16(),
        veriff_code: code,
    };
    Err(Failure {
        error: Error::upstream(what, problem),
        retryable,
        retry_after,
    })
}

/// Reads a whole body, refusing more than `limit` bytes.
async fn read_limited(
    what: &'static str,
    mut response: Response,
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    let too_large =
        || Failure::permanent(Error::upstream(what, UpstreamProblem::TooLarge { limit }));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_failure(what, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error (connect, timeout, broken body): transient, described without the URL.
fn transport_failure(what: &'static str, e: reqwest::Error) -> Failure {
    let problem = if e.is_timeout() {
        UpstreamProblem::TimedOut
    } else if e.is_connect() {
        UpstreamProblem::ConnectionFailed
    } else if e.is_body() || e.is_decode() {
        UpstreamProblem::BodyInterrupted
    } else if e.is_redirect() {
        UpstreamProblem::RedirectRefused
    } else {
        UpstreamProblem::RequestFailed
    };
    // The reqwest error names the URL: kept in the chain, never in the message.
    Failure::transient(UpstreamError::caused_by(what, problem, e).into())
}

/// An answer that does not parse as documented.
fn unreadable(what: &'static str, e: MediaError) -> Error {
    UpstreamError::caused_by(what, UpstreamProblem::Unreadable(e.to_string()), e).into()
}
