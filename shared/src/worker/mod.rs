//! The worker: every piece of work that reaches the orchestrator through the action queue,
//! and the JIRA completion that answers what a person did. One file per kind of work:
//!
//! - [`queue`]: the queue loop, batches, the stale-request sweep, and the one `match` that
//!   dispatches a [`WorkMessage`](crate::bundle::task::WorkMessage);
//! - [`provision`]: carrying a new request forward (a manual item's JIRA issue, or the
//!   start of its state machine's execution);
//! - [`component`]: a task of a request's state machine (provision a component, undo it,
//!   complete or fail the request);
//! - [`change`]: a day-2 change or deletion of a recorded resource;
//! - [`jira`]: a JIRA issue that a person resolved (from `POST /webhooks/jira`);
//! - [`comments`]: comments on a request, copied to and from its JIRA issues;
//! - [`notify`]: notifications fanned out to their subscriptions and delivered;
//! - [`redrive`]: an admin resuming a paused request from its failed component;
//! - [`outcomes`]: resolving actions whose outcome stayed unknown, for the reconciler or
//!   an admin;
//! - [`steps`]: what those share: starting, failing and settling a request, timeline
//!   notes, an item's automated run and rollback.
//!
//! Delivery is at least once, so every step is idempotent: a request already past a step
//! skips it, actions run through the engine's durable records, and the JIRA issue of a
//! request is found by its label before one is created.

pub mod change;
pub mod comments;
pub mod component;
pub mod jira;
pub mod notify;
pub mod outcomes;
pub mod provision;
pub mod queue;
pub mod redrive;
pub mod steps;

use std::sync::Arc;
use std::time::Duration;

use crate::fulfillment::SystemInfo;
use crate::fulfillment::engine::Engine;
use crate::integrations::jira::JiraClient;
use crate::ports::Workflows;
use crate::requests::service::RequestService;
use crate::resources::service::Resources;

/// SQS delays a message by 15 minutes at most; a longer wait takes several hops. The
/// template's backlog alarm counts on no healthy message waiting longer.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct Worker {
    pub requests: Arc<RequestService>,
    pub jira: Option<Arc<JiraClient>>,
    /// Runs automated items; its renderer also renders manual tickets.
    pub engine: Arc<Engine>,
    pub system: SystemInfo,
    /// Receives before a message would be dead-lettered: the last attempt fails the request.
    pub max_receives: u32,
    /// Runs the state machines of bundles and automated items; their tasks come back
    /// through the action queue.
    pub workflows: Arc<dyn Workflows>,
    /// Resource records: changes and deletions run here.
    pub resources: Arc<Resources>,
    /// Approval stages: opened here, decided through the API.
    pub approvals: Arc<crate::approvals::service::Approvals>,
    /// Delivers notifications (`None`: nobody subscribes).
    pub notifier: Option<Arc<crate::notifications::Notifier>>,
    /// Verifies the batches of reconciliation passes.
    pub checks: Arc<crate::resources::reconcile::Checks>,
}

/// What to do with a message after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Done,
    /// Something failed for now: the same message comes back after this long.
    RetryAfter(Duration),
    /// Work goes on later (a retry's backoff, a poll's interval): a fresh message is sent
    /// with this delay, so waiting never counts toward the dead-letter limit.
    Continue(Duration),
}

/// Exponential backoff from 1 s, at most `MAX_BACKOFF`; a server's Retry-After wins.
pub(crate) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or_else(|| Duration::from_secs(1u64 << attempt.min(9)))
        .min(MAX_BACKOFF)
}
