//! A minimal, faithful AWS Lambda Runtime API server on loopback, for running the release
//! `bootstrap` as Lambda runs it (benchmarks of cold start and memory, no emulator needed).
//!
//! Implements the endpoints a custom runtime uses
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>):
//!
//! - `GET /2018-06-01/runtime/invocation/next`: long-polls until an event is queued, then
//!   answers `200` with the event as the body and the headers `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms` (epoch milliseconds), `Lambda-Runtime-Invoked-Function-Arn`
//!   and `Lambda-Runtime-Trace-Id`. The [`Instant`] of the first poll is recorded (the end of
//!   the runtime's init phase).
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../{id}/error`: complete the
//!   invocation (`202`); an unknown id is a `400 InvalidRequestID`, a body over 6 MB a `413`.
//! - `POST /2018-06-01/runtime/init/error`: records an init error (`202`) and fails every
//!   pending [`RuntimeApi::invoke`].
//!
//! Start it with [`RuntimeApi::start`], point the runtime at it with
//! `AWS_LAMBDA_RUNTIME_API=` [`RuntimeApi::host_port`], then [`RuntimeApi::invoke`].

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};

use crate::server::ServerTask;
use crate::signing::uuid_like;

/// Largest response (or error) payload accepted, as Lambda's synchronous limit.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// ARN reported in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:veriff-archiver";

/// How an invocation ended, as recorded by the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    /// `POST .../response` with this JSON body (a non-JSON body is kept as a string).
    Response(Value),
    /// `POST .../error` with this body (Lambda's `{"errorType":..,"errorMessage":..}`).
    Error(Value),
}

/// A running Runtime API server. See the [module docs](self).
#[derive(Debug)]
pub struct RuntimeApi {
    shared: Arc<Shared>,
    server: ServerTask,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<RuntimeState>,
    queued: Notify,
    first_poll: watch::Sender<Option<Instant>>,
    ids: AtomicU64,
}

#[derive(Debug, Default)]
struct RuntimeState {
    queue: VecDeque<Invocation>,
    waiting: HashMap<String, oneshot::Sender<Completion>>,
    completed: Vec<(String, Completion)>,
    init_errors: Vec<Value>,
    polls: usize,
}

#[derive(Debug)]
struct Invocation {
    request_id: String,
    deadline_ms: u64,
    trace_id: String,
    event: Bytes,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, RuntimeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RuntimeApi {
    /// Starts the server on `127.0.0.1` with an ephemeral port. Call inside a Tokio runtime.
    ///
    /// # Errors
    /// Binding fails.
    pub async fn start() -> io::Result<RuntimeApi> {
        let (first_poll, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            state: Mutex::new(RuntimeState::default()),
            queued: Notify::new(),
            first_poll,
            ids: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let server = ServerTask::serve_router(listener, router)?;
        Ok(RuntimeApi { shared, server })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`, e.g. `127.0.0.1:41234`.
    #[must_use]
    pub fn host_port(&self) -> String {
        self.addr().to_string()
    }

    /// When the runtime first asked for an event (`GET .../invocation/next`), if it has.
    #[must_use]
    pub fn first_poll_at(&self) -> Option<Instant> {
        *self.shared.first_poll.borrow()
    }

    /// Waits up to `timeout` for the runtime's first `GET .../invocation/next`.
    pub async fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let mut rx = self.shared.first_poll.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await {
            Ok(Ok(at)) => *at,
            _ => None,
        }
    }

    /// How many `GET .../invocation/next` requests arrived so far.
    #[must_use]
    pub fn polls(&self) -> usize {
        self.shared.state().polls
    }

    /// Init errors the runtime reported (`POST .../init/error` bodies).
    #[must_use]
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.state().init_errors.clone()
    }

    /// Every completed invocation so far: request id and outcome, in completion order.
    #[must_use]
    pub fn completed(&self) -> Vec<(String, Completion)> {
        self.shared.state().completed.clone()
    }

    /// Queues `event` for the runtime and waits for its outcome. The deadline sent to the
    /// runtime is now + `timeout`.
    ///
    /// # Errors
    /// The handler reported an error (its error body, as a string), the runtime reported an
    /// init error, or no answer came within `timeout`.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Value, String> {
        let n = self.shared.ids.fetch_add(1, Ordering::SeqCst);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let request_id = uuid_like(&[&n.to_le_bytes(), &now.as_nanos().to_le_bytes()]);
        let deadline_ms =
            u64::try_from((now + timeout).as_millis()).expect("deadline fits in u64 milliseconds");
        let trace = uuid_like(&[b"trace", request_id.as_bytes()]).replace('-', "");
        let invocation = Invocation {
            request_id: request_id.clone(),
            deadline_ms,
            trace_id: format!(
                "Root=1-{:08x}-{};Parent={};Sampled=0;Lineage=1:0:0",
                now.as_secs(),
                &trace[..24],
                &trace[..16]
            ),
            event: Bytes::from(serde_json::to_vec(&event).expect("a JSON value serializes")),
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.state();
            if let Some(error) = state.init_errors.first() {
                return Err(format!("the runtime reported an init error: {error}"));
            }
            state.waiting.insert(request_id.clone(), tx);
            state.queue.push_back(invocation);
        }
        self.shared.queued.notify_one();
        let outcome = tokio::time::timeout(timeout, rx).await;
        let mut state = self.shared.state();
        state.waiting.remove(&request_id);
        state.queue.retain(|i| i.request_id != request_id);
        drop(state);
        match outcome {
            Ok(Ok(Completion::Response(value))) => Ok(value),
            Ok(Ok(Completion::Error(body))) => Err(body.to_string()),
            Ok(Err(_)) => Err(format!(
                "the runtime reported an init error: {}",
                self.init_errors()
                    .first()
                    .map_or_else(String::new, Value::to_string)
            )),
            Err(_) => Err(format!(
                "no answer to invocation {request_id} within {timeout:?}"
            )),
        }
    }

    /// Stops accepting, closes all connections and waits for that.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    shared.first_poll.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(now);
            true
        } else {
            false
        }
    });
    shared.state().polls += 1;
    let invocation = loop {
        let queued = shared.queued.notified();
        if let Some(invocation) = shared.state().queue.pop_front() {
            break invocation;
        }
        queued.await;
    };
    let mut response = Response::new(Body::from(invocation.event));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let pairs = [
        ("lambda-runtime-aws-request-id", invocation.request_id),
        (
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        ),
        ("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into()),
        ("lambda-runtime-trace-id", invocation.trace_id),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    complete(&shared, &id, request, Completion::Response).await
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    complete(&shared, &id, request, Completion::Error).await
}

async fn complete(
    shared: &Shared,
    id: &str,
    request: Request,
    wrap: fn(Value) -> Completion,
) -> Response {
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES).await else {
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"errorType": "RequestEntityTooLarge", "errorMessage": "payload over 6 MB"}),
        );
    };
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let completion = wrap(value);
    let mut state = shared.state();
    let Some(waiter) = state.waiting.remove(id) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"}),
        );
    };
    state.completed.push((id.to_owned(), completion.clone()));
    drop(state);
    let _ = waiter.send(completion);
    answer(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

async fn init_error(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let body = axum::body::to_bytes(request.into_body(), MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let mut state = shared.state();
    state.init_errors.push(value);
    // Pending invocations will never be served: fail them now (dropping their senders).
    state.waiting.clear();
    state.queue.clear();
    drop(state);
    answer(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

async fn not_found() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({"errorType": "NotFound", "errorMessage": "unknown Runtime API path"}),
    )
}

fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays the runtime's side: one `/next`, then `/response` or `/error` with `body`.
    async fn serve_one(api: String, outcome: &'static str, body: Value) -> reqwest::Response {
        let http = reqwest::Client::new();
        let base = format!("http://{api}/2018-06-01/runtime");
        let next = http
            .get(format!("{base}/invocation/next"))
            .send()
            .await
            .unwrap();
        assert_eq!(next.status(), 200);
        let headers = next.headers().clone();
        let id = headers["lambda-runtime-aws-request-id"].to_str().unwrap();
        let deadline: u64 = headers["lambda-runtime-deadline-ms"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(
            deadline > now && deadline <= now + 60_000,
            "{deadline} vs {now}"
        );
        assert_eq!(headers["lambda-runtime-invoked-function-arn"], FUNCTION_ARN);
        assert!(
            headers["lambda-runtime-trace-id"]
                .to_str()
                .unwrap()
                .starts_with("Root=1-")
        );
        let event: Value = serde_json::from_slice(&next.bytes().await.unwrap()).unwrap();
        assert_eq!(event, json!({"hello": "world"}));
        http.post(format!("{base}/invocation/{id}/{outcome}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn invocation_round_trip_and_errors() {
        let api = RuntimeApi::start().await.unwrap();
        assert!(api.first_poll_at().is_none());
        let host = api.host_port();
        let runtime = tokio::spawn(serve_one(host.clone(), "response", json!({"ok": 1})));
        let result = api
            .invoke(json!({"hello": "world"}), Duration::from_secs(60))
            .await;
        assert_eq!(result, Ok(json!({"ok": 1})));
        assert_eq!(runtime.await.unwrap().status(), 202);
        assert!(api.wait_first_poll(Duration::from_secs(1)).await.is_some());

        let runtime = tokio::spawn(serve_one(
            host.clone(),
            "error",
            json!({"errorType": "boom", "errorMessage": "x"}),
        ));
        let result = api
            .invoke(json!({"hello": "world"}), Duration::from_secs(60))
            .await;
        assert!(result.unwrap_err().contains("boom"));
        assert_eq!(runtime.await.unwrap().status(), 202);
        assert_eq!(api.polls(), 2);
        assert_eq!(api.completed().len(), 2);

        // An unknown request id is refused; an invocation nobody serves times out.
        let http = reqwest::Client::new();
        let status = http
            .post(format!(
                "http://{host}/2018-06-01/runtime/invocation/nope/response"
            ))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 400);
        let result = api.invoke(json!({}), Duration::from_millis(50)).await;
        assert!(result.unwrap_err().contains("no answer"));
    }

    #[tokio::test]
    async fn init_error_fails_pending_invocations() {
        let api = RuntimeApi::start().await.unwrap();
        let host = api.host_port();
        let pending = api.invoke(json!({}), Duration::from_secs(60));
        let report = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reqwest::Client::new()
                .post(format!("http://{host}/2018-06-01/runtime/init/error"))
                .body(r#"{"errorType":"Runtime.InitError","errorMessage":"bad config"}"#)
                .send()
                .await
                .unwrap()
                .status()
        };
        let (result, status) = tokio::join!(pending, report);
        assert_eq!(status, 202);
        assert!(result.unwrap_err().contains("bad config"));
        assert_eq!(api.init_errors().len(), 1);
    }
}
