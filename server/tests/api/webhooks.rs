//! Issue #19 §2: `POST /webhooks/stripe`, verified as Stripe's libraries do
//! (rails.md §4.6), stored once per event before the 2xx, processed later;
//! §3: what happens to a delivery whose processing gives up.
//! Each test runs on SQLite and PostgreSQL.

use super::support::{sign, Engine, TestApp};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::json;

both_engines!(
    stripe_deliveries_are_verified_stored_once_and_processed,
    a_webhook_whose_processing_gives_up_is_dead_and_in_the_tray,
);

fn v1(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn stripe_deliveries_are_verified_stored_once_and_processed(e: Engine) {
    let app = TestApp::spawn(e).await;
    let secret = app.state.stripe_webhook_secret.to_string();
    assert!(secret.starts_with("whsec_"), "the sandbox derives one");
    let post = |body: String, signature: Option<String>| {
        let app = &app;
        async move {
            let mut headers = vec![("content-type", "application/json".to_owned())];
            if let Some(s) = signature {
                headers.push(("stripe-signature", s));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, _, text) = app
                .send(
                    Method::POST,
                    "/webhooks/stripe",
                    &headers,
                    Some(body.into()),
                )
                .await;
            (status, text)
        }
    };
    let now = chrono::Utc::now().timestamp();
    let event = |id: &str| {
        json!({"id": id, "object": "event", "type": "invoice.paid",
               "account": "acct_demo", "data": {"object": {"id": "in_1"}}})
        .to_string()
    };
    let body = event("evt_metrics_1");
    let signed = format!("t={now},v1={}", v1(&secret, now, &body));

    // Refused, nothing stored: no header, another secret, a tampered body,
    // a timestamp older than the 300 s tolerance.
    let refusals = [
        None,
        Some(format!("t={now},v1={}", v1("whsec_not_ours", now, &body))),
        Some(format!(
            "t={},v1={}",
            now - 301,
            v1(&secret, now - 301, &body)
        )),
    ];
    for sig in refusals {
        let (status, text) = post(body.clone(), sig.clone()).await;
        assert_eq!(status, 401, "{sig:?}: {text}");
    }
    let (status, _) = post(body.replace("in_1", "in_2"), Some(signed.clone())).await;
    assert_eq!(status, 401, "tampered");
    let stored = "select count(*) from webhook_inbox where rail = 'stripe'";
    assert_eq!(app.count(stored).await, 0);

    // Signed: stored; the same event again answered 200 and stored once.
    let (status, text) = post(body.clone(), Some(signed.clone())).await;
    assert_eq!((status, text.contains("received")), (200, true), "{text}");
    let (status, text) = post(body.clone(), Some(signed)).await;
    assert_eq!((status, text.contains("duplicate")), (200, true), "{text}");
    assert_eq!(app.count(stored).await, 1);

    // A rolled secret: the old one's signature beside the current one's.
    let body = event("evt_metrics_2");
    let rolled = format!(
        "t={now},v1={},v1={}",
        v1("whsec_the_old_one", now, &body),
        v1(&secret, now, &body)
    );
    let (status, text) = post(body, Some(rolled)).await;
    assert_eq!(status, 200, "{text}");

    // Signed but not an event: 400.
    let junk = json!({"object": "event"}).to_string();
    let (status, _) = post(
        junk.clone(),
        Some(format!("t={now},v1={}", v1(&secret, now, &junk))),
    )
    .await;
    assert_eq!(status, 400);

    app.drain().await;
    assert_eq!(
        app.count(
            "select count(*) from webhook_inbox where rail = 'stripe' and status = 'processed'"
        )
        .await,
        2
    );
}

/// Issue #19 §3: a webhook whose processing gives up is `dead` in the inbox,
/// not `received` forever, and reaches the tray of the client whose account
/// it names.
async fn a_webhook_whose_processing_gives_up_is_dead_and_in_the_tray(e: Engine) {
    let app = TestApp::spawn(e).await;
    let (business, client): (String, String) = sqlx::query_as(
        "select external_id, client_id from rail_connection
         where rail = 'ramp' and status = 'active' order by client_id limit 1",
    )
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("a Ramp connection");
    // A bills.paid without the bill: its processing can never succeed.
    let body =
        json!({"id": "evt-gives-up", "type": "bills.paid", "business_id": business}).to_string();
    let (status, text) = app
        .post_webhook(&body, Some(&sign(&app.webhook_secret(), &body)))
        .await;
    assert_eq!(status, 200, "{text}");
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from webhook_inbox where event_id = 'evt-gives-up' and status = 'dead'")
            .await,
        1
    );
    let items: Vec<(String, String)> = sqlx::query_as(
        "select client_id, detail from hygiene_item
         where reason_code = 'job_dead_lettered' and status = 'open'",
    )
    .fetch_all(&app.state.app.db.pool)
    .await
    .expect("tray");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].0, client);
    assert!(
        items[0].1.contains("Ramp") && items[0].1.contains("evt-gives-up"),
        "{}",
        items[0].1
    );
}
