//! Refused webhook deliveries (no signature, or a wrong one) are counted in
//! memory and written to the security log as one summary per rail, kind and
//! minute ("37 refused in minute 2026-11-28 12:03 UTC"), never a row per
//! request: anyone can POST to a webhook URL, and a flood must not become a
//! flood of writes. Each instance writes its own summaries.
//!
//! A minute's summary is written once the minute is over: by the next
//! refusal after it, by a once-a-minute sweep (`Application::run`), and at
//! shutdown for whatever is still counted. The minutes are RowCol's clock's.

use crate::services::Services;
use app::model::Rail;
use app::ssr::store::{from_ms, inbox};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// (minute start in unix ms, rail, kind) → refusals counted.
type Buckets = BTreeMap<(i64, Rail, &'static str), u64>;

#[derive(Debug, Default)]
pub struct Refusals {
    buckets: Mutex<Buckets>,
}

/// One minute's count, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub minute: DateTime<Utc>,
    pub rail: Rail,
    pub kind: &'static str,
    pub count: u64,
}

impl Summary {
    pub fn detail(&self) -> String {
        format!(
            "{} refused in minute {} UTC",
            self.count,
            self.minute.format("%Y-%m-%d %H:%M")
        )
    }
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis().div_euclid(60_000) * 60_000
}

impl Refusals {
    /// Count one refusal at `now`; returns the finished minutes to write.
    pub fn note(&self, rail: Rail, kind: &'static str, now: DateTime<Utc>) -> Vec<Summary> {
        let mut b = self.lock();
        *b.entry((minute_of(now), rail, kind)).or_default() += 1;
        take(&mut b, Some(minute_of(now)))
    }

    /// The minutes before `now`'s, taken out of the counter.
    pub fn finished(&self, now: DateTime<Utc>) -> Vec<Summary> {
        take(&mut self.lock(), Some(minute_of(now)))
    }

    /// Everything counted, the current minute included (at shutdown).
    pub fn all(&self) -> Vec<Summary> {
        take(&mut self.lock(), None)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        // A panic while holding this lock cannot leave the map half-updated
        // in a way that matters: keep counting.
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn take(b: &mut Buckets, before_minute: Option<i64>) -> Vec<Summary> {
    let (done, keep): (Buckets, Buckets) = std::mem::take(b)
        .into_iter()
        .partition(|((minute, _, _), _)| before_minute.is_none_or(|m| *minute < m));
    *b = keep;
    done.into_iter()
        .map(|((minute, rail, kind), count)| Summary {
            minute: from_ms(minute),
            rail,
            kind,
            count,
        })
        .collect()
}

/// Write summaries to the security log. A failed write is logged and the
/// counts are lost (they are only a summary; each refusal was also logged).
pub async fn write(services: &Services, summaries: Vec<Summary>) {
    if summaries.is_empty() {
        return;
    }
    let res = async {
        let mut conn = services.db.acquire().await?;
        for s in &summaries {
            inbox::security_event(&mut conn, s.kind, s.rail, &s.detail(), s.minute).await?;
        }
        Ok::<_, app::ssr::store::StoreError>(())
    }
    .await;
    if let Err(e) = res {
        tracing::error!(error = %e, ?summaries, "could not write webhook refusal summaries");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
    }

    #[test]
    fn one_summary_per_rail_kind_and_minute() {
        let r = Refusals::default();
        for s in 0..37 {
            assert!(r
                .note(Rail::Ramp, "webhook.unsigned", at(12, 3, s))
                .is_empty());
        }
        assert!(r
            .note(Rail::Ramp, "webhook.bad_signature", at(12, 3, 59))
            .is_empty());
        assert!(
            r.finished(at(12, 3, 59)).is_empty(),
            "the minute is not over"
        );
        let done = r.note(Rail::Ramp, "webhook.unsigned", at(12, 4, 1));
        assert_eq!(done.len(), 2);
        let unsigned = done.iter().find(|s| s.kind == "webhook.unsigned").unwrap();
        assert_eq!(unsigned.count, 37);
        assert_eq!(unsigned.minute, at(12, 3, 0));
        assert_eq!(
            unsigned.detail(),
            "37 refused in minute 2026-11-28 12:03 UTC"
        );
        assert!(r.finished(at(12, 4, 30)).is_empty());
        let rest = r.all();
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].count, rest[0].minute), (1, at(12, 4, 0)));
        assert!(r.all().is_empty());
    }
}
