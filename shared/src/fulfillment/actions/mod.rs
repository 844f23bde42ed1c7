//! The action types an automated fulfillment is made of, each behind one trait. The
//! engine renders an action's `with` (templates on string leaves) and hands the result to
//! its kind; the kind talks to the target and says whether it is done, still going
//! (poll again later), or failed, and whether a failure is worth retrying.

pub mod github_workflow;
pub mod jira;
pub mod rest;
pub mod terraform;
pub mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::catalog::document::Condition;

/// What a plan shows where a value exists only once the action runs.
pub const AT_RUN_TIME: &str = "(assigned when the action starts)";

/// Headers as a plan shows them.
pub fn shown_headers(headers: &HeaderMap) -> Map<String, Value> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = value.to_str().unwrap_or("(not text)");
            (name.as_str().to_owned(), Value::String(text.to_owned()))
        })
        .collect()
}

/// What a kind knows about the execution it runs.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Stable across attempts and redeliveries: `request/component/action`.
    pub idempotency_key: String,
    /// Stable across attempts: the id receivers use to drop duplicates.
    pub delivery_id: String,
    /// When the execution first started (RFC 3339), stable across attempts.
    pub started_at: String,
    pub request_id: crate::requests::model::RequestId,
    /// The resource the run makes, changes or reads, the same for all of its life (a
    /// day-2 change's request is not the one that made it): `<request>` for an item,
    /// `<request>.<component>` for a bundle's component.
    pub resource_id: String,
    /// The team that owns what is made (the item's owner, or the stack's).
    pub owner: String,
    pub requester: String,
    pub item: String,
    pub action_id: String,
    /// Which attempt this is (1 for the first); polls do not count.
    pub attempt: u32,
    /// The longest a single call may take.
    pub call_timeout: Duration,
}

/// Where an action is after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Finished; outputs are read from this document with the action's JSONPaths.
    Done(Value),
    /// Started and still going: call `poll` with `state` after `check_after`. `events`:
    /// what the target reported since the last step, for the timeline.
    Pending {
        state: Value,
        check_after: Duration,
        events: Vec<crate::requests::model::TargetEvent>,
    },
}

impl Step {
    /// Still going, with nothing the target reported: poll with `state` after
    /// `check_after`.
    pub fn pending(state: Value, check_after: Duration) -> Step {
        Step::Pending {
            state,
            check_after,
            events: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// Worth another attempt: connection refused, timeout, 5xx, 429.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way: a 4xx, bad configuration, a failed run.
    #[error("{message}")]
    Permanent { message: String },
    /// No answer came within the attempt's time: the call may or may not have taken
    /// effect. Another attempt, with the same `Idempotency-Key`, tells.
    #[error("{message}")]
    Unknown { message: String },
}

impl ActionError {
    pub fn permanent(message: impl Into<String>) -> Self {
        ActionError::Permanent {
            message: message.into(),
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        ActionError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ActionError::Retryable { .. } | ActionError::Unknown { .. }
        )
    }
}

#[async_trait]
pub trait ActionKind: Send + Sync {
    /// JSON pointers of `with` that hold URLs (rendered with percent-encoding).
    fn url_pointers(&self) -> &'static [&'static str] {
        &["/url"]
    }

    /// Top-level keys of `with` kept as they are, not rendered as templates (a
    /// CloudFormation template's body, whose `{{resolve:...}}` belong to AWS).
    fn verbatim(&self) -> &'static [&'static str] {
        &[]
    }

    /// Differences the target itself reports in a `verify` action's answer, beside the
    /// outputs the verifier compares with the record: a CloudFormation stack's drift,
    /// each drifted resource's properties as the template set them and as found.
    fn reported_drift(&self, document: &Value) -> Vec<ReportedDrift> {
        let _ = document;
        Vec::new()
    }

    /// The host the action talks to, for its circuit breaker.
    fn target(&self, with: &Value) -> Option<String> {
        with.get("url").and_then(Value::as_str).and_then(host_of)
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError>;

    /// What `start` would send for this rendered configuration, for plans: no call is
    /// made and no secret is read.
    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let _ = run;
        Ok(with.clone())
    }

    async fn poll(
        &self,
        run: &Invocation,
        with: &Value,
        state: &Value,
    ) -> Result<Step, ActionError> {
        let _ = (run, with, state);
        Err(ActionError::permanent("this action does not poll"))
    }

    /// What the action would change in the target, asked of the target without changing
    /// anything (a CloudFormation update's change set, made, read and removed), for the
    /// plan of a day-2 change, which reads the real thing anyway to verify it; never for
    /// a new request's dry run. `None` when the kind cannot tell.
    async fn preview(&self, run: &Invocation, with: &Value) -> Result<Option<Value>, ActionError> {
        let _ = (run, with);
        Ok(None)
    }
}

/// A difference a target reports between what it was given and what it has.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedDrift {
    /// Where: `Bucket/VersioningConfiguration/Status` (a stack's resource and property).
    pub attribute: String,
    /// What it should be (`null` when the target added it).
    pub expected: Value,
    /// What it is (`null` when it is gone).
    pub actual: Value,
}

/// What reaching AWS adds to the actions: the kinds that provision through the AWS SDK
/// (the `aws` crate's) and the signer of `rest` calls with `auth: awsSigv4`. Empty where
/// the deployment has no AWS to reach (local mode without `aws.endpointUrl`).
#[derive(Default, Clone)]
pub struct AwsActions {
    pub kinds: Vec<(
        crate::catalog::document::ActionType,
        std::sync::Arc<dyn ActionKind>,
    )>,
    pub signer: Option<std::sync::Arc<dyn AwsSigner>>,
}

/// Signs HTTP calls with AWS Signature Version 4 and the deployment's AWS credentials
/// (the `aws` crate's signer, on the AWS SDK's own signing crate).
#[async_trait]
pub trait AwsSigner: Send + Sync {
    /// Adds the signature's headers to `request` (its body must be bytes). `region`:
    /// the deployment's when `None`.
    async fn sign(
        &self,
        request: &mut reqwest::Request,
        service: &str,
        region: Option<&str>,
    ) -> Result<(), ActionError>;
}

/// The host (and port) of a URL.
pub fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Reads a typed configuration from a rendered `with`.
pub fn config<T: serde::de::DeserializeOwned>(with: &Value) -> Result<T, ActionError> {
    serde_json::from_value(with.clone())
        .map_err(|e| ActionError::permanent(format!("the rendered configuration is invalid: {e}")))
}

/// Classifies an HTTP response status: `None` when it is a success (per `success`, or
/// any 2xx when `success` is empty).
pub fn status_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    success: &[u16],
    what: &str,
    body: &str,
) -> Option<ActionError> {
    let ok = if success.is_empty() {
        status.is_success()
    } else {
        success.contains(&status.as_u16())
    };
    if ok {
        return None;
    }
    let excerpt: String = body.chars().take(300).collect();
    let message = if excerpt.trim().is_empty() {
        format!("{what} answered {status}")
    } else {
        format!("{what} answered {status}: {}", excerpt.trim())
    };
    let code = status.as_u16();
    if code == 429 || code == 408 || status.is_server_error() {
        Some(ActionError::Retryable {
            message,
            retry_after: retry_after(headers),
        })
    } else {
        Some(ActionError::Permanent { message })
    }
}

/// A `Retry-After` header in seconds (the HTTP-date form is read as "soon").
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    match value.trim().parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => Some(Duration::from_secs(5)),
    }
}

/// Classifies a failure to get a response at all. Only a request that could not be
/// built is permanent; a connection refused or reset is worth another try; a call that
/// timed out has an unknown outcome (it may have taken effect).
pub fn transport_error(what: &str, e: &reqwest::Error) -> ActionError {
    if e.is_builder() {
        return ActionError::permanent(format!("{what} could not be sent: {}", root_cause(e)));
    }
    if e.is_timeout() {
        return ActionError::Unknown {
            message: format!("{what} got no answer in time"),
        };
    }
    let kind = if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    ActionError::retryable(format!("{what} {kind}"))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e;
    while let Some(next) = source.source() {
        source = next;
    }
    // reqwest errors name the URL; strip it (it may carry a secret in its query).
    let text = source.to_string();
    match text.find(" for url (") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// A header from a rendered name and value; a value with a line break or another control
/// character (which would split the request) is refused, naming the header.
pub fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ActionError> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ActionError::permanent(format!("`{name}` is not a valid header name")))?;
    let value = HeaderValue::from_str(value).map_err(|_| {
        ActionError::permanent(format!(
            "header `{name}`: the rendered value has characters a header cannot hold"
        ))
    })?;
    Ok((header, value))
}

/// Sends `call` and reads its answer: the body as a document and the headers, or the
/// classified error. `what` names the call in messages: a method and a URL without its
/// query (which may hold a key), never the query itself.
pub async fn exchange(
    call: reqwest::RequestBuilder,
    what: &str,
    success: &[u16],
) -> Result<(Value, HeaderMap), ActionError> {
    let response = call.send().await.map_err(|e| transport_error(what, &e))?;
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response
        .text()
        .await
        .map_err(|e| transport_error(what, &e))?;
    match status_error(status, &headers, success, what, &text) {
        Some(error) => Err(error),
        None => Ok((body_document(&text), headers)),
    }
}

/// A response body as JSON when it is JSON, else as a string (or null when empty).
pub fn body_document(text: &str) -> Value {
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    }
}

pub use crate::catalog::condition::{BadPath, select};

impl From<BadPath> for ActionError {
    fn from(e: BadPath) -> Self {
        ActionError::permanent(e.to_string())
    }
}

/// Reads an action's outputs from its result document.
pub fn extract_outputs(
    document: &Value,
    outputs: &std::collections::BTreeMap<String, String>,
) -> Result<Map<String, Value>, ActionError> {
    let mut out = Map::new();
    for (name, path) in outputs {
        match select(document, path)? {
            Some(value) => {
                out.insert(name.clone(), value);
            }
            None => {
                return Err(ActionError::permanent(format!(
                    "output `{name}`: `{path}` matched nothing in the result"
                )));
            }
        }
    }
    Ok(out)
}

/// Whether a condition holds on a document.
pub fn holds(condition: &Condition, document: &Value) -> Result<bool, ActionError> {
    Ok(condition.holds(document)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_come_from_jsonpath_and_a_miss_is_an_error() {
        let doc = json!({"id": "db-1", "endpoint": {"address": "h", "port": 5432}, "subnets": [{"id": "a"}, {"id": "b"}]});
        let outputs = [
            ("id".to_owned(), "$.id".to_owned()),
            ("port".to_owned(), "$.endpoint.port".to_owned()),
            ("subnets".to_owned(), "$.subnets[*].id".to_owned()),
        ]
        .into_iter()
        .collect();
        let got = extract_outputs(&doc, &outputs).unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"id": "db-1", "port": 5432, "subnets": ["a", "b"]})
        );
        let missing = [("arn".to_owned(), "$.arn".to_owned())]
            .into_iter()
            .collect();
        let err = extract_outputs(&doc, &missing).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("`$.arn` matched nothing"), "{err}");
    }

    #[test]
    fn conditions_compare_values() {
        let doc = json!({"status": "available", "n": 3});
        let c = |path: &str, equals: Option<Value>, one_of: Option<Vec<Value>>| Condition {
            path: path.to_owned(),
            equals,
            one_of,
            ..Default::default()
        };
        assert!(holds(&c("$.status", Some(json!("available")), None), &doc).unwrap());
        assert!(!holds(&c("$.status", Some(json!("failed")), None), &doc).unwrap());
        assert!(holds(&c("$.n", None, Some(vec![json!(1), json!(3)])), &doc).unwrap());
        assert!(!holds(&c("$.missing", Some(json!(null)), None), &doc).unwrap());
    }

    #[test]
    fn statuses_are_classified() {
        use reqwest::StatusCode;
        let mut headers = reqwest::header::HeaderMap::new();
        assert!(status_error(StatusCode::CREATED, &headers, &[], "x", "").is_none());
        assert!(status_error(StatusCode::NOT_FOUND, &headers, &[204, 404], "x", "").is_none());
        assert!(
            !status_error(StatusCode::BAD_REQUEST, &headers, &[], "x", "")
                .unwrap()
                .is_retryable()
        );
        assert!(
            status_error(StatusCode::BAD_GATEWAY, &headers, &[], "x", "")
                .unwrap()
                .is_retryable()
        );
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            status_error(StatusCode::TOO_MANY_REQUESTS, &headers, &[], "x", ""),
            Some(ActionError::Retryable {
                message: "x answered 429 Too Many Requests".to_owned(),
                retry_after: Some(Duration::from_secs(7))
            })
        );
    }

    #[tokio::test]
    async fn a_connection_dropped_mid_request_is_retryable_and_a_bad_url_is_not() {
        // A server that accepts and hangs up before answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let http = reqwest::Client::new();
        let call = http.post(format!("http://{addr}/x?key=s3cret")).body("{}");
        let err = exchange(call, "POST /x", &[]).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let call = http.get("http://exa mple.com/");
        let err = exchange(call, "GET bad", &[]).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
    }
}
