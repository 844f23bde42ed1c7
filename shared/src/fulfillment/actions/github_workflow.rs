//! `github-workflow`: dispatch a GitHub Actions workflow and follow the run it started.
//!
//! The dispatch asks GitHub to return the run's id (`return_run_details`). Where the
//! server does not (GitHub Enterprise Server before that parameter, which it either
//! rejects or ignores), the run is found by the correlation input: the workflow declares
//! it and shows it in its `run-name`, and the action looks for a dispatched run whose
//! title holds the execution's delivery id. A retry after an unanswered dispatch looks for
//! that run first, so the workflow is not run twice. Success is a completed run whose
//! conclusion is `success`; any other conclusion fails the action.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionKind, Invocation, Step, config, exchange};
use crate::catalog::document::GithubWorkflowAction;
use crate::integrations::github::{GithubApi, Repo, repo};
use crate::secret::SecretString;

/// How often a run is checked when the item does not say.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(15);

pub struct GithubWorkflow {
    pub api: Arc<GithubApi>,
}

struct Target {
    cfg: GithubWorkflowAction,
    repo: Repo,
    token: SecretString,
}

fn parse(with: &Value) -> Result<(GithubWorkflowAction, Repo), ActionError> {
    let cfg: GithubWorkflowAction = config(with)?;
    let repo = repo(&cfg.repository).map_err(ActionError::permanent)?;
    if cfg.workflow.is_empty() || cfg.workflow.contains('/') {
        return Err(ActionError::permanent(format!(
            "`{}` is not a workflow file name or id",
            cfg.workflow
        )));
    }
    Ok((cfg, repo))
}

/// The inputs a dispatch sends: the item's, as strings, and the correlation input.
fn dispatch_inputs(cfg: &GithubWorkflowAction, run: &Invocation) -> Map<String, Value> {
    let mut inputs = input_strings(&cfg.inputs);
    if let Some(name) = &cfg.correlation_input {
        inputs.insert(name.clone(), Value::String(run.delivery_id.clone()));
    }
    inputs
}

impl GithubWorkflow {
    async fn target(&self, with: &Value) -> Result<Target, ActionError> {
        let (cfg, repo) = parse(with)?;
        let token = self
            .api
            .token(cfg.token.as_deref())
            .await
            .map_err(ActionError::permanent)?;
        Ok(Target { cfg, repo, token })
    }

    fn workflow_url(&self, t: &Target, tail: &str) -> url::Url {
        self.url_of(&t.cfg, &t.repo, tail)
    }

    fn url_of(&self, cfg: &GithubWorkflowAction, repo: &Repo, tail: &str) -> url::Url {
        self.api.url([
            "repos",
            &repo.owner,
            &repo.name,
            "actions",
            "workflows",
            &cfg.workflow,
            tail,
        ])
    }

    async fn dispatch(
        &self,
        t: &Target,
        inputs: &Map<String, Value>,
        details: bool,
    ) -> Result<Value, ActionError> {
        let mut body = json!({ "ref": t.cfg.git_ref, "inputs": inputs });
        if details {
            body["return_run_details"] = json!(true);
        }
        let call = self
            .api
            .call(Method::POST, self.workflow_url(t, "dispatches"), &t.token)
            .json(&body);
        let what = format!("dispatching {} in {}", t.cfg.workflow, t.repo);
        exchange(call, &what, &[])
            .await
            .map(|(document, _)| document)
    }

    /// The dispatched run whose title carries `correlation`, if GitHub lists it yet.
    async fn find_run(&self, t: &Target, correlation: &str) -> Result<Option<Value>, ActionError> {
        let mut url = self.workflow_url(t, "runs");
        url.query_pairs_mut()
            .append_pair("event", "workflow_dispatch")
            .append_pair("per_page", "100");
        let call = self.api.call(Method::GET, url, &t.token);
        let what = format!("listing the runs of {} in {}", t.cfg.workflow, t.repo);
        let (document, _) = exchange(call, &what, &[]).await?;
        let runs = document["workflow_runs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(runs.into_iter().find(|run| {
            ["display_title", "name"]
                .iter()
                .any(|k| run[k].as_str().is_some_and(|t| t.contains(correlation)))
        }))
    }

    fn interval(t: &Target) -> Duration {
        t.cfg
            .poll_interval
            .map_or(DEFAULT_POLL_INTERVAL, |d| d.as_duration())
    }

    /// Where a known run stands.
    fn outcome(t: &Target, run: &Value) -> Result<Step, ActionError> {
        let id = run["id"].clone();
        if run["status"] != "completed" {
            return Ok(Step::pending(json!({ "runId": id }), Self::interval(t)));
        }
        let url = run["html_url"].as_str().unwrap_or_default();
        let conclusion = run["conclusion"].as_str().unwrap_or("unknown");
        if conclusion != "success" {
            return Err(ActionError::permanent(format!(
                "workflow run {url} of {} in {} concluded `{conclusion}`",
                t.cfg.workflow, t.repo
            )));
        }
        Ok(Step::Done(json!({
            "runId": id,
            "url": url,
            "conclusion": conclusion,
            "status": run["status"],
            "runNumber": run["run_number"],
            "headSha": run["head_sha"],
            "run": run,
        })))
    }
}

/// Workflow inputs are strings to GitHub: other values are sent as their JSON text.
fn input_strings(inputs: &Map<String, Value>) -> Map<String, Value> {
    inputs
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect()
}

fn mentions_run_details(e: &ActionError) -> bool {
    matches!(e, ActionError::Permanent { message } if message.contains("return_run_details"))
}

#[async_trait]
impl ActionKind for GithubWorkflow {
    fn url_pointers(&self) -> &'static [&'static str] {
        &[]
    }

    fn target(&self, _: &Value) -> Option<String> {
        self.api.host()
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let (cfg, repo) = parse(with)?;
        let then = if cfg.wait_for_completion {
            "follow the run it starts until it completes; only the conclusion `success` succeeds"
        } else {
            "done once GitHub accepts the dispatch"
        };
        Ok(json!({
            "method": "POST",
            "url": self.url_of(&cfg, &repo, "dispatches").as_str(),
            "headers": self.api.shown_headers(),
            "body": {
                "ref": cfg.git_ref,
                "inputs": dispatch_inputs(&cfg, run),
                "return_run_details": true,
            },
            "then": then,
        }))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let t = self.target(with).await?;
        let inputs = dispatch_inputs(&t.cfg, run);
        // An earlier attempt may have dispatched and lost the answer.
        if t.cfg.correlation_input.is_some()
            && run.attempt > 1
            && let Some(found) = self.find_run(&t, &run.delivery_id).await?
        {
            return Self::outcome(&t, &found);
        }
        let answer = match self.dispatch(&t, &inputs, true).await {
            Err(e) if mentions_run_details(&e) => self.dispatch(&t, &inputs, false).await?,
            other => other?,
        };
        let run_id = answer
            .get("workflow_run_id")
            .cloned()
            .filter(Value::is_number);
        if !t.cfg.wait_for_completion {
            return Ok(Step::Done(json!({
                "runId": run_id,
                "url": answer.get("html_url"),
                "conclusion": null,
                "status": "requested",
            })));
        }
        let state = match run_id {
            Some(id) => json!({ "runId": id }),
            None if t.cfg.correlation_input.is_some() => json!({ "find": run.delivery_id }),
            None => {
                return Err(ActionError::permanent(format!(
                    "{} in {} was dispatched, but GitHub did not say which run it started; \
                     set correlationInput so the action can find it",
                    t.cfg.workflow, t.repo
                )));
            }
        };
        Ok(Step::pending(state, Self::interval(&t)))
    }

    async fn poll(&self, _: &Invocation, with: &Value, state: &Value) -> Result<Step, ActionError> {
        let t = self.target(with).await?;
        if let Some(correlation) = state["find"].as_str() {
            return match self.find_run(&t, correlation).await? {
                Some(found) => Self::outcome(&t, &found),
                // GitHub lists a dispatched run a few seconds after the dispatch.
                None => Ok(Step::pending(state.clone(), Self::interval(&t))),
            };
        }
        let id = state["runId"].to_string();
        let url = self
            .api
            .url(["repos", &t.repo.owner, &t.repo.name, "actions", "runs", &id]);
        let call = self.api.call(Method::GET, url, &t.token);
        let what = format!("reading workflow run {id} in {}", t.repo);
        let (run, _) = exchange(call, &what, &[]).await?;
        Self::outcome(&t, &run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_sent_as_strings() {
        let inputs = json!({"a": "x", "n": 3, "b": true, "o": {"k": 1}, "z": null});
        assert_eq!(
            Value::Object(input_strings(inputs.as_object().unwrap())),
            json!({"a": "x", "n": "3", "b": "true", "o": "{\"k\":1}", "z": ""})
        );
    }
}
