//! The hygiene tray (`hygiene_item`): discrepancies, dead letters and
//! connections to renew, one shape for all.

use super::db::{to_ms, Tx};
use super::{StoreError, StoreResult};
use crate::model::{FirmId, ReasonCode, Severity};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

pub struct NewItem<'a> {
    pub firm_id: &'a str,
    pub client_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    pub severity: Severity,
    pub reason_code: ReasonCode,
    pub detail: &'a str,
    pub at: DateTime<Utc>,
    /// The dead job this item reports (it can be replayed).
    pub job_id: Option<&'a str>,
    /// The person whose act raised it (an override: another admin reviews).
    pub opened_by: Option<&'a str>,
}

/// File an item, in the caller's transaction. A critical item (a failed
/// or returned payment, a duplicate, a broken connection) also enqueues the
/// job that tells the people who asked, so the item and its notice commit
/// together.
pub async fn file(tx: &mut Tx<'_>, item: NewItem<'_>) -> StoreResult<()> {
    let hygiene_id = format!("hyg_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "insert into hygiene_item (hygiene_id, firm_id, client_id, payment_id, severity, reason_code,
            detail, status, created_at, job_id, opened_by)
         values ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10)",
    )
    .bind(&hygiene_id)
    .bind(item.firm_id)
    .bind(item.client_id)
    .bind(item.payment_id)
    .bind(item.severity.as_str())
    .bind(item.reason_code.as_str())
    .bind(item.detail)
    .bind(to_ms(item.at))
    .bind(item.job_id)
    .bind(item.opened_by)
    .execute(&mut **tx)
    .await?;
    if crate::domain::notify::topic_of(item.reason_code).is_some() {
        super::job_queue::enqueue(
            tx,
            &crate::ssr::job_kinds::Job::NotifyItem { hygiene_id },
            item.at,
            item.at,
        )
        .await?;
    }
    Ok(())
}

/// Who closed an item that closed as a consequence of something else: the
/// evidence arriving (`rowcol`, the flag cleared itself) or a person's act
/// that settles it (stopping the payment).
#[derive(Debug, Clone, Copy)]
pub struct ClosedBy<'a> {
    pub by: &'a str,
    pub note: &'a str,
}

/// The closer of a flag that cleared itself.
pub const CLEARED_ITSELF: &str = "rowcol";

/// Resolve a payment's open items for `reason` (the evidence came late, or
/// a person's act settled them).
pub async fn resolve_for_payment(
    conn: &mut AnyConnection,
    payment_id: &str,
    reason: ReasonCode,
    at: DateTime<Utc>,
    closed: ClosedBy<'_>,
) -> StoreResult<()> {
    sqlx::query(
        "update hygiene_item set status = 'resolved', resolved_at = $1, closed_by = $4, close_note = $5
         where payment_id = $2 and reason_code = $3 and status = 'open'",
    )
    .bind(to_ms(at))
    .bind(payment_id)
    .bind(reason.as_str())
    .bind(closed.by)
    .bind(closed.note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Resolve a client's open items for `reason` (the rail was reconnected):
/// they cleared themselves.
pub async fn resolve_for_client(
    conn: &mut AnyConnection,
    client_id: &str,
    reason: ReasonCode,
    at: DateTime<Utc>,
    note: &str,
) -> StoreResult<()> {
    sqlx::query(
        "update hygiene_item set status = 'resolved', resolved_at = $1, closed_by = $4, close_note = $5
         where client_id = $2 and reason_code = $3 and status = 'open'",
    )
    .bind(to_ms(at))
    .bind(client_id)
    .bind(reason.as_str())
    .bind(CLEARED_ITSELF)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the client already has an open item for `reason`.
pub async fn client_has_open(
    conn: &mut AnyConnection,
    client_id: &str,
    reason: ReasonCode,
) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from hygiene_item where client_id = $1 and reason_code = $2 and status = 'open'",
    )
    .bind(client_id)
    .bind(reason.as_str())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// How an advisor closed an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Acted on (a failed payment retried).
    Resolved,
    /// Seen and deliberately left alone.
    Dismissed,
}

impl Closed {
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Resolved => "resolved",
            Closed::Dismissed => "dismissed",
        }
    }
}

/// An open item of the firm, as an action on it needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenItem {
    pub hygiene_id: String,
    pub client_id: Option<String>,
    pub payment_id: Option<String>,
    pub reason_code: String,
    pub detail: String,
    pub job_id: Option<String>,
    pub opened_by: Option<String>,
}

/// The firm's item, if it is still open: `NotFound` for another firm's,
/// `Conflict` for one already closed.
pub async fn open_item(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
    hygiene_id: &str,
) -> StoreResult<OpenItem> {
    let row: Option<(String, OpenItem)> = sqlx::query_as::<_, OpenItemRow>(
        "select hygiene_id, client_id, payment_id, reason_code, detail, status, job_id, opened_by
         from hygiene_item where firm_id = $1 and hygiene_id = $2",
    )
    .bind(firm_id.as_str())
    .bind(hygiene_id)
    .fetch_optional(conn)
    .await?
    .map(|r| (r.status.clone(), r.into_item()));
    match row {
        None => Err(StoreError::NotFound),
        Some((status, item)) if status == "open" => Ok(item),
        Some(_) => Err(StoreError::Conflict("this item is already closed")),
    }
}

#[derive(sqlx::FromRow)]
struct OpenItemRow {
    hygiene_id: String,
    client_id: Option<String>,
    payment_id: Option<String>,
    reason_code: String,
    detail: String,
    status: String,
    job_id: Option<String>,
    opened_by: Option<String>,
}

impl OpenItemRow {
    fn into_item(self) -> OpenItem {
        OpenItem {
            hygiene_id: self.hygiene_id,
            client_id: self.client_id,
            payment_id: self.payment_id,
            reason_code: self.reason_code,
            detail: self.detail,
            job_id: self.job_id,
            opened_by: self.opened_by,
        }
    }
}

/// Close the firm's open item, guarded on it still being open (a second
/// click, or a concurrent one, is a `Conflict` and its transaction does not
/// commit). `by` is the person (their email); `note` what they wrote or
/// what their act was.
pub async fn close(
    tx: &mut Tx<'_>,
    firm_id: &FirmId,
    hygiene_id: &str,
    how: Closed,
    at: DateTime<Utc>,
    closed: ClosedBy<'_>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "update hygiene_item set status = $1, resolved_at = $2, closed_by = $5, close_note = $6
         where firm_id = $3 and hygiene_id = $4 and status = 'open'",
    )
    .bind(how.as_str())
    .bind(to_ms(at))
    .bind(firm_id.as_str())
    .bind(hygiene_id)
    .bind(closed.by)
    .bind(closed.note)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("this item is already closed"))
    }
}

/// An item as a notice about it needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notice {
    pub firm_id: String,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub reason_code: String,
    pub status: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub vendor_name: Option<String>,
}

pub async fn for_notice(conn: &mut AnyConnection, hygiene_id: &str) -> StoreResult<Option<Notice>> {
    Ok(sqlx::query_as(
        "select h.firm_id, h.client_id, c.name as client_name, h.reason_code, h.status,
                p.amount_minor, p.currency, b.vendor_name
         from hygiene_item h left join client c on c.client_id = h.client_id
         left join payment p on p.payment_id = h.payment_id
         left join staged_bill b on b.bill_id = p.bill_id
         where h.hygiene_id = $1",
    )
    .bind(hygiene_id)
    .fetch_optional(conn)
    .await?)
}
