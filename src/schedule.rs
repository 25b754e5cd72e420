//! The seal schedule's entry: an EventBridge Scheduled Event (the template's
//! `SealSchedule`) seals the ledger's next digest. One log line and one metrics record per
//! seal; a seal that fails fails the invocation (EventBridge retries it, and the next
//! schedule covers the gap in any case).

use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

use crate::app::App;
use crate::error::Error;
use crate::ledger::SealOutcome;
use crate::metrics::SealTally;

/// Whether `event` is a Scheduled Event of EventBridge (`source` `aws.events`,
/// `detail-type` `Scheduled Event`). Only a principal allowed to invoke the function
/// directly can send one: a Function URL request arrives wrapped in an HTTP envelope.
pub fn is_scheduled_event(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

impl App {
    /// Seals the ledger now; the answer says what was sealed.
    pub async fn seal_on_schedule(&self) -> Result<Value, Error> {
        let started = Instant::now();
        let result = self.sealer.seal(SystemTime::now()).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let mut tally = SealTally::default();
        let answer = match &result {
            Ok(SealOutcome::Sealed(report)) => {
                tally = SealTally {
                    digests: 1,
                    manifests: report.manifests as u64,
                    pending: report.pending as u64,
                    abandoned: report.abandoned as u64,
                    timestamps_delayed: u64::from(
                        self.config.ledger.tsa_url.is_some() && !report.timestamped,
                    ),
                    failures: 0,
                };
                tracing::info!(
                    sequence = report.sequence,
                    manifests = report.manifests,
                    pending = report.pending,
                    abandoned = report.abandoned,
                    erasures = report.erasures,
                    receipts_read = report.receipts_read,
                    signed = report.signed,
                    timestamped = report.timestamped,
                    repaired = report.repaired,
                    elapsed_ms,
                    "ledger sealed"
                );
                json!({"status": "sealed", "sequence": report.sequence, "digest": report.key,
                       "manifests": report.manifests, "pending": report.pending})
            }
            Ok(SealOutcome::UpToDate { sequence }) => {
                tracing::info!(sequence, elapsed_ms, "ledger already sealed up to now");
                json!({"status": "up_to_date", "sequence": sequence})
            }
            Ok(SealOutcome::Raced { sequence }) => {
                tracing::info!(sequence, elapsed_ms, "another seal wrote this digest first");
                json!({"status": "raced", "sequence": sequence})
            }
            Err(error) => {
                tally.failures = 1;
                tracing::error!(code = error.code(), error = %error, elapsed_ms, "seal failed; the next schedule covers the gap");
                json!(null)
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.emit_seal(&tally);
        }
        result.map(|_| answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_eventbridge_scheduled_event_is_one() {
        let scheduled = json!({"version": "0", "detail-type": "Scheduled Event",
            "source": "aws.events", "detail": {}});
        assert!(is_scheduled_event(&scheduled));
        let mut other = scheduled.clone();
        other["source"] = json!("aws.s3");
        assert!(!is_scheduled_event(&other));
        let mut other = scheduled.clone();
        other["detail-type"] = json!("Object Created");
        assert!(!is_scheduled_event(&other));
        assert!(!is_scheduled_event(
            &json!({"body": "{}", "requestContext": {}})
        ));
        assert!(!is_scheduled_event(&json!("aws.events")));
    }
}
