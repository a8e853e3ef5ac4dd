//! What `GET /metrics` reads from the database when scraped: the state of
//! the work (jobs, webhooks, payments, hygiene) and how old each rail's data
//! is. Across every firm: the scrape is an operator's, behind its own token,
//! and carries counts only, never a name or an amount.

use super::{to_ms, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

#[derive(Debug, Default)]
pub struct OpsSnapshot {
    /// (kind, state, count)
    pub jobs: Vec<(String, String, i64)>,
    /// Queued jobs whose time has come.
    pub due: i64,
    /// How long the oldest of them has waited (ms), if any.
    pub oldest_due_wait_ms: Option<i64>,
    /// (rail, status, count)
    pub inbox: Vec<(String, String, i64)>,
    /// (state, count)
    pub payments: Vec<(String, i64)>,
    /// Open hygiene items: (reason, count)
    pub hygiene_open: Vec<(String, i64)>,
    /// Per rail, over its active connections: how long ago the least
    /// recently successful one last succeeded (ms); None if none ever did.
    pub sync_lag_ms: Vec<(String, Option<i64>)>,
}

pub async fn snapshot(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<OpsSnapshot> {
    let now_ms = to_ms(now);
    let jobs: Vec<(String, String, i64)> = sqlx::query_as(
        "select kind, state, count(*) from job group by kind, state order by kind, state",
    )
    .fetch_all(&mut *conn)
    .await?;
    let (due, oldest): (i64, Option<i64>) = sqlx::query_as(
        "select count(*), min(run_at) from job where state = 'queued' and run_at <= $1",
    )
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?;
    let inbox: Vec<(String, String, i64)> = sqlx::query_as(
        "select rail, status, count(*) from webhook_inbox group by rail, status order by rail, status",
    )
    .fetch_all(&mut *conn)
    .await?;
    let payments: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from payment group by state order by state")
            .fetch_all(&mut *conn)
            .await?;
    let hygiene_open: Vec<(String, i64)> = sqlx::query_as(
        "select reason_code, count(*) from hygiene_item where status = 'open'
         group by reason_code order by reason_code",
    )
    .fetch_all(&mut *conn)
    .await?;
    // A connection that never succeeded counts from when it was made.
    let sync: Vec<(String, Option<i64>)> = sqlx::query_as(
        "select rail, min(coalesce(last_success_at, connected_at)) from rail_connection
         where status = 'active' group by rail order by rail",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(OpsSnapshot {
        jobs,
        due,
        oldest_due_wait_ms: oldest.map(|at| (now_ms - at).max(0)),
        inbox,
        payments,
        hygiene_open,
        sync_lag_ms: sync
            .into_iter()
            .map(|(rail, at)| (rail, at.map(|at| (now_ms - at).max(0))))
            .collect(),
    })
}
