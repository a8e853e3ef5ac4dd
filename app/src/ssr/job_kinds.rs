//! Background work as data: every kind of job, its payload, its retry
//! schedule and its de-duplication key. The queue itself (enqueue in the
//! caller's transaction, claim, finish) is `store::job_queue`; the server runs
//! the jobs.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every kind of background work, with its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Create the approved bill on Ramp (`remote_id` = payment id).
    ReleasePayment { payment_id: String },
    /// Process one stored webhook.
    ProcessWebhook { inbox_id: String },
    /// Cross-check a payment on Ramp, QBO and Plaid.
    VerifyPayment { payment_id: String },
    /// Pull a client's bills, vendors, balance and transactions.
    SyncClient { client_id: String },
    /// Re-read only a client's QBO bills: a QBO webhook said its realm
    /// changed (the bank and Ramp did not, and a balance read is rate
    /// limited per Item).
    SyncLedger { client_id: String },
    /// Write RowCol's audit note onto the payment's QBO BillPayment.
    AnnotateLedger { payment_id: String },
    /// Subscribe to the client's Ramp webhooks (its own subscription and
    /// secret), after a Ramp connection is made.
    SubscribeRampWebhooks { client_id: String },
    /// Tell the people who asked about a critical tray item (one message
    /// per person and channel).
    NotifyItem { hygiene_id: String },
    /// Send one stored message (`notification`).
    Deliver { notification_id: String },
}

/// The kinds, as stored in `job.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    ReleasePayment,
    ProcessWebhook,
    VerifyPayment,
    SyncClient,
    SyncLedger,
    AnnotateLedger,
    SubscribeRampWebhooks,
    NotifyItem,
    Deliver,
}

const HOUR: u64 = 3600;

/// How often every client's bills, vendors, balance and transactions are
/// re-read. Shorter than the default balance age (15 min) so an idle
/// console stays fresh; far shorter than the bank history's (24 h).
pub const SYNC_EVERY: Duration = Duration::from_secs(600);

/// Delay before attempt n+1 after attempt n failed (n = index + 1). After
/// the last, the job is dead-lettered to the hygiene tray.
pub const RETRY_SCHEDULE: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
    Duration::from_secs(HOUR),
    Duration::from_secs(3 * HOUR),
    Duration::from_secs(6 * HOUR),
];

/// Verification waits for evidence that can take five business days to
/// reach the bank, so its schedule spans about eleven days before giving up.
pub const VERIFY_SCHEDULE: &[Duration] = &[
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(HOUR),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(4 * HOUR),
    Duration::from_secs(8 * HOUR),
    Duration::from_secs(12 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
    Duration::from_secs(24 * HOUR),
];

/// A message is worth sending within a day: after that the digest and the
/// tray have said it, and a mail server or webhook still refusing is
/// shown on the person's account page instead.
pub const DELIVER_SCHEDULE: &[Duration] = &[
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(1800),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(6 * HOUR),
];

impl JobKind {
    pub const ALL: &'static [JobKind] = &[
        JobKind::ReleasePayment,
        JobKind::ProcessWebhook,
        JobKind::VerifyPayment,
        JobKind::SyncClient,
        JobKind::SyncLedger,
        JobKind::AnnotateLedger,
        JobKind::SubscribeRampWebhooks,
        JobKind::NotifyItem,
        JobKind::Deliver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::ReleasePayment => "release_payment",
            JobKind::ProcessWebhook => "process_webhook",
            JobKind::VerifyPayment => "verify_payment",
            JobKind::SyncClient => "sync_client",
            JobKind::SyncLedger => "sync_ledger",
            JobKind::AnnotateLedger => "annotate_ledger",
            JobKind::SubscribeRampWebhooks => "subscribe_ramp_webhooks",
            JobKind::NotifyItem => "notify_item",
            JobKind::Deliver => "deliver",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// How long to wait before each retry of this kind.
    pub fn schedule(self) -> &'static [Duration] {
        match self {
            JobKind::VerifyPayment => VERIFY_SCHEDULE,
            JobKind::Deliver => DELIVER_SCHEDULE,
            _ => RETRY_SCHEDULE,
        }
    }
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::ReleasePayment { .. } => JobKind::ReleasePayment,
            Job::ProcessWebhook { .. } => JobKind::ProcessWebhook,
            Job::VerifyPayment { .. } => JobKind::VerifyPayment,
            Job::SyncClient { .. } => JobKind::SyncClient,
            Job::SyncLedger { .. } => JobKind::SyncLedger,
            Job::AnnotateLedger { .. } => JobKind::AnnotateLedger,
            Job::SubscribeRampWebhooks { .. } => JobKind::SubscribeRampWebhooks,
            Job::NotifyItem { .. } => JobKind::NotifyItem,
            Job::Deliver { .. } => JobKind::Deliver,
        }
    }

    /// At most one live job per key: a second enqueue while the first is
    /// still queued is a no-op (one release per payment, one sync per
    /// client at a time). Webhooks are de-duplicated by the inbox instead.
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Job::ReleasePayment { payment_id } => Some(format!("release:{payment_id}")),
            Job::VerifyPayment { payment_id } => Some(format!("verify:{payment_id}")),
            Job::AnnotateLedger { payment_id } => Some(format!("annotate:{payment_id}")),
            Job::SyncClient { client_id } => Some(format!("sync:{client_id}")),
            Job::SyncLedger { client_id } => Some(format!("sync_ledger:{client_id}")),
            Job::SubscribeRampWebhooks { client_id } => Some(format!("ramp_webhooks:{client_id}")),
            Job::NotifyItem { hygiene_id } => Some(format!("notify:{hygiene_id}")),
            Job::Deliver { notification_id } => Some(format!("deliver:{notification_id}")),
            Job::ProcessWebhook { .. } => None,
        }
    }
}

/// The delay before the next try: the schedule's, or the rail's Retry-After
/// when that is longer (capped at the schedule's maximum). `None` once the
/// schedule is exhausted.
pub fn retry_delay(
    schedule: &[Duration],
    attempt: i64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let idx = usize::try_from(attempt - 1).ok()?;
    let base = *schedule.get(idx)?;
    let max = *schedule.last()?;
    Some(retry_after.map_or(base, |ra| ra.max(base).min(max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_then_dead_letter() {
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 1, None),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 8, None),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(retry_delay(RETRY_SCHEDULE, 9, None), None);
    }

    #[test]
    fn verification_outlasts_the_five_business_day_cash_window() {
        // Seven calendar days cover five business days from any weekday.
        let total: Duration = JobKind::VerifyPayment.schedule().iter().sum();
        assert!(total >= Duration::from_secs(7 * 24 * 3600), "{total:?}");
        assert_eq!(JobKind::ReleasePayment.schedule(), RETRY_SCHEDULE);
    }

    #[test]
    fn retry_after_is_honoured_but_clamped() {
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 2, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 1, Some(Duration::from_secs(999_999))),
            Some(Duration::from_secs(6 * 3600))
        );
    }

    #[test]
    fn kinds_round_trip_and_match_the_payload_tag() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(*k));
        }
        let job = Job::SyncClient {
            client_id: "cli_1".into(),
        };
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["kind"], job.kind().as_str());
        assert_eq!(job.dedupe_key().as_deref(), Some("sync:cli_1"));
    }
}
