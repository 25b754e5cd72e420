//! The seal's rules, apart from the reading and writing: which period the next digest
//! covers, which receipts it must read, which of them are already sealed, and how the
//! manifests found, still pending or abandoned become the digest.
//!
//! Every manifest lands in exactly one digest because:
//!
//! - a manifest is only ever created after its receipt (the archive writes the receipt
//!   first, and fails the decision when it cannot);
//! - each seal reads every receipt whose time is at most [`SealSettings::lookback`] before
//!   its period's start, so a receipt that became visible late (a slow PUT, a writer's
//!   clock behind S3's) is still read by the next seal;
//! - a receipt whose manifest is not there yet is carried as pending from digest to digest
//!   until it appears (or, after [`SealSettings::abandon_after`], is sealed as abandoned);
//! - and a manifest a digest in that look-back already seals is never sealed again (nor
//!   twice in one digest, when several deliveries wrote receipts for it).
//!
//! Pure: [`super::seal`] does the I/O.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use super::format::{Digest, Erasure, Link, PendingReceipt, Period, SealedManifest, rfc3339};

/// How a seal chooses its period and treats late and pending receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealSettings {
    /// The schedule's interval (recorded in each digest; `verify` judges staleness by it).
    pub interval: Duration,
    /// How long before the seal its period ends, so that receipts being written at that
    /// moment are seen.
    pub grace: Duration,
    /// How far before its period's start a seal looks for receipts that appeared late.
    pub lookback: Duration,
    /// After how long a receipt whose manifest never appeared is sealed as abandoned.
    pub abandon_after: Duration,
}

impl Default for SealSettings {
    fn default() -> Self {
        SealSettings {
            interval: Duration::from_secs(3600),
            // No grace: a receipt being written at the seal's moment that the seal does not
            // see yet is read by the next seal's look-back.
            grace: Duration::ZERO,
            lookback: Duration::from_secs(3 * 3600),
            abandon_after: Duration::from_secs(8 * 24 * 3600),
        }
    }
}

/// The next digest's place and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its sequence number.
    pub sequence: u64,
    /// Its period's start (the previous digest's end; `None` for the first digest).
    pub from: Option<SystemTime>,
    /// Its period's end, excluded.
    pub to: SystemTime,
    /// The earliest receipt time to read (`None`: every receipt, for the first digest).
    pub list_from: Option<SystemTime>,
}

/// The period of the digest after `latest` (or of the first one), sealed at `now`; `None`
/// when the latest digest already reaches `now - grace` (a seal just ran).
pub fn window(latest: Option<&Digest>, now: SystemTime, settings: &SealSettings) -> Option<Window> {
    let to = now.checked_sub(settings.grace).unwrap_or(now);
    let Some(latest) = latest else {
        return Some(Window {
            sequence: 0,
            from: None,
            to,
            list_from: None,
        });
    };
    let from = latest.period_end()?;
    if from >= to {
        return None;
    }
    Some(Window {
        sequence: latest.sequence + 1,
        from: Some(from),
        to,
        list_from: Some(from.checked_sub(settings.lookback).unwrap_or(from)),
    })
}

/// Whether the digests read back so far reach far enough: the digest read last ends at or
/// before `list_from`, so no older digest can seal a receipt this seal reads.
pub fn read_back_enough(window: &Window, oldest_read: &Digest) -> bool {
    match (window.list_from, oldest_read.period_end()) {
        (None, _) => true,
        (Some(list_from), Some(end)) => end <= list_from,
        (Some(_), None) => false,
    }
}

/// The listed receipts this seal considers: those in the window (before its end, from
/// `list_from`), except those the previous digest carries as pending (they come with it),
/// in key order.
pub fn receipts_in_window(
    listed: Vec<OpenReceipt>,
    window: &Window,
    pending: &[PendingReceipt],
) -> Vec<OpenReceipt> {
    let carried: HashSet<&str> = pending.iter().map(|p| p.key.as_str()).collect();
    let mut out: Vec<OpenReceipt> = listed
        .into_iter()
        .filter(|r| r.written < window.to)
        .filter(|r| window.list_from.is_none_or(|from| r.written >= from))
        .filter(|r| !carried.contains(r.key.as_str()))
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// A receipt: its key, the manifest it announces (both from its key), and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReceipt {
    /// The receipt's key.
    pub key: String,
    /// The manifest it announces.
    pub manifest_key: String,
    /// When it was written (the time in its key).
    pub written: SystemTime,
}

/// The receipts still open: drops those whose manifest a digest read back already seals.
/// The manifests to look up are the distinct keys of what is left.
pub fn still_open(receipts: Vec<OpenReceipt>, sealed_before: &HashSet<String>) -> Vec<OpenReceipt> {
    receipts
        .into_iter()
        .filter(|r| !sealed_before.contains(&r.manifest_key))
        .collect()
}

/// A manifest as S3 holds it when the seal looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestState {
    /// Its version id (versioned buckets).
    pub version_id: Option<String>,
    /// Its size.
    pub size: u64,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
}

/// What the next digest holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealed {
    /// The manifests sealed, by key.
    pub manifests: Vec<SealedManifest>,
    /// Receipts whose manifest is not there yet.
    pub pending: Vec<PendingReceipt>,
    /// Receipts whose manifest never appeared, given up.
    pub abandoned: Vec<PendingReceipt>,
}

/// Sorts the open receipts by what S3 holds of their manifests (`states`, by manifest
/// key): each manifest that exists is sealed once, from its earliest receipt; a receipt
/// whose manifest is missing stays pending, or is abandoned when older than
/// `abandon_after`. `found_by_listing` adds manifests without a receipt (the first digest
/// of an archive made before the ledger) unless a receipt already seals them.
pub fn assemble(
    open: Vec<OpenReceipt>,
    states: &BTreeMap<String, ManifestState>,
    found_by_listing: Vec<(String, ManifestState)>,
    now: SystemTime,
    settings: &SealSettings,
) -> Sealed {
    let mut sealed: BTreeMap<String, SealedManifest> = BTreeMap::new();
    let mut sealed_out = Sealed::default();
    let mut open = open;
    open.sort_by(|a, b| (a.written, &a.key).cmp(&(b.written, &b.key)));
    for receipt in open {
        match states.get(&receipt.manifest_key) {
            Some(state) => {
                sealed
                    .entry(receipt.manifest_key.clone())
                    .or_insert_with(|| {
                        sealed_manifest(&receipt.manifest_key, state, Some(receipt.key))
                    });
            }
            None => {
                let entry = PendingReceipt {
                    key: receipt.key,
                    manifest_key: receipt.manifest_key,
                };
                let age = now.duration_since(receipt.written).unwrap_or_default();
                if age > settings.abandon_after {
                    sealed_out.abandoned.push(entry);
                } else {
                    sealed_out.pending.push(entry);
                }
            }
        }
    }
    for (key, state) in found_by_listing {
        sealed
            .entry(key.clone())
            .or_insert_with(|| sealed_manifest(&key, &state, None));
    }
    sealed_out.manifests = sealed.into_values().collect();
    sealed_out
}

fn sealed_manifest(key: &str, state: &ManifestState, receipt: Option<String>) -> SealedManifest {
    SealedManifest {
        key: key.to_string(),
        version_id: state.version_id.clone(),
        size: state.size,
        sha256: state.sha256.clone(),
        receipt,
    }
}

/// The erasure records this seal seals: listed in the window and not sealed before.
pub fn erasures_to_seal(listed: Vec<Erasure>, sealed_before: &HashSet<String>) -> Vec<Erasure> {
    let mut seen = HashSet::new();
    listed
        .into_iter()
        .filter(|e| !sealed_before.contains(&e.record) && seen.insert(e.record.clone()))
        .collect()
}

/// The digest document.
pub fn digest(
    window: &Window,
    previous: Option<Link>,
    sealed: Sealed,
    erasures: Vec<Erasure>,
    now: SystemTime,
    settings: &SealSettings,
) -> Digest {
    Digest {
        schema: super::format::DIGEST_SCHEMA.to_string(),
        sequence: window.sequence,
        period: Period {
            from: window.from.map(rfc3339_micros),
            to: rfc3339_micros(window.to),
        },
        sealed_at: rfc3339(now),
        interval_seconds: settings.interval.as_secs(),
        previous,
        manifests: sealed.manifests,
        pending: sealed.pending,
        abandoned: sealed.abandoned,
        erasures,
        archiver: format!("veriff-archiver {}", env!("CARGO_PKG_VERSION")),
    }
}

/// A period bound: RFC 3339 with microseconds, so that a period ends exactly where the
/// next begins.
fn rfc3339_micros(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::format::DIGEST_SCHEMA;

    fn at(rfc: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc).unwrap()
    }

    fn digest_ending(sequence: u64, to: &str) -> Digest {
        Digest {
            schema: DIGEST_SCHEMA.into(),
            sequence,
            period: Period {
                from: None,
                to: to.into(),
            },
            sealed_at: to.into(),
            interval_seconds: 3600,
            previous: None,
            manifests: vec![],
            pending: vec![],
            abandoned: vec![],
            erasures: vec![],
            archiver: "t".into(),
        }
    }

    fn receipt(key: &str, time: &str) -> OpenReceipt {
        OpenReceipt {
            key: key.into(),
            manifest_key: format!("m/{key}"),
            written: at(time),
        }
    }

    fn open(key: &str, manifest: &str, written: &str) -> OpenReceipt {
        OpenReceipt {
            key: key.into(),
            manifest_key: manifest.into(),
            written: at(written),
        }
    }

    fn state(sha: &str) -> ManifestState {
        ManifestState {
            version_id: Some("v".into()),
            size: 10,
            sha256: sha.into(),
        }
    }

    #[test]
    fn the_first_digest_covers_everything_before_it() {
        let s = SealSettings::default();
        let w = window(None, at("2026-12-03T10:00:00Z"), &s).unwrap();
        assert_eq!(w.sequence, 0);
        assert_eq!(w.from, None);
        assert_eq!(w.list_from, None);
        assert_eq!(w.to, at("2026-12-03T10:00:00Z"), "no grace by default");
        let graced = SealSettings {
            grace: Duration::from_secs(60),
            ..s
        };
        let w = window(None, at("2026-12-03T10:00:00Z"), &graced).unwrap();
        assert_eq!(w.to, at("2026-12-03T09:59:00Z"));
    }

    #[test]
    fn the_next_digest_starts_where_the_latest_ends_and_looks_back() {
        let s = SealSettings {
            grace: Duration::from_secs(60),
            ..SealSettings::default()
        };
        let latest = digest_ending(7, "2026-12-03T09:00:00Z");
        let w = window(Some(&latest), at("2026-12-03T10:00:30Z"), &s).unwrap();
        assert_eq!(w.sequence, 8);
        assert_eq!(w.from, Some(at("2026-12-03T09:00:00Z")));
        assert_eq!(w.to, at("2026-12-03T09:59:30Z"));
        assert_eq!(
            w.list_from,
            Some(at("2026-12-03T06:00:00Z")),
            "3 hours back"
        );
        // A seal that just ran: nothing to seal yet.
        assert_eq!(window(Some(&latest), at("2026-12-03T09:01:00Z"), &s), None);
        assert_eq!(window(Some(&latest), at("2026-12-03T08:00:00Z"), &s), None);
        assert!(window(Some(&latest), at("2026-12-03T09:01:01Z"), &s).is_some());
        let unreadable = digest_ending(7, "not a time");
        assert_eq!(
            window(Some(&unreadable), at("2026-12-03T10:00:00Z"), &s),
            None
        );
    }

    #[test]
    fn digests_are_read_back_until_one_ends_before_the_look_back() {
        let s = SealSettings::default();
        let latest = digest_ending(7, "2026-12-03T09:00:00Z");
        let w = window(Some(&latest), at("2026-12-03T10:00:00Z"), &s).unwrap();
        assert!(!read_back_enough(&w, &latest));
        assert!(!read_back_enough(
            &w,
            &digest_ending(5, "2026-12-03T06:00:01Z")
        ));
        assert!(read_back_enough(
            &w,
            &digest_ending(4, "2026-12-03T06:00:00Z")
        ));
        assert!(!read_back_enough(&w, &digest_ending(4, "garbage")));
        let first = window(None, at("2026-12-03T10:00:00Z"), &s).unwrap();
        assert!(read_back_enough(&first, &latest));
    }

    #[test]
    fn receipts_in_the_window_count_once_and_pending_ones_come_with_the_digest() {
        let w = Window {
            sequence: 3,
            from: Some(at("2026-12-03T09:00:00Z")),
            to: at("2026-12-03T10:00:00Z"),
            list_from: Some(at("2026-12-03T06:00:00Z")),
        };
        let listed = vec![
            receipt("r/c", "2026-12-03T09:30:00Z"),
            receipt("r/a", "2026-12-03T05:59:59Z"),
            receipt("r/b", "2026-12-03T06:00:00Z"),
            receipt("r/d", "2026-12-03T10:00:00Z"),
            receipt("r/c", "2026-12-03T09:30:00Z"),
            receipt("r/p", "2026-12-03T09:10:00Z"),
        ];
        let pending = vec![PendingReceipt {
            key: "r/p".into(),
            manifest_key: "m/p".into(),
        }];
        let keys: Vec<String> = receipts_in_window(listed, &w, &pending)
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(
            keys,
            ["r/b", "r/c"],
            "before the look-back, at the end, pending: not read"
        );
        let first = Window {
            list_from: None,
            ..w
        };
        let all = receipts_in_window(vec![receipt("r/a", "2000-01-01T00:00:00Z")], &first, &[]);
        assert_eq!(
            all.len(),
            1,
            "the first digest reads every receipt before its end"
        );
    }

    #[test]
    fn a_manifest_is_sealed_once_from_its_earliest_receipt() {
        let s = SealSettings::default();
        let now = at("2026-12-03T10:00:00Z");
        let receipts = vec![
            open("r/2", "m/x", "2026-12-03T09:20:00Z"),
            open("r/1", "m/x", "2026-12-03T09:10:00Z"),
            open("r/3", "m/y", "2026-12-03T09:30:00Z"),
            open("r/4", "m/gone", "2026-12-03T09:40:00Z"),
            open("r/5", "m/old", "2026-11-25T09:59:59Z"),
            open("r/6", "m/recent", "2026-11-25T10:00:00Z"),
        ];
        let sealed_before = HashSet::from(["m/y".to_string()]);
        let open_now = still_open(receipts, &sealed_before);
        assert_eq!(open_now.len(), 5, "m/y is sealed already");
        let states = BTreeMap::from([("m/x".to_string(), state("aa"))]);
        let listing = vec![
            ("m/x".to_string(), state("zz")),
            ("m/z".to_string(), state("cc")),
        ];
        let sealed = assemble(open_now, &states, listing, now, &s);
        assert_eq!(
            sealed.manifests,
            [
                SealedManifest {
                    key: "m/x".into(),
                    version_id: Some("v".into()),
                    size: 10,
                    sha256: "aa".into(),
                    receipt: Some("r/1".into()),
                },
                SealedManifest {
                    key: "m/z".into(),
                    version_id: Some("v".into()),
                    size: 10,
                    sha256: "cc".into(),
                    receipt: None,
                },
            ]
        );
        let keys = |v: &[PendingReceipt]| v.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&sealed.pending), ["r/6", "r/4"], "oldest first");
        assert_eq!(keys(&sealed.abandoned), ["r/5"], "more than 8 days");
        assert_eq!(sealed.pending[1].manifest_key, "m/gone");
    }

    #[test]
    fn an_erasure_is_sealed_once() {
        let e = |record: &str| Erasure {
            subject: "s".into(),
            sessions: vec![],
            erased_at: "2026-12-03T09:00:00Z".into(),
            by: "arn".into(),
            record: record.into(),
        };
        let before = HashSet::from(["e/1".to_string()]);
        let kept = erasures_to_seal(vec![e("e/1"), e("e/2"), e("e/2"), e("e/3")], &before);
        let records: Vec<&str> = kept.iter().map(|e| e.record.as_str()).collect();
        assert_eq!(records, ["e/2", "e/3"]);
    }

    #[test]
    fn a_digest_records_its_window_link_and_interval() {
        let s = SealSettings::default();
        let w = Window {
            sequence: 4,
            from: Some(at("2026-12-03T09:00:00.5Z")),
            to: at("2026-12-03T10:00:00Z"),
            list_from: None,
        };
        let link = Link {
            key: "k3".into(),
            sha256: "ab".into(),
        };
        let d = digest(
            &w,
            Some(link.clone()),
            Sealed::default(),
            vec![],
            at("2026-12-03T10:01:00Z"),
            &s,
        );
        assert_eq!(d.sequence, 4);
        assert_eq!(
            d.period.from.as_deref(),
            Some("2026-12-03T09:00:00.500000Z")
        );
        assert_eq!(d.period.to, "2026-12-03T10:00:00.000000Z");
        assert_eq!(d.period_end(), Some(at("2026-12-03T10:00:00Z")));
        assert_eq!(d.sealed_at, "2026-12-03T10:01:00Z");
        assert_eq!(d.interval_seconds, 3600);
        assert_eq!(d.previous, Some(link));
        assert_eq!(d.schema, DIGEST_SCHEMA);
    }
}
