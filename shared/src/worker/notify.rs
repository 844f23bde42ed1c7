//! Notifications on the action queue: a raised notice is fanned out, one message per
//! subscription that wants it, and each is delivered and retried with backoff on its
//! own. A delivery that keeps failing is given up on (logged and counted); nothing here
//! touches a request.

use std::time::Duration;

use super::{Disposition, MAX_DELAY, Worker, backoff};
use crate::bundle::task::NoticeMessage;
use crate::notifications::deliver::DeliveryError;
use crate::notifications::message::Notification;
use crate::ports::{Notice, StoreError};

/// Deliveries to one subscription at most: the last retry comes about four minutes after
/// the first try (backoff 1 s, 2 s, ... 128 s), sooner when the receiver says when.
pub const ATTEMPTS: u32 = 8;

impl Worker {
    /// Handles a notice message: fans it out, or delivers it to the one subscription it
    /// names.
    pub(super) async fn notify(&self, message: &NoticeMessage, receives: u32) -> Disposition {
        let Some(notifier) = &self.notifier else {
            return Disposition::Done;
        };
        let notification = match self.notification(message).await {
            Ok(Some(n)) => n,
            Ok(None) => return Disposition::Done,
            Err(e) => {
                tracing::warn!(error = %e, "storage failed while reading a notice; will retry");
                return Disposition::RetryAfter(backoff(receives, None));
            }
        };
        let queue = &self.requests.queue;
        let Some(to) = &message.to else {
            for to in notifier.subscriptions.matching(&notification) {
                let one = NoticeMessage {
                    to: Some(to),
                    ..message.clone()
                };
                let body = serde_json::to_string(&one).unwrap_or_default();
                if let Err(e) = queue.send(&body, Duration::ZERO).await {
                    // Again later: the subscriptions already sent to may hear twice,
                    // with the same id, which receivers drop.
                    tracing::warn!(error = %e, "could not fan a notice out; will retry");
                    return Disposition::RetryAfter(backoff(receives, None));
                }
            }
            return Disposition::Done;
        };
        let Some(subscription) = notifier.subscriptions.find(to) else {
            tracing::info!(subscription = %to.name, "the subscription is gone; notice dropped");
            return Disposition::Done;
        };
        match notifier
            .deliverer
            .deliver(&subscription, &notification)
            .await
        {
            Ok(channel) => {
                crate::metrics::count(
                    crate::metrics::NOTIFICATIONS_SENT,
                    &[("Channel", channel)],
                    1,
                );
            }
            Err(DeliveryError::Retry { why, retry_after }) if message.attempt + 1 < ATTEMPTS => {
                let wait = backoff(message.attempt, retry_after).min(MAX_DELAY);
                tracing::warn!(subscription = %to.name, attempt = message.attempt + 1, why, "a notification was not delivered; will retry");
                let again = NoticeMessage {
                    attempt: message.attempt + 1,
                    ..message.clone()
                };
                let body = serde_json::to_string(&again).unwrap_or_default();
                if let Err(e) = queue.send(&body, wait).await {
                    tracing::warn!(error = %e, "could not queue a notification's retry");
                    return Disposition::RetryAfter(wait);
                }
            }
            Err(e) => {
                tracing::warn!(subscription = %to.name, error = %e, "gave up on a notification");
                crate::metrics::count(crate::metrics::NOTIFICATIONS_FAILED, &[], 1);
            }
        }
        Disposition::Done
    }

    /// What the notice is about, read from the records it names (`None`: they are gone,
    /// or nobody subscribes to such a notice).
    async fn notification(
        &self,
        message: &NoticeMessage,
    ) -> Result<Option<Notification>, StoreError> {
        let Some(notifier) = &self.notifier else {
            return Ok(None);
        };
        let Some(topic) = crate::notifications::topic(&message.notice) else {
            return Ok(None);
        };
        let id = message.id.clone();
        Ok(match &message.notice {
            Notice::Request(event) => {
                let Some(request) = self.requests.store.get(&event.request_id).await? else {
                    return Ok(None);
                };
                let approval = match &event.detail.approval {
                    Some(a) => self.approvals.get(a).await?,
                    None => None,
                };
                Some(Notification::of_request(
                    id,
                    topic,
                    event,
                    &request,
                    approval.as_ref(),
                    &notifier.portal,
                ))
            }
            Notice::Drift {
                resource,
                at,
                paths,
            } => self
                .resources
                .store
                .get(resource)
                .await?
                .map(|r| Notification::of_drift(id, *at, &r, paths, &notifier.portal)),
        })
    }
}
