//! Differential conformance: the ASL corpus (asl/tests/corpus) and the example catalog's
//! generated state machines run on the local runner and on moto's Step Functions with the
//! same inputs and the same task answers; final status, output and error must agree.
//! Where moto departs from AWS's documentation (`motoDiffers` in a case), the local runner
//! follows AWS and moto's answer is only reported.

#[path = "../asl/tests/script/mod.rs"]
mod script;

use std::collections::HashMap;
use std::time::Duration;

use asl::execution::{Answer, Signal, TaskCall, Tasks};
use asl::mock::MockConfig;
use asl::simulate::Host;
use orchestrator_tests::moto::{Moto, moto};
use serde_json::{Value, json};

/// Runs a case on moto. The worker answers each task as the case's mock configuration
/// says (Step Functions Local's format, through `asl::mock`), or from its script where
/// the format cannot express an answer.
async fn run_on_moto(moto: &Moto, case: &script::Case, tag: &str) -> script::Outcome {
    let mut mocked = case.mock_config().map(|config| {
        MockConfig::from_value(&config)
            .and_then(|c| c.case(&case.name, "corpus"))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name))
    });
    let queue_url = moto.create_queue(&format!("q-{tag}")).await;
    let machine = moto
        .create_machine(&format!("m-{tag}"), &case.definition_text(&queue_url))
        .await
        .unwrap_or_else(|e| panic!("{}: moto refused the definition: {e}", case.name));
    let execution = moto
        .call(
            "AWSStepFunctions.StartExecution",
            json!({
                "stateMachineArn": machine,
                "name": format!("e-{tag}"),
                "input": case.input.to_string(),
            }),
        )
        .await
        .expect("execution");
    let arn = execution["executionArn"].clone();
    let mut calls = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let described = moto
            .call(
                "AWSStepFunctions.DescribeExecution",
                json!({"executionArn": arn}),
            )
            .await
            .expect("describe");
        if described["status"] != "RUNNING" || tokio::time::Instant::now() > deadline {
            // moto gives a bare string result without JSON quotes.
            let parse = |v: &Value| {
                v.as_str().map(|s| {
                    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
                })
            };
            return script::Outcome {
                status: described["status"].as_str().unwrap_or("?").to_owned(),
                output: parse(&described["output"]),
                error: described["error"].as_str().map(str::to_owned),
                cause: described["cause"].as_str().map(str::to_owned),
                history: Vec::new(),
            };
        }
        let received = moto
            .call(
                "AmazonSQS.ReceiveMessage",
                json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10}),
            )
            .await
            .expect("receive");
        for message in received["Messages"].as_array().into_iter().flatten() {
            let body: Value =
                serde_json::from_str(message["Body"].as_str().unwrap_or("{}")).expect("json body");
            moto.call(
                "AmazonSQS.DeleteMessage",
                json!({"QueueUrl": queue_url, "ReceiptHandle": message["ReceiptHandle"]}),
            )
            .await
            .expect("delete");
            let token = body["token"]
                .as_str()
                .or(body["taskToken"].as_str())
                .unwrap_or_default();
            let answer = match &mut mocked {
                Some(mocked) => {
                    let state = body["state"].as_str().unwrap_or_default();
                    let call = TaskCall {
                        execution_arn: "",
                        state,
                        resource: "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                        parameters: &body,
                        token,
                        retry_count: 0,
                    };
                    assert_eq!(mocked.invoke(&call), Answer::Callback);
                    mocked.answers().pop()
                }
                None => script::respond(case, &body, &mut calls, token),
            };
            match answer {
                Some(Signal::Success { token, output }) => {
                    let _ = moto
                        .call(
                            "AWSStepFunctions.SendTaskSuccess",
                            json!({"taskToken": token, "output": output.to_string()}),
                        )
                        .await;
                }
                Some(Signal::Failure { token, failure }) => {
                    let _ = moto
                        .call(
                            "AWSStepFunctions.SendTaskFailure",
                            json!({"taskToken": token, "error": failure.error, "cause": failure.cause}),
                        )
                        .await;
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example catalog's state machines, each run to success and, for bundles, with the
/// last component failing (which rolls back or stops).
fn generated_cases() -> Vec<script::Case> {
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../statemachines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("statemachines/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut definitions: Vec<(String, Value)> = files
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .replace(".asl.json", "");
            let text = std::fs::read_to_string(path).expect("read");
            (name, serde_json::from_str(&text).expect("json"))
        })
        .collect();
    // A bundle that pauses (no example does): a parallel pair, then one more.
    let report = orchestrator_tests::validate(&[
        (
            "items/postgres.yaml",
            &orchestrator_tests::item_with_rollback(),
        ),
        (
            "bundles/b.yaml",
            &orchestrator_tests::bundle_of(
                "shape",
                &[("a", &[]), ("b", &[]), ("c", &["a", "b"])],
                "pause",
            ),
        ),
    ]);
    assert!(report.is_valid(), "{:#?}", report.findings);
    definitions.push((
        "bundle-pausing".to_owned(),
        shared::bundle::asl::compile_bundle(&report.catalog, "shape").expect("compiles"),
    ));
    let mut cases = Vec::new();
    for (name, definition) in definitions {
        let mut components = Vec::new();
        collect_components(&definition, &mut components);
        let mut answers = HashMap::new();
        let mut outputs = serde_json::Map::new();
        for c in &components {
            answers.insert(
                format!("provision:{c}"),
                vec![json!({"Return": {"outputs": {"id": c}}})],
            );
            answers.insert(format!("undo:{c}"), vec![json!({"Return": {}})]);
            outputs.insert(c.clone(), json!({"outputs": {"id": c}}));
        }
        answers.insert(
            "approve".into(),
            vec![json!({"Return": {"approvedBy": ["bob"]}})],
        );
        answers.insert("complete".into(), vec![json!({"Return": {"done": true}})]);
        answers.insert("fail".into(), vec![json!({"Return": {}})]);
        let input = json!({"requestId": "0190f0f0-0000-7000-8000-000000000000"});
        cases.push(script::Case {
            name: format!("{name} succeeds"),
            definition: definition.clone(),
            input: input.clone(),
            answers: answers.clone(),
            expect: json!({"status": "SUCCEEDED", "output": {"components": outputs, "outputs": {"done": true}}}),
            moto_differs: None,
        });
        // A scheduled request whose time has come: it waits, then runs (one machine
        // is enough: every machine has the same two states).
        if name == "item-sqs-queue" {
            let mut scheduled = input.clone();
            scheduled["notBefore"] = json!("2026-01-01T00:00:00Z");
            cases.push(script::Case {
                name: format!("{name} scheduled"),
                definition: definition.clone(),
                input: scheduled,
                answers: answers.clone(),
                expect: json!({"status": "SUCCEEDED", "output": {"components": outputs.clone(), "outputs": {"done": true}}}),
                moto_differs: None,
            });
        }
        // An approval stage denied: the request is rejected before anything runs.
        if definition["States"].get("Approval 1").is_some() {
            let mut answers = answers.clone();
            answers.insert(
                "approve".into(),
                vec![
                    json!({"Throw": {"Error": "Orchestrator.Rejected", "Cause": "bob denied it"}}),
                ],
            );
            cases.push(script::Case {
                name: format!("{name} is denied approval"),
                definition: definition.clone(),
                input: input.clone(),
                answers,
                expect: json!({"status": "FAILED", "error": "Orchestrator.Rejected", "cause": "bob denied it"}),
                moto_differs: None,
            });
        }
        // A component of a parallel branch failing: its siblings settle, then the
        // execution fails with its error.
        let mut branched = Vec::new();
        collect_branched(&definition, false, &mut branched);
        if let Some(first) = branched.first() {
            let mut answers = answers.clone();
            answers.insert(
                format!("provision:{first}"),
                vec![json!({"Throw": {"Error": "Orchestrator.ComponentFailed", "Cause": "a branch broke"}})],
            );
            cases.push(script::Case {
                name: format!("{name} fails in a branch at {first}"),
                definition: definition.clone(),
                input: input.clone(),
                answers,
                expect: json!({"status": "FAILED", "error": "Orchestrator.ComponentFailed", "cause": "a branch broke"}),
                moto_differs: None,
            });
        }
        if let Some(last) = components.last().filter(|_| name.starts_with("bundle-")) {
            answers.insert(
                format!("provision:{last}"),
                vec![json!({"Throw": {"Error": "Orchestrator.ComponentFailed", "Cause": "it broke"}})],
            );
            cases.push(script::Case {
                name: format!("{name} fails at {last}"),
                definition,
                input,
                answers,
                expect: json!({"status": "FAILED", "error": "Orchestrator.ComponentFailed", "cause": "it broke"}),
                moto_differs: None,
            });
        }
    }
    assert!(
        cases.iter().any(|c| c.name.ends_with(" scheduled")),
        "a scheduled case"
    );
    cases
}

/// Component ids of the `Provision <id>` states, in the order the definition lists them.
fn collect_components(machine: &Value, out: &mut Vec<String>) {
    for (name, state) in machine["States"].as_object().into_iter().flatten() {
        if let Some(id) = name.strip_prefix("Provision ") {
            out.push(id.to_owned());
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            collect_components(branch, out);
        }
    }
}

/// Component ids of the `Provision <id>` states inside a `Parallel` state's branches.
fn collect_branched(machine: &Value, inside: bool, out: &mut Vec<String>) {
    for (name, state) in machine["States"].as_object().into_iter().flatten() {
        if let Some(id) = name.strip_prefix("Provision ").filter(|_| inside) {
            out.push(id.to_owned());
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            collect_branched(branch, true, out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_corpus_ends_the_same_on_the_local_runner_and_on_moto() {
    let Some(moto) = moto().await else {
        return;
    };
    let mut cases = script::load_corpus();
    cases.extend(generated_cases());
    let mut runs = tokio::task::JoinSet::new();
    for (i, case) in cases.into_iter().enumerate() {
        runs.spawn(async move {
            let on_moto = run_on_moto(moto, &case, &format!("c{i}")).await;
            let local = script::run_local(&case);
            (case, local, on_moto)
        });
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    while let Some(joined) = runs.join_next().await {
        let (case, local, on_moto) = joined.expect("case ran");
        if let Err(e) = case.check(&local, true) {
            failures.push(format!("{} (local): {e}", case.name));
        }
        match &case.moto_differs {
            Some(why) => eprintln!(
                "{}: moto differs from AWS ({why}); moto said {} {:?} {:?}",
                case.name, on_moto.status, on_moto.error, on_moto.output
            ),
            None => {
                compared += 1;
                if let Err(e) = case.check(&on_moto, false) {
                    failures.push(format!("{} (moto): {e}", case.name));
                }
            }
        }
    }
    assert!(compared >= 30, "only {compared} cases compared with moto");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
