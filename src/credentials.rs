//! The Veriff integration's credentials (API key and shared secrets): where they come from,
//! and how a warm function picks up a rotation without a redeploy.
//!
//! Two sources:
//! - plain environment variables (`VERIFF_API_KEY`, `VERIFF_SHARED_SECRET`): fixed for the
//!   container's life; local runs and tests use them;
//! - an AWS Secrets Manager secret (`VERIFF_SECRET_ARN`), read once at cold start (a failure
//!   fails the init: the function never starts without credentials) and again at most every
//!   `SECRET_REFRESH_SECONDS` while warm; a failed refresh keeps the last good value and
//!   logs a warning.
//!
//! The secret's JSON shape: `{"apiKey": "...", "sharedSecret": "current[,previous]"}`, the
//! shared secrets as `VERIFF_SHARED_SECRET` lists them. Nothing here prints a secret value:
//! [`Secret`] redacts itself, and parse errors name the field, never its content.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use tokio::time::Instant;

use crate::domain::Secret;

/// The integration's API key and shared secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The API key (`X-AUTH-CLIENT`).
    pub api_key: Secret,
    /// Shared secrets: the first signs API requests; any of them authenticates a webhook.
    /// Empty only in [`Credentials::none`].
    pub shared_secrets: Vec<Secret>,
}

/// Why credentials could not be read. Names the field or the AWS error code, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The shared secret list is empty or has an empty entry.
    #[error("{0}: list shared secrets separated by single commas, current first, none empty")]
    BadSharedSecret(&'static str),
    /// The API key is empty.
    #[error("{0}: the API key is empty")]
    EmptyApiKey(&'static str),
    /// The secret's value is not the documented JSON shape.
    #[error(
        "the secret is not {{\"apiKey\": \"...\", \"sharedSecret\": \"current[,previous]\"}}: {0}"
    )]
    Shape(&'static str),
    /// Secrets Manager did not return the secret.
    #[error("GetSecretValue failed: {0}")]
    Unavailable(String),
}

impl Credentials {
    /// Credentials from an API key and a comma-separated shared secret list; `source` names
    /// where they came from in errors (a variable or a JSON field).
    pub fn parse(
        api_key: &str,
        shared_secret: &str,
        source: (&'static str, &'static str),
    ) -> Result<Credentials, CredentialsError> {
        let api_key = api_key.trim();
        if api_key.is_empty() {
            return Err(CredentialsError::EmptyApiKey(source.0));
        }
        let shared_secrets: Vec<Secret> = shared_secret
            .split(',')
            .map(|s| Secret::new(s.trim()))
            .collect();
        if shared_secrets.iter().any(|s| s.expose().is_empty()) {
            return Err(CredentialsError::BadSharedSecret(source.1));
        }
        Ok(Credentials {
            api_key: Secret::new(api_key),
            shared_secrets,
        })
    }

    /// Credentials from a secret's JSON value.
    pub fn from_secret_json(value: &str) -> Result<Credentials, CredentialsError> {
        let json: serde_json::Value =
            serde_json::from_str(value).map_err(|_| CredentialsError::Shape("not JSON"))?;
        let field = |name: &'static str| {
            json.get(name)
                .and_then(|v| v.as_str())
                .ok_or(CredentialsError::Shape(match name {
                    "apiKey" => "no string field apiKey",
                    _ => "no string field sharedSecret",
                }))
        };
        Credentials::parse(
            field("apiKey")?,
            field("sharedSecret")?,
            ("apiKey", "sharedSecret"),
        )
    }

    /// No credentials: authenticates no webhook and signs no request (fails closed). What a
    /// configuration that reads a secret holds until the secret is read at cold start.
    pub fn none() -> Credentials {
        Credentials {
            api_key: Secret::new(""),
            shared_secrets: Vec::new(),
        }
    }

    /// The secret that signs API requests (the first listed); `None` before any is loaded.
    pub fn signing_secret(&self) -> Option<&Secret> {
        self.shared_secrets.first()
    }
}

/// The credentials in force, shared by the webhook check and the Veriff client; replaced
/// as a whole when a refresh reads a new value.
#[derive(Clone)]
pub struct CredentialsHandle(Arc<RwLock<Arc<Credentials>>>);

impl std::fmt::Debug for CredentialsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsHandle(<redacted>)")
    }
}

impl CredentialsHandle {
    /// A handle holding `credentials`.
    pub fn new(credentials: Credentials) -> CredentialsHandle {
        CredentialsHandle(Arc::new(RwLock::new(Arc::new(credentials))))
    }

    /// The credentials in force now.
    pub fn current(&self) -> Arc<Credentials> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `credentials` in force (for every clone of this handle).
    pub fn replace(&self, credentials: Credentials) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(credentials);
    }
}

/// A Secrets Manager secret holding the credentials, and when it was last read.
#[derive(Debug, Clone)]
pub struct SecretSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    refresh_every: Duration,
    last_read: Arc<Mutex<Option<Instant>>>,
}

impl SecretSource {
    /// The secret `secret_id` (`VERIFF_SECRET_ARN`), re-read at most every `refresh_every`.
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        refresh_every: Duration,
    ) -> SecretSource {
        SecretSource {
            client,
            secret_id: secret_id.into(),
            refresh_every,
            last_read: Arc::new(Mutex::new(None)),
        }
    }

    /// Reads the secret now (cold start: a failure must fail the init).
    pub async fn read(&self) -> Result<Credentials, CredentialsError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                CredentialsError::Unavailable(
                    e.code()
                        .map(str::to_string)
                        .unwrap_or_else(|| "no answer from Secrets Manager".into()),
                )
            })?;
        let value = answer
            .secret_string()
            .ok_or(CredentialsError::Shape("no SecretString (a binary secret)"))?;
        let credentials = Credentials::from_secret_json(value)?;
        *self.last_read.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(credentials)
    }

    /// Reads the secret into `handle` if the last read is older than the refresh interval.
    /// A failure keeps the credentials in force and logs a warning.
    pub async fn refresh_if_due(&self, handle: &CredentialsHandle) {
        let due = self
            .last_read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|at| at.elapsed() >= self.refresh_every);
        if !due {
            return;
        }
        match self.read().await {
            Ok(credentials) => {
                if *handle.current() != credentials {
                    tracing::info!(
                        shared_secrets = credentials.shared_secrets.len(),
                        "Veriff credentials changed in Secrets Manager; now in force"
                    );
                }
                handle.replace(credentials);
            }
            Err(error) => {
                // Try again at the next interval, not on every invocation.
                *self.last_read.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                tracing::warn!(
                    error = %error,
                    "could not refresh the Veriff credentials from Secrets Manager; keeping the last good value"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_shape_is_read_and_checked() {
        let c =
            Credentials::from_secret_json(r#"{"apiKey":"k","sharedSecret":"new, old"}"#).unwrap();
        assert_eq!(c.api_key.expose(), "k");
        assert_eq!(c.shared_secrets.len(), 2);
        assert_eq!(c.signing_secret().unwrap().expose(), "new");
        assert!(Credentials::none().signing_secret().is_none());
        for (bad, expected) in [
            ("nope", CredentialsError::Shape("not JSON")),
            (
                r#"{"sharedSecret":"s"}"#,
                CredentialsError::Shape("no string field apiKey"),
            ),
            (
                r#"{"apiKey":"k"}"#,
                CredentialsError::Shape("no string field sharedSecret"),
            ),
            (
                r#"{"apiKey":"k","sharedSecret":7}"#,
                CredentialsError::Shape("no string field sharedSecret"),
            ),
            (
                r#"{"apiKey":" ","sharedSecret":"s"}"#,
                CredentialsError::EmptyApiKey("apiKey"),
            ),
            (
                r#"{"apiKey":"k","sharedSecret":"a,,b"}"#,
                CredentialsError::BadSharedSecret("sharedSecret"),
            ),
            (
                r#"{"apiKey":"k","sharedSecret":""}"#,
                CredentialsError::BadSharedSecret("sharedSecret"),
            ),
        ] {
            assert_eq!(
                Credentials::from_secret_json(bad).unwrap_err(),
                expected,
                "{bad}"
            );
        }
        // Errors never carry a value.
        let e = Credentials::from_secret_json(r#"{"apiKey":"TOPSECRET","sharedSecret":","}"#)
            .unwrap_err();
        assert!(!e.to_string().contains("TOPSECRET"));
    }

    #[test]
    fn a_handle_is_shared_and_redacted() {
        let a = CredentialsHandle::new(Credentials::parse("k1", "s1", ("A", "B")).unwrap());
        let b = a.clone();
        a.replace(Credentials::parse("k2", "s2,s1", ("A", "B")).unwrap());
        assert_eq!(b.current().api_key.expose(), "k2");
        assert_eq!(b.current().shared_secrets.len(), 2);
        assert_eq!(format!("{a:?}"), "CredentialsHandle(<redacted>)");
    }
}
