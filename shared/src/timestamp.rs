//! RFC 3339 timestamps for serde (`#[serde(with = "crate::timestamp")]`): the text of
//! `time::serde::rfc3339`, written into a buffer on the stack. Every stored record and
//! every response carries timestamps (nine per new request), and `time` formats each
//! through a `String` of its own. Reading is `time`'s.

use serde::{Deserializer, Serializer};
use time::OffsetDateTime;

/// The longest text: `9999-12-31T23:59:59.999999999+23:59`.
const MAX_LEN: usize = 35;

pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match write(at, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        // What RFC 3339 cannot say (a year past 9999, an offset with seconds): `time`'s
        // error.
        None => time::serde::rfc3339::serialize(at, serializer),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    time::serde::rfc3339::deserialize(deserializer)
}

/// The RFC 3339 text of a time, for messages.
pub fn format(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `Option<OffsetDateTime>`, `null` for `None`.
pub mod option {
    use serde::{Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(
        at: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        time::serde::rfc3339::option::deserialize(deserializer)
    }
}

/// `at` as RFC 3339 in `buf`, as `time` writes it: seconds' fraction without trailing
/// zeros (none when zero), `Z` for UTC. `None` when RFC 3339 cannot say it.
fn write<'b>(at: &OffsetDateTime, buf: &'b mut [u8; MAX_LEN]) -> Option<&'b str> {
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let offset = at.offset();
    if offset.seconds_past_minute() != 0 {
        return None;
    }
    let mut out = Writer { buf, len: 0 };
    out.digits(year, 4);
    out.byte(b'-');
    out.digits(u32::from(u8::from(at.month())), 2);
    out.byte(b'-');
    out.digits(u32::from(at.day()), 2);
    out.byte(b'T');
    out.digits(u32::from(at.hour()), 2);
    out.byte(b':');
    out.digits(u32::from(at.minute()), 2);
    out.byte(b':');
    out.digits(u32::from(at.second()), 2);
    let mut nanos = at.nanosecond();
    if nanos != 0 {
        let mut width = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            width -= 1;
        }
        out.byte(b'.');
        out.digits(nanos, width);
    }
    if offset.is_utc() {
        out.byte(b'Z');
    } else {
        out.byte(if offset.is_negative() { b'-' } else { b'+' });
        out.digits(u32::from(offset.whole_hours().unsigned_abs()), 2);
        out.byte(b':');
        out.digits(u32::from(offset.minutes_past_hour().unsigned_abs()), 2);
    }
    let len = out.len;
    std::str::from_utf8(&buf[..len]).ok()
}

struct Writer<'b> {
    buf: &'b mut [u8; MAX_LEN],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `n` in exactly `width` decimal digits (`n` fits: its callers bound it).
    fn digits(&mut self, mut n: u32, width: usize) {
        for i in (0..width).rev() {
            // A digit, 0 to 9.
            self.buf[self.len + i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
        self.len += width;
    }
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;
    use time::{Duration, UtcOffset};

    use super::*;

    fn ours(at: OffsetDateTime) -> Option<String> {
        let mut buf = [0u8; MAX_LEN];
        write(&at, &mut buf).map(str::to_owned)
    }

    #[test]
    fn writes_what_time_writes() {
        let start = time::macros::datetime!(2026-11-22 02:17:30.712209911 UTC);
        let offsets = [
            UtcOffset::UTC,
            time::macros::offset!(+05:30),
            time::macros::offset!(-08:00),
            time::macros::offset!(-00:45),
        ];
        // Fractions of every length (trailing zeros), none, and dates across the range.
        let nanos = [0, 1, 10, 100_000, 120_000_000, 999_999_999, 712_209_911];
        let mut n = 0;
        for days in [-740_000, -3650, -1, 0, 1, 400, 2_900_000] {
            for ns in nanos {
                for offset in offsets {
                    let at = (start + Duration::days(days))
                        .replace_nanosecond(ns)
                        .unwrap()
                        .to_offset(offset);
                    assert_eq!(ours(at), at.format(&Rfc3339).ok(), "{at:?}");
                    n += 1;
                }
            }
        }
        assert_eq!(n, 7 * 7 * 4);
        // Out of RFC 3339's range, left to `time` (which refuses it): a year before 0,
        // an offset with seconds.
        let early = start - Duration::days(750_000);
        let odd = start.to_offset(UtcOffset::from_hms(1, 0, 30).unwrap());
        for at in [early, odd] {
            assert_eq!(ours(at), None);
            assert!(at.format(&Rfc3339).is_err());
        }
    }

    #[test]
    fn serializes_and_reads_back() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Stamped {
            #[serde(with = "crate::timestamp")]
            at: OffsetDateTime,
            #[serde(with = "crate::timestamp::option")]
            maybe: Option<OffsetDateTime>,
        }
        let value = Stamped {
            at: time::macros::datetime!(2026-01-02 03:04:05.5 UTC),
            maybe: None,
        };
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(text, r#"{"at":"2026-01-02T03:04:05.5Z","maybe":null}"#);
        assert_eq!(serde_json::from_str::<Stamped>(&text).unwrap(), value);
        let both = Stamped {
            maybe: Some(value.at),
            ..value
        };
        let text = serde_json::to_string(&both).unwrap();
        assert_eq!(serde_json::from_str::<Stamped>(&text).unwrap(), both);
    }
}
