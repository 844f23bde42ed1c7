//! The queue side of the worker: the loop of local mode, the batches of the worker
//! Lambda, the sweep that re-sends requests whose message was lost, and the dispatch of
//! each message: read once into a [`WorkMessage`], handled by one `match`, and settled on
//! the queue as its [`Disposition`] says.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use super::{Disposition, MAX_DELAY, Worker, backoff};
use crate::bundle::task::{FAILED_ERROR, ProtocolError, WorkMessage};
use crate::ports::{Message, RequestQuery, StoreError, WorkflowError};
use crate::requests::model::{RequestId, RequestStatus};
use crate::requests::service::RequestError;

/// How long a received message stays hidden while the worker handles it.
const VISIBILITY: Duration = Duration::from_secs(60);

/// A request still `submitted` this long after it was accepted may have lost its queue
/// message (the process stopped between storing it and enqueueing it, or the message was
/// dead-lettered): the sweep sends another, and again each time the request's age doubles
/// (see [`Worker::sweep`]).
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// The sweep's last re-send is at `STALE_AFTER` × 2^this: 11.4 days, within SQS's longest
/// retention (14 days), so a message that expired unhandled is still replaced.
pub const SWEEP_DOUBLINGS: u32 = 13;

/// How many messages the worker of local mode handles at the same time at most.
const IN_FLIGHT: usize = 32;

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A message read, or why it could not be.
type Read = Result<WorkMessage, ProtocolError>;

/// Messages of one request (or of none that could be read), in the order received.
type Group = (Option<RequestId>, Vec<(Message, Read)>);

impl Worker {
    /// Polls the queue until `shutdown` turns true, then returns after the batch in hand.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        // Each message is handled in a task of its own, so a slow action holds up
        // nothing else; at most IN_FLIGHT at a time, and the queue is read again as soon
        // as one finishes (not when a whole batch has).
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let since_sweep = last_sweep.elapsed();
            if since_sweep >= SWEEP_EVERY {
                last_sweep += since_sweep;
                match self.sweep(since_sweep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        requests = n,
                        "re-enqueued requests that lost their queue message"
                    ),
                    Err(e) => tracing::warn!(error = %e, "the sweep for stale requests failed"),
                }
            }
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => permit,
                // A dropped sender ends the loop like a shutdown.
                changed = shutdown.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => break,
                },
            };
            let Ok(first) = first else { break };
            let mut permits = vec![first];
            while permits.len() < 10 {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let batch = match self.requests.queue.receive(permits.len(), VISIBILITY).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot receive from the action queue");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                drop(permits);
                tokio::select! {
                    _ = self.requests.queue.wait(Duration::from_millis(200)) => {}
                    changed = shutdown.changed() => if changed.is_err() { break },
                }
                continue;
            }
            for (message, permit) in batch.into_iter().zip(permits) {
                let worker = self.clone();
                // Boxed: the task is kilobytes (the deepest path through `process`),
                // and spawning moves a task several times before it first runs.
                tokio::spawn(Box::pin(async move {
                    worker.process(&message).await;
                    drop(permit);
                }));
            }
        }
        // Let the messages in hand finish; an unfinished one would come back anyway.
        let _ = slots.acquire_many(IN_FLIGHT as u32).await;
    }

    /// Handles a batch of messages: those of different requests at the same time (their
    /// writes share the database's commits), those of one request in order (they update
    /// the same record, which would otherwise make them retry each other's writes).
    /// Returns the ids of the messages left on the queue to come back (a batch's
    /// failures, to the SQS event source).
    pub async fn process_batch(self: &Arc<Self>, batch: Vec<Message>) -> Vec<String> {
        let mut groups: Vec<Group> = Vec::new();
        for message in batch {
            let read = WorkMessage::parse(&message.body);
            let request = read.as_ref().ok().and_then(WorkMessage::request_id);
            match groups
                .iter_mut()
                .find(|(r, _)| request.is_some() && *r == request)
            {
                Some((_, group)) => group.push((message, read)),
                None => groups.push((request, vec![(message, read)])),
            }
        }
        let mut running = tokio::task::JoinSet::new();
        let mut pending = HashMap::new();
        for (_, group) in groups {
            let worker = self.clone();
            let ids: Vec<String> = group.iter().map(|(m, _)| m.id.clone()).collect();
            // Boxed, as in `run`.
            let handle = running.spawn(Box::pin(async move {
                let mut left = Vec::new();
                for (message, read) in group {
                    if !worker.process_read(&message, read).await {
                        left.push(message.id.clone());
                    }
                }
                left
            }));
            pending.insert(handle.id(), ids);
        }
        let mut left = Vec::new();
        while let Some(done) = running.join_next_with_id().await {
            match done {
                Ok((id, mut ids)) => {
                    pending.remove(&id);
                    left.append(&mut ids);
                }
                Err(e) => {
                    // The messages come back after their visibility timeout.
                    tracing::error!(error = %e, "handling a message panicked");
                    left.extend(pending.remove(&e.id()).unwrap_or_default());
                }
            }
        }
        left
    }

    /// Re-enqueues the requests still `submitted` whose age reached `STALE_AFTER`, or a
    /// doubling of it, within the last `every` (the time since the previous sweep).
    ///
    /// The sweep cannot tell a request whose message was lost from one whose message still
    /// waits behind a backlog. Re-sending only as ages cross 2, 4, 8... minutes keeps what
    /// a backlog costs to a few copies per request (handling is idempotent; a copy is a read
    /// and a delete), where re-sending every stale request on every sweep would add the
    /// whole backlog to itself each time. And each doubling is one bounded read of the
    /// requests created in a span of `every`, not a read of every request ever made.
    ///
    /// Told the real time since the previous sweep, a late sweep covers what it missed; a
    /// sweep that never comes leaves its requests to the next doubling.
    pub async fn sweep(&self, every: Duration) -> Result<usize, StoreError> {
        let now = self.requests.clock.now();
        let mut sent = std::collections::HashSet::new();
        for doubling in 0..=SWEEP_DOUBLINGS {
            let age = STALE_AFTER * (1 << doubling);
            // Created in this span, a request reached `age` since the previous sweep.
            let mut query = RequestQuery {
                status: Some(RequestStatus::Submitted),
                created: Some(now - age - every..now - age),
                limit: 200,
                ..Default::default()
            };
            loop {
                let page = self.requests.store.list(&query).await?;
                for request in &page.items {
                    // Spans overlap when sweeps are further apart than a doubling.
                    if sent.insert(request.id) {
                        self.requests.enqueue(request.id).await?;
                    }
                }
                match page.next {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
        }
        Ok(sent.len())
    }

    /// Handles one message and settles it on the queue: `true` when it is gone from the
    /// queue (done, or replaced by a delayed copy), `false` when it stays to come back.
    pub async fn process(&self, message: &Message) -> bool {
        self.process_read(message, WorkMessage::parse(&message.body))
            .await
    }

    async fn process_read(&self, message: &Message, read: Read) -> bool {
        let disposition = self.handle(message, read).await;
        let stays = matches!(disposition, Disposition::RetryAfter(_));
        let queue = &self.requests.queue;
        let settled = match disposition {
            Disposition::Done => queue.delete(&message.receipt).await,
            Disposition::RetryAfter(wait) => queue.change_visibility(&message.receipt, wait).await,
            Disposition::Continue(wait) => {
                // Send first: a crash in between leaves two messages, which is harmless
                // (handling is idempotent), never none.
                match queue.send(&message.body, wait.min(MAX_DELAY)).await {
                    Ok(_) => queue.delete(&message.receipt).await,
                    Err(e) => Err(e),
                }
            }
        };
        match settled {
            Ok(()) => !stays,
            Err(e) => {
                // The message comes back after its visibility timeout; handling is
                // idempotent.
                tracing::warn!(error = %e, message_id = %message.id, "could not settle a queue message");
                false
            }
        }
    }

    /// The one dispatch of the queue's messages.
    async fn handle(&self, message: &Message, read: Read) -> Disposition {
        let attempt = message.receive_count;
        match read {
            Ok(WorkMessage::Task(task)) => {
                let span = tracing::info_span!(
                    "task",
                    request_id = %task.request_id,
                    component = task.component_id(),
                    task = ?task.task,
                );
                Box::pin(self.run_task(&task, attempt))
                    .instrument(span)
                    .await
            }
            Ok(WorkMessage::Notice(notice)) => {
                let span = tracing::info_span!("notice", id = %notice.id);
                self.notify(&notice, attempt).instrument(span).await
            }
            Ok(WorkMessage::Verify(batch)) => {
                let span = tracing::info_span!("verify", pass = %batch.pass, batch = batch.batch);
                match self.checks.run(&batch).instrument(span).await {
                    Ok(_) => Disposition::Done,
                    Err(e) => {
                        tracing::warn!(error = %e, "storage failed while verifying a batch; will retry");
                        Disposition::RetryAfter(backoff(attempt, None))
                    }
                }
            }
            Ok(WorkMessage::Fulfill(handoff)) => {
                let span = tracing::info_span!("fulfill", request_id = %handoff.request_id);
                match self
                    .fulfill(handoff.request_id, attempt)
                    .instrument(span)
                    .await
                {
                    Ok(d) => d,
                    Err(RequestError::Store(e)) => {
                        tracing::warn!(error = %e, "storage failed while fulfilling; will retry");
                        Disposition::RetryAfter(backoff(attempt, None))
                    }
                    Err(e) => {
                        // A transition the request no longer allows (cancelled meanwhile).
                        tracing::info!(error = %e, "request moved on; nothing to do");
                        Disposition::Done
                    }
                }
            }
            Err(ProtocolError::BadTask { task_token, why }) => {
                tracing::error!(message_id = %message.id, why, "failing a task whose message does not fit the protocol");
                let cause = format!("the task's message does not fit the protocol: {why}");
                match self
                    .workflows
                    .send_task_failure(&task_token, FAILED_ERROR, &cause)
                    .await
                {
                    Err(WorkflowError::Store(e)) => {
                        tracing::warn!(error = %e, "could not answer a task; will retry");
                        Disposition::RetryAfter(backoff(attempt, None))
                    }
                    _ => Disposition::Done,
                }
            }
            Err(ProtocolError::Unreadable(why)) => {
                tracing::error!(message_id = %message.id, why, "dropping an unreadable queue message");
                Disposition::Done
            }
        }
    }
}
