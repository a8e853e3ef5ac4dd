//! A client's rail connections (`rail_connection`) and the Ramp vendor
//! mapping found by sync (`vendor_map`). Tokens are stored sealed; this
//! module never sees them in the clear.

use super::db::{to_ms, Tx};
use super::{StoreError, StoreResult};
use crate::model::{ClientId, Rail};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

pub async fn create(
    tx: &mut Tx<'_>,
    client: &ClientId,
    rail: Rail,
    external_id: &str,
    token_sealed: &str,
) -> StoreResult<()> {
    sqlx::query(
        "insert into rail_connection (client_id, rail, external_id, token_sealed) values ($1, $2, $3, $4)",
    )
    .bind(client.as_str())
    .bind(rail.as_str())
    .bind(external_id)
    .bind(token_sealed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The connected account's id and the sealed token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedCredentials {
    pub external_id: String,
    pub token_sealed: String,
}

pub async fn sealed_credentials(
    conn: &mut AnyConnection,
    client_id: &str,
    rail: Rail,
) -> StoreResult<Option<SealedCredentials>> {
    Ok(sqlx::query_as(
        "select external_id, token_sealed from rail_connection where client_id = $1 and rail = $2",
    )
    .bind(client_id)
    .bind(rail.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Which client is connected to this account (realm, business, item)?
pub async fn client_for_account(
    conn: &mut AnyConnection,
    rail: Rail,
    external_id: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "select client_id from rail_connection where rail = $1 and external_id = $2",
    )
    .bind(rail.as_str())
    .bind(external_id)
    .fetch_optional(conn)
    .await?)
}

/// Ramp's entity and bill-pay bank account, found by sync.
pub async fn set_ramp_setup(
    tx: &mut Tx<'_>,
    client_id: &str,
    entity_id: &str,
    source_bank_account_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update rail_connection set entity_id = $1, source_bank_account_id = $2, synced_at = $3
         where client_id = $4 and rail = $5",
    )
    .bind(entity_id)
    .bind(source_bank_account_id)
    .bind(to_ms(at))
    .bind(client_id)
    .bind(Rail::Ramp.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A Ramp vendor matched to a QBO vendor.
pub struct VendorMapping<'a> {
    pub qbo_vendor_id: &'a str,
    pub ramp_vendor_id: &'a str,
    pub ramp_contact_id: Option<&'a str>,
    pub ramp_vendor_account_id: Option<&'a str>,
    pub name: &'a str,
}

pub async fn upsert_vendor(
    tx: &mut Tx<'_>,
    client_id: &str,
    v: &VendorMapping<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into vendor_map (client_id, qbo_vendor_id, ramp_vendor_id, ramp_contact_id, ramp_vendor_account_id, name)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (client_id, qbo_vendor_id) do update set ramp_vendor_id = excluded.ramp_vendor_id,
            ramp_contact_id = excluded.ramp_contact_id, ramp_vendor_account_id = excluded.ramp_vendor_account_id,
            name = excluded.name",
    )
    .bind(client_id)
    .bind(v.qbo_vendor_id)
    .bind(v.ramp_vendor_id)
    .bind(v.ramp_contact_id)
    .bind(v.ramp_vendor_account_id)
    .bind(v.name)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Everything a Ramp bill needs to pay a QBO vendor; any part may still be
/// unknown before the Ramp sync has run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RampPayee {
    pub entity_id: Option<String>,
    pub source_bank_account_id: Option<String>,
    pub ramp_vendor_id: String,
    pub ramp_contact_id: Option<String>,
    pub ramp_vendor_account_id: Option<String>,
}

pub async fn ramp_payee(
    conn: &mut AnyConnection,
    client_id: &str,
    qbo_vendor_id: &str,
) -> StoreResult<Option<RampPayee>> {
    Ok(sqlx::query_as(
        "select c.entity_id, c.source_bank_account_id, v.ramp_vendor_id, v.ramp_contact_id, v.ramp_vendor_account_id
         from rail_connection c join vendor_map v on v.client_id = c.client_id
         where c.client_id = $1 and c.rail = $2 and v.qbo_vendor_id = $3",
    )
    .bind(client_id)
    .bind(Rail::Ramp.as_str())
    .bind(qbo_vendor_id)
    .fetch_optional(conn)
    .await?)
}

/// Plaid's transactions/sync cursor for the client.
pub async fn plaid_cursor(
    conn: &mut AnyConnection,
    client_id: &str,
) -> StoreResult<Option<String>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "select sync_cursor from rail_connection where client_id = $1 and rail = $2",
    )
    .bind(client_id)
    .bind(Rail::Plaid.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(|(c,)| c).ok_or(StoreError::NotFound)
}

/// Save the cursor in the transaction that stored the page it covers.
pub async fn set_plaid_cursor(tx: &mut Tx<'_>, client_id: &str, cursor: &str) -> StoreResult<()> {
    sqlx::query("update rail_connection set sync_cursor = $1 where client_id = $2 and rail = $3")
        .bind(cursor)
        .bind(client_id)
        .bind(Rail::Plaid.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The client's data from `rail` was read completely at `at` (bills for the
/// ledger, transactions for the bank): the as-of time the console shows and
/// the freshness policy judges.
pub async fn mark_synced(
    tx: &mut Tx<'_>,
    client_id: &str,
    rail: Rail,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("update rail_connection set synced_at = $1 where client_id = $2 and rail = $3")
        .bind(to_ms(at))
        .bind(client_id)
        .bind(rail.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
