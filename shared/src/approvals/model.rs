//! An approval stage of one request, as it is kept and shown: who may decide, how many
//! must, until when, and every decision so far.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::access::{Principal, Roles};
use crate::catalog::document::{Approvers, Require};
use crate::requests::model::RequestId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
}

/// One person's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The approver's `sub`.
    pub by: String,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub approved: bool,
    /// An approval's comment, or a denial's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Set when an admin decided on the approvers' behalf: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf: Option<String>,
}

/// An approval stage of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `<request id>.<stage number>`.
    pub id: String,
    #[schema(value_type = String)]
    pub request_id: RequestId,
    /// The item or bundle requested, and its owning team.
    pub target: String,
    pub owner: String,
    /// Who asked (never an approver of their own request).
    pub requester: String,
    pub policy: String,
    pub stage: String,
    /// Its place among the request's stages, from 1.
    pub number: u32,
    pub approvers: Approvers,
    #[schema(value_type = Object)]
    pub require: Require,
    /// The stage expired and went to its escalation's approvers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escalated: bool,
    pub status: ApprovalStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The state machine's task that waits for the decision: stored, never shown.
    #[serde(skip)]
    pub task_token: String,
}

/// The stored form: the view plus the task token (which the view never serializes).
#[derive(Serialize, Deserialize)]
pub(super) struct Stored {
    #[serde(flatten)]
    pub approval: Approval,
    #[serde(default, rename = "taskToken")]
    pub task_token: String,
}

impl Approval {
    pub fn key(request: RequestId, number: u32) -> String {
        format!("{request}.{number}")
    }

    /// Whether `who` is one of its approvers (by name, group, team or as the owner's
    /// member); the requester never is.
    pub fn may_decide(&self, roles: &Roles, who: &Principal) -> bool {
        if who.sub == self.requester {
            return false;
        }
        let a = &self.approvers;
        a.users.contains(&who.sub)
            || a.groups.iter().any(|g| who.groups.contains(g))
            || a.teams.iter().any(|t| roles.in_team(who, t))
            || (a.owner && roles.in_team(who, &self.owner))
    }

    /// The distinct approvers who approved.
    pub fn approved_by(&self) -> Vec<&str> {
        let mut by: Vec<&str> = self
            .decisions
            .iter()
            .filter(|d| d.approved)
            .map(|d| d.by.as_str())
            .collect();
        by.sort_unstable();
        by.dedup();
        by
    }

    /// Whether the approvals so far satisfy its rule.
    pub fn satisfied(&self) -> bool {
        let by = self.approved_by();
        match self.require {
            Require::Any => !by.is_empty(),
            Require::Count(n) => by.len() >= n as usize,
            Require::All => self
                .approvers
                .users
                .iter()
                .all(|u| by.contains(&u.as_str())),
        }
    }
}
