//! Small ports the server crate implements for the few things server
//! functions must do synchronously with a rail (style decision 2): the fresh
//! balance check at approval, the ledger's current view of the bills being
//! approved, and the sandbox clock control.

use crate::model::{ClientId, SandboxStatus};

#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// The bank connection needs the user to log in again.
    #[error("the bank connection needs to be re-authorised")]
    LoginRequired,
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait CashRefresher: Send + Sync {
    /// Read the live balance for a client and store it as its cash snapshot.
    async fn refresh_cash(&self, client_id: &ClientId) -> Result<(), PortError>;
    /// Sync the client's bank transactions (the burn's source) up to now.
    async fn refresh_bank_history(&self, client_id: &ClientId) -> Result<(), PortError>;
}

#[async_trait::async_trait]
pub trait SandboxControl: Send + Sync {
    async fn advance_days(&self, days: u32) -> Result<SandboxStatus, PortError>;
    /// The simulators' fault document, as `GET /sandbox/control/faults`
    /// answers it (JSON: the app crate does not know the simulators' types).
    async fn faults(&self) -> Result<serde_json::Value, PortError>;
    /// Replace the fault document; `Unavailable` with the reason if the
    /// simulators do not accept it.
    async fn set_faults(&self, faults: serde_json::Value) -> Result<(), PortError>;
}

/// A bill as the ledger has it right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerBillNow {
    pub qbo_bill_id: String,
    pub vendor_id: String,
    pub amount_minor: i64,
    pub balance_minor: i64,
}

#[async_trait::async_trait]
pub trait LedgerCheck: Send + Sync {
    /// These bills of the client as QuickBooks has them now (one query,
    /// not one call per bill); a bill missing from the answer was deleted.
    async fn bills_now(
        &self,
        client_id: &ClientId,
        qbo_bill_ids: &[String],
    ) -> Result<Vec<LedgerBillNow>, PortError>;
}

/// What Ramp did when asked to stop a released bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// Archived now (or by an earlier attempt whose answer was lost): Ramp
    /// will never pay it.
    Archived,
    /// Ramp has paid it: too late.
    AlreadyPaid,
    /// Ramp refused, with its reason (e.g. the ACH debit has left).
    Refused(String),
}

#[async_trait::async_trait]
pub trait BillPayStop: Send + Sync {
    /// Archive the client's Ramp bill so Ramp never pays it.
    async fn stop_bill(
        &self,
        client_id: &ClientId,
        ramp_bill_id: &str,
    ) -> Result<StopOutcome, PortError>;
}
