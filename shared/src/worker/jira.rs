//! The JIRA completion: a person resolved an issue the worker opened (`POST
//! /webhooks/jira` hands it over once its secret checks out). A request's own issue
//! completes the request (with the outputs the fulfiller filled in) or rejects it; a
//! bundle component's issue (or an automated item's fallback) answers the task of the
//! state machine that waits for it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Worker;
use super::steps::About;
use crate::bundle::task::REJECTED_ERROR;
use crate::catalog::snapshot::TargetRef;
use crate::fulfillment::manual::{Outcome, outcome};
use crate::ports::{StoreError, WorkflowError};
use crate::requests::model::{
    EventDetail, EventKind, RequestId, RequestStatus, Ticket, Transition,
};
use crate::requests::service::RequestError;
use crate::resources::completed::CompletedComponent;
use crate::resources::model::seal_outputs;

/// JIRA issues opened for a component, by issue key: where its outcome goes.
pub const COMPONENT_TICKETS: &str = "component-tickets";

/// A component's JIRA issue: the task waiting for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentTicket {
    pub request_id: RequestId,
    pub component: String,
    pub item: String,
    pub task_token: String,
    /// The inputs the component was given (recorded with its outputs once it is done).
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// The issue's address, for the timeline (empty in records made before it was kept).
    #[serde(default)]
    pub url: String,
}

/// Why an issue's outcome was not taken; JIRA's delivery should be retried.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("the workflow engine refused a component's answer: {0}")]
    Refused(WorkflowError),
}

impl Worker {
    /// Issue `key` changed (`issue` is the webhook payload's `issue` object). An issue
    /// still open, or one the orchestrator did not open, changes nothing; a repeated
    /// delivery changes nothing more.
    pub async fn issue_updated(&self, key: &str, issue: &Value) -> Result<(), CompletionError> {
        if let Some(waiting) = self.engine.state.get(COMPONENT_TICKETS, key).await? {
            let waiting: ComponentTicket = serde_json::from_value(waiting.value)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            return self.component_issue(key, waiting, issue).await;
        }
        let service = &self.requests;
        let Some(request) = service.store.find_by_ticket(key).await? else {
            return Ok(());
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
        let ticket = request.ticket.clone().unwrap_or_else(|| Ticket {
            key: key.to_owned(),
            url: String::new(),
        });
        let mut transition = match outcome(issue, &output_fields) {
            Outcome::Open => return Ok(()),
            Outcome::Completed { outputs, missing } => {
                let outputs = seal_outputs(&declared, &outputs);
                Transition::completed("jira", done_message(key, &missing), outputs)
            }
            Outcome::Rejected { reason } => {
                Transition::ended(RequestStatus::Rejected, "jira", reason)
            }
        };
        transition.detail.ticket = Some(ticket);
        // Done twice, or the request was cancelled meanwhile: nothing more to do.
        service.settle(request.id, transition).await?;
        Ok(())
    }

    /// The issue of one component of a bundle (or of an automated item that fell back
    /// to a person): done answers its task with the outputs the fulfiller filled in;
    /// declined fails it (and the execution handles that).
    async fn component_issue(
        &self,
        key: &str,
        waiting: ComponentTicket,
        issue: &Value,
    ) -> Result<(), CompletionError> {
        let output_fields = self
            .requests
            .catalog
            .current()
            .catalog
            .item(&waiting.item)
            .and_then(|i| i.doc.spec.fulfillment.manual.as_ref())
            .map(|m| m.outputs.clone())
            .unwrap_or_default();
        let about = About::component(&waiting.component);
        let ticket = EventDetail::ticket(Ticket {
            key: key.to_owned(),
            url: waiting.url.clone(),
        });
        let (answered, note) = match outcome(issue, &output_fields) {
            Outcome::Open => return Ok(()),
            Outcome::Completed { outputs, missing } => {
                // Recorded first, for the resource records of the request's end.
                CompletedComponent {
                    fields: waiting.fields.clone(),
                    outputs: outputs.clone(),
                }
                .record(
                    self.engine.state.as_ref(),
                    waiting.request_id,
                    &waiting.component,
                )
                .await?;
                let answered = self
                    .workflows
                    .send_task_success(&waiting.task_token, &json!({ "outputs": outputs }))
                    .await;
                let note = about
                    .note(EventKind::ComponentCompleted, done_message(key, &missing))
                    .with(EventDetail {
                        outputs: outputs.keys().cloned().collect(),
                        ..ticket
                    });
                (answered, note)
            }
            Outcome::Rejected { reason } => {
                let cause = format!("{}{reason}", about.label());
                let answered = self
                    .workflows
                    .send_task_failure(&waiting.task_token, REJECTED_ERROR, &cause)
                    .await;
                let note = about
                    .note(EventKind::ComponentRejected, &reason)
                    .with(EventDetail {
                        cause: Some(reason),
                        ..ticket
                    });
                (answered, note)
            }
        };
        match answered {
            Ok(()) => {}
            // Answered before (a repeated webhook), or the execution moved on.
            Err(WorkflowError::TaskTimedOut | WorkflowError::InvalidToken) => return Ok(()),
            Err(WorkflowError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(CompletionError::Refused(e)),
        }
        // A single item's request records the outcome itself, when its execution ends.
        if about.id().is_some() {
            let noted = self
                .requests
                .note(waiting.request_id, None, "jira", vec![note])
                .await;
            if let Err(e) = noted {
                tracing::info!(error = %e, "the request's timeline did not take the note");
            }
        }
        Ok(())
    }
}

/// "JIRA issue KEY is done", naming the outputs the person left empty.
fn done_message(key: &str, missing: &[String]) -> String {
    if missing.is_empty() {
        format!("JIRA issue {key} is done")
    } else {
        format!(
            "JIRA issue {key} is done, without values for {}",
            missing.join(", ")
        )
    }
}
