//! Webhook endpoints (`/v1/webhook_endpoints`: create, retrieve, list,
//! update, delete) and what queues their deliveries. The `whsec_` secret
//! is shown only in the create response, as Stripe documents. Every event
//! made on an account after an endpoint exists goes to each enabled
//! endpoint of that account listing its type (or `*`), through the
//! sandbox's one webhook queue (`engine::deliver_due`, with the webhook
//! faults): a POST of the event JSON signed `Stripe-Signature:
//! t=<wall-clock unix secs at send>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`.
//! Only a 2xx counts; a test-mode delivery is retried 3 times
//! ([`RETRY_AFTER`], sandbox clock), then dead-lettered (`failed`).

use super::call::{merge_metadata, Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::page;
use crate::sim_state::{SimState, WebhookRail, WebhookRec};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The delays before the retries of a test-mode delivery, after the 1st,
/// 2nd and 3rd failed attempts; after the 4th it is dead-lettered.
pub(crate) const RETRY_AFTER: [i64; 3] = [3600, 2 * 3600, 4 * 3600];

/// The delay before the next attempt after `attempts` failed ones, or
/// `None`: no more retries.
pub(crate) fn backoff(attempts: u32) -> Option<Duration> {
    let i = usize::try_from(attempts).ok()?.checked_sub(1)?;
    RETRY_AFTER.get(i).map(|s| Duration::seconds(*s))
}

/// The event types an endpoint may list (those the simulator makes, and
/// Stripe's other common ones for these resources).
pub const EVENT_TYPES: &[&str] = &[
    "balance.available",
    "charge.failed",
    "charge.refunded",
    "charge.succeeded",
    "charge.updated",
    "customer.created",
    "customer.deleted",
    "customer.updated",
    "invoice.created",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.marked_uncollectible",
    "invoice.overdue",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.sent",
    "invoice.updated",
    "invoice.voided",
    "invoiceitem.created",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "payout.canceled",
    "payout.created",
    "payout.failed",
    "payout.paid",
    "payout.reconciliation_completed",
    "payout.updated",
    "reporting.report_run.failed",
    "reporting.report_run.succeeded",
];

/// `Stripe-Signature` for `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn random_secret() -> String {
    let raw: Vec<u8> = (0..24).map(|_| rand::random::<u8>()).collect();
    format!("whsec_{}", hex::encode(raw))
}

/// `enabled_events[]`: required on create, non-empty, each a known type or `*`.
fn enabled_events(c: &Call, required: bool) -> Result<Option<Vec<String>>, StripeError> {
    let Some(v) = c.params.get("enabled_events") else {
        return if required {
            Err(StripeError::missing("enabled_events"))
        } else {
            Ok(None)
        };
    };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::String(s) if !s.is_empty() => vec![v],
        _ => vec![],
    };
    if items.is_empty() {
        return Err(StripeError::missing("enabled_events"));
    }
    let mut out = Vec::new();
    for (i, t) in items.into_iter().enumerate() {
        match t.as_str() {
            Some(t) if t == "*" || EVENT_TYPES.contains(&t) => out.push(t.to_owned()),
            _ => {
                return Err(StripeError::invalid(
                    &format!(
                        "Invalid enabled_events[{i}]: must be one of *, {}",
                        EVENT_TYPES.join(", ")
                    ),
                    Some(&format!("enabled_events[{i}]")),
                ))
            }
        }
    }
    out.dedup();
    Ok(Some(out))
}

fn url(c: &Call, required: bool) -> Result<Option<String>, StripeError> {
    let u = if required {
        Some(c.req_str("url")?)
    } else {
        c.str("url")?
    };
    match u {
        Some(u)
            if !reqwest::Url::parse(&u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")) =>
        {
            Err(StripeError::invalid(
                &format!("Invalid URL: {u}. URLs must begin with http:// or https://"),
                Some("url"),
            ))
        }
        u => Ok(u),
    }
}

fn find_mut<'a>(c: &'a mut Call) -> Result<&'a mut Value, StripeError> {
    let id = c.id().to_owned();
    AccountData::find_mut(&mut c.acct.webhook_endpoints, &id)
        .ok_or_else(|| StripeError::no_such("webhook_endpoint", &id, "id"))
}

pub(crate) fn create(c: &mut Call) -> Res {
    c.allow(&[
        "url",
        "enabled_events",
        "description",
        "metadata",
        "api_version",
    ])?;
    let url = url(c, true)?;
    let events = enabled_events(c, true)?;
    let metadata = c.metadata()?.unwrap_or_default();
    let id = c.acct.id("we_");
    let secret = random_secret();
    let ep = json!({
        "id": id, "object": "webhook_endpoint", "api_version": c.str("api_version")?,
        "application": null, "created": c.ts(), "description": c.str("description")?,
        "enabled_events": events, "livemode": false, "metadata": metadata,
        "status": "enabled", "url": url,
    });
    c.acct.webhook_endpoints.push(ep.clone());
    c.acct.webhook_secrets.insert(id, secret.clone());
    let mut out = ep;
    out["secret"] = json!(secret);
    Ok(out)
}

pub(crate) fn retrieve(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.webhook_endpoints, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("webhook_endpoint", c.id(), "id"))
}

pub(crate) fn list(c: &mut Call) -> Res {
    c.allow(&["limit", "starting_after", "ending_before"])?;
    let items = c.acct.webhook_endpoints.iter().collect();
    page(c, items, "/v1/webhook_endpoints")
}

pub(crate) fn update(c: &mut Call) -> Res {
    c.allow(&[
        "url",
        "enabled_events",
        "description",
        "metadata",
        "disabled",
    ])?;
    let url = url(c, false)?;
    let events = enabled_events(c, false)?;
    let disabled = c.bool("disabled")?;
    let description = c.str("description")?;
    let metadata = c.metadata()?;
    let ep = find_mut(c)?;
    if let Some(u) = url {
        ep["url"] = json!(u);
    }
    if let Some(e) = events {
        ep["enabled_events"] = json!(e);
    }
    if let Some(d) = disabled {
        ep["status"] = json!(if d { "disabled" } else { "enabled" });
    }
    if let Some(d) = description {
        ep["description"] = json!(d);
    }
    if let Some(m) = metadata {
        merge_metadata(&mut ep["metadata"], m);
    }
    Ok(ep.clone())
}

pub(crate) fn delete(c: &mut Call) -> Res {
    c.allow(&[])?;
    let id = c.id().to_owned();
    let before = c.acct.webhook_endpoints.len();
    c.acct.webhook_endpoints.retain(|e| e["id"] != id.as_str());
    if c.acct.webhook_endpoints.len() == before {
        return Err(StripeError::no_such("webhook_endpoint", &id, "id"));
    }
    c.acct.webhook_secrets.remove(&id);
    Ok(json!({"id": id, "object": "webhook_endpoint", "deleted": true}))
}

/// Where a queued delivery goes now: the endpoint's URL and secret, or
/// `None` if it was deleted or disabled (then it is not sent).
pub(crate) fn target(st: &SimState, account: &str, endpoint: &str) -> Option<(String, String)> {
    let acct = st.stripe.accounts.get(account)?;
    let ep = AccountData::find(&acct.webhook_endpoints, endpoint)?;
    if ep["status"] != "enabled" {
        return None;
    }
    let secret = acct.webhook_secrets.get(endpoint)?.clone();
    Some((ep["url"].as_str()?.to_owned(), secret))
}

/// Queue deliveries of every event made since the last look
/// (`AccountData::events_noted`) to the matching enabled endpoints, first
/// due `now`. Returns how many were queued.
pub(crate) fn note_events(st: &mut SimState, now: DateTime<Utc>) -> usize {
    let mut queued = Vec::new();
    let mut moved = false;
    for (acct_id, acct) in st.stripe.accounts.iter_mut() {
        let from = acct.events_noted.min(acct.events.len());
        if from == acct.events.len() {
            continue;
        }
        for e in acct.events[from..].iter_mut() {
            let kind = e["type"].as_str().unwrap_or("").to_owned();
            let endpoints: Vec<String> = acct
                .webhook_endpoints
                .iter()
                .filter(|ep| {
                    ep["status"] == "enabled"
                        && ep["enabled_events"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|t| t == "*" || *t == kind.as_str()))
                })
                .map(|ep| ep["id"].as_str().unwrap_or("").to_owned())
                .collect();
            if endpoints.is_empty() {
                continue;
            }
            // Not yet delivered to these (the body sent carries it too).
            e["pending_webhooks"] = json!(endpoints.len());
            for ep in endpoints {
                queued.push((
                    acct_id.clone(),
                    e["id"].as_str().unwrap_or("").to_owned(),
                    ep,
                    e.to_string(),
                ));
            }
        }
        acct.events_noted = acct.events.len();
        moved = true;
    }
    if moved {
        st.stripe_changes += 1;
    }
    let n = queued.len();
    for (account, event_id, endpoint, body) in queued {
        let (status, next_attempt_at) = crate::engine::injected_fate(st, now);
        st.webhooks.push(WebhookRec {
            event_id,
            business_id: account,
            body,
            attempts: 0,
            next_attempt_at,
            status,
            last_http_status: None,
            subscription_id: Some(endpoint),
            in_flight: false,
            rail: WebhookRail::Stripe,
            item_id: None,
            url: None,
        });
    }
    n
}

/// A delivery of `event_id` got its 2xx: one fewer pending webhook on the
/// event (Stripe counts those not yet delivered successfully).
pub(crate) fn delivered(st: &mut SimState, account: &str, event_id: &str) {
    let Some(acct) = st.stripe.accounts.get_mut(account) else {
        return;
    };
    if let Some(e) = AccountData::find_mut(&mut acct.events, event_id) {
        let n = e["pending_webhooks"].as_u64().unwrap_or(0);
        e["pending_webhooks"] = json!(n.saturating_sub(1));
        st.stripe_changes += 1;
    }
}
