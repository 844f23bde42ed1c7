//! `orchestrator asl ...`: run and test Amazon States Language definitions offline, with
//! Step Functions Local's mock configuration format (see docs/asl-testing.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use asl::mock::{Handler, MockConfig, Response};
use asl::simulate::Clock;
use asl::suite;
use asl::{Failure, TaskCall};
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub enum AslCommand {
    /// Run a definition to its end and print {"status", "output", "error", "cause",
    /// "history"}. Exit 0 when the run finished (whatever its status), 2 when the
    /// definition or the configuration is wrong.
    Run {
        /// The definition (Amazon States Language, JSONPath).
        definition: PathBuf,
        /// The execution's input (JSON); `{}` without it.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Step Functions Local's MockConfigFile.json.
        #[arg(long, requires = "test_case")]
        mock_config: Option<PathBuf>,
        /// The test case of the mock configuration whose mocks answer the tasks.
        #[arg(long, requires = "mock_config")]
        test_case: Option<String>,
        /// The state machine's name in the mock configuration (default: the file's name
        /// without .asl.json or .json).
        #[arg(long)]
        state_machine_name: Option<String>,
        /// Wait for Wait states, retry intervals and timeouts in real time (by default
        /// they take none).
        #[arg(long)]
        real_time: bool,
        #[command(flatten)]
        handlers: Handlers,
    },
    /// Run every test case of every mock configuration under DIR against the
    /// expectations beside it; print a line per case and `N passed, M failed`. Exit 1
    /// when a case failed, 2 when DIR holds no mock configuration.
    Test {
        dir: PathBuf,
        #[arg(long)]
        real_time: bool,
        #[command(flatten)]
        handlers: Handlers,
    },
}

#[derive(clap::Args)]
pub struct Handlers {
    /// RESOURCE=COMMAND: a Task state the test case does not mock, whose Resource is
    /// RESOURCE (or starts with it, when it ends with `*`), runs COMMAND with `sh -c`:
    /// {"resource", "state", "parameters", "taskToken"} on its standard input, its
    /// standard output (JSON) the task's result. A failing command fails the task, with
    /// {"Error", "Cause"} from its output, or its standard error as the cause.
    #[arg(long = "handler", value_name = "RESOURCE=COMMAND")]
    handlers: Vec<String>,
}

impl Handlers {
    /// The handler the options describe; `Err` names a malformed option.
    fn parse(&self) -> Result<Option<Vec<(String, String)>>, String> {
        if self.handlers.is_empty() {
            return Ok(None);
        }
        self.handlers
            .iter()
            .map(|h| match h.split_once('=') {
                Some((resource, command)) if !resource.is_empty() && !command.is_empty() => {
                    Ok((resource.to_owned(), command.to_owned()))
                }
                _ => Err(format!("--handler `{h}`: expected RESOURCE=COMMAND")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A resource handler that runs the first command whose resource matches.
fn command_handler(handlers: Vec<(String, String)>) -> Handler {
    Box::new(move |call: &TaskCall<'_>| {
        let (_, command) =
            handlers
                .iter()
                .find(|(resource, _)| match resource.strip_suffix('*') {
                    Some(prefix) => call.resource.starts_with(prefix),
                    None => call.resource == resource,
                })?;
        Some(run_handler(command, call))
    })
}

fn run_handler(command: &str, call: &TaskCall<'_>) -> Response {
    use std::io::Write;
    let failed = |cause: String| Response::Throw(Failure::new("States.TaskFailed", cause));
    let mut child = match std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return failed(format!("the handler `{command}` did not start: {e}")),
    };
    let request = serde_json::json!({
        "resource": call.resource,
        "state": call.state,
        "parameters": call.parameters,
        "taskToken": call.token,
    });
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(request.to_string().as_bytes());
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => return failed(format!("the handler `{command}` failed: {e}")),
    };
    let stdout: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if out.status.success() {
        return match stdout {
            Some(result) => Response::Return(result),
            None => failed(format!(
                "the handler `{command}` did not print JSON: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )),
        };
    }
    match stdout
        .as_ref()
        .and_then(|v| v.get("Error"))
        .and_then(Value::as_str)
    {
        Some(error) => Response::Throw(Failure::new(
            error,
            stdout
                .as_ref()
                .and_then(|v| v.get("Cause"))
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )),
        None => failed(format!(
            "the handler `{command}` exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

pub fn run(command: AslCommand) -> ExitCode {
    match command {
        AslCommand::Run {
            definition,
            input,
            mock_config,
            test_case,
            state_machine_name,
            real_time,
            handlers,
        } => handlers
            .parse()
            .and_then(|handlers| {
                run_one(
                    &definition,
                    input.as_deref(),
                    mock_config.as_deref(),
                    test_case.as_deref(),
                    state_machine_name,
                    clock(real_time),
                    handlers,
                )
            })
            .unwrap_or_else(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }),
        AslCommand::Test {
            dir,
            real_time,
            handlers,
        } => match handlers.parse() {
            Ok(handlers) => test(&dir, clock(real_time), handlers),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn clock(real_time: bool) -> Clock {
    if real_time {
        Clock::Real
    } else {
        Clock::Virtual
    }
}

/// The state machine's name from its file: `Order.asl.json` and `Order.json` are `Order`.
fn name_of(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.strip_suffix(".asl.json")
        .or_else(|| file.strip_suffix(".json"))
        .unwrap_or(&file)
        .to_owned()
}

fn run_one(
    definition: &Path,
    input: Option<&Path>,
    mock_config: Option<&Path>,
    test_case: Option<&str>,
    name: Option<String>,
    clock: Clock,
    handlers: Option<Vec<(String, String)>>,
) -> Result<ExitCode, String> {
    let machine = suite::load_definition(definition).map_err(|problems| problems.join("\n"))?;
    let input = match input {
        Some(path) => suite::read_json(path)?,
        None => serde_json::json!({}),
    };
    let config = match mock_config {
        Some(path) => Some(
            MockConfig::from_value(&suite::read_json(path)?)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let name = name.unwrap_or_else(|| name_of(definition));
    let mut mocks = suite::mocks_for(config.as_ref(), &name, test_case)?;
    if let Some(handlers) = handlers {
        mocks = mocks.with_handler(command_handler(handlers));
    }
    let outcome = suite::run(&machine, &name, input, &mut mocks, clock);
    println!(
        "{}",
        serde_json::to_string_pretty(&outcome.to_json()).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn test(dir: &Path, clock: Clock, handlers: Option<Vec<(String, String)>>) -> ExitCode {
    let make = handlers.map(|handlers| move || command_handler(handlers.clone()));
    let make_ref: Option<&dyn Fn() -> Handler> = make.as_ref().map(|m| m as &dyn Fn() -> Handler);
    let results = match suite::test_dir(dir, clock, make_ref) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for result in &results {
        if result.passed() {
            println!("ok    {}", result.name);
        } else {
            failed += 1;
            println!("FAIL  {}", result.name);
            for why in &result.failures {
                println!("      {why}");
            }
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
