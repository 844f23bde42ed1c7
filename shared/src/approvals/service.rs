//! Opening a stage for approvers, deciding it, and listing what awaits whom.

use std::sync::Arc;

use serde_json::json;

use super::model::{Approval, ApprovalStatus, Decision, Stored};
use crate::access::Principal;
use crate::bundle::task::REJECTED_ERROR;
use crate::catalog::document::{ApprovalPolicy, ApprovalStage};
use crate::ports::{StateStore, StoreError, WorkflowError, Workflows};
use crate::requests::model::{
    EventDetail, EventKind, Note, Request, RequestId, RequestStatus, Transition,
};
use crate::requests::service::{RequestError, RequestService};

const TABLE: &str = "approvals";

/// The stages still pending, by id (records without a value): what `GET /approvals`
/// reads, so its cost follows what is pending, not every stage ever opened. An entry is
/// written before its stage's record and removed after the stage is decided, so a crash
/// in between leaves at most a stale entry, which a listing skips and removes.
const PENDING: &str = "approvals-pending";

/// Marks that the pending index was built from the stages stored before it existed.
const PENDING_BUILT: &str = "approvals-pending-built";

/// The token of a stage no state machine waits on: a day-2 change's, which the worker
/// carries itself. A decision hands the request back to the worker (or ends it).
pub const WORKER_TOKEN: &str = "orchestrator:worker";

/// How many stage records a listing reads at most.
const LISTING: usize = 5_000;

/// What a decision says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Approve { comment: Option<String> },
    Deny { reason: String },
}

/// What opening a stage came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// It waits for its approvers.
    Waiting,
    /// It was decided already (a task delivered again after the decision, whose answer
    /// did not reach the state machine): answer it the same way.
    Decided(Box<Approval>),
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no approval `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl From<StoreError> for DecisionError {
    fn from(e: StoreError) -> Self {
        DecisionError::Request(e.into())
    }
}

pub struct Approvals {
    pub requests: Arc<RequestService>,
    pub state: Arc<dyn StateStore>,
    pub workflows: Arc<dyn Workflows>,
}

impl Approvals {
    async fn read(&self, id: &str) -> Result<Option<(Approval, u64)>, StoreError> {
        let Some(found) = self.state.get(TABLE, id).await? else {
            return Ok(None);
        };
        let stored: Stored =
            serde_json::from_value(found.value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut approval = stored.approval;
        approval.task_token = stored.task_token;
        Ok(Some((approval, found.version)))
    }

    async fn write(&self, approval: &Approval, version: Option<u64>) -> Result<(), StoreError> {
        let stored = Stored {
            approval: approval.clone(),
            task_token: approval.task_token.clone(),
        };
        let value =
            serde_json::to_value(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let pending = approval.status == ApprovalStatus::Pending;
        if pending {
            self.state
                .put_once(PENDING, &approval.id, &json!({}))
                .await?;
        }
        self.state.put(TABLE, &approval.id, &value, version).await?;
        if !pending {
            self.state.forget(PENDING, &approval.id).await?;
        }
        Ok(())
    }

    /// The stages pending now, through the pending index; stale entries are skipped and
    /// removed. The first call on a store from before the index lists the pending
    /// stages from the stage records once.
    async fn pending(&self) -> Result<Vec<Approval>, StoreError> {
        if self.state.get(PENDING_BUILT, "built").await?.is_none() {
            for approval in self.listed("").await? {
                if approval.status == ApprovalStatus::Pending {
                    self.state
                        .put_once(PENDING, &approval.id, &json!({}))
                        .await?;
                }
            }
            self.state
                .put_once(PENDING_BUILT, "built", &json!({}))
                .await?;
        }
        let mut out = Vec::new();
        for (id, _) in self.state.list(PENDING, "", LISTING).await? {
            match self.read(&id).await? {
                Some((approval, _)) if approval.status == ApprovalStatus::Pending => {
                    out.push(approval);
                }
                _ => self.state.forget(PENDING, &id).await?,
            }
        }
        Ok(out)
    }

    /// Opens stage `number` of `request` for its approvers (or, `escalated`, for its
    /// escalation's), waiting on `task_token`; the request awaits approval. A task
    /// delivered again takes the new token while the stage waits, and learns its
    /// decision once it is decided.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        &self,
        request: &Request,
        number: u32,
        policy: &ApprovalPolicy,
        stage: &ApprovalStage,
        escalated: bool,
        task_token: &str,
    ) -> Result<Opened, RequestError> {
        let id = Approval::key(request.id, number);
        let now = self.requests.clock.now();
        let (approvers, expiry) = match (&stage.escalate, escalated) {
            (Some(e), true) => (
                e.approvers.clone(),
                e.expires
                    .map_or_else(|| stage.expiry(), |d| d.as_duration()),
            ),
            _ => (stage.approvers.clone(), stage.expiry()),
        };
        let existing = self.read(&id).await?;
        let fresh = match &existing {
            Some((a, _)) => a.escalated != escalated,
            None => true,
        };
        if let Some((decided, _)) = &existing
            && !fresh
            && decided.status != ApprovalStatus::Pending
        {
            return Ok(Opened::Decided(Box::new(decided.clone())));
        }
        let approval = match existing.clone() {
            Some((mut a, _)) if !fresh => {
                a.task_token = task_token.to_owned();
                a
            }
            previous => Approval {
                id: id.clone(),
                request_id: request.id,
                target: request.target.clone(),
                owner: request.owner.clone(),
                requester: request.requester.sub.clone(),
                policy: policy.name.clone(),
                stage: stage.name.clone(),
                number,
                approvers,
                require: stage.require,
                escalated,
                status: ApprovalStatus::Pending,
                // An escalation keeps what was decided before it.
                decisions: previous.map(|(a, _)| a.decisions).unwrap_or_default(),
                opened_at: now,
                expires_at: now + expiry,
                task_token: task_token.to_owned(),
            },
        };
        match self.write(&approval, existing.map(|(_, v)| v)).await {
            Ok(()) | Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if fresh {
            let who = describe(&approval);
            let (kind, what) = if escalated {
                (
                    EventKind::ApprovalEscalated,
                    "escalated: nobody decided in time; now",
                )
            } else {
                (EventKind::ApprovalRequested, "awaiting approval:")
            };
            let mut wait = Transition::to(RequestStatus::AwaitingApproval, "worker");
            wait.kind = Some(kind);
            wait.message = Some(format!(
                "{what} `{}` / `{}` by {who}, until {}",
                approval.policy,
                approval.stage,
                crate::timestamp::format(approval.expires_at)
            ));
            wait.detail.approval = Some(approval.id.clone());
            if request.status == RequestStatus::AwaitingApproval {
                let mut note = Note::new(kind, wait.message.clone().unwrap_or_default());
                note.detail.approval = Some(approval.id.clone());
                self.requests
                    .note(request.id, Some(request), "worker", vec![note])
                    .await?;
            } else {
                self.requests
                    .settle(request.id, wait.from(request.clone()))
                    .await?;
            }
        }
        Ok(Opened::Waiting)
    }

    /// Records `who`'s decision on approval `id`. A denial ends the request (rejected,
    /// with the reason); the approvals that satisfy the stage's rule let the request go
    /// on. An admin who is not an approver decides only `on_behalf`, saying why.
    pub async fn decide(
        &self,
        who: &Principal,
        id: &str,
        verdict: Verdict,
        on_behalf: Option<String>,
    ) -> Result<Approval, DecisionError> {
        let (mut approval, version) = self
            .read(id)
            .await?
            .ok_or_else(|| DecisionError::NotFound(id.to_owned()))?;
        let roles = &self.requests.roles;
        let admin = roles.is_admin(who);
        // Not an approver and not an admin: as if it did not exist.
        if who.sub != approval.requester && !approval.may_decide(roles, who) && !admin {
            return Err(DecisionError::NotFound(id.to_owned()));
        }
        if who.sub == approval.requester {
            return Err(DecisionError::Forbidden(
                "you requested this: someone else must decide it".to_owned(),
            ));
        }
        let on_behalf = on_behalf.filter(|r| !r.trim().is_empty());
        if !approval.may_decide(roles, who) && on_behalf.is_none() {
            return Err(DecisionError::Forbidden(
                "you are not one of this stage's approvers; as an admin, decide on their behalf with `onBehalf`: why".to_owned(),
            ));
        }
        if approval.status != ApprovalStatus::Pending {
            return Err(DecisionError::Conflict(format!(
                "this stage is {} already",
                match approval.status {
                    ApprovalStatus::Approved => "approved",
                    _ => "denied",
                }
            )));
        }
        let now = self.requests.clock.now();
        if now >= approval.expires_at {
            return Err(DecisionError::Conflict(format!(
                "this stage expired at {}",
                crate::timestamp::format(approval.expires_at)
            )));
        }
        if approval.decisions.iter().any(|d| d.by == who.sub) {
            return Err(DecisionError::Conflict(
                "you decided this stage already".to_owned(),
            ));
        }
        let (approved, comment) = match verdict {
            Verdict::Approve { comment } => (true, comment.filter(|c| !c.trim().is_empty())),
            Verdict::Deny { reason } if reason.trim().is_empty() => {
                return Err(DecisionError::Invalid(
                    "`reason`: a denial says why".to_owned(),
                ));
            }
            Verdict::Deny { reason } => (false, Some(reason)),
        };
        approval.decisions.push(Decision {
            by: who.sub.clone(),
            at: now,
            approved,
            comment: comment.clone(),
            on_behalf: on_behalf.clone(),
        });
        if !approved {
            approval.status = ApprovalStatus::Denied;
        } else if approval.satisfied() {
            approval.status = ApprovalStatus::Approved;
        }
        match self.write(&approval, Some(version)).await {
            Ok(()) => {}
            Err(StoreError::VersionConflict { .. }) => {
                return Err(DecisionError::Conflict(
                    "someone else decided at the same moment; look again".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.after_decision(&approval, &who.sub, comment, on_behalf)
            .await?;
        Ok(approval)
    }

    /// The timeline entry of a decision, and the state machine's answer once the stage
    /// is decided.
    async fn after_decision(
        &self,
        approval: &Approval,
        by: &str,
        comment: Option<String>,
        on_behalf: Option<String>,
    ) -> Result<(), DecisionError> {
        let behalf = on_behalf
            .as_ref()
            .map(|r| format!(" on the approvers' behalf ({r})"))
            .unwrap_or_default();
        let said = comment
            .as_ref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        let stage = format!("`{}` / `{}`", approval.policy, approval.stage);
        let detail = EventDetail {
            approval: Some(approval.id.clone()),
            cause: comment.clone(),
            ..Default::default()
        };
        let answer = match approval.status {
            ApprovalStatus::Denied => {
                let cause = format!("{by} denied {stage}{behalf}{said}");
                // On the timeline (and to subscriptions) before the request ends with it.
                let note = Note::new(EventKind::ApprovalDenied, cause.clone()).with(detail);
                match self
                    .requests
                    .note(approval.request_id, None, by, vec![note])
                    .await
                {
                    Ok(()) | Err(RequestError::InvalidTransition { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                if approval.task_token == WORKER_TOKEN {
                    let end = Transition::ended(RequestStatus::Rejected, by, cause);
                    self.requests.settle(approval.request_id, end).await?;
                    return Ok(());
                }
                self.workflows
                    .send_task_failure(&approval.task_token, REJECTED_ERROR, &cause)
                    .await
            }
            ApprovalStatus::Approved => {
                let mut resume = Transition::to(RequestStatus::InProgress, by);
                resume.kind = Some(EventKind::Approved);
                resume.message = Some(format!(
                    "{stage} approved by {}{behalf}{said}",
                    approval.approved_by().join(", ")
                ));
                resume.detail = detail.clone();
                self.requests.settle(approval.request_id, resume).await?;
                if approval.task_token == WORKER_TOKEN {
                    // The worker looks at the next stage (or runs the change) now.
                    self.requests.enqueue(approval.request_id).await?;
                    return Ok(());
                }
                self.workflows
                    .send_task_success(
                        &approval.task_token,
                        &json!({"approvedBy": approval.approved_by()}),
                    )
                    .await
            }
            ApprovalStatus::Pending => {
                let note = Note::new(
                    EventKind::ApprovalGiven,
                    format!("{by} approved {stage}{behalf}{said}; more approvals are needed"),
                )
                .with(detail);
                self.requests
                    .note(approval.request_id, None, by, vec![note])
                    .await?;
                return Ok(());
            }
        };
        match answer {
            Ok(()) | Err(WorkflowError::TaskTimedOut | WorkflowError::InvalidToken) => Ok(()),
            Err(WorkflowError::Store(e)) => Err(e.into()),
            Err(e) => Err(StoreError::Unavailable(e.to_string()).into()),
        }
    }

    /// Approval `id`, as stored.
    pub async fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        Ok(self.read(id).await?.map(|(a, _)| a))
    }

    /// The stages of one request, in order.
    pub async fn of_request(&self, request: RequestId) -> Result<Vec<Approval>, StoreError> {
        self.listed(&format!("{request}.")).await
    }

    /// Pending stages `who` may decide, oldest first (an admin sees them all).
    pub async fn awaiting(&self, who: &Principal) -> Result<Vec<Approval>, StoreError> {
        let now = self.requests.clock.now();
        let roles = &self.requests.roles;
        let admin = roles.is_admin(who);
        let mut out: Vec<Approval> = self
            .pending()
            .await?
            .into_iter()
            .filter(|a| a.expires_at > now)
            .filter(|a| a.may_decide(roles, who) || (admin && a.requester != who.sub))
            .collect();
        out.sort_by_key(|a| a.opened_at);
        Ok(out)
    }

    async fn listed(&self, prefix: &str) -> Result<Vec<Approval>, StoreError> {
        let mut out = Vec::new();
        for (_, found) in self.state.list(TABLE, prefix, LISTING).await? {
            let stored: Stored = serde_json::from_value(found.value)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push(stored.approval);
        }
        out.sort_by_key(|a| (a.request_id.to_string(), a.number));
        Ok(out)
    }
}

/// The approvers in words.
fn describe(approval: &Approval) -> String {
    let rule = match approval.require {
        crate::catalog::document::Require::Any => "one of".to_owned(),
        crate::catalog::document::Require::All => "all of".to_owned(),
        crate::catalog::document::Require::Count(n) => format!("{n} of"),
    };
    format!("{rule} {}", approval.approvers.describe(&approval.owner))
}
