//! Backfilling past sessions: archive sessions decided before the function was deployed,
//! or whose webhooks were lost (Veriff stops retrying after 7 days), through the same
//! [`Archiver`] as a webhook.
//!
//! For each session id: `GET /v1/sessions/{id}/decision`; a session without a decision yet
//! is `pending` (not an error); a decision is archived with `decisionSource:
//! "decision_endpoint"`, and costs no media download when already archived.
//!
//! - `full_auto` (Veriff's Self-Serve Essential plan, whose results are Full Auto webhooks):
//!   Veriff's API reference documents no decision endpoint for Full Auto sessions, so each
//!   session's decision is its newest attempt of `GET /v1/sessions/{id}/attempts`, when its
//!   status there is a decision status, archived as a Full Auto decision with
//!   `decisionSource: "attempts_listing"`.
//! - `all_attempts`: every other attempt of the session too, each in its own folder with
//!   its own manifest, from the attempts listing (its status as listed, no time, code or
//!   reason). A failure of any attempt fails the session.
//! - `dry_run`: plans instead of archiving; `enqueue`: sends the decisions to the archive
//!   queue instead.
//!
//! [`run`] drives a whole input ([`input::Reader`]) at a given concurrency until the end or
//! until cancelled (Ctrl-C in the CLI): the sessions in flight abort their uploads and
//! write no manifest, and running it again finishes the job. The CLI parses arguments and
//! prints; everything else is here.

pub mod input;
mod report;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::app::App;
use crate::archive::{Origin, OutcomeKind, Plan};
use crate::domain::{Decision, DecisionRecord, DecisionStatus, SafeId, WebhookKind};
use crate::error::{Error, QueueError, QueueProblem, UpstreamProblem};
use crate::manifest::DecisionSource;
use crate::media::newest_attempt;
use crate::queue::{DecisionMessage, DecisionQueue};
use crate::units::{human_bytes, plural};

pub use input::{Entry, Format, InputError, Invalid, Reader};
pub use report::{BackfillTally, Failed, MAX_LISTED, NotListed, Report, Summary};

/// The time one session (its decision and, with `all_attempts`, every attempt) may take.
const SESSION_BUDGET: Duration = Duration::from_secs(15 * 60);
/// Input entries read ahead of the sessions in flight.
const READ_AHEAD: usize = 1024;

/// What a backfill does with each session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also archive every other attempt of each session.
    pub all_attempts: bool,
    /// Decisions from the attempts listing, as Full Auto decisions (the Essential plan).
    pub full_auto: bool,
    /// Plan only: read decisions and listings, write nothing.
    pub dry_run: bool,
    /// Send decisions to the archive queue instead of archiving them here.
    pub enqueue: bool,
}

/// What was done (or, with `dry_run`, would be done) for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Archived now (`already` = every manifest was there already).
    Archived {
        /// Nothing was written: every manifest was there.
        already: bool,
        /// What was stored or reused.
        work: Work,
    },
    /// No decision yet.
    Pending,
    /// The decision's status is not in `ARCHIVE_STATUSES`: ignored, as the webhook would.
    Ignored,
    /// Failed: the error's code and message.
    Failed {
        /// The error's stable code.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Stopped before it was complete (nothing written for the unfinished part).
    Interrupted,
    /// Sent to the queue: this many messages (the decision, and other attempts).
    Queued {
        /// Messages sent.
        messages: u64,
    },
}

/// Counts of what one session did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Other attempts archived now.
    pub attempts_archived: u64,
    /// Other attempts already archived.
    pub attempts_already: u64,
    /// Files downloaded and stored (dry run: would be).
    pub files_stored: u64,
    /// Files reused without a download.
    pub files_reused: u64,
    /// Bytes of the files the manifests list.
    pub bytes: u64,
}

impl Work {
    /// A manifest of `files` files written (or planned), `reused` of them without a download.
    fn add(&mut self, files: usize, reused: usize, bytes: u64) {
        self.files_stored += files.saturating_sub(reused) as u64;
        self.files_reused += reused as u64;
        self.bytes += bytes;
    }
}

/// One backfill: the app's archiver, Veriff client and queue, the options, and the cancel
/// signal every session watches.
#[derive(Debug)]
pub struct Backfill<'a> {
    app: &'a App,
    options: Options,
    cancel: watch::Receiver<bool>,
}

/// Completes when the cancel signal is raised (never if its sender is gone without it).
async fn cancelled(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl<'a> Backfill<'a> {
    /// A backfill through `app`, stopped when `cancel` turns `true`. With `enqueue`, the
    /// app must have a queue ([`crate::app::AppBuilder::enqueue_to`]).
    pub fn new(app: &'a App, options: Options, cancel: watch::Receiver<bool>) -> Self {
        Backfill {
            app,
            options,
            cancel,
        }
    }

    /// `work`, or `None` if cancelled first.
    async fn or_cancel<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = cancelled(self.cancel.clone()) => None,
            value = work => Some(value),
        }
    }

    /// Processes one session; with `dry_run`, only plans it (and says so in the line).
    pub async fn session(&self, id: &SafeId) -> (Done, Option<String>) {
        let deadline = Instant::now() + SESSION_BUDGET;
        let (decision, source) = match self.find_decision(id, deadline).await {
            Ok(found) => found,
            Err(done) => return (done, None),
        };
        if !self.app.config.archive.archives(&decision.record.status) {
            return (Done::Ignored, None);
        }
        let result = match (self.options.enqueue, self.app.queue()) {
            (true, Some(queue)) => self
                .enqueue(queue, &decision, source, deadline)
                .await
                .map(|messages| (Done::Queued { messages }, None)),
            (true, None) => Err(QueueError {
                problem: QueueProblem::NoClient,
                source: None,
            }
            .into()),
            (false, _) if self.options.dry_run => self.plan(&decision, deadline).await,
            (false, _) => self.archive(&decision, source, deadline).await,
        };
        match result {
            Ok(done) => done,
            Err(e) => (failed(e), None),
        }
    }

    /// The session's decision and where it came from; `Err` with what the session is
    /// otherwise (pending, failed, interrupted).
    async fn find_decision(
        &self,
        id: &SafeId,
        deadline: Instant,
    ) -> Result<(Decision, DecisionSource), Done> {
        let (found, source) = if self.options.full_auto {
            (
                self.or_cancel(self.full_auto_decision(id, deadline)).await,
                DecisionSource::AttemptsListing,
            )
        } else {
            (
                self.or_cancel(self.app.veriff.decision(id, deadline)).await,
                DecisionSource::DecisionEndpoint,
            )
        };
        match found {
            None => Err(Done::Interrupted),
            Some(Err(e)) => Err(failed(e)),
            Some(Ok(None)) => Err(Done::Pending),
            Some(Ok(Some(decision))) => Ok((decision, source)),
        }
    }

    /// `full_auto`: the session's newest attempt as a Full Auto decision, when its status
    /// in the attempts listing is a decision (`approved`, `declined`...); `None` while it
    /// is not (`created`, `submitted`...).
    async fn full_auto_decision(
        &self,
        session_id: &SafeId,
        deadline: Instant,
    ) -> Result<Option<Decision>, Error> {
        let attempts = self.app.veriff.attempts(session_id, deadline).await?;
        let Some(newest) = newest_attempt(&attempts) else {
            return Ok(None);
        };
        let id = SafeId::parse(newest.id.clone().unwrap_or_default())
            .map_err(|_| Error::upstream("session attempts", UpstreamProblem::UnsafeAttemptId))?;
        let Some(status) = newest
            .status
            .as_deref()
            .filter(|s| DecisionStatus::parse(s).is_some())
        else {
            return Ok(None);
        };
        Ok(Some(Decision::new(
            session_id.clone(),
            Some(id),
            DecisionRecord::new(WebhookKind::FullAuto, status),
        )))
    }

    /// Sends the decision and, with `all_attempts`, every other attempt to the queue.
    /// Returns the messages sent. A duplicate (a rerun) costs the consumer nothing.
    async fn enqueue(
        &self,
        queue: &DecisionQueue,
        decision: &Decision,
        source: DecisionSource,
        deadline: Instant,
    ) -> Result<u64, Error> {
        let mut messages = vec![DecisionMessage::new(decision, source)];
        if self.options.all_attempts {
            let decided = match &decision.attempt_id {
                Some(id) => id.to_string(),
                None => {
                    let attempts = self
                        .or_cancel(self.app.veriff.attempts(&decision.session_id, deadline))
                        .await
                        .ok_or(Error::Cancelled)??;
                    newest_attempt(&attempts)
                        .and_then(|a| a.id.clone())
                        .unwrap_or_default()
                }
            };
            for attempt in self.earlier_attempts(decision, &decided, deadline).await? {
                messages.push(DecisionMessage::new(
                    &attempt,
                    DecisionSource::AttemptsListing,
                ));
            }
        }
        for message in &messages {
            self.or_cancel(queue.send(message))
                .await
                .ok_or(Error::Cancelled)??;
        }
        Ok(messages.len() as u64)
    }

    /// Archives the decision and, with `all_attempts`, every other attempt.
    async fn archive(
        &self,
        decision: &Decision,
        source: DecisionSource,
        deadline: Instant,
    ) -> Result<(Done, Option<String>), Error> {
        let mut work = Work::default();
        let archiver = self.app.archiver();
        let origin = Origin { source, body: None };
        let outcome = archiver
            .archive_from(decision, origin, deadline, cancelled(self.cancel.clone()))
            .await?;
        let mut already = outcome.kind == OutcomeKind::AlreadyArchived;
        if !already {
            work.add(outcome.files, outcome.reused, outcome.bytes);
        }
        if self.options.all_attempts {
            for attempt in self
                .earlier_attempts(decision, &outcome.attempt_id, deadline)
                .await?
            {
                let origin = Origin {
                    source: DecisionSource::AttemptsListing,
                    body: None,
                };
                let done = archiver
                    .archive_from(&attempt, origin, deadline, cancelled(self.cancel.clone()))
                    .await?;
                match done.kind {
                    OutcomeKind::Archived => {
                        already = false;
                        work.attempts_archived += 1;
                        work.add(done.files, done.reused, done.bytes);
                    }
                    OutcomeKind::AlreadyArchived => work.attempts_already += 1,
                }
            }
        }
        Ok((Done::Archived { already, work }, None))
    }

    /// What archiving would do, as a line for people.
    async fn plan(
        &self,
        decision: &Decision,
        deadline: Instant,
    ) -> Result<(Done, Option<String>), Error> {
        let archiver = self.app.archiver();
        let plan = self
            .or_cancel(archiver.plan(decision, deadline))
            .await
            .ok_or(Error::Cancelled)??;
        let mut work = Work::default();
        let mut already = plan.already_archived;
        let status = input::shown(&decision.record.status);
        let mut parts = vec![describe(
            format!("attempt {} ({status})", plan.attempt_id),
            &plan,
            &mut work,
        )];
        if self.options.all_attempts {
            for attempt in self
                .earlier_attempts(decision, &plan.attempt_id, deadline)
                .await?
            {
                let earlier = self
                    .or_cancel(archiver.plan(&attempt, deadline))
                    .await
                    .ok_or(Error::Cancelled)??;
                if earlier.already_archived {
                    work.attempts_already += 1;
                } else {
                    already = false;
                    work.attempts_archived += 1;
                }
                let what = format!(
                    "attempt {} ({}, from the attempts listing)",
                    earlier.attempt_id,
                    input::shown(&attempt.record.status)
                );
                parts.push(describe(what, &earlier, &mut work));
            }
        }
        let line = format!("{}  {}", decision.session_id, parts.join("; "));
        Ok((Done::Archived { already, work }, Some(line)))
    }

    /// The session's attempts other than `decided`, each as a decision built from the
    /// attempts listing: its status as listed (`unknown` when none), no time, code or
    /// reason, of the same webhook kind as the session's decision.
    async fn earlier_attempts(
        &self,
        decision: &Decision,
        decided: &str,
        deadline: Instant,
    ) -> Result<Vec<Decision>, Error> {
        let session_id = &decision.session_id;
        let attempts = self
            .or_cancel(self.app.veriff.attempts(session_id, deadline))
            .await
            .ok_or(Error::Cancelled)??;
        let mut out: Vec<Decision> = Vec::new();
        for attempt in attempts {
            let Some(id) = attempt.id else { continue };
            if id == decided {
                continue;
            }
            let id = SafeId::parse(id).map_err(|_| {
                Error::upstream("session attempts", UpstreamProblem::UnsafeAttemptId)
            })?;
            if out.iter().any(|d| d.attempt_id.as_ref() == Some(&id)) {
                continue;
            }
            let status = attempt
                .status
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "unknown".into());
            out.push(Decision::new(
                session_id.clone(),
                Some(id),
                DecisionRecord::new(decision.record.webhook, status),
            ));
        }
        Ok(out)
    }
}

/// A session that failed with `e` (interrupted, when it was cancelled).
fn failed(e: Error) -> Done {
    match e {
        Error::Cancelled => Done::Interrupted,
        e => Done::Failed {
            code: e.code(),
            message: e.to_string(),
        },
    }
}

/// One attempt's plan, as a line for people; counts its work.
fn describe(what: String, plan: &Plan, work: &mut Work) -> String {
    if plan.already_archived {
        return format!("{what}: already archived");
    }
    work.add(plan.files, plan.reusable, plan.bytes);
    format!(
        "{what}: {} ({}), {} reusable, {} skipped",
        plural(plan.files as u64, "file", "files"),
        human_bytes(plan.bytes),
        plan.reusable,
        plan.skipped
    )
}

/// What [`run`] tells its observer as it goes.
#[derive(Debug)]
pub enum Progress<'e> {
    /// An entry was handled (a session processed, or a line skipped); the tally so far.
    Entry {
        /// The entry.
        entry: &'e Entry,
        /// What was done, for a session: the result, and its line for people when there
        /// is one (a dry run's plan).
        done: Option<(&'e Done, Option<&'e str>)>,
        /// The counts so far.
        tally: &'e BackfillTally,
    },
}

/// The end of a run: the counts, whether it was cancelled, and the input's read error
/// (the entries read before it were processed).
#[derive(Debug)]
pub struct RunEnd {
    /// The counts.
    pub tally: BackfillTally,
    /// Stopped by the cancel signal.
    pub interrupted: bool,
    /// The input broke off.
    pub read_error: Option<std::io::Error>,
}

/// Processes every entry of `reader`, `concurrency` sessions at once, until the input ends
/// or `backfill`'s cancel signal is raised; `observe` sees each entry as it completes. The
/// reader runs on its own thread (blocking reads), a bounded number of entries ahead.
pub async fn run(
    backfill: &Backfill<'_>,
    reader: Reader,
    concurrency: usize,
    in_flight: Arc<AtomicUsize>,
    mut observe: impl FnMut(Progress<'_>),
) -> RunEnd {
    let (tx, rx) = mpsc::channel::<std::io::Result<Entry>>(READ_AHEAD);
    std::thread::spawn(move || read_all(reader, tx));
    let entries = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .take_until(cancelled(backfill.cancel.clone()));
    let in_flight = &in_flight;
    let results = entries
        .map(|item| async move {
            let entry = item?;
            let done = match &entry {
                Entry::Session(id) => {
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let done = backfill.session(id).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    Some(done)
                }
                _ => None,
            };
            Ok::<_, std::io::Error>((entry, done))
        })
        .buffer_unordered(concurrency.max(1));
    let mut results = std::pin::pin!(results);
    let mut tally = BackfillTally::default();
    let mut read_error = None;
    while let Some(result) = results.next().await {
        match result {
            Ok((entry, done)) => {
                tally.entry(&entry);
                if let (Entry::Session(id), Some((done, _))) = (&entry, &done) {
                    tally.done(id, done.clone());
                }
                let done = done.as_ref().map(|(d, line)| (d, line.as_deref()));
                observe(Progress::Entry {
                    entry: &entry,
                    done,
                    tally: &tally,
                });
            }
            // The input broke off: finish what is in flight, then report it.
            Err(e) => {
                read_error.get_or_insert(e);
            }
        }
    }
    RunEnd {
        tally,
        interrupted: *backfill.cancel.borrow(),
        read_error,
    }
}

/// Hands every entry of `reader` to `tx`, then its read error if it broke off.
fn read_all(mut reader: Reader, tx: mpsc::Sender<std::io::Result<Entry>>) {
    loop {
        let item = match reader.next_entry() {
            Ok(Some(entry)) => Ok(entry),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let end = item.is_err();
        if tx.blocking_send(item).is_err() || end {
            return;
        }
    }
}
