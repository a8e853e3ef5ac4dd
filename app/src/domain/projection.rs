//! The cash projection a client page draws: the balance over the next days
//! as scheduled outflows leave it (committed payments on their arrival
//! dates, selected bills on theirs), beside the buffer line. Pure: the
//! browser redraws it as the selection changes.

use chrono::NaiveDate;

/// One scheduled outflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outflow {
    pub on: NaiveDate,
    pub amount_minor: i64,
}

/// The balance at the end of each day from `today` for `days` days:
/// `available` less every outflow dated on or before that day (an outflow
/// dated before today leaves today).
pub fn balance_path(available: i64, today: NaiveDate, days: u32, outflows: &[Outflow]) -> Vec<i64> {
    (0..i64::from(days))
        .map(|d| {
            let day = today + chrono::Duration::days(d);
            let out: i64 = outflows
                .iter()
                .filter(|o| o.on <= day)
                .map(|o| o.amount_minor)
                .fold(0i64, |a, b| a.saturating_add(b));
            available.saturating_sub(out)
        })
        .collect()
}

/// The first day index whose balance is under `buffer`, if any.
pub fn first_breach(path: &[i64], buffer: i64) -> Option<usize> {
    path.iter().position(|b| *b < buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outflows_leave_on_their_dates_and_the_breach_day_is_found() {
        let today: NaiveDate = "2026-12-01".parse().unwrap();
        let out = [
            Outflow {
                on: "2026-11-20".parse().unwrap(),
                amount_minor: 100,
            },
            Outflow {
                on: "2026-12-03".parse().unwrap(),
                amount_minor: 500,
            },
        ];
        let path = balance_path(1_000, today, 5, &out);
        assert_eq!(path, vec![900, 900, 400, 400, 400]);
        assert_eq!(first_breach(&path, 450), Some(2));
        assert_eq!(first_breach(&path, 100), None);
    }
}
