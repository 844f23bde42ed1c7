//! The one HTTP API: an axum `Router` served by local mode, by tests, and by the api
//! Lambda unchanged.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod cursor;
pub mod insights;
pub mod portal;
pub mod problem;
pub mod requests;
pub mod resources;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ports::{AuditLog, RequestQuery, Secrets};
use crate::requests::service::RequestService;
use auth::Authenticator;
use problem::Problem;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the handlers share: one reference to [`Shared`], since axum clones the state for
/// every extractor of every request (cloning each of its handles was a measurable share of
/// a request's time under load).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The services and settings behind [`AppState`].
pub struct Shared {
    pub requests: Arc<RequestService>,
    pub audit: Arc<dyn AuditLog>,
    pub auth: Arc<Authenticator>,
    pub secrets: Arc<dyn Secrets>,
    /// Name of the secret JIRA's webhook presents.
    pub jira_webhook_secret: String,
    /// Shared records: mode overrides (and the engine's executions and breakers).
    pub state: Arc<dyn crate::ports::StateStore>,
    /// Renders dry runs (`POST /requests?dryRun=true`).
    pub planner: Arc<crate::fulfillment::plan::Planner>,
    /// Bundles' executions (`GET /requests/{id}/execution`, JIRA issues of components).
    pub workflows: Arc<dyn crate::ports::Workflows>,
    /// Catalog ingestion from GitHub pushes, when `github.catalog` is configured.
    pub ingest: Option<Arc<crate::ingest::Ingest>>,
    /// Resource records, their changes and verification.
    pub resources: Arc<crate::resources::service::Resources>,
    pub verifier: Arc<crate::resources::verify::Verifier>,
    /// Day-2 changes and deletions: plan, verify, lock, submit.
    pub changes: Arc<crate::resources::change::Changes>,
    /// Takes what a person did in JIRA (`POST /webhooks/jira`).
    pub worker: Arc<crate::worker::Worker>,
}

/// The OpenAPI document's frame; paths and schemas come from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Orchestrator API", description = "Self-service requests for the catalog's items and bundles."),
    modifiers(&BearerAuth),
    // Schemas only query parameters name (the handlers' bodies register the others).
    components(schemas(crate::insights::service::Outcome)),
    tags((name = "catalog"), (name = "requests"), (name = "approvals"), (name = "resources"), (name = "audit"), (name = "insights"), (name = "webhooks"), (name = "health"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The routes with their documentation: each route is registered from its handler's
/// annotation, so the OpenAPI document cannot drift from what is served.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(catalog::list_items))
        .routes(routes!(catalog::facets))
        .routes(routes!(catalog::get_item))
        .routes(routes!(catalog::set_mode, catalog::lift_mode))
        .routes(routes!(catalog::list_bundles))
        .routes(routes!(catalog::get_bundle))
        .routes(routes!(catalog::get_bundle_definition))
        .routes(routes!(catalog::get_ingestion))
        .routes(routes!(catalog::list_versions))
        .routes(routes!(catalog::activate_version))
        .routes(routes!(catalog::sync))
        .routes(routes!(requests::submit, requests::list))
        .routes(routes!(requests::get))
        .routes(routes!(requests::cancel))
        .routes(routes!(requests::redrive))
        .routes(routes!(requests::comment))
        .routes(routes!(requests::resolve))
        .routes(routes!(requests::events))
        .routes(routes!(requests::execution))
        .routes(routes!(resources::list))
        .routes(routes!(resources::get, resources::delete))
        .routes(routes!(resources::history))
        .routes(routes!(resources::verify))
        .routes(routes!(resources::change))
        .routes(routes!(resources::reconciliation_state))
        .routes(routes!(audit::list))
        .routes(routes!(insights::lead_time))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(webhooks::jira))
        .routes(routes!(webhooks::github))
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = documented().split_for_parts().1;
    document_problems(&mut spec);
    spec
}

/// The problems every operation of a kind answers, documented on each: 401 where a bearer
/// token is needed; 400 where query parameters are read (one that does not parse); 400,
/// 413 and 415 where a body is read (not JSON, too large, another content type).
fn document_problems(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| -> RefOr<utoipa::openapi::Response> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
            .into()
    };
    for item in spec.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let mut answers = Vec::new();
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                answers.push((
                    "401",
                    "No bearer token, or one that is not valid (expired, wrong signature)",
                ));
            }
            let reads_query = operation
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
            if reads_query || operation.request_body.is_some() {
                answers.push((
                    "400",
                    "A query parameter or the body is not valid (`parameter` or the detail names it)",
                ));
            }
            if operation.request_body.is_some() {
                answers.push(("413", "The body is larger than the limit"));
                answers.push(("415", "The body is not JSON"));
                answers.push((
                    "422",
                    "The body is JSON but not of the documented shape (the detail says where)",
                ));
            }
            for (status, description) in answers {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description));
            }
        }
    }
}

/// The API.
pub fn router(state: AppState) -> Router {
    let (routes, mut spec) = documented().split_for_parts();
    document_problems(&mut spec);
    let spec = Arc::new(spec.to_pretty_json().unwrap_or_default());
    let api = routes
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        spec.as_str().to_owned(),
                    )
                }
            }),
        )
        .fallback(|| async { Problem::not_found("no such endpoint") });
    // One `layer` call with the whole stack: `Router::layer` wraps every route in a boxed
    // service per call, and every request clones each box it passes through (one call
    // per layer cost seven clones, 29 allocations per request).
    // Outermost first: the request id is set before anything logs, and the audit entry
    // is written inside the panic guard with the id and the caller it records.
    api.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<_>| {
                        let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path())
                    })
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
            )
            .layer(CatchPanicLayer::custom(|_| Problem::internal().into_response()))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                audit::record,
            )),
    )
    .with_state(state)
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: storage answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = String), (status = 503, body = Problem, content_type = "application/problem+json")))]
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
