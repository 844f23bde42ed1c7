//! `orchestrator asl ...`: run and test Amazon States Language definitions offline, with
//! Step Functions Local's mock configuration format (see docs/asl-testing.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use asl::Machine;
use asl::mock::MockConfig;
use asl::simulate::Clock;
use asl::suite;
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
    },
    /// Run every test case of every mock configuration under DIR against the
    /// expectations beside it; print a line per case and `N passed, M failed`. Exit 1
    /// when a case failed, 2 when DIR holds no mock configuration.
    Test {
        dir: PathBuf,
        #[arg(long)]
        real_time: bool,
    },
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
        } => run_one(
            &definition,
            input.as_deref(),
            mock_config.as_deref(),
            test_case.as_deref(),
            state_machine_name,
            clock(real_time),
        )
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }),
        AslCommand::Test { dir, real_time } => test(&dir, clock(real_time)),
    }
}

fn clock(real_time: bool) -> Clock {
    if real_time {
        Clock::Real
    } else {
        Clock::Virtual
    }
}

fn read_json(path: &Path) -> Result<Value, String> {
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
) -> Result<ExitCode, String> {
    let machine = Machine::from_value(&read_json(definition)?).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}: {}", definition.display(), p.at, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let input = match input {
        Some(path) => read_json(path)?,
        None => serde_json::json!({}),
    };
    let config = match mock_config {
        Some(path) => Some(
            MockConfig::from_value(&read_json(path)?)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
        None => None,
    };
    let name = name.unwrap_or_else(|| name_of(definition));
    let mut mocks = suite::mocks_for(config.as_ref(), &name, test_case)?;
    let outcome = suite::run(&machine, &name, input, &mut mocks, clock);
    println!(
        "{}",
        serde_json::to_string_pretty(&outcome.to_json()).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn test(dir: &Path, clock: Clock) -> ExitCode {
    let results = match suite::test_dir(dir, clock) {
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
