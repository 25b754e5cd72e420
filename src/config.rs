//! Environment → validated [`Config`], once per container (cold start).
//!
//! Every error names the variable and says how to fix it. This module does no I/O beyond
//! reading the variables it is handed, and never prints a secret: [`Secret`] redacts itself
//! in `Debug`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::allowlist::SourceAllowlist;
use crate::credentials::Credentials;
use crate::domain::{DecisionStatus, is_safe_segment};

/// Where the media metadata of a decision comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSource {
    /// Both endpoints at once: the session listing when it is the decided attempt (NFC
    /// included), else the decided attempt's own listing (the default).
    Combined,
    /// `GET /v1/sessions/{id}/media` only: the session's latest attempt, with `nfcDocuments`.
    Session,
    /// `GET /v1/attempts/{attemptId}/media` only: exactly the decided attempt (no NFC list).
    Attempt,
}

impl MediaSource {
    /// The name used in configuration and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaSource::Combined => "combined",
            MediaSource::Session => "session",
            MediaSource::Attempt => "attempt",
        }
    }
}

/// How the function behind the Function URL handles an archivable decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingest {
    /// Archive while Veriff waits for the answer (the default).
    Direct,
    /// Send one message to the archive queue and answer `queued`; the consumer archives.
    Queue {
        /// The archive queue (`ARCHIVE_QUEUE_URL`).
        url: String,
    },
}

/// The validated configuration of the function (and of the CLI, which reads the same
/// variables), grouped by concern.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Veriff API, and where the integration's credentials come from.
    pub veriff: VeriffSettings,
    /// Where decisions are archived, and which.
    pub archive: ArchiveSettings,
    /// How files are copied: connections, memory, part size.
    pub copy: CopySettings,
    /// What a webhook request may be: its size, its source.
    pub webhook: WebhookSettings,
    /// Archive while Veriff waits, or enqueue (`INGEST_MODE`, `ARCHIVE_QUEUE_URL`).
    pub ingest: Ingest,
    /// The ledger's seal: its schedule, its time-stamping authority.
    pub ledger: LedgerSettings,
    /// Time kept back before the Lambda deadline to abort uploads and answer.
    pub deadline_margin: Duration,
    /// The CloudWatch namespace of the metrics (`METRICS_NAMESPACE`).
    pub metrics_namespace: String,
}

/// The ledger's seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// The seal schedule's interval (`LEDGER_SEAL_SCHEDULE`, the template's `SealSchedule`:
    /// an EventBridge `rate(...)` expression; default `rate(1 hour)`), recorded in each
    /// digest so that `verify` can tell a stale ledger.
    pub seal_interval: Duration,
    /// The RFC 3161 time-stamping authority of the digests (`LEDGER_TSA_URL`), if any.
    pub tsa_url: Option<reqwest::Url>,
}

/// The Veriff API.
#[derive(Debug, Clone)]
pub struct VeriffSettings {
    /// Base URL, without a trailing slash (`VERIFF_API_URL`).
    pub api_url: String,
    /// Where the API key and shared secrets come from.
    pub credentials: CredentialSource,
    /// Whether metadata responses must carry a valid signature (fail closed).
    pub require_response_signature: bool,
    /// Timeout for one metadata request, and for each read of a download.
    pub timeout: Duration,
    /// Attempts per request (and per file copy) before giving up.
    pub max_attempts: u32,
}

/// Where the integration's credentials come from. The credentials in force at run time
/// are not configuration: the app holds them ([`crate::credentials::CredentialsHandle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `VERIFF_API_KEY` and `VERIFF_SHARED_SECRET`: fixed for the container's life.
    Environment(Credentials),
    /// A Secrets Manager secret (`VERIFF_SECRET_ARN`), read at cold start and refreshed.
    SecretsManager(SecretSettings),
}

/// Where and what is archived.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// Target bucket.
    pub bucket: String,
    /// Key prefix, empty or ending in `/`.
    pub prefix: String,
    /// Which media endpoints to read.
    pub media_source: MediaSource,
    /// Decision statuses that are archived; `None` (the variable unset) archives every
    /// status, including ones Veriff may add later.
    pub statuses: Option<BTreeSet<DecisionStatus>>,
    /// Whether videos are archived (first per context).
    pub videos: bool,
    /// Largest file archived; larger announced files are skipped, larger streams fail.
    pub max_file_bytes: u64,
    /// Whether the raw webhook body is stored next to its decision's manifest.
    pub decision_payload: bool,
    /// The KMS key that signs every manifest (`MANIFEST_SIGNING_KEY_ID`); `None`: unsigned.
    pub signing_key_id: Option<String>,
    /// The key of the index by customer (`ARCHIVE_INDEX_KEY`, hex, at least 32 bytes);
    /// `None`: no index is written.
    pub index_key: Option<crate::index::IndexKey>,
}

/// How files are copied.
#[derive(Debug, Clone, Copy)]
pub struct CopySettings {
    /// How many files are copied at once: a cap on connections (`COPY_CONCURRENCY`).
    pub concurrency: usize,
    /// Bytes of copy buffers (part buffers and small files) in the container at once
    /// (`COPY_MEMORY_MIB`).
    pub memory: usize,
    /// Multipart part size; files up to this size go in one PutObject.
    pub part_size: usize,
}

/// What a webhook request may be.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Largest webhook body accepted.
    pub max_body_bytes: usize,
    /// Where webhooks may come from (`ALLOWED_SOURCE_CIDRS`); `None`: anywhere.
    pub allowed_sources: Option<SourceAllowlist>,
}

/// Where the credentials are kept in Secrets Manager, and how often they are re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSettings {
    /// The secret's ARN or name (`VERIFF_SECRET_ARN`).
    pub secret_id: String,
    /// Re-read at most this often while warm (`SECRET_REFRESH_SECONDS`).
    pub refresh_every: Duration,
}

/// A configuration problem, naming the variable and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn err(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// The variables, trimmed, with empty values read as unset.
struct Env<L>(L);

impl<L: Fn(&str) -> Option<String>> Env<L> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str, hint: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| err(name, format!("is required: {hint}")))
    }

    fn int(&self, var: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        parse_int(var, self.get(var), default, min, max)
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        parse_bool(var, self.get(var), default)
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(lookup);
        let veriff = veriff_settings(&env)?;
        let metrics_namespace = parse_namespace(
            env.get("METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.into()),
        )?;
        let archive = archive_settings(&env)?;
        let copy = copy_settings(&env, archive.max_file_bytes)?;
        let webhook = webhook_settings(&env)?;
        let ingest = ingest(&env, archive.decision_payload)?;
        let deadline_margin =
            Duration::from_millis(env.int("DEADLINE_MARGIN_MS", 2_000, 0, 60_000)?);
        let ledger = LedgerSettings {
            seal_interval: parse_rate(env.get("LEDGER_SEAL_SCHEDULE").as_deref())?,
            tsa_url: env
                .get("LEDGER_TSA_URL")
                .map(|raw| parse_http_url("LEDGER_TSA_URL", &raw))
                .transpose()?,
        };
        Ok(Config {
            veriff,
            archive,
            copy,
            webhook,
            ingest,
            ledger,
            deadline_margin,
            metrics_namespace,
        })
    }
}

/// `VERIFF_API_URL`, the credentials (`VERIFF_API_KEY` and `VERIFF_SHARED_SECRET`, or
/// `VERIFF_SECRET_ARN`), and how requests are made.
fn veriff_settings<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
) -> Result<VeriffSettings, ConfigError> {
    let api_url = parse_base_url(
        env.get("VERIFF_API_URL")
            .unwrap_or_else(|| "https://stationapi.veriff.com".into()),
    )?;
    let credentials = credential_source(env)?;
    Ok(VeriffSettings {
        api_url,
        credentials,
        require_response_signature: env.bool("VERIFF_REQUIRE_RESPONSE_SIGNATURE", true)?,
        timeout: Duration::from_millis(env.int("VERIFF_TIMEOUT_MS", 10_000, 100, 300_000)?),
        max_attempts: env.int("VERIFF_MAX_ATTEMPTS", 4, 1, 10)? as u32,
    })
}

/// The credentials from the environment, or the secret that holds them (never both).
fn credential_source<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
) -> Result<CredentialSource, ConfigError> {
    if let Some(id) = env.get("VERIFF_SECRET_ARN") {
        for var in ["VERIFF_API_KEY", "VERIFF_SHARED_SECRET"] {
            if env.get(var).is_some() {
                return Err(err(
                    var,
                    "must be unset with VERIFF_SECRET_ARN: the credentials come from \
                     the secret alone",
                ));
            }
        }
        let settings = parse_secret_settings(&id, env.get("SECRET_REFRESH_SECONDS"))?;
        return Ok(CredentialSource::SecretsManager(settings));
    }
    let api_key = env.required(
        "VERIFF_API_KEY",
        "set it to the integration's API key from the Veriff Customer Portal \
         (or set VERIFF_SECRET_ARN)",
    )?;
    let shared = env.required(
        "VERIFF_SHARED_SECRET",
        "set it to the integration's shared secret key (comma-separated during a \
         rotation), or set VERIFF_SECRET_ARN",
    )?;
    Credentials::parse(
        &api_key,
        &shared,
        ("VERIFF_API_KEY", "VERIFF_SHARED_SECRET"),
    )
    .map(CredentialSource::Environment)
    // The API key is not empty here (`required` refused that): the only failure left is
    // an empty entry in the list of shared secrets.
    .map_err(|_| {
        err(
            "VERIFF_SHARED_SECRET",
            "contains an empty entry: list secrets separated by single commas, current first",
        )
    })
}

/// The bucket, the prefix, what is archived, and how manifests are signed.
fn archive_settings<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
) -> Result<ArchiveSettings, ConfigError> {
    let bucket =
        parse_bucket(env.required("ARCHIVE_BUCKET", "set it to the archive bucket's name")?)?;
    let media_source = match env.get("MEDIA_SOURCE").as_deref().unwrap_or("combined") {
        "combined" => MediaSource::Combined,
        "session" => MediaSource::Session,
        "attempt" => MediaSource::Attempt,
        other => {
            return Err(err(
                "MEDIA_SOURCE",
                format!("unknown value {other:?}: use `combined`, `session` or `attempt`"),
            ));
        }
    };
    Ok(ArchiveSettings {
        bucket,
        prefix: parse_prefix(env.get("ARCHIVE_PREFIX").unwrap_or_default())?,
        media_source,
        statuses: env
            .get("ARCHIVE_STATUSES")
            .map(|list| parse_statuses(&list))
            .transpose()?,
        videos: env.bool("ARCHIVE_VIDEOS", false)?,
        max_file_bytes: env.int("MAX_FILE_MIB", 2048, 1, 5 * 1024 * 1024)? * MIB,
        decision_payload: env.bool("ARCHIVE_DECISION_PAYLOAD", false)?,
        signing_key_id: env
            .get("MANIFEST_SIGNING_KEY_ID")
            .map(|id| parse_key_id(&id))
            .transpose()?,
        index_key: env
            .get("ARCHIVE_INDEX_KEY")
            .map(|hex| parse_index_key(&hex))
            .transpose()?,
    })
}

/// `ARCHIVE_INDEX_KEY`: the index key, hex, at least 32 bytes.
pub fn parse_index_key(hex: &str) -> Result<crate::index::IndexKey, ConfigError> {
    crate::index::IndexKey::from_hex(hex).map_err(|e| {
        err(
            "ARCHIVE_INDEX_KEY",
            format!("{e} (generate one with `openssl rand -hex 32`)"),
        )
    })
}

/// Connections, memory and part size of the copies, checked against S3's part limit and
/// the function's memory.
fn copy_settings<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
    max_file_bytes: u64,
) -> Result<CopySettings, ConfigError> {
    let concurrency = env.int("COPY_CONCURRENCY", 16, 1, 64)? as usize;
    let memory_mib = env.int("COPY_MEMORY_MIB", 64, 5, 10_240)?;
    let part_size = (env.int("PART_SIZE_MIB", 8, 5, 512)? * MIB) as usize;
    check_part_count(max_file_bytes, part_size)?;
    check_memory(
        memory_mib,
        part_size,
        env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
    )?;
    Ok(CopySettings {
        concurrency,
        memory: (memory_mib * MIB) as usize,
        part_size,
    })
}

/// The body limit and the source allowlist of webhook requests.
fn webhook_settings<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
) -> Result<WebhookSettings, ConfigError> {
    let allowed_sources = env
        .get("ALLOWED_SOURCE_CIDRS")
        .map(|list| {
            SourceAllowlist::parse(&list).map_err(|e| {
                err(
                    "ALLOWED_SOURCE_CIDRS",
                    format!(
                        "{e}; give comma-separated IPv4 and IPv6 CIDRs, or leave it empty \
                         to accept any source"
                    ),
                )
            })
        })
        .transpose()?;
    Ok(WebhookSettings {
        max_body_bytes: (env.int("MAX_BODY_KIB", 256, 1, 6 * 1024)? * 1024) as usize,
        allowed_sources,
    })
}

/// `INGEST_MODE` with its queue. A queue message never holds the webhook body, so keeping
/// bodies (`ARCHIVE_DECISION_PAYLOAD`) needs direct mode.
fn ingest<L: Fn(&str) -> Option<String>>(
    env: &Env<L>,
    decision_payload: bool,
) -> Result<Ingest, ConfigError> {
    let queue_url = env
        .get("ARCHIVE_QUEUE_URL")
        .map(|url| parse_queue_url(&url))
        .transpose()?;
    match env.get("INGEST_MODE").as_deref().unwrap_or("direct") {
        "direct" => Ok(Ingest::Direct),
        "queue" => {
            let url = queue_url.ok_or_else(|| {
                err(
                    "ARCHIVE_QUEUE_URL",
                    "is required with INGEST_MODE=queue: set it to the archive queue's URL",
                )
            })?;
            if decision_payload {
                return Err(err(
                    "ARCHIVE_DECISION_PAYLOAD",
                    "cannot be true with INGEST_MODE=queue: a queue message never holds the \
                     webhook body, so it cannot be stored; use INGEST_MODE=direct to keep bodies",
                ));
            }
            Ok(Ingest::Queue { url })
        }
        other => Err(err(
            "INGEST_MODE",
            format!("unknown value {other:?}: use `direct` or `queue`"),
        )),
    }
}

const MIB: u64 = 1024 * 1024;

/// An SQS queue URL: `https://` (or `http://` for a local server), no credentials, query or
/// fragment.
fn parse_queue_url(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let valid = rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or("");
        !host.is_empty()
            && rest.contains('/')
            && !rest.contains(['?', '#', '@'])
            && !rest.chars().any(char::is_whitespace)
    });
    if !valid {
        return Err(err(
            "ARCHIVE_QUEUE_URL",
            "is not a queue URL: expected https://sqs.<region>.amazonaws.com/<account>/<name>",
        ));
    }
    Ok(url.to_string())
}

/// S3's limit on the parts of one multipart upload.
pub const MAX_PARTS: u64 = 10_000;

/// Memory a function needs besides the part buffers (runtime, clients, small buffers), as
/// measured by the benchmark's peak RSS (about 20 MiB) with headroom.
pub const BASELINE_MEMORY_MIB: u64 = 64;

impl ArchiveSettings {
    /// Whether a decision with this status is archived (`ARCHIVE_STATUSES`): the one rule
    /// the webhook, the queue consumer and the backfill apply. An unknown status (one
    /// Veriff may add later) is archived only when `ARCHIVE_STATUSES` is unset ("all").
    pub fn archives(&self, status: &str) -> bool {
        match (&self.statuses, DecisionStatus::parse(status)) {
            (None, _) => true,
            (Some(set), Some(status)) => set.contains(&status),
            (Some(_), None) => false,
        }
    }
}

/// The largest file must fit in S3's 10,000 parts.
fn check_part_count(max_file_bytes: u64, part_size: usize) -> Result<(), ConfigError> {
    let parts = max_file_bytes.div_ceil(part_size as u64);
    if parts > MAX_PARTS {
        return Err(err(
            "MAX_FILE_MIB",
            format!(
                "MAX_FILE_MIB / PART_SIZE_MIB needs {parts} parts, above S3's {MAX_PARTS}: \
                 raise PART_SIZE_MIB to at least {} or lower MAX_FILE_MIB",
                max_file_bytes.div_ceil(MAX_PARTS * MIB)
            ),
        ));
    }
    Ok(())
}

/// The copy budget must hold one part, and fit the function's memory beside the runtime
/// (Lambda sets `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; elsewhere there is nothing to check
/// against).
fn check_memory(
    copy_memory_mib: u64,
    part_size: usize,
    function_memory_mib: Option<String>,
) -> Result<(), ConfigError> {
    let part_mib = part_size as u64 / MIB;
    if copy_memory_mib < part_mib {
        return Err(err(
            "COPY_MEMORY_MIB",
            format!(
                "COPY_MEMORY_MIB = {copy_memory_mib} MiB cannot hold one part of PART_SIZE_MIB = \
                 {part_mib} MiB: raise COPY_MEMORY_MIB or lower PART_SIZE_MIB (two parts per \
                 large file let reading and uploading overlap)"
            ),
        ));
    }
    let Some(memory) = function_memory_mib.and_then(|m| m.parse::<u64>().ok()) else {
        return Ok(());
    };
    if copy_memory_mib + BASELINE_MEMORY_MIB > memory {
        return Err(err(
            "COPY_MEMORY_MIB",
            format!(
                "COPY_MEMORY_MIB = {copy_memory_mib} MiB of copy buffers, plus \
                 {BASELINE_MEMORY_MIB} MiB for the runtime, exceeds the function's {memory} MiB \
                 (AWS_LAMBDA_FUNCTION_MEMORY_SIZE): lower COPY_MEMORY_MIB, or give the \
                 function more memory"
            ),
        ));
    }
    Ok(())
}

fn parse_base_url(raw: String) -> Result<String, ConfigError> {
    parse_http_url("VERIFF_API_URL", &raw)?;
    Ok(raw.trim_end_matches('/').to_string())
}

/// An http(s) URL with a host, without credentials, a query or a fragment.
pub fn parse_http_url(var: &'static str, raw: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(raw)
        .map_err(|e| err(var, format!("not a URL ({e}): use e.g. https://host/path")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(err(var, "must be an http(s) URL with a host"));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(err(
            var,
            "must not carry credentials, a query or a fragment",
        ));
    }
    Ok(url)
}

/// `LEDGER_SEAL_SCHEDULE`: an EventBridge `rate(<n> <unit>)` expression (minutes, hours or
/// days, 1 minute to 7 days); unset: `rate(1 hour)`.
pub fn parse_rate(raw: Option<&str>) -> Result<Duration, ConfigError> {
    let var = "LEDGER_SEAL_SCHEDULE";
    let Some(raw) = raw else {
        return Ok(Duration::from_secs(3600));
    };
    let bad = || {
        err(
            var,
            format!("{raw:?} is not a rate expression: use e.g. rate(1 hour) or rate(15 minutes)"),
        )
    };
    let inner = raw
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (n, unit) = inner.split_once(' ').ok_or_else(bad)?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if !(60..=7 * 86_400).contains(&secs) {
        return Err(err(var, "must be from 1 minute to 7 days"));
    }
    Ok(Duration::from_secs(secs))
}

/// A KMS key id, ARN or alias: printable ASCII without spaces, at most 2,048 characters.
fn parse_key_id(raw: &str) -> Result<String, ConfigError> {
    let ok = raw.len() <= 2048 && raw.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(err(
            "MANIFEST_SIGNING_KEY_ID",
            "is not a KMS key id, key ARN or alias ARN (printable characters, no spaces)",
        ));
    }
    Ok(raw.to_string())
}

/// `VERIFF_SECRET_ARN` (an ARN or a name) and `SECRET_REFRESH_SECONDS` (1-3600, default
/// 300).
fn parse_secret_settings(id: &str, refresh: Option<String>) -> Result<SecretSettings, ConfigError> {
    let ok = id.len() <= 2048 && id.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(err(
            "VERIFF_SECRET_ARN",
            "is not a secret ARN or name (printable characters, no spaces)",
        ));
    }
    let seconds = parse_int("SECRET_REFRESH_SECONDS", refresh, 300, 1, 3600)?;
    Ok(SecretSettings {
        secret_id: id.to_string(),
        refresh_every: Duration::from_secs(seconds),
    })
}

/// The default CloudWatch namespace of the metrics.
pub const DEFAULT_METRICS_NAMESPACE: &str = "VeriffArchiver";

/// A CloudWatch namespace: 1-255 of `A-Z a-z 0-9 . - _ / # :`, not starting with `AWS/`.
fn parse_namespace(raw: String) -> Result<String, ConfigError> {
    let ok = (1..=255).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/#:".contains(&b))
        && !raw.starts_with("AWS/");
    if !ok {
        return Err(err(
            "METRICS_NAMESPACE",
            "is not a CloudWatch namespace (1-255 of A-Z a-z 0-9 . - _ / # :, not AWS/...)",
        ));
    }
    Ok(raw)
}

fn parse_bucket(raw: String) -> Result<String, ConfigError> {
    let ok = (3..=63).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && raw.as_bytes()[0].is_ascii_alphanumeric()
        && raw.as_bytes()[raw.len() - 1].is_ascii_alphanumeric();
    if !ok {
        return Err(err(
            "ARCHIVE_BUCKET",
            "is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' or '.')",
        ));
    }
    Ok(raw)
}

/// `ARCHIVE_PREFIX` as the function uses it: empty, or safe segments each followed by `/`
/// (`veriff/decisions/`); leading and trailing slashes are trimmed. The CLI's `--prefix`
/// goes through the same rule.
pub fn parse_prefix(raw: String) -> Result<String, ConfigError> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.split('/').all(is_safe_segment) {
        return Err(err(
            "ARCHIVE_PREFIX",
            "each '/'-separated segment must be 1-128 characters of A-Z a-z 0-9 '-' '_' \
             (e.g. `veriff/decisions/`)",
        ));
    }
    Ok(format!("{trimmed}/"))
}

fn parse_statuses(raw: &str) -> Result<BTreeSet<DecisionStatus>, ConfigError> {
    let mut set = BTreeSet::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status = DecisionStatus::parse(name).ok_or_else(|| {
            err(
                "ARCHIVE_STATUSES",
                format!(
                    "unknown status {name:?}: use any of approved, declined, \
                     resubmission_requested, review, expired, abandoned"
                ),
            )
        })?;
        set.insert(status);
    }
    if set.is_empty() {
        return Err(err(
            "ARCHIVE_STATUSES",
            "lists no status; unset it to archive all",
        ));
    }
    Ok(set)
}

fn parse_bool(var: &'static str, raw: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(err(
            var,
            format!("{other:?} is not a boolean: use true or false"),
        )),
    }
}

fn parse_int(
    var: &'static str,
    raw: Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let value: u64 = raw
        .parse()
        .map_err(|_| err(var, format!("{raw:?} is not a whole number")))?;
    if !(min..=max).contains(&value) {
        return Err(err(
            var,
            format!("{value} is out of range: use {min} to {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = [
            ("VERIFF_API_KEY", "key"),
            ("VERIFF_SHARED_SECRET", "secret"),
            ("ARCHIVE_BUCKET", "evidence-bucket"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_production_values() {
        let c = config(&[]).unwrap();
        assert_eq!(c.veriff.api_url, "https://stationapi.veriff.com");
        assert_eq!(c.archive.media_source, MediaSource::Combined);
        assert_eq!(c.archive.statuses, None);
        assert!(c.veriff.require_response_signature);
        assert!(!c.archive.decision_payload);
        assert_eq!(c.archive.signing_key_id, None);
        assert!(!c.archive.videos);
        assert_eq!(c.copy.concurrency, 16);
        assert_eq!(c.copy.memory, 64 * 1024 * 1024);
        assert_eq!(c.copy.part_size, 8 * 1024 * 1024);
        assert_eq!(c.archive.prefix, "");
        assert_eq!(c.ingest, Ingest::Direct);
        assert!(matches!(
            c.veriff.credentials,
            CredentialSource::Environment(_)
        ));
        assert_eq!(c.metrics_namespace, "VeriffArchiver");
    }

    #[test]
    fn credentials_come_from_the_environment_or_a_secret_never_both() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:veriff-AbCdEf";
        let only_secret = |extra: &[(&str, &str)]| {
            let mut env: HashMap<String, String> = [
                ("ARCHIVE_BUCKET", "evidence-bucket"),
                ("VERIFF_SECRET_ARN", arn),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                env.insert(k.to_string(), v.to_string());
            }
            Config::from_lookup(|k| env.get(k).cloned())
        };
        let c = only_secret(&[]).unwrap();
        let CredentialSource::SecretsManager(settings) = c.veriff.credentials.clone() else {
            panic!("the secret")
        };
        assert_eq!(settings.secret_id, arn);
        assert_eq!(settings.refresh_every, Duration::from_secs(300));
        let c = only_secret(&[("SECRET_REFRESH_SECONDS", "60")]).unwrap();
        assert_eq!(
            c.veriff.credentials,
            CredentialSource::SecretsManager(SecretSettings {
                secret_id: arn.into(),
                refresh_every: Duration::from_secs(60)
            })
        );
        for (var, value) in [
            ("VERIFF_API_KEY", "k"),
            ("VERIFF_SHARED_SECRET", "s"),
            ("SECRET_REFRESH_SECONDS", "0"),
            ("VERIFF_SECRET_ARN", "with space"),
        ] {
            let e = only_secret(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{e}");
        }
        for (var, value) in [
            ("METRICS_NAMESPACE", "AWS/Lambda"),
            ("METRICS_NAMESPACE", "bad space"),
        ] {
            assert_eq!(config(&[(var, value)]).unwrap_err().var, var);
        }
        assert_eq!(
            config(&[("METRICS_NAMESPACE", "Kyc/Archive")])
                .unwrap()
                .metrics_namespace,
            "Kyc/Archive"
        );
    }

    #[test]
    fn media_sources_are_named_as_configured() {
        for name in ["combined", "session", "attempt"] {
            let c = config(&[("MEDIA_SOURCE", name)]).unwrap();
            assert_eq!(c.archive.media_source.as_str(), name);
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::new("hunter2-shared");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        let c = config(&[
            ("VERIFF_API_KEY", "api-key-0xDEAD"),
            ("VERIFF_SHARED_SECRET", "shared-0xBEEF,old-0xF00D"),
        ])
        .unwrap();
        let debug = format!("{c:?}");
        for value in ["0xDEAD", "0xBEEF", "0xF00D"] {
            assert!(!debug.contains(value), "{value} in {debug}");
        }
    }

    #[test]
    fn webhook_bodies_are_limited_in_kib() {
        assert_eq!(config(&[]).unwrap().webhook.max_body_bytes, 256 * 1024);
        let c = config(&[("MAX_BODY_KIB", "6144")]).unwrap();
        assert_eq!(
            c.webhook.max_body_bytes,
            6 * 1024 * 1024,
            "6 MiB: Lambda's payload limit"
        );
        let e = config(&[("MAX_BODY_KIB", "6145")]).unwrap_err();
        assert_eq!(e.var, "MAX_BODY_KIB");
    }

    #[test]
    fn allowed_source_cidrs_is_optional_and_an_invalid_list_names_the_variable() {
        assert_eq!(config(&[]).unwrap().webhook.allowed_sources, None);
        assert_eq!(
            config(&[("ALLOWED_SOURCE_CIDRS", "  ")])
                .unwrap()
                .webhook
                .allowed_sources,
            None,
            "empty: any source"
        );
        let list = config(&[("ALLOWED_SOURCE_CIDRS", "18.98.6.64/27, 2001:db8::/32")])
            .unwrap()
            .webhook
            .allowed_sources
            .expect("a list");
        assert_eq!(list.ranges().len(), 2);
        assert!(list.allows("2001:db8::1".parse().unwrap()));
        for (bad, says) in [
            ("18.98.6.64/33", "is not an IPv4 or IPv6 address or CIDR"),
            ("18.98.6.64/27,,1.2.3.4", "entry 2 is empty"),
            ("18.98.6.70/27", "did you mean 18.98.6.64/27?"),
            ("veriff.com", "\"veriff.com\""),
        ] {
            let e = config(&[("ALLOWED_SOURCE_CIDRS", bad)]).unwrap_err();
            assert_eq!(e.var, "ALLOWED_SOURCE_CIDRS", "{bad}");
            let message = e.to_string();
            assert!(message.starts_with("ALLOWED_SOURCE_CIDRS: "), "{message}");
            assert!(message.contains(says), "{bad}: {message}");
        }
    }

    #[test]
    fn queue_mode_needs_a_queue_and_keeps_no_body() {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/archive";
        let c = config(&[("INGEST_MODE", "queue"), ("ARCHIVE_QUEUE_URL", url)]).unwrap();
        assert_eq!(c.ingest, Ingest::Queue { url: url.into() });
        let local = "http://127.0.0.1:4566/123456789012/archive";
        assert!(config(&[("INGEST_MODE", "queue"), ("ARCHIVE_QUEUE_URL", local)]).is_ok());
        let e = config(&[("INGEST_MODE", "queue")]).unwrap_err();
        assert_eq!(e.var, "ARCHIVE_QUEUE_URL");
        let e = config(&[
            ("INGEST_MODE", "queue"),
            ("ARCHIVE_QUEUE_URL", url),
            ("ARCHIVE_DECISION_PAYLOAD", "true"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "ARCHIVE_DECISION_PAYLOAD");
        // The same settings are fine in direct mode (the consumer function's case).
        assert!(
            config(&[
                ("ARCHIVE_QUEUE_URL", url),
                ("ARCHIVE_DECISION_PAYLOAD", "true")
            ])
            .is_ok()
        );
        for bad in [
            "sqs.eu-west-1.amazonaws.com/1/q",
            "https://",
            "https://h/q?x=1",
            "https://u@h/q",
            "ftp://h/q",
            "https://host",
        ] {
            let e = config(&[("ARCHIVE_QUEUE_URL", bad)]).unwrap_err();
            assert_eq!(e.var, "ARCHIVE_QUEUE_URL", "{bad}");
        }
    }

    #[test]
    fn secrets_rotate_and_never_print() {
        let c = config(&[("VERIFF_SHARED_SECRET", "new-one, old-one")]).unwrap();
        let CredentialSource::Environment(credentials) = c.veriff.credentials.clone() else {
            panic!("from the environment")
        };
        assert_eq!(credentials.shared_secrets.len(), 2);
        assert_eq!(credentials.shared_secrets[0].expose(), "new-one");
        let printed = format!("{c:?}");
        assert!(!printed.contains("new-one") && !printed.contains("old-one"));
        assert!(!printed.contains("\"key\""));
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            ("MEDIA_SOURCE", "both"),
            ("ARCHIVE_STATUSES", "approved,maybe"),
            ("COPY_CONCURRENCY", "0"),
            ("COPY_MEMORY_MIB", "4"),
            ("PART_SIZE_MIB", "4"),
            ("ARCHIVE_PREFIX", "../up"),
            ("ARCHIVE_BUCKET", "Bad_Bucket"),
            ("VERIFF_API_URL", "ftp://x"),
            ("ARCHIVE_VIDEOS", "perhaps"),
            ("VERIFF_SHARED_SECRET", "a,,b"),
            ("VERIFF_REQUIRE_RESPONSE_SIGNATURE", "maybe"),
            ("ARCHIVE_DECISION_PAYLOAD", "2"),
            ("MANIFEST_SIGNING_KEY_ID", "alias/with space"),
            ("INGEST_MODE", "sqs"),
            ("LEDGER_SEAL_SCHEDULE", "cron(0 * * * ? *)"),
            ("LEDGER_TSA_URL", "ftp://tsa"),
            ("ARCHIVE_INDEX_KEY", "abcd"),
        ] {
            let e = config(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{e}");
        }
        let missing = Config::from_lookup(|_| None).unwrap_err();
        assert_eq!(missing.var, "VERIFF_API_KEY");
    }

    #[test]
    fn the_index_key_is_hex_of_at_least_32_bytes_or_unset() {
        assert!(config(&[]).unwrap().archive.index_key.is_none());
        let key = "ab".repeat(32);
        assert!(
            config(&[("ARCHIVE_INDEX_KEY", &key)])
                .unwrap()
                .archive
                .index_key
                .is_some()
        );
        for bad in ["ab".repeat(31), "zz".repeat(32)] {
            let e = config(&[("ARCHIVE_INDEX_KEY", &bad)]).unwrap_err();
            assert_eq!(e.var, "ARCHIVE_INDEX_KEY");
            assert!(e.to_string().contains("openssl rand -hex 32"), "{e}");
        }
    }

    #[test]
    fn the_seal_schedule_is_a_rate_from_a_minute_to_a_week() {
        let rate = |raw: &str| {
            config(&[("LEDGER_SEAL_SCHEDULE", raw)]).map(|c| c.ledger.seal_interval.as_secs())
        };
        let defaults = config(&[]).unwrap().ledger;
        assert_eq!(defaults.seal_interval, Duration::from_secs(3600));
        assert_eq!(defaults.tsa_url, None);
        assert_eq!(rate("rate(1 hour)").unwrap(), 3600);
        assert_eq!(rate("rate(15 minutes)").unwrap(), 900);
        assert_eq!(rate("rate(1 minute)").unwrap(), 60);
        assert_eq!(rate("rate(2 hours)").unwrap(), 7200);
        assert_eq!(rate("rate(1 day)").unwrap(), 86_400);
        assert_eq!(rate("rate(7 days)").unwrap(), 7 * 86_400);
        for bad in [
            "rate(0 minutes)",
            "rate(8 days)",
            "rate(1 week)",
            "rate(1hour)",
            "rate(x hours)",
            "1 hour",
            "rate(1 hour",
            "rate(18446744073709551615 days)",
            "cron(0 * * * ? *)",
        ] {
            let e = rate(bad).unwrap_err();
            assert_eq!(e.var, "LEDGER_SEAL_SCHEDULE", "{bad}");
        }
    }

    #[test]
    fn the_tsa_url_is_an_http_url_without_credentials_query_or_fragment() {
        let url = |raw: &str| config(&[("LEDGER_TSA_URL", raw)]).map(|c| c.ledger.tsa_url);
        assert_eq!(
            url("https://freetsa.org/tsr").unwrap().unwrap().as_str(),
            "https://freetsa.org/tsr"
        );
        assert!(url("http://127.0.0.1:9/").unwrap().is_some());
        for bad in [
            "ftp://tsa",
            "https://u:p@tsa/",
            "https://tsa/?q=1",
            "https://tsa/#f",
            "tsa",
        ] {
            assert_eq!(url(bad).unwrap_err().var, "LEDGER_TSA_URL", "{bad}");
        }
    }

    #[test]
    fn the_veriff_url_is_an_http_origin_without_credentials_query_or_fragment() {
        let url = |raw: &str| config(&[("VERIFF_API_URL", raw)]).map(|c| c.veriff.api_url);
        assert_eq!(
            url("https://stationapi.veriff.com/").unwrap(),
            "https://stationapi.veriff.com"
        );
        assert_eq!(
            url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        // Each fault alone is refused.
        for bad in [
            "ftp://stationapi.veriff.com",
            "mailto:ops@example.com",
            "https://stationapi.veriff.com?x=1",
            "https://stationapi.veriff.com#top",
            "https://user@stationapi.veriff.com",
            "https://:password@stationapi.veriff.com",
            "not a url",
        ] {
            let e = url(bad).unwrap_err();
            assert_eq!(e.var, "VERIFF_API_URL", "{bad}");
            assert!(!e.to_string().contains("password@"), "{e}");
        }
    }

    #[test]
    fn names_and_ids_are_accepted_up_to_their_length_limits_and_no_further() {
        let key =
            |id: &str| config(&[("MANIFEST_SIGNING_KEY_ID", id)]).map(|c| c.archive.signing_key_id);
        assert_eq!(
            key("alias/evidence").unwrap().as_deref(),
            Some("alias/evidence")
        );
        let longest = "k".repeat(2048);
        assert_eq!(key(&longest).unwrap(), Some(longest.clone()));
        assert!(key(&"k".repeat(2049)).is_err());

        let secret = |id: &str| {
            let env: HashMap<&str, &str> = [
                ("ARCHIVE_BUCKET", "evidence-bucket"),
                ("VERIFF_SECRET_ARN", id),
            ]
            .into();
            Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).map(|c| {
                match c.veriff.credentials {
                    CredentialSource::SecretsManager(s) => Some(s.secret_id),
                    CredentialSource::Environment(_) => None,
                }
            })
        };
        assert_eq!(secret(&longest).unwrap(), Some(longest.clone()));
        assert_eq!(
            secret(&"k".repeat(2049)).unwrap_err().var,
            "VERIFF_SECRET_ARN"
        );

        let namespace = |n: &str| config(&[("METRICS_NAMESPACE", n)]).map(|c| c.metrics_namespace);
        assert_eq!(namespace("K").unwrap(), "K");
        assert_eq!(namespace(&"n".repeat(255)).unwrap(), "n".repeat(255));
        assert!(namespace(&"n".repeat(256)).is_err());

        let bucket = |b: &str| config(&[("ARCHIVE_BUCKET", b)]).map(|c| c.archive.bucket);
        assert_eq!(bucket("abc").unwrap(), "abc");
        assert_eq!(bucket(&"b".repeat(63)).unwrap(), "b".repeat(63));
        for bad in [
            "ab",
            &"b".repeat(64),
            "-abc",
            "abc-",
            ".abc",
            "abc.",
            "aBc",
            "a_c",
        ] {
            assert_eq!(bucket(bad).unwrap_err().var, "ARCHIVE_BUCKET", "{bad}");
        }
    }

    #[test]
    fn unknown_statuses_are_archived_only_when_the_list_is_unset() {
        let all = config(&[]).unwrap().archive;
        assert!(all.archives("approved_with_conditions"));
        assert!(all.archives("declined"));
        let some = config(&[("ARCHIVE_STATUSES", "approved, declined")])
            .unwrap()
            .archive;
        assert!(!some.archives("approved_with_conditions"));
        assert!(some.archives("declined"));
        assert!(!some.archives("review"));
        assert!(
            !some.archives("Declined"),
            "statuses are Veriff's exact names"
        );
    }

    #[test]
    fn settings_are_checked_against_each_other() {
        // 2 GiB in 5 MiB parts needs 410 parts: fine. 5 TiB in 5 MiB parts does not fit.
        assert!(config(&[("MAX_FILE_MIB", "2048"), ("PART_SIZE_MIB", "5")]).is_ok());
        let e = config(&[("MAX_FILE_MIB", "5242880"), ("PART_SIZE_MIB", "5")]).unwrap_err();
        assert_eq!(e.var, "MAX_FILE_MIB");
        assert!(
            e.problem.contains("PART_SIZE_MIB") && e.problem.contains("525"),
            "{e}"
        );
        // Exactly 10,000 parts is allowed; one more MiB is not.
        assert!(config(&[("MAX_FILE_MIB", "50000"), ("PART_SIZE_MIB", "5")]).is_ok());
        assert!(config(&[("MAX_FILE_MIB", "50001"), ("PART_SIZE_MIB", "5")]).is_err());

        let memory = |mib: &str, budget: &str, part: &str| {
            config(&[
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mib),
                ("COPY_MEMORY_MIB", budget),
                ("PART_SIZE_MIB", part),
            ])
        };
        assert!(
            memory("256", "64", "8").is_ok(),
            "the template's defaults fit"
        );
        assert!(
            config(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).is_ok(),
            "64 + 64 = 128"
        );
        // 192 + 64 = 256 fits exactly; 193 + 64 does not.
        assert!(memory("256", "192", "8").is_ok());
        let e = memory("256", "193", "8").unwrap_err();
        assert_eq!(e.var, "COPY_MEMORY_MIB");
        assert!(e.problem.contains("256 MiB"), "{e}");
        // The budget must hold one part.
        let e = memory("1024", "16", "32").unwrap_err();
        assert_eq!(e.var, "COPY_MEMORY_MIB");
        assert!(e.problem.contains("PART_SIZE_MIB"), "{e}");
        assert!(memory("1024", "32", "32").is_ok());
        // COPY_CONCURRENCY is a cap on connections only: it no longer multiplies memory.
        assert!(
            config(&[
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
                ("COPY_CONCURRENCY", "64"),
                ("PART_SIZE_MIB", "32")
            ])
            .is_ok()
        );
        assert!(
            memory("not-a-number", "512", "512").is_ok(),
            "unknown memory: no check"
        );
    }

    #[test]
    fn prefix_is_normalised() {
        assert_eq!(
            config(&[("ARCHIVE_PREFIX", "/veriff/kyc")])
                .unwrap()
                .archive
                .prefix,
            "veriff/kyc/"
        );
        assert_eq!(
            config(&[("ARCHIVE_PREFIX", "veriff/")])
                .unwrap()
                .archive
                .prefix,
            "veriff/"
        );
    }
}
