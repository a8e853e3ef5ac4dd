//! Connect flows in progress (`connect_flow`): one row per OAuth `state`
//! (or Plaid Link session) RowCol handed out, keyed by the state's SHA-256,
//! used once.

use super::db::{to_ms, Tx};
use super::StoreResult;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

#[derive(Debug, Clone)]
pub struct NewFlow<'a> {
    pub flow_id: &'a str,
    pub firm_id: &'a str,
    pub user_id: &'a str,
    pub session_binding: &'a str,
    pub rail: &'a str,
    pub client_id: Option<&'a str>,
    pub purpose: &'a str,
    pub secret_sealed: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(tx: &mut Tx<'_>, f: &NewFlow<'_>, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "insert into connect_flow (flow_id, firm_id, user_id, session_binding, rail, client_id,
             purpose, secret_sealed, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(f.flow_id)
    .bind(f.firm_id)
    .bind(f.user_id)
    .bind(f.session_binding)
    .bind(f.rail)
    .bind(f.client_id)
    .bind(f.purpose)
    .bind(f.secret_sealed)
    .bind(to_ms(at))
    .bind(to_ms(f.expires_at))
    .execute(&mut **tx)
    .await?;
    // Flows nobody came back for are of no use a day later.
    sqlx::query("delete from connect_flow where expires_at < $1")
        .bind(to_ms(at) - 86_400_000)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Flow {
    pub flow_id: String,
    pub firm_id: String,
    pub user_id: String,
    pub session_binding: String,
    pub rail: String,
    pub client_id: Option<String>,
    pub purpose: String,
    pub secret_sealed: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn find(conn: &mut AnyConnection, flow_id: &str) -> StoreResult<Option<Flow>> {
    Ok(sqlx::query_as(
        "select flow_id, firm_id, user_id, session_binding, rail, client_id, purpose,
                secret_sealed, expires_at, used_at
         from connect_flow where flow_id = $1",
    )
    .bind(flow_id)
    .fetch_optional(conn)
    .await?)
}

/// Spend the flow: true for the one caller that does.
pub async fn use_once(
    conn: &mut AnyConnection,
    flow_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done =
        sqlx::query("update connect_flow set used_at = $1 where flow_id = $2 and used_at is null")
            .bind(to_ms(at))
            .bind(flow_id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
