//! Structured JSON logging with tracing-subscriber.
//!
//! The level comes from `RUST_LOG` (`target=level` directives, e.g. `warn,veriff_archiver=debug`),
//! else from Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info` for this crate. Dependencies log at
//! `warn` unless `RUST_LOG` says otherwise, so that no library's debug output (which may
//! include headers) reaches the logs by default. The filter is `Targets`, not `EnvFilter`:
//! the same directive syntax without span-field matching, and without a regex engine in the
//! binary.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global JSON subscriber writing to stdout. Safe to call once per process.
pub fn init() {
    init_with_writer(std::io::stdout, default_filter());
}

/// The filter `init` uses: `RUST_LOG` when it parses, else this crate at
/// `AWS_LAMBDA_LOG_LEVEL` (default `info`) and everything else at `warn`.
pub fn default_filter() -> Targets {
    if let Some(filter) = std::env::var("RUST_LOG").ok().and_then(|v| v.parse().ok()) {
        return filter;
    }
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .filter(|l| ["trace", "debug", "info", "warn", "error"].contains(&l.as_str()))
        .unwrap_or_else(|| "info".into());
    format!("warn,veriff_archiver={level},bootstrap={level}")
        .parse()
        .expect("static directives parse")
}

/// Installs the production JSON format writing to `writer` with `filter` (tests use this to
/// capture every line). Does nothing if a global subscriber is already set.
pub fn init_with_writer<W>(writer: W, filter: Targets)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let format = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer);
    let _ = tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn default_directives_keep_dependencies_quiet() {
        let filter: Targets = "warn,veriff_archiver=info".parse().unwrap();
        assert!(filter.would_enable("veriff_archiver::archive", &Level::INFO));
        assert!(!filter.would_enable("veriff_archiver::archive", &Level::DEBUG));
        assert!(!filter.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(filter.would_enable("aws_smithy_runtime", &Level::WARN));
    }
}
