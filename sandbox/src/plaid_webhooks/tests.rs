//! Plaid webhooks end to end: a receiver on a local port gets them, and
//! verifies them the way Plaid documents (the JWT with the key from
//! `/webhook_verification_key/get`, the body's SHA-256, `iat`).

use crate::sim_state::{WebhookRail, WebhookStatus};
use crate::testkit::{start, start_with, Kit, REDIRECT};
use crate::MemoryStore;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// One request the receiver got: its headers and raw body bytes.
#[derive(Clone)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
    /// What the receiver answered.
    status: u16,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn code(&self) -> String {
        self.json()["webhook_code"].as_str().unwrap().to_owned()
    }
}

/// A webhook receiver: records everything, answers 500 to the next
/// `fail` requests and 200 after that.
#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<Got>>>,
    fail: Arc<AtomicU32>,
    url: String,
}

impl Hooks {
    async fn start() -> Hooks {
        async fn take(State(h): State<Hooks>, headers: HeaderMap, body: Bytes) -> StatusCode {
            let failing = h
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let status = if failing {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            h.got.lock().unwrap().push(Got {
                headers,
                body,
                status: status.as_u16(),
            });
            status
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/plaid", l.local_addr().unwrap());
        let h = Hooks {
            url,
            ..Hooks::default()
        };
        let app = Router::new()
            .route("/hooks/plaid", post(take))
            .with_state(h.clone());
        tokio::spawn(async move { axum::serve(l, app).await });
        h
    }

    fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The codes of the requests answered 200, in order.
    fn delivered(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter(|g| g.status == 200)
            .map(Got::code)
            .collect()
    }

    fn clear(&self) {
        self.got.lock().unwrap().clear();
    }
}

fn code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("")
}

/// The seeded item of client 0: (access token, item id).
async fn seeded(k: &Kit) -> (String, String) {
    let c = k.sb.world().await.clients[0].clone();
    (c.plaid_access_token.expose().to_owned(), c.plaid_item_id)
}

/// Point the item at `url` and swallow the acknowledgement.
async fn set_webhook(k: &Kit, h: &Hooks, token: &str, url: &str) {
    let (s, v) = k
        .plaid(
            "/item/webhook/update",
            json!({"access_token": token, "webhook": url}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    k.sb.deliver_pending_webhooks().await;
    h.clear();
}

async fn fire(k: &Kit, token: &str, body: Value) -> (u16, Value) {
    let mut b = body;
    b["access_token"] = json!(token);
    k.plaid("/sandbox/item/fire_webhook", b).await
}

/// Verify a received webhook as Plaid tells receivers to; returns the
/// JWT's kid and claims.
async fn verify(k: &Kit, g: &Got) -> (String, Value) {
    assert_eq!(g.headers["content-type"], "application/json");
    let jwt = g.headers["plaid-verification"].to_str().unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.unwrap();
    let (s, v) = k
        .plaid("/webhook_verification_key/get", json!({"key_id": kid}))
        .await;
    assert_eq!(s, 200, "{v}");
    let key = &v["key"];
    assert!(v["request_id"].is_string());
    for (f, want) in [
        ("alg", "ES256"),
        ("crv", "P-256"),
        ("kty", "EC"),
        ("use", "sig"),
    ] {
        assert_eq!(key[f], want, "{key}");
    }
    assert_eq!(key["kid"], kid.as_str());
    assert!(key["created_at"].is_i64());
    let dk =
        DecodingKey::from_ec_components(key["x"].as_str().unwrap(), key["y"].as_str().unwrap())
            .unwrap();
    let mut val = Validation::new(Algorithm::ES256);
    val.required_spec_claims.clear();
    val.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(jwt, &dk, &val)
        .unwrap()
        .claims;
    assert_eq!(
        claims["request_body_sha256"],
        hex::encode(Sha256::digest(&g.body)),
        "the hash is of the exact bytes received"
    );
    let iat = claims["iat"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - iat).abs() <= 60, "iat {iat} is wall-clock now {now}");
    let b = g.json();
    assert_eq!(b["environment"], "sandbox");
    for f in ["webhook_type", "webhook_code", "item_id"] {
        assert!(b[f].is_string(), "{f} in {b}");
    }
    (kid, claims)
}

#[tokio::test]
async fn a_webhook_verifies_with_the_published_key() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    // Link with a webhook: the sandbox shortcut, then the exchange.
    let (s, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"],
                   "options": {"webhook": h.url}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": v["public_token"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();
    let item_id = v["item_id"].as_str().unwrap().to_owned();

    // The sandbox clock is days ahead; `iat` still follows the wall clock.
    k.sb.advance(Duration::days(3)).await.unwrap();
    let (s, v) = fire(
        &k,
        &token,
        json!({"webhook_code": "SYNC_UPDATES_AVAILABLE"}),
    )
    .await;
    assert_eq!((s, &v["webhook_fired"]), (200, &json!(true)), "{v}");
    assert!(v["request_id"].is_string());
    assert_eq!(k.sb.deliver_pending_webhooks().await, 1);
    let got = h.all();
    assert_eq!(got.len(), 1);
    verify(&k, &got[0]).await;
    assert_eq!(
        got[0].json(),
        json!({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
               "item_id": item_id, "environment": "sandbox",
               "initial_update_complete": true, "historical_update_complete": true})
    );

    // A tampered body no longer matches the signed hash.
    let mut bad = got[0].clone();
    bad.body = Bytes::from(format!("{} ", String::from_utf8_lossy(&got[0].body)));
    let jwt = bad.headers["plaid-verification"].to_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_ne!(
        claims["request_body_sha256"],
        hex::encode(Sha256::digest(&bad.body))
    );

    // The key endpoint: credentials checked, key_id required and known.
    let (s, v) = k
        .plaid(
            "/webhook_verification_key/get",
            json!({"key_id": "bfbd5111-8e33-4643-8ced-b2e642a72f3c"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_WEBHOOK_VERIFICATION_KEY_ID"));
    assert_eq!(v["error_type"], "INVALID_INPUT");
    let (s, v) = k.plaid("/webhook_verification_key/get", json!({})).await;
    assert_eq!((s, code(&v)), (400, "MISSING_FIELDS"));
    let r = k
        .http
        .post(format!("{}/plaid/webhook_verification_key/get", k.base))
        .json(&json!({"client_id": "x", "secret": "y", "key_id": "z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "INVALID_API_KEYS");
}

#[tokio::test]
async fn login_breaks_and_repairs_send_item_webhooks() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, item_id) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;

    // reset_login: ITEM ERROR with the ITEM_LOGIN_REQUIRED PlaidError.
    let (s, _) = k
        .plaid("/sandbox/item/reset_login", json!({"access_token": token}))
        .await;
    assert_eq!(s, 200);
    k.sb.deliver_pending_webhooks().await;
    let got = h.all();
    assert_eq!(got.len(), 1);
    verify(&k, &got[0]).await;
    let b = got[0].json();
    assert_eq!(
        (b["webhook_type"].as_str(), b["webhook_code"].as_str()),
        (Some("ITEM"), Some("ERROR"))
    );
    assert_eq!(b["item_id"], item_id.as_str());
    assert_eq!(b["error"]["error_type"], "ITEM_ERROR");
    assert_eq!(b["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(b["error"]["status"], 400);
    assert!(b["error"]["error_message"]
        .as_str()
        .unwrap()
        .contains("use Link's update mode"));
    h.clear();

    // Update mode in the app's own Link: repaired, and Plaid documents no
    // LOGIN_REPAIRED for that.
    update_mode(&k, &token).await;
    let (s, _) = k
        .plaid("/accounts/get", json!({"access_token": token}))
        .await;
    assert_eq!(s, 200);
    k.sb.deliver_pending_webhooks().await;
    assert!(h.all().is_empty(), "{:?}", h.delivered());

    // Broken by the fault: ERROR; the fault lifted (repaired outside the
    // app): LOGIN_REPAIRED.
    let mut f = k.sb.faults().await;
    f.plaid_login_required = vec![item_id.clone()];
    k.sb.set_faults(f.clone()).await;
    f.plaid_login_required.clear();
    k.sb.set_faults(f.clone()).await;
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(h.delivered(), ["ERROR", "LOGIN_REPAIRED"]);
    for g in h.all() {
        verify(&k, &g).await;
    }
    assert_eq!(
        h.all()[1].json(),
        json!({"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED", "item_id": item_id,
               "environment": "sandbox"})
    );
    h.clear();

    // With the switch on, update mode sends LOGIN_REPAIRED too.
    f.plaid_login_repaired_after_update_mode = true;
    k.sb.set_faults(f).await;
    k.plaid("/sandbox/item/reset_login", json!({"access_token": token}))
        .await;
    update_mode(&k, &token).await;
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(h.delivered(), ["ERROR", "LOGIN_REPAIRED"]);
}

/// Repair the item's login through hosted Link in update mode.
async fn update_mode(k: &Kit, token: &str) {
    let (s, v) = k
        .plaid(
            "/link/token/create",
            json!({"client_name": "RowCol", "language": "en", "country_codes": ["US"],
                   "user": {"client_user_id": "u1"}, "access_token": token,
                   "webhook": "http://elsewhere.test/ignored-in-update-mode",
                   "hosted_link": {"completion_redirect_uri": REDIRECT}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let url = v["hosted_link_url"].as_str().unwrap().to_owned();
    let (s, _, _) = k.get_page(&url).await;
    assert_eq!(s, 200);
    let (s, loc, _) = k
        .post_form(
            &url,
            &[
                ("username", "user_good"),
                ("password", "pass_good"),
                ("action", "continue"),
            ],
        )
        .await;
    assert_eq!((s, loc.as_deref()), (303, Some(REDIRECT)));
    // The update-mode link token's webhook did not touch the item.
    let (_, v) = k.plaid("/item/get", json!({"access_token": token})).await;
    assert_ne!(
        v["item"]["webhook"],
        "http://elsewhere.test/ignored-in-update-mode"
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_30s_then_4x_longer() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, _) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;
    h.fail.store(3, Ordering::SeqCst);
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;

    let attempts = || h.all().len();
    assert_eq!(k.sb.deliver_pending_webhooks().await, 0);
    assert_eq!(attempts(), 1);
    // Each wait is on the sandbox clock (which also moves with real time,
    // hence the few seconds' slack): short of it, nothing; at it, the next
    // attempt.
    for (wait, n) in [(30, 2), (120, 3), (480, 4)] {
        let st = k.sb.state().await;
        let w = st
            .webhooks
            .iter()
            .find(|w| w.rail == WebhookRail::Plaid && w.status == WebhookStatus::Pending)
            .unwrap();
        let left = (w.next_attempt_at - k.sb.clock().now()).num_seconds();
        assert!((wait - 5..=wait).contains(&left), "{left} s left of {wait}");
        k.sb.advance(Duration::seconds(wait - 10)).await.unwrap();
        assert_eq!(attempts(), n - 1, "before {wait} s");
        k.sb.advance(Duration::seconds(10)).await.unwrap();
        assert_eq!(attempts(), n, "at {wait} s");
    }
    // The fourth got a 200: delivered once, and nothing more is sent.
    assert_eq!(h.delivered(), ["NEW_ACCOUNTS_AVAILABLE"]);
    k.sb.advance(Duration::days(2)).await.unwrap();
    assert_eq!(attempts(), 4);
    // Every attempt was signed afresh and verifies.
    for g in h.all() {
        verify(&k, &g).await;
    }
    let st = k.sb.state().await;
    let w = st
        .webhooks
        .iter()
        .find(|w| w.rail == WebhookRail::Plaid && w.body.contains("NEW_ACCOUNTS"))
        .unwrap();
    assert!(w.status == WebhookStatus::Delivered);
    assert_eq!((w.attempts, w.last_http_status), (4, Some(200)));
}

#[tokio::test]
async fn a_receiver_that_never_answers_200_is_given_up_after_24_hours() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, _) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;
    h.fail.store(u32::MAX, Ordering::SeqCst);
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    // 30 s, 2, 8, 32, 128, 512 min: six retries, the next would pass 24 h.
    for _ in 0..8 {
        k.sb.advance(Duration::hours(9)).await.unwrap();
    }
    assert_eq!(h.all().len(), 7);
    let st = k.sb.state().await;
    let w = st
        .webhooks
        .iter()
        .find(|w| w.rail == WebhookRail::Plaid && w.body.contains("NEW_ACCOUNTS"))
        .unwrap();
    assert!(w.status == WebhookStatus::Failed);
    assert_eq!(w.last_http_status, Some(500));
}

#[test]
fn plaid_backoff_is_30s_times_4_within_a_day() {
    use crate::engine::plaid_backoff;
    let delays: Vec<i64> = (1..=7)
        .map_while(|a| plaid_backoff(a).map(|d| d.num_seconds()))
        .collect();
    assert_eq!(delays, [30, 120, 480, 1920, 7680, 30720]);
    assert_eq!(plaid_backoff(7), None);
}

#[tokio::test]
async fn fire_webhook_sends_each_documented_code() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, item_id) = seeded(&k).await;

    // No webhook on the item yet: Plaid's sandbox refuses.
    let (s, v) = fire(&k, &token, json!({"webhook_code": "DEFAULT_UPDATE"})).await;
    assert_eq!((s, code(&v)), (400, "SANDBOX_WEBHOOK_INVALID"), "{v}");
    assert_eq!(v["error_type"], "SANDBOX_ERROR");
    set_webhook(&k, &h, &token, &h.url).await;

    let account_id = k.sb.state().await.clients[0]
        .plaid
        .account
        .account_id
        .clone();
    let cases = [
        (
            json!({"webhook_code": "SYNC_UPDATES_AVAILABLE"}),
            json!({"webhook_type": "TRANSACTIONS",
            "initial_update_complete": true, "historical_update_complete": true}),
        ),
        (
            json!({"webhook_type": "TRANSACTIONS", "webhook_code": "DEFAULT_UPDATE"}),
            json!({"webhook_type": "TRANSACTIONS", "new_transactions": 0, "error": null}),
        ),
        (
            json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
            json!({"webhook_type": "ITEM", "error": null}),
        ),
        (
            json!({"webhook_type": "ITEM", "webhook_code": "ERROR"}),
            json!({"webhook_type": "ITEM"}),
        ),
        (
            json!({"webhook_code": "LOGIN_REPAIRED"}),
            json!({"webhook_type": "ITEM"}),
        ),
        (
            json!({"webhook_code": "PENDING_DISCONNECT"}),
            json!({"webhook_type": "ITEM",
            "reason": "INSTITUTION_MIGRATION"}),
        ),
    ];
    for (req, want) in cases {
        h.clear();
        let (s, v) = fire(&k, &token, req.clone()).await;
        assert_eq!((s, &v["webhook_fired"]), (200, &json!(true)), "{req}: {v}");
        k.sb.deliver_pending_webhooks().await;
        let got = h.all();
        assert_eq!(got.len(), 1, "{req}");
        verify(&k, &got[0]).await;
        let b = got[0].json();
        assert_eq!(b["webhook_code"], req["webhook_code"]);
        assert_eq!(b["item_id"], item_id.as_str());
        for (f, x) in want.as_object().unwrap() {
            assert_eq!(&b[f], x, "{f} of {b}");
        }
        match req["webhook_code"].as_str().unwrap() {
            // Only the webhook: the Item still answers.
            "ERROR" => {
                assert_eq!(b["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
                let (s, _) = k
                    .plaid("/accounts/get", json!({"access_token": token}))
                    .await;
                assert_eq!(s, 200, "fire_webhook changes no Item");
            }
            "PENDING_DISCONNECT" => {
                let at =
                    chrono::DateTime::parse_from_rfc3339(b["disconnect_time"].as_str().unwrap())
                        .unwrap();
                let ahead = at.with_timezone(&chrono::Utc) - k.sb.clock().now();
                assert!(
                    (ahead - Duration::days(7)).num_seconds().abs() <= 60,
                    "{ahead}"
                );
            }
            _ => {}
        }
    }

    // Refused: unknown codes, types that do not fit, products the item
    // does not have.
    for (req, want) in [
        (json!({"webhook_code": "NOPE"}), "INVALID_FIELD"),
        (
            json!({"webhook_type": "NOPE", "webhook_code": "DEFAULT_UPDATE"}),
            "INVALID_FIELD",
        ),
        (
            json!({"webhook_type": "ITEM", "webhook_code": "SYNC_UPDATES_AVAILABLE"}),
            "INVALID_FIELD",
        ),
        (
            json!({"webhook_type": "AUTH", "webhook_code": "DEFAULT_UPDATE"}),
            "SANDBOX_PRODUCT_NOT_ENABLED",
        ),
        (
            json!({"webhook_code": "ERROR"}),
            "SANDBOX_PRODUCT_NOT_ENABLED",
        ),
        (
            json!({"webhook_code": "PRODUCT_READY"}),
            "SANDBOX_PRODUCT_NOT_ENABLED",
        ),
        (json!({}), "MISSING_FIELDS"),
    ] {
        let (s, v) = fire(&k, &token, req.clone()).await;
        assert_eq!((s, code(&v)), (400, want), "{req}: {v}");
    }

    // Revocations: the webhook goes out, then the token is dead.
    h.clear();
    let (s, _) = fire(&k, &token, json!({"webhook_code": "USER_ACCOUNT_REVOKED"})).await;
    assert_eq!(s, 200);
    let (s, v) = k
        .plaid("/accounts/get", json!({"access_token": token}))
        .await;
    assert_eq!((s, code(&v)), (400, "ITEM_NOT_FOUND"));
    let (s, v) = k.plaid("/item/get", json!({"access_token": token})).await;
    assert_eq!((s, code(&v)), (400, "ITEM_NOT_FOUND"));
    k.sb.deliver_pending_webhooks().await;
    let got = h.all();
    assert_eq!(got.len(), 1);
    verify(&k, &got[0]).await;
    assert_eq!(
        got[0].json(),
        json!({"webhook_type": "ITEM", "webhook_code": "USER_ACCOUNT_REVOKED", "item_id": item_id,
               "account_id": account_id, "environment": "sandbox"})
    );
}

#[tokio::test]
async fn user_permission_revoked_ends_the_item() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, item_id) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;
    let (s, _) = fire(
        &k,
        &token,
        json!({"webhook_type": "ITEM", "webhook_code": "USER_PERMISSION_REVOKED"}),
    )
    .await;
    assert_eq!(s, 200);
    for path in [
        "/accounts/get",
        "/transactions/sync",
        "/item/get",
        "/item/remove",
    ] {
        let (s, v) = k.plaid(path, json!({"access_token": token})).await;
        assert_eq!((s, code(&v)), (400, "ITEM_NOT_FOUND"), "{path}");
    }
    k.sb.deliver_pending_webhooks().await;
    let got = h.all();
    assert_eq!(got.len(), 1);
    verify(&k, &got[0]).await;
    let b = got[0].json();
    assert_eq!(
        (b["webhook_code"].as_str(), b["item_id"].as_str()),
        (Some("USER_PERMISSION_REVOKED"), Some(item_id.as_str()))
    );
    assert_eq!(b["error"]["error_code"], "USER_PERMISSION_REVOKED");
    assert_eq!(b["error"]["error_type"], "ITEM_ERROR");
    assert_eq!(b["error"]["status"], 400);
}

#[tokio::test]
async fn item_webhook_update_acknowledges_to_the_new_url() {
    let k = start(String::new()).await;
    let old = Hooks::start().await;
    let new = Hooks::start().await;
    let (token, item_id) = seeded(&k).await;
    set_webhook(&k, &old, &token, &old.url).await;

    let (s, v) = k
        .plaid(
            "/item/webhook/update",
            json!({"access_token": token, "webhook": new.url}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["item"]["webhook"], new.url.as_str());
    assert_eq!(v["item"]["item_id"], item_id.as_str());
    assert!(v["request_id"].is_string());
    k.sb.deliver_pending_webhooks().await;
    assert!(old.all().is_empty());
    let got = new.all();
    assert_eq!(got.len(), 1);
    verify(&k, &got[0]).await;
    assert_eq!(
        got[0].json(),
        json!({"webhook_type": "ITEM", "webhook_code": "WEBHOOK_UPDATE_ACKNOWLEDGED",
               "item_id": item_id, "new_webhook_url": new.url, "error": null,
               "environment": "sandbox"})
    );

    // Later webhooks follow the item's new URL.
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(
        new.delivered(),
        ["WEBHOOK_UPDATE_ACKNOWLEDGED", "NEW_ACCOUNTS_AVAILABLE"]
    );
    assert!(old.all().is_empty());

    let (s, v) = k
        .plaid(
            "/item/webhook/update",
            json!({"access_token": token, "webhook": "not a url"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_FIELD"));
    let (s, v) = k
        .plaid(
            "/item/webhook/update",
            json!({"access_token": "access-sandbox-nope", "webhook": new.url}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_ACCESS_TOKEN"));
}

#[tokio::test]
async fn new_transactions_on_an_advance_send_sync_updates_available() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, item_id) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;

    // Plaid sends it only to Items that have called /transactions/sync.
    k.sb.advance(Duration::days(2)).await.unwrap();
    assert!(h.all().is_empty());
    let (s, _) = k
        .plaid("/transactions/sync", json!({"access_token": token}))
        .await;
    assert_eq!(s, 200);
    k.sb.advance(Duration::seconds(1)).await.unwrap();
    assert!(
        h.all().is_empty(),
        "what the first sync fetched is not news"
    );

    // An advance that brings new transactions: one webhook for the item.
    let before = k.sb.state().await.clients[0].plaid.txns.len();
    k.sb.advance(Duration::days(3)).await.unwrap();
    assert!(k.sb.state().await.clients[0].plaid.txns.len() > before);
    assert_eq!(h.delivered(), ["SYNC_UPDATES_AVAILABLE"]);
    verify(&k, &h.all()[0]).await;
    assert_eq!(h.all()[0].json()["item_id"], item_id.as_str());
    // An advance with nothing new: nothing.
    h.clear();
    k.sb.advance(Duration::seconds(1)).await.unwrap();
    assert!(h.all().is_empty());

    // While the login is broken the news waits; the repair brings it.
    k.plaid("/sandbox/item/reset_login", json!({"access_token": token}))
        .await;
    k.sb.advance(Duration::days(2)).await.unwrap();
    assert_eq!(h.delivered(), ["ERROR"]);
    h.clear();
    // A fired LOGIN_REPAIRED is only news: the login is still broken and
    // the transactions still wait.
    fire(&k, &token, json!({"webhook_code": "LOGIN_REPAIRED"})).await;
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(h.delivered(), ["LOGIN_REPAIRED"]);
    let (s, v) = k
        .plaid("/accounts/get", json!({"access_token": token}))
        .await;
    assert_eq!((s, code(&v)), (400, "ITEM_LOGIN_REQUIRED"));
}

#[tokio::test]
async fn an_item_without_a_webhook_url_gets_nothing() {
    let k = start(String::new()).await;
    let (token, item_id) = seeded(&k).await;
    k.plaid("/transactions/sync", json!({"access_token": token}))
        .await;
    k.plaid("/sandbox/item/reset_login", json!({"access_token": token}))
        .await;
    let mut f = k.sb.faults().await;
    f.plaid_login_repaired_after_update_mode = true;
    k.sb.set_faults(f).await;
    update_mode(&k, &token).await;
    k.sb.advance(Duration::days(3)).await.unwrap();
    let st = k.sb.state().await;
    assert!(
        !st.webhooks.iter().any(|w| w.rail == WebhookRail::Plaid),
        "nothing queued for {item_id}"
    );
}

#[tokio::test]
async fn item_remove_stops_every_delivery_for_the_item() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, _) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;
    h.fail.store(u32::MAX, Ordering::SeqCst);
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(h.all().len(), 1);
    let (s, _) = k
        .plaid("/item/remove", json!({"access_token": token}))
        .await;
    assert_eq!(s, 200);
    k.sb.advance(Duration::days(1)).await.unwrap();
    assert_eq!(h.all().len(), 1, "no retry after the removal");
    let st = k.sb.state().await;
    assert!(st
        .webhooks
        .iter()
        .filter(|w| w.rail == WebhookRail::Plaid)
        .all(|w| w.status != WebhookStatus::Pending));
    assert!(st
        .webhooks
        .iter()
        .any(|w| w.status == WebhookStatus::Cancelled));
}

#[tokio::test]
async fn the_webhook_faults_apply_to_plaid_too() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, _) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;

    let mut f = k.sb.faults().await;
    f.webhook_drop_next = 1;
    k.sb.set_faults(f).await;
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    assert!(h.all().is_empty(), "dropped");

    let mut f = k.sb.faults().await;
    f.webhook_duplicate = true;
    k.sb.set_faults(f).await;
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    let got = h.all();
    assert_eq!(got.len(), 2, "duplicated");
    assert_eq!(got[0].body, got[1].body);
    for g in &got {
        verify(&k, g).await;
    }
    h.clear();

    let mut f = k.sb.faults().await;
    f.webhook_duplicate = false;
    f.webhook_reorder = true;
    k.sb.set_faults(f).await;
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    fire(&k, &token, json!({"webhook_code": "PENDING_DISCONNECT"})).await;
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(
        h.delivered(),
        ["PENDING_DISCONNECT", "NEW_ACCOUNTS_AVAILABLE"]
    );
}

#[tokio::test]
async fn rotating_the_key_gives_a_new_kid_and_expires_the_old() {
    let k = start(String::new()).await;
    let h = Hooks::start().await;
    let (token, _) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    let (old_kid, _) = verify(&k, &h.all()[0]).await;
    h.clear();

    // A control POST must say JSON.
    let url = format!("{}/control/plaid/rotate_webhook_key", k.base);
    let r = k.http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = k.http.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    let new_kid = v["key"]["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert!(v["key"]["expired_at"].is_null());
    assert_eq!(v["expired"][0]["kid"], old_kid.as_str());

    // The old key is still there, expired now; webhooks use the new one.
    let (s, v) = k
        .plaid("/webhook_verification_key/get", json!({"key_id": old_kid}))
        .await;
    assert_eq!(s, 200);
    let expired = v["key"]["expired_at"].as_i64().unwrap();
    assert!((chrono::Utc::now().timestamp() - expired).abs() <= 60);
    fire(
        &k,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    let (kid, _) = verify(&k, &h.all()[0]).await;
    assert_eq!(kid, new_kid);
}

#[tokio::test]
async fn the_key_and_item_webhooks_survive_a_restart() {
    let store = Arc::new(MemoryStore::new());
    let k = start_with(store.clone(), String::new()).await;
    let h = Hooks::start().await;
    let (token, _) = seeded(&k).await;
    set_webhook(&k, &h, &token, &h.url).await;
    let before = k.sb.state().await.plaid_webhook_keys;
    assert_eq!(before.len(), 1);
    // Debug never shows the private key.
    let shown = format!("{:?}", before[0]);
    assert!(
        shown.contains("[redacted]") && !shown.contains(&before[0].pkcs8),
        "{shown}"
    );

    // A second sandbox from the saved document: the same key, the same
    // item URL; its webhooks verify with the key fetched from the first.
    let k2 = start_with(store.clone(), String::new()).await;
    let after = k2.sb.state().await.plaid_webhook_keys;
    assert_eq!(after.len(), 1);
    assert_eq!(
        (
            &after[0].kid,
            &after[0].x,
            &after[0].y,
            &after[0].pkcs8,
            after[0].created_at
        ),
        (
            &before[0].kid,
            &before[0].x,
            &before[0].y,
            &before[0].pkcs8,
            before[0].created_at
        )
    );
    fire(
        &k2,
        &token,
        json!({"webhook_code": "NEW_ACCOUNTS_AVAILABLE"}),
    )
    .await;
    k2.sb.deliver_pending_webhooks().await;
    let (kid, _) = verify(&k, &h.all()[0]).await;
    assert_eq!(kid, before[0].kid);
    // And a world saved before the key existed gets one on load.
    let mut doc = store.snapshot().unwrap();
    doc.as_object_mut().unwrap().remove("plaid_webhook_keys");
    let old = Arc::new(MemoryStore::holding(&doc));
    let k3 = start_with(old.clone(), String::new()).await;
    assert_eq!(k3.sb.state().await.plaid_webhook_keys.len(), 1);
    assert!(old.snapshot().unwrap()["plaid_webhook_keys"][0]["kid"].is_string());
}
