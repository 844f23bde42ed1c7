//! Service level targets' business hours: how much working time lies between two
//! instants, and the checks of an `sla` the schema cannot make.

use std::collections::HashSet;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use time::OffsetDateTime;

use super::calendar::{time_of_day, weekday, zone};
use super::document::{BusinessHours, Sla};

/// The longest span measured day by day; longer ones count only this many days.
const MAX_DAYS: usize = 1_000;

/// Business hours, resolved: the zone, the working days, the hours and the days off.
#[derive(Debug, Clone)]
pub struct Hours {
    tz: TimeZone,
    days: Vec<Weekday>,
    from: Time,
    to: Time,
    holidays: HashSet<Date>,
}

fn instant(at: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(at.unix_timestamp_nanos()).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Hours {
    /// The hours `b` declares; why not, naming the field, when they cannot be used.
    pub fn resolve(b: &BusinessHours) -> Result<Hours, (&'static str, String)> {
        let tz = zone(&b.time_zone).map_err(|e| ("timeZone", e))?;
        let days = b
            .days
            .iter()
            .map(|d| weekday(d).ok_or_else(|| ("days", format!("`{d}` is not a day (mon to sun)"))))
            .collect::<Result<_, _>>()?;
        let from = time_of_day(&b.from).map_err(|e| ("from", e))?;
        let to = time_of_day(&b.to).map_err(|e| ("to", e))?;
        if to <= from {
            return Err((
                "to",
                format!("the day ends at {} before it starts at {}", b.to, b.from),
            ));
        }
        let holidays = b
            .holidays
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|e| ("holidays", format!("`{d}` is not a date: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Hours {
            tz,
            days,
            from,
            to,
            holidays,
        })
    }

    /// Milliseconds of working time from `start` to `end`.
    pub fn between(&self, start: OffsetDateTime, end: OffsetDateTime) -> u64 {
        if end <= start {
            return 0;
        }
        let (start, end) = (instant(start), instant(end));
        let mut day = start.to_zoned(self.tz.clone()).date();
        let mut total: i128 = 0;
        for _ in 0..MAX_DAYS {
            let zoned = |t: Time| {
                self.tz
                    .to_ambiguous_zoned(day.to_datetime(t))
                    .compatible()
                    .map(|z| z.timestamp())
                    .ok()
            };
            let Some(open) = zoned(self.from) else { break };
            if open >= end {
                break;
            }
            if self.days.contains(&day.weekday())
                && !self.holidays.contains(&day)
                && let Some(close) = zoned(self.to)
            {
                let (a, b) = (open.max(start), close.min(end));
                if b > a {
                    total += b.as_nanosecond() - a.as_nanosecond();
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        u64::try_from(total / 1_000_000).unwrap_or(0)
    }
}

/// Checks of an `sla` at `pointer` the schema cannot make: its business hours resolve.
pub fn check(sla: &Sla, pointer: &str) -> Vec<(String, String)> {
    let Some(hours) = &sla.business_hours else {
        return Vec::new();
    };
    match Hours::resolve(hours) {
        Ok(_) => Vec::new(),
        Err((field, why)) => vec![(format!("{pointer}/businessHours/{field}"), why)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(holidays: &[&str]) -> Hours {
        Hours::resolve(&BusinessHours {
            name: "paris office".to_owned(),
            time_zone: "Europe/Paris".to_owned(),
            days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            from: "09:00".to_owned(),
            to: "17:00".to_owned(),
            holidays: holidays.iter().map(|d| (*d).to_owned()).collect(),
        })
        .unwrap()
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn business_time_counts_only_working_hours_of_working_days() {
        let h = hours(&[]);
        // Friday 2026-12-04 16:00 Paris (15:00 UTC) to Monday 10:30 Paris: an hour on
        // Friday, an hour and a half on Monday.
        assert_eq!(
            h.between(at("2026-12-04T15:00:00Z"), at("2026-12-07T09:30:00Z")),
            HOUR * 5 / 2
        );
        // Inside one day.
        assert_eq!(
            h.between(at("2026-12-07T09:00:00Z"), at("2026-12-07T10:00:00Z")),
            HOUR
        );
        // A night and a weekend count nothing.
        assert_eq!(
            h.between(at("2026-12-05T08:00:00Z"), at("2026-12-06T20:00:00Z")),
            0
        );
        // A whole week: five days of eight hours.
        assert_eq!(
            h.between(at("2026-12-07T00:00:00Z"), at("2026-12-14T00:00:00Z")),
            40 * HOUR
        );
        // A holiday is a day off.
        let with_holiday = hours(&["2026-12-08"]);
        assert_eq!(
            with_holiday.between(at("2026-12-07T00:00:00Z"), at("2026-12-14T00:00:00Z")),
            32 * HOUR
        );
        assert_eq!(
            h.between(at("2026-12-07T10:00:00Z"), at("2026-12-07T09:00:00Z")),
            0
        );
    }

    #[test]
    fn hours_that_cannot_be_used_are_refused_naming_the_field() {
        let mut b = BusinessHours {
            name: "x".to_owned(),
            time_zone: "Mars/Olympus".to_owned(),
            days: vec!["mon".to_owned()],
            from: "09:00".to_owned(),
            to: "17:00".to_owned(),
            holidays: Vec::new(),
        };
        assert_eq!(Hours::resolve(&b).unwrap_err().0, "timeZone");
        b.time_zone = "UTC".to_owned();
        b.to = "08:00".to_owned();
        assert_eq!(Hours::resolve(&b).unwrap_err().0, "to");
        b.to = "17:00".to_owned();
        b.holidays = vec!["2026-02-30".to_owned()];
        assert_eq!(Hours::resolve(&b).unwrap_err().0, "holidays");
    }
}
