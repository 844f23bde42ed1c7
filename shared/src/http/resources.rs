//! `/resources`: what was provisioned, its history, verification, and day-2 changes
//! (plan, then apply) and deletion. Every change is verified first: drift refuses it
//! with a report unless an admin forces it (audited), and it locks the resource.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::audit::{AuditDetail, AuditTarget};
use super::auth::Caller;
use super::problem::{JsonBody, Problem, status_filter};
use super::requests::RequestView;
use crate::fulfillment::plan::{PlanFor, PlannedAction, plan_list};
use crate::fulfillment::vars::REDACTED;
use crate::ports::ResourceQuery;
use crate::requests::model::{Operation, Principal, Request, RequestId, TargetKind};
use crate::resources::apply::deletion_order;
use crate::resources::model::{
    Drift, Lock, Resource, ResourceChange, ResourceKind, ResourceStatus, StackMember,
};
use crate::resources::reconcile::check;
use crate::resources::service::ResourceError;
use crate::resources::verify::{Verification, resource_context};

/// A resource as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    id: String,
    kind: ResourceKind,
    /// The item (for a stack, the bundle) it is an instance of.
    item: String,
    catalog_version: String,
    owner: String,
    requester: String,
    #[schema(value_type = Object)]
    inputs: Map<String, Value>,
    /// Sensitive outputs read `{"sensitive": true}`.
    #[schema(value_type = Object)]
    outputs: Map<String, Value>,
    status: ResourceStatus,
    serial: u64,
    lineage: String,
    /// The request that provisioned it.
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    members: Vec<StackMember>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: Option<Lock>,
    /// What the last verification found different.
    drift: Vec<Drift>,
    #[serde(with = "crate::timestamp::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    verified_at: Option<time::OffsetDateTime>,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: time::OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: time::OffsetDateTime,
}

impl From<&Resource> for ResourceView {
    fn from(r: &Resource) -> Self {
        ResourceView {
            id: r.id.clone(),
            kind: r.kind,
            item: r.item.clone(),
            catalog_version: r.catalog_version.clone(),
            owner: r.owner.clone(),
            requester: r.requester.clone(),
            inputs: r.inputs.clone(),
            outputs: r.outputs.clone(),
            status: r.status,
            serial: r.serial,
            lineage: r.lineage.clone(),
            request_id: r.request_id.clone(),
            stack: r.stack.clone(),
            component: r.component.clone(),
            members: r.members.clone(),
            lock: r.lock.clone(),
            drift: r.drift.clone(),
            verified_at: r.verified_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourcePage {
    items: Vec<ResourceView>,
    next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    resource_id: String,
    serial: u64,
    changes: Vec<ResourceChange>,
}

impl From<ResourceError> for Problem {
    fn from(e: ResourceError) -> Self {
        match e {
            ResourceError::NotFound(_) => Problem::not_found(e.to_string()),
            ResourceError::Locked {
                ref holder,
                ref request_id,
                ref expires_at,
                ..
            } => Problem::conflict("resource-locked", "Resource locked", e.to_string())
                .with(
                    "lock",
                    serde_json::json!({"holder": holder, "requestId": request_id, "expiresAt": expires_at}),
                ),
            ResourceError::NotChangeable(_) => {
                Problem::conflict("resource-not-changeable", "Conflict", e.to_string())
            }
            ResourceError::Invalid(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-change",
                "Invalid change",
                detail,
            ),
            ResourceError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `provisioning`, `ready`, `updating`, `drifted`, `deleting`, `deleted` or `failed`;
    /// deleted resources are listed only when asked for.
    status: Option<String>,
    item: Option<String>,
    owner: Option<String>,
    requester: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// Resources: the caller's own unless `owner` (team members) or `requester` (admins) says otherwise.
#[utoipa::path(get, path = "/resources", tag = "resources", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = ResourcePage), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<ResourcePage>, Problem> {
    let status = status_filter(
        p.status.as_deref(),
        &ResourceStatus::ALL,
        ResourceStatus::as_str,
    )?;
    let mut query = ResourceQuery {
        owner: p.owner,
        requester: p.requester,
        item: p.item,
        status,
        cursor: p.cursor,
        limit: p.limit.unwrap_or(50).clamp(1, 200),
    };
    state
        .requests
        .roles
        .limit_listing(
            &who,
            query.owner.as_deref(),
            &mut query.requester,
            "resources",
        )
        .map_err(Problem::forbidden)?;
    let page = state.resources.store.list(&query).await?;
    Ok(Json(ResourcePage {
        items: page.items.iter().map(ResourceView::from).collect(),
        next: page.next,
    }))
}

/// A resource.
#[utoipa::path(get, path = "/resources/{id}", tag = "resources", security(("bearer" = [])),
    params(("id" = String, Path, description = "The resource's id")),
    responses((status = 200, body = ResourceView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<ResourceView>, Problem> {
    let resource = state
        .resources
        .visible(&state.requests.roles, &who, &id)
        .await?;
    Ok(Json(ResourceView::from(&resource)))
}

/// A resource's history, oldest first: every change, with the request that made it.
#[utoipa::path(get, path = "/resources/{id}/history", tag = "resources", security(("bearer" = [])),
    params(("id" = String, Path, description = "The resource's id")),
    responses((status = 200, body = History), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn history(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<History>, Problem> {
    let resource = state
        .resources
        .visible(&state.requests.roles, &who, &id)
        .await?;
    let changes = state.resources.store.history(&id).await?;
    Ok(Json(History {
        resource_id: resource.id,
        serial: resource.serial,
        changes,
    }))
}

/// What a verification found, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationView {
    /// `matched`, `drifted`, `skipped` or `failed`.
    outcome: String,
    drift: Vec<Drift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&Verification> for VerificationView {
    fn from(v: &Verification) -> Self {
        let (outcome, drift, reason) = match v {
            Verification::Matched => ("matched", Vec::new(), None),
            Verification::Drifted(drift) => ("drifted", drift.clone(), None),
            Verification::Skipped(why) => ("skipped", Vec::new(), Some(why.clone())),
            Verification::Failed(why) => ("failed", Vec::new(), Some(why.clone())),
        };
        VerificationView {
            outcome: outcome.to_owned(),
            drift,
            reason,
        }
    }
}

/// Verifies a resource now and records what it finds (drift marks it `drifted`).
#[utoipa::path(post, path = "/resources/{id}/verify", tag = "resources", security(("bearer" = [])),
    params(("id" = String, Path, description = "The resource's id")),
    responses((status = 200, body = VerificationView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let resource = state
        .resources
        .visible(&state.requests.roles, &who, &id)
        .await?;
    let (_, verification) = check(&state.resources, &state.verifier, &resource, &who.sub).await?;
    let mut response = Json(VerificationView::from(&verification)).into_response();
    response.extensions_mut().insert(AuditTarget(id));
    Ok(response)
}

/// One input that a change alters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldChange {
    field: String,
    /// `null` when the field is new.
    #[schema(value_type = Object)]
    before: Value,
    /// `null` when the field goes away.
    #[schema(value_type = Object)]
    after: Value,
}

/// What a change or deletion would do.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePlan {
    resource: String,
    #[schema(value_type = String)]
    operation: Operation,
    item: String,
    /// The resource's serial the plan was made against.
    serial: u64,
    /// The inputs that change (updates).
    changes: Vec<FieldChange>,
    /// The actions that would run, rendered, secrets as `***`; for a stack, every
    /// component's deprovisioning in the order it would run (`component/action`).
    actions: Vec<PlannedAction>,
    /// The JIRA issue a person would get (manual items).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    ticket: Option<Value>,
    /// The verification made for this plan.
    verification: VerificationView,
    warnings: Vec<String>,
    /// Problems that would fail the change; empty when the plan is good.
    errors: Vec<String>,
}

/// `POST /resources/{id}/changes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSubmission {
    /// The new values of the item's form (all of them; omitted ones take their defaults).
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// `false` (the default): only plan. `true`: verify, lock and apply.
    #[serde(default)]
    apply: bool,
    /// Admins only: apply even though the resource drifted (audited).
    #[serde(default)]
    force: bool,
}

/// The change accepted: its request, and the plan it runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeAccepted {
    request: RequestView,
    plan: ChangePlan,
}

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

/// The request a change or deletion runs as.
fn change_request(
    state: &AppState,
    who: &Principal,
    resource: &Resource,
    operation: Operation,
    fields: Map<String, Value>,
) -> Result<Request, Problem> {
    let mut request = match operation {
        // The new values are checked against the item's form, as a request's are.
        Operation::Update => state.requests.prepare(who, &resource.item, fields, None)?,
        // A deletion carries the recorded inputs, whatever the form says by now.
        _ => {
            let now = state.requests.clock.now();
            Request {
                id: RequestId::new_at(now),
                kind: match resource.kind {
                    ResourceKind::Stack => TargetKind::Bundle,
                    ResourceKind::Item => TargetKind::Item,
                },
                target: resource.item.clone(),
                catalog_version: state.requests.catalog.current().version.clone(),
                owner: resource.owner.clone(),
                requester: who.clone(),
                operation,
                resource: Some(resource.id.clone()),
                fields,
                status: crate::requests::model::RequestStatus::Submitted,
                reason: None,
                ticket: None,
                outputs: Map::new(),
                idempotency_key: None,
                fingerprint: String::new(),
                created_at: now,
                updated_at: now,
                version: 1,
            }
        }
    };
    request.operation = operation;
    request.resource = Some(resource.id.clone());
    Ok(request)
}

/// The plan of `request` (a change or deletion of `resource`).
async fn plan_change(
    state: &AppState,
    request: &Request,
    resource: &Resource,
    verification: &Verification,
) -> Result<ChangePlan, Problem> {
    let snapshot = state.requests.catalog.current();
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
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    if request.operation == Operation::Update && plan.changes.is_empty() {
        plan.warnings
            .push("no input changes: the item's actions run again with the same values".to_owned());
    }
    let members: Vec<(Option<String>, Resource)> = match resource.kind {
        ResourceKind::Item => vec![(None, resource.clone())],
        ResourceKind::Stack => {
            let mut members = Vec::new();
            for member in deletion_order(&resource.members) {
                if let Some(r) = state.resources.store.get(&member.resource_id).await?
                    && r.status != ResourceStatus::Deleted
                {
                    members.push((Some(member.component.clone()), r));
                }
            }
            members
        }
    };
    let now = state.requests.clock.now();
    for (component, member) in members {
        let Some(item) = snapshot.catalog.item(&member.item) else {
            plan.errors
                .push(format!("`{}` is no longer in the catalog", member.item));
            continue;
        };
        let forced = crate::fulfillment::mode::get(state.state.as_ref(), &member.item).await?;
        let automated = crate::fulfillment::mode::automated_section(
            &item.doc.spec.fulfillment,
            forced.is_some(),
        );
        let mut context = resource_context(&member, &item.doc.metadata, &state.planner.system, now);
        context["fields"] = Value::Object(if component.is_none() {
            request.fields.clone()
        } else {
            member.inputs.clone()
        });
        context["request"]["id"] = Value::String(request.id.to_string());
        context["request"]["requester"] = Value::String(request.requester.sub.clone());
        let label = component.map(|c| format!("{c}/")).unwrap_or_default();
        match automated {
            Some(automated) => {
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
                    &state.planner.kinds,
                    &state.planner.renderer,
                    &PlanFor {
                        item: &item.doc,
                        request_id: request.id,
                        requester: &request.requester.sub,
                        fields: &request.fields,
                        context: &context,
                        forced_manual: forced.as_ref(),
                    },
                    list,
                    actions,
                    &mut Map::new(),
                );
                for mut action in planned {
                    if let Some(e) = &action.error {
                        plan.errors.push(format!("{label}{e}"));
                    }
                    action.id = format!("{label}{}", action.id);
                    plan.actions.push(action);
                }
            }
            None => match &item.doc.spec.fulfillment.manual {
                Some(manual) => {
                    let mut context = context.clone();
                    context["secrets"] = Value::Object(
                        crate::fulfillment::plan::referenced(&item.doc, "secrets")
                            .into_iter()
                            .map(|k| (k, Value::String(REDACTED.to_owned())))
                            .collect(),
                    );
                    match crate::fulfillment::manual::issue_fields(
                        &manual.ticket,
                        &crate::fulfillment::manual::request_label(request.id),
                        &state.planner.renderer,
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
            },
        }
    }
    Ok(plan)
}

/// Verifies before a change: drift or a failed verification refuses it unless an admin
/// forces it. Returns the verification and, when forced past a finding, what to audit.
async fn verify_before(
    state: &AppState,
    who: &Principal,
    resource: &Resource,
    force: bool,
) -> Result<(Verification, Option<String>), Problem> {
    if force && !state.requests.roles.is_admin(who) {
        return Err(Problem::forbidden(
            "only admins may force a change past verification",
        ));
    }
    let (_, verification) = check(&state.resources, &state.verifier, resource, &who.sub).await?;
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
            Some((
                Problem::conflict(
                    "resource-drifted",
                    "Resource drifted",
                    format!(
                        "resource {} no longer matches its record: {}; reconcile it, or ask an admin to force the change",
                        resource.id,
                        report.join("; ")
                    ),
                )
                .with("drift", drift),
                format!("drift: {}", report.join("; ")),
            ))
        }
        Verification::Failed(why) => Some((
            Problem::conflict(
                "verification-failed",
                "Verification failed",
                format!(
                    "resource {} could not be verified before the change: {why}",
                    resource.id
                ),
            ),
            format!("verification failed: {why}"),
        )),
        _ => None,
    };
    match finding {
        Some((problem, _)) if !force => Err(problem),
        Some((_, what)) => Ok((verification, Some(what))),
        None => Ok((verification, None)),
    }
}

/// Plans or applies a change to a resource's inputs.
#[utoipa::path(post, path = "/resources/{id}/changes", tag = "resources", security(("bearer" = [])),
    params(("id" = String, Path, description = "The resource's id")),
    request_body = ChangeSubmission,
    responses((status = 200, body = ChangePlan, description = "The plan (apply: false)"),
              (status = 202, body = ChangeAccepted, description = "Applying"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "Drifted (see `drift`), locked by another change (see `lock`), or not changeable now"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "Invalid fields")))]
pub async fn change(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ChangeSubmission>,
) -> Result<Response, Problem> {
    let resource = state
        .resources
        .visible(&state.requests.roles, &who, &id)
        .await?;
    if resource.kind == ResourceKind::Stack {
        return Err(ResourceError::Invalid(
            "a stack is changed through its components one by one; it can only be deleted whole"
                .to_owned(),
        )
        .into());
    }
    let request = change_request(&state, &who, &resource, Operation::Update, body.fields)?;
    submit_change(&state, &who, resource, request, body.apply, body.force).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DeleteParams {
    /// Plan only: what the deletion would run.
    dry_run: Option<bool>,
    /// Admins only: delete even though the resource drifted (audited).
    force: Option<bool>,
}

/// Deletes a resource: its item's `deprovision` actions run (for a stack, every
/// component's, dependents first), then the record becomes a tombstone; history is kept.
#[utoipa::path(delete, path = "/resources/{id}", tag = "resources", security(("bearer" = [])),
    params(("id" = String, Path, description = "The resource's id"), DeleteParams),
    responses((status = 200, body = ChangePlan, description = "The plan (dryRun=true)"),
              (status = 202, body = ChangeAccepted, description = "Deleting"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "Drifted, locked, or not deletable now")))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(params): Query<DeleteParams>,
) -> Result<Response, Problem> {
    let resource = state
        .resources
        .visible(&state.requests.roles, &who, &id)
        .await?;
    let request = change_request(
        &state,
        &who,
        &resource,
        Operation::Delete,
        resource.inputs.clone(),
    )?;
    let apply = params.dry_run != Some(true);
    submit_change(
        &state,
        &who,
        resource,
        request,
        apply,
        params.force == Some(true),
    )
    .await
}

async fn submit_change(
    state: &AppState,
    who: &Principal,
    resource: Resource,
    request: Request,
    apply: bool,
    force: bool,
) -> Result<Response, Problem> {
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
    let now = state.requests.clock.now();
    for member in &resource.members {
        if let Some(component) = state.resources.store.get(&member.resource_id).await?
            && let Some(lock) = component.held(now)
        {
            return Err(ResourceError::Locked {
                id: component.id.clone(),
                holder: lock.holder.clone(),
                request_id: lock.request_id.clone(),
                expires_at: crate::resources::service::rfc3339(lock.expires_at),
            }
            .into());
        }
    }
    if resource.status == ResourceStatus::Deleted {
        return Err(ResourceError::NotChangeable(resource.status).into());
    }
    if !apply {
        let (_, verification) =
            check(&state.resources, &state.verifier, &resource, &who.sub).await?;
        let plan = plan_change(state, &request, &resource, &verification).await?;
        let mut response = Json(plan).into_response();
        response.extensions_mut().insert(AuditTarget(resource.id));
        return Ok(response);
    }
    let (verification, forced) = verify_before(state, who, &resource, force).await?;
    let plan = plan_change(state, &request, &resource, &verification).await?;
    let locked = state
        .resources
        .lock(
            &resource.id,
            who,
            &request.id.to_string(),
            request.operation,
            lease_for(state, &resource),
        )
        .await?;
    let (request, _) = state.requests.accept(request).await?;
    if let Some(what) = &forced {
        let note = format!("forced by admin {} past verification: {what}", who.sub);
        if let Err(e) = state
            .requests
            .note(request.id, Some(&request), &who.sub, "forced", note)
            .await
        {
            tracing::warn!(error = %e, "the forced change's note was not written");
        }
    }
    let mut response = (
        StatusCode::ACCEPTED,
        Json(ChangeAccepted {
            request: RequestView::from(request.clone()),
            plan,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/requests/{}", request.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .extensions_mut()
        .insert(AuditTarget(locked.id.clone()));
    if let Some(what) = forced {
        response.extensions_mut().insert(AuditDetail(format!(
            "{} of resource {} forced past verification by request {}: {what}",
            request.operation.as_str(),
            locked.id,
            request.id
        )));
    }
    Ok(response)
}

/// How long a change may hold a resource without renewing: a change made by a person
/// through JIRA holds it as long as the ticket may take.
fn lease_for(state: &AppState, resource: &Resource) -> std::time::Duration {
    let lease = state.resources.lease;
    let snapshot = state.requests.catalog.current();
    let Some(item) = snapshot.catalog.item(&resource.item) else {
        return lease;
    };
    let fulfillment = &item.doc.spec.fulfillment;
    match (
        &fulfillment.automated,
        fulfillment.mode,
        &fulfillment.manual,
    ) {
        (Some(_), crate::catalog::document::Mode::Automated, _) => lease,
        (_, _, Some(manual)) => manual
            .timeout
            .as_ref()
            .map(|t| t.as_duration())
            .unwrap_or(std::time::Duration::from_secs(14 * 24 * 3600))
            .max(lease),
        _ => lease,
    }
}
