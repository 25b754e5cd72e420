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
    filter_from(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    )
}

/// [`default_filter`] for given values of `RUST_LOG` and `AWS_LAMBDA_LOG_LEVEL`.
pub fn filter_from(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    if let Some(filter) = rust_log.and_then(|v| v.parse().ok()) {
        return filter;
    }
    let level = lambda_level
        .map(str::to_ascii_lowercase)
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

    /// Whether `filter` logs `target` at `level`.
    fn logs(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn by_default_this_crate_logs_info_and_dependencies_only_warnings() {
        let filter = filter_from(None, None);
        for target in ["veriff_archiver::archive", "bootstrap"] {
            assert!(logs(&filter, target, Level::INFO), "{target}");
            assert!(!logs(&filter, target, Level::DEBUG), "{target}");
        }
        assert!(!logs(&filter, "aws_smithy_runtime", Level::INFO));
        assert!(logs(&filter, "aws_smithy_runtime", Level::WARN));
        assert!(!logs(&filter, "hyper_util::client", Level::INFO));
    }

    #[test]
    fn lambdas_log_level_sets_this_crates_level_only() {
        let filter = filter_from(None, Some("DEBUG"));
        assert!(logs(&filter, "veriff_archiver::store", Level::DEBUG));
        assert!(logs(&filter, "bootstrap", Level::DEBUG));
        assert!(!logs(&filter, "veriff_archiver::store", Level::TRACE));
        assert!(!logs(&filter, "aws_smithy_runtime", Level::INFO));
        let filter = filter_from(None, Some("error"));
        assert!(!logs(&filter, "veriff_archiver::store", Level::WARN));
        assert!(logs(&filter, "veriff_archiver::store", Level::ERROR));
        // An unknown level is the default, info.
        let filter = filter_from(None, Some("verbose"));
        assert!(logs(&filter, "veriff_archiver::store", Level::INFO));
        assert!(!logs(&filter, "veriff_archiver::store", Level::DEBUG));
    }

    #[test]
    fn rust_log_wins_when_it_parses() {
        let filter = filter_from(Some("error,aws_smithy_runtime=debug"), Some("trace"));
        assert!(logs(&filter, "aws_smithy_runtime", Level::DEBUG));
        assert!(!logs(&filter, "veriff_archiver::store", Level::WARN));
        // A RUST_LOG that does not parse is ignored: Lambda's level applies.
        let filter = filter_from(Some("veriff_archiver=loud=2"), Some("warn"));
        assert!(logs(&filter, "veriff_archiver::store", Level::WARN));
        assert!(!logs(&filter, "veriff_archiver::store", Level::INFO));
    }
}
