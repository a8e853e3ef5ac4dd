//! The consent pages of the simulated providers, for a person in a browser:
//! plain server-rendered HTML, no script. Same three steps for Intuit (QBO),
//! Ramp and Stripe: the authorize GET validates the request and shows a
//! sign-in form; the sign-in POST shows the consent page (pick the company,
//! business or account; Allow or Deny); the decision POST redirects back to
//! the app with a code (or `error=access_denied`).

use super::grants::{default_scope, pkce_shaped};
use super::{account_choices, account_exists};
use crate::{Sandbox, SimRail};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use std::collections::HashMap;

/// Consent routes, relative to the sandbox mount (outside the fault layer).
pub(crate) fn router() -> Router<Sandbox> {
    Router::new()
        .route(
            "/intuit/connect/oauth2",
            get(|s, q| authorize(s, q, SimRail::Qbo)).post(|s, b| decide(s, b, SimRail::Qbo)),
        )
        .route(
            "/ramp-app/v1/authorize",
            get(|s, q| authorize(s, q, SimRail::Ramp)).post(|s, b| decide(s, b, SimRail::Ramp)),
        )
        .route(
            "/stripe-marketplace/oauth/v2/authorize",
            get(|s, q| authorize(s, q, SimRail::Stripe)).post(|s, b| decide(s, b, SimRail::Stripe)),
        )
}

/// Scopes Intuit knows (the SDK's constants).
const QBO_SCOPES: [&str; 13] = [
    "com.intuit.quickbooks.accounting",
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "payroll.compensation.read",
    "project-management.project",
    "app-foundations.custom-dimensions.read",
    "app-foundations.custom-field-definitions",
    "time-tracking.time-entry",
    "indirect-tax.tax-calculation.quickbooks",
];

/// The scopes the Ramp app may ask for.
const RAMP_SCOPES: [&str; 11] = [
    "accounting:read",
    "accounting:write",
    "bills:read",
    "bills:write",
    "business:read",
    "entities:read",
    "transactions:read",
    "transfers:read",
    "vendors:read",
    "vendors:write",
    // Ramp's read of the business's own bank accounts, used with bills.
    "bank_accounts:read",
];

struct Provider {
    brand: &'static str,
    what: &'static str,
}

fn provider(rail: SimRail) -> Provider {
    match rail {
        SimRail::Qbo => Provider {
            brand: "Intuit",
            what: "QuickBooks company",
        },
        SimRail::Ramp => Provider {
            brand: "Ramp",
            what: "Ramp business",
        },
        _ => Provider {
            brand: "Stripe",
            what: "Stripe account",
        },
    }
}

fn sign_in_of(rail: SimRail) -> (&'static str, &'static str) {
    match rail {
        SimRail::Qbo => super::QBO_SIGN_IN,
        SimRail::Ramp => super::RAMP_SIGN_IN,
        _ => super::STRIPE_SIGN_IN,
    }
}

/// HTML-escape text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    // No `<meta name="referrer" content="no-referrer">`: under it a browser
    // sends `Origin: null` with the page's own form POSTs (Fetch, "append a
    // request Origin header"), and RowCol, which hosts the simulators,
    // refuses a state change from origin `null` (server/src/security.rs).
    // The Referrer-Policy below keeps the query from leaking to other
    // origins (RowCol sets the same one on every response it serves).
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title></head>\
         <body><main>{body}</main></body></html>",
        t = esc(title)
    );
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    // No `form-action`: browsers apply it to the redirect that follows the
    // consent form, and the registered redirect URI is on another origin
    // whenever the app is not served next to the simulators.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    res
}

fn error_page(rail: SimRail, msg: &str) -> Response {
    let p = provider(rail);
    page(
        StatusCode::BAD_REQUEST,
        &format!("{} - error", p.brand),
        &format!("<h1>Something went wrong</h1><p>{}</p>", esc(msg)),
    )
}

fn sign_in_page(rail: SimRail, request: &str, wrong: bool) -> Response {
    let p = provider(rail);
    let notice = if wrong {
        "<p role=\"alert\">Wrong username or password</p>"
    } else {
        ""
    };
    // As a provider's sandbox does: the page names its test credentials.
    let (user, pass) = sign_in_of(rail);
    page(
        StatusCode::OK,
        &format!("Sign in - {}", p.brand),
        &format!(
            "<h1>Sign in to {brand}</h1><p>{app} wants to connect to your {what}.</p>\
             <p data-testid=\"sandbox-credentials\">Sandbox: sign in with <code>{user}</code> \
             and password <code>{pass}</code>.</p>{notice}\
             <form method=\"post\"><input type=\"hidden\" name=\"request\" value=\"{req}\">\
             <label>Email or user ID <input name=\"username\" autocomplete=\"username\"></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <button type=\"submit\">Sign in</button></form>",
            brand = esc(p.brand),
            app = esc(super::APP_NAME),
            what = esc(p.what),
            req = esc(request),
            user = esc(user),
            pass = esc(pass),
        ),
    )
}

fn consent_page(
    rail: SimRail,
    request: &str,
    choices: &[(String, String)],
    scope: &str,
) -> Response {
    let p = provider(rail);
    let options: String = choices
        .iter()
        .map(|(v, t)| format!("<option value=\"{}\">{}</option>", esc(v), esc(t)))
        .collect();
    page(
        StatusCode::OK,
        &format!("Connect {} - {}", super::APP_NAME, p.brand),
        &format!(
            "<h1>{app} wants to access your {what}</h1>\
             <p>Permissions: {scope}</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"request\" value=\"{req}\">\
             <label>{what} <select name=\"account\">{options}</select></label>\
             <button name=\"decision\" value=\"allow\">Allow</button>\
             <button name=\"decision\" value=\"deny\">Deny</button></form>",
            app = esc(super::APP_NAME),
            what = esc(p.what),
            scope = esc(scope),
            req = esc(request),
        ),
    )
}

/// `uri` with `params` added to its query.
pub(crate) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{q}")
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => (StatusCode::BAD_REQUEST, "bad redirect").into_response(),
    }
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    desc: Option<&str>,
) -> Response {
    let mut params = vec![("error", error)];
    if let Some(d) = desc {
        params.push(("error_description", d));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    see_other(&with_query(redirect_uri, &params))
}

/// Check a requested scope; the scope granted, or `None` if refused.
fn check_scope(rail: SimRail, scope: Option<&str>) -> Option<String> {
    let allowed: &[&str] = match rail {
        SimRail::Qbo => &QBO_SCOPES,
        SimRail::Ramp => &RAMP_SCOPES,
        // Stripe Apps: the permissions come from the app's manifest.
        _ => return Some(default_scope(rail).to_owned()),
    };
    let parts: Vec<&str> = scope?.split(' ').filter(|s| !s.is_empty()).collect();
    if parts.is_empty() || !parts.iter().all(|p| allowed.contains(p)) {
        return None;
    }
    // Only the accounting API is simulated: a QBO grant must include it.
    if rail == SimRail::Qbo && !parts.contains(&"com.intuit.quickbooks.accounting") {
        return None;
    }
    Some(parts.join(" "))
}

async fn authorize(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    rail: SimRail,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str);
    let mut st = sb.inner.state.lock().await;
    let known_client = st
        .oauth
        .apps
        .as_ref()
        .and_then(|a| a.get(rail))
        .is_some_and(|a| get("client_id") == Some(a.client_id.as_str()));
    if !known_client {
        return error_page(rail, "Unknown client_id: this app is not registered.");
    }
    let Some(redirect_uri) =
        get("redirect_uri").filter(|r| sb.inner.config.redirect_uris.iter().any(|u| u == r))
    else {
        return error_page(rail, "The redirect_uri is not registered for this app.");
    };
    let state = get("state");
    let response_type_ok = matches!(
        (rail, get("response_type")),
        (_, Some("code")) | (SimRail::Stripe, None)
    );
    if !response_type_ok {
        return redirect_error(redirect_uri, state, "unsupported_response_type", None);
    }
    let Some(scope) = check_scope(rail, get("scope")) else {
        return redirect_error(redirect_uri, state, "invalid_scope", None);
    };
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) if pkce_shaped(c) => Some(c.to_owned()),
        _ => {
            return redirect_error(
                redirect_uri,
                state,
                "invalid_request",
                Some("PKCE needs code_challenge_method=S256 and a valid code_challenge"),
            )
        }
    };
    let client_id = get("client_id").unwrap_or_default().to_owned();
    let request = st.oauth.new_pending(
        rail,
        &client_id,
        redirect_uri,
        state.map(str::to_owned),
        &scope,
        challenge,
        Utc::now(),
    );
    sb.persist_logged(&st).await;
    sign_in_page(rail, &request, false)
}

async fn decide(State(sb): State<Sandbox>, body: Bytes, rail: SimRail) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return error_page(rail, "The form could not be read.");
    };
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let now = Utc::now();
    let mut st = sb.inner.state.lock().await;
    let request = field("request").unwrap_or_default();
    let Some(p) = st.oauth.pending_mut(rail, request, now) else {
        return error_page(
            rail,
            "This sign-in request is unknown or has expired. Start again from the app.",
        );
    };
    let Some(decision) = field("decision") else {
        let (user, pass) = sign_in_of(rail);
        if field("username").map(str::trim) != Some(user) || field("password") != Some(pass) {
            return sign_in_page(rail, request, true);
        }
        p.signed_in = true;
        let scope = p.scope.clone();
        let choices = account_choices(&st, rail);
        sb.persist_logged(&st).await;
        return consent_page(rail, request, &choices, &scope);
    };
    if !p.signed_in {
        return error_page(rail, "Sign in first.");
    }
    let (redirect_uri, state) = (p.redirect_uri.clone(), p.state.clone());
    match decision {
        "allow" => {
            let account = field("account").unwrap_or_default();
            if !account_exists(&st, rail, account) {
                return error_page(rail, "Choose one of the listed accounts.");
            }
            let Some(code) = st.oauth.decide(request, Some(account), now) else {
                return error_page(rail, "This sign-in request is unknown or has expired.");
            };
            sb.persist_logged(&st).await;
            let mut params = vec![("code", code.as_str())];
            if let Some(s) = state.as_deref() {
                params.push(("state", s));
            }
            if rail == SimRail::Qbo {
                params.push(("realmId", account));
            }
            see_other(&with_query(&redirect_uri, &params))
        }
        "deny" => {
            st.oauth.decide(request, None, now);
            sb.persist_logged(&st).await;
            let desc =
                (rail != SimRail::Qbo).then_some("The user denied access to your application");
            redirect_error(&redirect_uri, state.as_deref(), "access_denied", desc)
        }
        _ => error_page(rail, "Choose Allow or Deny."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">O'Neil & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[tokio::test]
    async fn pages_let_their_forms_carry_an_origin() {
        // `no-referrer` would make the browser send `Origin: null` with the
        // sign-in and consent POSTs, which the host refuses.
        let res = sign_in_page(SimRail::Qbo, "req", false);
        assert_eq!(
            res.headers()
                .get(header::REFERRER_POLICY)
                .and_then(|v| v.to_str().ok()),
            Some("strict-origin-when-cross-origin")
        );
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(!html.contains("no-referrer"), "{html}");
    }

    #[test]
    fn query_is_appended_and_encoded() {
        assert_eq!(
            with_query("https://a/cb", &[("code", "x y"), ("state", "&=")]),
            "https://a/cb?code=x+y&state=%26%3D"
        );
        assert_eq!(
            with_query("https://a/cb?k=1", &[("code", "c")]),
            "https://a/cb?k=1&code=c"
        );
    }

    #[test]
    fn scopes_are_checked_per_provider() {
        assert_eq!(
            check_scope(SimRail::Ramp, Some("bills:read  vendors:read")).as_deref(),
            Some("bills:read vendors:read")
        );
        assert_eq!(
            check_scope(SimRail::Ramp, Some("bills:read cards:write")),
            None
        );
        assert_eq!(check_scope(SimRail::Ramp, None), None);
        assert!(check_scope(
            SimRail::Qbo,
            Some("com.intuit.quickbooks.accounting openid")
        )
        .is_some());
        assert_eq!(check_scope(SimRail::Qbo, Some("openid")), None);
        assert!(check_scope(SimRail::Stripe, None).is_some());
    }
}
