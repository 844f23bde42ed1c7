//! The webhooks. `POST /webhooks/jira`: JIRA tells us an issue changed; the worker takes
//! what a person did ([`crate::worker::jira`]). `POST /webhooks/github`: a push to the
//! catalog repository.
//!
//! Authenticated by a shared secret: Jira Cloud signs the body (`X-Hub-Signature:
//! sha256=<hex HMAC>`); Data Center, which cannot sign, sends it as `?secret=`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::problem::{Problem, QueryParams};
use crate::worker::jira::CompletionError;

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
    QueryParams(params): QueryParams<WebhookParams>,
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
    if payload["webhookEvent"].as_str() == Some("comment_created") {
        // A comment made in JIRA goes onto its request's timeline.
        let (Some(key), Some(body)) = (
            payload["issue"]["key"].as_str(),
            payload["comment"]["body"].as_str(),
        ) else {
            return Err(Problem::bad_request(
                "a comment_created payload has issue.key and comment.body",
            ));
        };
        let author = payload["comment"]["author"]["displayName"]
            .as_str()
            .unwrap_or("someone");
        state.worker.jira_comment(key, author, body).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if payload["webhookEvent"].as_str() != Some("jira:issue_updated") {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let Some(key) = payload["issue"]["key"].as_str() else {
        return Err(Problem::bad_request("the payload has no issue.key"));
    };
    match state.worker.issue_updated(key, &payload["issue"]).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(CompletionError::Store(e)) => Err(e.into()),
        Err(CompletionError::Request(e)) => Err(e.into()),
        Err(CompletionError::Refused(e)) => {
            tracing::error!(error = %e, "the workflow engine refused a component's answer");
            Err(Problem::internal())
        }
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
