//! Ramp subscription secrets held in memory (issue #19 §0). Checking a
//! delivery's signature must not cost a database round trip: on SQLite a
//! read per request queued behind the one writer and the receiver
//! saturated at ~1,200 deliveries a second, and an unsigned or badly signed
//! request could make the database work at all. So the secrets are
//! unsealed once and kept here by Ramp business id:
//! - loaded at start;
//! - reloaded by this instance right after it stores or forgets a
//!   subscription (subscribe, disconnect);
//! - reloaded every [`RELOAD_EVERY`], for changes another instance made
//!   (several instances on PostgreSQL). A delivery signed with a secret
//!   this instance has not loaded yet is refused (401) and Ramp delivers
//!   it again later; the configured secret is always tried first.

use app::ssr::crypto::Sealer;
use app::ssr::store::{connections, Db, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How often every instance re-reads the subscriptions' secrets.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Secret bytes by Ramp business id.
type ByBusiness = HashMap<String, Vec<Arc<[u8]>>>;

#[derive(Default)]
pub struct RampSecrets {
    by_business: RwLock<ByBusiness>,
}

impl std::fmt::Debug for RampSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        f.write_str("RampSecrets([redacted])")
    }
}

impl RampSecrets {
    /// The secrets of `business`'s subscriptions (none if unknown). Memory
    /// only: never a database read.
    pub fn of(&self, business: &str) -> Vec<Arc<[u8]>> {
        self.by_business
            .read()
            .map(|m| m.get(business).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Re-read every Ramp subscription secret and replace what is held. A
    /// secret that does not unseal (another key's) is skipped.
    pub async fn reload(&self, db: &Db, sealer: &Sealer) -> StoreResult<()> {
        let rows = {
            let mut conn = db.acquire().await?;
            connections::all_webhook_secrets(&mut conn).await?
        };
        let mut fresh: ByBusiness = HashMap::new();
        for (connection_id, business, sealed) in rows {
            if let Ok(secret) = sealer.open(&sealed, &connection_id) {
                fresh
                    .entry(business)
                    .or_default()
                    .push(Arc::from(secret.into_bytes()));
            }
        }
        if let Ok(mut held) = self.by_business.write() {
            *held = fresh;
        }
        Ok(())
    }

    /// [`reload`](Self::reload), logging a failure: the secrets held stay
    /// as they were, and the next reload tries again.
    pub async fn reload_logged(&self, db: &Db, sealer: &Sealer) {
        if let Err(e) = self.reload(db, sealer).await {
            tracing::warn!(error = %e, "reloading Ramp webhook secrets failed");
        }
    }
}
