//! The customer commands: `find`, `export`, `retain`, `hold`, `release`, `erase` and
//! `reindex`. Each names the customer by `--vendor-data` or `--end-user-id`; the reference
//! is hashed with the index key (`ARCHIVE_INDEX_KEY`) at once and never printed, logged or
//! written in clear.
//!
//! Exit codes: `find` 0 when something is found, 1 when nothing is; `erase` 1 when it
//! refuses (something locked or held); every command 2 on a usage, configuration or access
//! error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{ArgGroup, Args};
use veriff_archiver::aws::{self, caller_arn};
use veriff_archiver::customer::locks::{Locks, Mode};
use veriff_archiver::customer::ops::{EraseOutcome, OpsError, Pace};
use veriff_archiver::customer::{CustomerArchive, Found};
use veriff_archiver::index::Field;
use veriff_archiver::store::Store;

use crate::common::{ArchiveArgs, Fatal};

/// Who: one customer reference, and the index key.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["vendor_data", "end_user_id"])))]
pub struct CustomerArgs {
    /// The customer's `vendorData` (the reference your integration sends Veriff).
    #[arg(long, value_name = "V")]
    pub vendor_data: Option<String>,
    /// The customer's `endUserId`.
    #[arg(long, value_name = "U")]
    pub end_user_id: Option<String>,
    /// The index key (hex), as the function has it.
    #[arg(long, env = "ARCHIVE_INDEX_KEY", hide_env_values = true)]
    pub index_key: Option<String>,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

impl CustomerArgs {
    fn reference(&self) -> (Field, &str) {
        match (&self.vendor_data, &self.end_user_id) {
            (Some(v), _) => (Field::VendorData, v),
            (None, Some(u)) => (Field::EndUserId, u),
            (None, None) => unreachable!("clap requires one"),
        }
    }

    /// The archive's customer side, with the operator's clients.
    async fn archive(&self) -> Result<(CustomerArchive, aws_config::SdkConfig), Fatal> {
        let prefix = self.archive.normalised_prefix()?;
        let bucket = self.archive.bucket.trim().to_string();
        if bucket.is_empty() {
            return Err("--bucket / ARCHIVE_BUCKET is empty".into());
        }
        let Some(hex) = self.index_key.as_deref().filter(|k| !k.trim().is_empty()) else {
            return Err(
                "the index is off: no --index-key / ARCHIVE_INDEX_KEY (set the function's key, \
                 then `veriff-archiver reindex` for decisions archived without it)"
                    .into(),
            );
        };
        let key = veriff_archiver::config::parse_index_key(hex)
            .map_err(|e| format!("--index-key / {e}"))?;
        let sdk = aws::sdk_config_from_env().await;
        let client = aws::s3_client(&sdk);
        let archive = CustomerArchive::new(
            Store::new(client.clone(), &bucket, 5 << 20),
            Locks::new(client, &bucket),
            prefix,
            key,
        );
        Ok((archive, sdk))
    }

    /// The customer's decisions, or an error when there are none (commands that act on
    /// them need some).
    async fn found(&self) -> Result<(CustomerArchive, aws_config::SdkConfig, Found), Fatal> {
        let (archive, sdk) = self.archive().await?;
        let (field, value) = self.reference();
        let found = (archive.find(archive.customer(field, value)).await)
            .map_err(|e| format!("find: {e}"))?;
        if found.sessions.is_empty() {
            return Err(format!(
                "no decision of this customer in the index (--{}): nothing to do",
                field.as_str()
            ));
        }
        Ok((archive, sdk, found))
    }
}

/// Flags of `find`.
#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    pub who: CustomerArgs,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs `find`.
pub async fn find(args: FindArgs) -> Result<ExitCode, Fatal> {
    let (archive, _) = args.who.archive().await?;
    let (field, value) = args.who.reference();
    let found =
        (archive.find(archive.customer(field, value)).await).map_err(|e| format!("find: {e}"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&found).map_err(|e| e.to_string())?
        );
    } else {
        print_found(&found);
    }
    Ok(if found.sessions.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_found(found: &Found) {
    let decisions: usize = found.sessions.iter().map(|s| s.decisions.len()).sum();
    println!(
        "Customer {} {}: {} session(s), {decisions} decision(s)",
        found.customer.field,
        &found.customer.subject[..16],
        found.sessions.len()
    );
    for session in &found.sessions {
        println!("\nsession {}", session.session_id);
        for d in &session.decisions {
            let lock = match (&d.retention, d.legal_hold) {
                (Some((mode, until)), held) => {
                    format!(
                        "; locked until {until} ({mode}){}",
                        if held { ", held" } else { "" }
                    )
                }
                (None, true) => "; held".into(),
                (None, false) if found.locks_read => "; no retention".into(),
                (None, false) => String::new(),
            };
            println!(
                "  {} {} at {}: {} file(s), {}{lock}{}",
                d.attempt_id,
                d.status.as_deref().unwrap_or("?"),
                d.decision_time.as_deref().unwrap_or("time unknown"),
                d.files,
                veriff_archiver::units::human_bytes(d.bytes),
                if d.present { "" } else { "; MANIFEST GONE" }
            );
            println!("      {}", d.manifest_key);
        }
    }
}

/// Flags of `retain`.
#[derive(Debug, Args)]
pub struct RetainArgs {
    #[command(flatten)]
    pub who: CustomerArgs,
    /// Keep everything until this date (YYYY-MM-DD, UTC midnight, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub until: String,
    /// The mode for a version that has no retention yet (default: the bucket's default).
    #[arg(long, value_name = "COMPLIANCE|GOVERNANCE")]
    pub mode: Option<String>,
    /// Say what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many S3 requests a second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
}

fn parse_date(raw: &str) -> Result<SystemTime, Fatal> {
    let text = if raw.len() == 10 {
        format!("{raw}T00:00:00Z")
    } else {
        raw.to_string()
    };
    humantime::parse_rfc3339(&text)
        .map_err(|_| format!("--until {raw:?}: use YYYY-MM-DD or an RFC 3339 time"))
}

fn ops_error(e: OpsError) -> Fatal {
    e.to_string()
}

/// Runs `retain`.
pub async fn retain(args: RetainArgs) -> Result<ExitCode, Fatal> {
    let until = parse_date(&args.until)?;
    if until <= SystemTime::now() {
        return Err(format!("--until {}: a date in the future", args.until));
    }
    let mode = match args.mode.as_deref() {
        Some(m) => {
            Some(Mode::parse(m).ok_or_else(|| format!("--mode {m:?}: COMPLIANCE or GOVERNANCE"))?)
        }
        None => None,
    };
    let (archive, _, found) = args.who.found().await?;
    let pace = Pace {
        dry_run: args.dry_run,
        rate: args.rate,
    };
    let report = archive
        .retain(&found, until, mode, &pace)
        .await
        .map_err(ops_error)?;
    let verb = if args.dry_run {
        "would extend"
    } else {
        "extended"
    };
    println!(
        "{} session(s), {} version(s): {verb} {} to {}; {} already kept that long (never shortened)",
        found.sessions.len(),
        report.versions,
        report.extended,
        humantime::format_rfc3339_seconds(until),
        report.unchanged
    );
    Ok(ExitCode::SUCCESS)
}

/// Flags of `hold` and `release`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub who: CustomerArgs,
    /// Why (recorded with the hold; write no personal data here).
    #[arg(long)]
    pub reason: String,
    /// Say what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many S3 requests a second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
}

/// Runs `hold` (`on`) or `release`.
pub async fn hold(args: HoldArgs, on: bool) -> Result<ExitCode, Fatal> {
    if args.reason.trim().is_empty() {
        return Err("--reason: say why (an investigation's reference, say)".into());
    }
    let (archive, sdk, found) = args.who.found().await?;
    let by = caller_arn(&sdk).await.map_err(|e| e.to_string())?;
    let pace = Pace {
        dry_run: args.dry_run,
        rate: args.rate,
    };
    let report = archive
        .hold(&found, on, args.reason.trim(), &by, &pace)
        .await
        .map_err(ops_error)?;
    let what = match (on, args.dry_run) {
        (true, false) => "legal hold set on",
        (false, false) => "legal hold released on",
        (true, true) => "would set a legal hold on",
        (false, true) => "would release the legal hold on",
    };
    println!(
        "{what} {} version(s) of {} session(s)",
        report.versions,
        found.sessions.len()
    );
    if let Some(record) = report.record {
        println!("recorded at {record} (by {by})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Flags of `erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub who: CustomerArgs,
    /// Say what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many S3 requests a second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
}

/// Runs `erase`.
pub async fn erase(args: EraseArgs) -> Result<ExitCode, Fatal> {
    let (archive, sdk, found) = args.who.found().await?;
    let by = if args.dry_run {
        String::new()
    } else {
        caller_arn(&sdk).await.map_err(|e| e.to_string())?
    };
    let pace = Pace {
        dry_run: args.dry_run,
        rate: args.rate,
    };
    let sessions = found.sessions.len();
    match archive
        .erase(&found, &by, SystemTime::now(), &pace)
        .await
        .map_err(ops_error)?
    {
        EraseOutcome::Refused { blockers } => {
            println!(
                "Refused: nothing deleted. {} version(s) may not be deleted yet:",
                blockers.len()
            );
            for b in &blockers {
                println!("  {} (version {}): {}", b.key, b.version_id, b.reason);
            }
            Ok(ExitCode::from(1))
        }
        EraseOutcome::WouldErase { versions } => {
            println!(
                "Would delete {versions} version(s) of {sessions} session(s) and their index entries; nothing is locked or held."
            );
            Ok(ExitCode::SUCCESS)
        }
        EraseOutcome::Erased { versions, record } => {
            println!(
                "Erased {versions} version(s) of {sessions} session(s); erasure record {record} (by {by})."
            );
            println!("`verify` reports these sessions as erased, not missing.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Flags of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub who: CustomerArgs,
    /// A new or empty folder for the pack.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `export`: each session's evidence pack (as `report` writes it) under
/// `<DIR>/<sessionId>/`, and `<DIR>/index.html` linking them.
pub async fn export(args: ExportArgs) -> Result<ExitCode, Fatal> {
    veriff_archiver::pack::check_out_dir(&args.out).map_err(|e| format!("--out {e}"))?;
    let (archive, _, found) = args.who.found().await?;
    let bucket = args.who.archive.bucket.trim().to_string();
    let mut problems = 0;
    let mut rows = Vec::new();
    for session in &found.sessions {
        let dir = args.out.join(&session.session_id);
        let (report, _) = crate::report::write_pack(
            &bucket,
            archive.prefix(),
            &session.session_id,
            &dir,
            None,
            false,
            SystemTime::now(),
        )
        .await?;
        problems += report.summary.problems();
        rows.push(veriff_archiver::pack::ExportRow::of(
            &session.session_id,
            &report,
        ));
    }
    let page = veriff_archiver::pack::ExportPage::new(&found.customer, &rows, SystemTime::now());
    let html = page.html().map_err(|e| format!("index.html: {e}"))?;
    veriff_archiver::pack::add_file(&args.out, "index.html", html.as_bytes())
        .map_err(|e| format!("--out {e}"))?;
    println!(
        "Evidence of {} session(s) written to {} (index.html links each session's report).",
        found.sessions.len(),
        args.out.display()
    );
    println!(
        "It holds personal data (identity images): owner-only (0700 / 0600); share it only with whoever is entitled to it."
    );
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        println!("Verification: {problems} problem(s) found: see each session's report.");
        ExitCode::from(1)
    })
}

/// Flags of `reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// The index key (hex), as the function has it.
    #[arg(long, env = "ARCHIVE_INDEX_KEY", hide_env_values = true)]
    pub index_key: String,
    /// Resume after this manifest key (the last one a cut-short run printed).
    #[arg(long, value_name = "KEY")]
    pub start_after: Option<String>,
    /// Manifests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

/// Runs `reindex`.
pub async fn reindex(args: ReindexArgs) -> Result<ExitCode, Fatal> {
    let key = veriff_archiver::config::parse_index_key(&args.index_key)
        .map_err(|e| format!("--index-key / {e}"))?;
    let prefix = args.archive.normalised_prefix()?;
    let bucket = args.archive.bucket.trim().to_string();
    let store = Store::new(crate::common::s3_client().await, &bucket, 5 << 20);
    let report = veriff_archiver::customer::reindex::reindex(
        &store,
        &prefix,
        &key,
        args.start_after.as_deref(),
        args.concurrency,
        &|r| {
            if r.manifests % 1000 == 0 {
                eprintln!(
                    "  {} manifests, last {}",
                    r.manifests,
                    r.last.as_deref().unwrap_or("")
                );
            }
        },
    )
    .await
    .map_err(|e| format!("reindex: {e} (resume with --start-after the last key printed)"))?;
    println!(
        "Indexed {} manifest(s): {} entries written, {} already there, {} unreadable manifest(s){}",
        report.manifests,
        report.written,
        report.existing,
        report.unreadable,
        report
            .last
            .map(|l| format!("; last {l}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
