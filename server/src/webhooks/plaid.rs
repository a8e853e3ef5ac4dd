//! `POST /webhooks/plaid`. Plaid signs each delivery with a JWT in the
//! `Plaid-Verification` header (rails.md §3.7): ES256 only, its key fetched
//! by `kid` from `/webhook_verification_key/get` (cached; a key with
//! `expired_at` set is refused), claims `{iat, request_body_sha256}`; `iat`
//! at most 5 minutes old and the SHA-256 of the raw body bytes equal to the
//! claim. Then the body is stored before we answer, and processed later.
//!
//! Plaid bodies carry no event id, and the same change can be announced
//! twice or out of order, so processing never trusts the body's news: it
//! re-reads the Item's state (a balance read, a transactions sync). The
//! inbox key is the SHA-256 of the signed token, so a replayed request is a
//! no-op while a new announcement with an identical body is still heard.

use super::{accept, reply, Reply};
use crate::rails::RailError;
use crate::router_state::ServerState;
use app::model::Rail;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

const HEADER: &str = "plaid-verification";
/// Plaid: reject a token issued more than 5 minutes ago.
const MAX_AGE_SECS: i64 = 5 * 60;
/// Clock skew tolerated for a token issued "in the future".
const MAX_SKEW_SECS: i64 = 60;
/// Keys cached at most; an unknown `kid` costs one call to Plaid.
const MAX_CACHED_KEYS: usize = 32;

/// Verification keys by `kid`, as fetched from Plaid.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<String, DecodingKey>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.keys.lock().map(|k| k.len()).unwrap_or(0);
        f.debug_struct("KeyCache").field("keys", &n).finish()
    }
}

impl KeyCache {
    fn get(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.lock().ok()?.get(kid).cloned()
    }

    fn put(&self, kid: &str, key: DecodingKey) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.insert(kid.to_owned(), key);
        }
    }

    /// A key Plaid later reports expired must not stay usable.
    fn forget(&self, kid: &str) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(kid);
        }
    }
}

/// Why a delivery was refused (logged and counted; never echoed in detail).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Unsigned,
    /// Not a JWT, not ES256, no `kid`, a bad signature, a body hash that
    /// does not match, or claims missing.
    BadSignature,
    /// `iat` too old (or too far ahead).
    Stale,
    /// Plaid does not know the key, or reports it expired.
    UnknownKey,
    /// Plaid could not be asked for the key: the sender should retry.
    KeyUnavailable,
}

impl Refusal {
    fn kind(&self) -> &'static str {
        match self {
            Refusal::Unsigned => "webhook.unsigned",
            Refusal::BadSignature => "webhook.bad_signature",
            Refusal::Stale => "webhook.stale",
            Refusal::UnknownKey => "webhook.unknown_key",
            Refusal::KeyUnavailable => "webhook.key_unavailable",
        }
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    iat: i64,
    request_body_sha256: String,
}

/// The JWK fields Plaid returns, as a decoding key; `None` when the key is
/// not an unexpired ES256 P-256 key.
pub fn decoding_key(jwk: &Value) -> Option<DecodingKey> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if s("alg") != Some("ES256") || s("kty") != Some("EC") || s("crv") != Some("P-256") {
        return None;
    }
    if jwk.get("expired_at").is_some_and(|e| !e.is_null()) {
        return None;
    }
    DecodingKey::from_ec_components(s("x")?, s("y")?).ok()
}

/// Check a token against the raw body with `key`, at wall-clock `now`.
pub fn verify_with(
    token: &str,
    key: &DecodingKey,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let mut validation = Validation::new(Algorithm::ES256);
    // Plaid's tokens carry no `exp`; age is checked on `iat` below.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map_err(|_| Refusal::BadSignature)?;
    let age = now.timestamp() - data.claims.iat;
    if !(-MAX_SKEW_SECS..=MAX_AGE_SECS).contains(&age) {
        return Err(Refusal::Stale);
    }
    let want = hex::encode(Sha256::digest(body));
    let got = data.claims.request_body_sha256.to_ascii_lowercase();
    if !crate::security::constant_time_eq(want.as_bytes(), got.as_bytes()) {
        return Err(Refusal::BadSignature);
    }
    Ok(())
}

/// Header first (unverified: only to learn `alg` and `kid`), then the key
/// (cache, else Plaid), then the token.
async fn verify(st: &ServerState, headers: &HeaderMap, body: &[u8]) -> Result<String, Refusal> {
    let token = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::Unsigned)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::BadSignature)?;
    if header.alg != Algorithm::ES256 {
        return Err(Refusal::BadSignature);
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or(Refusal::BadSignature)?;
    let key = match st.plaid_keys.get(&kid) {
        Some(k) => k,
        None => {
            let key = fetch_key(st, &kid).await?;
            st.plaid_keys.put(&kid, key.clone());
            key
        }
    };
    match verify_with(token, &key, body, Utc::now()) {
        // A cached key may have been rotated out since: ask Plaid again
        // once before refusing.
        Err(Refusal::BadSignature) => {
            st.plaid_keys.forget(&kid);
            let key = fetch_key(st, &kid).await?;
            verify_with(token, &key, body, Utc::now())?;
            st.plaid_keys.put(&kid, key);
        }
        other => other?,
    }
    Ok(token.to_owned())
}

async fn fetch_key(st: &ServerState, kid: &str) -> Result<DecodingKey, Refusal> {
    match st
        .services
        .onboarding
        .plaid
        .call("/webhook_verification_key/get", &json!({ "key_id": kid }))
        .await
    {
        Ok(v) => v
            .get("key")
            .and_then(decoding_key)
            .ok_or(Refusal::UnknownKey),
        // Plaid answered and does not know the key (INVALID_INPUT).
        Err(RailError::Rejected(_))
        | Err(RailError::NotFound(_))
        | Err(RailError::Permanent(_)) => Err(Refusal::UnknownKey),
        Err(e) => {
            tracing::warn!(error = %e, "could not fetch Plaid's webhook key");
            Err(Refusal::KeyUnavailable)
        }
    }
}

pub async fn receive(State(st): State<ServerState>, headers: HeaderMap, body: Bytes) -> Reply {
    let token = match verify(&st, &headers, &body).await {
        Ok(t) => t,
        Err(Refusal::KeyUnavailable) => {
            // Not the sender's fault: a 5xx makes Plaid retry.
            return reply(StatusCode::SERVICE_UNAVAILABLE, "try again");
        }
        Err(r) => {
            let kind = r.kind();
            tracing::warn!(
                rail = "plaid",
                kind,
                bytes = body.len(),
                "refused webhook: signature"
            );
            let finished = st
                .webhook_refusals
                .note(Rail::Plaid, kind, st.services.clock.now());
            super::refusals::write(&st.services, finished).await;
            return reply(StatusCode::UNAUTHORIZED, "invalid signature");
        }
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!(rail = "plaid", "refused webhook: malformed JSON");
        return reply(StatusCode::BAD_REQUEST, "malformed JSON");
    };
    let field = |k: &str| {
        event
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 200)
    };
    let (Some(kind), Some(code), Some(_item)) = (
        field("webhook_type"),
        field("webhook_code"),
        field("item_id"),
    ) else {
        return reply(
            StatusCode::BAD_REQUEST,
            "missing webhook_type, webhook_code or item_id",
        );
    };
    let event_id = format!("jwt:{}", hex::encode(Sha256::digest(token.as_bytes())));
    let event_type = format!("{kind}.{code}");
    let body_text = String::from_utf8_lossy(&body).into_owned();
    accept(&st, Rail::Plaid, &event_id, &event_type, "{}", &body_text).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    struct Signer {
        enc: EncodingKey,
        jwk: Value,
    }

    fn signer() -> Signer {
        use base64::Engine;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Signer {
            enc: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "alg": "ES256", "crv": "P-256", "kid": "k1", "kty": "EC", "use": "sig",
                "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
                "created_at": 1, "expired_at": null,
            }),
        }
    }

    fn sign(s: &Signer, body: &[u8], iat: i64) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        let claims =
            json!({ "iat": iat, "request_body_sha256": hex::encode(Sha256::digest(body)) });
        jsonwebtoken::encode(&h, &claims, &s.enc).unwrap()
    }

    #[test]
    fn a_signed_body_verifies_and_every_alteration_is_refused() {
        let s = signer();
        let key = decoding_key(&s.jwk).expect("key");
        let now = Utc::now();
        let body = br#"{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"i1","environment":"sandbox"}"#;
        let token = sign(&s, body, now.timestamp());
        assert_eq!(verify_with(&token, &key, body, now), Ok(()));
        // One byte of whitespace changes the hash.
        let mut spaced = body.to_vec();
        spaced.push(b' ');
        assert_eq!(
            verify_with(&token, &key, &spaced, now),
            Err(Refusal::BadSignature)
        );
        // Another key's signature.
        let other = decoding_key(&signer().jwk).unwrap();
        assert_eq!(
            verify_with(&token, &other, body, now),
            Err(Refusal::BadSignature)
        );
        // Six minutes old; or issued far in the future.
        let old = sign(&s, body, now.timestamp() - 6 * 60);
        assert_eq!(verify_with(&old, &key, body, now), Err(Refusal::Stale));
        let ahead = sign(&s, body, now.timestamp() + 10 * 60);
        assert_eq!(verify_with(&ahead, &key, body, now), Err(Refusal::Stale));
        // Four minutes old is fine.
        let recent = sign(&s, body, now.timestamp() - 4 * 60);
        assert_eq!(verify_with(&recent, &key, body, now), Ok(()));
        // A tampered token.
        let mut t = token.clone();
        t.push('x');
        assert_eq!(verify_with(&t, &key, body, now), Err(Refusal::BadSignature));
    }

    #[test]
    fn only_unexpired_es256_p256_keys_are_accepted() {
        let s = signer();
        assert!(decoding_key(&s.jwk).is_some());
        let mut expired = s.jwk.clone();
        expired["expired_at"] = json!(1_700_000_000);
        assert!(decoding_key(&expired).is_none());
        let mut rs = s.jwk.clone();
        rs["alg"] = json!("RS256");
        assert!(decoding_key(&rs).is_none());
        let mut curve = s.jwk.clone();
        curve["crv"] = json!("P-384");
        assert!(decoding_key(&curve).is_none());
    }

    #[test]
    fn a_token_with_another_algorithm_is_refused() {
        // HS256 signed with the public x as a "secret" (the classic
        // algorithm-confusion attack) never reaches key lookup.
        let body = b"{}";
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let claims = json!({ "iat": Utc::now().timestamp(), "request_body_sha256": hex::encode(Sha256::digest(body)) });
        let token = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(b"x")).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_ne!(header.alg, Algorithm::ES256);
        let key = decoding_key(&signer().jwk).unwrap();
        assert_eq!(
            verify_with(&token, &key, body, Utc::now()),
            Err(Refusal::BadSignature)
        );
    }
}
