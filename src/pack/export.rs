//! The index page of a customer's export (`export`): one row per session, linking the
//! session's own evidence pack (`<sessionId>/report.html`, as `report` writes it), with
//! its verdict. Self-contained and offline like the reports; the customer appears only as
//! the keyed hash of their reference.

use std::time::SystemTime;

use askama::Template;

use crate::audit::AuditReport;
use crate::customer::Customer;

/// One session of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The session id (also its folder).
    pub session_id: String,
    /// Decisions (manifests) in it.
    pub decisions: u64,
    /// Files in it.
    pub files: u64,
    /// Problems its audit found (0: verified).
    pub problems: u64,
    /// The problems, in a line.
    pub breakdown: String,
}

impl ExportRow {
    /// The row of a session's audit.
    pub fn of(session_id: &str, report: &AuditReport) -> ExportRow {
        ExportRow {
            session_id: session_id.to_string(),
            decisions: report.summary.manifests,
            files: report.summary.files,
            problems: report.summary.problems(),
            breakdown: report.summary.breakdown(),
        }
    }
}

/// The export's index page.
#[derive(Template)]
#[template(path = "export.html")]
pub struct ExportPage<'a> {
    csp: &'static str,
    style: &'static str,
    field: &'static str,
    subject: &'a str,
    rows: &'a [ExportRow],
    generated_at: String,
    version: &'static str,
}

impl<'a> ExportPage<'a> {
    /// The page for `customer`'s sessions.
    pub fn new(customer: &'a Customer, rows: &'a [ExportRow], at: SystemTime) -> Self {
        ExportPage {
            csp: super::CONTENT_SECURITY_POLICY,
            style: super::page::STYLE,
            field: customer.field,
            subject: &customer.subject,
            rows,
            generated_at: humantime::format_rfc3339_seconds(at).to_string(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// The page as HTML: every value escaped.
    pub fn html(&self) -> Result<String, askama::Error> {
        self.render()
    }
}
