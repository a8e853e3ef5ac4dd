//! Ramp bill create: validation of a create body against the business's
//! entity, vendors and bank account, with Ramp's field-level errors.

use super::{invalid, missing, Rejection};
use crate::sim_state::*;
use crate::wire::{currency_code, decimal_text, minor_exponent, parse_minor};
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::Value;

pub(super) fn date_field(v: &Value, field: &str) -> Result<NaiveDate, Rejection> {
    let s = v
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(field))?;
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| invalid(field, "Not a valid date."))
}

pub(super) fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str, Rejection> {
    match v.get(field).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(missing(field)),
    }
}

/// Validate a create body; the returned record still needs id/remote_id/created_at.
pub(super) fn validate_create(
    c: &SimClient,
    v: &Value,
    today: NaiveDate,
) -> Result<RampBillRec, Rejection> {
    for f in [
        "due_at",
        "entity_id",
        "invoice_currency",
        "invoice_number",
        "issued_at",
        "payment_method",
        "vendor_contact_id",
        "vendor_id",
    ] {
        str_field(v, f)?;
    }
    let due_at = date_field(v, "due_at")?;
    let issued_at = date_field(v, "issued_at")?;
    let entity_id = str_field(v, "entity_id")?;
    if entity_id != c.ramp.entity.id {
        return Err(invalid("entity_id", "Entity not found."));
    }
    let cur = str_field(v, "invoice_currency")?;
    let currency =
        currency_code(cur).ok_or_else(|| invalid("invoice_currency", "Not a valid currency."))?;
    if currency != c.currency {
        return Err(invalid(
            "invoice_currency",
            "Currency not supported for this entity.",
        ));
    }
    let vendor_id = str_field(v, "vendor_id")?;
    let vendor = c
        .ramp
        .vendors
        .iter()
        .find(|x| x.id == vendor_id)
        .ok_or_else(|| invalid("vendor_id", "Vendor not found."))?;
    let contact = str_field(v, "vendor_contact_id")?;
    if contact != vendor.contact_id {
        return Err(invalid(
            "vendor_contact_id",
            "Contact does not belong to the vendor.",
        ));
    }
    let payment = payment_part(c, vendor, v, today)?;
    let (line_items, total) = parse_lines(v, &currency)?;
    Ok(RampBillRec {
        id: String::new(),
        remote_id: None,
        entity_id: entity_id.to_owned(),
        vendor_id: vendor_id.to_owned(),
        vendor_contact_id: contact.to_owned(),
        invoice_number: str_field(v, "invoice_number")?.to_owned(),
        issued_at,
        due_at,
        amount_cents: total,
        line_items,
        memo: v.get("memo").and_then(Value::as_str).map(str::to_owned),
        payment_arrival_date: payment.arrival,
        source_bank_account_id: c.ramp.entity.bank_account_id.clone(),
        vendor_account_id: vendor.account_id.clone(),
        status: if payment.manual.is_some() {
            RampStatus::Paid
        } else {
            RampStatus::Open
        },
        created_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        paid_at: None,
        payment_date: payment.manual.as_ref().map(|_| payment.arrival),
        trace_id: None,
        payment_method: payment.method,
        manual_payment_method: payment.manual,
        posting_date: optional_date(v, "posting_date")?,
        ach_return: None,
        ach_lead: 0,
        debited_on: None,
        archived_at: None,
    })
}

/// `line_items[]` with decimal `amount`s in major units: the lines in minor
/// units and their total.
pub(super) fn parse_lines(
    v: &Value,
    currency: &str,
) -> Result<(Vec<(i64, String)>, i64), Rejection> {
    let lines = v
        .get("line_items")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| missing("line_items"))?;
    let mut line_items = Vec::new();
    let mut total = 0i64;
    for line in lines {
        let text = line
            .get("amount")
            .and_then(decimal_text)
            .ok_or_else(|| missing("line_items.amount"))?;
        let minor = parse_minor(&text, minor_exponent(currency))
            .ok_or_else(|| invalid("line_items.amount", "Not a valid decimal amount."))?;
        if minor <= 0 {
            return Err(invalid("line_items.amount", "Amount must be positive."));
        }
        total = total
            .checked_add(minor)
            .ok_or_else(|| invalid("line_items.amount", "Amount too large."))?;
        let memo = line
            .get("memo")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        line_items.push((minor, memo));
    }
    Ok((line_items, total))
}

/// `payment_arrival_date`: a business day, not in the past.
pub(super) fn arrival_date(details: &Value, today: NaiveDate) -> Result<NaiveDate, Rejection> {
    let arrival = date_field(details, "payment_arrival_date")?;
    if matches!(arrival.weekday(), Weekday::Sat | Weekday::Sun) {
        return Err(invalid(
            "payment_arrival_date",
            "Payment arrival date cannot be a weekend or bank holiday.",
        ));
    }
    if arrival < today {
        return Err(invalid(
            "payment_arrival_date",
            "Payment arrival date cannot be in the past.",
        ));
    }
    Ok(arrival)
}

pub(super) fn optional_date(v: &Value, field: &str) -> Result<Option<NaiveDate>, Rejection> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => date_field(v, field).map(Some),
    }
}

/// How the bill is paid: the method, the date money arrives (for
/// `PAID_MANUALLY`, the date it was paid) and the manual method.
struct PaymentPart {
    method: String,
    arrival: NaiveDate,
    manual: Option<String>,
}

/// The `MANUAL_PAYMENT_METHOD`s Ramp lists for `PAID_MANUALLY`.
const MANUAL_METHODS: [&str; 8] = [
    "CASH",
    "CHECK",
    "CROSS_BORDER_PAYMENT",
    "DIRECT_DEBIT",
    "DOMESTIC_WIRE_TRANSFER",
    "NON_RAMP_CREDIT_CARD",
    "OTHER",
    "PAID_IN_ERP",
];

/// `payment_details`, whose shape depends on `payment_method`. The world's
/// vendors have US bank accounts and no mailing address, and its businesses
/// no spend limits: the methods that need those are refused as Ramp would
/// refuse them for such a vendor, not simulated.
fn payment_part(
    c: &SimClient,
    vendor: &RampVendorRec,
    v: &Value,
    today: NaiveDate,
) -> Result<PaymentPart, Rejection> {
    let method = str_field(v, "payment_method")?;
    let details = v
        .get("payment_details")
        .filter(|d| d.is_object())
        .ok_or_else(|| missing("payment_details"))?;
    match method {
        "ACH" | "DOMESTIC_WIRE" => {
            let arrival = arrival_date(details, today)?;
            if str_field(details, "source_bank_account_id")? != c.ramp.entity.bank_account_id {
                return Err(invalid(
                    "source_bank_account_id",
                    "Not a BILL_PAY_BANK_ACCOUNT of this entity.",
                ));
            }
            if str_field(details, "vendor_account_id")? != vendor.account_id {
                return Err(invalid("vendor_account_id", "Vendor account not found."));
            }
            Ok(PaymentPart {
                method: method.to_owned(),
                arrival,
                manual: None,
            })
        }
        "PAID_MANUALLY" => {
            let how = str_field(details, "manual_payment_method")?;
            if !MANUAL_METHODS.contains(&how) {
                return Err(invalid("manual_payment_method", "Not a valid choice."));
            }
            let paid = date_field(details, "payment_date")?;
            if paid > today {
                return Err(invalid(
                    "payment_date",
                    "Payment date cannot be in the future.",
                ));
            }
            Ok(PaymentPart {
                method: method.to_owned(),
                arrival: paid,
                manual: Some(how.to_owned()),
            })
        }
        "CHECK" => Err(invalid(
            "payment_method",
            "Vendor has no mailing address for a check.",
        )),
        "CARD" | "ONE_TIME_CARD" | "ONE_TIME_CARD_DELIVERY" => {
            str_field(details, "spend_limit_id")?;
            Err(invalid("spend_limit_id", "Spend limit not found."))
        }
        "INTERNATIONAL" | "SWIFT" => Err(invalid(
            "payment_method",
            "Vendor has no international bank account.",
        )),
        _ => Err(invalid("payment_method", "Not a valid choice.")),
    }
}
