//! Writing a decision's records: its webhook body (with `ARCHIVE_DECISION_PAYLOAD`), its
//! manifest's signature document (with `MANIFEST_SIGNING_KEY_ID`), and what to do when
//! another delivery wrote the manifest first.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::domain::{Decision, SafeId};
use crate::error::{ConflictError, Error, SigningProblem};
use crate::ledger::Receipt;
use crate::ledger::format::receipt_key;
use crate::manifest::{AttemptIdSource, Manifest, PayloadRecord};
use crate::signing::signature_key;
use crate::store::Created;

use super::folder::MAX_MANIFEST_BYTES;
use super::{Archiver, Outcome, SignedBody, already_archived};

impl Archiver {
    /// Stores the webhook body next to the manifest, with its signature in the metadata.
    pub(super) async fn store_payload(
        &self,
        key: &str,
        body: SignedBody<'_>,
    ) -> Result<PayloadRecord, Error> {
        let digest = hex::encode(Sha256::digest(body.bytes));
        let metadata = [
            ("veriff-signature", body.signature.hex.clone()),
            ("veriff-signature-header", body.signature.header.to_string()),
        ];
        let bytes = Bytes::copy_from_slice(body.bytes);
        let stored = match self
            .store
            .create(key, bytes, "application/json", &metadata)
            .await?
        {
            Created::Stored(stored) => stored,
            Created::Exists { would_be } => {
                let size = body.bytes.len() as u64;
                self.adopt_existing(key, &would_be, size, &digest).await?.0
            }
        };
        Ok(PayloadRecord {
            key: key.to_string(),
            size: body.bytes.len() as u64,
            sha256: digest,
            signature_header: body.signature.header.to_string(),
            stored,
        })
    }

    /// The signature document of the manifest bytes at `key`, when signing is configured.
    pub(super) async fn signature_for(
        &self,
        key: &str,
        manifest: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        match &self.signer {
            Some(signer) => Ok(Some(signer.sign(key, manifest).await?)),
            None if self.config.archive.signing_key_id.is_some() => {
                Err(crate::error::SigningError::from(SigningProblem::NoSigner).into())
            }
            None => Ok(None),
        }
    }

    /// Writes the ledger's receipt for the manifest about to be created at `key` (its exact
    /// bytes): the seal finds every manifest through its receipt, so a manifest is only
    /// ever created after one (a receipt whose manifest never appears stays pending in the
    /// ledger, which is harmless). Its key is unique (the time to the microsecond and the
    /// manifest key's hash), so the create never meets another object.
    pub(super) async fn write_receipt(&self, key: &str, manifest: &[u8]) -> Result<(), Error> {
        let at = std::time::SystemTime::now();
        let prefix = &self.config.archive.prefix;
        let receipt = Receipt::of(key, manifest, at);
        self.store
            .create(
                &receipt_key(prefix, at, key),
                Bytes::from(receipt.to_bytes()),
                "application/json",
                &[],
            )
            .await?;
        Ok(())
    }

    /// Writes the index entries of the decision about to be recorded at `key` (one per
    /// customer reference it carries), before the manifest, so that no manifest is ever
    /// unindexed. Conditional creates: an entry already there (a retry) is kept. Nothing
    /// without an index key.
    pub(super) async fn write_index_entries(
        &self,
        key: &str,
        manifest: &crate::manifest::Manifest,
    ) -> Result<(), Error> {
        let Some(index_key) = &self.config.archive.index_key else {
            return Ok(());
        };
        let prefix = &self.config.archive.prefix;
        for (entry, body) in crate::index::entries_for(index_key, prefix, &manifest.decision, key) {
            self.store
                .create(&entry, Bytes::from(body), "application/json", &[])
                .await?;
        }
        Ok(())
    }

    /// Stores a signature document beside the manifest at `key` (conditional create: one
    /// already there, from a concurrent delivery, is kept).
    pub(super) async fn store_signature(&self, key: &str, document: Vec<u8>) -> Result<(), Error> {
        self.store
            .create(
                &signature_key(key),
                Bytes::from(document),
                "application/json",
                &[],
            )
            .await?;
        Ok(())
    }

    /// Signs an existing manifest that has no signature yet (an earlier delivery failed
    /// between the two writes). `false` when signing is not configured.
    pub(super) async fn sign_existing(&self, key: &str, manifest: &[u8]) -> Result<bool, Error> {
        match self.signature_for(key, manifest).await? {
            Some(document) => {
                self.store_signature(key, document).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Another delivery wrote this decision's manifest first: fine if it records the same
    /// decision.
    pub(super) async fn after_lost_race(
        &self,
        manifest_key: &str,
        decision: &Decision,
        attempt_id: &SafeId,
        attempt_id_source: AttemptIdSource,
    ) -> Result<Outcome, Error> {
        let stored = self.store.read(manifest_key, MAX_MANIFEST_BYTES).await?;
        let parsed = stored.as_ref().map(|bytes| Manifest::parse(bytes));
        match (parsed, stored.as_ref()) {
            (Some(Ok(m)), Some(bytes)) if m.records(decision, attempt_id) => {
                let signed = self.sign_existing(manifest_key, bytes).await?;
                Ok(already_archived(
                    &m,
                    manifest_key,
                    attempt_id_source,
                    signed,
                ))
            }
            _ => Err(ConflictError::OtherManifest.into()),
        }
    }
}
