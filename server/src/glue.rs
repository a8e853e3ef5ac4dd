//! The ports `app` declares, implemented with the server's rails, and the
//! sandbox's persistence in RowCol's own database.

use crate::jobs::sync::{refresh_balance, RefreshError};
use crate::startup::ServerState;
use app::model::{ClientId, SandboxStatus};
use app::ssr::db::{to_ms, Db};
use app::ssr::ports::{CashRefresher, PortError, SandboxControl};
use sandbox::{Sandbox, SimStore};
use std::sync::OnceLock;

/// Fresh cash for approvals, through the Plaid adapter. The server state is
/// set once the app is assembled (the state also holds this port).
#[derive(Default)]
pub struct PlaidCash {
    pub server: OnceLock<ServerState>,
}

#[async_trait::async_trait]
impl CashRefresher for PlaidCash {
    async fn refresh_cash(&self, client_id: &ClientId) -> Result<(), PortError> {
        let st = self
            .server
            .get()
            .ok_or_else(|| PortError::Unavailable("starting up".into()))?;
        refresh_balance(st, client_id.as_str())
            .await
            .map_err(|e| match e {
                RefreshError::LoginRequired => PortError::LoginRequired,
                RefreshError::Job(j) => {
                    tracing::warn!(error = %j, client = %client_id, "balance refresh failed");
                    PortError::Unavailable("the bank did not answer; try again shortly".into())
                }
            })
    }
}

/// The sandbox clock control: advance, then settle RowCol's own queue so the
/// console shows the consequences at once.
pub struct SandboxClock {
    pub sandbox: Sandbox,
    pub server: OnceLock<ServerState>,
}

#[async_trait::async_trait]
impl SandboxControl for SandboxClock {
    async fn advance_days(&self, days: u32) -> Result<SandboxStatus, PortError> {
        // Finish what is due at the current time (e.g. releases just
        // approved) before time jumps ahead.
        if let Some(st) = self.server.get() {
            if let Err(e) = crate::jobs::runner::drain(st).await {
                tracing::warn!(error = %e, "draining jobs before advance failed");
            }
        }
        let report = self
            .sandbox
            .advance(chrono::Duration::days(i64::from(days)))
            .await
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        if let Some(st) = self.server.get() {
            persist_clock(&st.app.db, st.app.clock.offset_secs()).await;
            if let Err(e) = crate::jobs::runner::drain(st).await {
                tracing::warn!(error = %e, "draining jobs after advance failed");
            }
            crate::jobs::runner::sweep(st).await;
            if let Err(e) = crate::jobs::runner::drain(st).await {
                tracing::warn!(error = %e, "draining jobs after the sweep failed");
            }
        }
        Ok(SandboxStatus {
            today: report.today,
            now: report.now,
            bills_paid: report.bills_paid,
            webhooks_delivered: report.webhooks_delivered,
        })
    }
}

async fn persist_clock(db: &Db, offset: i64) {
    let _ = sqlx::query(
        "insert into sandbox_state (sandbox_id, state, updated_at) values ('clock', $1, $2)
         on conflict (sandbox_id) do update set state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(offset.to_string())
    .bind(to_ms(chrono::Utc::now()))
    .execute(&db.pool)
    .await;
}

/// Simulator state as one JSON document in `sandbox_state`, sealed with the
/// same key as rail tokens: it holds the simulated rails' access tokens.
pub struct DbSimStore {
    pub db: Db,
    pub sealer: app::ssr::crypto::Sealer,
}

#[async_trait::async_trait]
impl SimStore for DbSimStore {
    async fn load(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let row: Option<String> =
            sqlx::query_scalar("select state from sandbox_state where sandbox_id = 'rails'")
                .fetch_optional(&self.db.pool)
                .await?;
        let Some(sealed) = row else { return Ok(None) };
        let json = self.sealer.open(&sealed).map_err(|_| {
            anyhow::anyhow!("the sandbox state was sealed under another ROWCOL_ENCRYPTION_KEY")
        })?;
        Ok(Some(serde_json::from_str(&json)?))
    }

    async fn save(&self, state: &serde_json::Value) -> anyhow::Result<()> {
        sqlx::query(
            "insert into sandbox_state (sandbox_id, state, updated_at) values ('rails', $1, $2)
             on conflict (sandbox_id) do update set state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(self.sealer.seal(&state.to_string()))
        .bind(to_ms(chrono::Utc::now()))
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}
