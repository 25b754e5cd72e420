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
}

impl ProblemClass {
    /// Every class, in output order.
    pub const ALL: [ProblemClass; 7] = [
        ProblemClass::Missing,
        ProblemClass::Altered,
        ProblemClass::Unreadable,
        ProblemClass::Unsigned,
        ProblemClass::BadSignature,
        ProblemClass::Orphans,
        ProblemClass::Gaps,
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
        };
        let counts: Vec<u64> = ProblemClass::ALL
            .iter()
            .map(|&c| summary.count(c))
            .collect();
        assert_eq!(counts, [1, 2, 3, 4, 5, 6, 7]);
        let keys: Vec<&str> = ProblemClass::ALL
            .iter()
            .map(|&c| problems.of(c)[0].key.as_str())
            .collect();
        assert_eq!(keys, ["m", "a", "u", "s", "b", "o", "g"]);
        assert_eq!(summary.problems(), 28);
        assert_eq!(
            summary.breakdown(),
            "1 missing, 2 altered, 3 unreadable manifest, 4 unsigned manifest, \
             5 bad signature, 6 orphan, 7 gap"
        );
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
            assert_eq!(words.iter().collect::<HashSet<_>>().len(), 7, "{words:?}");
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
