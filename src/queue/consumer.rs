//! The queue consumer: one SQS batch (from the event source mapping) in, a partial batch
//! response out.
//!
//! Each record is parsed and validated as a [`DecisionMessage`], and archived through the
//! same [`Archiver`] as a webhook. Records of the same decision in one batch are archived
//! once; decisions of the same attempt one after the other (the later reuses the files the
//! earlier stored), other attempts at once. A record whose archive fails (or runs out of invocation time) is named in
//! `batchItemFailures`: SQS makes it visible again after the visibility timeout and, after
//! the queue's maximum receives, moves it to the dead-letter queue. The records that
//! succeeded are deleted and never re-run. A failure never leaves a manifest behind: the
//! archive writes it last.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::archive::{Archiver, Origin, Outcome, OutcomeKind};
use crate::config::Config;
use crate::domain::SafeId;
use crate::error::Error;
use crate::metrics::InvocationTally;
use crate::queue::message::DecisionMessage;

/// Whether a Lambda event is an SQS batch (`Records[0].eventSource == "aws:sqs"`).
pub fn is_sqs_event(event: &serde_json::Value) -> bool {
    event
        .get("Records")
        .and_then(|r| r.as_array())
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(|s| s.as_str())
        == Some("aws:sqs")
}

/// Archives SQS batches.
#[derive(Debug, Clone)]
pub struct Consumer<'a> {
    /// The function's configuration (`ARCHIVE_STATUSES` is applied again).
    pub config: &'a Config,
    /// The archiver every entry point shares.
    pub archiver: &'a Archiver,
}

/// One distinct decision of a batch: its message, the ids of the records that carry it, and
/// the most receives among them.
struct Group {
    message: DecisionMessage,
    message_ids: Vec<String>,
    receives: u32,
}

/// A batch sorted for archiving: the distinct decisions by attempt folder (in order), and
/// the records that failed before any archive (no message id, not a decision message).
struct Batch {
    folders: Vec<Vec<Group>>,
    failures: Vec<String>,
}

impl Batch {
    /// Parses and groups `records`: records of the same decision are archived once;
    /// decisions of the same attempt folder share a group list. Counts rejected messages
    /// in `tally`.
    fn of(records: &[SqsMessage], tally: &mut InvocationTally) -> Batch {
        let mut failures = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (position, record) in records.iter().enumerate() {
            let Some(message_id) = record.message_id.clone().filter(|id| !id.is_empty()) else {
                // The event source mapping always sets the id. Without one the record cannot
                // be named, and an empty identifier fails the whole batch: retried, never lost.
                tracing::error!(
                    record = position,
                    "SQS record without a messageId; the whole batch is retried"
                );
                failures.push(String::new());
                continue;
            };
            let receives = receive_count(record);
            match DecisionMessage::parse(record.body.as_deref()) {
                Ok(message) => match index.get(&message.identity()) {
                    Some(&i) => {
                        groups[i].message_ids.push(message_id);
                        groups[i].receives = groups[i].receives.max(receives);
                    }
                    None => {
                        index.insert(message.identity(), groups.len());
                        groups.push(Group {
                            message,
                            message_ids: vec![message_id],
                            receives,
                        });
                    }
                },
                Err(error) => {
                    tracing::error!(
                        message_id = message_id.as_str(),
                        receives,
                        error = %error,
                        "queue message rejected; it goes to the dead-letter queue after the maximum receives"
                    );
                    failures.push(message_id);
                    tally.failed.push("bad_message");
                }
            }
        }
        Batch {
            folders: by_folder(groups),
            failures,
        }
    }
}

/// Groups of the same attempt folder together, folders in order of first appearance.
fn by_folder(groups: Vec<Group>) -> Vec<Vec<Group>> {
    let mut folders: Vec<Vec<Group>> = Vec::new();
    let mut folder_index: HashMap<(SafeId, Option<SafeId>), usize> = HashMap::new();
    for group in groups {
        let key = (
            group.message.session_id.clone(),
            group.message.attempt_id.clone(),
        );
        let i = *folder_index.entry(key).or_insert_with(|| {
            folders.push(Vec::new());
            folders.len() - 1
        });
        folders[i].push(group);
    }
    folders
}

/// What happened to one distinct decision of a batch.
enum RecordResult {
    Archived(Box<Outcome>, f64),
    Ignored,
    Failed(&'static str, f64),
}

impl Consumer<'_> {
    /// Archives every record of `event` before `deadline`; the answer names the records
    /// that failed. An event that is not an SQS batch is an error: the whole batch is
    /// retried (the event source mapping sends only SQS batches).
    pub async fn handle(
        &self,
        event: serde_json::Value,
        deadline: Instant,
    ) -> Result<(SqsBatchResponse, InvocationTally), serde_json::Error> {
        let event: SqsEvent = serde_json::from_value(event)?;
        let mut tally = InvocationTally::default();
        let started = Instant::now();
        let batch = Batch::of(&event.records, &mut tally);
        let mut failures = batch.failures;
        for (result, ids) in self.archive_folders(batch.folders, deadline).await {
            match result {
                RecordResult::Archived(outcome, ms) => {
                    tally.record(&outcome);
                    tally.archive_ms.push(ms);
                }
                RecordResult::Ignored => tally.ignored += 1,
                RecordResult::Failed(code, ms) => {
                    tally.failed.push(code);
                    tally.archive_ms.push(ms);
                    failures.extend(ids);
                }
            }
        }
        tracing::info!(
            records = event.records.len(),
            archived = tally.archived + tally.already_archived,
            ignored = tally.ignored,
            failed = failures.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "queue batch done"
        );
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        Ok((response, tally))
    }

    /// Archives the decisions of different attempt folders at once, and those of one
    /// folder one after the other, so that a later decision reuses the files the first one
    /// stored instead of downloading them again. The container-wide copy slots
    /// (`COPY_CONCURRENCY`) bound the files in flight across all of them.
    async fn archive_folders(
        &self,
        folders: Vec<Vec<Group>>,
        deadline: Instant,
    ) -> Vec<(RecordResult, Vec<String>)> {
        futures_util::stream::iter(folders)
            .map(|folder| async move {
                let mut results = Vec::new();
                for group in folder {
                    let result = self
                        .archive_one(&group.message, group.receives, deadline)
                        .await;
                    results.push((result, group.message_ids));
                }
                results
            })
            .buffer_unordered(usize::MAX)
            .flat_map(futures_util::stream::iter)
            .collect()
            .await
    }

    async fn archive_one(
        &self,
        message: &DecisionMessage,
        receives: u32,
        deadline: Instant,
    ) -> RecordResult {
        let decision = message.decision();
        let session_id = decision.session_id.as_str();
        let given_attempt_id = decision.attempt_id.as_deref();
        if !self.config.archive.archives(&decision.record.status) {
            tracing::info!(
                session_id,
                attempt_id = given_attempt_id,
                "decision status not archived (ARCHIVE_STATUSES); queue message dropped"
            );
            return RecordResult::Ignored;
        }
        let origin = Origin {
            source: message.source,
            body: None,
        };
        let started = Instant::now();
        let result = self
            .archiver
            .archive_from(&decision, origin, deadline, std::future::pending())
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(outcome) => {
                tracing::info!(
                    session_id,
                    attempt_id = outcome.attempt_id.as_str(),
                    already_archived = outcome.kind == OutcomeKind::AlreadyArchived,
                    files = outcome.files,
                    reused = outcome.reused,
                    bytes = outcome.bytes,
                    receives,
                    "queue message archived"
                );
                RecordResult::Archived(Box::new(outcome), ms)
            }
            Err(error) => {
                log_failure(session_id, given_attempt_id, receives, &error);
                RecordResult::Failed(error.code(), ms)
            }
        }
    }
}

fn log_failure(session_id: &str, attempt_id: Option<&str>, receives: u32, error: &Error) {
    tracing::error!(
        session_id,
        attempt_id,
        receives,
        status = error.status(),
        code = error.code(),
        error = %error,
        "archive failed; the message comes back after the visibility timeout"
    );
}

/// `ApproximateReceiveCount` of a record (0 when absent).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sqs_events_are_told_from_http_events() {
        assert!(is_sqs_event(
            &json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
        ));
        assert!(!is_sqs_event(
            &json!({"Records": [{"eventSource": "aws:s3"}]})
        ));
        assert!(!is_sqs_event(&json!({"Records": []})));
        assert!(!is_sqs_event(&json!({"version": "2.0", "body": "{}"})));
        assert!(!is_sqs_event(&json!({"Records": "aws:sqs"})));
    }

    #[test]
    fn receive_counts_are_read_leniently() {
        let record: SqsMessage = serde_json::from_value(json!({
            "messageId": "m", "attributes": {"ApproximateReceiveCount": "3"}
        }))
        .unwrap();
        assert_eq!(receive_count(&record), 3);
        let record: SqsMessage = serde_json::from_value(json!({"messageId": "m"})).unwrap();
        assert_eq!(receive_count(&record), 0);
    }
}
