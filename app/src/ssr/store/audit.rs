//! The tamper-evident audit log: one SHA-256 hash chain per firm. Each entry
//! hashes a canonical JSON encoding of its fields and the previous entry's
//! hash. The database refuses updates and deletes (triggers in the migration).

use super::db::{to_ms, Tx};
use super::StoreResult;
use crate::model::{ChainStatus, FirmId};
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

/// Verify a firm's chain incrementally: only the entries after the last
/// verified checkpoint are re-hashed, and when they hold the checkpoint
/// advances to the head. The first link after the checkpoint must chain to
/// the checkpoint's stored hash, so replacing the checkpointed entry's hash
/// (or rewriting history and re-hashing from there) breaks the next link.
/// Content edits to entries at or before the checkpoint are not re-hashed
/// here: [`verify_chain_full`] re-hashes everything (the audit page's
/// `full` option). A broken chain never advances the checkpoint, so every
/// later view still reports it.
pub async fn verify_chain(pool: &sqlx::AnyPool, firm_id: &FirmId) -> StoreResult<ChainStatus> {
    verify(pool, firm_id, false).await
}

/// Re-hash the whole chain of a firm from its first entry, ignoring the
/// checkpoint (which still advances if the chain holds).
pub async fn verify_chain_full(pool: &sqlx::AnyPool, firm_id: &FirmId) -> StoreResult<ChainStatus> {
    verify(pool, firm_id, true).await
}

/// One consistent read of the chain: the head (`firm.audit_seq`,
/// `audit_head`) first, then the entries up to that head only, all in one
/// transaction (REPEATABLE READ on PostgreSQL: one snapshot for every
/// statement; SQLite's read transaction is a snapshot too). Even without
/// the snapshot the read could not see a false break: an entry and the head
/// naming it commit together, and entries up to a committed head never
/// change, so a concurrent append after the head was read is simply not
/// looked at.
async fn verify(pool: &sqlx::AnyPool, firm_id: &FirmId, full: bool) -> StoreResult<ChainStatus> {
    let mut tx = pool.begin().await?;
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("set transaction isolation level repeatable read")
            .execute(&mut *tx)
            .await?;
    }
    let head = sqlx::query("select audit_seq, audit_head from firm where firm_id = $1")
        .bind(firm_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let head_seq: i64 = head.try_get("audit_seq")?;
    let head_hash: String = head.try_get("audit_head")?;
    let checkpoint = if full {
        None
    } else {
        sqlx::query("select seq, hash from audit_checkpoint where firm_id = $1")
            .bind(firm_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
    };
    let (from_seq, from_hash): (i64, String) = match &checkpoint {
        Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
        None => (0, String::new()),
    };
    let rows = sqlx::query(
        "select seq, at, actor, action, subject, detail, prev_hash, hash
         from audit_entry where firm_id = $1 and seq > $2 and seq <= $3 order by seq",
    )
    .bind(firm_id.as_str())
    .bind(from_seq)
    .bind(head_seq)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let broken = |at: i64, problem: String| ChainStatus {
        entries: head_seq,
        ok: false,
        broken_at: Some(at),
        problem: Some(problem),
    };
    // A head behind the checkpoint: the tail was cut after it was verified.
    if from_seq > head_seq {
        return Ok(broken(
            head_seq + 1,
            format!(
                "the log ends at entry {head_seq}, before entry {from_seq} that was verified: \
                 entries were removed from its end"
            ),
        ));
    }
    let mut prev = from_hash;
    let mut expected_seq = from_seq + 1;
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
        if seq != expected_seq {
            return Ok(broken(
                expected_seq,
                format!("entry {expected_seq} is missing (the next one is entry {seq})"),
            ));
        }
        if stored_prev != prev {
            return Ok(broken(
                seq,
                format!(
                    "entry {seq}'s link to entry {} does not match that entry's hash",
                    seq - 1
                ),
            ));
        }
        if computed != hash {
            return Ok(broken(
                seq,
                format!("entry {seq}'s contents do not match its hash: it was changed after it was written"),
            ));
        }
        prev = hash;
        expected_seq += 1;
    }
    // Every entry up to the head is there, and the head stored on the firm
    // matches the last one, so cutting the tail is detected too.
    if expected_seq != head_seq + 1 {
        return Ok(broken(
            expected_seq,
            format!(
                "entry {expected_seq} is missing: the firm's head says the log has {head_seq} entries"
            ),
        ));
    }
    if head_hash != prev {
        return Ok(broken(
            head_seq,
            format!("the firm's stored head does not match entry {head_seq}'s hash"),
        ));
    }
    if head_seq > from_seq {
        advance_checkpoint(pool, firm_id, head_seq, &head_hash).await?;
    }
    Ok(ChainStatus {
        entries: head_seq,
        ok: true,
        broken_at: None,
        problem: None,
    })
}

/// Move the firm's checkpoint forward (never back: two concurrent viewers
/// may both verify; the further one wins).
async fn advance_checkpoint(
    pool: &sqlx::AnyPool,
    firm_id: &FirmId,
    seq: i64,
    hash: &str,
) -> StoreResult<()> {
    sqlx::query(
        "insert into audit_checkpoint (firm_id, seq, hash, verified_at) values ($1, $2, $3, $4)
         on conflict (firm_id) do update set seq = excluded.seq, hash = excluded.hash,
            verified_at = excluded.verified_at
         where audit_checkpoint.seq < excluded.seq",
    )
    .bind(firm_id.as_str())
    .bind(seq)
    .bind(hash)
    .bind(to_ms(Utc::now()))
    .execute(pool)
    .await?;
    Ok(())
}

/// The firm's verified checkpoint: `(seq, hash)`, if any view verified one.
pub async fn checkpoint(
    pool: &sqlx::AnyPool,
    firm_id: &FirmId,
) -> StoreResult<Option<(i64, String)>> {
    Ok(
        sqlx::query_as("select seq, hash from audit_checkpoint where firm_id = $1")
            .bind(firm_id.as_str())
            .fetch_optional(pool)
            .await?,
    )
}

/// The firm's chain head as the firm row stores it: `(seq, hash)`.
pub async fn head(conn: &mut sqlx::AnyConnection, firm_id: &FirmId) -> StoreResult<(i64, String)> {
    let row = sqlx::query("select audit_seq, audit_head from firm where firm_id = $1")
        .bind(firm_id.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or(super::StoreError::NotFound)?;
    Ok((row.try_get("audit_seq")?, row.try_get("audit_head")?))
}

/// The stored hash of the firm's entry `seq`, if it exists.
pub async fn stored_hash(
    conn: &mut sqlx::AnyConnection,
    firm_id: &FirmId,
    seq: i64,
) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("select hash from audit_entry where firm_id = $1 and seq = $2")
            .bind(firm_id.as_str())
            .bind(seq)
            .fetch_optional(conn)
            .await?,
    )
}

/// A LIKE pattern for a detail naming client `c`. Detail is compact JSON
/// (serde_json): a client named in it reads `"client_id":"cli_…"` exactly.
/// LIKE's wildcards in the id (its `_` among them) are escaped, not dropped.
fn names_client(c: &str) -> String {
    let escaped = c
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%\"client_id\":\"{escaped}\"%")
}

/// What the audit page shows: one firm's entries, newest first, before
/// `before_seq` (keyset paging), narrowed by the export's filters and by the
/// actor (exactly) and the actor's kind.
#[derive(Debug, Clone, Default)]
pub struct PageFilter {
    pub base: ExportFilter,
    pub actor: Option<String>,
    pub actor_kind: Option<crate::model::ActorKind>,
}

/// SQL for an actor's kind, as [`crate::model::ActorKind::of`] decides it.
fn actor_kind_sql(kind: crate::model::ActorKind) -> &'static str {
    use crate::model::ActorKind;
    match kind {
        ActorKind::User => "e.actor like '%@%'",
        ActorKind::Sync => "e.actor = 'rowcol:sync'",
        ActorKind::System => {
            "e.actor not like '%@%' and e.actor <> 'rowcol:sync' \
             and (e.actor = 'rowcol' or e.actor like 'rowcol:%')"
        }
        ActorKind::Rail => {
            "e.actor not like '%@%' and e.actor <> 'rowcol' and e.actor not like 'rowcol:%'"
        }
    }
}

/// One page of the audit page: at most `limit` entries older than
/// `before_seq` (all when `None`), newest first.
pub async fn page(
    conn: &mut sqlx::AnyConnection,
    firm_id: &FirmId,
    filter: &PageFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<ExportRow>> {
    let f = &filter.base;
    let named = f.client_id.as_deref().map(names_client);
    let kind = filter
        .actor_kind
        .map(|k| format!(" and ({})", actor_kind_sql(k)))
        .unwrap_or_default();
    let sql = format!(
        "select seq, at, actor, action, subject, detail, prev_hash, hash from audit_entry e
         where e.firm_id = $1 and e.seq < $2
           and ($3 is null or e.subject = $3 or e.detail like $4 escape '\\'
                or e.subject in (select p.payment_id from payment p
                                 where p.client_id = $3 and p.firm_id = $1))
           and ($5 is null or e.action = $5)
           and ($6 is null or e.at >= $6)
           and ($7 is null or e.at < $7)
           and ($8 is null or e.actor = $8){kind}
         order by e.seq desc limit $9"
    );
    Ok(sqlx::query_as(&sql)
        .bind(firm_id.as_str())
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(f.client_id.as_deref())
        .bind(named.as_deref())
        .bind(f.action.as_deref())
        .bind(f.from_ms)
        .bind(f.until_ms)
        .bind(filter.actor.as_deref())
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// What an export reads: one firm's entries after `after_seq`, oldest
/// first, narrowed by the filters the database can apply.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Entries about this client: its own, its payments', and any whose
    /// detail names it.
    pub client_id: Option<String>,
    pub action: Option<String>,
    /// Unix ms, inclusive.
    pub from_ms: Option<i64>,
    /// Unix ms, exclusive.
    pub until_ms: Option<i64>,
}

/// An entry as exported: the hashed fields exactly as hashed (`at` in unix
/// ms, `detail` as the stored text), so the chain can be re-verified from
/// the file.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// One page of an export (keyset on `seq`, so a page costs the same at
/// the millionth entry as at the first).
pub async fn export_page(
    conn: &mut sqlx::AnyConnection,
    firm_id: &FirmId,
    filter: &ExportFilter,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<ExportRow>> {
    let named = filter.client_id.as_deref().map(names_client);
    Ok(sqlx::query_as(
        "select seq, at, actor, action, subject, detail, prev_hash, hash from audit_entry e
         where e.firm_id = $1 and e.seq > $2
           and ($3 is null or e.subject = $3 or e.detail like $4 escape '\\'
                or e.subject in (select p.payment_id from payment p
                                 where p.client_id = $3 and p.firm_id = $1))
           and ($5 is null or e.action = $5)
           and ($6 is null or e.at >= $6)
           and ($7 is null or e.at < $7)
         order by e.seq limit $8",
    )
    .bind(firm_id.as_str())
    .bind(after_seq)
    .bind(filter.client_id.as_deref())
    .bind(named.as_deref())
    .bind(filter.action.as_deref())
    .bind(filter.from_ms)
    .bind(filter.until_ms)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
