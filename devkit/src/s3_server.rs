//! A real S3-compatible server on loopback, backed by a directory (`s3s-fs`).
//!
//! [`LocalS3`] serves the `s3s` service over HTTP/1.1 and HTTP/2 with SigV4 verified
//! against one static key pair (`SimpleAuth`). Buckets are directories directly under the
//! root, objects are files; checksums (`x-amz-checksum-sha256`...), multipart uploads and
//! conditional writes (`If-None-Match: *` answers 412) behave as on AWS. Use path-style
//! addressing (`force_path_style(true)`) and any region.
//!
//! [`S3Fault`]s can be injected to test retries: an injected error is answered with an S3
//! XML error body after the request body has been read, so clients always see the
//! response rather than a broken pipe.
//!
//! Every request is logged as an [`S3Request`] ([`LocalS3::requests`]);
//! [`LocalS3::object_writes`] picks the ones that create an object (`PutObject` and
//! `CompleteMultipartUpload`), e.g. to prove that nothing was written to an existing key.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;

use crate::server::ServerTask;

/// A fault to inject into matching S3 requests (see [`LocalS3::inject`]).
#[derive(Clone, Debug)]
pub struct S3Fault {
    /// HTTP method to match, e.g. `"PUT"` (case-insensitive); `None` matches any request.
    pub method: Option<String>,
    /// What to do.
    pub kind: S3FaultKind,
    /// Applies to the next `times` matching requests.
    pub times: usize,
}

impl S3Fault {
    /// A fault for the next `times` requests with `method` (`None` = any method).
    #[must_use]
    pub fn new(method: Option<&str>, kind: S3FaultKind, times: usize) -> Self {
        S3Fault {
            method: method.map(str::to_owned),
            kind,
            times,
        }
    }
}

/// The kinds of [`S3Fault`].
#[derive(Clone, Debug)]
pub enum S3FaultKind {
    /// Answer with this status and an S3 XML error (500 `InternalError`, 503 `SlowDown`,
    /// 403 `AccessDenied`, 400 `BadRequest`, 404 `NoSuchKey`, 409 `OperationAborted`,
    /// 412 `PreconditionFailed`, anything else `InternalError`). The request does not reach
    /// the store.
    Status(u16),
    /// Delay before handling the request normally.
    Latency(Duration),
}

/// One request received by [`LocalS3`] (see [`LocalS3::requests`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Request {
    /// HTTP method, e.g. `PUT`.
    pub method: String,
    /// URI path as sent (not percent-decoded), e.g. `/bucket/some/key.json`.
    pub path: String,
    /// Raw query string without `?`; empty if none (e.g. `uploadId=...`, `uploads`).
    pub query: String,
    /// The `If-None-Match` header, if sent.
    pub if_none_match: Option<String>,
    /// The `If-Match` header, if sent.
    pub if_match: Option<String>,
    /// The `x-amz-copy-source` header (`CopyObject`, `UploadPartCopy`), if sent.
    pub copy_source: Option<String>,
    /// Status code answered; 0 while unanswered (or if the connection broke first).
    pub status: u16,
}

impl S3Request {
    /// Whether the query string has parameter `name` (with or without a value).
    #[must_use]
    pub fn has_query_param(&self, name: &str) -> bool {
        self.query_param(name).is_some()
    }

    /// The raw (not decoded) value of query parameter `name`; `Some("")` if it has none.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The bucket of a path-style request (`/bucket/...`); `None` for `/`.
    #[must_use]
    pub fn bucket(&self) -> Option<&str> {
        let rest = self.path.strip_prefix('/')?;
        let bucket = rest.split('/').next().unwrap_or_default();
        (!bucket.is_empty()).then_some(bucket)
    }

    /// The object key of a path-style request, as sent (not percent-decoded); `None` for
    /// bucket-level requests.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        let rest = self.path.strip_prefix('/')?;
        let (_, key) = rest.split_once('/')?;
        (!key.is_empty()).then_some(key)
    }

    /// Whether the request creates an object: a `PutObject` (PUT on a key without
    /// `uploadId`, without `x-amz-copy-source` and without a sub-resource such as `?tagging`,
    /// `?acl`, `?retention` or `?legal-hold`) or a `CompleteMultipartUpload` (POST with
    /// `uploadId`). Whether it succeeded is in [`S3Request::status`].
    #[must_use]
    pub fn is_object_write(&self) -> bool {
        match self.method.as_str() {
            "PUT" => {
                self.key().is_some()
                    && self.copy_source.is_none()
                    && !["uploadId", "tagging", "acl", "retention", "legal-hold"]
                        .iter()
                        .any(|p| self.has_query_param(p))
            }
            "POST" => self.has_query_param("uploadId"),
            _ => false,
        }
    }
}

/// Multipart uploads counted from [`LocalS3`]'s request log ([`LocalS3::multipart_uploads`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MultipartUploads {
    /// `CreateMultipartUpload` requests answered 200.
    pub started: usize,
    /// `CompleteMultipartUpload` requests answered 200.
    pub completed: usize,
    /// `AbortMultipartUpload` requests answered 2xx.
    pub aborted: usize,
}

impl MultipartUploads {
    /// Uploads started and neither completed nor aborted (since the log was last reset).
    #[must_use]
    pub fn open(&self) -> usize {
        self.started.saturating_sub(self.completed + self.aborted)
    }
}

/// A running S3-compatible server. See the [module docs](self).
#[derive(Debug)]
pub struct LocalS3 {
    state: Arc<S3State>,
    server: ServerTask,
}

#[derive(Debug, Default)]
struct S3State {
    faults: Mutex<Vec<S3Fault>>,
    /// Delay before every request, in microseconds (a link model for benchmarks).
    latency_us: AtomicU64,
    requests: AtomicUsize,
    log: Mutex<RequestLog>,
    error_ids: AtomicU64,
    /// Serialises conditional writes. s3s-fs checks `If-None-Match` / `If-Match` and then
    /// writes the data and its checksum metadata in separate steps, so two racing
    /// conditional PUTs (or `CompleteMultipartUpload`s) could both pass and leave one's bytes
    /// with the other's checksum. AWS S3 makes a conditional write atomic (one wins, the
    /// other gets 412): so does this.
    conditional_writes: tokio::sync::Mutex<()>,
}

/// The request log; `generation` changes on every reset, so a request that was logged
/// before a reset does not set the status of an entry logged after it.
#[derive(Debug, Default)]
struct RequestLog {
    generation: u64,
    entries: Vec<S3Request>,
}

impl S3State {
    fn faults(&self) -> MutexGuard<'_, Vec<S3Fault>> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs `request`; returns its slot for [`S3State::set_status`].
    fn record<B>(&self, request: &Request<B>) -> (u64, usize) {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let entry = S3Request {
            method: request.method().as_str().to_owned(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or_default().to_owned(),
            if_none_match: header("if-none-match"),
            if_match: header("if-match"),
            copy_source: header("x-amz-copy-source"),
            status: 0,
        };
        let mut log = self.log();
        log.entries.push(entry);
        (log.generation, log.entries.len() - 1)
    }

    fn set_status(&self, (generation, index): (u64, usize), status: u16) {
        let mut log = self.log();
        if log.generation == generation
            && let Some(entry) = log.entries.get_mut(index)
        {
            entry.status = status;
        }
    }

    fn take_fault(&self, method: &str) -> Option<S3FaultKind> {
        let mut faults = self.faults();
        let index = faults.iter().position(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        faults[index].times -= 1;
        let kind = faults[index].kind.clone();
        if faults[index].times == 0 {
            faults.remove(index);
        }
        Some(kind)
    }
}

/// Creates the directory for bucket `name` under `root` (equivalent to `CreateBucket` on a
/// stopped server). Succeeds if it already exists.
///
/// # Errors
/// `name` is not a plausible bucket name (empty, contains `/`, `\`, or is `.`/`..`), or the
/// directory cannot be created.
pub fn create_bucket_dir(root: &Path, name: &str) -> io::Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.starts_with('.')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid bucket name {name:?}"),
        ));
    }
    std::fs::create_dir_all(root.join(name))
}

impl LocalS3 {
    /// Serves `root` (created if missing) on `127.0.0.1` with an ephemeral port, accepting
    /// requests signed with `access_key` / `secret_key`.
    ///
    /// # Errors
    /// The root cannot be created or opened, or binding fails.
    pub async fn start(root: &Path, access_key: &str, secret_key: &str) -> io::Result<LocalS3> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self::start_on(root, access_key, secret_key, addr).await
    }

    /// Like [`LocalS3::start`], on `addr`.
    ///
    /// # Errors
    /// The root cannot be created or opened, or binding fails.
    pub async fn start_on(
        root: &Path,
        access_key: &str,
        secret_key: &str,
        addr: SocketAddr,
    ) -> io::Result<LocalS3> {
        std::fs::create_dir_all(root)?;
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| io::Error::other(format!("cannot open s3s-fs root: {e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let state = Arc::new(S3State::default());
        let service = FaultService {
            inner: builder.build(),
            state: Arc::clone(&state),
        };
        let listener = TcpListener::bind(addr).await?;
        let conn_builder = auto::Builder::new(TokioExecutor::new());
        let server = ServerTask::spawn(listener, move |io| {
            let conn = conn_builder
                .serve_connection(io, service.clone())
                .into_owned();
            async move {
                let _ = conn.await;
            }
        })?;
        Ok(LocalS3 { state, server })
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:41234`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Adds a fault; faults are checked in injection order, the first matching one with
    /// `times > 0` is applied and decremented.
    pub fn inject(&self, fault: S3Fault) {
        if fault.times > 0 {
            self.state.faults().push(fault);
        }
    }

    /// Delays every request by `per_request` (a round trip to S3, for benchmarks); zero
    /// removes the delay. Faults apply after it.
    pub fn set_latency(&self, per_request: Duration) {
        self.state
            .latency_us
            .store(per_request.as_micros() as u64, Ordering::Relaxed);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.state.faults().clear();
    }

    /// Number of HTTP requests received since the start (faulted ones included; not
    /// affected by [`LocalS3::reset_requests`]).
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Every request received since the start or the last [`LocalS3::reset_requests`], in
    /// arrival order (faulted and rejected ones included).
    #[must_use]
    pub fn requests(&self) -> Vec<S3Request> {
        self.state.log().entries.clone()
    }

    /// The logged requests that create an object (`PutObject`, `CompleteMultipartUpload`;
    /// see [`S3Request::is_object_write`]), whatever their outcome.
    #[must_use]
    pub fn object_writes(&self) -> Vec<S3Request> {
        self.state
            .log()
            .entries
            .iter()
            .filter(|r| r.is_object_write())
            .cloned()
            .collect()
    }

    /// Multipart uploads as the wire shows them, from the request log: started
    /// (`CreateMultipartUpload` answered 200), completed (`CompleteMultipartUpload` answered
    /// 200) and aborted (`AbortMultipartUpload` answered 2xx). Reads no private file of the
    /// store, so a test can show that an upload *was* open before it checks that none is.
    #[must_use]
    pub fn multipart_uploads(&self) -> MultipartUploads {
        let log = self.state.log();
        let count = |method: &str, param: &str, ok: fn(u16) -> bool| {
            log.entries
                .iter()
                .filter(|r| r.method == method && r.has_query_param(param) && ok(r.status))
                .count()
        };
        MultipartUploads {
            started: count("POST", "uploads", |s| s == 200),
            completed: count("POST", "uploadId", |s| s == 200),
            aborted: count("DELETE", "uploadId", |s| (200..300).contains(&s)),
        }
    }

    /// Clears the request log ([`LocalS3::request_count`] keeps counting).
    pub fn reset_requests(&self) {
        let mut log = self.state.log();
        log.generation += 1;
        log.entries.clear();
    }

    /// Stops accepting, closes all connections and waits for that.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The `s3s` service with fault injection in front of it.
#[derive(Clone)]
struct FaultService {
    inner: S3Service,
    state: Arc<S3State>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl hyper::service::Service<Request<Incoming>> for FaultService {
    type Response = Response<s3s::Body>;
    type Error = s3s::HttpError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            state.requests.fetch_add(1, Ordering::SeqCst);
            let slot = state.record(&req);
            let latency = state.latency_us.load(Ordering::Relaxed);
            if latency > 0 {
                tokio::time::sleep(Duration::from_micros(latency)).await;
            }
            match state.take_fault(req.method().as_str()) {
                None => {}
                Some(S3FaultKind::Latency(delay)) => tokio::time::sleep(delay).await,
                Some(S3FaultKind::Status(code)) => {
                    let resource = req.uri().path().to_owned();
                    // Read the request body so the client gets this answer, not a reset.
                    let _ = req.into_body().collect().await;
                    let id = state.error_ids.fetch_add(1, Ordering::SeqCst);
                    let response = error_response(code, &resource, id);
                    state.set_status(slot, response.status().as_u16());
                    return Ok(response);
                }
            }
            // PUT: PutObject; POST: CompleteMultipartUpload (both honour the headers).
            let conditional = (req.method() == hyper::Method::PUT
                || req.method() == hyper::Method::POST)
                && (req.headers().contains_key("if-none-match")
                    || req.headers().contains_key("if-match"));
            let _serialised = if conditional {
                Some(state.conditional_writes.lock().await)
            } else {
                None
            };
            let result = inner.call(req.map(s3s::Body::from)).await;
            if let Ok(response) = &result {
                state.set_status(slot, response.status().as_u16());
            }
            result
        })
    }
}

/// An S3-style XML error response.
fn error_response(code: u16, resource: &str, id: u64) -> Response<s3s::Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (s3_code, message) = match status.as_u16() {
        400 => ("BadRequest", "Bad Request"),
        403 => ("AccessDenied", "Access Denied"),
        404 => ("NoSuchKey", "The specified key does not exist."),
        409 => (
            "OperationAborted",
            "A conflicting conditional operation is currently in progress against this resource. Please try again.",
        ),
        412 => (
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ),
        503 => ("SlowDown", "Please reduce your request rate."),
        _ => (
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    };
    let request_id = format!("FAULT{id:011X}");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3_code}</Code><Message>{message}</Message><Resource>{}</Resource><RequestId>{request_id}</RequestId></Error>",
        xml_escape(resource)
    );
    let mut response = Response::new(s3s::Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", v);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_matching() {
        let state = S3State::default();
        state
            .faults()
            .push(S3Fault::new(Some("put"), S3FaultKind::Status(503), 1));
        state
            .faults()
            .push(S3Fault::new(None, S3FaultKind::Status(500), 1));
        assert!(matches!(
            state.take_fault("GET"),
            Some(S3FaultKind::Status(500))
        ));
        assert!(matches!(
            state.take_fault("PUT"),
            Some(S3FaultKind::Status(503))
        ));
        assert!(state.take_fault("PUT").is_none());
    }

    fn request(method: &str, path: &str, query: &str) -> S3Request {
        S3Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            if_none_match: None,
            if_match: None,
            copy_source: None,
            status: 0,
        }
    }

    #[test]
    fn request_classification() {
        let put = request("PUT", "/b/a/k.json", "x-id=PutObject");
        assert!(put.is_object_write());
        assert_eq!(put.bucket(), Some("b"));
        assert_eq!(put.key(), Some("a/k.json"));
        assert_eq!(put.query_param("x-id"), Some("PutObject"));
        let complete = request("POST", "/b/k", "uploadId=abc&x-id=CompleteMultipartUpload");
        assert!(complete.is_object_write());
        assert_eq!(complete.query_param("uploadId"), Some("abc"));
        let create = request("POST", "/b/k", "uploads&x-id=CreateMultipartUpload");
        assert!(create.has_query_param("uploads"));
        assert!(!create.is_object_write());
        assert!(!request("PUT", "/b/k", "partNumber=1&uploadId=abc").is_object_write());
        assert!(!request("PUT", "/b", "").is_object_write(), "CreateBucket");
        assert!(!request("PUT", "/b/", "").is_object_write());
        assert!(!request("PUT", "/b", "object-lock").is_object_write());
        assert!(!request("PUT", "/b/k", "retention").is_object_write());
        assert!(!request("GET", "/b/k", "").is_object_write());
        assert!(!request("DELETE", "/b/k", "").is_object_write());
        let mut copy = request("PUT", "/b/k", "");
        copy.copy_source = Some("/b/other".into());
        assert!(!copy.is_object_write());
        assert_eq!(request("GET", "/", "").bucket(), None);
        assert_eq!(request("GET", "/", "").key(), None);
    }

    #[test]
    fn bucket_names() {
        let dir = std::env::temp_dir().join(format!("devkit-bucket-test-{}", std::process::id()));
        assert!(create_bucket_dir(&dir, "../x").is_err());
        assert!(create_bucket_dir(&dir, "").is_err());
        assert!(create_bucket_dir(&dir, ".hidden").is_err());
        create_bucket_dir(&dir, "archive").unwrap();
        create_bucket_dir(&dir, "archive").unwrap();
        assert!(dir.join("archive").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn error_xml() {
        let r = error_response(503, "/b/<k>", 7);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["content-type"], "application/xml");
        assert_eq!(r.headers()["x-amz-request-id"], "FAULT00000000007");
    }
}
