//! `POST /webhooks/stripe`, verified as Stripe's libraries do (rails.md
//! §4.6): `Stripe-Signature: t=<unix secs>,v1=<hex>[,v1=<hex>…]`, any `v1`
//! matching HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint secret
//! (`whsec_…`, as UTF-8 bytes), compared in constant time, with `t` no more
//! than [`TOLERANCE_SECS`] from the **wall clock** (Stripe signs with its
//! own; the sandbox clock, which a demo advances by days, plays no part).
//! Several `v1` are how a rolled secret overlaps with the old one.
//!
//! A verified event is stored in the inbox, keyed by its `evt_…` id (Stripe
//! delivers the same event more than once and in any order), before the
//! 2xx; its processing comes later (`jobs::inbox`).

use super::{accept, reply, Reply};
use crate::router_state::ServerState;
use app::model::Rail;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Stripe's `DEFAULT_TOLERANCE`, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery was refused, in the words of Stripe's libraries.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NoHeader,
    NoTimestamp,
    NoV1Signature,
    NoMatchingSignature,
    OutsideTolerance,
}

impl Refusal {
    fn kind(&self) -> &'static str {
        match self {
            Refusal::NoHeader => "webhook.unsigned",
            _ => "webhook.bad_signature",
        }
    }
}

/// Check `header` (the `Stripe-Signature` value) against `body` with any of
/// `secrets` (the configured endpoint secret; empty ones never verify) at
/// wall-clock `now` (unix seconds).
pub fn verify(
    secrets: &[&str],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::NoHeader)?;
    let mut t: Option<i64> = None;
    let mut v1: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim() {
            "t" => t = v.trim().parse().ok(),
            "v1" => {
                if let Ok(sig) = hex::decode(v.trim()) {
                    v1.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(Refusal::NoTimestamp)?;
    if v1.is_empty() {
        return Err(Refusal::NoV1Signature);
    }
    let signed = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        v1.iter().any(|sig| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(sig).is_ok()
        })
    });
    if !signed {
        return Err(Refusal::NoMatchingSignature);
    }
    // Stripe's libraries refuse only the old; a `t` far ahead of this
    // machine is refused too (a replay window has two ends).
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(Refusal::OutsideTolerance);
    }
    Ok(())
}

pub async fn receive(State(st): State<ServerState>, headers: HeaderMap, body: Bytes) -> Reply {
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(refusal) = verify(&[&st.stripe_webhook_secret], header, &body, now) {
        tracing::warn!(
            rail = "stripe",
            ?refusal,
            bytes = body.len(),
            "refused webhook: signature"
        );
        let finished =
            st.webhook_refusals
                .note(Rail::Stripe, refusal.kind(), st.services.clock.now());
        super::refusals::write(&st.services, finished).await;
        let message = if refusal == Refusal::OutsideTolerance {
            "timestamp outside the tolerance zone"
        } else {
            "invalid signature"
        };
        return reply(StatusCode::UNAUTHORIZED, message);
    }
    let event = serde_json::from_slice::<Value>(&body).ok();
    let field = |name: &str| {
        event
            .as_ref()
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (Some(id), Some(kind)) = (field("id"), field("type")) else {
        tracing::warn!(rail = "stripe", "refused webhook: not a Stripe event");
        return reply(StatusCode::BAD_REQUEST, "not a Stripe event (id and type)");
    };
    let header_json = json!({
        "content-type": headers.get("content-type").and_then(|v| v.to_str().ok()),
        "account": field("account"),
    })
    .to_string();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    accept(&st, Rail::Stripe, &id, &kind, &header_json, &body_text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_test_123","object":"event","type":"invoice.paid"}"#;
    const T: i64 = 1_700_000_000;
    const V1: &str = "a4ebd5be24fc9c02e060e5021678e32bccbec86ad5af54ea7099320c1d92ec11";

    fn header(extra: &str) -> String {
        format!("t={T},{extra}")
    }

    #[test]
    fn the_rails_md_vector_verifies() {
        let h = header(&format!("v1={V1}"));
        assert_eq!(verify(&[SECRET], Some(&h), BODY, T + 10), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_another_secret_does_not() {
        let h = header(&format!("v1={V1}"));
        let tampered = br#"{"id":"evt_test_123","object":"event","type":"invoice.PAID"}"#;
        assert_eq!(
            verify(&[SECRET], Some(&h), tampered, T),
            Err(Refusal::NoMatchingSignature)
        );
        assert_eq!(
            verify(&["whsec_unknown"], Some(&h), BODY, T),
            Err(Refusal::NoMatchingSignature)
        );
        // No secret configured: nothing verifies, not even a signature
        // made with the empty key.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"").unwrap();
        mac.update(format!("{T}.").as_bytes());
        mac.update(BODY);
        let empty = hex::encode(mac.finalize().into_bytes());
        let h = header(&format!("v1={empty}"));
        assert_eq!(
            verify(&[""], Some(&h), BODY, T),
            Err(Refusal::NoMatchingSignature)
        );
    }

    #[test]
    fn an_expired_timestamp_is_refused() {
        let h = header(&format!("v1={V1}"));
        assert_eq!(
            verify(&[SECRET], Some(&h), BODY, T + TOLERANCE_SECS),
            Ok(())
        );
        assert_eq!(
            verify(&[SECRET], Some(&h), BODY, T + TOLERANCE_SECS + 1),
            Err(Refusal::OutsideTolerance)
        );
    }

    #[test]
    fn during_a_roll_any_v1_may_match() {
        let stale = "00".repeat(32);
        let h = header(&format!("v1={stale},v1={V1},v0=ignored"));
        assert_eq!(verify(&[SECRET], Some(&h), BODY, T), Ok(()));
        let h = header(&format!("v1={stale}"));
        assert_eq!(
            verify(&[SECRET], Some(&h), BODY, T),
            Err(Refusal::NoMatchingSignature)
        );
    }

    #[test]
    fn malformed_headers_say_what_is_missing() {
        assert_eq!(verify(&[SECRET], None, BODY, T), Err(Refusal::NoHeader));
        assert_eq!(
            verify(&[SECRET], Some(&format!("v1={V1}")), BODY, T),
            Err(Refusal::NoTimestamp)
        );
        assert_eq!(
            verify(&[SECRET], Some(&format!("t={T},v0={V1}")), BODY, T),
            Err(Refusal::NoV1Signature)
        );
    }
}
