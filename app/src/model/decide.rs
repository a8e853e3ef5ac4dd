//! What a decision across the portfolio answers (issue #16): a batch's
//! per-client outcome, the approvals page's rows, the waiting list.

use super::{BillId, ClientId, Money, PaymentId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A bill that became a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillPayment {
    pub bill_id: BillId,
    pub payment_id: PaymentId,
}

/// A bill that was not approved, and the rule that said no.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub bill_id: BillId,
    pub reason_code: String,
    pub message: String,
}

/// One client's part of a batch: all of its selection accepted (approved,
/// or approved once and waiting for a second approver) or all refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientBatchAnswer {
    pub client_id: ClientId,
    pub client_name: String,
    pub approved: Vec<BillPayment>,
    pub awaiting_second_approval: Vec<BillPayment>,
    pub refused: Vec<Refusal>,
    /// A sentence for a person: what happened and the numbers.
    pub message: String,
}

/// The answer to `approve_batch`; the same again for the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    pub batch_key: String,
    pub clients: Vec<ClientBatchAnswer>,
}

/// One open bill on the approvals page, with what the rules say of it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRow {
    pub bill_id: BillId,
    pub client_id: ClientId,
    pub client_name: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub amount: Money,
    pub due_date: NaiveDate,
    pub overdue: bool,
    /// Reason codes of the per-bill rules that apply (e.g.
    /// `second_approval_required`, `possible_duplicate`, `new_vendor`).
    pub rules: Vec<String>,
    /// A plain sentence per rule, in the same order.
    pub rule_messages: Vec<String>,
    /// A refusing rule applies: the suggested batch never picks it.
    pub blocked: bool,
    /// In this client's suggested batch.
    pub suggested: bool,
}

/// One client's cash as the approvals page needs it for the what-if.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalClient {
    pub client_id: ClientId,
    pub name: String,
    /// `None`: no usable cash (no balance, stale, or a broken rail); the
    /// reason is in `unavailable`.
    pub available: Option<Money>,
    pub approved_unpaid: Money,
    pub daily_burn: Money,
    pub buffer_days: u32,
    pub unavailable: Option<String>,
}

/// A page of the approvals table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalsPage {
    pub rows: Vec<ApprovalRow>,
    /// The clients of the rows on this page.
    pub clients: Vec<ApprovalClient>,
    /// Rows matching the filters, over all pages.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
    /// A fresh key for the next batch submission.
    pub batch_key: String,
}

/// A payment waiting for its second approver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingPayment {
    pub payment_id: PaymentId,
    pub client_id: ClientId,
    pub client_name: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub amount: Money,
    pub first_approver: String,
    pub first_approved_at: DateTime<Utc>,
    /// Why it waits, in plain words.
    pub why: Vec<String>,
    /// The signed-in user approved it first (and so may not approve it again).
    pub mine: bool,
}

/// One approval of a payment, as its page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// `first` or `second`.
    pub step: String,
    pub approver: String,
    pub at: DateTime<Utc>,
    pub policy_version: i64,
    pub override_reason: Option<String>,
}

/// An open bill whose standing a policy edit would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    pub bill_id: BillId,
    pub vendor_name: String,
    pub amount: Money,
    /// e.g. `approved`, `waits for a second approver`, `refused (buffer)`.
    pub before: String,
    pub after: String,
}
