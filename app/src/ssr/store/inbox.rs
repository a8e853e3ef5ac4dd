//! Inbound webhooks (`webhook_inbox`) and refused deliveries
//! (`security_event`). An event is stored once per (rail, event id):
//! a redelivery is a no-op.

use super::db::{to_ms, Tx};
use super::job_queue;
use super::StoreResult;
use crate::model::Rail;
use crate::ssr::job_kinds::Job;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// Store an event and enqueue its processing in the same transaction.
/// Returns false for a duplicate event id (nothing written).
pub async fn store_and_enqueue(
    tx: &mut Tx<'_>,
    rail: Rail,
    event_id: &str,
    event_type: &str,
    headers: &str,
    body: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let inbox_id = format!("whk_{}", uuid::Uuid::new_v4().simple());
    let inserted = sqlx::query(
        "insert into webhook_inbox (inbox_id, rail, event_id, event_type, headers, body, received_at, status)
         values ($1, $2, $3, $4, $5, $6, $7, 'received')
         on conflict (rail, event_id) do nothing",
    )
    .bind(&inbox_id)
    .bind(rail.as_str())
    .bind(event_id)
    .bind(event_type)
    .bind(headers)
    .bind(body)
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    job_queue::enqueue(tx, &Job::ProcessWebhook { inbox_id }, at, at).await?;
    Ok(true)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxEvent {
    pub rail: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub status: String,
    /// Unix ms, on the app's clock.
    pub received_at: i64,
}

impl InboxEvent {
    pub fn is_pending(&self) -> bool {
        self.status == "received"
    }
}

pub async fn get(conn: &mut AnyConnection, inbox_id: &str) -> StoreResult<Option<InboxEvent>> {
    Ok(sqlx::query_as(
        "select rail, event_id, event_type, body, status, received_at from webhook_inbox
         where inbox_id = $1",
    )
    .bind(inbox_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn mark_processed(
    conn: &mut AnyConnection,
    inbox_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update webhook_inbox set status = 'processed', processed_at = $1 where inbox_id = $2",
    )
    .bind(to_ms(at))
    .bind(inbox_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery whose processing gave up: `dead`, not `received` forever.
/// A dead event whose processing a person replays is pending again.
pub async fn revive(conn: &mut AnyConnection, inbox_id: &str) -> StoreResult<()> {
    sqlx::query(
        "update webhook_inbox set status = 'received' where inbox_id = $1 and status = 'dead'",
    )
    .bind(inbox_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_dead(conn: &mut AnyConnection, inbox_id: &str) -> StoreResult<()> {
    sqlx::query(
        "update webhook_inbox set status = 'dead' where inbox_id = $1 and status = 'received'",
    )
    .bind(inbox_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A refused delivery (bad signature, malformed body), for the security log.
pub async fn security_event(
    conn: &mut AnyConnection,
    kind: &str,
    source: Rail,
    detail: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    security_event_from(conn, kind, source.as_str(), detail, at).await
}

/// A security event whose source is not a rail (`sign-in`: a throttled
/// client address that matches no user, so no firm's audit chain).
pub async fn security_event_from(
    conn: &mut AnyConnection,
    kind: &str,
    source: &str,
    detail: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into security_event (security_event_id, kind, source, detail, at) values ($1, $2, $3, $4, $5)",
    )
    .bind(format!("sec_{}", uuid::Uuid::new_v4().simple()))
    .bind(kind)
    .bind(source)
    .bind(detail)
    .bind(to_ms(at))
    .execute(conn)
    .await?;
    Ok(())
}
