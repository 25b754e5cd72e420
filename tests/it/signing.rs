//! Signed manifests, function side: with `MANIFEST_SIGNING_KEY_ID`, every manifest gets a
//! signature document that KMS signed and that verifies offline with the public key alone.
//!
//! KMS is moto_server's (which signs `RAW` messages correctly), S3 is s3s-fs. The cases are
//! `#[ignore]`d because they need `moto_server`: scripts/test.sh installs it into
//! `.venv-moto/` and runs them with `-- --ignored`.

use crate::support::*;
use archiver_devkit::fixtures::{DEMO_ATTEMPT_ID, DEMO_SESSION_ID};
use archiver_devkit::{MotoServer, demo_scenario};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use veriff_archiver::signing::{self, SignatureDocument};
use veriff_archiver::webhook::{self, Webhook};

const SESSION: &str = DEMO_SESSION_ID;
const ATTEMPT: &str = DEMO_ATTEMPT_ID;

fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// A fresh ECC_NIST_P256 SIGN_VERIFY key: its ARN and public key.
async fn signing_key(kms: &aws_sdk_kms::Client) -> (String, p256::ecdsa::VerifyingKey) {
    let key = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create key");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let public = kms
        .get_public_key()
        .key_id(&arn)
        .send()
        .await
        .expect("public key");
    let public = signing::public_key(public.public_key().unwrap().as_ref()).unwrap();
    (arn, public)
}

#[tokio::test]
#[ignore = "needs moto_server: scripts/test.sh installs it and runs this with --ignored"]
async fn every_manifest_is_signed_and_verifies_offline() {
    let moto = MotoServer::start().await.expect("moto_server");
    let kms = kms_client(&moto.endpoint());
    let (arn, public) = signing_key(&kms).await;
    let h = Harness::with_kms(&[("MANIFEST_SIGNING_KEY_ID", &arn)], Some(kms.clone())).await;
    demo_scenario(&h.fake, 1000);

    let body = decision(SESSION, ATTEMPT, "approved");
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["signed"], true);
    let manifest_key = reply.body["manifestKey"].as_str().unwrap().to_string();
    let (manifest, _) = h.object(&manifest_key).await;
    let (document, _) = h.object(&signing::signature_key(&manifest_key)).await;
    let statement = signing::verify(&document, &manifest_key, &manifest, &public)
        .expect("the signature verifies with the public key alone");
    assert_eq!(statement.key_id, arn);
    let parsed: SignatureDocument = serde_json::from_slice(&document).unwrap();
    assert_eq!(parsed.algorithm, "ECDSA_SHA_256");
    // The signature document sits beside the manifest, which still lists every file.
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
    // A redelivery: already archived, still signed, nothing rewritten.
    h.s3().reset_requests();
    let again = h.deliver_body(&body).await;
    assert_eq!(
        (
            again.body["status"].as_str(),
            again.body["signed"].as_bool()
        ),
        (Some("already_archived"), Some(true))
    );
    assert!(h.s3().object_writes().is_empty());
    // An edited manifest no longer verifies.
    let edited =
        String::from_utf8(manifest.clone())
            .unwrap()
            .replacen("\"approved\"", "\"declined\"", 1);
    assert!(signing::verify(&document, &manifest_key, edited.as_bytes(), &public).is_err());
}

#[tokio::test]
#[ignore = "needs moto_server: scripts/test.sh installs it and runs this with --ignored"]
async fn a_signing_failure_fails_the_delivery_and_the_redelivery_signs() {
    let moto = MotoServer::start().await.expect("moto_server");
    let kms = kms_client(&moto.endpoint());
    let (arn, public) = signing_key(&kms).await;
    // First, a key that KMS does not know: signing fails before anything is written, so
    // the answer is a 503 (Veriff redelivers) and there is no manifest.
    let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let mut h = Harness::with_kms(&[("MANIFEST_SIGNING_KEY_ID", missing)], Some(kms.clone())).await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    let reply = h.deliver_body(&body).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["code"], "signing_unavailable");
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none(), "no manifest");

    // The key fixed (a new container): the redelivery archives and signs.
    h.reconfigure(&[("MANIFEST_SIGNING_KEY_ID", &arn)], Some(kms.clone()))
        .await;
    let reply = h.deliver_body(&body).await;
    assert_eq!(
        (
            reply.body["status"].as_str(),
            reply.body["signed"].as_bool()
        ),
        (Some("archived"), Some(true)),
        "{}",
        reply.body
    );
    let manifest_key = reply.body["manifestKey"].as_str().unwrap().to_string();
    let (bytes, _) = h.object(&manifest_key).await;
    let (document, _) = h.object(&signing::signature_key(&manifest_key)).await;
    signing::verify(&document, &manifest_key, &bytes, &public).expect("signed");
    h.assert_manifest_consistent(&h.manifest(SESSION, ATTEMPT).await.unwrap())
        .await;
}

#[tokio::test]
#[ignore = "needs moto_server: scripts/test.sh installs it and runs this with --ignored"]
async fn an_archived_manifest_without_its_signature_is_signed_on_redelivery() {
    let moto = MotoServer::start().await.expect("moto_server");
    let kms = kms_client(&moto.endpoint());
    let (arn, public) = signing_key(&kms).await;
    // Archived by a function without signing; then signing is turned on.
    let mut h = Harness::start().await;
    demo_scenario(&h.fake, 1000);
    let body = decision(SESSION, ATTEMPT, "approved");
    let first = h.deliver_body(&body).await;
    assert_eq!(first.body["signed"], false);
    h.reconfigure(&[("MANIFEST_SIGNING_KEY_ID", &arn)], Some(kms))
        .await;
    let downloads = h.media_downloads();
    let again = h.deliver_body(&body).await;
    assert_eq!(
        (
            again.body["status"].as_str(),
            again.body["signed"].as_bool()
        ),
        (Some("already_archived"), Some(true)),
        "{}",
        again.body
    );
    assert_eq!(h.media_downloads(), downloads);
    let key = again.body["manifestKey"].as_str().unwrap().to_string();
    let (bytes, _) = h.object(&key).await;
    let (document, _) = h.object(&signing::signature_key(&key)).await;
    signing::verify(&document, &key, &bytes, &public).expect("signed now");
}

#[tokio::test]
async fn a_signing_key_without_a_signer_never_archives_unsigned() {
    // The app refuses to start with a signing key and no KMS client...
    let h = Harness::start().await;
    let config = config_for(
        &h.fake.base_url(),
        &[("MANIFEST_SIGNING_KEY_ID", "alias/veriff-archiver")],
    );
    let refused = veriff_archiver::App::builder(config.clone(), h.bucket.client.clone())
        .build()
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("MANIFEST_SIGNING_KEY_ID"),
        "{refused}"
    );
    // ...and an archiver assembled by hand without a signer archives nothing unsigned: the
    // files may be stored, the manifest is not.
    demo_scenario(&h.fake, 1000);
    let config = std::sync::Arc::new(config);
    let veriff_archiver::config::CredentialSource::Environment(credentials) =
        config.veriff.credentials.clone()
    else {
        panic!("test credentials come from the environment")
    };
    let veriff = veriff_archiver::veriff::VeriffClient::new(
        &config.veriff,
        veriff_archiver::credentials::CredentialsHandle::new(credentials),
    )
    .unwrap();
    let store =
        veriff_archiver::store::Store::new(h.bucket.client.clone(), BUCKET, config.copy.part_size);
    let archiver = veriff_archiver::archive::Archiver::new(config, veriff, store);
    let Ok(Webhook::Decision(decision)) =
        webhook::classify(decision(SESSION, ATTEMPT, "approved").as_bytes())
    else {
        panic!("a decision")
    };
    let error = archiver
        .archive(
            &decision,
            None,
            tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (503, "signing_unavailable"),
        "{error}"
    );
    assert!(h.manifest(SESSION, ATTEMPT).await.is_none(), "no manifest");
    assert!(
        h.keys().await.iter().all(|k| !k.contains("/manifest")),
        "no manifest object at all"
    );
}
