//! `/insights`: how long requests take and where the time goes, from the lead times
//! stored on ended requests.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::problem::{Problem, QueryParams, choice};
use crate::insights::service::{
    Grouping, Insights, InsightsError, LeadTimeQuery, LeadTimeReport, MAX_PERIOD, Outcome,
};
use crate::requests::durations::WorkMode;

/// The period when `from` is not given: this long before `to`.
const DEFAULT_PERIOD: time::Duration = time::Duration::days(30);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct LeadTimeParams {
    /// Requests submitted at or after this (RFC 3339, or a date `YYYY-MM-DD` for its
    /// midnight UTC); 30 days before `to` by default.
    from: Option<String>,
    /// Requests submitted before this (as `from`); now by default. At most 731 days
    /// after `from`.
    to: Option<String>,
    /// One item or bundle.
    item: Option<String>,
    /// One owning team.
    team: Option<String>,
    /// Who did the work.
    #[param(value_type = Option<WorkMode>)]
    mode: Option<String>,
    /// How the request ended.
    #[param(value_type = Option<Outcome>)]
    outcome: Option<String>,
    /// Figures per item, team, mode or ISO week of submission.
    #[param(value_type = Option<Grouping>)]
    group_by: Option<String>,
}

/// A free-text parameter's value; an empty one counts as not given (an enumerated one
/// that is empty is no value of its enumeration, and is refused).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A time given as RFC 3339, or as a date (its midnight UTC), from 1970 on (request ids
/// carry their time since the Unix epoch).
fn instant(parameter: &'static str, text: &str) -> Result<OffsetDateTime, Problem> {
    use time::format_description::well_known::Rfc3339;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| {
            time::Date::parse(text, &format)
                .ok()
                .map(|d| d.midnight().assume_utc())
        })
        .ok_or_else(|| {
            Problem::invalid_parameter(
                parameter,
                format!("`{text}` is neither an RFC 3339 time nor a date (YYYY-MM-DD)"),
            )
        })?;
    if at < OffsetDateTime::UNIX_EPOCH + DEFAULT_PERIOD {
        return Err(Problem::invalid_parameter(
            parameter,
            format!("`{text}` is before February 1970"),
        ));
    }
    Ok(at)
}

impl LeadTimeParams {
    fn query(self, now: OffsetDateTime) -> Result<LeadTimeQuery, Problem> {
        let to = match given(&self.to) {
            Some(text) => instant("to", text)?,
            None => now,
        };
        let from = match given(&self.from) {
            Some(text) => instant("from", text)?,
            // `to` is past the epoch's first month: this cannot go below it.
            None => to - DEFAULT_PERIOD,
        };
        if from >= to {
            return Err(Problem::invalid_parameter(
                "to",
                "the period ends before it starts: `to` must be after `from`",
            ));
        }
        if to - from > MAX_PERIOD {
            return Err(Problem::invalid_parameter(
                "from",
                format!(
                    "the period is {} days long; at most {} days",
                    (to - from).whole_days(),
                    MAX_PERIOD.whole_days()
                ),
            ));
        }
        let outcome = choice(
            "outcome",
            "outcome",
            self.outcome.as_deref(),
            &Outcome::ALL,
            Outcome::as_str,
        )?;
        let mode = choice(
            "mode",
            "mode",
            self.mode.as_deref(),
            &WorkMode::ALL,
            WorkMode::as_str,
        )?;
        let group_by = choice(
            "groupBy",
            "grouping",
            self.group_by.as_deref(),
            &Grouping::ALL,
            Grouping::as_str,
        )?;
        Ok(LeadTimeQuery {
            from,
            to,
            target: given(&self.item).map(str::to_owned),
            team: given(&self.team).map(str::to_owned),
            mode,
            outcome,
            group_by,
        })
    }
}

/// Lead time figures of the requests submitted in a period: counts, success and failure
/// rates, percentiles of the lead time and its parts, grouped as asked, and for items
/// that went from manual to automated, the figures before and after with the reduction.
/// Admins see every request, team members their teams', everyone their own.
#[utoipa::path(get, path = "/insights/lead-time", tag = "insights", security(("bearer" = [])),
    params(LeadTimeParams),
    responses((status = 200, body = LeadTimeReport),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "An unknown or invalid parameter, a reversed period or one over 731 days (`parameter` names it)"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "A team the caller is not in")))]
pub async fn lead_time(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(p): QueryParams<LeadTimeParams>,
) -> Result<Json<LeadTimeReport>, Problem> {
    let query = p.query(state.requests.clock.now())?;
    let insights = Insights {
        requests: state.requests.store.clone(),
        roles: state.requests.roles.clone(),
    };
    insights
        .lead_time(&who, &query)
        .await
        .map(Json)
        .map_err(|e| match e {
            InsightsError::Forbidden(why) => Problem::forbidden(why),
            InsightsError::Store(e) => e.into(),
        })
}
