//! Listing the bucket: every object under a folder, the objects after a key (the ledger's
//! time-ordered folders), one level of a folder (its sub-folders and objects), and every
//! version under a folder (versioned buckets). All paginated.

use std::time::SystemTime;

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::BucketVersioningStatus;

use super::{Store, storage_error};
use crate::error::Error;
use crate::stored::ListedObject;

/// One level of a folder: the sub-folders (common prefixes, ending in `/`) and the objects
/// directly in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Level {
    /// Sub-folders, in key order.
    pub folders: Vec<String>,
    /// Objects, in key order.
    pub objects: Vec<ListedObject>,
}

/// One version of an object, or a delete marker (versioned buckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    /// The key.
    pub key: String,
    /// The version id (`null` for an object stored before versioning was enabled).
    pub version_id: String,
    /// Whether it is the version the key serves.
    pub is_latest: bool,
    /// Whether it is a delete marker.
    pub delete_marker: bool,
    /// Its size (0 for a delete marker).
    pub size: u64,
    /// When S3 stored it.
    pub last_modified: Option<SystemTime>,
    /// Its storage class as listed (`STANDARD`, `GLACIER`...; `None` for a delete marker).
    pub storage_class: Option<String>,
}

fn time(t: Option<&DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

fn listed(object: &aws_sdk_s3::types::Object) -> Option<ListedObject> {
    Some(ListedObject {
        key: object.key()?.to_string(),
        size: object.size().unwrap_or(0).max(0) as u64,
        last_modified: time(object.last_modified()),
    })
}

impl Store {
    /// Every object directly or indirectly under `folder` (paginated ListObjectsV2).
    pub async fn list_folder(&self, folder: &str) -> Result<Vec<ListedObject>, Error> {
        self.list_after(folder, None).await
    }

    /// Every object under `folder` whose key sorts after `start_after` (all of them when
    /// `None`), in key order.
    pub async fn list_after(
        &self,
        folder: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ListedObject>, Error> {
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(folder)
            .set_start_after(start_after.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| storage_error("ListObjectsV2", e))?;
            objects.extend(page.contents().iter().filter_map(listed));
        }
        Ok(objects)
    }

    /// One level of `folder` (delimiter `/`): its sub-folders and its own objects.
    pub async fn list_level(&self, folder: &str) -> Result<Level, Error> {
        let mut level = Level::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(folder)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| storage_error("ListObjectsV2", e))?;
            let folders = page.common_prefixes().iter().filter_map(|p| p.prefix());
            level.folders.extend(folders.map(str::to_string));
            level
                .objects
                .extend(page.contents().iter().filter_map(listed));
        }
        level.folders.sort();
        level.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(level)
    }

    /// Whether the bucket keeps versions (versioning enabled or suspended). A server that
    /// does not implement GetBucketVersioning counts as unversioned.
    pub async fn is_versioned(&self) -> Result<bool, Error> {
        match self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => Ok(matches!(
                out.status(),
                Some(BucketVersioningStatus::Enabled | BucketVersioningStatus::Suspended)
            )),
            Err(e) if super::http_status(&e).is_some_and(|s| s == 501 || s == 405) => Ok(false),
            Err(e) => Err(storage_error("GetBucketVersioning", e)),
        }
    }

    /// Every version and delete marker under `folder` (ListObjectVersions, page by page).
    pub async fn list_versions(&self, folder: &str) -> Result<Vec<ListedVersion>, Error> {
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(folder)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| storage_error("ListObjectVersions", e))?;
            for v in page.versions() {
                let Some(key) = v.key() else { continue };
                versions.push(ListedVersion {
                    key: key.to_string(),
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    is_latest: v.is_latest().unwrap_or(false),
                    delete_marker: false,
                    size: v.size().unwrap_or(0).max(0) as u64,
                    last_modified: time(v.last_modified()),
                    storage_class: v.storage_class().map(|c| c.as_str().to_string()),
                });
            }
            for m in page.delete_markers() {
                let Some(key) = m.key() else { continue };
                versions.push(ListedVersion {
                    key: key.to_string(),
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    is_latest: m.is_latest().unwrap_or(false),
                    delete_marker: true,
                    size: 0,
                    last_modified: time(m.last_modified()),
                    storage_class: None,
                });
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(versions)
    }
}

/// What a restore request of one archived version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// S3 accepted the request: a readable copy appears within hours (or is already there).
    Requested,
    /// A restore is already running (409 `RestoreAlreadyInProgress`).
    InProgress,
}

impl Store {
    /// Asks S3 to restore one archived version (GLACIER, DEEP_ARCHIVE) for `days`, at
    /// `tier` (`Standard`, `Bulk`, `Expedited`).
    pub async fn restore(
        &self,
        key: &str,
        version_id: &str,
        days: i32,
        tier: &str,
    ) -> Result<Restore, Error> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};
        let job = GlacierJobParameters::builder()
            .tier(Tier::from(tier))
            .build()
            .map_err(|_| {
                Error::Storage(crate::error::StorageError::new(
                    "RestoreObject",
                    crate::error::StorageProblem::NotBuilt,
                ))
            })?;
        let request = RestoreRequest::builder()
            .days(days)
            .glacier_job_parameters(job)
            .build();
        match self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version_id)
            .restore_request(request)
            .send()
            .await
        {
            Ok(_) => Ok(Restore::Requested),
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("RestoreAlreadyInProgress") =>
            {
                Ok(Restore::InProgress)
            }
            Err(e) => Err(storage_error("RestoreObject", e)),
        }
    }
}

/// Whether a listed storage class needs a restore before GetObject can read it.
pub fn needs_restore(storage_class: Option<&str>) -> bool {
    matches!(storage_class, Some("GLACIER" | "DEEP_ARCHIVE"))
}
