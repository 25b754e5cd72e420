//! Building the AWS clients (S3, KMS, SQS, Secrets Manager) the AWS SDK way.
//!
//! Region, credentials and endpoint follow the SDK's own conventions (`AWS_REGION`, the
//! credentials chain, `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`). When a custom endpoint is
//! configured, path-style addressing is used so local S3-compatible servers work.

/// Loads the AWS SDK configuration from the environment (once per container).
pub async fn sdk_config_from_env() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Builds the S3 client from the environment (once per container).
pub async fn client_from_env() -> aws_sdk_s3::Client {
    client(&sdk_config_from_env().await)
}

/// The KMS client (manifest signing), from the same SDK configuration.
pub fn kms_client(sdk: &aws_config::SdkConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(sdk)
}

/// The Secrets Manager client (`VERIFF_SECRET_ARN`), from the same SDK configuration.
pub fn secrets_client(sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}

/// The SQS client (queue mode), from the same SDK configuration.
pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

/// The S3 client for `sdk`; path-style addressing when a custom endpoint is configured.
pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
