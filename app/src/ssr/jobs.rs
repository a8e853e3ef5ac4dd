//! The database is the queue. Jobs are enqueued in the caller's transaction,
//! so an approval and its release job commit (or vanish) together; the
//! server's runner claims and executes them.

use super::db::{to_ms, Tx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// Write RowCol's audit note onto the payment's QBO BillPayment.
    AnnotateLedger { payment_id: String },
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::ReleasePayment { .. } => "release_payment",
            Job::ProcessWebhook { .. } => "process_webhook",
            Job::VerifyPayment { .. } => "verify_payment",
            Job::SyncClient { .. } => "sync_client",
            Job::AnnotateLedger { .. } => "annotate_ledger",
        }
    }
}

/// Enqueue `job` to run at `run_at`. With a `dedupe_key`, a second enqueue
/// while the first is still recorded is a no-op.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    job: &Job,
    run_at: DateTime<Utc>,
    dedupe_key: Option<&str>,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(job).unwrap_or_default();
    let now = to_ms(Utc::now());
    sqlx::query(
        "insert into job (job_id, kind, payload, state, attempts, run_at, dedupe_key, created_at, updated_at)
         values ($1, $2, $3, 'queued', 0, $4, $5, $6, $6)
         on conflict (dedupe_key) do nothing",
    )
    .bind(format!("job_{}", uuid::Uuid::new_v4().simple()))
    .bind(job.kind())
    .bind(payload)
    .bind(to_ms(run_at))
    .bind(dedupe_key)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
