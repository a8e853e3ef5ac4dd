//! A firm's clients (`client`) and their guardrail policy: the current
//! values on the `client` row, every published version in `client_policy`.

use super::db::{to_ms, Tx};
use super::{corrupt, StoreError, StoreResult};
use crate::domain::rules::Policy;
use crate::model::{ClientId, Currency, FirmId, UserId};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

pub async fn create(
    tx: &mut Tx<'_>,
    firm: &FirmId,
    name: &str,
    currency: &str,
    at: DateTime<Utc>,
) -> StoreResult<ClientId> {
    let client = ClientId::generate();
    let policy = Policy::defaults(&Currency::parse(currency).map_err(corrupt)?);
    sqlx::query(
        "insert into client (client_id, firm_id, name, currency, created_at, buffer_days,
            cash_max_age_secs, bank_history_max_age_secs, dual_control_threshold_minor,
            duplicate_window_days, new_vendor_second_approver, policy_version)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(client.as_str())
    .bind(firm.as_str())
    .bind(name)
    .bind(currency)
    .bind(to_ms(at))
    .bind(i64::from(policy.buffer_days))
    .bind(policy.cash_max_age_secs)
    .bind(policy.bank_history_max_age_secs)
    .bind(policy.dual_control_threshold_minor)
    .bind(i64::from(policy.duplicate_window_days))
    .bind(i64::from(policy.new_vendor_second_approver))
    .bind(policy.version)
    .execute(&mut **tx)
    .await?;
    insert_version(tx, &client, &policy, None, at).await?;
    Ok(client)
}

async fn insert_version(
    tx: &mut Tx<'_>,
    client: &ClientId,
    p: &Policy,
    by: Option<&UserId>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into client_policy (client_id, version, buffer_days, cash_max_age_secs,
            bank_history_max_age_secs, dual_control_threshold_minor, duplicate_window_days,
            new_vendor_second_approver, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(client.as_str())
    .bind(p.version)
    .bind(i64::from(p.buffer_days))
    .bind(p.cash_max_age_secs)
    .bind(p.bank_history_max_age_secs)
    .bind(p.dual_control_threshold_minor)
    .bind(i64::from(p.duplicate_window_days))
    .bind(i64::from(p.new_vendor_second_approver))
    .bind(by.map(|u| u.as_str()))
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const POLICY_COLUMNS: &str = "c.policy_version, c.buffer_days, c.cash_max_age_secs,
    c.bank_history_max_age_secs, c.dual_control_threshold_minor, c.duplicate_window_days,
    c.new_vendor_second_approver";

fn policy_of(r: &sqlx::any::AnyRow) -> StoreResult<Policy> {
    let small = |v: i64| u32::try_from(v).map_err(|_| corrupt(format!("policy value {v}")));
    Ok(Policy {
        version: r.try_get("policy_version")?,
        buffer_days: small(r.try_get("buffer_days")?)?,
        cash_max_age_secs: r.try_get("cash_max_age_secs")?,
        bank_history_max_age_secs: r.try_get("bank_history_max_age_secs")?,
        dual_control_threshold_minor: r.try_get("dual_control_threshold_minor")?,
        duplicate_window_days: small(r.try_get("duplicate_window_days")?)?,
        new_vendor_second_approver: r.try_get::<i64, _>("new_vendor_second_approver")? != 0,
    })
}

/// The firm's client's current policy and its currency, or `NotFound`
/// (also for another firm's client).
pub async fn policy(
    conn: &mut AnyConnection,
    firm: &FirmId,
    client: &ClientId,
) -> StoreResult<(Policy, String)> {
    let row = sqlx::query(&format!(
        "select {POLICY_COLUMNS}, c.currency from client c where c.firm_id = $1 and c.client_id = $2"
    ))
    .bind(firm.as_str())
    .bind(client.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok((policy_of(&row)?, row.try_get("currency")?))
}

/// Publish a new version of the client's policy over `expected_version`
/// (the one the admin edited): kept as a new `client_policy` row, never an
/// edit, and made current in the same transaction. A concurrent publish is
/// a `Conflict`.
pub async fn publish_policy(
    tx: &mut Tx<'_>,
    firm: &FirmId,
    client: &ClientId,
    new: &Policy,
    expected_version: i64,
    by: &UserId,
    at: DateTime<Utc>,
) -> StoreResult<Policy> {
    let mut published = new.clone();
    published.version = expected_version + 1;
    let moved = sqlx::query(
        "update client set buffer_days = $1, cash_max_age_secs = $2,
            bank_history_max_age_secs = $3, dual_control_threshold_minor = $4,
            duplicate_window_days = $5, new_vendor_second_approver = $6, policy_version = $7
         where firm_id = $8 and client_id = $9 and policy_version = $10",
    )
    .bind(i64::from(published.buffer_days))
    .bind(published.cash_max_age_secs)
    .bind(published.bank_history_max_age_secs)
    .bind(published.dual_control_threshold_minor)
    .bind(i64::from(published.duplicate_window_days))
    .bind(i64::from(published.new_vendor_second_approver))
    .bind(published.version)
    .bind(firm.as_str())
    .bind(client.as_str())
    .bind(expected_version)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Err(StoreError::Conflict(
            "the policy was changed by someone else meanwhile; reload and try again",
        ));
    }
    insert_version(tx, client, &published, Some(by), at).await?;
    Ok(published)
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
#[derive(Debug, Clone)]
pub struct ApprovalPolicy {
    pub name: String,
    /// The policy version the approval is judged by.
    pub policy: Policy,
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
    let r = sqlx::query(&format!(
        "select c.name, {POLICY_COLUMNS}, s.as_of as cash_as_of, r.synced_at as history_as_of
         from client c
         left join cash_snapshot s on s.client_id = c.client_id
         left join rail_connection r on r.client_id = c.client_id and r.rail = 'plaid'
         where c.firm_id = $1 and c.client_id = $2"
    ))
    .bind(firm.as_str())
    .bind(client.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(ApprovalPolicy {
        name: r.try_get("name")?,
        policy: policy_of(&r)?,
        cash_max_age_secs: r.try_get("cash_max_age_secs")?,
        cash_as_of: r.try_get("cash_as_of")?,
        bank_history_max_age_secs: r.try_get("bank_history_max_age_secs")?,
        history_as_of: r.try_get("history_as_of")?,
    })
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
