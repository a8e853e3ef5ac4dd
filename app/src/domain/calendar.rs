//! Business-day arithmetic (weekends only; bank holidays are a later policy).

use chrono::{Datelike, Duration, NaiveDate, Weekday};

pub fn is_business_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// `d` itself when it is a business day, else the next one.
pub fn roll_forward(mut d: NaiveDate) -> NaiveDate {
    while !is_business_day(d) {
        d += Duration::days(1);
    }
    d
}

/// `n` business days after `d` (n = 0 gives `d`).
pub fn add_business_days(mut d: NaiveDate, n: u32) -> NaiveDate {
    let mut left = n;
    while left > 0 {
        d += Duration::days(1);
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// `n` business days before `d` (n = 0 gives `d`).
pub fn sub_business_days(mut d: NaiveDate, n: u32) -> NaiveDate {
    let mut left = n;
    while left > 0 {
        d -= Duration::days(1);
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// When an approved bill should reach the vendor: on its due date, but never
/// sooner than two business days out (ACH needs the time), and on a business
/// day (Ramp refuses weekend arrival dates).
pub fn payment_arrival_date(due: NaiveDate, today: NaiveDate) -> NaiveDate {
    let earliest = add_business_days(today, 2);
    roll_forward(due.max(earliest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn business_days_skip_weekends() {
        // 2026-11-27 is a Friday.
        assert_eq!(add_business_days(d("2026-11-27"), 1), d("2026-11-30"));
        assert_eq!(add_business_days(d("2026-11-27"), 5), d("2026-12-04"));
        assert_eq!(roll_forward(d("2026-11-28")), d("2026-11-30"));
        // 2026-11-30 is a Monday.
        assert_eq!(sub_business_days(d("2026-11-30"), 1), d("2026-11-27"));
        assert_eq!(sub_business_days(d("2026-12-04"), 5), d("2026-11-27"));
        assert_eq!(sub_business_days(d("2026-11-30"), 0), d("2026-11-30"));
    }

    #[test]
    fn arrival_is_due_date_or_two_business_days_out() {
        let fri = d("2026-11-27");
        assert_eq!(payment_arrival_date(d("2026-12-10"), fri), d("2026-12-10"));
        // overdue: as soon as ACH allows
        assert_eq!(payment_arrival_date(d("2026-11-20"), fri), d("2026-12-01"));
        // due on a Saturday: the Monday after
        assert_eq!(payment_arrival_date(d("2026-12-12"), fri), d("2026-12-14"));
    }
}
