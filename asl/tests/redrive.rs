//! RedriveExecution on the local runner: a failed execution runs again from the states
//! that did not succeed, with their inputs; what succeeded (states, and the branches of a
//! Parallel state) is not run again.

use std::collections::HashMap;

use asl::execution::{Answer, TaskCall, Tasks};
use asl::{Execution, Machine, RedriveError, Status};
use serde_json::{Value, json};

/// Answers each task at once: the states in `failing` fail, the others return
/// `{"by": <state>}`. Counts the calls per state.
struct Host {
    failing: Vec<&'static str>,
    calls: HashMap<String, usize>,
    inputs: HashMap<String, Value>,
}

impl Tasks for Host {
    fn invoke(&mut self, call: &TaskCall<'_>) -> Answer {
        *self.calls.entry(call.state.to_owned()).or_default() += 1;
        self.inputs
            .insert(call.state.to_owned(), call.parameters.clone());
        if self.failing.contains(&call.state) {
            Answer::Failed(asl::Failure::new("Boom", "it broke"))
        } else {
            Answer::Done(json!({"by": call.state}))
        }
    }
}

impl asl::simulate::Host for Host {}

fn task(next: Option<&str>) -> Value {
    let mut state = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"x.$": "$"}});
    match next {
        Some(n) => state["Next"] = json!(n),
        None => state["End"] = json!(true),
    }
    state
}

fn start(definition: Value, host: &mut Host) -> (Machine, Execution) {
    let machine = Machine::parse(&definition.to_string()).expect("valid");
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let (execution, _) = asl::simulate::run(
        &machine,
        "arn:aws:states:local:0:execution:m:e",
        "arn:aws:states:local:0:stateMachine:m",
        json!({"n": 1}),
        now,
        host,
    );
    (machine, execution)
}

#[test]
fn a_redriven_chain_runs_again_from_the_state_that_failed() {
    let definition = json!({"StartAt": "A", "States": {"A": task(Some("B")), "B": task(Some("C")), "C": task(None)}});
    let mut host = Host {
        failing: vec!["B"],
        calls: HashMap::new(),
        inputs: HashMap::new(),
    };
    let (machine, mut execution) = start(definition, &mut host);
    assert_eq!(execution.status, Status::Failed);

    host.failing.clear();
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(5);
    let events = execution.redrive(now).expect("redrivable");
    assert_eq!(events[0].kind, "ExecutionRedriven");
    asl::simulate::resume(&machine, &mut execution, now, &mut host);
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.redrive_count, 1);
    assert_eq!(host.calls["A"], 1, "A succeeded: not run again");
    assert_eq!(host.calls["B"], 2);
    assert_eq!(host.calls["C"], 1);
    assert_eq!(
        execution.redrive(now),
        Err(RedriveError::NotRedrivable(Status::Succeeded))
    );
}

#[test]
fn a_redriven_parallel_state_runs_only_the_branches_that_did_not_succeed() {
    let branch = |name: &str| json!({"StartAt": name, "States": {name: task(None)}});
    let definition = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [branch("X"), branch("Y"), branch("Z")], "Next": "After"},
        "After": task(None),
    }});
    let mut host = Host {
        failing: vec!["Y"],
        calls: HashMap::new(),
        inputs: HashMap::new(),
    };
    let (machine, mut execution) = start(definition, &mut host);
    assert_eq!(execution.status, Status::Failed);
    // Branches run in order: X succeeded, Y failed, Z was stopped before it ran.
    host.failing.clear();
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(5);
    execution.redrive(now).expect("redrivable");
    asl::simulate::resume(&machine, &mut execution, now, &mut host);
    assert_eq!(
        execution.status,
        Status::Succeeded,
        "{:?}",
        execution.failure
    );
    assert_eq!(host.calls["X"], 1, "X succeeded: not run again");
    assert_eq!(host.calls["Y"], 2);
    assert_eq!(host.calls.get("Z").copied().unwrap_or(0), 1);
    assert_eq!(host.calls["After"], 1);
    assert_eq!(
        host.inputs["After"]["x"],
        json!([{"by": "X"}, {"by": "Y"}, {"by": "Z"}]),
        "X's result was kept"
    );
}
