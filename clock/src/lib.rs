//! The clock every part of RowCol reads "now" from. In sandbox mode the clock
//! can be advanced (the simulated rails and RowCol move together); live, it is
//! the system clock with a zero offset.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock, no offset.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }

    /// Today's calendar date in UTC.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::SeqCst)
    }

    pub fn set_offset_secs(&self, secs: i64) {
        self.offset_secs.store(secs, Ordering::SeqCst);
    }

    /// Set the offset so that `now()` reads `at` (sandbox only: a pinned
    /// start date). Time keeps running from there.
    pub fn start_at(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_seconds();
        self.offset_secs.store(offset, Ordering::SeqCst);
    }

    /// Move the clock forward (sandbox only; callers check the mode).
    pub fn advance(&self, by: Duration) {
        self.offset_secs
            .fetch_add(by.num_seconds(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_at_a_pinned_instant() {
        let c = Clock::system();
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .expect("date")
            .and_hms_opt(12, 0, 0)
            .expect("time")
            .and_utc();
        c.start_at(at);
        assert!((c.now() - at).num_seconds().abs() <= 2);
        assert_eq!(c.today(), at.date_naive());
    }

    #[test]
    fn advancing_moves_now_and_today() {
        let c = Clock::system();
        let before = c.today();
        c.advance(Duration::days(3));
        assert_eq!(c.today() - before, Duration::days(3));
        assert_eq!(c.offset_secs(), 3 * 86_400);
    }
}
