//! One execution of a state machine: a tree of frames (the top level, the branches of a
//! running Parallel state, the iterations of a running Map state), each at one state and in
//! one step of it. Everything is data, so the host can store the execution after every
//! call and pick it up again after a crash: a task whose answer was already applied is
//! never run again.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::Failure;
use crate::definition::{Catcher, Kind, Machine, PathField, Retrier, Seconds, State, WaitFor};
use crate::history::{HistoryEvent, Recorder, entered, exited, payload};
use crate::paths::{apply_filter, apply_result_path, compact, parse_timestamp, resolve, select};

/// Step Functions' default and largest task timeout.
const DEFAULT_TASK_TIMEOUT: u64 = 99_999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// A Task state's call, for the host to carry out.
#[derive(Debug)]
pub struct TaskCall<'a> {
    pub execution_arn: &'a str,
    pub state: &'a str,
    pub resource: &'a str,
    pub parameters: &'a Value,
    /// The token SendTaskSuccess/Failure/Heartbeat must present (`$$.Task.Token`).
    pub token: &'a str,
    /// How many times this state was retried before this call.
    pub retry_count: u32,
}

/// What the host made of a task call.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The task finished with this result.
    Done(Value),
    Failed(Failure),
    /// The task runs on; its answer comes through [`Execution::signal`] with the token.
    Callback,
}

/// Carries out Task states.
pub trait Tasks {
    fn invoke(&mut self, call: &TaskCall<'_>) -> Answer;
}

/// An answer to a callback task.
#[derive(Debug, Clone)]
pub enum Signal {
    Success { token: String, output: Value },
    Failure { token: String, failure: Failure },
    Heartbeat { token: String },
}

impl Signal {
    pub fn token(&self) -> &str {
        match self {
            Signal::Success { token, .. }
            | Signal::Failure { token, .. }
            | Signal::Heartbeat { token } => token,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The token is well formed but its task is over (answered, timed out, aborted).
    #[error("Task Timed Out: the task of this token is no longer running")]
    TaskTimedOut,
    #[error("Invalid Token: the token does not belong to a task of this execution")]
    InvalidToken,
}

/// Why an execution cannot be redriven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedriveError {
    #[error("Execution Not Redrivable: the execution is {}, not failed, aborted or timed out", .0.as_str())]
    NotRedrivable(Status),
}

/// One execution.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub arn: String,
    pub name: String,
    pub machine_arn: String,
    pub machine_name: String,
    pub input: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub status: Status,
    pub output: Option<Value>,
    pub failure: Option<Failure>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub stopped: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline: Option<OffsetDateTime>,
    pub last_event: u64,
    /// How many times the execution was redriven.
    #[serde(default)]
    pub redrive_count: u32,
    next_token: u64,
    root: Frame,
}

/// Where one thread of the execution stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Frame {
    /// The machine this frame runs: the top level, then (Parallel or Map state, branch).
    machine: Vec<(String, usize)>,
    state: String,
    /// The current state's raw input.
    input: Value,
    #[serde(with = "time::serde::rfc3339")]
    entered: OffsetDateTime,
    /// Attempts spent per retrier of the current state.
    retries: Vec<u32>,
    retry_count: u32,
    /// The last event of this frame, for `previousEventId`.
    prev: u64,
    step: Step,
    /// A Parallel or Map state that failed uncaught: its branches as they stood, for a
    /// redrive to run again only those that did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<Box<Step>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "step")]
enum Step {
    /// About to enter the state.
    Enter,
    /// About to run the state again after a retry's wait (no new Entered event).
    Again,
    /// A callback task waiting for its token.
    Task {
        token: String,
        resource: String,
        #[serde(with = "time::serde::rfc3339")]
        deadline: OffsetDateTime,
        heartbeat: Option<u64>,
        #[serde(with = "time::serde::rfc3339::option")]
        heartbeat_deadline: Option<OffsetDateTime>,
    },
    Wait {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    Retry {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    /// A Parallel or Map state's branches; `None` for Map iterations not started yet.
    Fork {
        children: Vec<Option<Frame>>,
        inputs: Vec<Value>,
        results: Vec<Option<Value>>,
        limit: usize,
    },
    Done {
        output: Value,
    },
    Failed {
        failure: Failure,
    },
}

/// What an execution knows about itself, for the context object.
struct Info {
    arn: String,
    name: String,
    input: Value,
    started: String,
    machine_arn: String,
    machine_name: String,
    redrive_count: u32,
}

struct Cx<'a> {
    rec: Recorder,
    tasks: &'a mut dyn Tasks,
    info: Info,
    next_token: &'a mut u64,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn after(now: OffsetDateTime, seconds: f64) -> OffsetDateTime {
    now + time::Duration::seconds_f64(seconds.max(0.0))
}

impl Execution {
    /// A new execution, with its `ExecutionStarted` event; call [`Execution::advance`] to
    /// run it.
    pub fn start(
        machine: &Machine,
        arn: &str,
        machine_arn: &str,
        input: Value,
        now: OffsetDateTime,
    ) -> (Execution, Vec<HistoryEvent>) {
        let name = arn.rsplit(':').next().unwrap_or(arn).to_owned();
        let machine_name = machine_arn
            .rsplit(':')
            .next()
            .unwrap_or(machine_arn)
            .to_owned();
        let mut rec = Recorder::new(0, now);
        rec.record(
            "ExecutionStarted",
            0,
            Some(json!({
                "input": payload(&input),
                "inputDetails": {"truncated": false},
                "roleArn": "arn:aws:iam::000000000000:role/orchestrator-local",
            })),
        );
        let execution = Execution {
            arn: arn.to_owned(),
            name,
            machine_arn: machine_arn.to_owned(),
            machine_name,
            started: now,
            status: Status::Running,
            output: None,
            failure: None,
            stopped: None,
            deadline: machine.timeout_seconds.map(|s| after(now, s as f64)),
            last_event: rec.last_id,
            redrive_count: 0,
            next_token: 0,
            root: Frame {
                machine: Vec::new(),
                state: machine.start_at.clone(),
                input: input.clone(),
                entered: now,
                retries: Vec::new(),
                retry_count: 0,
                prev: rec.last_id,
                step: Step::Enter,
                resume: None,
            },
            input,
        };
        (execution, rec.events)
    }

    /// Runs every state that can run at `now`; returns the new history events.
    pub fn advance(
        &mut self,
        machine: &Machine,
        now: OffsetDateTime,
        tasks: &mut dyn Tasks,
    ) -> Vec<HistoryEvent> {
        self.with_cx(now, tasks, |root, cx| {
            run(root, machine, cx);
        })
    }

    /// Delivers a callback task's answer, then runs on.
    pub fn signal(
        &mut self,
        machine: &Machine,
        signal: Signal,
        now: OffsetDateTime,
        tasks: &mut dyn Tasks,
    ) -> Result<Vec<HistoryEvent>, SignalError> {
        if token_execution(signal.token()).as_deref() != Some(self.arn.as_str()) {
            return Err(SignalError::InvalidToken);
        }
        if self.status != Status::Running {
            return Err(SignalError::TaskTimedOut);
        }
        let mut outcome = Err(SignalError::TaskTimedOut);
        let events = self.with_cx(now, tasks, |root, cx| {
            if let Some(frame) = find_task(root, signal.token()) {
                outcome = Ok(());
                deliver(frame, machine, signal, cx);
                run(root, machine, cx);
            }
        });
        outcome.map(|()| events)
    }

    /// Stops a running execution (StopExecution).
    pub fn stop(&mut self, failure: Option<Failure>, now: OffsetDateTime) -> Vec<HistoryEvent> {
        if self.status != Status::Running {
            return Vec::new();
        }
        let mut rec = Recorder::new(self.last_event, now);
        let details = failure.as_ref().map_or_else(
            || json!({}),
            |f| json!({"error": f.error, "cause": f.cause}),
        );
        rec.record("ExecutionAborted", self.root.prev, Some(details));
        self.status = Status::Aborted;
        self.failure = failure;
        self.stopped = Some(now);
        self.last_event = rec.last_id;
        rec.events
    }

    /// Opens a failed, aborted or timed-out execution again (RedriveExecution): the
    /// states that did not succeed run again from where they were, with the same input;
    /// states that succeeded, and branches of a Parallel or Map state that did, are not
    /// run again. Call [`Execution::advance`] to run it.
    pub fn redrive(&mut self, now: OffsetDateTime) -> Result<Vec<HistoryEvent>, RedriveError> {
        if !matches!(
            self.status,
            Status::Failed | Status::Aborted | Status::TimedOut
        ) {
            return Err(RedriveError::NotRedrivable(self.status));
        }
        reopen(&mut self.root);
        self.redrive_count += 1;
        self.status = Status::Running;
        self.failure = None;
        self.stopped = None;
        // A timed-out execution gets its time again, counted from the redrive.
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = Some(now + (self.deadline.unwrap_or(now) - self.started));
        }
        let mut rec = Recorder::new(self.last_event, now);
        rec.record(
            "ExecutionRedriven",
            self.root.prev,
            Some(json!({"redriveCount": self.redrive_count})),
        );
        self.last_event = rec.last_id;
        Ok(rec.events)
    }

    /// When the execution next needs to run by itself (a wait, a retry, a timeout).
    pub fn next_wake(&self) -> Option<OffsetDateTime> {
        if self.status != Status::Running {
            return None;
        }
        let mut wake = self.deadline;
        wake_of(&self.root, &mut wake);
        wake
    }

    /// The tokens of callback tasks waiting for an answer.
    pub fn open_tokens(&self) -> Vec<String> {
        let mut out = Vec::new();
        tokens_of(&self.root, &mut out);
        out
    }

    fn with_cx(
        &mut self,
        now: OffsetDateTime,
        tasks: &mut dyn Tasks,
        f: impl FnOnce(&mut Frame, &mut Cx<'_>),
    ) -> Vec<HistoryEvent> {
        if self.status != Status::Running {
            return Vec::new();
        }
        let mut cx = Cx {
            rec: Recorder::new(self.last_event, now),
            tasks,
            info: Info {
                arn: self.arn.clone(),
                name: self.name.clone(),
                input: self.input.clone(),
                started: rfc3339(self.started),
                machine_arn: self.machine_arn.clone(),
                machine_name: self.machine_name.clone(),
                redrive_count: self.redrive_count,
            },
            next_token: &mut self.next_token,
        };
        if self.deadline.is_some_and(|d| now >= d) {
            cx.rec.record(
                "ExecutionTimedOut",
                self.root.prev,
                Some(json!({"error": "States.Timeout", "cause": "The execution ran longer than the state machine's TimeoutSeconds."})),
            );
            self.status = Status::TimedOut;
            self.failure = Some(Failure::new("States.Timeout", "The execution timed out."));
            self.stopped = Some(now);
        } else {
            f(&mut self.root, &mut cx);
            match &self.root.step {
                Step::Done { output } => {
                    cx.rec.record(
                        "ExecutionSucceeded",
                        self.root.prev,
                        Some(json!({"output": payload(output), "outputDetails": {"truncated": false}})),
                    );
                    self.status = Status::Succeeded;
                    self.output = Some(output.clone());
                    self.stopped = Some(now);
                }
                Step::Failed { failure } => {
                    cx.rec.record(
                        "ExecutionFailed",
                        self.root.prev,
                        Some(json!({"error": failure.error, "cause": failure.cause})),
                    );
                    self.status = Status::Failed;
                    self.failure = Some(failure.clone());
                    self.stopped = Some(now);
                }
                _ => {}
            }
        }
        self.last_event = cx.rec.last_id;
        cx.rec.events
    }
}

/// The execution a token belongs to.
pub fn token_execution(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (arn, _) = text.rsplit_once('#')?;
    Some(arn.to_owned())
}

fn new_token(cx: &mut Cx<'_>) -> String {
    *cx.next_token += 1;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}#{}", cx.info.arn, cx.next_token))
}

fn machine_at<'m>(root: &'m Machine, path: &[(String, usize)]) -> &'m Machine {
    let mut m = root;
    for (state, branch) in path {
        m = match m.state(state).map(|s| &s.kind) {
            Some(Kind::Parallel { branches, .. }) => &branches[*branch],
            Some(Kind::Map { processor, .. }) => processor,
            _ => return m,
        };
    }
    m
}

/// Makes a frame that did not succeed run again: a failed or stopped state is entered
/// again; a Parallel or Map state gets its branches back, and those that did not succeed
/// are reopened in turn.
fn reopen(frame: &mut Frame) {
    if let Some(fork) = frame.resume.take() {
        frame.step = *fork;
    }
    match &mut frame.step {
        Step::Done { .. } => {}
        Step::Fork {
            children, results, ..
        } => {
            for (child, result) in children.iter_mut().zip(results.iter()) {
                if let (Some(child), None) = (child.as_mut(), result) {
                    reopen(child);
                }
            }
        }
        _ => {
            frame.step = Step::Enter;
            frame.retries.clear();
            frame.retry_count = 0;
        }
    }
}

fn wake_of(frame: &Frame, wake: &mut Option<OffsetDateTime>) {
    let mut at = |t: OffsetDateTime| {
        if wake.is_none_or(|w| t < w) {
            *wake = Some(t);
        }
    };
    match &frame.step {
        Step::Task {
            deadline,
            heartbeat_deadline,
            ..
        } => {
            at(*deadline);
            if let Some(h) = heartbeat_deadline {
                at(*h);
            }
        }
        Step::Wait { until } | Step::Retry { until } => at(*until),
        Step::Fork { children, .. } => children.iter().flatten().for_each(|c| wake_of(c, wake)),
        _ => {}
    }
}

fn tokens_of(frame: &Frame, out: &mut Vec<String>) {
    match &frame.step {
        Step::Task { token, .. } => out.push(token.clone()),
        Step::Fork { children, .. } => children.iter().flatten().for_each(|c| tokens_of(c, out)),
        _ => {}
    }
}

fn find_task<'f>(frame: &'f mut Frame, token: &str) -> Option<&'f mut Frame> {
    if matches!(&frame.step, Step::Task { token: t, .. } if t == token) {
        return Some(frame);
    }
    if let Step::Fork { children, .. } = &mut frame.step {
        for child in children.iter_mut().flatten() {
            if let Some(f) = find_task(child, token) {
                return Some(f);
            }
        }
    }
    None
}

/// The context object (`$$`) of a frame's current state.
fn context(
    frame: &Frame,
    cx: &Cx<'_>,
    token: Option<&str>,
    item: Option<(usize, &Value)>,
) -> Value {
    let mut ctx = json!({
        "Execution": {
            "Id": cx.info.arn,
            "Input": cx.info.input,
            "Name": cx.info.name,
            "RoleArn": "arn:aws:iam::000000000000:role/orchestrator-local",
            "StartTime": cx.info.started,
            "RedriveCount": cx.info.redrive_count,
        },
        "State": {
            "EnteredTime": rfc3339(frame.entered),
            "Name": frame.state,
            "RetryCount": frame.retry_count,
        },
        "StateMachine": {"Id": cx.info.machine_arn, "Name": cx.info.machine_name},
    });
    if let Some(token) = token {
        ctx["Task"] = json!({"Token": token});
    }
    if let Some((index, value)) = item {
        ctx["Map"] = json!({"Item": {"Index": index, "Value": value}});
    }
    ctx
}

/// Runs a frame (and its children) as far as it goes now.
fn run(frame: &mut Frame, root: &Machine, cx: &mut Cx<'_>) {
    loop {
        let machine = machine_at(root, &frame.machine);
        let Some(state) = machine.state(&frame.state) else {
            let failure = Failure::runtime(format!("no state `{}` in the machine", frame.state));
            frame.step = Step::Failed { failure };
            return;
        };
        let now = cx.rec.now;
        match &mut frame.step {
            Step::Done { .. } | Step::Failed { .. } => return,
            Step::Enter => {
                frame.entered = now;
                let kind = format!("{}StateEntered", state.kind.type_name());
                frame.prev =
                    cx.rec
                        .record(&kind, frame.prev, Some(entered(&state.name, &frame.input)));
                execute(frame, state, cx);
            }
            Step::Again => execute(frame, state, cx),
            Step::Task {
                deadline,
                heartbeat_deadline,
                resource,
                ..
            } => {
                let timed_out = if now >= *deadline {
                    Some((
                        "States.Timeout",
                        "The task did not finish within its TimeoutSeconds.",
                    ))
                } else if heartbeat_deadline.is_some_and(|h| now >= h) {
                    Some((
                        "States.HeartbeatTimeout",
                        "The task sent no heartbeat within its HeartbeatSeconds.",
                    ))
                } else {
                    None
                };
                let Some((error, cause)) = timed_out else {
                    return;
                };
                let (resource_type, resource) = split_resource(resource);
                frame.prev = cx.rec.record(
                    "TaskTimedOut",
                    frame.prev,
                    Some(json!({"resourceType": resource_type, "resource": resource, "error": error, "cause": cause})),
                );
                handle_error(frame, state, Failure::new(error, cause), cx);
            }
            Step::Wait { until } => {
                if now < *until {
                    return;
                }
                let output = apply_filter(
                    &state.input_path,
                    frame.input.clone(),
                    &Value::Null,
                    &state.name,
                )
                .and_then(|v| apply_filter(&state.output_path, v, &Value::Null, &state.name));
                match output {
                    Ok(output) => exit(frame, state, output, state.next.clone(), cx),
                    Err(f) => frame.step = Step::Failed { failure: f },
                }
            }
            Step::Retry { until } => {
                if now < *until {
                    return;
                }
                frame.step = Step::Again;
            }
            Step::Fork { .. } => {
                if !run_fork(frame, state, root, cx) {
                    return;
                }
            }
        }
    }
}

/// Runs a Parallel or Map state's children; true when the state finished (either way).
fn run_fork(frame: &mut Frame, state: &State, root: &Machine, cx: &mut Cx<'_>) -> bool {
    let is_map = matches!(state.kind, Kind::Map { .. });
    let Step::Fork {
        children,
        inputs,
        results,
        limit,
    } = &mut frame.step
    else {
        return false;
    };
    // Started and not finished (a child a signal just finished still counts).
    let mut running = children
        .iter()
        .zip(results.iter())
        .filter(|(c, r)| c.is_some() && r.is_none())
        .count();
    let mut failed: Option<(usize, Failure)> = None;
    for i in 0..children.len() {
        if children[i].is_none() {
            if *limit > 0 && running >= *limit {
                continue;
            }
            let prev = cx.rec.record(
                "MapIterationStarted",
                frame.prev,
                Some(json!({"name": state.name, "index": i})),
            );
            let Kind::Map { processor, .. } = &state.kind else {
                continue;
            };
            let mut path = frame.machine.clone();
            path.push((state.name.clone(), 0));
            children[i] = Some(Frame {
                machine: path,
                state: processor.start_at.clone(),
                input: std::mem::take(&mut inputs[i]),
                entered: cx.rec.now,
                retries: Vec::new(),
                retry_count: 0,
                prev,
                step: Step::Enter,
                resume: None,
            });
            running += 1;
        }
        let Some(child) = children[i].as_mut() else {
            continue;
        };
        if results[i].is_some() {
            continue;
        }
        run(child, root, cx);
        match &mut child.step {
            Step::Done { output } => {
                // The result moves to the fork; the finished child keeps nothing, so a
                // stored execution does not carry it three times.
                results[i] = Some(std::mem::take(output));
                child.input = Value::Null;
                running -= 1;
                if is_map {
                    cx.rec.record(
                        "MapIterationSucceeded",
                        child.prev,
                        Some(json!({"name": state.name, "index": i})),
                    );
                }
            }
            Step::Failed { failure } => {
                if is_map {
                    cx.rec.record(
                        "MapIterationFailed",
                        child.prev,
                        Some(json!({"name": state.name, "index": i})),
                    );
                }
                failed = Some((i, failure.clone()));
                break;
            }
            _ => {}
        }
    }
    let kind = if is_map { "Map" } else { "Parallel" };
    if let Some((failed_index, failure)) = failed {
        if is_map {
            for (i, c) in children.iter().enumerate() {
                if i != failed_index
                    && c.as_ref()
                        .is_some_and(|c| !matches!(c.step, Step::Done { .. }))
                {
                    cx.rec.record(
                        "MapIterationAborted",
                        frame.prev,
                        Some(json!({"name": state.name, "index": i})),
                    );
                }
            }
        }
        frame.prev = cx
            .rec
            .record(&format!("{kind}StateFailed"), frame.prev, None);
        let branches = frame.step.clone();
        handle_error(frame, state, failure, cx);
        if matches!(frame.step, Step::Failed { .. }) {
            frame.resume = Some(Box::new(branches));
        }
        return true;
    }
    if results.iter().all(Option::is_some) {
        let result = Value::Array(
            results
                .iter_mut()
                .map(|r| r.take().unwrap_or(Value::Null))
                .collect(),
        );
        frame.prev = cx
            .rec
            .record(&format!("{kind}StateSucceeded"), frame.prev, None);
        finish(frame, state, result, cx);
        return true;
    }
    false
}

/// Enters the frame's current state: does what the state does at once.
/// Runs a state that was entered: its input filtered, then what its type does (one
/// function per type). A failure on the way is the state's failure.
fn execute(frame: &mut Frame, state: &State, cx: &mut Cx<'_>) {
    let ctx = context(frame, cx, None, None);
    let done = apply_filter(&state.input_path, frame.input.clone(), &ctx, &state.name).and_then(
        |effective| match &state.kind {
            Kind::Pass {
                result,
                parameters,
                result_path,
            } => {
                let output = pass(
                    state,
                    frame,
                    effective,
                    &ctx,
                    result,
                    parameters,
                    result_path,
                )?;
                exit(frame, state, output, state.next.clone(), cx);
                Ok(())
            }
            Kind::Task {
                resource,
                parameters,
                timeout,
                heartbeat,
                ..
            } => task(
                frame, state, effective, cx, resource, parameters, timeout, heartbeat,
            ),
            Kind::Choice { choices, default } => {
                let (output, next) = choice(state, effective, &ctx, choices, default)?;
                exit(frame, state, output, Some(next), cx);
                Ok(())
            }
            Kind::Wait(wait) => {
                frame.step = Step::Wait {
                    until: wait_until(wait, &effective, &ctx, cx.rec.now)?,
                };
                Ok(())
            }
            Kind::Succeed => {
                let output = apply_filter(&state.output_path, effective, &ctx, &state.name)?;
                frame.prev = cx.rec.record(
                    "SucceedStateExited",
                    frame.prev,
                    Some(exited(&state.name, &output)),
                );
                frame.step = Step::Done { output };
                Ok(())
            }
            Kind::Fail {
                error,
                error_path,
                cause,
                cause_path,
            } => Err(fail_state(
                frame, &ctx, error, error_path, cause, cause_path,
            )),
            Kind::Parallel {
                branches,
                parameters,
                ..
            } => parallel(frame, state, effective, &ctx, cx, branches, parameters),
            Kind::Map {
                items_path,
                item_selector,
                max_concurrency,
                ..
            } => map(
                frame,
                state,
                effective,
                &ctx,
                cx,
                items_path,
                item_selector,
                max_concurrency,
            ),
        },
    );
    if let Err(failure) = done {
        frame.step = Step::Failed { failure };
    }
}

/// A Pass state's output: its `Result`, or its input (through `Parameters`), placed by
/// `ResultPath` and filtered by `OutputPath`.
fn pass(
    state: &State,
    frame: &Frame,
    effective: Value,
    ctx: &Value,
    result: &Option<Value>,
    parameters: &Option<Value>,
    result_path: &PathField,
) -> Result<Value, Failure> {
    let payload = match parameters {
        Some(p) => resolve(p, &effective, ctx)?,
        None => effective,
    };
    let result = result.clone().unwrap_or(payload);
    let merged = apply_result_path(result_path, frame.input.clone(), result, &state.name)?;
    apply_filter(&state.output_path, merged, ctx, &state.name)
}

/// A Task state: schedules the call, and finishes it, fails it or waits for its
/// callback, as the host answers.
#[allow(clippy::too_many_arguments)]
fn task(
    frame: &mut Frame,
    state: &State,
    effective: Value,
    cx: &mut Cx<'_>,
    resource: &str,
    parameters: &Option<Value>,
    timeout: &Option<Seconds>,
    heartbeat: &Option<Seconds>,
) -> Result<(), Failure> {
    let token = new_token(cx);
    let ctx = context(frame, cx, Some(&token), None);
    let params = match parameters {
        Some(p) => resolve(p, &effective, &ctx)?,
        None => effective.clone(),
    };
    let timeout = seconds(timeout.as_ref(), &effective, &ctx)?.unwrap_or(DEFAULT_TASK_TIMEOUT);
    let heartbeat = seconds(heartbeat.as_ref(), &effective, &ctx)?;
    let (resource_type, short) = split_resource(resource);
    let mut scheduled = json!({
        "resourceType": resource_type,
        "resource": short,
        "region": "local",
        "parameters": payload(&params),
        "timeoutInSeconds": timeout,
    });
    if let Some(h) = heartbeat {
        scheduled["heartbeatInSeconds"] = json!(h);
    }
    frame.prev = cx.rec.record("TaskScheduled", frame.prev, Some(scheduled));
    frame.prev = cx.rec.record(
        "TaskStarted",
        frame.prev,
        Some(json!({"resourceType": resource_type, "resource": short})),
    );
    let answer = cx.tasks.invoke(&TaskCall {
        execution_arn: &cx.info.arn,
        state: &state.name,
        resource,
        parameters: &params,
        token: &token,
        retry_count: frame.retry_count,
    });
    let now = cx.rec.now;
    match answer {
        Answer::Done(result) => {
            frame.prev = cx.rec.record(
                "TaskSucceeded",
                frame.prev,
                Some(json!({"resourceType": resource_type, "resource": short, "output": payload(&result), "outputDetails": {"truncated": false}})),
            );
            finish(frame, state, result, cx);
        }
        Answer::Failed(failure) => {
            frame.prev = cx.rec.record(
                "TaskFailed",
                frame.prev,
                Some(json!({"resourceType": resource_type, "resource": short, "error": failure.error, "cause": failure.cause})),
            );
            handle_error(frame, state, failure, cx);
        }
        Answer::Callback => {
            frame.prev = cx.rec.record(
                "TaskSubmitted",
                frame.prev,
                Some(json!({"resourceType": resource_type, "resource": short, "output": payload(&json!({})), "outputDetails": {"truncated": false}})),
            );
            frame.step = Step::Task {
                token,
                resource: resource.to_owned(),
                deadline: after(now, timeout as f64),
                heartbeat,
                heartbeat_deadline: heartbeat.map(|h| after(now, h as f64)),
            };
        }
    }
    Ok(())
}

/// A Choice state: its output and the state the first matching rule (or the default)
/// names.
fn choice(
    state: &State,
    effective: Value,
    ctx: &Value,
    choices: &[(crate::choice::Rule, String)],
    default: &Option<String>,
) -> Result<(Value, String), Failure> {
    let mut chosen = None;
    for (rule, next) in choices {
        if rule.matches(&effective, ctx)? {
            chosen = Some(next.clone());
            break;
        }
    }
    let Some(next) = chosen.or_else(|| default.clone()) else {
        return Err(Failure::new(
            "States.NoChoiceMatched",
            format!(
                "No Matches! No choice rule of state '{}' matched the input {}",
                state.name,
                compact(&effective)
            ),
        ));
    };
    let output = apply_filter(&state.output_path, effective, ctx, &state.name)?;
    Ok((output, next))
}

/// When a Wait state ends.
fn wait_until(
    wait: &WaitFor,
    effective: &Value,
    ctx: &Value,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Failure> {
    match wait {
        WaitFor::Seconds(s) => Ok(after(now, *s as f64)),
        WaitFor::Timestamp(t) => {
            parse_timestamp(t).ok_or_else(|| Failure::runtime(format!("`{t}` is not a timestamp")))
        }
        WaitFor::SecondsPath(p) => select(p, effective, ctx).and_then(|v| match v.as_u64() {
            Some(s) => Ok(after(now, s as f64)),
            None => Err(Failure::runtime(format!(
                "The SecondsPath parameter does not reference a valid non-negative integer: {}",
                compact(&v)
            ))),
        }),
        WaitFor::TimestampPath(p) => select(p, effective, ctx).and_then(|v| {
            v.as_str().and_then(parse_timestamp).ok_or_else(|| {
                Failure::runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {}",
                    compact(&v)
                ))
            })
        }),
    }
}

/// The failure a Fail state ends with: its error and cause, fixed or from paths (a
/// path that does not give a string fails the state at run time instead).
fn fail_state(
    frame: &Frame,
    ctx: &Value,
    error: &Option<String>,
    error_path: &Option<String>,
    cause: &Option<String>,
    cause_path: &Option<String>,
) -> Failure {
    let pick = |fixed: &Option<String>, path: &Option<String>| -> Result<String, Failure> {
        match (fixed, path) {
            (Some(f), _) => Ok(f.clone()),
            (None, Some(p)) => {
                let v = if p.starts_with("States.") {
                    crate::intrinsics::evaluate(p, &frame.input, ctx)?
                } else {
                    select(p, &frame.input, ctx)?
                };
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    Failure::runtime(format!(
                        "The path {p} of a Fail state must point to a string, not {}",
                        compact(&v)
                    ))
                })
            }
            (None, None) => Ok(String::new()),
        }
    };
    match (pick(error, error_path), pick(cause, cause_path)) {
        (Ok(e), Ok(c)) => Failure::new(e, c),
        (Err(f), _) | (_, Err(f)) => f,
    }
}

/// A Parallel state forks a frame per branch, each with the state's input.
fn parallel(
    frame: &mut Frame,
    state: &State,
    effective: Value,
    ctx: &Value,
    cx: &mut Cx<'_>,
    branches: &[Machine],
    parameters: &Option<Value>,
) -> Result<(), Failure> {
    let input = match parameters {
        Some(p) => resolve(p, &effective, ctx)?,
        None => effective,
    };
    frame.prev = cx.rec.record("ParallelStateStarted", frame.prev, None);
    let children = branches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut path = frame.machine.clone();
            path.push((state.name.clone(), i));
            Some(Frame {
                machine: path,
                state: b.start_at.clone(),
                input: input.clone(),
                entered: cx.rec.now,
                retries: Vec::new(),
                retry_count: 0,
                prev: frame.prev,
                step: Step::Enter,
                resume: None,
            })
        })
        .collect::<Vec<_>>();
    let n = children.len();
    frame.step = Step::Fork {
        children,
        inputs: vec![Value::Null; n],
        results: vec![None; n],
        limit: 0,
    };
    Ok(())
}

/// A Map state forks an iteration per item (started as the concurrency limit allows).
#[allow(clippy::too_many_arguments)]
fn map(
    frame: &mut Frame,
    state: &State,
    effective: Value,
    ctx: &Value,
    cx: &mut Cx<'_>,
    items_path: &PathField,
    item_selector: &Option<Value>,
    max_concurrency: &Option<Seconds>,
) -> Result<(), Failure> {
    let items = match items_path {
        PathField::Path(p) => select(p, &effective, ctx)?,
        _ => effective.clone(),
    };
    let Value::Array(items) = items else {
        return Err(Failure::runtime(format!(
            "Map state '{}': the items path must point to an array, not {}",
            state.name,
            compact(&items)
        )));
    };
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        inputs.push(match item_selector {
            Some(sel) => resolve(sel, &effective, &context(frame, cx, None, Some((i, item))))?,
            None => item.clone(),
        });
    }
    let limit = match max_concurrency {
        Some(s) => seconds(Some(s), &effective, ctx)?.unwrap_or(0) as usize,
        None => 0,
    };
    frame.prev = cx.rec.record(
        "MapStateStarted",
        frame.prev,
        Some(json!({"length": inputs.len()})),
    );
    let n = inputs.len();
    frame.step = Step::Fork {
        children: (0..n).map(|_| None).collect(),
        inputs,
        results: vec![None; n],
        limit,
    };
    Ok(())
}

/// `TimeoutSeconds`-like values, fixed or read from the input.
fn seconds(s: Option<&Seconds>, input: &Value, ctx: &Value) -> Result<Option<u64>, Failure> {
    match s {
        None => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Path(p)) => {
            let v = select(p, input, ctx)?;
            v.as_u64().map(Some).ok_or_else(|| {
                Failure::runtime(format!(
                    "{p} must point to a non-negative integer, not {}",
                    compact(&v)
                ))
            })
        }
    }
}

/// A task's (or a Parallel/Map state's) result applied: ResultSelector, ResultPath,
/// OutputPath, then on to the next state.
fn finish(frame: &mut Frame, state: &State, result: Value, cx: &mut Cx<'_>) {
    let ctx = context(frame, cx, None, None);
    let (selector, result_path) = match &state.kind {
        Kind::Task {
            result_selector,
            result_path,
            ..
        }
        | Kind::Parallel {
            result_selector,
            result_path,
            ..
        }
        | Kind::Map {
            result_selector,
            result_path,
            ..
        } => (result_selector, result_path),
        _ => return,
    };
    let outcome = (|| {
        let selected = match selector {
            Some(s) => resolve(s, &result, &ctx)?,
            None => result,
        };
        let merged = apply_result_path(result_path, frame.input.clone(), selected, &state.name)?;
        apply_filter(&state.output_path, merged, &ctx, &state.name)
    })();
    match outcome {
        Ok(output) => exit(frame, state, output, state.next.clone(), cx),
        Err(f) => handle_error(frame, state, f, cx),
    }
}

/// Leaves the state with `output`: on to `next`, or the frame is done.
fn exit(frame: &mut Frame, state: &State, output: Value, next: Option<String>, cx: &mut Cx<'_>) {
    let kind = format!("{}StateExited", state.kind.type_name());
    frame.prev = cx
        .rec
        .record(&kind, frame.prev, Some(exited(&state.name, &output)));
    match next {
        Some(next) if !state.end => {
            frame.state = next;
            frame.input = output;
            frame.retries.clear();
            frame.retry_count = 0;
            frame.step = Step::Enter;
        }
        _ => frame.step = Step::Done { output },
    }
}

/// Whether a retrier's or catcher's ErrorEquals covers `error`.
fn covers(errors: &[String], error: &str) -> bool {
    let timeout = matches!(error, "States.Timeout" | "States.HeartbeatTimeout");
    errors.iter().any(|e| {
        e == error
            || e == "States.ALL"
            || (e == "States.TaskFailed" && !timeout && !error.starts_with("States.Runtime"))
            || (e == "States.Timeout" && error == "States.HeartbeatTimeout")
    })
}

/// A failure in the current state: retry, catch, or fail the frame.
fn handle_error(frame: &mut Frame, state: &State, failure: Failure, cx: &mut Cx<'_>) {
    if failure.is_catchable() {
        let (retry, catch): (&[Retrier], &[Catcher]) = state.kind.retry_and_catch();
        if let Some(i) = retry.iter().position(|r| covers(&r.errors, &failure.error)) {
            let r = &retry[i];
            frame.retries.resize(retry.len(), 0);
            let attempt = frame.retries[i];
            if attempt < r.max_attempts {
                let mut delay = r.interval_seconds * r.backoff_rate.powi(attempt as i32);
                if let Some(max) = r.max_delay_seconds {
                    delay = delay.min(max);
                }
                if r.full_jitter {
                    let seed = u64::from(frame.retry_count) ^ *cx.next_token ^ (frame.prev << 16);
                    delay *= fastrand::Rng::with_seed(seed).f64();
                }
                frame.retries[i] += 1;
                frame.retry_count += 1;
                frame.step = Step::Retry {
                    until: after(cx.rec.now, delay),
                };
                return;
            }
        }
        if let Some(c) = catch.iter().find(|c| covers(&c.errors, &failure.error)) {
            let error = json!({"Error": failure.error, "Cause": failure.cause});
            match apply_result_path(&c.result_path, frame.input.clone(), error, &state.name) {
                Ok(output) => {
                    let kind = format!("{}StateExited", state.kind.type_name());
                    frame.prev =
                        cx.rec
                            .record(&kind, frame.prev, Some(exited(&state.name, &output)));
                    frame.state = c.next.clone();
                    frame.input = output;
                    frame.retries.clear();
                    frame.retry_count = 0;
                    frame.step = Step::Enter;
                }
                Err(f) => frame.step = Step::Failed { failure: f },
            }
            return;
        }
    }
    frame.step = Step::Failed { failure };
}

/// Applies a callback task's answer to its frame.
fn deliver(frame: &mut Frame, root: &Machine, signal: Signal, cx: &mut Cx<'_>) {
    let Step::Task {
        resource,
        heartbeat,
        heartbeat_deadline,
        ..
    } = &mut frame.step
    else {
        return;
    };
    let (resource_type, short) = split_resource(resource);
    let machine = machine_at(root, &frame.machine);
    let Some(state) = machine.state(&frame.state) else {
        return;
    };
    match signal {
        Signal::Heartbeat { .. } => {
            if let Some(h) = heartbeat {
                *heartbeat_deadline = Some(after(cx.rec.now, *h as f64));
            }
        }
        Signal::Success { output, .. } => {
            frame.prev = cx.rec.record(
                "TaskSucceeded",
                frame.prev,
                Some(json!({"resourceType": resource_type, "resource": short, "output": payload(&output), "outputDetails": {"truncated": false}})),
            );
            finish(frame, state, output, cx);
        }
        Signal::Failure { failure, .. } => {
            frame.prev = cx.rec.record(
                "TaskFailed",
                frame.prev,
                Some(json!({"resourceType": resource_type, "resource": short, "error": failure.error, "cause": failure.cause})),
            );
            handle_error(frame, state, failure, cx);
        }
    }
}

/// `arn:aws:states:::sqs:sendMessage.waitForTaskToken` → (`sqs`, `sendMessage.waitForTaskToken`);
/// a Lambda or activity ARN → (`lambda`, the ARN).
fn split_resource(resource: &str) -> (String, String) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::")
        && let Some((service, action)) = rest.split_once(':')
    {
        return (service.to_owned(), action.to_owned());
    }
    let service = resource.split(':').nth(2).unwrap_or("unknown").to_owned();
    (service, resource.to_owned())
}
