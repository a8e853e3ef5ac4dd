//! Token and revoke endpoints of the simulated QBO and Ramp (inside their
//! rail routers, so rail faults hit them too), and the shared pieces the
//! Stripe token endpoint uses: form bodies and client authentication.

use super::grants::{Issued, OAuthError};
use crate::sim_state::SimState;
use crate::{Sandbox, SimRail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A form body; `None` if it does not parse or repeats a parameter (RFC 6749
/// §3.2: parameters must not be included more than once).
pub(crate) fn form(body: &[u8]) -> Option<HashMap<String, String>> {
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k, v).is_some() {
            return None;
        }
    }
    Some(out)
}

/// `Authorization: Basic base64(id:secret)`.
pub(crate) fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Constant-time-ish equality for secrets.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether the Basic credentials are the `rail` app's.
fn client_ok(st: &SimState, rail: SimRail, headers: &HeaderMap) -> Option<String> {
    let (id, secret) = basic_auth(headers)?;
    let app = st.oauth.apps.as_ref()?.get(rail)?;
    (id == app.client_id && same(&secret, &app.secret)).then_some(id)
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// An OAuth error body `{"error", "error_description"}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, desc: &str) -> Response {
    no_store(
        (
            status,
            Json(json!({"error": error, "error_description": desc})),
        )
            .into_response(),
    )
}

fn from_err(e: OAuthError) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, e.error, &e.description)
}

fn invalid_client() -> Response {
    let mut res = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"oauth\""),
    );
    res
}

/// The grant types both token endpoints share: what the request asked, run
/// against the state.
pub(crate) fn grant(
    st: &mut SimState,
    rail: SimRail,
    client_id: &str,
    f: &HashMap<String, String>,
    redirect_required: bool,
) -> Result<Issued, Box<Response>> {
    let now = Utc::now();
    let param = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match param("grant_type") {
        Some("authorization_code") => {
            let Some(code) = param("code") else {
                return Err(Box::new(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code is required",
                )));
            };
            let redirect = param("redirect_uri");
            if redirect_required && redirect.is_none() {
                return Err(Box::new(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is required",
                )));
            }
            st.oauth
                .exchange(rail, client_id, code, redirect, param("code_verifier"), now)
                .map_err(|e| Box::new(from_err(e)))
        }
        Some("refresh_token") => {
            let Some(rt) = param("refresh_token") else {
                return Err(Box::new(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                )));
            };
            let grace = match rail {
                SimRail::Qbo => i64::from(st.oauth.settings.qbo_refresh_grace_secs),
                _ => 0,
            };
            st.oauth
                .refresh(rail, rt, grace, now)
                .map_err(|e| Box::new(from_err(e)))
        }
        Some(_) => Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type is not supported",
        ))),
        None => Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        ))),
    }
}

/// `POST /qbo/oauth2/v1/tokens/bearer`.
pub(crate) async fn qbo_token(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = sb.inner.state.lock().await;
    let Some(client_id) = client_ok(&st, SimRail::Qbo, &headers) else {
        return invalid_client();
    };
    let Some(f) = form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body must be a form",
        );
    };
    let issued = match grant(&mut st, SimRail::Qbo, &client_id, &f, true) {
        Ok(i) => i,
        Err(r) => {
            // A replayed code revoked a grant: keep that.
            sb.persist_logged(&st).await;
            return *r;
        }
    };
    sb.persist_logged(&st).await;
    no_store(
        Json(json!({
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "x_refresh_token_expires_in": issued.refresh_expires_in,
        }))
        .into_response(),
    )
}

/// `POST /qbo/v2/oauth2/tokens/revoke`, JSON `{"token"}`: the whole grant.
pub(crate) async fn qbo_revoke(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = sb.inner.state.lock().await;
    if client_ok(&st, SimRail::Qbo, &headers).is_none() {
        return invalid_client();
    }
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned));
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    // Unknown tokens answer 200 too (RFC 7009 §2.2).
    if st.oauth.revoke_token(SimRail::Qbo, &token) {
        sb.persist_logged(&st).await;
    }
    StatusCode::OK.into_response()
}

/// `POST /ramp/developer/v1/token`.
pub(crate) async fn ramp_token(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = sb.inner.state.lock().await;
    let Some(client_id) = client_ok(&st, SimRail::Ramp, &headers) else {
        return invalid_client();
    };
    let Some(f) = form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body must be a form",
        );
    };
    let issued = match grant(&mut st, SimRail::Ramp, &client_id, &f, true) {
        Ok(i) => i,
        Err(r) => {
            sb.persist_logged(&st).await;
            return *r;
        }
    };
    sb.persist_logged(&st).await;
    no_store(
        Json(json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
            "refresh_token": issued.refresh_token,
        }))
        .into_response(),
    )
}

/// `POST /ramp/developer/v1/token/revoke`, form `token=…`: the whole grant.
pub(crate) async fn ramp_revoke(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = sb.inner.state.lock().await;
    if client_ok(&st, SimRail::Ramp, &headers).is_none() {
        return invalid_client();
    }
    let Some(token) = form(&body)
        .and_then(|f| f.get("token").cloned())
        .filter(|t| !t.is_empty())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    if st.oauth.revoke_token(SimRail::Ramp, &token) {
        sb.persist_logged(&st).await;
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_refuse_repeated_parameters() {
        assert_eq!(form(b"a=1&b=2").map(|f| f.len()), Some(2));
        assert!(form(b"a=1&a=2").is_none());
    }

    #[test]
    fn basic_auth_is_decoded() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("id:se:cret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        assert_eq!(basic_auth(&h), Some(("id".into(), "se:cret".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(basic_auth(&h), None);
    }
}
