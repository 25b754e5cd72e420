//! RFC 3161 against a real authority: Debian's `openssl ts -reply` behind the devkit's
//! [`TsaServer`], with an RSA and a P-256 key. A token obtained through
//! `ledger::stamp::Timestamper` verifies offline against the authority's certificate, and
//! fails against anything else: another hash, another authority's certificate, a flipped
//! byte of the signature. `openssl ts -verify` agrees on the same files.

use std::process::Command;

use archiver_devkit::{TsaKey, TsaServer};
use sha2::{Digest, Sha256};
use veriff_archiver::ledger::stamp::Timestamper;
use veriff_archiver::tsa::{self, TsaError};

fn timestamper(server: &TsaServer) -> Timestamper {
    Timestamper::new(reqwest::Client::new(), server.url().parse().unwrap())
}

#[tokio::test]
async fn tokens_from_a_real_authority_verify_and_nothing_else_does() {
    let document = b"{\"schema\":\"a digest\"}\n";
    let sha256: [u8; 32] = Sha256::digest(document).into();
    let rsa = TsaServer::start(TsaKey::Rsa).await.unwrap();
    let ec = TsaServer::start(TsaKey::P256).await.unwrap();
    for server in [&rsa, &ec] {
        let token = timestamper(server).token_for(document).await.unwrap();
        let verified = tsa::verify(&token, &sha256, &server.cert_pem()).unwrap();
        assert_eq!(verified.policy, "1.3.6.1.4.1.4146.2.3");
        let age = std::time::SystemTime::now()
            .duration_since(verified.gen_time)
            .unwrap_or_default();
        assert!(
            age.as_secs() < 120,
            "generated now: {:?}",
            verified.gen_time
        );
        assert!(!verified.serial.is_empty());

        // Another document's hash.
        let other: [u8; 32] = Sha256::digest(b"other").into();
        assert_eq!(
            tsa::verify(&token, &other, &server.cert_pem()),
            Err(TsaError::ImprintMismatch)
        );
        // A flipped byte in the signature (the last bytes of the token).
        let mut forged = token.clone();
        let last = forged.len() - 3;
        forged[last] ^= 0x01;
        assert!(matches!(
            tsa::verify(&forged, &sha256, &server.cert_pem()),
            Err(TsaError::BadSignature | TsaError::Malformed { .. })
        ));
        // openssl agrees.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.json"), document).unwrap();
        std::fs::write(dir.path().join("d.tsr"), &token).unwrap();
        std::fs::write(dir.path().join("ca.pem"), server.cert_pem()).unwrap();
        let check = Command::new("openssl")
            .args([
                "ts",
                "-verify",
                "-token_in",
                "-in",
                "d.tsr",
                "-data",
                "d.json",
                "-CAfile",
                "ca.pem",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&check.stdout).contains("Verification: OK"),
            "openssl ts -verify: {} {}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    // Each authority's token fails against the other's certificate.
    let token = timestamper(&rsa).token_for(document).await.unwrap();
    assert_eq!(
        tsa::verify(&token, &sha256, &ec.cert_pem()),
        Err(TsaError::WrongCertificate)
    );
    assert!(rsa.requests() >= 2);
}

#[tokio::test]
async fn an_authority_that_is_down_gives_no_token_and_a_clear_error() {
    let server = TsaServer::start(TsaKey::P256).await.unwrap();
    server.set_down(true);
    let error = timestamper(&server).token_for(b"x").await.unwrap_err();
    assert!(error.to_string().contains("HTTP 503"), "{error}");
    server.set_down(false);
    assert!(timestamper(&server).token_for(b"x").await.is_ok());
    assert_eq!(server.requests(), 2);
}

#[test]
fn a_request_is_read_by_openssl_as_sent() {
    let sha256: [u8; 32] = Sha256::digest(b"doc").into();
    let der = tsa::request(&sha256, 0x8000_0000_0000_0001).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("q.der"), &der).unwrap();
    let out = Command::new("openssl")
        .args(["ts", "-query", "-in", "q.der", "-text"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Hash Algorithm: sha256"), "{text}");
    assert!(text.contains("Nonce: 0x8000000000000001"), "{text}");
    assert!(text.contains("Certificate required: yes"), "{text}");
    let hex_spaced = hex::encode(sha256);
    assert!(
        text.replace([' ', '-', '\n'], "")
            .to_lowercase()
            .contains(&hex_spaced[..16]),
        "{text}"
    );
}

#[test]
fn a_refusal_is_reported_with_its_status() {
    // TimeStampResp { status: rejection (2), failInfo: badAlg } as openssl writes it.
    let der = [
        0x30, 0x0a, 0x30, 0x08, 0x02, 0x01, 0x02, 0x03, 0x03, 0x07, 0x80, 0x00,
    ];
    let sha256 = [0u8; 32];
    match tsa::token_from_response(&der, &sha256, 1) {
        Err(TsaError::Rejected { status: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
}
