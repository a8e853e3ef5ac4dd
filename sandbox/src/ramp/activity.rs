//! Ramp's read-only lists the world seeds but RowCol does not drive: draft
//! bills (`/bills/drafts`), card transactions (`/transactions`) and
//! statement payments (`/transfers`), rails.md §2.4–2.5.
//!
//! They are drawn on each read from a [`Prng`] of their own, seeded by the
//! world seed and the business, so they are the same on every read and for
//! every run of a seed, and `generate_sized`'s sequence is untouched. Their
//! times hang off the business's creation, not the clock: a seed's lists do
//! not move with the day a test runs.

use super::render::{currency_amount, paginate};
use super::{absent, authed_for, invalid, list_url, only_params, parse_time, Rejection};
use crate::sim_state::*;
use crate::wire::minor_exponent;
use crate::world::Prng;
use crate::Sandbox;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/developer/v1/bills/drafts", get(drafts))
        .route("/developer/v1/bills/drafts/{id}", get(draft))
        .route("/developer/v1/transactions", get(transactions))
        .route("/developer/v1/transactions/{id}", get(transaction))
        .route("/developer/v1/transfers", get(transfers))
}

/// The business's own generator: FNV-1a of its id, mixed with the seed.
fn rng(seed: u64, c: &SimClient, what: &str) -> Prng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in c.ramp.business_id.bytes().chain(what.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Prng::new(seed ^ h)
}

/// Times of seeded activity: within the business's first 300–400 days.
fn at(c: &SimClient, day: i64, minute: i64) -> DateTime<Utc> {
    let t = c.qbo.created_at + Duration::days(300 + day) + Duration::minutes(minute);
    // Whole seconds, as rendered: a filter on a rendered time must match it.
    t.with_nanosecond(0).unwrap_or(t)
}

fn page(items: Vec<(String, Value)>, q: &HashMap<String, String>, url: &str) -> Response {
    match paginate(items, q, url) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---- draft bills ----

/// rails.md documents no draft schema beyond "drafts (from OCR or invoice
/// upload)": a draft renders the Bill fields an upload would fill.
fn seeded_drafts(seed: u64, c: &SimClient) -> Vec<(String, Value)> {
    let mut r = rng(seed, c, "drafts");
    let vendors: Vec<&RampVendorRec> = c.ramp.vendors.iter().filter(|v| !v.via_api).collect();
    (0..3)
        .map(|i| {
            let id = r.uuid();
            let v = vendors.get(r.below(vendors.len() as u64) as usize);
            let cents = r.range(5_000, 250_000);
            let created = at(c, 80 + i * 3, r.range(0, 600));
            let issued = created.date_naive() - Duration::days(r.range(1, 5));
            let draft = json!({
                "id": id,
                "created_at": time(created),
                "entity_id": c.ramp.entity.id,
                "invoice_number": format!("DRAFT-{}", r.digits(5)),
                "amount": currency_amount(cents, &c.currency),
                "issued_at": issued.to_string(),
                "due_at": (issued + Duration::days(30)).to_string(),
                "memo": null,
                "vendor": v.map(|v| json!({"id": v.id, "name": v.name})),
                "line_items": [{"amount": currency_amount(cents, &c.currency), "memo": null}],
            });
            (id, draft)
        })
        .collect()
}

async fn drafts(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "bills:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = only_params(&q, &[]) {
        return *r;
    }
    page(
        seeded_drafts(st.seed, &st.clients[ci]),
        &q,
        &list_url(&sb, "bills/drafts"),
    )
}

async fn draft(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "bills:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match seeded_drafts(st.seed, &st.clients[ci])
        .into_iter()
        .find(|(d, _)| *d == id)
    {
        Some((_, v)) => Json(v).into_response(),
        None => absent("Draft bill"),
    }
}

// ---- card transactions ----

const STATES: [&str; 7] = [
    "ALL",
    "CLEARED",
    "COMPLETION",
    "DECLINED",
    "ERROR",
    "PENDING",
    "PENDING_INITIATION",
];
const TXN_SYNC: [&str; 3] = ["NOT_SYNC_READY", "SYNC_READY", "SYNCED"];
const MERCHANTS: [&str; 8] = [
    "Delta Air Lines",
    "Amazon Web Services",
    "Staples",
    "Uber",
    "Zoom Video",
    "Hilton Hotels",
    "FedEx",
    "Adobe",
];

struct Txn {
    id: String,
    cents: i64,
    state: &'static str,
    merchant: &'static str,
    at: DateTime<Utc>,
    settled: Option<DateTime<Utc>>,
    sync: &'static str,
}

impl Txn {
    /// The last change: settlement, or the swipe itself.
    fn updated(&self) -> DateTime<Utc> {
        self.settled.unwrap_or(self.at)
    }
}

/// 25 transactions: more than a default page, mostly cleared, with a few
/// pending, declined and failed ones.
fn seeded_transactions(seed: u64, c: &SimClient) -> Vec<Txn> {
    let mut r = rng(seed, c, "transactions");
    (0..25)
        .map(|i| {
            let id = r.uuid();
            let state = match r.below(10) {
                0 => "DECLINED",
                1 => "PENDING",
                2 if i % 2 == 0 => "ERROR",
                _ => "CLEARED",
            };
            let at = at(c, i * 3, r.range(0, 1_000));
            let settled = (state == "CLEARED").then(|| at + Duration::days(r.range(1, 3)));
            let sync = match (state, r.below(2)) {
                ("CLEARED", 0) => "SYNCED",
                ("CLEARED", _) => "SYNC_READY",
                _ => "NOT_SYNC_READY",
            };
            Txn {
                id,
                cents: r.range(500, 90_000),
                state,
                merchant: MERCHANTS[r.below(MERCHANTS.len() as u64) as usize],
                at,
                settled,
                sync,
            }
        })
        .collect()
}

/// The legacy decimal `amount` (a JSON number, major units) Ramp still
/// sends for transactions; built from the integer minor units.
fn legacy_amount(cents: i64, currency: &str) -> Value {
    let major = cents as f64 / 10f64.powi(minor_exponent(currency) as i32);
    serde_json::Number::from_f64(major).map_or(Value::Null, Value::Number)
}

fn render_txn(c: &SimClient, t: &Txn) -> Value {
    json!({
        "id": t.id,
        "amount": legacy_amount(t.cents, &c.currency),
        "currency_code": c.currency,
        "original_transaction_amount": currency_amount(t.cents, &c.currency),
        "merchant_name": t.merchant,
        "settlement_date": t.settled.map(time),
        "user_transaction_time": time(t.at),
        "state": t.state,
        "sync_status": t.sync,
        "entity_id": c.ramp.entity.id,
    })
}

struct TxnFilter {
    state: Option<String>,
    sync: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    updated_after: Option<DateTime<Utc>>,
}

/// A date-time filter, or a date (its midnight, UTC).
fn instant(q: &HashMap<String, String>, k: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    q.get(k)
        .map(|t| {
            parse_time(t)
                .or_else(|| {
                    NaiveDate::parse_from_str(t, "%Y-%m-%d")
                        .ok()
                        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                })
                .ok_or_else(|| invalid(k, "Not a valid datetime."))
        })
        .transpose()
}

impl TxnFilter {
    fn parse(q: &HashMap<String, String>) -> Result<Self, Rejection> {
        only_params(
            q,
            &[
                "state",
                "from_date",
                "to_date",
                "sync_status",
                "updated_after",
            ],
        )?;
        let choice = |k: &str, allowed: &[&str]| match q.get(k) {
            Some(v) if !allowed.contains(&v.as_str()) => Err(invalid(k, "Not a valid choice.")),
            v => Ok(v.cloned()),
        };
        Ok(TxnFilter {
            state: choice("state", &STATES)?,
            sync: choice("sync_status", &TXN_SYNC)?,
            from: instant(q, "from_date")?,
            to: instant(q, "to_date")?,
            updated_after: instant(q, "updated_after")?,
        })
    }

    fn matches(&self, t: &Txn) -> bool {
        let state = match self.state.as_deref() {
            None => t.state != "DECLINED",
            Some("ALL") => true,
            Some(s) => t.state == s,
        };
        state
            && self.sync.as_deref().is_none_or(|s| t.sync == s)
            && self.from.is_none_or(|f| t.at >= f)
            && self.to.is_none_or(|to| t.at <= to)
            && self.updated_after.is_none_or(|u| t.updated() > u)
    }
}

async fn transactions(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "transactions:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let filter = match TxnFilter::parse(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let c = &st.clients[ci];
    let items = seeded_transactions(st.seed, c)
        .iter()
        .filter(|t| filter.matches(t))
        .map(|t| (t.id.clone(), render_txn(c, t)))
        .collect();
    page(items, &q, &list_url(&sb, "transactions"))
}

async fn transaction(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "transactions:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    match seeded_transactions(st.seed, c).iter().find(|t| t.id == id) {
        Some(t) => Json(render_txn(c, t)).into_response(),
        None => absent("Transaction"),
    }
}

// ---- transfers (statement payments) ----

/// Six monthly statement payments: the latest still in flight, the rest
/// completed, one of them returned by the bank once.
fn seeded_transfers(seed: u64, c: &SimClient) -> Vec<(String, Value)> {
    let mut r = rng(seed, c, "transfers");
    (0..6)
        .map(|i| {
            let id = r.uuid();
            let status = match i {
                5 => "PROCESSING_BY_ODFI",
                2 => "RETURNED_BY_RDFI",
                _ => "COMPLETED",
            };
            let t = json!({
                "id": id,
                "amount": currency_amount(r.range(100_000, 2_000_000), &c.currency),
                "status": status,
                "created_at": time(at(c, i * 30, r.range(0, 600))),
                "entity_id": c.ramp.entity.id,
            });
            (id, t)
        })
        .collect()
}

async fn transfers(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "transfers:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = only_params(&q, &[]) {
        return *r;
    }
    page(
        seeded_transfers(st.seed, &st.clients[ci]),
        &q,
        &list_url(&sb, "transfers"),
    )
}

#[cfg(test)]
#[path = "activity/http_tests.rs"]
mod http_tests;
