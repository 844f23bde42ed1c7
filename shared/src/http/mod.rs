//! The one HTTP API: an axum `Router` served by local mode, by tests, and later by the api
//! Lambda unchanged.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod problem;
pub mod requests;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::ports::{AuditLog, RequestQuery, Secrets};
use crate::requests::service::RequestService;
use auth::Authenticator;
use problem::Problem;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub requests: Arc<RequestService>,
    pub audit: Arc<dyn AuditLog>,
    pub auth: Arc<Authenticator>,
    pub secrets: Arc<dyn Secrets>,
    /// Name of the secret JIRA's webhook presents.
    pub jira_webhook_secret: String,
}

/// The API.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/catalog/items", get(catalog::list_items))
        .route("/catalog/items/{name}", get(catalog::get_item))
        .route("/catalog/bundles", get(catalog::list_bundles))
        .route("/catalog/bundles/{name}", get(catalog::get_bundle))
        .route("/requests", post(requests::submit).get(requests::list))
        .route("/requests/{id}", get(requests::get))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/requests/{id}/events", get(requests::events))
        .route("/audit", get(audit::list))
        .route("/webhooks/jira", post(webhooks::jira))
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .with_state(state);
    api.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| Problem::internal().into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when storage answers.
async fn readyz(State(state): State<AppState>) -> Response {
    let probe = RequestQuery {
        limit: 1,
        requester: Some(String::new()),
        ..Default::default()
    };
    match state.requests.store.list(&probe).await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// How long a client should wait before polling a request again.
pub const POLL_AFTER: Duration = Duration::from_secs(2);
