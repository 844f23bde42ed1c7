//! A request's lead time as it is stored with the request and served: the total, its
//! parts, who did the work, and each component's share (measured by `lead_time`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::catalog::document::SlaTarget;

/// Who did the work of a request: automation, people through JIRA, both (a bundle
/// mixing them, or automation that fell back to a person), or nobody (it ended before
/// anything ran).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkMode {
    Automated,
    Manual,
    Mixed,
    #[default]
    None,
}

impl WorkMode {
    pub const ALL: [WorkMode; 4] = [
        WorkMode::Automated,
        WorkMode::Manual,
        WorkMode::Mixed,
        WorkMode::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkMode::Automated => "automated",
            WorkMode::Manual => "manual",
            WorkMode::Mixed => "mixed",
            WorkMode::None => "none",
        }
    }

    pub(super) fn of(automated: bool, person: bool) -> WorkMode {
        match (automated, person) {
            (true, true) => WorkMode::Mixed,
            (true, false) => WorkMode::Automated,
            (false, true) => WorkMode::Manual,
            (false, false) => WorkMode::None,
        }
    }
}

/// Where a request's (or a component's) time went, in milliseconds. The parts add up to
/// the total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Parts {
    pub queued_ms: u64,
    pub approval_ms: u64,
    pub scheduled_ms: u64,
    pub person_ms: u64,
    pub automated_ms: u64,
    pub paused_ms: u64,
}

impl Parts {
    pub(super) fn add(&mut self, part: Part, ms: u64) {
        let slot = match part {
            Part::Queued => &mut self.queued_ms,
            Part::Approval => &mut self.approval_ms,
            Part::Scheduled => &mut self.scheduled_ms,
            Part::Person => &mut self.person_ms,
            Part::Automated => &mut self.automated_ms,
            Part::Paused => &mut self.paused_ms,
        };
        *slot += ms;
    }

    pub fn total(&self) -> u64 {
        self.queued_ms
            + self.approval_ms
            + self.scheduled_ms
            + self.person_ms
            + self.automated_ms
            + self.paused_ms
    }

    /// The time the requester's clock runs: everything but the waits the request asked
    /// for or its rules imposed (approvals, change windows and schedules).
    pub fn working(&self) -> u64 {
        self.queued_ms + self.person_ms + self.automated_ms + self.paused_ms
    }
}

/// A component's time in a bundle request, from its start to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentTime {
    pub total_ms: u64,
    pub person_ms: u64,
    pub automated_ms: u64,
    pub mode: WorkMode,
}

/// A request's lead time: from submission to its end, and its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadTime {
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: OffsetDateTime,
    pub total_ms: u64,
    #[serde(flatten)]
    pub parts: Parts,
    pub mode: WorkMode,
    /// Time to the first sign of work: the first action run, or a person's first word
    /// or decision (not counting approvals and waits), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_ms: Option<u64>,
    /// A bundle's components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentTime>,
    /// The service level targets it missed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breached: Vec<SlaTarget>,
}

/// Which part an instant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Queued,
    Approval,
    Scheduled,
    Person,
    Automated,
    Paused,
}
