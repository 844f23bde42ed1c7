//! `orchestrator asl test` speed (issue 10): a 20-state definition (Tasks with mocked
//! answers, one retried, a callback, Choice, Wait of an hour, Pass with intrinsics, a
//! Parallel of two branches and a Map over three items) run to its end on the virtual
//! clock, as a test case runs. Prints definitions per second, with and without parsing
//! and validating the definition each time.
//!
//! Run: `cargo bench -p orchestrator-asl --bench mocked`.

use std::time::Instant;

use asl::Machine;
use asl::mock::MockConfig;
use asl::simulate::Clock;
use serde_json::{Value, json};

fn definition() -> Value {
    let lambda = "arn:aws:states:::lambda:invoke";
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Parameters": {"id.$": "$.id", "lines.$": "$.lines", "label.$": "States.Format('order-{}', $.id)"}, "Next": "Price"},
            "Price": {"Type": "Task", "Resource": lambda, "Parameters": {"FunctionName": "price", "Payload.$": "$"},
                      "ResultSelector": {"total.$": "$.Payload.total"}, "ResultPath": "$.price", "Next": "Expensive?"},
            "Expensive?": {"Type": "Choice", "Choices": [
                {"Variable": "$.price.total", "NumericGreaterThan": 100, "Next": "Approve"}], "Default": "Reserve"},
            "Approve": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                        "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/approvals", "MessageBody": {"token.$": "$$.Task.Token"}},
                        "ResultPath": "$.approval", "Next": "Reserve"},
            "Reserve": {"Type": "Task", "Resource": lambda, "Parameters": {"FunctionName": "reserve"},
                        "Retry": [{"ErrorEquals": ["Stock.Busy"], "IntervalSeconds": 30, "MaxAttempts": 2}],
                        "ResultPath": "$.reservation", "Next": "Cool"},
            "Cool": {"Type": "Wait", "Seconds": 3600, "Next": "Both"},
            "Both": {"Type": "Parallel", "ResultPath": "$.both", "Next": "Lines", "Branches": [
                {"StartAt": "Invoice", "States": {
                    "Invoice": {"Type": "Task", "Resource": lambda, "Parameters": {"FunctionName": "invoice"}, "Next": "Invoiced"},
                    "Invoiced": {"Type": "Pass", "End": true}}},
                {"StartAt": "Notify", "States": {
                    "Notify": {"Type": "Task", "Resource": lambda, "Parameters": {"FunctionName": "notify"}, "Next": "Notified"},
                    "Notified": {"Type": "Pass", "End": true}}}]},
            "Lines": {"Type": "Map", "ItemsPath": "$.lines", "ResultPath": "$.packed", "Next": "Summarize",
                      "ItemProcessor": {"StartAt": "Pack", "States": {
                          "Pack": {"Type": "Task", "Resource": lambda, "Parameters": {"FunctionName": "pack", "Payload.$": "$"}, "Next": "Packed"},
                          "Packed": {"Type": "Pass", "End": true}}}},
            "Summarize": {"Type": "Pass", "Parameters": {"id.$": "$.id", "lines.$": "States.ArrayLength($.packed)"}, "ResultPath": "$.summary", "Next": "Audit"},
            "Audit": {"Type": "Pass", "Result": {"audited": true}, "ResultPath": "$.audit", "Next": "Ship"},
            "Ship": {"Type": "Task", "Resource": lambda, "Parameters": {"FunctionName": "ship"}, "ResultPath": "$.shipment", "Next": "Shipped?"},
            "Shipped?": {"Type": "Choice", "Choices": [{"Variable": "$.shipment.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Failed"},
            "Failed": {"Type": "Fail", "Error": "Order.NotShipped"},
            "Done": {"Type": "Succeed"}
        }
    })
}

fn mocks() -> Value {
    let ok = json!({"0": {"Return": {"StatusCode": 200, "Payload": {"ok": true}}}});
    json!({
        "StateMachines": {"Order": {"TestCases": {"Bench": {
            "Price": "Price", "Approve": "Approved", "Reserve": "BusyOnce", "Invoice": "Ok",
            "Notify": "Ok", "Pack": "Packed", "Ship": "Shipped"}}}},
        "MockedResponses": {
            "Price": {"0": {"Return": {"Payload": {"total": 250}}}},
            "Approved": {"0": {"Return": {"by": "alice"}}},
            "BusyOnce": {"0": {"Throw": {"Error": "Stock.Busy", "Cause": "later"}}, "1": {"Return": {"held": true}}},
            "Ok": ok,
            "Packed": {"0-2": {"Return": {"packed": true}}},
            "Shipped": {"0": {"Return": {"ok": true}}}
        }
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let runs = if quick { 10 } else { 20_000 };
    let definition = definition();
    let config = MockConfig::from_value(&mocks()).expect("mocks");
    let input = json!({"id": "o-1", "lines": [1, 2, 3]});
    let states = definition["States"].as_object().map_or(0, |s| s.len()) + 6; // the states of the Parallel's branches and the Map's processor
    assert_eq!(states, 20);

    let machine = Machine::from_value(&definition).expect("valid");
    let started = Instant::now();
    for _ in 0..runs {
        let mut case = config.case("Order", "Bench").expect("case");
        let outcome = asl::suite::run(&machine, "Order", input.clone(), &mut case, Clock::Virtual);
        assert_eq!(
            outcome.status,
            asl::Status::Succeeded,
            "{:?}",
            outcome.cause
        );
    }
    let run_only = started.elapsed();

    let text = definition.to_string();
    let started = Instant::now();
    for _ in 0..runs {
        let machine = Machine::parse(&text).expect("valid");
        let mut case = config.case("Order", "Bench").expect("case");
        let outcome = asl::suite::run(&machine, "Order", input.clone(), &mut case, Clock::Virtual);
        assert_eq!(outcome.status, asl::Status::Succeeded);
    }
    let with_parse = started.elapsed();
    println!(
        "20-state definition, mocked tasks, virtual clock (one core): {:.0} runs/s ({:.1} µs each); \
         parsing and validating it each time as well: {:.0} runs/s ({:.1} µs each)",
        runs as f64 / run_only.as_secs_f64(),
        run_only.as_secs_f64() * 1e6 / runs as f64,
        runs as f64 / with_parse.as_secs_f64(),
        with_parse.as_secs_f64() * 1e6 / runs as f64,
    );
}
