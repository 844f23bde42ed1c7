//! `/requests`: submit, read, list, cancel, and the timeline.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::audit::AuditTarget;
use super::auth::Caller;
use super::cursor::PageFilter;
use super::problem::{JsonBody, Problem, QueryParams, page_limit, status_filter};
use crate::access::Principal;
use crate::catalog::snapshot::TargetRef;
use crate::ports::RequestQuery;
use crate::requests::components::{self, ComponentProgress};
use crate::requests::durations::LeadTime;
use crate::requests::model::{
    Operation, Request, RequestEvent, RequestId, RequestStatus, TargetKind, Ticket,
};
use crate::requests::service::RequestError;
use crate::requests::sla::{SlaClock, clocks, sla_of};

/// The `Idempotency-Key` header as sent (`HeaderMap` as an extractor would copy every
/// header of every submission to read this one).
pub struct IdempotencyKey(Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IdempotencyKey(
            parts.headers.get("idempotency-key").cloned(),
        ))
    }
}

/// A request's id from the path (`/requests/{id}`): text that is no request id names no
/// request, which is a 404 like any request the caller may not see.
pub struct RequestPath(pub RequestId);

impl<S: Send + Sync> FromRequestParts<S> for RequestPath {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        id.parse()
            .map(RequestPath)
            .map_err(|_| RequestError::NotFound(id).into())
    }
}

/// `POST /requests`: exactly one of `item` and `bundle`, and the form's values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The item to request.
    item: Option<String>,
    /// The bundle to request.
    bundle: Option<String>,
    /// Values for the form of the item or bundle.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// Nothing runs before this time (RFC 3339): a scheduled request.
    #[serde(default, rename = "notBefore")]
    not_before: Option<String>,
    /// Admins: why the change calendars do not apply to this request (audited).
    #[serde(default, rename = "calendarOverride")]
    calendar_override: Option<String>,
}

/// What `POST /requests` accepts, as the OpenAPI document shows it: exactly one of `item`
/// and `bundle` ([`Submission`] reads it and says which is wrong).
#[derive(ToSchema)]
#[schema(as = Submission)]
#[allow(dead_code)]
#[serde(untagged)]
enum SubmissionDoc {
    Item(ItemSubmission),
    Bundle(BundleSubmission),
}

/// A request for an item.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct ItemSubmission {
    /// The item to request.
    #[schema(min_length = 1)]
    item: String,
    /// Values for the item's form.
    #[schema(value_type = Object)]
    fields: Option<Map<String, Value>>,
    /// Nothing runs before this time (RFC 3339): a scheduled request.
    #[schema(format = DateTime)]
    #[serde(rename = "notBefore")]
    not_before: Option<String>,
    /// Admins: why the change calendars do not apply to this request.
    #[serde(rename = "calendarOverride")]
    calendar_override: Option<String>,
}

/// A request for a bundle.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct BundleSubmission {
    /// The bundle to request.
    #[schema(min_length = 1)]
    bundle: String,
    /// Values for the bundle's form.
    #[schema(value_type = Object)]
    fields: Option<Map<String, Value>>,
    /// Nothing runs before this time (RFC 3339): a scheduled request.
    #[schema(format = DateTime)]
    #[serde(rename = "notBefore")]
    not_before: Option<String>,
    /// Admins: why the change calendars do not apply to this request.
    #[serde(rename = "calendarOverride")]
    calendar_override: Option<String>,
}

const MAX_KEY_LEN: usize = 255;

/// The time a submission's `notBefore` names (RFC 3339); a time already past runs at
/// once.
fn scheduled_time(text: &str) -> Result<time::OffsetDateTime, Problem> {
    let invalid = |why: String| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-schedule",
            "Invalid schedule",
            format!("`notBefore`: {why}"),
        )
        .with("field", "notBefore")
    };
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| invalid(format!("`{text}` is not an RFC 3339 date-time ({e})")))
}

/// A request as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    #[schema(value_type = String)]
    id: RequestId,
    kind: TargetKind,
    /// The item or bundle requested.
    target: String,
    catalog_version: String,
    /// The team that owns the item or bundle.
    owner: String,
    requester: Principal,
    /// `provision`, or a day-2 `update` or `delete` of `resource`.
    operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    /// The field values, defaults applied.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    status: RequestStatus,
    /// Why the request failed, was rejected or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The JIRA issue of a manual request.
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<Ticket>,
    #[schema(value_type = Object)]
    outputs: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    /// A scheduled request: nothing runs before this time.
    #[serde(
        with = "crate::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    not_before: Option<time::OffsetDateTime>,
    /// Why it waits until `notBefore`: the change calendar's freeze or window.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_for: Option<String>,
    /// An admin's reason for not applying the change calendars to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar_override: Option<String>,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: time::OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: time::OffsetDateTime,
    /// How long it took and where the time went (an ended request).
    #[serde(skip_serializing_if = "Option::is_none")]
    lead_time: Option<LeadTime>,
    version: u64,
    links: RequestLinks,
    /// Its approval stages and their decisions (`GET /requests/{id}` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approvals: Vec<crate::approvals::model::Approval>,
    /// Its service level clocks, when its item or bundle declares targets
    /// (`GET /requests/{id}` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sla: Vec<SlaClock>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestLinks {
    #[serde(rename = "self")]
    #[schema(rename = "self")]
    this: String,
    events: String,
}

impl From<Request> for RequestView {
    fn from(r: Request) -> Self {
        RequestView {
            links: RequestLinks {
                this: format!("/requests/{}", r.id),
                events: format!("/requests/{}/events", r.id),
            },
            id: r.id,
            kind: r.kind,
            target: r.target,
            catalog_version: r.catalog_version,
            owner: r.owner,
            requester: r.requester,
            operation: r.operation,
            resource: r.resource,
            fields: r.fields,
            status: r.status,
            reason: r.reason,
            ticket: r.ticket,
            outputs: r.outputs,
            idempotency_key: r.idempotency_key,
            not_before: r.not_before,
            waiting_for: r.waiting_for,
            calendar_override: r.calendar_override,
            created_at: r.created_at,
            updated_at: r.updated_at,
            lead_time: r.lead_time,
            version: r.version,
            approvals: Vec::new(),
            sla: Vec::new(),
        }
    }
}

/// A page of requests; `next` is the cursor of the following page.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    items: Vec<RequestView>,
    next: Option<String>,
}

/// A request's timeline, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    #[schema(value_type = String)]
    request_id: RequestId,
    status: RequestStatus,
    events: Vec<RequestEvent>,
    /// For a bundle request: where each component stands, read off the events.
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<ComponentProgress>>,
}

fn with_target(mut response: Response, id: RequestId) -> Response {
    response
        .extensions_mut()
        .insert(AuditTarget(id.to_string()));
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SubmitParams {
    /// Plan only: render every action as it would run (secrets as `***`) and store nothing.
    dry_run: Option<bool>,
}

/// Requests an item or a bundle. 202 with the new request; with an `Idempotency-Key` already
/// used for the same body, 200 with the original; with `dryRun=true`, 200 with the plan.
#[utoipa::path(post, path = "/requests", tag = "requests", security(("bearer" = [])),
    request_body = SubmissionDoc,
    params(SubmitParams, ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the original request", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    responses((status = 202, body = RequestView, description = "Accepted"), (status = 200, body = RequestView, description = "An idempotent replay, or with dryRun=true the Plan"),
              (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "A change calendar's freeze refuses it (`change-frozen`), or the item is deprecated (`deprecated`, with `replacedBy` when there is a replacement)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "Invalid fields (see `errors`), or an Idempotency-Key reused with another body")))]
pub async fn submit(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(params): QueryParams<SubmitParams>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Submission>,
) -> Result<Response, Problem> {
    let target = match (body.item, body.bundle) {
        (Some(item), None) => item,
        (None, Some(bundle)) => bundle,
        _ => {
            return Err(Problem::bad_request(
                "name exactly one of `item` and `bundle`",
            ));
        }
    };
    if params.dry_run == Some(true) {
        return dry_run(&state, &who, &target, body.fields).await;
    }
    let key = match key {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => Some(k.to_owned()),
            _ => {
                return Err(Problem::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
                )));
            }
        },
    };
    let not_before = match body.not_before.as_deref() {
        None => None,
        Some(text) => Some(scheduled_time(text)?),
    };
    let mut request = state
        .requests
        .prepare_provision(&who, &target, body.fields, key)?;
    if let Some(at) = not_before {
        state.requests.schedule(&mut request, at);
    }
    let overridden = body.calendar_override.filter(|r| !r.trim().is_empty());
    if overridden.is_some() && !state.requests.roles.is_admin(&who) {
        return Err(Problem::forbidden(
            "only admins override the change calendars",
        ));
    }
    state
        .requests
        .apply_calendars(&mut request, overridden.as_deref())?;
    let (request, new) = state.requests.accept(request).await?;
    let status = if new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let id = request.id;
    let mut response = (status, Json(RequestView::from(request))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/requests/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if !new {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(with_target(response, id))
}

/// The plan of a request that is checked like a submission but never stored.
async fn dry_run(
    state: &AppState,
    who: &Principal,
    target: &str,
    fields: Map<String, Value>,
) -> Result<Response, Problem> {
    let mut request = state
        .requests
        .prepare_provision(who, target, fields, None)?;
    // The change calendars: a conflict is shown, not refused.
    let calendar = match state.requests.apply_calendars(&mut request, None) {
        Ok(()) => request.waiting_for.clone().map(|why| {
            format!(
                "change calendar: the request would wait until {}: it {why}",
                request
                    .not_before
                    .map(crate::timestamp::format)
                    .unwrap_or_default()
            )
        }),
        Err(RequestError::Frozen(why)) => Some(format!(
            "change calendar: the request would be refused: {why}"
        )),
        Err(e) => return Err(e.into()),
    };
    let snapshot = state.requests.catalog.current();
    let item = match snapshot.target(target) {
        Some(TargetRef::Item(item)) => item,
        Some(TargetRef::Bundle(_)) => {
            return Err(Problem::bad_request(
                "dry runs of bundles are not supported by this version yet",
            ));
        }
        None => return Err(RequestError::UnknownTarget(target.to_owned()).into()),
    };
    let forced = crate::fulfillment::mode::get(state.state.as_ref(), target).await?;
    let now = state.requests.clock.now();
    let mut plan = state
        .planner
        .plan_request(&request, &item.doc, forced.as_ref(), now);
    plan.warnings.extend(calendar);
    for name in &plan.secrets {
        if state.secrets.get(name).await?.is_none() {
            plan.warnings.push(format!(
                "secret `{name}` is not set: an action reading it would fail"
            ));
        }
    }
    Ok((StatusCode::OK, Json(plan)).into_response())
}

/// A request.
#[utoipa::path(get, path = "/requests/{id}", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, body = RequestView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
) -> Result<Json<RequestView>, Problem> {
    let request = state.requests.get(&who, id).await?;
    let approvals = state.worker.approvals.of_request(request.id).await?;
    let catalog = state.requests.catalog.current();
    let sla = match sla_of(&catalog, &request.target) {
        Some(sla) => {
            let events = state.requests.store.events(&request.id).await?;
            clocks(sla, &request, &events, state.requests.clock.now())
        }
        None => Vec::new(),
    };
    let mut view = RequestView::from(request);
    view.approvals = approvals;
    view.sla = sla;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(value_type = Option<RequestStatus>)]
    status: Option<String>,
    item: Option<String>,
    owner: Option<String>,
    requester: Option<String>,
    /// The `next` of the previous page; valid only with that page's filters.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

/// Requests: the caller's own unless `owner` (team members) or `requester` (admins) says otherwise.
#[utoipa::path(get, path = "/requests", tag = "requests", security(("bearer" = [])),
    params(ListParams),
    responses((status = 200, body = RequestPage), (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(p): QueryParams<ListParams>,
) -> Result<Json<RequestPage>, Problem> {
    let status = status_filter(
        p.status.as_deref(),
        &RequestStatus::ALL,
        RequestStatus::as_str,
    )?;
    let pages = PageFilter::new("requests")
        .with("status", p.status.as_deref())
        .with("item", p.item.as_deref())
        .with("owner", p.owner.as_deref())
        .with("requester", p.requester.as_deref());
    let query = RequestQuery {
        cursor: pages.read(p.cursor.as_deref())?,
        requester: p.requester,
        owner: p.owner,
        status,
        target: p.item,
        created: None,
        limit: page_limit(p.limit, 200)?,
    };
    let page = state.requests.list(&who, query).await?;
    Ok(Json(RequestPage {
        items: page.items.into_iter().map(RequestView::from).collect(),
        next: pages.issue(page.next),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: Option<String>,
}

/// Cancels a request that has not finished.
#[utoipa::path(post, path = "/requests/{id}/cancel", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = Option<CancelBody>, description = "Optional reason"),
    responses((status = 200, body = RequestView), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "The request already finished")))]
pub async fn cancel(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    // The body is optional: empty, `null`, or {"reason": "..."}.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Option<CancelBody>>(&body)
            .map_err(|e| {
                Problem::bad_request(format!("the body must be {{\"reason\": \"...\"}}: {e}"))
            })?
            .and_then(|b| b.reason)
    };
    let request = state.requests.cancel(&who, id, reason).await?;
    let id = request.id;
    Ok(with_target(
        Json(RequestView::from(request)).into_response(),
        id,
    ))
}

/// Resumes a paused request (a bundle with `onFailure: pause` whose component failed)
/// from its failed component: completed components are not run again (admins).
#[utoipa::path(post, path = "/requests/{id}/redrive", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, body = RequestView, description = "The request, in progress again"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "Only admins redrive requests"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "The request is not paused")))]
pub async fn redrive(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
) -> Result<Response, Problem> {
    let request = state.worker.redrive(&who, id).await?;
    let id = request.id;
    Ok(with_target(
        Json(RequestView::from(request)).into_response(),
        id,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// `retry` (default): try each call again with its Idempotency-Key and roll back what
    /// it made; `absent`: the target holds nothing for them (an admin looked).
    #[serde(default)]
    verdict: crate::worker::outcomes::Verdict,
}

/// What became of the request's unknown outcomes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resolutions {
    resolutions: Vec<crate::worker::outcomes::Resolution>,
}

/// Resolves the actions of an ended request whose outcome stayed unknown (their last
/// attempt got no answer), which the reconciler otherwise retries on each pass (admins).
#[utoipa::path(post, path = "/requests/{id}/resolve", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = Option<ResolveBody>, description = "Optional verdict"),
    responses((status = 200, body = Resolutions, description = "One entry per unknown outcome; `pending` ones are not resolved yet"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "Only admins resolve outcomes"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn resolve(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let verdict = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        serde_json::from_slice::<Option<ResolveBody>>(&body)
            .map_err(|e| {
                Problem::bad_request(format!(
                    "the body must be {{\"verdict\": \"retry\" | \"absent\"}}: {e}"
                ))
            })?
            .unwrap_or_default()
            .verdict
    };
    let resolutions = state.worker.resolve_outcomes(&who, id, verdict).await?;
    Ok(with_target(
        Json(Resolutions { resolutions }).into_response(),
        id,
    ))
}

/// A comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// 1 to 5,000 characters.
    #[schema(min_length = 1, max_length = 5000)]
    text: String,
}

/// Where a comment was copied.
#[derive(Debug, Serialize, ToSchema)]
pub struct Commented {
    /// The JIRA issues of the request the comment was added to (a request a person
    /// fulfils), and whether it could be.
    jira: Vec<crate::worker::comments::Copied>,
}

/// Comments on a request (its requester, owning team, approvers and admins): onto its
/// timeline and, for a request a person fulfils, its JIRA issues.
#[utoipa::path(post, path = "/requests/{id}/comments", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = CommentBody),
    responses((status = 201, body = Commented, description = "On the timeline"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "An empty or too long text")))]
pub async fn comment(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Response, Problem> {
    let text = body.text.trim();
    let length = text.chars().count();
    if length == 0 || length > crate::worker::comments::MAX_COMMENT {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-comment",
            "Invalid comment",
            format!("`text`: 1 to 5,000 characters, not {length}"),
        )
        .with("field", "text"));
    }
    let jira = state.worker.comment(&who, id, text).await?;
    Ok(with_target(
        (StatusCode::CREATED, Json(Commented { jira })).into_response(),
        id,
    ))
}

/// A request's timeline.
#[utoipa::path(get, path = "/requests/{id}/events", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, body = Timeline), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
) -> Result<Json<Timeline>, Problem> {
    let request = state.requests.get(&who, id).await?;
    let events = state.requests.store.events(&request.id).await?;
    let components = match request.kind {
        TargetKind::Bundle => state
            .requests
            .catalog
            .current()
            .catalog
            .bundle(&request.target)
            .map(|b| components::progress(&b.doc.spec.components, &events)),
        TargetKind::Item => None,
    };
    Ok(Json(Timeline {
        request_id: request.id,
        status: request.status,
        events,
        components,
    }))
}

/// A request's execution: where its state machine stands, and its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    execution: crate::ports::ExecutionSummary,
    /// The execution's events, oldest first, as Step Functions' GetExecutionHistory.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
}

/// A request's state machine execution (bundles and automated items), with its history.
#[utoipa::path(get, path = "/requests/{id}/execution", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, body = ExecutionView),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "No such request, or it has no execution (yet)")))]
pub async fn execution(
    State(state): State<AppState>,
    Caller(who): Caller,
    RequestPath(id): RequestPath,
) -> Result<Json<ExecutionView>, Problem> {
    let request = state.requests.get(&who, id).await?;
    let machine = crate::bundle::asl::machine_name_of(request.kind, &request.target);
    let arn = state
        .workflows
        .execution_arn(&machine, &request.id.to_string());
    let execution = state
        .workflows
        .describe(&arn)
        .await
        .map_err(workflow_problem)?
        .ok_or_else(|| Problem::not_found(format!("request {} has no execution", request.id)))?;
    let events = state
        .workflows
        .history(&arn)
        .await
        .map_err(workflow_problem)?;
    Ok(Json(ExecutionView { execution, events }))
}

fn workflow_problem(e: crate::ports::WorkflowError) -> Problem {
    match e {
        crate::ports::WorkflowError::Store(e) => e.into(),
        other => {
            tracing::error!(error = %other, "the workflow engine failed");
            Problem::internal()
        }
    }
}
