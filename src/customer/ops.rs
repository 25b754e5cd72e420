//! The operator's work on one customer's evidence: `retain` (extend Object Lock retention
//! to a date, never shorten), `hold` and `release` (legal hold, with a reason on record),
//! and `erase` (delete every version once every retention is over and nothing is held,
//! leaving an erasure record that tells `verify` the sessions were erased on purpose).
//!
//! Every operation works on every version of every object the customer's sessions hold
//! (files, manifests, signatures, webhook bodies) and on their index entries; each is
//! idempotent, so an interrupted run is resumed by running it again. Requests are spaced
//! by a rate when one is given, and run a few at a time.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;

use super::locks::{Mode, Retention};
use super::plan::{self, Blocker, LockedVersion, RetainProblem, RetainStep};
use super::{CustomerArchive, Found};
use crate::domain::SafeId;
use crate::error::Error;
use crate::ledger::format::{Erasure, erasure_key, ledger_prefix, rfc3339};
use crate::store::ListedVersion;
use crate::veriff::RateLimiter;

/// Lock calls in flight at once.
const CONCURRENCY: usize = 8;

/// Why an operation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The bucket has no Object Lock: retention and holds cannot be set.
    #[error(
        "the bucket has no Object Lock: retention and legal holds cannot be set (Object Lock \
         is turned on when a bucket is created; see docs/deploy.md, Object Lock)"
    )]
    NoObjectLock,
    /// A version without retention, and no mode to give it.
    #[error(transparent)]
    NoMode(#[from] RetainProblem),
    /// S3 failed or refused.
    #[error(transparent)]
    Storage(#[from] Error),
}

/// How an operation runs.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    /// Only say what would change.
    pub dry_run: bool,
    /// At most this many S3 requests a second.
    pub rate: Option<f64>,
}

/// What `retain` did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainReport {
    /// Versions looked at (delete markers aside).
    pub versions: usize,
    /// Versions extended (or, in a dry run, to extend).
    pub extended: usize,
    /// Versions whose retention already reached the date.
    pub unchanged: usize,
    /// Whether nothing was changed (a dry run).
    pub dry_run: bool,
}

/// What `hold` or `release` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldReport {
    /// Versions set (or, in a dry run, to set).
    pub versions: usize,
    /// The record of the hold or release (`None` in a dry run).
    pub record: Option<String>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// What `erase` did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum EraseOutcome {
    /// Versions still locked or held: nothing deleted.
    Refused {
        /// Why, version by version.
        blockers: Vec<Blocker>,
    },
    /// Every version deleted.
    Erased {
        /// Versions (and delete markers) deleted.
        versions: usize,
        /// The erasure record.
        record: String,
    },
    /// A dry run: what would be deleted.
    WouldErase {
        /// Versions (and delete markers).
        versions: usize,
    },
}

impl CustomerArchive {
    /// The lock state of each version (delete markers have none).
    pub async fn lock_states(
        &self,
        versions: Vec<ListedVersion>,
        pace: &Pace,
    ) -> Result<Vec<LockedVersion>, Error> {
        let limiter = pace.rate.map(|r| Arc::new(RateLimiter::per_second(r)));
        futures_util::stream::iter(versions)
            .map(|v| {
                let limiter = limiter.clone();
                async move {
                    if v.delete_marker {
                        return Ok(LockedVersion {
                            key: v.key,
                            version_id: v.version_id,
                            delete_marker: true,
                            retention: None,
                            held: false,
                        });
                    }
                    if let Some(l) = &limiter {
                        l.acquire().await;
                    }
                    let (retention, held) = self.locks.state(&v.key, &v.version_id).await?;
                    Ok(LockedVersion {
                        key: v.key,
                        version_id: v.version_id,
                        delete_marker: false,
                        retention,
                        held,
                    })
                }
            })
            .buffered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// Extends the retention of every version of the customer's evidence to `until`
    /// (never shortens). A version without retention gets `mode`, or the bucket's default.
    pub async fn retain(
        &self,
        found: &Found,
        until: SystemTime,
        mode: Option<Mode>,
        pace: &Pace,
    ) -> Result<RetainReport, OpsError> {
        let default_mode = self
            .locks
            .configuration()
            .await?
            .ok_or(OpsError::NoObjectLock)?;
        let until = plan::to_the_second(until);
        let versions = self.versions(found).await?;
        let states = self.lock_states(versions, pace).await?;
        let live: Vec<&LockedVersion> = states.iter().filter(|v| !v.delete_marker).collect();
        let steps = plan::retain_steps(&states, until, mode.or(default_mode))?;
        let mut report = RetainReport {
            versions: live.len(),
            dry_run: pace.dry_run,
            ..RetainReport::default()
        };
        let mut changes = Vec::new();
        for (version, step) in live.into_iter().zip(steps) {
            match step {
                RetainStep::Unchanged => report.unchanged += 1,
                RetainStep::Extend(mode) => {
                    report.extended += 1;
                    changes.push((version, Retention { mode, until }));
                }
            }
        }
        if !pace.dry_run {
            self.each(changes, pace, |(v, r)| async move {
                self.locks.set_retention(&v.key, &v.version_id, r).await
            })
            .await?;
        }
        Ok(report)
    }

    /// Sets (`on`) or clears a legal hold on every version of the customer's evidence,
    /// and records why, by whom and when (`<prefix>ledger/holds/`).
    pub async fn hold(
        &self,
        found: &Found,
        on: bool,
        reason: &str,
        by: &str,
        pace: &Pace,
    ) -> Result<HoldReport, OpsError> {
        self.locks
            .configuration()
            .await?
            .ok_or(OpsError::NoObjectLock)?;
        let versions: Vec<ListedVersion> = (self.versions(found).await?)
            .into_iter()
            .filter(|v| !v.delete_marker)
            .collect();
        let mut report = HoldReport {
            versions: versions.len(),
            record: None,
            dry_run: pace.dry_run,
        };
        if pace.dry_run {
            return Ok(report);
        }
        self.each(versions, pace, |v| async move {
            self.locks.set_legal_hold(&v.key, &v.version_id, on).await
        })
        .await?;
        let at = SystemTime::now();
        let key = format!(
            "{}holds/{}-{}.json",
            ledger_prefix(&self.prefix),
            humantime::format_rfc3339_micros(at)
                .to_string()
                .replace(['-', ':', '.'], ""),
            &found.customer.subject[..16]
        );
        let record = serde_json::json!({
            "schema": "veriff-archiver/legal-hold/v1",
            "action": if on { "hold" } else { "release" },
            "field": found.customer.field,
            "subject": found.customer.subject,
            "sessions": found.sessions.iter().map(|s| &s.session_id).collect::<Vec<_>>(),
            "reason": reason,
            "by": by,
            "at": rfc3339(at),
        });
        let body = Bytes::from(serde_json::to_vec_pretty(&record).expect("JSON"));
        self.store
            .create(&key, body, "application/json", &[])
            .await?;
        report.record = Some(key);
        Ok(report)
    }

    /// Deletes every version of the customer's evidence when every retention is over and
    /// nothing is held at `now`; otherwise deletes nothing and says why. The erasure record
    /// is written first (so a run cut short is resumed from the index, whose entries go
    /// last), then the session folders' versions, then the index entries.
    pub async fn erase(
        &self,
        found: &Found,
        by: &str,
        now: SystemTime,
        pace: &Pace,
    ) -> Result<EraseOutcome, OpsError> {
        let versions = self.versions(found).await?;
        // Without Object Lock nothing can be locked or held (and S3 refuses the lock reads).
        let states = if self.locks.configuration().await?.is_some() {
            self.lock_states(versions.clone(), pace).await?
        } else {
            Vec::new()
        };
        let blockers = plan::erase_blockers(&states, now);
        if !blockers.is_empty() {
            return Ok(EraseOutcome::Refused { blockers });
        }
        if pace.dry_run {
            return Ok(EraseOutcome::WouldErase {
                versions: versions.len(),
            });
        }
        let record = erasure_key(&self.prefix, now, &found.customer.subject);
        let erasure = Erasure {
            subject: found.customer.subject.clone(),
            sessions: found
                .sessions
                .iter()
                .filter_map(|s| SafeId::parse(s.session_id.clone()).ok())
                .collect(),
            erased_at: rfc3339(now),
            by: by.to_string(),
            record: record.clone(),
        };
        let body = Bytes::from(serde_json::to_vec_pretty(&erasure).expect("JSON"));
        self.store
            .create(&record, body, "application/json", &[])
            .await?;
        let index = crate::index::index_prefix(&self.prefix);
        let (entries, evidence): (Vec<_>, Vec<_>) = versions
            .into_iter()
            .partition(|v| v.key.starts_with(&index));
        let count = entries.len() + evidence.len();
        for batch in [evidence, entries] {
            self.each(batch, pace, |v| async move {
                self.locks.delete_version(&v.key, &v.version_id).await
            })
            .await?;
        }
        Ok(EraseOutcome::Erased {
            versions: count,
            record,
        })
    }

    /// Runs `call` on each item, a few at a time, spaced by the pace's rate.
    async fn each<T, F, Fut>(&self, items: Vec<T>, pace: &Pace, call: F) -> Result<(), Error>
    where
        F: Fn(T) -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let limiter = pace.rate.map(RateLimiter::per_second);
        let limiter = &limiter;
        let call = &call;
        futures_util::stream::iter(items)
            .map(|item| async move {
                if let Some(l) = limiter {
                    l.acquire().await;
                }
                call(item).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }
}
