//! Claims due jobs and runs them. Retry delays are data; every attempt is a
//! row in `job_attempt`. A claim is a lease: a worker that dies mid-job
//! leaves a lease that expires, and the job is claimed again (every job is
//! idempotent: releases carry `remote_id`, custody steps are unique).

use super::JobError;
use crate::startup::ServerState;
use app::ssr::db::{to_ms, Backend};
use app::ssr::jobs::Job;
use chrono::Duration;
use sqlx::Row;
use std::time::Duration as StdDuration;

/// Delay before attempt n+1 after attempt n failed (n = index + 1). After the
/// last, the job is dead-lettered to the hygiene tray.
pub const RETRY_SCHEDULE: &[StdDuration] = &[
    StdDuration::from_secs(5),
    StdDuration::from_secs(30),
    StdDuration::from_secs(120),
    StdDuration::from_secs(600),
    StdDuration::from_secs(1800),
    StdDuration::from_secs(3600),
    StdDuration::from_secs(3 * 3600),
    StdDuration::from_secs(6 * 3600),
];

const HOUR: u64 = 3600;

/// Verification waits for evidence that can take five business days to reach
/// the bank, so its schedule spans about eleven days before giving up.
pub const VERIFY_SCHEDULE: &[StdDuration] = &[
    StdDuration::from_secs(300),
    StdDuration::from_secs(900),
    StdDuration::from_secs(HOUR),
    StdDuration::from_secs(2 * HOUR),
    StdDuration::from_secs(4 * HOUR),
    StdDuration::from_secs(8 * HOUR),
    StdDuration::from_secs(12 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
    StdDuration::from_secs(24 * HOUR),
];

/// The retry schedule of a job kind.
pub fn schedule_for(kind: &str) -> &'static [StdDuration] {
    match kind {
        "verify_payment" => VERIFY_SCHEDULE,
        _ => RETRY_SCHEDULE,
    }
}

/// Lease length: longer than any single job takes.
const LEASE: Duration = Duration::seconds(120);

/// The delay before the next try: the schedule's, or the rail's Retry-After
/// when that is longer (capped at the schedule's maximum).
pub fn retry_delay(
    schedule: &[StdDuration],
    attempt: i64,
    retry_after: Option<StdDuration>,
) -> Option<StdDuration> {
    let idx = usize::try_from(attempt - 1).ok()?;
    let base = *schedule.get(idx)?;
    let max = *schedule.last()?;
    Some(retry_after.map_or(base, |ra| ra.max(base).min(max)))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retrying,
    Dead,
    Empty,
}

struct Claimed {
    job_id: String,
    kind: String,
    payload: String,
    attempt: i64,
}

async fn claim(st: &ServerState) -> Result<Option<Claimed>, sqlx::Error> {
    let now = st.app.clock.now();
    // PostgreSQL: SKIP LOCKED lets several instances claim different jobs.
    // SQLite: one writer, the single statement is atomic.
    let lock = match st.app.db.backend {
        Backend::Postgres => "for update skip locked",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "update job set lease_until = $1, attempts = attempts + 1, updated_at = $2
         where job_id = (
            select job_id from job
            where state = 'queued' and run_at <= $2 and (lease_until is null or lease_until < $2)
            order by run_at, created_at limit 1 {lock})
         returning job_id, kind, payload, attempts"
    );
    let row = sqlx::query(&sql)
        .bind(to_ms(now + LEASE))
        .bind(to_ms(now))
        .fetch_optional(&st.app.db.pool)
        .await?;
    row.map(|r| {
        Ok(Claimed {
            job_id: r.try_get("job_id")?,
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            attempt: r.try_get("attempts")?,
        })
    })
    .transpose()
}

async fn execute(st: &ServerState, job: &Job) -> Result<(), JobError> {
    match job {
        Job::ReleasePayment { payment_id } => super::release::run(st, payment_id).await,
        Job::ProcessWebhook { inbox_id } => super::inbox::run(st, inbox_id).await,
        Job::VerifyPayment { payment_id } => super::verify::run(st, payment_id).await,
        Job::SyncClient { client_id } => super::sync::run(st, client_id).await,
        Job::AnnotateLedger { payment_id } => super::annotate::run(st, payment_id).await,
    }
}

/// Claim and run one due job.
pub async fn run_once(st: &ServerState) -> Result<Outcome, sqlx::Error> {
    let Some(c) = claim(st).await? else {
        return Ok(Outcome::Empty);
    };
    let started = st.app.clock.now();
    let result = match serde_json::from_str::<Job>(&c.payload) {
        Ok(job) => execute(st, &job).await,
        Err(e) => Err(JobError::fatal("bad_payload", e.to_string())),
    };
    let finished = st.app.clock.now();
    let (outcome, code, error, next_run) = match &result {
        Ok(()) => (Outcome::Done, None, None, None),
        Err(JobError::Retry {
            code,
            message,
            after,
        }) => match retry_delay(schedule_for(&c.kind), c.attempt, *after) {
            Some(d) => (
                Outcome::Retrying,
                Some(*code),
                Some(message.clone()),
                Some(finished + Duration::from_std(d).unwrap_or(Duration::seconds(60))),
            ),
            None => (Outcome::Dead, Some(*code), Some(message.clone()), None),
        },
        Err(JobError::Fatal { code, message }) => {
            (Outcome::Dead, Some(*code), Some(message.clone()), None)
        }
    };
    if let Some(e) = &error {
        tracing::warn!(job = %c.job_id, attempt = c.attempt, error = %e, outcome = ?outcome, "job attempt failed");
    }
    let mut tx = st.app.db.pool.begin().await?;
    sqlx::query(
        "insert into job_attempt (job_id, attempt, started_at, finished_at, outcome, error_code, error, next_run_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.job_id)
    .bind(c.attempt)
    .bind(to_ms(started))
    .bind(to_ms(finished))
    .bind(match outcome {
        Outcome::Done => "ok",
        Outcome::Retrying => "retry",
        _ => "dead",
    })
    .bind(code)
    .bind(&error)
    .bind(next_run.map(to_ms))
    .execute(&mut *tx)
    .await?;
    match outcome {
        // Finished jobs give up their dedupe key so the same work can be
        // enqueued again later (e.g. the next sync of a client).
        Outcome::Done | Outcome::Dead => {
            sqlx::query(
                "update job set state = $1, lease_until = null, dedupe_key = null, last_error = $2, updated_at = $3 where job_id = $4",
            )
            .bind(if outcome == Outcome::Done { "done" } else { "dead" })
            .bind(&error)
            .bind(to_ms(finished))
            .bind(&c.job_id)
            .execute(&mut *tx)
            .await?;
        }
        _ => {
            sqlx::query(
                "update job set run_at = $1, lease_until = null, last_error = $2, updated_at = $3 where job_id = $4",
            )
            .bind(next_run.map(to_ms))
            .bind(&error)
            .bind(to_ms(finished))
            .bind(&c.job_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    if outcome == Outcome::Dead {
        dead_letter(&mut tx, &c, error.as_deref().unwrap_or(""), finished).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// A dead job goes to the hygiene tray of the firm it concerns.
async fn dead_letter(
    tx: &mut app::ssr::db::Tx<'_>,
    c: &Claimed,
    error: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    let job: Option<Job> = serde_json::from_str(&c.payload).ok();
    let (firm, client, payment) = match &job {
        Some(Job::ReleasePayment { payment_id })
        | Some(Job::VerifyPayment { payment_id })
        | Some(Job::AnnotateLedger { payment_id }) => {
            let r = sqlx::query("select firm_id, client_id from payment where payment_id = $1")
                .bind(payment_id)
                .fetch_optional(&mut **tx)
                .await?;
            match r {
                Some(r) => (
                    r.try_get::<String, _>("firm_id")?,
                    Some(r.try_get::<String, _>("client_id")?),
                    Some(payment_id.clone()),
                ),
                None => return Ok(()),
            }
        }
        Some(Job::SyncClient { client_id }) => {
            let r = sqlx::query("select firm_id from client where client_id = $1")
                .bind(client_id)
                .fetch_optional(&mut **tx)
                .await?;
            match r {
                Some(r) => (
                    r.try_get::<String, _>("firm_id")?,
                    Some(client_id.clone()),
                    None,
                ),
                None => return Ok(()),
            }
        }
        // A webhook we could not attribute stays in the inbox as dead.
        _ => return Ok(()),
    };
    let kind = job.as_ref().map(|j| j.kind()).unwrap_or("unknown");
    let detail = format!("{kind} gave up after {} attempts: {error}", c.attempt);
    crate::hygiene::file(
        tx,
        crate::hygiene::NewItem {
            firm_id: &firm,
            client_id: client.as_deref(),
            payment_id: payment.as_deref(),
            severity: "high",
            reason_code: "job_dead_lettered",
            detail: &detail,
            at,
        },
    )
    .await?;
    Ok(())
}

/// Run every job that is due now, until none is left (tests and the sandbox
/// use this to settle the world deterministically). Bounded, so a job that
/// keeps re-queueing itself for "now" cannot spin forever.
pub async fn drain(st: &ServerState) -> Result<usize, sqlx::Error> {
    let mut n = 0;
    while n < 10_000 {
        match run_once(st).await? {
            Outcome::Empty => break,
            _ => n += 1,
        }
    }
    Ok(n)
}

/// How often the worker sweeps for what webhooks missed.
const SWEEP_EVERY: StdDuration = StdDuration::from_secs(30);

/// Periodic work besides the queue: poll Ramp for released payments whose
/// webhook never came, and (sandbox) let the simulated Ramp redeliver
/// webhooks that failed earlier.
pub async fn sweep(st: &ServerState) {
    if let Some(sb) = &st.sandbox {
        sb.deliver_pending_webhooks().await;
    }
    if let Err(e) = super::inbox::reconcile_released(st).await {
        tracing::warn!(error = %e, "reconciler sweep failed");
    }
}

/// The worker loop: run due jobs, sleep briefly when idle or until woken
/// (a webhook just landed), sweep now and then, stop on shutdown.
pub async fn run_forever(st: ServerState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            sweep(&st).await;
            last_sweep = tokio::time::Instant::now();
        }
        match run_once(&st).await {
            Ok(Outcome::Empty) => {
                tokio::select! {
                    _ = st.runner_wake.notified() => {}
                    _ = tokio::time::sleep(StdDuration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "job runner database error");
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_then_dead_letter() {
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 1, None),
            Some(StdDuration::from_secs(5))
        );
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 8, None),
            Some(StdDuration::from_secs(6 * 3600))
        );
        assert_eq!(retry_delay(RETRY_SCHEDULE, 9, None), None);
    }

    #[test]
    fn verification_outlasts_the_five_business_day_cash_window() {
        // Seven calendar days cover five business days from any weekday.
        let total: StdDuration = schedule_for("verify_payment").iter().sum();
        assert!(total >= StdDuration::from_secs(7 * 24 * 3600), "{total:?}");
        assert_eq!(schedule_for("release_payment"), RETRY_SCHEDULE);
    }

    #[test]
    fn retry_after_is_honoured_but_clamped() {
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 1, Some(StdDuration::from_secs(60))),
            Some(StdDuration::from_secs(60))
        );
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 2, Some(StdDuration::from_secs(1))),
            Some(StdDuration::from_secs(30))
        );
        assert_eq!(
            retry_delay(RETRY_SCHEDULE, 1, Some(StdDuration::from_secs(999_999))),
            Some(StdDuration::from_secs(6 * 3600))
        );
    }
}
