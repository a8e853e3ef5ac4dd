//! Per-realm memory of the QBO simulator that is not part of the books (not
//! persisted): the throttle (500 requests a minute and 10 a second per
//! realm, then 429) and the `requestid` replays (a write repeated with the
//! same `requestid` gets the stored answer and is not applied again).

use axum::http::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const PER_MINUTE: usize = 500;
const PER_SECOND: usize = 10;
/// Stored replies kept per realm (oldest dropped first).
const REPLIES_KEPT: usize = 2_000;

/// A stored answer: the `requestid`, the status and the body.
type Reply = (String, StatusCode, Value);

#[derive(Default)]
pub(crate) struct QboMemory {
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
}

impl QboMemory {
    /// Count a request against the realm's limits; `false` when it is over
    /// them (a refused request does not count).
    pub(crate) fn admit(&self, realm: &str, now: Instant) -> bool {
        let mut hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        let q = hits.entry(realm.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            q.pop_front();
        }
        let last_second = q
            .iter()
            .rev()
            .take_while(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count();
        if q.len() >= PER_MINUTE || last_second >= PER_SECOND {
            return false;
        }
        q.push_back(now);
        true
    }

    /// The stored answer to `request_id` in `realm`, if any.
    pub(crate) fn reply(&self, realm: &str, request_id: &str) -> Option<(StatusCode, Value)> {
        let replies = self.replies.lock().unwrap_or_else(PoisonError::into_inner);
        replies
            .get(realm)?
            .iter()
            .find(|r| r.0 == request_id)
            .map(|r| (r.1, r.2.clone()))
    }

    pub(crate) fn remember(&self, realm: &str, request_id: &str, status: StatusCode, body: Value) {
        let mut replies = self.replies.lock().unwrap_or_else(PoisonError::into_inner);
        let q = replies.entry(realm.to_owned()).or_default();
        if q.len() >= REPLIES_KEPT {
            q.pop_front();
        }
        q.push_back((request_id.to_owned(), status, body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_a_second_and_five_hundred_a_minute() {
        let m = QboMemory::default();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(m.admit("r", t0));
        }
        assert!(!m.admit("r", t0));
        assert!(m.admit("other", t0));
        // Just under 10 a second: the minute's 500 run out before it ends.
        let m = QboMemory::default();
        let mut admitted = 0;
        for k in 0..590u64 {
            if m.admit("r", t0 + Duration::from_millis(101 * k)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 500);
        assert!(m.admit("r", t0 + Duration::from_millis(60_001)));
        m.remember("r", "abc", StatusCode::OK, serde_json::json!({"x": 1}));
        assert_eq!(m.reply("r", "abc").unwrap().1["x"], 1);
        assert!(m.reply("other", "abc").is_none());
    }
}
