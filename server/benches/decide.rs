//! `cargo bench -p server --bench decide`: deciding across a large
//! portfolio (issue #16) on SQLite and on PostgreSQL
//! (`ROWCOL_TEST_PG_URL`, default the local server). Prints p50/p95;
//! asserts nothing.
//!
//! Seed: the demo firm gains synthetic clients up to 100 in all, each with
//! fresh cash (a balance read now, history synced now, every rail active)
//! and open bills up to 10,000 in all. Then:
//! - the approvals page rendered on the server (`GET /approvals`, 100 rows):
//!   its first read (no client's bills in memory), then as it is reloaded,
//!   then with one client's bill changed before each read (that client's
//!   bills read again); apart, the table's page with nothing in memory;
//! - a what-if for 100 selected bills across 20 clients (the pure rules the
//!   browser and the server share);
//! - approving a batch end to end (`POST /api/approve_batch`) across 20 of
//!   the demo world's clients, whose rails the simulators serve (fresh
//!   balance, QuickBooks re-read, every rule), stopped again between rounds;
//! - the suggested batch for all 100 clients (reads and ranking).

use app::domain::rules;
use app::model::{ClientId, Currency, FirmId, Money};
mod support;

use rowcol::config::Config;
use rowcol::startup::Application;
use std::time::{Duration, Instant};
use support::percentile;

const CLIENTS: usize = 100;

/// A bill picked for the batch: (bill id, amount, vendor id).
type Pick = (String, i64, String);
const BILLS: usize = 10_000;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let p = |q: f64| percentile(&samples, q);
    println!(
        "{name:<44} n={:<4} p50={:>9.2?} p95={:>9.2?}",
        samples.len(),
        p(0.5),
        p(0.95)
    );
}

/// Synthetic clients and bills, written straight to the tables (the bench
/// measures deciding, not syncing).
async fn seed(pool: &sqlx::AnyPool, now_ms: i64, today: chrono::NaiveDate) -> anyhow::Result<()> {
    let firm: String = sqlx::query_scalar("select firm_id from firm limit 1")
        .fetch_one(pool)
        .await?;
    let existing: i64 = sqlx::query_scalar("select count(*) from client")
        .fetch_one(pool)
        .await?;
    let open: i64 = sqlx::query_scalar("select count(*) from staged_bill where status = 'open'")
        .fetch_one(pool)
        .await?;
    let new_clients = CLIENTS.saturating_sub(existing as usize);
    let per_client = (BILLS.saturating_sub(open as usize)).div_ceil(new_clients.max(1));
    let mut tx = pool.begin().await?;
    for c in 0..new_clients {
        let cid = ClientId::generate();
        sqlx::query(
            "insert into client (client_id, firm_id, name, currency, created_at) values ($1, $2, $3, 'USD', $4)",
        )
        .bind(cid.as_str())
        .bind(&firm)
        .bind(format!("Bench Client {c:03}"))
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into client_policy (client_id, version, buffer_days, cash_max_age_secs,
                bank_history_max_age_secs, dual_control_threshold_minor, duplicate_window_days,
                new_vendor_second_approver, created_at)
             values ($1, 1, 14, 900, 86400, 1000000, 7, 0, $2)",
        )
        .bind(cid.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        for rail in ["qbo", "ramp", "plaid"] {
            sqlx::query(
                "insert into rail_connection (connection_id, firm_id, client_id, rail, external_id,
                    status, synced_at)
                 values ($1, $2, $3, $4, $5, 'active', $6)",
            )
            .bind(format!("conn_bench_{}_{rail}", cid.as_str()))
            .bind(&firm)
            .bind(cid.as_str())
            .bind(rail)
            .bind(format!("bench-{}-{rail}", cid.as_str()))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "insert into cash_snapshot (client_id, account_id, available_minor, current_minor,
                currency, as_of) values ($1, 'acct', 500000000, 500000000, 'USD', $2)",
        )
        .bind(cid.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        for b in 0..per_client {
            let due = today + chrono::Duration::days((b % 60) as i64 - 10);
            let txn = due - chrono::Duration::days(30);
            sqlx::query(
                "insert into staged_bill (bill_id, firm_id, client_id, qbo_bill_id, qbo_vendor_id,
                    vendor_name, doc_number, amount_minor, balance_minor, currency, txn_date,
                    due_date, status, synced_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $8, 'USD', $9, $10, 'open', $11)",
            )
            .bind(app::model::BillId::generate().as_str())
            .bind(&firm)
            .bind(cid.as_str())
            .bind(format!("{b}"))
            .bind(format!("v{}", b % 40))
            .bind(format!("Vendor {}", b % 40))
            .bind(format!("INV-{c}-{b}"))
            .bind(10_000 + (b as i64 * 7_919) % 500_000)
            .bind(txn.to_string())
            .bind(due.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn run(engine: &str) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.database_url = support::database(engine, tmp.path()).await?;
    config.demo_password = Some("bench-password".into());
    config.data_dir = tmp.path().display().to_string();
    config.worker = false;
    config.sandbox_living = false;
    config.sandbox_start = Some("2026-11-30".parse()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = Application::build(config, listener).await?;
    let base = format!("http://{}", app.addr);
    let state = app.state.clone();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run(rx));
    rowcol::jobs::runner::drain(&state.services).await?;
    let pool = state.app.db.pool.clone();
    let clock = state.app.clock.clone();
    let t = Instant::now();
    seed(&pool, clock.now().timestamp_millis(), clock.today()).await?;
    // A database in use has planner statistics (PostgreSQL's autovacuum
    // analyzes a table soon after a tenth of it changes); measured right
    // after a bulk seed without them, PostgreSQL's page took 77 ms p95
    // instead of 59.
    if engine == "postgres" {
        sqlx::query("analyze").execute(&pool).await?;
    }
    let (clients, bills): (i64, i64) = (
        sqlx::query_scalar("select count(*) from client")
            .fetch_one(&pool)
            .await?,
        sqlx::query_scalar("select count(*) from staged_bill where status = 'open'")
            .fetch_one(&pool)
            .await?,
    );
    println!(
        "[{engine}] seeded {clients} clients, {bills} open bills in {:.1?}",
        t.elapsed()
    );

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    http.post(format!("{base}/api/login"))
        .form(&[
            ("email", "advisor@northwind.test"),
            ("password", "bench-password"),
        ])
        .send()
        .await?;

    let page = || async {
        let t = Instant::now();
        let res = http.get(format!("{base}/approvals")).send().await?;
        anyhow::ensure!(
            res.status().is_success(),
            "approvals page: {}",
            res.status()
        );
        res.text().await?;
        Ok::<_, anyhow::Error>(t.elapsed())
    };
    // The first read finds no client's bills in memory and reads them all.
    let first = page().await?;
    println!(
        "[{engine}] approvals page, first read (every client's bills read): {:.1} ms",
        first.as_secs_f64() * 1000.0
    );
    let mut samples = Vec::new();
    for _ in 0..40 {
        samples.push(page().await?);
    }
    report(
        &format!("[{engine}] approvals page (SSR, 100 rows)"),
        samples,
    );
    // The same answer without the page around it: the server function's
    // JSON (what a hydrated browser asks for when the filters change).
    let mut samples = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        let res = http
            .post(format!("{base}/api/approvals"))
            .form(&[("per_page", "100")])
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "approvals: {}", res.status());
        res.text().await?;
        samples.push(t.elapsed());
    }
    report(
        &format!("[{engine}]   the same rows as JSON (no page)"),
        samples,
    );
    // As in a working day: between two reads one client's bill changed
    // (a sync, an approval), so that client's bills are read again.
    let changing: Vec<String> = sqlx::query_scalar(
        "select min(bill_id) from staged_bill where status = 'open'
         group by client_id order by client_id limit 20",
    )
    .fetch_all(&pool)
    .await?;
    let mut samples = Vec::new();
    for bill in &changing {
        sqlx::query("update staged_bill set balance_minor = balance_minor + 1 where bill_id = $1")
            .bind(bill)
            .execute(&pool)
            .await?;
        samples.push(page().await?);
    }
    report(
        &format!("[{engine}] approvals page after one client's bill changed"),
        samples,
    );

    // 20 synthetic clients × 5 bills each: the batch below and the what-if.
    let picks: Vec<(String, Vec<Pick>)> = {
        let ids: Vec<String> = sqlx::query_scalar(
            "select client_id from client where name like 'Bench Client %' order by name limit 20",
        )
        .fetch_all(&pool)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            let rows: Vec<Pick> = sqlx::query_as(
                "select bill_id, balance_minor, qbo_vendor_id from staged_bill
                 where client_id = $1 and status = 'open' order by due_date, bill_id limit 5",
            )
            .bind(&id)
            .fetch_all(&pool)
            .await?;
            out.push((id, rows));
        }
        out
    };

    // The what-if: the pure rules over 100 bills in 20 clients.
    let usd = Currency::usd();
    let policy = rules::Policy::defaults(&usd);
    let cash = rules::CashFacts {
        available: Money::usd(500_000_000),
        approved_unpaid: Money::usd(0),
        daily_burn: Money::usd(100_000),
    };
    let known = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        for (_, rows) in &picks {
            let facts: Vec<rules::BillFacts> = rows
                .iter()
                .map(|(id, amount, vendor)| rules::BillFacts {
                    bill_id: id.clone(),
                    vendor_id: vendor.clone(),
                    vendor_name: vendor.clone(),
                    doc_number: Some(id.clone()),
                    amount_minor: *amount,
                    currency: "USD".into(),
                    txn_date: clock.today(),
                    due_date: clock.today(),
                })
                .collect();
            let d = rules::decide(&rules::DecideInput {
                policy: &policy,
                bills: &facts,
                others: &[],
                known_vendors: &known,
                bank_currency: &usd,
                cash: &cash,
                blockers: vec![],
                today: clock.today(),
                override_requested: false,
            })?;
            std::hint::black_box(d);
        }
        samples.push(t.elapsed());
    }
    report(
        &format!("[{engine}] what-if, 100 bills in 20 clients"),
        samples,
    );

    // The suggested batch for all clients.
    let firm: FirmId = FirmId::parse(
        &sqlx::query_scalar::<_, String>("select firm_id from firm limit 1")
            .fetch_one(&pool)
            .await?,
    )?;
    // Where the page's time goes: the clients' cash summaries it starts
    // from, then the table's page of bills with their rules.
    let mut samples = Vec::new();
    let mut table = Vec::new();
    let mut cold = Vec::new();
    let cache = &state.app.db.bills_cache;
    for _ in 0..20 {
        let mut conn = pool.acquire().await?;
        let t = Instant::now();
        let summaries = app::ssr::store::read_models::client_summaries(
            &mut conn,
            &firm,
            clock.now(),
            clock.today(),
            None,
        )
        .await?;
        samples.push(t.elapsed());
        let t = Instant::now();
        let page = app::ssr::store::decisions::approvals_page(
            &mut conn,
            &firm,
            clock.today(),
            &app::ssr::store::decisions::Filters::default(),
            app::ssr::store::decisions::Paging {
                sort: app::ssr::store::decisions::Sort::Due,
                desc: false,
                page: 1,
                per_page: 100,
            },
            cache,
        )
        .await?
        .suggest(clock.today(), &summaries);
        std::hint::black_box(page);
        table.push(t.elapsed());
        let t = Instant::now();
        let page = app::ssr::store::decisions::approvals_page(
            &mut conn,
            &firm,
            clock.today(),
            &app::ssr::store::decisions::Filters::default(),
            app::ssr::store::decisions::Paging {
                sort: app::ssr::store::decisions::Sort::Due,
                desc: false,
                page: 1,
                per_page: 100,
            },
            &app::ssr::store::decisions::BillsCache::default(),
        )
        .await?
        .suggest(clock.today(), &summaries);
        std::hint::black_box(page);
        cold.push(t.elapsed());
    }
    report(&format!("[{engine}]   of which: client summaries"), samples);
    report(&format!("[{engine}]   of which: the table's page"), table);
    report(
        &format!("[{engine}]   the table's page with no bills in memory"),
        cold,
    );
    let mut samples = Vec::new();
    let mut n = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let mut conn = pool.acquire().await?;
        let summaries = app::ssr::store::read_models::client_summaries(
            &mut conn,
            &firm,
            clock.now(),
            clock.today(),
            None,
        )
        .await?;
        let s = app::ssr::store::decisions::suggested_batches(
            &mut conn,
            &firm,
            clock.today(),
            &summaries,
            cache,
        )
        .await?;
        n = s.len();
        samples.push(t.elapsed());
    }
    report(
        &format!("[{engine}] suggested batch, all {clients} clients"),
        samples,
    );
    println!("[{engine}] suggested bills: {n}");

    // Approving a batch end to end through every rule, the fresh balance
    // and the QuickBooks re-read: the demo world's clients, whose rails the
    // simulators serve (the synthetic clients have no QuickBooks company,
    // so the ledger check would refuse them). Their policies let the bench
    // measure acceptance, not refusal: no buffer, no dual control, no
    // duplicate window. Between rounds every payment made is stopped
    // (`stop_payment`: nothing was sent to Ramp), re-opening its bill.
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    admin
        .post(format!("{base}/api/login"))
        .form(&[
            ("email", "admin@northwind.test"),
            ("password", "bench-password"),
        ])
        .send()
        .await?;
    let demo: Vec<String> = sqlx::query_scalar(
        "select c.client_id from client c
         where c.name not like 'Bench Client %'
           and not exists (select 1 from rail_connection r
                           where r.client_id = c.client_id and r.status <> 'active')
         order by (select count(*) from staged_bill b
                   where b.client_id = c.client_id and b.status = 'open') desc, c.name
         limit 20",
    )
    .fetch_all(&pool)
    .await?;
    for id in &demo {
        let res = admin
            .post(format!("{base}/api/set_client_policy"))
            .form(&[
                ("client_id", id.as_str()),
                ("buffer_days", "0"),
                ("dual_control_threshold_minor", "100000000000"),
                ("duplicate_window_days", "0"),
            ])
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "policy: {}", res.status());
    }
    let mut samples = Vec::new();
    let mut sizes = Vec::new();
    for round in 0..5 {
        let mut form: Vec<(String, String)> = vec![("batch_key".into(), format!("bench-{round}"))];
        for id in &demo {
            let rows: Vec<String> = sqlx::query_scalar(
                "select b.bill_id from staged_bill b where b.client_id = $1 and b.status = 'open'
                   and not exists (select 1 from payment p where p.bill_id = b.bill_id
                                   and p.state not in ('cancelled', 'rejected', 'failed'))
                 order by b.due_date, b.bill_id limit 5",
            )
            .bind(id)
            .fetch_all(&pool)
            .await?;
            form.extend(rows.into_iter().map(|b| ("bill_ids[]".to_owned(), b)));
        }
        let t = Instant::now();
        let res = http
            .post(format!("{base}/api/approve_batch"))
            .form(&form)
            .send()
            .await?;
        let status = res.status();
        let body: serde_json::Value = res.json().await?;
        samples.push(t.elapsed());
        anyhow::ensure!(status.is_success(), "approve_batch: {status} {body}");
        let mut made = Vec::new();
        let mut refused = 0;
        for c in body["clients"].as_array().into_iter().flatten() {
            for part in ["approved", "awaiting_second_approval"] {
                for p in c[part].as_array().into_iter().flatten() {
                    made.push(p["payment_id"].as_str().unwrap_or_default().to_owned());
                }
            }
            refused += c["refused"].as_array().map_or(0, Vec::len);
        }
        sizes.push(format!(
            "{}: {} accepted, {refused} refused",
            form.len() - 1,
            made.len()
        ));
        for pid in made {
            let res = http
                .post(format!("{base}/api/stop_payment"))
                .form(&[("payment_id", pid.as_str()), ("reason", "bench round over")])
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "stop: {}", res.status());
        }
    }
    println!(
        "[{engine}] batches over {} demo clients: {}",
        demo.len(),
        sizes.join("; ")
    );
    report(
        &format!("[{engine}] approve a batch across 20 demo clients"),
        samples,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    for engine in ["sqlite", "postgres"] {
        run(engine).await?;
    }
    Ok(())
}
