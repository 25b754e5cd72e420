//! Structured JSON logging with tracing-subscriber.
//!
//! The level comes from `RUST_LOG`, else from Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`
//! for this crate. Dependencies log at `warn` unless `RUST_LOG` says otherwise, so that no
//! library's debug output (which may include headers) reaches the logs by default.

use tracing_subscriber::EnvFilter;

/// Installs the global JSON subscriber writing to stdout. Safe to call once per process.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| l.to_ascii_lowercase())
            .filter(|l| ["trace", "debug", "info", "warn", "error"].contains(&l.as_str()))
            .unwrap_or_else(|| "info".into());
        EnvFilter::new(format!("warn,veriff_archiver={level},bootstrap={level}"))
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
