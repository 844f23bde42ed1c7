//! The request record, its statuses and the transitions between them, its events, and
//! audit entries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::access::Principal;

/// A request id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(Uuid);

/// Keeps ids in creation order: uuid's counter orders those of one millisecond, and the
/// latest time seen stands in for an earlier one (see [`RequestId::new_at`]).
static V7_CONTEXT: std::sync::Mutex<(uuid::ContextV7, i128)> =
    std::sync::Mutex::new((uuid::ContextV7::new(), i128::MIN));

impl RequestId {
    /// A new id for something created at `at`; ids made by this process sort in creation
    /// order, even within one millisecond.
    ///
    /// A time earlier than the latest one seen (another thread's clock read that won the
    /// lock first, or a test's fixed time) is replaced by that latest time: uuid's
    /// context, given an earlier second, keeps its own second with the earlier time's
    /// fraction, which can move an id up to a second ahead of those made after it.
    pub fn new_at(at: OffsetDateTime) -> Self {
        let mut guard = V7_CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
        let (context, latest) = &mut *guard;
        let nanos = at.unix_timestamp_nanos().max(*latest);
        *latest = nanos;
        let seconds = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
        let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
        RequestId(Uuid::new_v7(uuid::Timestamp::from_unix(
            &*context, seconds, subsec,
        )))
    }

    /// An id for something that happened at `at` in the past (generated history, records
    /// written after the fact): its time is `at` whatever this process made before, and
    /// ids of one millisecond sort at random.
    pub fn backdated(at: OffsetDateTime) -> Self {
        let seconds = u64::try_from(at.unix_timestamp()).unwrap_or(0);
        RequestId(Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            seconds,
            at.nanosecond(),
        )))
    }

    /// The least id of anything created at `at` or later (millisecond precision): every
    /// id sorts below it exactly when it was made before `at`. A bound for listings by
    /// creation time; no request has it.
    pub fn floor(at: OffsetDateTime) -> Self {
        let millis = u64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(0);
        RequestId(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RequestId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(RequestId)
    }
}

/// The action queue's message that hands a request to the worker (at submission, in the
/// sweep, to continue after a wait): `{"requestId": "<id>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handoff {
    pub request_id: RequestId,
}

impl Handoff {
    /// The message's body.
    pub fn body(&self) -> String {
        format!("{{\"requestId\":\"{}\"}}", self.request_id)
    }
}

/// A resource's id for a request's component: `<stack>.<component>` for a component of
/// the stack `<stack>` (an item's resource, or a stack, has its request's id).
pub fn member_id(stack: &str, component: &str) -> String {
    format!("{stack}.{component}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Item,
    Bundle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Submitted,
    InProgress,
    AwaitingFulfillment,
    /// Waiting for an approval stage to be decided (`GET /approvals`).
    AwaitingApproval,
    /// A component of a bundle with `onFailure: pause` failed: the completed ones are
    /// kept, and an admin can redrive it from the failed one (or cancel it).
    Paused,
    Completed,
    Failed,
    Rejected,
    Cancelled,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 9] = [
        RequestStatus::Submitted,
        RequestStatus::InProgress,
        RequestStatus::AwaitingFulfillment,
        RequestStatus::AwaitingApproval,
        RequestStatus::Paused,
        RequestStatus::Completed,
        RequestStatus::Failed,
        RequestStatus::Rejected,
        RequestStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Submitted => "submitted",
            RequestStatus::InProgress => "in_progress",
            RequestStatus::AwaitingFulfillment => "awaiting_fulfillment",
            RequestStatus::Paused => "paused",
            RequestStatus::AwaitingApproval => "awaiting_approval",
            RequestStatus::Completed => "completed",
            RequestStatus::Failed => "failed",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RequestStatus::Completed
                | RequestStatus::Failed
                | RequestStatus::Rejected
                | RequestStatus::Cancelled
        )
    }

    /// The lifecycle: submitted → in progress → (awaiting fulfillment →) completed, with
    /// failed, rejected and cancelled as the other ends (a request in progress is rejected
    /// when a person declines one of its components). A paused request goes back to in
    /// progress when redriven, or is cancelled. Terminal statuses never change.
    pub fn can_become(self, next: RequestStatus) -> bool {
        use RequestStatus::*;
        match self {
            Submitted => matches!(next, InProgress | Failed | Rejected | Cancelled),
            InProgress => matches!(
                next,
                AwaitingFulfillment
                    | AwaitingApproval
                    | Paused
                    | Completed
                    | Failed
                    | Rejected
                    | Cancelled
            ),
            AwaitingApproval => matches!(next, InProgress | Failed | Rejected | Cancelled),
            Paused => matches!(next, InProgress | Failed | Cancelled),
            AwaitingFulfillment => matches!(next, Completed | Failed | Rejected | Cancelled),
            Completed | Failed | Rejected | Cancelled => false,
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::catalog::document::Operation;

/// The JIRA issue that fulfils a manual request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub key: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub id: RequestId,
    pub kind: TargetKind,
    /// The item or bundle requested.
    pub target: String,
    pub catalog_version: String,
    /// The team that owns the item or bundle.
    pub owner: String,
    pub requester: Principal,
    #[serde(default, skip_serializing_if = "Operation::is_provision")]
    pub operation: Operation,
    /// The resource a change or deletion is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The submitted field values, defaults applied.
    pub fields: Map<String, Value>,
    pub status: RequestStatus,
    /// Why the request failed, was rejected or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Digest of what was submitted, to tell a retry from a different request that reuses
    /// an idempotency key (empty without a key).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// Nothing runs before this time (a scheduled request).
    #[serde(
        default,
        with = "crate::timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Why it waits until `not_before`, when a change calendar made it wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// An admin's reason for not applying the change calendars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_override: Option<String>,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
    /// How long it took and where the time went: measured from its timeline when it
    /// ended (none while it runs, nor on requests that ended before lead times were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time: Option<super::durations::LeadTime>,
    /// Incremented on every change (optimistic concurrency).
    pub version: u64,
}

impl Request {
    /// A provisioning request for `target` (an item, or a bundle), as just submitted: a new
    /// id, version 1, no outcome yet. Its operation and idempotency key are set after,
    /// where they differ.
    pub fn submitted(
        kind: TargetKind,
        target: &str,
        catalog_version: &str,
        owner: &str,
        requester: &Principal,
        fields: Map<String, Value>,
        now: OffsetDateTime,
    ) -> Request {
        Request {
            id: RequestId::new_at(now),
            kind,
            target: target.to_owned(),
            catalog_version: catalog_version.to_owned(),
            owner: owner.to_owned(),
            requester: requester.clone(),
            operation: Operation::Provision,
            resource: None,
            fields,
            status: RequestStatus::Submitted,
            reason: None,
            ticket: None,
            outputs: Map::new(),
            idempotency_key: None,
            fingerprint: String::new(),
            not_before: None,
            waiting_for: None,
            calendar_override: None,
            created_at: now,
            updated_at: now,
            lead_time: None,
            version: 1,
        }
    }
}

/// What a timeline entry records. Stored and served as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The request was accepted.
    Submitted,
    /// The worker took it up.
    FulfillmentStarted,
    /// An admin had forced the item to manual: a person fulfils it.
    ModeForced,
    /// An admin forced a change past its verification.
    Forced,
    /// A JIRA issue was opened for a person (`detail.ticket`).
    TicketCreated,
    /// The request's state machine started (`detail.execution`).
    ExecutionStarted,
    /// A bundle's component started.
    ComponentStarted,
    /// A component completed (`detail.outputs` names its outputs).
    ComponentCompleted,
    /// A component failed for good (`detail.cause`).
    ComponentFailed,
    /// The person fulfilling a component declined it (`detail.cause`).
    ComponentRejected,
    /// A scheduled request waits until its `notBefore` before anything runs.
    Scheduled,
    /// A bundle's component was not started because a sibling had failed (`detail.cause`
    /// names the sibling): it made nothing.
    ComponentNotStarted,
    /// A completed component's rollback ran.
    ComponentRolledBack,
    /// A completed component had nothing to roll back automatically.
    ComponentKept,
    /// A stack's component was deprovisioned.
    ComponentDeleted,
    /// A stack's component had no deprovision actions: its record went, the thing stays.
    ComponentLeft,
    /// An action started (`detail.action`).
    ActionStarted,
    /// An action succeeded.
    ActionSucceeded,
    /// An asynchronous action was accepted and is being polled.
    ActionWaiting,
    /// What an action's target reported while it worked (`detail.targetEvent`: a
    /// CloudFormation stack's resource events, as they happen).
    ActionProgress,
    /// An action's attempt failed and will be retried (`detail.attempt`, `detail.cause`).
    ActionRetry,
    /// An action failed for good (`detail.cause`).
    ActionFailed,
    /// An action's last attempt got no answer in time: whether it took effect is unknown
    /// (`detail.idempotencyKey` and `detail.target` say what to look for).
    OutcomeUnknown,
    /// A comment on the request: from the portal or the API (`actor`), or from its JIRA
    /// issue (`jira:<author>`, `detail.ticket`).
    Comment,
    /// An unknown outcome was resolved after the request ended (`detail.action`,
    /// `detail.cause`): the retry with the same key found what the call made (rolled back
    /// or kept), the target refused it, or an admin declared nothing there.
    OutcomeResolved,
    /// A circuit breaker refused the call (`detail.cause`).
    CircuitOpen,
    /// Automation failed and a person takes over through JIRA (`detail.cause`).
    Fallback,
    /// An item's own rollback ran after one of its actions failed (`detail.action`).
    RolledBack,
    /// A rollback failed (`detail.cause`).
    RollbackFailed,
    /// A change had no actions to run: only the record changes.
    NothingToRun,
    /// A component failed and the bundle pauses there (`component`, `detail.cause`).
    Paused,
    /// An approval stage awaits its approvers (`detail.approval`).
    ApprovalRequested,
    /// A stage nobody decided in time went to its escalation's approvers.
    ApprovalEscalated,
    /// One approver approved; the stage needs more (`detail.approval`).
    ApprovalGiven,
    /// A stage's approvals satisfied its rule: the request goes on.
    Approved,
    /// An approver denied a stage (`detail.cause`: the reason): the request ends rejected.
    ApprovalDenied,
    /// An admin resumed a paused request from its failed component.
    Redriven,
    Completed,
    Failed,
    Rejected,
    Cancelled,
    /// Retention removed the ended request's timeline (`detail.archive`: the export it
    /// went to, when exports are on): this entry is all that is left of it.
    TimelineArchived,
    /// The request has used its item's at-risk share of a service level target
    /// (`detail.sla` names which).
    SlaAtRisk,
    /// The request went past a service level target (`detail.sla`).
    SlaBreached,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        use EventKind::*;
        match self {
            Submitted => "submitted",
            FulfillmentStarted => "fulfillment_started",
            ModeForced => "mode_forced",
            Forced => "forced",
            TicketCreated => "ticket_created",
            ExecutionStarted => "execution_started",
            ComponentStarted => "component_started",
            ComponentCompleted => "component_completed",
            ComponentFailed => "component_failed",
            ComponentRejected => "component_rejected",
            Scheduled => "scheduled",
            ComponentNotStarted => "component_not_started",
            ComponentRolledBack => "component_rolled_back",
            ComponentKept => "component_kept",
            ComponentDeleted => "component_deleted",
            ComponentLeft => "component_left",
            ActionStarted => "action_started",
            ActionSucceeded => "action_succeeded",
            ActionWaiting => "action_waiting",
            ActionProgress => "action_progress",
            ActionRetry => "action_retry",
            ActionFailed => "action_failed",
            OutcomeUnknown => "outcome_unknown",
            OutcomeResolved => "outcome_resolved",
            Comment => "comment",
            CircuitOpen => "circuit_open",
            Fallback => "fallback",
            RolledBack => "rolled_back",
            RollbackFailed => "rollback_failed",
            NothingToRun => "nothing_to_run",
            Paused => "paused",
            Redriven => "redriven",
            ApprovalRequested => "approval_requested",
            ApprovalEscalated => "approval_escalated",
            ApprovalGiven => "approval_given",
            Approved => "approved",
            ApprovalDenied => "approval_denied",
            Completed => "completed",
            Failed => "failed",
            Rejected => "rejected",
            Cancelled => "cancelled",
            TimelineArchived => "timeline_archived",
            SlaAtRisk => "sla_at_risk",
            SlaBreached => "sla_breached",
        }
    }

    /// The entry that records a request reaching `status`.
    pub fn reaching(status: RequestStatus) -> EventKind {
        match status {
            RequestStatus::Submitted => EventKind::Submitted,
            RequestStatus::InProgress => EventKind::FulfillmentStarted,
            RequestStatus::AwaitingFulfillment => EventKind::TicketCreated,
            RequestStatus::Paused => EventKind::Paused,
            RequestStatus::AwaitingApproval => EventKind::ApprovalRequested,
            RequestStatus::Completed => EventKind::Completed,
            RequestStatus::Failed => EventKind::Failed,
            RequestStatus::Rejected => EventKind::Rejected,
            RequestStatus::Cancelled => EventKind::Cancelled,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The structured part of a timeline entry: what a program reads instead of the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// The JIRA issue opened, or whose outcome this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// The action the entry is about (its id in the item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The action's attempt, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The error's name, when the entry reports one (`Orchestrator.ComponentFailed`,
    /// `States.Timeout`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it failed, was refused or was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The names of the outputs given (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// The state machine execution the request runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The key an action's calls carry (`Idempotency-Key`): what its target knows it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The host an action calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The approval stage an entry is about (`GET /approvals`' id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// What the action's target reported (`action_progress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_event: Option<TargetEvent>,
    /// Where the removed timeline was exported (`timeline_archived`): the archive's
    /// location and the export's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// The service level target an entry is about (`sla_at_risk`, `sla_breached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<crate::catalog::document::SlaTarget>,
}

/// One event an action's target reports about what it builds: a CloudFormation stack's
/// resource moving through its states.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetEvent {
    /// What it is about: a stack's logical resource id (the stack's own name for the
    /// stack itself).
    pub resource: String,
    /// Its type (`AWS::S3::Bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Its status (`CREATE_IN_PROGRESS`, `CREATE_FAILED`, ...).
    pub status: String,
    /// Why, when the target says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the target saw it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl EventDetail {
    pub fn is_empty(&self) -> bool {
        *self == EventDetail::default()
    }

    pub fn cause(cause: impl Into<String>) -> EventDetail {
        EventDetail {
            cause: Some(cause.into()),
            ..Default::default()
        }
    }

    pub fn ticket(ticket: Ticket) -> EventDetail {
        EventDetail {
            ticket: Some(ticket),
            ..Default::default()
        }
    }
}

/// One entry of a request's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestEvent {
    #[schema(value_type = String)]
    pub request_id: RequestId,
    /// Position in the timeline, from 1; equals the request's version after the event.
    pub seq: u64,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Who or what caused it: a user's `sub`, `worker`, `jira`.
    pub actor: String,
    /// What happened.
    pub kind: EventKind,
    /// The request's status after the event.
    pub status: RequestStatus,
    /// The bundle component it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What happened, for programs.
    #[serde(default, skip_serializing_if = "EventDetail::is_empty")]
    pub detail: EventDetail,
}

/// An entry to add to a request's timeline (the store numbers and stamps it).
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub kind: EventKind,
    pub component: Option<String>,
    pub message: String,
    pub detail: EventDetail,
}

impl Note {
    pub fn new(kind: EventKind, message: impl Into<String>) -> Note {
        Note {
            kind,
            component: None,
            message: message.into(),
            detail: EventDetail::default(),
        }
    }

    /// About a bundle's component.
    pub fn about(mut self, component: Option<&str>) -> Note {
        self.component = component.map(str::to_owned);
        self
    }

    pub fn with(mut self, detail: EventDetail) -> Note {
        self.detail = detail;
        self
    }
}

/// A request's move to another status, as a value: the request as the caller last read
/// it (`from`, saving a read; a stale copy costs one retry), where it goes, who moved it,
/// what the timeline says, and what the move sets on the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: Option<Request>,
    pub to: RequestStatus,
    pub actor: String,
    pub message: Option<String>,
    pub detail: EventDetail,
    /// Why the request failed, was rejected or was cancelled (also the message).
    pub reason: Option<String>,
    pub outputs: Option<Map<String, Value>>,
    pub ticket: Option<Ticket>,
    /// The entry's kind, when not the one that reaching `to` records.
    pub kind: Option<EventKind>,
    /// The component the move is about.
    pub component: Option<String>,
}

impl Transition {
    /// A move to `to` by `actor`, setting nothing else.
    pub fn to(to: RequestStatus, actor: &str) -> Transition {
        Transition {
            from: None,
            to,
            actor: actor.to_owned(),
            message: None,
            detail: EventDetail::default(),
            reason: None,
            outputs: None,
            ticket: None,
            kind: None,
            component: None,
        }
    }

    /// An end that says why (failed, rejected, cancelled): the reason is both the
    /// request's and the timeline's.
    pub fn ended(to: RequestStatus, actor: &str, reason: impl Into<String>) -> Transition {
        let reason = reason.into();
        let mut t = Transition::to(to, actor);
        t.detail.cause = Some(reason.clone());
        t.message = Some(reason.clone());
        t.reason = Some(reason);
        t
    }

    /// Completion with `outputs`.
    pub fn completed(
        actor: &str,
        message: impl Into<String>,
        outputs: Map<String, Value>,
    ) -> Transition {
        let mut t = Transition::to(RequestStatus::Completed, actor);
        t.message = Some(message.into());
        t.detail.outputs = outputs.keys().cloned().collect();
        t.outputs = Some(outputs);
        t
    }

    /// The request waits for a person working on `ticket`.
    pub fn ticket_opened(actor: &str, ticket: Ticket) -> Transition {
        let mut t = Transition::to(RequestStatus::AwaitingFulfillment, actor);
        t.message = Some(format!("JIRA issue {} opened: {}", ticket.key, ticket.url));
        t.detail.ticket = Some(ticket.clone());
        t.ticket = Some(ticket);
        t
    }

    /// Starting from `request`, as the caller last read it.
    pub fn from(mut self, request: Request) -> Transition {
        self.from = Some(request);
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Transition {
        self.message = Some(message.into());
        self
    }

    /// What the move sets on `request`.
    pub fn apply_to(&self, request: &mut Request) {
        match &self.reason {
            Some(reason) => request.reason = Some(reason.clone()),
            // Resumed: why it had paused is on the timeline, no longer the request's.
            None if self.to == RequestStatus::InProgress => request.reason = None,
            None => {}
        }
        if let Some(outputs) = &self.outputs {
            request.outputs = outputs.clone();
        }
        if let Some(ticket) = &self.ticket {
            request.ticket = Some(ticket.clone());
        }
    }
}

/// One state-changing call, for the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// UUIDv7: entries sort by time.
    pub id: String,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub actor: String,
    /// `METHOD /route`, e.g. `POST /requests/{id}/cancel`.
    pub action: String,
    /// The record acted on, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The caller's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The HTTP status of the response.
    pub outcome: u16,
    /// What else the call did that an auditor must see (an admin forcing a change past
    /// drift, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The id of the HTTP request, as in the logs.
    pub correlation_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_never_change_and_the_happy_path_is_allowed() {
        use RequestStatus::*;
        for done in [Completed, Failed, Rejected, Cancelled] {
            assert!(RequestStatus::ALL.iter().all(|&s| !done.can_become(s)));
        }
        assert!(Submitted.can_become(InProgress));
        assert!(InProgress.can_become(AwaitingFulfillment));
        assert!(AwaitingFulfillment.can_become(Completed));
        assert!(!AwaitingFulfillment.can_become(Submitted));
    }

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let ids: Vec<RequestId> = (0..1000).map(|_| RequestId::new_at(at)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    /// Times read on different threads reach the context out of order; ids still sort
    /// in the order they were made. Before the latest time stood in for earlier ones,
    /// 4.999 s after 5.001 s gave an id at 5.999 s, ahead of one made next at 5.100 s.
    #[test]
    fn ids_keep_their_order_when_times_arrive_out_of_order() {
        let base = OffsetDateTime::from_unix_timestamp(1_900_000_005).unwrap();
        let ms = |n: i64| base + time::Duration::milliseconds(n);
        let ids = [
            RequestId::new_at(ms(1)),
            RequestId::new_at(ms(-1)),
            RequestId::new_at(ms(100)),
        ];
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a = RequestId::new_at(t0);
        let b = RequestId::new_at(t0 + time::Duration::milliseconds(1));
        assert!(a < b);
        assert_eq!(a.to_string().parse::<RequestId>().unwrap(), a);
    }
}
