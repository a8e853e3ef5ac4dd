//! The simulated providers' OAuth, driven through the HTTP routes: consent
//! pages, token endpoints, rotation, revocation, the control routes and the
//! credentials endpoint.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use clock::Clock;
use sandbox::{MemoryStore, Sandbox, SandboxConfig, Secret, SimRail};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

const BASE: &str = "http://sb.test/sandbox";

fn redirect(rail: &str) -> String {
    format!("https://app.test/connect/{rail}/callback")
}

fn config() -> SandboxConfig {
    SandboxConfig {
        ramp_webhook_url: String::new(),
        ramp_webhook_secret: Secret::new("whsec"),
        qbo_webhook_url: String::new(),
        qbo_webhook_verifier: Secret::new("qbo_verifier_test"),
        qbo_webhook_format: Default::default(),
        plaid_client_id: "plaid-id".into(),
        plaid_secret: Secret::new("plaid-secret"),
        seed: sandbox::world::DEFAULT_SEED,
        start: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")),
        clients: 3,
        living: false,
        public_base: BASE.into(),
        redirect_uris: ["qbo", "ramp", "stripe", "plaid"]
            .iter()
            .map(|r| redirect(r))
            .collect(),
    }
}

async fn start_with(store: Arc<MemoryStore>) -> Sandbox {
    Sandbox::start(Clock::system(), store, config())
        .await
        .expect("sandbox starts")
}

async fn start() -> Sandbox {
    start_with(Arc::new(MemoryStore::new())).await
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Res {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The query parameters of the redirect.
    fn redirect_params(&self) -> HashMap<String, String> {
        let loc = self.location();
        let q = loc.split_once('?').map(|(_, q)| q).unwrap_or_default();
        serde_urlencoded::from_str(q).expect("query")
    }

    /// The hidden `request` field of a page.
    fn request_id(&self) -> String {
        let marker = "name=\"request\" value=\"";
        let i = self.body.find(marker).expect("request field") + marker.len();
        self.body[i..].split('"').next().expect("value").to_owned()
    }
}

async fn call(sb: &Sandbox, req: Request<Body>) -> Res {
    let res = sb.router().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    Res {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(sb: &Sandbox, uri: &str, bearer: Option<&str>) -> Res {
    let mut r = Request::get(uri);
    if let Some(t) = bearer {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    call(sb, r.body(Body::empty()).expect("request")).await
}

async fn post_form(sb: &Sandbox, uri: &str, auth: Option<String>, form: &[(&str, &str)]) -> Res {
    let mut r =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        r = r.header(header::AUTHORIZATION, a);
    }
    let body = serde_urlencoded::to_string(form).expect("form");
    call(sb, r.body(Body::from(body)).expect("request")).await
}

async fn post_json(sb: &Sandbox, uri: &str, auth: Option<String>, body: Value) -> Res {
    let mut r = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = auth {
        r = r.header(header::AUTHORIZATION, a);
    }
    call(sb, r.body(Body::from(body.to_string())).expect("request")).await
}

fn basic(id: &str, secret: &str) -> Option<String> {
    let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    Some(format!("Basic {v}"))
}

fn s256(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

#[derive(Clone, Copy)]
enum Rail {
    Qbo,
    Ramp,
    Stripe,
}

impl Rail {
    fn name(self) -> &'static str {
        match self {
            Rail::Qbo => "qbo",
            Rail::Ramp => "ramp",
            Rail::Stripe => "stripe",
        }
    }

    fn sim(self) -> SimRail {
        match self {
            Rail::Qbo => SimRail::Qbo,
            Rail::Ramp => SimRail::Ramp,
            Rail::Stripe => SimRail::Stripe,
        }
    }

    fn authorize_path(self) -> &'static str {
        match self {
            Rail::Qbo => "/intuit/connect/oauth2",
            Rail::Ramp => "/ramp-app/v1/authorize",
            Rail::Stripe => "/stripe-marketplace/oauth/v2/authorize",
        }
    }

    fn sign_in(self) -> (&'static str, &'static str) {
        match self {
            Rail::Qbo => ("owner@clients.test", "intuit-sandbox"),
            Rail::Ramp => ("admin@clients.test", "ramp-sandbox"),
            Rail::Stripe => ("owner@clients.test", "stripe-sandbox"),
        }
    }

    fn client_id(self, sb: &Sandbox) -> String {
        let a = sb.apps();
        match self {
            Rail::Qbo => a.qbo.client_id,
            Rail::Ramp => a.ramp.client_id,
            Rail::Stripe => a.stripe.client_id,
        }
    }

    /// The token endpoint's client authentication.
    fn auth(self, sb: &Sandbox) -> Option<String> {
        let a = sb.apps();
        match self {
            Rail::Qbo => basic(&a.qbo.client_id, a.qbo.client_secret.expose()),
            Rail::Ramp => basic(&a.ramp.client_id, a.ramp.client_secret.expose()),
            Rail::Stripe => Some(format!("Bearer {}", a.stripe.secret_key.expose())),
        }
    }

    fn token_path(self) -> &'static str {
        match self {
            Rail::Qbo => "/qbo/oauth2/v1/tokens/bearer",
            Rail::Ramp => "/ramp/developer/v1/token",
            Rail::Stripe => "/stripe/v1/oauth/token",
        }
    }

    fn authorize_uri(self, sb: &Sandbox, extra: &[(&str, &str)]) -> String {
        let cid = self.client_id(sb);
        let redirect = redirect(self.name());
        let mut q: Vec<(&str, &str)> = vec![
            ("client_id", &cid),
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("state", "st<&>1"),
        ];
        match self {
            Rail::Qbo => q.push(("scope", "com.intuit.quickbooks.accounting")),
            Rail::Ramp => q.push(("scope", "bills:read bills:write entities:read vendors:read")),
            Rail::Stripe => {}
        }
        q.extend_from_slice(extra);
        format!(
            "{}?{}",
            self.authorize_path(),
            serde_urlencoded::to_string(&q).expect("query")
        )
    }
}

/// Account ids of the world's first clients on a rail.
async fn accounts(sb: &Sandbox, rail: Rail) -> Vec<String> {
    sb.world()
        .await
        .clients
        .iter()
        .map(|c| match rail {
            Rail::Qbo => c.qbo_realm_id.clone(),
            Rail::Ramp => c.ramp_business_id.clone(),
            Rail::Stripe => c.stripe_account_id.clone(),
        })
        .collect()
}

/// Through the consent pages to the redirect (signed in, then `decision`).
async fn consent(
    sb: &Sandbox,
    rail: Rail,
    extra: &[(&str, &str)],
    account: &str,
    decision: &str,
) -> Res {
    let page = get(sb, &rail.authorize_uri(sb, extra), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let req = page.request_id();
    let (user, pass) = rail.sign_in();
    let path = rail.authorize_path();
    let consent = post_form(
        sb,
        path,
        None,
        &[("request", &req), ("username", user), ("password", pass)],
    )
    .await;
    assert_eq!(consent.status, StatusCode::OK);
    assert!(
        consent.body.contains("<select name=\"account\">"),
        "{}",
        consent.body
    );
    post_form(
        sb,
        path,
        None,
        &[
            ("request", &req),
            ("account", account),
            ("decision", decision),
        ],
    )
    .await
}

/// A code for `account` (the flow allowed).
async fn code_for(sb: &Sandbox, rail: Rail, extra: &[(&str, &str)], account: &str) -> String {
    let res = consent(sb, rail, extra, account, "allow").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    res.redirect_params().get("code").expect("code").clone()
}

async fn exchange(sb: &Sandbox, rail: Rail, code: &str, extra: &[(&str, &str)]) -> Res {
    let redirect = redirect(rail.name());
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    if !matches!(rail, Rail::Stripe) {
        form.push(("redirect_uri", &redirect));
    }
    form.extend_from_slice(extra);
    post_form(sb, rail.token_path(), rail.auth(sb), &form).await
}

async fn refresh(sb: &Sandbox, rail: Rail, rt: &str) -> Res {
    post_form(
        sb,
        rail.token_path(),
        rail.auth(sb),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

/// An API call of the rail for `account` with `token`: its status.
async fn api(sb: &Sandbox, rail: Rail, account: &str, token: &str) -> StatusCode {
    let uri = match rail {
        Rail::Qbo => format!(
            "/qbo/v3/company/{account}/query?query=select%20*%20from%20Vendor&minorversion=75"
        ),
        Rail::Ramp => "/ramp/developer/v1/entities".to_owned(),
        Rail::Stripe => "/stripe/v1/account".to_owned(),
    };
    let res = get(sb, &uri, Some(token)).await;
    if res.status == StatusCode::OK {
        match rail {
            Rail::Qbo => assert!(res.json()["QueryResponse"]["Vendor"].is_array()),
            Rail::Ramp => assert!(res.json()["data"].is_array()),
            Rail::Stripe => assert_eq!(res.json()["id"], account),
        }
    }
    res.status
}

fn error_of(r: &Res) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn consent_flow_works_for_each_provider() {
    let sb = start().await;
    for rail in [Rail::Qbo, Rail::Ramp, Rail::Stripe] {
        let accts = accounts(&sb, rail).await;
        let account = &accts[1];
        // Wrong password: the form again.
        let page = get(&sb, &rail.authorize_uri(&sb, &[]), None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page
            .body
            .contains("<input name=\"password\" type=\"password\""));
        assert!(page
            .body
            .contains("<button type=\"submit\">Sign in</button>"));
        let req = page.request_id();
        let wrong = post_form(
            &sb,
            rail.authorize_path(),
            None,
            &[
                ("request", &req),
                ("username", rail.sign_in().0),
                ("password", "nope"),
            ],
        )
        .await;
        assert_eq!(wrong.status, StatusCode::OK);
        assert!(wrong.body.contains("Wrong username or password"));
        // A decision before signing in is refused, without a redirect.
        let early = post_form(
            &sb,
            rail.authorize_path(),
            None,
            &[
                ("request", &req),
                ("account", account),
                ("decision", "allow"),
            ],
        )
        .await;
        assert_eq!(early.status, StatusCode::BAD_REQUEST);
        assert!(early.location().is_empty());

        // Deny.
        let denied = consent(&sb, rail, &[], account, "deny").await;
        assert_eq!(denied.status, StatusCode::SEE_OTHER);
        assert!(denied.location().starts_with(&redirect(rail.name())));
        let p = denied.redirect_params();
        assert_eq!(p["error"], "access_denied");
        assert_eq!(p["state"], "st<&>1");
        assert!(!p.contains_key("code"));

        // Allow, exchange, call the API.
        let allowed = consent(&sb, rail, &[], account, "allow").await;
        let p = allowed.redirect_params();
        assert_eq!(p["state"], "st<&>1");
        if let Rail::Qbo = rail {
            assert_eq!(&p["realmId"], account);
        }
        let tok = exchange(&sb, rail, &p["code"], &[]).await;
        assert_eq!(tok.status, StatusCode::OK, "{}", tok.body);
        let t = tok.json();
        assert_eq!(t["expires_in"], 3600);
        let access = t["access_token"].as_str().expect("access").to_owned();
        assert!(t["refresh_token"].as_str().is_some_and(|r| !r.is_empty()));
        match rail {
            Rail::Qbo => {
                assert_eq!(t["token_type"], "bearer");
                assert_eq!(t["x_refresh_token_expires_in"], 8_726_400);
                assert!(tok.headers.contains_key("intuit_tid"));
            }
            Rail::Ramp => {
                assert_eq!(t["token_type"], "Bearer");
                assert!(access.starts_with("ramp_tok_"));
                assert_eq!(
                    t["scope"],
                    "bills:read bills:write entities:read vendors:read"
                );
                assert!(tok.headers.contains_key("x-trace-id"));
            }
            Rail::Stripe => {
                assert_eq!(&t["stripe_user_id"], account.as_str());
                assert_eq!(t["livemode"], false);
                assert!(tok.headers.contains_key("request-id"));
            }
        }
        assert_eq!(api(&sb, rail, account, &access).await, StatusCode::OK);
        // The grant is for that account only.
        if let Rail::Qbo = rail {
            assert_eq!(
                api(&sb, rail, &accts[0], &access).await,
                StatusCode::UNAUTHORIZED
            );
        }
        if let Rail::Ramp = rail {
            let ents = get(&sb, "/ramp/developer/v1/entities", Some(&access))
                .await
                .json();
            let name = &sb.world().await.clients[1].name;
            assert_eq!(&ents["data"][0]["entity_name"], name.as_str());
        }
    }
}

#[tokio::test]
async fn bad_authorize_requests_are_refused() {
    let sb = start().await;
    for rail in [Rail::Qbo, Rail::Ramp, Rail::Stripe] {
        // Unknown client: a 400 page, no redirect.
        let uri = rail
            .authorize_uri(&sb, &[])
            .replace(&rail.client_id(&sb), "nobody");
        let r = get(&sb, &uri, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.location().is_empty());
        // Unregistered redirect URI: the same.
        let enc = serde_urlencoded::to_string([("r", redirect(rail.name()))]).unwrap();
        let enc = enc.trim_start_matches("r=");
        let uri = rail
            .authorize_uri(&sb, &[])
            .replace(enc, "https%3A%2F%2Fevil.test%2Fcb");
        let r = get(&sb, &uri, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.location().is_empty());
        // PKCE `plain` is refused (through the redirect).
        let r = get(
            &sb,
            &rail.authorize_uri(
                &sb,
                &[
                    ("code_challenge", &"a".repeat(43)),
                    ("code_challenge_method", "plain"),
                ],
            ),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.redirect_params()["error"], "invalid_request");
    }
    // Bad response type and scope, after a valid redirect URI.
    let uri = Rail::Qbo
        .authorize_uri(&sb, &[])
        .replace("response_type=code", "response_type=token");
    let r = get(&sb, &uri, None).await;
    assert_eq!(r.redirect_params()["error"], "unsupported_response_type");
    assert_eq!(r.redirect_params()["state"], "st<&>1");
    let uri = Rail::Ramp
        .authorize_uri(&sb, &[])
        .replace("vendors%3Aread", "cards%3Awrite");
    let r = get(&sb, &uri, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.redirect_params()["error"], "invalid_scope");
    // An unknown request id.
    let r = post_form(
        &sb,
        Rail::Qbo.authorize_path(),
        None,
        &[("request", "req_nope"), ("decision", "allow")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_its_grant() {
    let sb = start().await;
    for rail in [Rail::Qbo, Rail::Ramp, Rail::Stripe] {
        let account = accounts(&sb, rail).await[0].clone();
        let code = code_for(&sb, rail, &[], &account).await;
        let first = exchange(&sb, rail, &code, &[]).await;
        assert_eq!(first.status, StatusCode::OK);
        let t = first.json();
        let access = t["access_token"].as_str().unwrap().to_owned();
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(api(&sb, rail, &account, &access).await, StatusCode::OK);
        let second = exchange(&sb, rail, &code, &[]).await;
        assert_eq!(second.status, StatusCode::BAD_REQUEST);
        assert_eq!(error_of(&second), "invalid_grant");
        assert_eq!(
            api(&sb, rail, &account, &access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(error_of(&refresh(&sb, rail, &rt).await), "invalid_grant");
    }
}

#[tokio::test]
async fn the_code_is_bound_to_redirect_uri_pkce_and_client() {
    let sb = start().await;
    let realm = accounts(&sb, Rail::Qbo).await[0].clone();
    // redirect_uri mismatch.
    let code = code_for(&sb, Rail::Qbo, &[], &realm).await;
    let r = post_form(
        &sb,
        Rail::Qbo.token_path(),
        Rail::Qbo.auth(&sb),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect("ramp")),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&r), "invalid_grant");
    // PKCE: a wrong verifier, none, then the right one.
    for rail in [Rail::Qbo, Rail::Ramp] {
        let account = accounts(&sb, rail).await[0].clone();
        let verifier = "v".repeat(20) + &"w".repeat(30);
        let challenge = s256(&verifier);
        let extra = [
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let code = code_for(&sb, rail, &extra, &account).await;
        let wrong = "x".repeat(50);
        let r = exchange(&sb, rail, &code, &[("code_verifier", &wrong)]).await;
        assert_eq!(error_of(&r), "invalid_grant");
        let code = code_for(&sb, rail, &extra, &account).await;
        assert_eq!(
            error_of(&exchange(&sb, rail, &code, &[]).await),
            "invalid_grant"
        );
        let code = code_for(&sb, rail, &extra, &account).await;
        let ok = exchange(&sb, rail, &code, &[("code_verifier", &verifier)]).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }
    // invalid_client: wrong secret, no auth, another app's credentials.
    let apps = sb.apps();
    for auth in [
        basic(&apps.qbo.client_id, "wrong"),
        None,
        basic(&apps.ramp.client_id, apps.ramp.client_secret.expose()),
    ] {
        let code = code_for(&sb, Rail::Qbo, &[], &realm).await;
        let r = post_form(
            &sb,
            Rail::Qbo.token_path(),
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect("qbo")),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&r), "invalid_client");
        // The code was not spent by the refused call.
        assert_eq!(
            exchange(&sb, Rail::Qbo, &code, &[]).await.status,
            StatusCode::OK
        );
    }
    let business = accounts(&sb, Rail::Ramp).await[0].clone();
    let code = code_for(&sb, Rail::Ramp, &[], &business).await;
    let r = post_form(
        &sb,
        Rail::Ramp.token_path(),
        basic(&apps.ramp.client_id, "nope"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect("ramp")),
        ],
    )
    .await;
    assert_eq!(
        (r.status, error_of(&r)),
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    // Stripe: Stripe's own error envelope, the key masked.
    let r = post_form(
        &sb,
        Rail::Stripe.token_path(),
        Some("Bearer sk_test_wrongwrongwrong1234".into()),
        &[("grant_type", "authorization_code"), ("code", "ac_x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(
        msg.contains("sk_test_") && msg.ends_with("1234") && !msg.contains("wrongwrong"),
        "{msg}"
    );
    // Unsupported grant type.
    let r = post_form(
        &sb,
        Rail::Qbo.token_path(),
        Rail::Qbo.auth(&sb),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(error_of(&r), "unsupported_grant_type");
}

#[tokio::test]
async fn refresh_rotates_with_the_configured_grace() {
    let sb = start().await;
    let w = sb.world().await;
    let c = &w.clients[0];
    // Grace 0 (default): the old QBO refresh token dies at once.
    let r1 = refresh(&sb, Rail::Qbo, c.qbo_refresh_token.expose()).await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.body);
    let rt1 = r1.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, c.qbo_refresh_token.expose());
    assert_eq!(
        error_of(&refresh(&sb, Rail::Qbo, c.qbo_refresh_token.expose()).await),
        "invalid_grant"
    );
    // The old access token still works until its own expiry; so does the new.
    assert_eq!(
        api(&sb, Rail::Qbo, &c.qbo_realm_id, c.qbo_access_token.expose()).await,
        StatusCode::OK
    );
    let at1 = r1.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        api(&sb, Rail::Qbo, &c.qbo_realm_id, &at1).await,
        StatusCode::OK
    );
    // With a grace, the rotated-away one keeps working.
    let s = post_json(
        &sb,
        "/control/oauth/settings",
        None,
        json!({"qbo_refresh_grace_secs": 300}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.json()["qbo_refresh_grace_secs"], 300);
    assert_eq!(s.json()["ramp_access_expires_in"], 3600);
    let r2 = refresh(&sb, Rail::Qbo, &rt1).await;
    assert_eq!(r2.status, StatusCode::OK);
    assert_eq!(
        refresh(&sb, Rail::Qbo, &rt1).await.status,
        StatusCode::OK,
        "within the grace"
    );
    // Ramp: rotates, the old one dead at once whatever the QBO grace; the
    // configured lifetime is used.
    post_json(
        &sb,
        "/control/oauth/settings",
        None,
        json!({"ramp_access_expires_in": 120}),
    )
    .await;
    let r = refresh(&sb, Rail::Ramp, c.ramp_refresh_token.expose()).await;
    assert_eq!(r.json()["expires_in"], 120);
    assert_eq!(
        error_of(&refresh(&sb, Rail::Ramp, c.ramp_refresh_token.expose()).await),
        "invalid_grant"
    );
    // Stripe too.
    let r = refresh(&sb, Rail::Stripe, c.stripe_refresh_token.expose()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["stripe_user_id"], c.stripe_account_id.as_str());
    assert_eq!(
        error_of(&refresh(&sb, Rail::Stripe, c.stripe_refresh_token.expose()).await),
        "invalid_grant"
    );
    // Malformed settings are refused.
    let bad = post_json(
        &sb,
        "/control/oauth/settings",
        None,
        json!({"qbo_refresh_grace_secs": -1}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_have_one_winner() {
    let sb = start().await;
    let w = sb.world().await;
    for (rail, rt) in [
        (
            Rail::Qbo,
            w.clients[1].qbo_refresh_token.expose().to_owned(),
        ),
        (
            Rail::Ramp,
            w.clients[1].ramp_refresh_token.expose().to_owned(),
        ),
    ] {
        let (a, b) = tokio::join!(refresh(&sb, rail, &rt), refresh(&sb, rail, &rt));
        let ok = [&a, &b]
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "{} / {}", a.body, b.body);
        let loser = if a.status == StatusCode::OK { &b } else { &a };
        assert_eq!(error_of(loser), "invalid_grant");
        // The winner's refresh token carries on.
        let winner = if a.status == StatusCode::OK { &a } else { &b };
        let next = refresh(&sb, rail, winner.json()["refresh_token"].as_str().unwrap()).await;
        assert_eq!(next.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn revoke_endpoints_end_the_whole_grant() {
    let sb = start().await;
    let w = sb.world().await;
    let apps = sb.apps();
    // QBO: revoke with the refresh token; the access token dies too.
    let c = &w.clients[0];
    let r = post_json(
        &sb,
        "/qbo/v2/oauth2/tokens/revoke",
        basic(&apps.qbo.client_id, apps.qbo.client_secret.expose()),
        json!({"token": c.qbo_refresh_token.expose()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api(&sb, Rail::Qbo, &c.qbo_realm_id, c.qbo_access_token.expose()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        error_of(&refresh(&sb, Rail::Qbo, c.qbo_refresh_token.expose()).await),
        "invalid_grant"
    );
    let r = post_json(
        &sb,
        "/qbo/v2/oauth2/tokens/revoke",
        basic(&apps.qbo.client_id, "bad"),
        json!({"token": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Ramp: revoke with the access token; the refresh token dies too.
    let r = post_form(
        &sb,
        "/ramp/developer/v1/token/revoke",
        basic(&apps.ramp.client_id, apps.ramp.client_secret.expose()),
        &[
            ("token", c.ramp_access_token.expose()),
            ("token_type_hint", "access_token"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api(
            &sb,
            Rail::Ramp,
            &c.ramp_business_id,
            c.ramp_access_token.expose()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        error_of(&refresh(&sb, Rail::Ramp, c.ramp_refresh_token.expose()).await),
        "invalid_grant"
    );
    // Stripe: deauthorize the account.
    let key = Some(format!("Bearer {}", apps.stripe.secret_key.expose()));
    let r = post_form(
        &sb,
        "/stripe/v1/oauth/deauthorize",
        key.clone(),
        &[
            ("client_id", &apps.stripe.client_id),
            ("stripe_user_id", &c.stripe_account_id),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["stripe_user_id"], c.stripe_account_id.as_str());
    assert_eq!(
        api(
            &sb,
            Rail::Stripe,
            &c.stripe_account_id,
            c.stripe_access_token.expose()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        error_of(&refresh(&sb, Rail::Stripe, c.stripe_refresh_token.expose()).await),
        "invalid_grant"
    );
    // The other clients are untouched.
    let d = &w.clients[1];
    assert_eq!(
        api(&sb, Rail::Qbo, &d.qbo_realm_id, d.qbo_access_token.expose()).await,
        StatusCode::OK
    );
    assert_eq!(
        api(
            &sb,
            Rail::Ramp,
            &d.ramp_business_id,
            d.ramp_access_token.expose()
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        api(
            &sb,
            Rail::Stripe,
            &d.stripe_account_id,
            d.stripe_access_token.expose()
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn control_revoke_and_expire() {
    let sb = start().await;
    let w = sb.world().await;
    let c = &w.clients[2];
    for rail in [Rail::Qbo, Rail::Ramp, Rail::Stripe] {
        let (account, access, rt) = match rail {
            Rail::Qbo => (&c.qbo_realm_id, &c.qbo_access_token, &c.qbo_refresh_token),
            Rail::Ramp => (
                &c.ramp_business_id,
                &c.ramp_access_token,
                &c.ramp_refresh_token,
            ),
            Rail::Stripe => (
                &c.stripe_account_id,
                &c.stripe_access_token,
                &c.stripe_refresh_token,
            ),
        };
        assert_eq!(
            api(&sb, rail, account, access.expose()).await,
            StatusCode::OK
        );
        // Expire: 401, then a refresh works and its token does.
        let r = post_json(
            &sb,
            "/control/oauth/expire",
            None,
            json!({"rail": rail.name(), "account": account}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            api(&sb, rail, account, access.expose()).await,
            StatusCode::UNAUTHORIZED
        );
        let fresh = refresh(&sb, rail, rt.expose()).await;
        assert_eq!(fresh.status, StatusCode::OK);
        let (at, rt2) = (
            fresh.json()["access_token"].as_str().unwrap().to_owned(),
            fresh.json()["refresh_token"].as_str().unwrap().to_owned(),
        );
        assert_eq!(api(&sb, rail, account, &at).await, StatusCode::OK);
        // Revoke consent: 401 and invalid_grant.
        sb.revoke_consent(rail.sim(), account)
            .await
            .expect("revoke");
        assert_eq!(api(&sb, rail, account, &at).await, StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&refresh(&sb, rail, &rt2).await), "invalid_grant");
        // A new consent works again.
        let code = code_for(&sb, rail, &[], account).await;
        let t = exchange(&sb, rail, &code, &[]).await.json();
        assert_eq!(
            api(&sb, rail, account, t["access_token"].as_str().unwrap()).await,
            StatusCode::OK
        );
        // The control route does the same.
        let r = post_json(
            &sb,
            "/control/oauth/revoke",
            None,
            json!({"rail": rail.name(), "account": account}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            api(&sb, rail, account, t["access_token"].as_str().unwrap()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Unknown accounts, bad rails, non-JSON bodies.
    let r = post_json(
        &sb,
        "/control/oauth/revoke",
        None,
        json!({"rail": "qbo", "account": "nope"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post_json(
        &sb,
        "/control/oauth/expire",
        None,
        json!({"rail": "plaid", "account": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post_form(&sb, "/control/oauth/revoke", None, &[("rail", "qbo")]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(sb.expire_access_tokens(SimRail::Qbo, "nope").await.is_err());
}

#[tokio::test]
async fn credentials_are_stable_and_independent_of_rowcols_grants() {
    let store = Arc::new(MemoryStore::new());
    let sb = start_with(store.clone()).await;
    let creds = get(&sb, "/control/credentials", None).await;
    assert_eq!(creds.status, StatusCode::OK);
    let c = creds.json();
    let apps = sb.apps();
    assert_eq!(c["qbo"]["client_id"], apps.qbo.client_id.as_str());
    assert_eq!(c["qbo"]["client_secret"], apps.qbo.client_secret.expose());
    assert_eq!(
        c["qbo"]["authorize_url"],
        format!("{BASE}/intuit/connect/oauth2")
    );
    assert_eq!(
        c["qbo"]["token_url"],
        format!("{BASE}/qbo/oauth2/v1/tokens/bearer")
    );
    assert_eq!(c["qbo"]["base_url"], format!("{BASE}/qbo"));
    assert_eq!(
        c["ramp"]["authorize_url"],
        format!("{BASE}/ramp-app/v1/authorize")
    );
    assert_eq!(
        c["ramp"]["token_url"],
        format!("{BASE}/ramp/developer/v1/token")
    );
    assert_eq!(c["ramp"]["base_url"], format!("{BASE}/ramp"));
    assert_eq!(c["ramp"]["client_secret"], apps.ramp.client_secret.expose());
    assert_eq!(
        c["plaid"],
        json!({"client_id": "plaid-id", "secret": "plaid-secret", "base_url": format!("{BASE}/plaid")})
    );
    assert_eq!(c["stripe"]["secret_key"], apps.stripe.secret_key.expose());
    assert_eq!(c["stripe"]["client_id"], apps.stripe.client_id.as_str());
    assert_eq!(
        c["stripe"]["token_url"],
        format!("{BASE}/stripe/v1/oauth/token")
    );
    assert_eq!(
        c["stripe"]["authorize_url"],
        format!("{BASE}/stripe-marketplace/oauth/v2/authorize")
    );
    assert_eq!(
        c["sign_in"]["qbo"],
        json!({"username": "owner@clients.test", "password": "intuit-sandbox"})
    );
    assert_eq!(
        c["sign_in"]["ramp"],
        json!({"username": "admin@clients.test", "password": "ramp-sandbox"})
    );
    assert_eq!(
        c["sign_in"]["stripe"],
        json!({"username": "owner@clients.test", "password": "stripe-sandbox"})
    );
    assert_eq!(
        c["sign_in"]["plaid"],
        json!({"username": "user_good", "password": "pass_good"})
    );
    let w = sb.world().await;
    let clients = c["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), w.clients.len());
    for (j, d) in clients.iter().zip(&w.clients) {
        assert_eq!(j["name"], d.name.as_str());
        assert_eq!(j["qbo"]["realm_id"], d.qbo_realm_id.as_str());
        assert_eq!(j["ramp"]["business_id"], d.ramp_business_id.as_str());
        assert_eq!(j["plaid"]["item_id"], d.plaid_item_id.as_str());
        // Plaid too: a token of the outside program's own for the item.
        assert_ne!(j["plaid"]["access_token"], d.plaid_access_token.expose());
        assert!(j["plaid"]["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("access-sandbox-")));
        assert!(j["plaid"]["institution_id"].is_string());
        assert_eq!(j["stripe"]["account_id"], d.stripe_account_id.as_str());
        assert!(j["stripe"]["restricted_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("rk_test_")));
        // Their own grants: not RowCol's tokens.
        assert_ne!(j["qbo"]["access_token"], d.qbo_access_token.expose());
        assert_ne!(j["ramp"]["access_token"], d.ramp_access_token.expose());
        // And they work.
        assert_eq!(
            api(
                &sb,
                Rail::Qbo,
                &d.qbo_realm_id,
                j["qbo"]["access_token"].as_str().unwrap()
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(
            api(
                &sb,
                Rail::Ramp,
                &d.ramp_business_id,
                j["ramp"]["access_token"].as_str().unwrap()
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(
            api(
                &sb,
                Rail::Stripe,
                &d.stripe_account_id,
                j["stripe"]["secret_key"].as_str().unwrap()
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(
            api(
                &sb,
                Rail::Stripe,
                &d.stripe_account_id,
                j["stripe"]["access_token"].as_str().unwrap()
            )
            .await,
            StatusCode::OK
        );
    }
    // The same on a second call, and after a restart from the same store.
    assert_eq!(get(&sb, "/control/credentials", None).await.json(), c);
    let again = start_with(store.clone()).await;
    assert_eq!(get(&again, "/control/credentials", None).await.json(), c);
    assert_eq!(again.apps().qbo.client_id, apps.qbo.client_id);
    assert_eq!(
        again.world().await.clients[0].qbo_refresh_token,
        w.clients[0].qbo_refresh_token
    );
    // An outside script refreshing its token leaves RowCol's alone.
    let ext_rt = c["clients"][0]["qbo"]["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&again, Rail::Qbo, ext_rt).await.status,
        StatusCode::OK
    );
    let d = &w.clients[0];
    assert_eq!(
        api(
            &again,
            Rail::Qbo,
            &d.qbo_realm_id,
            d.qbo_access_token.expose()
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        refresh(&again, Rail::Qbo, d.qbo_refresh_token.expose())
            .await
            .status,
        StatusCode::OK
    );
    // The credentials now show the script's current refresh token.
    let after = get(&again, "/control/credentials", None).await.json();
    assert_ne!(after["clients"][0]["qbo"]["refresh_token"], ext_rt);
    assert_eq!(after["clients"][1], c["clients"][1]);
}

#[tokio::test]
async fn a_state_saved_before_oauth_loads_and_keeps_its_tokens() {
    let store = Arc::new(MemoryStore::new());
    let sb = start_with(store.clone()).await;
    let mut doc = store.snapshot().expect("saved");
    doc.as_object_mut().expect("object").remove("oauth");
    let old_qbo = doc["clients"][0]["qbo"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_ramp = doc["clients"][0]["ramp"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(sb);
    let old = Arc::new(MemoryStore::holding(&doc));
    let sb = start_with(old.clone()).await;
    let w = sb.world().await;
    assert_eq!(w.clients[0].qbo_access_token.expose(), old_qbo);
    assert_eq!(w.clients[0].ramp_access_token.expose(), old_ramp);
    assert_eq!(
        api(&sb, Rail::Qbo, &w.clients[0].qbo_realm_id, &old_qbo).await,
        StatusCode::OK
    );
    assert_eq!(
        api(&sb, Rail::Ramp, &w.clients[0].ramp_business_id, &old_ramp).await,
        StatusCode::OK
    );
    assert!(w.clients[0].access_expires_at > chrono::Utc::now());
    // The filled-in state was saved: the apps survive another restart.
    assert!(old.snapshot().expect("saved")["oauth"]["apps"].is_object());
    let again = start_with(old).await;
    assert_eq!(again.apps().ramp.client_id, sb.apps().ramp.client_id);
}

#[tokio::test]
async fn api_tokens_are_checked_per_rail() {
    let sb = start().await;
    let w = sb.world().await;
    let c = &w.clients[0];
    // A Ramp token is no QBO token, and no token at all is refused.
    assert_eq!(
        api(
            &sb,
            Rail::Qbo,
            &c.qbo_realm_id,
            c.ramp_access_token.expose()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api(
            &sb,
            Rail::Ramp,
            &c.ramp_business_id,
            c.qbo_access_token.expose()
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let r = get(&sb, "/stripe/v1/account", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.contains_key("request-id"));
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // The app's own secret key is not an account's key.
    let key = sb.apps().stripe.secret_key;
    assert_eq!(
        api(&sb, Rail::Stripe, &c.stripe_account_id, key.expose()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rail_faults_hit_the_token_endpoints() {
    let sb = start().await;
    let w = sb.world().await;
    let c = &w.clients[0];
    sb.set_faults(sandbox::Faults {
        rail_fail_next: vec![
            sandbox::RailFault {
                rail: SimRail::Qbo,
                status: 503,
                method: Some("POST".into()),
                path: Some("/oauth2/v1/tokens/bearer".into()),
            },
            sandbox::RailFault::any(SimRail::Stripe, 429),
        ],
        ..Default::default()
    })
    .await;
    let r = refresh(&sb, Rail::Qbo, c.qbo_refresh_token.expose()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["Fault"].is_object());
    // Nothing was applied: the refresh token still works.
    assert_eq!(
        refresh(&sb, Rail::Qbo, c.qbo_refresh_token.expose())
            .await
            .status,
        StatusCode::OK
    );
    let r = refresh(&sb, Rail::Stripe, c.stripe_refresh_token.expose()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.json()["error"]["type"].is_string());
    assert_eq!(
        refresh(&sb, Rail::Stripe, c.stripe_refresh_token.expose())
            .await
            .status,
        StatusCode::OK
    );
}
