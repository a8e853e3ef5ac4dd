//! What the Stripe simulator keeps per account (persisted in the sandbox
//! state): the API objects as Stripe renders them (JSON, in creation
//! order), the links between them that Stripe's objects do not carry in the
//! pinned API version, stored idempotent responses, and report files.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Every account's Stripe data, by account id (`acct_…`).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct StripeData {
    pub accounts: BTreeMap<String, AccountData>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountData {
    /// Makes ids unique across accounts (from the world seed).
    pub salt: u64,
    pub seq: u64,
    /// Invoice numbers: `PREFIX-0001`, …
    pub invoice_prefix: String,
    pub invoice_seq: u64,
    pub customers: Vec<Value>,
    pub invoices: Vec<Value>,
    pub invoice_items: Vec<Value>,
    pub payment_intents: Vec<Value>,
    pub charges: Vec<Value>,
    pub balance_transactions: Vec<Value>,
    pub payouts: Vec<Value>,
    pub events: Vec<Value>,
    pub report_runs: Vec<Value>,
    pub files: Vec<Value>,
    /// The CSV of each report file, by file id.
    pub file_contents: BTreeMap<String, String>,
    /// Balance transaction → the automatic payout that paid it out.
    pub payout_of: BTreeMap<String, String>,
    /// PaymentIntent → the invoice it paid.
    pub invoice_of_pi: BTreeMap<String, String>,
    pub idempotency: Vec<IdempotentResponse>,
    /// Webhook endpoints (`we_…`) as Stripe renders them, without secrets.
    pub webhook_endpoints: Vec<Value>,
    /// Each webhook endpoint's signing secret (`whsec_…`), by endpoint id.
    pub webhook_secrets: BTreeMap<String, String>,
    /// How many of `events` have been looked at for webhook deliveries.
    pub events_noted: usize,
    /// The last day whose simulated activity has run (payouts, customers
    /// paying open invoices).
    pub last_day: Option<NaiveDate>,
}

/// A stored answer to a POST with an `Idempotency-Key`.
#[derive(Clone, Serialize, Deserialize)]
pub struct IdempotentResponse {
    pub key: String,
    /// SHA-256 of method, path and the parsed parameters.
    pub digest: String,
    pub status: u16,
    pub body: Value,
    pub created: DateTime<Utc>,
}

impl AccountData {
    /// A fresh id: `prefix` + 24 characters, deterministic from the salt and
    /// a counter.
    pub fn id(&mut self, prefix: &str) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        self.seq += 1;
        let mut x = self.salt ^ self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let tail: String = (0..24)
            .map(|_| {
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                char::from(CHARS[(z % CHARS.len() as u64) as usize])
            })
            .collect();
        format!("{prefix}{tail}")
    }

    pub fn find<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
        list.iter().find(|v| v["id"] == id)
    }

    pub fn find_mut<'a>(list: &'a mut [Value], id: &str) -> Option<&'a mut Value> {
        list.iter_mut().find(|v| v["id"] == id)
    }

    /// Record an event (`evt_…`) with a snapshot of `object` and, for
    /// updates, the previous values of the fields that changed.
    pub fn event(&mut self, kind: &str, object: &Value, before: Option<&Value>, at: i64) {
        let id = self.id("evt_");
        let mut data = serde_json::json!({"object": object});
        if let Some(b) = before {
            data["previous_attributes"] = previous_attributes(b, object);
        }
        self.events.push(serde_json::json!({
            "id": id, "object": "event", "api_version": super::API_VERSION,
            "created": at, "livemode": false, "pending_webhooks": 0,
            "type": kind, "data": data,
            "request": {"id": null, "idempotency_key": null},
        }));
    }
}

/// The top-level fields of `before` that differ in `after`, with their old
/// values (nested objects compared whole, then diffed one level down).
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, old) in b {
            let new = a.get(k).unwrap_or(&Value::Null);
            if old == new {
                continue;
            }
            match (old, new) {
                (Value::Object(_), Value::Object(_)) if k != "lines" => {
                    out.insert(k.clone(), previous_attributes(old, new));
                }
                _ => {
                    out.insert(k.clone(), old.clone());
                }
            }
        }
    }
    Value::Object(out)
}
