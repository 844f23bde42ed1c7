//! A generated history for the sandbox: months of requests for a few of the catalog's
//! items, fulfilled by people through JIRA at first and automated from a switch date
//! on, so a newcomer sees the insights populated (and the reduction automation brought).
//!
//! Everything generated is marked as such: its requester is [`GENERATED_BY`], its fields
//! say `generated: true`, and every timeline entry's message starts with `(generated)`.
//! The requests are written straight into the store with timelines in the past, and their
//! lead times measured from those timelines as a real request's are.

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::access::Principal;
use crate::catalog::snapshot::CatalogSnapshot;
use crate::ports::{Created, RequestStore, StoreError};
use crate::requests::lead_time::measure;
use crate::requests::model::{
    EventDetail, EventKind, Request, RequestEvent, RequestId, RequestStatus, TargetKind, Ticket,
};

/// The requester of every generated request.
pub const GENERATED_BY: &str = "generated-history";

/// How many items get a history.
const ITEMS: usize = 4;

/// What was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub requests: usize,
    pub items: Vec<String>,
    /// Each item's switch from people to automation.
    pub switched_at: OffsetDateTime,
}

/// A deterministic stream of numbers (a linear congruential generator): the same history
/// on every machine.
struct Numbers(u64);

impl Numbers {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// One step of a generated timeline: how long after the previous one, what, and the
/// status after it.
type Step = (Duration, EventKind, RequestStatus);

/// Writes `weeks` weeks of history ending at `now` for the first items of `catalog` (by
/// name): a few requests a week each, by hand for the first two thirds, automated after.
pub async fn generate(
    store: &dyn RequestStore,
    catalog: &CatalogSnapshot,
    now: OffsetDateTime,
    weeks: u32,
) -> Result<Generated, StoreError> {
    let mut items: Vec<(&str, &str)> = catalog
        .catalog
        .items
        .iter()
        .map(|i| (i.doc.metadata.name.as_str(), i.doc.metadata.owner.as_str()))
        .collect();
    items.sort_unstable();
    items.truncate(ITEMS);
    let start = now - Duration::weeks(i64::from(weeks));
    let switched_at = start + Duration::weeks(i64::from(weeks) * 2 / 3);
    let requester = Principal {
        sub: GENERATED_BY.to_owned(),
        email: None,
        groups: Vec::new(),
    };
    let mut numbers = Numbers(2026);
    // When each request comes, in order.
    let mut arrivals = Vec::new();
    let mut at = start;
    while at < now - Duration::days(1) {
        for (name, owner) in &items {
            let submitted = at + Duration::minutes(numbers.below(5 * 24 * 60) as i64);
            if numbers.below(3) != 0 && submitted < now - Duration::days(1) {
                arrivals.push((submitted, *name, *owner));
            }
        }
        at += Duration::days(3);
    }
    arrivals.sort_unstable();
    for (n, (submitted, name, owner)) in arrivals.iter().enumerate() {
        let steps = if *submitted < switched_at {
            by_hand(&mut numbers)
        } else {
            automated(&mut numbers)
        };
        let mut fields = Map::new();
        fields.insert("generated".to_owned(), Value::Bool(true));
        let request = Request {
            id: RequestId::backdated(*submitted),
            ..Request::submitted(
                TargetKind::Item,
                name,
                &catalog.version,
                owner,
                &requester,
                fields,
                *submitted,
            )
        };
        write(store, request, steps, n + 1).await?;
    }
    let count = arrivals.len();
    Ok(Generated {
        requests: count,
        items: items.iter().map(|(name, _)| (*name).to_owned()).collect(),
        switched_at,
    })
}

/// A person's fulfillment: queued a little, a JIRA issue worked on for one to six days
/// (one in ten declined).
fn by_hand(numbers: &mut Numbers) -> Vec<Step> {
    let person = Duration::hours(24 + numbers.below(5 * 24) as i64);
    let end = if numbers.below(10) == 0 {
        (person, EventKind::Rejected, RequestStatus::Rejected)
    } else {
        (person, EventKind::Completed, RequestStatus::Completed)
    };
    vec![
        (
            Duration::seconds(1 + numbers.below(30) as i64),
            EventKind::FulfillmentStarted,
            RequestStatus::InProgress,
        ),
        (
            Duration::seconds(2),
            EventKind::TicketCreated,
            RequestStatus::AwaitingFulfillment,
        ),
        end,
    ]
}

/// Automation: two to thirty minutes of actions (one in twenty failed).
fn automated(numbers: &mut Numbers) -> Vec<Step> {
    let work = Duration::seconds(120 + numbers.below(28 * 60) as i64);
    let end = if numbers.below(20) == 0 {
        (
            Duration::seconds(5),
            EventKind::Failed,
            RequestStatus::Failed,
        )
    } else {
        (
            Duration::seconds(1),
            EventKind::Completed,
            RequestStatus::Completed,
        )
    };
    vec![
        (
            Duration::seconds(1 + numbers.below(10) as i64),
            EventKind::FulfillmentStarted,
            RequestStatus::InProgress,
        ),
        (
            Duration::milliseconds(200),
            EventKind::ActionStarted,
            RequestStatus::InProgress,
        ),
        (work, EventKind::ActionSucceeded, RequestStatus::InProgress),
        end,
    ]
}

/// Stores `request` with its timeline: submitted, the steps, its end, and the lead time
/// measured from it.
async fn write(
    store: &dyn RequestStore,
    mut request: Request,
    steps: Vec<Step>,
    ticket: usize,
) -> Result<(), StoreError> {
    let entry = |at, kind: EventKind, status| RequestEvent {
        request_id: request.id,
        seq: 0,
        at,
        actor: if kind == EventKind::Submitted {
            GENERATED_BY.to_owned()
        } else {
            "worker".to_owned()
        },
        kind,
        status,
        component: None,
        message: Some(format!("(generated) {kind}")),
        detail: match kind {
            EventKind::TicketCreated => EventDetail::ticket(Ticket {
                key: format!("GEN-{ticket}"),
                url: format!("https://jira.invalid/browse/GEN-{ticket}"),
            }),
            _ => EventDetail::default(),
        },
    };
    let mut events = vec![entry(
        request.created_at,
        EventKind::Submitted,
        RequestStatus::Submitted,
    )];
    let mut at = request.created_at;
    for (after, kind, status) in steps {
        at += after;
        events.push(entry(at, kind, status));
    }
    if let Created::Existing(_) = store.create(&request, &events[0], "").await? {
        return Ok(());
    }
    let (last, middle) = events[1..].split_last().expect("every history has an end");
    store.append(&request.id, middle).await?;
    request.status = last.status;
    request.updated_at = last.at;
    request.version = 2;
    if last.status == RequestStatus::Rejected {
        request.reason = Some("(generated) declined in JIRA".to_owned());
    }
    request.lead_time = measure(&events, GENERATED_BY);
    store.update(&request, last).await
}
