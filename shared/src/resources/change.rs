//! Day-2 changes as a use case: a change of a resource's inputs, or its deletion, is
//! planned first (the input diff, and the calls its actions would make, secrets as
//! `***`), then verified (drift refuses it unless an admin forces it), locked with a
//! lease, and submitted as a request the worker carries out (its `change` module).
//! The HTTP API (`POST /resources/{id}/changes`, `DELETE /resources/{id}`) and
//! `orchestrator plan --resource` both go through here.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::model::{Drift, Resource, ResourceKind, ResourceStatus, deletion_order};
use super::reconcile::check;
use super::service::{ResourceError, Resources, rfc3339};
use super::verify::{Verification, VerificationView, Verifier, resource_context};
use crate::access::Principal;
use crate::catalog::document::Mode;
use crate::fulfillment::mode::{automated_section, get as mode_override};
use crate::fulfillment::plan::{PlanFor, PlannedAction, Planner, plan_list, ticket_preview};
use crate::ports::{StateStore, StoreError};
use crate::requests::model::{EventKind, Note, Operation, Request, TargetKind};
use crate::requests::service::{RequestError, RequestService};

/// One input that a change alters.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldChange {
    pub field: String,
    /// `null` when the field is new.
    #[schema(value_type = Object)]
    pub before: Value,
    /// `null` when the field goes away.
    #[schema(value_type = Object)]
    pub after: Value,
}

/// What a change or deletion would do.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePlan {
    pub resource: String,
    #[schema(value_type = String)]
    pub operation: Operation,
    pub item: String,
    /// The resource's serial the plan was made against.
    pub serial: u64,
    /// The inputs that change (updates).
    pub changes: Vec<FieldChange>,
    /// The actions that would run, rendered, secrets as `***`; for a stack, every
    /// component's deprovisioning in the order it would run (`component/action`).
    pub actions: Vec<PlannedAction>,
    /// The JIRA issue a person would get (manual items).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ticket: Option<Value>,
    /// The verification made for this plan.
    pub verification: VerificationView,
    /// The approval stages the change would wait for, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<crate::fulfillment::plan::PlannedApproval>,
    pub warnings: Vec<String>,
    /// Problems that would fail the change; empty when the plan is good.
    pub errors: Vec<String>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("only admins may force a change past verification")]
    ForceNotAllowed,
    #[error(
        "resource {id} no longer matches its record: {report}; reconcile it, or ask an admin to force the change"
    )]
    Drifted {
        id: String,
        drift: Vec<Drift>,
        report: String,
    },
    #[error("resource {id} could not be verified before the change: {why}")]
    VerificationFailed { id: String, why: String },
}

impl From<StoreError> for ChangeError {
    fn from(e: StoreError) -> Self {
        ChangeError::Resource(e.into())
    }
}

/// What a submission came to.
#[derive(Debug)]
pub enum Submitted {
    /// Only planned (`apply: false`, `dryRun=true`).
    Planned { resource: String, plan: ChangePlan },
    /// Verified, locked and accepted: `request` carries it out (boxed: a request is
    /// larger than a plan).
    Accepted {
        request: Box<Request>,
        plan: ChangePlan,
        /// The resource locked.
        resource: String,
        /// What an admin forced the change past, for the audit log.
        forced: Option<String>,
    },
}

/// The day-2 use case's services.
pub struct Changes {
    pub requests: Arc<RequestService>,
    pub resources: Arc<Resources>,
    pub verifier: Arc<Verifier>,
    pub planner: Arc<Planner>,
    /// Mode overrides (an admin forcing an item to manual).
    pub state: Arc<dyn StateStore>,
}

impl Changes {
    /// Plans or applies a change of resource `id`'s inputs to `fields`.
    pub async fn change(
        &self,
        who: &Principal,
        id: &str,
        fields: Map<String, Value>,
        apply: bool,
        force: bool,
    ) -> Result<Submitted, ChangeError> {
        let resource = self
            .resources
            .visible(&self.requests.roles, who, id)
            .await?;
        let request = self.request(who, &resource, Operation::Update, fields)?;
        self.submit(who, resource, request, apply, force).await
    }

    /// Plans or applies the deletion of resource `id`: its item's `deprovision` actions
    /// (for a stack, every component's, dependents first), then a tombstone.
    pub async fn delete(
        &self,
        who: &Principal,
        id: &str,
        apply: bool,
        force: bool,
    ) -> Result<Submitted, ChangeError> {
        let resource = self
            .resources
            .visible(&self.requests.roles, who, id)
            .await?;
        let inputs = resource.inputs.clone();
        let request = self.request(who, &resource, Operation::Delete, inputs)?;
        self.submit(who, resource, request, apply, force).await
    }

    /// The plan of a change of `resource` to `fields` with a verification made
    /// elsewhere (or none): nothing is verified, locked or stored.
    pub async fn preview(
        &self,
        who: &Principal,
        resource: &Resource,
        operation: Operation,
        fields: Map<String, Value>,
        verification: &Verification,
    ) -> Result<ChangePlan, ChangeError> {
        let request = self.request(who, resource, operation, fields)?;
        Ok(self.plan(&request, resource, verification).await?)
    }

    /// The request a change or deletion runs as.
    fn request(
        &self,
        who: &Principal,
        resource: &Resource,
        operation: Operation,
        fields: Map<String, Value>,
    ) -> Result<Request, ChangeError> {
        if operation == Operation::Update && resource.kind == ResourceKind::Stack {
            return Err(ResourceError::Invalid(
                "a stack is changed through its components one by one; it can only be deleted whole"
                    .to_owned(),
            )
            .into());
        }
        let mut request = match operation {
            // The new values are checked against the item's form, as a request's are.
            Operation::Update => self.requests.prepare(who, &resource.item, fields, None)?,
            // A deletion carries the recorded inputs, whatever the form says by now.
            _ => Request::submitted(
                match resource.kind {
                    ResourceKind::Stack => TargetKind::Bundle,
                    ResourceKind::Item => TargetKind::Item,
                },
                &resource.item,
                &self.requests.catalog.current().version,
                &resource.owner,
                who,
                fields,
                self.requests.clock.now(),
            ),
        };
        request.operation = operation;
        request.resource = Some(resource.id.clone());
        self.requests.apply_calendars(&mut request, None)?;
        Ok(request)
    }

    /// Plans `request` (a change or deletion of `resource`), then, when `apply`, verifies,
    /// locks and accepts it.
    async fn submit(
        &self,
        who: &Principal,
        resource: Resource,
        request: Request,
        apply: bool,
        force: bool,
    ) -> Result<Submitted, ChangeError> {
        if let Some(stack) = &resource.stack
            && request.operation == Operation::Delete
        {
            return Err(ResourceError::Invalid(format!(
                "resource {} is a component of stack {stack}: it is deleted with the stack",
                resource.id
            ))
            .into());
        }
        // A stack is deleted only when none of its components is being changed.
        let now = self.requests.clock.now();
        for member in &resource.members {
            if let Some(component) = self.resources.store.get(&member.resource_id).await?
                && let Some(lock) = component.held(now)
            {
                return Err(ResourceError::Locked {
                    id: component.id.clone(),
                    holder: lock.holder.clone(),
                    request_id: lock.request_id,
                    expires_at: rfc3339(lock.expires_at),
                }
                .into());
            }
        }
        if resource.status == ResourceStatus::Deleted {
            return Err(ResourceError::NotChangeable(resource.status).into());
        }
        if !apply {
            let (_, verification) =
                check(&self.resources, &self.verifier, &resource, &who.sub).await?;
            let plan = self.plan(&request, &resource, &verification).await?;
            return Ok(Submitted::Planned {
                resource: resource.id,
                plan,
            });
        }
        let (verification, forced) = self.verify_before(who, &resource, force).await?;
        let plan = self.plan(&request, &resource, &verification).await?;
        let locked = self
            .resources
            .lock(
                &resource.id,
                who,
                request.id,
                request.operation,
                self.lease_for(&resource),
            )
            .await?;
        let (request, _) = self.requests.accept(request).await?;
        if let Some(what) = &forced {
            let note = Note::new(
                EventKind::Forced,
                format!("forced by admin {} past verification: {what}", who.sub),
            );
            if let Err(e) = self
                .requests
                .note(request.id, Some(&request), &who.sub, vec![note])
                .await
            {
                tracing::warn!(error = %e, "the forced change's note was not written");
            }
        }
        Ok(Submitted::Accepted {
            request: Box::new(request),
            plan,
            resource: locked.id,
            forced,
        })
    }

    /// Asks the target what `action` of a change would do (a CloudFormation change
    /// set's resource changes); a target that cannot say is a warning, not an error:
    /// the change itself may still go through.
    async fn ask_target(&self, action: &mut PlannedAction, warnings: &mut Vec<String>) {
        let Some(rendered) = &action.rendered else {
            return;
        };
        let Some(kind) = self.planner.kinds.get(&rendered.kind).cloned() else {
            return;
        };
        match kind.preview(&rendered.invocation, &rendered.with).await {
            Ok(preview) => action.preview = preview,
            Err(e) => warnings.push(format!(
                "action `{}`: the target could not say what would change: {e}",
                action.id
            )),
        }
    }

    /// The plan of `request` (a change or deletion of `resource`).
    async fn plan(
        &self,
        request: &Request,
        resource: &Resource,
        verification: &Verification,
    ) -> Result<ChangePlan, StoreError> {
        let snapshot = self.requests.catalog.current();
        let mut plan = ChangePlan {
            resource: resource.id.clone(),
            operation: request.operation,
            item: resource.item.clone(),
            serial: resource.serial,
            changes: match request.operation {
                Operation::Update => diff(&resource.inputs, &request.fields),
                _ => Vec::new(),
            },
            actions: Vec::new(),
            ticket: None,
            verification: VerificationView::from(verification),
            approvals: crate::fulfillment::plan::approvals_needed(
                snapshot
                    .target(&resource.item)
                    .map(|t| t.approvals())
                    .unwrap_or_default(),
                &resource.owner,
                request.operation,
                &request.fields,
            ),
            warnings: request
                .waiting_for
                .iter()
                .map(|why| format!("it would wait: it {why}"))
                .collect(),
            errors: Vec::new(),
        };
        if request.operation == Operation::Update && plan.changes.is_empty() {
            plan.warnings.push(
                "no input changes: the item's actions run again with the same values".to_owned(),
            );
        }
        let members: Vec<(Option<String>, Resource)> = match resource.kind {
            ResourceKind::Item => vec![(None, resource.clone())],
            ResourceKind::Stack => {
                let mut members = Vec::new();
                for member in deletion_order(&resource.members) {
                    if let Some(r) = self.resources.store.get(&member.resource_id).await?
                        && r.status != ResourceStatus::Deleted
                    {
                        members.push((Some(member.component.clone()), r));
                    }
                }
                members
            }
        };
        let now = self.requests.clock.now();
        for (component, member) in members {
            let Some(item) = snapshot.catalog.item(&member.item) else {
                plan.errors
                    .push(format!("`{}` is no longer in the catalog", member.item));
                continue;
            };
            let forced = mode_override(self.state.as_ref(), &member.item).await?;
            let automated = automated_section(&item.doc.spec.fulfillment, forced.is_some());
            let mut context =
                resource_context(&member, &item.doc.metadata, &self.planner.system, now);
            context["fields"] = Value::Object(if component.is_none() {
                request.fields.clone()
            } else {
                member.inputs.clone()
            });
            context["request"]["id"] = Value::String(request.id.to_string());
            context["request"]["requester"] = Value::String(request.requester.sub.clone());
            let label = component.map(|c| format!("{c}/")).unwrap_or_default();
            let Some(automated) = automated else {
                match &item.doc.spec.fulfillment.manual {
                    Some(manual) => {
                        match ticket_preview(
                            &self.planner.renderer,
                            &item.doc,
                            manual,
                            request.id,
                            &context,
                        ) {
                            Ok(fields) => plan.ticket = Some(Value::Object(fields)),
                            Err(e) => plan
                                .errors
                                .push(format!("{label}the ticket template failed: {e}")),
                        }
                    }
                    None => plan
                        .errors
                        .push(format!("{label}`{}` has no manual section", member.item)),
                }
                continue;
            };
            let (list, actions) = match request.operation {
                Operation::Delete => ("deprovision", &automated.deprovision),
                _ => ("actions", &automated.actions),
            };
            if actions.is_empty() {
                plan.warnings.push(format!(
                    "{label}`{}` has no {list} actions: only the record changes",
                    member.item
                ));
            }
            let planned = plan_list(
                &self.planner.kinds,
                &self.planner.renderer,
                &PlanFor {
                    item: &item.doc,
                    request_id: request.id,
                    resource_id: member.id.clone(),
                    owner: &member.owner,
                    requester: &request.requester.sub,
                    fields: &request.fields,
                    context: &context,
                    forced_manual: forced.as_ref(),
                    operation: request.operation,
                },
                list,
                actions,
                &mut Map::new(),
            );
            for mut action in planned {
                if let Some(e) = &action.error {
                    plan.errors.push(format!("{label}{e}"));
                }
                if request.operation == Operation::Update {
                    self.ask_target(&mut action, &mut plan.warnings).await;
                }
                action.id = format!("{label}{}", action.id);
                plan.actions.push(action);
            }
        }
        Ok(plan)
    }

    /// Verifies before a change: drift or a failed verification refuses it unless an
    /// admin forces it. Returns the verification and, when forced past a finding, what
    /// to audit.
    async fn verify_before(
        &self,
        who: &Principal,
        resource: &Resource,
        force: bool,
    ) -> Result<(Verification, Option<String>), ChangeError> {
        if force && !self.requests.roles.is_admin(who) {
            return Err(ChangeError::ForceNotAllowed);
        }
        let (_, verification) = check(&self.resources, &self.verifier, resource, &who.sub).await?;
        let finding = match &verification {
            Verification::Drifted(drift) => {
                let report: Vec<String> = drift
                    .iter()
                    .map(|d| {
                        format!(
                            "{} (recorded {}, actual {})",
                            d.attribute, d.recorded, d.actual
                        )
                    })
                    .collect();
                let report = report.join("; ");
                Some((
                    ChangeError::Drifted {
                        id: resource.id.clone(),
                        drift: drift.clone(),
                        report: report.clone(),
                    },
                    format!("drift: {report}"),
                ))
            }
            Verification::Failed(why) => Some((
                ChangeError::VerificationFailed {
                    id: resource.id.clone(),
                    why: why.clone(),
                },
                format!("verification failed: {why}"),
            )),
            _ => None,
        };
        match finding {
            Some((refused, _)) if !force => Err(refused),
            Some((_, what)) => Ok((verification, Some(what))),
            None => Ok((verification, None)),
        }
    }

    /// How long a change may hold a resource without renewing: a change made by a
    /// person through JIRA holds it as long as the ticket may take.
    fn lease_for(&self, resource: &Resource) -> Duration {
        let lease = self.resources.lease;
        let snapshot = self.requests.catalog.current();
        let Some(item) = snapshot.catalog.item(&resource.item) else {
            return lease;
        };
        let fulfillment = &item.doc.spec.fulfillment;
        match (
            &fulfillment.automated,
            fulfillment.mode,
            &fulfillment.manual,
        ) {
            (Some(_), Mode::Automated, _) => lease,
            (_, _, Some(manual)) => manual
                .timeout
                .as_ref()
                .map(|t| t.as_duration())
                .unwrap_or(Duration::from_secs(14 * 24 * 3600))
                .max(lease),
            _ => lease,
        }
    }
}

/// The inputs that differ between `before` and `after`, by name.
fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<FieldChange> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| FieldChange {
            field: n.clone(),
            before: before.get(n).cloned().unwrap_or(Value::Null),
            after: after.get(n).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_changed_added_and_removed_inputs_only() {
        let before = serde_json::json!({"size": 20, "name": "a", "old": true});
        let after = serde_json::json!({"size": 50, "name": "a", "new": "x"});
        let changes = diff(before.as_object().unwrap(), after.as_object().unwrap());
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["new", "old", "size"]);
        assert_eq!(changes[1].after, Value::Null);
        assert_eq!(changes[2].before, 20);
    }
}
