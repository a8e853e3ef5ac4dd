//! The job queue (`job`, `job_attempt`). The database is the queue: jobs
//! are enqueued in the caller's transaction, so an approval and its release
//! job commit (or vanish) together. A claim is a lease; every attempt is a
//! row. The claim counter (`attempts`) is the lease's fencing token: a
//! worker may renew or finish a job only while the row still carries the
//! number its claim returned, so a worker whose lease expired and was taken
//! over can change nothing.

use super::db::{to_ms, Backend, Db, Tx};
use super::{StoreError, StoreResult};
use crate::ssr::job_kinds::Job;
use chrono::{DateTime, Utc};

/// Enqueue `job` to run at `run_at`. A job with a de-duplication key is a
/// no-op while another with the same key is still queued.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    job: &Job,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let payload = serde_json::to_string(job).map_err(super::corrupt)?;
    // `created_at` is `now`, or just after the newest job's when that is
    // not earlier: jobs due at the same instant then run in the order they
    // were enqueued (the claim orders by `run_at, created_at`), not in the
    // order the database happens to break a tie, so a replayed simulation
    // runs them alike. (`where true`: SQLite needs a WHERE to parse an
    // upsert whose rows come from a SELECT.)
    sqlx::query(
        "insert into job (job_id, kind, payload, state, attempts, run_at, dedupe_key, created_at, updated_at)
         select $1, $2, $3, 'queued', 0, $4, $5, s.stamp, s.stamp
         from (select case when coalesce(max(created_at), 0) >= $6 then max(created_at) + 1
                           else $6 end as stamp
               from job) s
         where true
         on conflict (dedupe_key) do nothing",
    )
    .bind(format!("job_{}", uuid::Uuid::new_v4().simple()))
    .bind(job.kind().as_str())
    .bind(payload)
    .bind(to_ms(run_at))
    .bind(job.dedupe_key())
    .bind(to_ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Run `job` now: enqueue it due now, or, when the same work is already
/// queued for later (a verification waiting on its retry schedule), bring
/// that one forward. A job running this moment is left alone: it is
/// reading the same evidence now.
pub async fn run_now(tx: &mut Tx<'_>, job: &Job, now: DateTime<Utc>) -> StoreResult<()> {
    if let Some(key) = job.dedupe_key() {
        sqlx::query(
            "update job set run_at = $1, updated_at = $1
             where dedupe_key = $2 and state = 'queued' and run_at > $1 and lease_until is null",
        )
        .bind(to_ms(now))
        .bind(key)
        .execute(&mut **tx)
        .await?;
    }
    enqueue(tx, job, now, now).await
}

/// Replay a dead job: the same job, queued again for one more attempt (its
/// attempt count goes on, so a failure dead-letters it again at once rather
/// than running the whole schedule). It takes back its de-duplication key
/// unless the same work has been queued again since. Returns the job's
/// payload; `None` if the job is not dead (replayed already, or never).
pub async fn replay_dead(
    tx: &mut Tx<'_>,
    job_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<String>> {
    let Some(payload): Option<String> =
        sqlx::query_scalar("select payload from job where job_id = $1 and state = 'dead'")
            .bind(job_id)
            .fetch_optional(&mut **tx)
            .await?
    else {
        return Ok(None);
    };
    let key = serde_json::from_str::<Job>(&payload)
        .ok()
        .and_then(|j| j.dedupe_key());
    let live: i64 = match &key {
        Some(k) => {
            sqlx::query_scalar("select count(*) from job where dedupe_key = $1")
                .bind(k)
                .fetch_one(&mut **tx)
                .await?
        }
        None => 0,
    };
    let done = sqlx::query(
        "update job set state = 'queued', run_at = $1, lease_until = null, dedupe_key = $2, updated_at = $1
         where job_id = $3 and state = 'dead'",
    )
    .bind(to_ms(now))
    .bind(if live == 0 { key } else { None })
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok((done.rows_affected() == 1).then_some(payload))
}

/// One recorded attempt of a job, for the tray.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i64,
    pub finished_at: i64,
    pub outcome: String,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

/// A job's attempts, first first, and whether it is dead now.
pub async fn attempts(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
) -> StoreResult<(Vec<AttemptRow>, Option<String>)> {
    let rows = sqlx::query_as(
        "select attempt, finished_at, outcome, error_code, error from job_attempt
         where job_id = $1 order by attempt",
    )
    .bind(job_id)
    .fetch_all(&mut *conn)
    .await?;
    let state = sqlx::query_scalar("select state from job where job_id = $1")
        .bind(job_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok((rows, state))
}

/// A job this worker holds the lease on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub job_id: String,
    pub kind: String,
    pub payload: String,
    /// This attempt's number (1 for the first). Every claim bumps it, so it
    /// is also the fencing token of this claim's lease.
    pub attempts: i64,
}

/// Extend the lease of a job this worker still holds. `false` when the
/// lease was lost (expired and claimed by another worker, or the job is no
/// longer queued): the caller must stop renewing; its finish will be refused.
pub async fn renew(
    db: &Db,
    job: &Claimed,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update job set lease_until = $1, updated_at = $2
         where job_id = $3 and attempts = $4 and state = 'queued'",
    )
    .bind(to_ms(lease_until))
    .bind(to_ms(now))
    .bind(&job.job_id)
    .bind(job.attempts)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claim the next due job, leasing it until `lease_until`.
pub async fn claim(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Option<Claimed>> {
    claim_retries_due_by(db, now, now, lease_until).await
}

/// [`claim`], but a job that has been attempted before is due only if its
/// retry time is at or before `retries_due_by` (a drain's start: a retry it
/// schedules waits for the next drain instead of racing the wall clock).
pub async fn claim_retries_due_by(
    db: &Db,
    now: DateTime<Utc>,
    retries_due_by: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Option<Claimed>> {
    // PostgreSQL: SKIP LOCKED lets several instances claim different jobs.
    // SQLite: one writer, the single statement is atomic.
    let lock = match db.backend {
        Backend::Postgres => "for update skip locked",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "update job set lease_until = $1, attempts = attempts + 1, updated_at = $2
         where job_id = (
            select job_id from job
            where state = 'queued' and run_at <= $2 and (attempts = 0 or run_at <= $3)
              and (lease_until is null or lease_until < $2)
            order by run_at, created_at limit 1 {lock})
         returning job_id, kind, payload, attempts"
    );
    Ok(sqlx::query_as(&sql)
        .bind(to_ms(lease_until))
        .bind(to_ms(now))
        .bind(to_ms(retries_due_by))
        .fetch_optional(&db.pool)
        .await?)
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Done,
    /// Run again at the given instant.
    Retry(DateTime<Utc>),
    Dead,
}

/// One attempt, as recorded.
pub struct Attempt<'a> {
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub end: AttemptEnd,
    pub error_code: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Record the attempt and move the job on (done, retry later, dead).
/// Finished jobs give up their de-duplication key so the same work can be
/// enqueued again later (e.g. the next sync of a client).
///
/// Fenced: the job moves only if this claim still holds it (no other worker
/// claimed it since). Otherwise [`StoreError::Conflict`] and nothing is
/// written; the caller must not commit the transaction (whatever else it
/// wrote there, e.g. a dead letter, belongs to the lost attempt).
pub async fn finish(tx: &mut Tx<'_>, job: &Claimed, a: &Attempt<'_>) -> StoreResult<()> {
    let (outcome, next_run) = match a.end {
        AttemptEnd::Done => ("ok", None),
        AttemptEnd::Retry(at) => ("retry", Some(to_ms(at))),
        AttemptEnd::Dead => ("dead", None),
    };
    // The job row first: its fenced update also takes the row lock, so a
    // concurrent claim waits for (or skips) this transaction.
    let fence = if super::super::planted::active(super::super::planted::Bug::NoLeaseFencing) {
        // Still reads $5 (PostgreSQL refuses an unused parameter).
        "$5 is not null"
    } else {
        "attempts = $5"
    };
    let moved = match a.end {
        AttemptEnd::Done | AttemptEnd::Dead => {
            sqlx::query(&format!(
                "update job set state = $1, lease_until = null, dedupe_key = null, last_error = $2, updated_at = $3
                 where job_id = $4 and {fence} and state = 'queued'"
            ))
            .bind(if a.end == AttemptEnd::Done { "done" } else { "dead" })
            .bind(a.error)
            .bind(to_ms(a.finished))
            .bind(&job.job_id)
            .bind(job.attempts)
            .execute(&mut **tx)
            .await?
        }
        AttemptEnd::Retry(_) => {
            sqlx::query(&format!(
                "update job set run_at = $1, lease_until = null, last_error = $2, updated_at = $3
                 where job_id = $4 and {fence} and state = 'queued'"
            ))
            .bind(next_run)
            .bind(a.error)
            .bind(to_ms(a.finished))
            .bind(&job.job_id)
            .bind(job.attempts)
            .execute(&mut **tx)
            .await?
        }
    };
    if moved.rows_affected() != 1 {
        return Err(StoreError::Conflict("the job's lease was taken over"));
    }
    sqlx::query(
        "insert into job_attempt (job_id, attempt, started_at, finished_at, outcome, error_code, error, next_run_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&job.job_id)
    .bind(job.attempts)
    .bind(to_ms(a.started))
    .bind(to_ms(a.finished))
    .bind(outcome)
    .bind(a.error_code)
    .bind(a.error)
    .bind(next_run)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A finish refused because the lease was lost: the attempt is still
/// recorded (its own row, outcome `lost_lease`) so the history shows the
/// work that was discarded. Written outside the refused transaction.
pub async fn record_lost_lease(
    db: &Db,
    job: &Claimed,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into job_attempt (job_id, attempt, started_at, finished_at, outcome, error_code, error, next_run_at)
         values ($1, $2, $3, $4, 'lost_lease', 'lost_lease', 'the lease expired and another worker claimed the job', null)
         on conflict (job_id, attempt) do nothing",
    )
    .bind(&job.job_id)
    .bind(job.attempts)
    .bind(to_ms(started))
    .bind(to_ms(finished))
    .execute(&db.pool)
    .await?;
    Ok(())
}
