//! Figures over a set of ended requests: counts, rates, and percentiles of their lead
//! times and its parts.

use serde::Serialize;
use utoipa::ToSchema;

use crate::requests::durations::LeadTime;
use crate::requests::model::RequestStatus;

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `sorted` (ascending): the smallest
/// value at least `p` % of the values are at or below. `None` for no values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Percentiles of one duration, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    pub p50_ms: u64,
    pub p90_ms: u64,
    pub p99_ms: u64,
    pub mean_ms: u64,
}

impl Spread {
    /// The spread of `values` (any order); zeros when there are none.
    pub fn of(mut values: Vec<u64>) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        values.sort_unstable();
        let sum: u128 = values.iter().map(|v| u128::from(*v)).sum();
        Spread {
            p50_ms: percentile(&values, 50.0).unwrap_or(0),
            p90_ms: percentile(&values, 90.0).unwrap_or(0),
            p99_ms: percentile(&values, 99.0).unwrap_or(0),
            mean_ms: u64::try_from(sum / values.len() as u128).unwrap_or(u64::MAX),
        }
    }
}

/// The parts of the lead time, each as a spread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartSpreads {
    pub queued: Spread,
    pub approval: Spread,
    pub scheduled: Spread,
    pub person: Spread,
    pub automated: Spread,
    pub paused: Spread,
}

/// One ended request, as the figures need it.
#[derive(Debug, Clone)]
pub struct Ended<'a> {
    pub status: RequestStatus,
    pub lead_time: &'a LeadTime,
}

/// The figures of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Requests that ended.
    pub ended: u64,
    pub completed: u64,
    pub failed: u64,
    pub rejected: u64,
    pub cancelled: u64,
    /// Completed of ended, from 0 to 1 (0 when none ended).
    pub success_rate: f64,
    /// Failed of ended, from 0 to 1.
    pub failure_rate: f64,
    /// Requests that missed a service level target.
    pub breached: u64,
    /// Submission to end.
    pub lead_time: Spread,
    pub parts: PartSpreads,
}

impl Figures {
    pub fn of(requests: &[Ended<'_>]) -> Figures {
        let count = |status| requests.iter().filter(|r| r.status == status).count() as u64;
        let ended = requests.len() as u64;
        let rate = |n: u64| {
            if ended == 0 {
                0.0
            } else {
                n as f64 / ended as f64
            }
        };
        let spread =
            |f: fn(&LeadTime) -> u64| Spread::of(requests.iter().map(|r| f(r.lead_time)).collect());
        let (completed, failed) = (
            count(RequestStatus::Completed),
            count(RequestStatus::Failed),
        );
        Figures {
            ended,
            completed,
            failed,
            rejected: count(RequestStatus::Rejected),
            cancelled: count(RequestStatus::Cancelled),
            success_rate: rate(completed),
            failure_rate: rate(failed),
            breached: requests
                .iter()
                .filter(|r| !r.lead_time.breached.is_empty())
                .count() as u64,
            lead_time: spread(|l| l.total_ms),
            parts: PartSpreads {
                queued: spread(|l| l.parts.queued_ms),
                approval: spread(|l| l.parts.approval_ms),
                scheduled: spread(|l| l.parts.scheduled_ms),
                person: spread(|l| l.parts.person_ms),
                automated: spread(|l| l.parts.automated_ms),
                paused: spread(|l| l.parts.paused_ms),
            },
        }
    }
}
