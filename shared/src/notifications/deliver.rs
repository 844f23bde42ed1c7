//! Delivering one notification to one subscription's channel.
//!
//! A Slack webhook's URL is a credential and a webhook's may carry one in its query: what
//! is logged or reported names the host (and path, for a signed webhook) only; the HTTP
//! exchange is the actions' own, whose errors never name the URL.

use std::sync::Arc;
use std::time::Duration;

use super::message::Notification;
use crate::catalog::subscription::{Channel, Subscription};
use crate::fulfillment::actions::webhook::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};
use crate::fulfillment::actions::{ActionError, exchange};
use crate::ports::{Publisher, Secrets, StoreError};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (a timeout, a 5xx, a 429), after `retry_after` if the receiver
    /// said so.
    #[error("{why}")]
    Retry {
        why: String,
        retry_after: Option<Duration>,
    },
    /// Trying again would not help (a 4xx, a missing secret, no SNS in this deployment).
    #[error("{0}")]
    GiveUp(String),
}

pub struct Deliverer {
    pub http: reqwest::Client,
    pub secrets: Arc<dyn Secrets>,
    /// SNS, when the deployment has it (on AWS).
    pub publisher: Option<Arc<dyn Publisher>>,
}

impl Deliverer {
    /// Delivers `notification` through `subscription`'s channel; returns the channel's
    /// name (for metrics).
    pub async fn deliver(
        &self,
        subscription: &Subscription,
        notification: &Notification,
    ) -> Result<&'static str, DeliveryError> {
        match subscription.channel() {
            None => Err(DeliveryError::GiveUp(format!(
                "subscription `{}` names no single channel",
                subscription.name
            ))),
            Some(Channel::Slack(slack)) => {
                let url = self.secret(&slack.url_secret).await?;
                let url = reqwest::Url::parse(&url).map_err(|_| {
                    DeliveryError::GiveUp(format!(
                        "the secret `{}` does not hold a URL",
                        slack.url_secret
                    ))
                })?;
                let what = format!(
                    "the Slack webhook at {} (secret `{}`)",
                    url.host_str().unwrap_or("?"),
                    slack.url_secret
                );
                let call = self.http.post(url).json(&notification.slack());
                send(call, &what).await.map(|()| "slack")
            }
            Some(Channel::Webhook(hook)) => {
                let key = self.secret(&hook.signing_secret).await?;
                let url = reqwest::Url::parse(&hook.url)
                    .map_err(|_| DeliveryError::GiveUp("the webhook URL is not a URL".into()))?;
                let what = format!(
                    "the webhook at {}",
                    crate::fulfillment::actions::rest::url_for_humans(&url)
                );
                let body = notification.json();
                let call = self
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(
                        SIGNATURE_HEADER,
                        crate::signing::sign(key.as_bytes(), &body),
                    )
                    .header(DELIVERY_HEADER, &notification.id)
                    .header(EVENT_HEADER, &notification.kind)
                    .body(body);
                send(call, &what).await.map(|()| "webhook")
            }
            Some(Channel::Sns(sns)) => {
                let Some(publisher) = &self.publisher else {
                    return Err(DeliveryError::GiveUp(
                        "this deployment has no SNS (local mode): the subscription cannot be delivered"
                            .into(),
                    ));
                };
                let body = String::from_utf8(notification.json()).unwrap_or_default();
                let mut attributes = vec![("topic", notification.topic.as_str())];
                if let Some(owner) = notification.owner() {
                    attributes.push(("owner", owner));
                }
                if let Some(target) = notification.target() {
                    attributes.push(("target", target));
                }
                publisher
                    .publish(&sns.topic_arn, &notification.subject(), &body, &attributes)
                    .await
                    .map(|_| "sns")
                    .map_err(|e| match e {
                        StoreError::Unavailable(why) => DeliveryError::Retry {
                            why: format!("SNS: {why}"),
                            retry_after: None,
                        },
                        other => DeliveryError::GiveUp(format!("SNS: {other}")),
                    })
            }
        }
    }

    async fn secret(&self, name: &str) -> Result<String, DeliveryError> {
        match self.secrets.get(name).await {
            Ok(Some(value)) => Ok(value.expose().to_owned()),
            Ok(None) => Err(DeliveryError::GiveUp(format!(
                "there is no secret `{name}`"
            ))),
            Err(e) => Err(DeliveryError::Retry {
                why: format!("reading the secret `{name}`: {e}"),
                retry_after: None,
            }),
        }
    }
}

/// Sends a call with the actions' own HTTP exchange: a 2xx delivers; 408, 429, 5xx, a
/// timeout or a lost connection is worth another try (after the receiver's
/// `Retry-After`); any other answer is not. Errors never name the URL.
async fn send(call: reqwest::RequestBuilder, what: &str) -> Result<(), DeliveryError> {
    match exchange(call.timeout(TIMEOUT), what, &[]).await {
        Ok(_) => Ok(()),
        Err(ActionError::Retryable {
            message,
            retry_after,
        }) => Err(DeliveryError::Retry {
            why: message,
            retry_after,
        }),
        Err(ActionError::Unknown { message }) => Err(DeliveryError::Retry {
            why: message,
            retry_after: None,
        }),
        Err(ActionError::Permanent { message }) => Err(DeliveryError::GiveUp(message)),
    }
}
