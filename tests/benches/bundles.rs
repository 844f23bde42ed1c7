//! Bundle orchestration speed (issue 6), printed as figures: a 50-component bundle (ten
//! layers of five, each component depending on two of the layer before, so the schedule
//! mixes parallel blocks, sequences and cuts) compiled to ASL and run by the local ASL
//! runner with instant task answers, in memory (the interpreter's own cost), then end to
//! end in local mode with durable persistence: requests go through the SQLite queue, the
//! worker, the fulfillment engine's records, the request store and the local workflow
//! engine (every transition stored), with no-op actions.
//!
//! Run: `cargo bench -p orchestrator-tests --bench bundles` (`BENCH_AT_ONCE=100` for more
//! requests at once than the default 20).

use std::time::{Duration, Instant};

use asl::execution::{Answer, Signal, TaskCall, Tasks};
use orchestrator_tests::harness::Local;
use orchestrator_tests::{ITEM, bundle_of_indexed, validate};
use serde_json::{Value, json};
use shared::access::Principal;
use shared::ports::Workflows as _;
use shared::requests::model::{RequestId, RequestStatus};

struct Instant0 {
    pending: Vec<Signal>,
    tasks: usize,
}

impl Tasks for Instant0 {
    fn invoke(&mut self, call: &TaskCall<'_>) -> Answer {
        self.tasks += 1;
        let body = &call.parameters["MessageBody"];
        let output = match body["task"].as_str() {
            Some("provision") => json!({"outputs": {"endpoint": body["component"]}}),
            _ => json!({}),
        };
        self.pending.push(Signal::Success {
            token: call.token.to_owned(),
            output,
        });
        Answer::Callback
    }
}

impl asl::simulate::Host for Instant0 {
    fn answers(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.pending)
    }
}

fn main() {
    // `cargo test --benches` runs this too; one quick round is enough there.
    let quick = std::env::args().any(|a| a == "--test");
    let mut rng = fastrand::Rng::with_seed(50);
    let deps: Vec<Vec<usize>> = (0..50)
        .map(|i| {
            if i < 5 {
                return Vec::new();
            }
            let layer = i / 5 - 1;
            let mut d: Vec<usize> = (0..2).map(|_| layer * 5 + rng.usize(0..5)).collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    let bundle = bundle_of_indexed("shape", &deps, "rollback");
    let report = validate(&[("items/postgres.yaml", ITEM), ("bundles/b.yaml", &bundle)]);
    assert!(report.is_valid(), "{:#?}", report.findings);
    let started = Instant::now();
    let definition: Value =
        shared::bundle::asl::compile_bundle(&report.catalog, "shape").expect("compiles");
    let compile = started.elapsed();
    let machine = asl::Machine::from_value(&definition).expect("valid");

    let runs = if quick { 2 } else { 200 };
    let mut tasks = 0;
    let started = Instant::now();
    for r in 0..runs {
        let mut host = Instant0 {
            pending: Vec::new(),
            tasks: 0,
        };
        let (execution, _history) = asl::simulate::run(
            &machine,
            &format!("arn:aws:states:local:0:execution:shape:{r}"),
            "arn:aws:states:local:0:stateMachine:shape",
            json!({"requestId": format!("r{r}")}),
            time::OffsetDateTime::now_utc(),
            &mut host,
        );
        assert_eq!(execution.status, asl::Status::Succeeded);
        tasks += host.tasks;
    }
    let elapsed = started.elapsed();
    println!(
        "compile a 50-component bundle: {:.2} ms",
        compile.as_secs_f64() * 1e3
    );
    println!(
        "run it in memory, instant answers: {:.2} ms per execution, {:.0} tasks/s ({} tasks per execution)",
        elapsed.as_secs_f64() * 1e3 / runs as f64,
        tasks as f64 / elapsed.as_secs_f64(),
        tasks / runs
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(durable(&bundle, quick));
    if !quick {
        runtime.block_on(on_moto(&definition));
    }
}

/// The same definition on moto's Step Functions, with a worker that answers every task at
/// once (for comparison: moto runs each execution in a thread of its own and polls).
async fn on_moto(definition: &Value) {
    let Some(moto) = orchestrator_tests::moto::moto().await else {
        println!("moto: not installed (scripts/test installs it); comparison skipped");
        return;
    };
    let tag = std::process::id();
    let url = moto.create_queue(&format!("bench-{tag}")).await;
    let text = definition
        .to_string()
        .replace(shared::bundle::asl::QUEUE_PLACEHOLDER, &url);
    let machine = moto
        .create_machine(&format!("bench-{tag}"), &text)
        .await
        .expect("moto takes the definition");
    let executions = 3;
    let started = Instant::now();
    let mut arns = Vec::new();
    for i in 0..executions {
        let execution = moto
            .call(
                "AWSStepFunctions.StartExecution",
                json!({
                    "stateMachineArn": machine,
                    "name": format!("e{i}"),
                    "input": json!({"requestId": format!("r{i}")}).to_string(),
                }),
            )
            .await
            .expect("execution");
        arns.push(execution["executionArn"].clone());
    }
    let mut tasks = 0;
    let mut running = arns.clone();
    while !running.is_empty() {
        let received = moto
            .call(
                "AmazonSQS.ReceiveMessage",
                json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
            )
            .await
            .expect("receive");
        let messages = received["Messages"].as_array().cloned().unwrap_or_default();
        for message in &messages {
            let body: Value =
                serde_json::from_str(message["Body"].as_str().unwrap_or("{}")).expect("json");
            let output = match body["task"].as_str() {
                Some("provision") => json!({"outputs": {"endpoint": body["component"]}}),
                _ => json!({}),
            };
            moto.call(
                "AWSStepFunctions.SendTaskSuccess",
                json!({"taskToken": body["taskToken"], "output": output.to_string()}),
            )
            .await
            .expect("task success");
            moto.call(
                "AmazonSQS.DeleteMessage",
                json!({"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}),
            )
            .await
            .expect("delete");
            tasks += 1;
        }
        if messages.is_empty() {
            let mut still = Vec::new();
            for arn in running {
                let described = moto
                    .call(
                        "AWSStepFunctions.DescribeExecution",
                        json!({"executionArn": arn}),
                    )
                    .await
                    .expect("describe");
                match described["status"].as_str() {
                    Some("RUNNING") => still.push(arn),
                    Some("SUCCEEDED") => {}
                    other => panic!("an execution on moto ended {other:?}: {described}"),
                }
            }
            running = still;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "moto, {executions} executions at once, immediate worker: {tasks} tasks in {:.0} ms = {:.1} tasks/s, {:.0} ms per execution",
        elapsed.as_secs_f64() * 1e3,
        tasks as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / f64::from(executions)
    );
}

/// Waits until every one of `ids` is finished (the worker's own loop runs them); returns
/// the tasks their executions scheduled, counted from their histories.
async fn drain(local: &Local, ids: &[RequestId]) -> usize {
    // Looks at one unfinished request at a time, so that waiting adds little load.
    let mut pending = ids.iter();
    let mut next = pending.next();
    while let Some(id) = next {
        let request = local.requests.store.get(id).await.expect("read");
        if request.is_some_and(|r| r.status.is_terminal()) {
            next = pending.next();
        } else {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let mut tasks = 0;
    for id in ids {
        let arn = local
            .workflows
            .execution_arn("bundle-shape", &id.to_string());
        let history = local.workflows.history(&arn).await.expect("history");
        tasks += history
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .count();
    }
    tasks
}

async fn submit(local: &Local, n: usize) -> Vec<RequestId> {
    let who = Principal {
        sub: "alice".into(),
        email: None,
        groups: vec![],
    };
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let fields = json!({"app": format!("app{i}")});
        let (request, _) = local
            .requests
            .submit(
                &who,
                "shape",
                fields.as_object().cloned().unwrap_or_default(),
                None,
            )
            .await
            .expect("submitted");
        ids.push(request.id);
    }
    ids
}

async fn durable(bundle: &str, quick: bool) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let local = orchestrator_tests::harness::local_with_noop_actions(
        dir.path(),
        &[
            ("items/postgres.yaml", ITEM.to_owned()),
            ("bundles/shape.yaml", bundle.to_owned()),
        ],
    );
    let definition =
        shared::bundle::asl::compile_bundle(&local.snapshot.catalog, "shape").expect("compiles");
    local
        .workflows
        .deploy("bundle-shape", &definition)
        .await
        .expect("deployed");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let timers = tokio::spawn(local.workflows.clone().run_timers(stopped.clone()));
    let worker = tokio::spawn(local.worker.clone().run(stopped));

    // One request alone: its latency from submission to completion.
    let started = Instant::now();
    let ids = submit(&local, 1).await;
    let tasks = drain(&local, &ids).await;
    let latency = started.elapsed();
    check(&local, &ids).await;
    println!(
        "local mode, durable, one request alone: {:.0} ms from submission to completion ({tasks} tasks, {:.0} tasks/s)",
        latency.as_secs_f64() * 1e3,
        tasks as f64 / latency.as_secs_f64()
    );

    // Many at once: throughput.
    let n = if quick {
        2
    } else {
        std::env::var("BENCH_AT_ONCE")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20)
    };
    let started = Instant::now();
    let ids = submit(&local, n).await;
    let tasks = drain(&local, &ids).await;
    let elapsed = started.elapsed();
    check(&local, &ids).await;
    println!(
        "local mode, durable, {n} requests at once: {tasks} tasks in {:.0} ms = {:.0} tasks/s, {:.0} ms per request",
        elapsed.as_secs_f64() * 1e3,
        tasks as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / n as f64
    );
    let _ = stop.send(true);
    let _ = timers.await;
    let _ = worker.await;
}

async fn check(local: &Local, ids: &[RequestId]) {
    for id in ids {
        let request = local
            .requests
            .store
            .get(id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(
            request.status,
            RequestStatus::Completed,
            "{:?}",
            request.reason
        );
    }
}
