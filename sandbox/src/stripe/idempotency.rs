//! Idempotent requests: a POST with an `Idempotency-Key` stores its answer
//! (2xx, card declines and 5xx: the endpoint ran; validation errors are not
//! stored) with a digest of its parameters. The same key with the same
//! parameters replays it; with other parameters it is a 400
//! `idempotency_error`. Keys are pruned once 24 hours old (sandbox clock).

use super::data::{AccountData, IdempotentResponse};
use super::error::StripeError;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) enum Seen {
    New,
    Replay(StatusCode, Value),
    Conflict(StripeError),
}

pub(crate) fn digest(method: &str, path: &str, params: &Value) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b" ");
    // serde_json's maps are ordered: equal parameters, equal text.
    h.update(params.to_string().as_bytes());
    hex::encode(h.finalize())
}

pub(crate) fn lookup(acct: &mut AccountData, key: &str, digest: &str, now: DateTime<Utc>) -> Seen {
    acct.idempotency
        .retain(|r| now - r.created < Duration::hours(24));
    match acct.idempotency.iter().find(|r| r.key == key) {
        None => Seen::New,
        Some(r) if r.digest == digest => Seen::Replay(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            r.body.clone(),
        ),
        Some(_) => Seen::Conflict(StripeError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_error",
            &format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
        )),
    }
}

pub(crate) fn store(
    acct: &mut AccountData,
    key: String,
    digest: String,
    status: StatusCode,
    body: &Value,
    now: DateTime<Utc>,
) {
    let ran =
        status.is_success() || status == StatusCode::PAYMENT_REQUIRED || status.is_server_error();
    if !ran {
        return;
    }
    acct.idempotency.push(IdempotentResponse {
        key,
        digest,
        status: status.as_u16(),
        body: body.clone(),
        created: now,
    });
}
