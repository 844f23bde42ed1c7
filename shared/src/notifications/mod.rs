//! Notifications: telling people what happened, through the channels they subscribed
//! with (a Slack incoming webhook, a signed webhook, an SNS topic).
//!
//! The request service and the reconciler raise a [`Notice`] for every timeline entry and
//! every drift found; [`outbox::QueuedNotices`] keeps those some subscription wants and
//! puts each on the action queue. The worker (`crate::worker::notify`) reads it back,
//! learns what it is about ([`message::Notification`]), finds the subscriptions that
//! match ([`subscriptions::Subscriptions`]) and delivers to each through its own queue
//! message, retried with backoff ([`deliver::Deliverer`]). Nothing here ever holds up a
//! request: a notice that cannot be queued or delivered is logged and counted.

pub mod deliver;
pub mod message;
pub mod outbox;
pub mod subscriptions;

use crate::catalog::subscription::Topic;
use crate::ports::Notice;
use crate::requests::model::EventKind;

/// What a notice is, for subscriptions; `None` for what nobody can subscribe to.
pub fn topic(notice: &Notice) -> Option<Topic> {
    match notice {
        Notice::Drift { .. } => Some(Topic::Drift),
        Notice::Request(event) => match event.kind {
            EventKind::ApprovalRequested | EventKind::ApprovalEscalated => {
                Some(Topic::ApprovalNeeded)
            }
            EventKind::Approved => Some(Topic::Approved),
            EventKind::ApprovalDenied => Some(Topic::Denied),
            EventKind::Completed => Some(Topic::Completed),
            EventKind::Failed | EventKind::Rejected => Some(Topic::Failed),
            EventKind::Cancelled => Some(Topic::Cancelled),
            EventKind::Scheduled => Some(Topic::Waiting),
            EventKind::Comment => Some(Topic::Comment),
            EventKind::SlaAtRisk | EventKind::SlaBreached => Some(Topic::Sla),
            _ => None,
        },
    }
}

/// What the worker delivers notifications with.
pub struct Notifier {
    pub subscriptions: std::sync::Arc<subscriptions::Subscriptions>,
    pub deliverer: deliver::Deliverer,
    pub portal: message::Portal,
}
