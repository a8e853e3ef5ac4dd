//! Issue #8, live mode end to end: two processes. A sandbox instance serves
//! the simulators; a live instance (`ROWCOL_RAILS=live`) is configured with
//! their URLs and app credentials — as read from the sandbox's
//! `GET /sandbox/control/credentials`, the way any outside program would —
//! and nothing in it knows it talks to a simulator. A firm is onboarded
//! from nothing: `rowcol create-firm`, `rowcol add-user`, the admin adds a
//! client from QuickBooks and connects Ramp, the bank (Plaid Link) and
//! Stripe; the advisor approves a bill, which is released, paid (the
//! sandbox's clock moves), recorded and verified.

use super::connect::{consent_pages, location, options};
use super::process::{build_stamp, free_port, stub_site, Server};
use super::support::{database_url, Engine, PASSWORD};
use app::model::Rail;
use app::ssr::crypto::Sealer;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const FIRM: &str = "Pair Firm LLP";
const ADMIN: &str = "admin@pair.test";
const ADVISOR: &str = "advisor@pair.test";
const COMPANY: &str = "Yarrow Home Goods";
/// The providers' world starts on a fixed day in the past, whatever day the
/// test runs: the live instance dates its payments by the wall clock, and a
/// simulated Ramp refuses arrival dates before its own today. The sandbox is
/// then advanced to the live payment's arrival date, however far that is.
const PROVIDERS_START: &str = "2026-11-28";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let res = http
        .post(format!("{base}/api/{endpoint}"))
        .form(form)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `rowcol <args>` against the live instance's database.
fn cli(bin: &Path, env: &[(&str, String)], args: &[&str]) {
    let mut cmd = std::process::Command::new(bin);
    super::process::scrub_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("rowcol cli");
    assert!(
        out.status.success(),
        "rowcol {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("credentials lack {p}: {v}"))
        .to_owned()
}

/// Poll `check` for up to `secs` seconds.
async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = None;
    while Instant::now() < deadline {
        match check().await {
            None => return,
            Some(state) => last = Some(state),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what}: not after {secs} s (last: {last:?})");
}

/// Press a connect button on the live instance and follow the provider.
async fn connect(
    live: &reqwest::Client,
    base: &str,
    rail: Rail,
    client_id: &str,
    institution: &str,
) -> (u16, String) {
    let res = live
        .post(format!("{base}/connect/{}/start", rail.as_str()))
        .form(&[("client_id", client_id)])
        .send()
        .await
        .expect("start");
    assert_eq!(res.status().as_u16(), 303, "start {rail}");
    let authorize = location(&res);
    let back = if rail == Rail::Plaid {
        link(&authorize, institution).await
    } else {
        consent_pages(rail, &authorize, Some(COMPANY), "allow").await
    };
    assert!(
        back.starts_with(base),
        "the provider sends the browser back to the live instance: {back}"
    );
    let res = live.get(&back).send().await.expect("callback");
    (res.status().as_u16(), location(&res))
}

/// Plaid Hosted Link, as a person: the bank (`institution`), the sandbox
/// credentials, the business's account.
async fn link(url: &str, institution: &str) -> String {
    let b = browser();
    let page = b
        .get(url)
        .send()
        .await
        .expect("link")
        .text()
        .await
        .expect("html");
    assert!(
        options(&page).iter().any(|(v, _)| v == institution),
        "{page}"
    );
    b.post(url)
        .form(&[("institution", institution), ("action", "continue")])
        .send()
        .await
        .expect("bank");
    let accounts = b
        .post(url)
        .form(&[
            ("username", "user_good"),
            ("password", "pass_good"),
            ("action", "continue"),
        ])
        .send()
        .await
        .expect("sign in")
        .text()
        .await
        .expect("accounts");
    let (account, _) = options(&accounts)
        .into_iter()
        .find(|(_, t)| t.contains(COMPANY))
        .unwrap_or_else(|| panic!("{COMPANY} not offered: {accounts}"));
    let done = b
        .post(url)
        .form(&[("account", account.as_str()), ("action", "continue")])
        .send()
        .await
        .expect("account");
    assert_eq!(done.status().as_u16(), 303);
    location(&done)
}

both_engines!(a_live_instance_onboards_a_firm_from_the_sandboxs_providers);

/// The live instance's database is on `e`; the sandbox's on SQLite.
async fn a_live_instance_onboards_a_firm_from_the_sandboxs_providers(e: Engine) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let live_db = database_url(e, dir).await;
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_rowcol"));
    let site = stub_site(dir, &build_stamp(&bin, dir));
    let live_port = free_port();
    let live_base = format!("http://127.0.0.1:{live_port}");

    // --- the sandbox: the providers, told the live app's redirect URIs as
    // a developer registers them in each provider's console.
    let redirects = ["qbo", "ramp", "plaid", "stripe"]
        .iter()
        .map(|r| format!("{live_base}/connect/{r}/callback"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::create_dir_all(dir.join("sandbox")).expect("dir");
    let sandbox = Server::start(
        &bin,
        &site,
        &[
            (
                "DATABASE_URL",
                format!("sqlite://{}/sandbox.db", dir.display()),
            ),
            ("ROWCOL_RAILS", "sandbox".into()),
            ("ROWCOL_DEMO_PASSWORD", PASSWORD.into()),
            ("ROWCOL_DATA_DIR", dir.join("sandbox").display().to_string()),
            ("ROWCOL_SANDBOX_START", PROVIDERS_START.into()),
            (
                "ROWCOL_SANDBOX_CLIENTS",
                sandbox::world::TEST_CLIENTS.to_string(),
            ),
            ("ROWCOL_SANDBOX_LIVING", "false".into()),
            ("ROWCOL_SANDBOX_REDIRECT_URIS", redirects),
        ],
        &dir.join("sandbox.log"),
    )
    .await;
    let creds: Value = reqwest::get(format!("{}/sandbox/control/credentials", sandbox.base))
        .await
        .expect("credentials")
        .json()
        .await
        .expect("credentials JSON");

    // --- the live instance: only URLs and credentials, from configuration.
    let live_env = vec![
        ("DATABASE_URL", live_db.clone()),
        ("ROWCOL_RAILS", "live".into()),
        ("ROWCOL_ENCRYPTION_KEY", Sealer::generate_key()),
        (
            "ROWCOL_RAMP_WEBHOOK_SECRET",
            "whsec_unused_app_level".into(),
        ),
        ("ROWCOL_QBO_WEBHOOK_VERIFIER", "qbo_verifier_unused".into()),
        ("ROWCOL_PUBLIC_URL", live_base.clone()),
        ("ROWCOL_DATA_DIR", dir.join("live").display().to_string()),
        ("ROWCOL_WORKER", "true".into()),
        ("ROWCOL_QBO_BASE_URL", s(&creds, "/qbo/base_url")),
        ("ROWCOL_QBO_CLIENT_ID", s(&creds, "/qbo/client_id")),
        ("ROWCOL_QBO_CLIENT_SECRET", s(&creds, "/qbo/client_secret")),
        ("ROWCOL_QBO_AUTHORIZE_URL", s(&creds, "/qbo/authorize_url")),
        ("ROWCOL_QBO_TOKEN_URL", s(&creds, "/qbo/token_url")),
        ("ROWCOL_QBO_REVOKE_URL", s(&creds, "/qbo/revoke_url")),
        ("ROWCOL_RAMP_BASE_URL", s(&creds, "/ramp/base_url")),
        ("ROWCOL_RAMP_CLIENT_ID", s(&creds, "/ramp/client_id")),
        (
            "ROWCOL_RAMP_CLIENT_SECRET",
            s(&creds, "/ramp/client_secret"),
        ),
        (
            "ROWCOL_RAMP_AUTHORIZE_URL",
            s(&creds, "/ramp/authorize_url"),
        ),
        ("ROWCOL_RAMP_TOKEN_URL", s(&creds, "/ramp/token_url")),
        ("ROWCOL_PLAID_BASE_URL", s(&creds, "/plaid/base_url")),
        ("ROWCOL_PLAID_CLIENT_ID", s(&creds, "/plaid/client_id")),
        ("ROWCOL_PLAID_SECRET", s(&creds, "/plaid/secret")),
        ("ROWCOL_STRIPE_BASE_URL", s(&creds, "/stripe/base_url")),
        ("ROWCOL_STRIPE_CLIENT_ID", s(&creds, "/stripe/client_id")),
        ("ROWCOL_STRIPE_SECRET_KEY", s(&creds, "/stripe/secret_key")),
        (
            "ROWCOL_STRIPE_AUTHORIZE_URL",
            s(&creds, "/stripe/authorize_url"),
        ),
    ];
    std::fs::create_dir_all(dir.join("live")).expect("dir");
    let mut with_pw = live_env.clone();
    with_pw.push(("ROWCOL_ADMIN_PASSWORD", PASSWORD.into()));
    with_pw.push(("ROWCOL_USER_PASSWORD", PASSWORD.into()));
    cli(
        &bin,
        &with_pw,
        &["create-firm", "--name", FIRM, "--admin-email", ADMIN],
    );
    cli(
        &bin,
        &with_pw,
        &[
            "add-user",
            "--firm",
            FIRM,
            "--email",
            ADVISOR,
            "--name",
            "Pat Advisor",
            "--role",
            "advisor",
        ],
    );
    let live = Server::start_at(&bin, &site, &live_env, &dir.join("live.log"), live_port).await;
    let base = live.base.clone();
    assert_eq!(base, live_base);
    let log_tails = || {
        format!(
            "--- live\n{}\n--- sandbox\n{}",
            live.log_tail(30),
            sandbox.log_tail(30)
        )
    };

    // --- the admin onboards the client.
    let admin = browser();
    let (status, body) = call(
        &admin,
        &base,
        "login",
        &[("email", ADMIN), ("password", PASSWORD)],
    )
    .await;
    assert!(status == 200 || status == 302, "{body}");
    // Live mode: an admin turns on two-step sign-in before anything else.
    let (status, started) = call(&admin, &base, "totp/start", &[]).await;
    assert_eq!(status, 200, "{started}");
    let key = started["secret_base32"].as_str().expect("a key").to_owned();
    let code = app::ssr::totp::code_for(&key, ADMIN, app::ssr::totp::now_secs()).expect("a code");
    let (status, body) = call(&admin, &base, "totp/confirm", &[("code", &code)]).await;
    assert_eq!(status, 200, "{body}");
    let institution = creds["clients"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == COMPANY))
        .map(|c| s(c, "/plaid/institution_id"))
        .expect("the company's bank");
    let (status, loc) = connect(&admin, &base, Rail::Qbo, "", &institution).await;
    assert_eq!(
        (status, loc.as_str()),
        (303, "/connections?connected=qbo"),
        "{}",
        log_tails()
    );
    let (_, view) = call(&admin, &base, "connections", &[]).await;
    let client_id = view["clients"][0]["client_id"]
        .as_str()
        .expect("client")
        .to_owned();
    assert_eq!(view["clients"][0]["name"], COMPANY);
    for rail in [Rail::Ramp, Rail::Plaid, Rail::Stripe] {
        let (status, loc) = connect(&admin, &base, rail, &client_id, &institution).await;
        assert_eq!(status, 303, "{rail}: {}", log_tails());
        assert_eq!(loc, format!("/connections?connected={}", rail.as_str()));
    }
    // All four healthy; Ramp's webhook subscription verified by handshake.
    eventually(
        "the four rails healthy and Ramp's webhooks active",
        60,
        || {
            let (admin, base) = (admin.clone(), base.clone());
            async move {
                let (_, v) = call(&admin, &base, "connections", &[]).await;
                let rails = v["clients"][0]["rails"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ok = rails.iter().all(|r| r["health"] == "connected")
                    && rails
                        .iter()
                        .any(|r| r["rail"] == "ramp" && r["webhook_status"] == "active");
                (!ok).then(|| v.to_string())
            }
        },
    )
    .await;

    // --- the advisor approves a bill once the client's data is in.
    let advisor = browser();
    call(
        &advisor,
        &base,
        "login",
        &[("email", ADVISOR), ("password", PASSWORD)],
    )
    .await;
    let mut bill = String::new();
    eventually("the client's bills and cash read", 60, || {
        let (advisor, base, client_id) = (advisor.clone(), base.clone(), client_id.clone());
        async move {
            let (_, d) = call(&advisor, &base, "client", &[("client_id", &client_id)]).await;
            let has = d["bills"].as_array().is_some_and(|b| !b.is_empty())
                && d["summary"]["cash"]["available"].is_object();
            (!has).then(|| d.to_string())
        }
    })
    .await;
    let (_, detail) = call(&advisor, &base, "client", &[("client_id", &client_id)]).await;
    if let Some(b) = detail["bills"].as_array().and_then(|b| {
        b.iter()
            .min_by_key(|b| b["amount"]["minor"].as_i64().unwrap_or(i64::MAX))
    }) {
        bill = b["bill_id"].as_str().expect("bill").to_owned();
    }
    let (status, out) = call(
        &advisor,
        &base,
        "approve_bills",
        &[("client_id", &client_id), ("bill_ids[]", &bill)],
    )
    .await;
    assert!(
        status == 200 || status == 302,
        "approval: {status} {out}\n{}",
        log_tails()
    );
    let payment = out["payments"][0].as_str().expect("payment").to_owned();
    let payment_state = |advisor: reqwest::Client, base: String, payment: String| async move {
        let (_, p) = call(&advisor, &base, "payment", &[("payment_id", &payment)]).await;
        p
    };
    eventually("released on Ramp", 60, || {
        let f = payment_state(advisor.clone(), base.clone(), payment.clone());
        async move {
            let p = f.await;
            (p["summary"]["state"] != "released").then(|| p["summary"]["state"].to_string())
        }
    })
    .await;

    // --- time passes at the providers: Ramp pays on the arrival date, the
    // ledger and the bank record it, and the paid webhook reaches the live
    // instance through its own subscription.
    let p = payment_state(advisor.clone(), base.clone(), payment.clone()).await;
    let arrival: chrono::NaiveDate =
        serde_json::from_value(p["summary"]["payment_arrival_date"].clone()).expect("arrival");
    let sim_today = |v: &Value| -> chrono::NaiveDate {
        serde_json::from_value(v["today"].clone()).expect("today")
    };
    let http = reqwest::Client::new();
    loop {
        let st: Value = http
            .get(format!("{}/sandbox/control/state", sandbox.base))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("json");
        let today = sim_today(&st);
        if today > arrival {
            break;
        }
        let days = (arrival - today).num_days().clamp(1, 90) + 1;
        let r = http
            .post(format!("{}/sandbox/control/advance", sandbox.base))
            .json(&json!({ "days": days.min(90) }))
            .send()
            .await
            .expect("advance");
        assert_eq!(r.status().as_u16(), 200);
    }
    eventually("verified on every rail", 90, || {
        let f = payment_state(advisor.clone(), base.clone(), payment.clone());
        async move {
            let p = f.await;
            (p["summary"]["state"] != "verified").then(|| p["summary"]["state"].to_string())
        }
    })
    .await;
    drop(live);
    drop(sandbox);
}
