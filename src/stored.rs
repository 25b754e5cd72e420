//! What S3 holds, as records: an object's version, ETag and checksum
//! ([`StoredObject`], [`S3Checksum`]), what a listing or a HeadObject says of it
//! ([`ListedObject`], [`ObjectHead`]), and the checksum arithmetic S3 uses (full-object and
//! composite SHA-256). Pure: the manifest, the archive's writer and the audit's rules share
//! these without importing the S3 client. No I/O here.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// S3's own checksum of an object, exactly as S3 stores and returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Checksum {
    /// Always `SHA256`.
    pub algorithm: String,
    /// `FULL_OBJECT` (one PutObject: the base64 SHA-256 of the bytes) or `COMPOSITE`
    /// (multipart: the base64 SHA-256 of the parts' SHA-256 digests, then `-<parts>`).
    #[serde(rename = "type")]
    pub checksum_type: String,
    /// The value, e.g. `n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=` or `...=-3`.
    pub value: String,
}

/// S3's record of one stored object: what a later audit checks without downloading.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StoredObject {
    /// The object's version id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// The ETag, quotes included, as S3 returned it.
    pub etag: Option<String>,
    /// S3's checksum of the object.
    pub s3_checksum: Option<S3Checksum>,
}

/// An object found by a listing (`Store::list_folder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When S3 stored it (its clock), when the listing said.
    pub last_modified: Option<std::time::SystemTime>,
}

/// What a HeadObject (`Store::head`) learnt about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// The stored `Content-Type`, if any.
    pub content_type: Option<String>,
    /// S3's record: version id, ETag and checksum (when S3 returns one).
    pub stored: StoredObject,
}

/// The checksum S3 stores for an object written in one PutObject with SHA-256.
pub fn full_object_checksum(sha256: &[u8]) -> S3Checksum {
    S3Checksum {
        algorithm: "SHA256".into(),
        checksum_type: "FULL_OBJECT".into(),
        value: b64(sha256),
    }
}

/// The checksum S3 stores for a multipart object with SHA-256 parts: the SHA-256 of the
/// concatenated part digests, base64, then `-<number of parts>`.
pub fn composite_checksum(part_digests: &[[u8; 32]]) -> S3Checksum {
    let mut outer = Sha256::new();
    for digest in part_digests {
        outer.update(digest);
    }
    S3Checksum {
        algorithm: "SHA256".into(),
        checksum_type: "COMPOSITE".into(),
        value: format!("{}-{}", b64(&outer.finalize()), part_digests.len()),
    }
}

/// Whether two checksum values name the same content: equal, or equal once a `-<parts>`
/// suffix is set aside (AWS returns a composite checksum with it; some S3-compatible
/// servers, moto among them, return the same checksum-of-checksums without it).
pub fn same_checksum(a: &str, b: &str) -> bool {
    fn base(v: &str) -> &str {
        match v.rsplit_once('-') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => v,
        }
    }
    a == b || base(a) == base(b)
}

/// `COMPOSITE` for a value with a `-<parts>` suffix, else `FULL_OBJECT`.
pub fn checksum_type_of(value: &str) -> String {
    let composite = value
        .rsplit_once('-')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if composite {
        "COMPOSITE"
    } else {
        "FULL_OBJECT"
    }
    .into()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_computed_the_way_s3_stores_them() {
        // Full object: base64 of the SHA-256 of the bytes (S3's documented example value
        // for the empty object).
        assert_eq!(
            full_object_checksum(&Sha256::digest(b"")).value,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        // Composite: SHA-256 over the concatenated part digests, then -<parts>.
        let parts: Vec<[u8; 32]> = [&b"part one"[..], b"part two"]
            .iter()
            .map(|p| Sha256::digest(p).into())
            .collect();
        let mut outer = Sha256::new();
        outer.update(parts[0]);
        outer.update(parts[1]);
        let composite = composite_checksum(&parts);
        assert_eq!(composite.value, format!("{}-2", b64(&outer.finalize())));
        assert_eq!(composite.checksum_type, "COMPOSITE");
        assert_eq!(checksum_type_of(&composite.value), "COMPOSITE");
        assert_eq!(
            checksum_type_of("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            "FULL_OBJECT"
        );
        assert_eq!(checksum_type_of("abc-"), "FULL_OBJECT");
    }

    #[test]
    fn checksums_compare_with_or_without_the_part_count() {
        assert!(same_checksum("abc=-3", "abc=-3"));
        assert!(same_checksum("abc=-3", "abc="));
        assert!(same_checksum("abc=", "abc="));
        assert!(!same_checksum("abc=", "abd="));
        assert!(!same_checksum("abc=-3", "abd=-3"));
        // Only a count of parts is set aside: not any text after a dash.
        assert!(!same_checksum("abc=-x", "abc="));
        assert!(!same_checksum("abc=-", "abc="));
        assert!(!same_checksum("abc=-3x", "abc="));
    }
}
