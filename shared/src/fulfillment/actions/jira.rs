//! `jira`: open a JIRA issue as a step of an automated fulfillment (to inform a team, or
//! to have a person do one part), found again by its label on a retry.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{ActionError, ActionKind, Invocation, Step, config};
use crate::catalog::document::JiraAction;
use crate::fulfillment::manual::{is_negative, refusal, ticket_fields};
use crate::integrations::jira::{JiraClient, JiraError};

pub struct Jira {
    pub client: Option<Arc<JiraClient>>,
}

/// How often an issue is checked while the action waits for its resolution.
const RESOLUTION_POLL: Duration = Duration::from_secs(60);

fn action_error(e: JiraError) -> ActionError {
    match e {
        JiraError::Transient {
            message,
            retry_after,
        } => ActionError::Retryable {
            message: format!("JIRA is unavailable: {message}"),
            retry_after,
        },
        JiraError::Permanent { messages, .. } => {
            ActionError::permanent(format!("JIRA refused the issue: {}", messages.join("; ")))
        }
    }
}

/// The resolutions that fail the action: its own, else the ones that reject a manual
/// request.
fn negative(action: &JiraAction) -> Vec<String> {
    action.negative_resolutions.clone().unwrap_or_else(|| {
        crate::fulfillment::manual::REJECTING
            .iter()
            .map(|r| (*r).to_owned())
            .collect()
    })
}

/// One label per execution: a retry after a lost answer finds the issue it opened.
fn label(run: &Invocation) -> String {
    format!("orchestrator-{}", run.idempotency_key.replace('/', "-"))
}

impl Jira {
    fn client(&self) -> Result<&JiraClient, ActionError> {
        self.client.as_deref().ok_or_else(|| {
            ActionError::permanent("a jira action needs JIRA, and none is configured (jira.url)")
        })
    }
}

#[async_trait]
impl ActionKind for Jira {
    fn url_pointers(&self) -> &'static [&'static str] {
        &[]
    }

    fn target(&self, _: &Value) -> Option<String> {
        self.client
            .as_ref()
            .and_then(|c| super::host_of(&c.browse_url("")))
    }

    fn describe(&self, run: &Invocation, with: &Value) -> Result<Value, ActionError> {
        let action: JiraAction = config(with)?;
        Ok(json!({
            "method": "POST",
            "url": format!(
                "{}/rest/api/2/issue",
                self.client.as_ref().map_or("(jira.url)", |c| c.base())
            ),
            "body": { "fields": ticket_fields(&action.ticket, &label(run)) },
            "waitForResolution": action.wait_for_resolution,
            "negativeResolutions": negative(&action),
        }))
    }

    async fn start(&self, run: &Invocation, with: &Value) -> Result<Step, ActionError> {
        let action: JiraAction = config(with)?;
        let client = self.client()?;
        let label = label(run);
        let issue = match client.find_by_label(&label).await.map_err(action_error)? {
            Some(issue) => issue,
            None => client
                .create_issue(ticket_fields(&action.ticket, &label))
                .await
                .map_err(action_error)?,
        };
        let document = json!({ "key": issue.key, "url": issue.url });
        if action.wait_for_resolution {
            return Ok(Step::pending(document, RESOLUTION_POLL));
        }
        Ok(Step::Done(document))
    }

    async fn poll(&self, _: &Invocation, with: &Value, state: &Value) -> Result<Step, ActionError> {
        let action: JiraAction = config(with)?;
        let client = self.client()?;
        let key = state["key"].as_str().unwrap_or_default();
        let issue = client.issue(key).await.map_err(action_error)?;
        let resolution = issue
            .pointer("/fields/resolution/name")
            .and_then(Value::as_str);
        match resolution {
            None => Ok(Step::pending(state.clone(), RESOLUTION_POLL)),
            // A person said no: the step failed, whatever the issue's status category.
            Some(name) if is_negative(name, &negative(&action)) => {
                Err(ActionError::permanent(format!(
                    "JIRA issue {key} was resolved as {name}: {}",
                    refusal(&issue["fields"], name)
                )))
            }
            Some(name) => {
                let mut document = state.clone();
                document["resolution"] = json!(name);
                document["fields"] = issue["fields"].clone();
                Ok(Step::Done(document))
            }
        }
    }
}
