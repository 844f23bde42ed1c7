//! `orchestrator asl run` and `orchestrator asl test` as a user runs them.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_orchestrator");

fn examples() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../examples/asl-tests")
}

fn orchestrator(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, file: &str, value: &Value) -> String {
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn the_example_suite_passes_and_a_day_long_wait_takes_no_time() {
    let dir = examples();
    let started = std::time::Instant::now();
    let out = orchestrator(&["asl", "test", dir.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.ends_with("3 passed, 0 failed\n"), "{stdout}");
    for case in ["HappyPath", "BusyThenCharged", "Declined"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok    ") && l.ends_with(&format!("Order/{case}"))),
            "{stdout}"
        );
    }
    // A Wait of a day and two retries of a minute each, on the virtual clock.
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn run_prints_the_outcome_and_history_of_one_test_case() {
    let dir = examples();
    let out = orchestrator(&[
        "asl",
        "run",
        dir.join("Order.asl.json").to_str().unwrap(),
        "--mock-config",
        dir.join("MockConfigFile.json").to_str().unwrap(),
        "--test-case",
        "BusyThenCharged",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(
        result["output"],
        json!({"payment": {"charged": true}, "shipment": {"trackingId": "T-1"}})
    );
    let history = result["history"].as_array().unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
    assert_eq!(kinds.last(), Some(&"ExecutionSucceeded"));
    // Two failed attempts, then the third: each scheduled and answered.
    assert_eq!(kinds.iter().filter(|k| **k == "TaskFailed").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "TaskSucceeded").count(), 2);
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event["id"], json!(i + 1));
    }
    let failed = history.iter().find(|e| e["type"] == "TaskFailed").unwrap();
    assert_eq!(failed["taskFailedEventDetails"]["error"], "Payments.Busy");
}

#[test]
fn a_failing_expectation_is_shown_and_the_exit_code_is_one() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["Order.asl.json", "MockConfigFile.json"] {
        std::fs::copy(examples().join(file), dir.path().join(file)).unwrap();
    }
    write(
        dir.path(),
        "Order.expect.json",
        &json!({
            "HappyPath": {"status": "SUCCEEDED", "output": {"wrong": true}},
            "Declined": {"status": "SUCCEEDED", "states": ["Charge"]}
        }),
    );
    let out = orchestrator(&["asl", "test", dir.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("Order/HappyPath"),
        "{stdout}"
    );
    assert!(
        stdout.contains("output: expected {\"wrong\":true}"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "status: expected SUCCEEDED, got FAILED (Order.NotCharged: the payment failed)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"states entered: expected ["Charge"], got ["Charge", "Refund"]"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("no expectation: add \"BusyThenCharged\""),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 passed, 3 failed\n"), "{stdout}");
}

#[test]
fn an_unmocked_task_fails_the_run_naming_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "mocks.json",
        &json!({"StateMachines": {"Order": {"TestCases": {"NoShip": {"Charge": "Charged"}}}},
                "MockedResponses": {"Charged": {"0": {"Return": {"Payload": {"charged": true}}}}}}),
    );
    let out = orchestrator(&[
        "asl",
        "run",
        examples().join("Order.asl.json").to_str().unwrap(),
        "--mock-config",
        &config,
        "--test-case",
        "NoShip",
    ]);
    assert!(
        out.status.success(),
        "the run finished: {}",
        text(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "FAILED");
    assert_eq!(
        result["error"], "States.Runtime",
        "not caught by States.ALL"
    );
    assert!(
        result["cause"]
            .as_str()
            .unwrap()
            .contains("the Task state `Ship` has no mocked response in test case `NoShip`"),
        "{result}"
    );
}

#[test]
fn a_bad_definition_or_configuration_exits_two_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(
        dir.path(),
        "Broken.asl.json",
        &json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Succeed"}}}),
    );
    let out = orchestrator(&["asl", "run", &definition]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Broken.asl.json"), "{stderr}");
    assert!(
        stderr.contains("`A`") && stderr.contains("Nowhere"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`B`") && stderr.contains("not reachable"),
        "{stderr}"
    );

    let config = write(
        dir.path(),
        "mocks.json",
        &json!({"StateMachines": {"Order": {"TestCases": {"C": {"Charge": "Missing"}}}},
                "MockedResponses": {}}),
    );
    let out = orchestrator(&[
        "asl",
        "run",
        examples().join("Order.asl.json").to_str().unwrap(),
        "--mock-config",
        &config,
        "--test-case",
        "C",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/StateMachines/Order/TestCases/C/Charge")
            && stderr.contains("no mocked response `Missing`"),
        "{stderr}"
    );

    // A test case the configuration does not have.
    let out = orchestrator(&[
        "asl",
        "run",
        examples().join("Order.asl.json").to_str().unwrap(),
        "--mock-config",
        examples().join("MockConfigFile.json").to_str().unwrap(),
        "--test-case",
        "Nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no test case `Nope`"));

    // A directory without any mock configuration.
    let empty = tempfile::tempdir().unwrap();
    let out = orchestrator(&["asl", "test", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no mock configuration"));
}

#[path = "../../asl/tests/script/mod.rs"]
mod script;

/// The conformance corpus (asl/tests/corpus) written as Step Functions Local test cases:
/// each case's scripted answers become mocked responses (the last one repeating), its
/// expectation an expect file. Cases whose answers echo the task's input or never come
/// have no equivalent in the mock format and are left out.
#[test]
fn the_conformance_corpus_passes_through_asl_test() {
    let dir = tempfile::tempdir().unwrap();
    let mut machines = serde_json::Map::new();
    let mut responses = serde_json::Map::new();
    let mut written = 0;
    for case in script::load_corpus() {
        let Some(config) = case.mock_config() else {
            continue;
        };
        machines.extend(config["StateMachines"].as_object().cloned().unwrap());
        responses.extend(config["MockedResponses"].as_object().cloned().unwrap());
        std::fs::write(
            dir.path().join(format!("{}.asl.json", case.name)),
            case.definition_text("https://sqs.us-east-1.amazonaws.com/123456789012/q"),
        )
        .unwrap();
        let mut expect = case.expect.clone();
        expect["input"] = case.input.clone();
        write(
            dir.path(),
            &format!("{}.expect.json", case.name),
            &json!({"corpus": expect}),
        );
        written += 1;
    }
    assert!(written >= 35, "{written} corpus cases written");
    write(
        dir.path(),
        "MockConfigFile.json",
        &json!({"StateMachines": machines, "MockedResponses": responses}),
    );
    let out = orchestrator(&["asl", "test", dir.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with(&format!("{written} passed, 0 failed\n")),
        "{stdout}"
    );
}

#[test]
fn a_resource_handler_answers_the_states_no_mock_covers() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(
        dir.path(),
        "Save.asl.json",
        &json!({"StartAt": "Put", "States": {
            "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                    "Parameters": {"TableName": "orders", "Item": {"id": {"S.$": "$.id"}}},
                    "Catch": [{"ErrorEquals": ["Db.Full"], "ResultPath": "$.error", "Next": "Full"}],
                    "End": true},
            "Full": {"Type": "Pass", "End": true}}}),
    );
    let input = write(dir.path(), "input.json", &json!({"id": "o-1"}));
    // `cat` answers with what it was given: the resource, state and rendered parameters.
    let out = orchestrator(&[
        "asl",
        "run",
        &definition,
        "--input",
        &input,
        "--handler",
        "arn:aws:states:::dynamodb:*=cat",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(result["output"]["state"], "Put");
    assert_eq!(
        result["output"]["resource"],
        "arn:aws:states:::dynamodb:putItem"
    );
    assert_eq!(
        result["output"]["parameters"],
        json!({"TableName": "orders", "Item": {"id": {"S": "o-1"}}})
    );

    // A failing handler fails the task with the error it printed; Catch takes it.
    let out = orchestrator(&[
        "asl",
        "run",
        &definition,
        "--input",
        &input,
        "--handler",
        r#"arn:aws:states:::dynamodb:putItem=echo '{"Error": "Db.Full", "Cause": "no space"}'; exit 1"#,
    ]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(
        result["output"]["error"],
        json!({"Error": "Db.Full", "Cause": "no space"})
    );

    // A handler for another resource does not take it.
    let out = orchestrator(&[
        "asl",
        "run",
        &definition,
        "--input",
        &input,
        "--handler",
        "arn:aws:states:::lambda:invoke=cat",
    ]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["error"], "States.Runtime", "{result}");
    assert!(
        result["cause"]
            .as_str()
            .unwrap()
            .contains("no resource handler takes `arn:aws:states:::dynamodb:putItem`")
    );

    let out = orchestrator(&["asl", "run", &definition, "--handler", "nothing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected RESOURCE=COMMAND"));
}

#[test]
fn with_real_time_a_wait_takes_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let definition = write(
        dir.path(),
        "Pause.asl.json",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}}),
    );
    let started = std::time::Instant::now();
    let out = orchestrator(&["asl", "run", &definition]);
    assert!(out.status.success());
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    let started = std::time::Instant::now();
    let out = orchestrator(&["asl", "run", &definition, "--real-time"]);
    assert!(out.status.success());
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "SUCCEEDED");
}
