//! The simulators alone, on a local port: what the official client
//! libraries are judged against (`scripts/judges.sh`, `judges/`).
//!
//! `cargo run -p sandbox --example serve -- [PORT]` (0 or nothing: any free
//! port). Prints one line, `listening http://127.0.0.1:PORT/sandbox`, once
//! it accepts connections; reads the credentials at `/control/credentials`
//! under that base. The world starts on `ROWCOL_SANDBOX_START` (a date,
//! default 2026-11-28, so runs do not depend on today) with
//! `ROWCOL_SANDBOX_CLIENTS` clients (default 3). State lives in memory.
//! The Stripe API is also served at the root of the port (`/v1/...`, same
//! routes as `/sandbox/stripe/v1/...`), for Stripe's Node library, which
//! takes no path prefix.

use clock::Clock;
use sandbox::{MemoryStore, Sandbox, SandboxConfig, Secret};
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p
            .parse()
            .map_err(|_| anyhow::anyhow!("PORT must be a number"))?,
        None => 0,
    };
    let start: chrono::NaiveDate = std::env::var("ROWCOL_SANDBOX_START")
        .unwrap_or_else(|_| "2026-11-28".into())
        .parse()
        .map_err(|e| anyhow::anyhow!("ROWCOL_SANDBOX_START: {e}"))?;
    let clients: usize = std::env::var("ROWCOL_SANDBOX_CLIENTS")
        .unwrap_or_else(|_| "3".into())
        .parse()
        .map_err(|e| anyhow::anyhow!("ROWCOL_SANDBOX_CLIENTS: {e}"))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}/sandbox", listener.local_addr()?);
    let config = SandboxConfig {
        // No receiver: webhooks stay queued (readable through the control API).
        ramp_webhook_url: String::new(),
        ramp_webhook_secret: Secret::new("whsec_judges"),
        qbo_webhook_url: String::new(),
        qbo_webhook_verifier: Secret::new("qbo_verifier_test"),
        qbo_webhook_format: Default::default(),
        plaid_client_id: "plaid_client_judges".into(),
        plaid_secret: Secret::new("plaid_secret_judges"),
        seed: sandbox::world::DEFAULT_SEED,
        start: Some(start),
        clients,
        // The judges read and write a world that changes only as they do.
        living: false,
        public_base: base.clone(),
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
    };
    let sb = Sandbox::start(Clock::system(), Arc::new(MemoryStore::new()), config).await?;
    // Stripe's routes also at the root (`/v1/...`): the Node library cannot
    // be given a path prefix, only host, port and protocol.
    let app = axum::Router::new()
        .nest("/sandbox", sb.router())
        .merge(sb.stripe_root_router());
    println!("listening {base}");
    axum::serve(listener, app).await?;
    Ok(())
}
