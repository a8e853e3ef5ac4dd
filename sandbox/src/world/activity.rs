//! Ordinary banking for the demo businesses: the transactions of one day,
//! the 90-day history a world starts with, its continuation as the clock
//! advances, and the trailing 30-day outflow a burn calculation looks at.

use super::Prng;
use crate::sim_state::{CachedBalances, PlaidTxnRec, SimState};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

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
    let mut push = |rng: &mut Prng, cents: i64, name: &str, in_store: bool| {
        out.push(PlaidTxnRec {
            id: rng.alnum(37),
            amount_cents: cents,
            date,
            name: name.to_owned(),
            pending: false,
            pending_transaction_id: None,
            removal: false,
            modification: false,
            authorized_date: None,
            in_store,
        });
    };
    if n % 14 == phase {
        let amt = daily * 14 * 50 / 100 + rng.range(-(daily / 2), daily / 2);
        push(rng, amt, "GUSTO PAYROLL", false);
    }
    if date.day() == 1 {
        push(rng, daily * 30 * 20 / 100, "LANDLORD RENT ACH", false);
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
        push(rng, amt, name, true);
    }
    if n % 10 == phase % 10 {
        let amt = daily * 10 * 85 / 100 + rng.range(0, daily);
        push(rng, -amt, "CUSTOMER DEPOSIT", false);
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
/// the clock advances), so trailing burn stays realistic. Some card
/// purchases first show as pending (holding `available` only), some of
/// those change their details while pending (a `modified` entry: the
/// store's number appended), and `engine::settle_pending_debits` posts them
/// the next day, as a bank's feed does; which ones is a function of the
/// seed.
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
            let txns = day_txns(&mut rng, d, item.daily_burn_cents, item.payroll_phase);
            // Drawn after the day's transactions, so their amounts do not
            // depend on it.
            let mut fate = Prng::new(seed ^ ((ci as u64) << 40) ^ day ^ PENDING_SALT);
            for mut t in txns {
                item.account.available_cents -= t.amount_cents;
                t.pending = t.in_store && fate.range(0, 1) == 0;
                if !t.pending {
                    item.account.current_cents -= t.amount_cents;
                }
                let modified = t.pending && fate.range(0, 2) == 0;
                let store = fate.range(1000, 9999);
                item.txns.push(t.clone());
                if modified {
                    item.txns.push(PlaidTxnRec {
                        name: format!("{} #{store}", t.name),
                        modification: true,
                        ..t
                    });
                }
            }
        }
        item.activity_through = Some(d);
    }
}

/// Plaid updates the balances `/accounts/get` shows about once a day: the
/// first time the clock is seen in a new day, they catch up with the live
/// ones (`/accounts/balance/get` refreshes them any time).
pub fn refresh_cached_balances(st: &mut SimState, now: DateTime<Utc>) {
    for c in &mut st.clients {
        let a = &mut c.plaid.account;
        if a.cached
            .as_ref()
            .is_some_and(|k| k.as_of.date_naive() >= now.date_naive())
        {
            continue;
        }
        a.cached = Some(CachedBalances {
            available_cents: a.available_cents,
            current_cents: a.current_cents,
            as_of: now,
        });
    }
}

/// Mixed into the seed of the pending/modified draws of a day.
const PENDING_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
