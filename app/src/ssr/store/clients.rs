//! A firm's clients (`client`) and their guardrail policy.

use super::db::{to_ms, Tx};
use super::{StoreError, StoreResult};
use crate::model::{ClientId, FirmId};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

pub async fn create(
    tx: &mut Tx<'_>,
    firm: &FirmId,
    name: &str,
    currency: &str,
    at: DateTime<Utc>,
) -> StoreResult<ClientId> {
    let client = ClientId::generate();
    sqlx::query(
        "insert into client (client_id, firm_id, name, currency, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(client.as_str())
    .bind(firm.as_str())
    .bind(name)
    .bind(currency)
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(client)
}

/// The firm a client belongs to (for system work that starts from a client).
pub async fn firm_of(conn: &mut AnyConnection, client_id: &str) -> StoreResult<String> {
    sqlx::query_scalar("select firm_id from client where client_id = $1")
        .bind(client_id)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// What an approval needs to know before it starts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalPolicy {
    pub name: String,
    /// How old the cash snapshot may be before it must be refreshed.
    pub cash_max_age_secs: i64,
    /// When the cash snapshot was taken (unix ms), if ever.
    pub cash_as_of: Option<i64>,
    /// How old the bank history (transactions) may be.
    pub bank_history_max_age_secs: i64,
    /// When the transactions were last synced completely (unix ms), if ever.
    pub history_as_of: Option<i64>,
}

/// The firm's client and its policy, or `NotFound` (also for another
/// firm's client).
pub async fn approval_policy(
    conn: &mut AnyConnection,
    firm: &FirmId,
    client: &ClientId,
) -> StoreResult<ApprovalPolicy> {
    sqlx::query_as(
        "select c.name, c.cash_max_age_secs, s.as_of as cash_as_of,
                c.bank_history_max_age_secs, r.synced_at as history_as_of
         from client c
         left join cash_snapshot s on s.client_id = c.client_id
         left join rail_connection r on r.client_id = c.client_id and r.rail = 'plaid'
         where c.firm_id = $1 and c.client_id = $2",
    )
    .bind(firm.as_str())
    .bind(client.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// Take the client's write lock for the rest of the transaction (a no-op
/// update), so two approvals for one client are checked one after the
/// other, each seeing the other's commitments.
pub async fn lock_for_approval(tx: &mut Tx<'_>, client: &ClientId) -> StoreResult<()> {
    sqlx::query("update client set buffer_days = buffer_days where client_id = $1")
        .bind(client.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Clients with an active rail connection whose last scheduled re-read
/// started before `before` (or never): the re-reads that are due.
pub async fn due_for_sync(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select c.client_id from client c
         where coalesce(c.sync_started_at, 0) < $1
           and exists (select 1 from rail_connection r where r.client_id = c.client_id
                       and r.status = 'active' and r.rail in ('qbo', 'ramp', 'plaid'))
         order by c.name, c.client_id",
    )
    .bind(to_ms(before))
    .fetch_all(conn)
    .await?)
}

/// A re-read of the client's rails starts now.
pub async fn mark_sync_started(
    conn: &mut AnyConnection,
    client_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("update client set sync_started_at = $1 where client_id = $2")
        .bind(to_ms(at))
        .bind(client_id)
        .execute(conn)
        .await?;
    Ok(())
}
