//! Issue #18 §1: a tray that fixes. Each reason code's actions through the
//! real router: offered only to the roles that may use them, refused to a
//! viewer, to another firm and on an item already closed, each audited,
//! closed items kept with who closed them and why. Both engines.

use super::support::{Engine, TestApp, PASSWORD};
use chrono::Duration;
use sandbox::QboBillEdit;
use serde_json::{json, Value};

both_engines!(
    an_amount_mismatch_is_rechecked_and_resolved_with_a_note,
    a_corrected_ledger_clears_the_mismatch_on_recheck,
    a_duplicate_is_cancelled_on_ramp_until_ramp_pays_it,
    a_dead_job_is_replayed_and_its_attempts_are_shown,
    a_bill_changed_in_the_ledger_is_approved_in_its_new_version,
    a_returned_payment_is_retried_once_the_ledger_is_open_again,
);

const ADVISOR: &str = "advisor@northwind.test";
const VIEWER: &str = "viewer@northwind.test";

/// The newest item for `reason` in the tray's `state` view.
async fn item(app: &TestApp, reason: &str, state: &str) -> Value {
    let (status, tray) = app
        .call("hygiene", &[("reason", reason), ("state", state)])
        .await;
    assert_eq!(status, 200, "{tray}");
    tray["items"]
        .as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or_else(|| panic!("no {state} {reason} item: {tray}"))
}

async fn act(app: &TestApp, hid: &str, action: &str, note: &str) -> (u16, Value) {
    app.call(
        "hygiene/act",
        &[("hygiene_id", hid), ("action", action), ("note", note)],
    )
    .await
}

fn id(item: &Value) -> String {
    item["hygiene_id"].as_str().expect("an id").to_owned()
}

/// A small bill of Alder Creek Dental approved and paid by Ramp with an
/// injected mismatch: QuickBooks records it 1.00 off.
async fn mismatched_payment(app: &TestApp) -> String {
    app.inject(|f| f.qbo_amount_mismatch_next = 1).await;
    app.login(ADVISOR).await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (status, _) = app.call("sandbox/advance", &[("days", "40")]).await;
    assert_eq!(status, 200);
    app.drain().await;
    pid
}

async fn an_amount_mismatch_is_rechecked_and_resolved_with_a_note(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    let pid = mismatched_payment(&app).await;
    let it = item(&app, "amount_mismatch", "open").await;
    let hid = id(&it);
    assert_eq!(it["payment_id"], json!(pid));
    assert_eq!(it["actions"], json!(["recheck", "resolve"]));
    assert!(it["payment_summary"].as_str().is_some(), "{it}");

    // Re-checked while QuickBooks is still wrong: it stays, once.
    let (status, body) = act(&app, &hid, "recheck", "").await;
    assert_eq!(status, 200, "{body}");
    app.drain().await;
    assert_eq!(
        item(&app, "amount_mismatch", "open").await["hygiene_id"],
        json!(hid)
    );
    assert_eq!(
        app.count("select count(*) from hygiene_item where reason_code = 'amount_mismatch'")
            .await,
        1
    );

    // A viewer sees it with no action and is refused one; so is another firm.
    app.new_session();
    app.login(VIEWER).await;
    assert_eq!(
        item(&app, "amount_mismatch", "open").await["actions"],
        json!([])
    );
    let (status, _) = act(&app, &hid, "resolve", "I looked at it").await;
    assert_eq!(status, 403);
    let pool = &app.state.app.db.pool;
    let hash = app::ssr::crypto::hash_password(PASSWORD).unwrap();
    sqlx::query(
        "insert into firm (firm_id, name, created_at) values ('firm_other', 'Other LLP', 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into app_user (user_id, firm_id, email, name, role, password_hash, created_at)
         values ('usr_other', 'firm_other', 'advisor@other.test', 'O', 'advisor', $1, 0)",
    )
    .bind(hash)
    .execute(pool)
    .await
    .unwrap();
    app.new_session();
    app.login("advisor@other.test").await;
    let (status, _) = act(&app, &hid, "resolve", "Not my firm's item").await;
    assert_eq!(status, 404);
    let (_, tray) = app.call("hygiene", &[("state", "all")]).await;
    assert_eq!(tray["items"], json!([]), "another firm's tray is its own");

    // The advisor resolves it with a note; a note too short is refused.
    app.new_session();
    app.login(ADVISOR).await;
    let (status, body) = act(&app, &hid, "resolve", "ok").await;
    assert_eq!(status, 400, "{body}");
    let note = "Vendor confirmed the 1.00 is a QBO typo; bookkeeper fixes it Monday.";
    let (status, body) = act(&app, &hid, "resolve", note).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = act(&app, &hid, "resolve", note).await;
    assert_eq!(status, 409, "closed already: {body}");

    let closed = item(&app, "amount_mismatch", "resolved").await;
    assert_eq!(closed["hygiene_id"], json!(hid));
    assert_eq!(closed["closed_by"], ADVISOR);
    assert_eq!(closed["close_note"], note);
    assert!(closed["closed_at"].is_string());
    assert_eq!(closed["actions"], json!([]));
    let (_, open) = app.call("hygiene", &[]).await;
    assert!(
        !open.to_string().contains(&hid),
        "not among the open: {open}"
    );
    let flag: Option<String> =
        sqlx::query_scalar("select flag_reason from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag, None, "the payment's flag is settled with the item");
    let detail: String = sqlx::query_scalar(
        "select detail from audit_entry where action = 'hygiene.resolved' and subject = $1",
    )
    .bind(&hid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert!(detail.contains("bookkeeper fixes it"), "{detail}");
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'hygiene.rechecked'")
            .await,
        1
    );

    // Filters are checked: a typo is an error, not an empty tray.
    let (status, _) = app.call("hygiene", &[("reason", "amount_mismatchh")]).await;
    assert_eq!(status, 400);
    let (status, _) = app.call("hygiene", &[("state", "closed")]).await;
    assert_eq!(status, 400);
}

async fn a_corrected_ledger_clears_the_mismatch_on_recheck(e: Engine) {
    let app = TestApp::spawn(e).await;
    let pid = mismatched_payment(&app).await;
    let hid = id(&item(&app, "amount_mismatch", "open").await);
    assert_eq!(app.payment_state(&pid).await, "paid");

    // The bookkeeper corrects the BillPayment in QuickBooks.
    let amount: i64 = sqlx::query_scalar("select amount_minor from payment where payment_id = $1")
        .bind(&pid)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    let (realm, bill) = app.ledger_bill_of(&pid).await;
    app.sandbox()
        .qbo_edit_bill(&realm, &bill, QboBillEdit::SetPaymentAmount(amount))
        .await
        .expect("corrected in QBO");
    let (status, body) = act(&app, &hid, "recheck", "").await;
    assert_eq!(status, 200, "{body}");
    app.drain().await;

    let closed = item(&app, "amount_mismatch", "resolved").await;
    assert_eq!(closed["hygiene_id"], json!(hid));
    assert_eq!(closed["closed_by"], "rowcol", "it cleared itself: {closed}");
    assert!(
        closed["close_note"]
            .as_str()
            .is_some_and(|n| n.contains("itself")),
        "{closed}"
    );
    let state = app.payment_state(&pid).await;
    assert!(
        state == "recorded" || state == "verified",
        "the ledger's record counts now: {state}"
    );
}

async fn a_duplicate_is_cancelled_on_ramp_until_ramp_pays_it(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADVISOR).await;

    // Released to Ramp; the bookkeeper pays the same bill by hand.
    let first = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&first).await, "released");
    let (realm, bill) = app.ledger_bill_of(&first).await;
    app.sandbox()
        .qbo_edit_bill(&realm, &bill, QboBillEdit::PayInFull)
        .await
        .unwrap();
    app.sandbox().deliver_pending_webhooks().await;
    app.drain().await;

    // Flagged while Ramp has not paid: it can still be cancelled there.
    let it = item(&app, "duplicate_payment", "open").await;
    assert_eq!(it["payment_id"], json!(first));
    assert!(
        it["detail"].as_str().unwrap().contains("paid twice"),
        "{it}"
    );
    assert_eq!(it["actions"], json!(["cancel_on_ramp", "resolve"]));
    let (status, body) = act(&app, &id(&it), "cancel_on_ramp", "").await;
    assert_eq!(status, 400, "a cancellation says why: {body}");
    let (status, body) = act(&app, &id(&it), "cancel_on_ramp", "Paid by hand in QBO").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.payment_state(&first).await, "cancelled");
    let closed = item(&app, "duplicate_payment", "resolved").await;
    assert_eq!(closed["closed_by"], ADVISOR);
    assert!(
        closed["close_note"]
            .as_str()
            .unwrap()
            .contains("Paid by hand"),
        "{closed}"
    );
    let ramp_bill: String =
        sqlx::query_scalar("select ramp_bill_id from payment where payment_id = $1")
            .bind(&first)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    let archived = app
        .sandbox()
        .state()
        .await
        .clients
        .iter()
        .flat_map(|c| c.ramp.bills.iter())
        .find(|b| b.id == ramp_bill)
        .map(|b| b.archived_at.is_some());
    assert_eq!(
        archived,
        Some(true),
        "archived on Ramp, so Ramp will not pay it"
    );

    // Once Ramp has paid, cancelling there is refused, saying so.
    let second = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (realm, bill) = app.ledger_bill_of(&second).await;
    app.sandbox()
        .qbo_edit_bill(&realm, &bill, QboBillEdit::PayInFull)
        .await
        .unwrap();
    app.sandbox().deliver_pending_webhooks().await;
    app.drain().await;
    let hid = id(&item(&app, "duplicate_payment", "open").await);
    let days = app.days_to_arrival(&second).await;
    app.sandbox()
        .advance(Duration::days(days + 2))
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&second).await, "paid");
    assert_eq!(
        item(&app, "duplicate_payment", "open").await["actions"],
        json!(["resolve"])
    );
    let (status, body) = act(&app, &hid, "cancel_on_ramp", "Paid by hand in QBO").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("already paid"), "{body}");
}

async fn a_dead_job_is_replayed_and_its_attempts_are_shown(e: Engine) {
    let app = TestApp::spawn(e).await;
    let business: String = sqlx::query_scalar(
        "select external_id from rail_connection
         where rail = 'ramp' and status = 'active' order by client_id limit 1",
    )
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    // A bills.paid naming no bill: processing it can never succeed.
    let body =
        json!({"id": "evt-replayed", "type": "bills.paid", "business_id": business}).to_string();
    let (status, _) = app
        .post_webhook(
            &body,
            Some(&super::support::sign(&app.webhook_secret(), &body)),
        )
        .await;
    assert_eq!(status, 200);
    app.drain().await;
    app.login(ADVISOR).await;
    let it = item(&app, "job_dead_lettered", "open").await;
    let hid = id(&it);
    assert_eq!(it["actions"], json!(["replay", "dismiss"]));
    assert_eq!(it["attempts"].as_array().map(Vec::len), Some(1), "{it}");

    let (status, body) = act(&app, &hid, "replay", "").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = act(&app, &hid, "replay", "").await;
    assert_eq!(status, 409, "the item is closed once replayed");
    app.drain().await;

    // It failed again: a new item lists both attempts of the same job.
    let again = item(&app, "job_dead_lettered", "open").await;
    assert_ne!(id(&again), hid);
    let attempts = again["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{again}");
    assert!(attempts.iter().all(|a| a["error"].is_string()), "{again}");
    let replayed = item(&app, "job_dead_lettered", "resolved").await;
    assert_eq!(replayed["closed_by"], ADVISOR);
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'job.replayed'")
            .await,
        1
    );
    assert_eq!(
        app.count("select count(*) from webhook_inbox where event_id = 'evt-replayed' and status = 'dead'")
            .await,
        1
    );
}

async fn a_bill_changed_in_the_ledger_is_approved_in_its_new_version(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADVISOR).await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    // Before the release runs, the bookkeeper raises the bill's total.
    let (realm, bill) = app.ledger_bill_of(&pid).await;
    let amount: i64 = sqlx::query_scalar("select amount_minor from payment where payment_id = $1")
        .bind(&pid)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    app.sandbox()
        .qbo_edit_bill(&realm, &bill, QboBillEdit::SetTotal(amount + 2_500))
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "cancelled");
    let it = item(&app, "bill_changed_in_ledger", "open").await;
    assert_eq!(it["actions"], json!(["approve_new_version", "dismiss"]));

    let (status, body) = act(&app, &id(&it), "approve_new_version", "").await;
    assert_eq!(status, 200, "{body}");
    let new_amount: i64 = sqlx::query_scalar(
        "select amount_minor from payment where payment_id <> $1 order by created_at desc limit 1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(new_amount, amount + 2_500, "the ledger's new version");
    assert_eq!(
        item(&app, "bill_changed_in_ledger", "resolved").await["closed_by"],
        ADVISOR
    );
}

async fn a_returned_payment_is_retried_once_the_ledger_is_open_again(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADVISOR).await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let days = app.days_to_arrival(&pid).await;
    let sandbox = app.state.services.sandbox.clone().unwrap();
    sandbox.advance(Duration::days(days + 1)).await.unwrap();
    app.drain().await;
    let (ramp_bill, amount): (String, i64) =
        sqlx::query_as("select ramp_bill_id, amount_minor from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    let business = sandbox
        .state()
        .await
        .clients
        .iter()
        .find(|c| c.ramp.bills.iter().any(|b| b.id == ramp_bill))
        .map(|c| c.ramp.business_id.clone())
        .expect("the bill's business");
    let res = reqwest::Client::new()
        .post(format!("{}/sandbox/control/ramp/ach_return", app.base))
        .json(&json!({"business_id": business, "bill_id": ramp_bill, "reason": "R01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    sandbox.advance(Duration::hours(1)).await.unwrap();
    rowcol::jobs::sync::schedule_due(&app.state.services)
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "failed");
    let it = item(&app, "ach_returned", "open").await;
    assert_eq!(it["actions"], json!(["retry_payment", "resolve"]));

    // QuickBooks still shows the bill paid by Ramp's BillPayment.
    let (status, body) = act(&app, &id(&it), "retry_payment", "").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("void"), "{body}");

    // The bookkeeper voids it (its amount to zero); the ledger re-syncs.
    let (realm, bill) = app.ledger_bill_of(&pid).await;
    sandbox
        .qbo_edit_bill(&realm, &bill, QboBillEdit::SetPaymentAmount(0))
        .await
        .unwrap();
    sandbox.deliver_pending_webhooks().await;
    app.drain().await;
    let (status, body) = act(&app, &id(&it), "retry_payment", "").await;
    assert_eq!(status, 200, "{body}");
    let (new_pid, new_amount): (String, i64) =
        sqlx::query_as("select payment_id, amount_minor from payment where payment_id <> $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_ne!(new_pid, pid, "a new payment, with its own remote_id");
    assert_eq!(new_amount, amount);
}
