//! `/resources`: what was provisioned, its history, verification, and day-2 changes
//! (plan, then apply) and deletion. Every change is verified first: drift refuses it
//! with a report unless an admin forces it (audited), and it locks the resource.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::audit::{AuditDetail, AuditTarget};
use super::auth::Caller;
use super::cursor::PageFilter;
use super::problem::{JsonBody, Problem, QueryParams, page_limit, status_filter};
use super::requests::RequestView;
use crate::catalog::snapshot::CatalogSnapshot;
use crate::ports::ResourceQuery;
use crate::resources::change::{ChangeError, ChangePlan, Submitted};
use crate::resources::model::{
    Drift, Lock, Resource, ResourceChange, ResourceKind, ResourceStatus, StackMember,
};
use crate::resources::reconcile::{Reconciliation, check, reconciliation};
use crate::resources::service::ResourceError;
use crate::resources::verify::VerificationView;

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
    #[schema(value_type = String)]
    request_id: crate::requests::model::RequestId,
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
    /// The digest of its item's definition when it was provisioned or last changed.
    #[serde(skip_serializing_if = "String::is_empty")]
    item_digest: String,
    /// Its item's definition changed since (or the item left the catalog): an upgrade
    /// would change it.
    outdated: bool,
}

impl ResourceView {
    /// `r` as the API shows it, against the live catalog `catalog`.
    fn of(r: &Resource, catalog: &CatalogSnapshot) -> Self {
        ResourceView {
            id: r.id.clone(),
            kind: r.kind,
            item: r.item.clone(),
            item_digest: r.item_digest.clone(),
            outdated: r.outdated(catalog),
            catalog_version: r.catalog_version.clone(),
            owner: r.owner.clone(),
            requester: r.requester.clone(),
            inputs: r.inputs.clone(),
            outputs: r.outputs.clone(),
            status: r.status,
            serial: r.serial,
            lineage: r.lineage.clone(),
            request_id: r.request_id,
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
    #[param(value_type = Option<ResourceStatus>)]
    status: Option<String>,
    item: Option<String>,
    owner: Option<String>,
    requester: Option<String>,
    /// The `next` of the previous page; valid only with that page's filters.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// `true`: only those whose item's definition changed since they were provisioned or
    /// last changed. A page then reads at most 2,000 resources; `next` goes on from there.
    outdated: Option<bool>,
}

/// How many resources one page of `?outdated=true` reads at most.
const OUTDATED_SCAN: usize = 2_000;

/// Resources: the caller's own unless `owner` (team members) or `requester` (admins) says otherwise.
#[utoipa::path(get, path = "/resources", tag = "resources", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = ResourcePage), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(p): QueryParams<ListParams>,
) -> Result<Json<ResourcePage>, Problem> {
    let status = status_filter(
        p.status.as_deref(),
        &ResourceStatus::ALL,
        ResourceStatus::as_str,
    )?;
    let pages = PageFilter::new("resources")
        .with("status", p.status.as_deref())
        .with("item", p.item.as_deref())
        .with("owner", p.owner.as_deref())
        .with("requester", p.requester.as_deref())
        .with("outdated", p.outdated.filter(|o| *o).map(|_| "true"));
    let mut query = ResourceQuery {
        cursor: pages.read(p.cursor.as_deref())?,
        owner: p.owner,
        requester: p.requester,
        item: p.item,
        status,
        limit: page_limit(p.limit, 200)?,
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
        .map_err(|e| Problem::forbidden(e.0))?;
    let catalog = state.requests.catalog.current();
    let page = if p.outdated == Some(true) {
        outdated(&state, query, &catalog).await?
    } else {
        state.resources.store.list(&query).await?
    };
    Ok(Json(ResourcePage {
        items: page
            .items
            .iter()
            .map(|r| ResourceView::of(r, &catalog))
            .collect(),
        next: pages.issue(page.next),
    }))
}

/// A resource.
/// The outdated resources of `query`'s listing: its pages read until a page of them is
/// found, the listing ends, or [`OUTDATED_SCAN`] resources were read; `next` goes on
/// after the last one read.
async fn outdated(
    state: &AppState,
    mut query: ResourceQuery,
    catalog: &CatalogSnapshot,
) -> Result<crate::ports::Page<Resource>, Problem> {
    let want = query.limit;
    query.limit = 200;
    let mut found = Vec::new();
    let mut read = 0;
    loop {
        let page = state.resources.store.list(&query).await?;
        for r in page.items {
            read += 1;
            let last = r.id.clone();
            if r.outdated(catalog) {
                found.push(r);
            }
            if found.len() == want || read == OUTDATED_SCAN {
                return Ok(crate::ports::Page {
                    items: found,
                    next: Some(last),
                });
            }
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => {
                return Ok(crate::ports::Page {
                    items: found,
                    next: None,
                });
            }
        }
    }
}

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
    Ok(Json(ResourceView::of(
        &resource,
        &state.requests.catalog.current(),
    )))
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

/// The reconciler's pass under way (how far its listing is, how many of its batches the
/// worker verified, what they found) and the last pass finished (admins).
#[utoipa::path(get, path = "/reconciliation", tag = "resources", security(("bearer" = [])),
    responses((status = 200, body = Reconciliation),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn reconciliation_state(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Reconciliation>, Problem> {
    if !state.requests.roles.is_admin(&who) {
        return Err(Problem::forbidden("the reconciliation is for admins"));
    }
    Ok(Json(reconciliation(state.state.as_ref()).await?))
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
    let submitted = state
        .changes
        .change(&who, &id, body.fields, body.apply, body.force)
        .await?;
    Ok(respond(submitted))
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
    QueryParams(params): QueryParams<DeleteParams>,
) -> Result<Response, Problem> {
    let apply = params.dry_run != Some(true);
    let submitted = state
        .changes
        .delete(&who, &id, apply, params.force == Some(true))
        .await?;
    Ok(respond(submitted))
}

/// The plan (200), or the accepted change (202, with its request's location and what
/// the audit log records of it).
fn respond(submitted: Submitted) -> Response {
    let (request, plan, resource, forced) = match submitted {
        Submitted::Planned { resource, plan } => {
            let mut response = Json(plan).into_response();
            response.extensions_mut().insert(AuditTarget(resource));
            return response;
        }
        Submitted::Accepted {
            request,
            plan,
            resource,
            forced,
        } => (request, plan, resource, forced),
    };
    let location = HeaderValue::from_str(&format!("/requests/{}", request.id));
    let mut response = (
        StatusCode::ACCEPTED,
        Json(ChangeAccepted {
            request: RequestView::from((*request).clone()),
            plan,
        }),
    )
        .into_response();
    if let Ok(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(what) = forced {
        response.extensions_mut().insert(AuditDetail(format!(
            "{} of resource {resource} forced past verification by request {}: {what}",
            request.operation.as_str(),
            request.id
        )));
    }
    response.extensions_mut().insert(AuditTarget(resource));
    response
}

impl From<ChangeError> for Problem {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Resource(e) => e.into(),
            ChangeError::Request(e) => e.into(),
            ChangeError::ForceNotAllowed => Problem::forbidden(e.to_string()),
            ChangeError::Drifted { ref drift, .. } => {
                let drift = drift.clone();
                Problem::conflict("resource-drifted", "Resource drifted", e.to_string())
                    .with("drift", drift)
            }
            ChangeError::VerificationFailed { .. } => {
                Problem::conflict("verification-failed", "Verification failed", e.to_string())
            }
        }
    }
}
