//! Ordinary banking for the demo businesses: the transactions of one day,
//! the 90-day history a world starts with, its continuation as the clock
//! advances, and the trailing 30-day outflow a burn calculation looks at.

use super::Prng;
use crate::state::{PlaidTxnRec, SimState};
use chrono::{Datelike, Duration, NaiveDate};

/// Sum of outflows (positive amounts) dated in `(today-30, today]`: the
/// trailing 30 days a burn calculation looks at (the same window RowCol
/// uses, so "the tight client's smallest bill fits" holds for RowCol too).
pub fn trailing_30_day_outflow_cents(txns: &[PlaidTxnRec], today: NaiveDate) -> i64 {
    let from = today - Duration::days(30);
    txns.iter()
        .filter(|t| {
            t.amount_cents > 0 && !t.pending && !t.removal && t.date > from && t.date <= today
        })
        .map(|t| t.amount_cents)
        .sum()
}

/// One day of ordinary banking for a business burning about `daily` cents a
/// day: payroll every 14 days, rent on the 1st, supplies on Mon/Wed/Fri, and a
/// customer deposit (a negative amount) every 10 days. Keyed on the absolute
/// day number, so the pattern continues seamlessly as the clock advances.
pub fn day_txns(rng: &mut Prng, date: NaiveDate, daily: i64, phase: i64) -> Vec<PlaidTxnRec> {
    let n = i64::from(date.num_days_from_ce());
    let mut out = Vec::new();
    let mut push = |rng: &mut Prng, cents: i64, name: &str| {
        out.push(PlaidTxnRec {
            id: rng.alnum(37),
            amount_cents: cents,
            date,
            name: name.to_owned(),
            pending: false,
            pending_transaction_id: None,
            removal: false,
        });
    };
    if n % 14 == phase {
        let amt = daily * 14 * 50 / 100 + rng.range(-(daily / 2), daily / 2);
        push(rng, amt, "GUSTO PAYROLL");
    }
    if date.day() == 1 {
        push(rng, daily * 30 * 20 / 100, "LANDLORD RENT ACH");
    }
    if matches!(date.weekday().num_days_from_monday(), 0 | 2 | 4) {
        let base = daily * 7 * 30 / 100 / 3;
        let amt = base + rng.range(-(base * 3 / 10), base * 3 / 10);
        let names = [
            "AMAZON BUSINESS",
            "COSTCO WHOLESALE",
            "HOME DEPOT",
            "OFFICE DEPOT",
        ];
        let name = names[rng.range(0, 3) as usize];
        push(rng, amt, name);
    }
    if n % 10 == phase % 10 {
        let amt = daily * 10 * 85 / 100 + rng.range(0, daily);
        push(rng, -amt, "CUSTOMER DEPOSIT");
    }
    out
}

/// The 90 days before `today`.
pub(super) fn history(
    rng: &mut Prng,
    today: NaiveDate,
    daily: i64,
    phase: i64,
) -> Vec<PlaidTxnRec> {
    (1..=90)
        .rev()
        .flat_map(|back| day_txns(rng, today - Duration::days(back), daily, phase))
        .collect()
}

/// Keep each business's ordinary banking going up to yesterday (called when
/// the clock advances), so trailing burn stays realistic.
pub fn continue_activity(st: &mut SimState, today: NaiveDate) {
    let seed = st.seed;
    for (ci, c) in st.clients.iter_mut().enumerate() {
        let item = &mut c.plaid;
        let Some(mut d) = item.activity_through else {
            continue;
        };
        if item.daily_burn_cents <= 0 {
            continue;
        }
        while d + Duration::days(1) < today {
            d += Duration::days(1);
            let day = u64::from(d.num_days_from_ce().unsigned_abs());
            let mut rng = Prng::new(seed ^ ((ci as u64) << 40) ^ day);
            for t in day_txns(&mut rng, d, item.daily_burn_cents, item.payroll_phase) {
                item.account.available_cents -= t.amount_cents;
                item.account.current_cents -= t.amount_cents;
                item.txns.push(t);
            }
        }
        item.activity_through = Some(d);
    }
}
