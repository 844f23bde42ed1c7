//! The ports: narrow interfaces between the domain and the outside world. Each has an
//! embedded adapter (SQLite, local files) for local mode and an AWS adapter in the `aws`
//! crate (DynamoDB, SQS, Step Functions, Secrets Manager); one behaviour suite per port (`crate::testkit`) runs
//! against every adapter so that local mode stays faithful to AWS.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::requests::model::{AuditEntry, Request, RequestEvent, RequestId, RequestStatus};
use crate::resources::model::{Resource, ResourceChange, ResourceStatus};

/// The catalog being served: a validated snapshot, replaced whole when a new version is
/// accepted, so a request never sees half a catalog.
pub trait CatalogStore: Send + Sync {
    fn current(&self) -> std::sync::Arc<crate::catalog::snapshot::CatalogSnapshot>;

    /// Serves `snapshot` from now on, whole; callers holding the previous one keep it.
    fn publish(&self, snapshot: crate::catalog::snapshot::CatalogSnapshot);
}

/// Failures of a store or queue. `Unavailable` is transient: the caller may retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the record changed since it was read (expected version {expected})")]
    VersionConflict { expected: u64 },
    #[error("no such record")]
    NotFound,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The time, from one place, so tests can control it.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A page of results and the cursor for the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Which requests to list. Every filter given must match; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestQuery {
    pub requester: Option<String>,
    pub owner: Option<String>,
    pub status: Option<RequestStatus>,
    pub target: Option<String>,
    /// Only requests older than this cursor (from a previous page).
    pub cursor: Option<String>,
    /// Only requests created in this span (by the time in their id: a bounded range of
    /// the index, not a filter over everything older).
    pub created: Option<std::ops::Range<OffsetDateTime>>,
    pub limit: usize,
}

impl RequestQuery {
    /// The id range to read, newest first: ids at or above the first and below the second.
    /// The upper bound is the cursor or the end of `created`, whichever is lower.
    pub fn id_bounds(&self) -> (Option<String>, Option<String>) {
        let Some(created) = &self.created else {
            return (None, self.cursor.clone());
        };
        let end = RequestId::floor(created.end).to_string();
        let below = match &self.cursor {
            Some(cursor) if *cursor < end => cursor.clone(),
            _ => end,
        };
        (
            Some(RequestId::floor(created.start).to_string()),
            Some(below),
        )
    }
}

/// What `RequestStore::create` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// The request is stored. `handed_off`: the store also put the handoff message on the
    /// action queue, in the same transaction (a store built with an outbox, where the
    /// queue lives in the same database); otherwise sending it is the caller's part.
    New { handed_off: bool },
    /// A request with the same requester and idempotency key was already stored: this one.
    Existing(Box<Request>),
}

/// Requests and their timelines.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Stores a new request (version 1) with its first event. When the request carries an
    /// idempotency key already used by the same requester, nothing is written and the
    /// stored request is returned.
    ///
    /// `handoff` is the message that hands a new request to the worker: a store with an
    /// outbox puts it on the action queue in the same transaction (so a request is never
    /// stored without it), and says so in [`Created::New`].
    async fn create(
        &self,
        request: &Request,
        event: &RequestEvent,
        handoff: &str,
    ) -> Result<Created, StoreError>;

    async fn get(&self, id: &RequestId) -> Result<Option<Request>, StoreError>;

    /// Replaces the stored request, whose version must be `request.version - 1`
    /// (optimistic concurrency), and appends `event` to its timeline, atomically.
    ///
    /// The store numbers timeline events (`seq`), each after the last: the `seq` an event
    /// is given to store is ignored.
    async fn update(&self, request: &Request, event: &RequestEvent) -> Result<(), StoreError>;

    /// Appends `events` to a request's timeline, in order, without changing the request
    /// (notes of progress). Appends never conflict with each other or with updates, so
    /// the components of a bundle running at the same time each note freely. `NotFound`
    /// when there is no such request.
    async fn append(&self, id: &RequestId, events: &[RequestEvent]) -> Result<(), StoreError>;

    async fn list(&self, query: &RequestQuery) -> Result<Page<Request>, StoreError>;

    /// The timeline, oldest first.
    async fn events(&self, id: &RequestId) -> Result<Vec<RequestEvent>, StoreError>;

    /// Replaces a request's whole timeline with `marker` (retention, once the timeline is
    /// exported): afterwards [`events`](Self::events) reads `marker` alone, numbered 1.
    /// `NotFound` when there is no such request.
    async fn replace_timeline(
        &self,
        id: &RequestId,
        marker: &RequestEvent,
    ) -> Result<(), StoreError>;

    /// The request whose manual fulfillment is the given JIRA issue.
    async fn find_by_ticket(&self, key: &str) -> Result<Option<Request>, StoreError>;
}

/// Which resources to list. Every filter given must match; newest first. Deleted
/// resources (tombstones) are listed only when `status` asks for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceQuery {
    pub owner: Option<String>,
    pub requester: Option<String>,
    pub item: Option<String>,
    pub status: Option<ResourceStatus>,
    /// Only resources older than this cursor (from a previous page).
    pub cursor: Option<String>,
    pub limit: usize,
}

/// Resource records and their histories.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Stores a new resource (version 1) with the first entry of its history, atomically.
    /// `false` when a resource with that id exists already: nothing is written (recording
    /// is idempotent under redelivery).
    async fn create(
        &self,
        resource: &Resource,
        change: &ResourceChange,
    ) -> Result<bool, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<Resource>, StoreError>;

    /// Replaces the stored resource, whose version must be `resource.version - 1`
    /// (optimistic concurrency: locks are taken this way), and appends `change` to its
    /// history, atomically. `VersionConflict` when another write came first, `NotFound`
    /// when there is no such resource.
    async fn update(
        &self,
        resource: &Resource,
        change: Option<&ResourceChange>,
    ) -> Result<(), StoreError>;

    async fn list(&self, query: &ResourceQuery) -> Result<Page<Resource>, StoreError>;

    /// The history, oldest first.
    async fn history(&self, id: &str) -> Result<Vec<ResourceChange>, StoreError>;
}

/// Which audit entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// The audit log: every state-changing call, append-only.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Records `entry`. `Ok` may come before the entry is durable (local mode queues it
    /// on its database thread), but a `list` that starts afterwards sees it.
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    async fn list(&self, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError>;

    /// Some of the entries recorded before `before`, oldest first within what is returned,
    /// at most `limit` (none: nothing is older). What retention exports and removes next;
    /// not necessarily the very oldest of a sharded log.
    async fn older_than(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Removes the entries with these ids (retention, once they are exported); an id
    /// that is not there is skipped.
    async fn remove(&self, ids: &[String]) -> Result<(), StoreError>;
}

/// Where exports go (retention's JSON Lines files): a directory in local mode, an S3
/// bucket on AWS.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Stores `body` under `key` (`/`-separated), replacing what is there (an export
    /// written again after a stop is the same export); durable when it returns.
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), StoreError>;

    /// What is stored under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Where the archive is, for people (`file:///…`, `s3://bucket/prefix`).
    fn location(&self) -> String;
}

/// A message received from a queue. `receipt` identifies this delivery: only it can
/// delete the message or change its visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// A work queue with SQS semantics: at-least-once delivery; a received message is
/// invisible for the visibility timeout and comes back unless deleted; after
/// `max_receives` receives it moves to the dead-letter queue instead.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues a message, visible after `delay`. Returns its id.
    async fn send(&self, body: &str, delay: Duration) -> Result<String, StoreError>;

    /// Up to `max` visible messages, each hidden for `visibility`.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Message>, StoreError>;

    /// Deletes a received message. A stale receipt (the message was received again since)
    /// is `NotFound`: the other delivery owns it now.
    async fn delete(&self, receipt: &str) -> Result<(), StoreError>;

    /// Hides a received message for `visibility` from now (zero: visible at once).
    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), StoreError>;

    /// The messages that exhausted their receives, oldest first (for operators).
    async fn dead_letters(&self, limit: usize) -> Result<Vec<Message>, StoreError>;

    /// Waits until a message may have arrived, at most `timeout` (SQS's long polling).
    /// The default just sleeps.
    async fn wait(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }
}

/// Named secrets (integration credentials, the `secrets` template scope).
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The secret's value, or `None` when there is no such secret.
    async fn get(&self, name: &str) -> Result<Option<crate::secret::SecretString>, StoreError>;
}

/// A record of the state store and the version that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub value: serde_json::Value,
    pub version: u64,
}

/// Small shared records that several workers update: action execution records, circuit
/// breakers, admin overrides. Every write is conditional on the version read, so two
/// workers (two Lambdas, or two deliveries of one message) never both win; DynamoDB maps a record to an item with a
/// version attribute and a condition expression.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn get(&self, table: &str, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Writes `value` when the stored version is `expected` (`None`: only if there is no
    /// record yet) and returns the new version. Otherwise `StoreError::VersionConflict`.
    async fn put(
        &self,
        table: &str,
        key: &str,
        value: &serde_json::Value,
        expected: Option<u64>,
    ) -> Result<u64, StoreError>;

    /// Removes the record when its version is `expected`; `NotFound` when there is none.
    async fn delete(&self, table: &str, key: &str, expected: u64) -> Result<(), StoreError>;

    /// The records of `table` whose key starts with `prefix`, in key order, at most `limit`.
    async fn list(
        &self,
        table: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError>;

    /// Writes `value` unless there is a record already, which then stands (writing once
    /// again is a no-op).
    async fn put_once(
        &self,
        table: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        match self.put(table, key, value, None).await {
            Ok(_) | Err(StoreError::VersionConflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the record, whatever its version (none, or removed meanwhile: a no-op).
    async fn forget(&self, table: &str, key: &str) -> Result<(), StoreError> {
        let Some(found) = self.get(table, key).await? else {
            return Ok(());
        };
        match self.delete(table, key, found.version).await {
            Ok(()) | Err(StoreError::NotFound | StoreError::VersionConflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What DescribeExecution tells about an execution.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub start_date: OffsetDateTime,
    #[serde(with = "crate::timestamp::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub stop_date: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// How many times it was redriven.
    pub redrive_count: u32,
}

/// Failures of the workflow engine, named after Step Functions' errors.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("there is no state machine `{0}`")]
    NoSuchMachine(String),
    #[error("the definition of `{machine}` is not valid: {problems}")]
    InvalidDefinition { machine: String, problems: String },
    #[error("an execution named `{0}` already exists, with a different input")]
    ExecutionAlreadyExists(String),
    #[error("there is no execution `{0}`")]
    NoSuchExecution(String),
    /// The token's task is over (answered, timed out, or its execution ended).
    #[error("the task of this token is no longer running")]
    TaskTimedOut,
    #[error("the task token is not valid")]
    InvalidToken,
    /// RedriveExecution refused: the execution is running or succeeded (or too old).
    #[error("the execution cannot be redriven: {0}")]
    NotRedrivable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The workflow engine: state machines (Amazon States Language) and their executions.
/// Step Functions on AWS; in local mode the `asl` runner on SQLite, durable across
/// restarts. Task states reach the worker through the action queue with a task token; the
/// worker answers with [`Workflows::send_task_success`] or
/// [`Workflows::send_task_failure`].
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Creates or updates the state machine `name` (CreateStateMachine /
    /// UpdateStateMachine) and returns its ARN. The engine substitutes the deployment's
    /// values for placeholders such as `${ActionQueueUrl}` (DefinitionSubstitutions).
    /// Running executions keep the definition they started with.
    async fn deploy(
        &self,
        name: &str,
        definition: &serde_json::Value,
    ) -> Result<String, WorkflowError>;

    /// Deploys every machine of `machines`, as [`Workflows::deploy`] each; an engine that
    /// can do it at once does (a catalog may bring thousands). A failure names the machine.
    async fn deploy_all(
        &self,
        machines: &[(String, serde_json::Value)],
    ) -> Result<(), (String, WorkflowError)> {
        for (name, definition) in machines {
            self.deploy(name, definition)
                .await
                .map_err(|e| (name.clone(), e))?;
        }
        Ok(())
    }

    /// The ARN an execution named `name` of the machine `machine` has.
    fn execution_arn(&self, machine: &str, name: &str) -> String;

    /// Starts an execution and returns its ARN. Idempotent: starting a name again with
    /// the same input returns the execution already started.
    async fn start(
        &self,
        machine: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<String, WorkflowError>;

    async fn send_task_success(
        &self,
        token: &str,
        output: &serde_json::Value,
    ) -> Result<(), WorkflowError>;

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), WorkflowError>;

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), WorkflowError>;

    /// Stops a running execution (StopExecution); a finished one is left as it is.
    async fn stop(&self, arn: &str, error: &str, cause: &str) -> Result<(), WorkflowError>;

    /// Runs a failed, aborted or timed-out execution again from the states that did not
    /// succeed, with their inputs (RedriveExecution); states and Parallel branches that
    /// succeeded are not run again.
    async fn redrive(&self, arn: &str) -> Result<(), WorkflowError>;

    async fn describe(&self, arn: &str) -> Result<Option<ExecutionSummary>, WorkflowError>;

    /// The execution's events, oldest first, in the shape of GetExecutionHistory.
    async fn history(&self, arn: &str) -> Result<Vec<serde_json::Value>, WorkflowError>;
}

/// Something happened that people may have subscribed to hear about: an entry on a
/// request's timeline, or drift found on a resource. What it carries is already free of
/// secrets (timeline entries and drift paths never hold any).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Notice {
    /// A timeline entry of a request.
    Request(Box<RequestEvent>),
    /// The reconciler found a resource drifted (`paths`: where it differs).
    Drift {
        resource: String,
        #[serde(with = "crate::timestamp")]
        at: OffsetDateTime,
        paths: Vec<String>,
    },
}

/// Where notices go: raising one never fails and never holds up the caller (a notice
/// that cannot be passed on is logged and dropped; the request goes on).
#[async_trait]
pub trait Notices: Send + Sync {
    async fn raise(&self, notices: Vec<Notice>);
}

/// A message bus the orchestrator publishes notifications to: Amazon SNS on AWS.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `message` to the topic `topic_arn` with a subject line and string
    /// attributes (which subscribers' filter policies match on). Returns the message id.
    async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str)],
    ) -> Result<String, StoreError>;
}
