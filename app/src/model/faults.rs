//! The catalogue of sandbox faults the console's Sandbox page shows: one
//! row per field of the simulators' `Faults` document (`GET
//! /sandbox/control/faults`), with the rail it hits, how it is edited and a
//! line in plain words. The server test `fault_catalogue_covers_every_fault`
//! fails when the simulators gain a fault this list does not name.

use serde::{Deserialize, Serialize};

/// How a fault's value is entered and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A whole number (0 = off).
    Count,
    /// On or off.
    Switch,
    /// HTTP statuses, comma separated, answered in order.
    Statuses,
    /// Plaid item ids, comma separated.
    ItemIds,
    /// `rail:status[:METHOD[:path]]` entries, comma separated.
    RailFaults,
    /// NACHA return codes (`R01`, `R02`, …), comma separated, used in order.
    ReturnCodes,
    /// Business days 0–5, or empty for none (0 is a value, not "off").
    OptionalDays,
}

pub struct FaultSpec {
    pub key: &'static str,
    pub group: &'static str,
    pub kind: FaultKind,
    pub explain: &'static str,
}

const fn spec(
    key: &'static str,
    group: &'static str,
    kind: FaultKind,
    explain: &'static str,
) -> FaultSpec {
    FaultSpec {
        key,
        group,
        kind,
        explain,
    }
}

use FaultKind::*;

/// Every fault, grouped by rail in the order the page shows them.
pub const FAULTS: &[FaultSpec] = &[
    spec("ramp_create_fail_next", "Ramp", Statuses, "The next Ramp bill creates answer these statuses, in order (e.g. 503, 429), creating nothing."),
    spec("ramp_create_lose_response_next", "Ramp", Count, "The next N Ramp bill creates are made, then answered 500: the response is lost."),
    spec("ramp_ach_return_next", "Ramp", ReturnCodes, "The next paid ACH bills come back with these NACHA return codes, one each, 2–4 business days after PAID: the bank shows the credit and the Ramp bill is OPEN again, with no webhook."),
    spec("ramp_ach_lead_days", "Ramp", OptionalDays, "ACH bills created from now on debit this many business days (0–5) before their arrival date instead of the seeded 1–3; empty clears it."),
    spec("ramp_vendor_bank_change_next", "Ramp", Count, "The next N vendors whose bank accounts are read have just changed them (new bank details): RowCol must hold their next payment for a second look."),
    spec("ramp_list_lag_secs", "Ramp", Count, "Ramp's bill list leaves out bills created less than this many seconds ago (stays on until 0)."),
    spec("qbo_amount_mismatch_next", "QBO", Count, "The next N BillPayments recorded in QBO are off by +1.00."),
    spec("qbo_skip_next", "QBO", Count, "The next N paid bills are never recorded in QBO."),
    spec("qbo_late_next", "QBO", Count, "The next N paid bills reach QBO three days late."),
    spec("qbo_write_lose_response_next", "QBO", Count, "The next N QBO writes are applied, then answered 500."),
    spec("qbo_throttle_off", "QBO", Switch, "QBO's per-company throttle (10 a second, 500 a minute) is off."),
    spec("plaid_login_required", "Plaid", ItemIds, "These Plaid items answer ITEM_LOGIN_REQUIRED: the bank login has expired."),
    spec("plaid_debits_pending_first", "Plaid", Switch, "Bill-pay debits show as pending first and post at the next advance."),
    spec("plaid_drop_pending_next", "Plaid", Count, "The next N pending debits fall off instead of posting."),
    spec("plaid_sync_mutation_next", "Plaid", Count, "The next N paginated transaction syncs fail with a mutation-during-pagination error."),
    spec("plaid_login_repaired_after_update_mode", "Plaid", Switch, "Also send LOGIN_REPAIRED after the client repairs a login in update mode."),
    spec("rail_fail_next", "Any rail", RailFaults, "The next calls to a rail fail before doing anything, in order: rail:status[:METHOD[:path]] (status 0 = hang)."),
    spec("rail_hang_ms", "Any rail", Count, "How long a hang lasts, in milliseconds (0 = 2,000)."),
    spec("rate_limits_off", "Any rail", Switch, "Ramp's (200 per 10 s), Stripe's (25 a second) and Plaid's per-Item and per-client rate limits are off."),
    spec("webhook_duplicate", "Webhooks", Switch, "Every webhook is delivered twice."),
    spec("webhook_drop_next", "Webhooks", Count, "The next N webhooks are silently dropped."),
    spec("webhook_delay_next", "Webhooks", Count, "The next N webhooks are queued a day late."),
    spec("webhook_reorder", "Webhooks", Switch, "Due webhooks are delivered newest first."),
    spec("living_world", "World", Switch, "The world lives as the clock moves: new bills, bills paid by hand, edited or deleted."),
];

pub fn fault_spec(key: &str) -> Option<&'static FaultSpec> {
    FAULTS.iter().find(|f| f.key == key)
}

/// One fault as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRow {
    pub key: String,
    pub group: String,
    pub kind: FaultKind,
    pub explain: String,
    /// The current value as it is typed back in ("3", "on", "503, 429").
    pub value: String,
    /// Whether the fault is armed (not zero, off or empty).
    pub set: bool,
}

/// The Sandbox page: every fault, and the firm's clients (for per-client
/// faults and world events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultsView {
    pub faults: Vec<FaultRow>,
    /// (client name, Plaid item id) of the firm's clients with a bank link.
    pub plaid_items: Vec<(String, String)>,
}
