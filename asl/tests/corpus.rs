//! The conformance corpus run on the local runner: every definition under `corpus/` with
//! its scripted task answers must end with the status, output and error AWS documents.
//! `tests/conformance_moto.rs` (in the orchestrator-tests crate) runs the same corpus on
//! moto's Step Functions.

mod script;

#[test]
fn every_corpus_definition_ends_as_step_functions_documents() {
    let cases = script::load_corpus();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = script::run_local(case);
        if let Err(e) = case.check(&outcome, true) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn history_events_are_numbered_and_linked_like_get_execution_history() {
    let cases = script::load_corpus();
    let case = cases
        .iter()
        .find(|c| c.name == "task-retry-then-succeed")
        .expect("case");
    let outcome = script::run_local(case);
    let kinds: Vec<&str> = outcome.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskFailed",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (i, e) in outcome.history.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert_eq!(e.previous_event_id, i as u64);
    }
    let json = serde_json::to_value(&outcome.history[1]).expect("serializes");
    assert_eq!(json["stateEnteredEventDetails"]["name"], "T");
    assert_eq!(json["type"], "TaskStateEntered");
    assert!(json["timestamp"].is_string());
}
