//! Carrying a new request forward from its hand-off: a manual item gets its JIRA issue;
//! a bundle or an automated item starts its state machine's execution, whose tasks come
//! back to the worker ([`super::component`]). Changes and deletions go to
//! [`super::change`].

use serde_json::Value;

use super::steps::{About, open_ticket};
use super::{Disposition, Worker, backoff};
use crate::bundle::asl::{compile_bundle, compile_item, gated, machine_name};
use crate::catalog::document::{ManualFulfillment, Mode};
use crate::catalog::snapshot::{CatalogSnapshot, TargetRef};
use crate::fulfillment::manual::{issue_fields, request_label};
use crate::fulfillment::mode::automated_section;
use crate::integrations::jira::{JiraClient, JiraError};
use crate::ports::WorkflowError;
use crate::requests::model::{
    EventDetail, EventKind, Operation, Request, RequestId, RequestStatus, Ticket, Transition,
};
use crate::requests::service::RequestError;

impl Worker {
    /// Carries request `id` forward as far as it goes now.
    pub(super) async fn fulfill(
        &self,
        id: RequestId,
        attempt: u32,
    ) -> Result<Disposition, RequestError> {
        let service = &self.requests;
        let Some(mut request) = service.store.get(&id).await? else {
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
        // Approvals are stages of the item's state machine: a manual item that needs
        // them runs as one too, its one component opening the JIRA issue.
        if automated_section(fulfillment, forced_manual.is_some()).is_some()
            || gated(&item.doc.spec.approvals, Operation::Provision)
        {
            // Its actions run as the one component of the item's state machine; a
            // fallback to a person happens there too.
            return Box::pin(self.start_execution(request, &snapshot, TargetRef::Item(item))).await;
        }
        if let Some(forced) = &forced_manual
            && request.status == RequestStatus::Submitted
        {
            request = self.start(&request).await?;
            let note = About::request().note(
                EventKind::ModeForced,
                format!(
                    "an admin ({}) forced this item to manual: {}",
                    forced.by, forced.reason
                ),
            );
            service
                .note(request.id, Some(&request), "worker", vec![note])
                .await?;
        }
        let Some(manual) = &fulfillment.manual else {
            return self
                .fail_as_read(
                    request,
                    "the item has no manual section, and its mode was forced to manual",
                )
                .await;
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
        // A scheduled manual request opens its issue at its time: the queue brings the
        // request back then (in hops of at most MAX_DELAY).
        if let Some(at) = request.not_before {
            let wait = at - self.requests.clock.now();
            if wait.is_positive() {
                self.note_scheduled(&request, at).await?;
                return Ok(Disposition::Continue(
                    wait.unsigned_abs().min(super::MAX_DELAY),
                ));
            }
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
        manual: &ManualFulfillment,
        jira: &JiraClient,
        ctx: &Value,
        summary_prefix: Option<&str>,
        attempt: u32,
    ) -> Result<Disposition, RequestError> {
        let label = request_label(request.id);
        let mut fields = match issue_fields(&manual.ticket, &label, &self.engine.renderer, ctx) {
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
        match open_ticket(jira, &label, fields).await {
            Ok(issue) => {
                let ticket = Ticket {
                    key: issue.key,
                    url: issue.url,
                };
                tracing::info!(ticket = %ticket.key, "JIRA issue opened");
                self.requests
                    .apply(
                        request.id,
                        Transition::ticket_opened("worker", ticket).from(request.clone()),
                    )
                    .await?;
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
        snapshot: &CatalogSnapshot,
        target: TargetRef<'_>,
    ) -> Result<Disposition, RequestError> {
        if request.status == RequestStatus::Submitted {
            request = self.start(&request).await?;
        }
        // An execution lasts a year at most: one for a time further ahead starts later
        // (the queue brings the request back, in hops of at most MAX_DELAY).
        if let Some(at) = request.not_before
            && at - self.requests.clock.now() > time::Duration::days(300)
        {
            self.note_scheduled(&request, at).await?;
            return Ok(Disposition::Continue(super::MAX_DELAY));
        }
        let machine = machine_name(&target);
        let name = request.id.to_string();
        let mut input = serde_json::json!({ "requestId": name });
        if let Some(at) = request.not_before {
            // The state machine waits for it (after its approvals).
            input["notBefore"] = serde_json::json!(crate::timestamp::format(at));
            self.note_scheduled(&request, at).await?;
        }
        let mut started = self.workflows.start(&machine, &name, &input).await;
        if matches!(started, Err(WorkflowError::NoSuchMachine(_))) {
            let definition = match target {
                TargetRef::Bundle(bundle) => {
                    compile_bundle(&snapshot.catalog, &bundle.doc.metadata.name)
                }
                TargetRef::Item(item) => Ok(compile_item(&item.doc)),
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
                let note = About::request()
                    .note(EventKind::ExecutionStarted, message)
                    .with(EventDetail {
                        execution: Some(arn),
                        ..Default::default()
                    });
                self.note_once(&request, "execution", note).await?;
                Ok(Disposition::Done)
            }
            Err(WorkflowError::Store(e)) => Err(e.into()),
            Err(e) => {
                self.fail(&request, &format!("the execution did not start: {e}"))
                    .await
            }
        }
    }
}

impl Worker {
    /// Notes once that the request waits for its scheduled time.
    pub(super) async fn note_scheduled(
        &self,
        request: &Request,
        at: time::OffsetDateTime,
    ) -> Result<(), RequestError> {
        if at <= self.requests.clock.now() {
            return Ok(());
        }
        let note = About::request().note(
            EventKind::Scheduled,
            match &request.waiting_for {
                Some(why) => format!("waiting: it {why}"),
                None => format!(
                    "scheduled: nothing runs before {}",
                    crate::timestamp::format(at)
                ),
            },
        );
        self.note_once(request, "scheduled", note).await
    }
}
