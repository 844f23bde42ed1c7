//! The tasks of a request's state machine ([`TaskMessage`]): `provision` fulfils one
//! component (its inputs rendered from the request's fields and the outputs of the
//! components before it), `undo` runs a completed component's rollback, `complete` and
//! `fail` settle the request. Each is answered with SendTaskSuccess or SendTaskFailure;
//! long work heartbeats and comes back later, and a component a person fulfils is
//! answered when its JIRA issue is done ([`super::jira`]).
//!
//! Delivery is at least once, so every step is idempotent: actions run through the
//! engine's records, a component's completion is recorded before it is reported, and an
//! answer to a task that is over is ignored.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::jira::{COMPONENT_TICKETS, ComponentTicket};
use super::steps::{About, ItemRun, Notes, falls_back, open_ticket};
use super::{Disposition, Worker, backoff};
use crate::approvals::model::ApprovalStatus;
use crate::approvals::service::Opened;
use crate::bundle::task::{
    CANCELLED_ERROR, ENDED_ERROR, FAILED_ERROR, REJECTED_ERROR, SINGLE_COMPONENT, TRANSIENT_ERROR,
    TaskKind, TaskMessage,
};
use crate::catalog::Located;
use crate::catalog::document::{CatalogBundle, CatalogItem, Component, OnFailure, approval_stages};
use crate::catalog::schema::{Violation, coerce};
use crate::catalog::snapshot::{CatalogSnapshot, TargetRef};
use crate::fulfillment::engine::RunFor;
use crate::fulfillment::manual::{issue_fields, request_label};
use crate::fulfillment::mode::automated_section;
use crate::integrations::jira::JiraError;
use crate::ports::{StoreError, WorkflowError};
use crate::requests::model::{
    EventDetail, EventKind, Request, RequestId, RequestStatus, TargetKind, Ticket, Transition,
};
use crate::requests::service::RequestError;
use crate::resources::completed::CompletedComponent;
use crate::template::render::RenderFailure;

/// The step marked, with the component, when a bundle's component fails.
const FAILING: &str = "failing";

/// Why a bundle component's inputs could not be made.
#[derive(Debug, thiserror::Error)]
enum InputsError {
    #[error(transparent)]
    Render(#[from] RenderFailure),
    #[error("the component's inputs did not render to an object")]
    NotAnObject,
    #[error("the inputs do not fit `{item}`'s form: {}", listed(violations))]
    Form {
        item: String,
        violations: Vec<Violation>,
    },
}

/// `pointer: message` of each violation, in one line.
fn listed(violations: &[Violation]) -> String {
    let list: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.pointer, v.message))
        .collect();
    list.join("; ")
}

/// What a task came to.
enum TaskOutcome {
    Succeeded(Value),
    Failed {
        error: String,
        cause: String,
    },
    /// The work goes on: heartbeat, and handle the task again after this long.
    Later(Duration),
    /// Someone else answers the task (the webhook of a JIRA issue).
    Handed,
}

fn failed(cause: impl Into<String>) -> TaskOutcome {
    TaskOutcome::Failed {
        error: FAILED_ERROR.to_owned(),
        cause: cause.into(),
    }
}

impl Worker {
    /// Carries out a task of a request's state machine and answers it.
    pub(super) async fn run_task(&self, task: &TaskMessage, attempt: u32) -> Disposition {
        let outcome = match task.task {
            TaskKind::Approve => self.approve(task).await,
            TaskKind::Provision => self.provision(task).await,
            TaskKind::Undo => self.undo(task).await,
            TaskKind::Complete => self.complete(task).await,
            TaskKind::Fail => self.record_failure(task).await,
        };
        let token = &task.task_token;
        let answered = match outcome {
            Ok(TaskOutcome::Succeeded(output)) => {
                self.workflows.send_task_success(token, &output).await
            }
            Ok(TaskOutcome::Failed { error, cause }) => {
                tracing::info!(error, cause, "task failed");
                self.workflows
                    .send_task_failure(token, &error, &cause)
                    .await
            }
            // A task without `HeartbeatSeconds` is bounded by its timeout alone.
            Ok(TaskOutcome::Later(after)) if !task.heartbeat => {
                return Disposition::Continue(after);
            }
            Ok(TaskOutcome::Later(after)) => {
                match self.workflows.send_task_heartbeat(token).await {
                    Ok(()) => return Disposition::Continue(after),
                    Err(e) => Err(e),
                }
            }
            Ok(TaskOutcome::Handed) => Ok(()),
            Err(RequestError::Store(e)) if attempt < self.max_receives => {
                tracing::warn!(error = %e, "storage failed while running a task; will retry");
                return Disposition::RetryAfter(backoff(attempt, None));
            }
            // The state machine retries this error with its own backoff.
            Err(RequestError::Store(e)) => {
                self.workflows
                    .send_task_failure(token, TRANSIENT_ERROR, &e.to_string())
                    .await
            }
            Err(e) => {
                self.workflows
                    .send_task_failure(token, FAILED_ERROR, &e.to_string())
                    .await
            }
        };
        match answered {
            Ok(()) => Disposition::Done,
            Err(WorkflowError::TaskTimedOut | WorkflowError::InvalidToken) => {
                tracing::info!("the task is over already (answered, timed out or stopped)");
                Disposition::Done
            }
            Err(WorkflowError::Store(e)) => {
                tracing::warn!(error = %e, "could not answer a task; will retry");
                Disposition::RetryAfter(backoff(attempt, None))
            }
            Err(e) => {
                tracing::error!(error = %e, "the workflow engine refused a task's answer");
                Disposition::Done
            }
        }
    }

    /// The task's request if it is still going on; otherwise how to answer the task.
    async fn live_request(
        &self,
        task: &TaskMessage,
    ) -> Result<Result<Request, TaskOutcome>, RequestError> {
        let Some(request) = self.requests.store.get(&task.request_id).await? else {
            return Ok(Err(failed(format!(
                "there is no request `{}`",
                task.request_id
            ))));
        };
        if request.status.is_terminal() {
            return Ok(Err(TaskOutcome::Failed {
                error: ENDED_ERROR.to_owned(),
                cause: format!("the request is {}", request.status),
            }));
        }
        Ok(Ok(request))
    }

    /// Opens an approval stage for its approvers, whose decision answers the task
    /// (`POST /approvals/{id}/approve`); a stage whose policy does not apply to the
    /// request (its `when` does not hold) is passed at once.
    async fn approve(&self, task: &TaskMessage) -> Result<TaskOutcome, RequestError> {
        let request = match self.live_request(task).await? {
            Ok(request) => request,
            Err(outcome) => return Ok(outcome),
        };
        let Some(number) = task.approval.filter(|n| *n > 0) else {
            return Ok(failed("an approval task without its stage number"));
        };
        let snapshot = self.requests.catalog.current();
        let policies = match snapshot.target(&request.target) {
            Some(target) => target.approvals(),
            None => {
                return Ok(failed(format!(
                    "`{}` is no longer in the catalog",
                    request.target
                )));
            }
        };
        let stages = approval_stages(policies, request.operation);
        let Some((policy, stage)) = stages.get(number as usize - 1) else {
            return Ok(failed(format!(
                "`{}` no longer has approval stage {number}",
                request.target
            )));
        };
        if !policy.applies_to(&request.fields) {
            return Ok(TaskOutcome::Succeeded(json!({"skipped": true})));
        }
        let opened = self
            .approvals
            .open(
                &request,
                number,
                policy,
                stage,
                task.escalated,
                &task.task_token,
            )
            .await?;
        Ok(match opened {
            Opened::Waiting => TaskOutcome::Handed,
            Opened::Decided(approval) if approval.status == ApprovalStatus::Approved => {
                TaskOutcome::Succeeded(json!({"approvedBy": approval.approved_by()}))
            }
            Opened::Decided(approval) => TaskOutcome::Failed {
                error: REJECTED_ERROR.to_owned(),
                cause: format!("`{}` / `{}` was denied", approval.policy, approval.stage),
            },
        })
    }

    /// Fulfils one component: renders its inputs, then runs its item's actions (or
    /// opens a JIRA issue for a person).
    async fn provision(&self, task: &TaskMessage) -> Result<TaskOutcome, RequestError> {
        let request = match self.live_request(task).await? {
            Ok(request) => request,
            Err(outcome) => return Ok(outcome),
        };
        let mut notes = Notes::default();
        let id = task.component_id();
        let on_failure = self.on_failure(&request);
        let outcome = match self.failed_sibling(&request, id).await? {
            Some(sibling) => {
                let why = format!("not started: component `{sibling}` failed");
                notes.add(About::component(id).failure(EventKind::ComponentNotStarted, &why));
                Ok(TaskOutcome::Failed {
                    error: CANCELLED_ERROR.to_owned(),
                    cause: format!("{id}: {why}"),
                })
            }
            None => {
                let keep = match request.kind {
                    TargetKind::Bundle => on_failure == Some(OnFailure::Pause),
                    TargetKind::Item => on_failure.is_some_and(|f| f != OnFailure::Rollback),
                };
                self.provision_for(&request, task, keep, &mut notes).await
            }
        };
        if let Ok(TaskOutcome::Failed { error, cause }) = &outcome
            && ![CANCELLED_ERROR, ENDED_ERROR].contains(&error.as_str())
        {
            match on_failure {
                Some(OnFailure::Pause) => {
                    self.write(&request, std::mem::take(&mut notes)).await?;
                    let mut pause = Transition::ended(
                        RequestStatus::Paused,
                        "worker",
                        format!(
                            "{cause} (paused: an admin can redrive the request from here, or cancel it)"
                        ),
                    );
                    pause.component = About::component(id).id().map(str::to_owned);
                    pause.detail.error = Some(error.clone());
                    self.settle(&request, pause).await?;
                }
                // Siblings not started yet are not started at all: what they would
                // make would only be rolled back.
                Some(_) if request.kind == TargetKind::Bundle => {
                    self.engine
                        .mark(request.id, FAILING, &json!({"component": id}))
                        .await?;
                }
                _ => {}
            }
        }
        self.write(&request, notes).await?;
        outcome
    }

    /// What the request does when a component (or an item's action) fails: the bundle's
    /// `onFailure`, or the automated item's.
    fn on_failure(&self, request: &Request) -> Option<OnFailure> {
        match self.requests.catalog.current().target(&request.target) {
            Some(TargetRef::Bundle(bundle)) => Some(bundle.doc.spec.on_failure),
            Some(TargetRef::Item(item)) => item
                .doc
                .spec
                .fulfillment
                .automated
                .as_ref()
                .map(|a| a.on_failure),
            None => None,
        }
    }

    /// The sibling whose failure means component `id` is not to start: a bundle's
    /// component that has not started while another has failed. One that started runs to
    /// its end (cutting it short could leave what it is making with no record), and then
    /// is undone with the others.
    async fn failed_sibling(
        &self,
        request: &Request,
        id: &str,
    ) -> Result<Option<String>, RequestError> {
        if request.kind != TargetKind::Bundle {
            return Ok(None);
        }
        let Some(failing) = self.engine.marked(request.id, FAILING).await? else {
            return Ok(None);
        };
        let sibling = failing["component"].as_str().unwrap_or_default();
        if sibling == id
            || self
                .engine
                .marked(request.id, &format!("component/{id}/started"))
                .await?
                .is_some()
        {
            return Ok(None);
        }
        Ok(Some(sibling.to_owned()))
    }

    /// `keep`: a failed item keeps what its actions made (its request pauses, to be
    /// redriven from the failed action) instead of rolling it back.
    async fn provision_for(
        &self,
        request: &Request,
        task: &TaskMessage,
        keep: bool,
        notes: &mut Notes,
    ) -> Result<TaskOutcome, RequestError> {
        let snapshot = self.requests.catalog.current();
        let id = task.component_id();
        let about = About::component(id);
        let label = about.label();
        let (item, fields) = match snapshot.target(&request.target) {
            Some(TargetRef::Bundle(bundle)) => {
                let Some(component) = bundle.doc.spec.components.iter().find(|c| c.id == id) else {
                    return Ok(failed(format!(
                        "the bundle `{}` has no component `{id}`",
                        request.target
                    )));
                };
                let Some(item) = snapshot.catalog.item(&component.item) else {
                    return Ok(failed(format!(
                        "{label}`{}` is no longer in the catalog",
                        component.item
                    )));
                };
                let inputs = self.component_inputs(
                    &snapshot,
                    request,
                    bundle,
                    component,
                    item,
                    task.components.as_ref(),
                );
                match inputs {
                    Ok(fields) => (item, fields),
                    Err(why) => {
                        let why = why.to_string();
                        notes.add(about.failure(EventKind::ComponentFailed, &why));
                        return Ok(failed(format!("{label}{why}")));
                    }
                }
            }
            Some(TargetRef::Item(item)) => (item, request.fields.clone()),
            None => {
                return Ok(failed(format!(
                    "`{}` is no longer in the catalog",
                    request.target
                )));
            }
        };
        let name = &item.doc.metadata.name;
        // A single item's timeline already says it started.
        if about.id().is_some()
            && self
                .engine
                .first_time(request.id, &format!("component/{id}/started"))
                .await?
        {
            notes.add(about.note(
                EventKind::ComponentStarted,
                format!("provisioning `{name}`"),
            ));
        }
        let mut scoped = request.clone();
        scoped.fields = fields.clone();
        let forced = self.mode_override(name).await?;
        if let Some(by) = &forced
            && self
                .engine
                .first_time(request.id, &format!("component/{id}/mode_forced"))
                .await?
        {
            notes.add(about.note(
                EventKind::ModeForced,
                format!(
                    "an admin ({}) forced `{name}` to manual: {}",
                    by.by, by.reason
                ),
            ));
        }
        let forced = forced.is_some();
        if let Some(automated) = automated_section(&item.doc.spec.fulfillment, forced) {
            let mut ctx = self.context(&scoped, &item.doc.metadata);
            self.in_bundle(&mut ctx, request, about.id());
            let mut run = RunFor::of(request, name, id, &ctx);
            run.hand_over_when_open = falls_back(item);
            match self
                .run_automated(item, automated, &run, about, keep, notes)
                .await?
            {
                ItemRun::Completed(outputs) => {
                    return self
                        .component_done(request, id, fields, outputs, notes)
                        .await;
                }
                ItemRun::Waiting(after) => return Ok(TaskOutcome::Later(after)),
                ItemRun::Failed(reason) if !falls_back(item) => {
                    notes.add(about.failure(EventKind::ComponentFailed, &reason));
                    return Ok(failed(format!("{label}{reason}")));
                }
                ItemRun::Failed(reason) => {
                    if self
                        .engine
                        .first_time(request.id, &format!("component/{id}/fallback"))
                        .await?
                    {
                        notes.add(
                            about
                                .note(
                                    EventKind::Fallback,
                                    format!("automation failed; opening a JIRA ticket for a person instead: {reason}"),
                                )
                                .with(EventDetail::cause(reason)),
                        );
                    }
                }
            }
        }
        self.component_ticket(request, &scoped, item, id, task, notes)
            .await
    }

    /// Renders a bundle component's inputs for its item: the bundle's templates with the
    /// request's fields and the outputs of the components completed so far, then
    /// converted to the types the item's form declares, defaulted and checked.
    fn component_inputs(
        &self,
        snapshot: &CatalogSnapshot,
        request: &Request,
        bundle: &Located<CatalogBundle>,
        component: &Component,
        item: &Located<CatalogItem>,
        components: Option<&Map<String, Value>>,
    ) -> Result<Map<String, Value>, InputsError> {
        let mut ctx = self.context(request, &bundle.doc.metadata);
        self.in_bundle(&mut ctx, request, Some(&component.id));
        ctx["components"] = Value::Object(components.cloned().unwrap_or_default());
        let rendered = self.engine.renderer.render_value(
            &Value::Object(component.inputs.clone()),
            &ctx,
            &format!("components/{}/inputs", component.id),
        )?;
        let Value::Object(mut fields) = rendered else {
            return Err(InputsError::NotAnObject);
        };
        coerce(&mut fields, &item.doc.spec.presentation.schema);
        let name = &item.doc.metadata.name;
        snapshot
            .check_fields(name, fields)
            .map_err(|violations| InputsError::Form {
                item: name.clone(),
                violations,
            })
    }

    /// Records a completed component (for its undo) and reports its outputs.
    async fn component_done(
        &self,
        request: &Request,
        id: &str,
        fields: Map<String, Value>,
        outputs: Map<String, Value>,
        notes: &mut Notes,
    ) -> Result<TaskOutcome, RequestError> {
        CompletedComponent {
            fields,
            outputs: outputs.clone(),
        }
        .record(self.engine.state.as_ref(), request.id, id)
        .await?;
        let about = About::component(id);
        if about.id().is_some() {
            let names: Vec<String> = outputs.keys().cloned().collect();
            let message = if names.is_empty() {
                "completed".to_owned()
            } else {
                format!("completed with {}", names.join(", "))
            };
            notes.add(
                about
                    .note(EventKind::ComponentCompleted, message)
                    .with(EventDetail {
                        outputs: names,
                        ..Default::default()
                    }),
            );
        }
        Ok(TaskOutcome::Succeeded(json!({ "outputs": outputs })))
    }

    /// Hands a component to a person: opens its JIRA issue, which answers the task when
    /// it is done (see `POST /webhooks/jira`).
    async fn component_ticket(
        &self,
        request: &Request,
        scoped: &Request,
        item: &Located<CatalogItem>,
        id: &str,
        task: &TaskMessage,
        notes: &mut Notes,
    ) -> Result<TaskOutcome, RequestError> {
        let about = About::component(id);
        let label = about.label();
        let name = &item.doc.metadata.name;
        let Some(manual) = &item.doc.spec.fulfillment.manual else {
            return Ok(failed(format!(
                "{label}`{name}` has no manual section, and its mode was forced to manual"
            )));
        };
        let Some(jira) = &self.jira else {
            return Ok(failed(format!(
                "{label}`{name}` is fulfilled by a person through JIRA, and none is configured (jira.url)"
            )));
        };
        let mut ctx = self.context(scoped, &item.doc.metadata);
        self.in_bundle(&mut ctx, request, about.id());
        let ticket_label = format!("{}-{id}", request_label(request.id));
        let fields = match issue_fields(&manual.ticket, &ticket_label, &self.engine.renderer, &ctx)
        {
            Ok(fields) => fields,
            Err(e) => {
                return Ok(failed(format!(
                    "{label}the item's ticket template failed: {e}"
                )));
            }
        };
        match open_ticket(jira, &ticket_label, fields).await {
            Ok(issue) => {
                let waiting = ComponentTicket {
                    request_id: request.id,
                    component: id.to_owned(),
                    item: name.clone(),
                    task_token: task.task_token.clone(),
                    fields: scoped.fields.clone(),
                    url: issue.url.clone(),
                };
                let value = serde_json::to_value(&waiting)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let ticket = Ticket {
                    key: issue.key,
                    url: issue.url,
                };
                match self
                    .engine
                    .state
                    .put(COMPONENT_TICKETS, &ticket.key, &value, None)
                    .await
                {
                    // A single item's request is the ticket's: it waits for it, and
                    // shows it, as a manual item's does.
                    Ok(_) if about.id().is_none() => {
                        self.settle(request, Transition::ticket_opened("worker", ticket))
                            .await?;
                    }
                    Ok(_) => notes.add(
                        about
                            .note(
                                EventKind::TicketCreated,
                                format!("JIRA issue {} opened: {}", ticket.key, ticket.url),
                            )
                            .with(EventDetail::ticket(ticket)),
                    ),
                    Err(StoreError::VersionConflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(TaskOutcome::Handed)
            }
            Err(JiraError::Permanent { messages, .. }) => Ok(failed(format!(
                "{label}JIRA refused the ticket: {}",
                messages.join("; ")
            ))),
            Err(JiraError::Transient {
                message,
                retry_after,
            }) => {
                tracing::warn!(reason = %message, "JIRA unavailable; will retry");
                Ok(TaskOutcome::Later(backoff(1, retry_after)))
            }
        }
    }

    /// Undoes a component that completed: its item's rollback actions, with the inputs
    /// and action outputs it completed with. A component that never completed (it
    /// failed, or never started) has nothing to undo.
    async fn undo(&self, task: &TaskMessage) -> Result<TaskOutcome, RequestError> {
        let id = task.component_id();
        let about = About::component(id);
        let label = about.label();
        let not_undone = || Ok(TaskOutcome::Succeeded(json!({"undone": false})));
        let Some(request) = self.requests.store.get(&task.request_id).await? else {
            return not_undone();
        };
        if request.status == RequestStatus::Completed {
            // Its requester has it: rollback is for requests that did not complete (a
            // late or stray undo must never take a delivered resource away).
            tracing::warn!(component = id, "an undo of a completed request; kept");
            return not_undone();
        }
        let state = self.engine.state.as_ref();
        let Some(completed) = CompletedComponent::read(state, request.id, id).await? else {
            return not_undone();
        };
        let snapshot = self.requests.catalog.current();
        let item_name = task.item.as_deref().unwrap_or(&request.target);
        let Some(item) = snapshot.catalog.item(item_name) else {
            return Ok(failed(format!(
                "{label}`{item_name}` is no longer in the catalog"
            )));
        };
        let Some(automated) = &item.doc.spec.fulfillment.automated else {
            return not_undone();
        };
        let mut scoped = request.clone();
        scoped.fields = completed.fields;
        let mut ctx = self.context(&scoped, &item.doc.metadata);
        self.in_bundle(&mut ctx, &request, about.id());
        let run = RunFor::of(&request, &item.doc.metadata.name, id, &ctx);
        let succeeded = self
            .engine
            .succeeded_outputs(&run, "actions", &automated.actions)
            .await?;
        let mut notes = Notes::default();
        let rolled = self
            .roll_back(automated, &run, &succeeded, about, &mut notes)
            .await;
        let outcome = match rolled? {
            None => {
                notes.add(about.note(
                    EventKind::ComponentKept,
                    "nothing to roll back automatically (it was not provisioned by its actions)",
                ));
                TaskOutcome::Succeeded(json!({"undone": false}))
            }
            Some(ItemRun::Completed(_)) => {
                notes.add(about.note(EventKind::ComponentRolledBack, "rolled back"));
                TaskOutcome::Succeeded(json!({"undone": true}))
            }
            Some(ItemRun::Waiting(after)) => TaskOutcome::Later(after),
            Some(ItemRun::Failed(why)) => {
                let why = format!("the rollback failed: {why}");
                notes.add(about.failure(EventKind::RollbackFailed, &why));
                failed(format!("{label}{why}"))
            }
        };
        self.write(&request, notes).await?;
        Ok(outcome)
    }

    /// Every component completed: renders the outputs and completes the request.
    ///
    /// A redelivered task (its first delivery completed the request, then could not
    /// answer: a crash, a storage error after the write) finds the request completed and
    /// answers as the first would have: failing it would make the state machine roll back
    /// a request its requester already has.
    async fn complete(&self, task: &TaskMessage) -> Result<TaskOutcome, RequestError> {
        if let Some(done) = self.requests.store.get(&task.request_id).await?
            && done.status == RequestStatus::Completed
        {
            // Settling again is a no-op but for what follows the end, which the first
            // delivery may have cut short.
            let again = Transition::completed("worker", "", done.outputs.clone());
            self.settle(&done, again).await?;
            return Ok(TaskOutcome::Succeeded(Value::Object(done.outputs)));
        }
        let request = match self.live_request(task).await? {
            Ok(request) => request,
            Err(outcome) => return Ok(outcome),
        };
        let components = task.components.clone().unwrap_or_default();
        let snapshot = self.requests.catalog.current();
        let (outputs, count) = match snapshot.target(&request.target) {
            Some(TargetRef::Bundle(bundle)) => {
                let mut ctx = self.context(&request, &bundle.doc.metadata);
                self.in_bundle(&mut ctx, &request, None);
                ctx["components"] = Value::Object(components.clone());
                let mut outputs = Map::new();
                for (name, output) in &bundle.doc.spec.outputs {
                    let value = self.engine.renderer.render_value(
                        &Value::String(output.value.clone()),
                        &ctx,
                        &format!("outputs/{name}/value"),
                    );
                    match value {
                        Ok(value) => outputs.insert(name.clone(), value),
                        Err(e) => return Ok(failed(format!("the bundle's outputs: {e}"))),
                    };
                }
                (outputs, bundle.doc.spec.components.len())
            }
            found => {
                let outputs = components
                    .get(SINGLE_COMPONENT)
                    .and_then(|c| c.get("outputs"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                // Sensitive outputs are kept as references only.
                let outputs = match found {
                    Some(TargetRef::Item(item)) => {
                        crate::resources::model::seal_outputs(&item.doc.spec.outputs, &outputs)
                    }
                    _ => outputs,
                };
                (outputs, 1)
            }
        };
        let message = match (&request.ticket, request.kind) {
            (_, TargetKind::Bundle) => format!("all {count} components completed"),
            (Some(ticket), TargetKind::Item) => format!("JIRA issue {} is done", ticket.key),
            (None, TargetKind::Item) => "all actions succeeded".to_owned(),
        };
        let mut done = Transition::completed("worker", message, outputs.clone());
        done.detail.ticket = request.ticket.clone();
        self.settle(&request, done).await?;
        Ok(TaskOutcome::Succeeded(Value::Object(outputs)))
    }

    /// The execution failed (after its rollback, if any): the request fails with the
    /// original error's cause.
    async fn record_failure(&self, task: &TaskMessage) -> Result<TaskOutcome, RequestError> {
        let Some(request) = self.requests.store.get(&task.request_id).await? else {
            return Ok(TaskOutcome::Succeeded(json!({})));
        };
        let id = request.id;
        let (name, given) = task.failure();
        let cause = match given {
            Some(cause) => cause.to_owned(),
            None => self.recorded_cause(&id, name).await?,
        };
        let mut reason = if [FAILED_ERROR, ENDED_ERROR, REJECTED_ERROR].contains(&name) {
            cause.clone()
        } else {
            format!("{name}: {cause}")
        };
        if let Some(TargetRef::Bundle(bundle)) =
            self.requests.catalog.current().target(&request.target)
            && bundle.doc.spec.on_failure == OnFailure::Rollback
        {
            let state = self.engine.state.as_ref();
            let mut completed = 0;
            for component in &bundle.doc.spec.components {
                let done = CompletedComponent::read(state, id, &component.id).await?;
                completed += usize::from(done.is_some());
            }
            if completed > 0 {
                reason.push_str(&format!(
                    " ({completed} completed component{} rolled back; see the timeline)",
                    if completed == 1 { " was" } else { "s were" }
                ));
            }
        }
        let next = if name == REJECTED_ERROR {
            RequestStatus::Rejected
        } else {
            RequestStatus::Failed
        };
        let mut end = Transition::ended(next, "worker", reason);
        end.detail.error = Some(name.to_owned());
        end.detail.cause = Some(cause);
        let ended = self
            .requests
            .settle(request.id, end.from(request.clone()))
            .await?;
        // Counted once: a redelivered task finds the request ended already.
        if ended.is_some() && !request.status.is_terminal() {
            crate::metrics::count(crate::metrics::EXECUTIONS_FAILED, &[], 1)
        }
        Ok(TaskOutcome::Succeeded(json!({})))
    }

    /// Why the request failed when the execution's error carries no cause (a timeout, or
    /// an engine that drops the cause of SendTaskFailure): the cause of the last
    /// component failure on the timeline, else what the error's name means.
    async fn recorded_cause(&self, id: &RequestId, name: &str) -> Result<String, RequestError> {
        let events = self.requests.store.events(id).await?;
        let recorded = events
            .iter()
            .rev()
            .find(|e| e.kind == EventKind::ComponentFailed)
            .and_then(|e| match (&e.detail.cause, &e.component) {
                (Some(cause), Some(component)) => Some(format!("{component}: {cause}")),
                (Some(cause), None) => Some(cause.clone()),
                // Stored before entries had a cause: the message says it whole.
                (None, _) => e.message.clone(),
            });
        Ok(recorded.unwrap_or_else(|| {
            match name {
                "States.Timeout" => "a component did not finish within its time",
                "States.HeartbeatTimeout" => "a component stopped reporting progress",
                _ => "no cause given",
            }
            .to_owned()
        }))
    }
}
