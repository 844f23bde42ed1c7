//! The workflow engine of local mode: the `asl` runner, durable on SQLite.
//!
//! Every call that moves an execution (start, a task's answer, a timer) advances it and
//! then, in one transaction, stores the new execution record, appends its history events
//! and puts the messages its tasks sent on their queues (an outbox). So a crash loses
//! either the whole step or nothing: a task whose answer was recorded never runs again,
//! and a task recorded as scheduled always has its message. Waits, retries and timeouts
//! are kept as a wake-up time per execution; a timer loop advances executions when theirs
//! comes, including those left running by an earlier process.
//!
//! Running executions stay in memory between their moves, each behind its own lock: a
//! move neither reads nor parses the stored record, moves of one execution happen one at
//! a time, and the interpreter and the encoding run on the caller's thread, so the
//! database thread only writes. The database stays the truth: a move whose write fails
//! drops the copy in memory, and the next move reads the record back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use asl::{
    Answer, Execution, Failure, HistoryEvent, Machine, Signal, SignalError, Status, TaskCall, Tasks,
};
use async_trait::async_trait;
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use super::db::{Db, ExecCached, decode, encode, sql_int, unavailable};
use super::queue::{new_message_id, unix_ms};
use crate::ports::{Clock, ExecutionSummary, StoreError, WorkflowError, Workflows};

/// The integration that sends a message and waits for its task token to be answered.
const SQS_CALLBACK: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
/// The integration that sends a message and goes on.
const SQS_SEND: &str = "arn:aws:states:::sqs:sendMessage";

/// How many due executions the timer advances per round.
const TIMER_BATCH: usize = 64;

/// How many executions stay in memory between moves; past it, idle ones are dropped
/// (and read back from the database when they next move).
const IN_MEMORY: usize = 4096;

/// A queue that task states may send to, by the URL definitions name it with.
#[derive(Clone)]
pub struct QueueTarget {
    pub url: String,
    /// Puts a task's message on the queue in the transaction that records the step.
    pub outbox: super::queue::Outbox,
}

#[derive(Clone)]
pub struct LocalWorkflows {
    inner: Arc<Inner>,
}

/// A running execution held in memory, with the hash of the definition it runs.
struct Live {
    hash: String,
    execution: Execution,
}

/// One execution's place in memory: empty until it is read (or after a failed write).
type Slot = Arc<tokio::sync::Mutex<Option<Live>>>;

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
    /// Executions in memory, by ARN.
    live: Mutex<HashMap<String, Slot>>,
    /// Woken when an execution's wake-up time comes before `planned`.
    timer: Notify,
    /// When the timer loop means to wake up next (Unix ms); `i64::MAX` while it looks.
    planned: AtomicI64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl LocalWorkflows {
    /// A definition with the deployment's values substituted: its digest (how
    /// executions name the definition they run), its text and the parsed machine.
    fn prepare(
        &self,
        name: &str,
        definition: &Value,
    ) -> Result<(String, String, Machine), WorkflowError> {
        let text = crate::bundle::asl::substitute(definition, &self.inner.substitutions)
            .map_err(|e| WorkflowError::Store(StoreError::Corrupt(e.to_string())))?;
        let machine =
            Machine::parse(&text).map_err(|problems| WorkflowError::InvalidDefinition {
                machine: name.to_owned(),
                problems: asl::Problem::describe_all(&problems),
            })?;
        let digest = Sha256::digest(text.as_bytes());
        Ok((crate::signing::hex(&digest[..16]), text, machine))
    }

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
                live: Mutex::new(HashMap::new()),
                timer: Notify::new(),
                planned: AtomicI64::new(i64::MAX),
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
            // While it looks, any new wake-up time wakes it again.
            self.inner.planned.store(i64::MAX, Ordering::SeqCst);
            let next = match self.fire_due_timers().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "the workflow timers failed; retrying");
                    Some(unix_ms(self.inner.clock.now()) + 1_000)
                }
            };
            let now = unix_ms(self.inner.clock.now());
            let at = next.map_or(now + 60_000, |at| at.min(now + 60_000));
            self.inner.planned.store(at, Ordering::SeqCst);
            let sleep = u64::try_from(at - now).unwrap_or(0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(sleep)) => {}
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
                        .query_map(params![now, sql_int(TIMER_BATCH)], |r| r.get(0))
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
                conn.prepare_cached(
                    "SELECT min(wake_at) FROM wf_executions WHERE wake_at IS NOT NULL",
                )
                .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
                .map_err(unavailable)
            })
            .await?)
    }

    /// The in-memory place of execution `arn`. Idle executions are dropped from memory
    /// when there are too many.
    fn slot(&self, arn: &str) -> Slot {
        let mut live = lock(&self.inner.live);
        if live.len() >= IN_MEMORY && !live.contains_key(arn) {
            // Nobody else holds an idle slot, and nobody can take it while the map is
            // locked.
            live.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        live.entry(arn.to_owned()).or_default().clone()
    }

    /// Gives back `slot` after a move: an execution that is over (or could not be read)
    /// leaves memory, unless another caller is waiting for it.
    fn release(&self, arn: &str, slot: Slot, keep: bool) {
        if keep {
            return;
        }
        let mut live = lock(&self.inner.live);
        if Arc::strong_count(&slot) == 2 {
            live.remove(arn);
        }
    }

    /// Runs `operation` on the slot of `arn`, locked. An error drops what memory held
    /// (the operation may have changed it before failing): the next move reads the
    /// stored record.
    async fn with_slot<T>(
        &self,
        arn: &str,
        operation: impl AsyncFnOnce(&mut Option<Live>) -> Result<T, WorkflowError>,
    ) -> Result<T, WorkflowError> {
        let slot = self.slot(arn);
        let mut guard = slot.lock().await;
        let result = operation(&mut guard).await;
        if result.is_err() {
            *guard = None;
        }
        let keep = matches!(&*guard, Some(live) if live.execution.status == Status::Running);
        drop(guard);
        self.release(arn, slot, keep);
        result
    }

    /// Reads a stored execution.
    async fn load(&self, arn: &str) -> Result<Option<Live>, WorkflowError> {
        let arn = arn.to_owned();
        let row: Option<(String, String)> = self
            .inner
            .db
            .call(move |conn| {
                conn.row(
                    "SELECT hash, record FROM wf_executions WHERE arn = ?1",
                    params![arn],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await?;
        Ok(row
            .map(|(hash, record)| {
                Ok::<_, StoreError>(Live {
                    hash,
                    execution: decode(&record)?,
                })
            })
            .transpose()?)
    }

    /// Runs `step` on execution `arn` and stores what it did, in one transaction.
    async fn transact<F>(&self, arn: &str, step: F) -> Result<(), WorkflowError>
    where
        F: FnOnce(
                &mut Execution,
                &Machine,
                &mut Outbox<'_>,
                OffsetDateTime,
            ) -> Result<Vec<HistoryEvent>, WorkflowError>
            + Send,
    {
        self.with_slot(arn, async |live| {
            if live.is_none() {
                *live = self.load(arn).await?;
            }
            let Some(live) = live.as_mut() else {
                return Err(WorkflowError::NoSuchExecution(arn.to_owned()));
            };
            let machine = self.machine(&live.hash).await?;
            let now = self.inner.clock.now();
            let write = {
                let mut outbox = Outbox::new(&self.inner.queues, now);
                let events = step(&mut live.execution, &machine, &mut outbox, now)?;
                Write::of(&live.execution, &events, &outbox, None)?
            };
            self.commit(write).await
        })
        .await
    }

    /// Stores a move on the database thread.
    async fn commit(&self, write: Write) -> Result<(), WorkflowError> {
        let woken = write.woken();
        let wake = write.wake;
        self.inner
            .db
            .call(move |tx| {
                write.apply(tx)?;
                Ok(())
            })
            .await?;
        for q in woken {
            self.inner.queues[q].outbox.notify();
        }
        if wake.is_some_and(|at| at < self.inner.planned.load(Ordering::SeqCst)) {
            self.inner.timer.notify_one();
        }
        Ok(())
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

    /// The parsed definition with this hash (parsed once per process).
    async fn machine(&self, hash: &str) -> Result<Arc<Machine>, WorkflowError> {
        if let Some(m) = lock(&self.inner.machines).get(hash).cloned() {
            return Ok(m);
        }
        let owned = hash.to_owned();
        let text: String = self
            .inner
            .db
            .call(move |conn| {
                conn.row(
                    "SELECT definition FROM wf_definitions WHERE hash = ?1",
                    params![owned],
                    |r| r.get(0),
                )
            })
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("the definition {hash} is missing")))?;
        let machine = Arc::new(Machine::parse(&text).map_err(|problems| {
            StoreError::Corrupt(format!(
                "the stored definition {hash} no longer parses: {}",
                asl::Problem::describe_all(&problems)
            ))
        })?);
        lock(&self.inner.machines).insert(hash.to_owned(), machine.clone());
        Ok(machine)
    }

    /// Starts execution `arn` unless it exists (then: the same input is the same start).
    async fn start_in(
        &self,
        live: &mut Option<Live>,
        arn: &str,
        machine: &str,
        name: &str,
        input: &Value,
    ) -> Result<(), WorkflowError> {
        if live.is_none() {
            *live = self.load(arn).await?;
        }
        if let Some(existing) = live {
            return if existing.execution.input == *input {
                Ok(())
            } else {
                Err(WorkflowError::ExecutionAlreadyExists(name.to_owned()))
            };
        }
        let owned = machine.to_owned();
        let hash: String = self
            .inner
            .db
            .call(move |conn| {
                conn.row(
                    "SELECT hash FROM wf_machines WHERE name = ?1",
                    params![owned],
                    |r| r.get(0),
                )
            })
            .await?
            .ok_or_else(|| WorkflowError::NoSuchMachine(machine.to_owned()))?;
        let definition = self.machine(&hash).await?;
        let now = self.inner.clock.now();
        let (mut execution, mut events) = Execution::start(
            &definition,
            arn,
            &self.machine_arn(machine),
            input.clone(),
            now,
        );
        let write = {
            let mut outbox = Outbox::new(&self.inner.queues, now);
            events.extend(execution.advance(&definition, now, &mut outbox));
            Write::of(&execution, &events, &outbox, Some((machine, &hash)))?
        };
        self.commit(write).await?;
        *live = Some(Live { hash, execution });
        Ok(())
    }
}

/// A move of an execution as the database stores it, encoded before it goes to the
/// database thread: the record and its wake-up time, the new history events, and the
/// messages its tasks sent.
struct Write {
    arn: String,
    status: &'static str,
    wake: Option<i64>,
    record: String,
    events: Vec<(i64, String)>,
    /// Queue index, the queue to put it on, message.
    sends: Vec<(usize, super::queue::Outbox, Outgoing)>,
    sent_at: i64,
    /// A new execution's machine name and definition hash.
    created: Option<(String, String)>,
}

impl Write {
    fn of(
        execution: &Execution,
        events: &[HistoryEvent],
        outbox: &Outbox<'_>,
        created: Option<(&str, &str)>,
    ) -> Result<Write, StoreError> {
        // Rounded up, so that advancing at a due time always finds the wake-up reached.
        let wake = execution.next_wake().map(|t| {
            let nanos = t.unix_timestamp_nanos();
            i64::try_from(nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) > 0))
                .unwrap_or(i64::MAX)
        });
        Ok(Write {
            arn: execution.arn.clone(),
            status: execution.status.as_str(),
            wake,
            record: encode(execution)?,
            events: events
                .iter()
                .map(|e| Ok((sql_int(e.id), encode(e)?)))
                .collect::<Result<_, StoreError>>()?,
            sends: outbox
                .sends
                .iter()
                .map(|s| (s.queue, outbox.queues[s.queue].outbox.clone(), s.clone()))
                .collect(),
            sent_at: unix_ms(outbox.now),
            created: created.map(|(m, h)| (m.to_owned(), h.to_owned())),
        })
    }

    /// The queues that receive a message, each once.
    fn woken(&self) -> Vec<usize> {
        let mut queues: Vec<usize> = self.sends.iter().map(|s| s.0).collect();
        queues.sort_unstable();
        queues.dedup();
        queues
    }

    fn apply(&self, conn: &Connection) -> Result<(), StoreError> {
        match &self.created {
            Some((machine, hash)) => conn.exec(
                "INSERT INTO wf_executions (arn, machine, hash, status, wake_at, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![self.arn, machine, hash, self.status, self.wake, self.record],
            ),
            None => conn.exec(
                "UPDATE wf_executions SET status = ?2, wake_at = ?3, record = ?4 WHERE arn = ?1",
                params![self.arn, self.status, self.wake, self.record],
            ),
        }
        .map_err(unavailable)?;
        for (id, record) in &self.events {
            conn.exec(
                "INSERT INTO wf_history (execution, id, record) VALUES (?1, ?2, ?3)",
                params![self.arn, id, record],
            )
            .map_err(unavailable)?;
        }
        for (_, queue, send) in &self.sends {
            queue.put(conn, &send.id, &send.body, self.sent_at, send.delay)?;
        }
        Ok(())
    }
}

#[derive(Clone)]
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
        redrive_count: execution.redrive_count,
    }
}

#[async_trait]
impl Workflows for LocalWorkflows {
    async fn deploy(&self, name: &str, definition: &Value) -> Result<String, WorkflowError> {
        self.deploy_all(&[(name.to_owned(), definition.clone())])
            .await
            .map_err(|(_, e)| e)?;
        Ok(self.machine_arn(name))
    }

    /// Substitutes and parses every definition (in parallel), then records them all in
    /// one transaction.
    async fn deploy_all(
        &self,
        machines: &[(String, Value)],
    ) -> Result<(), (String, WorkflowError)> {
        let prepared = crate::parallel::map(machines, 64, |(name, definition)| {
            self.prepare(name, definition)
                .map_err(|e| (name.clone(), e))
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::with_capacity(prepared.len());
        {
            let mut parsed = lock(&self.inner.machines);
            for ((name, _), (hash, text, machine)) in machines.iter().zip(prepared) {
                parsed.insert(hash.clone(), Arc::new(machine));
                rows.push((name.clone(), hash, text));
            }
        }
        let first = machines
            .first()
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        self.inner
            .db
            .call(move |conn| {
                for (name, hash, text) in rows {
                    conn.exec(
                        "INSERT OR IGNORE INTO wf_definitions (hash, definition) VALUES (?1, ?2)",
                        params![hash, text],
                    )
                    .map_err(unavailable)?;
                    conn.exec(
                        "INSERT INTO wf_machines (name, hash) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
                        params![name, hash],
                    )
                    .map_err(unavailable)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| (first, WorkflowError::Store(e)))
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
        self.with_slot(&arn, async |live| {
            self.start_in(live, &arn, machine, name, input).await
        })
        .await?;
        Ok(arn)
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

    async fn redrive(&self, arn: &str) -> Result<(), WorkflowError> {
        self.transact(arn, |execution, machine, tasks, now| {
            let mut events = execution
                .redrive(now)
                .map_err(|e| WorkflowError::NotRedrivable(e.to_string()))?;
            events.extend(execution.advance(machine, now, tasks));
            Ok(events)
        })
        .await
    }

    async fn describe(&self, arn: &str) -> Result<Option<ExecutionSummary>, WorkflowError> {
        let arn = arn.to_owned();
        let record: Option<String> = self
            .inner
            .db
            .call(move |conn| {
                conn.row(
                    "SELECT record FROM wf_executions WHERE arn = ?1",
                    params![arn],
                    |r| r.get(0),
                )
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
