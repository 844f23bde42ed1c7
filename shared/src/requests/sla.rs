//! Service level clocks: how much of each target of its item or bundle a request has
//! used, read off its timeline. The clock runs from submission, pauses while the request
//! waits for an approval, a change window or its scheduled time, and with business hours
//! runs only inside them. A watch raises an entry (and so a notification) when a request
//! running reaches the at-risk share of a target, and when it goes past it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::lead_time::{Measure, progress, wall};
use super::model::{EventDetail, EventKind, Note, Request, RequestEvent, RequestStatus};
use super::service::{RequestError, RequestService};
use crate::catalog::document::{Sla, SlaTarget};
use crate::catalog::sla::Hours;
use crate::catalog::snapshot::{CatalogSnapshot, TargetRef};
use crate::ports::{RequestQuery, StoreError};

/// Where a request stands against one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Counting, under the at-risk share.
    Running,
    /// Waiting for an approval, a change window or its scheduled time: not counting.
    Paused,
    /// Past the at-risk share, not past the target.
    AtRisk,
    /// Past the target, and not ended (or answered) yet.
    Breached,
    /// Ended (or answered) within the target.
    Met,
    /// Ended (or answered) past the target.
    Missed,
}

/// One target's clock.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaClock {
    pub target: SlaTarget,
    pub target_ms: u64,
    /// The time counted so far (or to the end, or to the first response).
    pub elapsed_ms: u64,
    /// From this much on it is at risk.
    pub at_risk_ms: u64,
    pub state: SlaState,
    /// The business hours the clock runs in, by name (always, without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<String>,
}

/// The service level targets of a catalog item or bundle, if it declares any.
pub fn sla_of<'c>(catalog: &'c CatalogSnapshot, target: &str) -> Option<&'c Sla> {
    match catalog.target(target)? {
        TargetRef::Item(item) => item.doc.spec.sla.as_ref(),
        TargetRef::Bundle(bundle) => bundle.doc.spec.sla.as_ref(),
    }
}

/// The clocks of `request` (whose timeline is `events`) against `sla`, at `now`.
pub fn clocks(
    sla: &Sla,
    request: &Request,
    events: &[RequestEvent],
    now: OffsetDateTime,
) -> Vec<SlaClock> {
    let hours = sla
        .business_hours
        .as_ref()
        .and_then(|b| Hours::resolve(b).ok());
    let business = |a, b| hours.as_ref().map_or(0, |h| h.between(a, b));
    let measure: Measure<'_> = if hours.is_some() { &business } else { &wall };
    let ended = request.status.is_terminal();
    let until = match (ended, events.last()) {
        (true, Some(last)) => last.at,
        _ => now,
    };
    let Some(so_far) = progress(events, &request.requester.sub, until, measure) else {
        return Vec::new();
    };
    sla.targets()
        .into_iter()
        .map(|(target, limit)| {
            let target_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
            let at_risk_ms = target_ms / 100 * u64::from(sla.at_risk_percent)
                + target_ms % 100 * u64::from(sla.at_risk_percent) / 100;
            let (elapsed_ms, settled) = match target {
                SlaTarget::Fulfil => (so_far.parts.working(), ended),
                SlaTarget::FirstResponse => match so_far.first_response_ms {
                    Some(at) => (at, true),
                    None => (so_far.parts.working(), ended),
                },
            };
            let state = match () {
                _ if settled && elapsed_ms <= target_ms => SlaState::Met,
                _ if settled => SlaState::Missed,
                _ if elapsed_ms > target_ms => SlaState::Breached,
                _ if elapsed_ms >= at_risk_ms => SlaState::AtRisk,
                _ if so_far.waiting => SlaState::Paused,
                _ => SlaState::Running,
            };
            SlaClock {
                target,
                target_ms,
                elapsed_ms,
                at_risk_ms,
                state,
                business_hours: sla.business_hours.as_ref().map(|b| b.name.clone()),
            }
        })
        .collect()
}

/// What a watch pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlaReport {
    /// Requests whose clocks were read.
    pub checked: usize,
    pub at_risk: usize,
    pub breached: usize,
}

/// The statuses of requests whose clocks may still move.
const RUNNING: [RequestStatus; 5] = [
    RequestStatus::Submitted,
    RequestStatus::InProgress,
    RequestStatus::AwaitingApproval,
    RequestStatus::AwaitingFulfillment,
    RequestStatus::Paused,
];

/// The most running requests one pass looks at.
const MAX_PER_PASS: usize = 20_000;

/// Raises `sla_at_risk` and `sla_breached` entries for running requests as their clocks
/// pass the marks, once each per target.
pub struct SlaWatch {
    pub requests: Arc<RequestService>,
}

impl SlaWatch {
    /// One pass over the running requests of targets with service levels.
    pub async fn run_once(&self) -> Result<SlaReport, StoreError> {
        let catalog = self.requests.catalog.current();
        let now = self.requests.clock.now();
        let store = &self.requests.store;
        let mut report = SlaReport::default();
        let mut seen = 0;
        for status in RUNNING {
            let mut query = RequestQuery {
                status: Some(status),
                limit: 500,
                ..Default::default()
            };
            loop {
                let page = store.list(&query).await?;
                for request in &page.items {
                    seen += 1;
                    let Some(sla) = sla_of(&catalog, &request.target) else {
                        continue;
                    };
                    // Working time never runs faster than the wall clock: a request
                    // younger than its earliest mark cannot have reached it.
                    let earliest = sla
                        .targets()
                        .iter()
                        .map(|(_, d)| d.as_millis() * u128::from(sla.at_risk_percent) / 100)
                        .min()
                        .unwrap_or(u128::MAX);
                    if (wall(request.created_at, now) as u128) < earliest {
                        continue;
                    }
                    let events = store.events(&request.id).await?;
                    report.checked += 1;
                    self.raise(sla, request, &events, now, &mut report).await?;
                }
                match page.next {
                    Some(next) if seen < MAX_PER_PASS => query.cursor = Some(next),
                    _ => break,
                }
            }
        }
        Ok(report)
    }

    /// Notes what `request`'s clocks reached that its timeline does not say yet.
    async fn raise(
        &self,
        sla: &Sla,
        request: &Request,
        events: &[RequestEvent],
        now: OffsetDateTime,
        report: &mut SlaReport,
    ) -> Result<(), StoreError> {
        let mut notes = Vec::new();
        for clock in clocks(sla, request, events, now) {
            let marks = [
                (
                    EventKind::SlaAtRisk,
                    matches!(clock.state, SlaState::AtRisk | SlaState::Breached),
                ),
                (EventKind::SlaBreached, clock.state == SlaState::Breached),
            ];
            for (kind, reached) in marks {
                let said = events
                    .iter()
                    .any(|e| e.kind == kind && e.detail.sla == Some(clock.target));
                if !reached || said {
                    continue;
                }
                let what = if kind == EventKind::SlaBreached {
                    report.breached += 1;
                    "missed"
                } else {
                    report.at_risk += 1;
                    "at risk"
                };
                notes.push(
                    Note::new(
                        kind,
                        format!(
                            "service level {what}: {} of {} used of the {} target",
                            minutes(clock.elapsed_ms),
                            minutes(clock.target_ms),
                            clock.target.as_str()
                        ),
                    )
                    .with(EventDetail {
                        sla: Some(clock.target),
                        ..Default::default()
                    }),
                );
                if kind == EventKind::SlaBreached {
                    crate::metrics::count(
                        crate::metrics::SLA_BREACHES,
                        &[("Target", &request.target), ("Sla", clock.target.as_str())],
                        1,
                    );
                }
            }
        }
        match self
            .requests
            .note(request.id, Some(request), "sla", notes)
            .await
        {
            // Ended meanwhile: its clocks stopped.
            Ok(()) | Err(RequestError::InvalidTransition { .. } | RequestError::NotFound(_)) => {
                Ok(())
            }
            Err(RequestError::Store(e)) => Err(e),
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }

    /// Passes every `every` until `shutdown`.
    pub async fn run(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "the service level watch could not finish a pass");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
            }
        }
    }
}

/// `90m`, `26h 05m`: a duration in hours and minutes, for the timeline's messages.
fn minutes(ms: u64) -> String {
    let m = ms / 60_000;
    if m < 60 {
        format!("{m}m")
    } else {
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Principal;
    use crate::catalog::document::BusinessHours;
    use crate::requests::model::{RequestId, TargetKind};

    const HOUR: u64 = 3_600_000;

    fn sla(business_hours: Option<BusinessHours>) -> Sla {
        Sla {
            fulfil: Some("8h".parse().unwrap()),
            first_response: Some("1h".parse().unwrap()),
            at_risk_percent: 75,
            business_hours,
        }
    }

    /// A request submitted at `start` and its timeline: `(hours after start, kind,
    /// status, actor)`.
    fn request(
        start: OffsetDateTime,
        entries: &[(f64, EventKind, RequestStatus, &str)],
    ) -> (Request, Vec<RequestEvent>) {
        let who = Principal {
            sub: "ann".to_owned(),
            email: None,
            groups: Vec::new(),
        };
        let mut request = Request::submitted(
            TargetKind::Item,
            "topic",
            "v1",
            "team",
            &who,
            Default::default(),
            start,
        );
        request.id = RequestId::backdated(start);
        let events: Vec<RequestEvent> = entries
            .iter()
            .enumerate()
            .map(|(i, (hours, kind, status, actor))| RequestEvent {
                request_id: request.id,
                seq: i as u64 + 1,
                at: start + time::Duration::seconds_f64(hours * 3600.0),
                actor: (*actor).to_owned(),
                kind: *kind,
                status: *status,
                component: None,
                message: None,
                detail: EventDetail::default(),
            })
            .collect();
        request.status = events.last().unwrap().status;
        (request, events)
    }

    fn state(clocks: &[SlaClock], target: SlaTarget) -> (SlaState, u64) {
        let clock = clocks.iter().find(|c| c.target == target).unwrap();
        (clock.state, clock.elapsed_ms)
    }

    fn start() -> OffsetDateTime {
        // Monday 2026-12-07 08:00 UTC.
        OffsetDateTime::from_unix_timestamp(1_796_630_400).unwrap()
    }

    #[test]
    fn the_clock_pauses_for_approvals_and_windows_and_counts_a_person_s_time() {
        use EventKind as K;
        use RequestStatus as S;
        let hours = |h: f64| start() + time::Duration::seconds_f64(h * 3600.0);
        let (request, events) = request(
            start(),
            &[
                (0.0, K::Submitted, S::Submitted, "ann"),
                (0.5, K::FulfillmentStarted, S::InProgress, "worker"),
                (0.5, K::ApprovalRequested, S::AwaitingApproval, "worker"),
                (24.5, K::Approved, S::InProgress, "boss"),
                (24.5, K::Scheduled, S::InProgress, "worker"),
                (48.5, K::TicketCreated, S::AwaitingFulfillment, "worker"),
            ],
        );
        let sla = sla(None);
        // A day of approval and a day of window count nothing: half an hour so far.
        let now = clocks(&sla, &request, &events, hours(48.5));
        assert_eq!(
            state(&now, SlaTarget::Fulfil),
            (SlaState::Running, HOUR / 2)
        );
        // Waiting for the window, the clock was paused.
        let waiting = clocks(&sla, &request, &events[..5], hours(30.0));
        assert_eq!(
            state(&waiting, SlaTarget::Fulfil),
            (SlaState::Paused, HOUR / 2)
        );
        // The person's time counts: at 75 % of the first response's hour it is at risk,
        // past the hour breached.
        let later = clocks(&sla, &request, &events, hours(48.75));
        assert_eq!(
            state(&later, SlaTarget::FirstResponse),
            (SlaState::AtRisk, 3 * HOUR / 4)
        );
        let past = clocks(&sla, &request, &events, hours(50.0));
        assert_eq!(
            state(&past, SlaTarget::FirstResponse),
            (SlaState::Breached, 2 * HOUR)
        );
        assert_eq!(
            state(&past, SlaTarget::Fulfil),
            (SlaState::Running, 2 * HOUR)
        );
        let clock = past.iter().find(|c| c.target == SlaTarget::Fulfil).unwrap();
        assert_eq!((clock.target_ms, clock.at_risk_ms), (8 * HOUR, 6 * HOUR));
    }

    #[test]
    fn an_ended_request_met_or_missed_its_targets() {
        use EventKind as K;
        use RequestStatus as S;
        let (request, events) = request(
            start(),
            &[
                (0.0, K::Submitted, S::Submitted, "ann"),
                (0.1, K::TicketCreated, S::AwaitingFulfillment, "worker"),
                // The requester's comment is no response; the person's is.
                (0.2, K::Comment, S::AwaitingFulfillment, "ann"),
                (0.5, K::Comment, S::AwaitingFulfillment, "jira:bob"),
                (9.0, K::Completed, S::Completed, "jira"),
            ],
        );
        let later = start() + time::Duration::days(30);
        let ended = clocks(&sla(None), &request, &events, later);
        assert_eq!(
            state(&ended, SlaTarget::FirstResponse),
            (SlaState::Met, HOUR / 2)
        );
        assert_eq!(
            state(&ended, SlaTarget::Fulfil),
            (SlaState::Missed, 9 * HOUR)
        );
    }

    #[test]
    fn with_business_hours_only_working_time_counts() {
        use EventKind as K;
        use RequestStatus as S;
        let office = BusinessHours {
            name: "london office".to_owned(),
            time_zone: "Europe/London".to_owned(),
            days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            from: "09:00".to_owned(),
            to: "17:00".to_owned(),
            holidays: Vec::new(),
        };
        // Submitted Friday 2026-12-11 16:00 London, a ticket at once.
        let friday = OffsetDateTime::from_unix_timestamp(1_797_004_800).unwrap();
        let (request, events) = request(
            friday,
            &[
                (0.0, K::Submitted, S::Submitted, "ann"),
                (0.0, K::TicketCreated, S::AwaitingFulfillment, "worker"),
            ],
        );
        // Monday 10:00: an hour on Friday, an hour on Monday.
        let monday = friday + time::Duration::hours(66);
        let clocks = clocks(&sla(Some(office)), &request, &events, monday);
        assert_eq!(
            state(&clocks, SlaTarget::Fulfil),
            (SlaState::Running, 2 * HOUR)
        );
        assert_eq!(
            state(&clocks, SlaTarget::FirstResponse),
            (SlaState::Breached, 2 * HOUR)
        );
        assert_eq!(clocks[0].business_hours.as_deref(), Some("london office"));
    }
}
