//! Sandbox mode: the demo firm, its users and clients, wired to the
//! simulated rails. Idempotent: runs at every start, creates what is missing,
//! and (re)sets the demo users' password to the configured or printed one.

use app::model::{ConnectionId, Rail, Role};
use app::ssr::crypto::{hash_password, Sealer};
use app::ssr::job_kinds::Job;
use app::ssr::store::audit::{self, Entry};
use app::ssr::store::connections::{ConnectOutcome, NewConnection};
use app::ssr::store::users::{self, NewUser};
use app::ssr::store::{clients, commit, connections, firms, job_queue, Db};
use chrono::{DateTime, Utc};
use sandbox::DemoWorld;

pub const DEMO_FIRM: &str = "Northwind Advisors";

pub const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("admin@northwind.test", "Ada Admin", Role::Admin),
    ("advisor@northwind.test", "Avery Advisor", Role::Advisor),
    ("viewer@northwind.test", "Vic Viewer", Role::Viewer),
];

pub async fn seed_demo(
    db: &Db,
    sealer: &Sealer,
    world: &DemoWorld,
    password: &str,
    unconnected: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let mut tx = db.begin().await?;
    let firm = match firms::find_by_name(&mut tx, DEMO_FIRM).await? {
        Some(f) => f,
        None => {
            firms::create(
                &mut tx,
                DEMO_FIRM,
                "rowcol",
                serde_json::json!({ "name": DEMO_FIRM, "mode": "sandbox" }),
                now,
            )
            .await?
        }
    };
    for (email, name, role) in DEMO_USERS {
        users::create_or_reset_password(
            &mut tx,
            &NewUser {
                firm: &firm,
                email,
                name,
                role,
                password_hash: &hash,
            },
            now,
        )
        .await?;
    }
    // The last `unconnected` companies stay out of the demo firm, for
    // trying "Add a client from QuickBooks".
    let all = world.clients.len();
    let connected = all.saturating_sub(unconnected).max(all.min(2));
    for c in world.clients.iter().take(connected) {
        if connections::client_for_account(&mut tx, Rail::Qbo, &c.qbo_realm_id)
            .await?
            .is_some()
        {
            continue;
        }
        let client = clients::create(&mut tx, &firm, &c.name, &c.currency, now).await?;
        let expires = Some(c.access_expires_at);
        for (rail, ext, token, refresh, expires) in [
            (
                Rail::Qbo,
                &c.qbo_realm_id,
                &c.qbo_access_token,
                Some(&c.qbo_refresh_token),
                expires,
            ),
            (
                Rail::Ramp,
                &c.ramp_business_id,
                &c.ramp_access_token,
                Some(&c.ramp_refresh_token),
                expires,
            ),
            (
                Rail::Plaid,
                &c.plaid_item_id,
                &c.plaid_access_token,
                None,
                None,
            ),
            (
                Rail::Stripe,
                &c.stripe_account_id,
                &c.stripe_access_token,
                Some(&c.stripe_refresh_token),
                expires,
            ),
        ] {
            let id = ConnectionId::generate();
            let refresh_sealed = refresh.map(|r| sealer.seal(r.expose(), id.as_str()));
            let outcome = connections::connect(
                &mut tx,
                &NewConnection {
                    connection_id: &id,
                    firm: &firm,
                    client: &client,
                    rail,
                    external_id: ext,
                    account_name: Some(&c.name),
                    token_sealed: &sealer.seal(token.expose(), id.as_str()),
                    refresh_sealed: refresh_sealed.as_deref(),
                    access_expires_at: expires,
                    refresh_expires_at: None,
                    method: "seed",
                    connected_by: "rowcol",
                },
                now,
            )
            .await?;
            if outcome != ConnectOutcome::Connected {
                anyhow::bail!("seeding {}: {rail} {outcome:?}", c.name);
            }
            // The world's own Ramp webhook subscription for this business.
            if rail == Rail::Ramp && !c.ramp_webhook_subscription_id.is_empty() {
                connections::set_webhook_subscription(
                    &mut tx,
                    id.as_str(),
                    &c.ramp_webhook_subscription_id,
                    &sealer.seal(c.ramp_webhook_secret.expose(), id.as_str()),
                    "active",
                )
                .await?;
            }
        }
        audit::record(
            &mut tx,
            &firm,
            now,
            Entry {
                actor: "rowcol",
                action: "client.connected",
                subject: client.as_str(),
                detail: serde_json::json!({ "name": c.name, "rails": ["qbo", "ramp", "plaid", "stripe"] }),
            },
        )
        .await?;
        job_queue::enqueue(
            &mut tx,
            &Job::SyncClient {
                client_id: client.to_string(),
            },
            now,
            now,
        )
        .await?;
    }
    commit(tx).await?;
    Ok(())
}
