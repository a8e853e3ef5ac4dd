//! `cargo bench -p server --bench webhooks`: how fast signed Ramp webhooks
//! are acknowledged (verified, stored, 2xx), open loop at 500 and 2,000 a
//! second with 30% duplicates, on SQLite and on PostgreSQL
//! (`ROWCOL_TEST_PG_URL`, default the local server). Issue #19 §0. Prints
//! p50/p99 of the time from each request's scheduled send to its answer
//! (an answer queued behind slower ones counts its wait), and how many
//! were not 2xx. Asserts nothing.
//!
//! The worker is off: this measures the receiver (what the rail waits
//! for), not the processing behind it. `WEBHOOK_SECS` sets each rate's
//! duration (default 4 s).

mod support;

use rowcol::config::Config;
use rowcol::startup::Application;
use std::time::{Duration, Instant};
use support::percentile;

const SECRET: &str = "bench-webhook-secret";

fn sign(body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Where the webhooks go.
struct Target<'a> {
    engine: &'a str,
    http: &'a reqwest::Client,
    url: &'a str,
    business: &'a str,
}

/// One open-loop run: `rate` requests a second for `secs` seconds; its
/// figures printed unless `tag` is "warm".
async fn run_rate(to: &Target<'_>, rate: u32, secs: u32, tag: &str) -> anyhow::Result<()> {
    let Target {
        engine,
        http,
        url,
        business,
    } = *to;
    let total = rate * secs;
    let start = Instant::now() + Duration::from_millis(50);
    let gap = Duration::from_secs(1) / rate;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        // Three in ten repeat the request just before (a duplicate
        // delivery of an event already sent): 30%.
        let n = if matches!(i % 10, 3 | 6 | 9) {
            i - 1
        } else {
            i
        };
        let body = serde_json::json!({
            "id": format!("evt-{tag}-{rate}-{n}"),
            "type": "bills.paid",
            "created_at": "2026-11-30T12:00:00Z",
            "business_id": business,
            "object": {"id": format!("bill-{tag}-{n}")},
        })
        .to_string();
        let signature = sign(&body);
        let at = start + gap * i;
        let http = http.clone();
        let url = url.to_owned();
        tokio::time::sleep_until(at.into()).await;
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(&url)
                .header("content-type", "application/json")
                .header("X-Ramp-Webhook-Signature", signature)
                .body(body)
                .send()
                .await;
            let ok = matches!(&res, Ok(r) if r.status().is_success());
            (at.elapsed(), ok)
        }));
    }
    let mut took = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (d, ok) = t.await?;
        took.push(d);
        failed += usize::from(!ok);
    }
    took.sort();
    if tag == "warm" {
        return Ok(());
    }
    println!(
        "[{engine}] {rate:>5}/s for {secs} s: n={:<6} ack p50={:>9.2?} p99={:>9.2?} max={:>9.2?} not 2xx: {failed}",
        took.len(),
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took.last().copied().unwrap_or_default(),
    );
    Ok(())
}

async fn run(engine: &str, secs: u32) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.database_url = support::database(engine, tmp.path()).await?;
    config.data_dir = tmp.path().display().to_string();
    config.ramp_webhook_secret = Some(SECRET.into());
    config.worker = false;
    config.sandbox_living = false;
    config.sandbox_start = Some("2026-11-30".parse()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = Application::build(config, listener).await?;
    let url = format!("http://{}/webhooks/ramp", app.addr);
    let pool = app.state.app.db.pool.clone();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run(rx));
    let business: String = sqlx::query_scalar(
        "select external_id from rail_connection where rail = 'ramp' and status = 'active'
         order by connection_id limit 1",
    )
    .fetch_one(&pool)
    .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let to = Target {
        engine,
        http: &http,
        url: &url,
        business: &business,
    };
    // Warm up (connections opened, statements prepared); not reported.
    run_rate(&to, 200, 1, "warm").await?;
    for rate in [500, 2_000] {
        run_rate(&to, rate, secs, "run").await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = std::env::var("WEBHOOK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    for engine in ["sqlite", "postgres"] {
        run(engine, secs).await?;
    }
    Ok(())
}
