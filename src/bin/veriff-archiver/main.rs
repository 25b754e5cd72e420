//! `veriff-archiver`: the command-line tool beside the Lambda function, built from the same
//! library. It reads its configuration from the function's environment variables
//! (`ARCHIVE_BUCKET`, `ARCHIVE_PREFIX`, the AWS SDK's credentials, region and
//! `AWS_ENDPOINT_URL_S3`); flags override them.
//!
//! Subcommands:
//! - `verify`: prove the archive complete and unaltered ([`verify`]).
//! - `report`: an evidence pack for one session, HTML plus the verify JSON ([`report`]).
//! - `backfill`: archive past sessions through Veriff's decision endpoint ([`backfill`]).
//! - `seal`: seal the ledger's next digest now, as the schedule does ([`seal`]).
//! - `find`, `export`, `retain`, `hold`, `release`, `erase`, `reindex`: evidence by
//!   customer ([`customer`]).
//! - `restore`: ask S3 to restore sessions held in an archived storage class ([`restore`]).
//!
//! Exit codes: 0 when everything verifies (backfill: no session failed), 1 when a problem
//! is found (a session failed), 2 on a usage, configuration or access error; `backfill`
//! exits 130 when interrupted by Ctrl-C.

mod backfill;
mod common;
mod customer;
mod output;
mod report;
mod restore;
mod seal;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface.
#[derive(Debug, Parser)]
#[command(
    name = "veriff-archiver",
    version,
    about = "Verify, report on, backfill, seal and manage by customer a veriff-archiver evidence archive in S3"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every manifest, signature and file under the prefix (or of some sessions).
    Verify(verify::VerifyArgs),
    /// Write an evidence pack (HTML and verify JSON) for one session.
    Report(report::ReportArgs),
    /// Archive sessions decided before the function existed, or whose webhooks were lost
    /// (reads Veriff's decision endpoint; the webhook's code path).
    Backfill(backfill::BackfillArgs),
    /// Seal the ledger's next digest now (the schedule does it every interval).
    Seal(seal::SealArgs),
    /// List one customer's sessions, decisions and lock state (through the index).
    Find(customer::FindArgs),
    /// Write one customer's evidence: each session's report, and an index page.
    Export(customer::ExportArgs),
    /// Extend the Object Lock retention of one customer's evidence to a date (never shortens).
    Retain(customer::RetainArgs),
    /// Put one customer's evidence on legal hold, with a reason on record.
    Hold(customer::HoldArgs),
    /// Release the legal hold on one customer's evidence.
    Release(customer::HoldArgs),
    /// Delete every version of one customer's evidence once no retention or hold remains.
    Erase(customer::EraseArgs),
    /// Build the index by customer of decisions archived without it.
    Reindex(customer::ReindexArgs),
    /// Ask S3 to restore sessions held in an archived storage class (GLACIER, DEEP_ARCHIVE).
    Restore(restore::RestoreArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Verify(args) => verify::run(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Backfill(args) => backfill::run(args).await,
        Command::Seal(args) => seal::run(args).await,
        Command::Find(args) => customer::find(args).await,
        Command::Export(args) => customer::export(args).await,
        Command::Retain(args) => customer::retain(args).await,
        Command::Hold(args) => customer::hold(args, true).await,
        Command::Release(args) => customer::hold(args, false).await,
        Command::Erase(args) => customer::erase(args).await,
        Command::Reindex(args) => customer::reindex(args).await,
        Command::Restore(args) => restore::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("veriff-archiver: {e}");
            ExitCode::from(2)
        }
    }
}
