//! Queue mode (`INGEST_MODE=queue`): the webhook acknowledges an archivable decision by
//! sending one SQS message, and the same `bootstrap`, invoked by the SQS event source
//! mapping, archives it through the same [`Archiver`](crate::archive::Archiver).
//!
//! - [`message`]: the message: the decision's non-personal fields, never the body (pure).
//! - [`sender`]: sending messages to the queue (SQS I/O), for the webhook and the CLI.
//! - [`consumer`]: one SQS batch in, a partial batch response out
//!   (`ReportBatchItemFailures`): a record that fails comes back, the others do not.

pub mod consumer;
pub mod message;
pub mod sender;

pub use consumer::{Consumer, is_sqs_event};
pub use message::{DecisionMessage, MessageError};
pub use sender::DecisionQueue;
