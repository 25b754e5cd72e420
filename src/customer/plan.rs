//! The rules of a customer's retention, holds and erasure, apart from the calls: what
//! `retain` changes (it extends, never shortens), and whether `erase` may delete (every
//! version's retention over, none held). Pure.

use std::time::SystemTime;

use serde::Serialize;

use super::locks::{Mode, Retention};

/// One stored version of one of the customer's objects, with its lock state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedVersion {
    /// The key.
    pub key: String,
    /// The version id.
    pub version_id: String,
    /// A delete marker (no retention or hold of its own).
    pub delete_marker: bool,
    /// Its retention, if any.
    pub retention: Option<Retention>,
    /// Whether it is under legal hold.
    pub held: bool,
}

/// What `retain` does to one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainStep {
    /// Its retention already reaches the date: left as it is (never shortened).
    Unchanged,
    /// Extended (or set) to the date, in this mode.
    Extend(Mode),
}

/// Why `retain` cannot proceed for a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetainProblem {
    /// A version without retention in a bucket without a default mode, and no mode given.
    #[error(
        "{key} (version {version}) has no retention and the bucket no default mode: give --mode"
    )]
    NoMode {
        /// The key.
        key: String,
        /// The version.
        version: String,
    },
}

/// `at` to the whole second: S3 keeps a retention date to the second (moto_server too), so
/// a date asked with a fraction reads back earlier than asked, and would be extended again
/// on every run.
pub fn to_the_second(at: SystemTime) -> SystemTime {
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
}

/// What `retain --until` does to each version: a version whose retention ends before
/// `until` (to the second) is extended in its own mode (one without retention gets `mode`,
/// the bucket's default or the one given); anything reaching `until` already is left
/// alone. Delete markers carry no retention and are skipped.
pub fn retain_steps(
    versions: &[LockedVersion],
    until: SystemTime,
    mode: Option<Mode>,
) -> Result<Vec<RetainStep>, RetainProblem> {
    versions
        .iter()
        .filter(|v| !v.delete_marker)
        .map(|v| match v.retention {
            Some(r) if to_the_second(r.until) >= to_the_second(until) => Ok(RetainStep::Unchanged),
            Some(r) => Ok(RetainStep::Extend(r.mode)),
            None => mode
                .map(RetainStep::Extend)
                .ok_or_else(|| RetainProblem::NoMode {
                    key: v.key.clone(),
                    version: v.version_id.clone(),
                }),
        })
        .collect()
}

/// Why `erase` refuses a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    /// The key.
    pub key: String,
    /// The version.
    pub version_id: String,
    /// `locked until <time> (<mode>)`, or `under legal hold`.
    pub reason: String,
}

/// The versions that keep `erase` from deleting at `now`: a retention not over yet, or a
/// legal hold. Empty: every version may be deleted.
pub fn erase_blockers(versions: &[LockedVersion], now: SystemTime) -> Vec<Blocker> {
    let mut out = Vec::new();
    for v in versions.iter().filter(|v| !v.delete_marker) {
        if let Some(r) = v.retention.filter(|r| r.until > now) {
            out.push(Blocker {
                key: v.key.clone(),
                version_id: v.version_id.clone(),
                reason: format!(
                    "locked until {} ({})",
                    humantime::format_rfc3339_seconds(r.until),
                    r.mode.as_str()
                ),
            });
        }
        if v.held {
            out.push(Blocker {
                key: v.key.clone(),
                version_id: v.version_id.clone(),
                reason: "under legal hold".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(rfc: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc).unwrap()
    }

    fn version(key: &str, retention: Option<(Mode, &str)>, held: bool) -> LockedVersion {
        LockedVersion {
            key: key.into(),
            version_id: "v".into(),
            delete_marker: false,
            retention: retention.map(|(mode, until)| Retention {
                mode,
                until: at(until),
            }),
            held,
        }
    }

    #[test]
    fn retain_extends_and_never_shortens() {
        let until = at("2031-12-31T00:00:00Z");
        let versions = [
            version("a", Some((Mode::Compliance, "2030-01-01T00:00:00Z")), false),
            version("b", Some((Mode::Governance, "2035-01-01T00:00:00Z")), false),
            version("c", Some((Mode::Governance, "2031-12-31T00:00:00Z")), false),
            version("d", None, false),
            LockedVersion {
                delete_marker: true,
                ..version("e", None, false)
            },
        ];
        let steps = retain_steps(&versions, until, Some(Mode::Compliance)).unwrap();
        assert_eq!(
            steps,
            [
                RetainStep::Extend(Mode::Compliance),
                RetainStep::Unchanged,
                RetainStep::Unchanged,
                RetainStep::Extend(Mode::Compliance),
            ]
        );
        let err = retain_steps(&versions, until, None).unwrap_err();
        assert_eq!(
            err,
            RetainProblem::NoMode {
                key: "d".into(),
                version: "v".into()
            }
        );
        let governance = retain_steps(&versions[1..2], at("2036-01-01T00:00:00Z"), None).unwrap();
        assert_eq!(
            governance,
            [RetainStep::Extend(Mode::Governance)],
            "its own mode"
        );
    }

    #[test]
    fn erase_is_blocked_by_a_running_retention_or_a_hold() {
        let now = at("2031-01-01T00:00:00Z");
        let versions = [
            version(
                "over",
                Some((Mode::Compliance, "2030-12-31T23:59:59Z")),
                false,
            ),
            version(
                "ends-now",
                Some((Mode::Compliance, "2031-01-01T00:00:00Z")),
                false,
            ),
            version(
                "locked",
                Some((Mode::Governance, "2031-06-01T00:00:00Z")),
                false,
            ),
            version("held", None, true),
            LockedVersion {
                delete_marker: true,
                held: true,
                ..version("marker", None, true)
            },
        ];
        let blockers = erase_blockers(&versions, now);
        let reasons: Vec<(&str, &str)> = blockers
            .iter()
            .map(|b| (b.key.as_str(), b.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("locked", "locked until 2031-06-01T00:00:00Z (GOVERNANCE)"),
                ("held", "under legal hold")
            ]
        );
        assert!(erase_blockers(&versions[..2], now).is_empty());
    }

    #[test]
    fn a_date_read_back_to_the_second_is_not_extended_again() {
        let asked = UNIX_EPOCH + Duration::from_millis(1_900_000_000_750);
        let stored = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(to_the_second(asked), stored);
        assert_eq!(
            to_the_second(UNIX_EPOCH - Duration::from_secs(5)),
            UNIX_EPOCH
        );
        let v = LockedVersion {
            key: "k".into(),
            version_id: "v".into(),
            delete_marker: false,
            retention: Some(Retention {
                mode: Mode::Compliance,
                until: stored,
            }),
            held: false,
        };
        assert_eq!(
            retain_steps(std::slice::from_ref(&v), asked, None).unwrap(),
            [RetainStep::Unchanged]
        );
        let later = stored + Duration::from_secs(1);
        assert_eq!(
            retain_steps(&[v], later, None).unwrap(),
            [RetainStep::Extend(Mode::Compliance)]
        );
    }
}
