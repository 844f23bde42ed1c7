//! `POST /webhooks/jira`: JIRA tells us an issue changed. When a request's issue is done,
//! the request completes (with the outputs the fulfiller filled in) or, resolved as
//! Won't Do / Declined, is rejected with the last comment as the reason.
//!
//! Authenticated by a shared secret: Jira Cloud signs the body (`X-Hub-Signature:
//! sha256=<hex HMAC>`); Data Center, which cannot sign, sends it as `?secret=`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::problem::Problem;
use crate::bundle::asl::SINGLE_COMPONENT;
use crate::catalog::snapshot::TargetRef;
use crate::fulfillment::components::{COMPONENT_TICKETS, ComponentTicket, REJECTED_ERROR};
use crate::fulfillment::manual::{Outcome, outcome};
use crate::ports::WorkflowError;
use crate::requests::model::RequestStatus;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookParams {
    /// The shared secret, for JIRA Data Center (which cannot sign its webhooks).
    secret: Option<String>,
}

fn authentic(secret: &[u8], body: &[u8], headers: &HeaderMap, query_secret: Option<&str>) -> bool {
    if let Some(signature) = headers.get("x-hub-signature").and_then(|v| v.to_str().ok()) {
        return crate::signing::verify(secret, body, signature);
    }
    query_secret.is_some_and(|given| crate::signing::same_secret(given.as_bytes(), secret))
}

/// JIRA's `jira:issue_updated` webhook.
#[utoipa::path(post, path = "/webhooks/jira", tag = "webhooks", params(WebhookParams),
    request_body(content = Object, description = "JIRA's webhook payload"),
    responses((status = 204, description = "Handled or ignored"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn jira(
    State(state): State<AppState>,
    Query(params): Query<WebhookParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let secret = state
        .secrets
        .get(&state.jira_webhook_secret)
        .await?
        .ok_or_else(|| Problem::unavailable("the JIRA webhook secret is not configured"))?;
    if !authentic(
        secret.expose().as_bytes(),
        &body,
        &headers,
        params.secret.as_deref(),
    ) {
        return Err(Problem::unauthorized(
            "the webhook's signature or secret is not valid",
            true,
        ));
    }
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
    if payload["webhookEvent"].as_str() != Some("jira:issue_updated") {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let Some(key) = payload["issue"]["key"].as_str() else {
        return Err(Problem::bad_request("the payload has no issue.key"));
    };
    if let Some(waiting) = state.state.get(COMPONENT_TICKETS, key).await? {
        return component_issue(&state, key, waiting.value, &payload["issue"]).await;
    }
    let service = &state.requests;
    let Some(request) = service.store.find_by_ticket(key).await? else {
        // Not an issue the orchestrator opened.
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let snapshot = service.catalog.current();
    let (output_fields, declared) = match snapshot.target(&request.target) {
        Some(TargetRef::Item(item)) => (
            item.doc
                .spec
                .fulfillment
                .manual
                .as_ref()
                .map(|m| m.outputs.clone())
                .unwrap_or_default(),
            item.doc.spec.outputs.clone(),
        ),
        _ => Default::default(),
    };
    let result = match outcome(&payload["issue"], &output_fields) {
        Outcome::Open => return Ok(StatusCode::NO_CONTENT.into_response()),
        Outcome::Completed { outputs, missing } => {
            let outputs = crate::resources::model::seal_outputs(&declared, &outputs);
            let message = if missing.is_empty() {
                format!("JIRA issue {key} is done")
            } else {
                format!(
                    "JIRA issue {key} is done, without values for {}",
                    missing.join(", ")
                )
            };
            service
                .transition(
                    request.id,
                    "jira",
                    "completed",
                    RequestStatus::Completed,
                    Some(message),
                    |r| r.outputs = outputs.clone(),
                )
                .await
        }
        Outcome::Rejected { reason } => {
            service
                .transition(
                    request.id,
                    "jira",
                    "rejected",
                    RequestStatus::Rejected,
                    Some(reason.clone()),
                    |r| r.reason = Some(reason.clone()),
                )
                .await
        }
    };
    match result {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        // Done twice, or the request was cancelled meanwhile: JIRA need not retry.
        Err(crate::requests::service::RequestError::InvalidTransition { .. }) => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The largest payload GitHub delivers.
const GITHUB_PAYLOAD_MAX: usize = 25 * 1024 * 1024;

/// GitHub's webhook for the catalog repository (`github.catalog`): a `push` to its
/// branch becomes the new catalog version or is rejected whole; `ping` is answered;
/// other events are acknowledged and ignored. The signature (`X-Hub-Signature-256`) is
/// checked before anything is read, and a replayed delivery (`X-GitHub-Delivery`) is
/// answered with its first report.
#[utoipa::path(post, path = "/webhooks/github", tag = "webhooks",
    request_body(content = Object, description = "GitHub's webhook payload"),
    responses((status = 200, description = "The ingestion report of a push, or the answer to a ping"),
              (status = 202, description = "An event the orchestrator does not handle"),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "GitHub ingestion is not configured")))]
pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Problem> {
    // GitHub's payloads go up to 25 MB (a push listing many commits), past the API's
    // limit for request bodies.
    let body = axum::body::to_bytes(body, GITHUB_PAYLOAD_MAX)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "a GitHub payload is at most 25 MB",
            )
        })?;
    let Some(ingest) = &state.ingest else {
        return Err(Problem::not_found(
            "GitHub ingestion is not configured (github.catalog.repository)",
        ));
    };
    let secret = state
        .secrets
        .get(&ingest.config.webhook_secret)
        .await?
        .ok_or_else(|| Problem::unavailable("the GitHub webhook secret is not configured"))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = header("x-hub-signature-256")
        .is_some_and(|s| crate::signing::verify(secret.expose().as_bytes(), &body, s));
    if !signed {
        return Err(Problem::unauthorized(
            "the X-Hub-Signature-256 signature is missing or not valid",
            false,
        ));
    }
    match header("x-github-event") {
        Some("ping") => return Ok(Json(json!({"pong": true})).into_response()),
        Some("push") => {}
        other => {
            let ignored = format!("`{}` events are not handled", other.unwrap_or("(none)"));
            return Ok((StatusCode::ACCEPTED, Json(json!({ "ignored": ignored }))).into_response());
        }
    }
    let Some(delivery) = header("x-github-delivery").filter(|d| !d.is_empty()) else {
        return Err(Problem::bad_request(
            "the X-GitHub-Delivery header is missing",
        ));
    };
    if let Some(report) = ingest.report(delivery).await? {
        return Ok(Json(json!({"duplicate": true, "ingestion": report})).into_response());
    }
    let push: crate::ingest::Push = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("the push payload is not readable: {e}")))?;
    let report = ingest.push(delivery, &push).await.map_err(|e| match e {
        crate::ingest::IngestError::Store(e) => Problem::from(e),
    })?;
    Ok(Json(json!({ "ingestion": report })).into_response())
}

/// The issue of one component of a bundle: done answers its task with the outputs the
/// fulfiller filled in; declined fails it (and the bundle's execution handles that).
async fn component_issue(
    state: &AppState,
    key: &str,
    waiting: Value,
    issue: &Value,
) -> Result<Response, Problem> {
    let waiting: ComponentTicket = serde_json::from_value(waiting)
        .map_err(|e| Problem::from(crate::ports::StoreError::Corrupt(e.to_string())))?;
    let output_fields = state
        .requests
        .catalog
        .current()
        .catalog
        .item(&waiting.item)
        .and_then(|i| i.doc.spec.fulfillment.manual.as_ref())
        .map(|m| m.outputs.clone())
        .unwrap_or_default();
    // A single item's issue is its request's: no component to name.
    let single = waiting.component == SINGLE_COMPONENT;
    let label = if single {
        String::new()
    } else {
        format!("{}: ", waiting.component)
    };
    let (answered, kind, message) = match outcome(issue, &output_fields) {
        Outcome::Open => return Ok(StatusCode::NO_CONTENT.into_response()),
        Outcome::Completed { outputs, missing } => {
            // Recorded first, for the resource records of the request's end.
            crate::fulfillment::components::CompletedComponent {
                fields: waiting.fields.clone(),
                outputs: outputs.clone(),
            }
            .record(
                state.state.as_ref(),
                &waiting.request_id,
                &waiting.component,
            )
            .await?;
            let answered = state
                .workflows
                .send_task_success(&waiting.task_token, &json!({ "outputs": outputs }))
                .await;
            let mut message = format!("{label}JIRA issue {key} is done");
            if !missing.is_empty() {
                message.push_str(&format!(", without values for {}", missing.join(", ")));
            }
            (answered, "component_completed", message)
        }
        Outcome::Rejected { reason } => {
            let cause = format!("{label}{reason}");
            let answered = state
                .workflows
                .send_task_failure(&waiting.task_token, REJECTED_ERROR, &cause)
                .await;
            (answered, "component_rejected", cause)
        }
    };
    match answered {
        Ok(()) => {}
        // Answered before (a repeated webhook), or the execution moved on.
        Err(WorkflowError::TaskTimedOut | WorkflowError::InvalidToken) => {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Err(WorkflowError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "the workflow engine refused a component's answer");
            return Err(Problem::internal());
        }
    }
    // A single item's request records the outcome itself, when its execution ends.
    if !single && let Ok(id) = waiting.request_id.parse() {
        let noted = state.requests.note(id, None, "jira", kind, message).await;
        if let Err(e) = noted {
            tracing::info!(error = %e, "the request's timeline did not take the note");
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_query_secrets_are_checked() {
        let body = br#"{"webhookEvent":"jira:issue_updated"}"#;
        use hmac::{Hmac, Mac};
        use sha2::Sha256;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let hex = crate::signing::hex(&mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature", format!("sha256={hex}").parse().unwrap());
        assert!(authentic(b"s3cret", body, &headers, None));
        assert!(!authentic(b"other", body, &headers, None));
        assert!(!authentic(b"s3cret", b"tampered", &headers, None));
        assert!(authentic(
            b"s3cret",
            body,
            &HeaderMap::new(),
            Some("s3cret")
        ));
        assert!(!authentic(
            b"s3cret",
            body,
            &HeaderMap::new(),
            Some("s3cre")
        ));
        assert!(!authentic(b"s3cret", body, &HeaderMap::new(), None));
    }
}
