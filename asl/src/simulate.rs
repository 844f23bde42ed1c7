//! Running an execution to its end on a virtual clock: waits, retry intervals and
//! timeouts take no real time. Callback tasks are answered by the host through
//! [`Host::answers`], collected after every step.

use serde_json::Value;
use time::OffsetDateTime;

use crate::definition::Machine;
use crate::execution::{Execution, Signal, Tasks};
use crate::history::HistoryEvent;

/// Carries out tasks; answers to callback tasks may come later, through `answers`.
pub trait Host: Tasks {
    /// Answers to callback tasks ready now.
    fn answers(&mut self) -> Vec<Signal> {
        Vec::new()
    }
}

/// How time passes while an execution waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Jumps to the next wake-up: a day-long wait takes no time.
    Virtual,
    /// Sleeps until the next wake-up.
    Real,
}

/// Runs a new execution on a virtual clock until it ends or can go no further (a
/// callback nobody answers and no timeout). Returns the execution and its whole history.
pub fn run(
    machine: &Machine,
    arn: &str,
    machine_arn: &str,
    input: Value,
    start: OffsetDateTime,
    host: &mut dyn Host,
) -> (Execution, Vec<HistoryEvent>) {
    run_with(
        machine,
        arn,
        machine_arn,
        input,
        start,
        host,
        Clock::Virtual,
    )
}

/// [`run`] with the given clock.
pub fn run_with(
    machine: &Machine,
    arn: &str,
    machine_arn: &str,
    input: Value,
    start: OffsetDateTime,
    host: &mut dyn Host,
    clock: Clock,
) -> (Execution, Vec<HistoryEvent>) {
    let (mut execution, mut history) = Execution::start(machine, arn, machine_arn, input, start);
    history.extend(run_on(machine, &mut execution, start, host, clock));
    (execution, history)
}

/// Runs an execution that is under way (one just redriven, say) on a virtual clock from
/// `now` until it ends or can go no further; returns the new history events.
pub fn resume(
    machine: &Machine,
    execution: &mut Execution,
    now: OffsetDateTime,
    host: &mut dyn Host,
) -> Vec<HistoryEvent> {
    run_on(machine, execution, now, host, Clock::Virtual)
}

fn run_on(
    machine: &Machine,
    execution: &mut Execution,
    mut now: OffsetDateTime,
    host: &mut dyn Host,
    clock: Clock,
) -> Vec<HistoryEvent> {
    let mut history = Vec::new();
    loop {
        history.extend(execution.advance(machine, now, host));
        loop {
            let answers = host.answers();
            if answers.is_empty() {
                break;
            }
            for signal in answers {
                if let Ok(events) = execution.signal(machine, signal, now, host) {
                    history.extend(events);
                }
            }
        }
        match execution.next_wake() {
            Some(at) if execution.status == crate::Status::Running => match clock {
                Clock::Virtual => now = now.max(at),
                Clock::Real => {
                    let wait = at - OffsetDateTime::now_utc();
                    if wait.is_positive() {
                        std::thread::sleep(wait.unsigned_abs());
                    }
                    now = OffsetDateTime::now_utc().max(at);
                }
            },
            _ => return history,
        }
    }
}
