//! `POST /webhooks/ramp`. Ramp signs the raw body with HMAC-SHA256 (hex) under
//! the subscription secret, in `X-Ramp-Webhook-Signature` (docs) or
//! `X-Ramp-Signature` (newer integrations); both are accepted, with an
//! optional `sha256=` prefix. The event is stored keyed by its `id` before we
//! answer, so a redelivery is answered 2xx and never processed twice.

use super::{accept, reply, Reply};
use crate::router_state::ServerState;
use app::model::Rail;
use app::ssr::store::inbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SIGNATURE_HEADERS: [&str; 2] = ["x-ramp-webhook-signature", "x-ramp-signature"];

/// Constant-time check of a hex HMAC-SHA256 signature over `body`.
pub fn verify_signature(secret: &[u8], body: &[u8], header_value: &str) -> bool {
    let hex_sig = header_value.trim();
    let hex_sig = hex_sig.strip_prefix("sha256=").unwrap_or(hex_sig);
    let Ok(sig) = hex::decode(hex_sig.to_ascii_lowercase()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Whether the delivery is signed with the configured secret (tried first:
/// the sandbox's seeded subscriptions, a live app-level endpoint) or a
/// subscription secret of the business the body names (read without
/// trusting it: the signature over the raw bytes is what is checked).
/// Memory only (`secrets.rs`): a refused request never reaches the
/// database.
fn signed(st: &ServerState, headers: &HeaderMap, body: &[u8]) -> bool {
    let values: Vec<&str> = SIGNATURE_HEADERS
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .collect();
    if values.is_empty() {
        return false;
    }
    let configured = st.ramp_webhook_secret.as_bytes();
    if !configured.is_empty() && values.iter().any(|v| verify_signature(configured, body, v)) {
        return true;
    }
    let business = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("business_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(business) = business.filter(|b| !b.is_empty() && b.len() <= 200) else {
        return false;
    };
    let secrets = st.services.ramp_secrets.of(&business);
    values
        .iter()
        .any(|v| secrets.iter().any(|s| verify_signature(s, body, v)))
}

pub async fn receive(State(st): State<ServerState>, headers: HeaderMap, body: Bytes) -> Reply {
    if !signed(&st, &headers, &body) {
        let present = SIGNATURE_HEADERS.iter().any(|h| headers.contains_key(*h));
        let kind = if present {
            "webhook.bad_signature"
        } else {
            "webhook.unsigned"
        };
        tracing::warn!(
            rail = "ramp",
            kind,
            bytes = body.len(),
            "refused webhook: signature"
        );
        // Counted, and summarised once a minute: not a write per request.
        let finished = st
            .webhook_refusals
            .note(Rail::Ramp, kind, st.services.clock.now());
        super::refusals::write(&st.services, finished).await;
        return reply(StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!(rail = "ramp", "refused webhook: malformed JSON");
        security_event(&st, "webhook.malformed", "body is not JSON").await;
        return reply(StatusCode::BAD_REQUEST, "malformed JSON");
    };
    let (Some(event_id), Some(event_type)) = (
        event
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 200),
        event
            .get("type")
            .and_then(Value::as_str)
            .filter(|s| s.len() <= 200),
    ) else {
        return reply(StatusCode::BAD_REQUEST, "missing id or type");
    };
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let header_json = json!({
        "content-type": headers.get("content-type").and_then(|v| v.to_str().ok()),
        "x-ramp-webhook-id": headers.get("x-ramp-webhook-id").and_then(|v| v.to_str().ok()),
    })
    .to_string();
    accept(
        &st,
        Rail::Ramp,
        event_id,
        event_type,
        &header_json,
        &body_text,
    )
    .await
}

async fn security_event(st: &ServerState, kind: &str, detail: &str) {
    let svc = &st.services;
    let res = async {
        let mut conn = svc.db.acquire().await?;
        inbox::security_event(&mut conn, kind, Rail::Ramp, detail, svc.clock.now()).await
    }
    .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "could not record security event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_test_vector_only() {
        let body = br#"{"id":"a461a658-8d78-4e66-b1fd-9c818bcfea6b","type":"bills.paid","created_at":"2025-04-01T12:00:00Z","business_id":"945c7d8f-6c35-4d63-9c1c-79e67c9cee73","object":{"id":"3aa9eed1-c793-4b52-a502-e7f2a7e4c1b2"}}"#;
        let sig = "cd1bdbdf07af336b0320ed4bf7146453aa5b2b8c52a4ecb26435b225c5383132";
        assert!(verify_signature(b"ramp_test_secret", body, sig));
        assert!(verify_signature(
            b"ramp_test_secret",
            body,
            &format!("sha256={sig}")
        ));
        assert!(verify_signature(
            b"ramp_test_secret",
            body,
            &sig.to_uppercase()
        ));
        assert!(!verify_signature(b"other_secret", body, sig));
        assert!(!verify_signature(b"ramp_test_secret", &body[1..], sig));
        assert!(!verify_signature(b"ramp_test_secret", body, "not-hex"));
    }
}
