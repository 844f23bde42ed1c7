//! The corpus format and a host that answers tasks from a case's script. Each case file
//! holds `definition`, `input`, `answers` (per state name, a list used in turn, the last
//! one repeating: `{"Return": v}`, `{"Throw": {"Error", "Cause"}}`, `{"Echo": true}` for
//! the task's input, `{"Never": true}` for no answer) and `expect` (`status`, and
//! optionally `output`, `error`, `cause`). `motoDiffers` marks a case where moto departs
//! from AWS's documented behaviour.

#![allow(dead_code)]

use std::collections::HashMap;

use asl::execution::{Answer, Signal, TaskCall, Tasks};
use asl::{Failure, Machine};
use serde_json::Value;

pub struct Case {
    pub name: String,
    pub definition: Value,
    pub input: Value,
    pub answers: HashMap<String, Vec<Value>>,
    pub expect: Value,
    pub moto_differs: Option<String>,
}

pub struct Outcome {
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<asl::HistoryEvent>,
}

/// The corpus, whether this module is compiled into the asl crate's tests or another's.
pub fn corpus_dir() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    );
    let own = here.join("tests/corpus");
    if own.is_dir() {
        own
    } else {
        here.join("../asl/tests/corpus")
    }
}

pub fn load_corpus() -> Vec<Case> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Case {
                name: path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .into_owned(),
                definition: v["definition"].clone(),
                input: v["input"].clone(),
                answers: serde_json::from_value(v["answers"].clone()).unwrap_or_default(),
                expect: v["expect"].clone(),
                moto_differs: v["motoDiffers"].as_str().map(str::to_owned),
            }
        })
        .collect()
}

impl Case {
    /// The definition with the queue URL filled in.
    pub fn definition_text(&self, queue_url: &str) -> String {
        serde_json::to_string(&self.definition)
            .expect("json")
            .replace("${QueueUrl}", queue_url)
            .replace("${ActionQueueUrl}", queue_url)
    }

    /// The case's answers as a Step Functions Local mock configuration: machine `name`,
    /// test case `corpus`, one mocked response per state (its last answer repeating).
    /// `None` when an answer echoes the task's input or never comes (the format has no
    /// such response), or the answers are not keyed by state name.
    pub fn mock_config(&self) -> Option<Value> {
        let mut states = serde_json::Map::new();
        let mut responses = serde_json::Map::new();
        for (state, list) in &self.answers {
            if state.contains(':')
                || list
                    .iter()
                    .any(|a| a.get("Echo").is_some() || a.get("Never").is_some())
            {
                return None;
            }
            let name = format!("{}-{state}", self.name);
            let mut ranges = serde_json::Map::new();
            for (i, answer) in list.iter().enumerate() {
                let key = if i + 1 == list.len() {
                    format!("{i}-1000")
                } else {
                    i.to_string()
                };
                ranges.insert(key, answer.clone());
            }
            responses.insert(name.clone(), Value::Object(ranges));
            states.insert(state.clone(), Value::String(name));
        }
        Some(serde_json::json!({
            "StateMachines": {&self.name: {"TestCases": {"corpus": states}}},
            "MockedResponses": responses,
        }))
    }

    /// The scripted answer to the `n`th call (from 0) of a state.
    pub fn answer(&self, state: &str, n: usize) -> Option<&Value> {
        let list = self.answers.get(state)?;
        list.get(n).or(list.last())
    }

    /// Compares an outcome with the expectation; `strict` also compares causes.
    pub fn check(&self, outcome: &Outcome, strict: bool) -> Result<(), String> {
        let e = &self.expect;
        if e["status"] != outcome.status.as_str() {
            return Err(format!(
                "status {} (error {:?}, cause {:?}), expected {}",
                outcome.status, outcome.error, outcome.cause, e["status"]
            ));
        }
        if let Some(output) = e.get("output")
            && Some(output) != outcome.output.as_ref()
        {
            return Err(format!("output {:?}, expected {output}", outcome.output));
        }
        if let Some(error) = e.get("error").and_then(Value::as_str)
            && Some(error) != outcome.error.as_deref()
        {
            return Err(format!("error {:?}, expected {error}", outcome.error));
        }
        if strict
            && let Some(cause) = e.get("cause").and_then(Value::as_str)
            && Some(cause) != outcome.cause.as_deref()
        {
            return Err(format!("cause {:?}, expected {cause}", outcome.cause));
        }
        Ok(())
    }
}

/// What a scripted worker does with a task message: the signal to send, if any.
pub fn respond(
    case: &Case,
    body: &Value,
    calls: &mut HashMap<String, usize>,
    token: &str,
) -> Option<Signal> {
    // Corpus messages name their state; the orchestrator's name a task and component.
    let state = match (
        body["state"].as_str(),
        body["task"].as_str(),
        body["component"].as_str(),
    ) {
        (Some(state), _, _) => state.to_owned(),
        (None, Some(task), Some(component)) => format!("{task}:{component}"),
        (None, Some(task), None) => task.to_owned(),
        _ => String::new(),
    };
    let n = calls.entry(state.clone()).or_default();
    let answer = case.answer(&state, *n).cloned();
    *n += 1;
    let answer = answer.unwrap_or_else(|| panic!("{}: no answer for state {state}", case.name));
    let token = token.to_owned();
    if let Some(v) = answer.get("Return") {
        Some(Signal::Success {
            token,
            output: v.clone(),
        })
    } else if let Some(t) = answer.get("Throw") {
        Some(Signal::Failure {
            token,
            failure: Failure::new(
                t["Error"].as_str().unwrap_or_default(),
                t["Cause"].as_str().unwrap_or_default(),
            ),
        })
    } else if answer.get("Echo").is_some() {
        Some(Signal::Success {
            token,
            output: body["input"].clone(),
        })
    } else {
        None
    }
}

struct Host<'a> {
    case: &'a Case,
    calls: HashMap<String, usize>,
    pending: Vec<Signal>,
}

impl Tasks for Host<'_> {
    fn invoke(&mut self, call: &TaskCall<'_>) -> Answer {
        let body = &call.parameters["MessageBody"];
        if let Some(signal) = respond(self.case, body, &mut self.calls, call.token) {
            self.pending.push(signal);
        }
        Answer::Callback
    }
}

impl asl::simulate::Host for Host<'_> {
    fn answers(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.pending)
    }
}

pub fn run_local(case: &Case) -> Outcome {
    let machine = Machine::parse(&case.definition_text("https://sqs.local/queue"))
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
    let mut host = Host {
        case,
        calls: HashMap::new(),
        pending: Vec::new(),
    };
    let start = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    let (execution, history) = asl::simulate::run(
        &machine,
        &format!(
            "arn:aws:states:local:000000000000:execution:corpus:{}",
            case.name
        ),
        "arn:aws:states:local:000000000000:stateMachine:corpus",
        case.input.clone(),
        start,
        &mut host,
    );
    Outcome {
        status: execution.status.as_str().to_owned(),
        output: execution.output.clone(),
        error: execution.failure.as_ref().map(|f| f.error.clone()),
        cause: execution.failure.as_ref().map(|f| f.cause.clone()),
        history,
    }
}
