#![recursion_limit = "256"]
//! The Lambda entry point: start logging, validate configuration, build the HTTP and S3
//! clients once, then serve invocations until the container is retired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tokio::time::Instant;
use veriff_archiver::config::IngestMode;
use veriff_archiver::credentials::SecretSource;
use veriff_archiver::metrics::Metrics;
use veriff_archiver::queue::DecisionQueue;
use veriff_archiver::signing::ManifestSigner;
use veriff_archiver::{App, Config, s3, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(variable = e.var, error = %e, "invalid configuration; fix the function's environment");
    })?;
    let sdk = s3::sdk_config_from_env().await;
    // Credentials in Secrets Manager: read before the first invocation, or no start at all
    // (a function without them would reject every webhook, or worse).
    let secret = match &config.secret {
        Some(settings) => {
            let source = SecretSource::new(
                s3::secrets_client(&sdk),
                settings.secret_id.clone(),
                settings.refresh_every,
            );
            let credentials = source.read().await.inspect_err(|e| {
                tracing::error!(
                    variable = "VERIFF_SECRET_ARN",
                    error = %e,
                    "cannot read the Veriff credentials from Secrets Manager; the function does not start"
                );
            })?;
            config.credentials.replace(credentials);
            Some(source)
        }
        None => None,
    };
    let metrics = Metrics::stdout(config.metrics_namespace.clone());
    let signer = config
        .manifest_signing_key_id
        .as_ref()
        .map(|key_id| ManifestSigner::new(s3::kms_client(&sdk), key_id.clone()));
    let queue = match (config.ingest_mode, &config.queue_url) {
        (IngestMode::Queue, Some(url)) => Some(DecisionQueue::new(s3::sqs_client(&sdk), url)),
        _ => None,
    };
    let app = App::with_signer(config, s3::client(&sdk), signer)?
        .with_queue(queue)
        .with_secret(secret)
        .with_metrics(Some(metrics));
    let app = &app;
    // One binary, two roles: Function URL events (the webhook) and SQS batches (the queue
    // consumer), told apart by the event's shape.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = instant_of(event.context.deadline);
        Ok::<Value, lambda_runtime::Error>(app.handle_event(event.payload, deadline).await?)
    }))
    .await
}

/// Converts the runtime's deadline (milliseconds since the epoch) to an `Instant`.
fn instant_of(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let remaining = if deadline_ms == 0 {
        Duration::from_secs(900)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    };
    Instant::now() + remaining
}
