//! `veriff-archiver restore --session ID...`: asks S3 to restore every version of the
//! sessions that sits in an archived storage class (GLACIER, DEEP_ARCHIVE), so that
//! `report`, `export` and `verify --deep` can read them once S3 has made the copies (hours:
//! Standard tier 3 to 5 for GLACIER, within 12 for DEEP_ARCHIVE). Versions in other classes
//! (STANDARD, STANDARD_IA, GLACIER_IR) are readable as they are and left alone.
//!
//! Exit codes: 0 when every archived version was asked for (or none needed it), 2 on a
//! usage, configuration or access error.

use std::process::ExitCode;

use clap::Args;
use veriff_archiver::domain::SafeId;
use veriff_archiver::store::{Restore, Store, needs_restore};

use crate::common::{ArchiveArgs, Fatal};

/// Flags of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// A session to restore (repeat for several).
    #[arg(long = "session", value_name = "ID", required = true)]
    pub sessions: Vec<String>,
    /// How long the restored copies stay readable, in days.
    #[arg(long, default_value_t = 7)]
    pub days: i32,
    /// S3's retrieval tier: Standard, Bulk (cheaper, slower) or Expedited (GLACIER only).
    #[arg(long, default_value = "Standard", value_parser = ["Standard", "Bulk", "Expedited"])]
    pub tier: String,
}

/// Runs `restore`.
pub async fn run(args: RestoreArgs) -> Result<ExitCode, Fatal> {
    let prefix = args.archive.normalised_prefix()?;
    let bucket = args.archive.bucket.trim().to_string();
    if bucket.is_empty() {
        return Err("--bucket / ARCHIVE_BUCKET is empty".into());
    }
    if !(1..=3650).contains(&args.days) {
        return Err("--days: 1 to 3650".into());
    }
    let store = Store::new(crate::common::s3_client().await, &bucket, 5 << 20);
    let (mut requested, mut running, mut readable) = (0, 0, 0);
    for raw in &args.sessions {
        let session = SafeId::parse(raw.clone())
            .map_err(|_| format!("--session {raw:?}: not a session id"))?;
        let folder = format!("{prefix}{}/", session.as_str());
        let versions =
            (store.list_versions(&folder).await).map_err(|e| format!("{folder}: {e}"))?;
        for v in versions.iter().filter(|v| !v.delete_marker) {
            if !needs_restore(v.storage_class.as_deref()) {
                readable += 1;
                continue;
            }
            match store
                .restore(&v.key, &v.version_id, args.days, &args.tier)
                .await
            {
                Ok(Restore::Requested) => requested += 1,
                Ok(Restore::InProgress) => running += 1,
                Err(e) => return Err(format!("{} (version {}): {e}", v.key, v.version_id)),
            }
        }
    }
    println!(
        "Restore requested for {requested} version(s), already running for {running}; {readable} version(s) need none."
    );
    if requested + running > 0 {
        println!(
            "S3 makes the copies within hours (Standard tier: 3-5 h for GLACIER, up to 12 h for DEEP_ARCHIVE); they stay readable {} day(s). Run report, export or verify --deep then.",
            args.days
        );
    }
    Ok(ExitCode::SUCCESS)
}
