//! Issue #9 — the world keeps living (`Faults::living_world`): new bills
//! arrive in QBO and reach RowCol's inbox through its ordinary sync; bills
//! paid by hand or deleted in QBO leave the inbox's open bills; a changed
//! amount is what RowCol shows. Each run on SQLite and PostgreSQL.

use super::support::{Engine, TestApp};

both_engines!(the_living_worlds_bills_reach_the_inbox_as_qbo_has_them,);

/// RowCol's open bill for (realm, QBO bill id): its amount, if any.
async fn open_bill(app: &TestApp, realm: &str, qbo_bill: &str) -> Option<i64> {
    sqlx::query_scalar(
        "select b.balance_minor from staged_bill b
           join rail_connection r on r.client_id = b.client_id and r.rail = 'qbo'
         where r.external_id = $1 and b.qbo_bill_id = $2 and b.status = 'open'",
    )
    .bind(realm)
    .bind(qbo_bill)
    .fetch_optional(&app.state.app.db.pool)
    .await
    .expect("staged bill")
}

async fn the_living_worlds_bills_reach_the_inbox_as_qbo_has_them(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    app.drain().await;
    app.inject(|f| f.living_world = true).await;
    // Five weeks pass a day at a time through the console's clock, which
    // schedules the syncs that have come due.
    for _ in 0..35 {
        let (status, body) = app.call("sandbox/advance", &[("days", "1")]).await;
        assert_eq!(status, 200, "{body}");
        app.drain().await;
    }
    let log = app.sandbox().world_log().await;
    let arrived = log.iter().filter(|e| e.kind == "bill_arrived").count();
    // About one every three days for each of the 22 connected clients.
    assert!(arrived >= 150, "{arrived} bills arrived");
    let world = app.sandbox().state().await;
    let mut seen = 0;
    for e in &log {
        let Some(client) = world.clients.iter().find(|c| c.qbo.realm_id == e.realm_id) else {
            continue;
        };
        let connected: Option<String> = sqlx::query_scalar(
            "select client_id from rail_connection where rail = 'qbo' and external_id = $1",
        )
        .bind(&e.realm_id)
        .fetch_optional(&app.state.app.db.pool)
        .await
        .expect("connection");
        if connected.is_none() {
            continue; // a company the demo firm is not connected to
        }
        let in_qbo = client.qbo.bills.iter().find(|b| b.id == e.bill_id);
        let in_rowcol = open_bill(&app, &e.realm_id, &e.bill_id).await;
        match (e.kind.as_str(), in_qbo) {
            // Paid by hand or deleted: not among RowCol's open bills.
            ("paid_by_hand" | "deleted", _) => {
                assert_eq!(in_rowcol, None, "{e:?}");
            }
            // Arrived or edited and still open in QBO: RowCol shows QBO's
            // balance (an edit after the last event on it included).
            (_, Some(b)) if b.balance_cents > 0 => {
                assert_eq!(in_rowcol, Some(b.balance_cents), "{e:?}");
                seen += 1;
            }
            _ => {}
        }
    }
    assert!(seen >= 100, "only {seen} of the world's bills checked");
    for kind in ["paid_by_hand", "deleted", "amount_edited"] {
        assert!(
            log.iter().any(|e| e.kind == kind),
            "no {kind} in five weeks"
        );
    }
}
