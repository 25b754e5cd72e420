//! Object Lock on a customer's objects: reading and extending retention, setting and
//! clearing legal holds, and the bucket's lock configuration. These calls are the
//! operator's (`retain`, `hold`, `release`, `erase`), with the operator's role: the
//! function's role may do none of them, and the archive's own [`crate::store::Store`] has
//! no way to.

use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetention,
    ObjectLockRetentionMode,
};

use crate::error::Error;
use crate::store::storage_error;

/// An Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    /// Users with `s3:BypassGovernanceRetention` may shorten it or delete.
    Governance,
    /// Nobody may shorten it or delete before it ends, not even the account's root user.
    Compliance,
}

impl Mode {
    /// Its name in S3 (`GOVERNANCE`, `COMPLIANCE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Governance => "GOVERNANCE",
            Mode::Compliance => "COMPLIANCE",
        }
    }

    /// A mode from its S3 name.
    pub fn parse(name: &str) -> Option<Mode> {
        match name.to_ascii_uppercase().as_str() {
            "GOVERNANCE" => Some(Mode::Governance),
            "COMPLIANCE" => Some(Mode::Compliance),
            _ => None,
        }
    }

    fn sdk(self) -> ObjectLockRetentionMode {
        ObjectLockRetentionMode::from(self.as_str())
    }
}

/// A version's retention: its mode and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The mode.
    pub mode: Mode,
    /// The end of the retention.
    pub until: SystemTime,
}

/// The Object Lock calls of one bucket.
#[derive(Debug, Clone)]
pub struct Locks {
    client: Client,
    bucket: String,
}

fn no_configuration<E: ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("NoSuchObjectLockConfiguration" | "ObjectLockConfigurationNotFoundError")
    )
}

impl Locks {
    /// The lock calls of `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Locks {
            client,
            bucket: bucket.into(),
        }
    }

    /// Whether the bucket has Object Lock, and its default retention mode, if any.
    pub async fn configuration(&self) -> Result<Option<Option<Mode>>, Error> {
        match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => {
                let config = out.object_lock_configuration();
                let enabled = config
                    .and_then(|c| c.object_lock_enabled())
                    .is_some_and(|e| *e == ObjectLockEnabled::Enabled);
                let default_mode = config
                    .and_then(|c| c.rule())
                    .and_then(|r| r.default_retention())
                    .and_then(|d| d.mode())
                    .and_then(|m| Mode::parse(m.as_str()));
                Ok(enabled.then_some(default_mode))
            }
            Err(e) if e.as_service_error().is_some_and(no_configuration) => Ok(None),
            Err(e) => Err(storage_error("GetObjectLockConfiguration", e)),
        }
    }

    /// A version's retention (`None` when it has none) and whether it is under legal hold,
    /// from one HeadObject (S3 returns both when the caller may read them:
    /// `s3:GetObjectRetention`, `s3:GetObjectLegalHold`).
    pub async fn state(
        &self,
        key: &str,
        version: &str,
    ) -> Result<(Option<Retention>, bool), Error> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| storage_error("HeadObject", e))?;
        let mode = out.object_lock_mode().and_then(|m| Mode::parse(m.as_str()));
        let until = out
            .object_lock_retain_until_date()
            .and_then(|d| SystemTime::try_from(*d).ok());
        let held = out
            .object_lock_legal_hold_status()
            .is_some_and(|s| *s == ObjectLockLegalHoldStatus::On);
        Ok((
            mode.zip(until)
                .map(|(mode, until)| Retention { mode, until }),
            held,
        ))
    }

    /// A version's retention; `None` when it has none.
    pub async fn retention(&self, key: &str, version: &str) -> Result<Option<Retention>, Error> {
        Ok(self.state(key, version).await?.0)
    }

    /// Whether a version is under legal hold.
    pub async fn legal_hold(&self, key: &str, version: &str) -> Result<bool, Error> {
        Ok(self.state(key, version).await?.1)
    }

    /// Sets a version's retention to `retention` (S3 refuses to shorten a COMPLIANCE
    /// retention, and a GOVERNANCE one without the bypass this tool never sends).
    pub async fn set_retention(
        &self,
        key: &str,
        version: &str,
        retention: Retention,
    ) -> Result<(), Error> {
        let until = DateTime::from(retention.until);
        self.client
            .put_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version)
            .retention(
                ObjectLockRetention::builder()
                    .mode(retention.mode.sdk())
                    .retain_until_date(until)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| storage_error("PutObjectRetention", e))?;
        Ok(())
    }

    /// Sets or clears a version's legal hold.
    pub async fn set_legal_hold(&self, key: &str, version: &str, on: bool) -> Result<(), Error> {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version)
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
            .map_err(|e| storage_error("PutObjectLegalHold", e))?;
        Ok(())
    }

    /// Deletes one version (or delete marker) for good: only `erase` calls it, once every
    /// version's retention has passed and none is held.
    pub async fn delete_version(&self, key: &str, version: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map_err(|e| storage_error("DeleteObject", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_and_name_themselves_as_s3_does() {
        assert_eq!(Mode::parse("COMPLIANCE"), Some(Mode::Compliance));
        assert_eq!(Mode::parse("governance"), Some(Mode::Governance));
        assert_eq!(Mode::parse("LEGAL"), None);
        assert_eq!(Mode::Compliance.as_str(), "COMPLIANCE");
        assert_eq!(Mode::Governance.as_str(), "GOVERNANCE");
        assert_eq!(Mode::Governance.sdk(), ObjectLockRetentionMode::Governance);
    }
}
