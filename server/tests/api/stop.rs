//! Issue #16: an approved payment can be stopped until the money moves —
//! here before release, on Ramp by archiving its bill first, refused while a
//! create is unanswered, and refused once Ramp has paid it. Each stop frees
//! the committed cash, re-opens the bill and is audited.

use super::support::{Engine, TestApp};
use chrono::Duration;

both_engines!(an_approved_payment_can_be_stopped_until_ramp_pays_it);

const REASON: &str = "client in breach since day 6";

async fn committed(app: &TestApp, client_id: &str) -> i64 {
    app.client(client_id).await["summary"]["cash"]["approved_unpaid"]["minor"]
        .as_i64()
        .expect("committed")
}

async fn stop(app: &TestApp, pid: &str, reason: &str) -> (u16, serde_json::Value) {
    app.call("stop_payment", &[("payment_id", pid), ("reason", reason)])
        .await
}

/// Approve `bill` of `client_id`; the new payment's id.
async fn approve(app: &TestApp, client_id: &str, bill: &str) -> String {
    let (status, body) = app.approve(client_id, &[bill]).await;
    assert_eq!(status, 200, "approve: {body}");
    sqlx::query_scalar(
        "select payment_id from payment where bill_id = $1 and state in ('approved', 'awaiting_second_approval')",
    )
    .bind(bill)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("payment")
}

async fn an_approved_payment_can_be_stopped_until_ramp_pays_it(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let before = committed(&app, &cid).await;

    // 1. Approved, nothing sent to Ramp: stopped here.
    let first = approve(&app, &cid, &bill).await;
    let amount = committed(&app, &cid).await - before;
    assert!(amount > 0);
    app.new_session();
    app.login("viewer@northwind.test").await;
    let (status, _) = stop(&app, &first, REASON).await;
    assert_eq!(status, 403, "viewers stop nothing");
    app.new_session();
    app.login("advisor@northwind.test").await;
    let (status, body) = stop(&app, &first, "no").await;
    assert_eq!(status, 422, "a reason is required: {body}");
    let (status, body) = stop(&app, &first, REASON).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.payment_state(&first).await, "cancelled");
    assert_eq!(committed(&app, &cid).await, before, "its cash is released");
    app.drain().await;
    assert!(
        app.ramp_bills_with_remote_id(&first).await.is_empty(),
        "the release that was queued sends nothing"
    );
    let (status, _) = stop(&app, &first, REASON).await;
    assert_eq!(status, 409, "a cancelled payment has nothing to stop");
    let audited = app
        .count(&format!(
            "select count(*) from audit_entry where action = 'payment.cancelled' \
             and subject = '{first}' and detail like '%{REASON}%'"
        ))
        .await;
    assert_eq!(audited, 1, "the stop is audited with its reason");

    // 2. The bill can be decided again; released to Ramp, Ramp archives it
    // first.
    let second = approve(&app, &cid, &bill).await;
    assert_ne!(second, first);
    // A create sent whose answer has not come: nobody knows yet whether Ramp
    // holds the bill, so the stop waits for the release to settle it.
    sqlx::query("update payment set ramp_create_attempted_at = 1 where payment_id = $1")
        .bind(&second)
        .execute(&app.state.app.db.pool)
        .await
        .unwrap();
    let (status, body) = stop(&app, &second, REASON).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("being sent to Ramp"), "{body}");
    sqlx::query("update payment set ramp_create_attempted_at = null where payment_id = $1")
        .bind(&second)
        .execute(&app.state.app.db.pool)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&second).await, "released");
    let ramp_bill = app.ramp_bills_with_remote_id(&second).await;
    assert_eq!(ramp_bill.len(), 1);
    let (status, body) = stop(&app, &second, REASON).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.payment_state(&second).await, "cancelled");
    assert_eq!(committed(&app, &cid).await, before);
    let archived = app
        .sandbox()
        .state()
        .await
        .clients
        .iter()
        .flat_map(|c| c.ramp.bills.iter())
        .find(|b| b.id == ramp_bill[0])
        .map(|b| b.archived_at.is_some())
        .expect("the Ramp bill");
    assert!(archived, "Ramp archived the bill before RowCol cancelled");

    // 3. Paid by Ramp: too late, and it says so.
    let third = approve(&app, &cid, &bill).await;
    app.drain().await;
    let days = app.days_to_arrival(&third).await;
    app.sandbox()
        .advance(Duration::days(days + 1))
        .await
        .unwrap();
    app.drain().await;
    let state = app.payment_state(&third).await;
    assert!(
        ["paid", "recorded", "verified"].contains(&state.as_str()),
        "{state}"
    );
    let (status, body) = stop(&app, &third, REASON).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("already paid"), "{body}");
    assert_eq!(app.payment_state(&third).await, state);
}
