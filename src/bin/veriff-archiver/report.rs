//! `veriff-archiver report --session ID [--out DIR]`: an evidence pack for one session, for a
//! person who asks "show me the KYC evidence for this customer".
//!
//! The session is audited like `verify --session ID` does (this run's verification result),
//! then a folder is written with owner-only permissions (0700, files 0600):
//!
//! - `report.html`: one self-contained page that works offline and makes no request. Its
//!   Content-Security-Policy allows nothing but inline styles and `data:` images; it has
//!   no script. Every attempt and every decision of the session in time order, each
//!   decision's non-personal fields, and each file with its SHA-256, size, S3 key, version
//!   and this run's result. Images are inline as `data:` URIs: each is downloaded (its
//!   recorded version) and shown only when its SHA-256 matches the record, so every image
//!   on the page is proven byte for byte; a mismatch is reported as altered. Videos and
//!   NFC files get a line saying what they are. The kept webhook body is listed, never
//!   inlined: it holds personal data beyond the images.
//! - `verify.json`: the audit of that session, as `verify --session ID --json` prints it
//!   (including anything the image downloads found).
//!
//! Exit code 0 when the session verifies, 1 when a problem is found (the pack is written
//! all the same), 2 on a usage, configuration or access error (nothing is written).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use veriff_archiver::audit::{AuditOptions, Auditor};
use veriff_archiver::domain::SafeId;
use veriff_archiver::pack::{self, MAX_INLINE_IMAGE_BYTES, Page, inline_mime};
use veriff_archiver::units::plural;

use crate::common::{ArchiveArgs, Fatal, SigningArgs, s3_client};
use crate::verify::VerifyDocument;

/// Image downloads in flight at once.
const DOWNLOADS: usize = 8;

/// HeadObject checks in flight at once.
const CONCURRENCY: usize = 32;

/// Flags of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The session to report on (Veriff's session id).
    #[arg(long, value_name = "ID")]
    pub session: String,
    /// Where to write the pack: a new or empty folder. Default: a new folder
    /// `evidence-<session>-<UTC time>` in the current directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also download every file (not only the images) and recompute its SHA-256.
    #[arg(long)]
    pub deep: bool,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
}

/// Runs `report`.
pub async fn run(args: ReportArgs) -> Result<ExitCode, Fatal> {
    let session = SafeId::parse(args.session.trim()).map_err(|_| {
        format!(
            "--session {:?}: a session id is 1-128 characters of A-Z a-z 0-9 - _",
            args.session
        )
    })?;
    let session = session.as_str();
    let prefix = args.archive.normalised_prefix()?;
    let bucket = args.archive.bucket.trim().to_string();
    if bucket.is_empty() {
        return Err("--bucket / ARCHIVE_BUCKET is empty".into());
    }
    let generated_at = SystemTime::now();
    let out = args.out.clone().unwrap_or_else(|| {
        let at = humantime::format_rfc3339_seconds(generated_at).to_string();
        PathBuf::from(format!("evidence-{session}-{}", at.replace(['-', ':'], "")))
    });
    // Refuse before any S3 request, so a bad --out costs nothing.
    pack::check_out_dir(&out).map_err(|e| format!("--out {e}"))?;
    let public_key = args.signing.public_key().await?;

    let (report, written) = write_pack(
        &bucket,
        &prefix,
        session,
        &out,
        public_key,
        args.deep,
        generated_at,
    )
    .await?;
    print_done(&report, session, &written);
    Ok(if report.summary.problems() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Audits one session, proves its images, and writes its pack (`report.html`,
/// `verify.json`) into `out` (new or empty); returns the audit and the folder's path.
pub async fn write_pack(
    bucket: &str,
    prefix: &str,
    session: &str,
    out: &std::path::Path,
    public_key: Option<p256::ecdsa::VerifyingKey>,
    deep: bool,
    generated_at: SystemTime,
) -> Result<(veriff_archiver::audit::AuditReport, PathBuf), Fatal> {
    let auditor = Auditor::new(s3_client().await, bucket);
    let options = AuditOptions {
        prefix: prefix.to_string(),
        sessions: vec![session.to_string()],
        deep,
        concurrency: CONCURRENCY,
        public_key,
        ledger: None,
        expected_sessions: Vec::new(),
    };
    let where_ = format!("s3://{bucket}/{prefix}{session}/");
    let mut report =
        (auditor.audit(&options, &|_, _| {}).await).map_err(|e| format!("{where_}: {e}"))?;
    if report.sessions.is_empty() && report.problems.orphans.is_empty() {
        return Err(format!(
            "no objects under {where_}: nothing archived for session {session} (check \
             --bucket, --prefix and the session id)"
        ));
    }
    // Every image the page shows is downloaded and proven byte for byte first.
    let shown = |f: &_| inline_mime(f).is_some() && f.size <= MAX_INLINE_IMAGE_BYTES;
    let images = (auditor
        .prove(&mut report, &shown, MAX_INLINE_IMAGE_BYTES, DOWNLOADS)
        .await)
        .map_err(|e| format!("{where_}: {e}"))?;
    let page = Page::new(&report, session, &images, generated_at);
    let html = page.html().map_err(|e| format!("report.html: {e}"))?;
    let mut json = serde_json::to_vec_pretty(&VerifyDocument::of(&report))
        .map_err(|e| format!("verify.json: {e}"))?;
    json.push(b'\n');
    let files: [(&str, &[u8]); 2] = [("verify.json", &json), ("report.html", html.as_bytes())];
    let written = pack::write(out, &files).map_err(|e| format!("--out {e}"))?;
    Ok((report, written))
}

/// What was written, how to treat it, and the verdict.
fn print_done(report: &veriff_archiver::audit::AuditReport, session: &str, at: &std::path::Path) {
    println!(
        "Evidence pack for session {session} written to {}",
        at.display()
    );
    println!(
        "  report.html  the evidence, one self-contained page (open it in a browser; it works offline)"
    );
    println!("  verify.json  this run's verification result, as `verify --json` prints it");
    println!(
        "It holds personal data (the identity images) by design. The folder and its files are \
         readable by the owner only (0700 / 0600): keep them that way, share the pack only \
         with whoever is entitled to it, and delete it when it is no longer needed."
    );
    let s = &report.summary;
    match s.problems() {
        0 => println!(
            "Verification: all {} verified ({}, {}).",
            plural(s.files, "file", "files"),
            plural(s.manifests, "decision", "decisions"),
            plural(s.attempts, "attempt", "attempts")
        ),
        n => println!(
            "Verification: {n} problem(s) found ({}): see report.html.",
            s.breakdown()
        ),
    }
}
