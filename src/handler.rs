//! The function's entry: one Lambda event in, one answer out.
//!
//! A Function URL event runs the path source check (with `ALLOWED_SOURCE_CIDRS`) → decode →
//! authenticate → classify → archive (or, in queue mode, enqueue), logs one structured line
//! per stage (ids, counts, codes; never a secret, signature, body or personal data), and
//! maps every error to its status in one place ([`Error::status`]): every outcome is an
//! HTTP answer. An SQS batch goes to the
//! [`queue::Consumer`](crate::queue::Consumer), whose answer names the records that failed.

use serde_json::json;
use tokio::time::Instant;

use crate::allowlist::{self, SourceAddress, SourceAllowlist};
use crate::app::App;
use crate::archive::{OutcomeKind, SignedBody};
use crate::config::Ingest;
use crate::domain::{Decision, DecisionStatus};
use crate::error::{Error, QueueError, QueueProblem, SourceRefusal};
use crate::event::{self, HttpRequest, HttpResponse};
use crate::manifest::DecisionSource;
use crate::metrics::InvocationTally;
use crate::queue::{self, DecisionMessage};
use crate::schedule;
use crate::webhook::{self, VerifiedSignature, Webhook};

/// Why an event failed the whole invocation (the caller retries it): an SQS batch that
/// does not parse, or a seal that failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// An SQS-shaped event that does not parse: the whole batch comes back.
    #[error("SQS event does not parse: {0}")]
    Sqs(#[from] serde_json::Error),
    /// The scheduled seal failed: nothing was written, the next schedule covers the gap.
    #[error("seal failed: {0}")]
    Seal(#[from] Error),
}

impl App {
    /// Handles any event the function receives: a Scheduled Event seals the ledger; an SQS
    /// batch (the queue consumer) gets a partial batch response; anything else is a
    /// Function URL event and gets an HTTP answer. An SQS-shaped event that does not parse,
    /// or a seal that fails, fails the invocation.
    pub async fn handle_event(
        &self,
        event: serde_json::Value,
        deadline: Instant,
    ) -> Result<serde_json::Value, EventError> {
        if schedule::is_scheduled_event(&event) {
            return Ok(self.seal_on_schedule().await?);
        }
        if let Some(secret) = &self.secret {
            secret.refresh_if_due(&self.credentials).await;
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
            return Ok(serde_json::to_value(response)?);
        }
        Ok(self.handle(&event, deadline).await.into_lambda())
    }

    fn emit(&self, tally: &InvocationTally, entry: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.emit(tally, entry);
        }
    }

    /// Handles one Lambda HTTP event; `deadline` is when the invocation will be killed.
    pub async fn handle(&self, event: &serde_json::Value, deadline: Instant) -> HttpResponse {
        let started = Instant::now();
        let retries_before = self.archiver.veriff_retries();
        let mut tally = InvocationTally::default();
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
        tally: &mut InvocationTally,
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

    /// Admits the request (source, envelope, method, signature), classifies it, applies
    /// `ARCHIVE_STATUSES`, then archives or enqueues the decision.
    async fn process(
        &self,
        event: &serde_json::Value,
        deadline: Instant,
        tally: &mut InvocationTally,
    ) -> Result<HttpResponse, Error> {
        let (request, signature) = self.admit(event)?;
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
        if !self.status_archived(&decision) {
            tally.ignored += 1;
            return Ok(ignored("status_not_archived"));
        }
        if let Ingest::Queue { .. } = self.config.ingest {
            let answer = self.enqueue(&decision).await?;
            tally.queued += 1;
            return Ok(answer);
        }
        let body = SignedBody {
            bytes: &request.body,
            signature: &signature,
        };
        self.archive(&decision, body, deadline, tally).await
    }

    /// The request, once its source, envelope, method and signature pass, with the
    /// signature that authenticated it. Nothing of the body is parsed before.
    fn admit(&self, event: &serde_json::Value) -> Result<(HttpRequest, VerifiedSignature), Error> {
        if let Some(allowlist) = &self.config.webhook.allowed_sources {
            check_source(allowlist, event)?;
        }
        let request = event::decode(event, self.config.webhook.max_body_bytes)?;
        if let Some(method) = request.method.as_deref().filter(|m| *m != "POST") {
            return Err(Error::MethodNotAllowed(
                method
                    .chars()
                    .filter(char::is_ascii_alphabetic)
                    .take(10)
                    .collect(),
            ));
        }
        let credentials = self.credentials.current();
        let signature = webhook::authenticate_signed(
            &request,
            &credentials.api_key,
            &credentials.shared_secrets,
        )?;
        Ok((request, signature))
    }

    /// Whether `ARCHIVE_STATUSES` archives the decision; logs what was decided.
    fn status_archived(&self, decision: &Decision) -> bool {
        let session_id = decision.session_id.as_str();
        let given_attempt_id = decision.attempt_id.as_deref();
        let status = DecisionStatus::parse(&decision.record.status);
        let archived = self.config.archive.archives(&decision.record.status);
        match status {
            // A status Veriff added after this build: never dropped without a sound.
            None => tracing::warn!(
                session_id,
                attempt_id = given_attempt_id,
                decision_status = printable_status(&decision.record.status).as_str(),
                archived,
                "unknown decision status; archived when ARCHIVE_STATUSES is unset, else ignored"
            ),
            Some(status) if !archived => tracing::info!(
                session_id,
                attempt_id = given_attempt_id,
                decision_status = status.as_str(),
                "decision status not archived; ignored"
            ),
            Some(_) => {}
        }
        if archived {
            tracing::info!(
                session_id,
                attempt_id = given_attempt_id,
                webhook = decision.record.webhook.as_str(),
                decision_status = status.map_or("unknown", DecisionStatus::as_str),
                "decision received"
            );
        }
        archived
    }

    /// Direct mode: archives the decision while Veriff waits; the answer names the manifest.
    async fn archive(
        &self,
        decision: &Decision,
        body: SignedBody<'_>,
        deadline: Instant,
        tally: &mut InvocationTally,
    ) -> Result<HttpResponse, Error> {
        let archive_started = Instant::now();
        let outcome = self.archiver.archive(decision, Some(body), deadline).await;
        tally
            .archive_ms
            .push(archive_started.elapsed().as_secs_f64() * 1000.0);
        let outcome = outcome.inspect_err(|error| {
            tracing::error!(
                session_id = decision.session_id.as_str(),
                attempt_id = decision.attempt_id.as_deref(),
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
                "sessionId": decision.session_id,
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
