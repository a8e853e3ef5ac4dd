//! QBO webhooks: what changed in a realm, told to the app's webhook URL.
//!
//! QBO's notifications are thin (entity name, id, operation, time) and
//! aggregated: Intuit collects a realm's changes and sends them one realm
//! at a time, so rapid changes may be merged. The simulator does the same
//! by looking, before each delivery round (`engine::deliver_due`), at every
//! realm's entities against what it saw last time ([`QboHookState`]): a new
//! (entity, id) is a `Create`, a new SyncToken an `Update` (a `Void` when an
//! Invoice, Payment or BillPayment went to zero, which is how voided ones
//! are kept), a vanished one a `Delete`. That catches every writer alike:
//! the QBO API, Ramp's accounting sync, the living world and the test kit.
//!
//! Each realm's changes become one delivery in the legacy format
//! (`{"eventNotifications":[{"realmId",dataChangeEvent:{entities:[…]}}]}`)
//! or, when [`crate::SandboxConfig::qbo_webhook_format`] says so, a JSON
//! array of CloudEvents, signed `intuit-signature` = base64(HMAC-SHA256(
//! verifier token, body)). Retries follow Intuit's schedule ([`backoff`]),
//! and a realm's next delivery waits until the one before it is
//! acknowledged. No webhook URL configured: nothing is queued.

use crate::sim_state::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;

/// Which payload format the simulated app has switched on (Intuit's
/// developer portal switches it per app).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QboWebhookFormat {
    /// `{"eventNotifications":[…]}`.
    #[default]
    Legacy,
    /// A JSON array of CloudEvents v1.0 (`qbo.bill.updated.v1`, …).
    CloudEvents,
}

/// What the simulator last saw of each realm: realm id → `"Entity/id"` →
/// (SyncToken, whether its total was zero). Persisted with the world so a
/// restart does not announce the whole world again.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct QboHookState {
    /// The first look was taken (without announcing anything).
    pub baselined: bool,
    pub seen: BTreeMap<String, BTreeMap<String, (u32, bool)>>,
}

/// base64(HMAC-SHA256(verifier token, exact body bytes)), as Intuit signs.
pub fn sign(verifier: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(verifier).expect("HMAC takes any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Intuit's retry schedule after `attempts` failed attempts: 10 s, 20 s,
/// 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h (sandbox clock).
pub(crate) fn backoff(attempts: u32) -> Duration {
    const SCHEDULE: [i64; 8] = [10, 20, 30, 300, 1200, 7200, 14400, 21600];
    let i = (attempts.max(1) - 1) as usize;
    Duration::seconds(SCHEDULE.get(i).copied().unwrap_or(21600))
}

/// One entity as it is now: key `"Entity/id"`, SyncToken, total is zero,
/// last updated.
type Look = (String, u32, bool, DateTime<Utc>);

fn look(realm: &QboRealm) -> Vec<Look> {
    let mut out = Vec::new();
    let mut add = |name: &str, id: &str, token: u32, zero: bool, at: DateTime<Utc>| {
        out.push((format!("{name}/{id}"), token, zero, at));
    };
    for a in &realm.accounts {
        add("Account", &a.id, a.sync_token, false, a.updated);
    }
    for v in &realm.vendors {
        add("Vendor", &v.id, v.sync_token, false, v.updated);
    }
    for b in &realm.bills {
        add("Bill", &b.id, b.sync_token, false, b.updated);
    }
    for p in &realm.bill_payments {
        add(
            "BillPayment",
            &p.id,
            p.sync_token,
            p.total_cents == 0,
            p.updated,
        );
    }
    for c in &realm.sales.customers {
        add("Customer", &c.id, c.sync_token, false, c.updated);
    }
    for i in &realm.sales.invoices {
        add(
            "Invoice",
            &i.id,
            i.sync_token,
            i.total_cents == 0,
            i.updated,
        );
    }
    for p in &realm.sales.payments {
        add(
            "Payment",
            &p.id,
            p.sync_token,
            p.total_cents == 0,
            p.updated,
        );
    }
    out
}

/// Take the first look at every realm without announcing anything (a new
/// world, or one saved before QBO webhooks existed). Returns whether it did.
pub(crate) fn ensure_baseline(st: &mut SimState) -> bool {
    if st.qbo_hooks.baselined {
        return false;
    }
    for c in &st.clients {
        let seen = look(&c.qbo)
            .into_iter()
            .map(|(k, t, z, _)| (k, (t, z)))
            .collect();
        st.qbo_hooks.seen.insert(c.qbo.realm_id.clone(), seen);
    }
    st.qbo_hooks.baselined = true;
    true
}

/// One changed entity: (name, id, operation, last updated).
type Change = (String, String, &'static str, DateTime<Utc>);

/// Compare every realm with what was seen last, remember what is there now,
/// and queue one delivery per realm with changes to `url` (empty: the app
/// has no webhook endpoint, nothing is queued). Returns how many were queued.
pub(crate) fn note_changes(
    st: &mut SimState,
    url: &str,
    format: QboWebhookFormat,
    now: DateTime<Utc>,
) -> usize {
    if !st.qbo_hooks.baselined {
        ensure_baseline(st);
        return 0;
    }
    let mut per_realm: Vec<(String, Vec<Change>)> = Vec::new();
    for c in &st.clients {
        let realm_id = &c.qbo.realm_id;
        let seen = st.qbo_hooks.seen.entry(realm_id.clone()).or_default();
        let mut changes = Vec::new();
        let mut current = BTreeMap::new();
        for (key, token, zero, at) in look(&c.qbo) {
            let op = match seen.remove(&key) {
                None => Some("Create"),
                Some((t, _)) if t == token => None,
                Some((_, was_zero)) if zero && !was_zero => Some("Void"),
                Some(_) => Some("Update"),
            };
            if let Some(op) = op {
                let (name, id) = key.split_once('/').unwrap_or((&key, ""));
                changes.push((name.to_owned(), id.to_owned(), op, at));
            }
            current.insert(key, (token, zero));
        }
        // What is left was seen before and is gone now.
        for key in seen.keys() {
            let (name, id) = key.split_once('/').unwrap_or((key, ""));
            let at = c
                .qbo
                .deleted
                .iter()
                .rev()
                .find(|d| d.entity == name && d.id == id)
                .map_or(now, |d| d.deleted);
            changes.push((name.to_owned(), id.to_owned(), "Delete", at));
        }
        *seen = current;
        if !changes.is_empty() {
            per_realm.push((realm_id.clone(), changes));
        }
    }
    if url.is_empty() {
        return 0;
    }
    let queued = per_realm.len();
    for (realm_id, changes) in per_realm {
        let body = match format {
            QboWebhookFormat::Legacy => legacy_body(&realm_id, &changes),
            QboWebhookFormat::CloudEvents => cloud_events_body(&realm_id, &changes),
        }
        .to_string();
        let (status, next_attempt_at) = crate::engine::injected_fate(st, now);
        st.webhooks.push(WebhookRec {
            // QBO's bodies carry no event id; this one is the queue's own.
            event_id: uuid::Uuid::new_v4().to_string(),
            business_id: realm_id,
            body,
            attempts: 0,
            next_attempt_at,
            status,
            last_http_status: None,
            subscription_id: None,
            in_flight: false,
            rail: WebhookRail::Qbo,
            item_id: None,
            url: Some(url.to_owned()),
        });
    }
    queued
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn legacy_body(realm_id: &str, changes: &[Change]) -> Value {
    let entities: Vec<Value> = changes
        .iter()
        .map(|(name, id, op, at)| {
            json!({"name": name, "id": id, "operation": op, "lastUpdated": time_text(*at)})
        })
        .collect();
    json!({"eventNotifications": [{
        "realmId": realm_id,
        "dataChangeEvent": {"entities": entities},
    }]})
}

fn cloud_events_body(realm_id: &str, changes: &[Change]) -> Value {
    let events: Vec<Value> = changes
        .iter()
        .map(|(name, id, op, at)| {
            let verb = match *op {
                "Create" => "created",
                "Delete" => "deleted",
                "Void" => "voided",
                _ => "updated",
            };
            json!({
                "specversion": "1.0",
                "id": uuid::Uuid::new_v4().to_string(),
                "source": "intuit.sandbox",
                "type": format!("qbo.{}.{verb}.v1", name.to_ascii_lowercase()),
                "datacontenttype": "application/json",
                "time": time_text(*at),
                "intuitentityid": id,
                "intuitaccountid": realm_id,
                "data": {},
            })
        })
        .collect();
    Value::Array(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_java_sdk_vector() {
        let body = r#"{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}"#;
        assert_eq!(
            sign(b"b5771f19b12ddb4bcdb9f08bdc50bc63878a", body.as_bytes()),
            "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q="
        );
    }

    #[test]
    fn retries_follow_intuits_schedule() {
        let secs: Vec<i64> = (1..=10).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(
            secs,
            [10, 20, 30, 300, 1200, 7200, 14400, 21600, 21600, 21600]
        );
    }
}
