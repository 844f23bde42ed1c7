//! `webhook`: a signed JSON event to a receiver the platform team runs.
//!
//! The body is an envelope (event type, delivery id, timestamp, request, item, action and
//! the item's payload), signed with HMAC-SHA256 over the raw bytes in
//! `X-Orchestrator-Signature-256: sha256=<hex>`, as GitHub signs its webhooks. Every
//! attempt of one execution sends the same bytes with the same delivery id, so a receiver
//! drops duplicates by `X-Orchestrator-Delivery`. docs/catalog-format.md shows a receiver.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::rest::{parse_url, url_for_humans};
use super::{ActionError, ActionKind, Invocation, Step, config, exchange, header};
use crate::catalog::document::WebhookAction;

pub const SIGNATURE_HEADER: &str = "X-Orchestrator-Signature-256";
pub const DELIVERY_HEADER: &str = "X-Orchestrator-Delivery";
pub const EVENT_HEADER: &str = "X-Orchestrator-Event";
pub const EVENT_TYPE: &str = "fulfillment.action";

pub struct Webhook {
    pub http: reqwest::Client,
}

/// The exact bytes a webhook execution sends.
pub fn envelope(run: &Invocation, payload: &Value) -> Vec<u8> {
    let body = json!({
        "type": EVENT_TYPE,
        "deliveryId": run.delivery_id,
        "timestamp": run.started_at,
        "request": { "id": run.request_id, "requester": run.requester },
        "item": run.item,
        "action": run.action_id,
        "payload": payload,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[async_trait]
impl ActionKind for Webhook {
    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let hook: WebhookAction = config(with)?;
        let url = parse_url(&hook.url)?;
        let body = envelope(run, hook.body.as_ref().unwrap_or(&Value::Null));
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), json!("application/json"));
        headers.insert(
            SIGNATURE_HEADER.to_lowercase(),
            json!("sha256=HMAC-SHA256(signingSecret, body)"),
        );
        headers.insert(DELIVERY_HEADER.to_lowercase(), json!(run.delivery_id));
        headers.insert(EVENT_HEADER.to_lowercase(), json!(EVENT_TYPE));
        headers.insert("idempotency-key".into(), json!(run.idempotency_key));
        for (name, value) in &hook.headers {
            header(name, value)?;
            headers.insert(name.to_lowercase(), json!(value));
        }
        Ok(json!({
            "method": "POST",
            "url": url.as_str(),
            "headers": headers,
            "body": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        }))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let hook: WebhookAction = config(with)?;
        if hook.signing_secret.is_empty() {
            return Err(ActionError::permanent("signingSecret rendered empty"));
        }
        let url = parse_url(&hook.url)?;
        let body = envelope(run, hook.body.as_ref().unwrap_or(&Value::Null));
        let signature = crate::signing::sign(hook.signing_secret.as_bytes(), &body);
        let mut call = self
            .http
            .post(url.clone())
            .timeout(run.call_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, &run.delivery_id)
            .header(EVENT_HEADER, EVENT_TYPE)
            .header("Idempotency-Key", &run.idempotency_key);
        for (name, value) in &hook.headers {
            let (name, value) = header(name, value)?;
            call = call.header(name, value);
        }
        let what = format!("the webhook at {}", url_for_humans(&url));
        let (document, _) = exchange(call.body(body), &what, &[]).await?;
        Ok(Step::Done(document))
    }
}
