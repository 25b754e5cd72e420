//! A real local SQS (moto_server) for the queue-mode tests: a main queue with a redrive
//! policy to a dead-letter queue, and a stand-in for Lambda's SQS event source mapping that
//! receives messages and hands them to the function as the SQS event Lambda sends.

use std::time::Duration;

use archiver_devkit::MotoServer;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

/// The region the local queues live in.
pub const REGION: &str = "us-east-1";

/// moto_server with an archive queue and its dead-letter queue.
pub struct LocalQueue {
    pub moto: MotoServer,
    pub client: Client,
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

/// An SQS client for a local endpoint.
pub fn sqs_client(endpoint: &str) -> Client {
    let config = aws_sdk_sqs::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            super::S3_ACCESS_KEY,
            super::S3_SECRET_KEY,
            None,
            None,
            "local",
        ))
        .build();
    Client::from_conf(config)
}

impl LocalQueue {
    /// Starts moto_server and creates `archive` (visibility timeout `visibility_secs`,
    /// messages moved to `archive-dlq` after `max_receives` receives).
    pub async fn start(visibility_secs: u32, max_receives: u32) -> LocalQueue {
        let moto = MotoServer::start()
            .await
            .expect("moto_server (scripts/test.sh installs it)");
        let client = sqs_client(&moto.endpoint());
        let dlq_url = client
            .create_queue()
            .queue_name("archive-dlq")
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .expect("create the dead-letter queue")
            .queue_url
            .unwrap();
        let dlq_arn = queue_arn(&client, &dlq_url).await;
        let redrive =
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string();
        let url = client
            .create_queue()
            .queue_name("archive")
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .expect("create the archive queue")
            .queue_url
            .unwrap();
        let arn = queue_arn(&client, &url).await;
        LocalQueue {
            moto,
            client,
            url,
            arn,
            dlq_url,
        }
    }

    /// Receives up to `max` messages (waiting up to `wait`), with their receive counts.
    pub async fn receive(&self, url: &str, max: i32, wait: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < max as usize {
            let got = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(max - out.len() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("ReceiveMessage")
                .messages
                .unwrap_or_default();
            let empty = got.is_empty();
            out.extend(got);
            if tokio::time::Instant::now() >= deadline || (empty && !out.is_empty()) {
                break;
            }
            if empty {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        out
    }

    /// Deletes what the event source mapping deletes: the records not named as failed.
    pub async fn delete_succeeded(&self, messages: &[Message], response: &Value) {
        let failed = failed_ids(response);
        for message in messages {
            let id = message.message_id.as_deref().unwrap();
            if !failed.iter().any(|f| f == id) {
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(message.receipt_handle.as_deref().unwrap())
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
    }

    /// Messages visible or in flight in a queue.
    pub async fn depth(&self, url: &str) -> u64 {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes
            .unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|a| {
            attrs
                .get(a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Sends a raw body to the archive queue.
    pub async fn send(&self, body: &str) -> String {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage")
            .message_id
            .unwrap()
    }

    /// The SQS event Lambda's event source mapping would send for `messages`.
    pub fn lambda_event(&self, messages: &[Message]) -> Value {
        lambda_event(messages, &self.arn)
    }
}

async fn queue_arn(client: &Client, url: &str) -> String {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap()
}

/// The SQS event Lambda sends for `messages` of the queue `arn` (the documented shape).
pub fn lambda_event(messages: &[Message], arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), Value::from(v.as_str())))
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The message ids a partial batch response names.
pub fn failed_ids(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a partial batch response: {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}
