//! Plaid's rate limits per Item and per API client (across all its Items),
//! on a rolling minute of the sandbox clock.
//!
//! The numbers are Plaid's documented Production defaults (the stricter of
//! what its pages say: `/accounts/balance/get` 5 a minute per Item, 1,200
//! per client), so a caller that works here works there. Over the limit the call is
//! refused before it does anything: HTTP 429, `error_type`
//! `RATE_LIMIT_EXCEEDED` and the endpoint's own `error_code`; Plaid sends
//! no rate-limit headers. Only answered calls count, so waiting out the
//! minute always helps.

use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};

/// One limited endpoint: its path, calls a minute per Item, error code.
pub(crate) struct Limit {
    pub path: &'static str,
    pub per_item_per_minute: usize,
    /// Calls a minute across every Item of the API client (all of
    /// RowCol's): Plaid limits those too.
    pub per_client_per_minute: usize,
    pub error_code: &'static str,
}

pub(crate) const ACCOUNTS_BALANCE_GET: Limit = Limit {
    path: "/accounts/balance/get",
    per_item_per_minute: 5,
    per_client_per_minute: 1_200,
    error_code: "ACCOUNTS_BALANCE_GET_LIMIT",
};
pub(crate) const ACCOUNTS_GET: Limit = Limit {
    path: "/accounts/get",
    per_item_per_minute: 15,
    per_client_per_minute: 15_000,
    error_code: "ACCOUNTS_LIMIT",
};
pub(crate) const ITEM_GET: Limit = Limit {
    path: "/item/get",
    per_item_per_minute: 15,
    per_client_per_minute: 5_000,
    error_code: "ITEM_GET_LIMIT",
};
pub(crate) const TRANSACTIONS_SYNC: Limit = Limit {
    path: "/transactions/sync",
    per_item_per_minute: 50,
    per_client_per_minute: 2_500,
    error_code: "TRANSACTIONS_SYNC_LIMIT",
};

/// Recent answered calls per (Item, endpoint), and per endpoint across
/// every Item.
#[derive(Clone, Default)]
pub struct CallLog {
    calls: HashMap<(String, &'static str), VecDeque<DateTime<Utc>>>,
    client_calls: HashMap<&'static str, VecDeque<DateTime<Utc>>>,
}

/// Drop the calls older than a minute before `now`.
fn roll(q: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
    let window_start = now - Duration::minutes(1);
    while q.front().is_some_and(|t| *t <= window_start) {
        q.pop_front();
    }
}

impl CallLog {
    /// Count a call of `limit` on `item_id` at `now`, or refuse it (`Err`
    /// with the error code) when the Item, or the API client across all its
    /// Items, has used the minute's allowance.
    pub(crate) fn admit(
        &mut self,
        item_id: &str,
        limit: &Limit,
        now: DateTime<Utc>,
    ) -> Result<(), &'static str> {
        let all = self.client_calls.entry(limit.path).or_default();
        roll(all, now);
        if all.len() >= limit.per_client_per_minute {
            return Err(limit.error_code);
        }
        let q = self
            .calls
            .entry((item_id.to_owned(), limit.path))
            .or_default();
        roll(q, now);
        if q.len() >= limit.per_item_per_minute {
            return Err(limit.error_code);
        }
        q.push_back(now);
        all.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolling_minute_per_item_and_endpoint() {
        let t0 = "2026-11-28T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut log = CallLog::default();
        for i in 0..5 {
            let at = t0 + Duration::seconds(i * 10);
            assert!(log.admit("item-a", &ACCOUNTS_BALANCE_GET, at).is_ok());
        }
        let sixth = t0 + Duration::seconds(50);
        assert_eq!(
            log.admit("item-a", &ACCOUNTS_BALANCE_GET, sixth),
            Err("ACCOUNTS_BALANCE_GET_LIMIT")
        );
        // Another Item, another endpoint: their own allowances.
        assert!(log.admit("item-b", &ACCOUNTS_BALANCE_GET, sixth).is_ok());
        assert!(log.admit("item-a", &ACCOUNTS_GET, sixth).is_ok());
        // A refused call did not count: once the first call is a minute
        // old, one more fits, and no more.
        let later = t0 + Duration::seconds(60);
        assert!(log.admit("item-a", &ACCOUNTS_BALANCE_GET, later).is_ok());
        assert!(log.admit("item-a", &ACCOUNTS_BALANCE_GET, later).is_err());
    }

    #[test]
    fn a_rolling_minute_per_client_across_items() {
        let t0 = "2026-11-28T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut log = CallLog::default();
        // 1,200 balance reads a minute in all, each Item within its own 5.
        for i in 0..1_200 {
            let item = format!("item-{}", i / 5);
            assert!(log.admit(&item, &ACCOUNTS_BALANCE_GET, t0).is_ok(), "{i}");
        }
        assert_eq!(
            log.admit("item-fresh", &ACCOUNTS_BALANCE_GET, t0),
            Err("ACCOUNTS_BALANCE_GET_LIMIT")
        );
        // Other endpoints keep their own client allowance; a minute later
        // the client's is back.
        assert!(log.admit("item-fresh", &ACCOUNTS_GET, t0).is_ok());
        let later = t0 + Duration::seconds(60);
        assert!(log
            .admit("item-fresh", &ACCOUNTS_BALANCE_GET, later)
            .is_ok());
    }
}
