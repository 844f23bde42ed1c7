//! The behaviour every `Workflows` adapter must have (Step Functions' semantics for
//! state machines, executions and callback tasks). The adapter must substitute
//! `${QueueUrl}` with the URL of `queue`.

use std::time::Duration;

use serde_json::{Value, json};

use super::TimeControl;
use crate::ports::{Queue, WorkflowError, Workflows};

/// One callback task on the queue; a failure is caught only for `Custom.Caught`.
fn machine(heartbeat: Option<u64>) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": "${QueueUrl}",
            "MessageBody": {"token.$": "$$.Task.Token", "input.$": "$"}
        },
        "ResultPath": "$.result",
        "Catch": [{"ErrorEquals": ["Custom.Caught"], "ResultPath": "$.error", "Next": "Caught"}],
        "End": true
    });
    if let Some(seconds) = heartbeat {
        task["HeartbeatSeconds"] = json!(seconds);
        task["TimeoutSeconds"] = json!(seconds * 100);
    }
    json!({
        "StartAt": "Work",
        "States": {
            "Work": task,
            "Caught": {"Type": "Pass", "Result": "recovered", "ResultPath": "$.note", "End": true}
        }
    })
}

/// The token of the next message on `queue` (which the suite deletes).
async fn next_token(queue: &dyn Queue) -> String {
    for _ in 0..100 {
        let got = queue.receive(1, Duration::from_secs(30)).await.unwrap();
        if let Some(m) = got.into_iter().next() {
            queue.delete(&m.receipt).await.unwrap();
            let body: Value = serde_json::from_str(&m.body).unwrap();
            return body["token"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the task sent no message");
}

/// Waits for the execution to leave RUNNING (adapters backed by a service finish
/// asynchronously) and returns its status.
async fn settled(workflows: &dyn Workflows, arn: &str) -> crate::ports::ExecutionSummary {
    for _ in 0..100 {
        let summary = workflows.describe(arn).await.unwrap().unwrap();
        if summary.status != "RUNNING" {
            return summary;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the execution {arn} is still running");
}

/// Where the engine under test is known to depart from Step Functions' documented
/// behaviour, and the suite leaves that step out (or accepts the other answer).
#[derive(Debug, Default)]
pub struct Departures {
    /// A heartbeat for a task without `HeartbeatSeconds` is refused as an invalid token
    /// (moto; AWS accepts it).
    pub heartbeat_needs_heartbeat_seconds: bool,
    /// The token of a task whose execution has ended is an invalid token (moto; AWS says
    /// the task timed out).
    pub ended_token_is_invalid: bool,
    /// SendTaskFailure's `cause` is dropped: the failure reaches the execution without it
    /// (moto).
    pub failure_cause_dropped: bool,
    /// StopExecution does not end an execution waiting for a callback (moto): the suite
    /// only checks that the call is accepted.
    pub stop_leaves_callback_waiting: bool,
    /// A missed heartbeat fails the task with `States.Timeout` rather than
    /// `States.HeartbeatTimeout` (moto).
    pub heartbeat_timeout_is_states_timeout: bool,
    /// RedriveExecution is not implemented (moto): the suite leaves redriving out.
    pub no_redrive: bool,
}

pub async fn run(workflows: &dyn Workflows, queue: &dyn Queue, time: &dyn TimeControl) {
    run_with(workflows, queue, time, &Departures::default()).await;
}

/// A token's answer after its task ended: `TaskTimedOut` (or, where the engine departs,
/// `InvalidToken`).
fn is_over(result: Result<(), WorkflowError>, departures: &Departures) -> bool {
    match result {
        Err(WorkflowError::TaskTimedOut) => true,
        Err(WorkflowError::InvalidToken) => departures.ended_token_is_invalid,
        _ => false,
    }
}

pub async fn run_with(
    workflows: &dyn Workflows,
    queue: &dyn Queue,
    time: &dyn TimeControl,
    departures: &Departures,
) {
    // A definition that does not validate is refused, and says where.
    let bad = json!({"StartAt": "Nowhere", "States": {"Here": {"Type": "Succeed"}}});
    match workflows.deploy("suite-bad", &bad).await {
        Err(WorkflowError::InvalidDefinition { problems, .. }) => {
            assert!(problems.contains("Nowhere"), "{problems}")
        }
        other => panic!("expected InvalidDefinition, got {other:?}"),
    }
    let arn = workflows.deploy("suite", &machine(None)).await.unwrap();
    assert!(
        arn.contains(":stateMachine:") && arn.ends_with("suite"),
        "{arn}"
    );
    assert!(matches!(
        workflows.start("suite-missing", "x", &json!({})).await,
        Err(WorkflowError::NoSuchMachine(_))
    ));

    // A callback task: the message carries the token; success ends the execution.
    let input = json!({"requestId": "r1"});
    let first = workflows.start("suite", "r1", &input).await.unwrap();
    assert_eq!(first, workflows.execution_arn("suite", "r1"));
    assert_eq!(
        workflows.start("suite", "r1", &input).await.unwrap(),
        first,
        "starting the same name with the same input is idempotent"
    );
    assert!(matches!(
        workflows
            .start("suite", "r1", &json!({"requestId": "other"}))
            .await,
        Err(WorkflowError::ExecutionAlreadyExists(_))
    ));
    let token = next_token(queue).await;
    let running = workflows.describe(&first).await.unwrap().unwrap();
    assert_eq!(running.status, "RUNNING");
    assert_eq!(running.name, "r1");
    if !departures.heartbeat_needs_heartbeat_seconds {
        workflows.send_task_heartbeat(&token).await.unwrap();
    }
    workflows
        .send_task_success(&token, &json!({"outputs": {"x": 1}}))
        .await
        .unwrap();
    let done = settled(workflows, &first).await;
    assert_eq!(done.status, "SUCCEEDED");
    assert_eq!(
        done.output,
        Some(json!({"requestId": "r1", "result": {"outputs": {"x": 1}}}))
    );
    assert!(done.stop_date.is_some());
    assert!(is_over(
        workflows.send_task_success(&token, &json!({})).await,
        departures
    ));
    assert!(matches!(
        workflows.send_task_success("not-a-token", &json!({})).await,
        Err(WorkflowError::InvalidToken)
    ));
    let history = workflows.history(&first).await.unwrap();
    let kinds: Vec<&str> = history.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
    assert_eq!(kinds.last(), Some(&"ExecutionSucceeded"));
    for expected in ["TaskScheduled", "TaskSubmitted", "TaskSucceeded"] {
        assert!(
            kinds.contains(&expected),
            "{expected} missing from {kinds:?}"
        );
    }
    let ids: Vec<u64> = history.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert!(
        workflows
            .describe(&workflows.execution_arn("suite", "none"))
            .await
            .unwrap()
            .is_none()
    );

    // A failure the definition catches, and one it does not.
    let caught = workflows.start("suite", "r2", &json!({})).await.unwrap();
    let token = next_token(queue).await;
    workflows
        .send_task_failure(&token, "Custom.Caught", "first")
        .await
        .unwrap();
    let summary = settled(workflows, &caught).await;
    assert_eq!(summary.status, "SUCCEEDED");
    let cause = |text: &str| {
        if departures.failure_cause_dropped {
            None
        } else {
            Some(text.to_owned())
        }
    };
    assert_eq!(
        summary.output,
        Some(
            json!({"error": {"Error": "Custom.Caught", "Cause": cause("first")}, "note": "recovered"})
        )
    );
    let failed = workflows.start("suite", "r3", &json!({})).await.unwrap();
    let token = next_token(queue).await;
    workflows
        .send_task_failure(&token, "Custom.Fatal", "the cause")
        .await
        .unwrap();
    let summary = settled(workflows, &failed).await;
    assert_eq!(
        (
            summary.status.as_str(),
            summary.error.as_deref(),
            summary.cause
        ),
        ("FAILED", Some("Custom.Fatal"), cause("the cause"))
    );

    // Redriving the failed execution runs the failed task again, with its input; a
    // redrive of one that succeeded is refused.
    if !departures.no_redrive {
        workflows.redrive(&failed).await.unwrap();
        let token = next_token(queue).await;
        assert_eq!(
            workflows.describe(&failed).await.unwrap().unwrap().status,
            "RUNNING"
        );
        workflows
            .send_task_success(&token, &json!({"second": true}))
            .await
            .unwrap();
        let summary = settled(workflows, &failed).await;
        assert_eq!(summary.status, "SUCCEEDED");
        assert_eq!(summary.redrive_count, 1);
        assert_eq!(summary.output, Some(json!({"result": {"second": true}})));
        let history = workflows.history(&failed).await.unwrap();
        assert!(history.iter().any(|e| e["type"] == "ExecutionRedriven"));
        assert!(matches!(
            workflows.redrive(&failed).await,
            Err(WorkflowError::NotRedrivable(_))
        ));
        assert!(matches!(
            workflows
                .redrive(&workflows.execution_arn("suite", "none"))
                .await,
            Err(WorkflowError::NoSuchExecution(_))
        ));
    }

    // Stopping aborts the execution; its token is then over.
    let stopped = workflows.start("suite", "r4", &json!({})).await.unwrap();
    let token = next_token(queue).await;
    workflows
        .stop(
            &stopped,
            "Orchestrator.Cancelled",
            "the requester cancelled",
        )
        .await
        .unwrap();
    if departures.stop_leaves_callback_waiting {
        // Let it end, so that nothing is left running.
        let _ = workflows.send_task_success(&token, &json!({})).await;
    } else {
        assert_eq!(settled(workflows, &stopped).await.status, "ABORTED");
        assert!(is_over(
            workflows.send_task_success(&token, &json!({})).await,
            departures
        ));
    }

    // A task that stops heartbeating times out on its own, without anyone calling.
    workflows
        .deploy("suite-heartbeat", &machine(Some(2)))
        .await
        .unwrap();
    let beating = workflows
        .start("suite-heartbeat", "r5", &json!({}))
        .await
        .unwrap();
    let token = next_token(queue).await;
    time.advance(Duration::from_millis(1_500)).await;
    workflows.send_task_heartbeat(&token).await.unwrap();
    time.advance(Duration::from_millis(1_500)).await;
    assert_eq!(
        workflows.describe(&beating).await.unwrap().unwrap().status,
        "RUNNING",
        "the heartbeat moved the deadline"
    );
    time.advance(Duration::from_millis(1_000)).await;
    let summary = settled(workflows, &beating).await;
    let expected = if departures.heartbeat_timeout_is_states_timeout {
        "States.Timeout"
    } else {
        "States.HeartbeatTimeout"
    };
    assert_eq!(
        (summary.status.as_str(), summary.error.as_deref()),
        ("FAILED", Some(expected))
    );
}
