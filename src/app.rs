//! The app: everything built once per process from the configuration (the credentials in
//! force, the Veriff client, the S3 store, the archiver, and the optional signer, queue,
//! secret and metrics), by one builder that the Lambda's `main`, the CLI and the tests
//! share. The events it handles are in [`crate::handler`].

use std::sync::Arc;

use crate::Config;
use crate::archive::Archiver;
use crate::aws::AwsClients;
use crate::config::{CredentialSource, Ingest};
use crate::credentials::{Credentials, CredentialsError, CredentialsHandle, SecretSource};
use crate::ledger::stamp::Timestamper;
use crate::ledger::{SealSettings, Sealer};
use crate::metrics::Metrics;
use crate::queue::DecisionQueue;
use crate::signing::ManifestSigner;
use crate::store::Store;
use crate::veriff::{RateLimiter, VeriffClient};

/// The function's state, built once per container (or once per CLI run).
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) credentials: CredentialsHandle,
    pub(crate) veriff: VeriffClient,
    pub(crate) archiver: Archiver,
    pub(crate) queue: Option<DecisionQueue>,
    pub(crate) metrics: Option<Metrics>,
    pub(crate) secret: Option<SecretSource>,
    pub(crate) sealer: Sealer,
}

/// Why the app could not be built. Names the part and the variable, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Veriff HTTP client (TLS, connection pool) could not be built.
    #[error("Veriff HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The credentials could not be read from Secrets Manager at start.
    #[error("VERIFF_SECRET_ARN: {0}")]
    Credentials(#[from] CredentialsError),
    /// The configuration needs an AWS client the builder was not given.
    #[error("{needed_by} is set, but no {client} client was given to the app")]
    MissingClient {
        /// The client (`KMS`, `SQS`, `Secrets Manager`).
        client: &'static str,
        /// The variable that needs it.
        needed_by: &'static str,
    },
}

/// Builds an [`App`]: the configuration and an S3 client, plus the AWS clients the
/// configuration needs (KMS for `MANIFEST_SIGNING_KEY_ID`, SQS for queue mode, Secrets
/// Manager for `VERIFF_SECRET_ARN`).
#[derive(Debug)]
pub struct AppBuilder {
    config: Config,
    s3: aws_sdk_s3::Client,
    kms: Option<aws_sdk_kms::Client>,
    sqs: Option<aws_sdk_sqs::Client>,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    metrics: Option<Metrics>,
    veriff_rate: Option<f64>,
    queue_url: Option<String>,
}

impl App {
    /// A builder for `config`, writing through `s3`.
    pub fn builder(config: Config, s3: aws_sdk_s3::Client) -> AppBuilder {
        AppBuilder {
            config,
            s3,
            kms: None,
            sqs: None,
            secrets: None,
            metrics: None,
            veriff_rate: None,
            queue_url: None,
        }
    }

    /// A builder for `config` with every AWS client of `clients` (the Lambda, the CLI).
    pub fn with_aws(config: Config, clients: AwsClients) -> AppBuilder {
        App::builder(config, clients.s3)
            .kms(clients.kms)
            .sqs(clients.sqs)
            .secrets(clients.secrets)
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The archiver every entry point shares.
    pub fn archiver(&self) -> &Archiver {
        &self.archiver
    }

    /// The Veriff client (decisions and attempts for the CLI's backfill).
    pub fn veriff(&self) -> &VeriffClient {
        &self.veriff
    }

    /// The ledger's sealer (the Scheduled Event, and tests).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The archive queue, in queue mode (or when the CLI enqueues).
    pub fn queue(&self) -> Option<&DecisionQueue> {
        self.queue.as_ref()
    }

    /// The same app, publishing one EMF record set per invocation with `metrics` (tests
    /// collect them; `main` gives the builder stdout's).
    pub fn with_metrics(mut self, metrics: Option<Metrics>) -> App {
        self.metrics = metrics;
        self
    }
}

impl AppBuilder {
    /// Signs manifests through `kms` when `MANIFEST_SIGNING_KEY_ID` is set.
    pub fn kms(mut self, kms: aws_sdk_kms::Client) -> Self {
        self.kms = Some(kms);
        self
    }

    /// Sends decisions through `sqs` in queue mode.
    pub fn sqs(mut self, sqs: aws_sdk_sqs::Client) -> Self {
        self.sqs = Some(sqs);
        self
    }

    /// Reads the credentials through `secrets` when `VERIFF_SECRET_ARN` is set.
    pub fn secrets(mut self, secrets: aws_sdk_secretsmanager::Client) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Publishes metrics with `metrics`.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Caps Veriff requests at `per_second` (the CLI's backfill `--rate`).
    pub fn veriff_rate(mut self, per_second: f64) -> Self {
        self.veriff_rate = Some(per_second);
        self
    }

    /// Sends decisions to the queue at `url` whatever `INGEST_MODE` says (the CLI's
    /// `backfill --enqueue`); needs the SQS client.
    pub fn enqueue_to(mut self, url: impl Into<String>) -> Self {
        self.queue_url = Some(url.into());
        self
    }

    /// Builds the app. With `VERIFF_SECRET_ARN`, the secret is read now: a function that
    /// cannot read its credentials must not start.
    pub async fn build(self) -> Result<App, BuildError> {
        let config = Arc::new(self.config);
        let (credentials, secret) = match &config.veriff.credentials {
            CredentialSource::Environment(credentials) => {
                (CredentialsHandle::new(credentials.clone()), None)
            }
            CredentialSource::SecretsManager(settings) => {
                let client = self.secrets.ok_or(BuildError::MissingClient {
                    client: "Secrets Manager",
                    needed_by: "VERIFF_SECRET_ARN",
                })?;
                let source =
                    SecretSource::new(client, settings.secret_id.clone(), settings.refresh_every);
                let handle = CredentialsHandle::new(Credentials::none());
                handle.replace(source.read().await?);
                (handle, Some(source))
            }
        };
        let signer = match (&config.archive.signing_key_id, self.kms) {
            (None, _) => None,
            (Some(key_id), Some(kms)) => Some(ManifestSigner::new(kms, key_id.clone())),
            (Some(_), None) => {
                return Err(BuildError::MissingClient {
                    client: "KMS",
                    needed_by: "MANIFEST_SIGNING_KEY_ID",
                });
            }
        };
        let queue_url = match &config.ingest {
            Ingest::Queue { url } => Some(url.clone()),
            Ingest::Direct => self.queue_url,
        };
        let queue = match (queue_url, self.sqs) {
            (None, _) => None,
            (Some(url), Some(sqs)) => Some(DecisionQueue::new(sqs, url)),
            (Some(_), None) => {
                return Err(BuildError::MissingClient {
                    client: "SQS",
                    needed_by: "the archive queue (INGEST_MODE=queue, or --enqueue)",
                });
            }
        };
        let mut veriff = VeriffClient::new(&config.veriff, credentials.clone())?;
        if let Some(rate) = self.veriff_rate {
            veriff = veriff.with_rate_limit(Arc::new(RateLimiter::per_second(rate)));
        }
        let store = Store::new(
            self.s3,
            config.archive.bucket.clone(),
            config.copy.part_size,
        );
        let sealer = sealer(&config, store.clone(), signer.clone())?;
        // One invocation at a time per container, but an SQS batch archives its records at
        // once: COPY_CONCURRENCY bounds the files in flight across all of them.
        let archiver = Archiver::new(config.clone(), veriff.clone(), store)
            .with_signer(signer)
            .sharing_copy_slots();
        Ok(App {
            config,
            credentials,
            veriff,
            archiver,
            queue,
            metrics: self.metrics,
            secret,
            sealer,
        })
    }
}

/// The ledger's sealer: the archive's store and prefix, the seal interval, the manifest
/// signer, and the time-stamping authority (`LEDGER_TSA_URL`) when one is configured.
fn sealer(
    config: &Config,
    store: Store,
    signer: Option<ManifestSigner>,
) -> Result<Sealer, BuildError> {
    let settings = SealSettings {
        interval: config.ledger.seal_interval,
        ..SealSettings::default()
    };
    let timestamper = match &config.ledger.tsa_url {
        Some(url) => Some(Timestamper::new(
            reqwest::Client::builder().build()?,
            url.clone(),
        )),
        None => None,
    };
    Ok(Sealer::new(store, config.archive.prefix.clone(), settings)
        .signed_by(signer)
        .timestamped_by(timestamper))
}
