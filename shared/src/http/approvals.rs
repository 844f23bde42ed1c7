//! `GET /approvals`, and a decision on one: `POST /approvals/{id}/approve` or `/deny`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::audit::AuditTarget;
use super::auth::Caller;
use super::problem::{Problem, QueryParams};
use crate::approvals::model::Approval;
use crate::approvals::service::{DecisionError, Verdict};

/// Approval stages.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalList {
    items: Vec<Approval>,
}

/// What `GET /approvals` narrows to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Stages of one item or bundle.
    target: Option<String>,
    /// Stages of one request.
    request: Option<String>,
    /// Stages of one owning team's items and bundles.
    owner: Option<String>,
}

/// Pending approval stages the caller may decide, oldest first (admins: all of them),
/// narrowed by the filters given.
#[utoipa::path(get, path = "/approvals", tag = "approvals", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = ApprovalList)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<ApprovalList>, Problem> {
    let items = state
        .worker
        .approvals
        .awaiting(&who)
        .await?
        .into_iter()
        .filter(|a| params.target.as_ref().is_none_or(|t| *t == a.target))
        .filter(|a| params.owner.as_ref().is_none_or(|o| *o == a.owner))
        .filter(|a| {
            params
                .request
                .as_ref()
                .is_none_or(|r| *r == a.request_id.to_string())
        })
        .collect();
    Ok(Json(ApprovalList { items }))
}

/// An approval.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApproveBody {
    comment: Option<String>,
    /// An admin who is not one of the stage's approvers decides on their behalf, saying
    /// why here.
    on_behalf: Option<String>,
}

/// A denial: `reason` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DenyBody {
    reason: String,
    on_behalf: Option<String>,
}

impl From<DecisionError> for Problem {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::NotFound(id) => {
                Problem::not_found(format!("no approval `{id}` awaits you"))
            }
            DecisionError::Forbidden(why) => Problem::forbidden(why),
            DecisionError::Conflict(why) => Problem::conflict("approval-decided", "Conflict", why),
            DecisionError::Invalid(why) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-decision",
                "Invalid decision",
                why,
            ),
            DecisionError::Request(e) => e.into(),
        }
    }
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8], shape: &str) -> Result<Option<T>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Option<T>>(bytes)
        .map_err(|e| Problem::bad_request(format!("the body must be {shape}: {e}")))
}

fn decided(approval: Approval) -> Response {
    let target = AuditTarget(approval.id.clone());
    let mut response = Json(approval).into_response();
    response.extensions_mut().insert(target);
    response
}

/// Approves a stage (its approvers; an admin on their behalf with `onBehalf`). The stage
/// is approved once its rule is met; the requester never approves their own request.
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals", security(("bearer" = [])),
    params(("id" = String, Path, description = "The approval's id: `<request id>.<stage number>`")),
    request_body(content = Option<ApproveBody>, description = "Optional comment"),
    responses((status = 200, body = Approval, description = "The stage, with the decision"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "The requester, or an admin without `onBehalf`"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "No such approval awaits the caller"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "Decided already, by the stage or by the caller, or expired")))]
pub async fn approve(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let given: ApproveBody = body(&bytes, "{\"comment\": \"...\"}")?.unwrap_or_default();
    let approval = state
        .worker
        .approvals
        .decide(
            &who,
            &id,
            Verdict::Approve {
                comment: given.comment,
            },
            given.on_behalf,
        )
        .await?;
    Ok(decided(approval))
}

/// Denies a stage, which rejects the request with the reason.
#[utoipa::path(post, path = "/approvals/{id}/deny", tag = "approvals", security(("bearer" = [])),
    params(("id" = String, Path, description = "The approval's id: `<request id>.<stage number>`")),
    request_body(content = DenyBody, description = "Why"),
    responses((status = 200, body = Approval, description = "The stage, denied"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "The requester, or an admin without `onBehalf`"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "No such approval awaits the caller"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "Decided already, or expired"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "No reason given")))]
pub async fn deny(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    let given: Option<DenyBody> = body(&bytes, "{\"reason\": \"...\"}")?;
    let Some(given) = given else {
        return Err(DecisionError::Invalid("`reason`: a denial says why".to_owned()).into());
    };
    let approval = state
        .worker
        .approvals
        .decide(
            &who,
            &id,
            Verdict::Deny {
                reason: given.reason,
            },
            given.on_behalf,
        )
        .await?;
    Ok(decided(approval))
}
