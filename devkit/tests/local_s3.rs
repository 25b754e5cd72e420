//! LocalS3 against the real AWS SDK: SigV4, checksums, conditional writes, faults.

use std::time::{Duration, Instant};

use archiver_devkit::{LocalS3, S3Fault, S3FaultKind, create_bucket_dir};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
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

/// Uploads `data` as a one-part multipart upload of `key` and completes it with
/// `If-None-Match: *`; returns the HTTP status of the completion.
async fn conditional_multipart(c: &Client, key: &str, data: &[u8]) -> u16 {
    let upload = c
        .create_multipart_upload()
        .bucket("archive")
        .key(key)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("archive")
        .key(key)
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap();
    let completed = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                .build(),
        )
        .build();
    match c
        .complete_multipart_upload()
        .bucket("archive")
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(completed)
        .if_none_match("*")
        .send()
        .await
    {
        Ok(_) => 200,
        Err(err) => err.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

#[tokio::test]
async fn request_log_and_conditional_creates() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(dir.path(), ACCESS, SECRET).await.unwrap();
    let c = client(&s3.endpoint(), SECRET);
    c.create_bucket().bucket("archive").send().await.unwrap();
    let created = s3.requests();
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].method.as_str(), created[0].path.as_str()),
        ("PUT", "/archive/")
    );
    assert_eq!(created[0].bucket(), Some("archive"));
    assert_eq!(created[0].key(), None);
    assert_eq!(created[0].status, 200);
    assert!(
        s3.object_writes().is_empty(),
        "CreateBucket is no object write"
    );
    s3.reset_requests();
    assert!(s3.requests().is_empty());
    assert_eq!(s3.request_count(), 1, "the count is not reset");

    // PutObject with If-None-Match: *, twice: the second one is refused.
    for body in [&b"{}"[..], &b"{\"x\":1}"[..]] {
        let _ = c
            .put_object()
            .bucket("archive")
            .key("s/a/manifest-1.json")
            .body(ByteStream::from(body.to_vec()))
            .if_none_match("*")
            .send()
            .await;
    }
    let log = s3.requests();
    assert_eq!(log.len(), 2);
    for (r, status) in log.iter().zip([200, 412]) {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.path, "/archive/s/a/manifest-1.json");
        assert_eq!(r.key(), Some("s/a/manifest-1.json"));
        assert_eq!(r.if_none_match.as_deref(), Some("*"));
        assert_eq!(r.if_match, None);
        assert_eq!(r.status, status);
        assert!(r.is_object_write());
    }
    let got = c
        .get_object()
        .bucket("archive")
        .key("s/a/manifest-1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(&got.body.collect().await.unwrap().into_bytes()[..], b"{}");

    // CompleteMultipartUpload with If-None-Match: *: a new key works, an existing one is 412.
    let data = archiver_devkit::deterministic_bytes(9, 70_000);
    s3.reset_requests();
    assert_eq!(conditional_multipart(&c, "s/a/video.mp4", &data).await, 200);
    assert_eq!(
        conditional_multipart(&c, "s/a/video.mp4", b"other").await,
        412
    );
    assert_eq!(
        conditional_multipart(&c, "s/a/manifest-1.json", b"other").await,
        412
    );
    let got = c
        .get_object()
        .bucket("archive")
        .key("s/a/video.mp4")
        .send()
        .await
        .unwrap();
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        &data[..]
    );

    let log = s3.requests();
    // Create, UploadPart, Complete per upload, then the GET.
    assert_eq!(log.len(), 10, "{log:#?}");
    let posts: Vec<_> = log.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 6);
    assert!(posts[0].has_query_param("uploads"));
    assert!(posts[0].if_none_match.is_none());
    let complete = posts[1];
    assert!(
        complete
            .query_param("uploadId")
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(complete.if_none_match.as_deref(), Some("*"));
    assert_eq!(complete.path, "/archive/s/a/video.mp4");
    let part = log.iter().find(|r| r.method == "PUT").unwrap();
    assert!(part.has_query_param("partNumber") && part.has_query_param("uploadId"));

    let writes = s3.object_writes();
    let summary: Vec<(&str, &str, u16)> = writes
        .iter()
        .map(|r| (r.method.as_str(), r.key().unwrap(), r.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "s/a/video.mp4", 200),
            ("POST", "s/a/video.mp4", 412),
            ("POST", "s/a/manifest-1.json", 412),
        ]
    );
    s3.shutdown().await;
}

#[tokio::test]
async fn racing_conditional_completes_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = LocalS3::start(dir.path(), ACCESS, SECRET).await.unwrap();
    let c = client(&s3.endpoint(), SECRET);
    c.create_bucket().bucket("archive").send().await.unwrap();
    for round in 0..5 {
        let key = format!("race-{round}");
        let a = archiver_devkit::deterministic_bytes(round, 300_000);
        let b = archiver_devkit::deterministic_bytes(round + 100, 300_000);
        let (x, y) = tokio::join!(
            conditional_multipart(&c, &key, &a),
            conditional_multipart(&c, &key, &b)
        );
        let mut statuses = [x, y];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412], "round {round}");
        let got = c
            .get_object()
            .bucket("archive")
            .key(&key)
            .send()
            .await
            .unwrap();
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(&body[..], if x == 200 { &a[..] } else { &b[..] });
    }
    s3.shutdown().await;
}
