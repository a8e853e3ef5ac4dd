//! Issue #6 — fresh data behind every decision: re-reads on a schedule, a
//! `stale` status that refuses approval, committed cash until the bank shows
//! the debit, failure as a state, one currency per approval.

use super::support::{Engine, TestApp};
use serde_json::Value;

both_engines!(
    the_burn_stays_live_after_a_month_of_sandbox_time,
    stale_bank_data_is_shown_and_refuses_approval,
    committed_cash_counts_a_paid_payment_until_the_balance_shows_the_debit,
    a_release_that_gives_up_fails_the_payment_and_frees_its_commitment,
    a_failed_payment_can_be_retried_after_a_fresh_check_or_dismissed,
    a_bill_in_another_currency_is_refused,
    a_release_that_gives_up_after_an_unanswered_create_stays_approved,
    retrying_a_failed_payment_whose_bill_closed_in_the_ledger_says_so,
);

fn minor(v: &Value) -> i64 {
    v["minor"]
        .as_i64()
        .unwrap_or_else(|| panic!("no minor in {v}"))
}

async fn portfolio(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.call("portfolio", &[]).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("rows").clone()
}

async fn summary(app: &TestApp, name: &str) -> Value {
    portfolio(app)
        .await
        .into_iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no client {name}"))
}

async fn advance(app: &TestApp, days: &str) {
    let (status, body) = app.call("sandbox/advance", &[("days", days)]).await;
    assert_eq!(status, 200, "{body}");
}

async fn the_burn_stays_live_after_a_month_of_sandbox_time(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    advance(&app, "31").await;
    let rows = portfolio(&app).await;
    assert!(rows.len() >= 20);
    let today = app.state.app.clock.now();
    for r in &rows {
        // Every source was re-read on the new day: the burn is the last 30
        // days' spending, not the spending before the jump.
        assert!(
            minor(&r["cash"]["daily_burn"]) > 0,
            "{} burns nothing after 31 days: {r}",
            r["name"]
        );
        let as_of: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(r["cash"]["bank_history_as_of"].clone())
                .unwrap_or_else(|e| panic!("no bank history as-of for {}: {e}", r["name"]));
        assert!(today - as_of < chrono::Duration::hours(1), "{as_of}");
        assert!(r["cash"]["bills_as_of"].is_string(), "{r}");
        assert_ne!(r["status"], "stale", "{r}");
    }
}

async fn stale_bank_data_is_shown_and_refuses_approval(e: Engine) {
    let app = TestApp::spawn(e).await;
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let item = sandbox
        .world()
        .await
        .clients
        .iter()
        .find(|c| c.name == "Alder Creek Dental")
        .unwrap()
        .plaid_item_id
        .clone();
    app.inject(|f| f.plaid_login_required = vec![item]).await;
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    // Two days pass; every other client is re-read, this bank cannot be.
    advance(&app, "2").await;
    // The bank needs its login: the guardrail cannot be trusted, and says
    // why (the data is also stale, but a person must act first).
    let row = summary(&app, "Alder Creek Dental").await;
    assert_eq!(row["status"], "untrusted", "{row}");
    assert_eq!(
        row["connection_issue"], "the bank (Plaid) needs its login renewed",
        "{row}"
    );
    let other = summary(&app, "Birch Lane Bakery").await;
    assert_ne!(other["status"], "stale", "{other}");

    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
}

async fn committed_cash_counts_a_paid_payment_until_the_balance_shows_the_debit(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let client = "Alder Creek Dental";
    let before = summary(&app, client).await;
    let pid = app.approve_small_bill(client).await;
    let amount: i64 = sqlx::query_scalar("select amount_minor from payment where payment_id = $1")
        .bind(&pid)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");

    // Ramp pays (and the bank shows the debit) while RowCol still holds the
    // balance it read before: the webhook moves the payment to `paid`.
    let sandbox = app.state.services.sandbox.clone().unwrap();
    sandbox.advance(chrono::Duration::days(10)).await.unwrap();
    sandbox.deliver_pending_webhooks().await;
    app.drain().await;
    let state = app.payment_state(&pid).await;
    // (Verification may already have matched the debit: the held balance
    // was still read before it.)
    assert!(
        ["paid", "recorded", "verified"].contains(&state.as_str()),
        "state {state}"
    );
    let mid = summary(&app, client).await;
    assert_eq!(
        minor(&mid["cash"]["available"]),
        minor(&before["cash"]["available"]),
        "the balance was not re-read"
    );
    assert_eq!(
        minor(&mid["cash"]["approved_unpaid"]),
        minor(&before["cash"]["approved_unpaid"]) + amount,
        "a paid payment whose debit the held balance does not show is still committed"
    );

    // The balance and transactions are re-read: the debit is in the balance
    // now, so the payment no longer counts as committed. The same cash is
    // never counted twice, nor released early.
    advance(&app, "1").await;
    let after = summary(&app, client).await;
    assert_eq!(
        minor(&after["cash"]["approved_unpaid"]),
        minor(&before["cash"]["approved_unpaid"]),
        "{after}"
    );
    // Because the debit is now in the held balance: the payment is verified
    // against a transaction RowCol saw before it read that balance.
    assert_eq!(app.payment_state(&pid).await, "verified");
    let in_balance = app
        .count(&format!(
            "select count(*) from payment p
             join bank_txn t on t.client_id = p.client_id and t.txn_id = p.plaid_txn_id
             join cash_snapshot s on s.client_id = p.client_id
             where p.payment_id = '{pid}' and t.seen_at <= s.as_of"
        ))
        .await;
    assert_eq!(in_balance, 1);
}

async fn fail_next_release(app: &TestApp, client: &str) -> String {
    // Ramp refuses the create (400): trying again cannot help.
    app.inject(|f| f.ramp_create_fail_next = vec![400]).await;
    let pid = app.approve_small_bill(client).await;
    app.drain().await;
    pid
}

async fn a_release_that_gives_up_fails_the_payment_and_frees_its_commitment(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let client = "Alder Creek Dental";
    let before = summary(&app, client).await;
    let pid = fail_next_release(&app, client).await;
    assert_eq!(app.payment_state(&pid).await, "failed");
    let after = summary(&app, client).await;
    assert_eq!(
        minor(&after["cash"]["approved_unpaid"]),
        minor(&before["cash"]["approved_unpaid"]),
        "a failed payment holds no cash"
    );
    let (status, items) = app.call("hygiene", &[]).await;
    let items = items["items"].clone();
    assert_eq!(status, 200);
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["payment_id"] == pid.as_str())
        .unwrap_or_else(|| panic!("no hygiene item for {pid}: {items}"));
    assert_eq!(item["reason_code"], "release_failed", "{item}");
    assert!(item["detail"].as_str().unwrap().contains("400"), "{item}");
    // The custody chain says why.
    let (status, detail) = app.call("payment", &[("payment_id", &pid)]).await;
    assert_eq!(status, 200, "{detail}");
    assert!(detail.to_string().contains("failed"), "{detail}");
    // The bill is open for approval again.
    let cid = app.client_id(client).await;
    let bills = app.client(&cid).await["bills"].clone();
    let bill_id: String = sqlx::query_scalar("select bill_id from payment where payment_id = $1")
        .bind(&pid)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert!(
        bills
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["bill_id"] == bill_id.as_str()),
        "the failed payment's bill is not offered again: {bills}"
    );
}

async fn hygiene_id_for(app: &TestApp, pid: &str) -> String {
    let (_, items) = app.call("hygiene", &[]).await;
    let items = items["items"].clone();
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["payment_id"] == pid)
        .unwrap_or_else(|| panic!("no hygiene item for {pid}: {items}"))["hygiene_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_failed_payment_can_be_retried_after_a_fresh_check_or_dismissed(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let client = "Alder Creek Dental";
    let pid = fail_next_release(&app, client).await;
    let hid = hygiene_id_for(&app, &pid).await;

    // A viewer can do neither.
    app.new_session();
    app.login("viewer@northwind.test").await;
    let (status, _) = app.call("retry_payment", &[("hygiene_id", &hid)]).await;
    assert_eq!(status, 403);
    let (status, _) = app.call("dismiss_hygiene", &[("hygiene_id", &hid)]).await;
    assert_eq!(status, 403);
    app.new_session();
    app.login("advisor@northwind.test").await;

    let (status, body) = app.call("retry_payment", &[("hygiene_id", &hid)]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let new_pid: String = sqlx::query_scalar(
        "select p2.payment_id from payment p1 join payment p2 on p2.bill_id = p1.bill_id
         where p1.payment_id = $1 and p2.payment_id <> $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(app.payment_state(&pid).await, "failed");
    assert_eq!(app.payment_state(&new_pid).await, "approved");
    app.drain().await;
    assert_eq!(app.payment_state(&new_pid).await, "released");
    // The new payment went to Ramp under its own remote_id.
    let remote: Option<String> =
        sqlx::query_scalar("select ramp_bill_id from payment where payment_id = $1")
            .bind(&new_pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert!(remote.is_some());
    // The item is done; retrying it again is refused.
    let (_, items) = app.call("hygiene", &[]).await;
    let items = items["items"].clone();
    assert!(
        !items.to_string().contains(&hid),
        "the retried item is still open: {items}"
    );
    let (status, _) = app.call("retry_payment", &[("hygiene_id", &hid)]).await;
    assert_eq!(status, 409);

    // Another failure, dismissed: the item closes, nothing is created.
    let other = "Birch Lane Bakery";
    let pid2 = fail_next_release(&app, other).await;
    assert_eq!(app.payment_state(&pid2).await, "failed");
    let hid2 = hygiene_id_for(&app, &pid2).await;
    let payments = app.count("select count(*) from payment").await;
    let (status, body) = app.call("dismiss_hygiene", &[("hygiene_id", &hid2)]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let (_, items) = app.call("hygiene", &[]).await;
    let items = items["items"].clone();
    assert!(!items.to_string().contains(&hid2), "{items}");
    assert_eq!(app.count("select count(*) from payment").await, payments);
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'hygiene.dismissed'")
            .await,
        1
    );
}

async fn a_bill_in_another_currency_is_refused(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    // The ledger reports this bill in euros; the client's bank is in dollars.
    sqlx::query("update staged_bill set currency = 'EUR' where bill_id = $1")
        .bind(&bill)
        .execute(&app.state.app.db.pool)
        .await
        .unwrap();
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("currency_mismatch"), "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
}

/// The payment table is rebuilt on SQLite (its inline `unique (bill_id)`
/// cannot be dropped): a database with payments, custody steps and hygiene
/// items from before keeps them all, and the foreign keys still hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_first_schema_migrates_without_losing_payments() {
    use sqlx::migrate::Migrator;
    use std::borrow::Cow;
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let tmp = tempfile::tempdir().unwrap();
        let url = super::support::database_url(engine, tmp.path()).await;
        let dir = match engine {
            Engine::Sqlite => "../migrations/sqlite",
            Engine::Postgres => "../migrations/postgres",
        };
        if let Engine::Sqlite = engine {
            std::fs::File::create(tmp.path().join("rowcol.db")).unwrap();
        }
        {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let mut first = Migrator::new(std::path::Path::new(dir)).await.unwrap();
            first.migrations = Cow::Owned(vec![first.migrations[0].clone()]);
            first.run(&pool).await.unwrap();
            for sql in [
                "insert into firm (firm_id, name, audit_seq, audit_head, created_at) values ('f', 'F', 0, '', 0)",
                "insert into app_user (user_id, firm_id, email, name, role, password_hash, created_at) values ('u', 'f', 'a@b', 'A', 'advisor', 'x', 0)",
                "insert into client (client_id, firm_id, name, currency, created_at) values ('c', 'f', 'C', 'USD', 0)",
                "insert into staged_bill (bill_id, firm_id, client_id, qbo_bill_id, qbo_vendor_id, vendor_name, amount_minor, balance_minor, currency, txn_date, due_date, synced_at) values ('b', 'f', 'c', '1', 'v', 'V', 100, 100, 'USD', '2026-01-01', '2026-01-01', 0)",
                "insert into payment (payment_id, firm_id, client_id, bill_id, amount_minor, currency, state, payment_arrival_date, approved_by, created_at, updated_at) values ('p', 'f', 'c', 'b', 100, 'USD', 'approved', '2026-01-01', 'u', 0, 0)",
                "insert into custody_event (payment_id, state, owner, actor, evidence, at) values ('p', 'approved', 'rowcol', 'a@b', 'e', 0)",
                "insert into hygiene_item (hygiene_id, firm_id, client_id, payment_id, severity, reason_code, detail, created_at) values ('h', 'f', 'c', 'p', 'high', 'job_dead_lettered', 'd', 0)",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            pool.close().await;
        }
        let db = rowcol::startup::open_database(&url).await.unwrap();
        let count = |sql: &'static str| {
            let pool = db.pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count("select count(*) from payment").await, 1, "{engine:?}");
        assert_eq!(
            count("select count(*) from custody_event").await,
            1,
            "{engine:?}"
        );
        assert_eq!(
            count("select count(*) from hygiene_item").await,
            1,
            "{engine:?}"
        );
        // Still one live payment per bill; a failed one makes room.
        let second = "insert into payment (payment_id, firm_id, client_id, bill_id, amount_minor, currency, state, payment_arrival_date, approved_by, created_at, updated_at) values ('p2', 'f', 'c', 'b', 100, 'USD', 'approved', '2026-01-01', 'u', 0, 0)";
        assert!(
            sqlx::query(second).execute(&db.pool).await.is_err(),
            "{engine:?}"
        );
        sqlx::query("update payment set state = 'failed' where payment_id = 'p'")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query(second).execute(&db.pool).await.unwrap();
        // The custody chain still refers to payments that exist.
        let orphan = "insert into custody_event (payment_id, state, owner, actor, evidence, at) values ('nope', 'approved', 'rowcol', 'x', 'e', 0)";
        assert!(
            sqlx::query(orphan).execute(&db.pool).await.is_err(),
            "{engine:?}"
        );
    }
}

async fn a_release_that_gives_up_after_an_unanswered_create_stays_approved(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    // Every create answers 500: Ramp may or may not have made the bill, so
    // RowCol cannot call the payment failed (a retry would pay twice).
    app.inject(|f| f.ramp_create_fail_next = vec![500; 40])
        .await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    for _ in 0..40 {
        app.drain().await;
        if app
            .count("select count(*) from job where state = 'dead'")
            .await
            > 0
        {
            break;
        }
        app.advance_secs(7 * 3600);
    }
    assert_eq!(
        app.count("select count(*) from job where state = 'dead'")
            .await,
        1,
        "the release never gave up"
    );
    assert_eq!(app.payment_state(&pid).await, "approved");
    let (_, items) = app.call("hygiene", &[]).await;
    let items = items["items"].clone();
    let item = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["payment_id"] == pid.as_str())
        .unwrap_or_else(|| panic!("no hygiene item for {pid}: {items}"))
        .clone();
    assert_eq!(item["reason_code"], "release_unconfirmed", "{item}");

    // Retrying runs the same payment's release again, which looks first.
    app.inject(|f| f.ramp_create_fail_next.clear()).await;
    let hid = item["hygiene_id"].as_str().unwrap();
    let (status, body) = app.call("retry_payment", &[("hygiene_id", hid)]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    app.drain().await;
    app.advance_secs(600);
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    assert_eq!(app.ramp_bills_with_remote_id(&pid).await.len(), 1);
    assert_eq!(app.count("select count(*) from payment").await, 1);
}

/// Reported by the crash test's author: Retry on a failed release whose
/// bill has since been paid in QuickBooks answered 404 "NotFound", every
/// time, with nothing to tell the advisor why. It must say the bill is no
/// longer open (409) and leave the item for a dismissal.
async fn retrying_a_failed_payment_whose_bill_closed_in_the_ledger_says_so(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let pid = fail_next_release(&app, "Alder Creek Dental").await;
    let hid = hygiene_id_for(&app, &pid).await;
    // The bookkeeper pays the bill by hand; the next sync closes it.
    let (realm, qbo_bill) = app.ledger_bill_of(&pid).await;
    app.sandbox()
        .qbo_edit_bill(&realm, &qbo_bill, sandbox::QboBillEdit::PayInFull)
        .await
        .expect("pay in QBO");
    let (s, body) = app.call("sandbox/advance", &[("days", "1")]).await;
    assert_eq!(s, 200, "{body}");
    let (status, body) = app.call("retry_payment", &[("hygiene_id", &hid)]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("no longer open"),
        "the answer says why: {body}"
    );
    let (_, items) = app.call("hygiene", &[]).await;
    let items = items["items"].clone();
    assert!(
        items.to_string().contains(&hid),
        "the item stays for a dismissal"
    );
}
