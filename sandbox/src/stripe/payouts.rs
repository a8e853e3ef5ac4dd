//! Payouts (automatic, daily): read-only over the API; made and moved by
//! the simulated days (`activity`): `pending` → `in_transit` the next day
//! → `paid` on `arrival_date`, each with a negative `payout` balance
//! transaction.

use super::call::{Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::{page, time_filter};
use serde_json::{json, Value};

pub(crate) fn retrieve(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.payouts, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("payout", c.id(), "id"))
}

pub(crate) fn list(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "arrival_date",
        "status",
        "destination",
    ])?;
    let status = c.str("status")?;
    let mut items = vec![];
    for v in &c.acct.payouts {
        if status.as_ref().is_none_or(|s| v["status"] == s.as_str())
            && time_filter(c, "arrival_date", v)?
        {
            items.push(v);
        }
    }
    page(c, items, "/v1/payouts")
}

/// Pay out everything available at `day_start` (not yet paid out) in one
/// automatic payout arriving two days later.
pub(crate) fn make_automatic(acct: &mut AccountData, day_start: i64, at: i64) {
    let due: Vec<(String, i64)> = acct
        .balance_transactions
        .iter()
        .filter(|t| t["type"] != "payout")
        .filter(|t| t["available_on"].as_i64().unwrap_or(i64::MAX) <= day_start)
        .filter_map(|t| {
            t["id"]
                .as_str()
                .map(|id| (id.to_owned(), t["net"].as_i64().unwrap_or(0)))
        })
        .filter(|(id, _)| !acct.payout_of.contains_key(id))
        .collect();
    let total: i64 = due.iter().map(|(_, n)| n).sum();
    if total <= 0 {
        return;
    }
    let po = acct.id("po_");
    let txn = acct.id("txn_");
    for (id, _) in &due {
        acct.payout_of.insert(id.clone(), po.clone());
    }
    acct.payout_of.insert(txn.clone(), po.clone());
    let payout = json!({
        "id": po, "object": "payout", "amount": total, "application_fee": null,
        "application_fee_amount": null, "arrival_date": day_start + 2 * 86_400,
        "automatic": true, "balance_transaction": txn, "created": at, "currency": "usd",
        "description": "STRIPE PAYOUT", "destination": "ba_sandbox_checking",
        "failure_balance_transaction": null, "failure_code": null, "failure_message": null,
        "livemode": false, "metadata": {}, "method": "standard", "original_payout": null,
        "reconciliation_status": "in_progress", "reversed_by": null, "source_type": "card",
        "statement_descriptor": null, "status": "pending",
        "trace_id": {"status": "pending", "value": null}, "type": "bank_account",
    });
    acct.balance_transactions.push(json!({
        "id": txn, "object": "balance_transaction", "amount": -total, "available_on": day_start,
        "balance_type": "payments", "created": at, "currency": "usd", "description": "STRIPE PAYOUT",
        "exchange_rate": null, "fee": 0, "fee_details": [], "net": -total,
        "reporting_category": "payout", "source": po, "status": "available", "type": "payout",
    }));
    acct.payouts.push(payout.clone());
    acct.event("payout.created", &payout, None, at);
}

/// Move payouts along on a new day: created before `day_start` → in transit;
/// arrival reached → paid (trace id known, reconciliation completed).
pub(crate) fn move_along(acct: &mut AccountData, day_start: i64, at: i64) {
    let mut events: Vec<(&'static str, Value, Value)> = vec![];
    for (i, p) in acct.payouts.iter_mut().enumerate() {
        let before = p.clone();
        let arrival = p["arrival_date"].as_i64().unwrap_or(i64::MAX);
        if p["status"] == "pending" && p["created"].as_i64().unwrap_or(0) < day_start {
            p["status"] = json!("in_transit");
            events.push(("payout.updated", p.clone(), before.clone()));
        }
        if p["status"] == "in_transit" && arrival <= day_start {
            p["status"] = json!("paid");
            p["reconciliation_status"] = json!("completed");
            p["trace_id"] =
                json!({"status": "supported", "value": format!("SANDBOX{:010}", i + 1)});
            events.push(("payout.paid", p.clone(), before));
        }
    }
    for (kind, after, before) in events {
        acct.event(kind, &after, Some(&before), at);
        if kind == "payout.paid" {
            acct.event("payout.reconciliation_completed", &after, None, at);
        }
    }
    for t in acct.balance_transactions.iter_mut() {
        if t["status"] == "pending" && t["available_on"].as_i64().unwrap_or(i64::MAX) <= day_start {
            t["status"] = json!("available");
        }
    }
}
