//! Raising notices: those some subscription wants go onto the action queue, at once and
//! without waiting on anyone's webhook.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::subscriptions::Subscriptions;
use crate::bundle::task::NoticeMessage;
use crate::ports::{Notice, Notices, Queue};

pub struct QueuedNotices {
    pub queue: Arc<dyn Queue>,
    pub subscriptions: Arc<Subscriptions>,
}

#[async_trait]
impl Notices for QueuedNotices {
    async fn raise(&self, notices: Vec<Notice>) {
        for notice in notices {
            let Some(topic) = super::topic(&notice) else {
                continue;
            };
            if !self.subscriptions.wants(topic) {
                continue;
            }
            let message = NoticeMessage {
                notice,
                id: uuid::Uuid::now_v7().to_string(),
                to: None,
                attempt: 0,
            };
            let body = serde_json::to_string(&message).unwrap_or_default();
            if let Err(e) = self.queue.send(&body, Duration::ZERO).await {
                // Never the request's failure: the notice is lost, and said so.
                tracing::warn!(error = %e, topic = topic.as_str(), "could not queue a notification");
                crate::metrics::count(crate::metrics::NOTIFICATIONS_FAILED, &[], 1);
            }
        }
    }
}
