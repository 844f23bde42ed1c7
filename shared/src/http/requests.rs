//! `/requests`: submit, read, list, cancel, and the timeline.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::audit::AuditTarget;
use super::auth::Caller;
use super::problem::{JsonBody, Problem};
use crate::ports::RequestQuery;
use crate::requests::model::{Request, RequestStatus};

/// `POST /requests`: exactly one of `item` and `bundle`, and the form's values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    item: Option<String>,
    bundle: Option<String>,
    #[serde(default)]
    fields: Map<String, Value>,
}

const MAX_KEY_LEN: usize = 255;

/// The request as the API shows it.
pub fn view(request: &Request) -> Value {
    let mut v = serde_json::to_value(request).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("fingerprint");
        map.insert(
            "links".to_owned(),
            json!({
                "self": format!("/requests/{}", request.id),
                "events": format!("/requests/{}/events", request.id),
            }),
        );
    }
    v
}

fn with_target(mut response: Response, request: &Request) -> Response {
    response
        .extensions_mut()
        .insert(AuditTarget(request.id.to_string()));
    response
}

pub async fn submit(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
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
    let key = match headers.get("idempotency-key") {
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
    let (request, new) = state
        .requests
        .submit(&who, &target, body.fields, key)
        .await?;
    let status = if new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(view(&request))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/requests/{}", request.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if !new {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(with_target(response, &request))
}

pub async fn get(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let request = state.requests.get(&who, &id).await?;
    Ok(Json(view(&request)))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    item: Option<String>,
    owner: Option<String>,
    requester: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    Caller(who): Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, Problem> {
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(RequestStatus::parse(s).ok_or_else(|| {
            let known: Vec<&str> = RequestStatus::ALL.iter().map(|s| s.as_str()).collect();
            Problem::bad_request(format!("unknown status `{s}`; one of {}", known.join(", ")))
        })?),
    };
    let query = RequestQuery {
        requester: p.requester,
        owner: p.owner,
        status,
        target: p.item,
        cursor: p.cursor,
        limit: p.limit.unwrap_or(50).clamp(1, 200),
    };
    let page = state.requests.list(&who, query).await?;
    let items: Vec<Value> = page.items.iter().map(view).collect();
    Ok(Json(json!({"items": items, "next": page.next})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: Option<String>,
}

pub async fn cancel(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    // The body is optional: empty, or {"reason": "..."}.
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<CancelBody>(&body)
            .map_err(|e| {
                Problem::bad_request(format!("the body must be {{\"reason\": \"...\"}}: {e}"))
            })?
            .reason
    };
    let request = state.requests.cancel(&who, &id, reason).await?;
    Ok(with_target(Json(view(&request)).into_response(), &request))
}

pub async fn events(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let request = state.requests.get(&who, &id).await?;
    let events = state.requests.store.events(&request.id).await?;
    Ok(Json(
        json!({"requestId": request.id, "status": request.status, "events": events}),
    ))
}
