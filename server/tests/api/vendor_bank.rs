//! Issue #9 — a vendor's bank account changes on Ramp (the sandbox control
//! `POST /sandbox/control/ramp/vendor_bank_change`): the next payment to
//! that vendor is held before release for a second look, nothing reaches
//! Ramp, and it goes out to the new account only once an advisor confirms
//! the change in the hygiene tray. Each run on SQLite and PostgreSQL.

use super::support::{Engine, TestApp};
use serde_json::{json, Value};

both_engines!(
    a_vendor_bank_change_holds_the_next_release_until_confirmed,
    the_vendor_bank_change_fault_holds_the_release_that_reads_it,
);

async fn a_vendor_bank_change_holds_the_next_release_until_confirmed(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    app.drain().await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let vendor: String = sqlx::query_scalar(
        "select v.ramp_vendor_id from vendor_map v join staged_bill b
           on b.client_id = v.client_id and b.qbo_vendor_id = v.qbo_vendor_id
         where b.bill_id = $1",
    )
    .bind(&bill)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("the bill's vendor is mapped to Ramp");
    let business = app
        .sandbox()
        .state()
        .await
        .clients
        .iter()
        .find(|c| c.ramp.vendors.iter().any(|v| v.id == vendor))
        .map(|c| c.ramp.business_id.clone())
        .expect("the vendor's business");

    // The vendor "sends new bank details".
    let res = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/control/ramp/vendor_bank_change",
            app.base
        ))
        .json(&json!({"business_id": business, "vendor_id": vendor}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let change: Value = res.json().await.unwrap();
    let new_account = change["account_id"].as_str().unwrap().to_owned();
    assert_ne!(change["previous_account_id"], change["account_id"]);

    // Approved, then held: no Ramp bill, the payment flagged, one item.
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let pid: String = sqlx::query_scalar("select payment_id from payment")
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "approved");
    assert!(app.ramp_bills_with_remote_id(&pid).await.is_empty());
    let flag: Option<String> =
        sqlx::query_scalar("select flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag.as_deref(), Some("vendor_bank_changed"));
    let (hid, detail): (String, String) = sqlx::query_as(
        "select hygiene_id, detail from hygiene_item
         where reason_code = 'vendor_bank_changed' and status = 'open' and payment_id = $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert!(detail.contains(&new_account), "{detail}");

    // A sync meanwhile does not quietly accept the new account.
    app.sandbox()
        .advance(chrono::Duration::hours(1))
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "approved");
    assert!(app.ramp_bills_with_remote_id(&pid).await.is_empty());

    // The advisor confirms: the release goes out, to the new account.
    let (status, body) = app.call("retry_payment", &[("hygiene_id", &hid)]).await;
    assert_eq!(status, 200, "{body}");
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    let st = app.sandbox().state().await;
    let paid_to: Vec<&str> = st
        .clients
        .iter()
        .flat_map(|c| c.ramp.bills.iter())
        .filter(|b| b.remote_id.as_deref() == Some(pid.as_str()))
        .map(|b| b.vendor_account_id.as_str())
        .collect();
    assert_eq!(paid_to, vec![new_account.as_str()]);
    assert_eq!(
        app.count("select count(*) from hygiene_item where reason_code = 'vendor_bank_changed' and status = 'open'")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_entry where action = 'vendor.bank_account_confirmed'"
        )
        .await,
        1
    );
    // Confirming again finds nothing held.
    let (status, _) = app.call("retry_payment", &[("hygiene_id", &hid)]).await;
    assert_ne!(status, 200);
}

/// The same change as a fault (`ramp_vendor_bank_change_next`, on the
/// Sandbox page): the release's own read of the vendor's accounts finds
/// them just changed, and the payment is held. One read, one change.
async fn the_vendor_bank_change_fault_holds_the_release_that_reads_it(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    app.drain().await;
    app.inject(|f| f.ramp_vendor_bank_change_next = 1).await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "approved");
    assert!(app.ramp_bills_with_remote_id(&pid).await.is_empty());
    let flag: Option<String> =
        sqlx::query_scalar("select flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag.as_deref(), Some("vendor_bank_changed"));
    assert_eq!(app.sandbox().faults().await.ramp_vendor_bank_change_next, 0);
}
