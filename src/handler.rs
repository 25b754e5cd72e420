//! The webhook handler: one Lambda HTTP event in, one HTTP response out.
//!
//! Runs the path decode → authenticate → classify → archive, logs one structured line per
//! stage (ids, counts, codes; never a secret, signature, body or personal data), and maps
//! every error to its status in one place ([`Error::status`]). It never fails the Lambda
//! invocation itself: every outcome is an HTTP answer.

use std::sync::Arc;

use serde_json::json;
use tokio::time::Instant;

use crate::archive::{Archiver, OutcomeKind, SignedBody};
use crate::config::Config;
use crate::error::Error;
use crate::event::{self, HttpResponse};
use crate::signing::ManifestSigner;
use crate::store::Store;
use crate::veriff::VeriffClient;
use crate::webhook::{self, DecisionStatus, Webhook};

/// The function's state, built once per container.
#[derive(Debug, Clone)]
pub struct App {
    config: Arc<Config>,
    archiver: Archiver,
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
            archiver: Archiver::new(config.clone(), veriff, store).with_signer(signer),
            config,
        })
    }

    /// Handles one Lambda HTTP event; `deadline` is when the invocation will be killed.
    pub async fn handle(&self, event: &serde_json::Value, deadline: Instant) -> HttpResponse {
        let started = Instant::now();
        match self.process(event, deadline).await {
            Ok(response) => response,
            Err(error) => {
                let status = error.status();
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
    ) -> Result<HttpResponse, Error> {
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
        let signature = webhook::authenticate_signed(
            &request,
            &self.config.veriff_api_key,
            &self.config.shared_secrets,
        )
        .map_err(Error::Unauthorized)?;
        let decision =
            match webhook::classify(&request.body).map_err(|e| Error::BadPayload(e.to_string()))? {
                Webhook::Other(kind) => {
                    tracing::info!(
                        webhook = kind,
                        "authenticated webhook is not a decision; ignored"
                    );
                    return Ok(ignored(kind));
                }
                Webhook::Decision(decision) => decision,
            };
        let session_id = decision.session_id.as_str();
        let given_attempt_id = decision.attempt_id.as_deref();
        let status = DecisionStatus::parse(&decision.status);
        if status.is_none() {
            // A status Veriff added after this build: never dropped without a sound.
            tracing::warn!(
                session_id,
                attempt_id = given_attempt_id,
                decision_status = printable_status(&decision.status).as_str(),
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
            return Ok(ignored("status_not_archived"));
        }
        tracing::info!(
            session_id,
            attempt_id = given_attempt_id,
            decision_status = status.map_or("unknown", DecisionStatus::as_str),
            "decision received"
        );

        let body = SignedBody {
            bytes: &request.body,
            signature: &signature,
        };
        let outcome = self
            .archiver
            .archive(&decision, Some(body), deadline)
            .await
            .inspect_err(|error| {
                tracing::error!(
                    session_id,
                    attempt_id = given_attempt_id,
                    status = error.status(),
                    code = error.code(),
                    error = %error,
                    "archive failed; Veriff will redeliver"
                );
            })?;
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
            }),
        ))
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
