//! Stripe webhooks end to end: endpoints over HTTP, events made by API
//! calls delivered to a receiver on a local port through the sandbox's
//! webhook queue, verified as Stripe's libraries do.

use super::webhooks::{backoff, signature};
use crate::sim_state::{WebhookRail, WebhookStatus};
use crate::testkit::{start, Kit};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Duration;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn signature_matches_the_rails_md_vector() {
    let body = r#"{"id":"evt_test_123","object":"event","type":"invoice.paid"}"#;
    assert_eq!(
        signature("whsec_test_secret", 1_700_000_000, body),
        "t=1700000000,v1=a4ebd5be24fc9c02e060e5021678e32bccbec86ad5af54ea7099320c1d92ec11"
    );
}

#[test]
fn test_mode_retries_three_times_then_stops() {
    assert_eq!(backoff(1), Some(Duration::hours(1)));
    assert_eq!(backoff(2), Some(Duration::hours(2)));
    assert_eq!(backoff(3), Some(Duration::hours(4)));
    assert_eq!(backoff(4), None);
    assert_eq!(backoff(0), None);
}

/// A receiver: records (Stripe-Signature, body), answers 500 to the next
/// `fail` requests and 200 after.
#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<(String, String, u16)>>>,
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
            let sig = headers
                .get("stripe-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            h.got.lock().unwrap().push((
                sig,
                String::from_utf8_lossy(&body).into_owned(),
                status.as_u16(),
            ));
            status
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/stripe", l.local_addr().unwrap());
        let h = Hooks {
            url,
            ..Hooks::default()
        };
        let app = Router::new()
            .route("/hooks/stripe", post(take))
            .with_state(h.clone());
        tokio::spawn(async move { axum::serve(l, app).await });
        h
    }

    fn all(&self) -> Vec<(String, String, u16)> {
        self.got.lock().unwrap().clone()
    }

    fn types(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|(_, b, _)| {
                serde_json::from_str::<Value>(b).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

/// Verify as Stripe's libraries do: parse `t` and `v1`, recompute.
fn verifies(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_owned()),
            Some(("v1", x)) => v1.push(x.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let want = hex::encode(mac.finalize().into_bytes());
    v1.contains(&want)
}

async fn key(k: &Kit) -> String {
    k.sb.inner.state.lock().await.oauth.stripe_accounts[0]
        .restricted_key
        .clone()
}

async fn call(
    k: &Kit,
    key: &str,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let url = format!("{}/stripe/v1{path}", k.base);
    let mut req = k.http.request(method.clone(), url).bearer_auth(key);
    if method == reqwest::Method::POST {
        req = req.form(form);
    } else {
        req = req.query(form);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn api_post(k: &Kit, key: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    call(k, key, reqwest::Method::POST, path, form).await
}

/// An endpoint at `url` for `events`; returns (id, secret).
async fn endpoint(k: &Kit, key: &str, url: &str, events: &[&str]) -> (String, String) {
    let mut form = vec![("url", url)];
    form.extend(events.iter().map(|e| ("enabled_events[]", *e)));
    let (s, v) = api_post(k, key, "/webhook_endpoints", &form).await;
    assert_eq!(s, 200, "{v}");
    (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

/// A customer's invoice, finalized and paid out of band: `invoice.paid`.
async fn pay_an_invoice(k: &Kit, key: &str) -> String {
    let (s, cus) = api_post(k, key, "/customers", &[("name", "Hooked Co")]).await;
    assert_eq!(s, 200, "{cus}");
    let (s, inv) = api_post(
        k,
        key,
        "/invoices",
        &[
            ("customer", cus["id"].as_str().unwrap()),
            ("collection_method", "send_invoice"),
            ("days_until_due", "30"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{inv}");
    let id = inv["id"].as_str().unwrap().to_owned();
    let item = [
        ("customer", cus["id"].as_str().unwrap()),
        ("invoice", id.as_str()),
        ("amount", "12345"),
        ("description", "Consulting"),
    ];
    let (s, v) = api_post(k, key, "/invoiceitems", &item).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api_post(k, key, &format!("/invoices/{id}/finalize"), &[]).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api_post(
        k,
        key,
        &format!("/invoices/{id}/pay"),
        &[("paid_out_of_band", "true")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    id
}

#[tokio::test]
async fn endpoints_show_the_secret_only_on_create_and_validate_like_stripe() {
    let k = start(String::new()).await;
    let key = key(&k).await;
    let (s, v) = api_post(
        &k,
        &key,
        "/webhook_endpoints",
        &[
            ("url", "https://example.test/hooks"),
            ("enabled_events[]", "invoice.paid"),
            ("description", "AR"),
            ("metadata[team]", "finance"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "webhook_endpoint");
    assert_eq!(v["status"], "enabled");
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(v["metadata"]["team"], "finance");
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_"));
    let get = reqwest::Method::GET;
    let (s, one) = call(
        &k,
        &key,
        get.clone(),
        &format!("/webhook_endpoints/{id}"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert!(one.get("secret").is_none(), "{one}");
    let (_, list) = call(&k, &key, get.clone(), "/webhook_endpoints", &[]).await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(list["data"][0].get("secret").is_none());
    let (s, up) = api_post(
        &k,
        &key,
        &format!("/webhook_endpoints/{id}"),
        &[("disabled", "true"), ("enabled_events[]", "*")],
    )
    .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["status"], "disabled");
    assert_eq!(up["enabled_events"][0], "*");
    assert!(up.get("secret").is_none());
    // Missing url, missing enabled_events, an unknown type.
    let (s, e) = api_post(&k, &key, "/webhook_endpoints", &[("enabled_events[]", "*")]).await;
    assert_eq!((s, e["error"]["param"].as_str()), (400, Some("url")));
    assert_eq!(e["error"]["type"], "invalid_request_error");
    let (s, e) = api_post(
        &k,
        &key,
        "/webhook_endpoints",
        &[("url", "https://x.test/")],
    )
    .await;
    assert_eq!(
        (s, e["error"]["param"].as_str()),
        (400, Some("enabled_events"))
    );
    let (s, e) = api_post(
        &k,
        &key,
        "/webhook_endpoints",
        &[
            ("url", "https://x.test/"),
            ("enabled_events[]", "invoice.nope"),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"]["param"].as_str()),
        (400, Some("enabled_events[0]"))
    );
    let del = reqwest::Method::DELETE;
    let (s, d) = call(
        &k,
        &key,
        del.clone(),
        &format!("/webhook_endpoints/{id}"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        d,
        serde_json::json!({"id": id, "object": "webhook_endpoint", "deleted": true})
    );
    let (s, _) = call(&k, &key, get, &format!("/webhook_endpoints/{id}"), &[]).await;
    assert_eq!(s, 404);
    let (s, _) = call(&k, &key, del, &format!("/webhook_endpoints/{id}"), &[]).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_paid_invoice_is_delivered_signed_to_matching_endpoints_only() {
    let k = start(String::new()).await;
    let key = key(&k).await;
    let h = Hooks::start().await;
    let other = Hooks::start().await;
    let (_, secret) = endpoint(&k, &key, &h.url, &["invoice.paid"]).await;
    endpoint(&k, &key, &other.url, &["payout.paid"]).await;
    // The seeded history made before the endpoints is not sent.
    let inv = pay_an_invoice(&k, &key).await;
    // A demo has moved the sandbox's clock two days on: the signature's `t`
    // is still the wall clock's, or Stripe's tolerance would refuse it.
    k.sb.inner.clock.advance(Duration::days(2));
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(h.types(), ["invoice.paid"]);
    assert!(other.all().is_empty(), "payout.paid only: nothing sent");
    let (sig, body, _) = h.all()[0].clone();
    assert!(verifies(&secret, &sig, &body), "{sig}");
    assert!(!verifies(&secret, &sig, &body.replace("paid", "PAID")));
    assert!(!verifies("whsec_other", &sig, &body));
    let t: i64 = sig[2..sig.find(',').unwrap()].parse().unwrap();
    let wall = chrono::Utc::now().timestamp();
    assert!(
        (wall - t).abs() <= 60,
        "the wall clock, as Stripe signs (t {t}, wall {wall}, sandbox {})",
        k.sb.inner.clock.now().timestamp()
    );
    let ev: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ev["object"], "event");
    assert_eq!(ev["data"]["object"]["id"], inv.as_str());
    // The same event is what `GET /v1/events/{id}` answers.
    let (_, got) = call(
        &k,
        &key,
        reqwest::Method::GET,
        &format!("/events/{}", ev["id"].as_str().unwrap()),
        &[],
    )
    .await;
    // Sent while pending; delivered, it is pending no more.
    assert_eq!(ev["pending_webhooks"], 1);
    assert_eq!(got["pending_webhooks"], 0);
    let mut sent = ev.clone();
    sent["pending_webhooks"] = 0.into();
    assert_eq!(got, sent);
    // Delivered once; nothing more to send.
    assert_eq!(k.sb.deliver_pending_webhooks().await, 0);
    assert_eq!(h.all().len(), 1);
}

#[tokio::test]
async fn a_failing_receiver_gets_three_retries_on_the_schedule_then_dead_letter() {
    let k = start(String::new()).await;
    let key = key(&k).await;
    let h = Hooks::start().await;
    h.fail.store(100, Ordering::SeqCst);
    endpoint(&k, &key, &h.url, &["invoice.paid"]).await;
    let inv = pay_an_invoice(&k, &key).await;
    // Only this invoice's (the clock makes other invoices paid too).
    let n = || h.all().iter().filter(|(_, b, _)| b.contains(&inv)).count();
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(n(), 1);
    // Not before the hour is up.
    k.sb.advance(Duration::minutes(59)).await.unwrap();
    assert_eq!(n(), 1);
    k.sb.advance(Duration::minutes(1)).await.unwrap();
    assert_eq!(n(), 2);
    k.sb.advance(Duration::minutes(119)).await.unwrap();
    assert_eq!(n(), 2);
    k.sb.advance(Duration::minutes(1)).await.unwrap();
    assert_eq!(n(), 3);
    k.sb.advance(Duration::hours(4)).await.unwrap();
    assert_eq!(n(), 4);
    k.sb.advance(Duration::days(2)).await.unwrap();
    assert_eq!(n(), 4, "dead-lettered: no fifth attempt");
    assert!(h.all().iter().all(|(_, _, s)| *s == 500));
    let inv_event = |b: &str| b.contains(&inv);
    let st = k.sb.inner.state.lock().await;
    let w: Vec<_> = st
        .webhooks
        .iter()
        .filter(|w| w.rail == WebhookRail::Stripe && inv_event(&w.body))
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].status == WebhookStatus::Failed);
    assert_eq!((w[0].attempts, w[0].last_http_status), (4, Some(500)));
    let evt = w[0].event_id.clone();
    drop(st);
    let (_, e) = call(
        &k,
        &key,
        reqwest::Method::GET,
        &format!("/events/{evt}"),
        &[],
    )
    .await;
    assert_eq!(e["pending_webhooks"], 1, "never delivered: still pending");
}

#[tokio::test]
async fn a_deleted_or_disabled_endpoint_gets_nothing_more() {
    let k = start(String::new()).await;
    let key = key(&k).await;
    let h = Hooks::start().await;
    h.fail.store(1, Ordering::SeqCst);
    let (id, _) = endpoint(&k, &key, &h.url, &["*"]).await;
    pay_an_invoice(&k, &key).await;
    k.sb.deliver_pending_webhooks().await;
    let first = h.all().len();
    assert!(first >= 4, "customer, invoice events: {:?}", h.types());
    let (s, _) = call(
        &k,
        &key,
        reqwest::Method::DELETE,
        &format!("/webhook_endpoints/{id}"),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    // The failed first delivery's retry is not sent, nor any new event.
    pay_an_invoice(&k, &key).await;
    k.sb.advance(Duration::hours(8)).await.unwrap();
    assert_eq!(h.all().len(), first);
}

/// Endpoints and their secrets are Stripe data: saved in Stripe's part and
/// still signing deliveries after a restart.
#[tokio::test]
async fn endpoints_survive_a_restart_and_still_sign() {
    use crate::{MemoryStore, SimStore, STRIPE_PART};
    let store = Arc::new(MemoryStore::new());
    let k = crate::testkit::start_with(store.clone(), String::new()).await;
    let key = key(&k).await;
    let h = Hooks::start().await;
    let (id, secret) = endpoint(&k, &key, &h.url, &["invoice.paid"]).await;
    let part = store.load_part(STRIPE_PART).await.unwrap().unwrap();
    assert!(part.to_string().contains(&id));
    let k2 = crate::testkit::start_with(store.clone(), String::new()).await;
    let (s, v) = call(
        &k2,
        &key,
        reqwest::Method::GET,
        &format!("/webhook_endpoints/{id}"),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    pay_an_invoice(&k2, &key).await;
    k2.sb.deliver_pending_webhooks().await;
    assert_eq!(h.types(), ["invoice.paid"]);
    let (sig, body, _) = h.all()[0].clone();
    assert!(verifies(&secret, &sig, &body));
}

/// The webhook faults are the queue's: a delivery delayed a day, then sent
/// twice, with one event id.
#[tokio::test]
async fn the_webhook_faults_apply_to_stripe_deliveries() {
    let k = start(String::new()).await;
    let key = key(&k).await;
    let h = Hooks::start().await;
    endpoint(&k, &key, &h.url, &["invoice.paid"]).await;
    k.sb.set_faults(crate::Faults {
        webhook_delay_next: 1,
        webhook_duplicate: true,
        ..Default::default()
    })
    .await;
    let inv = pay_an_invoice(&k, &key).await;
    let n = || h.all().iter().filter(|(_, b, _)| b.contains(&inv)).count();
    k.sb.deliver_pending_webhooks().await;
    assert_eq!(n(), 0, "delayed a day");
    k.sb.advance(Duration::days(1)).await.unwrap();
    assert_eq!(n(), 2, "duplicated");
    let bodies: Vec<_> = h
        .all()
        .into_iter()
        .filter(|(_, b, _)| b.contains(&inv))
        .collect();
    assert_eq!(bodies[0].1, bodies[1].1);
}

#[tokio::test]
async fn the_unified_payments_export_is_served_by_the_control_api() {
    let k = start(String::new()).await;
    let url = format!("{}/control/stripe/unified_payments", k.base);
    let r = k.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400, "the account is required");
    let r = k
        .http
        .get(format!("{url}?account=acct_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let id = {
        let mut st = k.sb.inner.state.lock().await;
        let id = st.oauth.stripe_accounts[0].id.clone();
        let now = k.sb.inner.clock.now();
        super::activity::ensure_account(&mut st, &id, now);
        id
    };
    let r = k
        .http
        .get(format!("{url}?account={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = r.text().await.unwrap();
    assert!(body.starts_with("ID,Created date (UTC),Amount,"), "{body}");
    let charges = k.sb.inner.state.lock().await.stripe.accounts[&id]
        .charges
        .len();
    assert_eq!(body.lines().count(), charges + 1);
}
