//! `cargo bench -p server --bench audit_export`: the audit export streamed
//! for a year of a busy firm (issue #18 §2): 1,000,000 entries in the demo
//! firm's log on the embedded engine, then `GET /audit/export?format=csv`
//! (and `json`) read to the end by a client that keeps nothing. Prints the
//! time, the bytes and the growth of the process's resident memory while it
//! streams (server, worker and client are one process, so this bounds the
//! server's growth from above). Aim: under 50 MB. Asserts nothing.
//!
//! `AUDIT_EXPORT_ENTRIES=N` seeds another number of entries.

use rowcol::config::Config;
use rowcol::startup::Application;
use std::time::Instant;

/// The process's resident memory now, in KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Rows per insert statement (9 values each, far inside SQLite's limit on
/// bound parameters).
const ROWS_PER_INSERT: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let entries: usize = std::env::var("AUDIT_EXPORT_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.database_url = format!("sqlite://{}/bench.db", tmp.path().display());
    config.demo_password = Some("bench-password".into());
    config.data_dir = tmp.path().display().to_string();
    config.worker = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = Application::build(config, listener).await?;
    let base = format!("http://{}", app.addr);
    let state = app.state.clone();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run(rx));

    // The entries go straight into the table (the export reads rows; it
    // does not re-hash them), in large transactions.
    let pool = &state.app.db.pool;
    let (firm, last): (String, i64) = sqlx::query_as(
        "select f.firm_id, coalesce((select max(seq) from audit_entry a where a.firm_id = f.firm_id), 0)
         from firm f order by f.created_at limit 1",
    )
    .fetch_one(pool)
    .await?;
    let t0 = Instant::now();
    let start_ms = 1_800_000_000_000i64;
    let mut seq = last;
    let mut tx = pool.begin().await?;
    while seq < last + entries as i64 {
        let n = ROWS_PER_INSERT.min((last + entries as i64 - seq) as usize);
        let mut sql = String::from(
            "insert into audit_entry (firm_id, seq, at, actor, action, subject, detail, prev_hash, hash) values ",
        );
        for i in 0..n {
            let b = i * 9;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
        }
        let mut q = sqlx::query(&sql);
        for _ in 0..n {
            seq += 1;
            q = q
                .bind(firm.clone())
                .bind(seq)
                .bind(start_ms + seq * 31_000)
                .bind("advisor@northwind.test")
                .bind("payment.approved")
                .bind(format!("pay_{seq:032x}"))
                .bind(format!(
                    "{{\"amount_minor\":{},\"currency\":\"USD\",\"client_id\":\"cli_bench\",\"policy_version\":3}}",
                    10_000 + seq % 90_000
                ))
                .bind(format!("{:064x}", seq - 1))
                .bind(format!("{seq:064x}"));
        }
        q.execute(&mut *tx).await?;
        if seq % 100_000 == 0 {
            tx.commit().await?;
            tx = pool.begin().await?;
        }
    }
    // The firm's chain head follows, so the sign-in's own entry appends
    // after them.
    sqlx::query("update firm set audit_seq = $1, audit_head = $2 where firm_id = $3")
        .bind(seq)
        .bind(format!("{seq:064x}"))
        .bind(&firm)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    println!("seeded {entries} audit entries in {:.1?}", t0.elapsed());

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = http
        .post(format!("{base}/api/login"))
        .form(&[
            ("email", "viewer@northwind.test"),
            ("password", "bench-password"),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status().is_success() || signed_in.status().is_redirection(),
        "sign-in answered {}: {}",
        signed_in.status(),
        signed_in.text().await.unwrap_or_default()
    );

    for format in ["csv", "json"] {
        let before = rss_kib().unwrap_or(0);
        let mut peak = before;
        let t = Instant::now();
        let mut res = http
            .get(format!("{base}/audit/export?format={format}"))
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "export answered {}",
            res.status()
        );
        let (mut bytes, mut lines) = (0u64, 0u64);
        while let Some(chunk) = res.chunk().await? {
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            peak = peak.max(rss_kib().unwrap_or(0));
        }
        println!(
            "audit export {format:<4} {:>9} bytes, {:>8} newlines in {:>7.1?}; resident memory growth while streaming {:.1} MB (aim < 50 MB)",
            bytes,
            lines,
            t.elapsed(),
            peak.saturating_sub(before) as f64 / 1024.0
        );
    }
    Ok(())
}
