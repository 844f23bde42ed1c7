//! A durable, step-wise interpreter of Amazon States Language definitions (JSONPath query
//! language): the local runner of the orchestrator's generated state machines, and of any
//! team's own.
//!
//! An [`execution::Execution`] is plain data (serializable) that advances only when told:
//! [`execution::Execution::advance`] runs every state it can at a given instant, calling
//! the [`execution::Tasks`] handler for Task states, and returns the history events it
//! produced; [`execution::Execution::signal`] delivers SendTaskSuccess / SendTaskFailure /
//! SendTaskHeartbeat. Time is a parameter, so a host can persist every transition (local
//! mode stores the execution after each call) and tests can run a day-long wait in
//! microseconds on a virtual clock.

pub mod choice;
pub mod definition;
pub mod execution;
pub mod history;
pub mod intrinsics;
pub mod mock;
pub mod paths;
pub mod simulate;
pub mod suite;

use serde::{Deserialize, Serialize};

pub use definition::{Machine, Problem};
pub use execution::{
    Answer, Execution, RedriveError, Signal, SignalError, Status, TaskCall, Tasks,
};
pub use history::HistoryEvent;

/// An error as Step Functions names it: `States.Timeout`, `States.TaskFailed`, or a name a
/// task chose, with its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Failure {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// `States.Runtime`: a fault in the definition or the data; fails the execution and
    /// cannot be caught or retried.
    pub fn runtime(cause: impl Into<String>) -> Failure {
        Failure::new("States.Runtime", cause)
    }

    pub fn with_cause(mut self, cause: impl Into<String>) -> Failure {
        self.cause = cause.into();
        self
    }

    /// Whether `Retry` and `Catch` may handle it.
    pub fn is_catchable(&self) -> bool {
        !matches!(
            self.error.as_str(),
            "States.Runtime" | "States.DataLimitExceeded"
        )
    }
}
