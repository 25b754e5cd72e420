//! A request-rate cap shared by every Veriff call of a process (`backfill --rate`): Veriff
//! publishes no rate limit, so a bulk job spaces its requests evenly instead of bursting.
//!
//! Each caller takes the next free slot, `1 / rate` after the previous one, and waits for
//! it. Slots are handed out under a lock, so the cap holds across any number of tasks.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most `rate` requests per second, evenly spaced.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `rate` requests per second (at least one per hour).
    pub fn per_second(rate: f64) -> RateLimiter {
        let rate = rate.max(1.0 / 3600.0);
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_across_tasks() {
        let limiter = std::sync::Arc::new(RateLimiter::per_second(10.0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                limiter.acquire().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap() - started);
        }
        times.sort();
        // 20 requests at 10/s: the first at once, the last after 1.9 s, 100 ms apart.
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[19], Duration::from_millis(1900));
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
        }
    }

    #[test]
    fn slow_rates_are_kept_down_to_one_an_hour() {
        assert_eq!(
            RateLimiter::per_second(0.5).interval,
            Duration::from_secs(2)
        );
        assert_eq!(
            RateLimiter::per_second(0.0).interval,
            Duration::from_secs(3600)
        );
        assert_eq!(
            RateLimiter::per_second(-3.0).interval,
            Duration::from_secs(3600)
        );
    }
}
