//! Notifications published to Amazon SNS topics (the `sns` channel of a subscription).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::{DisplayErrorContext, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use shared::ports::{Publisher, StoreError};

pub struct SnsTopics {
    client: Client,
}

impl SnsTopics {
    pub fn new(config: &SdkConfig) -> Self {
        SnsTopics {
            client: Client::new(config),
        }
    }
}

#[async_trait]
impl Publisher for SnsTopics {
    async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
    ) -> Result<String, StoreError> {
        let mut call = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            call = call.message_attributes(*name, value);
        }
        match call.send().await {
            Ok(out) => Ok(out.message_id.unwrap_or_default()),
            Err(SdkError::ServiceError(e)) => {
                let e = e.into_err();
                // A topic that is not there, or refuses us, stays so: not worth a retry.
                if e.is_not_found_exception()
                    || e.is_authorization_error_exception()
                    || e.is_invalid_parameter_exception()
                {
                    Err(StoreError::Corrupt(format!(
                        "SNS refused to publish to {topic_arn}: {}",
                        DisplayErrorContext(&e)
                    )))
                } else {
                    Err(StoreError::Unavailable(format!(
                        "SNS: {}",
                        DisplayErrorContext(&e)
                    )))
                }
            }
            Err(e) => Err(StoreError::Unavailable(format!(
                "SNS: {}",
                DisplayErrorContext(&e)
            ))),
        }
    }
}
