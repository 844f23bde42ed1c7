//! The worker: takes requests off the action queue and fulfils them. Delivery is at least
//! once, so every step is idempotent: a request already past a step skips it, and the JIRA
//! issue of a request is found by its label before one is created.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use serde_json::{Map, Value};

use super::engine::{Engine, Note, Progress, RunFor, action_with};
use super::manual::{issue_fields, request_label};
use super::{SystemInfo, context};
use crate::bundle::asl::{TaskMessage, machine_name};
use crate::catalog::document::{Fallback, Mode};
use crate::catalog::snapshot::TargetRef;
use crate::integrations::jira::{JiraClient, JiraError};
use crate::ports::{Message, WorkflowError, Workflows};
use crate::requests::model::{Operation, Request, RequestId, RequestStatus, Ticket};
use crate::requests::service::{FulfillMessage, RequestError, RequestService};

/// How long a received message stays hidden while the worker handles it.
const VISIBILITY: Duration = Duration::from_secs(60);

/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

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

pub struct Worker {
    pub requests: Arc<RequestService>,
    pub jira: Option<Arc<JiraClient>>,
    /// Runs automated items; its renderer also renders manual tickets.
    pub engine: Arc<Engine>,
    pub system: SystemInfo,
    /// Receives before a message would be dead-lettered: the last attempt fails the request.
    pub max_receives: u32,
    /// Runs bundles' state machines; their tasks come back through the action queue.
    pub workflows: Arc<dyn Workflows>,
    /// Resource records: changes and deletions run here.
    pub resources: Arc<crate::resources::service::Resources>,
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

/// SQS delays a message by 15 minutes at most; a longer wait takes several hops. The
/// template's backlog alarm counts on no healthy message waiting longer.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

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
        let mut groups: Vec<(Option<String>, Vec<Message>)> = Vec::new();
        for message in batch {
            let request = serde_json::from_str::<Value>(&message.body)
                .ok()
                .and_then(|v| {
                    v.get("requestId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
            match groups
                .iter_mut()
                .find(|(r, _)| request.is_some() && *r == request)
            {
                Some((_, group)) => group.push(message),
                None => groups.push((request, vec![message])),
            }
        }
        let mut running = tokio::task::JoinSet::new();
        let mut pending = std::collections::HashMap::new();
        for (_, group) in groups {
            let worker = self.clone();
            let ids: Vec<String> = group.iter().map(|m| m.id.clone()).collect();
            // Boxed, as in `run`.
            let handle = running.spawn(Box::pin(async move {
                let mut left = Vec::new();
                for message in &group {
                    if !worker.process(message).await {
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
    pub async fn sweep(&self, every: Duration) -> Result<usize, crate::ports::StoreError> {
        let now = self.requests.clock.now();
        let mut sent = std::collections::HashSet::new();
        for doubling in 0..=SWEEP_DOUBLINGS {
            let age = STALE_AFTER * (1 << doubling);
            // Created in this span, a request reached `age` since the previous sweep.
            let mut query = crate::ports::RequestQuery {
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
        let disposition = self.handle(message).await;
        let stays = matches!(disposition, Disposition::RetryAfter(_));
        let settled = match disposition {
            Disposition::Done => self.requests.queue.delete(&message.receipt).await,
            Disposition::RetryAfter(wait) => {
                self.requests
                    .queue
                    .change_visibility(&message.receipt, wait)
                    .await
            }
            Disposition::Continue(wait) => {
                // Send first: a crash in between leaves two messages, which is harmless
                // (handling is idempotent), never none.
                match self
                    .requests
                    .queue
                    .send(&message.body, wait.min(MAX_DELAY))
                    .await
                {
                    Ok(_) => self.requests.queue.delete(&message.receipt).await,
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

    pub async fn handle(&self, message: &Message) -> Disposition {
        if let Ok(task) = serde_json::from_str::<TaskMessage>(&message.body) {
            let span = tracing::info_span!(
                "task",
                request_id = %task.request_id,
                component = task.component.as_deref().unwrap_or_default(),
                task = ?task.task,
            );
            return Box::pin(self.run_task(&task, message.receive_count))
                .instrument(span)
                .await;
        }
        let Ok(work) = serde_json::from_str::<FulfillMessage>(&message.body) else {
            tracing::error!(message_id = %message.id, "dropping an unreadable queue message");
            return Disposition::Done;
        };
        let span = tracing::info_span!("fulfill", request_id = %work.request_id);
        match self
            .fulfill(&work, message.receive_count)
            .instrument(span)
            .await
        {
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
        // The longer paths (changes, state machines, JIRA) are boxed: inline, the
        // deepest of them set the size of every handler's future, 8 KiB.
        if request.operation != Operation::Provision {
            return Box::pin(self.change(request, attempt)).await;
        }
        let snapshot = service.catalog.current();
        let item = match snapshot.target(&request.target) {
            Some(TargetRef::Item(item)) => item,
            Some(bundle @ TargetRef::Bundle(_)) => {
                return Box::pin(self.start_execution(request, &snapshot, bundle)).await;
            }
            None => {
                let reason = format!("`{}` is no longer in the catalog", request.target);
                return self.fail_as_read(request, &reason).await;
            }
        };
        let fulfillment = &item.doc.spec.fulfillment;
        // An admin's override can only switch automation off, so a manual item has none
        // worth reading (a read per message, on the path of every manual request).
        let forced_manual = if fulfillment.mode == Mode::Automated {
            self.mode_override(&item.doc.metadata.name).await?
        } else {
            None
        };
        let automated = super::mode::automated_section(fulfillment, forced_manual.is_some());
        if automated.is_some() {
            // Its actions run as the one component of the item's state machine; a
            // fallback to a person happens there too.
            return Box::pin(self.start_execution(request, &snapshot, TargetRef::Item(item))).await;
        }
        if let Some(forced) = &forced_manual
            && fulfillment.mode == Mode::Automated
            && request.status == RequestStatus::Submitted
        {
            request = self.start(&request).await?;
            service
                .note(
                    request.id,
                    Some(&request),
                    "worker",
                    "mode_forced",
                    format!(
                        "an admin ({}) forced this item to manual: {}",
                        forced.by, forced.reason
                    ),
                )
                .await?;
        }
        let manual = match &fulfillment.manual {
            Some(manual) => manual,
            None => {
                return self
                    .fail_as_read(
                        request,
                        "the item has no manual section, and its mode was forced to manual",
                    )
                    .await;
            }
        };
        let Some(jira) = &self.jira else {
            return self
                .fail_as_read(
                    request,
                    "manual fulfillment needs JIRA, and none is configured (jira.url)",
                )
                .await;
        };
        if request.status == RequestStatus::Submitted {
            request = self.start(&request).await?;
        }
        let ctx = self.context(&request, &item.doc.metadata);
        Box::pin(self.open_request_ticket(&request, manual, jira, &ctx, None, attempt)).await
    }

    /// Opens the JIRA issue that fulfils `request` (a manual item's, or a manual item's
    /// change with `summary_prefix`) and waits for it; JIRA's transient failures come back
    /// with backoff, until the last attempt fails the request.
    pub(crate) async fn open_request_ticket(
        &self,
        request: &Request,
        manual: &crate::catalog::document::ManualFulfillment,
        jira: &JiraClient,
        ctx: &Value,
        summary_prefix: Option<&str>,
        attempt: u32,
    ) -> Result<Disposition, RequestError> {
        let service = &self.requests;
        let mut fields = match issue_fields(
            &manual.ticket,
            &request_label(request.id),
            &self.engine.renderer,
            ctx,
        ) {
            Ok(fields) => fields,
            Err(e) => {
                return self
                    .fail(request, &format!("the item's ticket template failed: {e}"))
                    .await;
            }
        };
        if let Some(prefix) = summary_prefix
            && let Some(Value::String(summary)) = fields.get_mut("summary")
        {
            *summary = format!("{prefix}{summary}");
        }
        let created = open_ticket(jira, &request_label(request.id), fields).await;
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
                        Some(crate::requests::components::ticket_opened(
                            "", &issue.key, &issue.url,
                        )),
                        |r| r.ticket = Some(ticket.clone()),
                    )
                    .await?;
                tracing::info!(ticket = %issue.key, "JIRA issue opened");
                Ok(Disposition::Done)
            }
            Err(JiraError::Permanent { messages, .. }) => {
                self.fail(
                    request,
                    &format!("JIRA refused the ticket: {}", messages.join("; ")),
                )
                .await
            }
            Err(JiraError::Transient { message, .. }) if attempt >= self.max_receives => {
                let reason =
                    format!("JIRA stayed unavailable after {attempt} attempts ({message})");
                self.fail(request, &reason).await
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

    /// Starts the request's execution of its target's state machine (a bundle's, or an
    /// automated item's one-component machine), named by the request id so that a
    /// redelivered message finds it started, deploying the machine first when the engine
    /// does not have it.
    async fn start_execution(
        &self,
        mut request: Request,
        snapshot: &crate::catalog::snapshot::CatalogSnapshot,
        target: TargetRef<'_>,
    ) -> Result<Disposition, RequestError> {
        if request.status == RequestStatus::Submitted {
            request = self.start(&request).await?;
        }
        let machine = machine_name(&target);
        let name = request.id.to_string();
        let input = serde_json::json!({ "requestId": name });
        let mut started = self.workflows.start(&machine, &name, &input).await;
        if matches!(started, Err(WorkflowError::NoSuchMachine(_))) {
            let definition = match target {
                TargetRef::Bundle(bundle) => {
                    crate::bundle::asl::compile_bundle(&snapshot.catalog, &bundle.doc.metadata.name)
                }
                TargetRef::Item(item) => Ok(crate::bundle::asl::compile_item(&item.doc)),
            };
            let definition = match definition {
                Ok(definition) => definition,
                Err(e) => {
                    return self
                        .fail(&request, &format!("the bundle does not compile: {e}"))
                        .await;
                }
            };
            started = match self.workflows.deploy(&machine, &definition).await {
                Ok(_) => self.workflows.start(&machine, &name, &input).await,
                Err(e) => Err(e),
            };
        }
        match started {
            Ok(arn) => {
                let message = match target {
                    TargetRef::Bundle(bundle) => format!(
                        "provisioning {} components (execution {arn})",
                        bundle.doc.spec.components.len()
                    ),
                    TargetRef::Item(item) => format!(
                        "running {} actions (execution {arn})",
                        item.doc
                            .spec
                            .fulfillment
                            .automated
                            .as_ref()
                            .map_or(0, |a| a.actions.len())
                    ),
                };
                self.note_once(&request, "execution", "execution_started", message)
                    .await?;
                Ok(Disposition::Done)
            }
            Err(WorkflowError::Store(e)) => Err(e.into()),
            Err(e) => {
                self.fail(&request, &format!("the execution did not start: {e}"))
                    .await
            }
        }
    }

    pub(crate) async fn start(&self, request: &Request) -> Result<Request, RequestError> {
        self.requests
            .transition_from(
                request.id,
                Some(request.clone()),
                "worker",
                "fulfillment_started",
                RequestStatus::InProgress,
                None,
                |_| {},
            )
            .await
    }

    pub(crate) fn context(
        &self,
        request: &Request,
        metadata: &crate::catalog::document::Metadata,
    ) -> Value {
        context(request, metadata, &self.system, self.requests.clock.now())
    }

    /// The mode an admin forced on an item (`PUT /catalog/items/{name}/mode`), if any.
    pub(crate) async fn mode_override(
        &self,
        item: &str,
    ) -> Result<Option<super::mode::ModeOverride>, RequestError> {
        Ok(super::mode::get(self.engine.state.as_ref(), item).await?)
    }

    /// Moves an item's actions (for one component of a request) as far as they go now.
    /// When one fails for good, the rollback actions of those that succeeded run before
    /// the failure is reported. Timeline entries are prefixed with `label`.
    pub(crate) async fn run_automated(
        &self,
        item: &crate::catalog::Located<crate::catalog::CatalogItem>,
        automated: &crate::catalog::document::AutomatedFulfillment,
        run: &RunFor<'_>,
        label: &str,
        notes: &mut Notes,
    ) -> Result<ItemRun, RequestError> {
        let mut steps = Vec::new();
        let progress = self
            .engine
            .advance(run, "actions", &automated.actions, &mut steps)
            .await;
        notes.engine(label, steps);
        let (action, reason, succeeded) = match progress? {
            Progress::Completed { outputs } => {
                return Ok(ItemRun::Completed(declared_outputs(item, &outputs)));
            }
            Progress::Waiting { after } => return Ok(ItemRun::Waiting(after)),
            Progress::Failed {
                action,
                reason,
                outputs,
            } => (action, reason, outputs),
        };
        match self
            .roll_back(automated, run, &succeeded, label, notes)
            .await?
        {
            Some(ItemRun::Waiting(after)) => Ok(ItemRun::Waiting(after)),
            Some(ItemRun::Failed(why)) => {
                notes.add(
                    "rollback_failed",
                    format!("{label}the rollback failed: {why}"),
                );
                Ok(ItemRun::Failed(reason))
            }
            Some(ItemRun::Completed(_)) => {
                notes.add(
                    "rolled_back",
                    format!("{label}rolled back after `{action}` failed"),
                );
                Ok(ItemRun::Failed(reason))
            }
            None => Ok(ItemRun::Failed(reason)),
        }
    }

    /// Runs the rollback actions that apply to the actions that `succeeded` (those whose
    /// `outputs.<id>` all exist); `None` when there is nothing to undo.
    pub(crate) async fn roll_back(
        &self,
        automated: &crate::catalog::document::AutomatedFulfillment,
        run: &RunFor<'_>,
        succeeded: &Map<String, Value>,
        label: &str,
        notes: &mut Notes,
    ) -> Result<Option<ItemRun>, RequestError> {
        let rollback: Vec<_> = automated
            .rollback
            .iter()
            .filter(|a| reads_only(a, succeeded))
            .cloned()
            .collect();
        if rollback.is_empty() || succeeded.is_empty() {
            return Ok(None);
        }
        let mut ctx = run.context.clone();
        ctx["outputs"] = Value::Object(succeeded.clone());
        let run = RunFor {
            request_id: run.request_id.clone(),
            requester: run.requester.clone(),
            context: &ctx,
            ..*run
        };
        let mut steps = Vec::new();
        let progress = self
            .engine
            .advance(&run, "rollback", &rollback, &mut steps)
            .await;
        notes.engine(label, steps);
        Ok(Some(match progress? {
            Progress::Waiting { after } => ItemRun::Waiting(after),
            Progress::Completed { outputs } => ItemRun::Completed(outputs),
            Progress::Failed { reason, .. } => ItemRun::Failed(reason),
        }))
    }

    pub(crate) async fn note(
        &self,
        request: &Request,
        kind: &str,
        message: String,
    ) -> Result<(), RequestError> {
        self.note_all(request, &[(kind, message)]).await
    }

    /// Notes `entries` on the request's timeline; a request that ended meanwhile takes
    /// none, which is no error.
    pub(crate) async fn note_all(
        &self,
        request: &Request,
        entries: &[(&str, String)],
    ) -> Result<(), RequestError> {
        match self
            .requests
            .note_all(request.id, Some(request), "worker", entries)
            .await
        {
            Ok(()) | Err(RequestError::InvalidTransition { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Notes `message` on the timeline the first time the request reaches `step` (a
    /// redelivered message does not repeat it).
    pub(crate) async fn note_once(
        &self,
        request: &Request,
        step: &str,
        kind: &str,
        message: String,
    ) -> Result<(), RequestError> {
        if self
            .engine
            .first_time(&request.id.to_string(), step)
            .await?
        {
            self.note(request, kind, message).await?;
        }
        Ok(())
    }

    /// Writes the entries gathered in `notes` on the request's timeline, in one write.
    pub(crate) async fn write(&self, request: &Request, notes: Notes) -> Result<(), RequestError> {
        self.note_all(request, &notes.0).await
    }

    pub(crate) async fn fail(
        &self,
        request: &Request,
        reason: &str,
    ) -> Result<Disposition, RequestError> {
        self.fail_from(request.id, None, reason).await
    }

    /// Fails `request`, which this handler has just read, without reading it again.
    /// Only a provision goes from the copy: ending one as failed settles no resource
    /// (`RequestEnd` runs before the write), so a copy that went stale costs just a
    /// conflicting write and a re-read. A change's end releases its resource's lock and
    /// is decided on a fresh read.
    async fn fail_as_read(
        &self,
        request: Request,
        reason: &str,
    ) -> Result<Disposition, RequestError> {
        let id = request.id;
        let known = (request.operation == Operation::Provision).then_some(request);
        self.fail_from(id, known, reason).await
    }

    async fn fail_from(
        &self,
        id: RequestId,
        known: Option<Request>,
        reason: &str,
    ) -> Result<Disposition, RequestError> {
        tracing::warn!(reason, "request failed");
        let reason = reason.to_owned();
        self.requests
            .transition_from(
                id,
                known,
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

/// Timeline entries gathered while a message is handled, written together when it is
/// done with (one write instead of one per entry).
#[derive(Default)]
pub(crate) struct Notes(Vec<(&'static str, String)>);

impl Notes {
    pub(crate) fn add(&mut self, kind: &'static str, message: String) {
        self.0.push((kind, message));
    }

    /// The engine's notes, each prefixed with `label`.
    pub(crate) fn engine(&mut self, label: &str, steps: Vec<Note>) {
        for step in steps {
            tracing::info!(kind = step.kind, message = %step.message, "fulfillment");
            self.0.push((step.kind, format!("{label}{}", step.message)));
        }
    }
}

/// How an item's automated run stands.
pub(crate) enum ItemRun {
    /// Every action succeeded: the item's declared outputs (or, from a rollback, the
    /// rollback actions' outputs).
    Completed(Map<String, Value>),
    /// Come back after this long.
    Waiting(Duration),
    /// Failed for good (after the rollback, when there was one): why.
    Failed(String),
}

/// The issue labelled `label`, opened with `fields` unless a previous attempt did.
pub(crate) async fn open_ticket(
    jira: &JiraClient,
    label: &str,
    fields: Map<String, Value>,
) -> Result<crate::integrations::jira::Issue, JiraError> {
    match jira.find_by_label(label).await? {
        Some(issue) => Ok(issue),
        None => jira.create_issue(fields).await,
    }
}

/// Whether a failed automation hands over to a person.
pub(crate) fn falls_back(item: &crate::catalog::Located<crate::catalog::CatalogItem>) -> bool {
    item.doc.spec.fulfillment.fallback == Some(Fallback::Manual)
        && item.doc.spec.fulfillment.manual.is_some()
}

/// The outputs an item declares, picked from its actions' outputs.
pub(crate) fn declared_outputs(
    item: &crate::catalog::Located<crate::catalog::CatalogItem>,
    outputs: &Map<String, Value>,
) -> Map<String, Value> {
    let declared = &item.doc.spec.outputs;
    let mut result = Map::new();
    for values in outputs.values() {
        if let Value::Object(values) = values {
            for (name, value) in values {
                if declared.contains_key(name) {
                    result.insert(name.clone(), value.clone());
                }
            }
        }
    }
    result
}

/// Whether every `outputs.<id>` an action reads belongs to an action that succeeded.
fn reads_only(action: &crate::catalog::document::Action, succeeded: &Map<String, Value>) -> bool {
    super::vars::scope_keys(&action_with(action), "outputs")
        .iter()
        .all(|id| succeeded.contains_key(id))
}

/// Exponential backoff from 1 s, at most `MAX_BACKOFF`; a server's Retry-After wins.
pub(crate) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or_else(|| Duration::from_secs(1u64 << attempt.min(9)))
        .min(MAX_BACKOFF)
}
