//! Signed manifests: a small signed statement beside each manifest, checkable offline with
//! the public key alone (the model is CloudTrail's signed digest files).
//!
//! The function signs with an AWS KMS asymmetric key (`ECC_NIST_P256`, `SIGN_VERIFY`,
//! algorithm `ECDSA_SHA_256`) when `MANIFEST_SIGNING_KEY_ID` is set. What it signs is a
//! [`Statement`]: the manifest's key, the SHA-256 of its exact bytes, the key id and the
//! algorithm, as compact JSON. KMS signs it as a `RAW` message (at most 4,096 bytes, which a
//! statement never approaches), so any manifest size works and no digest mode is needed.
//! The statement, the DER signature and the key id are stored as one JSON document,
//! `<manifest>.sig.json`, also as a conditional create.
//!
//! Verification ([`verify`]) needs the key's public half (from KMS `GetPublicKey`, or a PEM
//! file) and no AWS call: it checks the signature over the statement's exact bytes, then
//! that the statement names this manifest and its SHA-256.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, SigningError, SigningProblem};

/// The only signing algorithm used: ECDSA on P-256 with SHA-256, as KMS names it.
pub const ALGORITHM: &str = "ECDSA_SHA_256";

/// The `format` of a signature document.
pub const FORMAT: &str = "veriff-archiver-manifest-signature/1";

/// What is signed: compact JSON of these fields, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// The signed manifest's S3 key.
    pub manifest_key: String,
    /// Lowercase hex SHA-256 of the manifest's exact bytes.
    pub manifest_sha256: String,
    /// The KMS key that signed (its ARN or id, as configured).
    pub key_id: String,
    /// [`ALGORITHM`].
    pub algorithm: String,
}

/// The document stored as `<manifest>.sig.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureDocument {
    /// [`FORMAT`].
    pub format: String,
    /// The statement, exactly the bytes that were signed (a JSON text inside a string).
    pub statement: String,
    /// Base64 of the DER-encoded ECDSA signature KMS returned.
    pub signature: String,
    /// The signing key (as in the statement, repeated for people reading the file).
    pub key_id: String,
    /// [`ALGORITHM`].
    pub algorithm: String,
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature document is not the expected JSON.
    #[error("signature document unreadable: {0}")]
    Unreadable(String),
    /// An algorithm other than [`ALGORITHM`].
    #[error("unsupported signature algorithm {0}")]
    Algorithm(String),
    /// The ECDSA signature does not verify with the public key.
    #[error("the signature does not verify with the public key")]
    Invalid,
    /// The statement names another manifest.
    #[error("the signature is for another manifest ({0})")]
    OtherManifest(String),
    /// The manifest's bytes are not the ones that were signed.
    #[error("the manifest changed after it was signed (SHA-256 {found}, signed {signed})")]
    ManifestChanged {
        /// SHA-256 recorded in the statement.
        signed: String,
        /// SHA-256 of the manifest found.
        found: String,
    },
}

/// The key of a manifest's signature document: `manifest-….json` → `manifest-….sig.json`.
pub fn signature_key(manifest_key: &str) -> String {
    let stem = manifest_key.strip_suffix(".json").unwrap_or(manifest_key);
    format!("{stem}.sig.json")
}

/// The statement bytes to sign for `manifest` stored at `manifest_key`.
pub fn statement_bytes(manifest_key: &str, manifest: &[u8], key_id: &str) -> Vec<u8> {
    let statement = Statement {
        manifest_key: manifest_key.to_string(),
        manifest_sha256: hex::encode(Sha256::digest(manifest)),
        key_id: key_id.to_string(),
        algorithm: ALGORITHM.to_string(),
    };
    serde_json::to_vec(&statement).expect("a statement serialises")
}

/// The signature document for a statement and KMS's DER signature of it.
pub fn signature_document(statement: &[u8], der_signature: &[u8], key_id: &str) -> Vec<u8> {
    let document = SignatureDocument {
        format: FORMAT.to_string(),
        statement: String::from_utf8(statement.to_vec()).expect("statements are JSON text"),
        signature: base64::engine::general_purpose::STANDARD.encode(der_signature),
        key_id: key_id.to_string(),
        algorithm: ALGORITHM.to_string(),
    };
    let mut out = serde_json::to_vec_pretty(&document).expect("a signature document serialises");
    out.push(b'\n');
    out
}

/// Checks a signature document against the manifest found at `manifest_key`, with the
/// public key alone. Returns the statement on success.
pub fn verify(
    document: &[u8],
    manifest_key: &str,
    manifest: &[u8],
    public_key: &VerifyingKey,
) -> Result<Statement, SignatureError> {
    let document: SignatureDocument =
        serde_json::from_slice(document).map_err(|e| SignatureError::Unreadable(e.to_string()))?;
    if document.format != FORMAT {
        return Err(SignatureError::Unreadable(format!(
            "unknown format {:?}",
            document.format
        )));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(document.signature.trim())
        .map_err(|_| SignatureError::Unreadable("signature is not base64".into()))?;
    let signature = Signature::from_der(&der)
        .map_err(|_| SignatureError::Unreadable("signature is not DER ECDSA".into()))?;
    public_key
        .verify(document.statement.as_bytes(), &signature)
        .map_err(|_| SignatureError::Invalid)?;
    let statement: Statement = serde_json::from_str(&document.statement)
        .map_err(|e| SignatureError::Unreadable(format!("statement: {e}")))?;
    if statement.algorithm != ALGORITHM {
        return Err(SignatureError::Algorithm(statement.algorithm));
    }
    if statement.manifest_key != manifest_key {
        return Err(SignatureError::OtherManifest(statement.manifest_key));
    }
    let found = hex::encode(Sha256::digest(manifest));
    if statement.manifest_sha256 != found {
        return Err(SignatureError::ManifestChanged {
            signed: statement.manifest_sha256,
            found,
        });
    }
    Ok(statement)
}

/// A public key from DER (`SubjectPublicKeyInfo`, what KMS `GetPublicKey` returns) or PEM
/// (`-----BEGIN PUBLIC KEY-----`).
pub fn public_key(bytes: &[u8]) -> Result<VerifyingKey, PublicKeyError> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && text.contains("-----BEGIN PUBLIC KEY-----")
    {
        return VerifyingKey::from_public_key_pem(text.trim()).map_err(|source| PublicKeyError {
            form: "PEM",
            source,
        });
    }
    VerifyingKey::from_public_key_der(bytes).map_err(|source| PublicKeyError {
        form: "DER",
        source,
    })
}

/// Bytes that are not a P-256 public key.
#[derive(Debug, thiserror::Error)]
#[error("not a P-256 public key in {form}: {source}")]
pub struct PublicKeyError {
    /// `PEM` or `DER`.
    pub form: &'static str,
    /// Why it does not parse.
    #[source]
    pub source: p256::pkcs8::spki::Error,
}

/// Signs statements with a KMS key. Built once per container when signing is configured.
#[derive(Debug, Clone)]
pub struct ManifestSigner {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl ManifestSigner {
    /// A signer using `key_id` (a key ARN, id or alias) through `kms`.
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        ManifestSigner {
            kms,
            key_id: key_id.into(),
        }
    }

    /// The signature document for the manifest bytes stored at `manifest_key`.
    pub async fn sign(&self, manifest_key: &str, manifest: &[u8]) -> Result<Vec<u8>, Error> {
        let statement = statement_bytes(manifest_key, manifest, &self.key_id);
        let out = self
            .kms
            .sign()
            .key_id(&self.key_id)
            .message(aws_sdk_kms::primitives::Blob::new(statement.clone()))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_kms::error::ProvideErrorMetadata;
                let code = e.code().unwrap_or("no answer").to_string();
                SigningError {
                    problem: SigningProblem::Kms { code },
                    source: Some(Box::new(e)),
                }
            })?;
        let der = out
            .signature()
            .ok_or(SigningError::from(SigningProblem::NoSignature))?;
        Ok(signature_document(&statement, der.as_ref(), &self.key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn signed(manifest_key: &str, manifest: &[u8]) -> Vec<u8> {
        let statement = statement_bytes(manifest_key, manifest, "arn:aws:kms:test:key/1");
        let signature: Signature = key().sign(&statement);
        signature_document(
            &statement,
            signature.to_der().as_bytes(),
            "arn:aws:kms:test:key/1",
        )
    }

    #[test]
    fn a_signature_verifies_with_the_public_key_alone() {
        let manifest = b"{\"schemaVersion\":2}\n";
        let document = signed("p/s/a/manifest-x.json", manifest);
        let public = VerifyingKey::from(&key());
        let statement = verify(&document, "p/s/a/manifest-x.json", manifest, &public).unwrap();
        assert_eq!(statement.algorithm, ALGORITHM);
        assert_eq!(statement.key_id, "arn:aws:kms:test:key/1");
        // The same key from DER and from PEM.
        let der = public.to_public_key_der().unwrap();
        assert_eq!(public_key(der.as_bytes()).unwrap(), public);
        let pem = public.to_public_key_pem(Default::default()).unwrap();
        assert_eq!(public_key(pem.as_bytes()).unwrap(), public);
        assert!(public_key(b"not a key").is_err());
    }

    #[test]
    fn every_change_is_caught() {
        let manifest = b"{\"schemaVersion\":2}\n";
        let key_name = "p/s/a/manifest-x.json";
        let document = signed(key_name, manifest);
        let public = VerifyingKey::from(&key());
        // The manifest edited.
        assert!(matches!(
            verify(&document, key_name, b"{\"schemaVersion\":3}\n", &public),
            Err(SignatureError::ManifestChanged { .. })
        ));
        // The signature moved to another manifest.
        assert!(matches!(
            verify(&document, "p/s/a/manifest-y.json", manifest, &public),
            Err(SignatureError::OtherManifest(_))
        ));
        // Another key.
        let other = VerifyingKey::from(&SigningKey::from_slice(&[9u8; 32]).unwrap());
        assert_eq!(
            verify(&document, key_name, manifest, &other),
            Err(SignatureError::Invalid)
        );
        // The statement edited to match an edited manifest: the signature no longer holds.
        let mut doc: SignatureDocument = serde_json::from_slice(&document).unwrap();
        doc.statement = doc
            .statement
            .replace(&hex::encode(Sha256::digest(manifest)), &"0".repeat(64));
        let edited = serde_json::to_vec(&doc).unwrap();
        assert_eq!(
            verify(&edited, key_name, manifest, &public),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify(b"garbage", key_name, manifest, &public),
            Err(SignatureError::Unreadable(_))
        ));
    }

    #[test]
    fn signature_documents_sit_beside_their_manifest() {
        assert_eq!(
            signature_key("p/s/a/manifest-20250304T102107412000Z-0123456789abcdef.json"),
            "p/s/a/manifest-20250304T102107412000Z-0123456789abcdef.sig.json"
        );
        let statement = statement_bytes("k", b"m", "key");
        assert!(
            statement.len() < 4096,
            "KMS RAW messages are at most 4,096 bytes"
        );
        assert_eq!(
            String::from_utf8(statement).unwrap(),
            format!(
                r#"{{"manifestKey":"k","manifestSha256":"{}","keyId":"key","algorithm":"ECDSA_SHA_256"}}"#,
                hex::encode(Sha256::digest(b"m"))
            )
        );
    }
}
