//! Creating a firm: the tenant row and the first entry of its audit chain.

use app::model::FirmId;
use app::ssr::audit::{self, Entry};
use app::ssr::db::{to_ms, Tx};
use chrono::{DateTime, Utc};

pub async fn create_firm(
    tx: &mut Tx<'_>,
    name: &str,
    actor: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<FirmId, sqlx::Error> {
    let firm = FirmId::generate();
    sqlx::query("insert into firm (firm_id, name, created_at) values ($1, $2, $3)")
        .bind(firm.as_str())
        .bind(name)
        .bind(to_ms(now))
        .execute(&mut **tx)
        .await?;
    audit::record(
        tx,
        &firm,
        now,
        Entry {
            actor,
            action: "firm.created",
            subject: firm.as_str(),
            detail,
        },
    )
    .await?;
    Ok(firm)
}
