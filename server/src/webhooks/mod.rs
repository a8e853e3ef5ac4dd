//! Inbound webhooks: verify the raw bytes → persist → 2xx → process later.

pub mod plaid;
pub mod qbo;
pub mod ramp;
pub mod refusals;
pub mod secrets;
pub mod stripe;

use crate::router_state::ServerState;
use app::model::Rail;
use app::ssr::store::{commit, inbox, StoreError};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub(crate) type Reply = (StatusCode, Json<Value>);

pub(crate) fn reply(status: StatusCode, msg: &str) -> Reply {
    (status, Json(json!({ "status": msg })))
}

/// A verified delivery: store it in the inbox with its processing job (one
/// transaction), then answer. 200 for a new event and for a duplicate; 503
/// when it could not be stored, so the sender retries and nothing is lost.
pub(crate) async fn accept(
    st: &ServerState,
    rail: Rail,
    event_id: &str,
    event_type: &str,
    headers: &str,
    body: &str,
) -> Reply {
    match store(st, rail, event_id, event_type, headers, body).await {
        Ok(true) => {
            st.services.runner_wake.notify_one();
            reply(StatusCode::OK, "received")
        }
        Ok(false) => reply(StatusCode::OK, "duplicate"),
        Err(e) => {
            tracing::error!(error = %e, %rail, "could not store webhook");
            reply(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}

async fn store(
    st: &ServerState,
    rail: Rail,
    event_id: &str,
    event_type: &str,
    headers: &str,
    body: &str,
) -> Result<bool, StoreError> {
    let svc = &st.services;
    let mut tx = svc.db.begin().await?;
    let stored = inbox::store_and_enqueue(
        &mut tx,
        rail,
        event_id,
        event_type,
        headers,
        body,
        svc.clock.now(),
    )
    .await?;
    commit(tx).await?;
    Ok(stored)
}
