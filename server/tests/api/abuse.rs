//! Issue #6, finding 7: abuse refused. Each test runs on SQLite and
//! PostgreSQL.

use super::support::{self, sign, Engine, TestApp, PASSWORD};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

both_engines!(
    viewer_cannot_advance_the_sandbox_clock,
    sandbox_controls_accept_only_json,
    sandbox_mode_refuses_a_public_address_unless_allowed,
    ten_failures_throttle_the_account_even_for_the_right_password,
    one_address_is_throttled_across_accounts_whatever_it_forwards,
    a_trusted_proxys_forwarded_address_is_the_client,
    password_hashing_has_a_concurrency_bound,
    concurrent_wrong_passwords_cannot_pass_the_limit,
    unsigned_webhooks_are_summarised_once_per_minute,
    a_webhooks_signature_is_checked_without_the_database,
    pages_read_while_a_write_holds_the_database,
    every_response_carries_the_security_headers,
    page_scripts_run_only_under_this_responses_nonce,
    cross_origin_state_changes_are_refused,
    a_request_for_another_host_is_misdirected,
    malformed_server_function_calls_get_a_plain_4xx,
);

const ADVISOR: &str = "advisor@northwind.test";

async fn sandbox_today(app: &TestApp) -> String {
    let (status, _, body) = app
        .send(Method::GET, "/sandbox/control/state", &[], None)
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("state JSON");
    v["today"].as_str().expect("today").to_owned()
}

async fn viewer_cannot_advance_the_sandbox_clock(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    app.login("viewer@northwind.test").await;
    let before = sandbox_today(&app).await;
    let (status, body) = app.call("sandbox/advance", &[("days", "7")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("Forbidden"), "{body}");
    assert_eq!(sandbox_today(&app).await, before, "the clock did not move");

    // An advisor may.
    app.new_session();
    app.login(ADVISOR).await;
    let (status, body) = app.call("sandbox/advance", &[("days", "1")]).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(sandbox_today(&app).await, before);
}

async fn sandbox_controls_accept_only_json(e: Engine) {
    let app = TestApp::spawn(e).await;
    let before = sandbox_today(&app).await;
    let advance = r#"{"days": 3}"#;
    // A cross-site form or `fetch(…, {mode: "no-cors"})` can send these
    // without a preflight; none may move the clock.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| vec![("content-type", c)])
            .unwrap_or_default();
        let (status, _, body) = app
            .send(
                Method::POST,
                "/sandbox/control/advance",
                &headers,
                Some(advance.into()),
            )
            .await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        let v: Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or("")
                .contains("application/json"),
            "{body}"
        );
        let (status, _, body) = app
            .send(
                Method::POST,
                "/sandbox/control/faults",
                &headers,
                Some(r#"{"ramp_create_fail_next": [500]}"#.into()),
            )
            .await;
        assert_eq!(status, 415, "faults {content_type:?}: {body}");
    }
    assert_eq!(sandbox_today(&app).await, before, "the clock did not move");
    let faults = app.state.services.sandbox.as_ref().unwrap().faults().await;
    assert!(faults.ramp_create_fail_next.is_empty(), "no fault was set");

    let (status, _, body) = app
        .send(
            Method::POST,
            "/sandbox/control/advance",
            &[("content-type", "application/json; charset=utf-8")],
            Some(advance.into()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(sandbox_today(&app).await, before);
}

async fn sandbox_mode_refuses_a_public_address_unless_allowed(e: Engine) {
    use rowcol::startup::Application;
    let tmp = tempfile::tempdir().unwrap();
    let mut config = support::test_config();
    config.database_url = support::database_url(e, tmp.path()).await;
    config.demo_password = Some(PASSWORD.into());
    config.encryption_key = Some(app::ssr::crypto::Sealer::generate_key());
    config.worker = false;
    config.data_dir = tmp.path().display().to_string();
    config.sandbox_start = Some(support::sandbox_start());

    let public = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = match Application::build(config.clone(), public).await {
        Ok(_) => panic!("sandbox mode started on 0.0.0.0"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("ROWCOL_ALLOW_PUBLIC_SANDBOX") && err.contains("0.0.0.0"),
        "{err}"
    );
    if let Engine::Sqlite = e {
        assert!(
            !tmp.path().join("rowcol.db").exists(),
            "refused before touching the database"
        );
    }

    let loopback = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(Application::build(config.clone(), loopback).await.is_ok());

    config.allow_public_sandbox = true;
    let public = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    assert!(Application::build(config, public).await.is_ok());
}

async fn login_from(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> (u16, HeaderMap, Value) {
    let headers: Vec<(&str, &str)> = forwarded
        .map(|f| vec![("x-forwarded-for", f)])
        .unwrap_or_default();
    app.call_with(
        "login",
        &[("email", email), ("password", password)],
        &headers,
    )
    .await
}

fn retry_after(h: &HeaderMap) -> i64 {
    h.get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds")
}

async fn ten_failures_throttle_the_account_even_for_the_right_password(e: Engine) {
    // Ten different addresses (believed: the peer is a trusted proxy), so
    // it is the account's count that trips.
    let mut app = TestApp::spawn_with(e, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for i in 0..10 {
        let (status, _, body) =
            login_from(&app, ADVISOR, "wrong", Some(&format!("198.51.100.{i}"))).await;
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, headers, body) = login_from(&app, ADVISOR, PASSWORD, Some("198.51.100.200")).await;
    assert_eq!(status, 429, "the right password while throttled: {body}");
    let wait = retry_after(&headers);
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let (_, me) = app.call("me", &[]).await;
    assert!(me.is_null(), "no session while throttled: {me}");
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'auth.throttled'")
            .await,
        1,
        "throttling is audited once, when it starts"
    );

    // Another account from the same address is not affected.
    let (status, _, body) = login_from(
        &app,
        "admin@northwind.test",
        PASSWORD,
        Some("198.51.100.200"),
    )
    .await;
    assert!(status == 200 || status == 302, "{status} {body}");

    // The window passes (RowCol's clock, not the wall's).
    app.new_session();
    app.state
        .app
        .clock
        .advance(chrono::Duration::seconds(wait + 1));
    let (status, _, body) = login_from(&app, ADVISOR, PASSWORD, Some("198.51.100.200")).await;
    assert!(status == 200 || status == 302, "{status} {body}");
}

async fn one_address_is_throttled_across_accounts_whatever_it_forwards(e: Engine) {
    let app = TestApp::spawn(e).await;
    for i in 0..10 {
        // A forged forwarded header from an untrusted peer changes nothing.
        let (status, _, body) = login_from(
            &app,
            &format!("nobody{i}@elsewhere.test"),
            "guess",
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, headers, body) = login_from(&app, ADVISOR, PASSWORD, Some("203.0.113.77")).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after(&headers) > 0);
    assert!(body.to_string().contains("Throttled"), "{body}");
}

async fn a_trusted_proxys_forwarded_address_is_the_client(e: Engine) {
    let app = TestApp::spawn_with(e, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for i in 0..10 {
        // What the client put in the header comes first; the address our
        // proxy saw is the last entry, and that is the one believed.
        let chain = format!("192.0.2.{i}, 10.9.8.7");
        let (status, _, body) = login_from(
            &app,
            &format!("nobody{i}@elsewhere.test"),
            "guess",
            Some(&chain),
        )
        .await;
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, _, body) = login_from(&app, ADVISOR, PASSWORD, Some("10.9.8.7")).await;
    assert_eq!(status, 429, "{body}");
    let (status, _, body) = login_from(&app, ADVISOR, PASSWORD, Some("10.9.8.6")).await;
    assert!(
        status == 200 || status == 302,
        "another client: {status} {body}"
    );
}

async fn password_hashing_has_a_concurrency_bound(e: Engine) {
    let app = TestApp::spawn(e).await;
    let gate = app.state.app.sign_in.clone();
    assert!(gate.hashing_limit >= 1);
    // Every hashing slot is taken: a sign-in waits rather than adding
    // another 19 MiB argon2 run.
    let held = gate
        .hashing
        .clone()
        .acquire_many_owned(gate.hashing_limit as u32)
        .await
        .unwrap();
    let http = app.http.clone();
    let url = format!("{}/api/login", app.base);
    let attempt = tokio::spawn(async move {
        http.post(url)
            .form(&[("email", ADVISOR), ("password", PASSWORD)])
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(700), async {
        while !attempt.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        waited.is_err(),
        "the sign-in did not wait for a hashing slot"
    );
    drop(held);
    let status = attempt.await.unwrap().unwrap();
    assert!(status == 200 || status == 302, "{status}");
}

/// Issue #18 §3, reproduced: the throttle was checked before hashing and
/// the failure recorded after it, so wrong passwords sent together all
/// passed the check (one account at 9 failures of 10 took 6 more at once:
/// 15). Each attempt now takes its place in the count before it hashes.
/// And a success leaves the failures before it on record.
async fn concurrent_wrong_passwords_cannot_pass_the_limit(e: Engine) {
    use app::ssr::sign_in::MAX_FAILURES;
    let app = TestApp::spawn(e).await;
    let wrong = |email: &'static str| {
        let http = app.http.clone();
        let url = format!("{}/api/login", app.base);
        async move {
            http.post(url)
                .form(&[("email", email), ("password", "not-the-password")])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    // Failures before a success stay on record, in the count and the log.
    let viewer = "viewer@northwind.test";
    for _ in 0..3 {
        assert_eq!(wrong(viewer).await, 401);
    }
    app.login(viewer).await;
    assert_eq!(
        app.count(&format!(
            "select count(*) from login_failure where account = '{viewer}'"
        ))
        .await,
        3
    );
    assert_eq!(
        app.count(&format!(
            "select count(*) from audit_entry where action = 'auth.sign_in_failed' and subject = '{viewer}'"
        ))
        .await,
        3
    );

    // This address is one failure short of its limit ...
    for _ in 0..MAX_FAILURES - 1 - 3 {
        assert_eq!(wrong(ADVISOR).await, 401);
    }
    // ... and every hashing slot is taken: the attempts queue after the
    // throttle's check.
    let gate = app.state.app.sign_in.clone();
    let held = gate
        .hashing
        .clone()
        .acquire_many_owned(gate.hashing_limit as u32)
        .await
        .unwrap();
    let attempts: Vec<_> = (0..6).map(|_| tokio::spawn(wrong(ADVISOR))).collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(held);
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }
    assert_eq!(
        app.count("select count(*) from login_failure").await,
        MAX_FAILURES,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
}

/// Issue #19 §0: checking a Ramp delivery's signature costs no database
/// round trip (the subscriptions' secrets are held in memory), so a
/// refused request never makes the database work, and SQLite's one writer
/// never queues the check. Shown with the database gone: a delivery signed
/// with a subscription's own secret is still verified (and then cannot be
/// stored: 503, Ramp retries), a badly signed or unsigned one refused (401).
async fn a_webhooks_signature_is_checked_without_the_database(e: Engine) {
    let app = TestApp::spawn(e).await;
    let svc = &app.state.services;
    let (connection_id, business): (String, String) = sqlx::query_as(
        "select connection_id, external_id from rail_connection
         where rail = 'ramp' and status = 'active' order by connection_id limit 1",
    )
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("a Ramp connection");
    // Its own subscription, as connecting Ramp makes one.
    let secret = "whsec_a_subscription_of_its_own";
    {
        let mut conn = svc.db.acquire().await.expect("connection");
        let stored = app::ssr::store::connections::set_webhook_subscription(
            &mut conn,
            &connection_id,
            "sub_of_its_own",
            &svc.sealer.seal(secret, &connection_id),
            "active",
        )
        .await
        .expect("store the subscription");
        assert!(stored);
    }
    svc.ramp_secrets
        .reload(&svc.db, &svc.sealer)
        .await
        .expect("reload");
    let event = |id: &str| {
        json!({"id": id, "type": "bills.paid", "business_id": business,
               "object": {"id": "bill-of-its-own"}})
        .to_string()
    };
    let body = event("evt-own-secret");
    let (status, text) = app.post_webhook(&body, Some(&sign(secret, &body))).await;
    assert_eq!(status, 200, "{text}");

    app.state.app.db.pool.close().await;
    let body = event("evt-database-gone");
    let (status, _) = app
        .post_webhook(&body, Some(&sign("not-the-secret", &body)))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app.post_webhook(&body, None).await;
    assert_eq!(status, 401);
    let (status, text) = app.post_webhook(&body, Some(&sign(secret, &body))).await;
    assert_eq!(status, 503, "verified from memory, then not stored: {text}");
}

/// Issue #19 §0: on SQLite, pages read through connections of their own
/// (WAL) instead of queueing behind the one writer; those connections
/// cannot write.
async fn pages_read_while_a_write_holds_the_database(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADVISOR).await;
    let db = &app.state.app.db;
    // A write under way: on SQLite it holds the only writing connection.
    let mut tx = db.begin().await.expect("begin");
    sqlx::query("update firm set name = name")
        .execute(&mut *tx)
        .await
        .expect("write");
    // A guard against hanging, not a speed check: queued behind the write
    // the pages would never answer while it is open.
    let guard = std::time::Duration::from_secs(60);
    for endpoint in ["portfolio", "approvals", "approvals/waiting"] {
        let (status, body) = tokio::time::timeout(guard, app.call(endpoint, &[]))
            .await
            .unwrap_or_else(|_| panic!("{endpoint} waited for the writer"));
        assert_eq!(status, 200, "{endpoint}: {body}");
    }
    tx.rollback().await.expect("rollback");
    let mut conn = db.read().await.expect("a read connection");
    let write = sqlx::query("update firm set name = 'changed through a read connection'")
        .execute(&mut *conn)
        .await;
    if matches!(e, Engine::Sqlite) {
        assert!(write.is_err(), "a read connection wrote");
    }
}

async fn unsigned_webhooks_are_summarised_once_per_minute(e: Engine) {
    let app = TestApp::spawn(e).await;
    let body = json!({"id": "evt-x", "type": "bills.paid", "object": {"id": "b"}}).to_string();
    for _ in 0..30 {
        let (status, _) = app.post_webhook(&body, None).await;
        assert_eq!(status, 401);
    }
    for _ in 0..5 {
        let (status, _) = app
            .post_webhook(&body, Some(&sign("not-the-secret", &body)))
            .await;
        assert_eq!(status, 401);
    }
    // Not a row per request.
    assert!(app.count("select count(*) from security_event").await <= 2);
    // A later minute: the next refusal writes the finished minutes' summaries.
    app.state.app.clock.advance(chrono::Duration::minutes(2));
    let (status, _) = app.post_webhook(&body, None).await;
    assert_eq!(status, 401);

    for (kind, expected) in [("webhook.unsigned", 30), ("webhook.bad_signature", 5)] {
        let rows: Vec<(String, String)> =
            sqlx::query_as("select source, detail from security_event where kind = $1 order by at")
                .bind(kind)
                .fetch_all(&app.state.app.db.pool)
                .await
                .unwrap();
        // The requests may straddle a minute boundary: two summaries at most.
        assert!((1..=2).contains(&rows.len()), "{kind}: {rows:?}");
        let total: i64 = rows
            .iter()
            .map(|(source, detail)| {
                assert_eq!(source, "ramp");
                assert!(detail.contains("refused in minute"), "{detail}");
                detail
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or_else(|| panic!("count in {detail}"))
            })
            .sum();
        assert_eq!(total, expected, "{kind}: {rows:?}");
    }
}

fn csp_nonce(csp: &str) -> Option<String> {
    csp.split(['\'', ' ', ';'])
        .find_map(|t| t.strip_prefix("nonce-"))
        .map(str::to_owned)
}

fn assert_security_headers(what: &str, h: &HeaderMap) {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_owned()
    };
    let csp = get("content-security-policy");
    for part in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(csp.contains(part), "{what}: {part} missing in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("'unsafe-eval'"), "{what}: {csp}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(
        get("referrer-policy"),
        "strict-origin-when-cross-origin",
        "{what}"
    );
}

async fn every_response_carries_the_security_headers(e: Engine) {
    let app = TestApp::spawn(e).await;
    for (method, path) in [
        (Method::GET, "/login"),
        (Method::GET, "/"),
        (Method::GET, "/no/such/page"),
        (Method::GET, "/healthz"),
        (Method::GET, "/favicon.svg"),
        (Method::POST, "/api/me"),
        (Method::POST, "/api/portfolio"),
        (Method::GET, "/sandbox/control/state"),
        (Method::POST, "/webhooks/ramp"),
    ] {
        let (_, headers, _) = app.send(method.clone(), path, &[], None).await;
        assert_security_headers(&format!("{method} {path}"), &headers);
        // Issue #18 §4: nothing but the static files may be cached.
        let cache = headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if path == "/favicon.svg" {
            assert!(!cache.contains("no-store"), "{path}: {cache}");
        } else {
            assert_eq!(cache, "no-store", "{method} {path}");
        }
    }
    // Signed in: the pages and the answers that carry a client's figures.
    app.login(ADVISOR).await;
    for (method, path) in [(Method::GET, "/"), (Method::GET, "/approvals")] {
        let (status, headers, _) = app.send(method.clone(), path, &[], None).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{method} {path}");
    }
    let (status, headers, _) = app.call_with("portfolio", &[], &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
}

async fn page_scripts_run_only_under_this_responses_nonce(e: Engine) {
    let app = TestApp::spawn(e).await;
    let mut nonces = Vec::new();
    for path in ["/login", "/login", "/no/such/page"] {
        let (_, headers, html) = app.send(Method::GET, path, &[], None).await;
        let csp = headers["content-security-policy"].to_str().unwrap();
        let nonce = csp_nonce(csp).unwrap_or_else(|| panic!("no nonce in {csp}"));
        assert!(nonce.len() >= 16, "{nonce}");
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "{path}: the hydration script");
        for s in scripts {
            let tag = &s[..s.find('>').unwrap_or(s.len())];
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: a script without this response's nonce: <script{tag}>"
            );
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per response");
}

async fn cross_origin_state_changes_are_refused(e: Engine) {
    let app = TestApp::spawn(e).await;
    let evil = "https://evil.example";
    // Signing in is a state change too (login CSRF).
    let (status, _, body) = app
        .call_with(
            "login",
            &[("email", ADVISOR), ("password", PASSWORD)],
            &[("origin", evil)],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    app.login(ADVISOR).await; // no Origin: a script, not a browser
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let form = [("client_id", cid.as_str()), ("bill_ids[]", bill.as_str())];
    for headers in [
        vec![("origin", evil)],
        vec![("origin", "null")],
        vec![("referer", "https://evil.example/pay")],
        // Same host, other scheme or port: another origin.
        vec![("origin", &*app.base.replace("http://", "https://"))],
        vec![("origin", "http://127.0.0.1:1")],
    ] {
        let (status, _, body) = app.call_with("approve_bills", &form, &headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
    }
    assert_eq!(app.count("select count(*) from payment").await, 0);

    let before = sandbox_today(&app).await;
    let (status, _, _) = app
        .send(
            Method::POST,
            "/sandbox/control/advance",
            &[("content-type", "application/json"), ("origin", evil)],
            Some(r#"{"days": 2}"#.into()),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(sandbox_today(&app).await, before);

    // Webhooks are signed, not same-origin: the Origin header is irrelevant.
    let event = json!({"id": "evt-origin", "type": "bills.paid",
                       "business_id": "unknown-business", "object": {"id": "bill-x"}})
    .to_string();
    let (status, _, body) = app
        .send(
            Method::POST,
            "/webhooks/ramp",
            &[
                ("content-type", "application/json"),
                ("origin", evil),
                (
                    "x-ramp-webhook-signature",
                    &sign(&app.webhook_secret(), &event),
                ),
            ],
            Some(event.clone().into()),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The console's own pages (Origin, or Referer alone) are fine.
    let own_page = format!("{}/clients/{cid}", app.base);
    let (status, _, body) = app
        .call_with("client", &[("client_id", &cid)], &[("referer", &own_page)])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = app
        .call_with("approve_bills", &form, &[("origin", &app.base)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 1);
}

/// DNS rebinding (issue #18 §4): a page on a domain that re-points itself at
/// 127.0.0.1 reaches RowCol with its own name in `Host` and, from that page,
/// a matching `Origin`. Only loopback names (and `ROWCOL_PUBLIC_URL`'s host)
/// are served; anything else is answered 421 before any handler runs.
async fn a_request_for_another_host_is_misdirected(e: Engine) {
    let app = TestApp::spawn(e).await;
    let port = app.base.rsplit(':').next().expect("port").to_owned();
    let evil = format!("rebind.evil.test:{port}");
    let origin = format!("http://{evil}");
    let (status, _, body) = app
        .send(
            Method::GET,
            "/sandbox/control/credentials",
            &[("host", &evil)],
            None,
        )
        .await;
    assert_eq!(
        status,
        421,
        "the credentials answered ({} bytes)",
        body.len()
    );
    assert!(!body.contains("token"));
    let before = sandbox_today(&app).await;
    let (status, _, body) = app
        .send(
            Method::POST,
            "/sandbox/control/advance",
            &[
                ("host", &evil),
                ("origin", &origin),
                ("content-type", "application/json"),
            ],
            Some(r#"{"days": 2}"#.into()),
        )
        .await;
    assert_eq!(status, 421, "{body}");
    assert_eq!(sandbox_today(&app).await, before);
    let (status, _, body) = app
        .call_with(
            "login",
            &[("email", ADVISOR), ("password", PASSWORD)],
            &[("host", &evil), ("origin", &origin)],
        )
        .await;
    assert_eq!(status, 421, "{body}");
    // A name that merely starts like a loopback one is not one.
    let (status, _, _) = app
        .send(
            Method::GET,
            "/login",
            &[("host", &format!("127.0.0.1.evil.test:{port}"))],
            None,
        )
        .await;
    assert_eq!(status, 421);
    // Loopback names are served, and health checks answer any name (an
    // orchestrator probes the instance by its address).
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, _, body) = app
            .send(
                Method::GET,
                "/sandbox/control/credentials",
                &[("host", &host)],
                None,
            )
            .await;
        assert_eq!(status, 200, "{host}: {} bytes", body.len());
    }
    let (status, _, _) = app
        .send(Method::GET, "/healthz", &[("host", "10.1.2.3:8080")], None)
        .await;
    assert_eq!(status, 200);
}

/// Issue #18 §4: server functions answered 500 (and logged an ERROR) to
/// malformed requests, signed in or not, echoing the deserializer's words.
/// Each gets a plain 4xx now, in the shape the browser's client decodes.
async fn malformed_server_function_calls_get_a_plain_4xx(e: Engine) {
    let app = TestApp::spawn(e).await;
    let post = |path: &'static str, content_type: Option<&'static str>, body: Vec<u8>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = content_type
                .map(|c| vec![("content-type", c)])
                .unwrap_or_default();
            app.send(Method::POST, path, &headers, Some(body.into()))
                .await
        }
    };
    let form = Some("application/x-www-form-urlencoded");
    let plain = |status: u16, body: &str, want: u16| {
        assert_eq!(status, want, "{body}");
        let v: Value = serde_json::from_str(body).expect("a JSON error");
        let message = v["Validation"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(!message.contains("deserializ"), "{body}");
        assert!(!body.contains("Transport"), "{body}");
    };
    // Not signed in: JSON, nothing at all, an empty form, bytes that are
    // not UTF-8, two megabytes.
    let (status, _, body) = post(
        "/api/login",
        Some("application/json"),
        br#"{"email": "a@b.test", "password": "x"}"#.to_vec(),
    )
    .await;
    plain(status, &body, 415);
    let (status, _, body) = post("/api/login", None, b"email=a%40b.test".to_vec()).await;
    plain(status, &body, 415);
    let (status, _, body) = post("/api/login", form, Vec::new()).await;
    plain(status, &body, 400);
    assert!(body.contains("email"), "names the missing field: {body}");
    let (status, _, body) =
        post("/api/login", form, b"email=\xff\xfe&password=\xff".to_vec()).await;
    plain(status, &body, 400);
    // Two megabytes announced: refused on the headers, before the body is
    // read (a raw connection, so the refusal is seen even though the body
    // is never sent).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = app.base.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /api/login HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            2 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.expect("headers");
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.expect("answer");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        plain(413, body, 413);
    }
    // Signed in: bill_ids as a string rather than a list.
    app.login(ADVISOR).await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let (status, _, body) = app
        .call_with(
            "approve_bills",
            &[("client_id", cid.as_str()), ("bill_ids", bill.as_str())],
            &[],
        )
        .await;
    assert!(
        (400..500).contains(&status),
        "bill_ids as a string: {status} {body}"
    );
    assert!(!body.to_string().contains("Transport"), "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
    // What is well formed still works.
    let (status, _, body) = app
        .call_with(
            "approve_bills",
            &[("client_id", cid.as_str()), ("bill_ids[]", bill.as_str())],
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A function without fields called with an empty POST and no content
    // type (as curl or a script sends it) has nothing to refuse.
    let (status, _, body) = post("/api/portfolio", None, Vec::new()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Alder Creek Dental"), "{body}");
}
