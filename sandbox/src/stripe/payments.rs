//! PaymentIntents, Charges and BalanceTransactions. A confirmed intent
//! charges its test payment method: `pm_card_visa` (and the other
//! succeeding `pm_card_*`) succeed, creating a Charge and a `charge`
//! BalanceTransaction (fee 2.9% + 30¢, net = amount − fee, available two
//! days later); the `pm_card_chargeDeclined*` ones fail with a 402
//! `card_error` carrying `decline_code`, a failed Charge and the intent back
//! at `requires_payment_method`.

use super::call::{Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::{page, time_filter};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// Stripe's US card pricing.
pub(crate) fn fee(amount: i64) -> i64 {
    (amount * 29 + 500) / 1000 + 30
}

/// (code, decline_code, message) of a declining test payment method.
fn decline(pm: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match pm {
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => (
            "card_declined",
            "generic_decline",
            "Your card was declined.",
        ),
        "pm_card_chargeDeclinedInsufficientFunds"
        | "pm_card_visa_chargeDeclinedInsufficientFunds" => (
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        "pm_card_chargeDeclinedFraudulent" | "pm_card_visa_chargeDeclinedFraudulent" => {
            ("card_declined", "fraudulent", "Your card was declined.")
        }
        "pm_card_chargeDeclinedLostCard" | "pm_card_visa_chargeDeclinedLostCard" => {
            ("card_declined", "lost_card", "Your card was declined.")
        }
        "pm_card_chargeDeclinedStolenCard" | "pm_card_visa_chargeDeclinedStolenCard" => {
            ("card_declined", "stolen_card", "Your card was declined.")
        }
        "pm_card_chargeDeclinedExpiredCard" | "pm_card_visa_chargeDeclinedExpiredCard" => {
            ("expired_card", "expired_card", "Your card has expired.")
        }
        "pm_card_chargeDeclinedIncorrectCvc" | "pm_card_visa_chargeDeclinedIncorrectCvc" => (
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
        ),
        "pm_card_chargeDeclinedProcessingError" | "pm_card_visa_chargeDeclinedProcessingError" => (
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
        _ => return None,
    })
}

fn brand(pm: &str) -> Option<&'static str> {
    Some(match pm {
        "pm_card_visa" | "pm_card_visa_debit" | "pm_card_us" => "visa",
        "pm_card_mastercard" | "pm_card_mastercard_debit" => "mastercard",
        "pm_card_amex" => "amex",
        "pm_card_discover" => "discover",
        _ if decline(pm).is_some() => "visa",
        _ => return None,
    })
}

fn new_intent(
    acct: &mut AccountData,
    amount: i64,
    currency: &str,
    customer: Option<&str>,
    at: i64,
) -> Value {
    let id = acct.id("pi_");
    let secret = format!("{id}_secret_{}", &acct.id("")[..24]);
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": 0, "application": null, "automatic_payment_methods": null,
        "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic",
        "client_secret": secret, "confirmation_method": "automatic", "created": at,
        "currency": currency, "customer": customer, "description": null,
        "last_payment_error": null, "latest_charge": null, "livemode": false,
        "metadata": {}, "next_action": null, "payment_method": null,
        "payment_method_types": ["card"], "receipt_email": null,
        "status": "requires_payment_method",
    })
}

/// Confirm intent `pi` (in the account) with `pm`: the charge, its balance
/// transaction and events; a decline answers the card error.
fn confirm_intent(acct: &mut AccountData, pi: &str, pm: &str, at: i64) -> Res {
    let Some(b) = brand(pm) else {
        return Err(StripeError::no_such("PaymentMethod", pm, "payment_method"));
    };
    let intent = AccountData::find(&acct.payment_intents, pi)
        .cloned()
        .ok_or_else(|| StripeError::no_such("payment_intent", pi, "intent"))?;
    if intent["status"] == "succeeded" {
        let mut e = StripeError::invalid(
            "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.",
            None,
        );
        e.code = Some("payment_intent_unexpected_state".into());
        return Err(e);
    }
    let amount = intent["amount"].as_i64().unwrap_or(0);
    let ch_id = acct.id("ch_");
    let declined = decline(pm);
    let txn = if declined.is_none() {
        Some(acct.id("txn_"))
    } else {
        None
    };
    let pm_id = acct.id("pm_");
    let charge = json!({
        "id": ch_id, "object": "charge", "amount": amount,
        "amount_captured": if declined.is_none() { amount } else { 0 },
        "amount_refunded": 0, "balance_transaction": txn, "billing_details": {"address": null, "email": null, "name": null, "phone": null},
        "captured": declined.is_none(), "created": at, "currency": intent["currency"],
        "customer": intent["customer"], "description": intent["description"], "disputed": false,
        "failure_code": declined.map(|d| d.0), "failure_message": declined.map(|d| d.2),
        "livemode": false, "metadata": intent["metadata"],
        "outcome": match declined {
            None => json!({"network_status": "approved_by_network", "reason": null, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"}),
            Some(d) => json!({"network_status": "declined_by_network", "reason": d.1, "risk_level": "normal", "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined"}),
        },
        "paid": declined.is_none(), "payment_intent": pi, "payment_method": pm_id,
        "payment_method_details": {"type": "card", "card": {"brand": b, "country": "US", "exp_month": 12, "exp_year": 2034, "funding": "credit", "last4": if declined.is_some() { "0002" } else { "4242" }}},
        "refunded": false, "refunds": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{ch_id}/refunds")},
        "status": if declined.is_none() { "succeeded" } else { "failed" },
    });
    acct.charges.push(charge.clone());
    let before = intent.clone();
    let Some(v) = AccountData::find_mut(&mut acct.payment_intents, pi) else {
        return Err(StripeError::no_such("payment_intent", pi, "intent"));
    };
    v["latest_charge"] = json!(ch_id);
    v["payment_method"] = json!(pm_id);
    match declined {
        None => {
            v["status"] = json!("succeeded");
            v["amount_received"] = json!(amount);
            v["last_payment_error"] = Value::Null;
            let after = v.clone();
            let fee = fee(amount);
            let day = at - at.rem_euclid(86_400);
            acct.balance_transactions.push(json!({
                "id": txn, "object": "balance_transaction", "amount": amount,
                "available_on": day + 2 * 86_400, "balance_type": "payments", "created": at,
                "currency": intent["currency"], "description": intent["description"],
                "exchange_rate": null, "fee": fee,
                "fee_details": [{"amount": fee, "application": null, "currency": intent["currency"], "description": "Stripe processing fees", "type": "stripe_fee"}],
                "net": amount - fee, "reporting_category": "charge", "source": ch_id,
                "status": "pending", "type": "charge",
            }));
            acct.event("charge.succeeded", &charge, None, at);
            acct.event("payment_intent.succeeded", &after, Some(&before), at);
            Ok(after)
        }
        Some((code, decline_code, message)) => {
            let err = json!({
                "type": "card_error", "code": code, "decline_code": decline_code,
                "message": message, "charge": ch_id,
                "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
                "payment_method": {"id": pm_id, "object": "payment_method", "type": "card"},
            });
            v["status"] = json!("requires_payment_method");
            v["last_payment_error"] = err;
            v["payment_method"] = Value::Null;
            let after = v.clone();
            acct.event("charge.failed", &charge, None, at);
            acct.event("payment_intent.payment_failed", &after, Some(&before), at);
            let mut e = StripeError::new(StatusCode::PAYMENT_REQUIRED, "card_error", message);
            e.code = Some(code.into());
            e.decline_code = Some(decline_code.into());
            e.extra.insert("charge".into(), json!(ch_id));
            e.extra.insert("payment_intent".into(), after);
            Err(e)
        }
    }
}

/// Charge `pm` for an invoice (or any amount): a confirmed intent.
pub(crate) fn charge(
    acct: &mut AccountData,
    amount: i64,
    currency: &str,
    customer: Option<&str>,
    pm: &str,
    at: i64,
    invoice: Option<&str>,
) -> Res {
    let mut pi = new_intent(acct, amount, currency, customer, at);
    let id = pi["id"].as_str().unwrap_or("").to_owned();
    if let Some(i) = invoice {
        pi["description"] = json!(format!("Payment for Invoice {i}"));
        acct.invoice_of_pi.insert(id.clone(), i.to_owned());
    }
    acct.payment_intents.push(pi.clone());
    acct.event("payment_intent.created", &pi, None, at);
    confirm_intent(acct, &id, pm, at)
}

pub(crate) fn create_intent(c: &mut Call) -> Res {
    c.allow(&[
        "amount",
        "currency",
        "customer",
        "payment_method",
        "confirm",
        "metadata",
        "description",
        "payment_method_types",
        "automatic_payment_methods",
        "return_url",
        "receipt_email",
        "off_session",
    ])?;
    let amount = c
        .int("amount")?
        .ok_or_else(|| StripeError::missing("amount"))?;
    if amount < 50 {
        return Err(
            StripeError::invalid("Amount must be at least $0.50 usd", Some("amount"))
                .with_code("amount_too_small"),
        );
    }
    let currency = c
        .currency()?
        .ok_or_else(|| StripeError::missing("currency"))?;
    let customer = c.str("customer")?;
    if let Some(cus) = &customer {
        if AccountData::find(&c.acct.customers, cus).is_none() {
            return Err(StripeError::no_such("customer", cus, "customer"));
        }
    }
    let confirm = c.bool("confirm")?.unwrap_or(false);
    let pm = c.str("payment_method")?;
    if confirm {
        // Without payment_method_types the intent takes the Dashboard's
        // methods, some of which redirect: Stripe wants a return_url or
        // `automatic_payment_methods[allow_redirects]=never`.
        let types_given = c.params.get("payment_method_types").is_some();
        let no_redirects = c.params["automatic_payment_methods"]["allow_redirects"] == "never";
        if !types_given && !no_redirects && c.str("return_url")?.is_none() {
            return Err(StripeError::invalid(
                "This PaymentIntent is configured to accept payment methods enabled in your Dashboard, some of which may require a full page redirect to succeed. If you do not want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents. If you do want to accept redirect-based payment methods, set the `return_url` parameter when confirming Setup Intents or Payment Intents.",
                None,
            ));
        }
        if pm.is_none() {
            return Err(StripeError::invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with a payment method, provide `payment_method`.",
                Some("payment_method"),
            ).with_code("payment_intent_unexpected_state"));
        }
    }
    let at = c.ts();
    let mut pi = new_intent(c.acct, amount, &currency, customer.as_deref(), at);
    pi["description"] = json!(c.str("description")?);
    pi["metadata"] = Value::Object(c.metadata()?.unwrap_or_else(Map::new));
    if pm.is_some() && !confirm {
        pi["payment_method"] = json!(pm);
        pi["status"] = json!("requires_confirmation");
    }
    let id = pi["id"].as_str().unwrap_or("").to_owned();
    c.acct.payment_intents.push(pi.clone());
    c.acct.event("payment_intent.created", &pi, None, at);
    match (confirm, pm) {
        (true, Some(pm)) => confirm_intent(c.acct, &id, &pm, at),
        _ => Ok(pi),
    }
}

pub(crate) fn confirm(c: &mut Call) -> Res {
    c.allow(&["payment_method", "return_url", "off_session"])?;
    let id = c.id().to_owned();
    let intent = AccountData::find(&c.acct.payment_intents, &id)
        .cloned()
        .ok_or_else(|| StripeError::no_such("payment_intent", &id, "intent"))?;
    let pm = c
        .str("payment_method")?
        .or_else(|| intent["payment_method"].as_str().map(str::to_owned))
        .ok_or_else(|| StripeError::missing("payment_method"))?;
    confirm_intent(c.acct, &id, &pm, c.ts())
}

pub(crate) fn retrieve_intent(c: &mut Call) -> Res {
    c.allow(&["client_secret"])?;
    AccountData::find(&c.acct.payment_intents, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("payment_intent", c.id(), "intent"))
}

pub(crate) fn list_intents(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "customer",
    ])?;
    let cus = c.str("customer")?;
    let items = c
        .acct
        .payment_intents
        .iter()
        .filter(|v| cus.as_ref().is_none_or(|x| v["customer"] == x.as_str()))
        .collect();
    page(c, items, "/v1/payment_intents")
}

pub(crate) fn retrieve_charge(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.charges, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("charge", c.id(), "id"))
}

pub(crate) fn list_charges(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "customer",
        "payment_intent",
    ])?;
    let (cus, pi) = (c.str("customer")?, c.str("payment_intent")?);
    let items = c
        .acct
        .charges
        .iter()
        .filter(|v| cus.as_ref().is_none_or(|x| v["customer"] == x.as_str()))
        .filter(|v| {
            pi.as_ref()
                .is_none_or(|x| v["payment_intent"] == x.as_str())
        })
        .collect();
    page(c, items, "/v1/charges")
}

pub(crate) fn retrieve_txn(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.balance_transactions, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("balance transaction", c.id(), "id"))
}

/// `?payout=` (an automatic payout's transactions, the payout's own
/// included), `type=`, `source=`, `currency=`, `created[...]`.
pub(crate) fn list_txns(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "available_on",
        "payout",
        "type",
        "source",
        "currency",
    ])?;
    let (payout, kind, source, cur) = (
        c.str("payout")?,
        c.str("type")?,
        c.str("source")?,
        c.str("currency")?,
    );
    if let Some(p) = &payout {
        if AccountData::find(&c.acct.payouts, p).is_none() {
            return Err(StripeError::no_such("payout", p, "payout"));
        }
    }
    let mut items = vec![];
    for v in &c.acct.balance_transactions {
        let id = v["id"].as_str().unwrap_or("");
        let keep = payout
            .as_ref()
            .is_none_or(|p| c.acct.payout_of.get(id) == Some(p) || v["source"] == p.as_str())
            && kind.as_ref().is_none_or(|x| v["type"] == x.as_str())
            && source.as_ref().is_none_or(|x| v["source"] == x.as_str())
            && cur.as_ref().is_none_or(|x| v["currency"] == x.as_str())
            && time_filter(c, "available_on", v)?;
        if keep {
            items.push(v);
        }
    }
    page(c, items, "/v1/balance_transactions")
}
