//! `veriff-archiver verify`: prove the archive complete and unaltered.
//!
//! Runs [`Auditor::audit`] over every session under the prefix (or the `--session`s given)
//! and prints a summary table and every problem, or with `--json` one JSON document: the
//! [`AuditReport`] with `ok` and `exitCode` added at the top level ([`VerifyDocument`]).
//!
//! Exit codes: 0 when everything verifies, 1 when any problem is found, 2 on a usage,
//! configuration or access error (nothing is printed on stdout then; the reason goes to
//! stderr).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

use veriff_archiver::audit::{AuditOptions, AuditReport, Auditor, LedgerOptions, ProblemClass};
use veriff_archiver::domain::is_safe_segment;

use crate::common::{self, ArchiveArgs, Fatal, SigningArgs};
use crate::output::{Progress, Table};
use veriff_archiver::units::{human_bytes, plural};

/// Default of `--concurrency`.
pub const DEFAULT_CONCURRENCY: u16 = 32;

/// Flags of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub archive: ArchiveArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Audit only this session (repeat the flag for several); default: every session
    /// under the prefix.
    #[arg(long = "session", value_name = "ID")]
    pub sessions: Vec<String>,
    /// Also download every object and recompute its SHA-256 (catches a change that kept
    /// S3's size, ETag and checksum).
    #[arg(long)]
    pub deep: bool,
    /// Print one JSON document on stdout instead of tables (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Checks in flight at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_CONCURRENCY,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub concurrency: u16,
    /// The time-stamping authority's certificate (PEM or DER): every digest of the ledger
    /// must carry an RFC 3161 token that verifies against it.
    #[arg(long, value_name = "FILE.pem")]
    pub tsa_cert: Option<PathBuf>,
    /// The sessions that should be archived (the same forms as backfill's input: one id a
    /// line, or a CSV such as Veriff's export): each one without an archived decision is a
    /// problem (`unarchived`).
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// With --expect FILE as CSV: the column of session ids (default: `Session ID`, `id`...).
    #[arg(long, value_name = "NAME", requires = "expect")]
    pub column: Option<String>,
}

/// The ids of an --expect file (repeats and blank lines dropped; an invalid line is an
/// error, so that no expected session is silently left out).
fn expected_sessions(path: &std::path::Path, column: Option<&str>) -> Result<Vec<String>, Fatal> {
    use veriff_archiver::backfill::input::{Entry, Reader};
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--expect {shown}: {e}"))?;
    let mut reader = Reader::open(Box::new(std::io::BufReader::new(file)), column)
        .map_err(|e| format!("--expect {shown}: {e}"))?;
    let mut ids = Vec::new();
    while let Some(entry) = reader
        .next_entry()
        .map_err(|e| format!("--expect {shown}: {e}"))?
    {
        match entry {
            Entry::Session(id) => ids.push(id.to_string()),
            Entry::Invalid(bad) => {
                return Err(format!(
                    "--expect {shown}: line {}: {} ({})",
                    bad.line, bad.value, bad.reason
                ));
            }
            Entry::Duplicate | Entry::Blank => {}
        }
    }
    Ok(ids)
}

/// The `--json` document: the audit report, with the verdict at the top level.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyDocument<'a> {
    /// Whether everything verified (no problem of any class).
    pub ok: bool,
    /// The process's exit code: 0 or 1.
    pub exit_code: u8,
    /// `bucket`, `prefix`, `deep`, `signaturesChecked`, `summary`, `problems`, `sessions`.
    #[serde(flatten)]
    pub report: &'a AuditReport,
}

impl<'a> VerifyDocument<'a> {
    /// The document for `report`.
    pub fn of(report: &'a AuditReport) -> Self {
        let exit_code = exit_code(report);
        VerifyDocument {
            ok: exit_code == 0,
            exit_code,
            report,
        }
    }
}

/// 0 when the report holds no problem, 1 otherwise.
pub fn exit_code(report: &AuditReport) -> u8 {
    u8::from(report.summary.problems() > 0)
}

/// Checks `--session` ids (each a safe key segment) and drops repeats, keeping the order.
pub fn session_ids(ids: &[String]) -> Result<Vec<String>, Fatal> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if !is_safe_segment(id) {
            return Err(format!(
                "--session {id:?}: not a session id (1-128 characters of A-Z a-z 0-9 - _, \
                 starting with a letter or digit)"
            ));
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// Runs `verify`.
pub async fn run(args: VerifyArgs) -> Result<ExitCode, Fatal> {
    let prefix = args.archive.normalised_prefix()?;
    let sessions = session_ids(&args.sessions)?;
    let bucket = args.archive.bucket.trim().to_string();
    if bucket.is_empty() {
        return Err("--bucket / ARCHIVE_BUCKET is empty".into());
    }
    let public_key = args.signing.public_key().await?;
    let tsa_cert = match &args.tsa_cert {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("--tsa-cert {}: {e}", path.display()))?)
        }
        None => None,
    };
    let expected = match &args.expect {
        Some(path) => expected_sessions(path, args.column.as_deref())?,
        None => Vec::new(),
    };
    if !sessions.is_empty() && (tsa_cert.is_some() || !expected.is_empty()) {
        return Err("--tsa-cert and --expect check the whole archive: drop --session".into());
    }
    // The ledger is walked when the whole archive is audited.
    let ledger = sessions.is_empty().then(|| LedgerOptions {
        tsa_cert,
        now: std::time::SystemTime::now(),
    });
    let options = AuditOptions {
        prefix: prefix.clone(),
        sessions: sessions.clone(),
        deep: args.deep,
        concurrency: usize::from(args.concurrency),
        public_key,
        ledger,
        expected_sessions: expected,
    };
    let auditor = Auditor::new(common::s3_client().await, bucket.clone());

    let progress = Progress::new(
        !args.json && std::io::stderr().is_terminal(),
        "listing the archive and reading manifests",
        if args.deep {
            "files hashed"
        } else {
            "files checked"
        },
    );
    let result = auditor
        .audit(&options, &|done, total| progress.update(done, total))
        .await;
    progress.finish();
    let report = result.map_err(|e| format!("s3://{bucket}/{prefix}: {e}"))?;

    let absent = absent_sessions(&report, &sessions);
    if !absent.is_empty() {
        return Err(format!(
            "nothing archived for session(s) {} under s3://{bucket}/{prefix} \
             (check the id, --bucket and --prefix)",
            absent.join(", ")
        ));
    }

    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&VerifyDocument::of(&report))
            .map_err(|e| format!("JSON output: {e}"))?;
        text.push('\n');
        text
    } else {
        human(&report, &sessions)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing the result: {e}"))?;
    Ok(ExitCode::from(exit_code(&report)))
}

/// Requested sessions with no object at all under the prefix.
fn absent_sessions(report: &AuditReport, sessions: &[String]) -> Vec<String> {
    sessions
        .iter()
        .filter(|id| {
            let folder = format!("{}{id}/", report.prefix);
            !report.sessions.iter().any(|s| &s.session_id == *id)
                && !report
                    .problems
                    .orphans
                    .iter()
                    .any(|p| p.key.starts_with(&folder))
        })
        .cloned()
        .collect()
}

/// The output for people: what was checked, the summary table, every problem by class,
/// and the verdict.
pub fn human(report: &AuditReport, sessions: &[String]) -> String {
    let mut out = checked(report, sessions);
    out.push_str("\nSummary\n");
    out.push_str(&summary_table(report).render("  "));
    out.push_str(&ledger_lines(report));
    out.push_str(&problem_list(report));
    out.push('\n');
    out.push_str(&verdict(report));
    out
}

/// The first lines: where, which sessions, and how files and signatures were checked.
fn checked(report: &AuditReport, sessions: &[String]) -> String {
    let scope = if sessions.is_empty() {
        "every session".to_string()
    } else {
        format!("session {}", sessions.join(", "))
    };
    let files = if report.deep {
        "files: HeadObject (size, version, ETag, S3 checksum), then downloaded and SHA-256 \
         recomputed (--deep)"
    } else {
        "files: HeadObject (size, version, ETag, S3 checksum), no download (--deep also \
         hashes every object)"
    };
    let signatures = if report.signatures_checked {
        "signatures: checked with the public key"
    } else {
        "signatures: not checked (no --public-key or --signing-key-id)"
    };
    format!(
        "veriff-archiver verify: s3://{}/{} ({scope})\n{files}\n{signatures}\n",
        report.bucket, report.prefix
    )
}

/// The counts: what was found, each problem class, and how it was checked.
fn summary_table(report: &AuditReport) -> Table {
    let s = &report.summary;
    let mut table = Table::new();
    for (label, n) in [
        ("sessions", s.sessions),
        ("attempts", s.attempts),
        ("manifests", s.manifests),
        ("files", s.files),
    ] {
        table.row([label.to_string(), n.to_string()]);
    }
    table.row([
        "bytes".into(),
        format!("{} ({})", s.bytes, human_bytes(s.bytes)),
    ]);
    table.row(["", ""]);
    table.row(["ok".into(), s.ok.to_string()]);
    let classes = ProblemClass::ARCHIVE.iter().chain(match report.ledger {
        Some(_) => &ProblemClass::LEDGER[..],
        None => &[ProblemClass::Unarchived][..],
    });
    for &class in classes {
        if class == ProblemClass::Unarchived && report.ledger.is_none() && s.unarchived == 0 {
            continue;
        }
        let signature_class = matches!(class, ProblemClass::Unsigned | ProblemClass::BadSignature);
        let count = if signature_class && !report.signatures_checked {
            "not checked".to_string()
        } else {
            s.count(class).to_string()
        };
        table.row([class.label().to_string(), count]);
    }
    table.row(["", ""]);
    let checked = if report.signatures_checked {
        "checked"
    } else {
        "not checked"
    };
    table.row(["signatures", checked]);
    table.row(["deep", if report.deep { "yes" } else { "no" }]);
    table
}

/// The ledger's walk, in the words of CloudTrail's `validate-logs`; empty when it was not
/// walked (an audit of some sessions).
fn ledger_lines(report: &AuditReport) -> String {
    let Some(l) = &report.ledger else {
        return String::new();
    };
    let mut out = String::from("\nLedger\n");
    out.push_str(&format!(
        "  {}/{} digests valid{}{}\n",
        l.digests_valid,
        l.digests,
        if l.signatures_checked {
            ", signatures checked"
        } else {
            ""
        },
        if l.timestamps_checked {
            ", timestamps checked"
        } else {
            ""
        },
    ));
    out.push_str(&format!(
        "  {}/{} sealed manifests present; {} awaiting the next seal\n",
        l.manifests_present, l.manifests_sealed, l.awaiting_seal
    ));
    match &l.covered_to {
        Some(to) => out.push_str(&format!(
            "  covered: from the archive's beginning to {to} (sealed every {})\n",
            humantime::format_duration(std::time::Duration::from_secs(l.interval_seconds))
        )),
        None => out.push_str("  covered: nothing yet (no digest: run `veriff-archiver seal`, or wait for the schedule)\n"),
    }
    if !l.erased_sessions.is_empty() {
        out.push_str(&format!(
            "  erased on purpose (erasure records): {}\n",
            l.erased_sessions.join(", ")
        ));
    }
    if !l.versions_checked {
        out.push_str(
            "  versions: not listed (the bucket is not versioned): covered versions cannot occur\n",
        );
    }
    out
}

/// Every problem, by class, with what was expected and found; empty when there is none.
fn problem_list(report: &AuditReport) -> String {
    let total = report.summary.problems();
    if total == 0 {
        return String::new();
    }
    let mut out = format!("\nProblems: {total}, by class\n");
    for class in ProblemClass::ALL {
        let problems = report.problems.of(class);
        if problems.is_empty() {
            continue;
        }
        let (label, meaning) = (class.label(), class.meaning());
        out.push_str(&format!("\n{label} ({}): {meaning}\n", problems.len()));
        for problem in problems {
            out.push_str(&format!("  {}\n", problem.key));
            let details = [
                ("listed by", &problem.manifest),
                ("expected", &problem.expected),
                ("found", &problem.found),
            ];
            for (label, value) in details {
                if let Some(value) = value {
                    out.push_str(&format!("      {label:<9}  {value}\n"));
                }
            }
        }
    }
    out
}

/// The last line: `OK: ...` or `FAILED: ...` with the count of each class.
fn verdict(report: &AuditReport) -> String {
    let s = &report.summary;
    let total = s.problems();
    if total == 0 {
        return format!(
            "OK: {} and {} verified, no problem found\n",
            plural(s.manifests, "manifest", "manifests"),
            plural(s.files, "file", "files")
        );
    }
    let counts: Vec<String> = ProblemClass::ALL
        .iter()
        .map(|&c| (c, report.problems.of(c).len()))
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{n} {}", c.label()))
        .collect();
    format!(
        "FAILED: {} ({})\n",
        plural(total, "problem", "problems"),
        counts.join(", ")
    )
}
