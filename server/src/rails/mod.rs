//! Rail adapters: one trait per rail role (`Ledger` = QBO, `BillPay` = Ramp,
//! `Cash` = Plaid), real reqwest implementations with injected base URLs, and
//! one error type classified by meaning (see `http.rs`).

pub mod accounts;
pub mod http;
pub mod plaid;
pub mod qbo;
mod qbo_cdc;
pub mod ramp;

use app::model::Money;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;

/// A credential string whose Debug/Display is "[redacted]".
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A rail call failed; classified by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum RailError {
    /// 401/403, bad or expired token.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 429, with the Retry-After the rail sent, if any.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited {
        retry_after: Option<std::time::Duration>,
    },
    /// 5xx, timeout, connection error: try again later.
    #[error("transient: {0}")]
    Transient(String),
    /// Another 4xx: the rail answered and refused the request (validation,
    /// conflict); it did nothing, and retrying will not help.
    #[error("rejected: {0}")]
    Rejected(String),
    /// An answer RowCol cannot use (unparseable body, missing fields): the
    /// request may have had its effect; retrying will not help.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Plaid ITEM_LOGIN_REQUIRED: the user must reconnect through Link.
    #[error("login required: {0}")]
    LoginRequired(String),
}

impl RailError {
    /// The rail answered with a status that says it did nothing: a write
    /// refused this way certainly had no effect (unlike a timeout, a 5xx or
    /// an answer that cannot be read).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RailError::Unauthorized(_)
                | RailError::NotFound(_)
                | RailError::RateLimited { .. }
                | RailError::Rejected(_)
        )
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RailError::RateLimited { .. } | RailError::Transient(_)
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            RailError::Unauthorized(_) => "unauthorized",
            RailError::NotFound(_) => "not_found",
            RailError::RateLimited { .. } => "rate_limited",
            RailError::Transient(_) => "transient",
            RailError::Rejected(_) => "rejected",
            RailError::Permanent(_) => "permanent",
            RailError::LoginRequired(_) => "login_required",
        }
    }
}

/// Credentials for one client's connection to one rail.
#[derive(Clone, Debug)]
pub struct RailAuth {
    /// QBO realmId, Ramp business id, Plaid item id.
    pub external_id: String,
    pub access_token: SecretString,
}

// ---------------------------------------------------------------- Ledger (QBO)

#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Bills with Balance > 0, all pages.
    async fn open_bills(&self, auth: &RailAuth) -> Result<Vec<LedgerBill>, RailError>;
    /// The bills changed at or after `since` (CDC, `entities=Bill`): each as
    /// it is now, whatever its balance, and the ids of those deleted. QBO
    /// answers at most 1,000 objects and 30 days back: `complete` is false
    /// when the cap was reached.
    async fn changed_bills(
        &self,
        auth: &RailAuth,
        since: DateTime<Utc>,
    ) -> Result<LedgerChanges, RailError>;
    /// BillPayments whose Line LinkedTxn (TxnType Bill) names `bill_id`.
    async fn bill_payments_for_bill(
        &self,
        auth: &RailAuth,
        bill_id: &str,
    ) -> Result<Vec<LedgerBillPayment>, RailError>;
    /// One bill as it is now (`GET /bill/{id}`); `None` if QBO no longer has
    /// it (deleted).
    async fn get_bill(
        &self,
        auth: &RailAuth,
        bill_id: &str,
    ) -> Result<Option<LedgerBill>, RailError>;
    /// These bills as they are now, in as few queries as QBO allows
    /// (`Id IN (…)`); a bill missing from the answer was deleted.
    async fn bills_by_ids(
        &self,
        auth: &RailAuth,
        bill_ids: &[String],
    ) -> Result<Vec<LedgerBill>, RailError>;
    /// Append RowCol's audit note to a BillPayment's `PrivateNote`, keeping
    /// what is there. A note whose `marker` is already present is not
    /// appended again (retries are harmless).
    async fn annotate_bill_payment(
        &self,
        auth: &RailAuth,
        bill_payment_id: &str,
        marker: &str,
        note: &str,
    ) -> Result<(), RailError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerBill {
    pub id: String,
    pub vendor_id: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub total: Money,
    pub balance: Money,
    pub txn_date: NaiveDate,
    pub due_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerChanges {
    pub bills: Vec<LedgerBill>,
    pub deleted: Vec<String>,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerBillPayment {
    pub id: String,
    pub txn_date: NaiveDate,
    pub total: Money,
    /// The line amount linked to this bill.
    pub amount_for_bill: Money,
    pub private_note: Option<String>,
}

// ------------------------------------------------------------- BillPay (Ramp)

#[async_trait::async_trait]
pub trait BillPay: Send + Sync {
    /// The entity with its BILL_PAY_BANK_ACCOUNT, and vendors with a contact
    /// and a vendor bank account.
    async fn bill_pay_setup(&self, auth: &RailAuth) -> Result<RampSetup, RailError>;
    /// `POST /developer/v1/bills` (201). Ramp documents no de-duplication on
    /// `remote_id`: every call that reaches Ramp may create a bill, even one
    /// whose response is lost. Never repeat it blindly; look first with
    /// [`BillPay::bills_with_remote_id`].
    async fn create_bill(&self, auth: &RailAuth, req: &CreateBill) -> Result<RampBill, RailError>;
    /// The bills carrying `remote_id` among the entity's bills for the vendor
    /// created since `created_since` (all pages). Ramp's list may lag a
    /// just-created bill by a few seconds: an empty answer right after a
    /// create proves nothing.
    async fn bills_with_remote_id(
        &self,
        auth: &RailAuth,
        look: &BillLookup,
    ) -> Result<Vec<RampBill>, RailError>;
    async fn get_bill(&self, auth: &RailAuth, bill_id: &str) -> Result<RampBill, RailError>;
    /// The business's bills in payment status `status` (`payment_status`)
    /// created since `created_since` (all pages): a sweep reads a client's
    /// bills in one list, not one bill at a time.
    async fn bills_in_status(
        &self,
        auth: &RailAuth,
        status: RampBillStatus,
        created_since: DateTime<Utc>,
    ) -> Result<Vec<RampBill>, RailError>;
    /// `DELETE /developer/v1/bills/{id}`: archive the bill, cancelling its
    /// payment "where it can" (204). Ramp refuses (400) a paid bill, one
    /// already archived, and one whose payment can no longer be stopped;
    /// the caller re-reads the bill to tell which.
    async fn archive_bill(&self, auth: &RailAuth, bill_id: &str) -> Result<(), RailError>;
    /// The vendor's ACH bank account Ramp pays now (the default one), read
    /// fresh: `None` when it has none.
    async fn vendor_ach_account(
        &self,
        auth: &RailAuth,
        vendor_id: &str,
    ) -> Result<Option<String>, RailError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampSetup {
    pub entity_id: String,
    pub source_bank_account_id: String,
    pub vendors: Vec<RampVendor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampVendor {
    pub id: String,
    pub name: String,
    /// The QBO Vendor Id.
    pub accounting_vendor_remote_id: Option<String>,
    pub contact_id: Option<String>,
    pub vendor_account_id: Option<String>,
}

/// What to look for with [`BillPay::bills_with_remote_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillLookup {
    pub entity_id: String,
    pub vendor_id: String,
    pub remote_id: String,
    pub created_since: DateTime<Utc>,
}

/// A bill to create on Ramp, paid by ACH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateBill {
    /// RowCol's payment id: the idempotency key.
    pub remote_id: String,
    pub entity_id: String,
    pub vendor_id: String,
    pub vendor_contact_id: String,
    pub invoice_number: String,
    pub issued_at: NaiveDate,
    pub due_at: NaiveDate,
    pub amount: Money,
    pub memo: Option<String>,
    pub payment_arrival_date: NaiveDate,
    pub source_bank_account_id: String,
    pub vendor_account_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RampBillStatus {
    Open,
    Paid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampBill {
    pub id: String,
    pub remote_id: Option<String>,
    pub status: RampBillStatus,
    pub approval_status: Option<String>,
    pub amount: Money,
    pub invoice_number: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub payment_date: Option<NaiveDate>,
    pub trace_id: Option<String>,
    /// `archived_at` is set: Ramp will never pay it.
    pub archived: bool,
}

// ---------------------------------------------------------------- Cash (Plaid)

#[async_trait::async_trait]
pub trait Cash: Send + Sync {
    /// `POST /accounts/balance/get`, the first depository account.
    async fn balance(&self, auth: &RailAuth) -> Result<CashBalance, RailError>;
    /// One page of `/transactions/sync`.
    async fn transactions_sync(
        &self,
        auth: &RailAuth,
        cursor: Option<&str>,
    ) -> Result<TxnSyncPage, RailError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashBalance {
    pub account_id: String,
    pub available: Money,
    pub current: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnSyncPage {
    pub added: Vec<BankTxn>,
    pub modified: Vec<BankTxn>,
    pub removed: Vec<String>,
    pub next_cursor: String,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankTxn {
    pub id: String,
    pub account_id: String,
    /// Plaid sign: positive = money out.
    pub amount: Money,
    pub date: NaiveDate,
    pub name: String,
    pub pending: bool,
    /// On a posted transaction: the pending one it replaces (Plaid removes
    /// that one in the same update).
    pub pending_transaction_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = SecretString::new("tok_very_secret");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let auth = RailAuth {
            external_id: "r1".into(),
            access_token: s.clone(),
        };
        assert!(!format!("{auth:?}").contains("very_secret"));
        assert_eq!(s.expose(), "tok_very_secret");
    }

    #[test]
    fn retryable_and_codes() {
        assert!(RailError::Transient("x".into()).is_retryable());
        assert!(RailError::RateLimited { retry_after: None }.is_retryable());
        assert!(!RailError::Permanent("x".into()).is_retryable());
        assert_eq!(
            RailError::LoginRequired("x".into()).code(),
            "login_required"
        );
        assert_eq!(
            RailError::RateLimited { retry_after: None }.code(),
            "rate_limited"
        );
    }
}

/// The rail roles, as trait objects chosen by configuration (the real
/// clients at live or sandbox base URLs).
#[derive(Clone)]
pub struct Rails {
    pub ledger: std::sync::Arc<dyn Ledger>,
    pub bill_pay: std::sync::Arc<dyn BillPay>,
    pub cash: std::sync::Arc<dyn Cash>,
}
