//! Structured JSON logging with tracing-subscriber.
//!
//! The level comes from `RUST_LOG`, else from Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`
//! for this crate. Dependencies log at `warn` unless `RUST_LOG` says otherwise, so that no
//! library's debug output (which may include headers) reaches the logs by default.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global JSON subscriber writing to stdout. Safe to call once per process.
pub fn init() {
    init_with_writer(std::io::stdout, default_filter());
}

/// The filter `init` uses: `RUST_LOG`, else this crate at `AWS_LAMBDA_LOG_LEVEL` (default
/// `info`) and everything else at `warn`.
pub fn default_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| l.to_ascii_lowercase())
            .filter(|l| ["trace", "debug", "info", "warn", "error"].contains(&l.as_str()))
            .unwrap_or_else(|| "info".into());
        EnvFilter::new(format!("warn,veriff_archiver={level},bootstrap={level}"))
    })
}

/// Installs the production JSON format writing to `writer` with `filter` (tests use this to
/// capture every line). Does nothing if a global subscriber is already set.
pub fn init_with_writer<W>(writer: W, filter: EnvFilter)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}
