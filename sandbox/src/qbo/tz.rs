//! A company's local time: QBO answers every date-time (MetaData, `time`)
//! in the company's time zone with its offset, daylight saving included.
//! The simulated companies are in US zones, so the US rule (second Sunday
//! of March 02:00 to first Sunday of November 02:00, local) is all we need.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};

/// UTC as an offset, checked at compile time.
const UTC0: FixedOffset = match FixedOffset::east_opt(0) {
    Some(o) => o,
    None => panic!("a valid offset"),
};

/// (IANA name, standard offset in hours, observes daylight saving).
const ZONES: [(&str, i32, bool); 6] = [
    ("America/Los_Angeles", -8, true),
    ("America/Denver", -7, true),
    ("America/Phoenix", -7, false),
    ("America/Chicago", -6, true),
    ("America/New_York", -5, true),
    ("Pacific/Honolulu", -10, false),
];

/// The zone used when a realm names none (worlds saved before zones).
pub(crate) const DEFAULT_ZONE: &str = "America/Los_Angeles";

fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    first + Duration::days(i64::from(to_sunday + 7 * (n - 1)))
}

/// The zone's name as a static string (unknown or empty names: the
/// default zone), so it can travel in `Copy` values.
pub(crate) fn known(zone: &str) -> &'static str {
    ZONES
        .iter()
        .find(|z| z.0 == zone)
        .map_or(DEFAULT_ZONE, |z| z.0)
}

/// The UTC offset of `zone` at the instant `t`.
pub(crate) fn offset_at(zone: &str, t: DateTime<Utc>) -> FixedOffset {
    let (_, std_h, dst) = ZONES
        .iter()
        .find(|z| z.0 == zone)
        .or_else(|| ZONES.iter().find(|z| z.0 == DEFAULT_ZONE))
        .copied()
        .unwrap_or((DEFAULT_ZONE, -8, true));
    let std_secs = std_h * 3600;
    let mut secs = std_secs;
    if dst {
        let year = t.year();
        let at = |d: NaiveDate, local_hour: i64, offset: i32| {
            d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + Duration::hours(local_hour)
                - Duration::seconds(i64::from(offset))
        };
        // 02:00 standard time in March; 02:00 daylight time in November.
        let start = at(nth_sunday(year, 3, 2), 2, std_secs);
        let end = at(nth_sunday(year, 11, 1), 2, std_secs + 3600);
        if t >= start && t < end {
            secs += 3600;
        }
    }
    FixedOffset::east_opt(secs).unwrap_or(UTC0)
}

/// `t` as QBO writes it for a company in `zone`: local time, milliseconds,
/// and the offset.
pub(crate) fn local_time(zone: &str, t: DateTime<Utc>) -> String {
    t.with_timezone(&offset_at(zone, t))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// The company's calendar date at `t` (a transaction's default `TxnDate`).
pub(crate) fn local_date(zone: &str, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&offset_at(zone, t)).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daylight_saving_follows_the_us_rule() {
        let la = "America/Los_Angeles";
        assert_eq!(
            local_time(la, utc("2026-11-28T12:00:00Z")),
            "2026-11-28T04:00:00.000-08:00"
        );
        assert_eq!(
            local_time(la, utc("2026-07-01T12:00:00Z")),
            "2026-07-01T05:00:00.000-07:00"
        );
        // 2026: DST from 8 March 10:00 UTC to 1 November 09:00 UTC in LA.
        assert_eq!(
            offset_at(la, utc("2026-03-08T09:59:59Z")).local_minus_utc(),
            -8 * 3600
        );
        assert_eq!(
            offset_at(la, utc("2026-03-08T10:00:00Z")).local_minus_utc(),
            -7 * 3600
        );
        assert_eq!(
            offset_at(la, utc("2026-11-01T08:59:59Z")).local_minus_utc(),
            -7 * 3600
        );
        assert_eq!(
            offset_at(la, utc("2026-11-01T09:00:00Z")).local_minus_utc(),
            -8 * 3600
        );
        assert_eq!(
            local_time("America/New_York", utc("2026-11-28T03:00:00Z")),
            "2026-11-27T22:00:00.000-05:00"
        );
        assert_eq!(
            local_date("America/New_York", utc("2026-11-28T03:00:00Z")).to_string(),
            "2026-11-27"
        );
        assert_eq!(
            offset_at("America/Phoenix", utc("2026-07-01T00:00:00Z")).local_minus_utc(),
            -7 * 3600
        );
        assert_eq!(
            offset_at("", utc("2026-12-01T00:00:00Z")).local_minus_utc(),
            -8 * 3600
        );
    }
}
