//! The worker: takes requests off the action queue and fulfils them. Delivery is at least
//! once, so every step is idempotent: a request already past a step skips it, and the JIRA
//! issue of a request is found by its label before one is created.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::manual::{issue_fields, request_label};
use super::{SystemInfo, context};
use crate::catalog::document::Mode;
use crate::catalog::snapshot::TargetRef;
use crate::integrations::jira::{JiraClient, JiraError};
use crate::ports::Message;
use crate::requests::model::{Request, RequestStatus, Ticket};
use crate::requests::service::{FulfillMessage, RequestError, RequestService};
use crate::template::render::Renderer;

/// How long a received message stays hidden while the worker handles it.
const VISIBILITY: Duration = Duration::from_secs(60);

/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A request still `submitted` this long after it was accepted lost its queue message
/// (the process stopped between storing it and enqueueing it): the sweep sends another.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct Worker {
    pub requests: Arc<RequestService>,
    pub jira: Option<Arc<JiraClient>>,
    pub renderer: Renderer,
    pub system: SystemInfo,
    /// Receives before a message would be dead-lettered: the last attempt fails the request.
    pub max_receives: u32,
}

/// What to do with a message after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Done,
    RetryAfter(Duration),
}

impl Worker {
    /// Polls the queue until `shutdown` turns true, then returns after the batch in hand.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut next_sweep = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep += SWEEP_EVERY;
                match self.sweep(STALE_AFTER).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        requests = n,
                        "re-enqueued requests that lost their queue message"
                    ),
                    Err(e) => tracing::warn!(error = %e, "the sweep for stale requests failed"),
                }
            }
            let batch = match self.requests.queue.receive(10, VISIBILITY).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot receive from the action queue");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            for message in batch {
                self.process(&message).await;
            }
        }
    }

    /// Re-enqueues requests still `submitted` longer than `older_than`. Handling is
    /// idempotent, so a request that merely waited in a long queue is not harmed.
    pub async fn sweep(&self, older_than: Duration) -> Result<usize, crate::ports::StoreError> {
        let cutoff = self.requests.clock.now() - older_than;
        let mut query = crate::ports::RequestQuery {
            status: Some(RequestStatus::Submitted),
            limit: 200,
            ..Default::default()
        };
        let mut sent = 0;
        loop {
            let page = self.requests.store.list(&query).await?;
            for request in page.items.iter().filter(|r| r.created_at <= cutoff) {
                self.requests.enqueue(request.id).await?;
                sent += 1;
            }
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(sent),
            }
        }
    }

    /// Handles one message and settles it on the queue.
    pub async fn process(&self, message: &Message) {
        let disposition = self.handle(message).await;
        let settled = match disposition {
            Disposition::Done => self.requests.queue.delete(&message.receipt).await,
            Disposition::RetryAfter(wait) => {
                self.requests
                    .queue
                    .change_visibility(&message.receipt, wait)
                    .await
            }
        };
        if let Err(e) = settled {
            // The message comes back after its visibility timeout; handling is idempotent.
            tracing::warn!(error = %e, message_id = %message.id, "could not settle a queue message");
        }
    }

    pub async fn handle(&self, message: &Message) -> Disposition {
        let Ok(work) = serde_json::from_str::<FulfillMessage>(&message.body) else {
            tracing::error!(message_id = %message.id, "dropping an unreadable queue message");
            return Disposition::Done;
        };
        let span = tracing::info_span!("fulfill", request_id = %work.request_id);
        let _guard = span.enter();
        match self.fulfill(&work, message.receive_count).await {
            Ok(d) => d,
            Err(RequestError::Store(e)) => {
                tracing::warn!(error = %e, "storage failed while fulfilling; will retry");
                Disposition::RetryAfter(backoff(message.receive_count, None))
            }
            Err(e) => {
                // A transition the request no longer allows (cancelled meanwhile): done.
                tracing::info!(error = %e, "request moved on; nothing to do");
                Disposition::Done
            }
        }
    }

    async fn fulfill(
        &self,
        work: &FulfillMessage,
        attempt: u32,
    ) -> Result<Disposition, RequestError> {
        let service = &self.requests;
        let Some(mut request) = service.store.get(&work.request_id).await? else {
            return Ok(Disposition::Done);
        };
        if request.status.is_terminal() || request.status == RequestStatus::AwaitingFulfillment {
            return Ok(Disposition::Done);
        }
        let snapshot = service.catalog.current();
        let item = match snapshot.target(&request.target) {
            Some(TargetRef::Item(item)) => item,
            Some(TargetRef::Bundle(_)) => {
                return self
                    .fail(&request, "bundles cannot be fulfilled by this version yet")
                    .await;
            }
            None => {
                let reason = format!("`{}` is no longer in the catalog", request.target);
                return self.fail(&request, &reason).await;
            }
        };
        let fulfillment = &item.doc.spec.fulfillment;
        let manual = match (fulfillment.mode, &fulfillment.manual) {
            (Mode::Manual, Some(manual)) => manual,
            _ => {
                return self
                    .fail(
                        &request,
                        "automated fulfillment is not available in this version yet",
                    )
                    .await;
            }
        };
        let Some(jira) = &self.jira else {
            return self
                .fail(
                    &request,
                    "manual fulfillment needs JIRA, and none is configured (jira.url)",
                )
                .await;
        };
        if request.status == RequestStatus::Submitted {
            request = service
                .transition_from(
                    request.id,
                    Some(request.clone()),
                    "worker",
                    "fulfillment_started",
                    RequestStatus::InProgress,
                    None,
                    |_| {},
                )
                .await?;
        }
        let ctx = context(
            &request,
            &item.doc.metadata,
            &self.system,
            service.clock.now(),
        );
        let fields = match issue_fields(&manual.ticket, request.id, &self.renderer, &ctx) {
            Ok(fields) => fields,
            Err(e) => {
                return self
                    .fail(&request, &format!("the item's ticket template failed: {e}"))
                    .await;
            }
        };
        let created = match jira.find_by_label(&request_label(request.id)).await {
            Ok(Some(issue)) => Ok(issue),
            Ok(None) => jira.create_issue(fields).await,
            Err(e) => Err(e),
        };
        match created {
            Ok(issue) => {
                let ticket = Ticket {
                    key: issue.key.clone(),
                    url: issue.url.clone(),
                };
                service
                    .transition_from(
                        request.id,
                        Some(request.clone()),
                        "worker",
                        "ticket_created",
                        RequestStatus::AwaitingFulfillment,
                        Some(format!("JIRA issue {} opened: {}", issue.key, issue.url)),
                        |r| r.ticket = Some(ticket.clone()),
                    )
                    .await?;
                tracing::info!(ticket = %issue.key, "JIRA issue opened");
                Ok(Disposition::Done)
            }
            Err(JiraError::Permanent { messages, .. }) => {
                self.fail(
                    &request,
                    &format!("JIRA refused the ticket: {}", messages.join("; ")),
                )
                .await
            }
            Err(JiraError::Transient { message, .. }) if attempt >= self.max_receives => {
                let reason =
                    format!("JIRA stayed unavailable after {attempt} attempts ({message})");
                self.fail(&request, &reason).await
            }
            Err(JiraError::Transient {
                message,
                retry_after,
            }) => {
                let wait = backoff(attempt, retry_after);
                tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, reason = %message, "JIRA unavailable; will retry");
                Ok(Disposition::RetryAfter(wait))
            }
        }
    }

    async fn fail(&self, request: &Request, reason: &str) -> Result<Disposition, RequestError> {
        tracing::warn!(reason, "request failed");
        let reason = reason.to_owned();
        self.requests
            .transition_from(
                request.id,
                Some(request.clone()),
                "worker",
                "failed",
                RequestStatus::Failed,
                Some(reason.clone()),
                |r| r.reason = Some(reason.clone()),
            )
            .await?;
        Ok(Disposition::Done)
    }
}

/// Exponential backoff from 1 s, at most `MAX_BACKOFF`; a server's Retry-After wins.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or_else(|| Duration::from_secs(1u64 << attempt.min(9)))
        .min(MAX_BACKOFF)
}
