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
    fn advancing_moves_now_and_today() {
        let c = Clock::system();
        let before = c.today();
        c.advance(Duration::days(3));
        assert_eq!(c.today() - before, Duration::days(3));
        assert_eq!(c.offset_secs(), 3 * 86_400);
    }
}
