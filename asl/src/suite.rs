//! Testing state machines offline: run a definition against a test case's mocks, and run
//! every test case of a directory against the expectations written next to it. The
//! `orchestrator asl run` and `orchestrator asl test` commands are thin faces over this.
//!
//! A directory's layout (searched recursively; see docs/asl-testing.md):
//!
//! ```text
//! MockConfigFile.json       Step Functions Local's mock configuration (or any *.mock.json)
//! Order.asl.json            the definition of each state machine it names (or Order.json)
//! Order.expect.json         per test case: {"input", "status", "output", "error", "cause", "states"}
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::history::HistoryEvent;
use crate::mock::{Handler, MockConfig, MockedCase};
use crate::simulate::{Clock, Host, run_with};
use crate::{Machine, Status};

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<HistoryEvent>,
}

impl Outcome {
    /// `{"status", "output", "error", "cause", "history"}`, as `asl run` prints it.
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status.as_str(),
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "history": self.history,
        })
    }

    /// The states entered, in order (Parallel branches and Map iterations included).
    pub fn entered(&self) -> Vec<String> {
        self.history
            .iter()
            .filter(|e| e.kind.ends_with("StateEntered"))
            .filter_map(|e| {
                e.detail()
                    .and_then(|d| d.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// Runs `machine` (named `name`) on `input` to its end, its tasks answered by `host`.
pub fn run(
    machine: &Machine,
    name: &str,
    input: Value,
    host: &mut dyn Host,
    clock: Clock,
) -> Outcome {
    let machine_arn = format!("arn:aws:states:us-east-1:123456789012:stateMachine:{name}");
    let arn = format!("arn:aws:states:us-east-1:123456789012:execution:{name}:local");
    let (execution, history) = run_with(
        machine,
        &arn,
        &machine_arn,
        input,
        OffsetDateTime::now_utc(),
        host,
        clock,
    );
    // A run that cannot go on (a callback nobody answers and no timeout) is reported as
    // still running; Step Functions would wait.
    Outcome {
        status: execution.status,
        output: execution.output.clone(),
        error: execution.failure.as_ref().map(|f| f.error.clone()),
        cause: execution.failure.as_ref().map(|f| f.cause.clone()),
        history,
    }
}

/// The result of one test case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// `<config file>: <machine>/<case>`
    pub name: String,
    /// Empty when it passed.
    pub failures: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Finds every mock configuration under `dir` and runs each of its test cases against
/// the expectations beside it. Problems with a file (a definition that does not
/// validate, a missing expectation) are failures of the cases they concern. `Err` only
/// when `dir` cannot be read or holds no mock configuration.
/// `handler` makes, for each case, the resource handler of the states it does not mock.
pub fn test_dir(
    dir: &Path,
    clock: Clock,
    handler: Option<&dyn Fn() -> Handler>,
) -> Result<Vec<CaseResult>, String> {
    let mut configs = Vec::new();
    find_configs(dir, &mut configs)?;
    if configs.is_empty() {
        return Err(format!(
            "{}: no mock configuration (MockConfigFile.json or *.mock.json) found",
            dir.display()
        ));
    }
    configs.sort();
    let mut results = Vec::new();
    for path in configs {
        results.extend(test_config(&path, clock, handler));
    }
    Ok(results)
}

fn find_configs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("{}: cannot read: {e}", dir.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "node_modules" {
                find_configs(&path, out)?;
            }
        } else if name == "MockConfigFile.json" || name.ends_with(".mock.json") {
            out.push(path);
        }
    }
    Ok(())
}

fn failed(name: String, why: String) -> CaseResult {
    CaseResult {
        name,
        failures: vec![why],
    }
}

/// A JSON file, or why not (naming the file, and the line and column of a syntax error).
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: line {}, column {}: not valid JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// A definition file, parsed and validated; otherwise each problem, naming the file and
/// the state.
pub fn load_definition(path: &Path) -> Result<Machine, Vec<String>> {
    let value = read_json(path).map_err(|e| vec![e])?;
    Machine::from_value(&value).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}: {}", path.display(), p.at, p.message))
            .collect()
    })
}

/// The definition of machine `name` beside a mock configuration.
pub fn definition_beside(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.asl.json"), format!("{name}.json")]
        .into_iter()
        .map(|file| dir.join(file))
        .find(|p| p.is_file())
}

fn test_config(
    path: &Path,
    clock: Clock,
    handler: Option<&dyn Fn() -> Handler>,
) -> Vec<CaseResult> {
    let shown = path.display().to_string();
    let config = match read_json(path)
        .and_then(|v| MockConfig::from_value(&v).map_err(|e| format!("{shown}: {e}")))
    {
        Ok(config) => config,
        Err(why) => return vec![failed(shown, why)],
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut results = Vec::new();
    for machine_name in config.machines() {
        let cases = config.cases(machine_name);
        let label = |case: &str| format!("{shown}: {machine_name}/{case}");
        let everyone = |why: String| -> Vec<CaseResult> {
            cases
                .iter()
                .map(|c| failed(label(c), why.clone()))
                .collect()
        };
        let Some(definition_path) = definition_beside(dir, machine_name) else {
            results.extend(everyone(format!(
                "no definition {machine_name}.asl.json (or {machine_name}.json) beside the mock configuration"
            )));
            continue;
        };
        let machine = match load_definition(&definition_path) {
            Ok(machine) => machine,
            Err(problems) => {
                results.extend(everyone(problems.join("; ")));
                continue;
            }
        };
        let expect_path = dir.join(format!("{machine_name}.expect.json"));
        let expectations = if expect_path.is_file() {
            match read_json(&expect_path) {
                Ok(v) => v,
                Err(why) => {
                    results.extend(everyone(why));
                    continue;
                }
            }
        } else {
            Value::Null
        };
        for case in &cases {
            let name = label(case);
            let Some(expect) = expectations.get(*case) else {
                results.push(failed(
                    name,
                    format!(
                        "no expectation: add \"{case}\" to {} (at least its \"status\")",
                        expect_path.display()
                    ),
                ));
                continue;
            };
            let mut mocks = match config.case(machine_name, case) {
                Ok(mocks) => match handler {
                    Some(make) => mocks.with_handler(make()),
                    None => mocks,
                },
                Err(e) => {
                    results.push(failed(name, format!("{shown}: {e}")));
                    continue;
                }
            };
            let input = expect.get("input").cloned().unwrap_or_else(|| json!({}));
            let outcome = run(&machine, machine_name, input, &mut mocks, clock);
            results.push(CaseResult {
                name,
                failures: compare(expect, &outcome),
            });
        }
    }
    results
}

/// Runs one test case of a configuration: the mocks it names, or none.
pub fn mocks_for(
    config: Option<&MockConfig>,
    machine: &str,
    case: Option<&str>,
) -> Result<MockedCase, String> {
    match (config, case) {
        (Some(config), Some(case)) => config.case(machine, case).map_err(|e| e.to_string()),
        (None, None) => Ok(MockedCase::empty("(none)")),
        _ => Err("--mock-config and --test-case go together".to_owned()),
    }
}

/// What differs between an expectation and an outcome, in words.
pub fn compare(expect: &Value, outcome: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    let got = outcome.status.as_str();
    match expect.get("status").and_then(Value::as_str) {
        Some(status) if status == got => {}
        Some(status) => {
            let mut message = format!("status: expected {status}, got {got}");
            if let (Some(error), Some(cause)) = (&outcome.error, &outcome.cause) {
                message.push_str(&format!(" ({error}: {cause})"));
            }
            failures.push(message);
        }
        None => failures.push("the expectation has no \"status\"".to_owned()),
    }
    if let Some(output) = expect.get("output") {
        let actual = outcome.output.clone().unwrap_or(Value::Null);
        if *output != actual {
            failures.push(format!("output: expected {output}, got {actual}"));
        }
    }
    for (key, actual) in [("error", &outcome.error), ("cause", &outcome.cause)] {
        if let Some(wanted) = expect.get(key) {
            let actual = actual.clone().map_or(Value::Null, Value::String);
            if *wanted != actual {
                failures.push(format!("{key}: expected {wanted}, got {actual}"));
            }
        }
    }
    if let Some(states) = expect.get("states") {
        let entered = outcome.entered();
        let wanted: Vec<&str> = states
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if wanted != entered {
            failures.push(format!(
                "states entered: expected {wanted:?}, got {entered:?}"
            ));
        }
    }
    failures
}
