//! Sends decision messages to the archive queue (SQS `SendMessage`): the webhook in queue
//! mode, and `veriff-archiver backfill --enqueue`. Built once per container.

use aws_sdk_sqs::error::DisplayErrorContext;

use crate::error::{Error, QueueError, QueueProblem};
use crate::queue::message::DecisionMessage;

/// The archive queue.
#[derive(Debug, Clone)]
pub struct DecisionQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl DecisionQueue {
    /// The queue at `url` (`ARCHIVE_QUEUE_URL`).
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> DecisionQueue {
        DecisionQueue {
            client,
            url: url.into(),
        }
    }

    /// Sends one message; returns SQS's message id. A failure is
    /// [`Error::QueueUnavailable`]: the webhook answers 503 and Veriff redelivers.
    pub async fn send(&self, message: &DecisionMessage) -> Result<String, Error> {
        let sent = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.to_body())
            .send()
            .await
            .map_err(|e| {
                let problem = QueueProblem::Send(DisplayErrorContext(&e).to_string());
                QueueError {
                    problem,
                    source: Some(Box::new(e)),
                }
            })?;
        Ok(sent.message_id.unwrap_or_default())
    }
}
