//! The action queue on Amazon SQS. The queue's redrive policy (its dead-letter queue and
//! `maxReceiveCount`, set by the SAM template) does the dead-lettering; this adapter only
//! sends, receives, deletes and re-hides, and lists what the dead-letter queue holds.
//!
//! SQS counts visibility and delays in whole seconds: durations are rounded up. A receive
//! returns at most 10 messages (SQS's limit), and a delete by a receipt of an earlier
//! delivery is accepted by SQS without deleting anything (AWS's documented behaviour),
//! which the queue suite allows.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use shared::ports::{Message, Queue, StoreError};

/// SQS's bounds: messages per receive, and seconds of delay and of visibility.
const MAX_BATCH: usize = 10;
const MAX_DELAY_SECONDS: u64 = 900;
const MAX_VISIBILITY_SECONDS: u64 = 43_200;

pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    /// The queue at `url`, whose redrive policy sends exhausted messages to
    /// `dead_letter_url`.
    pub fn new(
        config: &SdkConfig,
        url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        SqsQueue {
            client: Client::new(config),
            url: url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }

    async fn read(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<(Message, Option<u64>)>, StoreError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1))
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY_SECONDS))
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| unavailable("ReceiveMessage", &e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attribute = |name: MessageSystemAttributeName| {
                    m.attributes()
                        .and_then(|a| a.get(&name))
                        .and_then(|v| v.parse::<u64>().ok())
                };
                let message = Message {
                    id: m.message_id().unwrap_or_default().to_owned(),
                    receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(1),
                };
                (
                    message,
                    attribute(MessageSystemAttributeName::SentTimestamp),
                )
            })
            .collect())
    }
}

/// Whole seconds, rounded up, at most `max`.
fn seconds(d: Duration, max: u64) -> i32 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(whole.min(max)).unwrap_or(i32::MAX)
}

fn unavailable<E, R>(operation: &str, e: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("SQS {operation}: {}", DisplayErrorContext(e)))
}

/// A receipt SQS did not issue, or not for this message: nothing to act on.
fn bad_receipt<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| {
            matches!(
                code,
                "ReceiptHandleIsInvalid"
                    | "InvalidParameterValue"
                    | "MissingParameter"
                    | "AWS.SimpleQueueService.MessageNotInflight"
            )
        })
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, StoreError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds(delay, MAX_DELAY_SECONDS))
            .send()
            .await
            .map_err(|e| unavailable("SendMessage", &e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Message>, StoreError> {
        Ok(self
            .read(&self.url, max, visibility)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        if receipt.is_empty() {
            return Err(StoreError::NotFound);
        }
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if bad_receipt(&e) => Err(StoreError::NotFound),
            Err(e) => Err(unavailable("DeleteMessage", &e)),
        }
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), StoreError> {
        if receipt.is_empty() {
            return Err(StoreError::NotFound);
        }
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(visibility, MAX_VISIBILITY_SECONDS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if bad_receipt(&e) => Err(StoreError::NotFound),
            Err(e) => Err(unavailable("ChangeMessageVisibility", &e)),
        }
    }

    /// A look at the dead-letter queue (received with visibility zero, so the messages
    /// stay for operators and redrives), oldest first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        let mut found = self
            .read(&self.dead_letter_url, limit, Duration::ZERO)
            .await?;
        found.sort_by_key(|(_, sent)| *sent);
        Ok(found.into_iter().map(|(m, _)| m).take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_whole_seconds_rounded_up_within_bounds() {
        assert_eq!(seconds(Duration::ZERO, 900), 0);
        assert_eq!(seconds(Duration::from_millis(1), 900), 1);
        assert_eq!(seconds(Duration::from_secs(2), 900), 2);
        assert_eq!(seconds(Duration::from_millis(2500), 900), 3);
        assert_eq!(seconds(Duration::from_secs(3600), 900), 900);
    }
}
