//! What a backfill run counts and reports: the running [`BackfillTally`], its
//! [`Summary`], the failed sessions and invalid lines (at most [`MAX_LISTED`] of each, the
//! counts exact), and the [`Report`] the CLI prints as JSON.

use serde::Serialize;

use super::{Done, Entry, Invalid};
use crate::domain::SafeId;

/// Failed sessions and invalid lines listed at most (each); the counts stay exact.
pub const MAX_LISTED: usize = 10_000;

/// Counts of the run (the `summary` of the JSON document).
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Non-blank input lines after the header: ids read (with invalid and duplicate ones).
    pub sessions_read: u64,
    /// Distinct valid session ids read.
    pub distinct: u64,
    /// Repeated ids (skipped).
    pub duplicates: u64,
    /// Lines that are not session ids (listed in `invalid`).
    pub invalid: u64,
    /// Sessions archived now (at least one manifest written; with `--dry-run`: would be).
    pub archived: u64,
    /// Sessions whose every manifest was already there (nothing downloaded).
    pub already_archived: u64,
    /// Sessions without a decision yet.
    pub pending: u64,
    /// Decisions whose status `ARCHIVE_STATUSES` leaves out.
    pub ignored: u64,
    /// Sessions that failed (listed in `failed`).
    pub failed: u64,
    /// Sessions stopped by Ctrl-C (nothing written for them; a rerun finishes them).
    pub interrupted: u64,
    /// `--enqueue`: sessions whose decision was sent to the archive queue.
    pub queued: u64,
    /// `--enqueue`: messages sent (decisions, and other attempts with `--all-attempts`).
    pub messages_sent: u64,
    /// Other attempts archived now (`--all-attempts`).
    pub attempts_archived: u64,
    /// Other attempts already archived (`--all-attempts`).
    pub attempts_already_archived: u64,
    /// Files downloaded and stored (with `--dry-run`: would be).
    pub files_stored: u64,
    /// Files reused from an earlier manifest, without a download.
    pub files_reused: u64,
    /// Bytes of the files the manifests written list.
    pub bytes: u64,
    /// Wall time of the run.
    pub elapsed_seconds: f64,
    /// Sessions processed per second.
    pub sessions_per_second: f64,
}

/// A failed session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    /// The session id.
    pub session_id: String,
    /// The error's stable code (`veriff_unavailable`, `storage_unavailable`...).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// Entries counted but beyond [`MAX_LISTED`].
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotListed {
    /// Failed sessions not listed.
    pub failed: u64,
    /// Invalid lines not listed.
    pub invalid: u64,
}

/// The running tally of a backfill (not the function's per-invocation metrics).
#[derive(Debug, Default, Clone)]
pub struct BackfillTally {
    /// The counts.
    pub summary: Summary,
    /// Failed sessions, in completion order (at most [`MAX_LISTED`]).
    pub failed: Vec<Failed>,
    /// Invalid lines, in input order (at most [`MAX_LISTED`]).
    pub invalid: Vec<Invalid>,
    /// What is counted beyond [`MAX_LISTED`].
    pub not_listed: NotListed,
    /// Entries handled (lines after the header, blank ones included).
    pub entries: u64,
}

impl BackfillTally {
    /// Counts one input entry.
    pub fn entry(&mut self, entry: &Entry) {
        self.entries += 1;
        let s = &mut self.summary;
        match entry {
            Entry::Blank => {}
            Entry::Duplicate => {
                s.sessions_read += 1;
                s.duplicates += 1;
            }
            Entry::Invalid(invalid) => {
                s.sessions_read += 1;
                s.invalid += 1;
                if self.invalid.len() < MAX_LISTED {
                    self.invalid.push(invalid.clone());
                } else {
                    self.not_listed.invalid += 1;
                }
            }
            Entry::Session(_) => {
                s.sessions_read += 1;
                s.distinct += 1;
            }
        }
    }

    /// Counts what was done for session `id`.
    pub fn done(&mut self, id: &SafeId, done: Done) {
        let s = &mut self.summary;
        match done {
            Done::Archived { already, work } => {
                if already {
                    s.already_archived += 1;
                } else {
                    s.archived += 1;
                }
                s.attempts_archived += work.attempts_archived;
                s.attempts_already_archived += work.attempts_already;
                s.files_stored += work.files_stored;
                s.files_reused += work.files_reused;
                s.bytes += work.bytes;
            }
            Done::Pending => s.pending += 1,
            Done::Ignored => s.ignored += 1,
            Done::Interrupted => s.interrupted += 1,
            Done::Queued { messages } => {
                s.queued += 1;
                s.messages_sent += messages;
            }
            Done::Failed { code, message } => {
                s.failed += 1;
                if self.failed.len() < MAX_LISTED {
                    self.failed.push(Failed {
                        session_id: id.to_string(),
                        code,
                        message,
                    });
                } else {
                    self.not_listed.failed += 1;
                }
            }
        }
    }

    /// The counts of a progress line.
    pub fn progress_message(&self) -> String {
        let s = &self.summary;
        format!(
            "archived {} · already {} · queued {} · pending {} · failed {} · invalid {}",
            s.archived, s.already_archived, s.queued, s.pending, s.failed, s.invalid
        )
    }

    /// Sets the wall time and the rate of sessions per second.
    pub fn finish(&mut self, elapsed_seconds: f64) {
        let s = &mut self.summary;
        s.elapsed_seconds = (elapsed_seconds * 1000.0).round() / 1000.0;
        s.sessions_per_second = if elapsed_seconds > 0.0 {
            ((s.distinct as f64 / elapsed_seconds) * 100.0).round() / 100.0
        } else {
            0.0
        };
    }
}

/// The whole run, as `backfill --json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// No session failed and the run was not interrupted.
    pub ok: bool,
    /// The process's exit code: 0, 1 or 130.
    pub exit_code: u8,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// `--dry-run`: nothing was written; counts say what would be done.
    pub dry_run: bool,
    /// `--all-attempts`.
    pub all_attempts: bool,
    /// `--enqueue`: decisions were sent to the archive queue, not archived here.
    pub enqueue: bool,
    /// The archive bucket.
    pub bucket: String,
    /// The key prefix.
    pub prefix: String,
    /// The counts.
    pub summary: Summary,
    /// Failed sessions, in completion order (at most [`MAX_LISTED`]).
    pub failed: Vec<Failed>,
    /// Invalid lines, in input order (at most [`MAX_LISTED`]).
    pub invalid: Vec<Invalid>,
    /// Failed sessions and invalid lines counted but not listed (beyond [`MAX_LISTED`]).
    pub not_listed: NotListed,
}
