//! RFC 3161 timestamps from the authority at `LEDGER_TSA_URL`: one POST of a
//! `application/timestamp-query` per digest, the token checked against the request (hash
//! and nonce) before it is stored. The URL is the operator's setting, never one from a
//! request.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::tsa::{self, TsaError};

/// How long the authority may take to answer.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Largest response read.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why no token was had.
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    /// The authority could not be reached or answered with an HTTP error.
    #[error("time-stamping authority unreachable or failing: {0}")]
    Http(String),
    /// Its answer is not a usable token for this request.
    #[error(transparent)]
    Token(#[from] TsaError),
}

/// A client of one time-stamping authority.
#[derive(Debug, Clone)]
pub struct Timestamper {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Timestamper {
    /// A client of the authority at `url`.
    pub fn new(http: reqwest::Client, url: reqwest::Url) -> Self {
        Timestamper { http, url }
    }

    /// The token (DER) timestamping the SHA-256 of `document`.
    pub async fn token_for(&self, document: &[u8]) -> Result<Vec<u8>, StampError> {
        let sha256: [u8; 32] = Sha256::digest(document).into();
        let nonce: u64 = rand::random();
        let request = tsa::request(&sha256, nonce)?;
        let http = |e: reqwest::Error| StampError::Http(e.without_url().to_string());
        let response = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/timestamp-query")
            .timeout(TIMEOUT)
            .body(request)
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        if !status.is_success() {
            return Err(StampError::Http(format!("HTTP {}", status.as_u16())));
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
        {
            return Err(StampError::Http("response larger than 1 MiB".into()));
        }
        let body = response.bytes().await.map_err(http)?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(StampError::Http("response larger than 1 MiB".into()));
        }
        Ok(tsa::token_from_response(&body, &sha256, nonce)?)
    }
}
