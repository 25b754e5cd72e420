//! Building every AWS client the function and the CLI use (S3, KMS, SQS, Secrets Manager),
//! the AWS SDK way, from one SDK configuration.
//!
//! Region, credentials and endpoint follow the SDK's own conventions (`AWS_REGION`, the
//! credentials chain, `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`). When a custom endpoint is
//! configured, S3 uses path-style addressing so local S3-compatible servers work.

/// Loads the AWS SDK configuration from the environment (once per process).
pub async fn sdk_config_from_env() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The S3 client for `sdk`; path-style addressing when a custom endpoint is configured.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The KMS client (manifest signing, and the CLI's public key).
pub fn kms_client(sdk: &aws_config::SdkConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(sdk)
}

/// The Secrets Manager client (`VERIFF_SECRET_ARN`).
pub fn secrets_client(sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}

/// Why the caller's identity is unknown.
#[derive(Debug, thiserror::Error)]
#[error("STS GetCallerIdentity: {code}")]
pub struct IdentityError {
    /// STS's error code, or what went wrong.
    pub code: String,
}

/// The caller's identity ARN (STS GetCallerIdentity): who runs an operator's command, for
/// its records (legal holds, erasures). The CLI only; the function never asks.
pub async fn caller_arn(sdk: &aws_config::SdkConfig) -> Result<String, IdentityError> {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let out = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| IdentityError {
            code: e.code().unwrap_or("no answer").to_string(),
        })?;
    out.arn().map(str::to_string).ok_or_else(|| IdentityError {
        code: "no ARN in the answer".into(),
    })
}

/// The SQS client (queue mode).
pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

/// The four clients, from one SDK configuration: what [`crate::app::AppBuilder`] needs.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// S3 (the archive).
    pub s3: aws_sdk_s3::Client,
    /// KMS (manifest signing).
    pub kms: aws_sdk_kms::Client,
    /// SQS (queue mode).
    pub sqs: aws_sdk_sqs::Client,
    /// Secrets Manager (the Veriff credentials).
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// Every client from `sdk`.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> AwsClients {
        AwsClients {
            s3: s3_client(sdk),
            kms: kms_client(sdk),
            sqs: sqs_client(sdk),
            secrets: secrets_client(sdk),
        }
    }

    /// Every client from the environment's SDK configuration.
    pub async fn from_env() -> AwsClients {
        AwsClients::from_sdk(&sdk_config_from_env().await)
    }
}
