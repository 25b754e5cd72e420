//! What an attempt folder already holds: its keys and its manifests, read back before a
//! decision is archived (idempotency, reuse, the next free manifest name).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::domain::{Decision, SafeId};
use crate::error::Error;
use crate::layout::{self, DecisionName, ManifestName};
use crate::manifest::{FileRecord, Manifest};
use crate::store::Store;

/// Largest manifest read back (a manifest lists at most a few hundred files).
pub(super) const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// One manifest of the folder: its key, its parsed name, its content when it parses, and
/// its bytes.
pub(super) type FolderManifest = (String, ManifestName, Option<Manifest>, Bytes);

/// What an attempt folder already holds.
#[derive(Debug, Default)]
pub(super) struct Folder {
    /// Manifests found, newest decision first, each parsed or not, with their bytes.
    pub(super) manifests: Vec<FolderManifest>,
    /// Every key in the folder.
    pub(super) keys: HashSet<String>,
}

impl Folder {
    /// Lists `folder` and reads every manifest in it.
    pub(super) async fn read(store: &Store, folder: &str) -> Result<Folder, Error> {
        let mut manifests = Vec::new();
        let mut keys = HashSet::new();
        for object in store.list_folder(folder).await? {
            keys.insert(object.key.clone());
            let Some(name) = layout::parse_manifest_key(folder, &object.key) else {
                continue;
            };
            let (parsed, bytes) = match store.read(&object.key, MAX_MANIFEST_BYTES).await {
                Ok(Some(bytes)) => (Manifest::parse(&bytes).ok(), bytes),
                Ok(None) => continue,
                Err(Error::Storage(_)) if object.size > MAX_MANIFEST_BYTES => (None, Bytes::new()),
                Err(e) => return Err(e),
            };
            manifests.push((object.key, name, parsed, bytes));
        }
        // Newest decision first: per-decision names sort by decision time.
        manifests.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(Folder { manifests, keys })
    }

    /// The readable manifest that records this decision, if any.
    pub(super) fn recording(
        &self,
        decision: &Decision,
        attempt_id: &SafeId,
    ) -> Option<(&str, &Manifest, &Bytes)> {
        self.manifests.iter().find_map(|(key, _, m, bytes)| {
            m.as_ref()
                .filter(|m| m.records(decision, attempt_id))
                .map(|m| (key.as_str(), m, bytes))
        })
    }

    /// The first revision of `name`'s manifest key not held by another object.
    pub(super) fn free_revision(&self, name: &DecisionName) -> u32 {
        let taken = self
            .manifests
            .iter()
            .filter(|(_, n, _, _)| n.decision.as_ref() == Some(name))
            .map(|(_, n, _, _)| n.revision)
            .max();
        taken.map_or(1, |r| r + 1)
    }

    /// Files stored by earlier decisions, by media id (the newest decision's record wins).
    pub(super) fn earlier_files(&self) -> HashMap<String, FileRecord> {
        let mut files = HashMap::new();
        for (_, _, manifest, _) in &self.manifests {
            for file in manifest.iter().flat_map(|m| &m.files) {
                files
                    .entry(file.media_id.clone())
                    .or_insert_with(|| file.clone());
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DecisionRecord, WebhookKind};

    #[test]
    fn a_folder_names_the_next_free_manifest_revision() {
        let a = SafeId::parse("a").unwrap();
        let d = Decision::new(
            SafeId::parse("s").unwrap(),
            Some(a.clone()),
            DecisionRecord {
                decision_time: Some("2025-03-04T10:21:07.412Z".into()),
                ..DecisionRecord::new(WebhookKind::Decision, "approved")
            },
        );
        let name = DecisionName::of(&d, &a);
        let mut folder = Folder::default();
        assert_eq!(folder.free_revision(&name), 1);
        let key = name.manifest_key("f/", 1);
        let parsed = layout::parse_manifest_key("f/", &key).unwrap();
        folder.manifests.push((key, parsed, None, Bytes::new()));
        assert_eq!(folder.free_revision(&name), 2);
        assert!(
            folder.recording(&d, &a).is_none(),
            "unreadable records nothing"
        );
    }
}
