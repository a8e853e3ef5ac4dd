//! Issue #19 §4: `GET /metrics`, the Prometheus text format behind
//! `ROWCOL_METRICS_TOKEN`. Each test runs on SQLite and PostgreSQL.

use super::support::{sign, Engine, TestApp};
use reqwest::Method;
use serde_json::json;

both_engines!(metrics_need_their_token_and_count_what_happened);

const TOKEN: &str = "metrics-token-for-the-tests";

/// The value of one series (`name{labels}` exactly as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn metrics_need_their_token_and_count_what_happened(e: Engine) {
    // Without a token configured there is no such route.
    let plain = TestApp::spawn(e).await;
    let (status, _, _) = plain.send(Method::GET, "/metrics", &[], None).await;
    assert_eq!(status, 404);
    drop(plain);

    let app = TestApp::spawn_with(e, |c| c.metrics_token = Some(TOKEN.into())).await;
    let scrape = |auth: Option<&'static str>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
            app.send(Method::GET, "/metrics", &headers, None).await
        }
    };
    for auth in [
        None,
        Some("Bearer not-the-token-at-all!!"),
        Some("Basic bWV0cmljcw=="),
    ] {
        let (status, headers, body) = scrape(auth).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(headers.contains_key("www-authenticate"));
        assert!(!body.contains("rowcol_"), "{body}");
    }

    // What happens: a payment approved and released on Ramp, a signed
    // webhook stored and processed, an unsigned one refused, a wrong password.
    app.login("advisor@northwind.test").await;
    let payment = app.approve_small_bill("Alder Creek Dental").await;
    let body = json!({"id": "evt-metrics", "type": "bills.paid",
                      "object": {"id": "a-bill-ramp-does-not-have"}})
    .to_string();
    let (status, text) = app
        .post_webhook(&body, Some(&sign(&app.webhook_secret(), &body)))
        .await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = app.post_webhook(&body, None).await;
    assert_eq!(status, 401);
    app.drain().await;
    let (status, _) = app
        .call(
            "login",
            &[("email", "advisor@northwind.test"), ("password", "wrong")],
        )
        .await;
    assert_eq!(status, 401);

    let (status, headers, text) = scrape(Some("Bearer metrics-token-for-the-tests")).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    let has = |series: &str, want: f64| {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    };
    has("rowcol_webhook_ack_seconds_count{rail=\"ramp\"}", 2.0);
    has(
        "rowcol_webhook_requests_total{rail=\"ramp\",status=\"200\"}",
        1.0,
    );
    has(
        "rowcol_webhook_requests_total{rail=\"ramp\",status=\"401\"}",
        1.0,
    );
    has("rowcol_webhook_processed_seconds_count{rail=\"ramp\"}", 1.0);
    has(
        "rowcol_webhook_inbox{rail=\"ramp\",status=\"processed\"}",
        1.0,
    );
    has("rowcol_sign_in_failures_total", 1.0);
    has("rowcol_database_up", 1.0);
    let state = app.payment_state(&payment).await;
    has(&format!("rowcol_payments{{state=\"{state}\"}}"), 1.0);
    has("rowcol_job_queue_depth", 0.0);
    // The release went to Ramp, through the counted client.
    assert!(
        value(
            &text,
            "rowcol_rail_requests_total{rail=\"ramp\",status=\"200\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "rowcol_job_attempts_total{kind=\"process_webhook\",outcome=\"done\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // Counts only: no client's name, no amount, no token.
    assert!(!text.contains("Alder Creek"), "{text}");
    assert!(!text.contains(TOKEN));
}
