//! The index by customer: for each archived decision, one small entry per customer
//! reference the decision carries (`vendorData`, `endUserId`), under
//! `<prefix>index/<field>/<2 hex>/<subject>/<sessionId>~<attemptId>~<manifest name>`.
//!
//! The subject is a **keyed hash**: HMAC-SHA256, under the archive's index key
//! (`ARCHIVE_INDEX_KEY`), of the field's name and the reference. The clear reference is in
//! no key, log line or metric; without the key nobody can tell whose entries they are, and
//! with it, finding one customer's decisions is one listing of their folder, whatever the
//! archive's size. The entry's key names the manifest, so a listing is the whole answer.
//!
//! The index is derived data: `veriff-archiver reindex` rebuilds it from the manifests,
//! which the ledger seals. The ledger therefore does not seal index entries.
//!
//! No I/O here.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{DecisionRecord, Secret, is_safe_segment};
use crate::layout;

/// The `schema` of an index entry's body.
pub const ENTRY_SCHEMA: &str = "veriff-archiver/index-entry/v1";

/// Shortest index key, in bytes (64 hex digits).
pub const MIN_KEY_BYTES: usize = 32;

/// Which customer reference an entry indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Veriff's `vendorData`: the integrator's own reference of the customer.
    VendorData,
    /// Veriff's `endUserId`.
    EndUserId,
}

impl Field {
    /// Both fields.
    pub const ALL: [Field; 2] = [Field::VendorData, Field::EndUserId];

    /// Its name in keys and on the command line (`vendor-data`, `end-user-id`).
    pub fn as_str(self) -> &'static str {
        match self {
            Field::VendorData => "vendor-data",
            Field::EndUserId => "end-user-id",
        }
    }

    fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The decision's value of this field, when it carries one.
    pub fn value(self, record: &DecisionRecord) -> Option<&str> {
        match self {
            Field::VendorData => record.vendor_data.as_deref(),
            Field::EndUserId => record.end_user_id.as_deref(),
        }
        .filter(|v| !v.is_empty())
    }
}

/// Why an index key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexKeyError {
    /// Not hex.
    #[error("is not hex")]
    NotHex,
    /// Too short.
    #[error("has {bytes} bytes; at least {MIN_KEY_BYTES} (64 hex digits) are needed")]
    TooShort {
        /// Its length in bytes.
        bytes: usize,
    },
}

/// The archive's index key: the HMAC key of every subject.
#[derive(Clone)]
pub struct IndexKey(Secret);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(<redacted>)")
    }
}

impl IndexKey {
    /// A key from its hex form (at least 64 hex digits).
    pub fn from_hex(hex_key: &str) -> Result<IndexKey, IndexKeyError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| IndexKeyError::NotHex)?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(IndexKeyError::TooShort { bytes: bytes.len() });
        }
        Ok(IndexKey(Secret::new(hex_key.trim().to_ascii_lowercase())))
    }

    /// The subject of a customer reference: lowercase hex HMAC-SHA256 of
    /// `<field name>\n<value>` under the key.
    pub fn subject(&self, field: Field, value: &str) -> String {
        let key = hex::decode(self.0.expose()).expect("checked at construction");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(field.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The folder of all index entries.
pub fn index_prefix(prefix: &str) -> String {
    format!("{prefix}index/")
}

/// The folder of one subject's entries.
pub fn subject_prefix(prefix: &str, field: Field, subject: &str) -> String {
    format!(
        "{}{}/{}/{subject}/",
        index_prefix(prefix),
        field.as_str(),
        &subject[..2.min(subject.len())]
    )
}

/// The key of the entry of `manifest_key` (under `prefix`) for `subject`:
/// `<subject folder><sessionId>~<attemptId>~<manifest name>`.
pub fn entry_key(prefix: &str, field: Field, subject: &str, manifest_key: &str) -> String {
    let path = manifest_key.strip_prefix(prefix).unwrap_or(manifest_key);
    format!(
        "{}{}",
        subject_prefix(prefix, field, subject),
        path.replace('/', "~")
    )
}

/// An index entry read back from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The field.
    pub field: Field,
    /// The subject (keyed hash).
    pub subject: String,
    /// The session.
    pub session_id: String,
    /// The attempt.
    pub attempt_id: String,
    /// The manifest's key.
    pub manifest_key: String,
}

/// The entry an index key names, if it is one of an archive under `prefix`.
pub fn parse_entry(prefix: &str, key: &str) -> Option<Entry> {
    let rest = key.strip_prefix(&index_prefix(prefix))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [field, shard, subject, name] = parts.as_slice() else {
        return None;
    };
    let field = Field::parse(field)?;
    let subject_ok = subject.len() == 64
        && subject
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && subject.starts_with(shard)
        && shard.len() == 2;
    let mut pieces = name.split('~');
    let (session, attempt, manifest) = (pieces.next()?, pieces.next()?, pieces.next()?);
    let well_formed = subject_ok
        && pieces.next().is_none()
        && is_safe_segment(session)
        && is_safe_segment(attempt)
        && layout::parse_manifest_key("", manifest).is_some();
    well_formed.then(|| Entry {
        field,
        subject: subject.to_string(),
        session_id: session.to_string(),
        attempt_id: attempt.to_string(),
        manifest_key: format!("{prefix}{session}/{attempt}/{manifest}"),
    })
}

/// The entries to write for a decision recorded in `manifest_key`: one per field it
/// carries, with the entry's body.
pub fn entries_for(
    key: &IndexKey,
    prefix: &str,
    record: &DecisionRecord,
    manifest_key: &str,
) -> Vec<(String, Vec<u8>)> {
    Field::ALL
        .into_iter()
        .filter_map(|field| {
            let value = field.value(record)?;
            let subject = key.subject(field, value);
            let body = serde_json::json!({
                "schema": ENTRY_SCHEMA,
                "field": field.as_str(),
                "manifestKey": manifest_key,
            });
            let mut bytes = serde_json::to_vec(&body).expect("JSON");
            bytes.push(b'\n');
            Some((entry_key(prefix, field, &subject, manifest_key), bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WebhookKind;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const MANIFEST: &str = "p/s-1/a-1/manifest-20250304T102107412000Z-cd49e5d021d0030b.json";

    fn record(vendor: Option<&str>, user: Option<&str>) -> DecisionRecord {
        DecisionRecord {
            vendor_data: vendor.map(str::to_string),
            end_user_id: user.map(str::to_string),
            ..DecisionRecord::new(WebhookKind::Decision, "approved")
        }
    }

    #[test]
    fn keys_must_be_hex_of_at_least_32_bytes() {
        assert!(IndexKey::from_hex(KEY).is_ok());
        assert!(IndexKey::from_hex(&KEY.to_uppercase()).is_ok());
        assert_eq!(
            IndexKey::from_hex(&KEY[..62]).unwrap_err(),
            IndexKeyError::TooShort { bytes: 31 }
        );
        assert_eq!(IndexKey::from_hex("zz").unwrap_err(), IndexKeyError::NotHex);
        assert_eq!(
            format!("{:?}", IndexKey::from_hex(KEY).unwrap()),
            "IndexKey(<redacted>)"
        );
    }

    #[test]
    fn a_subject_is_the_keyed_hash_of_the_field_and_the_value() {
        let key = IndexKey::from_hex(KEY).unwrap();
        let s = key.subject(Field::VendorData, "cust-1");
        // HMAC-SHA256(key, "vendor-data\ncust-1"), as openssl computes it:
        // printf 'vendor-data\ncust-1' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<KEY>
        assert_eq!(
            s,
            "35e57a9f783a5e3770715d785ac390ff4b87ae45a2faa63c23253da36192fe1b"
        );
        assert_ne!(
            s,
            key.subject(Field::EndUserId, "cust-1"),
            "fields do not mix"
        );
        assert_ne!(s, key.subject(Field::VendorData, "cust-2"));
        let other = IndexKey::from_hex(&KEY.replace("00", "ff")).unwrap();
        assert_ne!(s, other.subject(Field::VendorData, "cust-1"), "another key");
    }

    #[test]
    fn entries_name_their_manifest_and_never_the_reference() {
        let key = IndexKey::from_hex(KEY).unwrap();
        let hostile = "../../etc/passwd\n<script>MORGAN Sarah 1987";
        let entries = entries_for(&key, "p/", &record(Some(hostile), Some("user-9")), MANIFEST);
        assert_eq!(entries.len(), 2);
        for (entry_key, body) in &entries {
            assert!(
                !entry_key.contains("MORGAN") && !entry_key.contains(".."),
                "{entry_key}"
            );
            let entry = parse_entry("p/", entry_key).unwrap();
            assert_eq!(entry.manifest_key, MANIFEST);
            assert_eq!(
                (entry.session_id.as_str(), entry.attempt_id.as_str()),
                ("s-1", "a-1")
            );
            assert!(entry_key.starts_with(&subject_prefix("p/", entry.field, &entry.subject)));
            let body = String::from_utf8(body.clone()).unwrap();
            assert!(
                body.contains(MANIFEST) && !body.contains("MORGAN"),
                "{body}"
            );
        }
        let vendor = key.subject(Field::VendorData, hostile);
        assert_eq!(
            entries[0].0,
            format!(
                "p/index/vendor-data/{}/{vendor}/s-1~a-1~manifest-20250304T102107412000Z-cd49e5d021d0030b.json",
                &vendor[..2]
            )
        );
        assert!(entries_for(&key, "p/", &record(None, Some("")), MANIFEST).is_empty());
        assert_eq!(
            entries_for(&key, "p/", &record(None, Some("u")), MANIFEST).len(),
            1
        );
    }

    #[test]
    fn only_well_formed_entry_keys_parse() {
        let key = IndexKey::from_hex(KEY).unwrap();
        let (good, _) = entries_for(&key, "p/", &record(Some("c"), None), MANIFEST).remove(0);
        assert!(parse_entry("p/", &good).is_some());
        assert!(parse_entry("q/", &good).is_none(), "another archive");
        let subject = key.subject(Field::VendorData, "c");
        for bad in [
            good.replace("vendor-data", "name"),
            good.replace(&format!("/{}/", &subject[..2]), "/zz/"),
            good.replace(&subject, &subject[..60]),
            good.replace("~a-1~", "~..~"),
            good.replace("manifest-", "face-"),
            format!("{good}~x"),
            format!("{good}/x"),
        ] {
            assert!(parse_entry("p/", &bad).is_none(), "{bad}");
        }
        assert_eq!(Field::VendorData.as_str(), "vendor-data");
        assert_eq!(Field::EndUserId.as_str(), "end-user-id");
        assert_eq!(Field::parse("end-user-id"), Some(Field::EndUserId));
        assert_eq!(Field::parse("x"), None);
    }
}
