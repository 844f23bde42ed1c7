//! The action queue's protocol: every message the worker receives (the tasks a generated
//! state machine sends, [`TaskMessage`], and the requests' service's [`Handoff`]), the
//! error names a task is answered with, and one parser that reads a body once into a
//! [`WorkMessage`] the worker dispatches with one `match`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::requests::model::{Handoff, RequestId};

/// The error the worker reports for a failure worth retrying (storage unavailable).
pub const TRANSIENT_ERROR: &str = "Orchestrator.Transient";

/// The error the worker reports when a component's fulfillment failed for good.
pub const FAILED_ERROR: &str = "Orchestrator.ComponentFailed";

/// The error a task reports when its request was cancelled (or otherwise ended).
pub const ENDED_ERROR: &str = "Orchestrator.RequestEnded";

/// The error a bundle's component reports when the worker did not start it because a
/// sibling had failed: nothing was made, and the sibling's error is the one reported.
pub const CANCELLED_ERROR: &str = "Orchestrator.Cancelled";

/// The error a component reports when the person fulfilling it declined.
pub const REJECTED_ERROR: &str = "Orchestrator.Rejected";

/// The component id of a single item's state machine.
pub const SINGLE_COMPONENT: &str = "main";

/// What a task asks the worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Wait for an approval stage (`approval`, 1-based, of the policies that gate the
    /// request's operation, in document order); answered when it is decided.
    Approve,
    /// Fulfil a component.
    Provision,
    /// Run a completed component's rollback actions.
    Undo,
    /// Render the outputs and mark the request completed.
    Complete,
    /// Mark the request failed, with `error`.
    Fail,
}

/// The message a generated task sends to the action queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessage {
    pub task: TaskKind,
    pub task_token: String,
    pub request_id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Outputs of the completed components, `{"<id>": {"outputs": {...}}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Map<String, Value>>,
    /// The failure being handled: `{"Error": ..., "Cause": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The task has `HeartbeatSeconds`: long work heartbeats it. Step Functions refuses a
    /// heartbeat to a task without one, so the worker sends none there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub heartbeat: bool,
    /// An approval task's stage: its place among the stages of the request's policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<u32>,
    /// An approval task of a stage that expired and escalated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escalated: bool,
}

impl TaskMessage {
    /// The component the task is for: a bundle's component, or [`SINGLE_COMPONENT`] for
    /// an item's machine and for the bookkeeping tasks.
    pub fn component_id(&self) -> &str {
        self.component.as_deref().unwrap_or(SINGLE_COMPONENT)
    }

    /// The error being handled: its name (`States.TaskFailed` when there is none) and its
    /// cause, when it has one that is not blank.
    pub fn failure(&self) -> (&str, Option<&str>) {
        let error = self.error.as_ref();
        let name = error
            .and_then(|e| e.get("Error"))
            .and_then(Value::as_str)
            .unwrap_or("States.TaskFailed");
        let cause = error
            .and_then(|e| e.get("Cause"))
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty());
        (name, cause)
    }
}

/// Every message the worker receives on the action queue.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkMessage {
    /// Carry a request forward: the hand-off at submission, the sweep's re-send, the
    /// continuation of a wait.
    Fulfill(Handoff),
    /// A task of a request's state machine, answered with its token (boxed: a task is
    /// far larger than a hand-off).
    Task(Box<TaskMessage>),
    /// Something to tell the subscriptions that want it.
    Notice(Box<NoticeMessage>),
    /// Resources for the worker to verify: one batch of a reconciliation pass.
    Verify(VerifyBatch),
}

/// One batch of a reconciliation pass: the pass enqueues the ids it lists, a batch per
/// message, and the worker verifies them (the body is `{"verify": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyBatch {
    /// The pass it belongs to.
    pub pass: String,
    /// Its place in the pass, from 0: what it found is recorded once under it, however
    /// often the message is delivered.
    pub batch: u32,
    pub resources: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct VerifyEnvelope {
    verify: VerifyBatch,
}

/// A notice on its way to the subscriptions: first to be fanned out (`to` unset), then
/// one message per subscription, so each retries on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeMessage {
    pub notice: crate::ports::Notice,
    /// Minted when it was raised; every delivery of it carries the id, so a receiver
    /// drops duplicates.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<SubscriptionRef>,
    /// Failed deliveries so far (to `to`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A subscription: one of a team's in `teams.yaml` or, without a team, one of the
/// configuration's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub name: String,
}

/// A message that is not of the protocol.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, or no request or task to be read from it: nothing can be answered.
    #[error("the message is not of the action queue's protocol: {0}")]
    Unreadable(String),
    /// A task whose fields do not fit: its token is answered with a failure, so its
    /// execution does not wait for a timeout.
    #[error("the task's message does not fit the protocol: {why}")]
    BadTask { task_token: String, why: String },
}

/// The fields any message may have, read in one pass.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    notice: Option<Value>,
    #[serde(default)]
    verify: Option<Value>,
    #[serde(default)]
    task: Option<Value>,
    #[serde(default)]
    task_token: Option<String>,
    #[serde(default)]
    request_id: Option<Value>,
}

impl WorkMessage {
    /// Reads a queue message's body.
    pub fn parse(body: &str) -> Result<WorkMessage, ProtocolError> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| ProtocolError::Unreadable(e.to_string()))?;
        let envelope =
            Envelope::deserialize(&value).map_err(|e| ProtocolError::Unreadable(e.to_string()))?;
        if envelope.notice.is_some() {
            return serde_json::from_value::<NoticeMessage>(value)
                .map(|n| WorkMessage::Notice(Box::new(n)))
                .map_err(|e| ProtocolError::Unreadable(e.to_string()));
        }
        if envelope.verify.is_some() {
            return serde_json::from_value::<VerifyEnvelope>(value)
                .map(|v| WorkMessage::Verify(v.verify))
                .map_err(|e| ProtocolError::Unreadable(e.to_string()));
        }
        match (envelope.task, envelope.task_token) {
            (None, _) => {
                let request_id = envelope
                    .request_id
                    .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| {
                        ProtocolError::Unreadable("`requestId` is not a request id".to_owned())
                    })?;
                Ok(WorkMessage::Fulfill(Handoff { request_id }))
            }
            (Some(_), None) => Err(ProtocolError::Unreadable(
                "a task without a `taskToken`".to_owned(),
            )),
            (Some(_), Some(task_token)) => serde_json::from_value::<TaskMessage>(value)
                .map(|task| WorkMessage::Task(Box::new(task)))
                .map_err(|e| ProtocolError::BadTask {
                    task_token,
                    why: e.to_string(),
                }),
        }
    }

    /// The body of the message (what [`parse`](Self::parse) reads back).
    pub fn body(&self) -> String {
        match self {
            WorkMessage::Fulfill(handoff) => handoff.body(),
            WorkMessage::Task(task) => serde_json::to_string(task).unwrap_or_default(),
            WorkMessage::Notice(notice) => serde_json::to_string(notice).unwrap_or_default(),
            WorkMessage::Verify(batch) => serde_json::to_string(&VerifyEnvelope {
                verify: batch.clone(),
            })
            .unwrap_or_default(),
        }
    }

    /// The request whose record the message updates (a notice updates none).
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            WorkMessage::Fulfill(handoff) => Some(handoff.request_id),
            WorkMessage::Task(task) => Some(task.request_id),
            WorkMessage::Notice(_) | WorkMessage::Verify(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> RequestId {
        RequestId::new_at(time::OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_hand_off_and_a_task_read_back_as_they_were_written() {
        let fulfill = WorkMessage::Fulfill(Handoff { request_id: id() });
        assert_eq!(WorkMessage::parse(&fulfill.body()), Ok(fulfill));
        let task = WorkMessage::Task(Box::new(TaskMessage {
            task: TaskKind::Undo,
            task_token: "t-1".to_owned(),
            request_id: id(),
            component: Some("db".to_owned()),
            item: Some("rds".to_owned()),
            components: None,
            error: Some(serde_json::json!({"Error": "E", "Cause": "c"})),
            heartbeat: true,
            approval: None,
            escalated: false,
        }));
        assert_eq!(WorkMessage::parse(&task.body()), Ok(task));
        let verify = WorkMessage::Verify(VerifyBatch {
            pass: "p-1".to_owned(),
            batch: 3,
            resources: vec!["r-1".to_owned(), "r-2".to_owned()],
        });
        assert_eq!(WorkMessage::parse(&verify.body()), Ok(verify));
        assert!(matches!(
            WorkMessage::parse(r#"{"verify": {"pass": "p"}}"#),
            Err(ProtocolError::Unreadable(_))
        ));
    }

    #[test]
    fn a_task_that_does_not_fit_keeps_its_token_and_garbage_is_unreadable() {
        let bad = r#"{"task": "provision", "taskToken": "t-9", "requestId": "not-an-id"}"#;
        match WorkMessage::parse(bad) {
            Err(ProtocolError::BadTask { task_token, .. }) => assert_eq!(task_token, "t-9"),
            other => panic!("{other:?}"),
        }
        let unknown = r#"{"task": "dance", "taskToken": "t-8", "requestId": "x"}"#;
        assert!(matches!(
            WorkMessage::parse(unknown),
            Err(ProtocolError::BadTask { .. })
        ));
        for garbage in [
            "not json",
            "[]",
            r#"{"requestId": 7}"#,
            r#"{"task": "undo"}"#,
        ] {
            assert!(
                matches!(
                    WorkMessage::parse(garbage),
                    Err(ProtocolError::Unreadable(_))
                ),
                "{garbage}"
            );
        }
    }
}
