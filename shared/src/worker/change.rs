//! Day-2 changes and deletions of a recorded resource: an update runs the item's actions
//! again with the `resource` scope; a deletion runs its `deprovision` actions, for a
//! stack component by component, dependents first. Actions go through the engine's
//! durable records, so a redelivered message never repeats one that succeeded; a manual
//! item's change is a JIRA issue, like its provisioning. The request holds the
//! resource's lock throughout and renews its lease at every step; a request that lost it
//! (its lease expired and another change took over) stops. How a change is planned and
//! submitted is [`crate::resources::change`].

use std::time::Duration;

use serde_json::{Map, Value};

use super::steps::{About, Notes, declared_outputs};
use super::{Disposition, MAX_DELAY, Worker};
use crate::approvals::model::{Approval, ApprovalStatus};
use crate::approvals::service::WORKER_TOKEN;
use crate::bundle::task::SINGLE_COMPONENT;
use crate::catalog::document::approval_stages;
use crate::fulfillment::engine::{Progress, RunFor};
use crate::fulfillment::mode::automated_section;
use crate::requests::model::{EventKind, Operation, Request, RequestStatus, Transition};
use crate::requests::service::RequestError;
use crate::resources::model::{
    Resource, ResourceKind, ResourceStatus, deletion_order, seal_outputs,
};
use crate::resources::service::ResourceError;

impl Worker {
    /// Carries a change or deletion request forward.
    pub(crate) async fn change(
        &self,
        mut request: Request,
        attempt: u32,
    ) -> Result<Disposition, RequestError> {
        let Some(id) = request.resource.clone() else {
            return self.fail(&request, "the request names no resource").await;
        };
        let lease = self.resources.lease;
        let resource = match self.resources.renew(&id, request.id, lease).await {
            Ok(Some(resource)) => resource,
            Ok(None) => {
                let holder = self
                    .resources
                    .store
                    .get(&id)
                    .await?
                    .and_then(|r| r.lock)
                    .map(|l| format!(" (it is now held for request {})", l.request_id))
                    .unwrap_or_default();
                let reason = format!(
                    "this change lost its lock on resource {id}: its lease expired before it finished{holder}"
                );
                return self.fail(&request, &reason).await;
            }
            Err(ResourceError::Store(e)) => return Err(e.into()),
            Err(e) => return self.fail(&request, &e.to_string()).await,
        };
        if request.status == RequestStatus::Submitted {
            request = self.start(&request).await?;
        }
        if let Some(waiting) = Box::pin(self.gate(&request, &resource)).await? {
            return Ok(waiting);
        }
        let mut notes = Notes::default();
        let result = match resource.kind {
            ResourceKind::Stack => self.delete_stack(&request, &resource, &mut notes).await,
            ResourceKind::Item => {
                self.change_item(&request, &resource, attempt, &mut notes)
                    .await
            }
        };
        self.write(&request, notes).await?;
        result
    }

    /// What a change waits for before it runs: its approval stages, in order, then its
    /// time (`notBefore`: a maintenance window, or the requester's). `Some` while it
    /// waits, or when it ended here. No state machine carries a change, so the worker
    /// does: a decision hands the request back at once, and in between it looks again
    /// every half lease, renewing the lock it holds on the resource.
    async fn gate(
        &self,
        request: &Request,
        resource: &Resource,
    ) -> Result<Option<Disposition>, RequestError> {
        let now = self.requests.clock.now();
        let hop = (self.resources.lease / 2).clamp(Duration::from_secs(1), MAX_DELAY);
        let wait_until = |at: time::OffsetDateTime| {
            Disposition::Continue((at - now).unsigned_abs().clamp(Duration::from_secs(1), hop))
        };
        let snapshot = self.requests.catalog.current();
        let policies = snapshot
            .target(&resource.item)
            .map(|t| t.approvals())
            .unwrap_or_default();
        for (n, (policy, stage)) in approval_stages(policies, request.operation)
            .into_iter()
            .enumerate()
        {
            if !policy.applies_to(&request.fields) {
                continue;
            }
            let number = n as u32 + 1;
            let id = Approval::key(request.id, number);
            let Some(approval) = self.approvals.get(&id).await? else {
                self.approvals
                    .open(request, number, policy, stage, false, WORKER_TOKEN)
                    .await?;
                return Ok(Some(self.until_expiry(&id, hop).await?));
            };
            match approval.status {
                ApprovalStatus::Approved => continue,
                // The decision ended the request (or is ending it: a retry finishes it).
                ApprovalStatus::Denied => {
                    let cause = format!("`{}` / `{}` was denied", approval.policy, approval.stage);
                    let end = Transition::ended(RequestStatus::Rejected, "worker", cause);
                    self.settle(request, end).await?;
                    return Ok(Some(Disposition::Done));
                }
                ApprovalStatus::Pending if now < approval.expires_at => {
                    return Ok(Some(wait_until(approval.expires_at)));
                }
                ApprovalStatus::Pending if stage.escalate.is_some() && !approval.escalated => {
                    self.approvals
                        .open(request, number, policy, stage, true, WORKER_TOKEN)
                        .await?;
                    return Ok(Some(self.until_expiry(&id, hop).await?));
                }
                ApprovalStatus::Pending => {
                    let cause = format!(
                        "`{}` / `{}` expired at {} with nobody deciding",
                        approval.policy,
                        approval.stage,
                        crate::timestamp::format(approval.expires_at)
                    );
                    let end = Transition::ended(RequestStatus::Rejected, "worker", cause);
                    self.settle(request, end).await?;
                    return Ok(Some(Disposition::Done));
                }
            }
        }
        if let Some(at) = request.not_before
            && at > now
        {
            self.note_scheduled(request, at).await?;
            return Ok(Some(wait_until(at)));
        }
        Ok(None)
    }

    /// Waits for stage `id` until it expires, looking again at least every `hop`.
    async fn until_expiry(&self, id: &str, hop: Duration) -> Result<Disposition, RequestError> {
        let now = self.requests.clock.now();
        let wait = match self.approvals.get(id).await? {
            Some(a) if a.expires_at > now => (a.expires_at - now).unsigned_abs().min(hop),
            Some(_) => Duration::ZERO,
            None => hop,
        };
        Ok(Disposition::Continue(wait.max(Duration::from_secs(1))))
    }

    async fn change_item(
        &self,
        request: &Request,
        resource: &Resource,
        attempt: u32,
        notes: &mut Notes,
    ) -> Result<Disposition, RequestError> {
        let snapshot = self.requests.catalog.current();
        let Some(item) = snapshot.catalog.item(&resource.item) else {
            let reason = format!("`{}` is no longer in the catalog", resource.item);
            return self.fail(request, &reason).await;
        };
        let name = &item.doc.metadata.name;
        let forced = self.mode_override(name).await?.is_some();
        let mut ctx = self.context(request, &item.doc.metadata);
        ctx["resource"] = resource.scope();
        let Some(automated) = automated_section(&item.doc.spec.fulfillment, forced) else {
            let (Some(manual), Some(jira)) = (&item.doc.spec.fulfillment.manual, &self.jira) else {
                let reason = format!(
                    "`{name}` is changed by a person through JIRA, and none is configured (jira.url)"
                );
                return self.fail(request, &reason).await;
            };
            let prefix = match request.operation {
                Operation::Delete => format!("Delete resource {}: ", resource.id),
                _ => format!("Change resource {}: ", resource.id),
            };
            return self
                .open_request_ticket(request, manual, jira, &ctx, Some(&prefix), attempt)
                .await;
        };
        let (list, actions) = match request.operation {
            Operation::Delete => ("deprovision", &automated.deprovision),
            _ => ("actions", &automated.actions),
        };
        if actions.is_empty() {
            notes.add(About::request().note(
                EventKind::NothingToRun,
                format!("`{name}` has no {list} actions: only the record changes"),
            ));
            return self.finish(request, Map::new()).await;
        }
        let run = RunFor::of(request, name, SINGLE_COMPONENT, &ctx);
        let mut steps = Vec::new();
        let progress = self.engine.advance(&run, list, actions, &mut steps).await;
        notes.engine(About::request(), steps);
        match progress? {
            Progress::Completed { outputs } => {
                let outputs =
                    seal_outputs(&item.doc.spec.outputs, &declared_outputs(item, &outputs));
                self.finish(request, outputs).await
            }
            Progress::Waiting { after } => Ok(Disposition::Continue(after)),
            Progress::Failed { reason, .. } => self.fail(request, &reason).await,
        }
    }

    /// Deprovisions a stack's components, each after those that depend on it.
    async fn delete_stack(
        &self,
        request: &Request,
        stack: &Resource,
        notes: &mut Notes,
    ) -> Result<Disposition, RequestError> {
        let snapshot = self.requests.catalog.current();
        for member in deletion_order(&stack.members) {
            let Some(component) = self.resources.store.get(&member.resource_id).await? else {
                continue;
            };
            if component.status == ResourceStatus::Deleted {
                continue;
            }
            let about = About::component(&member.component);
            let item = snapshot.catalog.item(&member.item);
            let forced = self.mode_override(&member.item).await?.is_some();
            let automated = item.and_then(|i| automated_section(&i.doc.spec.fulfillment, forced));
            match (item, automated) {
                (Some(item), Some(automated)) if !automated.deprovision.is_empty() => {
                    let mut scoped = request.clone();
                    scoped.fields = component.inputs.clone();
                    let mut ctx = self.context(&scoped, &item.doc.metadata);
                    ctx["resource"] = component.scope();
                    // The stack's request carries the bundle's name and form values.
                    self.in_bundle(&mut ctx, request, Some(&member.component));
                    let run = RunFor::of(request, &member.item, &member.component, &ctx);
                    let mut steps = Vec::new();
                    let progress = self
                        .engine
                        .advance(&run, "deprovision", &automated.deprovision, &mut steps)
                        .await;
                    notes.engine(about, steps);
                    match progress? {
                        Progress::Completed { .. } => {
                            notes.add(about.note(EventKind::ComponentDeleted, "deprovisioned"));
                        }
                        Progress::Waiting { after } => return Ok(Disposition::Continue(after)),
                        Progress::Failed { reason, .. } => {
                            let reason = format!("{}{reason}", about.label());
                            return self.fail(request, &reason).await;
                        }
                    }
                }
                _ => notes.add(about.note(
                    EventKind::ComponentLeft,
                    format!(
                        "`{}` has no deprovision actions: its record is removed, and its owner must remove what it provisioned",
                        member.item
                    ),
                )),
            }
            match self
                .resources
                .tombstone(&member.resource_id, request.id, "worker")
                .await
            {
                Ok(()) | Err(ResourceError::NotFound(_)) => {}
                Err(ResourceError::Store(e)) => return Err(e.into()),
                Err(e) => return self.fail(request, &e.to_string()).await,
            }
        }
        self.finish(request, Map::new()).await
    }

    /// The change is done: the request completes (and its resource record follows).
    async fn finish(
        &self,
        request: &Request,
        outputs: Map<String, Value>,
    ) -> Result<Disposition, RequestError> {
        let message = match request.operation {
            Operation::Delete => "resource deleted",
            _ => "resource changed",
        };
        self.settle(request, Transition::completed("worker", message, outputs))
            .await?;
        Ok(Disposition::Done)
    }
}
