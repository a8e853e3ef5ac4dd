//! A client's rail connections (`rail_connection`) and the Ramp vendor
//! mapping found by sync (`vendor_map`). Tokens are stored sealed (bound to
//! the connection's id); this module never sees them in the clear.
//!
//! A connection's status moves only through [`connect`] (→ active),
//! [`set_status`] (active → needs_reconnect, any → disconnected), each
//! guarded on the status it leaves.

use super::db::{to_ms, Tx};
use super::{StoreError, StoreResult};
use crate::model::{ClientId, ConnectionId, FirmId, Rail};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// A connection's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnStatus {
    Active,
    NeedsReconnect,
    Disconnected,
}

impl ConnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnStatus::Active => "active",
            ConnStatus::NeedsReconnect => "needs_reconnect",
            ConnStatus::Disconnected => "disconnected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ConnStatus::Active,
            ConnStatus::NeedsReconnect,
            ConnStatus::Disconnected,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A grant to store: tokens already sealed, bound to `connection_id`.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    pub connection_id: &'a ConnectionId,
    pub firm: &'a FirmId,
    pub client: &'a ClientId,
    pub rail: Rail,
    pub external_id: &'a str,
    pub account_name: Option<&'a str>,
    pub token_sealed: &'a str,
    pub refresh_sealed: Option<&'a str>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// `oauth`, `link`, `api_key` or `seed`.
    pub method: &'a str,
    /// The user who connected it (`rowcol` for the sandbox seeder).
    pub connected_by: &'a str,
}

/// What [`connect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    Connected,
    /// Another client of the same firm is connected to this account.
    AccountTaken {
        client_name: String,
    },
    /// This client is (or was) connected to another account of this rail:
    /// a reconnect must authorize the same one.
    OtherAccount {
        external_id: String,
    },
}

/// Store a new grant for (client, rail): a first connection, or a
/// reconnect of the same account (whatever its status). The id is new, so
/// tokens sealed for the old one no longer open.
pub async fn connect(
    tx: &mut Tx<'_>,
    c: &NewConnection<'_>,
    at: DateTime<Utc>,
) -> StoreResult<ConnectOutcome> {
    let existing: Option<(String,)> = sqlx::query_as(
        "select external_id from rail_connection where client_id = $1 and rail = $2",
    )
    .bind(c.client.as_str())
    .bind(c.rail.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((ext,)) = existing {
        if ext != c.external_id {
            return Ok(ConnectOutcome::OtherAccount { external_id: ext });
        }
    }
    let taken: Option<(String,)> = sqlx::query_as(
        "select cl.name from rail_connection r join client cl on cl.client_id = r.client_id
         where r.firm_id = $1 and r.rail = $2 and r.external_id = $3 and r.status <> 'disconnected'
           and r.client_id <> $4",
    )
    .bind(c.firm.as_str())
    .bind(c.rail.as_str())
    .bind(c.external_id)
    .bind(c.client.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((client_name,)) = taken {
        return Ok(ConnectOutcome::AccountTaken { client_name });
    }
    sqlx::query(
        "insert into rail_connection (connection_id, firm_id, client_id, rail, external_id, account_name,
             status, token_sealed, refresh_sealed, access_expires_at, refresh_expires_at, token_version,
             method, connected_by, connected_at, last_success_at)
         values ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, 1, $11, $12, $13, $13)
         on conflict (client_id, rail) do update set
             connection_id = excluded.connection_id, account_name = excluded.account_name,
             status = 'active', token_sealed = excluded.token_sealed,
             refresh_sealed = excluded.refresh_sealed,
             access_expires_at = excluded.access_expires_at,
             refresh_expires_at = excluded.refresh_expires_at,
             token_version = rail_connection.token_version + 1, refresh_claimed_until = null,
             method = excluded.method, connected_by = excluded.connected_by,
             connected_at = excluded.connected_at, last_success_at = excluded.last_success_at,
             last_error = null, last_error_at = null",
    )
    .bind(c.connection_id.as_str())
    .bind(c.firm.as_str())
    .bind(c.client.as_str())
    .bind(c.rail.as_str())
    .bind(c.external_id)
    .bind(c.account_name)
    .bind(c.token_sealed)
    .bind(c.refresh_sealed)
    .bind(c.access_expires_at.map(to_ms))
    .bind(c.refresh_expires_at.map(to_ms))
    .bind(c.method)
    .bind(c.connected_by)
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(ConnectOutcome::Connected)
}

/// The sealed credentials of a connection, and what a refresh needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedCredentials {
    pub connection_id: String,
    pub firm_id: String,
    pub external_id: String,
    pub status: String,
    pub token_sealed: Option<String>,
    pub refresh_sealed: Option<String>,
    /// Wall-clock unix ms.
    pub access_expires_at: Option<i64>,
    pub token_version: i64,
    pub last_error: Option<String>,
    pub webhook_subscription_id: Option<String>,
}

pub async fn sealed_credentials(
    conn: &mut AnyConnection,
    client_id: &str,
    rail: Rail,
) -> StoreResult<Option<SealedCredentials>> {
    Ok(sqlx::query_as(
        "select connection_id, firm_id, external_id, status, token_sealed, refresh_sealed,
                access_expires_at, token_version, last_error, webhook_subscription_id
         from rail_connection where client_id = $1 and rail = $2",
    )
    .bind(client_id)
    .bind(rail.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Take the right to refresh this connection's tokens until `until_ms`
/// (wall clock): one refresher at a time, so a rotating refresh token is
/// spent once. False: another holds it, or the tokens moved on.
pub async fn claim_refresh(
    conn: &mut AnyConnection,
    connection_id: &str,
    token_version: i64,
    now_ms: i64,
    until_ms: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update rail_connection set refresh_claimed_until = $1
         where connection_id = $2 and token_version = $3 and status = 'active'
           and (refresh_claimed_until is null or refresh_claimed_until < $4)",
    )
    .bind(until_ms)
    .bind(connection_id)
    .bind(token_version)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Give a claim back without new tokens (the refresh failed transiently).
pub async fn release_refresh_claim(
    conn: &mut AnyConnection,
    connection_id: &str,
    token_version: i64,
) -> StoreResult<()> {
    sqlx::query(
        "update rail_connection set refresh_claimed_until = null
         where connection_id = $1 and token_version = $2",
    )
    .bind(connection_id)
    .bind(token_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Refreshed tokens, sealed. `refresh_sealed: None` keeps the stored one
/// (a provider that did not rotate it).
#[derive(Debug, Clone)]
pub struct Refreshed<'a> {
    pub token_sealed: &'a str,
    pub refresh_sealed: Option<&'a str>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// Store a refresh's result over the version it refreshed, access and
/// refresh token in one statement (QBO's old refresh token may already be
/// dead). False: the version moved (nothing written).
pub async fn store_refreshed(
    conn: &mut AnyConnection,
    connection_id: &str,
    token_version: i64,
    r: &Refreshed<'_>,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update rail_connection set token_sealed = $1,
             refresh_sealed = coalesce($2, refresh_sealed),
             access_expires_at = $3, refresh_expires_at = coalesce($4, refresh_expires_at),
             token_version = token_version + 1, refresh_claimed_until = null,
             last_success_at = $5, last_error = null, last_error_at = null
         where connection_id = $6 and token_version = $7 and status = 'active'",
    )
    .bind(r.token_sealed)
    .bind(r.refresh_sealed)
    .bind(r.access_expires_at.map(to_ms))
    .bind(r.refresh_expires_at.map(to_ms))
    .bind(to_ms(at))
    .bind(connection_id)
    .bind(token_version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Move a connection's status, guarded on where it is now. Disconnecting
/// forgets its tokens and webhook secret. True if it moved.
pub async fn set_status(
    conn: &mut AnyConnection,
    connection_id: &str,
    from: &[ConnStatus],
    to: ConnStatus,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    // Active is reached by a new grant (`connect`), or by a bank login
    // repaired in place (Plaid update mode: the item and token stay).
    if from.is_empty() || (to == ConnStatus::Active && from != [ConnStatus::NeedsReconnect]) {
        return Err(StoreError::Conflict(
            "a connection becomes active only by connecting or repair",
        ));
    }
    let list = super::state_list(from.iter().map(|s| s.as_str()));
    let sets = match to {
        ConnStatus::Active => "last_error = null, last_error_at = null, last_success_at = $2",
        ConnStatus::NeedsReconnect => "last_error = $4, last_error_at = $2",
        // Disconnecting forgets the tokens and the webhook secret.
        ConnStatus::Disconnected => {
            "token_sealed = null, refresh_sealed = null, access_expires_at = null,
             refresh_expires_at = null, webhook_secret_sealed = null,
             webhook_subscription_id = null, webhook_status = null,
             token_version = token_version + 1, refresh_claimed_until = null,
             last_error = $4, last_error_at = $2"
        }
    };
    let sql = format!(
        "update rail_connection set status = $1, {sets}
         where connection_id = $3 and status in ({list})"
    );
    let q = sqlx::query(&sql)
        .bind(to.as_str())
        .bind(to_ms(at))
        .bind(connection_id);
    // PostgreSQL refuses a bind the statement does not use.
    let q = if to == ConnStatus::Active {
        q
    } else {
        q.bind(error)
    };
    let done = q.execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// A call with this connection failed in a way that does not change its
/// status (transient): shown on the Connections page.
pub async fn record_error(
    conn: &mut AnyConnection,
    connection_id: &str,
    error: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update rail_connection set last_error = $1, last_error_at = $2 where connection_id = $3",
    )
    .bind(error)
    .bind(to_ms(at))
    .bind(connection_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Active connections whose access token expires before `before_ms` (wall
/// clock) and that can be refreshed: the refresh sweep's work list.
pub async fn due_for_refresh(
    conn: &mut AnyConnection,
    before_ms: i64,
) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select client_id, rail from rail_connection
         where status = 'active' and refresh_sealed is not null
           and access_expires_at is not null and access_expires_at < $1
         order by access_expires_at",
    )
    .bind(before_ms)
    .fetch_all(conn)
    .await?)
}

/// The connection's Ramp webhook subscription: its id, its secret (sealed,
/// bound to the connection) and status (`pending_verification`, `active`).
pub async fn set_webhook_subscription(
    conn: &mut AnyConnection,
    connection_id: &str,
    subscription_id: &str,
    secret_sealed: &str,
    status: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update rail_connection set webhook_subscription_id = $1, webhook_secret_sealed = $2,
             webhook_status = $3
         where connection_id = $4 and status <> 'disconnected'",
    )
    .bind(subscription_id)
    .bind(secret_sealed)
    .bind(status)
    .bind(connection_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A subscription's handshake completed.
pub async fn set_webhook_status(
    conn: &mut AnyConnection,
    subscription_id: &str,
    status: &str,
) -> StoreResult<()> {
    sqlx::query(
        "update rail_connection set webhook_status = $1 where webhook_subscription_id = $2",
    )
    .bind(status)
    .bind(subscription_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every Ramp subscription secret (sealed), with its connection id (the
/// seal's context) and the Ramp business it signs for: the webhook
/// receiver holds them in memory (`server/src/webhooks/secrets.rs`).
pub async fn all_webhook_secrets(
    conn: &mut AnyConnection,
) -> StoreResult<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "select connection_id, external_id, webhook_secret_sealed from rail_connection
         where rail = 'ramp' and webhook_secret_sealed is not null",
    )
    .fetch_all(conn)
    .await?)
}

/// The client whose Ramp connection owns this subscription.
pub async fn client_for_subscription(
    conn: &mut AnyConnection,
    subscription_id: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "select client_id from rail_connection where rail = 'ramp' and webhook_subscription_id = $1",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await?)
}

/// Every sealed value, for `rowcol rotate-key`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedRow {
    pub connection_id: String,
    pub token_sealed: Option<String>,
    pub refresh_sealed: Option<String>,
    pub webhook_secret_sealed: Option<String>,
}

pub async fn all_sealed(conn: &mut AnyConnection) -> StoreResult<Vec<SealedRow>> {
    Ok(sqlx::query_as(
        "select connection_id, token_sealed, refresh_sealed, webhook_secret_sealed
         from rail_connection order by connection_id",
    )
    .fetch_all(conn)
    .await?)
}

/// Replace a row's sealed values with the same secrets sealed anew, over
/// exactly the values read (a refresh in between wins; rotate runs again).
pub async fn reseal(tx: &mut Tx<'_>, old: &SealedRow, new: &SealedRow) -> StoreResult<bool> {
    let done = sqlx::query(
        "update rail_connection set token_sealed = $1, refresh_sealed = $2, webhook_secret_sealed = $3
         where connection_id = $4
           and coalesce(token_sealed, '') = $5 and coalesce(refresh_sealed, '') = $6
           and coalesce(webhook_secret_sealed, '') = $7",
    )
    .bind(&new.token_sealed)
    .bind(&new.refresh_sealed)
    .bind(&new.webhook_secret_sealed)
    .bind(&old.connection_id)
    .bind(old.token_sealed.as_deref().unwrap_or(""))
    .bind(old.refresh_sealed.as_deref().unwrap_or(""))
    .bind(old.webhook_secret_sealed.as_deref().unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Which client is connected to this account (realm, business, item)?
/// Across firms for system work that starts from the account (the sandbox
/// seeder); connected (not disconnected) connections only.
pub async fn client_for_account(
    conn: &mut AnyConnection,
    rail: Rail,
    external_id: &str,
) -> StoreResult<Option<String>> {
    Ok(clients_for_account(conn, rail, external_id)
        .await?
        .into_iter()
        .next())
}

/// Every client connected to this account (a Plaid Item, a Ramp business):
/// the account is unique within a firm, not across firms.
pub async fn clients_for_account(
    conn: &mut AnyConnection,
    rail: Rail,
    external_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select client_id from rail_connection where rail = $1 and external_id = $2
           and status <> 'disconnected' order by connected_at, client_id",
    )
    .bind(rail.as_str())
    .bind(external_id)
    .fetch_all(conn)
    .await?)
}

/// One connection as the Connections page shows it (no secrets).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub client_id: String,
    pub rail: String,
    pub external_id: String,
    pub account_name: Option<String>,
    pub status: String,
    pub method: String,
    pub connected_by_name: Option<String>,
    pub connected_at: Option<i64>,
    pub access_expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub synced_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub webhook_status: Option<String>,
}

pub async fn list_for_firm(
    conn: &mut AnyConnection,
    firm: &FirmId,
) -> StoreResult<Vec<ConnectionRow>> {
    Ok(sqlx::query_as(
        "select r.client_id, r.rail, r.external_id, r.account_name, r.status, r.method,
                coalesce(u.name, r.connected_by) as connected_by_name, r.connected_at,
                r.access_expires_at, r.refresh_expires_at, r.last_success_at, r.synced_at,
                r.last_error, r.last_error_at, r.webhook_status
         from rail_connection r left join app_user u on u.user_id = r.connected_by
         where r.firm_id = $1 order by r.client_id, r.rail",
    )
    .bind(firm.as_str())
    .fetch_all(conn)
    .await?)
}

/// Every rail connection of the client with its status.
pub async fn rail_health(
    conn: &mut AnyConnection,
    client_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select rail, status from rail_connection where client_id = $1 order by rail",
    )
    .bind(client_id)
    .fetch_all(conn)
    .await?)
}

/// The rails of this client that are not healthy (needs reconnect or
/// disconnected), for refusing approvals with the reason.
pub async fn unhealthy_rails(
    conn: &mut AnyConnection,
    client_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select rail, status from rail_connection
         where client_id = $1 and status <> 'active' and rail in ('qbo', 'ramp', 'plaid')
         order by rail",
    )
    .bind(client_id)
    .fetch_all(conn)
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

/// Record what Ramp says about a vendor. The bank account first seen is
/// accepted; a different one later is only noted as `seen`, never put in
/// its place: a changed payee account is the classic invoice fraud, so it
/// waits for a person (see [`confirm_vendor_account`]).
pub async fn upsert_vendor(
    tx: &mut Tx<'_>,
    client_id: &str,
    v: &VendorMapping<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into vendor_map (client_id, qbo_vendor_id, ramp_vendor_id, ramp_contact_id, ramp_vendor_account_id, name)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (client_id, qbo_vendor_id) do update set ramp_vendor_id = excluded.ramp_vendor_id,
            ramp_contact_id = excluded.ramp_contact_id,
            ramp_vendor_account_id = coalesce(vendor_map.ramp_vendor_account_id, excluded.ramp_vendor_account_id),
            ramp_vendor_account_seen = case
                when vendor_map.ramp_vendor_account_id is not null
                 and coalesce(excluded.ramp_vendor_account_id, '') <> vendor_map.ramp_vendor_account_id
                then excluded.ramp_vendor_account_id end,
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

/// Ramp showed `account` for the vendor right before a release: note it as
/// seen when it differs from the accepted one. Returns the accepted one.
pub async fn note_vendor_account(
    tx: &mut Tx<'_>,
    client_id: &str,
    ramp_vendor_id: &str,
    account: Option<&str>,
) -> StoreResult<Option<String>> {
    sqlx::query(
        "update vendor_map set ramp_vendor_account_seen = case
             when coalesce($1, '') <> coalesce(ramp_vendor_account_id, '') then $1 end
         where client_id = $2 and ramp_vendor_id = $3",
    )
    .bind(account)
    .bind(client_id)
    .bind(ramp_vendor_id)
    .execute(&mut **tx)
    .await?;
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "select ramp_vendor_account_id from vendor_map where client_id = $1 and ramp_vendor_id = $2",
    )
    .bind(client_id)
    .bind(ramp_vendor_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.and_then(|(a,)| a))
}

/// The account Ramp shows for the vendor when it differs from the accepted
/// one (see [`upsert_vendor`]).
pub async fn vendor_account_seen(
    conn: &mut AnyConnection,
    client_id: &str,
    ramp_vendor_id: &str,
) -> StoreResult<Option<String>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "select ramp_vendor_account_seen from vendor_map where client_id = $1 and ramp_vendor_id = $2",
    )
    .bind(client_id)
    .bind(ramp_vendor_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(a,)| a))
}

/// A person confirmed the vendor's new bank account (`expected`, the one
/// they were shown): it becomes the accepted one. Refused (NotFound) when
/// Ramp has shown yet another account since.
pub async fn confirm_vendor_account(
    tx: &mut Tx<'_>,
    client_id: &str,
    ramp_vendor_id: &str,
    expected: &str,
) -> StoreResult<()> {
    let done = sqlx::query(
        "update vendor_map set ramp_vendor_account_id = ramp_vendor_account_seen,
             ramp_vendor_account_seen = null
         where client_id = $1 and ramp_vendor_id = $2 and ramp_vendor_account_seen = $3",
    )
    .bind(client_id)
    .bind(ramp_vendor_id)
    .bind(expected)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
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
/// When the rail was last read for the client (any read, and the last full
/// one), unix ms.
pub async fn sync_marks(
    conn: &mut AnyConnection,
    client_id: &str,
    rail: Rail,
) -> StoreResult<(Option<i64>, Option<i64>)> {
    Ok(sqlx::query_as::<_, (Option<i64>, Option<i64>)>(
        "select synced_at, full_synced_at from rail_connection
         where client_id = $1 and rail = $2 and status <> 'disconnected'",
    )
    .bind(client_id)
    .bind(rail.as_str())
    .fetch_optional(conn)
    .await?
    .unwrap_or((None, None)))
}

/// The rail was read in full for the client at `at` (which also counts as
/// a read).
pub async fn mark_full_synced(
    tx: &mut Tx<'_>,
    client_id: &str,
    rail: Rail,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update rail_connection set synced_at = $1, full_synced_at = $1 where client_id = $2 and rail = $3",
    )
    .bind(to_ms(at))
    .bind(client_id)
    .bind(rail.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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
