//! Issue #9 — ACH as the rails really behave: a paid ACH debit the bank
//! sends back (sandbox control `POST /sandbox/control/ramp/ach_return`)
//! fails the payment even once verified, files a critical hygiene item
//! naming the return and the stale QuickBooks BillPayment, and frees its
//! committed cash. Each run on SQLite and PostgreSQL.

use super::support::{Engine, TestApp};
use chrono::Duration;
use serde_json::{json, Value};

/// A released payment's arrival date and Ramp bill.
async fn released_to(app: &TestApp, pid: &str) -> (chrono::NaiveDate, String) {
    let (arrival, ramp_bill): (String, String) = sqlx::query_as(
        "select payment_arrival_date, ramp_bill_id from payment where payment_id = $1",
    )
    .bind(pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    (arrival.parse().unwrap(), ramp_bill)
}

both_engines!(
    an_r01_return_fails_a_verified_payment_with_a_hygiene_item,
    the_bank_and_the_ledger_show_an_ach_payment_before_ramp_marks_it_paid,
    a_return_ramp_shows_fails_the_payment_while_the_bank_cannot_be_read,
    a_return_fails_a_payment_rowcol_never_heard_ramp_pay,
    a_return_in_the_same_sync_as_its_debit_fails_the_payment,
    the_return_sweep_reads_ramp_once_per_client_not_once_per_payment,
);

/// Issue #19 §1: the sweep for returns Ramp shows reads each client's OPEN
/// bills in one list, not each recently paid payment's bill one by one
/// (measured with RowCol's own count of Ramp calls: it was one per
/// payment), and still finds a return with it.
async fn the_return_sweep_reads_ramp_once_per_client_not_once_per_payment(e: Engine) {
    let app = TestApp::spawn(e).await;
    // Counting calls: none refused for the rate (which would be counted
    // and not answered).
    app.inject(|f| f.rate_limits_off = true).await;
    app.login("advisor@northwind.test").await;
    let (cid, _) = app.small_bill("Alder Creek Dental").await;
    let bills = app.bills_by_amount(&cid).await;
    let three: Vec<&str> = bills.iter().take(3).map(|(_, b)| b.as_str()).collect();
    let (status, body) = app.approve(&cid, &three).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    app.drain().await;
    let pids: Vec<String> = sqlx::query_scalar(
        "select payment_id from payment where client_id = $1 order by amount_minor",
    )
    .bind(&cid)
    .fetch_all(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(pids.len(), 3);
    let mut last = app.state.services.clock.today();
    for p in &pids {
        last = last.max(released_to(&app, p).await.0);
    }
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let days = (last - app.state.services.clock.today()).num_days();
    sandbox.advance(Duration::days(days + 1)).await.unwrap();
    app.drain().await;
    for p in &pids {
        assert_eq!(app.payment_state(p).await, "verified", "{p}");
    }

    // The payments the sweep watches (paid in its window): each was read
    // on its own before.
    let watched = {
        let st = &app.state.services;
        let since = app::domain::calendar::sub_business_days(
            st.clock.today(),
            rowcol::jobs::evidence::RETURN_WATCH_BUSINESS_DAYS,
        );
        let mut conn = st.db.acquire().await.unwrap();
        app::ssr::store::payments::paid_since(&mut conn, since, 200)
            .await
            .unwrap()
    };
    assert!(watched.len() >= 2, "{watched:?}");
    let before = app.rail_calls("ramp");
    let failed = rowcol::jobs::inbox::reconcile_paid(&app.state.services)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    assert_eq!(
        app.rail_calls("ramp") - before,
        1,
        "one list for the client's {} watched payments",
        watched.len()
    );

    // A return Ramp shows is found by that one list (and read once more on
    // its own before the payment fails).
    let returned = watched[0].payment_id.clone();
    let kept = watched[1].payment_id.clone();
    let (_, ramp_bill) = released_to(&app, &returned).await;
    let business = {
        let world = sandbox.state().await;
        world
            .clients
            .iter()
            .find(|c| c.ramp.bills.iter().any(|b| b.id == ramp_bill))
            .expect("the bill's client")
            .ramp
            .business_id
            .clone()
    };
    let res = reqwest::Client::new()
        .post(format!("{}/sandbox/control/ramp/ach_return", app.base))
        .json(&json!({"business_id": business, "bill_id": ramp_bill, "reason": "R01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let before = app.rail_calls("ramp");
    let failed = rowcol::jobs::inbox::reconcile_paid(&app.state.services)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    assert_eq!(
        app.rail_calls("ramp") - before,
        2,
        "the list, then the returned bill"
    );
    assert_eq!(app.payment_state(&returned).await, "failed");
    assert_eq!(app.payment_state(&kept).await, "verified");
}

async fn an_r01_return_fails_a_verified_payment_with_a_hygiene_item(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    let (arrival, amount, ramp_bill): (String, i64, String) = sqlx::query_as(
        "select payment_arrival_date, amount_minor, ramp_bill_id from payment where payment_id = $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    let arrival: chrono::NaiveDate = arrival.parse().unwrap();
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let days = (arrival - app.state.services.clock.today()).num_days();
    sandbox.advance(Duration::days(days + 1)).await.unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");
    let business = sandbox
        .state()
        .await
        .clients
        .iter()
        .find(|c| c.ramp.bills.iter().any(|b| b.id == ramp_bill))
        .map(|c| c.ramp.business_id.clone())
        .expect("the bill's business");

    // The vendor's bank sends the money back: insufficient funds.
    let res = reqwest::Client::new()
        .post(format!("{}/sandbox/control/ramp/ach_return", app.base))
        .json(&json!({"business_id": business, "bill_id": ramp_bill, "reason": "R01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ret: Value = res.json().await.unwrap();
    assert_eq!(ret["amount_cents"], json!(amount));

    // RowCol's next periodic sync reads the bank.
    sandbox.advance(Duration::hours(1)).await.unwrap();
    rowcol::jobs::sync::schedule_due(&app.state.services)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "failed");
    let (flag,): (Option<String>,) =
        sqlx::query_as("select flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag.as_deref(), Some("ach_returned"));
    let (severity, detail): (String, String) = sqlx::query_as(
        "select severity, detail from hygiene_item
         where reason_code = 'ach_returned' and status = 'open' and payment_id = $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(severity, "critical");
    assert!(detail.contains("R01"), "{detail}");
    assert!(detail.contains("BillPayment"), "{detail}");
    let vendor: String = sqlx::query_scalar(
        "select s.vendor_name from payment p join staged_bill s on s.bill_id = p.bill_id
         where p.payment_id = $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert!(detail.contains(&vendor), "{detail}");
    assert_eq!(
        app.count(&format!(
            "select count(*) from audit_entry where action = 'payment.failed' and subject = '{pid}'"
        ))
        .await,
        1
    );
    // The failure is in the chain of custody, evidenced by the bank.
    assert_eq!(
        app.count(&format!(
            "select count(*) from custody_event
             where payment_id = '{pid}' and state = 'failed' and owner = 'Plaid'"
        ))
        .await,
        1
    );
    // Nothing was voided in QuickBooks: the advisor decides.
    let realm_bp = sandbox
        .state()
        .await
        .clients
        .iter()
        .flat_map(|c| c.qbo.bill_payments.iter())
        .filter(|bp| {
            bp.private_note
                .as_deref()
                .is_some_and(|n| n.contains(&ramp_bill))
        })
        .count();
    assert_eq!(realm_bp, 1);

    // A second sync changes nothing.
    sandbox.advance(Duration::hours(1)).await.unwrap();
    rowcol::jobs::sync::schedule_due(&app.state.services)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "failed");
    assert_eq!(
        app.count("select count(*) from hygiene_item where reason_code = 'ach_returned'")
            .await,
        1
    );
}

/// ACH as it settles: Ramp sends the debit so that it arrives on the arrival
/// date, so the bank shows it and Ramp's accounting sync writes the QBO
/// BillPayment days before Ramp marks the bill PAID. RowCol must not take
/// that early evidence for a missing debit: the payment stays `released`
/// until Ramp says paid, then is recorded and verified by the early debit,
/// with no `cash_not_seen` flag.
async fn the_bank_and_the_ledger_show_an_ach_payment_before_ramp_marks_it_paid(e: Engine) {
    let app = TestApp::spawn(e).await;
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let mut faults = sandbox.faults().await;
    faults.ramp_ach_lead_days = Some(3);
    sandbox.set_faults(faults).await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    let (arrival, ramp_bill) = released_to(&app, &pid).await;

    // Day by day until the money has left: then the bank and QBO show it,
    // Ramp does not.
    let mut world = sandbox.state().await;
    for _ in 0..30 {
        sandbox.advance(Duration::days(1)).await.unwrap();
        world = sandbox.state().await;
        let bill = world
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .find(|b| b.id == ramp_bill)
            .expect("the Ramp bill");
        if bill.debited_on.is_some() {
            break;
        }
    }
    let client = world
        .clients
        .iter()
        .find(|c| c.ramp.bills.iter().any(|b| b.id == ramp_bill))
        .expect("the bill's client");
    let bill = client
        .ramp
        .bills
        .iter()
        .find(|b| b.id == ramp_bill)
        .unwrap();
    let debited = bill.debited_on.expect("the debit has left the bank");
    assert!(
        debited < arrival - Duration::days(1),
        "debit {debited}, arrival {arrival}"
    );
    assert_eq!(bill.paid_at, None, "Ramp has not marked it paid");
    let debit = client
        .plaid
        .txns
        .iter()
        .find(|t| t.amount_cents == bill.amount_cents && t.name.starts_with("RAMP BILLPAY"))
        .expect("the bank shows the debit");
    assert_eq!(debit.date, debited);
    let bp = client
        .qbo
        .bill_payments
        .iter()
        .find(|bp| {
            bp.private_note
                .as_deref()
                .is_some_and(|n| n.contains(&ramp_bill))
        })
        .expect("the QBO BillPayment is there");
    assert_eq!(bp.txn_date, debited);
    let debit_id = debit.id.clone();
    drop(world);
    rowcol::jobs::sync::schedule_due(&app.state.services)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    // The debit is already its evidence, so the balance that shows it and
    // the payment's commitment do not count the money twice.
    let early: Option<String> =
        sqlx::query_scalar("select plaid_txn_id from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(early.as_deref(), Some(debit_id.as_str()));
    assert_eq!(
        app.count(&format!(
            "select count(*) from audit_entry
             where action = 'payment.bank_debit_seen' and subject = '{pid}'"
        ))
        .await,
        1
    );
    // The payment's page explains the order in words (issue #18 §1).
    let (status, detail) = app.call("payment", &[("payment_id", &pid)]).await;
    assert_eq!(status, 200, "{detail}");
    assert!(
        detail["order_notes"][0]
            .as_str()
            .is_some_and(|n| n.starts_with(&format!(
            "The bank showed this debit on {debited}, but Ramp has not marked the bill paid yet."
        ))),
        "{detail}"
    );

    // Ramp pays on the arrival date; RowCol hears of it and verifies.
    let days = (arrival - app.state.services.clock.today()).num_days();
    sandbox.advance(Duration::days(days + 1)).await.unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");
    let (evidence, flag): (Option<String>, Option<String>) =
        sqlx::query_as("select plaid_txn_id, flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(evidence.as_deref(), Some(debit_id.as_str()));
    assert_eq!(flag, None);
    let (_, detail) = app.call("payment", &[("payment_id", &pid)]).await;
    assert!(
        detail["order_notes"][0].as_str().is_some_and(|n| n
            .starts_with(&format!("The bank showed this debit on {debited}, "))
            && n.contains("before Ramp marked the bill paid")),
        "{detail}"
    );

    // Past the end of the bank window nothing is flagged either.
    sandbox.advance(Duration::days(10)).await.unwrap();
    rowcol::jobs::sync::schedule_due(&app.state.services)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");
    assert_eq!(
        app.count(&format!(
            "select count(*) from hygiene_item where payment_id = '{pid}' and status = 'open'"
        ))
        .await,
        0
    );
}

/// An ACH return shows on Ramp too (the bill OPEN again, `paid_at` null).
/// With the bank's login broken RowCol cannot see the credit, but its sweep
/// re-reads the bills Ramp paid lately and fails the payment all the same.
async fn a_return_ramp_shows_fails_the_payment_while_the_bank_cannot_be_read(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (arrival, ramp_bill) = released_to(&app, &pid).await;
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let days = (arrival - app.state.services.clock.today()).num_days();
    sandbox.advance(Duration::days(days + 1)).await.unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");

    // The bank asks for its login again; then the vendor's bank returns it.
    let (business, item) = {
        let world = sandbox.state().await;
        let c = world
            .clients
            .iter()
            .find(|c| c.ramp.bills.iter().any(|b| b.id == ramp_bill))
            .expect("the bill's client");
        (c.ramp.business_id.clone(), c.plaid.item_id.clone())
    };
    app.inject(|f| f.plaid_login_required = vec![item]).await;
    let res = reqwest::Client::new()
        .post(format!("{}/sandbox/control/ramp/ach_return", app.base))
        .json(&json!({"business_id": business, "bill_id": ramp_bill, "reason": "R02"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (s, body) = app.call("sandbox/advance", &[("days", "1")]).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(app.payment_state(&pid).await, "failed");
    let flag: Option<String> =
        sqlx::query_scalar("select flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag.as_deref(), Some("ach_returned"));
    assert_eq!(
        app.count(&format!(
            "select count(*) from custody_event
             where payment_id = '{pid}' and state = 'failed' and owner = 'Ramp'"
        ))
        .await,
        1
    );
    let detail: String = sqlx::query_scalar(
        "select detail from hygiene_item
         where reason_code = 'ach_returned' and status = 'open' and payment_id = $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert!(detail.contains(&ramp_bill), "{detail}");

    // The bank, once readable again, shows the credit: nothing changes.
    app.inject(|f| f.plaid_login_required.clear()).await;
    let (s, body) = app.call("sandbox/advance", &[("days", "1")]).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(app.payment_state(&pid).await, "failed");
    assert_eq!(
        app.count("select count(*) from hygiene_item where reason_code = 'ach_returned'")
            .await,
        1
    );
}

/// Found by the simulation (seed 57 of `make simulate SEEDS=100`): Ramp's
/// bills.paid never came, and by the time RowCol polled Ramp the debit had
/// come back, so the bill was OPEN again and the payment stayed `released`
/// for good, unflagged, though the bank had shown both the debit and the
/// return. A return must fail a released payment whose debit the bank
/// showed.
async fn a_return_fails_a_payment_rowcol_never_heard_ramp_pay(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.inject(|f| {
        f.ramp_ach_lead_days = Some(3);
        f.webhook_drop_next = 1;
        f.ramp_ach_return_next = vec!["R02".into()];
    })
    .await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (arrival, _) = released_to(&app, &pid).await;
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let sync = || async {
        rowcol::jobs::sync::schedule_due(&app.state.services)
            .await
            .unwrap();
        app.drain().await;
    };
    // The debit leaves and the bank shows it: early evidence.
    while app.state.services.clock.today() < arrival - Duration::days(1) {
        sandbox.advance(Duration::days(1)).await.unwrap();
        sync().await;
    }
    let early: Option<String> =
        sqlx::query_scalar("select plaid_txn_id from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert!(early.is_some(), "the debit is the payment's evidence");
    assert_eq!(app.payment_state(&pid).await, "released");
    // Ramp pays (its webhook lost) and the money comes back, all before
    // RowCol looks again.
    sandbox.advance(Duration::days(8)).await.unwrap();
    sync().await;
    assert_eq!(app.payment_state(&pid).await, "failed");
    let flag: Option<String> =
        sqlx::query_scalar("select flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag.as_deref(), Some("ach_returned"));
}

/// Found by the simulation (seed 120 of `make test`'s 300): as above, but
/// RowCol had not read the bank since the release, so one sync brought the
/// debit and the return together; the return was weighed before the debit
/// became the payment's evidence, and the payment stayed `released`. A
/// released payment whose debit is in the bank, unclaimed, is a candidate.
async fn a_return_in_the_same_sync_as_its_debit_fails_the_payment(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.inject(|f| {
        f.ramp_ach_lead_days = Some(3);
        f.webhook_drop_next = 1;
        f.ramp_ach_return_next = vec!["R01".into()];
    })
    .await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    let (arrival, _) = released_to(&app, &pid).await;
    let days = (arrival - app.state.services.clock.today()).num_days();
    let sandbox = app.state.services.sandbox.clone().unwrap();
    sandbox.advance(Duration::days(days + 8)).await.unwrap();
    rowcol::jobs::sync::schedule_due(&app.state.services)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "failed");
}
