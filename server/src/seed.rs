//! Sandbox mode: the demo firm, its users and clients, wired to the
//! simulated rails. Idempotent: runs at every start, creates what is missing,
//! and (re)sets the demo users' password to the configured or printed one.

use app::model::{ClientId, FirmId, UserId};
use app::ssr::audit::{self, Entry};
use app::ssr::crypto::{hash_password, Sealer};
use app::ssr::db::{to_ms, Db};
use app::ssr::jobs::{enqueue, Job};
use chrono::{DateTime, Utc};
use sandbox::DemoWorld;

pub const DEMO_USERS: [(&str, &str, &str); 3] = [
    ("admin@northwind.test", "Ada Admin", "admin"),
    ("advisor@northwind.test", "Avery Advisor", "advisor"),
    ("viewer@northwind.test", "Vic Viewer", "viewer"),
];

pub async fn seed_demo(
    db: &Db,
    sealer: &Sealer,
    world: &DemoWorld,
    password: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let existing: Option<String> =
        sqlx::query_scalar("select firm_id from firm where name = 'Northwind Advisors'")
            .fetch_optional(&db.pool)
            .await?;
    let mut tx = db.pool.begin().await?;
    let firm = match existing {
        Some(f) => FirmId::parse(&f)?,
        None => {
            crate::firms::create_firm(
                &mut tx,
                "Northwind Advisors",
                "rowcol",
                serde_json::json!({ "name": "Northwind Advisors", "mode": "sandbox" }),
                now,
            )
            .await?
        }
    };
    for (email, name, role) in DEMO_USERS {
        sqlx::query(
            "insert into app_user (user_id, firm_id, email, name, role, password_hash, created_at)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (email) do update set password_hash = excluded.password_hash",
        )
        .bind(UserId::generate().as_str())
        .bind(firm.as_str())
        .bind(email)
        .bind(name)
        .bind(role)
        .bind(&hash)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
    }
    for c in &world.clients {
        let known: Option<String> = sqlx::query_scalar(
            "select client_id from rail_connection where rail = 'qbo' and external_id = $1",
        )
        .bind(&c.qbo_realm_id)
        .fetch_optional(&mut *tx)
        .await?;
        if known.is_some() {
            continue;
        }
        let client = ClientId::generate();
        sqlx::query("insert into client (client_id, firm_id, name, currency, created_at) values ($1, $2, $3, $4, $5)")
            .bind(client.as_str())
            .bind(firm.as_str())
            .bind(&c.name)
            .bind(&c.currency)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        for (rail, ext, token) in [
            ("qbo", &c.qbo_realm_id, &c.qbo_access_token),
            ("ramp", &c.ramp_business_id, &c.ramp_access_token),
            ("plaid", &c.plaid_item_id, &c.plaid_access_token),
        ] {
            sqlx::query(
                "insert into rail_connection (client_id, rail, external_id, token_sealed) values ($1, $2, $3, $4)",
            )
            .bind(client.as_str())
            .bind(rail)
            .bind(ext)
            .bind(sealer.seal(token.expose()))
            .execute(&mut *tx)
            .await?;
        }
        audit::record(
            &mut tx,
            &firm,
            now,
            Entry {
                actor: "rowcol",
                action: "client.connected",
                subject: client.as_str(),
                detail: serde_json::json!({ "name": c.name, "rails": ["qbo", "ramp", "plaid"] }),
            },
        )
        .await?;
        enqueue(
            &mut tx,
            &Job::SyncClient {
                client_id: client.to_string(),
            },
            now,
            Some(&format!("sync:{client}")),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
