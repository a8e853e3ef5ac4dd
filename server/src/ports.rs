//! The ports `app` declares, implemented with the server's services: fresh
//! cash for approvals (through the Plaid adapter), the sandbox clock, and
//! the sandbox's persistence in RowCol's own database. Each port is built
//! from the services it needs, before the app state that holds it.

use crate::jobs::sync::{refresh_balance, sync_transactions, RefreshError};
use crate::services::Services;
use app::model::{ClientId, SandboxStatus};
use app::ssr::crypto::Sealer;
use app::ssr::ports::{CashRefresher, PortError, SandboxControl};
use app::ssr::store::{sandbox_state, Db};
use sandbox::{Sandbox, SimStore};

/// Fresh cash for approvals, through the Plaid adapter.
pub struct PlaidCash {
    pub services: Services,
}

#[async_trait::async_trait]
impl CashRefresher for PlaidCash {
    async fn refresh_cash(&self, client_id: &ClientId) -> Result<(), PortError> {
        refresh_balance(&self.services, client_id.as_str())
            .await
            .map_err(|e| match e {
                RefreshError::LoginRequired => PortError::LoginRequired,
                RefreshError::Job(j) => {
                    tracing::warn!(error = %j, client = %client_id, "balance refresh failed");
                    PortError::Unavailable("the bank did not answer; try again shortly".into())
                }
            })
    }

    async fn refresh_bank_history(&self, client_id: &ClientId) -> Result<(), PortError> {
        sync_transactions(&self.services, client_id.as_str())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, client = %client_id, "bank history refresh failed");
                match e {
                    crate::jobs::JobError::Fatal { code, .. }
                    | crate::jobs::JobError::Retry { code, .. }
                        if code == "login_required" =>
                    {
                        PortError::LoginRequired
                    }
                    _ => PortError::Unavailable(
                        "the bank's transactions could not be read; try again shortly".into(),
                    ),
                }
            })
    }
}

/// The sandbox clock control: advance, then settle RowCol's own queue so the
/// console shows the consequences at once.
pub struct SandboxClock {
    pub sandbox: Sandbox,
    pub services: Services,
}

#[async_trait::async_trait]
impl SandboxControl for SandboxClock {
    async fn advance_days(&self, days: u32) -> Result<SandboxStatus, PortError> {
        use crate::jobs::runner;
        let svc = &self.services;
        // Finish what is due at the current time (e.g. releases just
        // approved) before time jumps ahead.
        if let Err(e) = runner::drain(svc).await {
            tracing::warn!(error = %e, "draining jobs before advance failed");
        }
        let report = self
            .sandbox
            .advance(chrono::Duration::days(i64::from(days)))
            .await
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        persist_clock(&svc.db, svc.clock.offset_secs(), svc.clock.now()).await;
        if let Err(e) = runner::drain(svc).await {
            tracing::warn!(error = %e, "draining jobs after advance failed");
        }
        runner::sweep(svc).await;
        if let Err(e) = runner::drain(svc).await {
            tracing::warn!(error = %e, "draining jobs after the sweep failed");
        }
        Ok(SandboxStatus {
            today: report.today,
            now: report.now,
            bills_paid: report.bills_paid,
            webhooks_delivered: report.webhooks_delivered,
        })
    }
}

async fn persist_clock(db: &Db, offset: i64, now: chrono::DateTime<chrono::Utc>) {
    let saved = async {
        let mut conn = db.acquire().await?;
        sandbox_state::save_clock_offset(&mut conn, offset, now).await
    }
    .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "saving the sandbox clock failed");
    }
}

/// Simulator state as one JSON document in `sandbox_state`, sealed with the
/// same key as rail tokens: it holds the simulated rails' access tokens.
pub struct DbSimStore {
    pub db: Db,
    pub sealer: Sealer,
}

#[async_trait::async_trait]
impl SimStore for DbSimStore {
    async fn load(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let mut conn = self.db.acquire().await?;
        let Some(sealed) = sandbox_state::load_rails(&mut conn).await? else {
            return Ok(None);
        };
        let json = self.sealer.open(&sealed).map_err(|_| {
            anyhow::anyhow!("the sandbox state was sealed under another ROWCOL_ENCRYPTION_KEY")
        })?;
        Ok(Some(serde_json::from_str(&json)?))
    }

    async fn save(&self, state: &serde_json::Value) -> anyhow::Result<()> {
        let mut conn = self.db.acquire().await?;
        sandbox_state::save_rails(
            &mut conn,
            &self.sealer.seal(&state.to_string()),
            chrono::Utc::now(),
        )
        .await?;
        Ok(())
    }
}
