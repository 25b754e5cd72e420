//! The classes of problem an audit finds, and the words for each, in one place: `verify`'s
//! table and list, the report's page and its summary line all name a class the same way.

use super::{Problem, Problems, Summary};

/// A class of problem, in the order every output lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemClass {
    /// Files a manifest lists that are gone.
    Missing,
    /// Files that differ from their record.
    Altered,
    /// Manifests that do not parse.
    Unreadable,
    /// Manifests without a signature, when signatures are checked.
    Unsigned,
    /// Manifests whose signature does not verify.
    BadSignature,
    /// Objects that no manifest lists.
    Orphans,
    /// Attempt folders with files but no manifest.
    Gaps,
    /// Sealed manifests that are gone.
    Removed,
    /// Sealed manifests stored with other bytes.
    Changed,
    /// Archived versions a newer version or a delete marker covers.
    Covered,
    /// The ledger's chain and freshness.
    Ledger,
    /// Manifests older than two seal intervals that no digest seals.
    Unsealed,
    /// Expected sessions with no archived decision.
    Unarchived,
}

impl ProblemClass {
    /// Every class, in output order.
    pub const ALL: [ProblemClass; 13] = [
        ProblemClass::Missing,
        ProblemClass::Altered,
        ProblemClass::Unreadable,
        ProblemClass::Unsigned,
        ProblemClass::BadSignature,
        ProblemClass::Orphans,
        ProblemClass::Gaps,
        ProblemClass::Removed,
        ProblemClass::Changed,
        ProblemClass::Covered,
        ProblemClass::Ledger,
        ProblemClass::Unsealed,
        ProblemClass::Unarchived,
    ];

    /// The classes an audit of the session folders finds (every audit, `report` too).
    pub const ARCHIVE: [ProblemClass; 7] = [
        ProblemClass::Missing,
        ProblemClass::Altered,
        ProblemClass::Unreadable,
        ProblemClass::Unsigned,
        ProblemClass::BadSignature,
        ProblemClass::Orphans,
        ProblemClass::Gaps,
    ];

    /// The classes only the walk of the ledger (and `--expect`) finds.
    pub const LEDGER: [ProblemClass; 6] = [
        ProblemClass::Removed,
        ProblemClass::Changed,
        ProblemClass::Covered,
        ProblemClass::Ledger,
        ProblemClass::Unsealed,
        ProblemClass::Unarchived,
    ];

    /// The short label of a count (`verify`'s table and list): `bad signature`, `orphans`.
    pub fn label(self) -> &'static str {
        match self {
            ProblemClass::Missing => "missing",
            ProblemClass::Altered => "altered",
            ProblemClass::Unreadable => "unreadable",
            ProblemClass::Unsigned => "unsigned",
            ProblemClass::BadSignature => "bad signature",
            ProblemClass::Orphans => "orphans",
            ProblemClass::Gaps => "gaps",
            ProblemClass::Removed => "removed",
            ProblemClass::Changed => "changed",
            ProblemClass::Covered => "covered",
            ProblemClass::Ledger => "ledger",
            ProblemClass::Unsealed => "unsealed",
            ProblemClass::Unarchived => "unarchived",
        }
    }

    /// What the class means, in a phrase: `files a manifest lists that are gone`.
    pub fn meaning(self) -> &'static str {
        match self {
            ProblemClass::Missing => "files a manifest lists that are gone",
            ProblemClass::Altered => "files that differ from their record",
            ProblemClass::Unreadable => "manifests that do not parse",
            ProblemClass::Unsigned => "manifests without a signature",
            ProblemClass::BadSignature => "manifests whose signature does not verify",
            ProblemClass::Orphans => "objects that no manifest lists",
            ProblemClass::Gaps => "attempt folders with files but no manifest",
            ProblemClass::Removed => "sealed manifests that are gone",
            ProblemClass::Changed => "sealed manifests stored with other bytes",
            ProblemClass::Covered => "archived versions a newer version or a delete marker covers",
            ProblemClass::Ledger => {
                "digests missing, altered, out of order, unsigned or untimestamped, and periods no digest covers"
            }
            ProblemClass::Unsealed => {
                "manifests older than two seal intervals that no digest seals"
            }
            ProblemClass::Unarchived => "expected sessions with no archived decision",
        }
    }

    /// A heading for the list of the class's problems (the report's page).
    pub fn title(self) -> &'static str {
        match self {
            ProblemClass::Missing => "Missing files",
            ProblemClass::Altered => "Altered files",
            ProblemClass::Unreadable => "Unreadable manifests",
            ProblemClass::Unsigned => "Unsigned manifests",
            ProblemClass::BadSignature => "Manifests whose signature fails",
            ProblemClass::Orphans => "Orphans: objects no manifest lists",
            ProblemClass::Gaps => "Gaps: attempt folders without a manifest",
            ProblemClass::Removed => "Removed: sealed manifests that are gone",
            ProblemClass::Changed => "Changed: sealed manifests stored with other bytes",
            ProblemClass::Covered => "Covered: archived versions the key no longer serves",
            ProblemClass::Ledger => "Ledger: the chain of digests",
            ProblemClass::Unsealed => "Unsealed manifests",
            ProblemClass::Unarchived => "Unarchived: expected sessions without a decision",
        }
    }

    /// The noun after a count in a one-line breakdown: `2 missing, 1 bad signature`.
    pub fn noun(self) -> &'static str {
        match self {
            ProblemClass::Missing => "missing",
            ProblemClass::Altered => "altered",
            ProblemClass::Unreadable => "unreadable manifest",
            ProblemClass::Unsigned => "unsigned manifest",
            ProblemClass::BadSignature => "bad signature",
            ProblemClass::Orphans => "orphan",
            ProblemClass::Gaps => "gap",
            ProblemClass::Removed => "removed manifest",
            ProblemClass::Changed => "changed manifest",
            ProblemClass::Covered => "covered version",
            ProblemClass::Ledger => "ledger problem",
            ProblemClass::Unsealed => "unsealed manifest",
            ProblemClass::Unarchived => "unarchived session",
        }
    }
}

impl Problems {
    /// The problems of one class.
    pub fn of(&self, class: ProblemClass) -> &[Problem] {
        match class {
            ProblemClass::Missing => &self.missing,
            ProblemClass::Altered => &self.altered,
            ProblemClass::Unreadable => &self.unreadable,
            ProblemClass::Unsigned => &self.unsigned,
            ProblemClass::BadSignature => &self.bad_signature,
            ProblemClass::Orphans => &self.orphans,
            ProblemClass::Gaps => &self.gaps,
            ProblemClass::Removed => &self.removed,
            ProblemClass::Changed => &self.changed,
            ProblemClass::Covered => &self.covered,
            ProblemClass::Ledger => &self.ledger,
            ProblemClass::Unsealed => &self.unsealed,
            ProblemClass::Unarchived => &self.unarchived,
        }
    }
}

impl Summary {
    /// The count of one class.
    pub fn count(&self, class: ProblemClass) -> u64 {
        match class {
            ProblemClass::Missing => self.missing,
            ProblemClass::Altered => self.altered,
            ProblemClass::Unreadable => self.unreadable,
            ProblemClass::Unsigned => self.unsigned,
            ProblemClass::BadSignature => self.bad_signature,
            ProblemClass::Orphans => self.orphans,
            ProblemClass::Gaps => self.gaps,
            ProblemClass::Removed => self.removed,
            ProblemClass::Changed => self.changed,
            ProblemClass::Covered => self.covered,
            ProblemClass::Ledger => self.ledger,
            ProblemClass::Unsealed => self.unsealed,
            ProblemClass::Unarchived => self.unarchived,
        }
    }

    /// How many problems of any class were found.
    pub fn problems(&self) -> u64 {
        ProblemClass::ALL.iter().map(|&c| self.count(c)).sum()
    }

    /// `2 missing, 1 bad signature`: the classes with problems, with their counts.
    pub fn breakdown(&self) -> String {
        ProblemClass::ALL
            .iter()
            .filter(|&&c| self.count(c) > 0)
            .map(|&c| format!("{} {}", self.count(c), c.noun()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(key: &str) -> Problem {
        Problem {
            key: key.into(),
            expected: None,
            found: None,
            manifest: None,
        }
    }

    #[test]
    fn each_class_reads_its_own_list_and_count() {
        let summary = Summary {
            missing: 1,
            altered: 2,
            unreadable: 3,
            unsigned: 4,
            bad_signature: 5,
            orphans: 6,
            gaps: 7,
            removed: 8,
            changed: 9,
            covered: 10,
            ledger: 11,
            unsealed: 12,
            unarchived: 13,
            ..Summary::default()
        };
        let problems = Problems {
            missing: vec![problem("m")],
            altered: vec![problem("a")],
            unreadable: vec![problem("u")],
            unsigned: vec![problem("s")],
            bad_signature: vec![problem("b")],
            orphans: vec![problem("o")],
            gaps: vec![problem("g")],
            removed: vec![problem("r")],
            changed: vec![problem("c")],
            covered: vec![problem("v")],
            ledger: vec![problem("l")],
            unsealed: vec![problem("n")],
            unarchived: vec![problem("x")],
        };
        let counts: Vec<u64> = ProblemClass::ALL
            .iter()
            .map(|&c| summary.count(c))
            .collect();
        assert_eq!(counts, (1..=13).collect::<Vec<u64>>());
        let keys: Vec<&str> = ProblemClass::ALL
            .iter()
            .map(|&c| problems.of(c)[0].key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "m", "a", "u", "s", "b", "o", "g", "r", "c", "v", "l", "n", "x"
            ]
        );
        assert_eq!(summary.problems(), 91);
        assert_eq!(
            summary.breakdown(),
            "1 missing, 2 altered, 3 unreadable manifest, 4 unsigned manifest, \
             5 bad signature, 6 orphan, 7 gap, 8 removed manifest, 9 changed manifest, \
             10 covered version, 11 ledger problem, 12 unsealed manifest, 13 unarchived session"
        );
        assert_eq!(ProblemClass::ARCHIVE[..], ProblemClass::ALL[..7]);
        assert_eq!(ProblemClass::LEDGER[..], ProblemClass::ALL[7..]);
    }

    #[test]
    fn a_clean_summary_has_no_problem_and_an_empty_breakdown() {
        let clean = Summary {
            files: 9,
            ok: 9,
            ..Summary::default()
        };
        assert_eq!(clean.problems(), 0);
        assert_eq!(clean.breakdown(), "");
        let one = Summary {
            gaps: 1,
            ..Summary::default()
        };
        assert_eq!(one.breakdown(), "1 gap");
    }

    #[test]
    fn every_class_has_distinct_words() {
        use std::collections::HashSet;
        for words in [
            ProblemClass::ALL.map(ProblemClass::label),
            ProblemClass::ALL.map(ProblemClass::meaning),
            ProblemClass::ALL.map(ProblemClass::title),
            ProblemClass::ALL.map(ProblemClass::noun),
        ] {
            assert_eq!(words.iter().collect::<HashSet<_>>().len(), 13, "{words:?}");
        }
        assert_eq!(ProblemClass::BadSignature.label(), "bad signature");
        assert_eq!(
            ProblemClass::Gaps.meaning(),
            "attempt folders with files but no manifest"
        );
        assert_eq!(
            ProblemClass::Orphans.title(),
            "Orphans: objects no manifest lists"
        );
        assert_eq!(ProblemClass::Unreadable.noun(), "unreadable manifest");
    }
}
