//! The payment engine (what Ramp does on the arrival date, plus the effects
//! Ramp's accounting sync and the bank produce) and Ramp webhook delivery.

use crate::state::*;
use crate::Sandbox;
use app::ssr::clock::Clock;
use chrono::{Duration, NaiveTime};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 10;

/// When a paid bill's money moves on its arrival date (15:00 UTC), checked at
/// compile time.
const THREE_PM: NaiveTime = match NaiveTime::from_hms_opt(15, 0, 0) {
    Some(t) => t,
    None => panic!("a valid time"),
};

/// Hex HMAC-SHA256 of the exact body bytes, as Ramp signs webhooks.
pub fn sign_ramp_webhook(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Backoff before attempt `attempts + 1`: 30 s, 1 min, 2 min, … capped at
/// 6 h, measured on the sandbox clock.
fn backoff(attempts: u32) -> Duration {
    let secs = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(20));
    Duration::seconds(secs.min(6 * 3600))
}

/// Pay every OPEN Ramp bill whose arrival date has come. Returns how many.
pub fn pay_due_bills(st: &mut SimState, clock: &Clock) -> usize {
    let today = clock.today();
    let now = clock.now();
    let mut paid = 0;
    for ci in 0..st.clients.len() {
        for bi in 0..st.clients[ci].ramp.bills.len() {
            let b = &st.clients[ci].ramp.bills[bi];
            if b.status != RampStatus::Open || b.payment_arrival_date > today {
                continue;
            }
            let seq = st.next_seq();
            let client = &mut st.clients[ci];
            let bill = &mut client.ramp.bills[bi];
            let arrival = bill.payment_arrival_date;
            let at_three = arrival.and_time(THREE_PM).and_utc();
            bill.status = RampStatus::Paid;
            bill.paid_at = Some(at_three.min(now));
            bill.payment_date = Some(arrival);
            bill.trace_id = Some(format!("0210000{seq:08}"));
            let bill = bill.clone();
            let vendor = client
                .ramp
                .vendors
                .iter()
                .find(|v| v.id == bill.vendor_id)
                .cloned();
            paid += 1;

            // Ramp's accounting sync: a BillPayment in QBO.
            if st.faults.qbo_skip_next > 0 {
                st.faults.qbo_skip_next -= 1;
            } else if let Some(v) = &vendor {
                let extra = if st.faults.qbo_amount_mismatch_next > 0 {
                    st.faults.qbo_amount_mismatch_next -= 1;
                    100
                } else {
                    0
                };
                if st.faults.qbo_late_next > 0 {
                    st.faults.qbo_late_next -= 1;
                    st.qbo_late.push(LateQboRecord {
                        client: ci,
                        due: today + Duration::days(QBO_LATE_DAYS),
                        bill: bill.clone(),
                        vendor: v.clone(),
                        extra_cents: extra,
                    });
                } else {
                    record_in_qbo(&mut st.clients[ci].qbo, &bill, v, extra, now);
                }
            }

            // The bank: an outflow on the Plaid item.
            let vname = vendor.as_ref().map(|v| v.name.as_str()).unwrap_or("VENDOR");
            let txn_id = format!("rampbp{}", bill.id.replace('-', ""));
            let pending = st.faults.plaid_debits_pending_first;
            let client = &mut st.clients[ci];
            client.plaid.txns.push(PlaidTxnRec {
                id: txn_id,
                amount_cents: bill.amount_cents,
                date: arrival,
                name: format!("RAMP BILLPAY {}", vname.to_uppercase()),
                pending,
                pending_transaction_id: None,
                removal: false,
            });
            client.plaid.account.available_cents -= bill.amount_cents;
            // A pending debit holds `available`; `current` moves when it posts.
            if !pending {
                client.plaid.account.current_cents -= bill.amount_cents;
            }

            // And the bills.paid webhook, to every subscription that wants it.
            let business_id = client.ramp.business_id.clone();
            queue_event(st, &business_id, "bills.paid", &bill.id, now);
        }
    }
    paid
}

/// Queue `event_type` about `object_id` to every active subscription of the
/// business that lists the type (one event id, one delivery per
/// subscription). The webhook faults (drop, delay) apply per delivery. No
/// subscription, no delivery.
pub(crate) fn queue_event(
    st: &mut SimState,
    business_id: &str,
    event_type: &str,
    object_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) {
    let subs: Vec<String> = st
        .ramp_webhook_subs
        .subs
        .iter()
        .filter(|s| {
            s.business_id == business_id
                && s.status == "active"
                && s.event_types.iter().any(|t| t == event_type)
        })
        .map(|s| s.id.clone())
        .collect();
    if subs.is_empty() {
        return;
    }
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "business_id": business_id,
        "object": {"id": object_id},
    })
    .to_string();
    for sub in subs {
        let status = if st.faults.webhook_drop_next > 0 {
            st.faults.webhook_drop_next -= 1;
            WebhookStatus::Dropped
        } else {
            WebhookStatus::Pending
        };
        // Injected: queued a day late, behind events that come after it.
        let next_attempt_at = if st.faults.webhook_delay_next > 0 {
            st.faults.webhook_delay_next -= 1;
            now + Duration::days(1)
        } else {
            now
        };
        st.webhooks.push(WebhookRec {
            event_id: event_id.clone(),
            business_id: business_id.to_owned(),
            body: body.clone(),
            attempts: 0,
            next_attempt_at,
            status,
            last_http_status: None,
            subscription_id: Some(sub),
            in_flight: false,
        });
    }
}

/// How many days [`Faults::qbo_late_next`](crate::Faults) holds a payment
/// back from QBO.
const QBO_LATE_DAYS: i64 = 3;

/// Record in QBO the paid bills whose accounting sync was held back and
/// whose day has come. Returns how many.
pub fn record_late_in_qbo(st: &mut SimState, now: chrono::DateTime<chrono::Utc>) -> usize {
    let today = now.date_naive();
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut st.qbo_late)
        .into_iter()
        .partition(|r| r.due <= today);
    st.qbo_late = later;
    for r in &due {
        if let Some(c) = st.clients.get_mut(r.client) {
            record_in_qbo(&mut c.qbo, &r.bill, &r.vendor, r.extra_cents, now);
        }
    }
    due.len()
}

/// Resolve every pending debit dated before `today`: it posts (a new
/// transaction, dated the day after, carrying `pending_transaction_id`) or,
/// when `plaid_drop_pending_next` says so, falls off (a removal entry, the
/// hold released). Returns how many were resolved.
pub fn settle_pending_debits(st: &mut SimState, today: chrono::NaiveDate) -> usize {
    let mut settled = 0;
    for ci in 0..st.clients.len() {
        let log = &st.clients[ci].plaid.txns;
        let resolved: std::collections::HashSet<&str> = log
            .iter()
            .filter_map(|t| {
                if t.removal {
                    Some(t.id.as_str())
                } else {
                    t.pending_transaction_id.as_deref()
                }
            })
            .collect();
        let due: Vec<PlaidTxnRec> = log
            .iter()
            .filter(|t| {
                t.pending && !t.removal && t.date < today && !resolved.contains(t.id.as_str())
            })
            .cloned()
            .collect();
        for p in due {
            let drop = st.faults.plaid_drop_pending_next > 0;
            if drop {
                st.faults.plaid_drop_pending_next -= 1;
            }
            let item = &mut st.clients[ci].plaid;
            if drop {
                item.account.available_cents += p.amount_cents;
                item.txns.push(PlaidTxnRec { removal: true, ..p });
            } else {
                item.account.current_cents -= p.amount_cents;
                item.txns.push(PlaidTxnRec {
                    id: format!("{}posted", p.id),
                    date: p.date + Duration::days(1),
                    pending: false,
                    pending_transaction_id: Some(p.id.clone()),
                    removal: false,
                    ..p
                });
            }
            settled += 1;
        }
    }
    settled
}

/// Record a Ramp payment as a QBO BillPayment against the open bill with the
/// same vendor and DocNumber == invoice number (if there is one).
fn record_in_qbo(
    realm: &mut QboRealm,
    bill: &RampBillRec,
    vendor: &RampVendorRec,
    extra_cents: i64,
    now: chrono::DateTime<chrono::Utc>,
) {
    let Some(qi) = realm.bills.iter().position(|b| {
        b.vendor_id == vendor.accounting_vendor_remote_id
            && b.doc_number == bill.invoice_number
            && b.balance_cents > 0
    }) else {
        return;
    };
    let amount = bill.amount_cents + extra_cents;
    let bank = realm
        .account_named("Checking")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let id = realm.take_id();
    let qb = &mut realm.bills[qi];
    qb.balance_cents = (qb.balance_cents - amount).max(0);
    qb.sync_token += 1;
    qb.updated = now;
    let bill_id = qb.id.clone();
    realm.bill_payments.push(QboBillPayment {
        id,
        vendor_id: vendor.accounting_vendor_remote_id.clone(),
        txn_date: bill.payment_arrival_date,
        total_cents: amount,
        bank_account_id: bank,
        private_note: Some(format!("Ramp bill {} ({})", bill.id, bill.invoice_number)),
        doc_number: None,
        lines: vec![QboPaymentLine {
            amount_cents: amount,
            bill_id,
        }],
        sync_token: 0,
        created: now,
        updated: now,
    });
}

enum Outcome {
    Delivered(u16),
    Retry(Option<u16>),
    Fail(u16),
}

/// Where and how one delivery goes.
struct Target {
    url: String,
    secret: String,
    extra_headers: Vec<(String, String)>,
}

/// The headers the simulator sets itself; `additional_headers` cannot
/// replace them.
const OWN_HEADERS: [&str; 4] = [
    "content-type",
    "x-ramp-webhook-signature",
    "x-ramp-signature",
    "x-ramp-webhook-id",
];

async fn send_once(sb: &Sandbox, target: &Target, body: &str, event_id: &str) -> Outcome {
    let sig = sign_ramp_webhook(target.secret.as_bytes(), body.as_bytes());
    let mut req = sb.inner.http.post(&target.url);
    for (k, v) in &target.extra_headers {
        if !OWN_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k, v);
        }
    }
    let res = req
        .header("content-type", "application/json")
        .header("X-Ramp-Webhook-Signature", &sig)
        .header("X-Ramp-Signature", &sig)
        .header("X-Ramp-Webhook-ID", event_id)
        .body(body.to_owned())
        .send()
        .await;
    match res {
        Ok(r) => {
            let s = r.status().as_u16();
            match s {
                200..=299 => Outcome::Delivered(s),
                429 | 500..=599 => Outcome::Retry(Some(s)),
                _ => Outcome::Fail(s),
            }
        }
        Err(_) => Outcome::Retry(None),
    }
}

/// Deliver every pending webhook whose time has come, each to its
/// subscription's endpoint signed with its secret (deliveries queued before
/// subscriptions existed: the configured URL and secret). A delivery whose
/// subscription was deleted fails without being sent; one whose endpoint is
/// empty stays queued. The state lock is not held while HTTP is awaited
/// (RowCol's handler may run in this process).
pub async fn deliver_due(sb: &Sandbox) -> usize {
    let now = sb.inner.clock.now();
    let cfg = &sb.inner.config;
    let (due, duplicate) = {
        let mut guard = sb.inner.state.lock().await;
        let st = &mut *guard;
        let mut due = Vec::new();
        let mut orphaned = false;
        for w in st.webhooks.iter_mut() {
            if w.status != WebhookStatus::Pending || w.in_flight || w.next_attempt_at > now {
                continue;
            }
            let target = match &w.subscription_id {
                None => Some(Target {
                    url: cfg.ramp_webhook_url.clone(),
                    secret: cfg.ramp_webhook_secret.expose().to_owned(),
                    extra_headers: Vec::new(),
                }),
                Some(id) => st
                    .ramp_webhook_subs
                    .subs
                    .iter()
                    .find(|s| s.id == *id)
                    .map(|s| Target {
                        url: s.endpoint_url.clone(),
                        secret: s.secret.clone(),
                        extra_headers: s.additional_headers.clone(),
                    }),
            };
            match target {
                None => {
                    w.status = WebhookStatus::Failed;
                    orphaned = true;
                }
                Some(t) if t.url.is_empty() => {}
                Some(t) => {
                    w.in_flight = true;
                    due.push((
                        w.event_id.clone(),
                        w.subscription_id.clone(),
                        w.body.clone(),
                        t,
                    ));
                }
            }
        }
        if st.faults.webhook_reorder {
            due.reverse();
        }
        if due.is_empty() && orphaned {
            sb.persist_logged(st).await;
        }
        (due, st.faults.webhook_duplicate)
    };
    if due.is_empty() {
        return 0;
    }
    let mut outcomes = Vec::new();
    for (event_id, sub, body, target) in &due {
        let mut out = send_once(sb, target, body, event_id).await;
        if duplicate {
            if let Outcome::Delivered(_) = out {
                out = send_once(sb, target, body, event_id).await;
                if !matches!(out, Outcome::Delivered(_)) {
                    // The first copy got through; that is what counts.
                    out = Outcome::Delivered(200);
                }
            }
        }
        outcomes.push((event_id.clone(), sub.clone(), out));
    }
    let mut delivered = 0;
    let mut st = sb.inner.state.lock().await;
    let now = sb.inner.clock.now();
    for (event_id, sub, out) in outcomes {
        let Some(w) = st
            .webhooks
            .iter_mut()
            .find(|w| w.event_id == event_id && w.subscription_id == sub)
        else {
            continue;
        };
        w.in_flight = false;
        w.attempts += 1;
        match out {
            Outcome::Delivered(s) => {
                w.status = WebhookStatus::Delivered;
                w.last_http_status = Some(s);
                delivered += 1;
            }
            Outcome::Fail(s) => {
                w.status = WebhookStatus::Failed;
                w.last_http_status = Some(s);
            }
            Outcome::Retry(s) => {
                w.last_http_status = s;
                if w.attempts >= WEBHOOK_MAX_ATTEMPTS {
                    w.status = WebhookStatus::Failed;
                } else {
                    w.next_attempt_at = now + backoff(w.attempts);
                }
            }
        }
    }
    sb.persist_logged(&st).await;
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_signature_matches_the_rails_md_vector() {
        let body = r#"{"id":"a461a658-8d78-4e66-b1fd-9c818bcfea6b","type":"bills.paid","created_at":"2025-04-01T12:00:00Z","business_id":"945c7d8f-6c35-4d63-9c1c-79e67c9cee73","object":{"id":"3aa9eed1-c793-4b52-a502-e7f2a7e4c1b2"}}"#;
        assert_eq!(
            sign_ramp_webhook(b"ramp_test_secret", body.as_bytes()),
            "cd1bdbdf07af336b0320ed4bf7146453aa5b2b8c52a4ecb26435b225c5383132"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(30), Duration::hours(6));
    }
}
