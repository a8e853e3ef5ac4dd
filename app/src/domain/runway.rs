//! Daily burn and runway from bank history, in integer minor units.

use crate::model::{Currency, Money};
use chrono::NaiveDate;

/// Trailing window used for the burn rate.
pub const BURN_WINDOW_DAYS: i64 = 30;

/// Average daily outflow over the `BURN_WINDOW_DAYS` days ending `today`
/// (inclusive of today, exclusive of the window's start). `txns` are
/// `(date, amount_minor)` with Plaid's sign: positive is money out. Inflows do
/// not offset burn: a guardrail protects against spending, not on hope of
/// receipts. Rounds up, so the buffer errs on the safe side.
pub fn daily_burn(
    txns: impl IntoIterator<Item = (NaiveDate, i64)>,
    today: NaiveDate,
    currency: Currency,
) -> Money {
    let start = burn_window_start(today);
    let out: i64 = txns
        .into_iter()
        .filter(|(d, amt)| *d > start && *d <= today && *amt > 0)
        .map(|(_, amt)| amt)
        .sum();
    burn_from_window_outflows(out, currency)
}

/// The first day *after* the burn window's start: the window is
/// `(today − BURN_WINDOW_DAYS, today]`. Queries that sum outflows in SQL use
/// this bound so they agree with [`daily_burn`].
pub fn burn_window_start(today: NaiveDate) -> NaiveDate {
    today - chrono::Duration::days(BURN_WINDOW_DAYS)
}

/// Daily burn from the total of the window's outflows (rounded up).
pub fn burn_from_window_outflows(total_out_minor: i64, currency: Currency) -> Money {
    Money::new(
        (total_out_minor.max(0) + BURN_WINDOW_DAYS - 1) / BURN_WINDOW_DAYS,
        currency,
    )
}

/// Whole days the cash lasts at the burn rate; `None` when nothing is burning.
pub fn runway_days(cash_minor: i64, daily_burn_minor: i64) -> Option<i64> {
    if daily_burn_minor <= 0 {
        None
    } else if cash_minor <= 0 {
        Some(0)
    } else {
        Some(cash_minor / daily_burn_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn burn_averages_outflows_in_the_window_only() {
        let today = d("2026-03-31");
        let txns = vec![
            (d("2026-03-30"), 30_000),  // in
            (d("2026-03-02"), 60_000),  // in (window starts after 03-01)
            (d("2026-03-01"), 999_999), // out of window
            (d("2026-03-15"), -50_000), // inflow ignored
        ];
        assert_eq!(daily_burn(txns, today, Currency::usd()).minor, 3_000);
    }

    #[test]
    fn burn_rounds_up() {
        let today = d("2026-03-31");
        assert_eq!(
            daily_burn(vec![(today, 31)], today, Currency::usd()).minor,
            2
        );
    }

    #[test]
    fn runway_handles_zero_and_negative() {
        assert_eq!(runway_days(1_000, 0), None);
        assert_eq!(runway_days(-5, 10), Some(0));
        assert_eq!(runway_days(1_000, 300), Some(3));
    }
}
