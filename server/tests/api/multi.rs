//! Issue #7, three instances: three RowCol processes — the `rowcol` binary
//! cargo built for this run, each with its own worker — on one PostgreSQL
//! database. Instance one hosts the simulators; two and three use them
//! through `ROWCOL_SANDBOX_RAILS_URL` and follow instance one's clock. Real
//! paid bills, then signed `bills.paid` webhooks for them (30% duplicates)
//! sent round-robin to the three while approvals go on on all three: each
//! event is processed once, each payment released once (counted through
//! the simulated Ramp's own bills API), every payment verified.
//!
//! The processes share nothing but the database and the simulators reached
//! over HTTP. `MULTI_WEBHOOKS` sets the number of webhooks (default 2,000;
//! the full size is 10,000: `make multi`). Each process logs to a
//! file in the test's temporary directory; a failure prints their tails.

use super::process::{build_stamp, stub_site, Server};
use super::support::{database_url, sandbox_start, sign, Engine, PASSWORD};
use app::ssr::crypto::Sealer;
use rowcol::config::Config;
use rowcol::startup::Application;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

const WEBHOOK_SECRET: &str = "whsec_multi_instance_test";
const PLAID_SECRET: &str = "plaid_multi_instance_test";
const QBO_VERIFIER: &str = "qbo_verifier_multi_instance_test";

/// How long after instance one's clock moves the others are sure to have
/// followed it (they re-read it every 250 ms).
const FOLLOW: std::time::Duration = std::time::Duration::from_millis(1_000);

struct Instance {
    server: Server,
    http: reqwest::Client,
}

impl Instance {
    fn base(&self) -> &str {
        &self.server.base
    }
}

#[allow(clippy::too_many_arguments)]
async fn start(
    bin: &Path,
    site: &Path,
    url: &str,
    key: &str,
    dir: &Path,
    n: usize,
    rails_of: Option<&str>,
) -> Instance {
    let data = dir.join(format!("instance-{n}"));
    std::fs::create_dir_all(&data).expect("data dir");
    let mut env = vec![
        ("DATABASE_URL", url.to_owned()),
        ("ROWCOL_RAILS", "sandbox".to_owned()),
        ("ROWCOL_DEMO_PASSWORD", PASSWORD.to_owned()),
        ("ROWCOL_ENCRYPTION_KEY", key.to_owned()),
        ("ROWCOL_RAMP_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("ROWCOL_QBO_WEBHOOK_VERIFIER", QBO_VERIFIER.to_owned()),
        ("ROWCOL_PLAID_SECRET", PLAID_SECRET.to_owned()),
        ("ROWCOL_WORKER", "true".to_owned()),
        ("ROWCOL_DATA_DIR", data.display().to_string()),
        ("ROWCOL_SANDBOX_START", sandbox_start().to_string()),
        (
            "ROWCOL_SANDBOX_CLIENTS",
            sandbox::world::TEST_CLIENTS.to_string(),
        ),
        ("ROWCOL_SANDBOX_LIVING", "false".to_owned()),
    ];
    if let Some(b) = rails_of {
        env.push(("ROWCOL_SANDBOX_RAILS_URL", format!("{b}/sandbox")));
    }
    let server = Server::start(bin, site, &env, &dir.join(format!("instance-{n}.log"))).await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let i = Instance { server, http };
    let (status, body) = i
        .call(
            "login",
            &[("email", "advisor@northwind.test"), ("password", PASSWORD)],
        )
        .await;
    assert!(status == 200 || status == 302, "login: {status} {body}");
    i
}

impl Instance {
    async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/api/{endpoint}", self.base()))
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

    /// Every open bill of every client: (client id, bill id), smallest first.
    async fn open_bills(&self) -> Vec<(String, String)> {
        let (status, portfolio) = self.call("portfolio", &[]).await;
        assert_eq!(status, 200, "{portfolio}");
        let mut out = Vec::new();
        for c in portfolio.as_array().expect("array") {
            let cid = c["client_id"].as_str().expect("id");
            let (status, detail) = self.call("client", &[("client_id", cid)]).await;
            assert_eq!(status, 200, "{detail}");
            for b in detail["bills"].as_array().expect("bills") {
                out.push((
                    b["amount"]["minor"].as_i64().expect("amount"),
                    cid.to_owned(),
                    b["bill_id"].as_str().expect("bill id").to_owned(),
                ));
            }
        }
        out.sort();
        out.into_iter().map(|(_, c, b)| (c, b)).collect()
    }

    /// Approve this instance's share (`n`th of `of`) of the open bills one
    /// by one; refusals (the cash buffer, a bill another instance took) are
    /// expected. How many were accepted.
    async fn approve_share(&self, n: usize, of: usize) -> usize {
        let mut accepted = 0;
        for (k, (cid, bill)) in self.open_bills().await.iter().enumerate() {
            if k % of != n {
                continue;
            }
            let (status, _) = self
                .call("approve_bills", &[("client_id", cid), ("bill_ids[]", bill)])
                .await;
            if status == 200 || status == 302 {
                accepted += 1;
            }
        }
        accepted
    }

    /// Advance the shared clock through instance one's console control,
    /// then give the others time to follow it.
    async fn advance(&self, days: u32) {
        let (status, body) = self
            .call("sandbox/advance", &[("days", &days.to_string())])
            .await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(FOLLOW).await;
    }
}

async fn count(db: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db)
        .await
        .expect(sql)
}

/// Instance one's clock (the sandbox's): the wall clock plus the offset it
/// saves in `sandbox_state`, in milliseconds.
async fn sandbox_now_ms(db: &sqlx::PgPool) -> i64 {
    let offset: Option<String> =
        sqlx::query_scalar("select state from sandbox_state where sandbox_id = 'clock'")
            .fetch_optional(db)
            .await
            .expect("clock");
    let offset: i64 = offset.and_then(|o| o.parse().ok()).unwrap_or(0);
    chrono::Utc::now().timestamp_millis() + offset * 1000
}

/// Wait until no release is due or in flight. The clock is about to jump:
/// a follower that picked up a release a moment before the jump would
/// date its ACH arrival by the old "today", which the simulated Ramp (now
/// weeks later) refuses as in the past. A person in the console sees their
/// releases go out before moving time; so does this test. Releases backing
/// off after a rate limit are not due and are left alone (followers only see
/// them due once they have the new time).
async fn settle_releases(db: &sqlx::PgPool) {
    for _ in 0..240 {
        let due = count(
            db,
            &format!(
                "select count(*) from job where kind = 'release_payment' and state = 'queued' \
                 and run_at <= {}",
                sandbox_now_ms(db).await
            ),
        )
        .await;
        if due == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("releases still due after a minute");
}

/// Every bill on the simulated Ramp, read through Ramp's own bills API with
/// each client's token (opened with the instances' key):
/// (business id, bill id, status, remote_id).
async fn ramp_bills(
    one: &Instance,
    db: &sqlx::PgPool,
    key: &str,
) -> Vec<(String, String, String, Option<String>)> {
    let sealer = Sealer::from_base64_key(key).expect("key");
    let conns: Vec<(String, String, String)> = sqlx::query_as(
        "select external_id, token_sealed, connection_id from rail_connection where rail = 'ramp'",
    )
    .fetch_all(db)
    .await
    .expect("ramp connections");
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (business, sealed, connection_id) in conns {
        let token = sealer.open(&sealed, &connection_id).expect("token opens");
        let mut url = Some(format!(
            "{}/sandbox/ramp/developer/v1/bills?page_size=100",
            one.base()
        ));
        while let Some(u) = url.take() {
            let mut page = Value::Null;
            for _ in 0..30 {
                let r = http.get(&u).bearer_auth(&token).send().await.expect("list");
                let status = r.status().as_u16();
                let text = r.text().await.expect("body");
                match status {
                    200 => {
                        page = serde_json::from_str(&text).expect("json");
                        break;
                    }
                    // Ramp's rate limit: wait it out.
                    429 => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                    _ => panic!("Ramp's bill list answered {status}: {text}"),
                }
            }
            for b in page["data"]
                .as_array()
                .expect("ramp data (rate limited for 30 s?)")
            {
                out.push((
                    business.clone(),
                    b["id"].as_str().expect("id").to_owned(),
                    b["status"].as_str().unwrap_or_default().to_owned(),
                    b["remote_id"].as_str().map(str::to_owned),
                ));
            }
            url = page["page"]["next"].as_str().map(str::to_owned);
        }
    }
    out
}

/// Dual control (issue #16): an admin — another person than the advisor
/// who approved — completes every payment waiting for a second approval,
/// through `via`; one the rules now refuse (its client's buffer moved
/// meanwhile) is rejected with a reason. How many were approved.
async fn second_approvals(via: &Instance) -> usize {
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = |endpoint: &str, form: Vec<(&str, String)>| {
        admin
            .post(format!("{}/api/{endpoint}", via.base()))
            .form(&form)
            .send()
    };
    let res = post(
        "login",
        vec![
            ("email", "admin@northwind.test".into()),
            ("password", PASSWORD.into()),
        ],
    )
    .await
    .expect("admin login");
    assert!(res.status().is_success() || res.status().is_redirection());
    let waiting: Value = post("approvals/waiting", vec![])
        .await
        .expect("waiting")
        .json()
        .await
        .expect("waiting json");
    let mut approved = 0;
    for w in waiting.as_array().expect("waiting list") {
        let pid = w["payment_id"].as_str().expect("payment id").to_owned();
        let res = post("approve_second", vec![("payment_id", pid.clone())])
            .await
            .expect("approve_second");
        if res.status().is_success() {
            approved += 1;
        } else {
            let res = post(
                "reject_payment",
                vec![
                    ("payment_id", pid),
                    ("reason", "refused on second approval".into()),
                ],
            )
            .await
            .expect("reject_payment");
            assert!(res.status().is_success(), "reject: {}", res.status());
        }
    }
    approved
}

/// Approve on all three at once.
async fn approve_everywhere(all: &[Arc<Instance>]) -> usize {
    let tasks: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let i = i.clone();
            let of = all.len();
            tokio::spawn(async move { i.approve_share(n, of).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.expect("approvals");
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_process_each_webhook_once_and_verify_every_payment() {
    let total: usize = std::env::var("MULTI_WEBHOOKS")
        .ok()
        .map(|s| s.parse().expect("MULTI_WEBHOOKS must be a number"))
        .unwrap_or(2000);
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = database_url(Engine::Postgres, tmp.path()).await;
    let db = sqlx::PgPool::connect(&url).await.expect("database");
    let key = Sealer::generate_key();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_rowcol"));
    let site = stub_site(tmp.path(), &build_stamp(&bin, tmp.path()));
    let dir = tmp.path();
    let one = Arc::new(start(&bin, &site, &url, &key, dir, 1, None).await);
    let two = Arc::new(start(&bin, &site, &url, &key, dir, 2, Some(one.base())).await);
    let three = Arc::new(start(&bin, &site, &url, &key, dir, 3, Some(one.base())).await);
    let all = vec![one.clone(), two.clone(), three.clone()];
    // The followers did not seed: one firm, one set of demo users.
    assert_eq!(count(&db, "select count(*) from firm").await, 1);
    assert_eq!(count(&db, "select count(*) from app_user").await, 3);

    // Real paid bills: approvals on all three, then time passes and the
    // simulated Ramp pays them.
    let first = approve_everywhere(&all).await;
    assert!(first > 0, "no approval was accepted");
    second_approvals(&two).await;
    settle_releases(&db).await;
    one.advance(40).await;
    let paid: Vec<(String, String)> = ramp_bills(&one, &db, &key)
        .await
        .into_iter()
        .filter(|(_, _, status, remote)| status == "PAID" && remote.is_some())
        .map(|(business, id, _, _)| (business, id))
        .collect();
    assert!(!paid.is_empty(), "Ramp paid nothing");

    // N signed webhooks, 30% redeliveries of events already sent, round-robin
    // to the three, while approvals go on on all three.
    let mut sends: Vec<(String, String)> = Vec::with_capacity(total);
    let mut unique: Vec<usize> = Vec::new();
    for k in 0..total {
        if matches!(k % 10, 3 | 6 | 9) && !unique.is_empty() {
            let again = unique[(k * 31) % unique.len()];
            sends.push(sends[again].clone());
        } else {
            let (business, bill) = &paid[unique.len() % paid.len()];
            let id = format!("evt-multi-{}", unique.len());
            let body = json!({"id": id, "type": "bills.paid",
                "created_at": "2026-11-27T12:00:00Z", "business_id": business,
                "object": {"id": bill}})
            .to_string();
            unique.push(sends.len());
            sends.push((id, body));
        }
    }
    let approvals = {
        let all = all.clone();
        tokio::spawn(async move { approve_everywhere(&all).await })
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(24));
    let mut posts = Vec::with_capacity(total);
    for (k, (_, body)) in sends.iter().enumerate() {
        let target = all[k % all.len()].clone();
        let body = body.clone();
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        posts.push(tokio::spawn(async move {
            let res = target
                .http
                .post(format!("{}/webhooks/ramp", target.base()))
                .header("content-type", "application/json")
                .header("X-Ramp-Webhook-Signature", sign(WEBHOOK_SECRET, &body))
                .body(body)
                .send()
                .await
                .expect("webhook");
            drop(permit);
            res.status().as_u16()
        }));
    }
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for p in posts {
        *statuses.entry(p.await.expect("post")).or_default() += 1;
    }
    assert_eq!(
        statuses.get(&200),
        Some(&total),
        "webhook answers: {statuses:?}"
    );
    let second = approvals.await.expect("approvals");
    second_approvals(&three).await;
    let sent_at = started.elapsed();

    // Quiet: time passes until every payment is verified and every event
    // processed (the workers do the work; a day's advance also passes any
    // retry back-off, e.g. after the simulated Ramp's rate limit).
    let unique_n = unique.len() as i64;
    let mut rounds = 0;
    loop {
        let unverified = count(
            &db,
            "select count(*) from payment where state not in ('verified', 'rejected')",
        )
        .await;
        let unprocessed = count(
            &db,
            "select count(*) from webhook_inbox where status <> 'processed'",
        )
        .await;
        let queued = count(
            &db,
            &format!(
                "select count(*) from job where state = 'queued' and run_at <= {}",
                sandbox_now_ms(&db).await
            ),
        )
        .await;
        if unverified == 0 && unprocessed == 0 && queued == 0 {
            break;
        }
        rounds += 1;
        if rounds > 60 {
            // Say what is stuck, with the jobs and hygiene items about it.
            let stuck: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "select payment_id, state, flag_reason from payment
                 where state not in ('verified', 'rejected')",
            )
            .fetch_all(&db)
            .await
            .expect("stuck payments");
            let jobs: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
                "select kind, state, attempts, last_error from job where state <> 'done'",
            )
            .fetch_all(&db)
            .await
            .expect("jobs");
            let items: Vec<(String, String)> = sqlx::query_as(
                "select reason_code, detail from hygiene_item where status = 'open'",
            )
            .fetch_all(&db)
            .await
            .expect("hygiene");
            panic!(
                "not quiet: {unverified} payments unverified, {unprocessed} events unprocessed, \
                 {queued} jobs due\npayments: {stuck:?}\njobs: {jobs:?}\nhygiene: {items:?}\n\
                 instance one's log:\n{}",
                one.server.log_tail(30)
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if rounds % 4 == 0 {
            one.advance(1).await;
        }
    }

    // Each event stored once and processed once: one inbox row per event id,
    // one processing job per row, finished.
    assert_eq!(
        count(
            &db,
            "select count(*) from webhook_inbox where event_id like 'evt-multi-%'"
        )
        .await,
        unique_n
    );
    assert_eq!(
        count(&db, "select count(distinct event_id) from webhook_inbox").await,
        count(&db, "select count(*) from webhook_inbox").await
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from job where kind = 'process_webhook'"
        )
        .await,
        count(&db, "select count(*) from webhook_inbox").await,
        "one processing job per stored event"
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from job where kind = 'process_webhook' and state <> 'done'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "select count(*) from job where state = 'dead'").await,
        0
    );

    // Each payment released once: exactly one Ramp bill carries its id (a
    // payment rejected at its second approval has none).
    let ids: Vec<String> =
        sqlx::query_scalar("select payment_id from payment where state <> 'rejected'")
            .fetch_all(&db)
            .await
            .expect("payments");
    let bills = ramp_bills(&one, &db, &key).await;
    let mut per_remote: HashMap<&str, usize> = HashMap::new();
    for (_, _, _, remote) in &bills {
        if let Some(r) = remote {
            *per_remote.entry(r.as_str()).or_default() += 1;
        }
    }
    for id in &ids {
        assert_eq!(per_remote.get(id.as_str()), Some(&1), "Ramp bills for {id}");
    }
    assert_eq!(per_remote.len(), ids.len(), "a Ramp bill for no payment");
    assert_eq!(
        count(
            &db,
            "select count(*) from custody_event where state = 'released'"
        )
        .await,
        ids.len() as i64,
        "one release step per payment"
    );
    // Every payment verified (checked by the quiet loop; stated again).
    assert_eq!(
        count(
            &db,
            "select count(*) from payment where state not in ('verified', 'rejected')"
        )
        .await,
        0
    );
    println!(
        "three instances: {total} webhooks ({unique_n} events, {} redeliveries) for {} paid \
         Ramp bills; {} payments ({first} approved before, {second} during); sent in {:.1?}, \
         quiet after {rounds} polls, total {:.1?}",
        total as i64 - unique_n,
        paid.len(),
        ids.len(),
        sent_at,
        started.elapsed()
    );
}

/// An instance pointed at simulators whose world is not in its database
/// refuses to start rather than run on its own clock with no demo data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_on_another_instances_simulators_needs_its_world_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = database_url(Engine::Postgres, tmp.path()).await;
    let mut config = Config::defaults();
    config.database_url = url;
    config.encryption_key = Some(Sealer::generate_key());
    config.ramp_webhook_secret = Some(WEBHOOK_SECRET.into());
    config.qbo_webhook_verifier = Some(QBO_VERIFIER.into());
    config.plaid_secret = Some(PLAID_SECRET.into());
    config.data_dir = tmp.path().display().to_string();
    config.sandbox_rails_url = Some("http://127.0.0.1:9/sandbox".into());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let err = Application::build(config, listener)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no sandbox world"), "{err}");
}
