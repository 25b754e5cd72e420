//! LocalS3 against the real AWS SDK: SigV4, checksums, conditional writes, faults.

use std::time::{Duration, Instant};

use archiver_devkit::{LocalS3, S3Fault, S3FaultKind, create_bucket_dir};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use base64::Engine as _;
use sha2::{Digest, Sha256};

const ACCESS: &str = "AKIDLOCALTEST";
const SECRET: &str = "local-secret-key";

fn client(endpoint: &str, secret: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS, secret, None, None, "static"))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn sha256_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

#[tokio::test]
async fn put_get_conditional_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(dir.path(), ACCESS, SECRET).await.unwrap();
    let c = client(&s3.endpoint(), SECRET);

    c.create_bucket().bucket("archive").send().await.unwrap();
    assert!(dir.path().join("archive").is_dir());

    let data = archiver_devkit::deterministic_bytes(1, 300_000);
    let put = c
        .put_object()
        .bucket("archive")
        .key("sessions/a/b/face.jpg")
        .body(ByteStream::from(data.clone()))
        .content_type("image/jpeg")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(sha256_b64(&data))
        .send()
        .await
        .unwrap();
    assert_eq!(put.checksum_sha256(), Some(sha256_b64(&data).as_str()));

    let got = c
        .get_object()
        .bucket("archive")
        .key("sessions/a/b/face.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(300_000));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], &data[..]);

    // A wrong declared checksum is rejected.
    let err = c
        .put_object()
        .bucket("archive")
        .key("bad-checksum")
        .body(ByteStream::from(data.clone()))
        .checksum_sha256(sha256_b64(b"other"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.raw_response()
            .is_some_and(|r| r.status().as_u16() == 400),
        "{err:?}"
    );

    // Conditional create: the second write of an existing key fails with 412.
    c.put_object()
        .bucket("archive")
        .key("manifest.json")
        .body(ByteStream::from_static(b"{}"))
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let err = c
        .put_object()
        .bucket("archive")
        .key("manifest.json")
        .body(ByteStream::from_static(b"{\"x\":1}"))
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(412), "{err:?}");

    // Wrong secret: rejected.
    let bad = client(&s3.endpoint(), "not-the-secret");
    let err = bad
        .get_object()
        .bucket("archive")
        .key("manifest.json")
        .send()
        .await
        .unwrap_err();
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(403), "{err:?}");

    assert!(s3.request_count() >= 7);
    s3.shutdown().await;
}

#[tokio::test]
async fn faults_and_precreated_buckets() {
    let dir = tempfile::tempdir().unwrap();
    create_bucket_dir(dir.path(), "pre").unwrap();
    let s3 = LocalS3::start(dir.path(), ACCESS, SECRET).await.unwrap();
    let c = client(&s3.endpoint(), SECRET);

    s3.inject(S3Fault::new(Some("PUT"), S3FaultKind::Status(503), 1));
    let err = c
        .put_object()
        .bucket("pre")
        .key("k")
        .body(ByteStream::from(vec![7_u8; 100_000]))
        .send()
        .await
        .unwrap_err();
    let raw = err
        .raw_response()
        .expect("an HTTP answer, not a broken connection");
    assert_eq!(raw.status().as_u16(), 503);
    let code = err.into_service_error().meta().code().map(str::to_owned);
    assert_eq!(code.as_deref(), Some("SlowDown"));

    // GETs are not affected by a PUT fault; the PUT works once the fault is used up.
    c.put_object()
        .bucket("pre")
        .key("k")
        .body(ByteStream::from_static(b"v"))
        .send()
        .await
        .unwrap();

    s3.inject(S3Fault::new(None, S3FaultKind::Status(500), 1));
    let err = c
        .head_object()
        .bucket("pre")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));

    s3.inject(S3Fault::new(
        None,
        S3FaultKind::Latency(Duration::from_millis(250)),
        1,
    ));
    let t0 = Instant::now();
    c.head_object().bucket("pre").key("k").send().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(250));

    s3.inject(S3Fault::new(None, S3FaultKind::Status(500), 10));
    s3.clear_faults();
    c.head_object().bucket("pre").key("k").send().await.unwrap();

    let endpoint = s3.endpoint();
    s3.shutdown().await;
    let c = client(&endpoint, SECRET);
    assert!(c.head_object().bucket("pre").key("k").send().await.is_err());
}
