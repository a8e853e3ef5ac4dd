//! Process a stored QBO webhook. Its entities are only ids and it may come
//! again or merged with others, so nothing here believes the news: every
//! client connected to a realm the notification names has its QBO bills
//! re-read, once however many entities changed (the bank and Ramp are not
//! read: nothing says they changed). A realm no client is
//! connected to is a no-op, logged.

use super::JobError;
use crate::services::Services;
use crate::webhooks::qbo::realms_of;
use app::model::Rail;
use app::ssr::job_kinds::Job;
use app::ssr::store::{commit, connections, job_queue};
use serde_json::Value;

pub async fn process(st: &Services, body: &Value) -> Result<String, JobError> {
    let realms = realms_of(body);
    if realms.is_empty() {
        return Err(JobError::fatal("malformed", "QBO webhook names no realm"));
    }
    let mut clients: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    {
        let mut conn = st.db.acquire().await?;
        for realm in &realms {
            let found = connections::clients_for_account(&mut conn, Rail::Qbo, realm).await?;
            if found.is_empty() {
                unknown.push(realm.as_str());
            }
            for c in found {
                if !clients.contains(&c) {
                    clients.push(c);
                }
            }
        }
    }
    if !unknown.is_empty() {
        tracing::info!(realms = ?unknown, "QBO webhook for realms no client is connected to");
    }
    if clients.is_empty() {
        return Ok(format!(
            "ignored: realm {} is not connected",
            unknown.join(", ")
        ));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    for client_id in &clients {
        job_queue::enqueue(
            &mut tx,
            &Job::SyncLedger {
                client_id: client_id.clone(),
            },
            now,
            now,
        )
        .await?;
    }
    commit(tx).await?;
    Ok(format!("ledger sync queued for {}", clients.join(", ")))
}
