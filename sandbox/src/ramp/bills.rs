//! Ramp bills beyond create: the list's documented filters, `PATCH`
//! (update) and `DELETE` (archive).
//!
//! The list refuses a query parameter Ramp does not document (400) rather
//! than ignoring it: a filter silently dropped returns every bill, which is
//! exactly the bug a caller with a misspelt filter would never see here.

use super::render::render_bill;
use super::writes::{arrival_date, date_field, optional_date, parse_lines, str_field};
use super::{authed, err, invalid, parse_time, Rejection};
use crate::sim_state::*;
use crate::wire::{decimal_text, minor_exponent, parse_minor};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// `GET /developer/v1/bills` query parameters (Ramp's reference).
const KNOWN: [&str; 21] = [
    "entity_id",
    "vendor_id",
    "approval_status",
    "payment_method",
    "payment_status",
    "sync_status",
    "sync_ready",
    "is_archived",
    "from_created_at",
    "to_created_at",
    "from_due_date",
    "to_due_date",
    "from_issued_date",
    "to_issued_date",
    "from_paid_at",
    "to_paid_at",
    "min_amount",
    "max_amount",
    "accounting_field_selection_id",
    "start",
    "page_size",
];

const APPROVAL: [&str; 5] = [
    "APPROVED",
    "INITIALIZED",
    "PENDING",
    "REJECTED",
    "TERMINATED",
];
const METHODS: [&str; 11] = [
    "ACH",
    "CARD",
    "CHECK",
    "DOMESTIC_WIRE",
    "INTERNATIONAL",
    "ONE_TIME_CARD",
    "ONE_TIME_CARD_DELIVERY",
    "PAID_MANUALLY",
    "SWIFT",
    "UNSPECIFIED",
    "VENDOR_CREDIT",
];
const SYNC: [&str; 3] = ["BILL_AND_PAYMENT_SYNCED", "BILL_SYNCED", "NOT_SYNCED"];

/// The parsed filters of one list request.
#[derive(Default)]
pub(super) struct ListFilter {
    eq: Vec<(&'static str, String)>,
    archived: Option<bool>,
    sync_ready: Option<bool>,
    created: [Option<DateTime<Utc>>; 2],
    paid: [Option<DateTime<Utc>>; 2],
    due: [Option<NaiveDate>; 2],
    issued: [Option<NaiveDate>; 2],
    amount: [Option<i64>; 2],
    field_selection: bool,
}

fn bad(field: &str, msg: &str) -> Rejection {
    Box::new(err(
        StatusCode::BAD_REQUEST,
        "DEVELOPER_7000",
        msg,
        Some(field),
    ))
}

fn one_of(q: &HashMap<String, String>, k: &str, allowed: &[&str]) -> Result<(), Rejection> {
    match q.get(k) {
        Some(v) if !allowed.contains(&v.as_str()) => Err(bad(k, "Not a valid choice.")),
        _ => Ok(()),
    }
}

fn boolean(q: &HashMap<String, String>, k: &str) -> Result<Option<bool>, Rejection> {
    match q.get(k).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(bad(k, "Not a valid boolean.")),
    }
}

fn instant(q: &HashMap<String, String>, k: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    q.get(k)
        .map(|t| parse_time(t).ok_or_else(|| bad(k, "Not a valid datetime.")))
        .transpose()
}

/// A date filter: a date, or a date-time whose date is taken.
fn day(q: &HashMap<String, String>, k: &str) -> Result<Option<NaiveDate>, Rejection> {
    q.get(k)
        .map(|t| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .or_else(|| parse_time(t).map(|t| t.date_naive()))
                .ok_or_else(|| bad(k, "Not a valid date."))
        })
        .transpose()
}

fn money(q: &HashMap<String, String>, k: &str, currency: &str) -> Result<Option<i64>, Rejection> {
    q.get(k)
        .map(|t| {
            decimal_text(&Value::String(t.clone()))
                .and_then(|d| parse_minor(&d, minor_exponent(currency)))
                .ok_or_else(|| bad(k, "Not a valid decimal amount."))
        })
        .transpose()
}

fn within<T: PartialOrd>(x: Option<T>, [lo, hi]: &[Option<T>; 2]) -> bool {
    match x {
        Some(x) => lo.as_ref().is_none_or(|l| x >= *l) && hi.as_ref().is_none_or(|h| x <= *h),
        // A bound on a value the bill lacks (e.g. paid_at on an open bill)
        // leaves it out.
        None => lo.is_none() && hi.is_none(),
    }
}

impl ListFilter {
    pub(super) fn parse(q: &HashMap<String, String>, currency: &str) -> Result<Self, Rejection> {
        if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(bad(k, "Unknown field."));
        }
        one_of(q, "approval_status", &APPROVAL)?;
        one_of(q, "payment_method", &METHODS)?;
        one_of(q, "payment_status", &["OPEN", "PAID"])?;
        one_of(q, "sync_status", &SYNC)?;
        let mut f = ListFilter::default();
        for k in [
            "entity_id",
            "vendor_id",
            "approval_status",
            "payment_method",
            "payment_status",
            "sync_status",
        ] {
            if let Some(v) = q.get(k) {
                f.eq.push((k, v.clone()));
            }
        }
        f.archived = boolean(q, "is_archived")?;
        f.sync_ready = boolean(q, "sync_ready")?;
        f.created = [instant(q, "from_created_at")?, instant(q, "to_created_at")?];
        f.paid = [instant(q, "from_paid_at")?, instant(q, "to_paid_at")?];
        f.due = [day(q, "from_due_date")?, day(q, "to_due_date")?];
        f.issued = [day(q, "from_issued_date")?, day(q, "to_issued_date")?];
        f.amount = [
            money(q, "min_amount", currency)?,
            money(q, "max_amount", currency)?,
        ];
        f.field_selection = q.contains_key("accounting_field_selection_id");
        Ok(f)
    }

    pub(super) fn matches(&self, b: &RampBillRec) -> bool {
        let field = |k: &str| -> String {
            match k {
                "entity_id" => b.entity_id.clone(),
                "vendor_id" => b.vendor_id.clone(),
                "approval_status" => "APPROVED".into(),
                "payment_method" => b.payment_method.clone(),
                "payment_status" => b.status.as_str().into(),
                _ => sync_status(b).into(),
            }
        };
        self.eq.iter().all(|(k, v)| field(k) == *v)
            && self.archived.is_none_or(|a| a == b.archived_at.is_some())
            // The world's accounting sync is automatic: nothing waits for a
            // manual sync.
            && self.sync_ready.is_none_or(|r| !r)
            && within(Some(b.created_at), &self.created)
            && within(b.paid_at, &self.paid)
            && within(Some(b.due_at), &self.due)
            && within(Some(b.issued_at), &self.issued)
            && within(Some(b.amount_cents), &self.amount)
            // The world's bills have no accounting field selections.
            && !self.field_selection
    }
}

fn sync_status(b: &RampBillRec) -> &'static str {
    if b.status == RampStatus::Paid && b.manual_payment_method.is_none() {
        "BILL_AND_PAYMENT_SYNCED"
    } else {
        "NOT_SYNCED"
    }
}

fn not_found() -> Response {
    err(
        StatusCode::NOT_FOUND,
        "DEVELOPER_0404",
        "Bill not found",
        None,
    )
}

/// The fields `PATCH` may change.
const PATCHABLE: [&str; 7] = [
    "memo",
    "invoice_number",
    "due_at",
    "issued_at",
    "posting_date",
    "line_items",
    "payment_details",
];

/// `PATCH /developer/v1/bills/{id}`: update an open bill. A paid or
/// archived bill cannot change; an unknown field is refused, not ignored.
pub(super) async fn patch(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(bi) = st.clients[ci].ramp.bills.iter().position(|b| b.id == id) else {
        return not_found();
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return *bad("body", "Request body must be a JSON object.");
    };
    let today = sb.inner.clock.today();
    let c = &st.clients[ci];
    let mut bill = c.ramp.bills[bi].clone();
    match apply_patch(c, &mut bill, &Value::Object(fields), today) {
        Ok(()) => {}
        Err(r) => return *r,
    }
    st.clients[ci].ramp.bills[bi] = bill.clone();
    sb.persist_logged(&st).await;
    Json(render_bill(&st.clients[ci], &bill, true)).into_response()
}

fn apply_patch(
    c: &SimClient,
    bill: &mut RampBillRec,
    v: &Value,
    today: NaiveDate,
) -> Result<(), Rejection> {
    let fields = v.as_object().map(|o| o.keys()).into_iter().flatten();
    for k in fields {
        if !PATCHABLE.contains(&k.as_str()) {
            return Err(bad(k, "Unknown field."));
        }
    }
    if bill.archived_at.is_some() {
        return Err(bad("id", "Archived bills cannot be updated."));
    }
    if bill.status == RampStatus::Paid {
        return Err(bad("id", "Paid bills cannot be updated."));
    }
    // Money already sent cannot change amount or arrival date.
    if bill.debited_on.is_some()
        && (v.get("line_items").is_some() || v.get("payment_details").is_some())
    {
        return Err(bad(
            "id",
            "The payment is already in flight and cannot be changed.",
        ));
    }
    if let Some(m) = v.get("memo") {
        bill.memo = match m {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(invalid("memo", "Not a valid string.")),
        };
    }
    if v.get("invoice_number").is_some() {
        bill.invoice_number = str_field(v, "invoice_number")?.to_owned();
    }
    if v.get("due_at").is_some() {
        bill.due_at = date_field(v, "due_at")?;
    }
    if v.get("issued_at").is_some() {
        bill.issued_at = date_field(v, "issued_at")?;
    }
    if v.get("posting_date").is_some() {
        bill.posting_date = optional_date(v, "posting_date")?;
    }
    if v.get("line_items").is_some() {
        let (lines, total) = parse_lines(v, &c.currency)?;
        bill.line_items = lines;
        bill.amount_cents = total;
    }
    if let Some(d) = v.get("payment_details") {
        if !d.is_object() {
            return Err(invalid("payment_details", "Not a valid object."));
        }
        if let Some(k) = d
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .find(|k| k.as_str() != "payment_arrival_date")
        {
            return Err(bad(k, "Unknown field."));
        }
        if d.get("payment_arrival_date").is_some() {
            let arrival = arrival_date(d, today)?;
            bill.payment_arrival_date = arrival;
        }
    }
    Ok(())
}

/// `DELETE /developer/v1/bills/{id}`: archive (204). The payment is
/// cancelled (the engine never pays an archived bill); a paid bill cannot
/// be archived, nor one archived already.
pub(super) async fn archive(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    let Some(bill) = st.clients[ci].ramp.bills.iter_mut().find(|b| b.id == id) else {
        return not_found();
    };
    if bill.status == RampStatus::Paid {
        return *bad("id", "Paid bills cannot be deleted.");
    }
    if bill.archived_at.is_some() {
        return *bad("id", "Bill is already archived.");
    }
    // Ramp cancels an in-flight payment only "where it can": once the ACH
    // debit has left the bank it cannot.
    if bill.debited_on.is_some() {
        return *bad(
            "id",
            "The payment is already in flight and cannot be cancelled.",
        );
    }
    bill.archived_at = Some(now);
    sb.persist_logged(&st).await;
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn unknown_and_malformed_filters_are_refused() {
        for bad in [
            q(&[("remote_id", "x")]),
            q(&[("payment_status", "open")]),
            q(&[("is_archived", "yes")]),
            q(&[("min_amount", "ten")]),
            q(&[("from_due_date", "28/11/2026")]),
        ] {
            assert!(ListFilter::parse(&bad, "USD").is_err(), "{bad:?}");
        }
        assert!(ListFilter::parse(&q(&[("min_amount", "10.50")]), "USD").is_ok());
    }

    #[test]
    fn amount_bounds_are_decimal_major_units() {
        let f = ListFilter::parse(
            &q(&[("min_amount", "100"), ("max_amount", "200.00")]),
            "USD",
        )
        .unwrap();
        assert_eq!(f.amount, [Some(10_000), Some(20_000)]);
    }
}

#[cfg(test)]
mod http_tests;
