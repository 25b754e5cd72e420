//! CloudWatch metrics in the Embedded Metric Format (EMF): each record is one JSON line on
//! stdout that CloudWatch Logs turns into metrics, with no API call and no added latency.
//!
//! One record per invocation counts what it did (decisions archived, already archived,
//! queued, ignored; webhooks rejected; archives failed; files stored and reused; bytes
//! stored; archive durations; Veriff retries), published without dimensions. Rejections and
//! failures are also published per `ErrorCode` (one record per code seen), the only
//! dimension: a handful of stable codes, never an id, a status from the wire or anything
//! personal.
//!
//! Written by hand: the format is one small documented JSON shape, and a crate such as
//! `metrics_cloudwatch_embedded` would add a global recorder and the `metrics` facade for
//! what is one `serde_json::json!` per line here.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// What one seal did, to be published as metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SealTally {
    /// Digests written (0 or 1).
    pub digests: u64,
    /// Manifests the digest seals.
    pub manifests: u64,
    /// Receipts whose manifest is not there yet.
    pub pending: u64,
    /// Receipts given up.
    pub abandoned: u64,
    /// 1 when an authority is configured and the digest has no token yet.
    pub timestamps_delayed: u64,
    /// 1 when the seal failed (nothing written; the next schedule retries).
    pub failures: u64,
}

/// What one invocation did, to be published as metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InvocationTally {
    /// Decisions archived now (a manifest written).
    pub archived: u64,
    /// Decisions a manifest already recorded.
    pub already_archived: u64,
    /// Decisions sent to the archive queue (queue mode's webhook).
    pub queued: u64,
    /// Authenticated webhooks that were not archivable decisions.
    pub ignored: u64,
    /// Webhooks refused (4xx), by error code.
    pub rejected: Vec<&'static str>,
    /// Archives that failed (5xx, or a failed queue record), by error code.
    pub failed: Vec<&'static str>,
    /// Files downloaded and stored.
    pub files_stored: u64,
    /// Files reused from an earlier manifest, without a download.
    pub files_reused: u64,
    /// Bytes of the files stored.
    pub bytes_stored: u64,
    /// Duration of each archive (successful or not), in milliseconds.
    pub archive_ms: Vec<f64>,
    /// Veriff requests (and whole downloads) retried.
    pub veriff_retries: u64,
    /// Decisions archived with no files because Veriff no longer had their media (an
    /// authenticated 404 to every media listing: the session deleted, or past retention).
    pub media_unavailable: u64,
}

impl InvocationTally {
    /// Counts an archive's outcome: archived or already archived, files and bytes.
    pub fn record(&mut self, outcome: &crate::archive::Outcome) {
        match outcome.kind {
            crate::archive::OutcomeKind::Archived => self.archived += 1,
            crate::archive::OutcomeKind::AlreadyArchived => self.already_archived += 1,
        }
        if outcome.kind == crate::archive::OutcomeKind::Archived {
            self.files_stored += outcome.files.saturating_sub(outcome.reused) as u64;
            self.files_reused += outcome.reused as u64;
            self.bytes_stored += outcome.bytes_stored;
            self.media_unavailable += u64::from(outcome.media_unavailable);
        }
    }
}

/// Where metric records go.
#[derive(Clone)]
enum Sink {
    Stdout,
    Writer(Arc<Mutex<dyn Write + Send>>),
}

/// Emits EMF records in one namespace. Built once per container.
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// The summary's metric names, with their units, in the order records list them
/// (`ArchiveDuration`, in milliseconds, follows when the invocation archived anything).
const COUNTS: [(&str, &str); 11] = [
    ("DecisionsArchived", "Count"),
    ("DecisionsAlreadyArchived", "Count"),
    ("DecisionsQueued", "Count"),
    ("WebhooksIgnored", "Count"),
    ("WebhooksRejected", "Count"),
    ("ArchiveFailures", "Count"),
    ("FilesStored", "Count"),
    ("FilesReused", "Count"),
    ("BytesStored", "Bytes"),
    ("VeriffRetries", "Count"),
    ("DecisionsMediaUnavailable", "Count"),
];

impl Metrics {
    /// Records on the process's stdout (where Lambda collects them).
    pub fn stdout(namespace: impl Into<String>) -> Metrics {
        Metrics {
            namespace: namespace.into(),
            sink: Sink::Stdout,
        }
    }

    /// Records into `writer` (tests).
    pub fn to_writer(
        namespace: impl Into<String>,
        writer: Arc<Mutex<dyn Write + Send>>,
    ) -> Metrics {
        Metrics {
            namespace: namespace.into(),
            sink: Sink::Writer(writer),
        }
    }

    /// The records for `tally`, tagged with the entry point (`webhook`, `queue`): the
    /// summary, then one per rejection code and one per failure code.
    pub fn records(&self, tally: &InvocationTally, entry: &str, at: SystemTime) -> Vec<Value> {
        let timestamp = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let values: [Value; 11] = [
            tally.archived.into(),
            tally.already_archived.into(),
            tally.queued.into(),
            tally.ignored.into(),
            (tally.rejected.len() as u64).into(),
            (tally.failed.len() as u64).into(),
            tally.files_stored.into(),
            tally.files_reused.into(),
            tally.bytes_stored.into(),
            tally.veriff_retries.into(),
            tally.media_unavailable.into(),
        ];
        let mut summary = Map::new();
        let mut declared = Vec::new();
        for ((name, unit), value) in COUNTS.iter().zip(values) {
            declared.push(json!({"Name": name, "Unit": unit}));
            summary.insert((*name).to_string(), value);
        }
        if !tally.archive_ms.is_empty() {
            declared.push(json!({"Name": "ArchiveDuration", "Unit": "Milliseconds"}));
            summary.insert("ArchiveDuration".into(), json!(tally.archive_ms));
        }
        summary.insert("Entry".into(), Value::from(entry));
        summary.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [[]],
                    "Metrics": declared,
                }],
            }),
        );
        let mut records = vec![Value::Object(summary)];
        for (metric, codes) in [
            ("WebhooksRejected", &tally.rejected),
            ("ArchiveFailures", &tally.failed),
        ] {
            let mut by_code: BTreeMap<&str, u64> = BTreeMap::new();
            for code in codes {
                *by_code.entry(code).or_default() += 1;
            }
            for (code, count) in by_code {
                records.push(json!({
                    "_aws": {
                        "Timestamp": timestamp,
                        "CloudWatchMetrics": [{
                            "Namespace": self.namespace,
                            "Dimensions": [["ErrorCode"]],
                            "Metrics": [{"Name": metric, "Unit": "Count"}],
                        }],
                    },
                    "ErrorCode": code,
                    "Entry": entry,
                    metric: count,
                }));
            }
        }
        records
    }

    /// Writes the records of `tally`, one line each.
    pub fn emit(&self, tally: &InvocationTally, entry: &str) {
        let mut text = String::new();
        for record in self.records(tally, entry, SystemTime::now()) {
            text.push_str(&record.to_string());
            text.push('\n');
        }
        self.write(&text);
    }

    /// The record of one seal (entry `seal`): digests written (0 or 1), manifests sealed,
    /// receipts pending and abandoned, a timestamp delayed (an authority is configured and
    /// gave none), and a seal that failed.
    pub fn seal_record(&self, seal: &SealTally, at: SystemTime) -> Value {
        let timestamp = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let values = [
            ("DigestsSealed", seal.digests),
            ("ManifestsSealed", seal.manifests),
            ("ReceiptsPending", seal.pending),
            ("ReceiptsAbandoned", seal.abandoned),
            ("TimestampsDelayed", seal.timestamps_delayed),
            ("SealFailures", seal.failures),
        ];
        let mut record = Map::new();
        let declared: Vec<Value> = values
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .collect();
        for (name, value) in values {
            record.insert(name.to_string(), value.into());
        }
        record.insert("Entry".into(), "seal".into());
        record.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [[]],
                    "Metrics": declared,
                }],
            }),
        );
        Value::Object(record)
    }

    /// Writes the record of one seal.
    pub fn emit_seal(&self, seal: &SealTally) {
        let mut text = self.seal_record(seal, SystemTime::now()).to_string();
        text.push('\n');
        self.write(&text);
    }

    fn write(&self, text: &str) {
        // One write per invocation, so the lines never interleave with log lines.
        let written = match &self.sink {
            Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Sink::Writer(writer) => writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(text.as_bytes()),
        };
        if let Err(error) = written {
            tracing::warn!(error = %error, "could not write the metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_becomes_a_summary_and_one_record_per_code() {
        let metrics = Metrics::stdout("Ns");
        let tally = InvocationTally {
            archived: 1,
            rejected: vec![],
            failed: vec!["storage_unavailable", "conflict", "storage_unavailable"],
            files_stored: 3,
            bytes_stored: 1234,
            archive_ms: vec![12.5, 40.0],
            veriff_retries: 2,
            ..InvocationTally::default()
        };
        let records = metrics.records(
            &tally,
            "queue",
            UNIX_EPOCH + std::time::Duration::from_millis(42),
        );
        assert_eq!(records.len(), 3);
        let summary = &records[0];
        assert_eq!(summary["_aws"]["Timestamp"], 42);
        let directive = &summary["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(directive["Dimensions"], json!([[]]));
        let declared: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(declared.len(), 12);
        for name in &declared {
            assert!(
                summary.get(*name).is_some(),
                "{name} declared without a value"
            );
        }
        assert_eq!(summary["ArchiveFailures"], 3);
        assert_eq!(summary["BytesStored"], 1234);
        assert_eq!(summary["ArchiveDuration"], json!([12.5, 40.0]));
        assert_eq!(summary["Entry"], "queue");
        assert_eq!(records[1]["ErrorCode"], "conflict");
        assert_eq!(records[1]["ArchiveFailures"], 1);
        assert_eq!(records[2]["ErrorCode"], "storage_unavailable");
        assert_eq!(records[2]["ArchiveFailures"], 2);
        assert_eq!(
            records[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["ErrorCode"]])
        );
        // Without archives, no duration is declared (a declared metric needs a value).
        let idle = metrics.records(
            &InvocationTally {
                ignored: 1,
                ..InvocationTally::default()
            },
            "webhook",
            UNIX_EPOCH,
        );
        assert_eq!(idle.len(), 1);
        assert!(idle[0].get("ArchiveDuration").is_none());
        assert_eq!(
            idle[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            11
        );
    }

    fn outcome(
        kind: crate::archive::OutcomeKind,
        files: usize,
        reused: usize,
    ) -> crate::archive::Outcome {
        crate::archive::Outcome {
            kind,
            attempt_id: crate::domain::SafeId::parse("a-1").unwrap(),
            attempt_id_source: crate::manifest::AttemptIdSource::Given,
            manifest_key: "p/s/a/manifest.json".into(),
            files,
            bytes: 500,
            skipped: 0,
            reused,
            bytes_stored: 300,
            signed: false,
            media_unavailable: files == 0,
        }
    }

    #[test]
    fn outcomes_add_up_archived_files_reused_files_and_bytes() {
        use crate::archive::OutcomeKind::{AlreadyArchived, Archived};
        let mut tally = InvocationTally::default();
        tally.record(&outcome(Archived, 5, 2));
        tally.record(&outcome(Archived, 4, 1));
        tally.record(&outcome(Archived, 0, 0));
        tally.record(&outcome(AlreadyArchived, 7, 7));
        assert_eq!((tally.archived, tally.already_archived), (3, 1));
        assert_eq!(
            (tally.files_stored, tally.files_reused),
            (6, 3),
            "an already archived decision stores nothing"
        );
        assert_eq!(tally.bytes_stored, 900);
        assert_eq!(tally.media_unavailable, 1);
    }

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn emit_writes_one_line_per_record_and_the_seal_its_own() {
        let buffer = Buffer::default();
        let metrics = Metrics::to_writer("Ns", Arc::new(Mutex::new(buffer.clone())));
        assert_eq!(format!("{metrics:?}"), "Metrics { namespace: \"Ns\", .. }");
        let tally = InvocationTally {
            archived: 1,
            failed: vec!["conflict"],
            ..InvocationTally::default()
        };
        metrics.emit(&tally, "webhook");
        let seal = SealTally {
            digests: 1,
            manifests: 12,
            ..SealTally::default()
        };
        metrics.emit_seal(&seal);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            3,
            "summary, the code's record, the seal: {text}"
        );
        assert!(text.ends_with('\n'));
        assert_eq!(lines[0]["Entry"], "webhook");
        assert_eq!(lines[0]["DecisionsArchived"], 1);
        assert_eq!(lines[1]["ErrorCode"], "conflict");
        assert_eq!(lines[2]["Entry"], "seal");
        assert_eq!(lines[2]["ManifestsSealed"], 12);
        assert_eq!(lines[2]["DigestsSealed"], 1);
        let at = UNIX_EPOCH + std::time::Duration::from_millis(7);
        let record = metrics.seal_record(&seal, at);
        assert_eq!(record["_aws"]["Timestamp"], 7);
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Ns");
        assert_eq!(
            record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
    }
}
