//! Test helpers: a sandbox served on a real local listener, a webhook
//! receiver, and a few shortcuts into the state.

use crate::sim_state::*;
use crate::{MemoryStore, Sandbox, SandboxConfig, Secret, SimStore};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use clock::Clock;
use serde_json::Value;
use std::sync::{Arc, Mutex};

pub const PLAID_ID: &str = "plaid_client_test";
pub const PLAID_SECRET: &str = "plaid_secret_test";
pub const HOOK_SECRET: &str = "whsec_seeded_test";
pub const REDIRECT: &str = "http://app.test/connect/plaid/callback";

pub struct Kit {
    pub sb: Sandbox,
    /// `http://addr/sandbox`
    pub base: String,
    pub http: reqwest::Client,
}

/// One received webhook: the path it came to, its headers and raw body.
#[derive(Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    pub base: String,
}

impl Receiver {
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn listen() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A receiver answering 200 to every POST under `/hooks/...`.
pub async fn receiver() -> Receiver {
    async fn take(
        State(r): State<Receiver>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> &'static str {
        r.got.lock().unwrap().push(Received {
            path: uri.path().to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        "ok"
    }
    let (l, a) = listen().await;
    let r = Receiver {
        got: Arc::default(),
        base: format!("http://{a}"),
    };
    let app = Router::new()
        .route("/hooks/{name}", post(take))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(l, app).await });
    r
}

pub fn config(public_base: String, webhook_url: String) -> SandboxConfig {
    SandboxConfig {
        ramp_webhook_url: webhook_url,
        ramp_webhook_secret: Secret::new(HOOK_SECRET),
        qbo_webhook_url: String::new(),
        qbo_webhook_verifier: Secret::new("qbo_verifier_test"),
        qbo_webhook_format: Default::default(),
        plaid_client_id: PLAID_ID.into(),
        plaid_secret: Secret::new(PLAID_SECRET),
        seed: crate::world::DEFAULT_SEED,
        start: None,
        clients: 3,
        living: false,
        public_base,
        redirect_uris: vec![REDIRECT.into()],
    }
}

/// A sandbox (3 clients) served on a local port; Ramp's seeded webhooks go
/// to `webhook_url`.
pub async fn start(webhook_url: String) -> Kit {
    start_with(Arc::new(MemoryStore::new()), webhook_url).await
}

pub async fn start_with(store: Arc<dyn SimStore>, webhook_url: String) -> Kit {
    let (l, a) = listen().await;
    let base = format!("http://{a}/sandbox");
    let sb = Sandbox::start(Clock::system(), store, config(base.clone(), webhook_url))
        .await
        .unwrap();
    let app = Router::new().nest("/sandbox", sb.router());
    tokio::spawn(async move { axum::serve(l, app).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Kit { sb, base, http }
}

impl Kit {
    /// POST a Plaid endpoint with the client credentials added to `body`.
    pub async fn plaid(&self, path: &str, mut body: Value) -> (u16, Value) {
        body["client_id"] = PLAID_ID.into();
        body["secret"] = PLAID_SECRET.into();
        let r = self
            .http
            .post(format!("{}/plaid{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A browser's GET of a page: (status, Location, body).
    pub async fn get_page(&self, url: &str) -> (u16, Option<String>, String) {
        let r = self.http.get(url).send().await.unwrap();
        page_parts(r).await
    }

    /// A browser's form POST: (status, Location, body).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        page_parts(r).await
    }

    /// A Ramp API call with a business's Bearer token.
    pub async fn ramp(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/ramp/developer/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Put an OPEN Ramp bill for client `ci` whose arrival date is today, so
    /// the next advance pays it. Returns its id.
    pub async fn due_bill(&self, ci: usize) -> String {
        let mut st = self.sb.inner.state.lock().await;
        let today = self.sb.inner.clock.today();
        let now = self.sb.inner.clock.now();
        let c = &mut st.clients[ci];
        let v = c.ramp.vendors[0].clone();
        let id = uuid::Uuid::new_v4().to_string();
        c.ramp.bills.push(RampBillRec {
            id: id.clone(),
            remote_id: None,
            entity_id: c.ramp.entity.id.clone(),
            vendor_id: v.id.clone(),
            vendor_contact_id: v.contact_id.clone(),
            invoice_number: format!("T-{}", &id[..8]),
            issued_at: today,
            due_at: today,
            amount_cents: 12_345,
            line_items: vec![(12_345, "Test".into())],
            memo: None,
            payment_arrival_date: today,
            source_bank_account_id: c.ramp.entity.bank_account_id.clone(),
            vendor_account_id: v.account_id.clone(),
            status: RampStatus::Open,
            created_at: now,
            paid_at: None,
            payment_date: None,
            trace_id: None,
            payment_method: "ACH".into(),
            ach_return: None,
            ach_lead: 0,
            debited_on: None,
            manual_payment_method: None,
            posting_date: None,
            archived_at: None,
        });
        id
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn page_parts(r: reqwest::Response) -> (u16, Option<String>, String) {
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, loc, r.text().await.unwrap_or_default())
}
