//! Issue #9 — QBO webhooks: a bill edited in QuickBooks makes the simulator
//! send a signed notification to `POST /webhooks/qbo`; RowCol stores it,
//! syncs the realm's client, and the staged bill shows the new amount with
//! no clock advance. A forged notification is refused with 401 and stored
//! nowhere. Each run on SQLite and PostgreSQL.

use super::support::{Engine, TestApp};
use sandbox::QboBillEdit;

both_engines!(a_bill_edited_in_qbo_arrives_by_webhook,);

async fn inbox_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from webhook_inbox where rail = 'qbo'")
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap()
}

/// The realm's last read and last full read (unix ms).
async fn sync_marks(app: &TestApp, realm: &str) -> (i64, i64) {
    sqlx::query_as(
        "select synced_at, full_synced_at from rail_connection where rail = 'qbo' and external_id = $1",
    )
    .bind(realm)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap()
}

async fn a_bill_edited_in_qbo_arrives_by_webhook(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    app.drain().await;
    let (_cid, bill_id) = app.small_bill("Alder Creek Dental").await;
    let (realm, qbo_bill): (String, String) = sqlx::query_as(
        "select c.external_id, b.qbo_bill_id from staged_bill b
         join rail_connection c on c.client_id = b.client_id and c.rail = 'qbo'
         where b.bill_id = $1",
    )
    .bind(&bill_id)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    // Whatever the start-up produced is delivered and processed first.
    app.sandbox().deliver_pending_webhooks().await;
    app.drain().await;
    let before = inbox_rows(&app).await;
    let new_total = {
        let st = app.sandbox().state().await;
        let c = st.clients.iter().find(|c| c.qbo.realm_id == realm).unwrap();
        let b = c.qbo.bills.iter().find(|b| b.id == qbo_bill).unwrap();
        b.total_cents + 5_000
    };
    app.sandbox()
        .qbo_edit_bill(&realm, &qbo_bill, QboBillEdit::SetTotal(new_total))
        .await
        .unwrap();
    let clock_before = app.state.services.clock.now();

    let delivered = app.sandbox().deliver_pending_webhooks().await;
    assert!(delivered >= 1, "the simulator sent the notification");
    let body: String = sqlx::query_scalar(
        "select body from webhook_inbox where rail = 'qbo' order by received_at desc limit 1",
    )
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let n = &v["eventNotifications"][0];
    assert_eq!(n["realmId"], realm.as_str(), "{body}");
    let ent = &n["dataChangeEvent"]["entities"][0];
    assert_eq!(
        (&ent["name"], &ent["id"], &ent["operation"]),
        (&"Bill".into(), &qbo_bill.as_str().into(), &"Update".into()),
        "{body}"
    );
    assert_eq!(inbox_rows(&app).await, before + 1, "stored once");
    let (_, full_before) = sync_marks(&app, &realm).await;
    let calls = app.rail_calls("qbo");
    app.drain().await;
    let amount: i64 = sqlx::query_scalar("select amount_minor from staged_bill where bill_id = $1")
        .bind(&bill_id)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert_eq!(amount, new_total, "the sync the webhook caused re-read QBO");
    // Issue #19 §1: read incrementally (CDC since the last read): one
    // request to QBO, and no full read.
    assert_eq!(app.rail_calls("qbo") - calls, 1, "one CDC request");
    let (read, full) = sync_marks(&app, &realm).await;
    assert_eq!(full, full_before, "no full read");
    assert!(read > full_before, "an incremental read");

    assert!(
        app.state.services.clock.now() - clock_before < chrono::Duration::minutes(1),
        "no clock advance was needed"
    );
    let status: String = sqlx::query_scalar(
        "select status from webhook_inbox where rail = 'qbo' order by received_at desc limit 1",
    )
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(status, "processed");

    // A forged one: signed with another key, and one without a signature.
    let forged = body.replace(&qbo_bill, "999999");
    let sig = sandbox::qbo_webhooks::sign(b"not-the-verifier", forged.as_bytes());
    for headers in [vec![("intuit-signature", sig.as_str())], vec![]] {
        let mut req = app
            .http
            .post(format!("{}/webhooks/qbo", app.base))
            .header("content-type", "application/json")
            .body(forged.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    assert_eq!(
        inbox_rows(&app).await,
        before + 1,
        "forgeries stored nowhere"
    );

    // A bill deleted in QuickBooks is closed by the next incremental read.
    let (_, other) = {
        let detail = app.client(&_cid).await;
        let other = detail["bills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bill_id"].as_str().unwrap().to_owned())
            .find(|b| *b != bill_id)
            .expect("another open bill");
        (0, other)
    };
    let other_qbo: String =
        sqlx::query_scalar("select qbo_bill_id from staged_bill where bill_id = $1")
            .bind(&other)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    app.sandbox()
        .qbo_edit_bill(&realm, &other_qbo, QboBillEdit::Delete)
        .await
        .unwrap();
    app.sandbox().deliver_pending_webhooks().await;
    let calls = app.rail_calls("qbo");
    app.drain().await;
    let status: String = sqlx::query_scalar("select status from staged_bill where bill_id = $1")
        .bind(&other)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "closed", "deleted in QuickBooks");
    assert_eq!(app.rail_calls("qbo") - calls, 1, "one CDC request");
    assert_eq!(
        sync_marks(&app, &realm).await.1,
        full_before,
        "no full read"
    );
}
