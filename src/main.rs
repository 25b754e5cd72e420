#![recursion_limit = "256"]
//! The Lambda entry point: start logging, validate configuration, build the app (clients,
//! credentials, archiver) once, then serve invocations until the container is retired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tokio::time::Instant;
use veriff_archiver::app::BuildError;
use veriff_archiver::aws::AwsClients;
use veriff_archiver::metrics::Metrics;
use veriff_archiver::{App, Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(variable = e.var, error = %e, "invalid configuration; fix the function's environment");
    })?;
    if config.archive.index_key.is_none() {
        tracing::warn!(
            variable = "ARCHIVE_INDEX_KEY",
            "no index key: decisions are archived without an index by customer (`veriff-archiver find` cannot find them until `reindex`)"
        );
    }
    let metrics = Metrics::stdout(config.metrics_namespace.clone());
    // Credentials in Secrets Manager are read here, before the first invocation, or the
    // function does not start (a function without them would reject every webhook).
    let app = App::with_aws(config, AwsClients::from_env().await)
        .metrics(metrics)
        .build()
        .await
        .inspect_err(|e| match e {
            BuildError::Credentials(e) => tracing::error!(
                variable = "VERIFF_SECRET_ARN",
                error = %e,
                "cannot read the Veriff credentials from Secrets Manager; the function does not start"
            ),
            e => tracing::error!(error = %e, "the function cannot start"),
        })?;
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
