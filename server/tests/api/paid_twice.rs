//! Issue #16 §6: a bill paid twice. The bookkeeper pays a released bill by
//! hand in QuickBooks; Ramp pays it too. Verification insists on the
//! BillPayment Ramp's accounting sync wrote for the payment: the
//! bookkeeper's BillPayment never verifies it, and the second payment of
//! the bill is a critical `duplicate_payment` in the tray.

use super::support::{Engine, TestApp};
use chrono::Duration;
use sandbox::QboBillEdit;

both_engines!(a_bill_paid_by_hand_after_release_is_flagged_not_verified);

async fn a_bill_paid_by_hand_after_release_is_flagged_not_verified(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");

    // The bookkeeper, not knowing, pays the same bill in QuickBooks.
    let (realm, qbo_bill) = app.ledger_bill_of(&pid).await;
    app.sandbox()
        .qbo_edit_bill(&realm, &qbo_bill, QboBillEdit::PayInFull)
        .await
        .expect("paid by hand in QBO");

    // Ramp pays on the arrival date.
    let days = app.days_to_arrival(&pid).await;
    app.sandbox()
        .advance(Duration::days(days + 2))
        .await
        .unwrap();
    app.drain().await;

    let (state, flag, ledger): (String, Option<String>, Option<String>) = sqlx::query_as(
        "select state, flag_reason, qbo_bill_payment_id from payment where payment_id = $1",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        state, "paid",
        "never recorded on the bookkeeper's BillPayment"
    );
    assert_eq!(ledger, None);
    assert_eq!(flag.as_deref(), Some("duplicate_payment"));
    let (severity, detail): (String, String) = sqlx::query_as(
        "select severity, detail from hygiene_item
         where payment_id = $1 and reason_code = 'duplicate_payment' and status = 'open'",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("an open duplicate_payment item");
    assert_eq!(severity, "critical");
    assert!(detail.contains("paid twice"), "{detail}");
    assert!(detail.contains(&qbo_bill), "{detail}");
}
