//! What every subcommand shares: the archive location (flags over the function's
//! environment variables), the S3 client, and the public key of signed manifests.

use std::path::PathBuf;

use clap::Args;
use p256::ecdsa::VerifyingKey;
use veriff_archiver::aws::{self, AwsClients};

/// Where the archive is: the function's variables, overridden by flags.
#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    /// The archive bucket.
    #[arg(long, env = "ARCHIVE_BUCKET")]
    pub bucket: String,
    /// The key prefix the function writes under (e.g. `veriff/`).
    #[arg(long, env = "ARCHIVE_PREFIX", default_value = "")]
    pub prefix: String,
}

/// How signed manifests are checked: with a PEM file, or the KMS key's public half.
#[derive(Debug, Clone, Args)]
pub struct SigningArgs {
    /// The manifest signing key's public half, PEM (`-----BEGIN PUBLIC KEY-----`) or DER.
    /// Takes precedence over --signing-key-id and MANIFEST_SIGNING_KEY_ID (no KMS call).
    // No `conflicts_with`: clap would count MANIFEST_SIGNING_KEY_ID from the environment
    // as a conflicting flag, and a flag must override the environment.
    #[arg(long, value_name = "FILE.pem")]
    pub public_key: Option<PathBuf>,
    /// The KMS signing key: its public half is fetched once with `GetPublicKey`.
    #[arg(long, env = "MANIFEST_SIGNING_KEY_ID")]
    pub signing_key_id: Option<String>,
}

/// An error that ends the command with exit code 2.
pub type Fatal = String;

impl ArchiveArgs {
    /// The prefix as the function normalises it: empty, or segments ending in `/`.
    pub fn normalised_prefix(&self) -> Result<String, Fatal> {
        veriff_archiver::config::parse_prefix(self.prefix.trim().to_string())
            .map_err(|e| format!("--prefix / {e} (given {:?})", self.prefix))
    }
}

/// Every AWS client, the SDK way (credentials chain, region, `AWS_ENDPOINT_URL_S3`).
pub async fn aws_clients() -> AwsClients {
    AwsClients::from_env().await
}

/// The S3 client, the SDK way.
pub async fn s3_client() -> aws_sdk_s3::Client {
    aws::s3_client(&aws::sdk_config_from_env().await)
}

impl SigningArgs {
    /// The public key, if one was asked for.
    pub async fn public_key(&self) -> Result<Option<VerifyingKey>, Fatal> {
        if let Some(path) = &self.public_key {
            let bytes =
                std::fs::read(path).map_err(|e| format!("--public-key {}: {e}", path.display()))?;
            return veriff_archiver::signing::public_key(&bytes)
                .map(Some)
                .map_err(|e| format!("--public-key {}: {e}", path.display()));
        }
        let Some(key_id) = &self.signing_key_id else {
            return Ok(None);
        };
        let kms = aws::kms_client(&aws::sdk_config_from_env().await);
        let out = kms
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_kms::error::ProvideErrorMetadata;
                format!(
                    "KMS GetPublicKey {key_id}: {}",
                    e.code().unwrap_or("no answer")
                )
            })?;
        let der = out
            .public_key()
            .ok_or_else(|| format!("KMS GetPublicKey {key_id}: no key returned"))?;
        veriff_archiver::signing::public_key(der.as_ref())
            .map(Some)
            .map_err(|e| format!("KMS key {key_id}: {e}"))
    }
}
