//! Shared harness for the integration tests: a real S3-compatible server (s3s-fs, SigV4
//! verified) and the Veriff fake, both on loopback, and the real handler fed with real
//! Function URL events.
#![allow(dead_code)]

pub mod sqs;

use std::collections::HashMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use archiver_devkit::{
    FakeConfig, FakeVeriff, LocalS3, MediaContent, MotoServer, deterministic_bytes,
    signed_webhook_event,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::types::ChecksumMode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use veriff_archiver::{App, Config, layout};

/// API key of the test integration.
pub const API_KEY: &str = "local-test-api-key";
/// Shared secret of the test integration.
pub const SECRET: &str = "local-test-shared-secret";
/// Archive bucket.
pub const BUCKET: &str = "veriff-archive";
/// Archive prefix.
pub const PREFIX: &str = "veriff/";
pub const S3_ACCESS_KEY: &str = "test-access-key";
pub const S3_SECRET_KEY: &str = "test-secret-key";

/// A handler answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Servers, client and app for one test. Derefs to the [`Bucket`] view of the archive.
pub struct Harness {
    pub fake: FakeVeriff,
    /// The S3 server; `None` while stopped by [`Harness::stop_s3`], or on moto.
    pub s3: Option<LocalS3>,
    /// moto_server, when the harness runs on it instead of s3s-fs.
    pub moto: Option<MotoServer>,
    s3_addr: std::net::SocketAddr,
    pub bucket: Bucket,
    pub app: App,
    pub config: Config,
    _root: tempfile::TempDir,
}

impl Deref for Harness {
    type Target = Bucket;
    fn deref(&self) -> &Bucket {
        &self.bucket
    }
}

/// A read-only view of the archive bucket on the local S3 server.
pub struct Bucket {
    pub client: Client,
    /// The s3s-fs root folder.
    pub root: PathBuf,
    /// Whether reads validate S3 checksums (see [`Bucket::object`]).
    pub validate_checksums: bool,
}

/// Builds an aws-sdk-s3 client for a local endpoint (path style, static credentials).
pub fn s3_client(endpoint: &str, secret_key: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            S3_ACCESS_KEY,
            secret_key,
            None,
            None,
            "tests",
        ))
        .build();
    Client::from_conf(config)
}

impl Harness {
    /// Default configuration: prefix `veriff/`, 5 MiB parts, short timeouts.
    pub async fn start() -> Harness {
        Harness::with(&[]).await
    }

    /// Starts everything, with these environment overrides.
    pub async fn with(overrides: &[(&str, &str)]) -> Harness {
        Harness::with_fake(
            FakeConfig {
                sign_media: true,
                ..FakeConfig::new(API_KEY, SECRET)
            },
            overrides,
        )
        .await
    }

    /// Starts everything with these overrides, signing manifests through `kms` when
    /// `MANIFEST_SIGNING_KEY_ID` is among them.
    pub async fn with_kms(overrides: &[(&str, &str)], kms: Option<aws_sdk_kms::Client>) -> Harness {
        let mut h = Harness::with(&[]).await;
        h.reconfigure(overrides, kms).await;
        h
    }

    /// Rebuilds the function (a new container) with these overrides and KMS client, over
    /// the same servers and archive.
    pub async fn reconfigure(
        &mut self,
        overrides: &[(&str, &str)],
        kms: Option<aws_sdk_kms::Client>,
    ) {
        self.config = config_for(&self.fake.base_url(), overrides);
        let mut builder = App::builder(self.config.clone(), self.bucket.client.clone());
        if let Some(kms) = kms {
            builder = builder.kms(kms);
        }
        self.app = builder.build().await.expect("app");
    }

    /// Starts everything with a custom fake configuration.
    pub async fn with_fake(fake_config: FakeConfig, overrides: &[(&str, &str)]) -> Harness {
        let root = tempfile::tempdir().expect("temp dir");
        let s3 = LocalS3::start(root.path(), S3_ACCESS_KEY, S3_SECRET_KEY)
            .await
            .expect("s3 server");
        let fake = FakeVeriff::start(fake_config).await.expect("veriff fake");
        let s3_client = s3_client(&s3.endpoint(), S3_SECRET_KEY);
        s3_client
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("create bucket");
        let config = config_for(&fake.base_url(), overrides);
        let app = App::builder(config.clone(), s3_client.clone())
            .build()
            .await
            .expect("app");
        let bucket = Bucket {
            client: s3_client,
            root: root.path().to_path_buf(),
            validate_checksums: true,
        };
        Harness {
            fake,
            s3_addr: s3.addr(),
            s3: Some(s3),
            moto: None,
            bucket,
            app,
            config,
            _root: root,
        }
    }

    /// Starts everything on moto_server (which enforces S3 Object Lock and conditional
    /// writes) instead of s3s-fs. The bucket is versioned; with `lock`, Object Lock is on
    /// with that default retention (mode, days).
    pub async fn on_moto(overrides: &[(&str, &str)], lock: Option<(&str, i32)>) -> Harness {
        use aws_sdk_s3::types::{
            BucketVersioningStatus, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
            ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
        };
        let root = tempfile::tempdir().expect("temp dir");
        let moto = MotoServer::start()
            .await
            .expect("moto_server (scripts/test.sh installs it)");
        let fake = FakeVeriff::start(FakeConfig {
            sign_media: true,
            ..FakeConfig::new(API_KEY, SECRET)
        })
        .await
        .expect("veriff fake");
        let client = s3_client(&moto.endpoint(), S3_SECRET_KEY);
        client
            .create_bucket()
            .bucket(BUCKET)
            .object_lock_enabled_for_bucket(lock.is_some())
            .send()
            .await
            .expect("create bucket");
        client
            .put_bucket_versioning()
            .bucket(BUCKET)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
        if let Some((mode, days)) = lock {
            client
                .put_object_lock_configuration()
                .bucket(BUCKET)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .rule(
                            ObjectLockRule::builder()
                                .default_retention(
                                    DefaultRetention::builder()
                                        .mode(ObjectLockRetentionMode::from(mode))
                                        .days(days)
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("object lock configuration");
        }
        let config = config_for(&fake.base_url(), overrides);
        let app = App::builder(config.clone(), client.clone())
            .build()
            .await
            .expect("app");
        let reader = aws_sdk_s3::Client::from_conf(
            client
                .config()
                .to_builder()
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                )
                .build(),
        );
        let client = reader;
        Harness {
            fake,
            s3_addr: moto.addr(),
            s3: None,
            moto: Some(moto),
            bucket: Bucket {
                client,
                root: root.path().to_path_buf(),
                validate_checksums: false,
            },
            app,
            config,
            _root: root,
        }
    }

    /// The running S3 server.
    pub fn s3(&self) -> &LocalS3 {
        self.s3.as_ref().expect("S3 server running")
    }

    /// Stops the S3 server (connections are cut, the port is refused).
    pub async fn stop_s3(&mut self) {
        if let Some(s3) = self.s3.take() {
            s3.shutdown().await;
        }
    }

    /// Starts the S3 server again on the same port, over the same data.
    pub async fn restart_s3(&mut self) {
        self.stop_s3().await;
        let s3 = LocalS3::start_on(
            &self.bucket.root,
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
            self.s3_addr,
        )
        .await
        .expect("restart s3 server");
        self.s3 = Some(s3);
    }

    /// Delivers `body` signed like Veriff does, with a minute of budget.
    pub async fn deliver_body(&self, body: &str) -> Reply {
        self.deliver(signed_webhook_event(
            body.as_bytes(),
            SECRET,
            API_KEY,
            false,
        ))
        .await
    }

    /// Delivers a complete Lambda event, with a minute of budget.
    pub async fn deliver(&self, event: Value) -> Reply {
        self.deliver_within(event, Duration::from_secs(60)).await
    }

    /// Delivers a complete Lambda event whose invocation ends after `budget`.
    pub async fn deliver_within(&self, event: Value, budget: Duration) -> Reply {
        let response = self
            .app
            .handle(&event, Instant::now() + budget)
            .await
            .into_lambda();
        let status = response["statusCode"].as_u64().expect("statusCode") as u16;
        assert_eq!(response["headers"]["content-type"], "application/json");
        let body =
            serde_json::from_str(response["body"].as_str().expect("body")).expect("JSON body");
        Reply { status, body }
    }

    /// Serves `document` as the media listing of the demo session and of its attempt (the
    /// same ids, so combined mode archives from the session listing).
    pub fn set_listing(&self, document: impl Into<String>) {
        let document = document.into();
        self.fake
            .set_session_media(archiver_devkit::fixtures::DEMO_SESSION_ID, document.clone());
        self.fake
            .set_attempt_media(archiver_devkit::fixtures::DEMO_ATTEMPT_ID, document);
    }

    /// Multipart uploads started, completed and aborted, from the S3 server's request log.
    pub fn multipart_uploads(&self) -> archiver_devkit::MultipartUploads {
        self.s3().multipart_uploads()
    }

    /// Asserts that a failure left no multipart upload open, and that this proves something:
    /// at least one upload had been started, and the archiver aborted it.
    pub fn assert_started_uploads_were_aborted(&self, what: &str) {
        let uploads = self.multipart_uploads();
        assert!(
            uploads.started >= 1,
            "{what}: no multipart upload was ever started, so 'none open' proves nothing: {uploads:?}"
        );
        assert!(
            uploads.aborted >= 1,
            "{what}: nothing was aborted: {uploads:?}"
        );
        assert_eq!(uploads.open(), 0, "{what}: uploads left open: {uploads:?}");
    }

    /// How many `GET /v1/media/...` requests the fake has seen.
    pub fn media_downloads(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v1/media/"))
            .count()
    }
}

impl Bucket {
    /// Every key of the archive (the ledger's receipts and digests set aside), sorted.
    pub async fn keys(&self) -> Vec<String> {
        let ledger = format!("{PREFIX}ledger/");
        let mut keys = self.all_keys().await;
        keys.retain(|k| !k.starts_with(&ledger));
        keys
    }

    /// The ledger's keys (receipts, digests), sorted.
    pub async fn ledger_keys(&self) -> Vec<String> {
        let ledger = format!("{PREFIX}ledger/");
        let mut keys = self.all_keys().await;
        keys.retain(|k| k.starts_with(&ledger));
        keys
    }

    /// Every key in the bucket, sorted.
    pub async fn all_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(BUCKET)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.expect("list").contents() {
                keys.push(object.key().expect("key").to_string());
            }
        }
        keys.sort();
        keys
    }

    /// An object's bytes, read back with S3 checksum validation on (off on moto, which
    /// returns a multipart object's composite checksum without its `-<parts>` suffix, so
    /// the SDK would check it as a full-object checksum).
    pub async fn object(&self, key: &str) -> (Vec<u8>, Option<String>) {
        let out = self
            .client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .set_checksum_mode(self.validate_checksums.then_some(ChecksumMode::Enabled))
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        let content_type = out.content_type().map(str::to_string);
        (
            out.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec(),
            content_type,
        )
    }

    /// Every manifest of an attempt folder: a legacy v1 `manifest.json` first, then the v2
    /// per-decision manifests sorted by key, i.e. by decision time. Each v2 or v3 manifest is
    /// validated against `schema/manifest-v3.schema.json`; an object that is not JSON (left
    /// there by a test) is returned as `null`.
    pub async fn manifests(&self, session_id: &str, attempt_id: &str) -> Vec<(String, Value)> {
        let folder = format!("{PREFIX}{session_id}/{attempt_id}/");
        let mut manifests = Vec::new();
        for key in self.keys().await {
            let Some(name) = layout::parse_manifest_key(&folder, &key) else {
                continue;
            };
            let manifest: Value =
                serde_json::from_slice(&self.object(&key).await.0).unwrap_or(Value::Null);
            if manifest["schemaVersion"].as_u64() >= Some(2) {
                assert_valid_manifest(&manifest);
            }
            manifests.push((name.decision.is_some(), key, manifest));
        }
        manifests.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        manifests.into_iter().map(|(_, k, m)| (k, m)).collect()
    }

    /// The manifest of an attempt's latest decision, if any was written.
    pub async fn manifest(&self, session_id: &str, attempt_id: &str) -> Option<Value> {
        self.manifests(session_id, attempt_id)
            .await
            .into_iter()
            .rev()
            .map(|(_, m)| m)
            .find(|m| !m.is_null())
    }

    /// HeadObject with checksum mode: size, version id, ETag and SHA-256 checksum.
    pub async fn head(&self, key: &str) -> (u64, Option<String>, Option<String>, Option<String>) {
        let out = self
            .client
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
        (
            out.content_length().unwrap_or(0) as u64,
            out.version_id().map(str::to_string),
            out.e_tag().map(str::to_string),
            out.checksum_sha256().map(str::to_string),
        )
    }

    /// Asserts that every file the manifest lists is stored with the listed size, hash,
    /// content type and S3 record (version, ETag, and checksum where S3 returns one),
    /// inside the attempt folder, and that the folder holds nothing that no manifest of
    /// the folder lists.
    pub async fn assert_manifest_consistent(&self, manifest: &Value) {
        let session_id = manifest["sessionId"].as_str().unwrap();
        let attempt_id = manifest["attemptId"].as_str().unwrap();
        let folder = format!("{PREFIX}{session_id}/{attempt_id}/");
        for file in manifest["files"].as_array().expect("files") {
            let key = file["key"].as_str().unwrap();
            assert!(key.starts_with(&folder), "{key} outside {folder}");
            let (bytes, content_type) = self.object(key).await;
            assert_eq!(
                bytes.len() as u64,
                file["size"].as_u64().unwrap(),
                "{key} size"
            );
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                file["sha256"].as_str().unwrap(),
                "{key} hash"
            );
            assert_eq!(
                content_type.unwrap_or_default(),
                file["contentType"].as_str().unwrap(),
                "{key} content type (empty when S3 keeps none)"
            );
            if manifest["schemaVersion"].as_u64() >= Some(2) {
                let (_, version, etag, checksum) = self.head(key).await;
                assert_eq!(
                    version.as_deref(),
                    file["versionId"].as_str(),
                    "{key} version"
                );
                assert_eq!(etag.as_deref(), file["etag"].as_str(), "{key} ETag");
                if let Some(checksum) = checksum {
                    let recorded = file["s3Checksum"]["value"].as_str().unwrap_or_default();
                    assert!(
                        veriff_archiver::stored::same_checksum(&checksum, recorded),
                        "{key} S3 checksum: stored {checksum}, recorded {recorded}"
                    );
                }
            }
        }
        let mut listed: Vec<String> = Vec::new();
        for (key, m) in self.manifests(session_id, attempt_id).await {
            listed.push(key);
            if m.is_null() {
                continue;
            }
            for file in m["files"].as_array().into_iter().flatten() {
                listed.push(file["key"].as_str().unwrap().to_string());
            }
            if let Some(key) = m["decisionPayload"]["key"].as_str() {
                listed.push(key.to_string());
            }
        }
        let stored: Vec<String> = self
            .keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with(&folder))
            .collect();
        // A manifest's signature document, when manifests are signed, sits beside it.
        let signatures: Vec<String> = listed
            .iter()
            .map(|k| veriff_archiver::signing::signature_key(k))
            .filter(|k| stored.contains(k))
            .collect();
        listed.extend(signatures);
        listed.sort();
        listed.dedup();
        assert_eq!(
            stored, listed,
            "the folder holds exactly the manifests and the files they list"
        );
    }
}

/// The function's configuration for a fake at `base_url`.
pub fn config_for(base_url: &str, overrides: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("VERIFF_API_URL", base_url),
        ("VERIFF_API_KEY", API_KEY),
        ("VERIFF_SHARED_SECRET", SECRET),
        ("ARCHIVE_BUCKET", BUCKET),
        ("ARCHIVE_PREFIX", PREFIX),
        ("PART_SIZE_MIB", "5"),
        ("VERIFF_TIMEOUT_MS", "2000"),
        ("DEADLINE_MARGIN_MS", "500"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("valid test configuration")
}

/// Registers content for every media entry of a metadata document (sizes as listed), and
/// returns the served bytes by media id. Also serves the document itself for `session_id`
/// and/or `attempt_id`.
pub fn serve_metadata(
    fake: &FakeVeriff,
    document: &str,
    session_id: Option<&str>,
    attempt_id: Option<&str>,
) -> HashMap<String, Vec<u8>> {
    if let Some(id) = session_id {
        fake.set_session_media(id, document);
    }
    if let Some(id) = attempt_id {
        fake.set_attempt_media(id, document);
    }
    let doc: Value = serde_json::from_str(document).expect("metadata JSON");
    let mut served = HashMap::new();
    for field in ["images", "videos", "nfcDocuments"] {
        for (i, item) in doc[field].as_array().into_iter().flatten().enumerate() {
            let (Some(id), Some(size)) = (item["id"].as_str(), item["size"].as_u64()) else {
                continue;
            };
            let bytes =
                deterministic_bytes(size ^ (i as u64) << 20 ^ id.len() as u64, size as usize);
            let mimetype = item["mimetype"]
                .as_str()
                .unwrap_or("application/octet-stream");
            fake.set_media(id, MediaContent::bytes(bytes.clone(), mimetype));
            served.insert(id.to_string(), bytes);
        }
    }
    served
}

/// A decision webhook body for this session and attempt.
pub fn decision(session_id: &str, attempt_id: &str, status: &str) -> String {
    archiver_devkit::decision_webhook(session_id, attempt_id, status, "2025-03-04T10:21:07.412Z")
}

/// The errors of `manifest` against `schema/manifest-v3.schema.json` (which validates v2
/// manifests too); empty when it is valid.
pub fn manifest_schema_errors(manifest: &Value) -> Vec<String> {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../../../schema/manifest-v3.schema.json"))
                .expect("schema JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    });
    validator
        .iter_errors(manifest)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Asserts that `manifest` is valid against `schema/manifest-v3.schema.json`.
pub fn assert_valid_manifest(manifest: &Value) {
    let errors = manifest_schema_errors(manifest);
    assert!(
        errors.is_empty(),
        "manifest violates the v3 schema: {errors:#?}\n{manifest:#}"
    );
}

/// Base64 of the SHA-256 of `bytes`: S3's full-object checksum.
pub fn base64_sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

/// One run of the `veriff-archiver` binary.
#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// From a finished process (which must have exited, not been killed).
    pub fn from_output(out: std::process::Output) -> CliRun {
        CliRun {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
        }
    }

    /// stdout as exactly one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self:#?}"))
    }

    /// The value of a row of a human summary table (`  label   value`).
    pub fn row(&self, label: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix("  ")?.strip_prefix(label)?;
                rest.starts_with("  ").then(|| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {label:?} row in:\n{}", self.stdout))
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
    }
}

/// The environment the CLI needs to reach this harness's archive (the function's variables
/// and the SDK's), with none of the host's AWS set-up.
pub fn cli_env(h: &Harness) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_S3", format!("http://{}", h.s3_addr)),
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("ARCHIVE_BUCKET", BUCKET.into()),
        ("ARCHIVE_PREFIX", PREFIX.into()),
    ]
}

/// Collects what a metrics emitter (or a log writer) writes, as lines.
#[derive(Clone, Default)]
pub struct Lines(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

/// A Secrets Manager client for a local endpoint (moto_server).
pub fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
                None,
                None,
                "test",
            ))
            .build(),
    )
}

impl Lines {
    /// Every line written since the last call, parsed as JSON.
    pub fn take(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// A metrics emitter writing here.
    pub fn metrics(&self, namespace: &str) -> veriff_archiver::metrics::Metrics {
        veriff_archiver::metrics::Metrics::to_writer(
            namespace,
            std::sync::Arc::new(std::sync::Mutex::new(self.clone())),
        )
    }
}
