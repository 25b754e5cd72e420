//! `veriff-archiver seal`: seal the ledger's next digest now, as the schedule does: for an
//! archive made before the ledger (its first digest lists every manifest already there),
//! and for operators (after an outage of the schedule, or before an audit).
//!
//! Exit codes: 0 when a digest was written (or the ledger is already sealed up to now), 2
//! on a usage, configuration or access error (nothing is written then).

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use serde_json::json;
use veriff_archiver::aws::AwsClients;
use veriff_archiver::config;
use veriff_archiver::ledger::stamp::Timestamper;
use veriff_archiver::ledger::{SealOutcome, SealSettings, Sealer};
use veriff_archiver::signing::ManifestSigner;
use veriff_archiver::store::Store;

use crate::common::{ArchiveArgs, Fatal};

/// Flags of `seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// The KMS key that signs manifests: the digest is signed the same way.
    #[arg(long, env = "MANIFEST_SIGNING_KEY_ID")]
    pub signing_key_id: Option<String>,
    /// An RFC 3161 time-stamping authority: the digest's SHA-256 is timestamped.
    #[arg(long, env = "LEDGER_TSA_URL")]
    pub tsa_url: Option<String>,
    /// The schedule (a rate expression), recorded in the digest so that `verify` knows
    /// when the ledger is stale.
    #[arg(long, env = "LEDGER_SEAL_SCHEDULE", default_value = "rate(1 hour)")]
    pub schedule: String,
    /// Print the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs `seal`.
pub async fn run(args: SealArgs) -> Result<ExitCode, Fatal> {
    let prefix = args.archive.normalised_prefix()?;
    let bucket = args.archive.bucket.trim().to_string();
    if bucket.is_empty() {
        return Err("--bucket / ARCHIVE_BUCKET is empty".into());
    }
    let interval =
        config::parse_rate(Some(args.schedule.trim())).map_err(|e| format!("--schedule / {e}"))?;
    let tsa_url = match args
        .tsa_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(raw) => Some(
            config::parse_http_url("LEDGER_TSA_URL", raw)
                .map_err(|e| format!("--tsa-url / {e}"))?,
        ),
        None => None,
    };
    let clients = AwsClients::from_env().await;
    let signer = args
        .signing_key_id
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|key| ManifestSigner::new(clients.kms.clone(), key));
    let timestamper = match tsa_url {
        Some(url) => {
            let http = reqwest::Client::builder()
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?;
            Some(Timestamper::new(http, url))
        }
        None => None,
    };
    let settings = SealSettings {
        interval,
        ..SealSettings::default()
    };
    let sealer = Sealer::new(Store::new(clients.s3, &bucket, 5 << 20), &prefix, settings)
        .signed_by(signer)
        .timestamped_by(timestamper);
    let outcome = (sealer.seal(SystemTime::now()).await)
        .map_err(|e| format!("s3://{bucket}/{prefix}ledger/: {e}"))?;
    print(&outcome, &bucket, args.json);
    Ok(ExitCode::SUCCESS)
}

/// What was sealed, for people or as JSON.
fn print(outcome: &SealOutcome, bucket: &str, json: bool) {
    let document = match outcome {
        SealOutcome::Sealed(r) => json!({"status": "sealed", "sequence": r.sequence,
            "digest": r.key, "manifests": r.manifests, "pending": r.pending,
            "abandoned": r.abandoned, "erasures": r.erasures, "receiptsRead": r.receipts_read,
            "signed": r.signed, "timestamped": r.timestamped, "repaired": r.repaired}),
        SealOutcome::UpToDate { sequence } => json!({"status": "up_to_date", "sequence": sequence}),
        SealOutcome::Raced { sequence } => json!({"status": "raced", "sequence": sequence}),
    };
    if json {
        println!("{document}");
        return;
    }
    match outcome {
        SealOutcome::Sealed(r) => {
            println!("Sealed digest {} at s3://{bucket}/{}", r.sequence, r.key);
            println!(
                "  {} sealed, {} pending (manifest not written yet), {} abandoned; {} receipts read",
                veriff_archiver::units::plural(r.manifests as u64, "manifest", "manifests"),
                r.pending,
                r.abandoned,
                r.receipts_read
            );
            println!(
                "  signed: {}; timestamped: {}",
                if r.signed { "yes" } else { "no" },
                if r.timestamped {
                    "yes"
                } else {
                    "no (none configured, or the authority failed: the next seal retries)"
                }
            );
        }
        SealOutcome::UpToDate { sequence } => {
            println!("Already sealed up to now (newest digest: {sequence}); nothing written.")
        }
        SealOutcome::Raced { sequence } => {
            println!("Another seal wrote digest {sequence} at the same moment; its digest stands.")
        }
    }
}
