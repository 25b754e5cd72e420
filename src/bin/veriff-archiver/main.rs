//! `veriff-archiver`: the command-line tool beside the Lambda function, built from the same
//! library. It reads its configuration from the function's environment variables
//! (`ARCHIVE_BUCKET`, `ARCHIVE_PREFIX`, the AWS SDK's credentials, region and
//! `AWS_ENDPOINT_URL_S3`); flags override them.
//!
//! Subcommands:
//! - `verify`: prove the archive complete and unaltered ([`verify`]).
//! - `report`: an evidence pack for one session, HTML plus the verify JSON ([`report`]).
//!
//! Exit codes: 0 when everything verifies, 1 when a problem is found, 2 on a usage,
//! configuration or access error.

mod common;
mod output;
mod report;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface.
#[derive(Debug, Parser)]
#[command(
    name = "veriff-archiver",
    version,
    about = "Verify and report on a veriff-archiver evidence archive in S3"
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("veriff-archiver: {e}");
            ExitCode::from(2)
        }
    }
}
