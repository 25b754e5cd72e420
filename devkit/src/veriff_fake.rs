//! A faithful fake of the Veriff public API, served over HTTP on loopback.
//!
//! [`FakeVeriff`] implements the endpoints the archiver calls
//! (`GET /v1/sessions/{id}/media`, `GET /v1/attempts/{id}/media`,
//! `GET /v1/sessions/{id}/attempts`, `GET /v1/media/{id}`), the decision-polling
//! endpoint `GET /v1/sessions/{id}/decision`, and `DELETE /v1/sessions/{id}` (which makes
//! the session, its attempts and their media unavailable at once, as Veriff documents),
//! with Veriff's authentication rules and error bodies (see `CONTRACT.md` section 2):
//!
//! 1. `X-AUTH-CLIENT` must equal the API key (missing: 401 code `1801`, other: `1803`).
//! 2. `X-HMAC-SIGNATURE` must be 64 hex characters (else 401 `1812`) and, for GET, the
//!    HMAC-SHA256 of the path's `{id}` segment under any configured secret (else `1818`);
//!    the same for DELETE; for other methods, of the raw body (else `1819`). GETs on unknown routes are answered
//!    404 after the header checks: there is no id to verify.
//! 3. Injected [`Fault`]s are applied (after authentication: a bad request stays a 401).
//! 4. Unknown ids answer 404 `{"status":"fail","code":"1101","message":"Resource not found"}`.
//!
//! Every response carries `X-AUTH-CLIENT` and `X-HMAC-SIGNATURE` (HMAC of the exact body with
//! the first secret), except media downloads: those are signed only with
//! [`FakeConfig::sign_media`] and in-memory ([`MediaContent::Bytes`]) content. Metadata bodies
//! are served byte for byte as registered. Every request is recorded
//! ([`FakeVeriff::requests`]). The fake never makes outbound requests.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use tokio::net::TcpListener;

use crate::fixtures::{deterministic_sha256_hex, fill_deterministic};
use crate::server::ServerTask;
use crate::signing::{hmac_sha256_hex, hmac_sha256_verify, sha256_hex};

/// Size of the chunks streamed for generated or faulted bodies.
pub const STREAM_CHUNK: usize = 64 * 1024;

/// Largest request body the fake reads (only non-GET requests have one).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Configuration of a [`FakeVeriff`].
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The integration's API key, expected in `X-AUTH-CLIENT` and echoed in responses.
    pub api_key: String,
    /// Accepted shared secrets (a request signed with any of them is accepted);
    /// responses are signed with `secrets[0]`. Must not be empty.
    pub secrets: Vec<String>,
    /// Sign `GET /v1/media/{id}` responses whose body is in memory
    /// ([`MediaContent::Bytes`]). Veriff does not document media signatures.
    pub sign_media: bool,
}

impl FakeConfig {
    /// One API key, one secret, unsigned media.
    #[must_use]
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        FakeConfig {
            api_key: api_key.into(),
            secrets: vec![secret.into()],
            sign_media: false,
        }
    }
}

/// The content served by `GET /v1/media/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaContent {
    /// Exactly these bytes.
    Bytes {
        /// The file's bytes.
        data: Bytes,
        /// Served as `Content-Type`.
        mimetype: String,
    },
    /// `deterministic_bytes(seed, len)`, streamed in 64 KiB chunks without ever being held
    /// in memory (for large videos and benchmarks). Never signed.
    Generated {
        /// Length in bytes (sent as `Content-Length`).
        len: u64,
        /// Seed of [`deterministic_bytes`](crate::deterministic_bytes).
        seed: u64,
        /// Served as `Content-Type`.
        mimetype: String,
    },
}

impl MediaContent {
    /// In-memory content.
    #[must_use]
    pub fn bytes(data: impl Into<Bytes>, mimetype: impl Into<String>) -> Self {
        MediaContent::Bytes {
            data: data.into(),
            mimetype: mimetype.into(),
        }
    }

    /// Generated, streamed content.
    #[must_use]
    pub fn generated(len: u64, seed: u64, mimetype: impl Into<String>) -> Self {
        MediaContent::Generated {
            len,
            seed,
            mimetype: mimetype.into(),
        }
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            MediaContent::Bytes { data, .. } => data.len() as u64,
            MediaContent::Generated { len, .. } => *len,
        }
    }

    /// Whether the content is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mimetype served as `Content-Type`.
    #[must_use]
    pub fn mimetype(&self) -> &str {
        match self {
            MediaContent::Bytes { mimetype, .. } | MediaContent::Generated { mimetype, .. } => {
                mimetype
            }
        }
    }

    /// Lowercase hex SHA-256 of the content (streamed for generated content).
    #[must_use]
    pub fn sha256_hex(&self) -> String {
        match self {
            MediaContent::Bytes { data, .. } => sha256_hex(data),
            MediaContent::Generated { len, seed, .. } => deterministic_sha256_hex(*seed, *len),
        }
    }
}

/// A fault to inject into matching requests (see [`FakeVeriff::inject`]).
#[derive(Clone, Debug)]
pub struct Fault {
    /// Exact request path (e.g. `/v1/media/abc`), or `"*"` for any path.
    pub path: String,
    /// What to do.
    pub kind: FaultKind,
    /// Applies to the next `times` matching (authenticated) requests.
    pub times: usize,
}

impl Fault {
    /// A fault for the next `times` requests to `path` (`"*"` = any path).
    #[must_use]
    pub fn new(path: impl Into<String>, kind: FaultKind, times: usize) -> Self {
        Fault {
            path: path.into(),
            kind,
            times,
        }
    }
}

/// The kinds of [`Fault`].
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Delay before answering; the request otherwise succeeds.
    Latency(Duration),
    /// Answer with this status and the Veriff error body
    /// `{"status":"fail","code":"1101","message":"Something went wrong"}` (signed).
    Status(u16),
    /// 429 with a `Retry-After: <retry_after_secs>` header and a Veriff error body.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// Send the correct `Content-Length` (and signature) but only the first `after` bytes of
    /// the body, then break the connection. `after` should be smaller than the body: with
    /// `after >= len` the whole body is sent and the client may not notice anything.
    Truncate {
        /// Bytes sent before the connection breaks.
        after: u64,
    },
    /// Like [`FaultKind::Truncate`] but without `Content-Length` (chunked encoding): `after`
    /// bytes, then the connection breaks without the terminating chunk.
    ResetMidBody {
        /// Bytes sent before the connection breaks.
        after: u64,
    },
    /// The correct body with an `X-HMAC-SIGNATURE` computed over different bytes (also on
    /// responses that would otherwise be unsigned, i.e. media downloads).
    WrongSignature,
    /// The normal answer (status and body) without any `X-HMAC-SIGNATURE` header, also on
    /// metadata responses, which Veriff always signs.
    Unsigned,
    /// Replace the body with these bytes (garbage, oversized JSON...), correctly signed
    /// (media: signed only when [`FakeConfig::sign_media`]).
    Body(Bytes),
}

/// One request seen by the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Request path (without query string).
    pub path: String,
    /// Status code answered; 0 while unanswered (or when the client gave up first).
    pub status: u16,
    /// Whether the request passed authentication.
    pub auth_ok: bool,
}

/// A running Veriff API fake on loopback. See the [module docs](self).
#[derive(Debug)]
pub struct FakeVeriff {
    shared: Arc<Shared>,
    server: ServerTask,
}

#[derive(Debug)]
struct Shared {
    config: FakeConfig,
    state: Mutex<FakeState>,
    /// Media bodies being sent now, and the most at once since the last reset.
    media_in_flight: std::sync::atomic::AtomicUsize,
    max_media_in_flight: std::sync::atomic::AtomicUsize,
    /// Bytes of media bodies handed to the connection so far.
    media_bytes_sent: std::sync::atomic::AtomicU64,
}

/// Counts one media body in flight while it lives (see [`FakeVeriff::max_media_in_flight`]).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: Arc<Shared>) -> InFlight {
        use std::sync::atomic::Ordering;
        let now = shared.media_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_media_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .media_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Debug, Default)]
struct FakeState {
    session_media: HashMap<String, Bytes>,
    attempt_media: HashMap<String, Bytes>,
    session_attempts: HashMap<String, Bytes>,
    session_decisions: HashMap<String, Bytes>,
    media: HashMap<String, MediaContent>,
    faults: Vec<Fault>,
    latency: Duration,
    /// Per-stream bandwidth of media bodies, in bytes per second (`None`: unlimited).
    download_bandwidth: Option<u64>,
    requests: Vec<RecordedRequest>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FakeState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test double: keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl FakeVeriff {
    /// Starts the fake on `127.0.0.1` with an ephemeral port.
    ///
    /// # Errors
    /// Binding fails, or `config.secrets` is empty.
    pub async fn start(config: FakeConfig) -> io::Result<FakeVeriff> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts the fake on `addr`.
    ///
    /// # Errors
    /// Binding fails, or `config.secrets` is empty.
    pub async fn start_on(config: FakeConfig, addr: SocketAddr) -> io::Result<FakeVeriff> {
        if config.secrets.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "FakeConfig::secrets must contain at least one secret",
            ));
        }
        HeaderValue::from_str(&config.api_key).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "FakeConfig::api_key is not a valid header value",
            )
        })?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(FakeState::default()),
            media_in_flight: std::sync::atomic::AtomicUsize::new(0),
            max_media_in_flight: std::sync::atomic::AtomicUsize::new(0),
            media_bytes_sent: std::sync::atomic::AtomicU64::new(0),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind(addr).await?;
        let server = ServerTask::serve_router(listener, router)?;
        Ok(FakeVeriff { shared, server })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The configuration the fake was started with.
    #[must_use]
    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// Serves `body` verbatim (exact bytes) for `GET /v1/sessions/{session_id}/media`.
    pub fn set_session_media(&self, session_id: &str, body: impl Into<String>) {
        let body = Bytes::from(body.into());
        self.shared
            .state()
            .session_media
            .insert(session_id.to_owned(), body);
    }

    /// Serves `body` verbatim for `GET /v1/attempts/{attempt_id}/media`.
    pub fn set_attempt_media(&self, attempt_id: &str, body: impl Into<String>) {
        let body = Bytes::from(body.into());
        self.shared
            .state()
            .attempt_media
            .insert(attempt_id.to_owned(), body);
    }

    /// Serves `body` verbatim for `GET /v1/sessions/{session_id}/attempts`.
    pub fn set_session_attempts(&self, session_id: &str, body: impl Into<String>) {
        let body = Bytes::from(body.into());
        self.shared
            .state()
            .session_attempts
            .insert(session_id.to_owned(), body);
    }

    /// Serves `body` verbatim for `GET /v1/sessions/{session_id}/decision`, e.g. a decision
    /// webhook body (`{"status":"success","verification":{...},...}`) or
    /// [`PENDING_DECISION`](crate::fixtures::PENDING_DECISION) while no decision exists.
    pub fn set_session_decision(&self, session_id: &str, body: impl Into<String>) {
        let body = Bytes::from(body.into());
        self.shared
            .state()
            .session_decisions
            .insert(session_id.to_owned(), body);
    }

    /// Serves `content` for `GET /v1/media/{media_id}`.
    pub fn set_media(&self, media_id: &str, content: MediaContent) {
        self.shared
            .state()
            .media
            .insert(media_id.to_owned(), content);
    }

    /// Removes every registered session, attempt, decision and media (faults and the request
    /// log stay).
    pub fn clear_resources(&self) {
        let mut state = self.shared.state();
        state.session_media.clear();
        state.attempt_media.clear();
        state.session_attempts.clear();
        state.session_decisions.clear();
        state.media.clear();
    }

    /// Adds a fault. Faults are checked in injection order; the first one matching the path
    /// with `times > 0` is applied and decremented.
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.shared.state().faults.push(fault);
        }
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.shared.state().faults.clear();
    }

    /// Caps each media download at `bytes_per_second` (one stream's bandwidth over the
    /// internet, for benchmarks); `None` removes the cap.
    pub fn set_download_bandwidth(&self, bytes_per_second: Option<u64>) {
        self.shared.state().download_bandwidth = bytes_per_second.filter(|b| *b > 0);
    }

    /// The most media bodies sent at once since the fake started (or since
    /// [`FakeVeriff::reset_requests`]).
    #[must_use]
    pub fn max_media_in_flight(&self) -> usize {
        self.shared
            .max_media_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Bytes of media bodies the fake has handed to its connections so far (how far the
    /// client has read, up to the sockets' buffers).
    #[must_use]
    pub fn media_bytes_sent(&self) -> u64 {
        self.shared
            .media_bytes_sent
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Delay added to every request (e.g. to model network latency in benchmarks).
    pub fn set_latency(&self, per_request: Duration) {
        self.shared.state().latency = per_request;
    }

    /// Every request seen so far, in arrival order (rejected ones included).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// How many requests hit exactly `path`.
    #[must_use]
    pub fn count(&self, path: &str) -> usize {
        self.shared
            .state()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Clears the request log.
    pub fn reset_requests(&self) {
        self.shared.state().requests.clear();
        self.shared.max_media_in_flight.store(
            self.shared
                .media_in_flight
                .load(std::sync::atomic::Ordering::SeqCst),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Stops accepting, closes all connections (also mid-response) and waits for that.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A recognised API route and its `{id}` path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route<'a> {
    Session(&'a str),
    SessionMedia(&'a str),
    SessionAttempts(&'a str),
    SessionDecision(&'a str),
    AttemptMedia(&'a str),
    Media(&'a str),
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        let rest = path.strip_prefix("/v1/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        let route = match segments.as_slice() {
            ["sessions", id] => Route::Session(id),
            ["sessions", id, "media"] => Route::SessionMedia(id),
            ["sessions", id, "attempts"] => Route::SessionAttempts(id),
            ["sessions", id, "decision"] => Route::SessionDecision(id),
            ["attempts", id, "media"] => Route::AttemptMedia(id),
            ["media", id] => Route::Media(id),
            _ => return None,
        };
        (!route.id().is_empty()).then_some(route)
    }

    fn id(self) -> &'a str {
        match self {
            Route::Session(id)
            | Route::SessionMedia(id)
            | Route::SessionAttempts(id)
            | Route::SessionDecision(id)
            | Route::AttemptMedia(id)
            | Route::Media(id) => id,
        }
    }
}

/// Where the response body comes from.
#[derive(Clone, Debug)]
enum Payload {
    Bytes(Bytes),
    Generated { len: u64, seed: u64 },
}

impl Payload {
    fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Generated { len, .. } => *len,
        }
    }

    fn chunk(&self, offset: u64, len: usize) -> Bytes {
        match self {
            Payload::Bytes(b) => {
                // offset + len <= b.len() by construction, so both fit in usize.
                let start = usize::try_from(offset).unwrap_or(b.len());
                b.slice(start..start + len)
            }
            Payload::Generated { seed, .. } => {
                let mut buf = vec![0_u8; len];
                fill_deterministic(*seed, offset, &mut buf);
                Bytes::from(buf)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signature {
    Correct,
    Wrong,
    Unsigned,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Whole,
    Truncate(u64),
    Reset(u64),
}

/// A response before it is turned into HTTP.
#[derive(Debug)]
struct Plan {
    status: StatusCode,
    content_type: String,
    payload: Payload,
    signature: Signature,
    delivery: Delivery,
    retry_after: Option<u64>,
    is_media: bool,
}

impl Plan {
    fn json(status: StatusCode, body: Bytes) -> Plan {
        Plan {
            status,
            content_type: "application/json".to_owned(),
            payload: Payload::Bytes(body),
            signature: Signature::Correct,
            delivery: Delivery::Whole,
            retry_after: None,
            is_media: false,
        }
    }

    fn error(status: StatusCode, code: &str, message: &str) -> Plan {
        let body = serde_json::json!({ "status": "fail", "code": code, "message": message });
        Plan::json(status, Bytes::from(body.to_string()))
    }

    fn not_found() -> Plan {
        Plan::error(StatusCode::NOT_FOUND, "1101", "Resource not found")
    }

    fn media(content: &MediaContent, sign_media: bool) -> Plan {
        let (payload, signature) = match content {
            MediaContent::Bytes { data, .. } => (
                Payload::Bytes(data.clone()),
                if sign_media {
                    Signature::Correct
                } else {
                    Signature::Unsigned
                },
            ),
            MediaContent::Generated { len, seed, .. } => (
                Payload::Generated {
                    len: *len,
                    seed: *seed,
                },
                Signature::Unsigned,
            ),
        };
        Plan {
            status: StatusCode::OK,
            content_type: content.mimetype().to_owned(),
            payload,
            signature,
            delivery: Delivery::Whole,
            retry_after: None,
            is_media: true,
        }
    }
}

/// Why authentication failed: a Veriff error code and message.
#[derive(Debug, PartialEq, Eq)]
struct AuthError {
    code: &'static str,
    message: &'static str,
}

fn authenticate(
    config: &FakeConfig,
    headers: &HeaderMap,
    method: &Method,
    route: Option<Route<'_>>,
    body: &[u8],
) -> Result<(), AuthError> {
    match headers.get("x-auth-client") {
        None => {
            return Err(AuthError {
                code: "1801",
                message: "Mandatory X-AUTH-CLIENT header containing the API key is missing from the request.",
            });
        }
        Some(key) if key.as_bytes() != config.api_key.as_bytes() => {
            return Err(AuthError {
                code: "1803",
                message: "Integration with the API key was not found.",
            });
        }
        Some(_) => {}
    }
    let signature = headers
        .get("x-hmac-signature")
        .map(HeaderValue::as_bytes)
        .filter(|s| s.len() == 64)
        .and_then(|s| hex::decode(s).ok())
        .ok_or(AuthError {
            code: "1812",
            message: "Signature is not a valid SHA256 hex digest.",
        })?;
    let verify = |data: &[u8]| {
        config
            .secrets
            .iter()
            .any(|secret| hmac_sha256_verify(secret.as_bytes(), data, &signature))
    };
    // GET and DELETE sign the resource id; POST and PATCH their body.
    if method == Method::GET || method == Method::DELETE {
        match route {
            Some(route) if !verify(route.id().as_bytes()) => Err(AuthError {
                code: "1818",
                message: "Signature does not match the SHA256 HMAC of the resource id signed with the shared secret key.",
            }),
            // Unknown route: there is no id to check; it is answered 404.
            _ => Ok(()),
        }
    } else if verify(body) {
        Ok(())
    } else {
        Err(AuthError {
            code: "1819",
            message: "Signature does not match the SHA256 HMAC of the request body signed with the shared secret key.",
        })
    }
}

/// Takes the first applicable fault for `path`, decrementing (and dropping spent) faults.
fn take_fault(state: &mut FakeState, path: &str) -> Option<FaultKind> {
    let index = state
        .faults
        .iter()
        .position(|f| f.times > 0 && (f.path == "*" || f.path == path))?;
    let fault = &mut state.faults[index];
    fault.times -= 1;
    let kind = fault.kind.clone();
    if fault.times == 0 {
        state.faults.remove(index);
    }
    Some(kind)
}

fn route_plan(shared: &Shared, method: &Method, route: Option<Route<'_>>) -> Plan {
    let Some(route) = route else {
        return Plan::not_found();
    };
    if let (Route::Session(id), &Method::DELETE) = (route, method) {
        return delete_session(&mut shared.state(), id);
    }
    if method != Method::GET || matches!(route, Route::Session(_)) {
        return Plan::error(StatusCode::METHOD_NOT_ALLOWED, "1101", "Method not allowed");
    }
    let state = shared.state();
    let json = |map: &HashMap<String, Bytes>, id: &str| {
        map.get(id)
            .map_or_else(Plan::not_found, |b| Plan::json(StatusCode::OK, b.clone()))
    };
    match route {
        Route::SessionMedia(id) => json(&state.session_media, id),
        Route::SessionAttempts(id) => json(&state.session_attempts, id),
        Route::SessionDecision(id) => json(&state.session_decisions, id),
        Route::AttemptMedia(id) => json(&state.attempt_media, id),
        Route::Media(id) => state.media.get(id).map_or_else(Plan::not_found, |c| {
            Plan::media(c, shared.config.sign_media)
        }),
        Route::Session(_) => unreachable!("answered above"),
    }
}

/// `DELETE /v1/sessions/{id}`: the session becomes unavailable through every endpoint at
/// once (Veriff: "immediately ... unavailable ... via public API endpoints"; its data is
/// gone within 12 hours). Its attempts are those of its attempts listing, its media those
/// of its listings. An unknown session is a 404. Veriff then sends an `expired` or
/// `abandoned` decision for a session that was still created or started: the fake never
/// makes outbound requests, so tests deliver that webhook themselves.
fn delete_session(state: &mut FakeState, id: &str) -> Plan {
    let known = state.session_media.contains_key(id)
        || state.session_attempts.contains_key(id)
        || state.session_decisions.contains_key(id);
    if !known {
        return Plan::not_found();
    }
    let attempts: Vec<String> = state
        .session_attempts
        .get(id)
        .map(|body| listed_ids(body, "verifications"))
        .unwrap_or_default();
    let mut listings: Vec<Bytes> = state.session_media.remove(id).into_iter().collect();
    for attempt in &attempts {
        listings.extend(state.attempt_media.remove(attempt));
    }
    for listing in &listings {
        for field in ["images", "videos", "nfcDocuments"] {
            for media in listed_ids(listing, field) {
                state.media.remove(&media);
            }
        }
    }
    state.session_attempts.remove(id);
    state.session_decisions.remove(id);
    Plan::json(
        StatusCode::OK,
        Bytes::from_static(br#"{"status":"success","message":"Session is deleted"}"#),
    )
}

/// The `id`s of the objects in the array `field` of a JSON document (none when it is not
/// one).
fn listed_ids(body: &[u8], field: &str) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|doc| doc.get(field).and_then(|a| a.as_array()).cloned())
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("id").and_then(|id| id.as_str()).map(str::to_owned))
        .collect()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method;
    let path = parts.uri.path().to_owned();
    // Recorded on arrival, so a request whose client gave up (a timeout) is still counted;
    // its status stays 0 ("no answer sent") unless the handler finishes.
    let slot = {
        let mut state = shared.state();
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            status: 0,
            auth_ok: false,
        });
        state.requests.len() - 1
    };
    let latency = shared.state().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let route = Route::parse(&path);

    let (plan, auth_ok) = if method == Method::GET {
        decide(&shared, &parts.headers, &method, route, &path, b"").await
    } else {
        match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
            Ok(body) => decide(&shared, &parts.headers, &method, route, &path, &body).await,
            Err(_) => (
                Plan::error(StatusCode::BAD_REQUEST, "1101", "Validation failed"),
                false,
            ),
        }
    };

    if let Some(recorded) = shared
        .state()
        .requests
        .get_mut(slot)
        .filter(|r| r.path == path)
    {
        recorded.status = plan.status.as_u16();
        recorded.auth_ok = auth_ok;
    }
    // Media bodies are streamed (paced, with a bandwidth cap) and counted while in flight.
    let pacing = if plan.is_media && plan.status == StatusCode::OK {
        let bandwidth = shared.state().download_bandwidth;
        Some((InFlight::new(shared.clone()), bandwidth))
    } else {
        None
    };
    into_response(plan, &shared.config, pacing)
}

/// Authenticates, applies faults and routes. Returns the plan and whether auth passed.
async fn decide(
    shared: &Shared,
    headers: &HeaderMap,
    method: &Method,
    route: Option<Route<'_>>,
    path: &str,
    body: &[u8],
) -> (Plan, bool) {
    if let Err(err) = authenticate(&shared.config, headers, method, route, body) {
        return (
            Plan::error(StatusCode::UNAUTHORIZED, err.code, err.message),
            false,
        );
    }
    let fault = take_fault(&mut shared.state(), path);
    let plan = match fault {
        None => route_plan(shared, method, route),
        Some(FaultKind::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            route_plan(shared, method, route)
        }
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Plan::error(status, "1101", "Something went wrong")
        }
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            let mut plan = Plan::error(StatusCode::TOO_MANY_REQUESTS, "1101", "Too many requests");
            plan.retry_after = Some(retry_after_secs);
            plan
        }
        Some(FaultKind::Truncate { after }) => {
            let mut plan = route_plan(shared, method, route);
            plan.delivery = Delivery::Truncate(after);
            plan
        }
        Some(FaultKind::ResetMidBody { after }) => {
            let mut plan = route_plan(shared, method, route);
            plan.delivery = Delivery::Reset(after);
            plan
        }
        Some(FaultKind::WrongSignature) => {
            let mut plan = route_plan(shared, method, route);
            plan.signature = Signature::Wrong;
            plan
        }
        Some(FaultKind::Unsigned) => {
            let mut plan = route_plan(shared, method, route);
            plan.signature = Signature::Unsigned;
            plan
        }
        Some(FaultKind::Body(bytes)) => {
            let mut plan = route_plan(shared, method, route);
            plan.payload = Payload::Bytes(bytes);
            if plan.is_media {
                plan.signature = if shared.config.sign_media {
                    Signature::Correct
                } else {
                    Signature::Unsigned
                };
            }
            plan
        }
    };
    (plan, true)
}

fn into_response(
    plan: Plan,
    config: &FakeConfig,
    pacing: Option<(InFlight, Option<u64>)>,
) -> Response {
    let secret = config.secrets[0].as_bytes();
    let signature = match (plan.signature, &plan.payload) {
        (Signature::Correct, Payload::Bytes(b)) => Some(hmac_sha256_hex(secret, b)),
        (Signature::Wrong, Payload::Bytes(b)) => {
            Some(hmac_sha256_hex(secret, &[&b[..], b"\0tampered"].concat()))
        }
        (Signature::Wrong, Payload::Generated { .. }) => Some(hmac_sha256_hex(secret, b"tampered")),
        (Signature::Correct | Signature::Unsigned, _) => None,
    };

    let total = plan.payload.len();
    let (body, content_length) = match (plan.delivery, plan.payload, pacing) {
        (Delivery::Whole, Payload::Bytes(b), None) => (Body::from(b), Some(total)),
        (Delivery::Whole, payload, pacing) => (
            Body::from_stream(body_stream(payload, total, false, pacing)),
            Some(total),
        ),
        (Delivery::Truncate(after), payload, pacing) => (
            Body::from_stream(body_stream(payload, after.min(total), true, pacing)),
            Some(total),
        ),
        (Delivery::Reset(after), payload, pacing) => (
            Body::from_stream(body_stream(payload, after.min(total), true, pacing)),
            None,
        ),
    };

    let mut response = Response::new(body);
    *response.status_mut() = plan.status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&plan.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Some(len) = content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(v) = HeaderValue::from_str(&config.api_key) {
        headers.insert("x-auth-client", v);
    }
    if let Some(sig) = signature.and_then(|s| HeaderValue::from_str(&s).ok()) {
        headers.insert("x-hmac-signature", sig);
    }
    if let Some(secs) = plan.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Streams `payload[..end]` in [`STREAM_CHUNK`] pieces; with `fail`, then yields an error
/// (which makes hyper abort the connection). With `pacing`, the stream counts as a media
/// body in flight until it ends or is dropped, and is held to the bandwidth cap, if any.
fn body_stream(
    payload: Payload,
    end: u64,
    fail: bool,
    pacing: Option<(InFlight, Option<u64>)>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let started = tokio::time::Instant::now();
    let (guard, bandwidth) = match pacing {
        Some((guard, bandwidth)) => (Some(guard), bandwidth),
        None => (None, None),
    };
    let guard = Arc::new(Mutex::new(guard));
    futures_util::stream::unfold((payload, 0_u64, false), move |(payload, pos, done)| {
        let guard = guard.clone();
        async move {
            if let Some(rate) = bandwidth {
                // The time by which `pos` bytes may have been sent at `rate`.
                let due = started + Duration::from_secs_f64(pos as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
            }
            if pos >= end && !fail {
                // The body is complete: no longer in flight.
                guard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
            }
            if done {
                return None;
            }
            if pos >= end {
                if !fail {
                    return None;
                }
                // Give hyper a chance to flush what was sent before the connection breaks.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let err = io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "fault injection: connection broken mid-body",
                );
                return Some((Err(err), (payload, pos, true)));
            }
            let n = usize::try_from((end - pos).min(STREAM_CHUNK as u64)).unwrap_or(STREAM_CHUNK);
            let chunk = payload.chunk(pos, n);
            if let Some(counted) = guard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
            {
                counted
                    .0
                    .media_bytes_sent
                    .fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
            }
            Some((Ok(chunk), (payload, pos + n as u64, false)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        assert_eq!(
            Route::parse("/v1/sessions/abc/media"),
            Some(Route::SessionMedia("abc"))
        );
        assert_eq!(
            Route::parse("/v1/sessions/abc/attempts"),
            Some(Route::SessionAttempts("abc"))
        );
        assert_eq!(
            Route::parse("/v1/sessions/abc/decision"),
            Some(Route::SessionDecision("abc"))
        );
        assert_eq!(
            Route::parse("/v1/attempts/x-1/media"),
            Some(Route::AttemptMedia("x-1"))
        );
        assert_eq!(Route::parse("/v1/media/m"), Some(Route::Media("m")));
        for bad in [
            "/v1/media/",
            "/v1/media",
            "/v1/sessions//media",
            "/v1/sessions/a/media/",
            "/v2/media/m",
            "/v1/media/m/x",
            "/v1/sessions//decision",
            "/v1/attempts/a/decision",
            "/",
        ] {
            assert_eq!(Route::parse(bad), None, "{bad}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn authentication_codes() {
        let config = FakeConfig {
            api_key: "key".into(),
            secrets: vec!["s1".into(), "s2".into()],
            sign_media: false,
        };
        let route = Route::parse("/v1/media/m1");
        let get = Method::GET;
        let code = |h: &HeaderMap, m: &Method, body: &[u8]| {
            authenticate(&config, h, m, route, body)
                .err()
                .map(|e| e.code)
        };
        let good = hmac_sha256_hex(b"s1", b"m1");
        let rotated = hmac_sha256_hex(b"s2", b"m1").to_uppercase();
        assert_eq!(code(&headers(&[]), &get, b""), Some("1801"));
        assert_eq!(
            code(&headers(&[("x-auth-client", "nope")]), &get, b""),
            Some("1803")
        );
        assert_eq!(
            code(&headers(&[("x-auth-client", "key")]), &get, b""),
            Some("1812")
        );
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &good[..63])]),
                &get,
                b""
            ),
            Some("1812")
        );
        let not_hex = format!("{}zz", &good[..62]);
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &not_hex)]),
                &get,
                b""
            ),
            Some("1812")
        );
        let other = hmac_sha256_hex(b"s3", b"m1");
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &other)]),
                &get,
                b""
            ),
            Some("1818")
        );
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &good)]),
                &get,
                b""
            ),
            None
        );
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &rotated)]),
                &get,
                b""
            ),
            None
        );
        let post_sig = hmac_sha256_hex(b"s2", b"{}");
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &post_sig)]),
                &Method::POST,
                b"{}"
            ),
            None
        );
        assert_eq!(
            code(
                &headers(&[("x-auth-client", "key"), ("x-hmac-signature", &post_sig)]),
                &Method::POST,
                b"{ }"
            ),
            Some("1819")
        );
    }

    #[test]
    fn faults_apply_in_order_and_expire() {
        let mut state = FakeState::default();
        state
            .faults
            .push(Fault::new("/a", FaultKind::Status(500), 1));
        state
            .faults
            .push(Fault::new("*", FaultKind::Status(503), 2));
        let code = |k: Option<FaultKind>| match k {
            Some(FaultKind::Status(c)) => Some(c),
            _ => None,
        };
        assert_eq!(code(take_fault(&mut state, "/a")), Some(500));
        assert_eq!(code(take_fault(&mut state, "/a")), Some(503));
        assert_eq!(code(take_fault(&mut state, "/b")), Some(503));
        assert_eq!(code(take_fault(&mut state, "/a")), None);
        assert!(state.faults.is_empty());
    }
}
