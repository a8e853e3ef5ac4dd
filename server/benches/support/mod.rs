//! What the decision and webhook benches share: a database per engine
//! and percentiles. (A folder, not `benches/support.rs`: Cargo would take
//! that for a bench of its own.)

use std::time::Duration;

/// The `q` quantile (0.0–1.0) of sorted samples; zero for none.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// A fresh database for `engine`: a SQLite file under `tmp`, or a new
/// PostgreSQL database on `ROWCOL_TEST_PG_URL` (default the local server;
/// `make test` drops the `rowcol_t_` ones it leaves).
pub async fn database(engine: &str, tmp: &std::path::Path) -> anyhow::Result<String> {
    if engine == "sqlite" {
        return Ok(format!("sqlite://{}/bench.db", tmp.display()));
    }
    let admin = std::env::var("ROWCOL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("rowcol_t_bench_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin).await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&pool)
        .await?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}
