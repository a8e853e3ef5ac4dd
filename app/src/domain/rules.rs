//! The approval rules (issue #16). Each rule has a reason code, a message
//! that names the numbers, and exactly one effect:
//!
//! | rule | code | effect |
//! | --- | --- | --- |
//! | liquidity buffer | `buffer` | refused; an admin may override with a reason |
//! | stale cash or bank history | `stale_data` | refused |
//! | a rail needs reconnecting | `connection_unhealthy` | refused |
//! | bill currency ≠ the bank's | `currency_mismatch` | refused |
//! | amount ≥ dual-control threshold | `second_approval_required` | waits for a second approver |
//! | possible duplicate | `possible_duplicate` | refused; an admin may override with a reason |
//! | first payment to a vendor | `new_vendor` | shown and audited; waits when the policy says so |
//! | ledger differs from what was staged | `ledger_mismatch` | refused until re-synced |
//! | overdue | `overdue` | never blocks; ranks the bill first |
//!
//! Pure: the browser previews with these functions, and the server re-runs
//! them with fresh data inside the approval's transaction (the authority).

use super::guardrails::{evaluate_liquidity, LiquidityVerdict};
use crate::model::{Currency, Money, MoneyError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A client's approval policy, one published version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub version: i64,
    pub buffer_days: u32,
    pub cash_max_age_secs: i64,
    pub bank_history_max_age_secs: i64,
    /// Bills at or over this amount (minor units of the client's currency)
    /// need a second approver.
    pub dual_control_threshold_minor: i64,
    /// Same vendor and same amount with bill dates this many days apart or
    /// fewer is a possible duplicate.
    pub duplicate_window_days: u32,
    /// A first payment to a vendor waits for a second approver.
    pub new_vendor_second_approver: bool,
}

/// Bounds an admin's policy edit must stay within.
pub const BUFFER_DAYS_MAX: u32 = 365;
pub const MAX_AGE_MIN_SECS: i64 = 60;
pub const MAX_AGE_MAX_SECS: i64 = 7 * 24 * 3600;
pub const DUPLICATE_WINDOW_MAX_DAYS: u32 = 90;

/// A policy field out of range: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl Policy {
    /// The defaults every new client starts with (version 1): a 14-day
    /// buffer, cash read within 15 minutes, bank history within 24 hours,
    /// dual control at 10,000.00 of the client's currency, a 7-day duplicate
    /// window (a monthly rent of the same amount is not a duplicate), and a
    /// new vendor needing no second approver.
    pub fn defaults(currency: &Currency) -> Policy {
        Policy {
            version: 1,
            buffer_days: 14,
            cash_max_age_secs: 900,
            bank_history_max_age_secs: 86_400,
            dual_control_threshold_minor: default_threshold_minor(currency),
            duplicate_window_days: 7,
            new_vendor_second_approver: false,
        }
    }

    /// Every field within its bounds, or the first one that is not.
    pub fn check(&self) -> Result<(), PolicyError> {
        let bad = |field: &str, message: String| {
            Err(PolicyError {
                field: field.into(),
                message,
            })
        };
        if self.buffer_days > BUFFER_DAYS_MAX {
            return bad(
                "buffer_days",
                format!("must be between 0 and {BUFFER_DAYS_MAX} days"),
            );
        }
        for (field, v) in [
            ("cash_max_age_secs", self.cash_max_age_secs),
            ("bank_history_max_age_secs", self.bank_history_max_age_secs),
        ] {
            if !(MAX_AGE_MIN_SECS..=MAX_AGE_MAX_SECS).contains(&v) {
                return bad(
                    field,
                    "must be between 1 minute (60) and 7 days (604800) in seconds".into(),
                );
            }
        }
        if self.dual_control_threshold_minor < 0 {
            return bad("dual_control_threshold_minor", "must be 0 or more".into());
        }
        if self.duplicate_window_days > DUPLICATE_WINDOW_MAX_DAYS {
            return bad(
                "duplicate_window_days",
                format!("must be between 0 and {DUPLICATE_WINDOW_MAX_DAYS} days"),
            );
        }
        Ok(())
    }
}

/// 10,000.00 in the currency's minor units.
pub fn default_threshold_minor(currency: &Currency) -> i64 {
    10_000 * 10i64.pow(currency.exponent())
}

/// The rules, by the reason code they are stored and sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Buffer,
    StaleData,
    ConnectionUnhealthy,
    CurrencyMismatch,
    SecondApprovalRequired,
    PossibleDuplicate,
    NewVendor,
    LedgerMismatch,
    Overdue,
}

/// A rule's one effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Refused; nobody may override.
    Refused,
    /// Refused; an admin may override with a written reason.
    RefusedOverridable,
    /// Approved by one person, it waits for a second.
    WaitsForSecond,
    /// Shown and audited; never blocks.
    Informs,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::Buffer => "buffer",
            Rule::StaleData => "stale_data",
            Rule::ConnectionUnhealthy => "connection_unhealthy",
            Rule::CurrencyMismatch => "currency_mismatch",
            Rule::SecondApprovalRequired => "second_approval_required",
            Rule::PossibleDuplicate => "possible_duplicate",
            Rule::NewVendor => "new_vendor",
            Rule::LedgerMismatch => "ledger_mismatch",
            Rule::Overdue => "overdue",
        }
    }

    pub fn effect(self, policy: &Policy) -> Effect {
        match self {
            Rule::Buffer | Rule::PossibleDuplicate => Effect::RefusedOverridable,
            Rule::StaleData
            | Rule::ConnectionUnhealthy
            | Rule::CurrencyMismatch
            | Rule::LedgerMismatch => Effect::Refused,
            Rule::SecondApprovalRequired => Effect::WaitsForSecond,
            Rule::NewVendor if policy.new_vendor_second_approver => Effect::WaitsForSecond,
            Rule::NewVendor | Rule::Overdue => Effect::Informs,
        }
    }
}

/// What one rule said about a bill (or about the whole client's selection,
/// when `bill_id` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub message: String,
    pub bill_id: Option<String>,
}

impl Finding {
    pub fn new(rule: Rule, message: impl Into<String>, bill_id: Option<&str>) -> Self {
        Finding {
            rule,
            message: message.into(),
            bill_id: bill_id.map(str::to_owned),
        }
    }
}

/// What an approval knows of a selected bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillFacts {
    pub bill_id: String,
    pub vendor_id: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub txn_date: NaiveDate,
    pub due_date: NaiveDate,
}

/// Another bill of the same client, open or closed (paid ones included),
/// that a selected bill may duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherBill {
    pub bill_id: String,
    pub vendor_id: String,
    pub doc_number: Option<String>,
    pub amount_minor: i64,
    pub txn_date: NaiveDate,
}

fn same_doc(a: &Option<String>, b: &Option<String>) -> bool {
    match (a.as_deref().map(str::trim), b.as_deref().map(str::trim)) {
        (Some(a), Some(b)) if !a.is_empty() => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// A possible duplicate of `bill` among `others` (itself excluded): the
/// same vendor and invoice number at any time, or the same vendor and
/// amount with bill dates at most `window_days` apart.
pub fn possible_duplicate(
    bill: &BillFacts,
    others: &[OtherBill],
    window_days: u32,
) -> Option<Finding> {
    duplicate_among(bill, others, &[], window_days)
}

/// A bill the duplicate rule compares with, borrowed from either list (no
/// copy of the client's bills per bill judged).
struct Prior<'a> {
    bill_id: &'a str,
    vendor_id: &'a str,
    doc_number: &'a Option<String>,
    amount_minor: i64,
    txn_date: NaiveDate,
}

/// The bill `bill` may duplicate among the client's other bills, then the
/// rest of the selection, and whether by invoice number (else by amount
/// inside the window).
fn duplicate_match<'a>(
    bill: &'a BillFacts,
    others: &'a [OtherBill],
    selection: &'a [BillFacts],
    window_days: u32,
) -> Option<(Prior<'a>, bool)> {
    let candidates = || {
        others
            .iter()
            .map(|o| Prior {
                bill_id: &o.bill_id,
                vendor_id: &o.vendor_id,
                doc_number: &o.doc_number,
                amount_minor: o.amount_minor,
                txn_date: o.txn_date,
            })
            .chain(selection.iter().map(|b| Prior {
                bill_id: &b.bill_id,
                vendor_id: &b.vendor_id,
                doc_number: &b.doc_number,
                amount_minor: b.amount_minor,
                txn_date: b.txn_date,
            }))
            .filter(|o| o.bill_id != bill.bill_id && o.vendor_id == bill.vendor_id)
    };
    if let Some(o) = candidates().find(|o| same_doc(o.doc_number, &bill.doc_number)) {
        return Some((o, true));
    }
    candidates()
        .find(|o| {
            o.amount_minor == bill.amount_minor
                && (o.txn_date - bill.txn_date).num_days().abs() <= i64::from(window_days)
        })
        .map(|o| (o, false))
}

/// [`possible_duplicate`] over the client's other bills, then the rest of
/// the selection.
fn duplicate_among(
    bill: &BillFacts,
    others: &[OtherBill],
    selection: &[BillFacts],
    window_days: u32,
) -> Option<Finding> {
    let (o, by_invoice) = duplicate_match(bill, others, selection, window_days)?;
    let message = if by_invoice {
        format!(
            "Possible duplicate: {} already has invoice {} (dated {}).",
            bill.vendor_name,
            bill.doc_number.as_deref().unwrap_or("(no number)"),
            o.txn_date
        )
    } else {
        let days = (o.txn_date - bill.txn_date).num_days().abs();
        let label = o
            .doc_number
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| format!("invoice {d}"))
            .unwrap_or_else(|| format!("the bill dated {}", o.txn_date));
        format!(
            "Possible duplicate: {} billed the same amount in {label}, {days} day{} apart (window {window_days} days).",
            bill.vendor_name,
            if days == 1 { "" } else { "s" },
        )
    };
    Some(Finding::new(
        Rule::PossibleDuplicate,
        message,
        Some(&bill.bill_id),
    ))
}

/// Whether a per-bill rule refuses `bill` on its own (a currency
/// mismatch or a possible duplicate): what [`bill_findings`] would say,
/// without writing its messages. The suggested batch asks this of every
/// open bill of every client.
pub fn refused_alone(input: &DecideInput<'_>, bill: &BillFacts) -> bool {
    bill.currency != input.bank_currency.as_str()
        || duplicate_match(
            bill,
            input.others,
            input.bills,
            input.policy.duplicate_window_days,
        )
        .is_some()
}

/// The client's cash as the buffer rule needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CashFacts {
    pub available: Money,
    pub approved_unpaid: Money,
    pub daily_burn: Money,
}

/// Everything one client's approval is judged on.
#[derive(Debug, Clone)]
pub struct DecideInput<'a> {
    pub policy: &'a Policy,
    pub bills: &'a [BillFacts],
    /// The client's other bills (open and closed) for the duplicate rule.
    pub others: &'a [OtherBill],
    /// Vendors this client has paid before (a ledger payment or a RowCol
    /// payment): any other vendor is new.
    pub known_vendors: &'a HashSet<String>,
    /// The currency of the client's bank account.
    pub bank_currency: &'a Currency,
    pub cash: &'a CashFacts,
    /// Findings that refuse the whole selection before any bill is looked
    /// at (stale data, a rail needing reconnecting, a ledger mismatch).
    pub blockers: Vec<Finding>,
    pub today: NaiveDate,
    /// An admin gave a written reason to override the overridable rules.
    pub override_requested: bool,
}

/// What happens to one bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BillOutcome {
    /// Approved now (its findings are shown and audited).
    Approved { findings: Vec<Finding> },
    /// Approved once; waits for a second approver.
    Waits { findings: Vec<Finding> },
    /// Not approved: the rule that refused it (or refused the selection).
    Refused { finding: Finding },
}

/// One client's decision: per client all or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientDecision {
    pub outcomes: Vec<(String, BillOutcome)>,
    /// The buffer verdict over the accepted bills (none when refused first
    /// for another reason).
    pub verdict: Option<LiquidityVerdict>,
    /// Refusing findings an admin's override set aside.
    pub overridden: Vec<Finding>,
}

impl ClientDecision {
    pub fn refused(&self) -> bool {
        self.outcomes
            .iter()
            .any(|(_, o)| matches!(o, BillOutcome::Refused { .. }))
    }
}

/// The per-bill rules (everything but the buffer and the blockers).
pub fn bill_findings(input: &DecideInput<'_>, bill: &BillFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let p = input.policy;
    let id = Some(bill.bill_id.as_str());
    if bill.currency != input.bank_currency.as_str() {
        out.push(Finding::new(
            Rule::CurrencyMismatch,
            format!(
                "Bill {} is in {}; the bank account is in {}.",
                bill.doc_number.as_deref().unwrap_or(&bill.bill_id),
                bill.currency,
                input.bank_currency.as_str()
            ),
            id,
        ));
    }
    // Other bills, plus the rest of this selection (two copies of one
    // invoice approved together are still a duplicate).
    if let Some(f) = duplicate_among(bill, input.others, input.bills, p.duplicate_window_days) {
        out.push(f);
    }
    if bill.amount_minor >= p.dual_control_threshold_minor {
        let cur = Currency::parse(&bill.currency).unwrap_or_else(|_| input.bank_currency.clone());
        out.push(Finding::new(
            Rule::SecondApprovalRequired,
            format!(
                "{} is at or over the dual-control threshold of {}: a second person must approve it.",
                Money::new(bill.amount_minor, cur.clone()),
                Money::new(p.dual_control_threshold_minor, cur)
            ),
            id,
        ));
    }
    if !input.known_vendors.contains(&bill.vendor_id) {
        out.push(Finding::new(
            Rule::NewVendor,
            if p.new_vendor_second_approver {
                format!(
                    "First payment to {}: the policy asks a second person to approve it.",
                    bill.vendor_name
                )
            } else {
                format!("First payment to {}.", bill.vendor_name)
            },
            id,
        ));
    }
    if bill.due_date < input.today {
        let days = (input.today - bill.due_date).num_days();
        out.push(Finding::new(
            Rule::Overdue,
            format!(
                "Overdue by {days} day{} (due {}).",
                if days == 1 { "" } else { "s" },
                bill.due_date
            ),
            id,
        ));
    }
    out
}

fn refusal_for_others(cause: &Finding, bill_id: &str) -> Finding {
    Finding::new(
        cause.rule,
        format!(
            "Not approved: a client's selection is approved all or nothing. {}",
            cause.message
        ),
        Some(bill_id),
    )
}

/// Judge one client's selection: all of it is accepted (approved now or
/// waiting for a second approver) or none of it is.
pub fn decide(input: &DecideInput<'_>) -> Result<ClientDecision, MoneyError> {
    let p = input.policy;
    let refuse_all = |cause: &Finding, overridden: Vec<Finding>, verdict| ClientDecision {
        outcomes: input
            .bills
            .iter()
            .map(|b| {
                let finding = if cause.bill_id.as_deref() == Some(b.bill_id.as_str())
                    || cause.bill_id.is_none()
                {
                    let mut f = cause.clone();
                    f.bill_id = Some(b.bill_id.clone());
                    f
                } else {
                    refusal_for_others(cause, &b.bill_id)
                };
                (b.bill_id.clone(), BillOutcome::Refused { finding })
            })
            .collect(),
        verdict,
        overridden,
    };
    if let Some(cause) = input.blockers.first() {
        return Ok(refuse_all(cause, vec![], None));
    }
    let per_bill: Vec<Vec<Finding>> = input
        .bills
        .iter()
        .map(|b| bill_findings(input, b))
        .collect();
    let mut overridden = Vec::new();
    for f in per_bill.iter().flatten() {
        match f.rule.effect(p) {
            Effect::Refused => return Ok(refuse_all(f, vec![], None)),
            Effect::RefusedOverridable if !input.override_requested => {
                return Ok(refuse_all(f, vec![], None))
            }
            Effect::RefusedOverridable => overridden.push(f.clone()),
            _ => {}
        }
    }
    let total = input.bills.iter().try_fold(0i64, |acc, b| {
        acc.checked_add(b.amount_minor).ok_or(MoneyError::Overflow)
    })?;
    let verdict = evaluate_liquidity(&super::guardrails::LiquidityInput {
        available: input.cash.available.clone(),
        approved_unpaid: input.cash.approved_unpaid.clone(),
        selected: Money::new(total, input.bank_currency.clone()),
        daily_burn: input.cash.daily_burn.clone(),
        buffer_days: p.buffer_days,
    })?;
    if !verdict.pass {
        let f = Finding::new(Rule::Buffer, verdict.reason(), None);
        if !input.override_requested {
            return Ok(refuse_all(&f, vec![], Some(verdict)));
        }
        overridden.push(f);
    }
    let outcomes = input
        .bills
        .iter()
        .zip(per_bill)
        .map(|(b, findings)| {
            let waits = findings
                .iter()
                .any(|f| f.rule.effect(p) == Effect::WaitsForSecond);
            let outcome = if waits {
                BillOutcome::Waits { findings }
            } else {
                BillOutcome::Approved { findings }
            };
            (b.bill_id.clone(), outcome)
        })
        .collect();
    Ok(ClientDecision {
        outcomes,
        verdict: Some(verdict),
        overridden,
    })
}

/// A bill the suggested batch may pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub bill_id: String,
    pub amount_minor: i64,
    pub due_date: NaiveDate,
    /// A refusing rule (duplicate, currency) already applies: never suggested.
    pub blocked: bool,
}

/// The suggested batch for one client: overdue bills first (oldest due
/// first), then by due date, then the smaller amount; greedily, each bill
/// that still fits inside the buffer's headroom (`cash after − required
/// buffer` with nothing selected) is taken, and one that does not is
/// skipped so a smaller later bill may still fit. Bills needing a second
/// approver are included: their cash counts the moment they are approved.
pub fn suggest_batch(candidates: &[Candidate], headroom_minor: i64) -> Vec<String> {
    let mut ranked: Vec<&Candidate> = candidates.iter().filter(|c| !c.blocked).collect();
    ranked.sort_by(|a, b| {
        (a.due_date, a.amount_minor, &a.bill_id).cmp(&(b.due_date, b.amount_minor, &b.bill_id))
    });
    let mut left = headroom_minor;
    let mut out = Vec::new();
    for c in ranked {
        if c.amount_minor >= 0 && c.amount_minor <= left {
            left -= c.amount_minor;
            out.push(c.bill_id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bill(id: &str, vendor: &str, doc: Option<&str>, amount: i64, date: &str) -> BillFacts {
        BillFacts {
            bill_id: id.into(),
            vendor_id: vendor.into(),
            vendor_name: format!("Vendor {vendor}"),
            doc_number: doc.map(Into::into),
            amount_minor: amount,
            currency: "USD".into(),
            txn_date: d(date),
            due_date: d(date) + chrono::Duration::days(30),
        }
    }

    fn other(b: &BillFacts) -> OtherBill {
        OtherBill {
            bill_id: b.bill_id.clone(),
            vendor_id: b.vendor_id.clone(),
            doc_number: b.doc_number.clone(),
            amount_minor: b.amount_minor,
            txn_date: b.txn_date,
        }
    }

    struct World {
        policy: Policy,
        others: Vec<OtherBill>,
        known: HashSet<String>,
        usd: Currency,
        cash: CashFacts,
    }

    fn world(available: i64) -> World {
        World {
            policy: Policy::defaults(&Currency::usd()),
            others: vec![],
            known: ["v1".to_string(), "v2".to_string()].into_iter().collect(),
            usd: Currency::usd(),
            cash: CashFacts {
                available: Money::usd(available),
                approved_unpaid: Money::usd(0),
                daily_burn: Money::usd(1_000),
            },
        }
    }

    fn input<'a>(w: &'a World, bills: &'a [BillFacts]) -> DecideInput<'a> {
        DecideInput {
            policy: &w.policy,
            bills,
            others: &w.others,
            known_vendors: &w.known,
            bank_currency: &w.usd,
            cash: &w.cash,
            blockers: vec![],
            today: d("2026-12-01"),
            override_requested: false,
        }
    }

    fn codes(dec: &ClientDecision) -> Vec<(String, &'static str)> {
        dec.outcomes
            .iter()
            .map(|(id, o)| {
                let c = match o {
                    BillOutcome::Approved { .. } => "approved",
                    BillOutcome::Waits { .. } => "waits",
                    BillOutcome::Refused { finding } => finding.rule.code(),
                };
                (id.clone(), c)
            })
            .collect()
    }

    #[test]
    fn policy_bounds_name_the_field() {
        let mut p = Policy::defaults(&Currency::usd());
        assert!(p.check().is_ok());
        p.buffer_days = 366;
        assert_eq!(p.check().unwrap_err().field, "buffer_days");
        p.buffer_days = 365;
        p.cash_max_age_secs = 59;
        assert_eq!(p.check().unwrap_err().field, "cash_max_age_secs");
        p.cash_max_age_secs = 60;
        p.bank_history_max_age_secs = 7 * 86_400 + 1;
        assert_eq!(p.check().unwrap_err().field, "bank_history_max_age_secs");
        p.bank_history_max_age_secs = 7 * 86_400;
        p.duplicate_window_days = 91;
        assert_eq!(p.check().unwrap_err().field, "duplicate_window_days");
        p.duplicate_window_days = 0;
        p.dual_control_threshold_minor = -1;
        assert_eq!(p.check().unwrap_err().field, "dual_control_threshold_minor");
        p.dual_control_threshold_minor = 0;
        assert!(p.check().is_ok());
    }

    #[test]
    fn the_default_threshold_is_ten_thousand_in_the_currency() {
        assert_eq!(default_threshold_minor(&Currency::usd()), 1_000_000);
        assert_eq!(
            default_threshold_minor(&Currency::parse("JPY").unwrap()),
            10_000
        );
    }

    #[test]
    fn a_selection_inside_every_rule_is_approved_and_overdue_never_blocks() {
        let w = world(10_000_000);
        let mut b = bill("b1", "v1", Some("INV-1"), 50_000, "2026-10-01");
        b.due_date = d("2026-11-20");
        let dec = decide(&input(&w, &[b])).unwrap();
        assert_eq!(codes(&dec), vec![("b1".to_string(), "approved")]);
        let BillOutcome::Approved { findings } = &dec.outcomes[0].1 else {
            panic!()
        };
        assert_eq!(findings[0].rule, Rule::Overdue);
        assert!(
            findings[0].message.contains("11 days"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn the_buffer_refuses_the_whole_client_and_an_override_lets_it_through() {
        // 14 × 1,000 = 14,000 required; 20,000 − 6,001 < 14,000.
        let w = world(20_000);
        let bills = [
            bill("b1", "v1", None, 3_000, "2026-11-01"),
            bill("b2", "v2", None, 3_001, "2026-11-02"),
        ];
        let dec = decide(&input(&w, &bills)).unwrap();
        assert_eq!(
            codes(&dec),
            vec![("b1".to_string(), "buffer"), ("b2".to_string(), "buffer")]
        );
        let mut i = input(&w, &bills);
        i.override_requested = true;
        let dec = decide(&i).unwrap();
        assert!(!dec.refused());
        assert_eq!(dec.overridden.len(), 1);
        assert_eq!(dec.overridden[0].rule, Rule::Buffer);
    }

    #[test]
    fn dual_control_waits_and_cannot_be_overridden_away() {
        let w = world(100_000_000);
        let bills = [
            bill("big", "v1", None, 1_000_000, "2026-11-01"),
            bill("small", "v2", None, 999_999, "2026-11-01"),
        ];
        let mut i = input(&w, &bills);
        i.override_requested = true;
        let dec = decide(&i).unwrap();
        assert_eq!(
            codes(&dec),
            vec![
                ("big".to_string(), "waits"),
                ("small".to_string(), "approved")
            ]
        );
    }

    #[test]
    fn duplicates_same_invoice_any_time_or_same_amount_within_the_window() {
        let mut w = world(100_000_000);
        let paid = bill("old", "v1", Some("INV-9"), 12_345, "2025-01-01");
        let rent = bill("rent-oct", "v2", None, 200_000, "2026-10-01");
        w.others = vec![other(&paid), other(&rent)];
        // Same invoice number a year later (case and spaces aside).
        let again = bill("new", "v1", Some(" inv-9 "), 99, "2026-11-01");
        let dec = decide(&input(&w, std::slice::from_ref(&again))).unwrap();
        assert_eq!(codes(&dec), vec![("new".to_string(), "possible_duplicate")]);
        // A monthly rent of the same amount is not a duplicate…
        let nov = bill("rent-nov", "v2", None, 200_000, "2026-11-01");
        assert!(!decide(&input(&w, std::slice::from_ref(&nov)))
            .unwrap()
            .refused());
        // …but the same amount 7 days apart is, and 8 is not.
        let close = bill("c", "v2", None, 200_000, "2026-10-08");
        assert!(decide(&input(&w, std::slice::from_ref(&close)))
            .unwrap()
            .refused());
        let far = bill("f", "v2", None, 200_000, "2026-10-09");
        assert!(!decide(&input(&w, std::slice::from_ref(&far)))
            .unwrap()
            .refused());
        // Another vendor's invoice number is not this vendor's.
        let other_vendor = bill("o", "v2", Some("INV-9"), 5, "2026-11-01");
        assert!(!decide(&input(&w, std::slice::from_ref(&other_vendor)))
            .unwrap()
            .refused());
        // Two copies in one selection refuse the selection; an admin may override.
        let a = bill("a", "v1", Some("X-1"), 10, "2026-11-01");
        let b = bill("b", "v1", Some("X-1"), 10, "2026-11-01");
        let pair = [a, b];
        assert!(decide(&input(&w, &pair)).unwrap().refused());
        let mut i = input(&w, &pair);
        i.override_requested = true;
        let dec = decide(&i).unwrap();
        assert!(!dec.refused());
        assert_eq!(dec.overridden.len(), 2);
    }

    #[test]
    fn refused_alone_says_what_the_findings_say_without_their_messages() {
        let mut w = world(100_000_000);
        let paid = bill("old", "v1", Some("INV-9"), 12_345, "2025-01-01");
        let rent = bill("rent-oct", "v2", None, 200_000, "2026-10-01");
        w.others = vec![other(&paid), other(&rent)];
        let mut eur = bill("eur", "v1", None, 5, "2026-11-01");
        eur.currency = "EUR".into();
        let cases = [
            bill("new", "v1", Some(" inv-9 "), 99, "2026-11-01"),
            bill("rent-nov", "v2", None, 200_000, "2026-11-01"),
            bill("c", "v2", None, 200_000, "2026-10-08"),
            bill("f", "v2", None, 200_000, "2026-10-09"),
            bill("o", "v2", Some("INV-9"), 5, "2026-11-01"),
            bill("big", "v-new", None, 900_000_000, "2026-10-01"),
            eur,
        ];
        let mut refused = 0;
        for b in &cases {
            let i = input(&w, std::slice::from_ref(b));
            let by_findings = bill_findings(&i, b).iter().any(|f| {
                matches!(
                    f.rule.effect(&w.policy),
                    Effect::Refused | Effect::RefusedOverridable
                )
            });
            assert_eq!(refused_alone(&i, b), by_findings, "bill {}", b.bill_id);
            refused += usize::from(by_findings);
        }
        // Both answers occur: the comparison is not between two falses.
        assert_eq!(refused, 3);
    }

    #[test]
    fn a_new_vendor_is_shown_and_waits_only_when_the_policy_says_so() {
        let mut w = world(100_000_000);
        let b = [bill("n", "v-new", None, 100, "2026-11-01")];
        let dec = decide(&input(&w, &b)).unwrap();
        let BillOutcome::Approved { findings } = &dec.outcomes[0].1 else {
            panic!("{dec:?}")
        };
        assert_eq!(findings[0].rule, Rule::NewVendor);
        w.policy.new_vendor_second_approver = true;
        assert_eq!(codes(&decide(&input(&w, &b)).unwrap())[0].1, "waits");
    }

    #[test]
    fn blockers_and_currency_refuse_without_override() {
        let w = world(100_000_000);
        let mut eur = bill("e", "v1", None, 100, "2026-11-01");
        eur.currency = "EUR".into();
        let ok = bill("u", "v2", None, 100, "2026-11-01");
        let both = [eur, ok];
        let mut i = input(&w, &both);
        i.override_requested = true;
        let dec = decide(&i).unwrap();
        assert_eq!(
            codes(&dec),
            vec![
                ("e".to_string(), "currency_mismatch"),
                ("u".to_string(), "currency_mismatch")
            ]
        );
        let BillOutcome::Refused { finding } = &dec.outcomes[1].1 else {
            panic!()
        };
        assert!(
            finding.message.contains("all or nothing"),
            "{}",
            finding.message
        );
        let mut i = input(&w, &both[1..]);
        i.override_requested = true;
        i.blockers = vec![Finding::new(Rule::StaleData, "old", None)];
        assert_eq!(codes(&decide(&i).unwrap())[0].1, "stale_data");
    }

    #[test]
    fn the_suggested_batch_ranks_overdue_then_due_and_fits_the_headroom() {
        let c = |id: &str, amount: i64, due: &str, blocked: bool| Candidate {
            bill_id: id.into(),
            amount_minor: amount,
            due_date: d(due),
            blocked,
        };
        let cands = [
            c("later", 100, "2026-12-20", false),
            c("overdue", 500, "2026-11-01", false),
            c("dup", 1, "2026-10-01", true),
            c("soon-big", 900, "2026-12-05", false),
            c("soon", 200, "2026-12-04", false),
        ];
        assert_eq!(suggest_batch(&cands, 800), vec!["overdue", "soon", "later"]);
        assert_eq!(suggest_batch(&cands, 0), Vec::<String>::new());
        assert_eq!(suggest_batch(&cands, -5), Vec::<String>::new());
    }
}
