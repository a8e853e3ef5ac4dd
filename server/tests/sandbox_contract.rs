//! Contract tests: the real adapters over HTTP against the simulators,
//! served on 127.0.0.1:0, with a tiny webhook receiver that checks the HMAC.
//! Nothing sleeps; time moves through `advance`.

use app::model::Money;
use app::ssr::clock::Clock;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use hmac::{Hmac, Mac};
use rowcol::rails::http::build_client;
use rowcol::rails::plaid::PlaidClient;
use rowcol::rails::qbo::QboClient;
use rowcol::rails::ramp::RampClient;
use rowcol::rails::{
    BillLookup, BillPay, Cash, CreateBill, Ledger, LedgerBill, RailAuth, RailError, RampBillStatus,
    RampSetup, SecretString,
};
use sandbox::{
    AdvanceReport, DemoWorld, Faults, MemoryStore, RailFault, Sandbox, SandboxConfig, Secret,
    SimRail,
};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;

const HOOK_SECRET: &str = "whsec_sandbox_test";
const PLAID_ID: &str = "plaid_client_test";
const PLAID_SECRET: &str = "plaid_secret_test";

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<std::sync::Mutex<Vec<Value>>>,
    /// Status to answer with; 0 means 200.
    status: Arc<AtomicU16>,
    bad_signatures: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    for name in ["x-ramp-webhook-signature", "x-ramp-signature"] {
        let sig = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| hex::decode(s).ok());
        let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
        mac.update(&body);
        if sig.is_none_or(|s| mac.verify_slice(&s).is_err()) {
            r.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return StatusCode::UNAUTHORIZED;
        }
    }
    let status = match r.status.load(Ordering::SeqCst) {
        0 => 200,
        s => s,
    };
    if status < 300 {
        r.got
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap());
    }
    StatusCode::from_u16(status).unwrap()
}

struct Harness {
    sb: Sandbox,
    store: Arc<MemoryStore>,
    base: String,
    world: DemoWorld,
    receiver: Receiver,
    qbo: QboClient,
    ramp: RampClient,
    plaid: PlaidClient,
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

async fn harness() -> Harness {
    let receiver = Receiver::default();
    let hook_addr = serve(
        Router::new()
            .route("/webhooks/ramp", post(receive))
            .with_state(receiver.clone()),
    )
    .await;
    let store = Arc::new(MemoryStore::new());
    // The sandbox builds absolute URLs (Ramp's `page.next`) from its
    // configured base, so it is told the address it will listen on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sandbox", listener.local_addr().unwrap());
    let config = SandboxConfig {
        ramp_webhook_url: format!("http://{hook_addr}/webhooks/ramp"),
        ramp_webhook_secret: Secret::new(HOOK_SECRET),
        qbo_webhook_url: String::new(),
        qbo_webhook_verifier: Secret::new("qbo_verifier_test"),
        qbo_webhook_format: Default::default(),
        plaid_client_id: PLAID_ID.into(),
        plaid_secret: Secret::new(PLAID_SECRET),
        seed: sandbox::world::DEFAULT_SEED,
        start: Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")),
        clients: sandbox::world::TEST_CLIENTS,
        living: false,
        public_base: base.clone(),
        redirect_uris: vec![],
    };
    let sb = Sandbox::start(Clock::system(), store.clone(), config)
        .await
        .unwrap();
    let app = Router::new().nest("/sandbox", sb.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Harness {
        world: sb.world().await,
        qbo: QboClient::new(
            format!("{base}/qbo"),
            rowcol::rails::http::RailHttp::new(
                build_client(rowcol::rails::http::TOTAL_TIMEOUT),
                Default::default(),
            ),
        ),
        ramp: RampClient::new(
            format!("{base}/ramp"),
            rowcol::rails::http::RailHttp::new(
                build_client(rowcol::rails::http::TOTAL_TIMEOUT),
                Default::default(),
            ),
        ),
        plaid: PlaidClient::new(
            format!("{base}/plaid"),
            PLAID_ID.into(),
            SecretString::new(PLAID_SECRET),
            rowcol::rails::http::RailHttp::new(
                build_client(rowcol::rails::http::TOTAL_TIMEOUT),
                Default::default(),
            ),
        ),
        sb,
        store,
        base,
        receiver,
    }
}

impl Harness {
    fn qbo_auth(&self, i: usize) -> RailAuth {
        let c = &self.world.clients[i];
        RailAuth {
            external_id: c.qbo_realm_id.clone(),
            access_token: SecretString::new(c.qbo_access_token.expose()),
        }
    }
    fn ramp_auth(&self, i: usize) -> RailAuth {
        let c = &self.world.clients[i];
        RailAuth {
            external_id: c.ramp_business_id.clone(),
            access_token: SecretString::new(c.ramp_access_token.expose()),
        }
    }
    fn plaid_auth(&self, i: usize) -> RailAuth {
        let c = &self.world.clients[i];
        RailAuth {
            external_id: c.plaid_item_id.clone(),
            access_token: SecretString::new(c.plaid_access_token.expose()),
        }
    }

    /// A create request paying the first open QBO bill of client `i` in full.
    async fn create_req(&self, i: usize, remote_id: &str) -> (CreateBill, LedgerBill, RampSetup) {
        let setup = self.ramp.bill_pay_setup(&self.ramp_auth(i)).await.unwrap();
        let bill = self
            .qbo
            .open_bills(&self.qbo_auth(i))
            .await
            .unwrap()
            .remove(0);
        let v = setup
            .vendors
            .iter()
            .find(|v| v.accounting_vendor_remote_id.as_deref() == Some(&bill.vendor_id))
            .unwrap();
        let req = CreateBill {
            remote_id: remote_id.into(),
            entity_id: setup.entity_id.clone(),
            vendor_id: v.id.clone(),
            vendor_contact_id: v.contact_id.clone().unwrap(),
            invoice_number: bill.doc_number.clone().unwrap(),
            issued_at: bill.txn_date,
            due_at: bill.due_date,
            amount: bill.balance.clone(),
            memo: Some("RowCol test".into()),
            payment_arrival_date: next_weekday(self.sb.clock().today()),
            source_bank_account_id: setup.source_bank_account_id.clone(),
            vendor_account_id: v.vendor_account_id.clone().unwrap(),
        };
        (req, bill, setup)
    }

    async fn ramp_bill_count(&self, i: usize) -> usize {
        self.sb.state().await.clients[i].ramp.bills.len()
    }
}

fn next_weekday(d: NaiveDate) -> NaiveDate {
    let mut d = d + Duration::days(1);
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += Duration::days(1);
    }
    d
}

#[tokio::test]
async fn open_bills_come_back_with_exact_money() {
    let h = harness().await;
    assert_eq!(h.world.clients.len(), 24);
    assert_eq!(h.world.clients[0].name, "Alder Creek Dental");
    let got = h.qbo.open_bills(&h.qbo_auth(0)).await.unwrap();
    let st = h.sb.state().await;
    let seeded = &st.clients[0].qbo.bills;
    assert_eq!(got.len(), seeded.len());
    for (g, s) in got.iter().zip(seeded) {
        assert_eq!(g.id, s.id);
        assert_eq!(g.total, Money::usd(s.total_cents));
        assert_eq!(g.balance, Money::usd(s.balance_cents));
        assert_eq!(g.due_date, s.due_date);
        assert_eq!(g.doc_number.as_deref(), Some(s.doc_number.as_str()));
        assert!(!g.vendor_name.is_empty());
    }
}

#[tokio::test]
async fn bill_pay_setup_finds_entity_bank_and_vendors() {
    let h = harness().await;
    let setup = h.ramp.bill_pay_setup(&h.ramp_auth(3)).await.unwrap();
    let st = h.sb.state().await;
    let c = &st.clients[3];
    assert_eq!(setup.entity_id, c.ramp.entity.id);
    assert_eq!(setup.source_bank_account_id, c.ramp.entity.bank_account_id);
    assert_eq!(setup.vendors.len(), c.qbo.vendors.len());
    for v in &setup.vendors {
        let remote = v.accounting_vendor_remote_id.as_deref().unwrap();
        assert!(c.qbo.vendor(remote).is_some());
        assert!(v.contact_id.is_some() && v.vendor_account_id.is_some());
    }
}

#[tokio::test]
async fn a_second_create_with_the_same_remote_id_makes_a_second_bill() {
    // Ramp documents `remote_id` as the client's own id, `POST /bills` as 201
    // or 400, and no de-duplication: the simulator must not invent one.
    let h = harness().await;
    let (req, _, _) = h.create_req(1, "pay_twice_1").await;
    let first = h.ramp.create_bill(&h.ramp_auth(1), &req).await.unwrap();
    assert_eq!(first.status, RampBillStatus::Open);
    assert_eq!(first.approval_status.as_deref(), Some("APPROVED"));
    assert_eq!(first.amount, req.amount);
    let raw = reqwest::Client::new()
        .post(format!("{}/ramp/developer/v1/bills", h.base))
        .bearer_auth(h.world.clients[1].ramp_access_token.expose())
        .json(&rowcol::rails::ramp::create_body(&req))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 201);
    assert!(raw.headers().contains_key("x-trace-id"));
    let second: Value = raw.json().await.unwrap();
    assert_ne!(second["id"].as_str(), Some(first.id.as_str()));
    assert_eq!(h.ramp_bill_count(1).await, 2);
    let found = h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(1), &lookup(&req, h.sb.clock().now()))
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "both carry the remote_id");
}

/// A look-up of `req`'s remote_id among bills created in the last hour.
fn lookup(req: &CreateBill, now: chrono::DateTime<chrono::Utc>) -> BillLookup {
    BillLookup {
        entity_id: req.entity_id.clone(),
        vendor_id: req.vendor_id.clone(),
        remote_id: req.remote_id.clone(),
        created_since: now - Duration::hours(1),
    }
}

#[tokio::test]
async fn injected_create_failures_create_nothing() {
    let h = harness().await;
    let (req, _, _) = h.create_req(2, "pay_fail_1").await;
    h.sb.set_faults(Faults {
        ramp_create_fail_next: vec![503, 429],
        ..Faults::default()
    })
    .await;
    let e = h.ramp.create_bill(&h.ramp_auth(2), &req).await.unwrap_err();
    assert!(matches!(e, RailError::Transient(_)), "{e:?}");
    let e = h.ramp.create_bill(&h.ramp_auth(2), &req).await.unwrap_err();
    assert!(
        matches!(e, RailError::RateLimited { retry_after: Some(d) } if d.as_secs() == 1),
        "{e:?}"
    );
    assert_eq!(h.ramp_bill_count(2).await, 0);
    h.ramp.create_bill(&h.ramp_auth(2), &req).await.unwrap();
    assert_eq!(h.ramp_bill_count(2).await, 1);
    assert!(h.sb.faults().await.ramp_create_fail_next.is_empty());
}

#[tokio::test]
async fn a_lost_response_leaves_a_bill_found_by_remote_id_once_the_list_settles() {
    let h = harness().await;
    let i = 4;
    let (req, _, _) = h.create_req(i, "pay_lost_1").await;
    h.sb.set_faults(Faults {
        ramp_create_lose_response_next: 1,
        ramp_list_lag_secs: 30,
        ..Faults::default()
    })
    .await;
    let e = h.ramp.create_bill(&h.ramp_auth(i), &req).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(
        h.ramp_bill_count(i).await,
        1,
        "the bill exists all the same"
    );
    let look = lookup(&req, h.sb.clock().now());
    // The list lags a just-created bill ...
    let found = h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(i), &look)
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    // ... a read by id does not ...
    let id = h.sb.state().await.clients[i].ramp.bills[0].id.clone();
    let got = h.ramp.get_bill(&h.ramp_auth(i), &id).await.unwrap();
    assert_eq!(got.remote_id.as_deref(), Some("pay_lost_1"));
    // ... and once it settles the bill is listed, with its remote_id.
    h.sb.advance(Duration::seconds(31)).await.unwrap();
    let found = h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(i), &look)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(found[0].amount, req.amount);
    // Bills of another remote_id, or created before the window, are not it.
    let mut other = look.clone();
    other.remote_id = "pay_other".into();
    assert!(h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(i), &other)
        .await
        .unwrap()
        .is_empty());
    other = look.clone();
    other.created_since = h.sb.clock().now() + Duration::minutes(1);
    assert!(h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(i), &other)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn entities_and_vendor_accounts_have_ramps_documented_shapes() {
    // ApiEntityResource: `accounts[]` of EntityProviderAccount (usage_type,
    // bank_account_id); ApiVendorBankAccountResource: payment_method,
    // is_default, currency.
    let h = harness().await;
    let c = &h.world.clients[5];
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("{}/ramp/developer/v1/{path}", h.base))
            .bearer_auth(c.ramp_access_token.expose())
            .send()
    };
    let list: Value = get("entities".into()).await.unwrap().json().await.unwrap();
    let entity = &list["data"][0];
    assert!(entity.get("bank_accounts").is_none(), "{entity}");
    let accounts = entity["accounts"].as_array().unwrap();
    let bill_pay: Vec<&Value> = accounts
        .iter()
        .filter(|a| a["usage_type"] == "BILL_PAY_BANK_ACCOUNT")
        .collect();
    assert_eq!(bill_pay.len(), 1);
    let st = h.sb.state().await;
    let sim = &st.clients[5].ramp;
    assert_eq!(
        bill_pay[0]["bank_account_id"],
        sim.entity.bank_account_id.as_str()
    );
    assert!(accounts.iter().all(|a| a["internal_id"].is_string()));
    assert!(entity["location_ids"].is_array());
    let id = entity["id"].as_str().unwrap();
    let one: Value = get(format!("entities/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&one, entity);
    let bank: Value = get(format!("bank-accounts/{}", sim.entity.bank_account_id))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bank["account_number_last_four"],
        sim.entity.bank_last_four.as_str()
    );
    let v = &sim.vendors[0];
    let accts: Value = get(format!("vendors/{}/accounts", v.id))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = &accts["data"][0];
    assert_eq!(a["id"], v.account_id.as_str());
    assert_eq!(a["payment_method"], "ACH");
    assert_eq!(a["is_default"], true);
    assert_eq!(a["currency"], st.clients[5].currency.as_str());
    assert!(a.get("type").is_none(), "{a}");
    let missing = get("entities/nope".into()).await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn ledger_get_bill_follows_the_bookkeepers_changes() {
    use sandbox::QboBillEdit;
    let h = harness().await;
    let i = 6;
    let auth = h.qbo_auth(i);
    let realm = h.world.clients[i].qbo_realm_id.clone();
    let bill = h.qbo.open_bills(&auth).await.unwrap().remove(0);
    assert_eq!(
        h.qbo.get_bill(&auth, &bill.id).await.unwrap().as_ref(),
        Some(&bill)
    );
    let other = {
        let st = h.sb.state().await;
        st.clients[i]
            .qbo
            .vendors
            .iter()
            .find(|v| v.id != bill.vendor_id)
            .unwrap()
            .id
            .clone()
    };
    let total = bill.total.minor + 100;
    h.sb.qbo_edit_bill(&realm, &bill.id, QboBillEdit::SetTotal(total))
        .await
        .unwrap();
    h.sb.qbo_edit_bill(&realm, &bill.id, QboBillEdit::SetVendor(other.clone()))
        .await
        .unwrap();
    let now = h.qbo.get_bill(&auth, &bill.id).await.unwrap().unwrap();
    assert_eq!((now.total.minor, now.balance.minor), (total, total));
    assert_eq!(now.vendor_id, other);
    h.sb.qbo_edit_bill(&realm, &bill.id, QboBillEdit::PayInFull)
        .await
        .unwrap();
    let now = h.qbo.get_bill(&auth, &bill.id).await.unwrap().unwrap();
    assert_eq!(now.balance.minor, 0);
    assert_eq!(
        h.qbo
            .bill_payments_for_bill(&auth, &bill.id)
            .await
            .unwrap()
            .len(),
        1
    );
    // A bill with payments cannot be deleted; an untouched one can.
    assert!(h
        .sb
        .qbo_edit_bill(&realm, &bill.id, QboBillEdit::Delete)
        .await
        .is_err());
    let second = h.qbo.open_bills(&auth).await.unwrap().remove(0);
    h.sb.qbo_edit_bill(&realm, &second.id, QboBillEdit::Delete)
        .await
        .unwrap();
    assert_eq!(h.qbo.get_bill(&auth, &second.id).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_tokens_are_unauthorized() {
    let h = harness().await;
    let mut q = h.qbo_auth(0);
    q.access_token = SecretString::new("nope");
    assert!(matches!(
        h.qbo.open_bills(&q).await,
        Err(RailError::Unauthorized(_))
    ));
    let mut r = h.ramp_auth(0);
    r.access_token = SecretString::new("ramp_tok_nope");
    assert!(matches!(
        h.ramp.get_bill(&r, "x").await,
        Err(RailError::Unauthorized(_))
    ));
    let mut p = h.plaid_auth(0);
    p.access_token = SecretString::new("access-sandbox-nope");
    assert!(matches!(
        h.plaid.balance(&p).await,
        Err(RailError::Unauthorized(_))
    ));
    let wrong = PlaidClient::new(
        format!("{}/plaid", h.base),
        PLAID_ID.into(),
        SecretString::new("bad"),
        rowcol::rails::http::RailHttp::new(
            build_client(rowcol::rails::http::TOTAL_TIMEOUT),
            Default::default(),
        ),
    );
    assert!(matches!(
        wrong.balance(&h.plaid_auth(0)).await,
        Err(RailError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn paying_a_bill_moves_every_rail_and_sends_a_signed_webhook() {
    let h = harness().await;
    let i = 5;
    let (req, qbo_bill, _) = h.create_req(i, "pay_flow_1").await;
    let before = h.plaid.balance(&h.plaid_auth(i)).await.unwrap();
    // Drain the history so only new transactions show up afterwards.
    let mut cursor: Option<String> = None;
    loop {
        let page = h
            .plaid
            .transactions_sync(&h.plaid_auth(i), cursor.as_deref())
            .await
            .unwrap();
        assert!(page.added.iter().all(|t| t.account_id == before.account_id));
        cursor = Some(page.next_cursor);
        if !page.has_more {
            break;
        }
    }
    let bill = h.ramp.create_bill(&h.ramp_auth(i), &req).await.unwrap();
    let created_on = h.sb.clock().today();
    let days = (req.payment_arrival_date - h.sb.clock().today()).num_days();
    let report = h.sb.advance(Duration::days(days)).await.unwrap();
    assert_eq!(report.today, req.payment_arrival_date);
    assert_eq!((report.bills_paid, report.webhooks_delivered), (1, 1));

    let paid = h.ramp.get_bill(&h.ramp_auth(i), &bill.id).await.unwrap();
    assert_eq!(paid.status, RampBillStatus::Paid);
    assert_eq!(paid.payment_date, Some(req.payment_arrival_date));
    assert!(paid.trace_id.is_some() && paid.paid_at.is_some());

    let pays = h
        .qbo
        .bill_payments_for_bill(&h.qbo_auth(i), &qbo_bill.id)
        .await
        .unwrap();
    assert_eq!(pays.len(), 1);
    assert_eq!(pays[0].amount_for_bill, req.amount);
    assert_eq!(pays[0].total, req.amount);
    assert!(pays[0].private_note.as_deref().unwrap().contains(&bill.id));
    let open = h.qbo.open_bills(&h.qbo_auth(i)).await.unwrap();
    assert!(
        open.iter().all(|b| b.id != qbo_bill.id),
        "the bill is paid in QBO"
    );

    let page = h
        .plaid
        .transactions_sync(&h.plaid_auth(i), cursor.as_deref())
        .await
        .unwrap();
    let ramp_txns: Vec<_> = page
        .added
        .iter()
        .filter(|t| t.name.starts_with("RAMP BILLPAY "))
        .collect();
    assert_eq!(ramp_txns.len(), 1);
    let t = ramp_txns[0];
    assert_eq!((t.amount.clone(), t.pending), (req.amount.clone(), false));
    // An ACH debit leaves the bank up to three business days before the
    // arrival date, never before the bill was made.
    assert!(
        created_on <= t.date && t.date <= req.payment_arrival_date,
        "debit on {}, bill made {created_on}, arriving {}",
        t.date,
        req.payment_arrival_date
    );
    // Ordinary banking went on meanwhile; the balance moved by exactly the
    // new transactions.
    let moved: i64 = page.added.iter().map(|t| t.amount.minor).sum();
    let after = h.plaid.balance(&h.plaid_auth(i)).await.unwrap();
    assert_eq!(before.available.minor - after.available.minor, moved);

    let got = h.receiver.got.lock().unwrap().clone();
    assert_eq!(h.receiver.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "bills.paid");
    assert_eq!(got[0]["object"]["id"], bill.id.as_str());
    assert_eq!(
        got[0]["business_id"],
        h.world.clients[i].ramp_business_id.as_str()
    );
}

#[tokio::test]
async fn webhooks_retry_on_5xx_and_honour_faults() {
    let h = harness().await;
    let i = 6;
    h.receiver.status.store(503, Ordering::SeqCst);
    let (req, _, _) = h.create_req(i, "pay_hook_1").await;
    h.ramp.create_bill(&h.ramp_auth(i), &req).await.unwrap();
    let days = (req.payment_arrival_date - h.sb.clock().today()).num_days();
    let r = h.sb.advance(Duration::days(days)).await.unwrap();
    assert_eq!((r.bills_paid, r.webhooks_delivered), (1, 0));
    h.receiver.status.store(0, Ordering::SeqCst);
    assert_eq!(h.sb.deliver_pending_webhooks().await, 0, "not due yet");
    h.sb.advance(Duration::minutes(1)).await.unwrap();
    assert_eq!(h.receiver.got.lock().unwrap().len(), 1);
    assert_eq!(h.sb.deliver_pending_webhooks().await, 0, "delivered once");

    // Duplicate: same event id twice. Drop: nothing arrives.
    h.sb.set_faults(Faults {
        webhook_duplicate: true,
        ..Faults::default()
    })
    .await;
    let (mut req2, _, _) = h.create_req(i, "pay_hook_2").await;
    req2.payment_arrival_date = next_weekday(h.sb.clock().today());
    h.ramp.create_bill(&h.ramp_auth(i), &req2).await.unwrap();
    let days = (req2.payment_arrival_date - h.sb.clock().today()).num_days();
    h.sb.advance(Duration::days(days)).await.unwrap();
    let got = h.receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1]["id"], got[2]["id"]);

    h.sb.set_faults(Faults {
        webhook_drop_next: 1,
        ..Faults::default()
    })
    .await;
    let (mut req3, _, _) = h.create_req(i, "pay_hook_3").await;
    req3.payment_arrival_date = next_weekday(h.sb.clock().today());
    h.ramp.create_bill(&h.ramp_auth(i), &req3).await.unwrap();
    let days = (req3.payment_arrival_date - h.sb.clock().today()).num_days();
    let r = h.sb.advance(Duration::days(days)).await.unwrap();
    assert_eq!((r.bills_paid, r.webhooks_delivered), (1, 0));
    assert_eq!(h.receiver.got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn qbo_faults_skip_or_skew_the_bill_payment() {
    let h = harness().await;
    let i = 7;
    h.sb.set_faults(Faults {
        qbo_amount_mismatch_next: 1,
        ..Faults::default()
    })
    .await;
    let (req, qbo_bill, _) = h.create_req(i, "pay_skew").await;
    h.ramp.create_bill(&h.ramp_auth(i), &req).await.unwrap();
    let days = (req.payment_arrival_date - h.sb.clock().today()).num_days();
    h.sb.advance(Duration::days(days)).await.unwrap();
    let pays = h
        .qbo
        .bill_payments_for_bill(&h.qbo_auth(i), &qbo_bill.id)
        .await
        .unwrap();
    assert_eq!(pays[0].amount_for_bill.minor, req.amount.minor + 100);

    h.sb.set_faults(Faults {
        qbo_skip_next: 1,
        ..Faults::default()
    })
    .await;
    let (mut req2, qbo_bill2, _) = h.create_req(i, "pay_skip").await;
    req2.payment_arrival_date = next_weekday(h.sb.clock().today());
    h.ramp.create_bill(&h.ramp_auth(i), &req2).await.unwrap();
    let days = (req2.payment_arrival_date - h.sb.clock().today()).num_days();
    assert_eq!(
        h.sb.advance(Duration::days(days)).await.unwrap().bills_paid,
        1
    );
    assert!(h
        .qbo
        .bill_payments_for_bill(&h.qbo_auth(i), &qbo_bill2.id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn plaid_login_required_is_its_own_error() {
    let h = harness().await;
    let item = h.world.clients[8].plaid_item_id.clone();
    h.sb.set_faults(Faults {
        plaid_login_required: vec![item],
        ..Faults::default()
    })
    .await;
    assert!(matches!(
        h.plaid.balance(&h.plaid_auth(8)).await,
        Err(RailError::LoginRequired(_))
    ));
    assert!(matches!(
        h.plaid.transactions_sync(&h.plaid_auth(8), None).await,
        Err(RailError::LoginRequired(_))
    ));
    h.plaid.balance(&h.plaid_auth(9)).await.unwrap();
    // The sandbox route does the same for an item.
    let body = json!({"access_token": h.world.clients[9].plaid_access_token.expose()});
    h.plaid
        .call("/sandbox/item/reset_login", &body)
        .await
        .unwrap();
    assert!(matches!(
        h.plaid.balance(&h.plaid_auth(9)).await,
        Err(RailError::LoginRequired(_))
    ));
    let item = h.plaid.call("/item/get", &body).await.unwrap();
    assert_eq!(item["item"]["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
}

#[tokio::test]
async fn malformed_qbo_query_is_rejected() {
    let h = harness().await;
    let e = h
        .qbo
        .query_all(&h.qbo_auth(0), "Bill", " WHERE Balance >")
        .await
        .unwrap_err();
    assert!(
        matches!(e, RailError::Rejected(ref m) if m.contains("4000") && m.contains("trace")),
        "{e:?}"
    );
    let vendors = h
        .qbo
        .query_all(&h.qbo_auth(0), "Vendor", " WHERE DisplayName LIKE '%'")
        .await
        .unwrap();
    assert!(vendors.len() >= 2);
    let checking = h
        .qbo
        .query_all(&h.qbo_auth(0), "Account", " WHERE AccountType = 'Bank'")
        .await
        .unwrap();
    assert_eq!(checking[0]["Name"], "Checking");
}

#[tokio::test]
async fn qbo_query_pages_and_counts() {
    let h = harness().await;
    let c = &h.world.clients[0];
    let get = |q: &str| {
        reqwest::Client::new()
            .get(format!(
                "{}/qbo/v3/company/{}/query",
                h.base, c.qbo_realm_id
            ))
            .query(&[("query", q), ("minorversion", "75")])
            .bearer_auth(c.qbo_access_token.expose())
            .send()
    };
    let r = get("SELECT count(*) FROM Bill WHERE Balance > '0'")
        .await
        .unwrap();
    assert!(r.headers().contains_key("intuit_tid"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["QueryResponse"]["totalCount"], 5);
    let v: Value = get("SELECT * FROM Bill ORDERBY Id STARTPOSITION 2 MAXRESULTS 2")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["QueryResponse"]["Bill"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            v["QueryResponse"]["startPosition"].as_u64(),
            v["QueryResponse"]["totalCount"].as_u64()
        ),
        (Some(2), Some(5))
    );
    let v: Value = get("SELECT * FROM Bill WHERE Id = 'none'")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["QueryResponse"], json!({}));
}

#[tokio::test]
async fn ramp_pages_with_full_next_urls_and_validates() {
    let h = harness().await;
    let c = &h.world.clients[0];
    let http = reqwest::Client::new();
    let get = |url: String| {
        http.get(url)
            .bearer_auth(c.ramp_access_token.expose())
            .send()
    };
    let r = get(format!("{}/ramp/developer/v1/vendors?page_size=1", h.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_v2"]["error_code"], "DEVELOPER_7001");
    let v: Value = get(format!("{}/ramp/developer/v1/vendors?page_size=2", h.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = v["page"]["next"].as_str().map(str::to_owned);
    let total = h.sb.state().await.clients[0].ramp.vendors.len();
    if total > 2 {
        let next = next.expect("a next page");
        assert!(next.starts_with(&h.base), "{next}");
        let v: Value = get(next).await.unwrap().json().await.unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), total - 2);
    } else {
        assert!(next.is_none());
    }
    // A weekend arrival date is refused with 400 (Ramp's InvalidInput).
    let (mut req, _, _) = h.create_req(0, "pay_weekend").await;
    while !matches!(req.payment_arrival_date.weekday(), Weekday::Sat) {
        req.payment_arrival_date += Duration::days(1);
    }
    let e = h.ramp.create_bill(&h.ramp_auth(0), &req).await.unwrap_err();
    assert!(
        matches!(e, RailError::Rejected(ref m) if m.contains("400")),
        "{e:?}"
    );
    assert!(matches!(
        h.ramp.get_bill(&h.ramp_auth(0), "missing").await,
        Err(RailError::NotFound(_))
    ));
}

#[tokio::test]
async fn control_routes_validate_and_state_persists() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let post_adv = |body: &'static str| {
        http.post(format!("{}/control/advance", h.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for bad in [
        "",
        "{}",
        "{\"days\": 0}",
        "{\"days\": 91}",
        "{\"days\": \"x\"}",
        "nope",
    ] {
        let r = post_adv(bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    }
    let today = h.sb.clock().today();
    let r: AdvanceReport = post_adv("{\"days\": 2}")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r.today, today + Duration::days(2));
    let f: Faults = http
        .post(format!("{}/control/faults", h.base))
        .json(&json!({"qbo_skip_next": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f.qbo_skip_next, 2);
    let st: Value = http
        .get(format!("{}/control/state", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["clients"], 24);
    assert_eq!(st["today"], (today + Duration::days(2)).to_string());

    // A second sandbox on the same store sees the same world and clock.
    let clock = Clock::system();
    let again = Sandbox::start(clock.clone(), h.store.clone(), h.sb.config().clone())
        .await
        .unwrap();
    assert_eq!(clock.offset_secs(), h.sb.clock().offset_secs());
    assert_eq!(again.faults().await.qbo_skip_next, 2);
    let w = again.world().await;
    assert_eq!(
        w.clients[3].ramp_access_token.expose(),
        h.world.clients[3].ramp_access_token.expose()
    );
}

#[tokio::test]
async fn demo_world_has_the_promised_shape() {
    let h = harness().await;
    let names: Vec<_> = h.world.clients.iter().map(|c| c.name.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        (names.len(), names == sorted, names[0].as_str()),
        (24, true, "Alder Creek Dental")
    );
    let today = h.sb.clock().today();
    // Burn from what the adapters see: trailing 30-day outflows / 30.
    for (name, expect_largest_fits) in [("Alder Creek Dental", true), ("Birch Lane Bakery", false)]
    {
        let i = names.iter().position(|n| n == name).unwrap();
        let bal = h.plaid.balance(&h.plaid_auth(i)).await.unwrap();
        let mut cursor: Option<String> = None;
        let mut out = 0i64;
        loop {
            let p = h
                .plaid
                .transactions_sync(&h.plaid_auth(i), cursor.as_deref())
                .await
                .unwrap();
            out += p
                .added
                .iter()
                .filter(|t| {
                    t.amount.minor > 0 && t.date >= today - Duration::days(30) && t.date < today
                })
                .map(|t| t.amount.minor)
                .sum::<i64>();
            cursor = Some(p.next_cursor);
            if !p.has_more {
                break;
            }
        }
        let buffer = out / 30 * 14;
        let bills = h.qbo.open_bills(&h.qbo_auth(i)).await.unwrap();
        let largest = bills.iter().map(|b| b.balance.minor).max().unwrap();
        let smallest = bills.iter().map(|b| b.balance.minor).min().unwrap();
        assert_eq!(
            bal.available.minor - largest >= buffer,
            expect_largest_fits,
            "{name}"
        );
        assert!(bal.available.minor - smallest >= buffer, "{name}");
        if name == "Alder Creek Dental" {
            assert!(bal.available.minor >= 90_000_000);
            assert_eq!(bills.len(), 5);
        }
    }
}

#[tokio::test]
async fn ramp_rate_limit_is_200_per_10_seconds() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let url = format!("{}/ramp/developer/v1/entities", h.base);
    let token = h.world.clients[10].ramp_access_token.expose().to_owned();
    let mut statuses = Vec::new();
    for _ in 0..201 {
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..200].iter().all(|s| *s == 200));
    assert_eq!(statuses[200], 429);
    // Another business has its own window.
    let e = h.ramp.bill_pay_setup(&h.ramp_auth(11)).await;
    assert!(e.is_ok());
    let e = h.ramp.bill_pay_setup(&h.ramp_auth(10)).await.unwrap_err();
    assert!(matches!(e, RailError::RateLimited { .. }), "{e:?}");
}

#[tokio::test]
async fn audit_note_lands_on_the_bill_payment() {
    let h = harness().await;
    let i = 12;
    let (req, qbo_bill, _) = h.create_req(i, "pay_note").await;
    h.ramp.create_bill(&h.ramp_auth(i), &req).await.unwrap();
    let days = (req.payment_arrival_date - h.sb.clock().today()).num_days();
    h.sb.advance(Duration::days(days)).await.unwrap();
    let pays = h
        .qbo
        .bill_payments_for_bill(&h.qbo_auth(i), &qbo_bill.id)
        .await
        .unwrap();
    let token = h
        .qbo
        .write_private_note(&h.qbo_auth(i), &pays[0].id, "RowCol verified pay_note")
        .await
        .unwrap();
    assert_eq!(token, "1");
    let pays = h
        .qbo
        .bill_payments_for_bill(&h.qbo_auth(i), &qbo_bill.id)
        .await
        .unwrap();
    assert_eq!(
        pays[0].private_note.as_deref(),
        Some("RowCol verified pay_note")
    );
    let e = h
        .qbo
        .write_private_note(&h.qbo_auth(i), "999999", "x")
        .await
        .unwrap_err();
    assert!(matches!(e, RailError::NotFound(_)), "{e:?}");
    let e = h
        .qbo
        .bill_payments_for_bill(&h.qbo_auth(i), "999999")
        .await
        .unwrap_err();
    assert!(matches!(e, RailError::NotFound(_)), "{e:?}");
}

/// Injected rail failures (`Faults::rail_fail_next`) answer in each rail's
/// own error format, so the adapters classify them as they would the real
/// thing, apply nothing, and are consumed in order; a hang outlives the
/// caller's timeout; a fault aimed at one endpoint leaves the others alone.
#[tokio::test]
async fn injected_rail_failures_speak_each_rails_error_format() {
    let h = harness().await;
    h.sb.set_faults(Faults {
        rail_fail_next: vec![
            RailFault::any(SimRail::Qbo, 429),
            RailFault::any(SimRail::Qbo, 500),
            RailFault::any(SimRail::Plaid, 429),
            RailFault::any(SimRail::Plaid, 500),
            RailFault::any(SimRail::Ramp, 503),
            RailFault {
                method: Some("GET".into()),
                path: Some("/developer/v1/bills".into()),
                ..RailFault::any(SimRail::Ramp, 429)
            },
        ],
        ..Faults::default()
    })
    .await;
    let e = h.qbo.open_bills(&h.qbo_auth(0)).await.unwrap_err();
    assert!(matches!(e, RailError::RateLimited { .. }), "{e:?}");
    let e = h.qbo.open_bills(&h.qbo_auth(0)).await.unwrap_err();
    assert!(matches!(e, RailError::Transient(_)), "{e:?}");
    h.qbo.open_bills(&h.qbo_auth(0)).await.unwrap();
    let e = h.plaid.balance(&h.plaid_auth(0)).await.unwrap_err();
    assert!(matches!(e, RailError::RateLimited { .. }), "{e:?}");
    let e = h.plaid.balance(&h.plaid_auth(0)).await.unwrap_err();
    assert!(matches!(e, RailError::Transient(_)), "{e:?}");
    h.plaid.balance(&h.plaid_auth(0)).await.unwrap();
    // Ramp: the any-endpoint 503 hits the setup; the bills-list 429 waits
    // for a list call and leaves the create alone.
    let e = h.ramp.bill_pay_setup(&h.ramp_auth(0)).await.unwrap_err();
    assert!(matches!(e, RailError::Transient(_)), "{e:?}");
    let (req, _, setup) = h.create_req(0, "pay_fault_1").await;
    let created = h.ramp.create_bill(&h.ramp_auth(0), &req).await.unwrap();
    let look = BillLookup {
        entity_id: setup.entity_id.clone(),
        vendor_id: req.vendor_id.clone(),
        remote_id: "pay_fault_1".into(),
        created_since: h.sb.clock().now() - Duration::days(1),
    };
    let e = h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(0), &look)
        .await
        .unwrap_err();
    assert!(matches!(e, RailError::RateLimited { .. }), "{e:?}");
    let found = h
        .ramp
        .bills_with_remote_id(&h.ramp_auth(0), &look)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, created.id);
    assert!(h.sb.faults().await.rail_fail_next.is_empty());

    // A hang: no answer within the caller's budget, then a transport error
    // (outcome unknown), and nothing applied.
    let (req, _, _) = h.create_req(1, "pay_fault_2").await;
    h.sb.set_faults(Faults {
        rail_fail_next: vec![RailFault::any(SimRail::Ramp, 0)],
        rail_hang_ms: 800,
        ..Faults::default()
    })
    .await;
    let impatient = RampClient::new(
        format!("{}/ramp", h.base),
        rowcol::rails::http::RailHttp::new(
            build_client(std::time::Duration::from_millis(200)),
            Default::default(),
        ),
    );
    let before = h.ramp_bill_count(1).await;
    let e = impatient
        .create_bill(&h.ramp_auth(1), &req)
        .await
        .unwrap_err();
    assert!(matches!(e, RailError::Transient(_)), "{e:?}");
    assert_eq!(h.ramp_bill_count(1).await, before);
}

/// A store that notes the offset the shared clock shows at each save, and
/// can refuse saves (a process killed before its save landed).
struct WatchingStore {
    inner: MemoryStore,
    clock: Clock,
    seen_at_save: std::sync::Mutex<Vec<i64>>,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl sandbox::SimStore for WatchingStore {
    async fn load(&self) -> anyhow::Result<Option<Value>> {
        self.inner.load().await
    }

    async fn save(&self, snapshot: &sandbox::Snapshot<'_>) -> anyhow::Result<()> {
        self.seen_at_save
            .lock()
            .expect("lock")
            .push(self.clock.offset_secs());
        if self.refuse.load(Ordering::SeqCst) {
            anyhow::bail!("killed before the save landed");
        }
        self.inner.save(snapshot).await
    }

    async fn load_part(&self, part: &str) -> anyhow::Result<Option<Value>> {
        self.inner.load_part(part).await
    }
}

/// Found by server/tests/crash/ (leases a day or two ahead after a
/// restart): an advance moved the shared clock before the world at the new
/// time was saved, so RowCol's jobs leased and stamped work with a time
/// that a process killed before the save no longer had on restart (the
/// saved clock). The new time must become visible only once it is durable,
/// and a save that never lands must leave the clock where the store has it.
#[tokio::test]
async fn an_advance_moves_the_clock_only_once_the_world_is_saved() {
    let clock = Clock::system();
    let store = Arc::new(WatchingStore {
        inner: MemoryStore::new(),
        clock: clock.clone(),
        seen_at_save: Default::default(),
        refuse: Default::default(),
    });
    let config = SandboxConfig {
        ramp_webhook_url: String::new(),
        ramp_webhook_secret: Secret::new(HOOK_SECRET),
        qbo_webhook_url: String::new(),
        qbo_webhook_verifier: Secret::new("qbo_verifier_test"),
        qbo_webhook_format: Default::default(),
        plaid_client_id: PLAID_ID.into(),
        plaid_secret: Secret::new(PLAID_SECRET),
        seed: sandbox::world::DEFAULT_SEED,
        start: Some(NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")),
        clients: 4,
        living: false,
        public_base: "http://127.0.0.1/sandbox".into(),
        redirect_uris: vec![],
    };
    let sb = Sandbox::start(clock.clone(), store.clone(), config)
        .await
        .unwrap();
    let before = clock.offset_secs();
    store.seen_at_save.lock().expect("lock").clear();

    sb.advance(Duration::days(1)).await.unwrap();
    assert_eq!(
        *store.seen_at_save.lock().expect("lock"),
        vec![before],
        "the shared clock showed the new time while the world was being saved"
    );
    let saved = |s: &WatchingStore| {
        s.inner.snapshot().expect("saved")["clock_offset_secs"]
            .as_i64()
            .expect("offset")
    };
    assert_eq!(clock.offset_secs(), before + 86_400);
    assert_eq!(saved(&store), clock.offset_secs());

    // A save that never lands: what a restart would load is the old time,
    // and so is what this process goes on with.
    store.refuse.store(true, Ordering::SeqCst);
    assert!(sb.advance(Duration::days(1)).await.is_err());
    assert_eq!(clock.offset_secs(), before + 86_400);
    assert_eq!(saved(&store), clock.offset_secs());
    assert_eq!(
        sb.state().await.clock_offset_secs,
        clock.offset_secs(),
        "the simulators' world moved without its clock"
    );
}
