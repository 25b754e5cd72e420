//! The function's entry: one Lambda event in, one answer out.
//!
//! A Function URL event runs the path source check (with `ALLOWED_SOURCE_CIDRS`) → decode →
//! authenticate → classify → archive (or, in queue mode, enqueue), logs one structured line
//! per stage (ids, counts, codes; never a secret, signature, body or personal data), and
//! maps every error to its status in one place ([`Error::status`]): every outcome is an
//! HTTP answer. An SQS batch goes to the
//! [`queue::Consumer`](crate::queue::Consumer), whose answer names the records that failed.

use std::sync::Arc;

use serde_json::json;
use tokio::time::Instant;

use crate::allowlist::{self, SourceAddress, SourceAllowlist};
use crate::archive::{Archiver, OutcomeKind, SignedBody};
use crate::config::Config;
use crate::config::IngestMode;
use crate::credentials::SecretSource;
use crate::domain::{Decision, DecisionStatus};
use crate::error::{Error, QueueError, QueueProblem, SourceRefusal};
use crate::event::{self, HttpResponse};
use crate::manifest::DecisionSource;
use crate::metrics::{Metrics, Tally};
use crate::queue::{self, DecisionMessage, DecisionQueue};
use crate::signing::ManifestSigner;
use crate::store::Store;
use crate::veriff::VeriffClient;
use crate::webhook::{self, Webhook};

/// The function's state, built once per container.
#[derive(Debug, Clone)]
pub struct App {
    config: Arc<Config>,
    archiver: Archiver,
    queue: Option<DecisionQueue>,
    metrics: Option<Metrics>,
    secret: Option<SecretSource>,
}

impl App {
    /// Builds the app from its configuration and an S3 client, with no manifest signer
    /// (with `MANIFEST_SIGNING_KEY_ID` set, every archive then fails: use
    /// [`App::with_signer`]).
    pub fn new(config: Config, s3: aws_sdk_s3::Client) -> Result<App, reqwest::Error> {
        App::with_signer(config, s3, None)
    }

    /// Builds the app with the signer of `MANIFEST_SIGNING_KEY_ID`, when configured.
    pub fn with_signer(
        config: Config,
        s3: aws_sdk_s3::Client,
        signer: Option<ManifestSigner>,
    ) -> Result<App, reqwest::Error> {
        let config = Arc::new(config);
        let veriff = VeriffClient::new(&config)?;
        let store = Store::new(s3, config.bucket.clone(), config.part_size);
        Ok(App {
            // One invocation at a time per container, but an SQS batch archives its records
            // at once: COPY_CONCURRENCY bounds the files in flight across all of them.
            archiver: Archiver::new(config.clone(), veriff, store)
                .with_signer(signer)
                .sharing_copy_slots(),
            config,
            queue: None,
            metrics: None,
            secret: None,
        })
    }

    /// Publishes one EMF record set per invocation with `metrics` (`main` writes them to
    /// stdout; without it, no metrics).
    pub fn with_metrics(mut self, metrics: Option<Metrics>) -> App {
        self.metrics = metrics;
        self
    }

    /// Re-reads the credentials from `secret` when its refresh interval has passed, before
    /// handling an event (`VERIFF_SECRET_ARN`; `main` read it once at cold start already).
    pub fn with_secret(mut self, secret: Option<SecretSource>) -> App {
        self.secret = secret;
        self
    }

    /// Sends archivable decisions to `queue` (`INGEST_MODE=queue`; built by `main` from
    /// `ARCHIVE_QUEUE_URL`).
    pub fn with_queue(mut self, queue: Option<DecisionQueue>) -> App {
        self.queue = queue;
        self
    }

    /// Handles any event the function receives: an SQS batch (the queue consumer) gets a
    /// partial batch response; anything else is a Function URL event and gets an HTTP
    /// answer. An SQS-shaped event that does not parse fails the invocation, so the whole
    /// batch comes back.
    pub async fn handle_event(
        &self,
        event: serde_json::Value,
        deadline: Instant,
    ) -> Result<serde_json::Value, serde_json::Error> {
        if let Some(secret) = &self.secret {
            secret.refresh_if_due(&self.config.credentials).await;
        }
        if queue::is_sqs_event(&event) {
            let retries_before = self.archiver.veriff_retries();
            let consumer = queue::Consumer {
                config: &self.config,
                archiver: &self.archiver,
            };
            let (response, mut tally) = consumer.handle(event, deadline).await.inspect_err(|e| {
                tracing::error!(error = %e, "SQS event does not parse; the whole batch is retried");
            })?;
            tally.veriff_retries = self.archiver.veriff_retries() - retries_before;
            self.emit(&tally, "queue");
            return serde_json::to_value(response);
        }
        Ok(self.handle(&event, deadline).await.into_lambda())
    }

    fn emit(&self, tally: &Tally, entry: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.emit(tally, entry);
        }
    }

    /// Handles one Lambda HTTP event; `deadline` is when the invocation will be killed.
    pub async fn handle(&self, event: &serde_json::Value, deadline: Instant) -> HttpResponse {
        let started = Instant::now();
        let retries_before = self.archiver.veriff_retries();
        let mut tally = Tally::default();
        let response = self.answer(event, deadline, started, &mut tally).await;
        tally.veriff_retries = self.archiver.veriff_retries() - retries_before;
        self.emit(&tally, "webhook");
        response
    }

    async fn answer(
        &self,
        event: &serde_json::Value,
        deadline: Instant,
        started: Instant,
        tally: &mut Tally,
    ) -> HttpResponse {
        match self.process(event, deadline, tally).await {
            Ok(response) => response,
            Err(error) => {
                let status = error.status();
                if status < 500 {
                    tally.rejected.push(error.code());
                } else {
                    tally.failed.push(error.code());
                }
                // Failures after classification are logged with their ids by `process`.
                if status < 500 {
                    tracing::warn!(status, code = error.code(), error = %error, elapsed_ms = started.elapsed().as_millis() as u64, "webhook rejected");
                }
                HttpResponse::new(
                    status,
                    json!({"status": "error", "code": error.code(), "message": error.to_string()}),
                )
            }
        }
    }

    async fn process(
        &self,
        event: &serde_json::Value,
        deadline: Instant,
        tally: &mut Tally,
    ) -> Result<HttpResponse, Error> {
        if let Some(allowlist) = &self.config.allowed_sources {
            check_source(allowlist, event)?;
        }
        let request = event::decode(event, self.config.max_body_bytes)?;
        if let Some(method) = request.method.as_deref().filter(|m| *m != "POST") {
            return Err(Error::MethodNotAllowed(
                method
                    .chars()
                    .filter(char::is_ascii_alphabetic)
                    .take(10)
                    .collect(),
            ));
        }
        let credentials = self.config.credentials.current();
        let signature = webhook::authenticate_signed(
            &request,
            &credentials.api_key,
            &credentials.shared_secrets,
        )
        .map_err(Error::Unauthorized)?;
        let decision = match webhook::classify(&request.body)? {
            Webhook::Other(kind) => {
                tracing::info!(
                    webhook = kind,
                    "authenticated webhook is not a decision; ignored"
                );
                tally.ignored += 1;
                return Ok(ignored(kind));
            }
            Webhook::Decision(decision) => decision,
        };
        let session_id = decision.session_id.as_str();
        let given_attempt_id = decision.attempt_id.as_deref();
        let status = DecisionStatus::parse(&decision.record.status);
        if status.is_none() {
            // A status Veriff added after this build: never dropped without a sound.
            tracing::warn!(
                session_id,
                attempt_id = given_attempt_id,
                decision_status = printable_status(&decision.record.status).as_str(),
                archived = self.config.archives(None),
                "unknown decision status; archived when ARCHIVE_STATUSES is unset, else ignored"
            );
        }
        if !self.config.archives(status) {
            if let Some(status) = status {
                tracing::info!(
                    session_id,
                    attempt_id = given_attempt_id,
                    decision_status = status.as_str(),
                    "decision status not archived; ignored"
                );
            }
            tally.ignored += 1;
            return Ok(ignored("status_not_archived"));
        }
        tracing::info!(
            session_id,
            attempt_id = given_attempt_id,
            webhook = decision.record.webhook.as_str(),
            decision_status = status.map_or("unknown", DecisionStatus::as_str),
            "decision received"
        );

        if self.config.ingest_mode == IngestMode::Queue {
            let answer = self.enqueue(&decision).await?;
            tally.queued += 1;
            return Ok(answer);
        }

        let body = SignedBody {
            bytes: &request.body,
            signature: &signature,
        };
        let archive_started = Instant::now();
        let outcome = self.archiver.archive(&decision, Some(body), deadline).await;
        tally
            .archive_ms
            .push(archive_started.elapsed().as_secs_f64() * 1000.0);
        let outcome = outcome.inspect_err(|error| {
            tracing::error!(
                session_id,
                attempt_id = given_attempt_id,
                status = error.status(),
                code = error.code(),
                error = %error,
                "archive failed; Veriff will redeliver"
            );
        })?;
        tally.record(&outcome);
        let status = match outcome.kind {
            OutcomeKind::Archived => "archived",
            OutcomeKind::AlreadyArchived => "already_archived",
        };
        Ok(HttpResponse::new(
            200,
            json!({
                "status": status,
                "sessionId": session_id,
                "attemptId": outcome.attempt_id,
                "attemptIdSource": outcome.attempt_id_source,
                "manifestKey": outcome.manifest_key,
                "files": outcome.files,
                "reused": outcome.reused,
                "bytes": outcome.bytes,
                "skipped": outcome.skipped,
                "signed": outcome.signed,
                "mediaUnavailable": outcome.media_unavailable,
            }),
        ))
    }
}

impl App {
    /// Queue mode: one message with the decision's recorded fields (never the body), then
    /// `200 queued`. The consumer archives it; a duplicate message archives nothing twice.
    async fn enqueue(&self, decision: &Decision) -> Result<HttpResponse, Error> {
        let session_id = decision.session_id.as_str();
        let attempt_id = decision.attempt_id.as_deref();
        let queue = self.queue.as_ref().ok_or_else(|| {
            Error::from(QueueError {
                problem: QueueProblem::NoClient,
                source: None,
            })
        })?;
        let message = DecisionMessage::new(decision, DecisionSource::Webhook);
        let message_id = queue.send(&message).await.inspect_err(|error| {
            tracing::error!(
                session_id,
                attempt_id,
                status = error.status(),
                code = error.code(),
                error = %error,
                "decision not queued; Veriff will redeliver"
            );
        })?;
        tracing::info!(
            session_id,
            attempt_id,
            message_id = message_id.as_str(),
            "decision queued"
        );
        Ok(HttpResponse::new(
            200,
            json!({
                "status": "queued",
                "sessionId": session_id,
                "attemptId": attempt_id,
                "messageId": message_id,
            }),
        ))
    }
}

/// Refuses a request from outside `ALLOWED_SOURCE_CIDRS`, or one whose event shows no
/// source address, before anything else of it is read. The caller's address is logged here
/// and nowhere else: it is the sender's (Veriff's or a stranger's), never the end user's.
fn check_source(allowlist: &SourceAllowlist, event: &serde_json::Value) -> Result<(), Error> {
    match allowlist::source_address(event) {
        SourceAddress::Known(address) if allowlist.allows(address) => Ok(()),
        SourceAddress::Known(address) => {
            tracing::warn!(
                source_ip = %address,
                "request from outside ALLOWED_SOURCE_CIDRS refused"
            );
            Err(SourceRefusal::Outside.into())
        }
        SourceAddress::Missing => Err(SourceRefusal::NoAddress.into()),
        SourceAddress::Malformed => Err(SourceRefusal::MalformedAddress.into()),
    }
}

/// A status string from the wire, reduced to what is safe to log: at most 40 ASCII
/// letters, digits and underscores.
fn printable_status(status: &str) -> String {
    status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

fn ignored(reason: &str) -> HttpResponse {
    HttpResponse::new(200, json!({"status": "ignored", "reason": reason}))
}
