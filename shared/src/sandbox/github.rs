//! A stand-in for the part of GitHub's REST API the github-workflow and terraform actions
//! call, kept in memory: workflow dispatches whose runs succeed after a moment, branches,
//! file contents, pull requests, labels, and auto-merge (which merges a moment later, as
//! if the checks passed). It answers with the shapes GitHub documents and refuses what
//! GitHub would refuse (a missing `ref`, non-string inputs, an update without the file's
//! `sha`, a branch that exists).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest;

/// How long a sandbox workflow run takes, and how long auto-merge waits for "checks".
const RUN_TIME: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Repos {
    runs: Vec<Run>,
    /// `(repo, branch)` to the commit it points at.
    refs: HashMap<(String, String), String>,
    /// `(repo, branch, path)` to the file's text.
    files: HashMap<(String, String, String), String>,
    pulls: Vec<Pull>,
}

struct Run {
    id: u64,
    repo: String,
    workflow: String,
    title: String,
    created: Instant,
}

struct Pull {
    number: u64,
    repo: String,
    head: String,
    base: String,
    title: String,
    labels: Vec<String>,
    auto_merge: Option<Instant>,
}

#[derive(Clone)]
pub struct Github {
    base: String,
    repos: Arc<Mutex<Repos>>,
}

/// An error answer, in GitHub's shape.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body =
            json!({ "message": self.1, "documentation_url": "https://docs.github.com/rest" });
        (self.0, axum::Json(body)).into_response()
    }
}

type Result<T> = std::result::Result<T, Failure>;

fn error(status: StatusCode, message: &str) -> Failure {
    Failure(status, message.to_owned())
}

fn sha_of(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    crate::signing::hex(&digest[..20])
}

impl Github {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Repos>> {
        self.repos
            .lock()
            .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "sandbox state poisoned"))
    }

    fn run_json(&self, run: &Run) -> Value {
        let elapsed = run.created.elapsed();
        let (status, conclusion) = if elapsed >= RUN_TIME {
            ("completed", json!("success"))
        } else if elapsed >= RUN_TIME / 2 {
            ("in_progress", Value::Null)
        } else {
            ("queued", Value::Null)
        };
        json!({
            "id": run.id,
            "name": run.workflow,
            "display_title": run.title,
            "event": "workflow_dispatch",
            "status": status,
            "conclusion": conclusion,
            "run_number": run.id,
            "head_sha": sha_of(&run.repo),
            "url": format!("{}/repos/{}/actions/runs/{}", self.base, run.repo, run.id),
            "html_url": format!("https://github.sandbox.local/{}/actions/runs/{}", run.repo, run.id),
        })
    }

    fn pull_json(&self, pull: &Pull) -> Value {
        let merged = pull.auto_merge.is_some_and(|at| at.elapsed() >= RUN_TIME);
        json!({
            "number": pull.number,
            "node_id": format!("PR_sandbox{}", pull.number),
            "state": if merged { "closed" } else { "open" },
            "merged": merged,
            "merge_commit_sha": if merged { json!(sha_of(&pull.head)) } else { Value::Null },
            "title": pull.title,
            "head": { "ref": pull.head },
            "base": { "ref": pull.base },
            "labels": pull.labels.iter().map(|l| json!({ "name": l })).collect::<Vec<_>>(),
            "url": format!("{}/repos/{}/pulls/{}", self.base, pull.repo, pull.number),
            "html_url": format!("https://github.sandbox.local/{}/pull/{}", pull.repo, pull.number),
        })
    }
}

pub fn router(base: String) -> Router {
    let state = Github {
        base,
        repos: Arc::default(),
    };
    Router::new()
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
            post(dispatch),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/runs",
            get(list_runs),
        )
        .route("/repos/{owner}/{repo}/actions/runs/{id}", get(read_run))
        .route("/repos/{owner}/{repo}/git/ref/{*reference}", get(read_ref))
        .route("/repos/{owner}/{repo}/git/refs", post(create_ref))
        .route(
            "/repos/{owner}/{repo}/contents/{*path}",
            get(read_file).put(write_file),
        )
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(open_pull),
        )
        .route("/repos/{owner}/{repo}/pulls/{number}", get(read_pull))
        .route(
            "/repos/{owner}/{repo}/issues/{number}/labels",
            post(add_labels),
        )
        .route("/graphql", post(graphql))
        .with_state(state)
}

fn json_body(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "Problems parsing JSON"))
}

async fn dispatch(
    State(gh): State<Github>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    if !body["ref"].is_string() {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"ref\" wasn't supplied.",
        ));
    }
    let inputs = body["inputs"].as_object().cloned().unwrap_or_default();
    if let Some((name, _)) = inputs.iter().find(|(_, v)| !v.is_string()) {
        let message = format!("Invalid request.\n\nFor 'properties/{name}', it is not a string.");
        return Err(error(StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    // As if the workflow's run-name showed every input (the correlation id among them).
    let title = inputs
        .values()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let mut repos = gh.lock()?;
    let id = 9_000 + repos.runs.len() as u64 + 1;
    let run = Run {
        id,
        repo: format!("{owner}/{repo}"),
        workflow,
        title,
        created: Instant::now(),
    };
    let details = json!({
        "workflow_run_id": id,
        "run_url": format!("{}/repos/{owner}/{repo}/actions/runs/{id}", gh.base),
        "html_url": gh.run_json(&run)["html_url"],
    });
    repos.runs.push(run);
    Ok(if body["return_run_details"] == true {
        axum::Json(details).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn list_runs(
    State(gh): State<Github>,
    Path((owner, repo, workflow)): Path<(String, String, String)>,
) -> Result<Response> {
    let repos = gh.lock()?;
    let full = format!("{owner}/{repo}");
    let runs: Vec<Value> = repos
        .runs
        .iter()
        .rev()
        .filter(|r| r.repo == full && r.workflow == workflow)
        .map(|r| gh.run_json(r))
        .collect();
    Ok(axum::Json(json!({ "total_count": runs.len(), "workflow_runs": runs })).into_response())
}

async fn read_run(
    State(gh): State<Github>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Result<Response> {
    let repos = gh.lock()?;
    let full = format!("{owner}/{repo}");
    match repos.runs.iter().find(|r| r.id == id && r.repo == full) {
        Some(run) => Ok(axum::Json(gh.run_json(run)).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "Not Found")),
    }
}

async fn read_ref(
    State(gh): State<Github>,
    Path((owner, repo, reference)): Path<(String, String, String)>,
) -> Result<Response> {
    let Some(branch) = reference.strip_prefix("heads/") else {
        return Err(error(StatusCode::NOT_FOUND, "Not Found"));
    };
    let full = format!("{owner}/{repo}");
    let repos = gh.lock()?;
    let sha = match repos.refs.get(&(full.clone(), branch.to_owned())) {
        Some(sha) => sha.clone(),
        // Every repository has its default branch.
        None if branch == "main" => sha_of(&full),
        None => return Err(error(StatusCode::NOT_FOUND, "Not Found")),
    };
    Ok(axum::Json(json!({
        "ref": format!("refs/{reference}"),
        "object": { "type": "commit", "sha": sha },
    }))
    .into_response())
}

async fn create_ref(
    State(gh): State<Github>,
    Path((owner, repo)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let (Some(reference), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"ref\" and \"sha\" are required.",
        ));
    };
    let Some(branch) = reference.strip_prefix("refs/heads/") else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reference name must start with 'refs/'.",
        ));
    };
    let mut repos = gh.lock()?;
    let key = (format!("{owner}/{repo}"), branch.to_owned());
    if repos.refs.contains_key(&key) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reference already exists",
        ));
    }
    repos.refs.insert(key, sha.to_owned());
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "ref": reference, "object": { "type": "commit", "sha": sha } })),
    )
        .into_response())
}

async fn read_file(
    State(gh): State<Github>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let branch = query
        .get("ref")
        .cloned()
        .unwrap_or_else(|| "main".to_owned());
    let repos = gh.lock()?;
    match repos
        .files
        .get(&(format!("{owner}/{repo}"), branch, path.clone()))
    {
        Some(text) => Ok(axum::Json(json!({
            "type": "file",
            "path": path,
            "sha": sha_of(text),
            "encoding": "base64",
            "content": base64::engine::general_purpose::STANDARD.encode(text),
        }))
        .into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "Not Found")),
    }
}

async fn write_file(
    State(gh): State<Github>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let (Some(content), Some(branch), Some(_message)) = (
        body["content"].as_str(),
        body["branch"].as_str(),
        body["message"].as_str(),
    ) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"message\", \"content\" and \"branch\" are required.",
        ));
    };
    let text = base64::engine::general_purpose::STANDARD
        .decode(content)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "content is not valid Base64",
            )
        })?;
    let full = format!("{owner}/{repo}");
    let mut repos = gh.lock()?;
    if !repos.refs.contains_key(&(full.clone(), branch.to_owned())) {
        return Err(error(StatusCode::NOT_FOUND, "Branch not found"));
    }
    let key = (full, branch.to_owned(), path.clone());
    let status = match repos.files.get(&key) {
        Some(old) if body["sha"].as_str() != Some(sha_of(old).as_str()) => {
            return Err(error(
                StatusCode::CONFLICT,
                &format!("{path} does not match the given sha"),
            ));
        }
        Some(_) => StatusCode::OK,
        None => StatusCode::CREATED,
    };
    let sha = sha_of(&text);
    repos.files.insert(key, text);
    Ok((
        status,
        axum::Json(
            json!({ "content": { "path": path, "sha": sha }, "commit": { "sha": sha_of(&sha) } }),
        ),
    )
        .into_response())
}

async fn list_pulls(
    State(gh): State<Github>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let full = format!("{owner}/{repo}");
    let head = query.get("head").cloned();
    let repos = gh.lock()?;
    let pulls: Vec<Value> = repos
        .pulls
        .iter()
        .filter(|p| p.repo == full)
        .filter(|p| {
            head.as_ref()
                .is_none_or(|h| *h == format!("{owner}:{}", p.head))
        })
        .map(|p| gh.pull_json(p))
        .collect();
    Ok(axum::Json(pulls).into_response())
}

async fn open_pull(
    State(gh): State<Github>,
    Path((owner, repo)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let (Some(title), Some(head), Some(base)) = (
        body["title"].as_str(),
        body["head"].as_str(),
        body["base"].as_str(),
    ) else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"title\", \"head\" and \"base\" are required.",
        ));
    };
    let full = format!("{owner}/{repo}");
    let mut repos = gh.lock()?;
    if !repos.refs.contains_key(&(full.clone(), head.to_owned())) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: head is invalid",
        ));
    }
    if repos.pulls.iter().any(|p| p.repo == full && p.head == head) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "A pull request already exists",
        ));
    }
    let pull = Pull {
        number: repos.pulls.len() as u64 + 1,
        repo: full,
        head: head.to_owned(),
        base: base.to_owned(),
        title: title.to_owned(),
        labels: Vec::new(),
        auto_merge: None,
    };
    let answer = gh.pull_json(&pull);
    repos.pulls.push(pull);
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

async fn read_pull(
    State(gh): State<Github>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Result<Response> {
    let full = format!("{owner}/{repo}");
    let repos = gh.lock()?;
    match repos
        .pulls
        .iter()
        .find(|p| p.repo == full && p.number == number)
    {
        Some(pull) => Ok(axum::Json(gh.pull_json(pull)).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "Not Found")),
    }
}

async fn add_labels(
    State(gh): State<Github>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let Some(labels) = body["labels"].as_array() else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"labels\" wasn't supplied.",
        ));
    };
    let full = format!("{owner}/{repo}");
    let mut repos = gh.lock()?;
    let Some(pull) = repos
        .pulls
        .iter_mut()
        .find(|p| p.repo == full && p.number == number)
    else {
        return Err(error(StatusCode::NOT_FOUND, "Not Found"));
    };
    for label in labels.iter().filter_map(Value::as_str) {
        if !pull.labels.iter().any(|l| l == label) {
            pull.labels.push(label.to_owned());
        }
    }
    let answer: Vec<Value> = pull.labels.iter().map(|l| json!({ "name": l })).collect();
    Ok(axum::Json(answer).into_response())
}

/// Only `enablePullRequestAutoMerge`, the one mutation the terraform action sends.
async fn graphql(State(gh): State<Github>, body: axum::body::Bytes) -> Result<Response> {
    let body = json_body(&body)?;
    let query = body["query"].as_str().unwrap_or_default();
    if !query.contains("enablePullRequestAutoMerge") {
        return Ok(axum::Json(json!({ "errors": [{ "message": "the sandbox only knows enablePullRequestAutoMerge" }] })).into_response());
    }
    let node = body
        .pointer("/variables/pr")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut repos = gh.lock()?;
    let Some(pull) = repos
        .pulls
        .iter_mut()
        .find(|p| format!("PR_sandbox{}", p.number) == node)
    else {
        return Ok(axum::Json(json!({ "errors": [{ "message": format!("Could not resolve to a node with the global id of '{node}'") }] })).into_response());
    };
    pull.auto_merge.get_or_insert_with(Instant::now);
    let number = pull.number;
    Ok(axum::Json(json!({ "data": { "enablePullRequestAutoMerge": { "pullRequest": { "number": number } } } })).into_response())
}
