//! The tamper-evident audit log: one SHA-256 hash chain per firm. Each entry
//! hashes a canonical JSON encoding of its fields and the previous entry's
//! hash. The database refuses updates and deletes (triggers in the migration).

use super::db::{from_ms, to_ms, Tx};
use super::StoreResult;
use crate::model::{AuditEntryView, ChainStatus, FirmId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The fields that are hashed, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    firm_id: &'a str,
    seq: i64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    detail: &'a str,
    prev_hash: &'a str,
}

fn entry_hash(c: &Canonical<'_>) -> String {
    // serde_json writes struct fields in declaration order: deterministic.
    let bytes = serde_json::to_vec(c).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// Who did it: a user's email, `rowcol` for the system, or a rail event.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub detail: serde_json::Value,
}

/// Append in the caller's transaction. Bumping the firm's sequence takes the
/// firm row's write lock (PostgreSQL) or the database lock (SQLite), so two
/// appenders cannot fork the chain.
pub async fn record(
    tx: &mut Tx<'_>,
    firm_id: &FirmId,
    at: DateTime<Utc>,
    entry: Entry<'_>,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "update firm set audit_seq = audit_seq + 1 where firm_id = $1 returning audit_seq, audit_head",
    )
    .bind(firm_id.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let seq: i64 = row.try_get("audit_seq")?;
    let prev: String = row.try_get("audit_head")?;
    let detail = entry.detail.to_string();
    let at = to_ms(at);
    let hash = entry_hash(&Canonical {
        firm_id: firm_id.as_str(),
        seq,
        at,
        actor: entry.actor,
        action: entry.action,
        subject: entry.subject,
        detail: &detail,
        prev_hash: &prev,
    });
    sqlx::query(
        "insert into audit_entry (firm_id, seq, at, actor, action, subject, detail, prev_hash, hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(firm_id.as_str())
    .bind(seq)
    .bind(at)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.subject)
    .bind(&detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("update firm set audit_head = $1 where firm_id = $2")
        .bind(&hash)
        .bind(firm_id.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// Re-hash the whole chain of a firm and check every link.
pub async fn verify_chain(pool: &sqlx::AnyPool, firm_id: &FirmId) -> StoreResult<ChainStatus> {
    let rows = sqlx::query(
        "select seq, at, actor, action, subject, detail, prev_hash, hash
         from audit_entry where firm_id = $1 order by seq",
    )
    .bind(firm_id.as_str())
    .fetch_all(pool)
    .await?;
    let head: String = sqlx::query_scalar("select audit_head from firm where firm_id = $1")
        .bind(firm_id.as_str())
        .fetch_one(pool)
        .await?;
    let mut prev = String::new();
    let mut expected_seq = 1;
    for row in &rows {
        let seq: i64 = row.try_get("seq")?;
        let stored_prev: String = row.try_get("prev_hash")?;
        let hash: String = row.try_get("hash")?;
        let detail: String = row.try_get("detail")?;
        let actor: String = row.try_get("actor")?;
        let action: String = row.try_get("action")?;
        let subject: String = row.try_get("subject")?;
        let computed = entry_hash(&Canonical {
            firm_id: firm_id.as_str(),
            seq,
            at: row.try_get("at")?,
            actor: &actor,
            action: &action,
            subject: &subject,
            detail: &detail,
            prev_hash: &stored_prev,
        });
        if seq != expected_seq || stored_prev != prev || computed != hash {
            return Ok(ChainStatus {
                entries: rows.len() as i64,
                ok: false,
                broken_at: Some(seq),
            });
        }
        prev = hash;
        expected_seq += 1;
    }
    // The head stored on the firm must match the last entry, so truncating
    // the tail is detected too.
    let ok = head == prev;
    Ok(ChainStatus {
        entries: rows.len() as i64,
        ok,
        broken_at: if ok { None } else { Some(expected_seq) },
    })
}

pub async fn list(
    pool: &sqlx::AnyPool,
    firm_id: &FirmId,
    limit: i64,
) -> StoreResult<Vec<AuditEntryView>> {
    let rows = sqlx::query(
        "select seq, at, actor, action, subject, detail, hash from audit_entry
         where firm_id = $1 order by seq desc limit $2",
    )
    .bind(firm_id.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntryView {
                seq: r.try_get("seq")?,
                at: from_ms(r.try_get("at")?),
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                subject: r.try_get("subject")?,
                detail: r.try_get("detail")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect()
}
