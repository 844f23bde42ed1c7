//! Change calendars: freezes (blackout windows) and maintenance windows, in a named time
//! zone, and what they mean for a request submitted now: it runs, it waits until a time,
//! or it is refused.

use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use super::document::{ChangeCalendar, Freeze, OnConflict, Operation, Window};

/// What the calendars say of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It may run now.
    Run,
    /// It runs once this time comes (`why` says which window).
    Wait { until: Timestamp, why: String },
    /// It may not run: a freeze that refuses (`why` names it and its end).
    Refuse { why: String },
}

/// A time zone by its IANA name, from the embedded database.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    jiff::tz::db()
        .get(name)
        .map_err(|e| format!("`{name}` is not an IANA time zone: {e}"))
}

/// A civil `YYYY-MM-DDTHH:MM` in `tz`, as an instant (a time a DST gap skips is moved
/// forward, one a DST fold repeats is the earlier).
pub fn instant(civil: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    let dt: DateTime = civil
        .parse()
        .map_err(|e| format!("`{civil}` is not a date and time (YYYY-MM-DDTHH:MM): {e}"))?;
    tz.to_ambiguous_zoned(dt)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

/// `HH:MM` as a time of day.
pub fn time_of_day(text: &str) -> Result<Time, String> {
    text.parse()
        .map_err(|e| format!("`{text}` is not a time of day (HH:MM): {e}"))
}

/// Whether a freeze covers `at`, and its end.
fn freeze_end(freeze: &Freeze, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
    let from = instant(&freeze.from, tz).ok()?;
    let to = instant(&freeze.to, tz).ok()?;
    (from <= at && at < to).then_some(to)
}

/// A day as catalogs write it (`mon` to `sun`).
pub(super) fn weekday(day: &str) -> Option<Weekday> {
    Some(match day {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// The window's opening and closing on the civil day of `day` (a window that closes at
/// or before it opens closes the next day).
fn on_day(window: &Window, day: &Zoned) -> Option<(Timestamp, Timestamp)> {
    let tz = day.time_zone();
    let from = time_of_day(&window.from).ok()?;
    let to = time_of_day(&window.to).ok()?;
    let date = day.date();
    let open = tz
        .to_ambiguous_zoned(date.to_datetime(from))
        .compatible()
        .ok()?;
    let close_date = if to <= from {
        date.tomorrow().ok()?
    } else {
        date
    };
    let close = tz
        .to_ambiguous_zoned(close_date.to_datetime(to))
        .compatible()
        .ok()?;
    Some((open.timestamp(), close.timestamp()))
}

/// The earliest instant at or after `at` inside one of `windows` (within two weeks).
fn next_open(windows: &[Window], tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
    let start = at.to_zoned(tz.clone());
    let mut best: Option<Timestamp> = None;
    // Yesterday too: a window that opened yesterday evening may still be open.
    for offset in -1..15i64 {
        let day = start.checked_add(jiff::Span::new().days(offset)).ok()?;
        for window in windows {
            if !window
                .days
                .iter()
                .any(|d| weekday(d) == Some(day.weekday()))
            {
                continue;
            }
            let Some((open, close)) = on_day(window, &day) else {
                continue;
            };
            if close <= at {
                continue;
            }
            let candidate = open.max(at);
            if best.is_none_or(|b| candidate < b) {
                best = Some(candidate);
            }
        }
    }
    best
}

/// Whether a calendar covers a request of `target` (owned by `owner`) doing `operation`
/// with `fields`.
pub fn covers(
    calendar: &ChangeCalendar,
    target: &str,
    owner: &str,
    operation: Operation,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    let scope = &calendar.spec.scope;
    scope.names(target, owner)
        && scope.operations.contains(&operation)
        && super::condition::all_hold(&scope.when, fields)
}

/// What the calendars that cover a request say of it, from `at` (now, or its
/// `notBefore`): freezes first (a refusing one refuses; a waiting one moves the start to
/// its end), then maintenance windows (the start moves to the next opening), again
/// until both agree.
pub fn verdict(calendars: &[&ChangeCalendar], at: Timestamp) -> Verdict {
    let mut start = at;
    let mut why = Vec::new();
    for _ in 0..8 {
        let mut moved = false;
        for calendar in calendars {
            let Ok(tz) = zone(&calendar.spec.time_zone) else {
                continue;
            };
            for freeze in &calendar.spec.freezes {
                if let Some(end) = freeze_end(freeze, &tz, start) {
                    let end_text = end
                        .to_zoned(tz.clone())
                        .strftime("%Y-%m-%d %H:%M %Z")
                        .to_string();
                    if freeze.on_conflict == OnConflict::Refuse {
                        return Verdict::Refuse {
                            why: format!(
                                "`{}` ({}) is frozen until {end_text}",
                                freeze.name, calendar.metadata.name
                            ),
                        };
                    }
                    why.push(format!(
                        "waits out the freeze `{}` until {end_text}",
                        freeze.name
                    ));
                    start = end;
                    moved = true;
                }
            }
            if !calendar.spec.windows.is_empty() {
                match next_open(&calendar.spec.windows, &tz, start) {
                    Some(open) if open > start => {
                        why.push(format!(
                            "waits for a maintenance window of `{}` at {}",
                            calendar.metadata.name,
                            open.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z")
                        ));
                        start = open;
                        moved = true;
                    }
                    Some(_) => {}
                    None => {
                        return Verdict::Refuse {
                            why: format!(
                                "`{}` has no maintenance window in the next two weeks",
                                calendar.metadata.name
                            ),
                        };
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    if start == at {
        Verdict::Run
    } else {
        Verdict::Wait {
            until: start,
            why: why.join("; then "),
        }
    }
}

/// Checks of calendars the schema cannot make: the time zone exists, each freeze ends
/// after it starts, the items, bundles and teams of its scope exist.
pub(super) fn check(catalog: &super::load::Catalog, findings: &mut Vec<super::Finding>) {
    use super::finding::did_you_mean;
    use super::locator::Locator;
    let teams: Vec<&str> = catalog
        .teams
        .as_ref()
        .map(|t| t.doc.spec.teams.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for calendar in &catalog.calendars {
        let spec = &calendar.doc.spec;
        if catalog.teams.is_some() && !teams.contains(&calendar.doc.metadata.owner.as_str()) {
            findings.push(calendar.error_at(
                "/metadata/owner",
                format!(
                    "owner `{}` is not a team in teams.yaml{}",
                    calendar.doc.metadata.owner,
                    did_you_mean(&calendar.doc.metadata.owner, teams.iter().copied())
                ),
            ));
        }
        let tz = match zone(&spec.time_zone) {
            Ok(tz) => Some(tz),
            Err(why) => {
                findings.push(calendar.error_at("/spec/timeZone", why));
                None
            }
        };
        for (i, freeze) in spec.freezes.iter().enumerate() {
            let Some(tz) = &tz else { break };
            let from = instant(&freeze.from, tz);
            let to = instant(&freeze.to, tz);
            match (from, to) {
                (Err(why), _) => {
                    findings.push(calendar.error_at(&format!("/spec/freezes/{i}/from"), why))
                }
                (_, Err(why)) => {
                    findings.push(calendar.error_at(&format!("/spec/freezes/{i}/to"), why))
                }
                (Ok(from), Ok(to)) if to <= from => findings.push(calendar.error_at(
                    &format!("/spec/freezes/{i}/to"),
                    format!(
                        "the freeze `{}` ends ({}) before it starts ({})",
                        freeze.name, freeze.to, freeze.from
                    ),
                )),
                _ => {}
            }
        }
        let scope = &spec.scope;
        for (j, item) in scope.items.iter().enumerate() {
            if catalog.item(item).is_none() {
                findings.push(calendar.error_at(
                    &format!("/spec/scope/items/{j}"),
                    format!("there is no item `{item}` in the catalog"),
                ));
            }
        }
        for (j, bundle) in scope.bundles.iter().enumerate() {
            if catalog.bundle(bundle).is_none() {
                findings.push(calendar.error_at(
                    &format!("/spec/scope/bundles/{j}"),
                    format!("there is no bundle `{bundle}` in the catalog"),
                ));
            }
        }
        for (j, team) in scope.teams.iter().enumerate() {
            if catalog.teams.is_some() && !teams.contains(&team.as_str()) {
                findings.push(calendar.error_at(
                    &format!("/spec/scope/teams/{j}"),
                    format!(
                        "`{team}` is not a team in teams.yaml{}",
                        did_you_mean(team, teams.iter().copied())
                    ),
                ));
            }
        }
        for (j, condition) in scope.when.iter().enumerate() {
            if !condition.path.starts_with("$.fields.") {
                findings.push(calendar.error_at(
                    &format!("/spec/scope/when/{j}/path"),
                    format!("`{}` does not read the request's fields; a condition reads `$.fields.<name>`", condition.path),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn calendar(spec: serde_json::Value) -> ChangeCalendar {
        serde_json::from_value(json!({
            "apiVersion": "orchestrator.dev/v1", "kind": "ChangeCalendar",
            "metadata": {"name": "c", "title": "C", "owner": "platform"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_freeze_refuses_or_waits_until_its_end_in_its_time_zone() {
        let refuse = calendar(json!({"timeZone": "Europe/Paris",
            "freezes": [{"name": "Year end", "from": "2026-12-18T18:00", "to": "2027-01-04T08:00"}]}));
        match verdict(&[&refuse], at("2026-12-20T10:00:00Z")) {
            Verdict::Refuse { why } => assert!(
                why.contains("Year end") && why.contains("2027-01-04 08:00 CET"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // 18:00 in Paris is 17:00 UTC in winter: just before, it runs.
        assert_eq!(
            verdict(&[&refuse], at("2026-12-18T16:59:00Z")),
            Verdict::Run
        );
        let wait = calendar(json!({"timeZone": "Europe/Paris",
            "freezes": [{"name": "Year end", "from": "2026-12-18T18:00", "to": "2027-01-04T08:00", "onConflict": "wait"}]}));
        match verdict(&[&wait], at("2026-12-20T10:00:00Z")) {
            Verdict::Wait { until, .. } => assert_eq!(until, at("2027-01-04T07:00:00Z")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_maintenance_window_is_found_across_a_daylight_saving_change() {
        // Sundays 02:30-04:00 in Paris. On 2027-03-28 clocks go from 02:00 to 03:00: 02:30
        // does not exist that night, so the window opens at 03:30 local (01:30 UTC),
        // where the week before it opened at 02:30 CET (01:30 UTC as well).
        let nightly = calendar(json!({"timeZone": "Europe/Paris",
            "windows": [{"name": "Sunday night", "days": ["sun"], "from": "02:30", "to": "04:00"}]}));
        match verdict(&[&nightly], at("2027-03-24T12:00:00Z")) {
            Verdict::Wait { until, why } => {
                assert_eq!(until, at("2027-03-28T01:30:00Z"), "{why}");
                assert!(why.contains("03:30 CEST"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // After the change, 02:30 exists again: CEST is UTC+2.
        match verdict(&[&nightly], at("2027-03-29T12:00:00Z")) {
            Verdict::Wait { until, .. } => assert_eq!(until, at("2027-04-04T00:30:00Z")),
            other => panic!("{other:?}"),
        }
        // Inside the window: it runs.
        assert_eq!(
            verdict(&[&nightly], at("2027-04-04T01:00:00Z")),
            Verdict::Run
        );
    }

    #[test]
    fn a_window_past_midnight_ends_the_next_day_and_a_freeze_moves_the_start_past_it() {
        let cal = calendar(json!({"timeZone": "UTC",
            "freezes": [{"name": "Launch", "from": "2027-05-03T00:00", "to": "2027-05-04T12:00", "onConflict": "wait"}],
            "windows": [{"name": "Nights", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "22:00", "to": "02:00"}]}));
        // Monday 23:00 is inside Monday's window, but the freeze holds it to Tuesday
        // noon; the next window is Tuesday 22:00.
        match verdict(&[&cal], at("2027-05-03T23:00:00Z")) {
            Verdict::Wait { until, why } => {
                assert_eq!(until, at("2027-05-04T22:00:00Z"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // Wednesday 01:00 is inside Tuesday's window.
        assert_eq!(verdict(&[&cal], at("2027-05-05T01:00:00Z")), Verdict::Run);
    }
}
