//! Lead time insights: the figures of the requests submitted in a period, grouped, and
//! for items whose requests went from people to automation, the figures before and after
//! the switch. Read from the lead times stored on ended requests (never their
//! timelines), through the request store's listing by creation time.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::stats::{Ended, Figures};
use crate::access::{Principal, Roles};
use crate::ports::{RequestQuery, RequestStore, StoreError};
use crate::requests::durations::WorkMode;
use crate::requests::model::{Request, RequestStatus};

/// The longest period one query covers.
pub const MAX_PERIOD: time::Duration = time::Duration::days(731);

/// The most requests one query reads; past it, the answer says it is truncated.
pub const MAX_SCANNED: usize = 200_000;

/// How the figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// By item or bundle.
    Item,
    /// By owning team.
    Team,
    /// By who did the work.
    Mode,
    /// By the ISO week of submission (`2026-W49`).
    Week,
}

impl Grouping {
    pub const ALL: [Grouping; 4] = [
        Grouping::Item,
        Grouping::Team,
        Grouping::Mode,
        Grouping::Week,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Item => "item",
            Grouping::Team => "team",
            Grouping::Mode => "mode",
            Grouping::Week => "week",
        }
    }

    fn key(self, request: &Request, mode: WorkMode) -> String {
        match self {
            Grouping::Item => request.target.clone(),
            Grouping::Team => request.owner.clone(),
            Grouping::Mode => mode.as_str().to_owned(),
            Grouping::Week => week(request.created_at),
        }
    }
}

/// The ISO week of `at` (UTC), as `2026-W49`.
pub fn week(at: OffsetDateTime) -> String {
    let (year, week, _) = at.to_offset(time::UtcOffset::UTC).to_iso_week_date();
    format!("{year}-W{week:02}")
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Completed,
    Failed,
    Rejected,
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Completed,
        Outcome::Failed,
        Outcome::Rejected,
        Outcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }

    /// The request status it is.
    pub fn status(self) -> RequestStatus {
        match self {
            Outcome::Completed => RequestStatus::Completed,
            Outcome::Failed => RequestStatus::Failed,
            Outcome::Rejected => RequestStatus::Rejected,
            Outcome::Cancelled => RequestStatus::Cancelled,
        }
    }
}

/// Which requests, and how to group them.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadTimeQuery {
    /// Requests submitted at or after this...
    pub from: OffsetDateTime,
    /// ...and before this.
    pub to: OffsetDateTime,
    /// One item or bundle.
    pub target: Option<String>,
    /// One owning team.
    pub team: Option<String>,
    pub mode: Option<WorkMode>,
    /// One end.
    pub outcome: Option<Outcome>,
    pub group_by: Option<Grouping>,
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// An item or bundle whose requests went from people (JIRA) to automation in the period:
/// the figures of the manual requests submitted before the first automated one, and of
/// the automated ones from then on.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Switch {
    pub target: String,
    /// When the first automated request was submitted.
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub switched_at: OffsetDateTime,
    pub before: Figures,
    pub after: Figures,
    /// How much shorter the median lead time became, in percent (negative: longer).
    pub median_reduction_percent: f64,
    /// The same for the 90th percentile.
    pub p90_reduction_percent: f64,
}

/// The answer of `GET /insights/lead-time`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadTimeReport {
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Grouping>,
    /// Every request that matched, together.
    pub overall: Figures,
    /// Requests submitted in the period and not ended yet.
    pub open: u64,
    /// Ended requests with no lead time stored (they ended before lead times were kept).
    pub unmeasured: u64,
    /// The groups, by key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// Items and bundles that went from manual to automated in the period.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<Switch>,
    /// More requests matched than one query reads ([`MAX_SCANNED`]): the figures are of
    /// the newest of them. Narrow the period or the filters.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Insights {
    pub requests: Arc<dyn RequestStore>,
    pub roles: Roles,
}

impl Insights {
    /// The lead time figures `query` asks for, over the requests `who` may see: admins
    /// all, team members their teams', everyone their own.
    pub async fn lead_time(
        &self,
        who: &Principal,
        query: &LeadTimeQuery,
    ) -> Result<LeadTimeReport, InsightsError> {
        let (requests, truncated) = self.scan(who, query).await?;
        Ok(report(query, &requests, truncated))
    }

    /// The requests submitted in the period that `who` may see and the filters the store
    /// applies (target, team, outcome) keep, newest first.
    async fn scan(
        &self,
        who: &Principal,
        query: &LeadTimeQuery,
    ) -> Result<(Vec<Request>, bool), InsightsError> {
        let base = RequestQuery {
            target: query.target.clone(),
            owner: query.team.clone(),
            status: query.outcome.map(Outcome::status),
            created: Some(query.from..query.to),
            limit: 500,
            ..Default::default()
        };
        let scopes = if self.roles.is_admin(who) {
            vec![base]
        } else if let Some(team) = &query.team {
            if !self.roles.in_team(who, team) {
                return Err(InsightsError::Forbidden(format!(
                    "only members of `{team}` may see its insights"
                )));
            }
            vec![base]
        } else {
            // Each team the caller is in, and the caller's own requests.
            let mut scopes: Vec<RequestQuery> = who
                .groups
                .iter()
                .map(|g| RequestQuery {
                    owner: Some(g.clone()),
                    ..base.clone()
                })
                .collect();
            scopes.push(RequestQuery {
                requester: Some(who.sub.clone()),
                ..base
            });
            scopes
        };
        let mut seen = HashSet::new();
        let mut requests = Vec::new();
        for mut scope in scopes {
            loop {
                let page = self.requests.list(&scope).await?;
                for request in page.items {
                    if seen.insert(request.id) {
                        requests.push(request);
                        if requests.len() >= MAX_SCANNED {
                            return Ok((requests, true));
                        }
                    }
                }
                match page.next {
                    Some(next) => scope.cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok((requests, false))
    }
}

/// The figures of `requests` (those the store returned) as `query` asks.
pub fn report(query: &LeadTimeQuery, requests: &[Request], truncated: bool) -> LeadTimeReport {
    let mut open = 0;
    let mut unmeasured = 0;
    // Every measured request, whatever its mode (the switches need both).
    let mut measured: Vec<(&Request, Ended<'_>)> = Vec::new();
    for request in requests {
        if !request.status.is_terminal() {
            open += 1;
            continue;
        }
        match &request.lead_time {
            Some(lead_time) => measured.push((
                request,
                Ended {
                    status: request.status,
                    lead_time,
                },
            )),
            None => unmeasured += 1,
        }
    }
    let kept: Vec<&(&Request, Ended<'_>)> = measured
        .iter()
        .filter(|(_, e)| query.mode.is_none_or(|m| e.lead_time.mode == m))
        .collect();
    let overall = Figures::of(&kept.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>());
    let groups = match query.group_by {
        None => Vec::new(),
        Some(grouping) => {
            let mut by_key: BTreeMap<String, Vec<Ended<'_>>> = BTreeMap::new();
            for (request, ended) in &kept {
                by_key
                    .entry(grouping.key(request, ended.lead_time.mode))
                    .or_default()
                    .push(ended.clone());
            }
            by_key
                .into_iter()
                .map(|(key, ended)| Group {
                    key,
                    figures: Figures::of(&ended),
                })
                .collect()
        }
    };
    LeadTimeReport {
        from: query.from,
        to: query.to,
        group_by: query.group_by,
        overall,
        open,
        unmeasured,
        groups,
        switches: switches(&measured),
        truncated,
    }
}

/// The items and bundles with both manual and automated requests among `measured`.
fn switches(measured: &[(&Request, Ended<'_>)]) -> Vec<Switch> {
    let mut by_target: BTreeMap<&str, Vec<&(&Request, Ended<'_>)>> = BTreeMap::new();
    for entry in measured {
        by_target
            .entry(entry.0.target.as_str())
            .or_default()
            .push(entry);
    }
    let mut found = Vec::new();
    for (target, entries) in by_target {
        let Some(switched_at) = entries
            .iter()
            .filter(|(_, e)| e.lead_time.mode == WorkMode::Automated)
            .map(|(r, _)| r.created_at)
            .min()
        else {
            continue;
        };
        let side = |mode: WorkMode, before: bool| -> Vec<Ended<'_>> {
            entries
                .iter()
                .filter(|(r, e)| e.lead_time.mode == mode && (r.created_at < switched_at) == before)
                .map(|(_, e)| e.clone())
                .collect()
        };
        let before = side(WorkMode::Manual, true);
        if before.is_empty() {
            continue;
        }
        let before = Figures::of(&before);
        let after = Figures::of(&side(WorkMode::Automated, false));
        found.push(Switch {
            target: target.to_owned(),
            switched_at,
            median_reduction_percent: reduction(before.lead_time.p50_ms, after.lead_time.p50_ms),
            p90_reduction_percent: reduction(before.lead_time.p90_ms, after.lead_time.p90_ms),
            before,
            after,
        });
    }
    found
}

/// How much smaller `after` is than `before`, in percent to one decimal.
fn reduction(before: u64, after: u64) -> f64 {
    if before == 0 {
        return 0.0;
    }
    let percent = (before as f64 - after as f64) / before as f64 * 100.0;
    (percent * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::stats::percentile;
    use crate::requests::durations::{LeadTime, Parts};
    use crate::requests::model::TargetKind;

    /// A deterministic stream of numbers (a linear congruential generator).
    struct Numbers(u64);

    impl Numbers {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (self.0 >> 33) % below
        }
    }

    fn ended(
        target: &str,
        owner: &str,
        at: OffsetDateTime,
        status: RequestStatus,
        mode: WorkMode,
        total_ms: u64,
    ) -> Request {
        let who = Principal {
            sub: "ann".to_owned(),
            email: None,
            groups: Vec::new(),
        };
        let mut request = Request::submitted(
            TargetKind::Item,
            target,
            "v1",
            owner,
            &who,
            Default::default(),
            at,
        );
        request.status = status;
        let parts = match mode {
            WorkMode::Automated => Parts {
                automated_ms: total_ms,
                ..Parts::default()
            },
            _ => Parts {
                queued_ms: total_ms / 4,
                person_ms: total_ms - total_ms / 4,
                ..Parts::default()
            },
        };
        request.lead_time = Some(LeadTime {
            ended_at: at + time::Duration::milliseconds(total_ms as i64),
            total_ms,
            parts,
            mode,
            first_response_ms: None,
            components: Default::default(),
            breached: Vec::new(),
        });
        request
    }

    fn start() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    fn query(group_by: Option<Grouping>) -> LeadTimeQuery {
        LeadTimeQuery {
            from: start(),
            to: start() + time::Duration::days(365),
            target: None,
            team: None,
            mode: None,
            outcome: None,
            group_by,
        }
    }

    /// The smallest value that at least `p` % of `values` are at or below, found by
    /// trying every value.
    fn brute_force(values: &[u64], p: f64) -> u64 {
        let n = values.len() as f64;
        *values
            .iter()
            .filter(|v| values.iter().filter(|w| *w <= *v).count() as f64 >= p / 100.0 * n)
            .min()
            .unwrap()
    }

    #[test]
    fn percentiles_match_a_brute_force_count_on_generated_data() {
        let mut numbers = Numbers(7);
        for size in [1, 2, 3, 10, 99, 100, 101, 997] {
            let values: Vec<u64> = (0..size).map(|_| numbers.next(10_000_000)).collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            for p in [1.0, 10.0, 50.0, 90.0, 95.0, 99.0, 100.0] {
                assert_eq!(
                    percentile(&sorted, p),
                    Some(brute_force(&values, p)),
                    "p{p} of {size} values"
                );
            }
        }
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn figures_group_by_item_team_mode_and_week_and_count_each_end() {
        let mut numbers = Numbers(11);
        let mut requests = Vec::new();
        for n in 0..400u64 {
            let at = start() + time::Duration::hours(n as i64 * 7);
            let target = ["db", "queue", "dns"][(n % 3) as usize];
            let status = match numbers.next(10) {
                0 => RequestStatus::Failed,
                1 => RequestStatus::Cancelled,
                _ => RequestStatus::Completed,
            };
            let mode = if n % 2 == 0 {
                WorkMode::Automated
            } else {
                WorkMode::Manual
            };
            requests.push(ended(
                target,
                "team-a",
                at,
                status,
                mode,
                1 + numbers.next(1_000_000),
            ));
        }
        // One still running, one from before lead times were kept.
        let mut open = ended(
            "db",
            "team-a",
            start(),
            RequestStatus::InProgress,
            WorkMode::Automated,
            1,
        );
        open.lead_time = None;
        let mut old = ended(
            "db",
            "team-a",
            start(),
            RequestStatus::Completed,
            WorkMode::Automated,
            1,
        );
        old.lead_time = None;
        requests.extend([open, old]);

        let by_item = report(&query(Some(Grouping::Item)), &requests, false);
        assert_eq!((by_item.open, by_item.unmeasured), (1, 1));
        assert_eq!(by_item.overall.ended, 400);
        let totals: Vec<u64> = requests
            .iter()
            .filter_map(|r| r.lead_time.as_ref().map(|l| l.total_ms))
            .collect();
        assert_eq!(by_item.overall.lead_time.p50_ms, brute_force(&totals, 50.0));
        assert_eq!(by_item.overall.lead_time.p90_ms, brute_force(&totals, 90.0));
        assert_eq!(by_item.overall.lead_time.p99_ms, brute_force(&totals, 99.0));
        let ends = &by_item.overall;
        assert_eq!(
            ends.completed + ends.failed + ends.cancelled + ends.rejected,
            ends.ended
        );
        assert!((ends.success_rate - ends.completed as f64 / 400.0).abs() < 1e-9);
        assert!((ends.failure_rate - ends.failed as f64 / 400.0).abs() < 1e-9);
        let keys: Vec<&str> = by_item.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["db", "dns", "queue"]);
        assert_eq!(
            by_item.groups.iter().map(|g| g.figures.ended).sum::<u64>(),
            400
        );
        let db: Vec<u64> = requests
            .iter()
            .filter(|r| r.target == "db")
            .filter_map(|r| r.lead_time.as_ref().map(|l| l.total_ms))
            .collect();
        assert_eq!(
            by_item.groups[0].figures.lead_time.p90_ms,
            brute_force(&db, 90.0)
        );

        let by_mode = report(&query(Some(Grouping::Mode)), &requests, false);
        let keys: Vec<&str> = by_mode.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["automated", "manual"]);
        let by_week = report(&query(Some(Grouping::Week)), &requests, false);
        assert_eq!(by_week.groups.first().unwrap().key, week(start()));
        assert!(by_week.groups.len() > 10);

        let automated_only = LeadTimeQuery {
            mode: Some(WorkMode::Automated),
            ..query(None)
        };
        let automated = report(&automated_only, &requests, false);
        assert_eq!(automated.overall.ended, 200);
        assert!(automated.groups.is_empty());
    }

    #[test]
    fn an_item_switched_from_manual_to_automated_shows_its_reduction() {
        let mut requests = Vec::new();
        const HOUR: u64 = 3_600_000;
        // Three months by hand (two to four days), then automated (ten to thirty minutes).
        for n in 0..90i64 {
            let at = start() + time::Duration::days(n);
            let total = (48 + (n as u64 % 3) * 24) * HOUR;
            requests.push(ended(
                "db",
                "team-a",
                at,
                RequestStatus::Completed,
                WorkMode::Manual,
                total,
            ));
        }
        let switched = start() + time::Duration::days(90);
        for n in 0..60i64 {
            let at = switched + time::Duration::days(n);
            let total = (10 + (n as u64 % 3) * 10) * 60_000;
            requests.push(ended(
                "db",
                "team-a",
                at,
                RequestStatus::Completed,
                WorkMode::Automated,
                total,
            ));
        }
        // An item only ever automated has no switch.
        requests.push(ended(
            "dns",
            "team-a",
            start(),
            RequestStatus::Completed,
            WorkMode::Automated,
            1,
        ));

        let all = report(&query(None), &requests, false);
        assert_eq!(all.switches.len(), 1);
        let switch = &all.switches[0];
        assert_eq!(switch.target, "db");
        assert_eq!(switch.switched_at, switched);
        assert_eq!(switch.before.ended, 90);
        assert_eq!(switch.after.ended, 60);
        assert_eq!(switch.before.lead_time.p50_ms, 72 * HOUR);
        assert_eq!(switch.after.lead_time.p50_ms, 20 * 60_000);
        // (72 h - 20 min) / 72 h = 99.5 %: the seed's "90 %+ reduction", measured.
        assert_eq!(switch.median_reduction_percent, 99.5);
        assert_eq!(switch.before.parts.person.p50_ms, 54 * HOUR);
    }
}
