//! The ports `app` declares, implemented with the server's services: fresh
//! cash for approvals (through the Plaid adapter), the sandbox clock, and
//! the sandbox's persistence in RowCol's own database. Each port is built
//! from the services it needs, before the app state that holds it.

use crate::jobs::sync::{refresh_balance, sync_transactions, RefreshError};
use crate::services::Services;
use app::model::{ClientId, SandboxStatus};
use app::ssr::crypto::Sealer;
use app::ssr::ports::{
    BillPayStop, CashRefresher, LedgerBillNow, LedgerCheck, PortError, SandboxControl, StopOutcome,
};
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

/// The ledger's current view of bills being approved, through the QBO
/// adapter: one query for the selection.
pub struct QboLedger {
    pub services: Services,
}

#[async_trait::async_trait]
impl LedgerCheck for QboLedger {
    async fn bills_now(
        &self,
        client_id: &ClientId,
        qbo_bill_ids: &[String],
    ) -> Result<Vec<LedgerBillNow>, PortError> {
        let svc = &self.services;
        let auth = crate::connections::rail_auth(svc, client_id.as_str(), app::model::Rail::Qbo)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, client = %client_id, "no QBO access for the ledger check");
                PortError::Unavailable("QuickBooks could not be reached".into())
            })?;
        let bills = svc
            .rails
            .ledger
            .bills_by_ids(&auth, qbo_bill_ids)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, client = %client_id, "ledger check failed");
                PortError::Unavailable("QuickBooks did not answer; try again shortly".into())
            })?;
        Ok(bills
            .into_iter()
            .map(|b| LedgerBillNow {
                qbo_bill_id: b.id,
                vendor_id: b.vendor_id,
                amount_minor: b.total.minor,
                balance_minor: b.balance.minor,
            })
            .collect())
    }
}

/// Stopping a released payment: archive its Ramp bill. Ramp's refusal (400)
/// does not say why in a form to rely on, so the bill is read again: paid,
/// archived already (an earlier attempt whose answer was lost), or still
/// open with a payment Ramp can no longer stop.
pub struct RampStop {
    pub services: Services,
}

#[async_trait::async_trait]
impl BillPayStop for RampStop {
    async fn stop_bill(
        &self,
        client_id: &ClientId,
        ramp_bill_id: &str,
    ) -> Result<StopOutcome, PortError> {
        use crate::rails::{RailError, RampBillStatus};
        let svc = &self.services;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, client = %client_id, bill = ramp_bill_id, "stopping a Ramp bill failed");
            PortError::Unavailable(
                "Ramp did not answer; nothing was stopped. Try again shortly.".into(),
            )
        };
        let auth = crate::connections::rail_auth(svc, client_id.as_str(), app::model::Rail::Ramp)
            .await
            .map_err(|e| unavailable(&e))?;
        let refusal = match svc.rails.bill_pay.archive_bill(&auth, ramp_bill_id).await {
            Ok(()) => return Ok(StopOutcome::Archived),
            Err(RailError::Rejected(why)) => why,
            Err(e) => return Err(unavailable(&e)),
        };
        let bill = svc
            .rails
            .bill_pay
            .get_bill(&auth, ramp_bill_id)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(if bill.archived {
            StopOutcome::Archived
        } else if bill.status == RampBillStatus::Paid {
            StopOutcome::AlreadyPaid
        } else {
            StopOutcome::Refused(refusal)
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

    async fn faults(&self) -> Result<serde_json::Value, PortError> {
        serde_json::to_value(self.sandbox.faults().await)
            .map_err(|e| PortError::Unavailable(e.to_string()))
    }

    async fn set_faults(&self, faults: serde_json::Value) -> Result<(), PortError> {
        // The same parse `POST /sandbox/control/faults` does.
        let f: sandbox::Faults = serde_json::from_value(faults)
            .map_err(|e| PortError::Unavailable(format!("faults do not parse: {e}")))?;
        self.sandbox.set_faults(f).await;
        Ok(())
    }
}

pub async fn persist_clock(db: &Db, offset: i64, now: chrono::DateTime<chrono::Utc>) {
    let saved = async {
        let mut conn = db.acquire().await?;
        sandbox_state::save_clock_offset(&mut conn, offset, now).await
    }
    .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "saving the sandbox clock failed");
    }
}

/// Simulator state in `sandbox_state`: a document and its parts (one row
/// each), sealed with the same key as rail tokens: they hold the simulated
/// rails' access tokens.
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
        let json = self
            .sealer
            .open(&sealed, crate::keys::SANDBOX_STATE_AAD)
            .map_err(|_| {
                anyhow::anyhow!("the sandbox state was sealed under another ROWCOL_ENCRYPTION_KEY")
            })?;
        Ok(Some(serde_json::from_str(&json)?))
    }

    /// The document, its changed parts and the clock row in one transaction.
    async fn save(&self, snapshot: &sandbox::Snapshot<'_>) -> anyhow::Result<()> {
        let doc = self
            .sealer
            .seal(snapshot.doc, crate::keys::SANDBOX_STATE_AAD);
        let parts: Vec<(&str, String)> = snapshot
            .parts
            .iter()
            .map(|(part, json)| {
                let aad = crate::keys::sandbox_part_aad(part);
                (part.as_str(), self.sealer.seal(json, &aad))
            })
            .collect();
        let now = chrono::Utc::now();
        let mut tx = self.db.begin().await?;
        sandbox_state::save_rails(&mut tx, &doc, now).await?;
        for (part, sealed) in &parts {
            sandbox_state::save_rails_part(&mut tx, part, sealed, now).await?;
        }
        // The clock row too, whichever route moved the clock (the console or
        // `/sandbox/control/advance`): instances using these simulators from
        // elsewhere (ROWCOL_SANDBOX_RAILS_URL) read their time from it.
        sandbox_state::save_clock_offset(&mut tx, snapshot.clock_offset_secs, now).await?;
        app::ssr::store::commit(tx).await?;
        Ok(())
    }

    async fn load_part(&self, part: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let mut conn = self.db.acquire().await?;
        let Some(sealed) = sandbox_state::load_rails_part(&mut conn, part).await? else {
            return Ok(None);
        };
        let json = self
            .sealer
            .open(&sealed, &crate::keys::sandbox_part_aad(part))
            .map_err(|_| {
                anyhow::anyhow!(
                    "the sandbox's {part} data was sealed under another ROWCOL_ENCRYPTION_KEY"
                )
            })?;
        Ok(Some(serde_json::from_str(&json)?))
    }
}

/// An instance using another instance's simulators keeps its clock on theirs:
/// the offset that instance saves in `sandbox_state`, re-read every
/// [`FOLLOW_CLOCK_EVERY`]. Between reads this clock runs on, so it lags an
/// advance by at most that long, as a second machine's clock would.
pub async fn follow_clock(db: &Db, clock: &app::ssr::clock::Clock) {
    let loaded = async {
        let mut conn = db.acquire().await?;
        sandbox_state::load_clock_offset(&mut conn).await
    }
    .await;
    match loaded {
        Ok(Some(offset)) => clock.set_offset_secs(offset),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "reading the shared sandbox clock failed"),
    }
}

pub const FOLLOW_CLOCK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
