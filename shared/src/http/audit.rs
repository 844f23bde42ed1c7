//! The audit trail: every state-changing call (who, what, when, from where, outcome) is
//! recorded, whatever its outcome; admins read it at `GET /audit`.

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::cursor::PageFilter;
use super::problem::{Problem, QueryParams, page_limit};
use super::{AppState, REQUEST_ID};
use crate::ports::AuditQuery;
use crate::requests::model::AuditEntry;

/// Set by a handler on its response: the record the call acted on.
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

/// Set by a handler on its response: what else the audit entry must say.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    let action = format!("{method} {route}");
    // What the call was about when the handler does not say: the concrete path of a
    // route with parameters (`/catalog/items/rds-postgres/mode`).
    let concrete = route.contains('{').then(|| request.uri().path().to_owned());
    let caller = super::auth::caller_of(&state.auth, request.headers(), request.extensions());
    let actor = match caller {
        Ok(principal) => {
            let sub = principal.sub.clone();
            // The handler's `Caller` takes it from here instead of verifying the token again.
            request
                .extensions_mut()
                .insert(super::auth::Authenticated(principal));
            sub
        }
        Err(_) => "anonymous".to_owned(),
    };
    let source = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let correlation_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: state.requests.clock.now(),
        actor,
        action,
        target: response
            .extensions()
            .get::<AuditTarget>()
            .map(|t| t.0.clone())
            .or(concrete),
        source,
        outcome: response.status().as_u16(),
        detail: response
            .extensions()
            .get::<AuditDetail>()
            .map(|d| d.0.clone()),
        correlation_id,
    };
    if let Err(e) = state.audit.append(&entry).await {
        // The call already happened; losing its audit entry is worth an alarm, not a
        // different answer to the caller.
        tracing::error!(error = %e, action = %entry.action, "could not write the audit entry");
    }
    response
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    actor: Option<String>,
    /// The `next` of the previous page; valid only with that page's filters.
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// A page of the audit log, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    next: Option<String>,
}

/// The audit log (admins).
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(params): QueryParams<AuditParams>,
) -> Result<Response, Problem> {
    if !state.requests.roles.is_admin(&who) {
        return Err(Problem::forbidden("the audit log is for admins"));
    }
    let pages = PageFilter::new("audit").with("actor", params.actor.as_deref());
    let page = state
        .audit
        .list(&AuditQuery {
            cursor: pages.read(params.cursor.as_deref())?,
            actor: params.actor,
            limit: page_limit(params.limit, 500)?,
        })
        .await?;
    Ok(Json(AuditPage {
        items: page.items,
        next: pages.issue(page.next),
    })
    .into_response())
}
