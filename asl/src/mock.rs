//! Mocked service integrations in Step Functions Local's `MockConfigFile.json` format, so
//! that state machines tested with Step Functions Local run here unchanged:
//!
//! ```json
//! {
//!   "StateMachines": {
//!     "<machine>": {"TestCases": {"<case>": {"<Task state>": "<mocked response>"}}}
//!   },
//!   "MockedResponses": {
//!     "<mocked response>": {
//!       "0": {"Return": {"StatusCode": 200, "Payload": {"ok": true}}},
//!       "1-2": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "down"}}
//!     }
//!   }
//! }
//! ```
//!
//! Every time a Task state is invoked (retries included) it takes the next invocation
//! number, from 0, and the response whose range holds that number answers it: `Return`
//! is the task's result (for a `.waitForTaskToken` task, the SendTaskSuccess output);
//! `Throw` fails it with `Error` and `Cause`. A Task state the test case does not mock
//! goes to the resource handler, when one is set ([`MockedCase::with_handler`]);
//! otherwise, like an invocation no range covers, it fails the execution with
//! `States.Runtime` naming the state (it cannot be caught, so a test cannot pass by
//! accident).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::Failure;
use crate::execution::{Answer, Signal, TaskCall, Tasks};
use crate::simulate::Host;

/// A mock configuration file that is not what Step Functions Local reads: where (a JSON
/// pointer into the file) and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ConfigError {
    pub at: String,
    pub message: String,
}

fn error(at: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        at: if at.is_empty() {
            "/".to_owned()
        } else {
            at.to_owned()
        },
        message: message.into(),
    }
}

/// `at` extended by one JSON pointer token (`~` and `/` escaped).
fn pointer(at: &str, token: &str) -> String {
    format!("{at}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// What a mocked task does on one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Return(Value),
    Throw(Failure),
}

/// A response for the invocations `from..=to`.
#[derive(Debug, Clone, PartialEq)]
struct Ranged {
    from: usize,
    to: usize,
    response: Response,
}

/// A parsed mock configuration.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// Machine, then test case, then state: the name of its mocked response.
    machines: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    responses: BTreeMap<String, Vec<Ranged>>,
}

fn object<'v>(
    value: &'v Value,
    at: &str,
) -> Result<&'v serde_json::Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| error(at, "must be an object"))
}

impl MockConfig {
    pub fn parse(text: &str) -> Result<MockConfig, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            error(
                &format!("line {}, column {}", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            )
        })?;
        MockConfig::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<MockConfig, ConfigError> {
        let root = object(value, "")?;
        for key in root.keys() {
            if key != "StateMachines" && key != "MockedResponses" {
                return Err(error(
                    &pointer("", key),
                    "unknown key (expected StateMachines and MockedResponses)",
                ));
            }
        }
        let mut config = MockConfig::default();
        let responses = root.get("MockedResponses").unwrap_or(&Value::Null);
        if !responses.is_null() {
            for (name, ranges) in object(responses, "/MockedResponses")? {
                let at = pointer("/MockedResponses", name);
                config
                    .responses
                    .insert(name.clone(), parse_ranges(ranges, &at)?);
            }
        }
        let machines = root
            .get("StateMachines")
            .ok_or_else(|| error("", "StateMachines is missing"))?;
        for (machine, spec) in object(machines, "/StateMachines")? {
            let at = pointer("/StateMachines", machine);
            let spec = object(spec, &at)?;
            let at = pointer(&at, "TestCases");
            let cases = spec
                .get("TestCases")
                .ok_or_else(|| error(&at, "TestCases is missing"))?;
            let mut parsed = BTreeMap::new();
            for (case, states) in object(cases, &at)? {
                let at = pointer(&at, case);
                let mut mocked = BTreeMap::new();
                for (state, response) in object(states, &at)? {
                    let at = pointer(&at, state);
                    let name = response
                        .as_str()
                        .ok_or_else(|| error(&at, "must name a mocked response"))?;
                    if !config.responses.contains_key(name) {
                        return Err(error(
                            &at,
                            format!("there is no mocked response `{name}` in MockedResponses"),
                        ));
                    }
                    mocked.insert(state.clone(), name.to_owned());
                }
                parsed.insert(case.clone(), mocked);
            }
            config.machines.insert(machine.clone(), parsed);
        }
        Ok(config)
    }

    /// The state machines the configuration has test cases for, in name order.
    pub fn machines(&self) -> impl Iterator<Item = &str> {
        self.machines.keys().map(String::as_str)
    }

    /// The test cases of `machine`, in name order.
    pub fn cases(&self, machine: &str) -> Vec<&str> {
        self.machines
            .get(machine)
            .map(|cases| cases.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The mocks of one test case, ready to answer an execution's tasks.
    pub fn case(&self, machine: &str, case: &str) -> Result<MockedCase, ConfigError> {
        let cases = self.machines.get(machine).ok_or_else(|| {
            error(
                "/StateMachines",
                format!("has no state machine `{machine}`"),
            )
        })?;
        let states = cases.get(case).ok_or_else(|| {
            error(
                &pointer(&pointer("/StateMachines", machine), "TestCases"),
                format!("has no test case `{case}`"),
            )
        })?;
        Ok(MockedCase {
            case: case.to_owned(),
            states: states
                .iter()
                .map(|(state, name)| {
                    let ranges = self.responses.get(name).cloned().unwrap_or_default();
                    (state.clone(), (name.clone(), ranges))
                })
                .collect(),
            invocations: HashMap::new(),
            pending: Vec::new(),
            handler: None,
        })
    }
}

/// `{"0": {...}, "1-2": {...}}`: each key an invocation or an inclusive range of them.
fn parse_ranges(value: &Value, at: &str) -> Result<Vec<Ranged>, ConfigError> {
    let mut ranges = Vec::new();
    for (key, response) in object(value, at)? {
        let at = pointer(at, key);
        let number = |text: &str| {
            text.trim().parse::<usize>().map_err(|_| {
                error(
                    &at,
                    "the key must be an invocation number (\"0\") or a range (\"1-2\")",
                )
            })
        };
        let (from, to) = match key.split_once('-') {
            Some((from, to)) => (number(from)?, number(to)?),
            None => {
                let n = number(key)?;
                (n, n)
            }
        };
        if from > to {
            return Err(error(&at, "the range ends before it starts"));
        }
        if let Some(other) = ranges
            .iter()
            .find(|r: &&Ranged| r.from <= to && from <= r.to)
        {
            return Err(error(
                &at,
                format!(
                    "overlaps the range {}-{} of the same response",
                    other.from, other.to
                ),
            ));
        }
        ranges.push(Ranged {
            from,
            to,
            response: parse_response(response, &at)?,
        });
    }
    ranges.sort_by_key(|r| r.from);
    Ok(ranges)
}

fn parse_response(value: &Value, at: &str) -> Result<Response, ConfigError> {
    let fields = object(value, at)?;
    match (fields.get("Return"), fields.get("Throw")) {
        (Some(result), None) if fields.len() == 1 => Ok(Response::Return(result.clone())),
        (None, Some(throw)) if fields.len() == 1 => {
            let at = pointer(at, "Throw");
            let throw = object(throw, &at)?;
            let text = |key: &str| -> Result<String, ConfigError> {
                match throw.get(key) {
                    None => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(_) => Err(error(&pointer(&at, key), "must be a string")),
                }
            };
            let name = text("Error")?;
            if name.is_empty() {
                return Err(error(&pointer(&at, "Error"), "is missing"));
            }
            Ok(Response::Throw(Failure::new(name, text("Cause")?)))
        }
        _ => Err(error(
            at,
            "must have exactly one of Return (the task's result) and Throw ({\"Error\", \"Cause\"})",
        )),
    }
}

/// Answers the Task states a test case does not mock: `None` when it does not handle the
/// call's resource either.
pub type Handler = Box<dyn FnMut(&TaskCall<'_>) -> Option<Response> + Send>;

/// One test case's mocks: answers each Task state from its mocked response, counting
/// invocations per state.
pub struct MockedCase {
    case: String,
    /// State: the response's name and its ranges.
    states: HashMap<String, (String, Vec<Ranged>)>,
    invocations: HashMap<String, usize>,
    pending: Vec<Signal>,
    handler: Option<Handler>,
}

impl std::fmt::Debug for MockedCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockedCase")
            .field("case", &self.case)
            .field("states", &self.states)
            .field("handler", &self.handler.is_some())
            .finish()
    }
}

impl MockedCase {
    /// A case that mocks nothing (every Task state fails, naming itself).
    pub fn empty(case: &str) -> MockedCase {
        MockedCase {
            case: case.to_owned(),
            states: HashMap::new(),
            invocations: HashMap::new(),
            pending: Vec::new(),
            handler: None,
        }
    }

    /// Sends the Task states the case does not mock to `handler`.
    pub fn with_handler(mut self, handler: Handler) -> MockedCase {
        self.handler = Some(handler);
        self
    }

    fn response(&mut self, call: &TaskCall<'_>) -> Result<Response, Failure> {
        let state = call.state;
        let Some((name, ranges)) = self.states.get(state) else {
            if let Some(response) = self.handler.as_mut().and_then(|h| h(call)) {
                return Ok(response);
            }
            return Err(Failure::runtime(format!(
                "the Task state `{state}` has no mocked response in test case `{}`, and no \
                 resource handler takes `{}`",
                self.case, call.resource
            )));
        };
        let count = self.invocations.entry(state.to_owned()).or_default();
        let n = *count;
        *count += 1;
        ranges
            .iter()
            .find(|r| r.from <= n && n <= r.to)
            .map(|r| r.response.clone())
            .ok_or_else(|| {
                Failure::runtime(format!(
                    "the mocked response `{name}` has no answer for invocation {n} of the Task state `{state}`"
                ))
            })
    }
}

impl Tasks for MockedCase {
    fn invoke(&mut self, call: &TaskCall<'_>) -> Answer {
        let response = match self.response(call) {
            Ok(response) => response,
            Err(failure) => return Answer::Failed(failure),
        };
        if call.resource.ends_with(".waitForTaskToken") {
            let token = call.token.to_owned();
            self.pending.push(match response {
                Response::Return(output) => Signal::Success { token, output },
                Response::Throw(failure) => Signal::Failure { token, failure },
            });
            return Answer::Callback;
        }
        match response {
            Response::Return(result) => Answer::Done(result),
            Response::Throw(failure) => Answer::Failed(failure),
        }
    }
}

impl Host for MockedCase {
    fn answers(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Value {
        json!({
            "StateMachines": {"Order": {"TestCases": {
                "HappyPath": {"Charge": "ChargeOk"},
                "Flaky": {"Charge": "FailTwiceThenOk"}
            }}},
            "MockedResponses": {
                "ChargeOk": {"0": {"Return": {"charged": true}}},
                "FailTwiceThenOk": {
                    "0-1": {"Throw": {"Error": "Payments.Busy", "Cause": "try later"}},
                    "2": {"Return": {"charged": true}}
                }
            }
        })
    }

    fn call<'a>(state: &'a str, resource: &'a str, parameters: &'a Value) -> TaskCall<'a> {
        TaskCall {
            execution_arn: "arn:aws:states:us-east-1:123456789012:execution:Order:x",
            state,
            resource,
            parameters,
            token: "t",
            retry_count: 0,
        }
    }

    #[test]
    fn invocations_take_the_response_of_their_range_in_turn() {
        let config = MockConfig::from_value(&config()).unwrap();
        assert_eq!(config.machines().collect::<Vec<_>>(), ["Order"]);
        assert_eq!(config.cases("Order"), ["Flaky", "HappyPath"]);
        let mut case = config.case("Order", "Flaky").unwrap();
        let p = json!({});
        let lambda = "arn:aws:states:::lambda:invoke";
        let busy = Answer::Failed(Failure::new("Payments.Busy", "try later"));
        assert_eq!(case.invoke(&call("Charge", lambda, &p)), busy);
        assert_eq!(case.invoke(&call("Charge", lambda, &p)), busy);
        assert_eq!(
            case.invoke(&call("Charge", lambda, &p)),
            Answer::Done(json!({"charged": true}))
        );
        match case.invoke(&call("Charge", lambda, &p)) {
            Answer::Failed(f) => {
                assert_eq!(f.error, "States.Runtime");
                assert!(f.cause.contains("invocation 3"), "{}", f.cause);
            }
            other => panic!("{other:?}"),
        }
        match case.invoke(&call("Ship", lambda, &p)) {
            Answer::Failed(f) => assert!(
                f.cause
                    .contains("`Ship` has no mocked response in test case `Flaky`"),
                "{}",
                f.cause
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unmocked_state_goes_to_the_resource_handler() {
        let config = MockConfig::from_value(&config()).unwrap();
        let mut case = config
            .case("Order", "HappyPath")
            .unwrap()
            .with_handler(Box::new(|call: &TaskCall<'_>| {
                call.resource
                    .starts_with("arn:aws:states:::dynamodb:")
                    .then(|| Response::Return(json!({"from": call.state})))
            }));
        let p = json!({});
        assert_eq!(
            case.invoke(&call("Save", "arn:aws:states:::dynamodb:putItem", &p)),
            Answer::Done(json!({"from": "Save"}))
        );
        // Mocked states still answer from their mocks; other resources still fail.
        assert_eq!(
            case.invoke(&call("Charge", "arn:aws:states:::lambda:invoke", &p)),
            Answer::Done(json!({"charged": true}))
        );
        assert!(matches!(
            case.invoke(&call("Ship", "arn:aws:states:::lambda:invoke", &p)),
            Answer::Failed(f) if f.error == "States.Runtime"
        ));
    }

    #[test]
    fn a_callback_task_is_answered_through_send_task_success() {
        let config = MockConfig::from_value(&config()).unwrap();
        let mut case = config.case("Order", "HappyPath").unwrap();
        let p = json!({});
        let sqs = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
        assert_eq!(case.invoke(&call("Charge", sqs, &p)), Answer::Callback);
        match case.answers().as_slice() {
            [Signal::Success { token, output }] => {
                assert_eq!(token, "t");
                assert_eq!(output, &json!({"charged": true}));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mistakes_are_reported_with_a_pointer_into_the_file() {
        let cases = [
            (
                json!({"MockedResponses": {}}),
                "/",
                "StateMachines is missing",
            ),
            (
                json!({"StateMachines": {"M": {"TestCases": {"c": {"S": "Nope"}}}}, "MockedResponses": {}}),
                "/StateMachines/M/TestCases/c/S",
                "no mocked response `Nope`",
            ),
            (
                json!({"StateMachines": {}, "MockedResponses": {"R": {"first": {"Return": 1}}}}),
                "/MockedResponses/R/first",
                "invocation number",
            ),
            (
                json!({"StateMachines": {}, "MockedResponses": {"R": {"0-2": {"Return": 1}, "2": {"Return": 2}}}}),
                "/MockedResponses/R/2",
                "overlaps",
            ),
            (
                json!({"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1, "Throw": {}}}}}),
                "/MockedResponses/R/0",
                "exactly one of Return",
            ),
            (
                json!({"StateMachines": {}, "MockedResponses": {"R": {"0": {"Throw": {"Cause": "c"}}}}}),
                "/MockedResponses/R/0/Throw/Error",
                "is missing",
            ),
            (
                json!({"StateMachines": {"a/b": {"TestCases": {"c": []}}}, "MockedResponses": {}}),
                "/StateMachines/a~1b/TestCases/c",
                "must be an object",
            ),
        ];
        for (value, at, message) in cases {
            let e = MockConfig::from_value(&value).unwrap_err();
            assert_eq!(e.at, at, "{e}");
            assert!(e.message.contains(message), "{e}");
        }
        let config = MockConfig::from_value(&config()).unwrap();
        assert!(
            config
                .case("Order", "Nope")
                .unwrap_err()
                .to_string()
                .contains("no test case `Nope`")
        );
        assert!(
            config
                .case("Other", "HappyPath")
                .unwrap_err()
                .to_string()
                .contains("no state machine `Other`")
        );
    }
}
