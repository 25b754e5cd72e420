//! RFC 3161 timestamps for the ledger's digests: the request, the token from an
//! authority's response, and offline verification of a stored token against the
//! authority's certificate (what an auditor runs, with the certificate they trust).
//!
//! The stored form is the TimeStampToken itself (a CMS ContentInfo holding SignedData over
//! a TSTInfo), exactly what `openssl ts -reply -token_out` writes, so an auditor can also
//! check it by hand: `openssl ts -verify -token_in -in <digest>.tsr -data <digest>.json
//! -CAfile <tsa>.pem`. All ASN.1 goes through RustCrypto's `x509-tsp`, `cms`, `x509-cert` and
//! `der`; signatures are checked with aws-lc-rs (RSA PKCS#1 v1.5, ECDSA P-256 and P-384).
//! No I/O here.

use std::time::SystemTime;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use cmpv2::status::PkiStatus;
use cms::cert::x509::Certificate;
use cms::cert::x509::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Int, ObjectIdentifier, OctetString};
use der::{Any, Decode, DecodePem, Encode};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");

/// Why a timestamp cannot be had or does not verify. Each says what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsaError {
    /// Bytes that are not the ASN.1 expected.
    #[error("{what} is not valid DER: {problem}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What the decoder said.
        problem: String,
    },
    /// The authority refused to timestamp.
    #[error("the time-stamping authority refused the request (status {status}{fail_info})")]
    Rejected {
        /// PKIStatus.
        status: u8,
        /// PKIFailureInfo bits, when given (`, failInfo ...`).
        fail_info: String,
    },
    /// A granted response without a token.
    #[error("the time-stamping authority granted the request but sent no token")]
    NoToken,
    /// The token timestamps other bytes.
    #[error("the token timestamps another hash than the document's SHA-256")]
    ImprintMismatch,
    /// The token answers another request.
    #[error("the token's nonce is not the request's (a replayed or mixed-up response)")]
    NonceMismatch,
    /// Not a timestamp token.
    #[error("not an RFC 3161 token: {0}")]
    NotAToken(&'static str),
    /// The signer's signature does not verify with the certificate's key.
    #[error("the token's signature does not verify with the given certificate")]
    BadSignature,
    /// The token was signed by another certificate than the one given.
    #[error("the token was not signed by the given certificate (check --tsa-cert)")]
    WrongCertificate,
    /// The certificate may not sign timestamps.
    #[error("the certificate's extended key usage does not include timeStamping")]
    NotATimeStampingCertificate,
    /// An algorithm this verifier does not support.
    #[error(
        "unsupported algorithm {oid} (supported: SHA-256/384/512 with RSA or ECDSA P-256/P-384)"
    )]
    UnsupportedAlgorithm {
        /// Its OID.
        oid: String,
    },
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> TsaError {
    move |e| TsaError::Malformed {
        what,
        problem: e.to_string(),
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// When the authority says it saw the hash.
    pub gen_time: SystemTime,
    /// The token's serial number (hex).
    pub serial: String,
    /// The authority's policy (dotted OID).
    pub policy: String,
}

fn sha256_imprint(sha256: &[u8; 32]) -> Result<MessageImprint, TsaError> {
    Ok(MessageImprint {
        hash_algorithm: x509_cert::spki::AlgorithmIdentifier {
            oid: SHA256,
            parameters: Some(Any::null()),
        },
        hashed_message: OctetString::new(sha256.to_vec()).map_err(malformed("the hash"))?,
    })
}

/// A positive INTEGER of a nonce.
fn nonce_int(nonce: u64) -> Int {
    let mut bytes = nonce.to_be_bytes().to_vec();
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] < 0x80 {
        bytes.remove(0);
    }
    if bytes[0] >= 0x80 {
        bytes.insert(0, 0);
    }
    Int::new(&bytes).expect("a minimal positive integer")
}

/// The DER TimeStampReq for a SHA-256 `sha256`, asking for the authority's certificate in
/// the token (`certReq`), with `nonce`.
pub fn request(sha256: &[u8; 32], nonce: u64) -> Result<Vec<u8>, TsaError> {
    let request = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: sha256_imprint(sha256)?,
        req_policy: None,
        nonce: Some(nonce_int(nonce)),
        cert_req: true,
        extensions: None,
    };
    request.to_der().map_err(malformed("the request"))
}

/// The token (DER ContentInfo) of an authority's TimeStampResp to [`request`]`(sha256,
/// nonce)`: the response must grant the request, and its TSTInfo must carry this hash and
/// this nonce. The token's signature is not checked here (that is [`verify`]'s job, with
/// the certificate an auditor trusts).
pub fn token_from_response(der: &[u8], sha256: &[u8; 32], nonce: u64) -> Result<Vec<u8>, TsaError> {
    let response = TimeStampResp::from_der(der).map_err(malformed("the response"))?;
    let status = response.status.status;
    if !matches!(status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
        let fail_info = response
            .status
            .fail_info
            .map(|f| format!(", failInfo {f:?}"))
            .unwrap_or_default();
        return Err(TsaError::Rejected {
            status: status as u8,
            fail_info,
        });
    }
    let token = response.time_stamp_token.ok_or(TsaError::NoToken)?;
    let (_, info) = open_token(&token)?;
    check_imprint(&info, sha256)?;
    if info.nonce.as_ref() != Some(&nonce_int(nonce)) {
        return Err(TsaError::NonceMismatch);
    }
    token.to_der().map_err(malformed("the token"))
}

/// The SignedData and TSTInfo inside a token.
fn open_token(token: &ContentInfo) -> Result<(SignedData, TstInfo), TsaError> {
    if token.content_type != SIGNED_DATA {
        return Err(TsaError::NotAToken("not CMS SignedData"));
    }
    let content = token.content.to_der().map_err(malformed("the token"))?;
    let signed = SignedData::from_der(&content).map_err(malformed("the token's SignedData"))?;
    let encap = &signed.encap_content_info;
    if encap.econtent_type != TST_INFO {
        return Err(TsaError::NotAToken("its content is not a TSTInfo"));
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or(TsaError::NotAToken("no encapsulated TSTInfo"))?;
    let info = TstInfo::from_der(econtent.value()).map_err(malformed("the TSTInfo"))?;
    Ok((signed, info))
}

fn check_imprint(info: &TstInfo, sha256: &[u8; 32]) -> Result<(), TsaError> {
    let imprint = &info.message_imprint;
    if imprint.hash_algorithm.oid != SHA256 || imprint.hashed_message.as_bytes() != sha256 {
        return Err(TsaError::ImprintMismatch);
    }
    Ok(())
}

/// Verifies a stored token (DER) for a document whose SHA-256 is `sha256`, against the
/// authority's certificate (PEM or DER): the token timestamps exactly this hash, names
/// this certificate as its signer, carries the digest of its TSTInfo in its signed
/// attributes, and its signature verifies with the certificate's key.
pub fn verify(token: &[u8], sha256: &[u8; 32], tsa_cert: &[u8]) -> Result<Verified, TsaError> {
    let certificate = parse_certificate(tsa_cert)?;
    let token = ContentInfo::from_der(token).map_err(malformed("the token"))?;
    let (signed, info) = open_token(&token)?;
    check_imprint(&info, sha256)?;
    let signer = match signed.signer_infos.0.as_slice() {
        [one] => one,
        _ => return Err(TsaError::NotAToken("not exactly one signer")),
    };
    check_certificate(&certificate)?;
    if !identifies(&signer.sid, &certificate)? {
        return Err(TsaError::WrongCertificate);
    }
    let econtent = signed.encap_content_info.econtent.as_ref();
    let tst_der = econtent.map(|c| c.value()).unwrap_or_default();
    check_signed_attributes(signer, tst_der)?;
    check_signature(signer, &certificate)?;
    Ok(Verified {
        gen_time: info.gen_time.to_system_time(),
        serial: hex::encode(info.serial_number.as_bytes()),
        policy: info.policy.to_string(),
    })
}

fn parse_certificate(bytes: &[u8]) -> Result<Certificate, TsaError> {
    if bytes.starts_with(b"-----BEGIN") {
        Certificate::from_pem(bytes).map_err(malformed("the certificate (PEM)"))
    } else {
        Certificate::from_der(bytes).map_err(malformed("the certificate (DER)"))
    }
}

/// A certificate with an extended key usage must allow timestamping.
fn check_certificate(certificate: &Certificate) -> Result<(), TsaError> {
    let extensions = certificate.tbs_certificate.extensions.iter().flatten();
    for extension in extensions.filter(|e| e.extn_id == EXTENDED_KEY_USAGE) {
        let usage = ExtendedKeyUsage::from_der(extension.extn_value.as_bytes())
            .map_err(malformed("the certificate's extended key usage"))?;
        if !usage.0.contains(&TIME_STAMPING) {
            return Err(TsaError::NotATimeStampingCertificate);
        }
    }
    Ok(())
}

/// Whether the signer identifier names `certificate`.
fn identifies(sid: &SignerIdentifier, certificate: &Certificate) -> Result<bool, TsaError> {
    let tbs = &certificate.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            Ok(id.issuer == tbs.issuer && id.serial_number == tbs.serial_number)
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            let extensions = tbs.extensions.iter().flatten();
            for extension in extensions.filter(|e| e.extn_id == SUBJECT_KEY_ID) {
                let own = SubjectKeyIdentifier::from_der(extension.extn_value.as_bytes())
                    .map_err(malformed("the certificate's subject key identifier"))?;
                if own == *ski {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

fn digest_of(oid: &ObjectIdentifier, bytes: &[u8]) -> Result<Vec<u8>, TsaError> {
    Ok(match *oid {
        SHA256 => Sha256::digest(bytes).to_vec(),
        SHA384 => Sha384::digest(bytes).to_vec(),
        SHA512 => Sha512::digest(bytes).to_vec(),
        other => {
            return Err(TsaError::UnsupportedAlgorithm {
                oid: other.to_string(),
            });
        }
    })
}

/// The signed attributes must say the content is a TSTInfo and carry its digest.
fn check_signed_attributes(signer: &SignerInfo, tst_der: &[u8]) -> Result<(), TsaError> {
    let attributes = signer
        .signed_attrs
        .as_ref()
        .ok_or(TsaError::NotAToken("no signed attributes"))?;
    let value = |oid: ObjectIdentifier| {
        attributes
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
    };
    let content_type = value(CONTENT_TYPE)
        .and_then(|v| v.decode_as::<ObjectIdentifier>().ok())
        .ok_or(TsaError::NotAToken("no content-type attribute"))?;
    if content_type != TST_INFO {
        return Err(TsaError::NotAToken(
            "its content-type attribute is not TSTInfo",
        ));
    }
    let digest = value(MESSAGE_DIGEST)
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .ok_or(TsaError::NotAToken("no message-digest attribute"))?;
    if digest.as_bytes() != digest_of(&signer.digest_alg.oid, tst_der)? {
        return Err(TsaError::BadSignature);
    }
    Ok(())
}

/// The signer's signature over its signed attributes (DER, as a SET OF).
fn check_signature(signer: &SignerInfo, certificate: &Certificate) -> Result<(), TsaError> {
    let attributes = signer
        .signed_attrs
        .as_ref()
        .ok_or(TsaError::NotAToken("no signed attributes"))?;
    let message = attributes
        .to_der()
        .map_err(malformed("the signed attributes"))?;
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    let key = spki.subject_public_key.raw_bytes();
    let algorithm = algorithm(
        &signer.signature_algorithm.oid,
        &signer.digest_alg.oid,
        &spki.algorithm,
    )?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(&message, signer.signature.as_bytes())
        .map_err(|_| TsaError::BadSignature)
}

/// The verification algorithm of a signature algorithm (with the digest algorithm, for a
/// plain `rsaEncryption`) and the certificate's key.
fn algorithm(
    signature_oid: &ObjectIdentifier,
    digest_oid: &ObjectIdentifier,
    key: &x509_cert::spki::AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, TsaError> {
    let unsupported = |oid: &ObjectIdentifier| TsaError::UnsupportedAlgorithm {
        oid: oid.to_string(),
    };
    let curve = || -> Option<ObjectIdentifier> {
        (key.oid == EC_PUBLIC_KEY)
            .then(|| {
                key.parameters
                    .as_ref()?
                    .decode_as::<ObjectIdentifier>()
                    .ok()
            })
            .flatten()
    };
    Ok(match *signature_oid {
        RSA_SHA256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        RSA_SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        RSA_SHA512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        RSA => match *digest_oid {
            SHA256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            SHA512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            other => return Err(unsupported(&other)),
        },
        ECDSA_SHA256 | ECDSA_SHA384 => {
            let sha384 = *signature_oid == ECDSA_SHA384;
            match (curve(), sha384) {
                (Some(P256), false) => &signature::ECDSA_P256_SHA256_ASN1,
                (Some(P256), true) => &signature::ECDSA_P256_SHA384_ASN1,
                (Some(P384), false) => &signature::ECDSA_P384_SHA256_ASN1,
                (Some(P384), true) => &signature::ECDSA_P384_SHA384_ASN1,
                (other, _) => return Err(unsupported(&other.unwrap_or(key.oid))),
            }
        }
        other => return Err(unsupported(&other)),
    })
}
