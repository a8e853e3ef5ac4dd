//! `POST /webhooks/qbo`. Intuit signs the raw body with HMAC-SHA256 under the
//! app's verifier token, base64, in `intuit-signature`. Both payload formats
//! are taken: the legacy object (`{"eventNotifications":[…]}`) and the
//! CloudEvents array. QBO's bodies carry no event id, so a delivery is
//! stored keyed by the SHA-256 of its exact bytes: a redelivery is answered
//! 200 and never processed twice. Processing (`jobs::qbo_events`) syncs the
//! clients of the realms named; the body's news itself is not believed.

use super::{accept, reply, Reply};
use crate::router_state::ServerState;
use app::model::Rail;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SIGNATURE_HEADER: &str = "intuit-signature";

/// Constant-time check of a base64 HMAC-SHA256 signature over `body`.
pub fn verify_signature(verifier: &[u8], body: &[u8], header_value: &str) -> bool {
    if verifier.is_empty() {
        return false;
    }
    let Ok(sig) = STANDARD.decode(header_value.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(verifier) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The realm ids a notification names, in either format (deduplicated,
/// first-seen order).
pub fn realms_of(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(r) = v.and_then(Value::as_str).filter(|r| !r.is_empty()) {
            if !out.iter().any(|o| o == r) {
                out.push(r.to_owned());
            }
        }
    };
    match body {
        Value::Array(events) => events.iter().for_each(|e| add(e.get("intuitaccountid"))),
        _ => body
            .get("eventNotifications")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .for_each(|n| add(n.get("realmId"))),
    }
    out
}

pub async fn receive(State(st): State<ServerState>, headers: HeaderMap, body: Bytes) -> Reply {
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let signed =
        header.is_some_and(|v| verify_signature(st.qbo_webhook_verifier.as_bytes(), &body, v));
    if !signed {
        let kind = if headers.contains_key(SIGNATURE_HEADER) {
            "webhook.bad_signature"
        } else {
            "webhook.unsigned"
        };
        tracing::warn!(
            rail = "qbo",
            kind,
            bytes = body.len(),
            "refused webhook: signature"
        );
        let finished = st
            .webhook_refusals
            .note(Rail::Qbo, kind, st.services.clock.now());
        super::refusals::write(&st.services, finished).await;
        return reply(StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let event_type = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(_)) => "cloudevents",
        Ok(v) if v.get("eventNotifications").is_some() => "eventNotifications",
        _ => {
            tracing::warn!(rail = "qbo", "refused webhook: not a QBO notification");
            return reply(StatusCode::BAD_REQUEST, "not a QBO notification");
        }
    };
    let event_id = hex::encode(Sha256::digest(&body));
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let header_json = json!({
        "content-type": headers.get("content-type").and_then(|v| v.to_str().ok()),
    })
    .to_string();
    accept(
        &st,
        Rail::Qbo,
        &event_id,
        event_type,
        &header_json,
        &body_text,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"b5771f19b12ddb4bcdb9f08bdc50bc63878a";
    const BODY: &[u8] = br#"{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}"#;
    const SIG: &str = "JC2GUwciPmRBwEO7WvrRmKqu9tGOKL8FFallocTFi8Q=";

    #[test]
    fn accepts_the_sdk_test_vector() {
        assert!(verify_signature(TOKEN, BODY, SIG));
    }

    #[test]
    fn refuses_one_changed_byte() {
        let mut body = BODY.to_vec();
        body[30] ^= 1;
        assert!(!verify_signature(TOKEN, &body, SIG));
    }

    #[test]
    fn refuses_the_wrong_key() {
        assert!(!verify_signature(b"another-verifier-token", BODY, SIG));
        assert!(
            !verify_signature(b"", BODY, SIG),
            "no token, nothing passes"
        );
    }

    #[test]
    fn refuses_a_missing_or_garbled_header() {
        assert!(!verify_signature(TOKEN, BODY, ""));
        assert!(!verify_signature(TOKEN, BODY, "not base64!"));
    }

    #[test]
    fn finds_realms_in_both_formats() {
        let legacy: Value = serde_json::from_slice(BODY).unwrap();
        assert_eq!(realms_of(&legacy), ["1185883450"]);
        let cloud = json!([
            {"type": "qbo.bill.updated.v1", "intuitaccountid": "310687", "intuitentityid": "1"},
            {"type": "qbo.bill.created.v1", "intuitaccountid": "310687", "intuitentityid": "2"},
            {"type": "qbo.vendor.created.v1", "intuitaccountid": "42", "intuitentityid": "3"},
        ]);
        assert_eq!(realms_of(&cloud), ["310687", "42"]);
    }
}
