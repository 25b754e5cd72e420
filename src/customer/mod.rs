//! Evidence by customer: finding one customer's decisions through the index, and the
//! operator's work on them (`retain`, `hold`, `release`, `erase`, `export`), keyed by a
//! customer reference (`vendorData` or `endUserId`) that never reaches a key, a log line or
//! a metric in clear (see [`crate::index`]).
//!
//! - `find`: the customer's sessions, decisions, files and lock state, from one listing of
//!   their index folder and one read per manifest: cost grows with the results, not with
//!   the archive;
//! - `plan.rs` (pure): what `retain` changes, what keeps `erase` from deleting;
//! - `locks.rs`: Object Lock and deletion calls, with the operator's role;
//! - `ops.rs`: `retain`, `hold`/`release`, `erase`;
//! - `reindex.rs`: the index of an archive made before it, from its manifests.

pub mod locks;
pub mod ops;
pub mod plan;
pub mod reindex;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde::Serialize;

use crate::error::Error;
use crate::index::{self, Entry, Field, IndexKey};
use crate::manifest::Manifest;
use crate::store::{ListedVersion, Store};
use locks::{Locks, Retention};

/// Largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Reads in flight at once.
const CONCURRENCY: usize = 16;

/// One customer, as the index knows them: the field and the keyed hash of the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// `vendor-data` or `end-user-id`.
    pub field: &'static str,
    /// The keyed hash of the reference (never the reference).
    pub subject: String,
    #[serde(skip)]
    field_kind: Field,
}

/// What `find` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// Whom.
    pub customer: Customer,
    /// Their sessions, by id.
    pub sessions: Vec<FoundSession>,
    /// Whether lock states were read (the bucket has Object Lock).
    pub locks_read: bool,
}

/// One session of the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundSession {
    /// The session id.
    pub session_id: String,
    /// Its decisions, oldest first.
    pub decisions: Vec<FoundDecision>,
}

/// One decision of the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundDecision {
    /// The attempt.
    pub attempt_id: String,
    /// The manifest's key.
    pub manifest_key: String,
    /// Whether the manifest is there (an index entry whose manifest is gone: `false`).
    pub present: bool,
    /// The decision's status, from the manifest.
    pub status: Option<String>,
    /// The decision's time.
    pub decision_time: Option<String>,
    /// Files the manifest lists.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The manifest's retention (mode, until RFC 3339), when the bucket has Object Lock.
    pub retention: Option<(String, String)>,
    /// Whether the manifest is under legal hold.
    pub legal_hold: bool,
    /// The index entries pointing to this decision (both fields, from the manifest read by
    /// `find`), so that `retain`, `hold` and `erase` need not read the manifest again.
    #[serde(skip)]
    index_entries: Vec<String>,
}

/// The customer side of one archive: its store, prefix and index key, and the lock calls
/// when an operator runs them.
#[derive(Debug, Clone)]
pub struct CustomerArchive {
    store: Store,
    locks: Locks,
    prefix: String,
    key: IndexKey,
}

impl CustomerArchive {
    /// The archive under `prefix` in `store`, indexed with `key`; `locks` reads and sets
    /// Object Lock state in the same bucket.
    pub fn new(store: Store, locks: Locks, prefix: impl Into<String>, key: IndexKey) -> Self {
        CustomerArchive {
            store,
            locks,
            prefix: prefix.into(),
            key,
        }
    }

    /// The customer a reference names.
    pub fn customer(&self, field: Field, value: &str) -> Customer {
        Customer {
            field: field.as_str(),
            subject: self.key.subject(field, value),
            field_kind: field,
        }
    }

    /// The customer's index entries (one listing of their folder).
    pub async fn entries(&self, customer: &Customer) -> Result<Vec<Entry>, Error> {
        let folder = index::subject_prefix(&self.prefix, customer.field_kind, &customer.subject);
        let listed = self.store.list_folder(&folder).await?;
        Ok(listed
            .iter()
            .filter_map(|o| index::parse_entry(&self.prefix, &o.key))
            .filter(|e| e.subject == customer.subject)
            .collect())
    }

    /// The customer's sessions and decisions, each manifest read, with its lock state when
    /// the bucket has Object Lock.
    pub async fn find(&self, customer: Customer) -> Result<Found, Error> {
        let entries = self.entries(&customer).await?;
        let locks_read = self.locks.configuration().await.unwrap_or(None).is_some();
        let decisions: Vec<(String, FoundDecision)> = futures_util::stream::iter(entries)
            .map(|entry| async move {
                let decision = self.decision(&entry, locks_read).await?;
                Ok::<_, Error>((entry.session_id, decision))
            })
            .buffered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut sessions: BTreeMap<String, Vec<FoundDecision>> = BTreeMap::new();
        for (session, decision) in decisions {
            sessions.entry(session).or_default().push(decision);
        }
        Ok(Found {
            customer,
            sessions: sessions
                .into_iter()
                .map(|(session_id, mut decisions)| {
                    decisions.sort_by(|a, b| a.manifest_key.cmp(&b.manifest_key));
                    FoundSession {
                        session_id,
                        decisions,
                    }
                })
                .collect(),
            locks_read,
        })
    }

    async fn decision(&self, entry: &Entry, locks_read: bool) -> Result<FoundDecision, Error> {
        let read = self
            .store
            .read_with_version(&entry.manifest_key, None, MAX_MANIFEST_BYTES)
            .await?;
        let mut decision = FoundDecision {
            attempt_id: entry.attempt_id.clone(),
            manifest_key: entry.manifest_key.clone(),
            present: read.is_some(),
            status: None,
            decision_time: None,
            files: 0,
            bytes: 0,
            retention: None,
            legal_hold: false,
            // The entry that found it, at least (a manifest gone or unreadable names no other).
            index_entries: vec![index::entry_key(
                &self.prefix,
                entry.field,
                &entry.subject,
                &entry.manifest_key,
            )],
        };
        let Some((bytes, version)) = read else {
            return Ok(decision);
        };
        if let Ok(manifest) = Manifest::parse(&bytes) {
            decision.index_entries.extend(
                index::entries_for(
                    &self.key,
                    &self.prefix,
                    &manifest.decision,
                    &entry.manifest_key,
                )
                .into_iter()
                .map(|(key, _)| key),
            );
            decision.status = Some(manifest.decision.status.clone());
            decision.decision_time = manifest.decision.decision_time.clone();
            decision.files = manifest.files.len();
            decision.bytes = manifest.total_bytes();
        }
        if let (true, Some(version)) = (locks_read, version) {
            let (retention, held) = self.locks.state(&entry.manifest_key, &version).await?;
            decision.retention = retention.map(|r: Retention| {
                let until = humantime::format_rfc3339_seconds(r.until).to_string();
                (r.mode.as_str().to_string(), until)
            });
            decision.legal_hold = held;
        }
        Ok(decision)
    }

    /// Every version (and delete marker) the customer's evidence is made of: everything
    /// under each of their session folders, and every index entry that points into them
    /// (for both fields, the other field's subject computed from each manifest).
    pub async fn versions(&self, found: &Found) -> Result<Vec<ListedVersion>, Error> {
        let mut all = Vec::new();
        for session in &found.sessions {
            let folder = format!("{}{}/", self.prefix, session.session_id);
            all.extend(self.store.list_versions(&folder).await?);
        }
        for key in Self::index_entries_of(found) {
            all.extend(
                self.store
                    .list_versions(&key)
                    .await?
                    .into_iter()
                    .filter(|v| v.key == key),
            );
        }
        all.sort_by(|a, b| (&a.key, &a.version_id).cmp(&(&b.key, &b.version_id)));
        all.dedup_by(|a, b| a.key == b.key && a.version_id == b.version_id);
        Ok(all)
    }

    /// The keys of the index entries pointing to the customer's decisions: theirs, and
    /// those of the other field that each manifest names (as `find` read them).
    fn index_entries_of(found: &Found) -> Vec<String> {
        let mut keys: Vec<String> = found
            .sessions
            .iter()
            .flat_map(|s| &s.decisions)
            .flat_map(|d| d.index_entries.iter().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The lock calls.
    pub fn locks(&self) -> &Locks {
        &self.locks
    }

    /// The archive's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}
