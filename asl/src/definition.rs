//! Parsing and validating a state machine definition. Every problem names the state (with
//! the branch it is in) and the field, as asl-validator's rules do: unknown fields, fields
//! that do not belong to the state's type, missing or dangling transitions, unreachable
//! states, bad paths.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::choice::Rule;
use crate::paths;

/// A problem in a definition, located by the state's path (`Together 1/branch 0/Provision`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct Problem {
    pub at: String,
    pub message: String,
}

impl Problem {
    /// Every problem, where and what, in one line (as an engine refuses a definition).
    pub fn describe_all(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A whole definition or one branch of a Parallel / the processor of a Map.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    pub states: HashMap<String, State>,
    /// State names in the order the definition lists them.
    pub order: Vec<String>,
    pub timeout_seconds: Option<u64>,
}

/// `InputPath`, `OutputPath`, `ResultPath`: absent (the default `$`), a path, or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PathField {
    #[default]
    Default,
    Path(String),
    Null,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: Kind,
    pub input_path: PathField,
    pub output_path: PathField,
    pub next: Option<String>,
    pub end: bool,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub errors: Vec<String>,
    pub result_path: PathField,
    pub next: String,
}

/// A number of seconds given in the definition or read from the input.
#[derive(Debug, Clone)]
pub enum Seconds {
    Fixed(u64),
    Path(String),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pass {
        result: Option<Value>,
        parameters: Option<Value>,
        result_path: PathField,
    },
    Task {
        resource: String,
        parameters: Option<Value>,
        result_selector: Option<Value>,
        result_path: PathField,
        timeout: Option<Seconds>,
        heartbeat: Option<Seconds>,
        retry: Vec<Retrier>,
        catch: Vec<Catcher>,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<String>,
        error_path: Option<String>,
        cause: Option<String>,
        cause_path: Option<String>,
    },
    Parallel {
        branches: Vec<Machine>,
        parameters: Option<Value>,
        result_selector: Option<Value>,
        result_path: PathField,
        retry: Vec<Retrier>,
        catch: Vec<Catcher>,
    },
    Map {
        processor: Box<Machine>,
        items_path: PathField,
        item_selector: Option<Value>,
        max_concurrency: Option<Seconds>,
        result_selector: Option<Value>,
        result_path: PathField,
        retry: Vec<Retrier>,
        catch: Vec<Catcher>,
    },
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    Timestamp(String),
    SecondsPath(String),
    TimestampPath(String),
}

impl Kind {
    /// The `Type` as the definition writes it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Pass { .. } => "Pass",
            Kind::Task { .. } => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        }
    }

    pub fn retry_and_catch(&self) -> (&[Retrier], &[Catcher]) {
        match self {
            Kind::Task { retry, catch, .. }
            | Kind::Parallel { retry, catch, .. }
            | Kind::Map { retry, catch, .. } => (retry, catch),
            _ => (&[], &[]),
        }
    }
}

impl Machine {
    /// Parses and validates a definition's JSON text.
    pub fn parse(text: &str) -> Result<Machine, Vec<Problem>> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![Problem {
                at: format!("line {}, column {}", e.line(), e.column()),
                message: format!("not valid JSON: {e}"),
            }]
        })?;
        Machine::from_value(&value)
    }

    /// Parses and validates a definition.
    pub fn from_value(value: &Value) -> Result<Machine, Vec<Problem>> {
        let mut problems = Vec::new();
        let machine = parse_machine(value, "", &mut problems, true);
        match machine {
            Some(m) if problems.is_empty() => Ok(m),
            _ => {
                if problems.is_empty() {
                    problems.push(problem("", "the definition is not a state machine"));
                }
                Err(problems)
            }
        }
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }
}

fn problem(at: &str, message: impl Into<String>) -> Problem {
    Problem {
        at: if at.is_empty() {
            "the definition".to_owned()
        } else {
            at.to_owned()
        },
        message: message.into(),
    }
}

/// Fields of every state, before they are checked against its type (`parse_state` checks
/// every key against the type's list, so unknown ones are reported there).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    #[serde(rename = "Type")]
    kind: String,
    next: Option<String>,
    end: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    input_path: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    output_path: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    result_path: Option<Option<String>>,
    parameters: Option<Value>,
    result_selector: Option<Value>,
    result: Option<Value>,
    resource: Option<String>,
    timeout_seconds: Option<Value>,
    timeout_seconds_path: Option<String>,
    heartbeat_seconds: Option<Value>,
    heartbeat_seconds_path: Option<String>,
    retry: Option<Vec<Value>>,
    catch: Option<Vec<Value>>,
    choices: Option<Vec<Value>>,
    default: Option<String>,
    seconds: Option<Value>,
    seconds_path: Option<String>,
    timestamp: Option<String>,
    timestamp_path: Option<String>,
    error: Option<String>,
    error_path: Option<String>,
    cause: Option<String>,
    cause_path: Option<String>,
    branches: Option<Vec<Value>>,
    iterator: Option<Value>,
    item_processor: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    items_path: Option<Option<String>>,
    item_selector: Option<Value>,
    max_concurrency: Option<Value>,
    max_concurrency_path: Option<String>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Which optional fields each type allows (beyond Type, Comment, and the transitions).
fn allowed(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pass" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Result",
        ],
        "Task" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Retry",
            "Catch",
        ],
        "Choice" => &["InputPath", "OutputPath", "Choices", "Default"],
        "Wait" => &[
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Branches",
            "Retry",
            "Catch",
        ],
        "Map" => &[
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "ItemSelector",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "Retry",
            "Catch",
            "Label",
        ],
        _ => &[],
    }
}

fn parse_machine(
    value: &Value,
    at: &str,
    problems: &mut Vec<Problem>,
    top: bool,
) -> Option<Machine> {
    let Some(obj) = value.as_object() else {
        problems.push(problem(at, "must be an object with StartAt and States"));
        return None;
    };
    for key in obj.keys() {
        let known = [
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ];
        let branch_only = ["ProcessorConfig"];
        if !known.contains(&key.as_str()) && (top || !branch_only.contains(&key.as_str())) {
            problems.push(problem(at, format!("unknown field `{key}`")));
        }
    }
    if let Some(lang) = obj.get("QueryLanguage").and_then(Value::as_str)
        && lang != "JSONPath"
    {
        problems.push(problem(
            at,
            format!("QueryLanguage `{lang}` is not supported: only JSONPath definitions run here"),
        ));
    }
    if let Some(config) = obj.get("ProcessorConfig")
        && config
            .get("Mode")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "INLINE")
    {
        problems.push(problem(
            at,
            "only INLINE Map processors run here (ProcessorConfig.Mode)",
        ));
    }
    let start_at = match obj.get("StartAt").and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => {
            problems.push(problem(at, "StartAt is required and must be a state name"));
            String::new()
        }
    };
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                problems.push(problem(at, "TimeoutSeconds must be a positive integer"));
                None
            }
        },
    };
    let Some(raw_states) = obj.get("States").and_then(Value::as_object) else {
        problems.push(problem(at, "States is required and must be an object"));
        return None;
    };
    if raw_states.is_empty() {
        problems.push(problem(at, "States must not be empty"));
    }
    let mut states = HashMap::new();
    let mut order = Vec::new();
    for (name, raw) in raw_states {
        let here = join(at, name);
        if name.chars().count() > 80 {
            problems.push(problem(&here, "a state name has at most 80 characters"));
        }
        if let Some(state) = parse_state(name, raw, &here, problems) {
            order.push(name.clone());
            states.insert(name.clone(), state);
        }
    }
    let machine = Machine {
        start_at,
        states,
        order,
        timeout_seconds,
    };
    // A state that did not parse is still a state: its problems are reported already,
    // and transitions to it are not.
    let names: BTreeSet<&str> = raw_states.keys().map(String::as_str).collect();
    check_transitions(&machine, &names, at, problems);
    Some(machine)
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        format!("state `{name}`")
    } else {
        format!("{at} / state `{name}`")
    }
}

/// Deserializes `v`, or records why not.
fn typed<T: serde::de::DeserializeOwned>(
    v: &Value,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    serde_json::from_value(v.clone())
        .map_err(|e| problems.push(problem(at, e.to_string())))
        .ok()
}

/// `InputPath`, `OutputPath`, `ResultPath` (`reference`: a path to one node) or a catcher's
/// `ResultPath`, checked.
fn path_field(
    at: &str,
    field: &str,
    v: &Option<Option<String>>,
    reference: bool,
    problems: &mut Vec<Problem>,
) -> PathField {
    match v {
        None => PathField::Default,
        Some(None) => PathField::Null,
        Some(Some(p)) => {
            let check = if reference {
                paths::check_reference(p)
            } else {
                paths::check_path(p)
            };
            if let Err(e) = check {
                problems.push(problem(at, format!("{field}: {e}")));
            }
            PathField::Path(p.clone())
        }
    }
}

/// A state: the fields its type allows, its transitions, its paths and templates, its
/// retriers and catchers, then what its type needs (one function per type).
fn parse_state(name: &str, value: &Value, at: &str, problems: &mut Vec<Problem>) -> Option<State> {
    let raw: Raw = typed(value, at, problems)?;
    if !check_fields(&raw, value, at, problems) {
        return None;
    }
    check_transitions_of(&raw, at, problems);
    let input_path = path_field(at, "InputPath", &raw.input_path, false, problems);
    let output_path = path_field(at, "OutputPath", &raw.output_path, false, problems);
    let result_path = path_field(at, "ResultPath", &raw.result_path, true, problems);
    for (field, template) in [
        ("Parameters", &raw.parameters),
        ("ResultSelector", &raw.result_selector),
        ("ItemSelector", &raw.item_selector),
    ] {
        if let Some(t) = template
            && let Err(e) = paths::check_template(t, field)
        {
            problems.push(problem(at, e));
        }
    }
    let retry = raw
        .retry
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, r)| parse_retrier(r, &format!("{at} Retry[{i}]"), problems))
        .collect::<Vec<_>>();
    let catch = raw
        .catch
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, c)| parse_catcher(c, &format!("{at} Catch[{i}]"), problems))
        .collect::<Vec<_>>();
    check_error_lists(retry.iter().map(|r| &r.errors), at, "Retry", problems);
    check_error_lists(catch.iter().map(|c| &c.errors), at, "Catch", problems);
    let kind = match raw.kind.as_str() {
        "Pass" => Kind::Pass {
            result: raw.result.clone(),
            parameters: raw.parameters.clone(),
            result_path,
        },
        "Task" => task_kind(&raw, at, result_path, retry, catch, problems)?,
        "Choice" => choice_kind(&raw, at, problems),
        "Wait" => wait_kind(&raw, at, problems)?,
        "Succeed" => Kind::Succeed,
        "Fail" => fail_kind(&raw, at, problems),
        "Parallel" => parallel_kind(&raw, at, result_path, retry, catch, problems),
        "Map" => map_kind(&raw, at, result_path, retry, catch, problems)?,
        _ => return None,
    };
    Some(State {
        name: name.to_owned(),
        kind,
        input_path,
        output_path,
        next: raw.next.clone(),
        end: raw.end.unwrap_or(false),
    })
}

/// Whether the type is known; a field its type does not allow, or one of JSONata's, is
/// a problem.
fn check_fields(raw: &Raw, value: &Value, at: &str, problems: &mut Vec<Problem>) -> bool {
    let present = value.as_object().map(Map::keys).into_iter().flatten();
    let base = ["Type", "Comment", "Next", "End"];
    let allowed_here = allowed(&raw.kind);
    if allowed_here.is_empty() {
        problems.push(problem(
            at,
            format!(
                "Type `{}` is not one of Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map",
                raw.kind
            ),
        ));
        return false;
    }
    for key in present {
        if ["QueryLanguage", "Arguments", "Output", "Assign"].contains(&key.as_str()) {
            problems.push(problem(
                at,
                format!(
                    "`{key}` belongs to JSONata or variables, which this runner does not support"
                ),
            ));
        } else if !base.contains(&key.as_str()) && !allowed_here.contains(&key.as_str()) {
            problems.push(problem(
                at,
                format!("field `{key}` is not allowed in a {} state", raw.kind),
            ));
        }
    }
    true
}

/// `Next` and `End` as the type wants them: neither for Choice, Succeed and Fail, exactly
/// one for the others.
fn check_transitions_of(raw: &Raw, at: &str, problems: &mut Vec<Problem>) {
    let terminal_kind = matches!(raw.kind.as_str(), "Succeed" | "Fail");
    let end = raw.end.unwrap_or(false);
    match raw.kind.as_str() {
        "Choice" => {
            if raw.next.is_some() || raw.end.is_some() {
                problems.push(problem(
                    at,
                    "a Choice state takes neither Next nor End (its Choices and Default say where to go)",
                ));
            }
        }
        _ if terminal_kind => {
            if raw.next.is_some() || raw.end.is_some() {
                problems.push(problem(
                    at,
                    format!(
                        "a {} state ends the execution: it takes neither Next nor End",
                        raw.kind
                    ),
                ));
            }
        }
        _ => match (&raw.next, end) {
            (Some(_), true) => problems.push(problem(at, "Next and End cannot both be given")),
            (None, false) => problems.push(problem(at, "needs Next or \"End\": true")),
            _ => {}
        },
    }
}

/// `TimeoutSeconds` or `HeartbeatSeconds` (`field`), fixed or from a path.
fn seconds_field(
    at: &str,
    field: &str,
    fixed: &Option<Value>,
    path: &Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Seconds> {
    match (fixed, path) {
        (Some(_), Some(_)) => {
            problems.push(problem(
                at,
                format!("{field} and {field}Path cannot both be given"),
            ));
            None
        }
        (Some(v), None) => match v.as_u64() {
            Some(n) if n > 0 => Some(Seconds::Fixed(n)),
            _ => {
                problems.push(problem(at, format!("{field} must be a positive integer")));
                None
            }
        },
        (None, Some(p)) => {
            if let Err(e) = paths::check_reference(p) {
                problems.push(problem(at, format!("{field}Path: {e}")));
            }
            Some(Seconds::Path(p.clone()))
        }
        (None, None) => None,
    }
}

fn task_kind(
    raw: &Raw,
    at: &str,
    result_path: PathField,
    retry: Vec<Retrier>,
    catch: Vec<Catcher>,
    problems: &mut Vec<Problem>,
) -> Option<Kind> {
    let Some(resource) = raw.resource.clone() else {
        problems.push(problem(at, "a Task state needs Resource"));
        return None;
    };
    if !resource.starts_with("arn:") {
        problems.push(problem(at, format!("Resource `{resource}` is not an ARN")));
    }
    let timeout = seconds_field(
        at,
        "TimeoutSeconds",
        &raw.timeout_seconds,
        &raw.timeout_seconds_path,
        problems,
    );
    let heartbeat = seconds_field(
        at,
        "HeartbeatSeconds",
        &raw.heartbeat_seconds,
        &raw.heartbeat_seconds_path,
        problems,
    );
    if let (Some(Seconds::Fixed(t)), Some(Seconds::Fixed(h))) = (&timeout, &heartbeat)
        && h >= t
    {
        problems.push(problem(
            at,
            format!("HeartbeatSeconds ({h}) must be smaller than TimeoutSeconds ({t})"),
        ));
    }
    Some(Kind::Task {
        resource,
        parameters: raw.parameters.clone(),
        result_selector: raw.result_selector.clone(),
        result_path,
        timeout,
        heartbeat,
        retry,
        catch,
    })
}

fn choice_kind(raw: &Raw, at: &str, problems: &mut Vec<Problem>) -> Kind {
    let mut choices = Vec::new();
    match &raw.choices {
        Some(list) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                let here = format!("{at} Choices[{i}]");
                match Rule::parse(c, true) {
                    Ok(rule) => match c.get("Next").and_then(Value::as_str) {
                        Some(next) => choices.push((rule, next.to_owned())),
                        None => problems.push(problem(&here, "a choice rule needs Next")),
                    },
                    Err(e) => problems.push(problem(&here, e)),
                }
            }
        }
        _ => problems.push(problem(at, "a Choice state needs a non-empty Choices list")),
    }
    Kind::Choice {
        choices,
        default: raw.default.clone(),
    }
}

fn wait_kind(raw: &Raw, at: &str, problems: &mut Vec<Problem>) -> Option<Kind> {
    let given: Vec<WaitFor> = [
        raw.seconds.as_ref().map(|v| match v.as_u64() {
            Some(n) => WaitFor::Seconds(n),
            None => {
                problems.push(problem(at, "Seconds must be a non-negative integer"));
                WaitFor::Seconds(0)
            }
        }),
        raw.timestamp.clone().map(|t| {
            if paths::parse_timestamp(&t).is_none() {
                problems.push(problem(
                    at,
                    format!("Timestamp `{t}` is not an RFC 3339 timestamp"),
                ));
            }
            WaitFor::Timestamp(t)
        }),
        raw.seconds_path.clone().map(WaitFor::SecondsPath),
        raw.timestamp_path.clone().map(WaitFor::TimestampPath),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        problems.push(problem(
            at,
            "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
        ));
        return None;
    }
    given.into_iter().next().map(Kind::Wait)
}

fn fail_kind(raw: &Raw, at: &str, problems: &mut Vec<Problem>) -> Kind {
    if raw.error.is_some() && raw.error_path.is_some() {
        problems.push(problem(at, "Error and ErrorPath cannot both be given"));
    }
    if raw.cause.is_some() && raw.cause_path.is_some() {
        problems.push(problem(at, "Cause and CausePath cannot both be given"));
    }
    for (field, p) in [
        ("ErrorPath", &raw.error_path),
        ("CausePath", &raw.cause_path),
    ] {
        if let Some(p) = p
            && !p.starts_with("States.")
            && let Err(e) = paths::check_path(p)
        {
            problems.push(problem(at, format!("{field}: {e}")));
        }
    }
    Kind::Fail {
        error: raw.error.clone(),
        error_path: raw.error_path.clone(),
        cause: raw.cause.clone(),
        cause_path: raw.cause_path.clone(),
    }
}

fn parallel_kind(
    raw: &Raw,
    at: &str,
    result_path: PathField,
    retry: Vec<Retrier>,
    catch: Vec<Catcher>,
    problems: &mut Vec<Problem>,
) -> Kind {
    let mut branches = Vec::new();
    match &raw.branches {
        Some(list) if !list.is_empty() => {
            for (i, b) in list.iter().enumerate() {
                if let Some(m) = parse_machine(b, &format!("{at} / branch {i}"), problems, false) {
                    branches.push(m);
                }
            }
        }
        _ => problems.push(problem(
            at,
            "a Parallel state needs a non-empty Branches list",
        )),
    }
    Kind::Parallel {
        branches,
        parameters: raw.parameters.clone(),
        result_selector: raw.result_selector.clone(),
        result_path,
        retry,
        catch,
    }
}

fn map_kind(
    raw: &Raw,
    at: &str,
    result_path: PathField,
    retry: Vec<Retrier>,
    catch: Vec<Catcher>,
    problems: &mut Vec<Problem>,
) -> Option<Kind> {
    let processor = match (&raw.item_processor, &raw.iterator) {
        (Some(p), None) | (None, Some(p)) => {
            parse_machine(p, &format!("{at} / processor"), problems, false)
        }
        (Some(_), Some(_)) => {
            problems.push(problem(
                at,
                "ItemProcessor and Iterator cannot both be given",
            ));
            None
        }
        (None, None) => {
            problems.push(problem(at, "a Map state needs ItemProcessor (or Iterator)"));
            None
        }
    }?;
    if raw.item_selector.is_some() && raw.parameters.is_some() {
        problems.push(problem(
            at,
            "ItemSelector and Parameters cannot both be given",
        ));
    }
    let items_path = path_field(at, "ItemsPath", &raw.items_path, true, problems);
    let max_concurrency = match (&raw.max_concurrency, &raw.max_concurrency_path) {
        (Some(v), None) => match v.as_u64() {
            Some(n) => Some(Seconds::Fixed(n)),
            None => {
                problems.push(problem(at, "MaxConcurrency must be a non-negative integer"));
                None
            }
        },
        (None, Some(p)) => Some(Seconds::Path(p.clone())),
        (Some(_), Some(_)) => {
            problems.push(problem(
                at,
                "MaxConcurrency and MaxConcurrencyPath cannot both be given",
            ));
            None
        }
        (None, None) => None,
    };
    Some(Kind::Map {
        processor: Box::new(processor),
        items_path,
        item_selector: raw.item_selector.clone().or_else(|| raw.parameters.clone()),
        max_concurrency,
        result_selector: raw.result_selector.clone(),
        result_path,
        retry,
        catch,
    })
}

fn parse_retrier(v: &Value, at: &str, problems: &mut Vec<Problem>) -> Option<Retrier> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "PascalCase")]
    struct RawRetrier {
        error_equals: Vec<String>,
        interval_seconds: Option<u64>,
        max_attempts: Option<u32>,
        backoff_rate: Option<f64>,
        max_delay_seconds: Option<u64>,
        jitter_strategy: Option<String>,
        #[serde(rename = "Comment")]
        _comment: Option<Value>,
    }
    let raw: RawRetrier = typed(v, at, problems)?;
    if raw.error_equals.is_empty() {
        problems.push(problem(at, "ErrorEquals must not be empty"));
    }
    if raw.interval_seconds == Some(0) {
        problems.push(problem(at, "IntervalSeconds must be a positive integer"));
    }
    if raw.backoff_rate.is_some_and(|b| b < 1.0) {
        problems.push(problem(at, "BackoffRate must be at least 1.0"));
    }
    if raw.max_delay_seconds == Some(0) {
        problems.push(problem(at, "MaxDelaySeconds must be a positive integer"));
    }
    let full_jitter = match raw.jitter_strategy.as_deref() {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(other) => {
            problems.push(problem(
                at,
                format!("JitterStrategy `{other}` is not FULL or NONE"),
            ));
            false
        }
    };
    Some(Retrier {
        errors: raw.error_equals,
        interval_seconds: raw.interval_seconds.unwrap_or(1) as f64,
        max_attempts: raw.max_attempts.unwrap_or(3),
        backoff_rate: raw.backoff_rate.unwrap_or(2.0),
        max_delay_seconds: raw.max_delay_seconds.map(|s| s as f64),
        full_jitter,
    })
}

fn parse_catcher(v: &Value, at: &str, problems: &mut Vec<Problem>) -> Option<Catcher> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "PascalCase")]
    struct RawCatcher {
        error_equals: Vec<String>,
        next: String,
        #[serde(default, deserialize_with = "nullable")]
        result_path: Option<Option<String>>,
        #[serde(rename = "Comment")]
        _comment: Option<Value>,
    }
    let raw: RawCatcher = typed(v, at, problems)?;
    if raw.error_equals.is_empty() {
        problems.push(problem(at, "ErrorEquals must not be empty"));
    }
    let result_path = path_field(at, "ResultPath", &raw.result_path, true, problems);
    Some(Catcher {
        errors: raw.error_equals,
        result_path,
        next: raw.next,
    })
}

/// `States.ALL` must stand alone and come last.
fn check_error_lists<'a>(
    lists: impl Iterator<Item = &'a Vec<String>>,
    at: &str,
    field: &str,
    problems: &mut Vec<Problem>,
) {
    let lists: Vec<&Vec<String>> = lists.collect();
    for (i, errors) in lists.iter().enumerate() {
        if errors.iter().any(|e| e == "States.ALL") && (errors.len() > 1 || i + 1 < lists.len()) {
            problems.push(problem(
                at,
                format!("{field}[{i}]: States.ALL must be alone in the last ErrorEquals"),
            ));
        }
    }
}

/// Every transition names a state of the same machine (one of `names`); every state is
/// reachable.
fn check_transitions(
    machine: &Machine,
    names: &BTreeSet<&str>,
    at: &str,
    problems: &mut Vec<Problem>,
) {
    let exists = |name: &str| names.contains(name);
    if !machine.start_at.is_empty() && !exists(&machine.start_at) {
        problems.push(problem(
            at,
            format!("StartAt `{}` is not a state", machine.start_at),
        ));
    }
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for name in &machine.order {
        let state = &machine.states[name];
        let here = join(at, name);
        let mut targets: Vec<(&str, String)> = Vec::new();
        if let Some(next) = &state.next {
            targets.push((next, "Next".into()));
        }
        let (_, catch) = state.kind.retry_and_catch();
        for (i, c) in catch.iter().enumerate() {
            targets.push((&c.next, format!("Catch[{i}].Next")));
        }
        if let Kind::Choice { choices, default } = &state.kind {
            for (i, (_, next)) in choices.iter().enumerate() {
                targets.push((next, format!("Choices[{i}].Next")));
            }
            if let Some(d) = default {
                targets.push((d, "Default".into()));
            }
        }
        for (target, field) in &targets {
            if !exists(target) {
                problems.push(problem(
                    &here,
                    format!("{field} `{target}` is not a state of this machine"),
                ));
            }
        }
        edges.insert(name, targets.into_iter().map(|(t, _)| t).collect());
    }
    if !exists(&machine.start_at) {
        // Nothing is reachable from a StartAt that is missing; that one problem says it.
        return;
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![machine.start_at.as_str()];
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            stack.extend(edges.get(n).into_iter().flatten());
        }
    }
    for name in &machine.order {
        if !seen.contains(name.as_str()) {
            problems.push(problem(&join(at, name), "is not reachable from StartAt"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The problems of a definition, as `at: message` lines.
    fn problems(definition: Value) -> Vec<String> {
        match Machine::from_value(&definition) {
            Ok(_) => Vec::new(),
            Err(list) => list.iter().map(ToString::to_string).collect(),
        }
    }

    fn has(problems: &[String], needle: &str) -> bool {
        problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn a_valid_definition_parses() {
        let p = problems(json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "Retry": [{"ErrorEquals": ["X"]}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "B"}], "Next": "B"},
            "B": {"Type": "Succeed"}}}));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn problems_name_the_state_and_the_field() {
        let p = problems(json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Resource": "arn:x", "Bogus": 1, "Next": "Nowhere"},
            "B": {"Type": "Pass", "Next": "A", "End": true},
            "C": {"Type": "Task", "Resource": "arn:aws:states:::x", "TimeoutSeconds": 5, "HeartbeatSeconds": 5, "End": true,
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}, {"ErrorEquals": ["X"], "Next": "A"}]},
            "D": {"Type": "Pass", "Output": "{% $x %}", "End": true},
            "E": {"Type": "Pass", "InputPath": "nope", "End": true}}}));
        assert!(
            has(
                &p,
                "state `A`: field `Resource` is not allowed in a Pass state"
            ),
            "{p:?}"
        );
        assert!(
            has(
                &p,
                "state `A`: field `Bogus` is not allowed in a Pass state"
            ),
            "{p:?}"
        );
        assert!(
            has(
                &p,
                "state `A`: Next `Nowhere` is not a state of this machine"
            ),
            "{p:?}"
        );
        assert!(
            has(&p, "state `B`: Next and End cannot both be given"),
            "{p:?}"
        );
        assert!(has(&p, "state `B`: is not reachable from StartAt"), "{p:?}");
        assert!(
            has(
                &p,
                "HeartbeatSeconds (5) must be smaller than TimeoutSeconds (5)"
            ),
            "{p:?}"
        );
        assert!(
            has(
                &p,
                "Catch[0]: States.ALL must be alone in the last ErrorEquals"
            ),
            "{p:?}"
        );
        assert!(has(&p, "state `D`: `Output` belongs to JSONata"), "{p:?}");
        assert!(
            has(&p, "state `E`: InputPath: `nope` is not a path"),
            "{p:?}"
        );
    }

    #[test]
    fn problems_inside_branches_say_which_branch() {
        let p = problems(
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Wait", "End": true}}}]}}}),
        );
        assert!(
            has(
                &p,
                "state `P` / branch 0 / state `X`: a Wait state needs exactly one of"
            ),
            "{p:?}"
        );
        let p = problems(json!({"StartAt": "Missing", "States": {"A": {"Type": "Succeed"}}}));
        assert!(
            has(&p, "the definition: StartAt `Missing` is not a state"),
            "{p:?}"
        );
        assert!(has(
            &Machine::parse("{")
                .map(|_| ())
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            "not valid JSON"
        ));
    }
}
