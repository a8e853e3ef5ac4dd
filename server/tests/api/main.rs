//! Integration suite: the real router and jobs against a real database. Every
//! test runs twice, on SQLite and on PostgreSQL.

mod support;

use serde_json::json;
use support::{sign, Engine, TestApp};

macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::support::watchdog(
                    stringify!($name),
                    crate::support::Engine::Sqlite,
                    super::$name(super::Engine::Sqlite),
                )
                .await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::support::watchdog(
                    stringify!($name),
                    crate::support::Engine::Postgres,
                    super::$name(super::Engine::Postgres),
                )
                .await
            })*
        }
    };
}

// Each capability's tests live in their own file, each with its own
// `both_engines!` list.
mod abuse;
mod ach;
mod connect;
mod decide;
mod faults;
mod freshness;
mod integrity;
mod living;
mod metrics;
mod multi;
mod notify;
mod paid_twice;
mod pair;
mod process;
mod qbo_webhooks;
mod ramp_exactly_once;
mod stop;
mod tray;
mod users;
mod vendor_bank;
mod webhooks;

both_engines!(
    wrong_password_is_refused_and_gives_no_session,
    portfolio_shows_every_demo_client_with_cash_and_status,
    approved_bill_is_released_paid_recorded_and_verified,
    guardrail_breach_refuses_the_approval_and_writes_nothing,
    viewer_cannot_approve,
    another_firms_client_is_not_found,
    webhook_with_bad_signature_is_refused_and_stored_nowhere,
    malformed_webhook_json_is_refused,
    same_webhook_twice_is_processed_once,
    rail_errors_are_retried_and_never_create_a_second_bill,
    release_job_survives_a_crash_between_approval_and_release,
    audit_log_refuses_edits,
    ledger_amount_mismatch_is_flagged_in_the_hygiene_tray,
    a_dropped_webhook_is_caught_by_polling_ramp,
    approval_is_blocked_when_the_bank_cannot_be_read,
    a_release_delayed_past_its_arrival_date_moves_the_date_forward,
    health_readiness_and_unknown_pages,
    live_mode_has_no_sandbox_and_starts_from_a_cli_created_firm,
    custody_steps_move_forward_only_through_the_store,
);

/// The two migration sets must define the same tables and columns: the
/// same queries run on both engines. Compared on databases migrated for
/// real, not on the SQL text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_define_the_same_schema() {
    use std::collections::BTreeMap;
    let tmp = tempfile::tempdir().unwrap();
    let mut schemas = Vec::new();
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let url = support::database_url(engine, tmp.path()).await;
        let db = rowcol::startup::open_database(&url).await.unwrap();
        let sql = match engine {
            Engine::Sqlite => {
                "select m.name as t, p.name as c from sqlite_master m, pragma_table_info(m.name) p
                 where m.type = 'table' and m.name not like 'sqlite_%' and m.name <> '_sqlx_migrations'"
            }
            Engine::Postgres => {
                "select table_name::text as t, column_name::text as c from information_schema.columns
                 where table_schema = 'public' and table_name <> '_sqlx_migrations'"
            }
        };
        let rows: Vec<(String, String)> = sqlx::query_as(sql).fetch_all(&db.pool).await.unwrap();
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (t, c) in rows {
            tables.entry(t).or_default().push(c);
        }
        for cols in tables.values_mut() {
            cols.sort();
        }
        schemas.push(tables);
    }
    assert!(schemas[0].len() >= 15, "tables: {:?}", schemas[0].keys());
    assert_eq!(schemas[0], schemas[1]);
}

async fn wrong_password_is_refused_and_gives_no_session(e: Engine) {
    let app = TestApp::spawn(e).await;
    let (status, body) = app
        .call(
            "login",
            &[("email", "advisor@northwind.test"), ("password", "nope")],
        )
        .await;
    assert_eq!(status, 401);
    assert!(body.to_string().contains("BadCredentials"), "{body}");
    let (status, me) = app.call("me", &[]).await;
    assert_eq!(status, 200);
    assert!(me.is_null(), "no session expected, got {me}");
    let (status, _) = app.call("portfolio", &[]).await;
    assert_eq!(status, 401);
}

async fn portfolio_shows_every_demo_client_with_cash_and_status(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let (status, body) = app.call("portfolio", &[]).await;
    assert_eq!(status, 200);
    let rows = body.as_array().expect("rows");
    assert!(rows.len() >= 20, "only {} clients", rows.len());
    for r in rows {
        assert!(
            r["cash"]["available"]["minor"].as_i64().is_some(),
            "no cash for {}",
            r["name"]
        );
        assert!(r["cash"]["as_of"].is_string());
        assert!(
            r["cash"]["daily_burn"]["minor"].as_i64().unwrap_or(0) > 0,
            "no burn for {}",
            r["name"]
        );
        assert_ne!(r["status"], "no_data");
    }
    assert_eq!(rows[0]["name"], "Alder Creek Dental");
}

async fn approved_bill_is_released_paid_recorded_and_verified(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let pid: String = sqlx::query_scalar("select payment_id from payment where bill_id = $1")
        .bind(&bill)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.payment_state(&pid).await, "approved");
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    // A second approval of the same bill is refused.
    let (status, _) = app.approve(&cid, &[&bill]).await;
    assert!(status == 404 || status == 409, "{status}");

    let (status, body) = app.call("sandbox/advance", &[("days", "40")]).await;
    assert_eq!(status, 200, "{body}");
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");

    let (status, p) = app.call("payment", &[("payment_id", &pid)]).await;
    assert_eq!(status, 200);
    let states: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["approved", "released", "paid", "recorded", "verified"]
    );
    let owners: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["RowCol", "Ramp", "Ramp", "QBO", "Plaid"]);
    assert!(p["qbo_bill_payment_id"].is_string() && p["plaid_txn_id"].is_string());

    let (status, audit) = app.call("audit", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(audit["chain"]["ok"], true, "{}", audit["chain"]);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "payment.approved",
        "payment.released",
        "payment.paid",
        "payment.recorded",
        "payment.verified",
    ] {
        assert!(actions.contains(&a), "missing {a} in {actions:?}");
    }
    assert_eq!(
        app.count("select count(*) from hygiene_item where status = 'open'")
            .await,
        0
    );

    // Record: the QBO BillPayment now carries RowCol's audit note.
    assert!(actions.contains(&"ledger.annotated"), "{actions:?}");
    let sim = app.saved_world("RowCol payment").await;
    assert!(
        sim.contains(&format!(
            "RowCol payment {pid}: approved by advisor@northwind.test"
        )),
        "no audit note in QBO"
    );
}

async fn guardrail_breach_refuses_the_approval_and_writes_nothing(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let cid = app.client_id("Birch Lane Bakery").await;
    let detail = app.client(&cid).await;
    let bills: Vec<String> = detail["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bill_id"].as_str().unwrap().to_owned())
        .collect();
    let refs: Vec<&str> = bills.iter().map(String::as_str).collect();
    let (status, body) = app.approve(&cid, &refs).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("below the required buffer"),
        "{body}"
    );
    assert_eq!(app.count("select count(*) from payment").await, 0);
    assert_eq!(
        app.count("select count(*) from job where kind = 'release_payment'")
            .await,
        0
    );
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'approval.blocked'")
            .await,
        1
    );
}

async fn viewer_cannot_approve(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("viewer@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
}

async fn another_firms_client_is_not_found(e: Engine) {
    let app = TestApp::spawn(e).await;
    // A second firm with its own advisor.
    let pool = &app.state.app.db.pool;
    let hash = app::ssr::crypto::hash_password(support::PASSWORD).unwrap();
    sqlx::query(
        "insert into firm (firm_id, name, created_at) values ('firm_other', 'Other LLP', 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("insert into app_user (user_id, firm_id, email, name, role, password_hash, created_at) values ('usr_other', 'firm_other', 'advisor@other.test', 'O', 'advisor', $1, 0)")
        .bind(hash).execute(pool).await.unwrap();
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;

    let mut other = app;
    other.new_session();
    other.login("advisor@other.test").await;
    let (status, rows) = other.call("portfolio", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(rows.as_array().unwrap().len(), 0);
    let (status, _) = other.call("client", &[("client_id", &cid)]).await;
    assert_eq!(status, 404);
    let (status, _) = other.approve(&cid, &[&bill]).await;
    assert_eq!(status, 404);
    assert_eq!(other.count("select count(*) from payment").await, 0);
}

fn paid_event(id: &str) -> String {
    json!({"id": id, "type": "bills.paid", "created_at": "2026-11-27T12:00:00Z",
           "business_id": "unknown-business", "object": {"id": "bill-x"}})
    .to_string()
}

async fn webhook_with_bad_signature_is_refused_and_stored_nowhere(e: Engine) {
    let app = TestApp::spawn(e).await;
    let body = paid_event("evt-bad");
    let (status, _) = app
        .post_webhook(&body, Some(&sign("wrong-secret", &body)))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app.post_webhook(&body, None).await;
    assert_eq!(status, 401);
    assert_eq!(app.count("select count(*) from webhook_inbox").await, 0);
    assert_eq!(
        app.count("select count(*) from job where kind = 'process_webhook'")
            .await,
        0
    );
    // Counted, not written per request: one summary per minute
    // (abuse.rs, unsigned_webhooks_are_summarised_once_per_minute).
    assert_eq!(app.count("select count(*) from security_event").await, 0);
}

async fn malformed_webhook_json_is_refused(e: Engine) {
    let app = TestApp::spawn(e).await;
    let body = "{not json";
    let (status, _) = app
        .post_webhook(body, Some(&sign(&app.webhook_secret(), body)))
        .await;
    assert_eq!(status, 400);
    let body = json!({"type": "bills.paid"}).to_string();
    let (status, _) = app
        .post_webhook(&body, Some(&sign(&app.webhook_secret(), &body)))
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.count("select count(*) from webhook_inbox").await, 0);
}

async fn same_webhook_twice_is_processed_once(e: Engine) {
    let app = TestApp::spawn(e).await;
    let body = paid_event("evt-dup-1");
    let sig = sign(&app.webhook_secret(), &body);
    let (s1, b1) = app.post_webhook(&body, Some(&sig)).await;
    let (s2, b2) = app.post_webhook(&body, Some(&sig)).await;
    assert_eq!((s1, s2), (200, 200));
    assert!(
        b1.contains("received") && b2.contains("duplicate"),
        "{b1} {b2}"
    );
    assert_eq!(app.count("select count(*) from webhook_inbox").await, 1);
    assert_eq!(
        app.count("select count(*) from job where kind = 'process_webhook'")
            .await,
        1
    );
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from webhook_inbox where status = 'processed'")
            .await,
        1
    );
}

async fn rail_errors_are_retried_and_never_create_a_second_bill(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.inject(|f| {
        f.ramp_create_fail_next = vec![503, 429];
        f.ramp_create_lose_response_next = 1;
    })
    .await;
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let pid: String = sqlx::query_scalar("select payment_id from payment")
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    for _ in 0..6 {
        app.drain().await;
        // Move RowCol's clock past the next retry delay (not the sandbox's
        // payment dates: an hour is enough for the first retries).
        app.state.app.clock.advance(chrono::Duration::minutes(15));
    }
    assert_eq!(app.payment_state(&pid).await, "released");
    let attempts = app.count("select count(*) from job_attempt a join job j on j.job_id = a.job_id where j.kind = 'release_payment'").await;
    assert_eq!(attempts, 4, "503, 429, lost response, then success");
    // Exactly one Ramp bill carries this payment as remote_id.
    let state = app.saved_world("remote_id").await;
    let n = state.matches(&format!("\"remote_id\":\"{pid}\"")).count();
    assert_eq!(n, 1, "Ramp must hold exactly one bill for the payment");
}

async fn release_job_survives_a_crash_between_approval_and_release(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    app.approve_small_bill("Alder Creek Dental").await;
    // "Crash" before the worker ran: restart on the same database.
    let app = app.restart().await; // restart drains the queue
    let state: String = sqlx::query_scalar("select state from payment")
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert_eq!(state, "released");
    assert_eq!(
        app.count("select count(*) from job where kind = 'release_payment' and state = 'done'")
            .await,
        1
    );
}

async fn audit_log_refuses_edits(e: Engine) {
    let app = TestApp::spawn(e).await;
    let pool = &app.state.app.db.pool;
    assert!(app.count("select count(*) from audit_entry").await > 0);
    assert!(sqlx::query("update audit_entry set actor = 'mallory'")
        .execute(pool)
        .await
        .is_err());
    assert!(sqlx::query("delete from audit_entry")
        .execute(pool)
        .await
        .is_err());
    let firm: String = sqlx::query_scalar("select firm_id from firm")
        .fetch_one(pool)
        .await
        .unwrap();
    let status =
        app::ssr::store::audit::verify_chain(pool, &app::model::FirmId::parse(&firm).unwrap())
            .await
            .unwrap();
    assert!(status.ok);
}

async fn ledger_amount_mismatch_is_flagged_in_the_hygiene_tray(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.inject(|f| {
        f.qbo_amount_mismatch_next = 1;
    })
    .await;
    app.login("advisor@northwind.test").await;
    app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (status, _) = app.call("sandbox/advance", &[("days", "40")]).await;
    assert_eq!(status, 200);
    app.drain().await;
    let (flag, state): (Option<String>, String) =
        sqlx::query_as("select flag_reason, state from payment")
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(flag.as_deref(), Some("amount_mismatch"));
    assert_eq!(
        state, "paid",
        "a mismatched ledger entry is not evidence of recording"
    );
    let (status, tray) = app.call("hygiene", &[]).await;
    assert_eq!(status, 200);
    let items = tray["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{tray}");
    assert_eq!(items[0]["reason_code"], "amount_mismatch");
    assert_eq!(items[0]["severity"], "critical");
}

async fn a_dropped_webhook_is_caught_by_polling_ramp(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.inject(|f| {
        f.webhook_drop_next = 1;
    })
    .await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (status, _) = app.call("sandbox/advance", &[("days", "40")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.count("select count(*) from webhook_inbox where rail = 'ramp'")
            .await,
        0,
        "the webhook was dropped"
    );
    assert_eq!(app.payment_state(&pid).await, "verified");
    let actor: String = sqlx::query_scalar(
        "select actor from custody_event where payment_id = $1 and state = 'paid'",
    )
    .bind(&pid)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert_eq!(actor, "rowcol:reconciler");
}

async fn approval_is_blocked_when_the_bank_cannot_be_read(e: Engine) {
    let app = TestApp::spawn(e).await;
    let sandbox = app.state.services.sandbox.clone().unwrap();
    let world = sandbox.world().await;
    let item = world
        .clients
        .iter()
        .find(|c| c.name == "Alder Creek Dental")
        .unwrap()
        .plaid_item_id
        .clone();
    let mut faults = sandbox.faults().await;
    faults.plaid_login_required = vec![item];
    sandbox.set_faults(faults).await;
    // The balance read at start-up is now older than the 15-minute policy.
    app.state.app.clock.advance(chrono::Duration::hours(1));
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("re-authorised"), "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
    assert_eq!(
        app.count("select count(*) from hygiene_item where reason_code = 'rail_reauth_needed' and status = 'open'").await,
        1
    );
}

async fn a_release_delayed_past_its_arrival_date_moves_the_date_forward(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    app.approve_small_bill("Alder Creek Dental").await;
    // The queue stalls for 40 days (the clock moves, the job has not run).
    app.state.app.clock.advance(chrono::Duration::days(40));
    app.drain().await;
    let (state, arrival): (String, String) =
        sqlx::query_as("select state, payment_arrival_date from payment")
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    assert_eq!(state, "released");
    let arrival: chrono::NaiveDate = arrival.parse().unwrap();
    let earliest = app::domain::calendar::add_business_days(app.state.app.clock.today(), 2);
    assert!(arrival >= earliest, "{arrival} is before {earliest}");
    assert_eq!(
        app.count("select count(*) from job where state = 'dead'")
            .await,
        0
    );
}

async fn get_page(app: &TestApp, path: &str) -> (u16, String) {
    let res = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

async fn health_readiness_and_unknown_pages(e: Engine) {
    let app = TestApp::spawn(e).await;
    assert_eq!(get_page(&app, "/healthz").await.0, 200);
    assert_eq!(get_page(&app, "/readyz").await, (200, "ready".into()));
    let (status, body) = get_page(&app, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(body.contains("Page not found."), "{body}");
    // A page needing a session says so, with 401, rather than failing.
    let (status, body) = get_page(&app, "/audit").await;
    assert_eq!(status, 401);
    assert!(body.contains("sign in"), "{body}");
}

async fn live_mode_has_no_sandbox_and_starts_from_a_cli_created_firm(e: Engine) {
    let app = TestApp::spawn_live(e, "owner@live.test").await;
    assert!(app.state.services.sandbox.is_none());
    assert_eq!(get_page(&app, "/sandbox/control/state").await.0, 404);
    assert_eq!(
        app.count("select count(*) from client").await,
        0,
        "no demo data live"
    );
    assert_eq!(app.count("select count(*) from app_user").await, 1);
    let (status, _) = app
        .call(
            "login",
            &[
                ("email", "advisor@northwind.test"),
                ("password", support::PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 401, "no demo users live");
    app.login("owner@live.test").await;
    let (status, me) = app.call("me", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["sandbox"], false);
    // Live mode: an admin turns on two-step sign-in before anything else.
    let (status, _) = app.call("audit", &[]).await;
    assert_eq!(status, 403, "not before the second factor");
    let (status, started) = app.call("totp/start", &[]).await;
    assert_eq!(status, 200, "{started}");
    let key = started["secret_base32"].as_str().expect("a key").to_owned();
    let code = app::ssr::totp::code_for(&key, "owner@live.test", app::ssr::totp::now_secs())
        .expect("a code");
    let (status, body) = app.call("totp/confirm", &[("code", &code)]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.call("sandbox/advance", &[("days", "1")]).await;
    assert_eq!(status, 404, "no clock control live");
    let (status, audit) = app.call("audit", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(audit["chain"]["ok"], true);
    // Newest first: the second factor, the owner's sign-in, the firm's
    // creation.
    assert_eq!(audit["entries"][0]["action"], "user.totp_enabled");
    assert_eq!(audit["entries"][1]["action"], "auth.signed_in");
    assert_eq!(audit["entries"][2]["action"], "firm.created");
}

/// The one function that changes a payment's state: a replay is a no-op, a
/// step may skip ahead, late evidence for an earlier step is recorded
/// without moving the state back, and every new step is audited.
async fn custody_steps_move_forward_only_through_the_store(e: Engine) {
    use app::domain::custody::PaymentState;
    use app::model::CustodyOwner;
    use app::ssr::store::payments::{record_step, Step, StepOutcome};
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    let at = app.state.app.clock.now();
    let step = |to| Step {
        to,
        owner: CustodyOwner::Ramp,
        actor: "test",
        evidence: format!("test evidence for {to:?}"),
        at,
        audit_detail: None,
    };
    let db = &app.state.app.db;
    let audited_before = app
        .count(&format!(
            "select count(*) from audit_entry where subject = '{pid}'"
        ))
        .await;
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        record_step(&mut tx, &pid, step(PaymentState::Approved))
            .await
            .unwrap(),
        StepOutcome::Duplicate
    );
    assert_eq!(
        record_step(&mut tx, &pid, step(PaymentState::Paid))
            .await
            .unwrap(),
        StepOutcome::Advanced
    );
    assert_eq!(
        record_step(&mut tx, &pid, step(PaymentState::Released))
            .await
            .unwrap(),
        StepOutcome::Recorded
    );
    app::ssr::store::commit(tx).await.unwrap();
    assert_eq!(app.payment_state(&pid).await, "paid");
    let audited = app
        .count(&format!(
            "select count(*) from audit_entry where subject = '{pid}'"
        ))
        .await;
    assert_eq!(audited - audited_before, 2, "one audit entry per new step");
    assert_eq!(
        app.count(&format!(
            "select count(*) from custody_event where payment_id = '{pid}'"
        ))
        .await,
        3
    );
}
