//! The hygiene tray (`hygiene_item`): discrepancies, dead letters and
//! connections to renew, one shape for all.

use super::db::to_ms;
use super::StoreResult;
use crate::model::{ReasonCode, Severity};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

pub struct NewItem<'a> {
    pub firm_id: &'a str,
    pub client_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    pub severity: Severity,
    pub reason_code: ReasonCode,
    pub detail: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn file(conn: &mut AnyConnection, item: NewItem<'_>) -> StoreResult<()> {
    sqlx::query(
        "insert into hygiene_item (hygiene_id, firm_id, client_id, payment_id, severity, reason_code, detail, status, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, 'open', $8)",
    )
    .bind(format!("hyg_{}", uuid::Uuid::new_v4().simple()))
    .bind(item.firm_id)
    .bind(item.client_id)
    .bind(item.payment_id)
    .bind(item.severity.as_str())
    .bind(item.reason_code.as_str())
    .bind(item.detail)
    .bind(to_ms(item.at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Resolve a payment's open items for `reason` (the evidence came late).
pub async fn resolve_for_payment(
    conn: &mut AnyConnection,
    payment_id: &str,
    reason: ReasonCode,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update hygiene_item set status = 'resolved', resolved_at = $1
         where payment_id = $2 and reason_code = $3 and status = 'open'",
    )
    .bind(to_ms(at))
    .bind(payment_id)
    .bind(reason.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the client already has an open item for `reason`.
pub async fn client_has_open(
    conn: &mut AnyConnection,
    client_id: &str,
    reason: ReasonCode,
) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from hygiene_item where client_id = $1 and reason_code = $2 and status = 'open'",
    )
    .bind(client_id)
    .bind(reason.as_str())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}
