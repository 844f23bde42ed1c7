//! The sandbox: stand-ins for the systems the orchestrator fulfils through, for trying the
//! product on a machine with no JIRA. Started only by `orchestrator serve --sandbox`, on
//! loopback, and named as a sandbox in every response and log line.
//!
//! The JIRA stand-in speaks the parts of JIRA's REST API the orchestrator uses (create an
//! issue, search by label, read an issue) and adds two calls of its own:
//! `GET /sandbox/jira/issues` lists the tickets, and
//! `POST /sandbox/jira/issues/{key}/resolve` with `{"resolution": "Done" | "Won't Do",
//! "fields": {...}, "comment": "..."}` resolves one and sends JIRA's `jira:issue_updated`
//! webhook to the orchestrator, as a real JIRA would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

#[derive(Clone)]
struct Sandbox {
    issues: Arc<Mutex<Vec<Value>>>,
    base: String,
    /// Where resolutions are reported: the orchestrator's webhook, with its secret.
    webhook: String,
    http: reqwest::Client,
}

/// A running JIRA stand-in.
pub struct SandboxJira {
    pub url: String,
    /// Its two sandbox calls (list and resolve tickets), for the orchestrator to serve on
    /// its own port too, so the portal can resolve tickets without crossing origins.
    pub routes: Router,
}

/// Starts the JIRA stand-in on a loopback port. `webhook` is the full URL of the
/// orchestrator's `/webhooks/jira` (secret included).
pub async fn start_jira(webhook: String) -> Result<SandboxJira, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("sandbox: cannot listen on loopback: {e}"))?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    let state = Sandbox {
        issues: Arc::new(Mutex::new(Vec::new())),
        base: base.clone(),
        webhook,
        http: reqwest::Client::new(),
    };
    let routes = Router::new()
        .route("/sandbox/jira/issues", get(list))
        .route("/sandbox/jira/issues/{key}/resolve", post(resolve))
        .with_state(state.clone());
    let app = Router::new()
        .route("/rest/api/2/issue", post(create))
        .route("/rest/api/2/issue/{key}", get(read))
        .route("/rest/api/2/search/jql", get(search))
        .route("/rest/api/2/search", get(search))
        .with_state(state)
        .merge(routes.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(sandbox = true, error = %e, "[sandbox] JIRA stand-in stopped");
        }
    });
    tracing::info!(sandbox = true, url = %base, "[sandbox] JIRA stand-in listening (not a real JIRA)");
    Ok(SandboxJira { url: base, routes })
}

fn sandbox_error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    (
        status,
        Json(json!({"errorMessages": messages, "errors": errors, "sandbox": true})),
    )
        .into_response()
}

async fn create(State(s): State<Sandbox>, Json(body): Json<Value>) -> Response {
    let fields = &body["fields"];
    let mut errors = Map::new();
    for (field, pointer) in [
        ("project", "/project/key"),
        ("issuetype", "/issuetype/name"),
        ("summary", "/summary"),
    ] {
        if fields
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.insert(field.to_owned(), json!(format!("{field} is required")));
        }
    }
    if !errors.is_empty() {
        return sandbox_error(StatusCode::BAD_REQUEST, &[], Value::Object(errors));
    }
    let project = fields["project"]["key"]
        .as_str()
        .unwrap_or("SBX")
        .to_owned();
    let mut issues = s.issues.lock().unwrap_or_else(|p| p.into_inner());
    let number = issues
        .iter()
        .filter(|i| i["fields"]["project"]["key"] == project.as_str())
        .count()
        + 1;
    let key = format!("{project}-{number}");
    let id = (10_000 + issues.len() + 1).to_string();
    let mut stored = fields.clone();
    stored["status"] = json!({"name": "To Do", "statusCategory": {"key": "new"}});
    stored["resolution"] = Value::Null;
    stored["comment"] = json!({"comments": []});
    issues.push(json!({"id": id, "key": key, "self": format!("{}/rest/api/2/issue/{id}", s.base), "fields": stored}));
    tracing::info!(sandbox = true, %key, "[sandbox] JIRA issue created");
    (StatusCode::CREATED, Json(json!({"id": id, "key": key, "self": format!("{}/rest/api/2/issue/{id}", s.base), "sandbox": true})))
        .into_response()
}

async fn read(State(s): State<Sandbox>, Path(key): Path<String>) -> Response {
    let issues = s.issues.lock().unwrap_or_else(|p| p.into_inner());
    match issues.iter().find(|i| i["key"] == key.as_str()) {
        Some(issue) => Json(issue.clone()).into_response(),
        None => sandbox_error(StatusCode::NOT_FOUND, &["Issue does not exist"], json!({})),
    }
}

#[derive(Deserialize)]
struct SearchParams {
    jql: String,
}

/// Understands the one query the orchestrator sends: `labels = "<label>"`.
async fn search(State(s): State<Sandbox>, Query(q): Query<SearchParams>) -> Response {
    let Some(label) = q
        .jql
        .strip_prefix("labels = \"")
        .and_then(|r| r.strip_suffix('"'))
    else {
        return sandbox_error(
            StatusCode::BAD_REQUEST,
            &["the sandbox understands only labels = \"...\""],
            json!({}),
        );
    };
    let issues = s.issues.lock().unwrap_or_else(|p| p.into_inner());
    let found: Vec<Value> = issues
        .iter()
        .filter(|i| {
            i["fields"]["labels"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == label))
        })
        .map(|i| json!({"id": i["id"], "key": i["key"]}))
        .collect();
    Json(json!({"issues": found, "sandbox": true})).into_response()
}

async fn list(State(s): State<Sandbox>) -> Response {
    let issues = s.issues.lock().unwrap_or_else(|p| p.into_inner());
    let summary: Vec<Value> = issues
        .iter()
        .map(|i| {
            json!({"key": i["key"], "summary": i["fields"]["summary"], "status": i["fields"]["status"]["name"],
                   "resolution": i["fields"]["resolution"]["name"], "labels": i["fields"]["labels"]})
        })
        .collect();
    Json(json!({"sandbox": true, "issues": summary})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolution {
    #[serde(default = "done")]
    resolution: String,
    #[serde(default)]
    fields: Map<String, Value>,
    comment: Option<String>,
}

fn done() -> String {
    "Done".to_owned()
}

async fn resolve(
    State(s): State<Sandbox>,
    Path(key): Path<String>,
    body: Option<Json<Resolution>>,
) -> Response {
    let r = body.map_or_else(
        || Resolution {
            resolution: done(),
            fields: Map::new(),
            comment: None,
        },
        |Json(r)| r,
    );
    let issue = {
        let mut issues = s.issues.lock().unwrap_or_else(|p| p.into_inner());
        let Some(issue) = issues.iter_mut().find(|i| i["key"] == key.as_str()) else {
            return sandbox_error(StatusCode::NOT_FOUND, &["Issue does not exist"], json!({}));
        };
        let fields = &mut issue["fields"];
        fields["status"] = json!({"name": "Closed", "statusCategory": {"key": "done"}});
        fields["resolution"] = json!({"name": r.resolution});
        for (k, v) in &r.fields {
            fields[k.as_str()] = v.clone();
        }
        if let Some(comment) = &r.comment
            && let Some(comments) = fields["comment"]["comments"].as_array_mut()
        {
            comments.push(json!({"body": comment, "author": {"displayName": "Sandbox fulfiller"}}));
        }
        issue.clone()
    };
    let payload = json!({"webhookEvent": "jira:issue_updated", "timestamp": 0, "issue": issue});
    let delivered = s.http.post(&s.webhook).json(&payload).send().await;
    let status = match &delivered {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    tracing::info!(sandbox = true, %key, resolution = %r.resolution, webhook_status = status, "[sandbox] JIRA issue resolved; webhook sent");
    Json(json!({"sandbox": true, "key": key, "resolution": r.resolution, "webhookStatus": status}))
        .into_response()
}
