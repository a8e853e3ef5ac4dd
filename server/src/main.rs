//! `rowcol`: thin entry point. Parse configuration, set up logging, and hand
//! over to `startup` (or run a one-off command).

use clap::Parser;
use rowcol::config::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .init();
    let cli = Cli::parse();
    rowcol::cli::run(cli).await
}
