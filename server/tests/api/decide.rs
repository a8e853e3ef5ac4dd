//! Issue #16: deciding across the portfolio — the rules and their one
//! effect each, dual control (maker ≠ checker), overrides, versioned
//! policies and the idempotent batch. Every test on both engines.

use super::support::{Engine, TestApp, PASSWORD};
use serde_json::{json, Value};

both_engines!(
    a_batch_decides_per_client_and_answers_the_same_for_the_same_key,
    dual_control_waits_for_another_person_and_counts_its_cash,
    the_second_approval_judges_again_and_a_rejection_releases_the_cash,
    overrides_are_for_admins_with_a_reason_and_never_for_dual_control,
    a_possible_duplicate_is_refused_paid_bills_included,
    a_new_vendor_is_shown_and_waits_when_the_policy_says_so,
    policies_are_versioned_bounded_and_recorded_with_each_approval,
    the_approvals_page_filters_pages_and_suggests_a_batch,
    a_bill_changed_in_the_ledger_is_refused_until_re_synced,
    many_rows_read_the_same_whichever_way_the_engine_reads_them,
    the_approvals_page_sees_every_change_made_after_it_was_read,
);

const ADVISOR: &str = "advisor@northwind.test";
const ADMIN: &str = "admin@northwind.test";
const VIEWER: &str = "viewer@northwind.test";

/// A browser of its own, signed in as `email`.
struct User {
    http: reqwest::Client,
    base: String,
}

impl User {
    async fn new(app: &TestApp, email: &str) -> User {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let u = User {
            http,
            base: app.base.clone(),
        };
        let (status, body) = u
            .call("login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert!(
            status == 200 || status == 302,
            "login {email}: {status} {body}"
        );
        u
    }

    async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .form(form)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn batch(&self, key: &str, bills: &[&str], reason: Option<&str>) -> (u16, Value) {
        let mut form = vec![("batch_key", key)];
        for b in bills {
            form.push(("bill_ids[]", b));
        }
        if let Some(r) = reason {
            form.push(("override_reason", r));
        }
        self.call("approve_batch", &form).await
    }

    async fn client_id(&self, name: &str) -> String {
        let (status, body) = self.call("portfolio", &[]).await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .expect("rows")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no client {name}"))["client_id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// The client's open bills, smallest first: (bill_id, amount minor).
    async fn bills(&self, client_id: &str) -> Vec<(String, i64)> {
        let (status, body) = self.call("client", &[("client_id", client_id)]).await;
        assert_eq!(status, 200, "{body}");
        let mut v: Vec<(String, i64)> = body["bills"]
            .as_array()
            .expect("bills")
            .iter()
            .map(|b| {
                (
                    b["bill_id"].as_str().expect("id").to_owned(),
                    b["amount"]["minor"].as_i64().expect("amount"),
                )
            })
            .collect();
        v.sort_by_key(|(id, a)| (*a, id.clone()));
        v
    }

    async fn committed(&self, client_id: &str) -> i64 {
        let (_, body) = self.call("client", &[("client_id", client_id)]).await;
        body["summary"]["cash"]["approved_unpaid"]["minor"]
            .as_i64()
            .expect("committed")
    }

    async fn set_policy(&self, client_id: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![("client_id", client_id)];
        form.extend_from_slice(fields);
        self.call("set_client_policy", &form).await
    }
}

fn ids(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .iter()
        .map(|b| b["payment_id"].as_str().expect("payment id").to_owned())
        .collect()
}

fn client_part<'a>(answer: &'a Value, client_id: &str) -> &'a Value {
    answer["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["client_id"] == client_id)
        .unwrap_or_else(|| panic!("no part for {client_id} in {answer}"))
}

async fn a_batch_decides_per_client_and_answers_the_same_for_the_same_key(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let alder = advisor.client_id("Alder Creek Dental").await;
    let cedar = advisor.client_id("Cedar Ridge Veterinary").await;
    let birch = advisor.client_id("Birch Lane Bakery").await;
    let a = advisor.bills(&alder).await;
    let c = advisor.bills(&cedar).await;
    // All of Birch Lane's bills break its buffer (the breach test's case).
    let b: Vec<String> = advisor
        .bills(&birch)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut selection: Vec<&str> = vec![&a[0].0, &c[0].0];
    selection.extend(b.iter().map(String::as_str));

    let (status, first) = advisor.batch("batch-one", &selection, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["batch_key"], "batch-one");
    for cid in [&alder, &cedar] {
        let part = client_part(&first, cid);
        let accepted = ids(part, "approved").len() + ids(part, "awaiting_second_approval").len();
        assert_eq!(accepted, 1, "{part}");
        assert!(part["refused"].as_array().unwrap().is_empty(), "{part}");
    }
    let refused = client_part(&first, &birch);
    assert!(ids(refused, "approved").is_empty());
    let reasons = refused["refused"].as_array().unwrap();
    assert_eq!(reasons.len(), b.len());
    assert!(
        reasons.iter().all(|r| r["reason_code"] == "buffer"),
        "{refused}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| r["message"].as_str().unwrap().contains("buffer")),
        "{refused}"
    );

    // A double submit, a reload, a retry: the same answer, nothing new.
    let payments = app.count("select count(*) from payment").await;
    assert_eq!(payments, 2);
    let released = app
        .count("select count(*) from payment where state = 'approved'")
        .await;
    let (again_a, again_b) = tokio::join!(
        advisor.batch("batch-one", &selection, None),
        advisor.batch("batch-one", &selection, None)
    );
    assert_eq!(again_a, (200, first.clone()));
    assert_eq!(again_b, (200, first.clone()));
    assert_eq!(app.count("select count(*) from payment").await, payments);
    assert_eq!(
        app.count("select count(*) from job where kind = 'release_payment'")
            .await,
        released
    );
    // Two identical posts of a new key at once: one set of payments.
    let second: [&str; 1] = [&a[1].0];
    let (x, y) = tokio::join!(
        advisor.batch("batch-two", &second, None),
        advisor.batch("batch-two", &second, None)
    );
    assert_eq!(x, y);
    assert_eq!(app.count("select count(*) from payment").await, 3);

    // Viewers decide nothing; another firm's bill is not found.
    let viewer = User::new(&app, VIEWER).await;
    let (status, _) = viewer.batch("batch-v", &[&c[1].0], None).await;
    assert_eq!(status, 403);
    let (status, _) = advisor
        .batch("batch-x", &["bill_00000000000000000000000000000000"], None)
        .await;
    assert!(status == 404 || status == 400, "{status}");
    let (status, _) = advisor.batch("bad key!", &[&c[1].0], None).await;
    assert_eq!(status, 400);
    // The stored answer is readable by its key (the results page).
    let (status, stored) = advisor
        .call("batch_result", &[("batch_key", "batch-one")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored["clients"], first["clients"]);
}

/// Sets the client's dual-control threshold to its smallest bill, so that
/// bill needs two approvers whatever the seed's amounts.
async fn with_low_threshold(
    app: &TestApp,
    client: &str,
) -> (User, User, String, Vec<(String, i64)>) {
    let advisor = User::new(app, ADVISOR).await;
    let admin = User::new(app, ADMIN).await;
    let alder = advisor.client_id(client).await;
    let bills = advisor.bills(&alder).await;
    let threshold = bills[0].1.to_string();
    let (status, body) = admin
        .set_policy(&alder, &[("dual_control_threshold_minor", &threshold)])
        .await;
    assert_eq!(status, 200, "{body}");
    (advisor, admin, alder, bills)
}

async fn dual_control_waits_for_another_person_and_counts_its_cash(e: Engine) {
    let app = TestApp::spawn(e).await;
    let (advisor, admin, alder, bills) = with_low_threshold(&app, "Alder Creek Dental").await;
    let before = advisor.committed(&alder).await;
    let (status, answer) = advisor.batch("dual-1", &[&bills[0].0], None).await;
    assert_eq!(status, 200, "{answer}");
    let part = client_part(&answer, &alder);
    let waiting = ids(part, "awaiting_second_approval");
    assert_eq!(waiting.len(), 1, "{part}");
    let pid = &waiting[0];
    assert_eq!(app.payment_state(pid).await, "awaiting_second_approval");
    // Its cash counts at once, and nothing goes to Ramp yet.
    assert_eq!(advisor.committed(&alder).await, before + bills[0].1);
    assert_eq!(
        app.count("select count(*) from job where kind = 'release_payment'")
            .await,
        0
    );
    // It is on the waiting list, with who approved first.
    let (status, list) = admin.call("approvals/waiting", &[]).await;
    assert_eq!(status, 200);
    let row = &list.as_array().unwrap()[0];
    assert_eq!(row["payment_id"], pid.as_str());
    assert_eq!(row["first_approver"], ADVISOR);
    assert_eq!(row["mine"], false);

    // The same person twice: refused.
    let (status, body) = advisor.call("approve_second", &[("payment_id", pid)]).await;
    assert_eq!(status, 403, "{body}");
    // An admin approving alone: refused too.
    let (status, answer) = admin.batch("dual-2", &[&bills[1].0], None).await;
    assert_eq!(status, 200, "{answer}");
    let admins = ids(client_part(&answer, &alder), "awaiting_second_approval");
    assert_eq!(admins.len(), 1, "{answer}");
    let (status, _) = admin
        .call("approve_second", &[("payment_id", &admins[0])])
        .await;
    assert_eq!(status, 403);

    // Another person completes it: approved, released, two approval rows.
    let (status, body) = admin.call("approve_second", &[("payment_id", pid)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.payment_state(pid).await, "approved");
    assert_eq!(
        app.count(&format!(
            "select count(*) from approval where payment_id = '{pid}'"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count("select count(*) from job where kind = 'release_payment'")
            .await,
        1
    );
    // A second "second approval" is a conflict, never a second release.
    let (status, _) = advisor.call("approve_second", &[("payment_id", pid)]).await;
    assert_eq!(status, 409);
    app.drain().await;
    assert_eq!(app.payment_state(pid).await, "released");
    // The payment page shows both approvers.
    let (_, detail) = advisor.call("payment", &[("payment_id", pid)]).await;
    let approvers: Vec<&str> = detail["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .map(|a| a["approver"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, vec![ADVISOR, ADMIN]);
    // The audit log has both.
    assert_eq!(
        app.count(&format!(
            "select count(*) from audit_entry where subject = '{pid}'
             and action in ('payment.awaiting_second_approval', 'payment.approved')"
        ))
        .await,
        2
    );
}

async fn the_second_approval_judges_again_and_a_rejection_releases_the_cash(e: Engine) {
    let app = TestApp::spawn(e).await;
    // Birch Lane is the tight client: its smallest bill passes today's
    // 14-day buffer, nothing passes a 365-day one.
    let (advisor, admin, alder, bills) = with_low_threshold(&app, "Birch Lane Bakery").await;
    let before = advisor.committed(&alder).await;
    let (_, answer) = advisor.batch("again-1", &[&bills[0].0], None).await;
    let pid = ids(client_part(&answer, &alder), "awaiting_second_approval")[0].clone();
    // Meanwhile the policy tightens: a 365-day buffer this client cannot
    // keep. The second approval re-runs every rule and refuses; the payment
    // still waits.
    let (status, body) = admin.set_policy(&alder, &[("buffer_days", "365")]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin.call("approve_second", &[("payment_id", &pid)]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("buffer"), "{body}");
    assert_eq!(app.payment_state(&pid).await, "awaiting_second_approval");
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'approval.second_refused'")
            .await,
        1
    );
    // A rejection needs a reason; with one, the cash is released at once.
    let (status, _) = advisor
        .call("reject_payment", &[("payment_id", &pid), ("reason", " ")])
        .await;
    assert_eq!(status, 422);
    let viewer = User::new(&app, VIEWER).await;
    let (status, _) = viewer
        .call("reject_payment", &[("payment_id", &pid), ("reason", "no")])
        .await;
    assert_eq!(status, 403);
    let (status, body) = advisor
        .call(
            "reject_payment",
            &[("payment_id", &pid), ("reason", "vendor asked us to wait")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.payment_state(&pid).await, "rejected");
    assert_eq!(advisor.committed(&alder).await, before);
    // The bill can be decided again.
    let (status, answer) = advisor.batch("again-2", &[&bills[0].0], None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        client_part(&answer, &alder)["refused"][0]["reason_code"],
        "buffer"
    );
}

async fn overrides_are_for_admins_with_a_reason_and_never_for_dual_control(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let admin = User::new(&app, ADMIN).await;
    let birch = advisor.client_id("Birch Lane Bakery").await;
    let bills: Vec<String> = advisor
        .bills(&birch)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let refs: Vec<&str> = bills.iter().map(String::as_str).collect();
    let reason = "Client wired in a loan this morning; cash arrives today.";
    // An advisor may not override; an admin must say why.
    let (status, _) = advisor.batch("ovr-1", &refs, Some(reason)).await;
    assert_eq!(status, 403);
    let (status, body) = admin.batch("ovr-2", &refs, Some("because")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
    // With a reason the buffer is overridden; dual control is not.
    let (status, answer) = admin.batch("ovr-3", &refs, Some(reason)).await;
    assert_eq!(status, 200, "{answer}");
    let part = client_part(&answer, &birch);
    assert!(part["refused"].as_array().unwrap().is_empty(), "{part}");
    let approved = ids(part, "approved");
    let waiting = ids(part, "awaiting_second_approval");
    assert_eq!(approved.len() + waiting.len(), bills.len());
    let big = app
        .count(&format!(
            "select count(*) from staged_bill where client_id = '{birch}'
             and status = 'open' and balance_minor >= 1000000"
        ))
        .await;
    assert_eq!(waiting.len() as i64, big, "every bill ≥ 10,000.00 waits");
    assert_eq!(
        app.count("select count(*) from payment where overridden = 1")
            .await,
        bills.len() as i64
    );
    assert_eq!(
        app.count(
            "select count(*) from hygiene_item where reason_code = 'override_review' and status = 'open'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'approval.override'")
            .await,
        1
    );
    let (_, detail) = admin.call("payment", &[("payment_id", &approved[0])]).await;
    assert!(
        detail
            .to_string()
            .contains("overridden by admin@northwind.test"),
        "{detail}"
    );

    // Issue #18 §1: another admin acknowledges the override; its maker
    // cannot, and an advisor sees no button for it.
    let (_, tray) = admin
        .call("hygiene", &[("reason", "override_review")])
        .await;
    let item = &tray["items"][0];
    let hid = item["hygiene_id"].as_str().expect("an override item");
    assert_eq!(item["actions"], json!([]), "not for its maker: {item}");
    let (status, body) = admin
        .call(
            "hygiene/act",
            &[("hygiene_id", hid), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("Another admin"), "{body}");
    let (status, _) = advisor
        .call(
            "hygiene/act",
            &[("hygiene_id", hid), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(status, 403);
    let hash = app::ssr::crypto::hash_password(PASSWORD).unwrap();
    sqlx::query(
        "insert into app_user (user_id, firm_id, email, name, role, password_hash, created_at)
         select 'usr_admin2', firm_id, 'admin2@northwind.test', 'Second Admin', 'admin', $1, 0
         from app_user where email = $2",
    )
    .bind(hash)
    .bind(ADMIN)
    .execute(&app.state.app.db.pool)
    .await
    .unwrap();
    let other = User::new(&app, "admin2@northwind.test").await;
    let (_, tray) = other
        .call("hygiene", &[("reason", "override_review")])
        .await;
    assert_eq!(tray["items"][0]["actions"], json!(["acknowledge"]));
    let (status, body) = other
        .call(
            "hygiene/act",
            &[
                ("hygiene_id", hid),
                ("action", "acknowledge"),
                ("note", "Loan agreement seen."),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, tray) = other
        .call(
            "hygiene",
            &[("reason", "override_review"), ("state", "resolved")],
        )
        .await;
    assert_eq!(tray["items"][0]["closed_by"], "admin2@northwind.test");
    assert_eq!(tray["items"][0]["close_note"], "Loan agreement seen.");
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'override.acknowledged'")
            .await,
        1
    );
}

/// Adds a bill in the simulated QuickBooks as the client's bookkeeper
/// would (the QBO API), copying vendor and account from the staged bill
/// `like`, then lets RowCol sync the ledger.
async fn add_ledger_bill(
    app: &TestApp,
    client: &str,
    like: &str,
    doc: &str,
    amount: &str,
    date: &str,
) {
    let (realm, qbo_bill): (String, String) = sqlx::query_as(
        "select r.external_id, b.qbo_bill_id from staged_bill b
         join rail_connection r on r.client_id = b.client_id and r.rail = 'qbo'
         where b.bill_id = $1",
    )
    .bind(like)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("bill");
    let creds: Value = app
        .http
        .get(format!("{}/sandbox/control/credentials", app.base))
        .send()
        .await
        .expect("credentials")
        .json()
        .await
        .expect("json");
    let base = creds["qbo"]["base_url"].as_str().expect("base").to_owned();
    let token = creds["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["qbo"]["realm_id"] == realm.as_str())
        .expect("realm")["qbo"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let existing: Value = app
        .http
        .get(format!("{base}/v3/company/{realm}/bill/{qbo_bill}"))
        .bearer_auth(&token)
        .header("accept", "application/json")
        .send()
        .await
        .expect("read bill")
        .json()
        .await
        .expect("bill json");
    let old = &existing["Bill"];
    let body = json!({
        "VendorRef": old["VendorRef"],
        "DocNumber": doc,
        "TxnDate": date,
        "DueDate": date,
        "Line": [{
            "Amount": amount.parse::<f64>().expect("amount"),
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {
                "AccountRef": old["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]
            }
        }]
    });
    let res = app
        .http
        .post(format!("{base}/v3/company/{realm}/bill"))
        .bearer_auth(&token)
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("create bill");
    assert_eq!(
        res.status().as_u16(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let st = &app.state.services;
    let now = st.clock.now();
    let mut tx = st.db.begin().await.unwrap();
    app::ssr::store::job_queue::enqueue(
        &mut tx,
        &app::ssr::job_kinds::Job::SyncLedger {
            client_id: client.to_owned(),
        },
        now,
        now,
    )
    .await
    .unwrap();
    app::ssr::store::commit(tx).await.unwrap();
    app.drain().await;
}

async fn a_possible_duplicate_is_refused_paid_bills_included(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let admin = User::new(&app, ADMIN).await;
    let alder = advisor.client_id("Alder Creek Dental").await;
    let bills = advisor.bills(&alder).await;
    let (original, amount) = bills[0].clone();
    let (doc, txn): (Option<String>, String) =
        sqlx::query_as("select doc_number, txn_date from staged_bill where bill_id = $1")
            .bind(&original)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    let doc = doc.unwrap_or_else(|| "DUP-1".into());
    // The original is approved and paid first: paid bills count too.
    let (status, answer) = advisor.batch("dup-0", &[&original], None).await;
    assert_eq!(status, 200, "{answer}");
    // The bookkeeper enters the same invoice again, 40 days later (outside
    // the amount window: only the invoice number makes it a duplicate).
    let later =
        (txn.parse::<chrono::NaiveDate>().unwrap() + chrono::Duration::days(40)).to_string();
    let major = format!("{}.{:02}", amount / 100, amount % 100);
    add_ledger_bill(&app, &alder, &original, &doc, &major, &later).await;
    let copy: String = sqlx::query_scalar(
        "select bill_id from staged_bill where client_id = $1 and doc_number = $2 and bill_id <> $3",
    )
    .bind(&alder)
    .bind(&doc)
    .bind(&original)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("the copy is staged");
    let (status, answer) = advisor.batch("dup-1", &[&copy], None).await;
    assert_eq!(status, 200, "{answer}");
    let refusal = &client_part(&answer, &alder)["refused"][0];
    assert_eq!(refusal["reason_code"], "possible_duplicate", "{answer}");
    assert!(
        refusal["message"].as_str().unwrap().contains(&doc),
        "{refusal}"
    );
    // approve_bills says the same (422).
    let (status, body) = advisor
        .call(
            "approve_bills",
            &[("client_id", &alder), ("bill_ids[]", &copy)],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("possible_duplicate"), "{body}");
    // Same vendor and amount within the window (another invoice number).
    let near = (txn.parse::<chrono::NaiveDate>().unwrap() + chrono::Duration::days(3)).to_string();
    add_ledger_bill(&app, &alder, &original, "OTHER-77", &major, &near).await;
    let near_copy: String = sqlx::query_scalar(
        "select bill_id from staged_bill where client_id = $1 and doc_number = 'OTHER-77'",
    )
    .bind(&alder)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    let (_, answer) = advisor.batch("dup-2", &[&near_copy], None).await;
    assert_eq!(
        client_part(&answer, &alder)["refused"][0]["reason_code"],
        "possible_duplicate",
        "{answer}"
    );
    // An admin may override it with a reason.
    let (status, answer) = admin
        .batch(
            "dup-3",
            &[&near_copy],
            Some("Two deliveries that week, both real."),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(client_part(&answer, &alder)["refused"]
        .as_array()
        .unwrap()
        .is_empty());
}

async fn a_new_vendor_is_shown_and_waits_when_the_policy_says_so(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let admin = User::new(&app, ADMIN).await;
    let alder = advisor.client_id("Alder Creek Dental").await;
    let bills = advisor.bills(&alder).await;
    // No payment to any vendor yet: the first is new, shown and audited.
    let (_, answer) = advisor.batch("nv-1", &[&bills[0].0], None).await;
    let pid = ids(client_part(&answer, &alder), "approved")[0].clone();
    let rules: String = sqlx::query_scalar("select rules from approval where payment_id = $1")
        .bind(&pid)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    let known_vendor: String =
        sqlx::query_scalar("select qbo_vendor_id from staged_bill where bill_id = $1")
            .bind(&bills[0].0)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    let was_new = app
        .count(&format!(
            "select count(*) from staged_bill where client_id = '{alder}' and status = 'closed'
             and qbo_vendor_id = '{known_vendor}'"
        ))
        .await
        == 0;
    assert_eq!(rules.contains("new_vendor"), was_new, "{rules}");
    // With the policy on, a bill to a vendor never paid waits.
    let (status, _) = admin
        .set_policy(&alder, &[("new_vendor_second_approver", "true")])
        .await;
    assert_eq!(status, 200);
    let fresh: Option<String> = sqlx::query_scalar(
        "select b.bill_id from staged_bill b where b.client_id = $1 and b.status = 'open'
           and b.balance_minor < 1000000
           and not exists (select 1 from staged_bill o where o.client_id = b.client_id
                           and o.qbo_vendor_id = b.qbo_vendor_id
                           and (o.status = 'closed' or exists (select 1 from payment p
                                where p.bill_id = o.bill_id and p.state not in ('failed', 'cancelled', 'rejected'))))
         order by b.balance_minor limit 1",
    )
    .bind(&alder)
    .fetch_optional(&app.state.app.db.pool)
    .await
    .unwrap();
    let Some(fresh) = fresh else {
        panic!("the demo client has no bill to a vendor it never paid");
    };
    let (_, answer) = advisor.batch("nv-2", &[&fresh], None).await;
    let part = client_part(&answer, &alder);
    assert_eq!(ids(part, "awaiting_second_approval").len(), 1, "{part}");
}

async fn policies_are_versioned_bounded_and_recorded_with_each_approval(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let admin = User::new(&app, ADMIN).await;
    let alder = advisor.client_id("Alder Creek Dental").await;
    let (status, p) = advisor
        .call("client_policy", &[("client_id", &alder)])
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p,
        json!({
            "version": 1, "buffer_days": 14, "cash_max_age_secs": 900,
            "bank_history_max_age_secs": 86400, "dual_control_threshold_minor": 1000000,
            "duplicate_window_days": 7, "new_vendor_second_approver": false
        })
    );
    // Advisors may not edit; out-of-range values name their field.
    let (status, _) = advisor.set_policy(&alder, &[("buffer_days", "20")]).await;
    assert_eq!(status, 403);
    for (field, value) in [
        ("buffer_days", "366"),
        ("cash_max_age_secs", "59"),
        ("bank_history_max_age_secs", "604801"),
        ("duplicate_window_days", "91"),
        ("dual_control_threshold_minor", "-1"),
        ("buffer_days", "many"),
    ] {
        let (status, body) = admin.set_policy(&alder, &[(field, value)]).await;
        assert_eq!(status, 422, "{field}={value}: {body}");
        assert!(body.to_string().contains(field), "{field}: {body}");
    }
    // What a change would do among the open bills, before publishing.
    let (status, preview) = admin
        .call(
            "preview_client_policy",
            &[("client_id", &alder), ("dual_control_threshold", "0.01")],
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let open = advisor.bills(&alder).await.len();
    assert_eq!(preview.as_array().unwrap().len(), open, "{preview}");
    assert_eq!(
        app.count("select count(*) from client_policy where version = 2")
            .await,
        0
    );
    // Publishing makes version 2; version 1 is kept; the edit is audited.
    let (status, p2) = admin
        .set_policy(&alder, &[("buffer_days", "20"), ("expected_version", "1")])
        .await;
    assert_eq!(status, 200, "{p2}");
    assert_eq!(p2["version"], 2);
    assert_eq!(p2["buffer_days"], 20);
    let (status, _) = admin
        .set_policy(&alder, &[("buffer_days", "21"), ("expected_version", "1")])
        .await;
    assert_eq!(status, 409, "an edit of an old version is refused");
    assert_eq!(
        app.count(&format!(
            "select count(*) from client_policy where client_id = '{alder}'"
        ))
        .await,
        2
    );
    let audit: String = sqlx::query_scalar(
        "select detail from audit_entry where action = 'policy.changed' and subject = $1",
    )
    .bind(&alder)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert!(
        audit.contains("\"buffer_days\":14") && audit.contains("\"buffer_days\":20"),
        "{audit}"
    );
    // Every approval records the version it was judged by.
    let bills = advisor.bills(&alder).await;
    let (_, answer) = advisor.batch("pv-1", &[&bills[0].0], None).await;
    let pid = ids(client_part(&answer, &alder), "approved")[0].clone();
    assert_eq!(
        app.count(&format!(
            "select policy_version from payment where payment_id = '{pid}'"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "select policy_version from approval where payment_id = '{pid}'"
        ))
        .await,
        2
    );
}

async fn the_approvals_page_filters_pages_and_suggests_a_batch(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let (status, all) = advisor.call("approvals", &[("per_page", "500")]).await;
    assert_eq!(status, 200, "{all}");
    let total = all["total"].as_u64().unwrap();
    let open = app
        .count(
            "select count(*) from staged_bill b where b.status = 'open'
             and not exists (select 1 from payment p where p.bill_id = b.bill_id)",
        )
        .await as u64;
    assert_eq!(total, open);
    // Paging covers every row once.
    let (_, p1) = advisor.call("approvals", &[("per_page", "10")]).await;
    let (_, p2) = advisor
        .call("approvals", &[("per_page", "10"), ("page", "2")])
        .await;
    assert_eq!(p1["rows"].as_array().unwrap().len(), 10);
    assert_ne!(p1["rows"][0]["bill_id"], p2["rows"][0]["bill_id"]);
    // Sorted by due date by default; by amount descending on request.
    let rows = all["rows"].as_array().unwrap();
    let dues: Vec<&str> = rows
        .iter()
        .map(|r| r["due_date"].as_str().unwrap())
        .collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]));
    let (_, by_amount) = advisor
        .call("approvals", &[("sort", "amount"), ("desc", "1")])
        .await;
    let amounts: Vec<i64> = by_amount["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"]["minor"].as_i64().unwrap())
        .collect();
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]));
    // Filters: client, amount range, the dual-control rule.
    let alder = advisor.client_id("Alder Creek Dental").await;
    let (_, mine) = advisor.call("approvals", &[("client_id", &alder)]).await;
    assert!(mine["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["client_id"] == alder.as_str()));
    let (_, big) = advisor
        .call(
            "approvals",
            &[("rule", "second_approval_required"), ("per_page", "500")],
        )
        .await;
    assert!(big["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["amount"]["minor"].as_i64().unwrap() >= 1_000_000
            && r["rules"]
                .as_array()
                .unwrap()
                .contains(&json!("second_approval_required"))));
    let (_, ranged) = advisor
        .call(
            "approvals",
            &[("min_amount", "100"), ("max_amount", "2,000.00")],
        )
        .await;
    assert!(ranged["rows"].as_array().unwrap().iter().all(|r| {
        let m = r["amount"]["minor"].as_i64().unwrap();
        (10_000..=200_000).contains(&m)
    }));
    let (status, body) = advisor.call("approvals", &[("due_within_days", "x")]).await;
    assert_eq!(status, 400, "{body}");
    // The suggested batch fits the buffer: approving it client by client
    // is never refused by the buffer.
    let suggested: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r["suggested"] == true)
        .map(|r| {
            (
                r["client_id"].as_str().unwrap().to_owned(),
                r["bill_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(!suggested.is_empty(), "no suggestion at all");
    let refs: Vec<&str> = suggested.iter().map(|(_, b)| b.as_str()).collect();
    let (status, answer) = advisor.batch("suggested", &refs, None).await;
    assert_eq!(status, 200, "{answer}");
    for c in answer["clients"].as_array().unwrap() {
        for r in c["refused"].as_array().unwrap() {
            assert_ne!(r["reason_code"], "buffer", "{c}");
        }
    }
}

async fn a_bill_changed_in_the_ledger_is_refused_until_re_synced(e: Engine) {
    let app = TestApp::spawn(e).await;
    let advisor = User::new(&app, ADVISOR).await;
    let alder = advisor.client_id("Alder Creek Dental").await;
    let (bill, amount) = advisor.bills(&alder).await[0].clone();
    let (realm, qbo_bill): (String, String) = sqlx::query_as(
        "select r.external_id, b.qbo_bill_id from staged_bill b
         join rail_connection r on r.client_id = b.client_id and r.rail = 'qbo'
         where b.bill_id = $1",
    )
    .bind(&bill)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    // The bookkeeper raises the bill in QuickBooks; RowCol has not synced.
    app.sandbox()
        .qbo_edit_bill(
            &realm,
            &qbo_bill,
            sandbox::QboBillEdit::SetTotal(amount + 10_000),
        )
        .await
        .unwrap();
    let (status, answer) = advisor.batch("ledger-1", &[&bill], None).await;
    assert_eq!(status, 200, "{answer}");
    let refusal = &client_part(&answer, &alder)["refused"][0];
    assert_eq!(refusal["reason_code"], "ledger_mismatch", "{answer}");
    assert!(
        refusal["message"].as_str().unwrap().contains("QuickBooks"),
        "{refusal}"
    );
    assert_eq!(app.count("select count(*) from payment").await, 0);
    // No override for it.
    let admin = User::new(&app, ADMIN).await;
    let (_, answer) = admin
        .batch(
            "ledger-2",
            &[&bill],
            Some("The bookkeeper says it is fine."),
        )
        .await;
    assert_eq!(
        client_part(&answer, &alder)["refused"][0]["reason_code"],
        "ledger_mismatch"
    );
    // The refusal queued the re-read; once it ran, the bill is decided on
    // its new amount.
    assert_eq!(
        app.count("select count(*) from job where kind = 'sync_ledger' and state = 'queued'")
            .await,
        1
    );
    app.drain().await;
    let now_amount = advisor
        .bills(&alder)
        .await
        .into_iter()
        .find(|(id, _)| *id == bill)
        .expect("still open")
        .1;
    assert_eq!(now_amount, amount + 10_000);
    let (status, answer) = advisor.batch("ledger-3", &[&bill], None).await;
    assert_eq!(status, 200, "{answer}");
    let part = client_part(&answer, &alder);
    assert!(part["refused"].as_array().unwrap().is_empty(), "{part}");
}

/// `db::fetch_many` (rows folded into JSON on SQLite, plain rows on
/// PostgreSQL) gives back exactly what was stored: quotes, backslashes,
/// non-ASCII text, NULL and the extreme integers included.
async fn many_rows_read_the_same_whichever_way_the_engine_reads_them(e: Engine) {
    let app = TestApp::spawn(e).await;
    let mut conn = app.state.app.db.acquire().await.expect("connection");
    sqlx::query("create temporary table awkward (k text not null, t text, n bigint not null)")
        .execute(&mut *conn)
        .await
        .expect("create");
    let rows: Vec<(String, Option<String>, i64)> = vec![
        (
            "a".into(),
            Some(r#"O'Brien "Ltd" \ tab\t, [1], {x}"#.into()),
            i64::MAX,
        ),
        ("b".into(), None, i64::MIN),
        ("c".into(), Some("Café Zürich — 東京 🍣\nline".into()), 0),
        ("d".into(), Some(String::new()), -1),
    ];
    for (k, t, n) in &rows {
        sqlx::query("insert into awkward (k, t, n) values ($1, $2, $3)")
            .bind(k)
            .bind(t.clone())
            .bind(*n)
            .execute(&mut *conn)
            .await
            .expect("insert");
    }
    let mut read: Vec<(String, Option<String>, i64)> = app::ssr::store::db::fetch_many(
        &mut conn,
        "k, t, n",
        "from awkward where k <> $1",
        &["none"],
    )
    .await
    .expect("fetch_many");
    read.sort();
    assert_eq!(read, rows);
    let none: Vec<(String, Option<String>, i64)> = app::ssr::store::db::fetch_many(
        &mut conn,
        "k, t, n",
        "from awkward where k = $1",
        &["none"],
    )
    .await
    .expect("fetch_many of nothing");
    assert!(none.is_empty());
}

/// The page's rows as the server computes them with no client's bills in
/// memory: what the page must show whatever it kept from earlier reads.
async fn page_read_afresh(app: &TestApp, client_id: &str) -> Value {
    use app::ssr::store::{decisions, read_models};
    let db = &app.state.app.db;
    let firm: app::model::FirmId = app::model::FirmId::parse(
        &sqlx::query_scalar::<_, String>("select firm_id from client where client_id = $1")
            .bind(client_id)
            .fetch_one(&db.pool)
            .await
            .expect("firm"),
    )
    .expect("firm id");
    let clock = &app.state.app.clock;
    let mut conn = db.read().await.expect("connection");
    let summaries =
        read_models::client_summaries(&mut conn, &firm, clock.now(), clock.today(), None)
            .await
            .expect("summaries");
    let (rows, _) = decisions::approvals_page(
        &mut conn,
        &firm,
        clock.today(),
        &decisions::Filters {
            client: Some(app::model::ClientId::parse(client_id).expect("client id")),
            ..Default::default()
        },
        decisions::Paging {
            sort: decisions::Sort::Due,
            desc: false,
            page: 1,
            per_page: 500,
        },
        &decisions::BillsCache::default(),
    )
    .await
    .expect("page")
    .suggest(clock.today(), &summaries);
    serde_json::to_value(rows).expect("json")
}

/// The approvals page keeps each client's bills between reads (issue #16
/// §7): every change made after a read — a bill entered in the ledger, an
/// approval, a rejection — shows on the next read exactly as a fresh
/// computation shows it, and a sync that changes nothing keeps what was
/// kept.
async fn the_approvals_page_sees_every_change_made_after_it_was_read(e: Engine) {
    let app = TestApp::spawn(e).await;
    // Every bill needs a second approver: an approval waits, and can be
    // rejected.
    let (advisor, admin, alder, bills) = with_low_threshold(&app, "Alder Creek Dental").await;
    let page = || async {
        let (status, body) = advisor
            .call("approvals", &[("client_id", &alder), ("per_page", "500")])
            .await;
        assert_eq!(status, 200, "{body}");
        body["rows"].clone()
    };
    let row = |rows: &Value, bill: &str| {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["bill_id"] == bill)
            .cloned()
    };
    let revision = || async {
        sqlx::query_scalar::<_, i64>("select rev from client_revision where client_id = $1")
            .bind(&alder)
            .fetch_one(&app.state.app.db.pool)
            .await
            .expect("revision")
    };
    let before = page().await;
    assert_eq!(before, page_read_afresh(&app, &alder).await);
    let (original, amount) = bills[0].clone();
    let other = bills[1].0.clone();
    let first = row(&before, &original).expect("on the page");
    assert!(!first["rules"]
        .as_array()
        .unwrap()
        .contains(&json!("possible_duplicate")));

    // A sync that finds nothing new rewrites every bill and changes none.
    let rev = revision().await;
    let st = &app.state.services;
    let mut tx = st.db.begin().await.unwrap();
    let now = st.clock.now();
    app::ssr::store::job_queue::enqueue(
        &mut tx,
        &app::ssr::job_kinds::Job::SyncLedger {
            client_id: alder.clone(),
        },
        now,
        now,
    )
    .await
    .unwrap();
    app::ssr::store::commit(tx).await.unwrap();
    app.drain().await;
    assert_eq!(
        revision().await,
        rev,
        "an unchanged sync moved the revision"
    );

    // The bookkeeper enters the same invoice again: the bill already on
    // the page is now a possible duplicate of it.
    let (doc, txn): (Option<String>, String) =
        sqlx::query_as("select doc_number, txn_date from staged_bill where bill_id = $1")
            .bind(&original)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    let major = format!("{}.{:02}", amount / 100, amount % 100);
    add_ledger_bill(
        &app,
        &alder,
        &original,
        &doc.unwrap_or_else(|| "DUP-9".into()),
        &major,
        &txn,
    )
    .await;
    assert!(revision().await > rev);
    let after = page().await;
    assert!(row(&after, &original).expect("still open")["rules"]
        .as_array()
        .unwrap()
        .contains(&json!("possible_duplicate")));
    assert_eq!(after, page_read_afresh(&app, &alder).await);

    // An approval takes its bill off the page; a rejection puts it back.
    let (status, answer) = advisor.batch("kept-1", &[&other], None).await;
    assert_eq!(status, 200, "{answer}");
    let payment = ids(client_part(&answer, &alder), "awaiting_second_approval")
        .pop()
        .unwrap_or_else(|| panic!("no payment waits: {answer}"));
    let approved = page().await;
    assert!(row(&approved, &other).is_none());
    assert_eq!(approved, page_read_afresh(&app, &alder).await);
    let (status, body) = admin
        .call(
            "reject_payment",
            &[("payment_id", &payment), ("reason", "Wrong month.")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rejected = page().await;
    assert!(row(&rejected, &other).is_some());
    assert_eq!(rejected, page_read_afresh(&app, &alder).await);
}
