//! The workflow engine of local mode: the `asl` runner, durable on SQLite.
//!
//! Every call that moves an execution (start, a task's answer, a timer) runs as one job on
//! the database thread: it loads the execution, advances it, and in the same transaction
//! stores the new execution record, appends its history events and puts the messages its
//! tasks sent on their queues (an outbox). So a crash loses either the whole step or
//! nothing: a task whose answer was recorded never runs again, and a task recorded as
//! scheduled always has its message. Waits, retries and timeouts are kept as a wake-up
//! time per execution; a timer loop advances executions when theirs comes, including
//! those left running by an earlier process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asl::{
    Answer, Execution, Failure, HistoryEvent, Machine, Signal, SignalError, TaskCall, Tasks,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use super::db::{Db, ExecCached, decode, encode, unavailable};
use super::queue::{insert_message, new_message_id, unix_ms};
use crate::ports::{Clock, ExecutionSummary, StoreError, WorkflowError, Workflows};

/// The integration that sends a message and waits for its task token to be answered.
const SQS_CALLBACK: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
/// The integration that sends a message and goes on.
const SQS_SEND: &str = "arn:aws:states:::sqs:sendMessage";

/// How many due executions the timer advances per round.
const TIMER_BATCH: usize = 64;

/// A queue that task states may send to, by the URL definitions name it with.
#[derive(Clone)]
pub struct QueueTarget {
    pub url: String,
    pub name: String,
    /// Woken when a task puts a message on the queue.
    pub arrived: Arc<Notify>,
}

#[derive(Clone)]
pub struct LocalWorkflows {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    clock: Arc<dyn Clock>,
    /// `arn:aws:states:<region>:<account>:`
    arn_prefix: String,
    /// Placeholder and value, as SAM's DefinitionSubstitutions.
    substitutions: Vec<(String, String)>,
    queues: Vec<QueueTarget>,
    /// Parsed definitions by content hash.
    machines: Mutex<HashMap<String, Arc<Machine>>>,
    /// Woken when an execution's wake-up time may have moved earlier.
    timer: Notify,
}

impl LocalWorkflows {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        region: &str,
        substitutions: Vec<(String, String)>,
        queues: Vec<QueueTarget>,
    ) -> LocalWorkflows {
        LocalWorkflows {
            inner: Arc::new(Inner {
                db,
                clock,
                arn_prefix: format!("arn:aws:states:{region}:000000000000:"),
                substitutions,
                queues,
                machines: Mutex::new(HashMap::new()),
                timer: Notify::new(),
            }),
        }
    }

    fn machine_arn(&self, machine: &str) -> String {
        format!("{}stateMachine:{machine}", self.inner.arn_prefix)
    }

    /// Advances every execution whose wake-up time has come (a wait ended, a retry is due,
    /// a task timed out) until `shutdown` turns true. Executions left running by an
    /// earlier process are picked up the same way: their state is all in the database.
    pub async fn run_timers(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let next = match self.fire_due_timers().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "the workflow timers failed; retrying");
                    Some(unix_ms(self.inner.clock.now()) + 1_000)
                }
            };
            let now = unix_ms(self.inner.clock.now());
            let sleep = next.map_or(60_000, |at| (at - now).clamp(0, 60_000));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(u64::try_from(sleep).unwrap_or(0))) => {}
                _ = self.inner.timer.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Advances the executions that are due now; returns the next wake-up time.
    pub async fn fire_due_timers(&self) -> Result<Option<i64>, WorkflowError> {
        loop {
            let now = unix_ms(self.inner.clock.now());
            let due: Vec<String> = self
                .inner
                .db
                .call(move |conn| {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT arn FROM wf_executions WHERE wake_at IS NOT NULL AND wake_at <= ?1 ORDER BY wake_at LIMIT ?2",
                        )
                        .map_err(unavailable)?;
                    let rows = stmt
                        .query_map(params![now, TIMER_BATCH as i64], |r| r.get(0))
                        .map_err(unavailable)?;
                    rows.collect::<Result<_, _>>().map_err(unavailable)
                })
                .await?;
            for arn in &due {
                let moved = self
                    .transact(arn, |execution, machine, tasks, now| {
                        Ok(execution.advance(machine, now, tasks))
                    })
                    .await;
                if let Err(e) = moved {
                    tracing::warn!(execution = %arn, error = %e, "could not advance an execution");
                }
            }
            if due.len() < TIMER_BATCH {
                break;
            }
        }
        Ok(self
            .inner
            .db
            .call(|conn| {
                conn.query_row(
                    "SELECT min(wake_at) FROM wf_executions WHERE wake_at IS NOT NULL",
                    [],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .map_err(unavailable)
            })
            .await?)
    }

    /// Runs `step` on the stored execution `arn` and stores what it did, in one
    /// transaction.
    async fn transact<F>(&self, arn: &str, step: F) -> Result<(), WorkflowError>
    where
        F: FnOnce(
                &mut Execution,
                &Machine,
                &mut Outbox<'_>,
                OffsetDateTime,
            ) -> Result<Vec<HistoryEvent>, WorkflowError>
            + Send
            + 'static,
    {
        let inner = self.inner.clone();
        let arn = arn.to_owned();
        let now = self.inner.clock.now();
        let sent = self
            .inner
            .db
            .call(move |conn| {
                let tx = conn.savepoint().map_err(unavailable)?;
                let row: Option<(String, String)> = tx
                    .prepare_cached("SELECT hash, record FROM wf_executions WHERE arn = ?1")
                    .and_then(|mut s| {
                        s.query_row(params![arn], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .map_err(unavailable)?;
                let Some((hash, record)) = row else {
                    return Ok(Err(WorkflowError::NoSuchExecution(arn)));
                };
                let mut execution: Execution = decode(&record)?;
                let machine = match inner.machine(&tx, &hash) {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(e)),
                };
                let mut outbox = Outbox::new(&inner.queues, now);
                let events = match step(&mut execution, &machine, &mut outbox, now) {
                    Ok(events) => events,
                    Err(e) => return Ok(Err(e)),
                };
                save(&tx, &execution, &events, &outbox)?;
                tx.commit().map_err(unavailable)?;
                Ok(Ok(outbox.woken()))
            })
            .await??;
        self.after_commit(&sent);
        Ok(())
    }

    fn after_commit(&self, woken: &[usize]) {
        for &q in woken {
            self.inner.queues[q].arrived.notify_one();
        }
        self.inner.timer.notify_one();
    }

    async fn signal(&self, signal: Signal) -> Result<(), WorkflowError> {
        let arn =
            asl::execution::token_execution(signal.token()).ok_or(WorkflowError::InvalidToken)?;
        let result = self
            .transact(&arn, move |execution, machine, tasks, now| {
                execution
                    .signal(machine, signal, now, tasks)
                    .map_err(|e| match e {
                        SignalError::TaskTimedOut => WorkflowError::TaskTimedOut,
                        SignalError::InvalidToken => WorkflowError::InvalidToken,
                    })
            })
            .await;
        match result {
            Err(WorkflowError::NoSuchExecution(_)) => Err(WorkflowError::InvalidToken),
            other => other,
        }
    }

    fn substitute(&self, definition: &Value) -> Result<String, WorkflowError> {
        let mut text = encode(definition)?;
        for (placeholder, value) in &self.inner.substitutions {
            // The value goes inside a JSON string: escape it as one.
            let escaped = encode(&Value::String(value.clone()))?;
            text = text.replace(placeholder, &escaped[1..escaped.len() - 1]);
        }
        Ok(text)
    }
}

impl Inner {
    /// The parsed definition with this hash (parsed once per process).
    fn machine(&self, conn: &Connection, hash: &str) -> Result<Arc<Machine>, WorkflowError> {
        if let Some(m) = self.cached(hash) {
            return Ok(m);
        }
        let text: String = conn
            .query_row(
                "SELECT definition FROM wf_definitions WHERE hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::Corrupt(format!("the definition {hash} is missing")))?;
        let machine = Arc::new(Machine::parse(&text).map_err(|problems| {
            StoreError::Corrupt(format!(
                "the stored definition {hash} no longer parses: {}",
                describe_problems(&problems)
            ))
        })?);
        self.machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash.to_owned(), machine.clone());
        Ok(machine)
    }

    fn cached(&self, hash: &str) -> Option<Arc<Machine>> {
        self.machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }
}

fn describe_problems(problems: &[asl::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.at, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Stores an execution after a step: its record and wake-up time, its new history
/// events, and the messages its tasks sent.
fn save(
    conn: &Connection,
    execution: &Execution,
    events: &[HistoryEvent],
    outbox: &Outbox<'_>,
) -> Result<(), StoreError> {
    // Rounded up, so that advancing at a due time always finds the wake-up reached.
    let wake = execution.next_wake().map(|t| {
        let nanos = t.unix_timestamp_nanos();
        i64::try_from(nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) > 0))
            .unwrap_or(i64::MAX)
    });
    conn.exec(
        "UPDATE wf_executions SET status = ?2, wake_at = ?3, record = ?4 WHERE arn = ?1",
        params![
            execution.arn,
            execution.status.as_str(),
            wake,
            encode(execution)?
        ],
    )
    .map_err(unavailable)?;
    for event in events {
        conn.exec(
            "INSERT INTO wf_history (execution, id, record) VALUES (?1, ?2, ?3)",
            params![
                execution.arn,
                i64::try_from(event.id).unwrap_or(i64::MAX),
                encode(event)?
            ],
        )
        .map_err(unavailable)?;
    }
    let now = unix_ms(outbox.now);
    for send in &outbox.sends {
        let queue = &outbox.queues[send.queue].name;
        insert_message(conn, &send.id, queue, &send.body, now, send.delay)?;
    }
    Ok(())
}

struct Outgoing {
    queue: usize,
    id: String,
    body: String,
    delay: Duration,
}

/// Carries out Task states by collecting the messages they send; the caller writes them
/// in the transaction that records the step.
struct Outbox<'a> {
    queues: &'a [QueueTarget],
    now: OffsetDateTime,
    sends: Vec<Outgoing>,
}

impl<'a> Outbox<'a> {
    fn new(queues: &'a [QueueTarget], now: OffsetDateTime) -> Self {
        Outbox {
            queues,
            now,
            sends: Vec::new(),
        }
    }

    /// The queues that received a message, each once.
    fn woken(&self) -> Vec<usize> {
        let mut queues: Vec<usize> = self.sends.iter().map(|s| s.queue).collect();
        queues.sort_unstable();
        queues.dedup();
        queues
    }

    fn send(&mut self, parameters: &Value) -> Result<String, Failure> {
        let url = parameters
            .get("QueueUrl")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Failure::new(
                    "States.TaskFailed",
                    "the SQS task has no QueueUrl parameter",
                )
            })?;
        let queue = self
            .queues
            .iter()
            .position(|q| q.url == url)
            .ok_or_else(|| {
                Failure::new(
                    "SQS.QueueDoesNotExistException",
                    format!("no queue has the URL `{url}` in local mode"),
                )
            })?;
        let body = match parameters.get("MessageBody") {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => {
                return Err(Failure::new(
                    "States.TaskFailed",
                    "the SQS task has no MessageBody parameter",
                ));
            }
        };
        let delay = parameters
            .get("DelaySeconds")
            .and_then(Value::as_u64)
            .map_or(Duration::ZERO, Duration::from_secs);
        let id = new_message_id();
        self.sends.push(Outgoing {
            queue,
            id: id.clone(),
            body,
            delay,
        });
        Ok(id)
    }
}

impl Tasks for Outbox<'_> {
    fn invoke(&mut self, call: &TaskCall<'_>) -> Answer {
        let callback = match call.resource {
            SQS_CALLBACK => true,
            SQS_SEND => false,
            other => {
                return Answer::Failed(Failure::new(
                    "States.TaskFailed",
                    format!(
                        "local mode runs the SQS integrations only, not the resource `{other}`"
                    ),
                ));
            }
        };
        match self.send(call.parameters) {
            Ok(_) if callback => Answer::Callback,
            Ok(id) => Answer::Done(json!({"MessageId": id})),
            Err(failure) => Answer::Failed(failure),
        }
    }
}

fn summary(execution: &Execution) -> ExecutionSummary {
    ExecutionSummary {
        execution_arn: execution.arn.clone(),
        state_machine_arn: execution.machine_arn.clone(),
        name: execution.name.clone(),
        status: execution.status.as_str().to_owned(),
        start_date: execution.started,
        stop_date: execution.stopped,
        output: execution.output.clone(),
        error: execution.failure.as_ref().map(|f| f.error.clone()),
        cause: execution.failure.as_ref().map(|f| f.cause.clone()),
    }
}

#[async_trait]
impl Workflows for LocalWorkflows {
    async fn deploy(&self, name: &str, definition: &Value) -> Result<String, WorkflowError> {
        let text = self.substitute(definition)?;
        let machine =
            Machine::parse(&text).map_err(|problems| WorkflowError::InvalidDefinition {
                machine: name.to_owned(),
                problems: describe_problems(&problems),
            })?;
        let digest = Sha256::digest(text.as_bytes());
        let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.inner
            .machines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash.clone(), Arc::new(machine));
        let owned = name.to_owned();
        self.inner
            .db
            .call(move |conn| {
                conn.exec(
                    "INSERT OR IGNORE INTO wf_definitions (hash, definition) VALUES (?1, ?2)",
                    params![hash, text],
                )
                .map_err(unavailable)?;
                conn.exec(
                    "INSERT INTO wf_machines (name, hash) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
                    params![owned, hash],
                )
                .map_err(unavailable)
            })
            .await?;
        Ok(self.machine_arn(name))
    }

    fn execution_arn(&self, machine: &str, name: &str) -> String {
        format!("{}execution:{machine}:{name}", self.inner.arn_prefix)
    }

    async fn start(
        &self,
        machine: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, WorkflowError> {
        let arn = self.execution_arn(machine, name);
        let machine_arn = self.machine_arn(machine);
        let (inner, machine, input) = (self.inner.clone(), machine.to_owned(), input.clone());
        let returned = arn.clone();
        let now = self.inner.clock.now();
        let woken = self
            .inner
            .db
            .call(move |conn| {
                let tx = conn.savepoint().map_err(unavailable)?;
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT record FROM wf_executions WHERE arn = ?1",
                        params![arn],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if let Some(record) = existing {
                    let execution: Execution = decode(&record)?;
                    return Ok(if execution.input == input {
                        Ok(Vec::new())
                    } else {
                        Err(WorkflowError::ExecutionAlreadyExists(execution.name))
                    });
                }
                let hash: Option<String> = tx
                    .query_row(
                        "SELECT hash FROM wf_machines WHERE name = ?1",
                        params![machine],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(unavailable)?;
                let Some(hash) = hash else {
                    return Ok(Err(WorkflowError::NoSuchMachine(machine)));
                };
                let definition = match inner.machine(&tx, &hash) {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(e)),
                };
                let (mut execution, mut events) =
                    Execution::start(&definition, &arn, &machine_arn, input, now);
                let mut outbox = Outbox::new(&inner.queues, now);
                events.extend(execution.advance(&definition, now, &mut outbox));
                tx.exec(
                    "INSERT INTO wf_executions (arn, machine, hash, status, record) VALUES (?1, ?2, ?3, 'RUNNING', '{}')",
                    params![arn, machine, hash],
                )
                .map_err(unavailable)?;
                save(&tx, &execution, &events, &outbox)?;
                tx.commit().map_err(unavailable)?;
                Ok(Ok(outbox.woken()))
            })
            .await??;
        self.after_commit(&woken);
        Ok(returned)
    }

    async fn send_task_success(&self, token: &str, output: &Value) -> Result<(), WorkflowError> {
        self.signal(Signal::Success {
            token: token.to_owned(),
            output: output.clone(),
        })
        .await
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.signal(Signal::Failure {
            token: token.to_owned(),
            failure: Failure::new(error, cause),
        })
        .await
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError> {
        self.signal(Signal::Heartbeat {
            token: token.to_owned(),
        })
        .await
    }

    async fn stop(&self, arn: &str, error: &str, cause: &str) -> Result<(), WorkflowError> {
        let failure = Failure::new(error, cause);
        self.transact(arn, move |execution, _, _, now| {
            Ok(execution.stop(Some(failure), now))
        })
        .await
    }

    async fn describe(&self, arn: &str) -> Result<Option<ExecutionSummary>, WorkflowError> {
        let arn = arn.to_owned();
        let record: Option<String> = self
            .inner
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT record FROM wf_executions WHERE arn = ?1",
                    params![arn],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)
            })
            .await?;
        Ok(record
            .map(|r| decode::<Execution>(&r))
            .transpose()?
            .map(|e| summary(&e)))
    }

    async fn history(&self, arn: &str) -> Result<Vec<Value>, WorkflowError> {
        let arn = arn.to_owned();
        let rows: Vec<String> = self
            .inner
            .db
            .call(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT record FROM wf_history WHERE execution = ?1 ORDER BY id",
                    )
                    .map_err(unavailable)?;
                let rows = stmt
                    .query_map(params![arn], |r| r.get(0))
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)
            })
            .await?;
        rows.iter().map(|r| Ok(decode::<Value>(r)?)).collect()
    }
}
