//! How long a request took, and where the time went, read off its typed timeline once,
//! when it ends: the insights and the reports read these figures and never replay
//! timelines.
//!
//! Every instant between submission and the end belongs to one part, decided by the
//! request's status and the last entries' kinds:
//! - **approval**: waiting for an approval stage (`awaiting_approval`);
//! - **scheduled**: waiting for its `notBefore` or a change window (after a `scheduled`
//!   entry, until the next thing happens);
//! - **person**: a person works on a JIRA issue (`awaiting_fulfillment`, or a bundle whose
//!   running components all wait for people);
//! - **automated**: the orchestrator works (`in_progress`, with an automated component
//!   running if it is a bundle);
//! - **paused**: a paused bundle waits for an admin;
//! - **queued**: submitted, nothing started yet.
//!
//! Times are whole milliseconds.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::durations::{ComponentTime, LeadTime, Part, Parts, WorkMode};
use super::model::{EventKind, RequestEvent, RequestStatus};
use crate::catalog::document::SlaTarget;

/// What a component is doing while the walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doing {
    Automated,
    Person,
}

fn ms(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_milliseconds()).unwrap_or(0)
}

/// Whether an entry shows someone working on the request: an action run, a person's
/// word or decision through JIRA (not the requester's own comments).
fn responds(event: &RequestEvent, requester: &str) -> bool {
    match event.kind {
        EventKind::ActionStarted
        | EventKind::ComponentCompleted
        | EventKind::ComponentRejected
        | EventKind::Completed
        | EventKind::Rejected
        | EventKind::Failed => true,
        EventKind::Comment => event.actor != requester,
        _ => false,
    }
}

/// How the time between two instants counts: wall-clock milliseconds ([`wall`]), or the
/// working time of business hours.
pub type Measure<'a> = &'a dyn Fn(OffsetDateTime, OffsetDateTime) -> u64;

/// Wall-clock milliseconds from `from` to `to` (none when `to` is earlier).
pub fn wall(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    ms(from, to)
}

/// The walk along a timeline: where the time went so far, and what is going on.
struct Walk<'a> {
    requester: &'a str,
    measure: Measure<'a>,
    parts: Parts,
    components: BTreeMap<String, ComponentTime>,
    doing: BTreeMap<String, Doing>,
    automated: BTreeSet<String>,
    person: BTreeSet<String>,
    ever_automated: bool,
    ever_person: bool,
    scheduled: bool,
    first_response: Option<u64>,
    /// The service level targets the timeline says were missed.
    breached: BTreeSet<SlaTarget>,
    status: RequestStatus,
    at: OffsetDateTime,
}

impl<'a> Walk<'a> {
    fn new(requester: &'a str, start: OffsetDateTime, measure: Measure<'a>) -> Walk<'a> {
        Walk {
            requester,
            measure,
            parts: Parts::default(),
            components: BTreeMap::new(),
            doing: BTreeMap::new(),
            automated: BTreeSet::new(),
            person: BTreeSet::new(),
            ever_automated: false,
            ever_person: false,
            scheduled: false,
            first_response: None,
            breached: BTreeSet::new(),
            status: RequestStatus::Submitted,
            at: start,
        }
    }

    /// The part the time from the last entry on belongs to.
    fn part(&self) -> Part {
        if self.scheduled {
            return Part::Scheduled;
        }
        match self.status {
            RequestStatus::Submitted => Part::Queued,
            RequestStatus::AwaitingApproval => Part::Approval,
            RequestStatus::AwaitingFulfillment => Part::Person,
            RequestStatus::Paused => Part::Paused,
            _ => {
                let automated = self.doing.values().any(|d| *d == Doing::Automated);
                let person = self.doing.values().any(|d| *d == Doing::Person);
                if person && !automated {
                    Part::Person
                } else {
                    Part::Automated
                }
            }
        }
    }

    /// Counts the time from the last entry to `to`.
    fn advance(&mut self, to: OffsetDateTime) {
        let span = (self.measure)(self.at, to);
        self.parts.add(self.part(), span);
        for (id, what) in &self.doing {
            let time = self.components.entry(id.clone()).or_default();
            time.total_ms += span;
            match what {
                Doing::Automated => time.automated_ms += span,
                Doing::Person => time.person_ms += span,
            }
        }
        self.at = self.at.max(to);
    }

    fn step(&mut self, event: &RequestEvent) {
        self.advance(event.at);
        self.status = event.status;
        if self.first_response.is_none() && responds(event, self.requester) {
            self.first_response = Some(self.parts.working());
        }
        match event.kind {
            EventKind::Scheduled => self.scheduled = true,
            EventKind::Comment => {}
            _ => self.scheduled = false,
        }
        match event.kind {
            EventKind::ActionStarted => self.ever_automated = true,
            EventKind::TicketCreated => self.ever_person = true,
            EventKind::SlaBreached => self.breached.extend(event.detail.sla),
            _ => {}
        }
        let Some(component) = &event.component else {
            return;
        };
        match event.kind {
            EventKind::ComponentStarted => {
                self.doing.insert(component.clone(), Doing::Automated);
            }
            EventKind::ActionStarted => {
                self.automated.insert(component.clone());
                self.doing.insert(component.clone(), Doing::Automated);
            }
            EventKind::TicketCreated => {
                self.person.insert(component.clone());
                self.doing.insert(component.clone(), Doing::Person);
            }
            EventKind::ComponentCompleted
            | EventKind::ComponentFailed
            | EventKind::ComponentRejected
            | EventKind::ComponentNotStarted => {
                self.doing.remove(component);
                self.components.entry(component.clone()).or_default();
            }
            _ => {}
        }
    }

    fn finish(mut self, ended_at: OffsetDateTime) -> LeadTime {
        for (id, time) in &mut self.components {
            time.mode = WorkMode::of(self.automated.contains(id), self.person.contains(id));
        }
        LeadTime {
            ended_at,
            total_ms: self.parts.total(),
            mode: WorkMode::of(self.ever_automated, self.ever_person),
            first_response_ms: self.first_response,
            parts: self.parts,
            components: self.components,
            breached: self.breached.into_iter().collect(),
        }
    }
}

/// The lead time of a request whose timeline is `events` (oldest first, its end last),
/// submitted by `requester`.
pub fn measure(events: &[RequestEvent], requester: &str) -> Option<LeadTime> {
    let first = events.first()?;
    let mut walk = Walk::new(requester, first.at, &wall);
    for event in events {
        walk.step(event);
    }
    let end = walk.at;
    Some(walk.finish(end))
}

/// Where the time of a request went up to `until` (now, or its end), each span counted
/// by `measure`.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub parts: Parts,
    /// The working time (every part but the approval and window waits) to the first
    /// response, when there was one.
    pub first_response_ms: Option<u64>,
    /// It waits for an approval, a change window or its scheduled time now: the clock
    /// of its service levels is paused.
    pub waiting: bool,
}

pub fn progress(
    events: &[RequestEvent],
    requester: &str,
    until: OffsetDateTime,
    measure: Measure<'_>,
) -> Option<Progress> {
    let first = events.first()?;
    let mut walk = Walk::new(requester, first.at, measure);
    for event in events {
        walk.step(event);
    }
    walk.advance(until);
    Some(Progress {
        waiting: matches!(walk.part(), Part::Approval | Part::Scheduled),
        first_response_ms: walk.first_response,
        parts: walk.parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::model::{EventDetail, RequestId};

    const MIN: u64 = 60_000;

    /// A timeline written by a manual clock: `(minutes after submission, kind, status,
    /// component, actor)`.
    fn timeline(
        entries: &[(i64, EventKind, RequestStatus, Option<&str>, &str)],
    ) -> Vec<RequestEvent> {
        let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let id = RequestId::new_at(start);
        entries
            .iter()
            .enumerate()
            .map(
                |(i, (minutes, kind, status, component, actor))| RequestEvent {
                    request_id: id,
                    seq: i as u64 + 1,
                    at: start + time::Duration::minutes(*minutes),
                    actor: (*actor).to_owned(),
                    kind: *kind,
                    status: *status,
                    component: component.map(str::to_owned),
                    message: None,
                    detail: EventDetail::default(),
                },
            )
            .collect()
    }

    #[test]
    fn an_item_that_waited_for_approval_a_window_and_a_person_has_each_wait_apart() {
        use EventKind::*;
        use RequestStatus::*;
        let events = timeline(&[
            (
                0,
                EventKind::Submitted,
                RequestStatus::Submitted,
                None,
                "ann",
            ),
            (1, FulfillmentStarted, InProgress, None, "worker"),
            (2, ApprovalRequested, AwaitingApproval, None, "worker"),
            // The requester's own comment is no response.
            (30, Comment, AwaitingApproval, None, "ann"),
            (62, EventKind::Approved, InProgress, None, "boss"),
            (62, EventKind::Scheduled, InProgress, None, "worker"),
            (120, ActionStarted, InProgress, None, "worker"),
            (150, ActionFailed, InProgress, None, "worker"),
            (150, Fallback, InProgress, None, "worker"),
            (151, TicketCreated, AwaitingFulfillment, None, "worker"),
            (
                151 + 24 * 60,
                EventKind::Completed,
                RequestStatus::Completed,
                None,
                "jira",
            ),
        ]);
        let lead = measure(&events, "ann").unwrap();
        assert_eq!(lead.parts.queued_ms, MIN);
        assert_eq!(lead.parts.approval_ms, 60 * MIN);
        assert_eq!(lead.parts.scheduled_ms, 58 * MIN);
        assert_eq!(lead.parts.automated_ms, (1 + 31) * MIN);
        assert_eq!(lead.parts.person_ms, 24 * 60 * MIN);
        assert_eq!(lead.parts.paused_ms, 0);
        assert_eq!(lead.total_ms, (151 + 24 * 60) * MIN);
        assert_eq!(lead.total_ms, lead.parts.total());
        assert_eq!(lead.mode, WorkMode::Mixed);
        // Work began with the first action: a minute queued and a minute of the worker
        // before the approval count, the approval and the window do not.
        assert_eq!(lead.first_response_ms, Some(2 * MIN));
        assert_eq!(lead.ended_at, events.last().unwrap().at);
    }

    #[test]
    fn a_bundle_counts_people_only_while_no_component_is_automated() {
        use EventKind::*;
        use RequestStatus::*;
        let events = timeline(&[
            (
                0,
                EventKind::Submitted,
                RequestStatus::Submitted,
                None,
                "ann",
            ),
            (0, FulfillmentStarted, InProgress, None, "worker"),
            (1, ComponentStarted, InProgress, Some("db"), "worker"),
            (1, ComponentStarted, InProgress, Some("dns"), "worker"),
            (1, ActionStarted, InProgress, Some("db"), "worker"),
            (2, TicketCreated, InProgress, Some("dns"), "worker"),
            (11, ComponentCompleted, InProgress, Some("db"), "worker"),
            (300, ComponentCompleted, InProgress, Some("dns"), "jira"),
            (
                301,
                EventKind::Completed,
                RequestStatus::Completed,
                None,
                "worker",
            ),
        ]);
        let lead = measure(&events, "ann").unwrap();
        assert_eq!(lead.mode, WorkMode::Mixed);
        assert_eq!(lead.parts.automated_ms, (11 + 1) * MIN);
        assert_eq!(lead.parts.person_ms, (300 - 11) * MIN);
        assert_eq!(lead.total_ms, 301 * MIN);
        let db = &lead.components["db"];
        assert_eq!(
            (db.total_ms, db.automated_ms, db.person_ms),
            (10 * MIN, 10 * MIN, 0)
        );
        assert_eq!(db.mode, WorkMode::Automated);
        let dns = &lead.components["dns"];
        assert_eq!((dns.total_ms, dns.automated_ms), (299 * MIN, MIN));
        assert_eq!(dns.person_ms, 298 * MIN);
        assert_eq!(dns.mode, WorkMode::Manual);
        assert_eq!(lead.first_response_ms, Some(MIN));
    }

    #[test]
    fn the_clock_so_far_counts_to_now_in_the_current_part() {
        use EventKind::*;
        use RequestStatus::*;
        let events = timeline(&[
            (
                0,
                EventKind::Submitted,
                RequestStatus::Submitted,
                None,
                "ann",
            ),
            (5, TicketCreated, AwaitingFulfillment, None, "worker"),
        ]);
        let now = events[1].at + time::Duration::minutes(55);
        let so_far = progress(&events, "ann", now, &wall).unwrap();
        assert_eq!(so_far.parts.queued_ms, 5 * MIN);
        assert_eq!(so_far.parts.person_ms, 55 * MIN);
        assert_eq!(so_far.first_response_ms, None);
        assert!(!so_far.waiting);
        assert!(measure(&[], "ann").is_none());
    }
}
