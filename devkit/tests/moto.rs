//! MotoServer against the real AWS SDK (needs `moto_server`: run with `-- --ignored`).

use archiver_devkit::MotoServer;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            "AKIDMOTOTEST",
            "moto-secret",
            None,
            None,
            "static",
        ))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

#[tokio::test]
#[ignore = "needs moto_server: pip install 'moto[server]' (scripts/test.sh puts it in .venv)"]
async fn moto_server_object_lock_and_conditional_writes() {
    let moto = MotoServer::start().await.unwrap();
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    assert!(moto.log_path().exists());
    let c = client(&moto.endpoint());

    c.create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let lock = c
        .get_object_lock_configuration()
        .bucket("locked")
        .send()
        .await
        .unwrap();
    assert_eq!(
        lock.object_lock_configuration()
            .and_then(|l| l.object_lock_enabled()),
        Some(&ObjectLockEnabled::Enabled)
    );
    c.put_object_lock_configuration()
        .bucket("locked")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    // A conditional create with a SHA-256 checksum works once, then answers 412.
    let data = b"{\"schema\":2}".to_vec();
    let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data));
    let put = c
        .put_object()
        .bucket("locked")
        .key("s/a/manifest.json")
        .body(ByteStream::from(data.clone()))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(&sha)
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let version = put.version_id().expect("a locked bucket is versioned");
    let err = c
        .put_object()
        .bucket("locked")
        .key("s/a/manifest.json")
        .body(ByteStream::from_static(b"{}"))
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));

    // The locked version cannot be deleted.
    let err = c
        .delete_object()
        .bucket("locked")
        .key("s/a/manifest.json")
        .version_id(version)
        .send()
        .await
        .unwrap_err();
    // AWS answers 403, moto 5.1 400 (5.2 403): both with the code AccessDenied.
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("AccessDenied"),
        "{err:?}"
    );
    let got = c
        .get_object()
        .bucket("locked")
        .key("s/a/manifest.json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        &data[..]
    );

    // reset() forgets everything.
    moto.reset().await.unwrap();
    let buckets = c.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty());

    // Dropping the server stops it.
    let endpoint = moto.endpoint();
    drop(moto);
    assert!(client(&endpoint).list_buckets().send().await.is_err());
}
