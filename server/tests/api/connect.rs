//! Issue #8: connecting rails through the providers' own flows (the
//! simulated consent pages), every refusal, token refresh and rotation,
//! disconnect, and key rotation. Each test runs on SQLite and PostgreSQL.

use super::support::{Engine, TestApp, PASSWORD};
use app::model::Rail;
use serde_json::Value;

both_engines!(
    an_admin_adds_a_client_from_qbo_and_connects_ramp_and_stripe,
    connect_refusals_store_nothing_and_are_audited,
    a_refresh_answered_invalid_grant_needs_reconnect_and_blocks_approval,
    two_concurrent_refreshes_rotate_once_and_lose_no_token,
    disconnect_revokes_at_the_provider_and_forgets_the_tokens,
    advisors_see_connections_but_cannot_change_them,
    a_sealed_token_copied_to_another_connection_does_not_open,
    a_token_dead_before_its_expiry_is_refreshed_and_the_sync_goes_on,
    the_bank_is_linked_through_plaid_link_and_repaired_in_update_mode,
    rotate_key_reseals_every_secret_under_the_new_key,
    plaid_webhooks_are_verified_and_the_item_is_read_again,
);

const ADMIN: &str = "admin@northwind.test";
const SECOND_ADMIN: &str = "admin@second.test";

/// A second firm (its own admin) on the same RowCol.
async fn second_firm(app: &TestApp) {
    rowcol::cli::run(rowcol::config::Cli {
        command: Some(rowcol::config::Command::CreateFirm {
            name: "Second Firm LLP".into(),
            admin_email: SECOND_ADMIN.into(),
            admin_password: PASSWORD.into(),
        }),
        config: app.config.clone(),
    })
    .await
    .expect("create-firm");
}

pub(super) fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn attr_after(html: &str, marker: &str) -> Option<String> {
    let at = html.find(marker)? + marker.len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// `(value, text)` of every `<option>` in the page.
pub(super) fn options(html: &str) -> Vec<(String, String)> {
    html.split("<option value=\"")
        .skip(1)
        .filter_map(|s| {
            let (v, rest) = s.split_once("\">")?;
            let (t, _) = rest.split_once("</option>")?;
            Some((v.replace("&amp;", "&"), t.replace("&amp;", "&")))
        })
        .collect()
}

fn sign_in_for(rail: Rail) -> (&'static str, &'static str) {
    match rail {
        Rail::Qbo => ("owner@clients.test", "intuit-sandbox"),
        Rail::Ramp => ("admin@clients.test", "ramp-sandbox"),
        _ => ("owner@clients.test", "stripe-sandbox"),
    }
}

/// Press a connect button: POST /connect/{rail}/start → the provider's URL.
async fn start(app: &TestApp, rail: Rail, client_id: &str) -> (u16, String) {
    let res = app
        .http
        .post(format!("{}/connect/{}/start", app.base, rail.as_str()))
        .form(&[("client_id", client_id)])
        .send()
        .await
        .expect("start");
    (res.status().as_u16(), location(&res))
}

/// Walk the simulated provider's pages as a person: sign in, pick the
/// account whose text contains `pick` (or the first), press `decision`.
/// Returns where the provider sends the browser back to.
async fn consent(
    _app: &TestApp,
    rail: Rail,
    authorize: &str,
    pick: Option<&str>,
    decision: &str,
) -> String {
    consent_pages(rail, authorize, pick, decision).await
}

/// The provider's pages alone (they need no RowCol session).
pub(super) async fn consent_pages(
    rail: Rail,
    authorize: &str,
    pick: Option<&str>,
    decision: &str,
) -> String {
    let provider = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = provider.get(authorize).send().await.expect("authorize");
    assert_eq!(page.status().as_u16(), 200, "authorize page");
    let html = page.text().await.expect("html");
    let request = attr_after(&html, "name=\"request\" value=\"").expect("request field");
    let (user, pass) = sign_in_for(rail);
    let wrong = provider
        .post(authorize)
        .form(&[
            ("request", request.as_str()),
            ("username", user),
            ("password", "wrong"),
        ])
        .send()
        .await
        .expect("sign in");
    assert!(wrong
        .text()
        .await
        .unwrap_or_default()
        .contains("Wrong username or password"));
    let html = provider
        .post(authorize)
        .form(&[
            ("request", request.as_str()),
            ("username", user),
            ("password", pass),
        ])
        .send()
        .await
        .expect("sign in")
        .text()
        .await
        .expect("consent html");
    let choices = options(&html);
    let account = match pick {
        Some(p) => choices
            .iter()
            .find(|(_, t)| t.contains(p))
            .unwrap_or_else(|| panic!("no account {p} in {choices:?}"))
            .0
            .clone(),
        None => choices.first().expect("an account").0.clone(),
    };
    let back = provider
        .post(authorize)
        .form(&[
            ("request", request.as_str()),
            ("account", account.as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .expect("decision");
    assert_eq!(back.status().as_u16(), 303, "decision redirects back");
    location(&back)
}

/// The browser lands back on RowCol: status, and the page or redirect.
async fn callback(app: &TestApp, url: &str) -> (u16, String, String) {
    let res = app.http.get(url).send().await.expect("callback");
    let status = res.status().as_u16();
    let loc = location(&res);
    (status, loc, res.text().await.unwrap_or_default())
}

/// Connect `rail` for `client_id` (empty: add a client from QBO) all the
/// way through; returns the final redirect.
async fn connect(app: &TestApp, rail: Rail, client_id: &str, pick: Option<&str>) -> String {
    let (status, authorize) = start(app, rail, client_id).await;
    assert_eq!(status, 303, "start redirects to the provider");
    let back = consent(app, rail, &authorize, pick, "allow").await;
    let (status, loc, body) = callback(app, &back).await;
    assert_eq!(status, 303, "callback stores and redirects: {body}");
    loc
}

async fn connections(app: &TestApp) -> Value {
    let (status, body) = app.call("connections", &[]).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn health(view: &Value, client: &str, rail: &str) -> String {
    view["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["name"] == client)
        .unwrap_or_else(|| panic!("no client {client} in {view}"))["rails"]
        .as_array()
        .expect("rails")
        .iter()
        .find(|r| r["rail"] == rail)
        .expect("rail")["health"]
        .as_str()
        .expect("health")
        .to_owned()
}

async fn scalar(app: &TestApp, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&app.state.app.db.pool)
        .await
        .expect(sql)
}

async fn text(app: &TestApp, sql: &str, bind: &str) -> String {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(&app.state.app.db.pool)
        .await
        .expect(sql)
}

async fn firm_of_user(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("select firm_id from app_user where email = $1")
        .bind(email)
        .fetch_one(&app.state.app.db.pool)
        .await
        .expect("firm")
}

async fn an_admin_adds_a_client_from_qbo_and_connects_ramp_and_stripe(e: Engine) {
    let app = TestApp::spawn(e).await;
    second_firm(&app).await;
    app.login(SECOND_ADMIN).await;
    let firm = firm_of_user(&app, SECOND_ADMIN).await;

    // QuickBooks first: the client is created from the company it names.
    // The realm is also the demo firm's Alder Creek Dental: another firm's
    // connection neither blocks this one nor is disclosed.
    let loc = connect(&app, Rail::Qbo, "", Some("Alder Creek Dental")).await;
    assert_eq!(loc, "/connections?connected=qbo");
    let view = connections(&app).await;
    let clients = view["clients"].as_array().expect("clients");
    assert_eq!(clients.len(), 1, "{view}");
    assert_eq!(clients[0]["name"], "Alder Creek Dental");
    assert_eq!(health(&view, "Alder Creek Dental", "qbo"), "connected");
    assert_eq!(health(&view, "Alder Creek Dental", "ramp"), "never");
    let client_id = clients[0]["client_id"].as_str().expect("id").to_owned();

    let loc = connect(&app, Rail::Ramp, &client_id, Some("Alder Creek Dental")).await;
    assert_eq!(loc, "/connections?connected=ramp");
    let loc = connect(&app, Rail::Stripe, &client_id, Some("Alder Creek Dental")).await;
    assert_eq!(loc, "/connections?connected=stripe");
    let view = connections(&app).await;
    for rail in ["qbo", "ramp", "stripe"] {
        assert_eq!(
            health(&view, "Alder Creek Dental", rail),
            "connected",
            "{rail}: {view}"
        );
    }
    let qbo = &view["clients"][0]["rails"][0];
    assert_eq!(qbo["account_name"], "Alder Creek Dental");
    assert_eq!(qbo["connected_by"], SECOND_ADMIN);
    assert!(qbo["access_expires_at"].is_string(), "{qbo}");
    assert!(
        !view.to_string().contains("token"),
        "no token reaches the browser: {view}"
    );

    assert_eq!(
        scalar(
            &app,
            "select count(*) from rail_connection where firm_id = $1 and status = 'active'",
            &firm
        )
        .await,
        3
    );
    assert_eq!(
        scalar(&app, "select count(*) from audit_entry where firm_id = $1 and action = 'connection.connected'", &firm).await,
        3
    );
    assert_eq!(
        scalar(
            &app,
            "select count(*) from audit_entry where firm_id = $1 and action = 'client.created'",
            &firm
        )
        .await,
        1
    );
    // The new connections work: the first sync reads the client's bills,
    // and the Ramp connection gets its own webhook subscription, verified
    // through Ramp's handshake (the challenge event, signed with the new
    // subscription's secret, then /verify).
    app.drain().await;
    let (sub, webhook_status): (Option<String>, Option<String>) = sqlx::query_as(
        "select webhook_subscription_id, webhook_status from rail_connection where firm_id = $1 and rail = 'ramp'",
    )
    .bind(&firm)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("ramp row");
    assert_eq!(webhook_status.as_deref(), Some("pending_verification"));
    app.sandbox().deliver_pending_webhooks().await;
    app.drain().await;
    let status: Option<String> = sqlx::query_scalar(
        "select webhook_status from rail_connection where firm_id = $1 and rail = 'ramp'",
    )
    .bind(&firm)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("ramp row");
    assert_eq!(status.as_deref(), Some("active"), "handshake completed");
    let sim = app.sandbox().state().await;
    let ours = sim
        .ramp_webhook_subs
        .subs
        .iter()
        .filter(|s| Some(&s.id) == sub.as_ref())
        .collect::<Vec<_>>();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].status, "active");
    assert!(
        scalar(
            &app,
            "select count(*) from staged_bill where firm_id = $1",
            &firm
        )
        .await
            > 0,
        "the new client's bills were read with the new grant"
    );
    // The demo firm's own connection to that realm is untouched.
    let demo_firm = firm_of_user(&app, ADMIN).await;
    assert_eq!(
        scalar(&app, "select count(*) from rail_connection where firm_id = $1 and status = 'active' and rail = 'qbo'", &demo_firm).await,
        scalar(&app, "select count(*) from client where firm_id = $1", &demo_firm).await
    );
}

async fn refusals(app: &TestApp, firm: &str) -> i64 {
    scalar(
        app,
        "select count(*) from audit_entry where firm_id = $1 and action = 'connection.refused'",
        firm,
    )
    .await
}

async fn connect_refusals_store_nothing_and_are_audited(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    second_firm(&app).await;
    app.login(SECOND_ADMIN).await;
    let firm = firm_of_user(&app, SECOND_ADMIN).await;
    let connections_now = |app: &TestApp| {
        let f = firm.clone();
        let pool = app.state.app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from rail_connection where firm_id = $1")
                .bind(f)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };

    // A state RowCol never issued (tampered): a security event, nothing else.
    let events = app
        .count("select count(*) from security_event where kind = 'connect_state_unknown'")
        .await;
    let (status, _, body) = callback(
        &app,
        &format!(
            "{}/connect/qbo/callback?code=abc&state=forged&realmId=1",
            app.base
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("not valid"), "{body}");
    for i in 0..19 {
        let (status, _, _) = callback(
            &app,
            &format!(
                "{}/connect/qbo/callback?code=abc&state=forged-{i}&realmId=1",
                app.base
            ),
        )
        .await;
        assert_eq!(status, 400);
    }
    // Counted, and written as the minute's summary once the minute is over
    // (issue #18: not a row per request).
    assert_eq!(
        app.count("select count(*) from security_event where kind = 'connect_state_unknown'")
            .await,
        events
    );
    app.state.app.clock.advance(chrono::Duration::minutes(2));
    let (status, _, _) = callback(
        &app,
        &format!(
            "{}/connect/qbo/callback?code=abc&state=forged-again&realmId=1",
            app.base
        ),
    )
    .await;
    assert_eq!(status, 400);
    let summaries: Vec<String> = sqlx::query_scalar(
        "select detail from security_event where kind = 'connect_state_unknown' order by at",
    )
    .fetch_all(&app.state.app.db.pool)
    .await
    .unwrap();
    // The twenty may straddle a minute: one or two summaries of them.
    let new = &summaries[usize::try_from(events).unwrap()..];
    assert!((1..=2).contains(&new.len()), "{summaries:?}");
    let counted: u64 = new
        .iter()
        .map(|d| {
            assert!(d.contains(" refused in minute "), "{d}");
            d.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(counted, 20, "{summaries:?}");

    // Access denied at the provider.
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let back = consent(&app, Rail::Qbo, &authorize, None, "deny").await;
    assert!(back.contains("error=access_denied"), "{back}");
    let (status, _, body) = callback(&app, &back).await;
    assert_eq!(status, 400);
    assert!(body.contains("did not grant access"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 1);

    // One good connection, then its callback replayed.
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let good = consent(
        &app,
        Rail::Qbo,
        &authorize,
        Some("Birch Lane Bakery"),
        "allow",
    )
    .await;
    let (status, _, _) = callback(&app, &good).await;
    assert_eq!(status, 303);
    assert_eq!(connections_now(&app).await, 1);
    let (status, _, body) = callback(&app, &good).await;
    assert_eq!(status, 400);
    assert!(body.contains("already used"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 2);

    // A used code under a fresh state: the provider refuses it.
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let fresh = consent(&app, Rail::Qbo, &authorize, Some("Cedar"), "allow").await;
    let code = |u: &str| {
        url::Url::parse(u)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code")
    };
    let reused = fresh.replace(
        &format!("code={}", code(&fresh)),
        &format!("code={}", code(&good)),
    );
    let (status, _, body) = callback(&app, &reused).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("refused the authorization"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 3);

    // Expired: the person came back after the flow's time ran out.
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let late = consent(&app, Rail::Qbo, &authorize, Some("Cedar"), "allow").await;
    app.advance_secs(3600);
    let (status, _, body) = callback(&app, &late).await;
    assert_eq!(status, 400);
    assert!(body.contains("expired"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 4);

    // Started in one browser session, finished in another (same user).
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let other = consent(&app, Rail::Qbo, &authorize, Some("Cedar"), "allow").await;
    app.new_session();
    app.login(SECOND_ADMIN).await;
    let (status, _, body) = callback(&app, &other).await;
    assert_eq!(status, 400);
    assert!(body.contains("another browser session"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 5);

    // A callback for another firm's flow, finished by this firm's admin.
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let theirs = consent(&app, Rail::Qbo, &authorize, Some("Cedar"), "allow").await;
    app.new_session();
    app.login(ADMIN).await;
    let (status, _, body) = callback(&app, &theirs).await;
    assert_eq!(status, 400);
    assert!(body.contains("started by someone else"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 6);

    // An account already connected to another client of the same firm.
    // The grant Intuit issued for it is given back (revoked there), not
    // left live and forgotten (issue #18 §4).
    let held_realm = text(
        &app,
        "select external_id from rail_connection where firm_id = $1 and rail = 'qbo'",
        &firm,
    )
    .await;
    let live_before = app
        .sandbox()
        .live_grants(sandbox::SimRail::Qbo, &held_realm)
        .await;
    app.new_session();
    app.login(SECOND_ADMIN).await;
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let dup = consent(
        &app,
        Rail::Qbo,
        &authorize,
        Some("Birch Lane Bakery"),
        "allow",
    )
    .await;
    let (status, _, body) = callback(&app, &dup).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("already connected to Birch Lane Bakery"),
        "{body}"
    );
    assert_eq!(refusals(&app, &firm).await, 7);
    assert_eq!(
        app.sandbox()
            .live_grants(sandbox::SimRail::Qbo, &held_realm)
            .await,
        live_before,
        "the refused grant was revoked at Intuit"
    );

    // A callback that names no company: refused, and its grant given back.
    let (_, authorize) = start(&app, Rail::Qbo, "").await;
    let back = consent(&app, Rail::Qbo, &authorize, Some("Cedar"), "allow").await;
    let mut url = url::Url::parse(&back).expect("url");
    let realm = url
        .query_pairs()
        .find(|(k, _)| k == "realmId")
        .map(|(_, v)| v.into_owned())
        .expect("realmId");
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "realmId")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let cedar_before = app
        .sandbox()
        .live_grants(sandbox::SimRail::Qbo, &realm)
        .await;
    let (status, _, body) = callback(&app, url.as_str()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("sent no company id"), "{body}");
    assert_eq!(refusals(&app, &firm).await, 8);
    assert_eq!(
        app.sandbox()
            .live_grants(sandbox::SimRail::Qbo, &realm)
            .await,
        cedar_before,
        "the grant issued for the consent was revoked at Intuit"
    );

    // Through all of it: one client, one connection.
    assert_eq!(connections_now(&app).await, 1);
    assert_eq!(
        scalar(
            &app,
            "select count(*) from client where firm_id = $1",
            &firm
        )
        .await,
        1
    );
}

/// Make RowCol believe the stored access token is about to expire (as an
/// hour of wall-clock time would), so the next use refreshes it.
async fn expire_locally(app: &TestApp, client_id: &str, rail: &str) {
    sqlx::query(
        "update rail_connection set access_expires_at = 0 where client_id = $1 and rail = $2",
    )
    .bind(client_id)
    .bind(rail)
    .execute(&app.state.app.db.pool)
    .await
    .expect("expire");
}

async fn a_refresh_answered_invalid_grant_needs_reconnect_and_blocks_approval(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADMIN).await;
    let client = app.client_id("Alder Creek Dental").await;
    let realm = text(
        &app,
        "select external_id from rail_connection where client_id = $1 and rail = 'qbo'",
        &client,
    )
    .await;
    // The company withdrew consent at Intuit; RowCol finds out at refresh.
    app.sandbox()
        .revoke_consent(sandbox::SimRail::Qbo, &realm)
        .await
        .expect("revoke");
    expire_locally(&app, &client, "qbo").await;
    let err = rowcol::connections::rail_auth(&app.state.services, &client, Rail::Qbo)
        .await
        .expect_err("refresh refused");
    assert_eq!(err.code(), "needs_reconnect", "{err}");
    let view = connections(&app).await;
    assert_eq!(
        health(&view, "Alder Creek Dental", "qbo"),
        "needs_reconnect"
    );
    assert_eq!(
        app.count(&format!("select count(*) from hygiene_item where client_id = '{client}' and reason_code = 'rail_reauth_needed' and status = 'open'")).await,
        1
    );
    let (status, body) = app.call("portfolio", &[]).await;
    assert_eq!(status, 200);
    let row = body
        .as_array()
        .expect("rows")
        .iter()
        .find(|c| c["client_id"] == client.as_str())
        .expect("row")
        .clone();
    assert_eq!(row["status"], "untrusted", "{row}");
    assert!(row["connection_issue"]
        .as_str()
        .unwrap_or_default()
        .contains("QuickBooks Online needs to be reconnected"));

    // The advisor cannot approve for this client, and is told why.
    let mut advisor = app;
    advisor.new_session();
    advisor.login("advisor@northwind.test").await;
    let (_, bill) = advisor.small_bill("Alder Creek Dental").await;
    let (status, body) = advisor.approve(&client, &[&bill]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string()
            .contains("QuickBooks Online needs to be reconnected"),
        "{body}"
    );
    assert_eq!(advisor.count("select count(*) from payment").await, 0);

    // The admin reconnects the same company; approvals work again.
    let mut app = advisor;
    app.new_session();
    app.login(ADMIN).await;
    let loc = connect(&app, Rail::Qbo, &client, Some("Alder Creek Dental")).await;
    assert_eq!(loc, "/connections?connected=qbo");
    assert_eq!(
        health(&connections(&app).await, "Alder Creek Dental", "qbo"),
        "connected"
    );
    assert_eq!(
        app.count(&format!("select count(*) from hygiene_item where client_id = '{client}' and reason_code = 'rail_reauth_needed' and status = 'open'")).await,
        0
    );
    app.drain().await;
    let mut advisor = app;
    advisor.new_session();
    advisor.login("advisor@northwind.test").await;
    let (status, body) = advisor.approve(&client, &[&bill]).await;
    assert_eq!(status, 200, "{body}");
}

async fn two_concurrent_refreshes_rotate_once_and_lose_no_token(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADMIN).await;
    let client = app.client_id("Alder Creek Dental").await;
    for round in 0..2 {
        expire_locally(&app, &client, "qbo").await;
        let (a, b) = tokio::join!(
            rowcol::connections::rail_auth(&app.state.services, &client, Rail::Qbo),
            rowcol::connections::rail_auth(&app.state.services, &client, Rail::Qbo),
        );
        let (a, b) = (a.expect("first caller"), b.expect("second caller"));
        assert_eq!(
            a.access_token.expose(),
            b.access_token.expose(),
            "round {round}: one refresh, one token"
        );
        // The token works at QuickBooks.
        let bills = app.state.services.rails.ledger.open_bills(&a).await;
        assert!(bills.is_ok(), "round {round}: {bills:?}");
    }
    // Two refreshes happened (one per round), each stored with its new
    // refresh token: the second round could only refresh with the first's.
    let version: i64 = sqlx::query_scalar(
        "select token_version from rail_connection where client_id = $1 and rail = 'qbo'",
    )
    .bind(&client)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("version");
    assert_eq!(version, 3, "seeded at 1, refreshed twice");
}

async fn disconnect_revokes_at_the_provider_and_forgets_the_tokens(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADMIN).await;
    let client = app.client_id("Alder Creek Dental").await;
    let before = rowcol::connections::rail_auth(&app.state.services, &client, Rail::Ramp)
        .await
        .expect("auth");
    assert!(app
        .state
        .services
        .rails
        .bill_pay
        .bill_pay_setup(&before)
        .await
        .is_ok());
    let res = app
        .http
        .post(format!("{}/connections/{client}/ramp/disconnect", app.base))
        .send()
        .await
        .expect("disconnect");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/connections?disconnected=ramp");
    let stored: (String, Option<String>, Option<String>) = sqlx::query_as(
        "select status, token_sealed, refresh_sealed from rail_connection where client_id = $1 and rail = 'ramp'",
    )
    .bind(&client)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("row");
    assert_eq!(stored, ("disconnected".into(), None, None));
    // Revoked at Ramp: the token RowCol held no longer works there.
    let after = app
        .state
        .services
        .rails
        .bill_pay
        .bill_pay_setup(&before)
        .await;
    assert!(
        matches!(after, Err(rowcol::rails::RailError::Unauthorized(_))),
        "{after:?}"
    );
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'connection.disconnected'")
            .await,
        1
    );
    // And approvals for the client stop, saying why.
    let view = connections(&app).await;
    assert_eq!(health(&view, "Alder Creek Dental", "ramp"), "disconnected");
}

async fn advisors_see_connections_but_cannot_change_them(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let view = connections(&app).await;
    assert_eq!(view["can_manage"], false);
    assert_eq!(health(&view, "Alder Creek Dental", "qbo"), "connected");
    let client = app.client_id("Alder Creek Dental").await;
    let (status, _) = start(&app, Rail::Ramp, &client).await;
    assert_eq!(status, 403);
    let res = app
        .http
        .post(format!("{}/connections/{client}/ramp/disconnect", app.base))
        .send()
        .await
        .expect("disconnect");
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.count("select count(*) from connect_flow").await, 0);
    assert_eq!(
        app.count("select count(*) from rail_connection where status <> 'active'")
            .await,
        0
    );
}

async fn a_sealed_token_copied_to_another_connection_does_not_open(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADMIN).await;
    let a = app.client_id("Alder Creek Dental").await;
    let b = app.client_id("Birch Lane Bakery").await;
    let sealed = text(
        &app,
        "select token_sealed from rail_connection where client_id = $1 and rail = 'ramp'",
        &a,
    )
    .await;
    sqlx::query(
        "update rail_connection set token_sealed = $1 where client_id = $2 and rail = 'ramp'",
    )
    .bind(&sealed)
    .bind(&b)
    .execute(&app.state.app.db.pool)
    .await
    .expect("copy");
    let err = rowcol::connections::rail_auth(&app.state.services, &b, Rail::Ramp)
        .await
        .expect_err("a token bound to another connection");
    assert_eq!(err.code(), "sealed", "{err}");
    assert!(
        rowcol::connections::rail_auth(&app.state.services, &a, Rail::Ramp)
            .await
            .is_ok()
    );
}

async fn sync_now(app: &TestApp, client: &str) {
    let res = app
        .http
        .post(format!("{}/connections/{client}/sync", app.base))
        .send()
        .await
        .expect("sync now");
    assert_eq!(res.status().as_u16(), 303);
    app.drain().await;
}

async fn qbo_status(app: &TestApp, client: &str) -> (String, i64, Option<i64>) {
    sqlx::query_as(
        "select status, token_version, synced_at from rail_connection where client_id = $1 and rail = 'qbo'",
    )
    .bind(client)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("qbo row")
}

async fn a_token_dead_before_its_expiry_is_refreshed_and_the_sync_goes_on(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login(ADMIN).await;
    let client = app.client_id("Alder Creek Dental").await;
    let realm = text(
        &app,
        "select external_id from rail_connection where client_id = $1 and rail = 'qbo'",
        &client,
    )
    .await;
    let (_, version, _) = qbo_status(&app, &client).await;

    // Intuit expires the access token early: the sync's first call is
    // refused, RowCol refreshes and reads the bills anyway.
    app.sandbox()
        .expire_access_tokens(sandbox::SimRail::Qbo, &realm)
        .await
        .expect("expire");
    app.advance_secs(60);
    sync_now(&app, &client).await;
    let (status, after, synced) = qbo_status(&app, &client).await;
    assert_eq!(status, "active");
    assert_eq!(after, version + 1, "one refresh");
    assert!(synced.is_some());
    let synced_before = synced;

    // Consent withdrawn: the refresh is refused, the connection needs the
    // person, and the hygiene tray says so.
    app.sandbox()
        .revoke_consent(sandbox::SimRail::Qbo, &realm)
        .await
        .expect("revoke");
    app.advance_secs(60);
    sync_now(&app, &client).await;
    let (status, _, synced) = qbo_status(&app, &client).await;
    assert_eq!(status, "needs_reconnect");
    assert_eq!(synced, synced_before, "no bills were read without a grant");
    assert_eq!(
        app.count(&format!(
            "select count(*) from hygiene_item where client_id = '{client}' and reason_code = 'rail_reauth_needed' and status = 'open'"
        ))
        .await,
        1
    );
}

/// Walk Plaid's Hosted Link pages: each step posts back to the same URL.
/// `steps` are the forms to send in order (each with `action=continue`).
async fn link(url: &str, steps: &[Vec<(&str, String)>]) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let first = browser.get(url).send().await.expect("link page");
    assert_eq!(first.status().as_u16(), 200);
    let mut last = None;
    for form in steps {
        let mut f = form.clone();
        f.push(("action", "continue".into()));
        let res = browser.post(url).form(&f).send().await.expect("link step");
        last = Some(res);
    }
    let res = last.expect("a step");
    assert_eq!(res.status().as_u16(), 303, "Link finished and went back");
    location(&res)
}

async fn the_bank_is_linked_through_plaid_link_and_repaired_in_update_mode(e: Engine) {
    let app = TestApp::spawn(e).await;
    second_firm(&app).await;
    app.login(SECOND_ADMIN).await;
    connect(&app, Rail::Qbo, "", Some("Alder Creek Dental")).await;
    let client = connections(&app).await["clients"][0]["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let institution = app
        .sandbox()
        .state()
        .await
        .clients
        .iter()
        .find(|c| c.name == "Alder Creek Dental")
        .expect("world client")
        .plaid
        .institution_id
        .clone();

    let (status, hosted) = start(&app, Rail::Plaid, &client).await;
    assert_eq!(status, 303);
    let page = reqwest::get(&hosted)
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(page.contains("institution"), "{page}");
    let back = {
        // Institution, credentials, then the account of this business.
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let post = |f: Vec<(&'static str, String)>| {
            let b = browser.clone();
            let u = hosted.clone();
            async move { b.post(&u).form(&f).send().await.expect("step") }
        };
        post(vec![
            ("institution", institution.clone()),
            ("action", "continue".into()),
        ])
        .await;
        let wrong = post(vec![
            ("username", "user_good".into()),
            ("password", "nope".into()),
            ("action", "continue".into()),
        ])
        .await;
        assert!(wrong
            .text()
            .await
            .unwrap_or_default()
            .contains("not correct"));
        let accounts = post(vec![
            ("username", "user_good".into()),
            ("password", "pass_good".into()),
            ("action", "continue".into()),
        ])
        .await
        .text()
        .await
        .expect("accounts");
        let chosen = options(&accounts)
            .into_iter()
            .find(|(_, t)| t.contains("Alder Creek Dental"))
            .map(|(v, _)| v)
            .expect("the business's account");
        let done = post(vec![("account", chosen), ("action", "continue".into())]).await;
        assert_eq!(done.status().as_u16(), 303);
        location(&done)
    };
    let (status, loc, body) = callback(&app, &back).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(loc, "/connections?connected=plaid");
    let view = connections(&app).await;
    assert_eq!(health(&view, "Alder Creek Dental", "plaid"), "connected");
    let plaid = view["clients"][0]["rails"]
        .as_array()
        .expect("rails")
        .iter()
        .find(|r| r["rail"] == "plaid")
        .expect("plaid")
        .clone();
    assert!(
        plaid["account_name"]
            .as_str()
            .unwrap_or_default()
            .contains("••"),
        "{plaid}"
    );

    // The bank asks for its login again: a sync finds out.
    let item = plaid["external_id"].as_str().expect("item").to_owned();
    app.inject(|f| f.plaid_login_required = vec![item]).await;
    app.advance_secs(3600);
    sync_now(&app, &client).await;
    assert_eq!(
        health(&connections(&app).await, "Alder Creek Dental", "plaid"),
        "needs_reconnect"
    );

    // Repair in Link's update mode: credentials only, same item, same token.
    let (status, hosted) = start(&app, Rail::Plaid, &client).await;
    assert_eq!(status, 303);
    let back = link(
        &hosted,
        &[vec![
            ("username", "user_good".into()),
            ("password", "pass_good".into()),
        ]],
    )
    .await;
    let (status, loc, body) = callback(&app, &back).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(loc, "/connections?repaired=plaid");
    assert_eq!(
        health(&connections(&app).await, "Alder Creek Dental", "plaid"),
        "connected"
    );
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'connection.repaired'")
            .await,
        1
    );
}

async fn rotate_key_reseals_every_secret_under_the_new_key(e: Engine) {
    use app::ssr::crypto::Sealer;
    let app = TestApp::spawn(e).await;
    let old = app.key.clone();
    let new = Sealer::generate_key();
    // A person's secrets too: a TOTP secret (an enrolment begun) and a
    // webhook address for notifications.
    app.login(ADMIN).await;
    let (status, body) = app.call("totp/start", &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            "notify/save",
            &[("webhook_url", "http://127.0.0.1:9/hook/secret")],
        )
        .await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let sealed_values = app
        .count(
            "select count(token_sealed) + count(refresh_sealed) + count(webhook_secret_sealed) from rail_connection",
        )
        .await
        + app
            .count("select count(totp_secret) from app_user")
            .await
        + app
            .count("select count(webhook_sealed) from notify_setting")
            .await;
    let mut config = app.config.clone();
    config.database_url = app.database_url.clone();
    config.encryption_key = Some(old.clone());
    let report = rowcol::keys::rotate(&config, Some(&new))
        .await
        .expect("rotate");
    assert_eq!(i64::try_from(report.values).expect("count"), sealed_values);
    assert!(report.sandbox_state);
    // Nothing opens under the old key any more.
    let old_sealer = Sealer::from_base64_key(&old).expect("old");
    let rows: Vec<(String, String)> =
        sqlx::query_as("select connection_id, token_sealed from rail_connection")
            .fetch_all(&app.state.app.db.pool)
            .await
            .expect("rows");
    assert!(!rows.is_empty());
    for (id, sealed) in &rows {
        assert!(old_sealer.open(sealed, id).is_err());
    }
    let (user, hook): (String, String) =
        sqlx::query_as("select user_id, webhook_sealed from notify_setting")
            .fetch_one(&app.state.app.db.pool)
            .await
            .expect("webhook");
    assert!(old_sealer
        .open(&hook, &app::ssr::store::notify::webhook_aad(&user))
        .is_err());
    // Running again re-seals nothing: all of it is under the current key.
    config.encryption_key = Some(new.clone());
    let again = rowcol::keys::rotate(&config, None)
        .await
        .expect("rotate again");
    assert_eq!(again, rowcol::keys::ResealReport::default());
    // A restart with only the new key works: the world loads, calls go out.
    let mut app = app;
    app.key = new;
    let app = app.restart().await;
    app.login(ADMIN).await;
    let client = app.client_id("Alder Creek Dental").await;
    let auth = rowcol::connections::rail_auth(&app.state.services, &client, Rail::Qbo)
        .await
        .expect("opens under the new key");
    assert!(app
        .state
        .services
        .rails
        .ledger
        .open_bills(&auth)
        .await
        .is_ok());
}

/// The status of a client's Plaid connection, straight from the table.
async fn plaid_status(app: &TestApp, client: &str) -> String {
    sqlx::query_scalar(
        "select rc.status from rail_connection rc join client c on c.client_id = rc.client_id
          where c.name = $1 and rc.rail = 'plaid' and rc.status <> 'disconnected'",
    )
    .bind(client)
    .fetch_one(&app.state.app.db.pool)
    .await
    .expect("plaid connection")
}

/// Plaid webhooks (rails.md §3.7) through the simulator's real deliveries:
/// the Item is given RowCol's URL with `/item/webhook/update`, as Plaid
/// documents for existing Items; a broken login arrives as ITEM `ERROR` and
/// pauses approvals; a `LOGIN_REPAIRED` that the Item's state contradicts
/// changes nothing (RowCol reads the Item again); the real repair heals it;
/// unsigned and unknown-key deliveries are refused and stored nowhere.
async fn plaid_webhooks_are_verified_and_the_item_is_read_again(e: Engine) {
    const CLIENT: &str = "Alder Creek Dental";
    let app = TestApp::spawn(e).await;
    let sb = app.state.services.sandbox.clone().expect("sandbox");
    let creds: Value = app
        .http
        .get(format!("{}/sandbox/control/credentials", app.base))
        .send()
        .await
        .expect("credentials")
        .json()
        .await
        .expect("json");
    let plaid = creds["plaid"].clone();
    let ours = creds["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["name"] == CLIENT)
        .expect("client")["plaid"]
        .clone();
    let item = ours["item_id"].as_str().expect("item").to_owned();
    let token = ours["access_token"].as_str().expect("token").to_owned();
    let call = |path: &'static str, mut body: Value| {
        body["client_id"] = plaid["client_id"].clone();
        body["secret"] = plaid["secret"].clone();
        let url = format!("{}{path}", plaid["base_url"].as_str().expect("base"));
        let http = app.http.clone();
        async move {
            let r = http.post(url).json(&body).send().await.expect("plaid");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };
    let plaid_events = |kind: &'static str| {
        let pool = app.state.app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from webhook_inbox where rail = 'plaid' and event_type = $1 and status = 'processed'",
            )
            .bind(kind)
            .fetch_one(&pool)
            .await
            .expect("count")
        }
    };
    let deliver_and_process = || async {
        sb.deliver_pending_webhooks().await;
        app.drain().await;
    };

    // The Item gets RowCol's webhook URL; Plaid acknowledges at that URL.
    let hook = format!("{}/webhooks/plaid", app.base);
    let (status, body) = call(
        "/item/webhook/update",
        serde_json::json!({ "access_token": token, "webhook": hook }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    deliver_and_process().await;
    assert_eq!(plaid_events("ITEM.WEBHOOK_UPDATE_ACKNOWLEDGED").await, 1);

    // The bank asks for the login: ITEM ERROR, no sync needed to know.
    app.inject(|f| f.plaid_login_required = vec![item.clone()])
        .await;
    deliver_and_process().await;
    assert_eq!(plaid_events("ITEM.ERROR").await, 1);
    assert_eq!(plaid_status(&app, CLIENT).await, "needs_reconnect");
    app.login("advisor@northwind.test").await;
    let (cid, bill) = app.small_bill(CLIENT).await;
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert_eq!(status, 409, "{body}");

    // News the Item contradicts: LOGIN_REPAIRED while the login is still
    // broken. Processed, and the connection stays as it is.
    let (status, body) = call(
        "/sandbox/item/fire_webhook",
        serde_json::json!({ "access_token": token, "webhook_code": "LOGIN_REPAIRED" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    deliver_and_process().await;
    assert_eq!(plaid_events("ITEM.LOGIN_REPAIRED").await, 1);
    assert_eq!(plaid_status(&app, CLIENT).await, "needs_reconnect");

    // Repaired at the bank (outside RowCol's Link): LOGIN_REPAIRED, the
    // balance answers, the connection is healthy and approvals resume.
    app.inject(|f| f.plaid_login_required.clear()).await;
    deliver_and_process().await;
    assert_eq!(plaid_events("ITEM.LOGIN_REPAIRED").await, 2);
    assert_eq!(plaid_status(&app, CLIENT).await, "active");
    let (status, body) = app.approve(&cid, &[&bill]).await;
    assert!(status == 200 || status == 302, "{status} {body}");

    // Refused before anything is stored: no signature, a key Plaid does
    // not know, a token that is not ES256.
    let stored = app
        .count("select count(*) from webhook_inbox where rail = 'plaid'")
        .await;
    let body = format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"{item}","environment":"sandbox"}}"#
    );
    let post = |header: Option<String>| {
        let (http, url, body) = (app.http.clone(), hook.clone(), body.clone());
        async move {
            let mut req = http
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(h) = header {
                req = req.header("Plaid-Verification", h);
            }
            req.send().await.expect("post").status().as_u16()
        }
    };
    assert_eq!(post(None).await, 401);
    let forged = {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("not-a-plaid-key".into());
        let claims = serde_json::json!({
            "iat": chrono::Utc::now().timestamp(),
            "request_body_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())),
        });
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
        .expect("jwt")
    };
    assert_eq!(post(Some(forged)).await, 401);
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "iat": chrono::Utc::now().timestamp() }),
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .expect("jwt");
    assert_eq!(post(Some(hs)).await, 401);
    assert_eq!(
        app.count("select count(*) from webhook_inbox where rail = 'plaid'")
            .await,
        stored
    );
}
