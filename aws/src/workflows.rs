//! The workflow engine on AWS Step Functions.
//!
//! - A state machine is created (CreateStateMachine), or updated when it exists
//!   (UpdateStateMachine); the definition is first checked by the same ASL validator local
//!   mode runs, so a bad definition is refused with the same words on both, before any
//!   call. Step Functions' API has no DefinitionSubstitutions (that is CloudFormation's):
//!   the placeholders are replaced here, as the embedded engine does.
//! - Executions are named by the request id: StartExecution with a name taken already
//!   returns that execution when its input is the same (AWS does so for a running
//!   standard execution; the adapter checks the input itself, so a finished one answers
//!   the same way), and `ExecutionAlreadyExists` otherwise.
//! - Task tokens are answered with SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat;
//!   `TaskTimedOut` and `TaskDoesNotExist` both mean the task is over.
//! - DescribeExecution and GetExecutionHistory are turned into the port's shapes: the
//!   summary, and each history event as the JSON GetExecutionHistory returns.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::primitives::DateTime;
use aws_sdk_sfn::types::HistoryEvent;
use serde_json::{Map, Value, json};
use shared::bundle::asl::substitute;
use shared::ports::{ExecutionSummary, StoreError, WorkflowError, Workflows};
use time::OffsetDateTime;

pub struct StepFunctions {
    client: Client,
    /// `arn:aws:states:<region>:<account>:`
    arn_prefix: String,
    /// Put before every machine's name (the stack's name, so that two deployments share
    /// an account and region without meeting).
    machine_prefix: String,
    /// The role state machines run as (it may send to the action queue).
    role_arn: String,
    /// Placeholder and value, as SAM's DefinitionSubstitutions.
    substitutions: Vec<(String, String)>,
}

impl StepFunctions {
    /// The engine in `region` of `account`, whose machines are named `machine_prefix`
    /// and the port's name and run as `role_arn`, with `substitutions` (such as
    /// `${ActionQueueUrl}`) replaced in every definition.
    pub fn new(
        config: &SdkConfig,
        region: &str,
        account: &str,
        machine_prefix: impl Into<String>,
        role_arn: impl Into<String>,
        substitutions: Vec<(String, String)>,
    ) -> Self {
        StepFunctions {
            client: Client::new(config),
            arn_prefix: format!("arn:aws:states:{region}:{account}:"),
            machine_prefix: machine_prefix.into(),
            role_arn: role_arn.into(),
            substitutions,
        }
    }

    fn machine_arn(&self, machine: &str) -> String {
        format!(
            "{}stateMachine:{}{machine}",
            self.arn_prefix, self.machine_prefix
        )
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

fn unavailable<E, R>(operation: &str, e: &SdkError<E, R>) -> WorkflowError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    WorkflowError::Store(StoreError::Unavailable(format!(
        "Step Functions {operation}: {}",
        DisplayErrorContext(e)
    )))
}

/// What a token's answer failing means.
fn token_error<E, R>(operation: &str, e: &SdkError<E, R>) -> WorkflowError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match code(e) {
        Some("TaskTimedOut" | "TaskDoesNotExist") => WorkflowError::TaskTimedOut,
        Some("InvalidToken") => WorkflowError::InvalidToken,
        _ => unavailable(operation, e),
    }
}

fn time_of(at: &DateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanos()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn rfc3339(at: &DateTime) -> Value {
    time_of(at)
        .format(&time::format_description::well_known::Rfc3339)
        .map_or(Value::Null, Value::String)
}

/// A JSON text from the service, as JSON (or as the text it is, if it is not JSON).
fn parsed(text: Option<&str>) -> Option<Value> {
    text.map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())))
}

/// An object of the fields that are present.
fn fields<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect::<Map<_, _>>(),
    )
}

fn text(value: Option<&str>) -> Option<Value> {
    value.map(|v| Value::String(v.to_owned()))
}

/// One history event in GetExecutionHistory's JSON shape: `timestamp`, `type`, `id`,
/// `previousEventId` and the one `…EventDetails` object the event has (those of the
/// states and tasks the generated machines use; others carry no details here).
fn event_json(event: &HistoryEvent) -> Value {
    let mut out = json!({
        "timestamp": rfc3339(event.timestamp()),
        "type": event.r#type().as_str(),
        "id": event.id(),
        "previousEventId": event.previous_event_id(),
    });
    let details = if let Some(d) = event.execution_started_event_details() {
        Some((
            "executionStartedEventDetails",
            fields([("input", text(d.input())), ("roleArn", text(d.role_arn()))]),
        ))
    } else if let Some(d) = event.execution_succeeded_event_details() {
        Some((
            "executionSucceededEventDetails",
            fields([("output", text(d.output()))]),
        ))
    } else if let Some(d) = event.execution_failed_event_details() {
        Some((
            "executionFailedEventDetails",
            fields([("error", text(d.error())), ("cause", text(d.cause()))]),
        ))
    } else if let Some(d) = event.execution_aborted_event_details() {
        Some((
            "executionAbortedEventDetails",
            fields([("error", text(d.error())), ("cause", text(d.cause()))]),
        ))
    } else if let Some(d) = event.execution_timed_out_event_details() {
        Some((
            "executionTimedOutEventDetails",
            fields([("error", text(d.error())), ("cause", text(d.cause()))]),
        ))
    } else if let Some(d) = event.state_entered_event_details() {
        Some((
            "stateEnteredEventDetails",
            fields([("name", text(Some(d.name()))), ("input", text(d.input()))]),
        ))
    } else if let Some(d) = event.state_exited_event_details() {
        Some((
            "stateExitedEventDetails",
            fields([("name", text(Some(d.name()))), ("output", text(d.output()))]),
        ))
    } else if let Some(d) = event.task_scheduled_event_details() {
        Some((
            "taskScheduledEventDetails",
            fields([
                ("resourceType", text(Some(d.resource_type()))),
                ("resource", text(Some(d.resource()))),
                ("region", text(Some(d.region()))),
                ("parameters", text(Some(d.parameters()))),
                ("timeoutInSeconds", d.timeout_in_seconds().map(Value::from)),
                (
                    "heartbeatInSeconds",
                    d.heartbeat_in_seconds().map(Value::from),
                ),
            ]),
        ))
    } else if let Some(d) = event.task_started_event_details() {
        Some((
            "taskStartedEventDetails",
            fields([
                ("resourceType", text(Some(d.resource_type()))),
                ("resource", text(Some(d.resource()))),
            ]),
        ))
    } else if let Some(d) = event.task_submitted_event_details() {
        Some((
            "taskSubmittedEventDetails",
            fields([
                ("resourceType", text(Some(d.resource_type()))),
                ("resource", text(Some(d.resource()))),
                ("output", text(d.output())),
            ]),
        ))
    } else if let Some(d) = event.task_succeeded_event_details() {
        Some((
            "taskSucceededEventDetails",
            fields([
                ("resourceType", text(Some(d.resource_type()))),
                ("resource", text(Some(d.resource()))),
                ("output", text(d.output())),
            ]),
        ))
    } else if let Some(d) = event.task_failed_event_details() {
        Some((
            "taskFailedEventDetails",
            fields([
                ("resourceType", text(Some(d.resource_type()))),
                ("resource", text(Some(d.resource()))),
                ("error", text(d.error())),
                ("cause", text(d.cause())),
            ]),
        ))
    } else if let Some(d) = event.task_timed_out_event_details() {
        Some((
            "taskTimedOutEventDetails",
            fields([
                ("resourceType", text(Some(d.resource_type()))),
                ("resource", text(Some(d.resource()))),
                ("error", text(d.error())),
                ("cause", text(d.cause())),
            ]),
        ))
    } else {
        event.map_iteration_started_event_details().map(|d| {
            (
                "mapIterationStartedEventDetails",
                fields([
                    ("name", text(d.name())),
                    ("index", Some(Value::from(d.index()))),
                ]),
            )
        })
    };
    if let Some((key, value)) = details {
        out[key] = value;
    }
    out
}

#[async_trait]
impl Workflows for StepFunctions {
    async fn deploy(&self, name: &str, definition: &Value) -> Result<String, WorkflowError> {
        let text = substitute(definition, &self.substitutions)
            .map_err(|e| WorkflowError::Store(StoreError::Corrupt(e.to_string())))?;
        asl::Machine::parse(&text).map_err(|problems| WorkflowError::InvalidDefinition {
            machine: name.to_owned(),
            problems: asl::Problem::describe_all(&problems),
        })?;
        // Update first: every ingestion deploys every machine again, so the machine
        // mostly exists (and CreateStateMachine on a name taken is refused on AWS when the
        // definition differs, but answered with the old machine by moto).
        let arn = self.machine_arn(name);
        let updated = self
            .client
            .update_state_machine()
            .state_machine_arn(&arn)
            .definition(&text)
            .role_arn(&self.role_arn)
            .send()
            .await;
        let refused = |e: &dyn ProvideErrorMetadata| WorkflowError::InvalidDefinition {
            machine: name.to_owned(),
            problems: e
                .message()
                .unwrap_or("refused by Step Functions")
                .to_owned(),
        };
        match updated {
            Ok(_) => return Ok(arn),
            Err(e) if code(&e) == Some("StateMachineDoesNotExist") => {}
            Err(e) if code(&e) == Some("InvalidDefinition") => {
                return Err(refused(&e));
            }
            Err(e) => return Err(unavailable("UpdateStateMachine", &e)),
        }
        match self
            .client
            .create_state_machine()
            .name(format!("{}{name}", self.machine_prefix))
            .definition(&text)
            .role_arn(&self.role_arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.state_machine_arn().to_owned()),
            Err(e) if code(&e) == Some("InvalidDefinition") => Err(refused(&e)),
            Err(e) => Err(unavailable("CreateStateMachine", &e)),
        }
    }

    fn execution_arn(&self, machine: &str, name: &str) -> String {
        format!(
            "{}execution:{}{machine}:{name}",
            self.arn_prefix, self.machine_prefix
        )
    }

    async fn start(
        &self,
        machine: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, WorkflowError> {
        let started = self
            .client
            .start_execution()
            .state_machine_arn(self.machine_arn(machine))
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match started {
            Ok(out) => Ok(out.execution_arn().to_owned()),
            Err(e) if code(&e) == Some("StateMachineDoesNotExist") => {
                Err(WorkflowError::NoSuchMachine(machine.to_owned()))
            }
            Err(e) if code(&e) == Some("ExecutionAlreadyExists") => {
                // The same start again (a redelivered message, a retried call) is no error.
                let arn = self.execution_arn(machine, name);
                let existing = self
                    .client
                    .describe_execution()
                    .execution_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| unavailable("DescribeExecution", &e))?;
                if parsed(existing.input()).as_ref() == Some(input) {
                    Ok(arn)
                } else {
                    Err(WorkflowError::ExecutionAlreadyExists(name.to_owned()))
                }
            }
            Err(e) => Err(unavailable("StartExecution", &e)),
        }
    }

    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| token_error("SendTaskSuccess", &e))
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| token_error("SendTaskFailure", &e))
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError> {
        self.client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| token_error("SendTaskHeartbeat", &e))
    }

    async fn stop(&self, arn: &str, error: &str, cause: &str) -> Result<(), WorkflowError> {
        match self.describe(arn).await? {
            None => return Err(WorkflowError::NoSuchExecution(arn.to_owned())),
            Some(summary) if summary.status != "RUNNING" => return Ok(()),
            Some(_) => {}
        }
        self.client
            .stop_execution()
            .execution_arn(arn)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable("StopExecution", &e))
    }

    async fn redrive(&self, arn: &str) -> Result<(), WorkflowError> {
        // The execution's ARN and its redrive count make the client token: a retried
        // call redrives once.
        let count = match self.describe(arn).await? {
            None => return Err(WorkflowError::NoSuchExecution(arn.to_owned())),
            Some(summary) => summary.redrive_count,
        };
        let name = arn.rsplit(':').next().unwrap_or(arn);
        let token: String = format!("redrive-{count}-{name}").chars().take(64).collect();
        match self
            .client
            .redrive_execution()
            .execution_arn(arn)
            .client_token(token)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("ExecutionNotRedrivable") => Err(
                WorkflowError::NotRedrivable(e.into_service_error().to_string()),
            ),
            Err(e) if code(&e) == Some("ExecutionDoesNotExist") => {
                Err(WorkflowError::NoSuchExecution(arn.to_owned()))
            }
            Err(e) => Err(unavailable("RedriveExecution", &e)),
        }
    }

    async fn describe(&self, arn: &str) -> Result<Option<ExecutionSummary>, WorkflowError> {
        let out = match self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("ExecutionDoesNotExist") => return Ok(None),
            Err(e) => return Err(unavailable("DescribeExecution", &e)),
        };
        Ok(Some(ExecutionSummary {
            execution_arn: out.execution_arn().to_owned(),
            state_machine_arn: out.state_machine_arn().to_owned(),
            name: out.name().unwrap_or_default().to_owned(),
            status: out.status().as_str().to_owned(),
            start_date: time_of(out.start_date()),
            stop_date: out.stop_date().map(time_of),
            output: parsed(out.output()),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
            redrive_count: out
                .redrive_count()
                .map_or(0, |n| u32::try_from(n).unwrap_or(0)),
        }))
    }

    async fn history(&self, arn: &str) -> Result<Vec<Value>, WorkflowError> {
        let mut events = Vec::new();
        let mut next = None;
        loop {
            let out = match self
                .client
                .get_execution_history()
                .execution_arn(arn)
                .include_execution_data(true)
                .set_next_token(next.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if code(&e) == Some("ExecutionDoesNotExist") => {
                    return Err(WorkflowError::NoSuchExecution(arn.to_owned()));
                }
                Err(e) => return Err(unavailable("GetExecutionHistory", &e)),
            };
            events.extend(out.events().iter().map(event_json));
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(events)
    }
}
