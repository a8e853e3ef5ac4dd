//! Filing items in a firm's hygiene tray (discrepancies, dead letters,
//! connections to renew). One place, so every item has the same shape.

use app::ssr::db::to_ms;
use chrono::{DateTime, Utc};

pub struct NewItem<'a> {
    pub firm_id: &'a str,
    pub client_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    /// `critical`, `high` or `medium`.
    pub severity: &'a str,
    pub reason_code: &'a str,
    pub detail: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn file(conn: &mut sqlx::AnyConnection, item: NewItem<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into hygiene_item (hygiene_id, firm_id, client_id, payment_id, severity, reason_code, detail, status, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, 'open', $8)",
    )
    .bind(format!("hyg_{}", uuid::Uuid::new_v4().simple()))
    .bind(item.firm_id)
    .bind(item.client_id)
    .bind(item.payment_id)
    .bind(item.severity)
    .bind(item.reason_code)
    .bind(item.detail)
    .bind(to_ms(item.at))
    .execute(conn)
    .await?;
    Ok(())
}
