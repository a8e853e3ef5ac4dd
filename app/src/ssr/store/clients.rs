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
}

/// The firm's client and its policy, or `NotFound` (also for another
/// firm's client).
pub async fn approval_policy(
    conn: &mut AnyConnection,
    firm: &FirmId,
    client: &ClientId,
) -> StoreResult<ApprovalPolicy> {
    sqlx::query_as(
        "select c.name, c.cash_max_age_secs, s.as_of as cash_as_of from client c
         left join cash_snapshot s on s.client_id = c.client_id
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
