//! Bundle orchestration speed (issue 6), printed as figures: a 50-component bundle (ten
//! layers of five, each component depending on two of the layer before, so the schedule
//! mixes parallel blocks, sequences and cuts) compiled to ASL and run by the local ASL
//! runner with instant task answers, in memory (the interpreter's own cost; durable
//! persistence comes with the local workflow engine).
//!
//! Run: `cargo bench -p orchestrator-tests --bench bundles`.

use std::time::Instant;

use asl::execution::{Answer, Signal, TaskCall, Tasks};
use orchestrator_tests::{ITEM, bundle_of_indexed, validate};
use serde_json::{Value, json};

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

    let runs = 200;
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
}
