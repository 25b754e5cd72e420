//! The ledger's documents and where they live, under `<prefix>ledger/` beside the session
//! folders:
//!
//! - a **receipt** per manifest write, `ledger/receipts/YYYY/MM/DD/HH/<time>~<manifest path>`,
//!   written just before the manifest (a conditional create), partitioned by the hour of
//!   its writer's clock: what the seal reads, so a seal's cost grows with what it seals,
//!   never with the archive;
//! - a **digest** per seal, `ledger/digests/<millions>/<thousands>/<sequence>.json`, never
//!   changed: the manifests sealed (key, version id, size, SHA-256), the period it covers,
//!   the previous digest's key and SHA-256 (a chain), receipts whose manifest is not
//!   written yet, and erasure records. Its sequence number is in its key, so two seals
//!   racing for the same place cannot fork the chain (the second create is refused), and
//!   the newest digest is found with three short listings whatever the chain's length;
//! - beside a digest, its signature document (`<digest>.sig.json`, as for a manifest) and
//!   its RFC 3161 time-stamp token (`<digest>.tsr`).
//!
//! No I/O here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::domain::SafeId;

/// The `schema` of a receipt.
pub const RECEIPT_SCHEMA: &str = "veriff-archiver/ledger-receipt/v1";
/// The `schema` of a digest.
pub const DIGEST_SCHEMA: &str = "veriff-archiver/ledger-digest/v1";

/// The ledger's folder under the archive prefix.
pub fn ledger_prefix(prefix: &str) -> String {
    format!("{prefix}ledger/")
}

/// The folder of all receipts.
pub fn receipts_prefix(prefix: &str) -> String {
    format!("{prefix}ledger/receipts/")
}

/// The folder of all digests.
pub fn digests_prefix(prefix: &str) -> String {
    format!("{prefix}ledger/digests/")
}

/// The partition (an hour) a receipt written at `at` goes to:
/// `<prefix>ledger/receipts/YYYY/MM/DD/HH/`.
pub fn receipt_partition(prefix: &str, at: SystemTime) -> String {
    let t = utc(at);
    format!(
        "{}{}/{}/{}/{}/",
        receipts_prefix(prefix),
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11]
    )
}

/// The key of the receipt of the manifest at `manifest_key` (under `prefix`), written at
/// `at`: the hour's partition, then the time (microseconds, fixed width: keys sort by time)
/// and the manifest's path below the prefix with `~` for `/`
/// (`<time>~<session>~<attempt>~<manifest name>`). A listing of receipts thus names every
/// manifest written, without reading one receipt. `~` is in no session id, attempt id or
/// manifest name.
pub fn receipt_key(prefix: &str, at: SystemTime, manifest_key: &str) -> String {
    let path = manifest_key.strip_prefix(prefix).unwrap_or(manifest_key);
    format!(
        "{}{}~{}",
        receipt_partition(prefix, at),
        utc(at),
        path.replace('/', "~")
    )
}

/// The time and the manifest key a receipt key names, if it is a receipt key of an archive
/// under `prefix` (the manifest's path: a session, an attempt and a manifest name).
pub fn parse_receipt_key(prefix: &str, key: &str) -> Option<(SystemTime, String)> {
    let name = key
        .strip_prefix(&receipts_prefix(prefix))?
        .rsplit('/')
        .next()?;
    let mut parts = name.split('~');
    let (time, session, attempt, manifest) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && crate::domain::is_safe_segment(session)
        && crate::domain::is_safe_segment(attempt)
        && crate::layout::parse_manifest_key("", manifest).is_some();
    let time = parse_utc(time)?;
    well_formed.then(|| (time, format!("{prefix}{session}/{attempt}/{manifest}")))
}

/// The time at the start of a key's last segment (`<time>-...` or `<time>~...`), if any:
/// receipts and erasure records.
pub fn key_time(key: &str) -> Option<SystemTime> {
    let name = key.rsplit('/').next()?;
    parse_utc(name.get(..22)?).filter(|_| matches!(name.as_bytes().get(22), Some(b'-' | b'~')))
}

/// The folder of erasure records.
pub fn erasures_prefix(prefix: &str) -> String {
    format!("{prefix}ledger/erasures/")
}

/// The key of an erasure record written at `at` for `subject` (a keyed hash):
/// `<prefix>ledger/erasures/<time>-<16 hex of the subject>.json`, sorting by time.
pub fn erasure_key(prefix: &str, at: SystemTime, subject: &str) -> String {
    let hash = hex::encode(&Sha256::digest(subject.as_bytes())[..8]);
    format!("{}{}-{hash}.json", erasures_prefix(prefix), utc(at))
}

/// The first key a listing from `at` starts after, in a folder whose keys start with
/// their time (receipts, erasure records): `<folder><time>`.
pub fn time_floor_key(folder: &str, at: SystemTime) -> String {
    format!("{folder}{}", utc(at))
}

/// The key of digest `sequence`: `<prefix>ledger/digests/<seq / 10^6>/<seq / 10^3>/<seq>.json`,
/// zero-padded so that keys sort by sequence.
pub fn digest_key(prefix: &str, sequence: u64) -> String {
    format!(
        "{}{:06}/{:09}/{:012}.json",
        digests_prefix(prefix),
        sequence / 1_000_000,
        sequence / 1_000,
        sequence
    )
}

/// The sequence number of a digest key, if it is one (and not its signature or token).
pub fn digest_sequence(prefix: &str, key: &str) -> Option<u64> {
    let rest = key.strip_prefix(&digests_prefix(prefix))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [millions, thousands, name] = parts.as_slice() else {
        return None;
    };
    let sequence: u64 = name.strip_suffix(".json")?.parse().ok()?;
    let well_formed = name.len() == 12 + ".json".len()
        && millions.parse::<u64>().ok() == Some(sequence / 1_000_000)
        && millions.len() == 6
        && thousands.parse::<u64>().ok() == Some(sequence / 1_000)
        && thousands.len() == 9;
    well_formed.then_some(sequence)
}

/// The key of a digest's RFC 3161 time-stamp token.
pub fn timestamp_key(digest_key: &str) -> String {
    let stem = digest_key.strip_suffix(".json").unwrap_or(digest_key);
    format!("{stem}.tsr")
}

/// What is known of a manifest before it is written: enough to seal it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// [`RECEIPT_SCHEMA`].
    pub schema: String,
    /// The manifest's key.
    pub manifest_key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of its exact bytes.
    pub sha256: String,
    /// When the receipt was written (RFC 3339, the writer's clock).
    pub written_at: String,
}

impl Receipt {
    /// The receipt of `manifest` (its exact bytes) to be stored at `manifest_key`.
    pub fn of(manifest_key: &str, manifest: &[u8], at: SystemTime) -> Receipt {
        Receipt {
            schema: RECEIPT_SCHEMA.to_string(),
            manifest_key: manifest_key.to_string(),
            size: manifest.len() as u64,
            sha256: hex::encode(Sha256::digest(manifest)),
            written_at: humantime::format_rfc3339_micros(at).to_string(),
        }
    }

    /// The document's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("a receipt serialises");
        out.push(b'\n');
        out
    }

    /// Parses a stored receipt.
    pub fn parse(bytes: &[u8]) -> Result<Receipt, LedgerError> {
        let receipt: Receipt =
            serde_json::from_slice(bytes).map_err(|e| LedgerError::Json(e.to_string()))?;
        if receipt.schema != RECEIPT_SCHEMA {
            return Err(LedgerError::Schema(receipt.schema));
        }
        Ok(receipt)
    }
}

/// Why a ledger document does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Not JSON of the document's shape (what serde_json said).
    #[error("not a ledger document ({0})")]
    Json(String),
    /// Another schema.
    #[error("unknown ledger schema {0:?}")]
    Schema(String),
}

/// The half-open period a digest covers: receipts written in it (and late ones from
/// before it, not sealed yet) are sealed by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// Start (RFC 3339, UTC); the previous digest's end. `None` for the first digest,
    /// which covers everything before it.
    pub from: Option<String>,
    /// End (RFC 3339, UTC), excluded.
    pub to: String,
}

/// A link to the previous digest of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Its key.
    pub key: String,
    /// Lowercase hex SHA-256 of its exact bytes.
    pub sha256: String,
}

/// A manifest a digest seals: S3's record of it when the seal saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedManifest {
    /// The manifest's key.
    pub key: String,
    /// Its version id (versioned buckets).
    pub version_id: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// The receipt it was sealed from (`None`: found by listing, in the first digest of an
    /// archive made before the ledger).
    pub receipt: Option<String>,
}

/// A receipt whose manifest did not exist when the seal ran (its archive failed or is
/// still running): carried to the next digest until its manifest appears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReceipt {
    /// The receipt's key.
    pub key: String,
    /// The manifest it announces.
    pub manifest_key: String,
}

/// A record that a customer's evidence was erased on purpose, after its retention ended:
/// `verify` reports those sessions as erased, not missing. No personal data: the subject
/// is a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    /// The keyed hash (HMAC-SHA256, hex) of the customer reference the erasure was asked
    /// for.
    pub subject: String,
    /// The sessions whose every object was deleted.
    pub sessions: Vec<SafeId>,
    /// When (RFC 3339, UTC).
    pub erased_at: String,
    /// Who asked (the caller's AWS identity ARN).
    pub by: String,
    /// The erasure record's own key (`ledger/erasures/...`).
    pub record: String,
}

/// One digest of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    /// [`DIGEST_SCHEMA`].
    pub schema: String,
    /// Its place in the chain, from 0.
    pub sequence: u64,
    /// The period it covers.
    pub period: Period,
    /// When it was written (RFC 3339, UTC).
    pub sealed_at: String,
    /// The seal schedule's interval, in seconds: `verify` reports a ledger whose latest
    /// digest ends more than two intervals ago, and manifests unsealed for that long.
    pub interval_seconds: u64,
    /// The previous digest (`None` for the first).
    pub previous: Option<Link>,
    /// The manifests it seals.
    pub manifests: Vec<SealedManifest>,
    /// Receipts whose manifest does not exist yet, carried to the next digest.
    #[serde(default)]
    pub pending: Vec<PendingReceipt>,
    /// Receipts pending for longer than any archive can take: their manifest will never be
    /// written (the archive failed for good); sealed as such, not carried further.
    #[serde(default)]
    pub abandoned: Vec<PendingReceipt>,
    /// Erasure records sealed by it.
    #[serde(default)]
    pub erasures: Vec<Erasure>,
    /// Which build wrote it.
    pub archiver: String,
}

impl Digest {
    /// The document's bytes (pretty, with a trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a digest serialises");
        out.push(b'\n');
        out
    }

    /// Parses a stored digest.
    pub fn parse(bytes: &[u8]) -> Result<Digest, LedgerError> {
        let digest: Digest =
            serde_json::from_slice(bytes).map_err(|e| LedgerError::Json(e.to_string()))?;
        if digest.schema != DIGEST_SCHEMA {
            return Err(LedgerError::Schema(digest.schema));
        }
        Ok(digest)
    }

    /// The end of its period.
    pub fn period_end(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.period.to).ok()
    }
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `YYYYMMDDTHHMMSSffffffZ` (UTC, microseconds, fixed width).
fn utc(at: SystemTime) -> String {
    let at = at.max(UNIX_EPOCH);
    humantime::format_rfc3339_micros(at)
        .to_string()
        .replace(['-', ':', '.'], "")
}

/// Parses [`utc`]'s form.
fn parse_utc(text: &str) -> Option<SystemTime> {
    if text.len() != 22 || !text.is_ascii() {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}.{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15],
        &text[15..21]
    );
    (text.as_bytes()[8] == b'T' && text.ends_with('Z'))
        .then(|| humantime::parse_rfc3339(&rfc).ok())
        .flatten()
}

/// An RFC 3339 time (UTC, seconds).
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The start of the hour `at` falls in.
pub fn hour_of(at: SystemTime) -> SystemTime {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs - secs % 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_sits_beside_the_session_folders() {
        assert_eq!(ledger_prefix("veriff/"), "veriff/ledger/");
        assert_eq!(ledger_prefix(""), "ledger/");
    }

    #[test]
    fn only_the_exact_utc_form_parses() {
        assert!(parse_utc("20261203T090000000000Z").is_some());
        assert_eq!(parse_utc("20261203T0900"), None, "too short");
        assert_eq!(parse_utc("20261203T090000000000X"), None, "no Z");
        assert_eq!(parse_utc("20261203-090000000000Z"), None, "no T");
        // 22 bytes, but not ASCII: never sliced inside a character.
        let wide = "2026120\u{e9}090000000000Z";
        assert_eq!(wide.len(), 22);
        assert_eq!(parse_utc(wide), None);
    }

    #[test]
    fn erasure_records_sort_by_time_and_name_the_subject_by_hash_only() {
        let at = at("2026-12-03T09:00:00Z");
        assert_eq!(erasures_prefix("p/"), "p/ledger/erasures/");
        let key = erasure_key("p/", at, "ab12");
        let hash = hex::encode(&Sha256::digest(b"ab12")[..8]);
        assert_eq!(key, format!("p/ledger/erasures/{}-{hash}.json", utc(at)));
        assert!(!key.contains("ab12"));
        assert_eq!(key_time(&key), Some(at));
        let floor = time_floor_key("p/ledger/erasures/", at);
        assert_eq!(floor, format!("p/ledger/erasures/{}", utc(at)));
        assert!(
            floor.as_str() < key.as_str(),
            "a listing from the floor finds the record"
        );
        let later = time_floor_key("p/ledger/erasures/", at + std::time::Duration::from_secs(1));
        assert!(
            later.as_str() > key.as_str(),
            "and one from a second later does not"
        );
    }

    fn at(rfc: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc).unwrap()
    }

    #[test]
    fn receipts_are_partitioned_by_hour_and_sort_by_time() {
        let t = at("2026-12-03T10:59:59.123456Z");
        assert_eq!(
            receipt_partition("veriff/", t),
            "veriff/ledger/receipts/2026/12/03/10/"
        );
        let manifest = "veriff/s1/a-1/manifest-20250304T102107412000Z-cd49e5d021d0030b.json";
        let key = receipt_key("veriff/", t, manifest);
        assert_eq!(
            key,
            "veriff/ledger/receipts/2026/12/03/10/20261203T105959123456Z~s1~a-1~\
             manifest-20250304T102107412000Z-cd49e5d021d0030b.json"
        );
        assert_eq!(
            parse_receipt_key("veriff/", &key),
            Some((t, manifest.to_string()))
        );
        assert_eq!(key_time(&key), Some(t));
        let later = receipt_key("veriff/", at("2026-12-03T11:00:00Z"), manifest);
        assert!(later > key, "keys sort by time across hours");
        assert_eq!(
            parse_receipt_key("veriff/", "veriff/ledger/receipts/x.json"),
            None
        );
        assert_eq!(
            parse_receipt_key("other/", &key),
            None,
            "another archive's receipt"
        );
        for bad in [
            key.replace("~a-1~", "~a/1~"),
            key.replace("~a-1~", "~..~"),
            key.replace("manifest-", "image-"),
            key.replace(".json", ".json~x"),
            key.replace("20261203T105959123456Z", "2026120XT105959123456Z"),
        ] {
            assert_eq!(parse_receipt_key("veriff/", &bad), None, "{bad}");
        }
        assert_eq!(
            key_time("p/ledger/erasures/20261203T105959123456Z-0123.json"),
            Some(t)
        );
        assert_eq!(
            key_time("p/ledger/erasures/20261203T105959123456Z.json"),
            None
        );
        assert_eq!(key_time("p/x"), None);
        assert_eq!(hour_of(t), at("2026-12-03T10:00:00Z"), "the hour's start");
    }

    #[test]
    fn digest_keys_sort_by_sequence_and_parse_back() {
        assert_eq!(
            digest_key("p/", 42),
            "p/ledger/digests/000000/000000000/000000000042.json"
        );
        assert_eq!(
            digest_key("p/", 1_234_567),
            "p/ledger/digests/000001/000001234/000001234567.json"
        );
        let keys: Vec<String> = [0, 9, 10, 999, 1000, 1_000_000]
            .iter()
            .map(|s| digest_key("", *s))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        for s in [0, 7, 1000, 999_999, 1_000_000, 123_456_789] {
            assert_eq!(digest_sequence("p/", &digest_key("p/", s)), Some(s));
        }
        let key = digest_key("p/", 42);
        assert_eq!(digest_sequence("p/", &timestamp_key(&key)), None);
        assert_eq!(
            digest_sequence("p/", &crate::signing::signature_key(&key)),
            None
        );
        assert_eq!(
            digest_sequence("p/", "p/ledger/digests/000000/000000001/000000000042.json"),
            None,
            "a digest under the wrong folder"
        );
        assert_eq!(digest_sequence("q/", &key), None);
        assert_eq!(
            timestamp_key(&key),
            "p/ledger/digests/000000/000000000/000000000042.tsr"
        );
    }

    #[test]
    fn documents_round_trip_and_refuse_other_schemas() {
        let r = Receipt::of("k", b"{}\n", at("2026-12-03T10:00:00Z"));
        assert_eq!(r.size, 3);
        assert_eq!(r.sha256, sha256_hex(b"{}\n"));
        assert_eq!(Receipt::parse(&r.to_bytes()).unwrap(), r);
        let other = String::from_utf8(r.to_bytes())
            .unwrap()
            .replace(RECEIPT_SCHEMA, "x/1");
        assert!(matches!(
            Receipt::parse(other.as_bytes()),
            Err(LedgerError::Schema(_))
        ));
        let d = Digest {
            schema: DIGEST_SCHEMA.into(),
            sequence: 0,
            period: Period {
                from: None,
                to: "2026-12-03T10:00:00Z".into(),
            },
            sealed_at: "2026-12-03T10:05:00Z".into(),
            interval_seconds: 3600,
            previous: None,
            manifests: Vec::new(),
            pending: Vec::new(),
            abandoned: Vec::new(),
            erasures: Vec::new(),
            archiver: "veriff-archiver 0".into(),
        };
        let back = Digest::parse(&d.to_bytes()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.period_end(), Some(at("2026-12-03T10:00:00Z")));
        assert!(Digest::parse(b"{}").is_err());
    }
}
