//! `cargo bench -p server --bench console`: speed and memory of the console's
//! hot paths on the embedded engine (SQLite, sandbox rails over loopback HTTP,
//! the worker running as in production). Prints figures; asserts nothing.
//!
//! - portfolio: 200 `POST /api/portfolio` calls for the 24-client demo firm
//! - approve: one approval per client (fresh-cash check, guardrail, payment,
//!   custody, audit, job, in one transaction)
//! - webhooks: after the sandbox pays every bill, the time from a `bills.paid`
//!   webhook's receipt to its processing (the seed's target: 95% within 1 s)
//! - peak resident memory of the whole process (server + worker + client)

use rowcol::config::Config;
use rowcol::startup::Application;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} n={:<5} p50={:>8.2?} p95={:>8.2?} max={:>8.2?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        samples.last().copied().unwrap_or_default()
    );
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.database_url = format!("sqlite://{}/bench.db", tmp.path().display());
    config.demo_password = Some("bench-password".into());
    config.data_dir = tmp.path().display().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let started = Instant::now();
    let app = Application::build(config, listener).await?;
    let base = format!("http://{}", app.addr);
    let state = app.state.clone();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run(rx));
    rowcol::jobs::runner::drain(&state.services).await?;
    println!(
        "start-up incl. migrations, seed and first sync of 24 clients: {:.2?}",
        started.elapsed()
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

    let mut samples = Vec::new();
    let mut clients = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let body: serde_json::Value = http
            .post(format!("{base}/api/portfolio"))
            .send()
            .await?
            .json()
            .await?;
        samples.push(t.elapsed());
        if i == 0 {
            clients = body
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["client_id"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    report("portfolio (24 clients)", samples);

    let mut samples = Vec::new();
    let mut approved = 0;
    for cid in &clients {
        let detail: serde_json::Value = http
            .post(format!("{base}/api/client"))
            .form(&[("client_id", cid.as_str())])
            .send()
            .await?
            .json()
            .await?;
        let Some(bill) = detail["bills"][0]["bill_id"].as_str() else {
            continue;
        };
        let t = Instant::now();
        let res = http
            .post(format!("{base}/api/approve_bills"))
            .form(&[("client_id", cid.as_str()), ("bill_ids[]", bill)])
            .send()
            .await?;
        samples.push(t.elapsed());
        if res.status().is_success() || res.status().is_redirection() {
            approved += 1;
        }
    }
    report("approve one bill", samples);
    println!(
        "approved {approved} of {} clients' first bills",
        clients.len()
    );

    // Let the worker release everything, then pay it all.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = Instant::now();
    http.post(format!("{base}/api/sandbox/advance"))
        .form(&[("days", "40")])
        .send()
        .await?;
    println!(
        "advance 40 days (pay, webhooks, verify all): {:.2?}",
        t.elapsed()
    );

    let rows: Vec<(i64, Option<i64>)> =
        sqlx::query_as("select received_at, processed_at from webhook_inbox")
            .fetch_all(&state.app.db.pool)
            .await?;
    let lat: Vec<Duration> = rows
        .iter()
        .filter_map(|(r, p)| p.map(|p| Duration::from_millis((p - r).max(0) as u64)))
        .collect();
    let within = lat.iter().filter(|d| **d <= Duration::from_secs(1)).count();
    report("webhook receipt→processed", lat.clone());
    println!(
        "webhooks processed within 1 s: {within}/{} ({:.0}%)",
        lat.len(),
        100.0 * within as f64 / lat.len().max(1) as f64
    );
    let verified: i64 = sqlx::query_scalar("select count(*) from payment where state = 'verified'")
        .fetch_one(&state.app.db.pool)
        .await?;
    println!("payments verified: {verified}/{approved}");
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}
