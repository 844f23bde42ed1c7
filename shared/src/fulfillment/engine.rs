//! The fulfillment engine: runs an item's action list for a request, one step at a time,
//! durably. Every action execution has a record in the state store (keyed by request,
//! component, list and action) written with conditional writes, so a redelivered message
//! never re-runs an action that succeeded, and two workers never run the same attempt.
//! Waiting (a retry's backoff, a poll's interval) is not done in the worker: the engine
//! says how long to wait and the worker schedules the request again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::actions::{ActionError, ActionKind, Invocation, Step, extract_outputs};
use super::breaker::Breakers;
use super::vars::{Redactor, resolve_secrets, scope_keys};
use crate::catalog::document::{Action, ActionType, RetryPolicy};
use crate::integrations::ClientError;
use crate::ports::{Clock, Secrets, StateStore, StoreError};
use crate::requests::model::{EventDetail, EventKind, Note, RequestId, TargetEvent};
use crate::template::render::Renderer;

const TABLE: &str = "executions";

/// Defaults of a retry policy the item does not spell out.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_BACKOFF_RATE: f64 = 2.0;
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(300);
/// How long an action may run (polling included) when the item does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest one HTTP call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecStatus {
    Running,
    Pending,
    Succeeded,
    Failed,
}

/// The record of one action execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub status: ExecStatus,
    pub attempts: u32,
    pub delivery_id: String,
    #[serde(with = "crate::timestamp")]
    pub started_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub deadline: OffsetDateTime,
    #[serde(with = "crate::timestamp::option", default)]
    pub next_at: Option<OffsetDateTime>,
    /// A pending action's polling state.
    #[serde(default)]
    pub state: Value,
    #[serde(default)]
    pub outputs: Map<String, Value>,
    #[serde(default)]
    pub error: Option<String>,
    /// The last attempt got no answer in time: whether it took effect is unknown until
    /// another attempt (with the same `Idempotency-Key`) tells.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

/// Where a run of an action list stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Every action succeeded: their outputs by action id.
    Completed { outputs: Map<String, Value> },
    /// Come back after this long (a retry's backoff, a poll's interval).
    Waiting { after: Duration },
    /// An action failed for good.
    Failed {
        action: String,
        reason: String,
        /// Outputs of the actions that did succeed, by action id.
        outputs: Map<String, Value>,
    },
}

/// What a run is for: the request, the component of a bundle it is (`main` for a single
/// item), and the variables of every scope but `outputs` and `secrets`.
pub struct RunFor<'a> {
    pub request_id: RequestId,
    /// The resource the run makes or changes (see `Invocation::resource_id`).
    pub resource_id: String,
    /// The owning team (see `Invocation::owner`).
    pub owner: String,
    pub requester: String,
    pub item: &'a str,
    pub component: &'a str,
    pub context: &'a Value,
    /// A person takes over when the target's circuit breaker is open (an item that falls
    /// back to manual): the action fails at once instead of waiting for the breaker.
    pub hand_over_when_open: bool,
}

impl<'a> RunFor<'a> {
    /// The run of `component` (of the item `item`) for `request`, with `context`.
    pub fn of(
        request: &crate::requests::model::Request,
        item: &'a str,
        component: &'a str,
        context: &'a Value,
    ) -> RunFor<'a> {
        let resource = request
            .resource
            .clone()
            .unwrap_or_else(|| request.id.to_string());
        RunFor {
            request_id: request.id,
            resource_id: match request.kind {
                crate::requests::model::TargetKind::Item => resource,
                crate::requests::model::TargetKind::Bundle => {
                    crate::requests::model::member_id(&resource, component)
                }
            },
            owner: request.owner.clone(),
            requester: request.requester.sub.clone(),
            item,
            component,
            context,
            hand_over_when_open: false,
        }
    }
}

pub struct Engine {
    pub kinds: HashMap<ActionType, Arc<dyn ActionKind>>,
    pub renderer: Renderer,
    pub state: Arc<dyn StateStore>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub breakers: Breakers,
}

/// An attempt that was made: the action, the key its calls carried, the host they went to,
/// and the redactor that knows the secrets they read.
#[derive(Clone, Copy)]
struct Attempted<'a> {
    key: &'a str,
    action: &'a Action,
    redactor: &'a Redactor,
    host: Option<&'a str>,
}

/// Why an action's `with` could not be rendered.
#[derive(Debug, thiserror::Error)]
enum Unrendered {
    #[error("action `{action}`: {error}")]
    Secret {
        action: String,
        error: super::vars::SecretError,
    },
    /// The template's failure, its secrets redacted.
    #[error("{0}")]
    Template(String),
}

/// The runner of each action type.
pub type Kinds = HashMap<ActionType, Arc<dyn ActionKind>>;

/// Every action type, sharing one HTTP client.
pub fn standard_kinds(
    jira: Option<Arc<crate::integrations::jira::JiraClient>>,
    github: &crate::config::GithubConfig,
    secrets: Arc<dyn Secrets>,
    signer: Option<Arc<dyn super::actions::AwsSigner>>,
) -> Result<Kinds, ClientError> {
    use super::actions::github_workflow::GithubWorkflow;
    use super::actions::terraform::Terraform;
    use super::actions::{jira::Jira, rest::Rest, webhook::Webhook};
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("orchestrator/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let api = Arc::new(crate::integrations::github::GithubApi::new(
        http.clone(),
        &github.api_url,
        secrets,
        &github.token_secret,
    )?);
    let mut kinds: Kinds = HashMap::new();
    kinds.insert(
        ActionType::Rest,
        Arc::new(Rest {
            http: http.clone(),
            signer,
        }),
    );
    kinds.insert(ActionType::Webhook, Arc::new(Webhook { http }));
    kinds.insert(ActionType::Jira, Arc::new(Jira { client: jira }));
    kinds.insert(
        ActionType::GithubWorkflow,
        Arc::new(GithubWorkflow { api: api.clone() }),
    );
    kinds.insert(ActionType::Terraform, Arc::new(Terraform { api }));
    Ok(kinds)
}

/// Renders an action's `with` for its kind: the run's variables plus the `secrets` and
/// `outputs` scopes; URL leaves are percent-encoded. `list` names it in errors.
pub fn render_with(
    renderer: &Renderer,
    kind: &dyn ActionKind,
    action: &Action,
    list: &str,
    context: &Value,
    secrets: Value,
    outputs: Value,
) -> Result<Value, crate::template::render::RenderFailure> {
    let mut context = context.clone();
    context["secrets"] = secrets;
    context["outputs"] = outputs;
    let mut with = action_with(action);
    let kept: Vec<(&str, Value)> = kind
        .verbatim()
        .iter()
        .filter_map(|key| Some((*key, with.as_object_mut()?.remove(*key)?)))
        .collect();
    let mut rendered = renderer.render_config(
        &with,
        &context,
        &format!("{list}/{}/with", action.id),
        kind.url_pointers(),
    )?;
    if let Some(map) = rendered.as_object_mut() {
        map.extend(kept.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    Ok(rendered)
}

impl Engine {
    /// The engine with every action type.
    pub fn standard(
        jira: Option<Arc<crate::integrations::jira::JiraClient>>,
        github: &crate::config::GithubConfig,
        state: Arc<dyn StateStore>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, ClientError> {
        let kinds = standard_kinds(jira, github, secrets.clone(), None)?;
        Ok(Engine::new(kinds, state, secrets, clock))
    }

    /// The engine with these runners (shared with the planner, which only describes).
    pub fn new(
        kinds: Kinds,
        state: Arc<dyn StateStore>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        Engine {
            kinds,
            renderer: Renderer::new(),
            breakers: Breakers::new(state.clone(), clock.clone()),
            state,
            secrets,
            clock,
        }
    }
}

fn store_value<T: Serialize>(v: &T) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 120 {
        format!("{}m", secs / 60)
    } else if secs >= 1 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn remaining(until: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(until - now).unwrap_or(Duration::ZERO)
}

/// The wait before attempt `attempts + 1`: exponential from the interval, at most the
/// maximum, spread over its second half by jitter; a server's Retry-After wins when longer.
pub fn backoff(
    policy: Option<&RetryPolicy>,
    attempts: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let interval = policy
        .and_then(|p| p.interval)
        .map_or(DEFAULT_INTERVAL, |d| d.as_duration());
    let rate = policy
        .and_then(|p| p.backoff_rate)
        .unwrap_or(DEFAULT_BACKOFF_RATE);
    let max = policy
        .and_then(|p| p.max_interval)
        .map_or(DEFAULT_MAX_INTERVAL, |d| d.as_duration());
    let exponent = i32::try_from(attempts.saturating_sub(1))
        .unwrap_or(i32::MAX)
        .min(30);
    let wait = interval.mul_f64(rate.max(1.0).powi(exponent)).min(max);
    let wait = if policy.and_then(|p| p.jitter).unwrap_or(true) {
        wait.mul_f64(0.5 + fastrand::f64() * 0.5)
    } else {
        wait
    };
    match retry_after {
        Some(server) if server > wait => server.min(Duration::from_secs(3600)),
        _ => wait,
    }
}

impl Engine {
    fn key(run: &RunFor<'_>, list: &str, action: &str) -> String {
        format!("{}/{}/{list}/{action}", run.request_id, run.component)
    }

    /// Marks a one-off step of a request (`fallback`, ...) as done: `true` only the first
    /// time, so a redelivered message does not repeat it.
    pub async fn first_time(
        &self,
        request_id: crate::requests::model::RequestId,
        step: &str,
    ) -> Result<bool, StoreError> {
        self.mark(request_id, step, &Value::Bool(true)).await
    }

    /// Marks a one-off step with what is worth knowing about it; `true` only the first
    /// time (the first value stays).
    pub async fn mark(
        &self,
        request_id: crate::requests::model::RequestId,
        step: &str,
        value: &Value,
    ) -> Result<bool, StoreError> {
        let key = format!("{request_id}/{step}");
        match self.state.put(TABLE, &key, value, None).await {
            Ok(_) => Ok(true),
            Err(StoreError::VersionConflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The value of a step's mark, if the step was reached.
    pub async fn marked(
        &self,
        request_id: crate::requests::model::RequestId,
        step: &str,
    ) -> Result<Option<Value>, StoreError> {
        let key = format!("{request_id}/{step}");
        Ok(self.state.get(TABLE, &key).await?.map(|v| v.value))
    }

    /// The outputs of the actions of `list` that succeeded for this run, by action id,
    /// read from their records; nothing runs.
    pub async fn succeeded_outputs(
        &self,
        run: &RunFor<'_>,
        list: &str,
        actions: &[Action],
    ) -> Result<Map<String, Value>, StoreError> {
        let mut outputs = Map::new();
        for action in actions {
            let Some(record) = self
                .state
                .get(TABLE, &Self::key(run, list, &action.id))
                .await?
            else {
                continue;
            };
            let exec: Execution = serde_json::from_value(record.value)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if exec.status == ExecStatus::Succeeded {
                outputs.insert(action.id.clone(), Value::Object(exec.outputs));
            }
        }
        Ok(outputs)
    }

    /// Whether `action` of `list` failed with its outcome unknown (its last attempt got
    /// no answer in time).
    pub async fn outcome_unknown(
        &self,
        run: &RunFor<'_>,
        list: &str,
        action: &str,
    ) -> Result<bool, StoreError> {
        let Some(record) = self.state.get(TABLE, &Self::key(run, list, action)).await? else {
            return Ok(false);
        };
        let exec: Execution =
            serde_json::from_value(record.value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(exec.status == ExecStatus::Failed && exec.unknown)
    }

    /// Forgets the record of `action` of `list` if it failed, so that it runs again (with
    /// the same `Idempotency-Key`).
    pub async fn forget_failure(
        &self,
        run: &RunFor<'_>,
        list: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        let key = Self::key(run, list, action);
        match self.state.get(TABLE, &key).await? {
            Some(record) => self.forget_if_failed(&key, record).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// Deletes the record at `key` if it failed; whether it did.
    async fn forget_if_failed(
        &self,
        key: &str,
        record: crate::ports::Versioned,
    ) -> Result<bool, StoreError> {
        let failed = serde_json::from_value::<Execution>(record.value)
            .is_ok_and(|exec| exec.status == ExecStatus::Failed);
        if !failed {
            return Ok(false);
        }
        match self.state.delete(TABLE, key, record.version).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Forgets the actions of a request that failed for good, so that running their
    /// lists again (a redriven request) tries them afresh, with the same
    /// `Idempotency-Key`; succeeded actions keep their records and are not run again.
    /// Returns the keys forgotten (`<request>/<component>/<list>/<action>`).
    pub async fn forget_failures(
        &self,
        request_id: crate::requests::model::RequestId,
    ) -> Result<Vec<String>, StoreError> {
        /// More records than any request's actions and steps.
        const LIMIT: usize = 10_000;
        let mut forgotten = Vec::new();
        for (key, record) in self
            .state
            .list(TABLE, &format!("{request_id}/"), LIMIT)
            .await?
        {
            if self.forget_if_failed(&key, record).await? {
                forgotten.push(key);
            }
        }
        Ok(forgotten)
    }

    /// Moves `actions` (the list named `list`) forward as far as it can go now. Each
    /// action reads the outputs of the actions before it in `outputs`, on top of those the
    /// run's context already has there (a rollback's: the outputs of what it undoes).
    pub async fn advance(
        &self,
        run: &RunFor<'_>,
        list: &str,
        actions: &[Action],
        notes: &mut Vec<Note>,
    ) -> Result<Progress, StoreError> {
        let mut outputs = run
            .context
            .get("outputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for action in actions {
            let key = Self::key(run, list, &action.id);
            let record = self.state.get(TABLE, &key).await?;
            let (mut exec, version) = match record {
                Some(v) => (
                    serde_json::from_value::<Execution>(v.value)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    Some(v.version),
                ),
                None => {
                    let now = self.clock.now();
                    let timeout = action.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_duration());
                    (
                        Execution {
                            status: ExecStatus::Running,
                            attempts: 0,
                            delivery_id: uuid::Uuid::now_v7().to_string(),
                            started_at: now,
                            deadline: now + timeout,
                            next_at: None,
                            state: Value::Null,
                            outputs: Map::new(),
                            error: None,
                            unknown: false,
                        },
                        None,
                    )
                }
            };
            match exec.status {
                ExecStatus::Succeeded => {
                    outputs.insert(action.id.clone(), Value::Object(exec.outputs));
                    continue;
                }
                ExecStatus::Failed => {
                    return Ok(Progress::Failed {
                        action: action.id.clone(),
                        reason: exec.error.unwrap_or_default(),
                        outputs,
                    });
                }
                ExecStatus::Running | ExecStatus::Pending => {}
            }
            let now = self.clock.now();
            if let Some(next) = exec.next_at
                && next > now
            {
                return Ok(Progress::Waiting {
                    after: remaining(next, now),
                });
            }
            let noted = notes.len();
            let step = self
                .step(run, list, action, &key, &mut exec, version, &outputs, notes)
                .await?;
            // Every entry of the step is about its action.
            for note in &mut notes[noted..] {
                note.detail.action = Some(action.id.clone());
            }
            let outcome = match &step {
                None => Some("succeeded"),
                Some(Progress::Failed { .. }) => Some("failed"),
                Some(_) => None,
            };
            if let Some(outcome) = outcome {
                let kind = action.config.action_type();
                crate::metrics::count(
                    crate::metrics::ACTIONS,
                    &[("ActionType", kind.as_str()), ("Outcome", outcome)],
                    1,
                );
            }
            match step {
                None => {
                    outputs.insert(action.id.clone(), Value::Object(exec.outputs));
                }
                Some(Progress::Failed { action, reason, .. }) => {
                    return Ok(Progress::Failed {
                        action,
                        reason,
                        outputs,
                    });
                }
                Some(other) => return Ok(other),
            }
        }
        Ok(Progress::Completed { outputs })
    }

    /// One attempt (or poll) of one action. `None`: it succeeded (outputs in `exec`).
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        run: &RunFor<'_>,
        list: &str,
        action: &Action,
        key: &str,
        exec: &mut Execution,
        version: Option<u64>,
        earlier: &Map<String, Value>,
        notes: &mut Vec<Note>,
    ) -> Result<Option<Progress>, StoreError> {
        let id = action.id.clone();
        let fail = |reason: String| Progress::Failed {
            action: id.clone(),
            reason,
            outputs: Map::new(),
        };
        let now = self.clock.now();
        let kind_type = action.config.action_type();
        let Some(kind) = self.kinds.get(&kind_type).cloned() else {
            return Ok(Some(fail(format!(
                "no runner for {} actions",
                kind_type.as_str()
            ))));
        };
        // Past its deadline an action starts no new attempt, but one whose last attempt's
        // outcome is unknown goes on retrying (within its attempts) to learn it.
        if now >= exec.deadline && !exec.unknown {
            let reason = format!(
                "action `{}` timed out: not finished {} after it started",
                action.id,
                human(remaining(exec.deadline, exec.started_at))
            );
            return self
                .finish_failed(key, exec, version, reason, notes, fail)
                .await;
        }

        let (with, redactor) = match self
            .render(kind.as_ref(), run, list, action, earlier)
            .await?
        {
            Ok(rendered) => rendered,
            Err(unrendered) => {
                let reason = unrendered.to_string();
                return self
                    .finish_failed(key, exec, version, reason, notes, fail)
                    .await;
            }
        };

        let host = kind.target(&with);
        if let Some(host) = &host
            && let Err(open) = self.breakers.check(host).await?
        {
            let reason = format!("action `{}`: {open}", action.id);
            // The breaker spares the target; the request waits for it to let calls
            // through again, within the action's time. Only an item a person takes over
            // from fails at once.
            let wait = open.at - now;
            if !run.hand_over_when_open && open.at < exec.deadline {
                notes.push(
                    Note::new(EventKind::CircuitOpen, format!("{reason}; waiting for it"))
                        .with(EventDetail::cause(open.to_string())),
                );
                // Waiters wake spread over a second, not all at once on the probe.
                let spread = Duration::from_millis(fastrand::u64(0..1000));
                return Ok(Some(Progress::Waiting {
                    after: wait.unsigned_abs() + spread,
                }));
            }
            notes.push(
                Note::new(EventKind::CircuitOpen, reason.clone())
                    .with(EventDetail::cause(open.to_string())),
            );
            return Ok(Some(fail(reason)));
        }

        // Claim the attempt before making it: a concurrent worker's claim wins or loses
        // here, never at the target.
        exec.attempts += 1;
        let version = match self
            .state
            .put(TABLE, key, &store_value(exec)?, version)
            .await
        {
            Ok(v) => v,
            Err(StoreError::VersionConflict { .. }) => {
                return Ok(Some(Progress::Waiting {
                    after: Duration::from_secs(5),
                }));
            }
            Err(e) => return Err(e),
        };
        if exec.status == ExecStatus::Running && exec.attempts == 1 {
            notes.push(Note::new(
                EventKind::ActionStarted,
                format!("action `{}` ({}) started", action.id, kind_type.as_str()),
            ));
        }
        let invocation = Invocation {
            idempotency_key: key.to_owned(),
            delivery_id: exec.delivery_id.clone(),
            started_at: exec
                .started_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            request_id: run.request_id,
            resource_id: run.resource_id.clone(),
            owner: run.owner.clone(),
            requester: run.requester.clone(),
            item: run.item.to_owned(),
            action_id: action.id.clone(),
            attempt: exec.attempts,
            // One attempt's own time, not what is left of the action's: an answer cut
            // short by the deadline would leave an outcome unknown for nothing.
            call_timeout: action
                .attempt_timeout
                .map_or(CALL_TIMEOUT, |t| t.as_duration())
                .max(Duration::from_millis(1)),
        };
        let result = if exec.status == ExecStatus::Pending {
            kind.poll(&invocation, &with, &exec.state).await
        } else {
            kind.start(&invocation, &with).await
        };
        if let Some(host) = &host {
            // A permanent error is the target answering: it is up.
            match &result {
                Err(ActionError::Retryable { .. } | ActionError::Unknown { .. }) => {
                    self.breakers.failure(host).await?
                }
                _ => self.breakers.success(host).await?,
            }
        }
        let attempted = Attempted {
            key,
            action,
            redactor: &redactor,
            host: host.as_deref(),
        };
        self.record_result(&attempted, exec, version, result, notes)
            .await
    }

    /// The action's `with` rendered for its kind, with the secrets it names resolved now
    /// (and a redactor that knows them); the inner `Err` says why it cannot be, which
    /// fails the action.
    async fn render(
        &self,
        kind: &dyn ActionKind,
        run: &RunFor<'_>,
        list: &str,
        action: &Action,
        earlier: &Map<String, Value>,
    ) -> Result<Result<(Value, Redactor), Unrendered>, StoreError> {
        let mut redactor = Redactor::default();
        let secrets = match resolve_secrets(
            self.secrets.as_ref(),
            &scope_keys(&action_with(action), "secrets"),
            &mut redactor,
        )
        .await
        {
            Ok(secrets) => secrets,
            Err(super::vars::SecretError::Store(e)) => return Err(e),
            Err(e) => {
                return Ok(Err(Unrendered::Secret {
                    action: action.id.clone(),
                    error: e,
                }));
            }
        };
        let rendered = render_with(
            &self.renderer,
            kind,
            action,
            list,
            run.context,
            secrets,
            Value::Object(earlier.clone()),
        );
        Ok(match rendered {
            Ok(with) => Ok((with, redactor)),
            // A template's error may quote a value it read: redacted.
            Err(e) => Err(Unrendered::Template(redactor.text(&e.to_string()))),
        })
    }

    /// Records what an attempt (or a poll) came to: its outputs, the state to poll, the
    /// next attempt after a backoff, or the action's failure. `None`: it succeeded.
    async fn record_result(
        &self,
        attempted: &Attempted<'_>,
        exec: &mut Execution,
        version: u64,
        result: Result<Step, ActionError>,
        notes: &mut Vec<Note>,
    ) -> Result<Option<Progress>, StoreError> {
        let Attempted {
            key,
            action,
            redactor,
            host,
        } = *attempted;
        exec.unknown = matches!(result, Err(ActionError::Unknown { .. }));
        let fail = |reason: String| Progress::Failed {
            action: action.id.clone(),
            reason,
            outputs: Map::new(),
        };
        let now = self.clock.now();
        match result {
            Ok(Step::Done(document)) => match extract_outputs(&document, &action.outputs) {
                Ok(values) => {
                    exec.status = ExecStatus::Succeeded;
                    exec.outputs = match redactor.value(&Value::Object(values)) {
                        Value::Object(map) => map,
                        _ => Map::new(),
                    };
                    exec.state = Value::Null;
                    exec.next_at = None;
                    self.write(key, exec, version).await?;
                    notes.push(Note::new(
                        EventKind::ActionSucceeded,
                        format!("action `{}` succeeded", action.id),
                    ));
                    Ok(None)
                }
                Err(e) => {
                    let reason = redactor.text(&format!("action `{}`: {e}", action.id));
                    self.finish_failed(key, exec, Some(version), reason, notes, fail)
                        .await
                }
            },
            Ok(Step::Pending {
                state,
                check_after,
                events,
            }) => {
                let first = exec.status != ExecStatus::Pending;
                exec.status = ExecStatus::Pending;
                exec.state = state;
                exec.attempts = 0;
                exec.next_at = Some(now + check_after);
                self.write(key, exec, version).await?;
                if first {
                    notes.push(Note::new(
                        EventKind::ActionWaiting,
                        format!(
                            "action `{}` accepted; checking its status every {}",
                            action.id,
                            human(check_after)
                        ),
                    ));
                }
                for event in events {
                    let reason = event
                        .reason
                        .as_deref()
                        .map(|r| format!(": {}", redactor.text(r)))
                        .unwrap_or_default();
                    let what = event
                        .resource_type
                        .as_deref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default();
                    let text = format!(
                        "action `{}`: {}{what} {}{reason}",
                        action.id, event.resource, event.status
                    );
                    notes.push(
                        Note::new(EventKind::ActionProgress, text).with(EventDetail {
                            action: Some(action.id.clone()),
                            target_event: Some(TargetEvent {
                                reason: event.reason.as_deref().map(|r| redactor.text(r)),
                                ..event
                            }),
                            ..Default::default()
                        }),
                    );
                }
                Ok(Some(Progress::Waiting { after: check_after }))
            }
            Err(e) => {
                let max = action
                    .retry
                    .as_ref()
                    .and_then(|r| r.max_attempts)
                    .unwrap_or(DEFAULT_MAX_ATTEMPTS);
                let message = redactor.text(&e.to_string());
                // What the target knows the calls by, for an outcome that is unknown.
                let unknown = EventDetail {
                    idempotency_key: Some(key.to_owned()),
                    target: host.map(str::to_owned),
                    attempt: Some(exec.attempts),
                    cause: Some(message.clone()),
                    ..Default::default()
                };
                match e {
                    ActionError::Retryable { retry_after, .. } if exec.attempts < max => {
                        let wait = backoff(action.retry.as_ref(), exec.attempts, retry_after);
                        exec.next_at = Some(now + wait);
                        self.write(key, exec, version).await?;
                        let text = format!(
                            "action `{}` attempt {} of {max} failed: {message}; next attempt in {}",
                            action.id,
                            exec.attempts,
                            human(wait)
                        );
                        notes.push(Note::new(EventKind::ActionRetry, text).with(EventDetail {
                            attempt: Some(exec.attempts),
                            cause: Some(message),
                            ..Default::default()
                        }));
                        Ok(Some(Progress::Waiting { after: wait }))
                    }
                    ActionError::Unknown { .. } if exec.attempts < max => {
                        let wait = backoff(action.retry.as_ref(), exec.attempts, None);
                        exec.next_at = Some(now + wait);
                        self.write(key, exec, version).await?;
                        let text = format!(
                            "action `{}` attempt {} of {max}: {message}, so whether it took effect is unknown; the next attempt, with the same Idempotency-Key, in {}",
                            action.id,
                            exec.attempts,
                            human(wait)
                        );
                        notes.push(Note::new(EventKind::ActionRetry, text).with(unknown));
                        Ok(Some(Progress::Waiting { after: wait }))
                    }
                    ActionError::Unknown { .. } => {
                        let reason = format!(
                            "action `{}`: outcome unknown after {} attempts ({message}); its target{} may hold what it made under Idempotency-Key {key}",
                            action.id,
                            exec.attempts,
                            host.map(|h| format!(" {h}")).unwrap_or_default()
                        );
                        notes.push(
                            Note::new(EventKind::OutcomeUnknown, reason.clone()).with(unknown),
                        );
                        self.finish_failed(key, exec, Some(version), reason, notes, fail)
                            .await
                    }
                    ActionError::Retryable { .. } => {
                        let reason = format!(
                            "action `{}` failed after {} attempts: {message}",
                            action.id, exec.attempts
                        );
                        self.finish_failed(key, exec, Some(version), reason, notes, fail)
                            .await
                    }
                    ActionError::Permanent { .. } => {
                        let reason = format!("action `{}` failed: {message}", action.id);
                        self.finish_failed(key, exec, Some(version), reason, notes, fail)
                            .await
                    }
                }
            }
        }
    }

    async fn write(&self, key: &str, exec: &Execution, version: u64) -> Result<u64, StoreError> {
        self.state
            .put(TABLE, key, &store_value(exec)?, Some(version))
            .await
    }

    async fn finish_failed(
        &self,
        key: &str,
        exec: &mut Execution,
        version: Option<u64>,
        reason: String,
        notes: &mut Vec<Note>,
        fail: impl Fn(String) -> Progress,
    ) -> Result<Option<Progress>, StoreError> {
        exec.status = ExecStatus::Failed;
        exec.error = Some(reason.clone());
        exec.next_at = None;
        match self
            .state
            .put(TABLE, key, &store_value(exec)?, version)
            .await
        {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => {
                return Ok(Some(Progress::Waiting {
                    after: Duration::from_secs(1),
                }));
            }
            Err(e) => return Err(e),
        }
        notes.push(
            Note::new(EventKind::ActionFailed, reason.clone())
                .with(EventDetail::cause(reason.clone())),
        );
        Ok(Some(fail(reason)))
    }
}

/// An action's `with` as the document wrote it (templates unrendered).
pub fn action_with(action: &Action) -> Value {
    serde_json::to_value(action)
        .ok()
        .and_then(|mut v| v.get_mut("with").map(Value::take))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::document::DurationSpec;

    #[test]
    fn backoff_grows_caps_jitters_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: Some(5),
            interval: Some("1s".parse::<DurationSpec>().unwrap()),
            backoff_rate: Some(2.0),
            max_interval: Some("5s".parse::<DurationSpec>().unwrap()),
            jitter: Some(false),
        };
        let waits: Vec<u64> = (1..=5)
            .map(|n| backoff(Some(&policy), n, None).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(
            backoff(Some(&policy), 1, Some(Duration::from_secs(30))).as_secs(),
            30
        );
        assert_eq!(
            backoff(Some(&policy), 3, Some(Duration::from_secs(1))).as_secs(),
            4
        );
        let jittered = RetryPolicy {
            jitter: None,
            ..policy
        };
        for _ in 0..100 {
            let w = backoff(Some(&jittered), 3, None);
            assert!(
                w >= Duration::from_secs(2) && w <= Duration::from_secs(4),
                "{w:?}"
            );
        }
    }
}
