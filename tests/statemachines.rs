//! The state machines generated from bundles: the checked-in definitions of the example
//! catalog are current, and the compiler's output has the promised shape.

use ::asl as runner;
use orchestrator_tests::{
    ITEM, bundle_of, bundle_of_indexed, example_catalog, item_with_rollback, single_error, validate,
};
use serde_json::{Value, json};
use shared::bundle::{asl, task};
use shared::catalog::snapshot::CatalogSnapshot;

fn statemachines_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../statemachines")
}

#[test]
fn the_checked_in_state_machines_match_the_example_catalog() {
    let snapshot = CatalogSnapshot::from_dir(&example_catalog()).expect("valid example catalog");
    let definitions = asl::all_definitions(&snapshot.catalog).expect("compiles");
    let fix = "run `cargo run -p orchestrator-cli -- bundle compile examples/catalog --out statemachines`";
    let mut expected: Vec<String> = Vec::new();
    for (name, definition) in &definitions {
        let file = format!("{name}.asl.json");
        let path = statemachines_dir().join(&file);
        let checked_in = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("statemachines/{file} is missing: {fix}"));
        assert!(
            checked_in == asl::to_text(definition),
            "statemachines/{file} is stale: {fix}"
        );
        expected.push(file);
    }
    for entry in std::fs::read_dir(statemachines_dir()).expect("statemachines/") {
        let file = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            !file.ends_with(".asl.json") || expected.contains(&file),
            "statemachines/{file} belongs to no bundle or item: {fix}"
        );
    }
    assert!(definitions.iter().any(|(n, _)| n == "bundle-app-stack"));
}

/// The definition of bundle `shape` over the `postgres` item `item`.
fn compile_with(item: &str, bundle: &str) -> Value {
    let report = validate(&[("items/postgres.yaml", item), ("bundles/b.yaml", bundle)]);
    assert!(report.is_valid(), "{:#?}", report.findings);
    asl::compile_bundle(&report.catalog, "shape").expect("compiles")
}

fn compile(bundle: &str) -> Value {
    compile_with(ITEM, bundle)
}

/// Every state of a definition, nested ones included, by name.
fn states(definition: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    fn walk(machine: &Value, out: &mut Vec<(String, Value)>) {
        for (name, state) in machine["States"].as_object().expect("States") {
            out.push((name.clone(), state.clone()));
            for branch in state["Branches"].as_array().into_iter().flatten() {
                walk(branch, out);
            }
        }
    }
    walk(definition, &mut out);
    out
}

fn state(definition: &Value, name: &str) -> Value {
    states(definition)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no state {name}"))
        .1
}

#[test]
fn the_same_bundle_compiles_to_the_same_bytes() {
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &[]), ("c", &["a", "b"])],
        "rollback",
    );
    let one = asl::to_text(&compile(&bundle));
    let two = asl::to_text(&compile(&bundle));
    assert_eq!(one, two);
}

#[test]
fn independent_components_run_in_one_parallel_state_whose_branches_are_merged() {
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &[]), ("c", &[]), ("d", &["a", "b", "c"])],
        "rollback",
    );
    let definition = compile(&bundle);
    let together = state(&definition, "Together 1");
    assert_eq!(together["Type"], "Parallel");
    assert_eq!(together["Branches"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        together["ResultSelector"],
        json!({"components.$": "States.JsonMerge(States.JsonMerge($[0], $[1], false), $[2], false)"})
    );
    assert_eq!(together["Next"], "Check Together 1");
    let check = state(&definition, "Check Together 1");
    assert_eq!(check["Default"], "Provision d");
    assert_eq!(check["Choices"][0]["Variable"], "$.components._failure");
    assert_eq!(check["Choices"][0]["Next"], "Together 1 failed");
    // ITEM has no rollback: nothing to undo.
    assert_eq!(
        state(&definition, "Together 1 failed")["Next"],
        "Record failure"
    );
    for (branch, id) in ["a", "b", "c"].into_iter().enumerate() {
        let task = state(&definition, &format!("Provision {id}"));
        assert_eq!(task["OutputPath"], "$.components", "{id}");
        assert_eq!(task["ResultPath"], format!("$.components.{id}"));
        let stopped = format!("Together 1 branch {} stopped", branch + 1);
        let cancelled = format!("Together 1 branch {} cancelled", branch + 1);
        assert_eq!(
            task["Catch"],
            json!([
                {"ErrorEquals": [task::CANCELLED_ERROR], "ResultPath": "$.error", "Next": cancelled},
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": stopped},
            ]),
            "a branch catches its failure, so its siblings are not stopped mid-flight"
        );
        assert_eq!(
            state(&definition, &stopped)["Parameters"],
            json!({"_failure.$": "$.error"})
        );
        assert_eq!(task["Resource"], asl::CALLBACK_RESOURCE);
        assert_eq!(task["Parameters"]["MessageBody"]["component"], id);
    }
    let names: Vec<String> = states(&definition).into_iter().map(|(n, _)| n).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "state names are unique: {names:?}"
    );
}

#[test]
fn rollback_undoes_in_reverse_order_then_records_the_failure_and_fails_with_the_original_error() {
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &["a"]), ("c", &["b"])],
        "rollback",
    );
    let definition = compile_with(&item_with_rollback(), &bundle);
    assert_eq!(
        state(&definition, "Provision b")["Catch"],
        json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Undo c"}])
    );
    assert_eq!(state(&definition, "Undo c")["Next"], "Undo b");
    assert_eq!(state(&definition, "Undo b")["Next"], "Undo a");
    assert_eq!(state(&definition, "Undo a")["Next"], "Record failure");
    assert_eq!(
        state(&definition, "Undo b")["Catch"][0]["Next"],
        "Undo a",
        "a failed undo does not stop the others"
    );
    assert_eq!(state(&definition, "Record failure")["Next"], "Failed");
    let failed = state(&definition, "Failed");
    assert_eq!(failed["ErrorPath"], "$.error.Error");
    assert_eq!(failed["CausePath"], "$.error.Cause");
}

#[test]
fn with_on_failure_stop_nothing_is_undone() {
    let bundle = bundle_of("shape", &[("a", &[]), ("b", &["a"])], "stop");
    let definition = compile(&bundle);
    assert_eq!(
        state(&definition, "Provision b")["Catch"][0]["Next"],
        "Record failure"
    );
    assert!(
        states(&definition)
            .iter()
            .all(|(n, _)| !n.starts_with("Undo"))
    );
}

#[test]
fn with_on_failure_pause_only_timeouts_are_caught_so_the_execution_fails_where_it_can_be_redriven()
{
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &[]), ("c", &["a", "b"])],
        "pause",
    );
    let definition = compile_with(&item_with_rollback(), &bundle);
    assert_eq!(
        state(&definition, "Provision c")["Catch"],
        json!([{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Record failure"}])
    );
    assert_eq!(
        state(&definition, "Provision a")["Catch"][1]["ErrorEquals"],
        json!(["States.Timeout"])
    );
    assert!(
        states(&definition)
            .iter()
            .all(|(n, _)| !n.starts_with("Undo")),
        "nothing is undone"
    );
}

#[test]
fn approval_stages_come_first_each_a_callback_that_expires_into_escalation_or_rejection() {
    let bundle = bundle_of("shape", &[("a", &[]), ("b", &["a"])], "rollback").replace(
        "  components:\n",
        "  approvals:\n    - name: prod\n      when:\n        - path: $.fields.app\n          equals: shop\n      stages:\n        - name: owners\n          approvers:\n            owner: true\n          expires: 2d\n          escalate:\n            approvers:\n              users: [boss]\n            expires: 1d\n        - name: security\n          approvers:\n            groups: [security]\n  components:\n",
    );
    let definition = compile(&bundle);
    assert_eq!(state(&definition, "Start")["Next"], "Approval 1");
    let first = state(&definition, "Approval 1");
    assert_eq!(first["TimeoutSeconds"], 2 * 86_400);
    assert_eq!(first["Parameters"]["MessageBody"]["task"], "approve");
    assert_eq!(first["Parameters"]["MessageBody"]["approval"], 1);
    assert_eq!(first["Next"], "Approval 2");
    assert_eq!(first["Catch"][0]["Next"], "Approval 1 escalated");
    assert_eq!(first["Catch"][1]["Next"], "Record failure");
    let escalated = state(&definition, "Approval 1 escalated");
    assert_eq!(escalated["TimeoutSeconds"], 86_400);
    assert_eq!(escalated["Parameters"]["MessageBody"]["escalated"], true);
    assert_eq!(escalated["Catch"][0]["Next"], "Approval 1 expired");
    assert_eq!(
        state(&definition, "Approval 1 expired")["Result"]["Error"],
        task::REJECTED_ERROR
    );
    let second = state(&definition, "Approval 2");
    assert_eq!(second["TimeoutSeconds"], 7 * 86_400, "the default expiry");
    assert_eq!(second["Catch"][0]["Next"], "Approval 2 expired");
    assert_eq!(second["Next"], "Scheduled?");
    let scheduled = state(&definition, "Scheduled?");
    assert_eq!(scheduled["Default"], "Provision a");
    assert_eq!(
        scheduled["Choices"][0]["Variable"],
        "$$.Execution.Input.notBefore"
    );
    assert_eq!(
        state(&definition, "Wait until scheduled")["TimestampPath"],
        "$$.Execution.Input.notBefore"
    );
}

#[test]
fn a_manual_component_waits_for_its_ticket_without_a_heartbeat() {
    let manual = ITEM.replace(
        "    mode: automated\n",
        "    mode: manual\n    manual:\n      ticket:\n        project: DBA\n        issueType: Task\n        summary: Create {{fields.dbName}}\n      outputs:\n        endpoint: customfield_10001\n      timeout: 3d\n",
    );
    let bundle = bundle_of("shape", &[("a", &[])], "stop");
    let definition = compile_with(&manual, &bundle);
    let task = state(&definition, "Provision a");
    assert_eq!(task["TimeoutSeconds"], 3 * 86_400);
    assert!(task.get("HeartbeatSeconds").is_none());
    // Step Functions refuses a heartbeat to such a task, so the worker is told not to send one.
    assert!(task["Parameters"]["MessageBody"].get("heartbeat").is_none());
    // An automated item's task is heartbeated by the worker.
    let automated = compile(&bundle_of("shape", &[("a", &[])], "stop"));
    let task = state(&automated, "Provision a");
    assert_eq!(task["TimeoutSeconds"], 3600);
    assert_eq!(task["HeartbeatSeconds"], asl::HEARTBEAT_SECS);
    assert_eq!(task["Parameters"]["MessageBody"]["heartbeat"], true);
}

#[test]
fn an_n_shaped_bundle_still_never_starts_a_component_early() {
    // c needs a and b; d needs b: no nesting of blocks expresses this exactly.
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &[]), ("c", &["a", "b"]), ("d", &["b"])],
        "stop",
    );
    let definition = compile(&bundle);
    assert_eq!(
        state(&definition, "Check Together 1")["Default"],
        "Together 2"
    );
    let second = state(&definition, "Together 2");
    let starts: Vec<&str> = second["Branches"]
        .as_array()
        .expect("branches")
        .iter()
        .map(|b| b["StartAt"].as_str().expect("StartAt"))
        .collect();
    assert_eq!(starts, ["Provision c", "Provision d"]);
}

#[test]
fn a_bundle_with_a_cycle_is_refused_by_validation_before_it_reaches_the_compiler() {
    let bundle = bundle_of("shape", &[("a", &["b"]), ("b", &["a"])], "stop");
    let report = validate(&[("items/postgres.yaml", ITEM), ("bundles/b.yaml", &bundle)]);
    assert!(single_error(&report).message.contains("cycle"));
}

/// asl-validator, installed by `scripts/test` (`npm ci --prefix tools/asl`). Without it the
/// check is skipped with a note, unless `ASL_VALIDATOR_REQUIRED` is set (as in CI).
fn asl_validator() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("ASL_VALIDATOR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(
                std::env::var_os("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
            )
            .join("../tools/asl/node_modules/.bin/asl-validator")
        });
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("ASL_VALIDATOR_REQUIRED").is_none(),
        "asl-validator is required but missing at {}",
        path.display()
    );
    eprintln!(
        "note: asl-validator is not installed; run `npm ci --prefix tools/asl` to check definitions"
    );
    None
}

#[test]
fn every_generated_definition_passes_asl_validator() {
    let Some(validator) = asl_validator() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    // The example catalog's, as checked in.
    for entry in std::fs::read_dir(statemachines_dir()).expect("statemachines/") {
        files.push(entry.expect("entry").path());
    }
    // Random shapes, with rollback and without.
    let rollback_item = item_with_rollback();
    let mut rng = fastrand::Rng::with_seed(7);
    for n in 0..30 {
        let deps: Vec<Vec<usize>> = (0..rng.usize(1..=12))
            .map(|i| (0..i).filter(|_| rng.u8(0..3) == 0).collect())
            .collect();
        let on_failure = ["rollback", "stop", "pause"][n % 3];
        let definition = compile_with(
            &rollback_item,
            &bundle_of_indexed("shape", &deps, on_failure),
        );
        let path = dir.path().join(format!("shape-{n}.asl.json"));
        std::fs::write(&path, asl::to_text(&definition)).expect("write");
        files.push(path);
    }
    let mut command = std::process::Command::new(validator);
    for f in &files {
        command.arg("--json-path").arg(f);
    }
    let out = command.output().expect("asl-validator runs");
    assert!(
        out.status.success(),
        "asl-validator refused a definition:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The request the executions run for: the contract's request ids are UUIDv7s.
const REQUEST: &str = "0190f0f0-0000-7000-8000-000000000001";

/// A worker that reads every task message as the `TaskMessage` contract and answers it;
/// `fail` names the component whose provisioning fails.
struct Worker {
    fail: &'static str,
    seen: Vec<String>,
    pending: Vec<runner::Signal>,
}

impl runner::Tasks for Worker {
    fn invoke(&mut self, call: &runner::TaskCall<'_>) -> runner::Answer {
        assert_eq!(call.resource, asl::CALLBACK_RESOURCE);
        assert_eq!(call.parameters["QueueUrl"], "https://sqs.local/actions");
        let message: task::TaskMessage =
            serde_json::from_value(call.parameters["MessageBody"].clone()).expect("the contract");
        assert_eq!(message.task_token, call.token);
        assert_eq!(message.request_id.to_string(), REQUEST);
        let component = message.component.clone().unwrap_or_default();
        self.seen
            .push(format!("{:?} {component}", message.task).to_lowercase());
        let token = call.token.to_owned();
        self.pending.push(
            if message.task == task::TaskKind::Provision && component == self.fail {
                runner::Signal::Failure {
                    token,
                    failure: runner::Failure::new(task::FAILED_ERROR, "the database API said no"),
                }
            } else {
                let outputs = json!({"outputs": {"endpoint": format!("{component}.internal")}});
                runner::Signal::Success {
                    token,
                    output: outputs,
                }
            },
        );
        runner::Answer::Callback
    }
}

impl runner::simulate::Host for Worker {
    fn answers(&mut self) -> Vec<runner::Signal> {
        std::mem::take(&mut self.pending)
    }
}

fn execute(definition: &Value, fail: &'static str) -> (runner::Execution, Vec<String>) {
    let text =
        asl::to_text(definition).replace(asl::QUEUE_PLACEHOLDER, "https://sqs.local/actions");
    let machine = runner::Machine::parse(&text).expect("the runner accepts it");
    let mut worker = Worker {
        fail,
        seen: Vec::new(),
        pending: Vec::new(),
    };
    let (execution, _) = runner::simulate::run(
        &machine,
        "arn:aws:states:local:0:execution:shape:r-1",
        "arn:aws:states:local:0:stateMachine:shape",
        json!({"requestId": REQUEST}),
        time::OffsetDateTime::UNIX_EPOCH,
        &mut worker,
    );
    (execution, worker.seen)
}

#[test]
fn run_by_the_local_runner_a_bundle_passes_outputs_on_and_rolls_back_in_reverse_order() {
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &["a"]), ("c", &["b"])],
        "rollback",
    );
    let definition = compile_with(&item_with_rollback(), &bundle);

    let (done, seen) = execute(&definition, "none");
    assert_eq!(
        seen,
        ["provision a", "provision b", "provision c", "complete "]
    );
    assert_eq!(done.status, runner::Status::Succeeded);
    assert_eq!(
        done.output.expect("output")["components"]["b"],
        json!({"outputs": {"endpoint": "b.internal"}})
    );

    let (failed, seen) = execute(&definition, "c");
    assert_eq!(
        seen,
        [
            "provision a",
            "provision b",
            "provision c",
            "undo c",
            "undo b",
            "undo a",
            "fail "
        ]
    );
    assert_eq!(failed.status, runner::Status::Failed);
    let failure = failed.failure.expect("failure");
    assert_eq!(
        (failure.error.as_str(), failure.cause.as_str()),
        (task::FAILED_ERROR, "the database API said no")
    );
}

#[test]
fn run_by_the_local_runner_a_failed_branch_lets_its_siblings_settle_and_then_undoes_them_all() {
    // a and b run together; c follows b in b's branch; d needs everything.
    let bundle = bundle_of(
        "shape",
        &[("a", &[]), ("b", &[]), ("c", &["b"]), ("d", &["a", "c"])],
        "rollback",
    );
    let definition = compile_with(&item_with_rollback(), &bundle);
    let (failed, seen) = execute(&definition, "a");
    let provisioned: Vec<&str> = seen
        .iter()
        .filter_map(|s| s.strip_prefix("provision "))
        .collect();
    // b's branch runs to its end (the worker, not the state machine, declines to start
    // new work for a failing request); nothing after the Parallel state runs.
    assert_eq!(provisioned, ["a", "b", "c"], "{seen:?}");
    let undone: Vec<&str> = seen
        .iter()
        .filter_map(|s| s.strip_prefix("undo "))
        .collect();
    assert_eq!(
        undone.len(),
        4,
        "every component is offered its undo: {seen:?}"
    );
    assert!(
        seen.iter().position(|s| s == "provision c")
            < seen.iter().position(|s| s.starts_with("undo")),
        "undoing starts once the siblings settled: {seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("fail "));
    assert_eq!(failed.status, runner::Status::Failed);
    let failure = failed.failure.expect("failure");
    assert_eq!(
        (failure.error.as_str(), failure.cause.as_str()),
        (task::FAILED_ERROR, "the database API said no")
    );
}

/// Definitions that each break one rule: the local runner's validation refuses each,
/// naming the state, and so does asl-validator (the two agree on what is invalid).
#[test]
fn the_local_validation_and_asl_validator_refuse_the_same_broken_definitions() {
    let task = "arn:aws:states:::lambda:invoke";
    let cases = [
        (
            "next-missing",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}),
            "state `A`: Next `Nowhere` is not a state of this machine",
        ),
        (
            "unreachable",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "B": {"Type": "Succeed"}}}),
            "state `B`: is not reachable from StartAt",
        ),
        (
            "start-missing",
            json!({"StartAt": "X", "States": {"A": {"Type": "Pass", "End": true}}}),
            "StartAt `X` is not a state",
        ),
        (
            "task-without-resource",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "End": true}}}),
            "state `A`: a Task state needs Resource",
        ),
        (
            "choice-without-choices",
            json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Default": "B"}, "B": {"Type": "Succeed"}}}),
            "state `A`: a Choice state needs a non-empty Choices list",
        ),
        (
            "choice-rule-without-next",
            json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1}], "Default": "B"}, "B": {"Type": "Succeed"}}}),
            "state `A` Choices[0]: a choice rule needs Next",
        ),
        (
            "next-and-end",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": true}, "B": {"Type": "Succeed"}}}),
            "state `A`: Next and End cannot both be given",
        ),
        (
            "neither-next-nor-end",
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}),
            "state `A`: needs Next or \"End\": true",
        ),
        (
            "wait-with-two-durations",
            json!({"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "Timestamp": "2026-01-01T00:00:00Z", "End": true}}}),
            "state `A`: a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
        ),
        (
            "fail-with-next",
            json!({"StartAt": "A", "States": {"A": {"Type": "Fail", "Next": "B"}, "B": {"Type": "Succeed"}}}),
            "state `A`: a Fail state ends the execution",
        ),
        (
            "branch-next-missing",
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}]}}}),
            "state `P` / branch 0 / state `X`: Next `Y` is not a state of this machine",
        ),
        (
            "timeout-and-timeout-path",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": task, "TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t", "End": true}}}),
            "state `A`: TimeoutSeconds and TimeoutSecondsPath cannot both be given",
        ),
        (
            "catch-without-next",
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": task, "Catch": [{"ErrorEquals": ["States.ALL"]}], "End": true}}}),
            "state `A` Catch[0]: missing field `Next`",
        ),
        (
            "unknown-type",
            json!({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": true}}}),
            "state `A`: Type `Sleep` is not one of",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let validator = asl_validator();
    for (name, definition, expected) in &cases {
        let problems = runner::Machine::from_value(definition)
            .err()
            .unwrap_or_else(|| panic!("{name}: the local validation accepted it"));
        let found: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect();
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{name}: expected a problem like `{expected}`, got {found:#?}"
        );
        // One problem, one finding: a broken state does not make transitions to it wrong.
        assert_eq!(found.len(), 1, "{name}: {found:#?}");
        if let Some(validator) = &validator {
            let file = dir.path().join(format!("{name}.json"));
            std::fs::write(&file, definition.to_string()).unwrap();
            let out = std::process::Command::new(validator)
                .arg("--json-path")
                .arg(&file)
                .output()
                .expect("asl-validator runs");
            assert!(!out.status.success(), "{name}: asl-validator accepted it");
        }
    }
}
