//! Which bank transaction evidences a payment: the window the bank may show
//! its debit in, and the choice among transactions of the exact amount.
//!
//! An ACH debit leaves the client's bank 1–3 business days *before* Ramp
//! marks the bill paid (Ramp sends it so that it arrives on the arrival
//! date), and a bank can post it a few days after. So the window reaches
//! both ways from the paid date, and among candidates of the exact amount
//! the one nearest the paid date wins: a same-amount payment made by hand a
//! week earlier is not this one.

use super::calendar::{add_business_days, sub_business_days};
use chrono::NaiveDate;

/// Business days before Ramp's paid date within which the bank may show the
/// debit (ACH settles in 1–3; two more for a bank that dates it early).
pub const CASH_LEAD_BUSINESS_DAYS: u32 = 5;
/// Business days after the paid date within which the bank must show it.
pub const CASH_WINDOW_BUSINESS_DAYS: u32 = 5;

/// The first and last day (inclusive) a bank transaction may carry to
/// evidence a payment Ramp paid on `paid`.
pub fn bank_window(paid: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        sub_business_days(paid, CASH_LEAD_BUSINESS_DAYS),
        add_business_days(paid, CASH_WINDOW_BUSINESS_DAYS),
    )
}

/// Of the candidates' dates (each of the exact amount, in the window), the
/// index of the one nearest `paid`; on a tie the earlier one (a debit
/// precedes the paid date more often than it follows it).
pub fn nearest_to_paid(dates: &[NaiveDate], paid: NaiveDate) -> Option<usize> {
    dates
        .iter()
        .enumerate()
        .min_by_key(|(_, d)| ((**d - paid).num_days().abs(), **d))
        .map(|(i, _)| i)
}

/// A bank transaction that may evidence a payment: its amount and date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub amount_minor: i64,
    pub date: NaiveDate,
}

/// Match waiting payments (amount, expected date), taken in the order
/// given, to candidate transactions: each takes the transaction of exactly
/// its amount in its bank window nearest its date (earlier first on a tie),
/// that no payment before it took. One pass over one list read for the
/// whole client, instead of one query per payment. Returns, per payment,
/// the index of its transaction.
pub fn assign(payments: &[(i64, NaiveDate)], txns: &[Candidate]) -> Vec<Option<usize>> {
    let mut taken = vec![false; txns.len()];
    payments
        .iter()
        .map(|&(amount, expected)| {
            let (from, to) = bank_window(expected);
            let fits: Vec<usize> = (0..txns.len())
                .filter(|&i| {
                    !taken[i]
                        && txns[i].amount_minor == amount
                        && txns[i].date >= from
                        && txns[i].date <= to
                })
                .collect();
            let dates: Vec<NaiveDate> = fits.iter().map(|&i| txns[i].date).collect();
            let pick = nearest_to_paid(&dates, expected).map(|k| fits[k]);
            if let Some(i) = pick {
                taken[i] = true;
            }
            pick
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_payment_takes_the_nearest_fitting_debit_once() {
        let c = |amount_minor, date: &str| Candidate {
            amount_minor,
            date: d(date),
        };
        let txns = [
            c(500, "2026-12-01"),
            c(500, "2026-12-03"),
            c(700, "2026-12-02"),
            c(500, "2027-01-20"),
        ];
        // Two payments of the same amount due the same day take two
        // different debits, nearest first; a third finds none in its
        // window (the January one is far outside); another amount its own.
        let got = assign(
            &[
                (500, d("2026-12-02")),
                (500, d("2026-12-02")),
                (500, d("2026-12-02")),
                (700, d("2026-12-02")),
            ],
            &txns,
        );
        assert_eq!(got, vec![Some(0), Some(1), None, Some(2)]);
        assert_eq!(assign(&[], &txns), Vec::<Option<usize>>::new());
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_reaches_five_business_days_each_way() {
        // 2026-12-02 is a Wednesday.
        assert_eq!(
            bank_window(d("2026-12-02")),
            (d("2026-11-25"), d("2026-12-09"))
        );
    }

    #[test]
    fn the_nearest_candidate_wins_and_ties_go_to_the_earlier() {
        let paid = d("2026-12-02");
        assert_eq!(nearest_to_paid(&[], paid), None);
        // A by-hand payment of the same amount a week before, the real
        // debit two days before.
        assert_eq!(
            nearest_to_paid(&[d("2026-11-25"), d("2026-11-30")], paid),
            Some(1)
        );
        assert_eq!(
            nearest_to_paid(&[d("2026-12-04"), d("2026-11-30")], paid),
            Some(1)
        );
        assert_eq!(nearest_to_paid(&[d("2026-12-03")], paid), Some(0));
    }
}
