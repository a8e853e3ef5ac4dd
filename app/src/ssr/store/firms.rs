//! Firms (`firm`): the tenant every other row belongs to.

use super::audit::{self, Entry};
use super::db::{to_ms, Tx};
use super::{parse_id, StoreResult};
use crate::model::FirmId;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// Create a firm and the first entry of its audit chain.
pub async fn create(
    tx: &mut Tx<'_>,
    name: &str,
    actor: &str,
    detail: serde_json::Value,
    at: DateTime<Utc>,
) -> StoreResult<FirmId> {
    let firm = FirmId::generate();
    sqlx::query("insert into firm (firm_id, name, created_at) values ($1, $2, $3)")
        .bind(firm.as_str())
        .bind(name)
        .bind(to_ms(at))
        .execute(&mut **tx)
        .await?;
    audit::record(
        tx,
        &firm,
        at,
        Entry {
            actor,
            action: "firm.created",
            subject: firm.as_str(),
            detail,
        },
    )
    .await?;
    Ok(firm)
}

pub async fn find_by_name(conn: &mut AnyConnection, name: &str) -> StoreResult<Option<FirmId>> {
    let id: Option<String> = sqlx::query_scalar("select firm_id from firm where name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    id.as_deref().map(parse_id).transpose()
}

pub async fn all(conn: &mut AnyConnection) -> StoreResult<Vec<FirmId>> {
    let ids: Vec<String> = sqlx::query_scalar("select firm_id from firm order by firm_id")
        .fetch_all(conn)
        .await?;
    ids.iter().map(|i| parse_id(i)).collect()
}

/// The firm's name.
pub async fn name_of(conn: &mut AnyConnection, firm_id: &str) -> StoreResult<String> {
    sqlx::query_scalar("select name from firm where firm_id = $1")
        .bind(firm_id)
        .fetch_optional(conn)
        .await?
        .ok_or(super::StoreError::NotFound)
}

/// Whether the firm asks everyone who approves payments for the second factor.
pub async fn totp_for_approvers(conn: &mut AnyConnection, firm_id: &str) -> StoreResult<bool> {
    let on: i64 = sqlx::query_scalar("select totp_for_approvers from firm where firm_id = $1")
        .bind(firm_id)
        .fetch_optional(conn)
        .await?
        .ok_or(super::StoreError::NotFound)?;
    Ok(on != 0)
}

/// Set that: returns what it was.
pub async fn set_totp_for_approvers(
    tx: &mut super::Tx<'_>,
    firm_id: &str,
    on: bool,
) -> StoreResult<bool> {
    let was = totp_for_approvers(tx, firm_id).await?;
    sqlx::query("update firm set totp_for_approvers = $1 where firm_id = $2")
        .bind(i64::from(on))
        .bind(firm_id)
        .execute(&mut **tx)
        .await?;
    Ok(was)
}
