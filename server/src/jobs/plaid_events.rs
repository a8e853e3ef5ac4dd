//! Process a stored Plaid webhook. Plaid's bodies carry no event id and may
//! arrive twice or out of order (an `ERROR` after the `LOGIN_REPAIRED` that
//! followed it), so nothing here believes the body's news: the Item's state
//! is read again and that reading decides.

use super::sync::{refresh_balance, RefreshError};
use super::JobError;
use crate::services::Services;
use app::model::Rail;
use app::ssr::job_kinds::Job;
use app::ssr::store::{commit, connections, job_queue};
use serde_json::Value;

/// `event_type` is `<webhook_type>.<webhook_code>`.
pub async fn process(st: &Services, event_type: &str, body: &Value) -> Result<String, JobError> {
    let item_id = body
        .get("item_id")
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::fatal("malformed", "Plaid webhook without item_id"))?;
    let clients = {
        let mut conn = st.db.acquire().await?;
        connections::clients_for_account(&mut conn, Rail::Plaid, item_id).await?
    };
    if clients.is_empty() {
        return Ok(format!("ignored: item {item_id} is not connected"));
    }
    let (kind, code) = event_type.split_once('.').unwrap_or((event_type, ""));
    match (kind, code) {
        // New, changed or removed transactions: sync (cursor-based, so an
        // extra or late announcement costs one empty page).
        (
            "TRANSACTIONS",
            "SYNC_UPDATES_AVAILABLE"
            | "DEFAULT_UPDATE"
            | "INITIAL_UPDATE"
            | "HISTORICAL_UPDATE"
            | "TRANSACTIONS_REMOVED",
        ) => {
            let now = st.clock.now();
            let mut tx = st.db.begin().await?;
            for client_id in &clients {
                job_queue::enqueue(
                    &mut tx,
                    &Job::SyncClient {
                        client_id: client_id.clone(),
                    },
                    now,
                    now,
                )
                .await?;
            }
            commit(tx).await?;
            Ok(format!("sync queued for {}", clients.join(", ")))
        }
        // The login broke, was repaired, or consent went away: read the
        // balance. `ITEM_LOGIN_REQUIRED` marks the connection (approvals
        // stop, the hygiene tray asks for Link); an answer marks it healthy.
        (
            "ITEM",
            "ERROR"
            | "LOGIN_REPAIRED"
            | "USER_PERMISSION_REVOKED"
            | "USER_ACCOUNT_REVOKED"
            | "PENDING_DISCONNECT"
            | "PENDING_EXPIRATION",
        ) => {
            let mut outcomes = Vec::new();
            for client_id in &clients {
                let outcome = match refresh_balance(st, client_id).await {
                    Ok(()) => "bank answers".to_owned(),
                    Err(RefreshError::LoginRequired) => "bank login needed".to_owned(),
                    // Revoked consent: the token is refused; the connection
                    // is marked by the refresh path and this is done.
                    Err(RefreshError::Job(e)) if e.code() == "needs_reconnect" => {
                        "connection needs reconnect".to_owned()
                    }
                    Err(RefreshError::Job(e)) => return Err(e),
                };
                outcomes.push(format!("{client_id}: {outcome}"));
            }
            Ok(outcomes.join("; "))
        }
        _ => Ok(format!("ignored: {event_type} is not handled")),
    }
}
