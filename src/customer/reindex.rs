//! Building the index of an archive made before it (`veriff-archiver reindex`): every
//! manifest under the prefix is read and its entries written, each a conditional create,
//! so a second run writes nothing twice, and `start_after` resumes a run cut short from
//! the last manifest it reported.

use futures_util::StreamExt;
use serde::Serialize;

use crate::error::Error;
use crate::index::{self, IndexKey};
use crate::layout;
use crate::ledger::format::ledger_prefix;
use crate::manifest::Manifest;
use crate::store::{Created, Store};

/// Largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// What a reindex did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReindexReport {
    /// Manifests read.
    pub manifests: u64,
    /// Entries written now.
    pub written: u64,
    /// Entries already there.
    pub existing: u64,
    /// Manifests that do not parse (no entry for them).
    pub unreadable: u64,
    /// The last manifest done, in key order (`--start-after` resumes after it).
    pub last: Option<String>,
}

/// Writes the index entries of every manifest under `prefix` whose key sorts after
/// `start_after`; `progress(done)` after each manifest.
pub async fn reindex(
    store: &Store,
    prefix: &str,
    key: &IndexKey,
    start_after: Option<&str>,
    concurrency: usize,
    progress: &(dyn Fn(&ReindexReport) + Send + Sync),
) -> Result<ReindexReport, Error> {
    let skip = [ledger_prefix(prefix), index::index_prefix(prefix)];
    let mut manifests: Vec<String> = (store.list_after(prefix, start_after).await?)
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !skip.iter().any(|s| k.starts_with(s.as_str())))
        .filter(|k| {
            let name = k.rsplit('/').next().unwrap_or_default();
            k.strip_prefix(prefix)
                .is_some_and(|r| r.matches('/').count() == 2)
                && layout::parse_manifest_key("", name).is_some()
        })
        .collect();
    manifests.sort();
    let mut report = ReindexReport::default();
    let results = futures_util::stream::iter(&manifests)
        .map(|manifest_key| async move {
            let Some(bytes) = store.read(manifest_key, MAX_MANIFEST_BYTES).await? else {
                return Ok::<_, Error>((manifest_key, None));
            };
            let Ok(manifest) = Manifest::parse(&bytes) else {
                return Ok((manifest_key, Some(None)));
            };
            let mut outcome = (0u64, 0u64);
            for (entry, body) in index::entries_for(key, prefix, &manifest.decision, manifest_key) {
                match store
                    .create(&entry, body.into(), "application/json", &[])
                    .await?
                {
                    Created::Stored(_) => outcome.0 += 1,
                    Created::Exists { .. } => outcome.1 += 1,
                }
            }
            Ok((manifest_key, Some(Some(outcome))))
        })
        .buffered(concurrency.max(1));
    let mut results = std::pin::pin!(results);
    while let Some(result) = results.next().await {
        let (manifest_key, outcome) = result?;
        match outcome {
            None => continue,
            Some(None) => report.unreadable += 1,
            Some(Some((written, existing))) => {
                report.written += written;
                report.existing += existing;
            }
        }
        report.manifests += 1;
        report.last = Some(manifest_key.clone());
        progress(&report);
    }
    Ok(report)
}
