//! Retrying transient failures: exponential backoff with full jitter, `Retry-After`
//! honoured, and never past the invocation's deadline.
//!
//! The policy is pure ([`RetryPolicy::delay`]); [`run`] drives any async operation with it.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::error::Error;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub max_attempts: u32,
    /// Backoff base: the cap of the first retry's delay.
    pub base_delay: Duration,
    /// Largest delay between two attempts (a `Retry-After` may ask for more; see [`run`]).
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (attempts count from 1): uniformly random in
    /// `[0, min(max_delay, base * 2^(attempt-1))]`, or the server's `Retry-After` when given.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit_random: f64) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        exp.mul_f64(unit_random.clamp(0.0, 1.0))
    }
}

/// One failed attempt.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: Error,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// A server-requested wait.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure worth retrying.
    pub fn transient(error: Error) -> Self {
        Failure {
            error,
            retryable: true,
            retry_after: None,
        }
    }
    /// A failure that another attempt cannot fix.
    pub fn permanent(error: Error) -> Self {
        Failure {
            error,
            retryable: false,
            retry_after: None,
        }
    }
}

/// Runs `op` until it succeeds, fails permanently, runs out of attempts, or the next
/// wait would end after `deadline`. `op` receives the attempt number (from 1).
pub async fn run<T, F, Fut>(policy: RetryPolicy, deadline: Instant, mut op: F) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempt = 1;
    loop {
        let failure = match tokio::time::timeout_at(deadline, op(attempt)).await {
            Err(_) => return Err(Error::Deadline),
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(failure)) => failure,
        };
        if !failure.retryable || attempt >= policy.max_attempts {
            return Err(failure.error);
        }
        let wait = policy.delay(attempt, failure.retry_after, rand::random::<f64>());
        if Instant::now() + wait >= deadline {
            tracing::warn!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retry would pass the deadline"
            );
            return Err(failure.error);
        }
        tracing::info!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %failure.error,
            "transient failure, retrying"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date. Capped at five minutes.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(Duration::from_secs(300)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UpstreamProblem;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };

    #[test]
    fn backoff_grows_exponentially_with_full_jitter_and_a_cap() {
        assert_eq!(POLICY.delay(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(POLICY.delay(3, None, 1.0), Duration::from_millis(400));
        assert_eq!(POLICY.delay(3, None, 0.5), Duration::from_millis(200));
        assert_eq!(POLICY.delay(30, None, 1.0), Duration::from_secs(2));
        assert_eq!(POLICY.delay(2, None, 0.0), Duration::ZERO);
        assert_eq!(
            POLICY.delay(1, Some(Duration::from_secs(3)), 0.1),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("99999", now),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn run_retries_transient_failures_then_gives_up() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let fast = RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..POLICY
        };
        let mut calls = 0;
        let out = run(fast, deadline, |n| {
            calls += 1;
            async move {
                if n < 3 {
                    Err(Failure::transient(Error::upstream(
                        "test",
                        UpstreamProblem::Status {
                            status: 503,
                            veriff_code: None,
                        },
                    )))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out.unwrap(), 3);
        assert_eq!(calls, 3);

        let mut calls = 0;
        let out: Result<(), _> = run(fast, deadline, |_| {
            calls += 1;
            async {
                Err(Failure::permanent(Error::upstream(
                    "test",
                    UpstreamProblem::Status {
                        status: 404,
                        veriff_code: None,
                    },
                )))
            }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls, 1);
    }

    // The tests below run on tokio's paused clock: a sleep advances virtual time at once, so
    // the time a run took is exactly the waits it made.

    #[tokio::test(start_paused = true)]
    async fn run_stops_at_once_when_a_retry_after_would_pass_the_deadline() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(50);
        let mut calls = 0;
        let out: Result<(), _> = run(POLICY, deadline, |_| {
            calls += 1;
            async {
                Err(Failure {
                    retry_after: Some(Duration::from_secs(5)),
                    ..Failure::transient(Error::upstream(
                        "test",
                        UpstreamProblem::Status {
                            status: 429,
                            veriff_code: None,
                        },
                    ))
                })
            }
        })
        .await;
        assert!(matches!(out, Err(Error::Upstream(_))));
        assert_eq!(calls, 1);
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait at all");
    }

    #[tokio::test(start_paused = true)]
    async fn run_waits_exactly_the_retry_after_a_server_asks_for() {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let out = run(POLICY, deadline, |n| async move {
            if n == 1 {
                Err(Failure {
                    // More than max_delay (2 s): the server's wait wins.
                    retry_after: Some(Duration::from_secs(7)),
                    ..Failure::transient(Error::upstream(
                        "test",
                        UpstreamProblem::Status {
                            status: 429,
                            veriff_code: None,
                        },
                    ))
                })
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(out.unwrap(), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn run_backs_off_within_the_policy_between_attempts() {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let out: Result<(), _> = run(POLICY, deadline, |_| async {
            Err(Failure::transient(Error::upstream(
                "test",
                UpstreamProblem::Status {
                    status: 503,
                    veriff_code: None,
                },
            )))
        })
        .await;
        assert!(matches!(out, Err(Error::Upstream(_))));
        // Three waits, each at most 100, 200 and 400 ms.
        assert!(
            started.elapsed() <= Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_still_running_at_the_deadline_is_a_deadline_error() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        let out: Result<(), _> = run(POLICY, deadline, |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        })
        .await;
        assert!(matches!(out, Err(Error::Deadline)), "{out:?}");
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }
}
