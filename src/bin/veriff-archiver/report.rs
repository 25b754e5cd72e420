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

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::ResponseChecksumValidation;
use aws_sdk_s3::error::ProvideErrorMetadata;
use base64::Engine;
use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use veriff_archiver::audit::{
    AttemptAudit, AuditOptions, AuditReport, Auditor, FileAudit, FileResult, ManifestAudit,
    Problem, SignatureCheck,
};
use veriff_archiver::domain::WebhookKind;
use veriff_archiver::layout::{self, UNKNOWN_TIME};

use crate::common::{ArchiveArgs, Fatal, SigningArgs, s3_client};
use crate::verify::VerifyDocument;

/// The page's only style sheet.
const STYLE: &str = include_str!("report.css");

/// The page's Content-Security-Policy: inline styles and `data:` images, nothing else (no
/// script, no request of any kind).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

/// Largest image inlined into the page.
const MAX_INLINE_IMAGE_BYTES: u64 = 32 * 1024 * 1024;

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
    let session = args.session.trim().to_string();
    if !veriff_archiver::domain::is_safe_segment(&session) {
        return Err(format!(
            "--session {:?}: a session id is 1-128 characters of A-Z a-z 0-9 - _",
            args.session
        ));
    }
    let prefix = args.archive.normalised_prefix()?;
    let bucket = args.archive.bucket.trim().to_string();
    if bucket.is_empty() {
        return Err("--bucket / ARCHIVE_BUCKET is empty".into());
    }
    let generated_at = SystemTime::now();
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => PathBuf::from(format!(
            "evidence-{session}-{}",
            humantime::format_rfc3339_seconds(generated_at)
                .to_string()
                .replace(['-', ':'], "")
        )),
    };
    // Refuse before any S3 request, so a bad --out costs nothing.
    check_out_dir(&out)?;
    let public_key = args.signing.public_key().await?;

    let client = s3_client().await;
    let auditor = Auditor::new(client.clone(), &bucket);
    let mut report = auditor
        .audit(
            &AuditOptions {
                prefix: prefix.clone(),
                sessions: vec![session.clone()],
                deep: args.deep,
                concurrency: CONCURRENCY,
                public_key,
            },
            &|_, _| {},
        )
        .await
        .map_err(|e| format!("s3://{bucket}/{prefix}{session}/: {e}"))?;
    if report.sessions.is_empty() && report.problems.orphans.is_empty() {
        return Err(format!(
            "no objects under s3://{bucket}/{prefix}{session}/: nothing archived for session \
             {session} (check --bucket, --prefix and the session id)"
        ));
    }
    let images = fetch_images(&client, &bucket, &mut report).await?;

    let html = render(&report, &session, &images, generated_at);
    let mut json = serde_json::to_vec_pretty(&VerifyDocument::of(&report))
        .map_err(|e| format!("verify.json: {e}"))?;
    json.push(b'\n');
    let written = write_pack(
        &out,
        &[("verify.json", &json), ("report.html", html.as_bytes())],
    )?;

    let problems = report.summary.problems();
    println!(
        "Evidence pack for session {session} written to {}",
        written.display()
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
    if problems == 0 {
        let s = &report.summary;
        println!(
            "Verification: all {} verified ({}, {}).",
            plural(s.files, "file"),
            plural(s.manifests, "decision"),
            plural(s.attempts, "attempt")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "Verification: {problems} problem(s) found ({}): see report.html.",
            problem_breakdown(&report)
        );
        Ok(ExitCode::from(1))
    }
}

/// `1 file`, `2 files`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The output folder must be new, or an empty folder.
fn check_out_dir(dir: &Path) -> Result<(), Fatal> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("--out {}: {e}", dir.display())),
        Ok(meta) if !meta.is_dir() => Err(format!(
            "--out {}: exists and is not a folder",
            dir.display()
        )),
        Ok(_) => {
            let mut entries =
                fs::read_dir(dir).map_err(|e| format!("--out {}: {e}", dir.display()))?;
            if entries.next().is_some() {
                Err(format!(
                    "--out {}: the folder is not empty; refusing to write an evidence pack \
                     into it (give a new or empty folder)",
                    dir.display()
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// Creates the folder (0700) and the files (0600, never over an existing file); returns
/// the folder's absolute path.
fn write_pack(dir: &Path, files: &[(&str, &[u8])]) -> Result<PathBuf, Fatal> {
    check_out_dir(dir)?;
    let fail = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(dir, e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| fail(dir, e))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| fail(&path, e))?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| fail(&path, e))?;
        file.write_all(bytes).map_err(|e| fail(&path, e))?;
        file.sync_all().map_err(|e| fail(&path, e))?;
    }
    Ok(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// A stored object: key and recorded version.
type ObjectId = (String, Option<String>);

/// Downloads every image the page shows and returns its `data:` URI, by object. An image
/// whose bytes do not hash to the recorded SHA-256 (or that is gone by now) is not shown,
/// and is recorded as a problem in `report`, so the page and `verify.json` agree.
async fn fetch_images(
    client: &Client,
    bucket: &str,
    report: &mut AuditReport,
) -> Result<HashMap<ObjectId, String>, Fatal> {
    // Hash the bytes ourselves: a checksum the SDK validates would fail the body instead.
    let reader = Client::from_conf(
        client
            .config()
            .to_builder()
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build(),
    );
    let mut wanted: Vec<(ObjectId, String, String, String)> = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    for file in all_files(report) {
        let id = (file.key.clone(), file.version_id.clone());
        if inline_mime(file).is_some()
            && file.result == FileResult::Ok
            && file.size <= MAX_INLINE_IMAGE_BYTES
            && seen.insert(id.clone())
        {
            let mime = inline_mime(file).unwrap_or_default().to_string();
            wanted.push((id, mime, file.sha256.clone(), manifest_of(report, file)));
        }
    }
    let results: Vec<_> = futures_util::stream::iter(wanted)
        .map(|(id, mime, sha256, manifest)| {
            let reader = &reader;
            async move {
                let bytes = download(reader, bucket, &id.0, id.1.as_deref()).await?;
                Ok::<_, Fatal>((id, mime, sha256, manifest, bytes))
            }
        })
        .buffer_unordered(DOWNLOADS)
        .collect()
        .await;
    let mut images = HashMap::new();
    for result in results {
        let (id, mime, sha256, manifest, bytes) = result?;
        let found = bytes.as_ref().map(|b| hex::encode(Sha256::digest(b)));
        match (bytes, found) {
            (Some(bytes), Some(found)) if found == sha256 => {
                let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
                images.insert(id, format!("data:{mime};base64,{data}"));
            }
            (_, Some(found)) => mark(
                report,
                &id,
                FileResult::Altered,
                format!("SHA-256 {found} (downloaded for the report)"),
                manifest,
            ),
            (_, None) => mark(
                report,
                &id,
                FileResult::Missing,
                "no such object (downloaded for the report)".into(),
                manifest,
            ),
        }
    }
    Ok(images)
}

/// GetObject of a key (of its recorded version); `None` when there is no such object.
async fn download(
    client: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<Vec<u8>>, Fatal> {
    let out = match client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_string))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let no_key = e.as_service_error().is_some_and(|s| s.is_no_such_key());
            if no_key || status == Some(404) || (status == Some(400) && version_id.is_some()) {
                return Ok(None);
            }
            return Err(format!(
                "GetObject s3://{bucket}/{key}: {}",
                e.code().unwrap_or("no answer")
            ));
        }
    };
    if out
        .content_length()
        .is_some_and(|n| n.max(0) as u64 > MAX_INLINE_IMAGE_BYTES)
    {
        return Err(format!(
            "GetObject s3://{bucket}/{key}: larger than {MAX_INLINE_IMAGE_BYTES} bytes"
        ));
    }
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|_| format!("GetObject s3://{bucket}/{key}: body interrupted"))?
        .into_bytes();
    Ok(Some(bytes.to_vec()))
}

/// Records a problem found while downloading an image the audit found intact.
fn mark(
    report: &mut AuditReport,
    id: &ObjectId,
    result: FileResult,
    detail: String,
    manifest: String,
) {
    let mut record = None;
    for session in &mut report.sessions {
        for attempt in &mut session.attempts {
            for m in &mut attempt.manifests {
                for file in m.files.iter_mut().chain(m.decision_payload.iter_mut()) {
                    if file.key == id.0 && file.version_id == id.1 {
                        file.result = result;
                        file.detail = Some(detail.clone());
                        record.get_or_insert_with(|| (file.size, file.sha256.clone()));
                    }
                }
            }
        }
    }
    let (size, sha256) = record.unwrap_or_default();
    let mut expected = format!("{size} bytes, SHA-256 {sha256}");
    if let Some(version) = &id.1 {
        let _ = write!(expected, ", version {version}");
    }
    let problem = Problem {
        key: id.0.clone(),
        expected: Some(expected),
        found: Some(detail),
        manifest: Some(manifest),
    };
    let summary = &mut report.summary;
    summary.ok = summary.ok.saturating_sub(1);
    match result {
        FileResult::Missing => {
            summary.missing += 1;
            report.problems.missing.push(problem);
        }
        FileResult::Altered => {
            summary.altered += 1;
            report.problems.altered.push(problem);
        }
        FileResult::Ok => {}
    }
}

fn all_files(report: &AuditReport) -> impl Iterator<Item = &FileAudit> {
    report
        .sessions
        .iter()
        .flat_map(|s| &s.attempts)
        .flat_map(|a| &a.manifests)
        .flat_map(|m| m.files.iter().chain(&m.decision_payload))
}

/// The first manifest that lists a file.
fn manifest_of(report: &AuditReport, file: &FileAudit) -> String {
    report
        .sessions
        .iter()
        .flat_map(|s| &s.attempts)
        .flat_map(|a| &a.manifests)
        .find(|m| {
            m.files
                .iter()
                .any(|f| f.key == file.key && f.version_id == file.version_id)
        })
        .map(|m| m.key.clone())
        .unwrap_or_default()
}

/// The content type to inline a file with: an image whose recorded content type is a plain
/// `image/<subtype>` token (anything else would not be a safe `data:` URI).
fn inline_mime(file: &FileAudit) -> Option<&str> {
    let mime = file.content_type.trim();
    let subtype = mime.strip_prefix("image/")?;
    let token = !subtype.is_empty()
        && subtype
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    (file.kind == "image" && token).then_some(mime)
}

// ---------------------------------------------------------------------------------------
// The page.

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `48,213 bytes (48.2 kB)`.
fn size_text(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let units = ["kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = None;
    for u in units {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = Some(u);
    }
    match unit {
        None => format!("{grouped} bytes"),
        Some(u) => format!("{grouped} bytes ({value:.1} {u})"),
    }
}

/// A serde enum's wire name (`lower_ranked`, `image`...).
fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The decision time a manifest sorts by: as the archive names it (UTC, sortable).
fn decision_sort_time(manifest: &ManifestAudit) -> Option<String> {
    let from_decision = manifest
        .decision
        .as_ref()
        .map(|d| layout::sortable_time(d.decision_time.as_deref()));
    let from_key = || {
        layout::parse_manifest_key("", manifest.key.rsplit('/').next().unwrap_or_default())
            .and_then(|n| n.decision)
            .map(|d| d.time)
    };
    from_decision
        .or_else(from_key)
        .filter(|t| t != UNKNOWN_TIME)
}

/// Attempts in time order: by their earliest decision; attempts without a dated decision
/// last, by id.
fn attempts_in_time_order(attempts: &[AttemptAudit]) -> Vec<&AttemptAudit> {
    let mut sorted: Vec<(Option<String>, &AttemptAudit)> = attempts
        .iter()
        .map(|a| {
            let first = a.manifests.iter().filter_map(decision_sort_time).min();
            (first, a)
        })
        .collect();
    sorted.sort_by(|(ta, a), (tb, b)| match (ta, tb) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.attempt_id.cmp(&b.attempt_id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.attempt_id.cmp(&b.attempt_id),
    });
    sorted.into_iter().map(|(_, a)| a).collect()
}

fn problem_breakdown(report: &AuditReport) -> String {
    let s = &report.summary;
    [
        (s.missing, "missing"),
        (s.altered, "altered"),
        (s.unreadable, "unreadable manifest"),
        (s.unsigned, "unsigned manifest"),
        (s.bad_signature, "bad signature"),
        (s.orphans, "orphan"),
        (s.gaps, "gap"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Renders the page.
fn render(
    report: &AuditReport,
    session: &str,
    images: &HashMap<ObjectId, String>,
    generated_at: SystemTime,
) -> String {
    let mut html =
        String::with_capacity(64 * 1024 + images.values().map(String::len).sum::<usize>());
    let session_html = escape(session);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>KYC evidence: session {session_html}</title>\n<style>\n{STYLE}</style>\n\
         </head>\n<body>\n",
        csp = escape(CONTENT_SECURITY_POLICY),
    );
    render_header(&mut html, report, session, generated_at);
    render_problems(&mut html, report);

    let attempts: Vec<&AttemptAudit> = report
        .sessions
        .iter()
        .filter(|s| s.session_id == session)
        .flat_map(|s| attempts_in_time_order(&s.attempts))
        .collect();
    let decisions: usize = attempts.iter().map(|a| a.manifests.len()).sum();
    let mut shown: HashMap<ObjectId, String> = HashMap::new();
    let mut decision_no = 0;
    for (i, attempt) in attempts.iter().enumerate() {
        let _ = write!(
            html,
            "<section class=\"attempt\" id=\"attempt-{id}\">\n<h2>Attempt {n} of {total}: \
             <span class=\"mono\">{id}</span></h2>\n<p class=\"attempt-meta\">Folder \
             <span class=\"mono\">{folder}</span> · {count} decision(s)</p>\n",
            id = escape(&attempt.attempt_id),
            n = i + 1,
            total = attempts.len(),
            folder = escape(&attempt.folder),
            count = attempt.manifests.len(),
        );
        if attempt.manifests.is_empty() {
            html.push_str(
                "<p class=\"verdict bad\">No manifest: this folder holds files that no \
                 decision records (see Problems, gaps).</p>\n",
            );
        }
        for manifest in &attempt.manifests {
            decision_no += 1;
            render_decision(
                &mut html,
                manifest,
                decision_no,
                decisions,
                report.signatures_checked,
                images,
                &mut shown,
            );
        }
        html.push_str("</section>\n");
    }

    let version = env!("CARGO_PKG_VERSION");
    let _ = write!(
        html,
        "<footer>\n<p>Generated by veriff-archiver {version} <code>report</code>. This page \
         is self-contained: it loads nothing and makes no network request (its \
         Content-Security-Policy allows only inline styles and embedded images). Each file \
         was checked against its manifest record with HeadObject (size, version, ETag, S3 \
         checksum){deep}; each image shown was downloaded and its SHA-256 recomputed and \
         matched to the record. The decision webhook bodies are listed but not shown: they \
         hold personal data beyond the images. <code>verify.json</code> beside this file \
         holds the same verification result.</p>\n</footer>\n</body>\n</html>\n",
        deep = if report.deep {
            ", and downloaded and hashed (--deep)"
        } else {
            ""
        },
    );
    html
}

fn render_header(html: &mut String, report: &AuditReport, session: &str, at: SystemTime) {
    let s = &report.summary;
    let problems = s.problems();
    let verdict = if problems == 0 {
        format!(
            "<p class=\"verdict ok\" id=\"verdict\">All {} files verified: every file is \
             stored exactly as its manifest records it.</p>",
            s.files
        )
    } else {
        format!(
            "<p class=\"verdict bad\" id=\"verdict\">{problems} problem(s) found: {}.</p>",
            escape(&problem_breakdown(report))
        )
    };
    let signatures = if report.signatures_checked {
        "checked with the public key"
    } else {
        "not checked (no public key given)"
    };
    let _ = write!(
        html,
        "<header>\n<h1>KYC evidence pack</h1>\n<p class=\"personal\"><strong>Personal \
         data.</strong> This page holds identity images of a person, by design. It is written \
         readable by its owner only; keep it that way and delete it when no longer \
         needed.</p>\n<dl class=\"fields\">\n<dt>Session</dt><dd class=\"mono\" \
         id=\"session-id\">{session}</dd>\n<dt>Bucket</dt><dd class=\"mono\">{bucket}</dd>\n\
         <dt>Prefix</dt><dd class=\"mono\">{prefix}</dd>\n<dt>Generated at</dt><dd>{at}</dd>\n\
         <dt>Checks</dt><dd>{checks}</dd>\n<dt>Signatures</dt><dd>{signatures}</dd>\n</dl>\n\
         {verdict}\n<table class=\"summary\">\n<tr><th>Attempts</th><th>Decisions</th>\
         <th>Files</th><th>Bytes</th><th>OK</th><th>Missing</th><th>Altered</th>\
         <th>Unreadable</th><th>Unsigned</th><th>Bad signature</th><th>Orphans</th>\
         <th>Gaps</th></tr>\n<tr>",
        session = escape(session),
        bucket = escape(&report.bucket),
        prefix = if report.prefix.is_empty() {
            "(none)".to_string()
        } else {
            escape(&report.prefix)
        },
        at = humantime::format_rfc3339_seconds(at),
        checks = if report.deep {
            "HeadObject (size, version, ETag, S3 checksum), and every file downloaded and its \
             SHA-256 recomputed"
        } else {
            "HeadObject (size, version, ETag, S3 checksum); images downloaded and their \
             SHA-256 recomputed"
        },
    );
    for (n, bad) in [
        (s.attempts, false),
        (s.manifests, false),
        (s.files, false),
        (s.bytes, false),
        (s.ok, false),
        (s.missing, true),
        (s.altered, true),
        (s.unreadable, true),
        (s.unsigned, true),
        (s.bad_signature, true),
        (s.orphans, true),
        (s.gaps, true),
    ] {
        let class = if bad && n > 0 { "num nonzero" } else { "num" };
        let _ = write!(html, "<td class=\"{class}\">{n}</td>");
    }
    html.push_str("</tr>\n</table>\n</header>\n");
}

fn render_problems(html: &mut String, report: &AuditReport) {
    let p = &report.problems;
    let classes: [(&str, &[Problem]); 7] = [
        ("Missing files", &p.missing),
        ("Altered files", &p.altered),
        ("Unreadable manifests", &p.unreadable),
        ("Unsigned manifests", &p.unsigned),
        ("Manifests whose signature fails", &p.bad_signature),
        ("Orphans: objects no manifest lists", &p.orphans),
        ("Gaps: attempt folders without a manifest", &p.gaps),
    ];
    if classes.iter().all(|(_, list)| list.is_empty()) {
        return;
    }
    html.push_str("<section class=\"problems\" id=\"problems\">\n<h2>Problems</h2>\n");
    for (title, list) in classes {
        if list.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<h4>{title} ({})</h4>\n<ul class=\"problem-list\">\n",
            list.len()
        );
        for problem in list {
            let _ = write!(
                html,
                "<li><span class=\"mono\">{}</span>",
                escape(&problem.key)
            );
            if let Some(expected) = &problem.expected {
                let _ = write!(html, "; expected: {}", escape(expected));
            }
            if let Some(found) = &problem.found {
                let _ = write!(html, "; found: {}", escape(found));
            }
            if let Some(manifest) = &problem.manifest {
                let _ = write!(
                    html,
                    "; listed by <span class=\"mono\">{}</span>",
                    escape(manifest)
                );
            }
            html.push_str("</li>\n");
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</section>\n");
}

fn render_decision(
    html: &mut String,
    manifest: &ManifestAudit,
    n: usize,
    total: usize,
    signatures_checked: bool,
    images: &HashMap<ObjectId, String>,
    shown: &mut HashMap<ObjectId, String>,
) {
    let status = manifest
        .decision
        .as_ref()
        .map(|d| d.status.clone())
        .unwrap_or_else(|| "unreadable manifest".into());
    let time = manifest
        .decision
        .as_ref()
        .and_then(|d| d.decision_time.clone())
        .unwrap_or_else(|| "time unknown".into());
    let _ = write!(
        html,
        "<article class=\"decision\" id=\"decision-{n}\">\n<h3>Decision {n} of {total}: \
         <span class=\"status\">{status}</span> at {time}</h3>\n<dl class=\"fields\">\n",
        status = escape(&status),
        time = escape(&time),
    );
    let field = |html: &mut String, label: &str, value: &str| {
        let _ = writeln!(html, "<dt>{label}</dt><dd>{}</dd>", escape(value));
    };
    let none = || "none".to_string();
    if let Some(d) = &manifest.decision {
        field(
            html,
            "Decided by",
            match d.webhook {
                WebhookKind::Decision => "the decision webhook",
                WebhookKind::FullAuto => "a Full Auto result (Essential plan)",
            },
        );
        field(html, "Status", &d.status);
        if let Some(score) = d.decision_score {
            field(html, "Decision score", &score.to_string());
        }
        field(
            html,
            "Code",
            &d.code.map(|c| c.to_string()).unwrap_or_else(none),
        );
        field(html, "Reason", &d.reason.clone().unwrap_or_else(none));
        let reason_code = match &d.reason_code {
            None | Some(serde_json::Value::Null) => none(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        field(html, "Reason code", &reason_code);
        field(
            html,
            "Decision time",
            &d.decision_time.clone().unwrap_or_else(none),
        );
    } else {
        field(html, "Status", "the manifest does not parse: see Problems");
    }
    field(
        html,
        "Archived at",
        &manifest.archived_at.clone().unwrap_or_else(none),
    );
    field(
        html,
        "Schema version",
        &manifest
            .schema_version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".into()),
    );
    let (signature, class) = match manifest.signature {
        SignatureCheck::Valid => ("valid: verified with the public key", "ok"),
        SignatureCheck::Invalid => ("INVALID: does not verify with the public key", "bad"),
        SignatureCheck::Unsigned if signatures_checked => {
            ("MISSING: the manifest is not signed", "bad")
        }
        SignatureCheck::Unsigned => ("not signed", "neutral"),
        SignatureCheck::NotChecked => ("signed; not checked (no public key given)", "neutral"),
    };
    let _ = writeln!(
        html,
        "<dt>Signature</dt><dd><span class=\"result {class}\">{}</span></dd>",
        escape(signature)
    );
    let _ = writeln!(
        html,
        "<dt>Manifest</dt><dd class=\"mono\">{}</dd>\n</dl>",
        escape(&manifest.key)
    );

    if let Some(gone) = &manifest.media_unavailable {
        let _ = writeln!(
            html,
            "<p class=\"unavailable\">No file archived: Veriff answered 404 to {} (the \
             session was deleted at Veriff, or its media are past Veriff's retention).</p>",
            escape(&gone.endpoints.join(" and "))
        );
    }
    if manifest.readable {
        let _ = write!(
            html,
            "<h4>Files ({})</h4>\n<div class=\"files\">\n",
            manifest.files.len()
        );
        for file in &manifest.files {
            render_file(html, file, images, shown);
        }
        html.push_str("</div>\n");
        if let Some(payload) = &manifest.decision_payload {
            html.push_str(
                "<h4>Decision webhook body</h4>\n<p>Kept in the archive; not shown here: it \
                 holds personal data beyond the images.</p>\n",
            );
            html.push_str("<div class=\"files\">\n");
            render_file(html, payload, images, shown);
            html.push_str("</div>\n");
        }
        if !manifest.skipped.is_empty() {
            let _ = write!(
                html,
                "<h4>Not archived ({})</h4>\n<table class=\"skipped\">\n<tr><th>Kind</th>\
                 <th>Media id</th><th>Context</th><th>Reason</th></tr>\n",
                manifest.skipped.len()
            );
            for item in &manifest.skipped {
                let _ = writeln!(
                    html,
                    "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&wire_name(&item.kind)),
                    escape(item.media_id.as_deref().unwrap_or("(none)")),
                    escape(item.context.as_deref().unwrap_or("(none)")),
                    escape(&skip_reason_text(&wire_name(&item.reason))),
                );
            }
            html.push_str("</table>\n");
        }
    }
    html.push_str("</article>\n");
}

fn skip_reason_text(reason: &str) -> String {
    let text = match reason {
        "lower_ranked" => "a better-ranked file of the same kind and context was archived",
        "videos_disabled" => "videos are not archived by configuration",
        "missing_id" => "no media id",
        "unsafe_id" => "the media id is not a safe path segment",
        "missing_context" => "no context",
        "unsafe_context" => "the context is not a safe path segment",
        "duplicate_media_id" => "the same media id was listed earlier",
        "too_large" => "larger than the configured maximum",
        "later_attempt" => "it belongs to a later attempt than the decided one",
        other => return other.to_string(),
    };
    format!("{reason}: {text}")
}

fn render_file(
    html: &mut String,
    file: &FileAudit,
    images: &HashMap<ObjectId, String>,
    shown: &mut HashMap<ObjectId, String>,
) {
    let id = (file.key.clone(), file.version_id.clone());
    let result = wire_name(&file.result);
    let class = if file.result == FileResult::Ok {
        "file"
    } else {
        "file problem"
    };
    let title = match file.kind.as_str() {
        "decision" => "Webhook body".to_string(),
        kind => format!("{}: {}", kind_label(kind), file.context),
    };
    let anchor = format!("file-{}", shown.len() + 1);
    let first = !shown.contains_key(&id);
    let _ = write!(
        html,
        "<figure class=\"{class}\"{anchor_attr}>\n<figcaption>{title}</figcaption>\n",
        anchor_attr = if first {
            format!(" id=\"{anchor}\"")
        } else {
            String::new()
        },
        title = escape(&title),
    );
    let size = size_text(file.size);
    let content_type = if file.content_type.is_empty() {
        "no content type".to_string()
    } else {
        file.content_type.clone()
    };
    match (file.kind.as_str(), images.get(&id), shown.get(&id)) {
        (_, Some(_), Some(earlier)) => {
            let _ = writeln!(
                html,
                "<p class=\"media-line\">The same stored image as <a href=\"#{earlier}\">shown \
                 above</a> (this decision reuses it).</p>"
            );
        }
        (_, Some(data), None) => {
            let _ = writeln!(
                html,
                "<img src=\"{}\" alt=\"{} image, {}\">",
                escape(data),
                escape(&file.context),
                escape(&size)
            );
        }
        ("image", None, _) => {
            let why = match file.result {
                FileResult::Missing => "the object is missing from the archive".to_string(),
                FileResult::Altered => {
                    "the stored object differs from its record, so it is not evidence".to_string()
                }
                FileResult::Ok if inline_mime(file).is_none() => {
                    format!(
                        "its content type ({content_type}) is not an image type a browser shows"
                    )
                }
                FileResult::Ok => "it is too large to embed".to_string(),
            };
            let _ = writeln!(
                html,
                "<p class=\"media-line\">Image ({}), {}: not shown, {}.</p>",
                escape(&content_type),
                escape(&size),
                escape(&why)
            );
        }
        ("video", ..) => {
            let _ = writeln!(
                html,
                "<p class=\"media-line\">Video ({}), {}: a recording of the verification \
                 session, not shown inline; it is in the archive at the key below.</p>",
                escape(&content_type),
                escape(&size)
            );
        }
        ("nfc", ..) => {
            let _ = writeln!(
                html,
                "<p class=\"media-line\">NFC data ({}), {}: data read from the identity \
                 document's chip, not shown; it is in the archive at the key below.</p>",
                escape(&content_type),
                escape(&size)
            );
        }
        ("decision", ..) => {
            let _ = writeln!(
                html,
                "<p class=\"media-line\">Decision webhook body ({}), {}: not shown (personal \
                 data).</p>",
                escape(&content_type),
                escape(&size)
            );
        }
        (kind, ..) => {
            let _ = writeln!(
                html,
                "<p class=\"media-line\">File of kind {} ({}), {}: not shown.</p>",
                escape(kind),
                escape(&content_type),
                escape(&size)
            );
        }
    }
    if first {
        shown.insert(id, anchor);
    }
    let _ = write!(
        html,
        "<dl class=\"fields\">\n<dt>Result</dt><dd><span class=\"result {result}\">{result}\
         </span>{detail}</dd>\n<dt>SHA-256</dt><dd class=\"mono sha256\">{sha}</dd>\n\
         <dt>Size</dt><dd>{size}</dd>\n<dt>S3 key</dt><dd class=\"mono\">{key}</dd>\n\
         <dt>Version</dt><dd class=\"mono\">{version}</dd>\n",
        result = escape(&result),
        detail = file
            .detail
            .as_deref()
            .map(|d| format!(": {}", escape(d)))
            .unwrap_or_default(),
        sha = escape(&file.sha256),
        size = escape(&size),
        key = escape(&file.key),
        version = escape(file.version_id.as_deref().unwrap_or("none recorded")),
    );
    if !file.media_id.is_empty() {
        let _ = writeln!(
            html,
            "<dt>Media id</dt><dd class=\"mono\">{}</dd>",
            escape(&file.media_id)
        );
    }
    let _ = write!(
        html,
        "<dt>Content type</dt><dd>{}</dd>\n</dl>\n</figure>\n",
        escape(&content_type)
    );
}

fn kind_label(kind: &str) -> &str {
    match kind {
        "image" => "Image",
        "video" => "Video",
        "nfc" => "NFC data",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(kind: &str, content_type: &str) -> FileAudit {
        FileAudit {
            key: "p/s/a/k".into(),
            media_id: "m".into(),
            kind: kind.into(),
            context: "face".into(),
            content_type: content_type.into(),
            size: 1,
            sha256: "00".into(),
            version_id: None,
            etag: None,
            s3_checksum: None,
            result: FileResult::Ok,
            detail: None,
        }
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror='a()'> & "q""#),
            "&lt;img src=x onerror=&#39;a()&#39;&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("plain-id_42"), "plain-id_42");
    }

    #[test]
    fn only_images_with_a_plain_image_type_are_inlined() {
        assert_eq!(
            inline_mime(&file("image", "image/jpeg")),
            Some("image/jpeg")
        );
        assert_eq!(
            inline_mime(&file("image", "image/svg+xml")),
            Some("image/svg+xml")
        );
        assert_eq!(inline_mime(&file("image", "")), None);
        assert_eq!(inline_mime(&file("image", "image/")), None);
        assert_eq!(inline_mime(&file("image", "image/png;base64,AAAA")), None);
        assert_eq!(inline_mime(&file("image", "image/png\" onload=\"x")), None);
        assert_eq!(inline_mime(&file("image", "text/html")), None);
        assert_eq!(inline_mime(&file("video", "image/gif")), None);
        assert_eq!(inline_mime(&file("nfc", "image/png")), None);
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(size_text(0), "0 bytes");
        assert_eq!(size_text(999), "999 bytes");
        assert_eq!(size_text(48_213), "48,213 bytes (48.2 kB)");
        assert_eq!(size_text(1_234_567), "1,234,567 bytes (1.2 MB)");
    }

    #[test]
    fn reason_names_are_explained() {
        assert_eq!(
            skip_reason_text("videos_disabled"),
            "videos_disabled: videos are not archived by configuration"
        );
        assert_eq!(skip_reason_text("something_new"), "something_new");
    }
}
