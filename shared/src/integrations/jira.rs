//! JIRA's REST API (v2, which Jira Cloud and Data Center both accept): create an issue,
//! find the issue a request already has. Failures are split into transient (retry with
//! backoff) and permanent (tell the requester what JIRA said).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::secret::SecretString;

/// How the orchestrator signs in to JIRA.
#[derive(Debug, Clone)]
pub enum JiraAuth {
    /// Jira Cloud: account email and API token, as HTTP basic authentication.
    Basic { email: String, token: SecretString },
    /// Jira Data Center: a personal access token, as a bearer token.
    Bearer(SecretString),
}

/// What an issue key keeps unencoded in a URL path: letters, digits and `-_.~` (`MSG-1`
/// as it is).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An issue: its key and where a person opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub key: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JiraError {
    /// Worth retrying: JIRA or the network is down, slow, or asked us to back off.
    #[error("JIRA is unavailable: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: JIRA refused the issue; `messages` says why.
    #[error("JIRA refused the request ({status}): {}", messages.join("; "))]
    Permanent { status: u16, messages: Vec<String> },
}

pub struct JiraClient {
    http: Client,
    base: String,
    auth: JiraAuth,
    /// Jira Cloud serves `/search/jql`; Data Center only the older `/search`.
    legacy_search: AtomicBool,
}

impl JiraClient {
    pub fn new(base: &str, auth: JiraAuth) -> Result<Self, super::ClientError> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(JiraClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            legacy_search: AtomicBool::new(false),
        })
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        let request = request.header(header::ACCEPT, "application/json");
        match &self.auth {
            JiraAuth::Basic { email, token } => request.basic_auth(email, Some(token.expose())),
            JiraAuth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }

    /// The browse URL of an issue.
    /// The instance's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn browse_url(&self, key: &str) -> String {
        format!("{}/browse/{key}", self.base)
    }

    /// Creates an issue with the given `fields` (JIRA's `fields` object).
    pub async fn create_issue(&self, fields: Map<String, Value>) -> Result<Issue, JiraError> {
        let request = self
            .authorized(self.http.post(format!("{}/rest/api/2/issue", self.base)))
            .json(&json!({ "fields": fields }));
        let body = read(send(request).await?).await?;
        let key = body
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| JiraError::Transient {
                message: "JIRA answered without an issue key".to_owned(),
                retry_after: None,
            })?
            .to_owned();
        Ok(Issue {
            url: self.browse_url(&key),
            key,
        })
    }

    /// An issue as JIRA returns it (`GET /rest/api/2/issue/{key}`), with its status and
    /// resolution.
    pub async fn issue(&self, key: &str) -> Result<Value, JiraError> {
        let key = percent_encoding::utf8_percent_encode(key, SEGMENT);
        let request = self
            .authorized(
                self.http
                    .get(format!("{}/rest/api/2/issue/{key}", self.base)),
            )
            .query(&[("fields", "status,resolution,comment")]);
        read(send(request).await?).await
    }

    /// Adds a comment to an issue (`POST /rest/api/2/issue/{key}/comment`, a plain-text
    /// `body`).
    pub async fn add_comment(&self, key: &str, body: &str) -> Result<(), JiraError> {
        let key = percent_encoding::utf8_percent_encode(key, SEGMENT);
        let request = self
            .authorized(
                self.http
                    .post(format!("{}/rest/api/2/issue/{key}/comment", self.base)),
            )
            .json(&json!({ "body": body }));
        read(send(request).await?).await.map(|_| ())
    }

    /// The issue carrying `label`, if one exists (how a retry finds the issue an earlier
    /// attempt created before it could record it).
    pub async fn find_by_label(&self, label: &str) -> Result<Option<Issue>, JiraError> {
        let jql = format!("labels = \"{label}\"");
        let query = [
            ("jql", jql.as_str()),
            ("fields", "key"),
            ("maxResults", "1"),
        ];
        for _ in 0..2 {
            let legacy = self.legacy_search.load(Ordering::Relaxed);
            let path = if legacy { "search" } else { "search/jql" };
            let request = self
                .authorized(self.http.get(format!("{}/rest/api/2/{path}", self.base)))
                .query(&query);
            let response = send(request).await?;
            if !legacy && matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::GONE) {
                self.legacy_search.store(true, Ordering::Relaxed);
                continue;
            }
            let body = read(response).await?;
            let key = body
                .get("issues")
                .and_then(Value::as_array)
                .and_then(|issues| issues.first())
                .and_then(|issue| issue.get("key"))
                .and_then(Value::as_str);
            return Ok(key.map(|key| Issue {
                key: key.to_owned(),
                url: self.browse_url(key),
            }));
        }
        Err(JiraError::Transient {
            message: "JIRA offers no issue search endpoint".to_owned(),
            retry_after: None,
        })
    }
}

async fn send(request: RequestBuilder) -> Result<Response, JiraError> {
    request.send().await.map_err(|e| JiraError::Transient {
        // reqwest's message names the URL, never credentials.
        message: if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            e.to_string()
        },
        retry_after: None,
    })
}

/// The JSON body of a successful response, or the error it stands for.
async fn read(response: Response) -> Result<Value, JiraError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Err(JiraError::Transient {
            message: format!("HTTP {status}"),
            retry_after,
        });
    }
    Err(JiraError::Permanent {
        status: status.as_u16(),
        messages: error_messages(&body, status),
    })
}

/// JIRA's own words: `errorMessages` and the per-field `errors`.
fn error_messages(body: &Value, status: StatusCode) -> Vec<String> {
    let mut out: Vec<String> = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        out.extend(errors.iter().map(|(field, message)| {
            format!(
                "{field}: {}",
                message
                    .as_str()
                    .map_or_else(|| message.to_string(), str::to_owned)
            )
        }));
    }
    if out.is_empty() {
        out.push(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "the orchestrator's JIRA credentials were refused".to_owned()
            }
            other => format!("HTTP {other}"),
        });
    }
    out
}
