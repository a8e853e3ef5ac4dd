//! The hygiene tray as a person reads it (reads only): a firm's items,
//! filtered by client, severity, reason and state, newest first, each with
//! its payment in words, how it was closed, and the attempts of the job it
//! reports.

use super::db::from_ms;
use super::{corrupt, parse_id as id, StoreResult};
use crate::domain::custody::PaymentState;
use crate::domain::tray::{actions, ItemFacts, ItemStatus};
use crate::model::{
    Currency, FirmId, HygieneItemView, JobAttemptView, Money, ReasonCode, Role, Severity,
    TrayFilter,
};
use sqlx::{AnyConnection, Row};

/// The most items one view shows (the filters narrow the rest).
pub const PAGE: i64 = 200;

/// The person looking: what they may do decides each item's actions.
pub struct Viewer<'a> {
    pub role: Role,
    pub email: &'a str,
}

/// The firm's items the filter selects, newest first, at most [`PAGE`];
/// `true` when more matched.
pub async fn items(
    conn: &mut AnyConnection,
    firm: &FirmId,
    filter: &TrayFilter,
    viewer: &Viewer<'_>,
) -> StoreResult<(Vec<HygieneItemView>, bool)> {
    let mut sql = String::from(
        "select h.hygiene_id, h.client_id, c.name as client_name, h.payment_id, h.severity,
                h.reason_code, h.detail, h.created_at, h.status, h.closed_by, h.close_note,
                h.resolved_at, h.job_id, h.opened_by, p.state as payment_state,
                p.amount_minor, p.currency, b.vendor_name
         from hygiene_item h left join client c on c.client_id = h.client_id
         left join payment p on p.payment_id = h.payment_id
         left join staged_bill b on b.bill_id = p.bill_id
         where h.firm_id = $1",
    );
    let mut binds: Vec<&str> = vec![firm.as_str()];
    let state = match filter.state.as_str() {
        "" => "open",
        "all" => "",
        s => s,
    };
    for (column, value) in [
        ("h.client_id", filter.client.as_str()),
        ("h.severity", filter.severity.as_str()),
        ("h.reason_code", filter.reason.as_str()),
        ("h.status", state),
    ] {
        if !value.is_empty() {
            binds.push(value);
            sql.push_str(&format!(" and {column} = ${}", binds.len()));
        }
    }
    sql.push_str(&format!(
        " order by h.created_at desc, h.hygiene_id limit {}",
        PAGE + 1
    ));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(*b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let more = rows.len() as i64 > PAGE;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().take(PAGE as usize) {
        let pid: Option<String> = r.try_get("payment_id")?;
        let client: Option<String> = r.try_get("client_id")?;
        let payment_state = r
            .try_get::<Option<String>, _>("payment_state")?
            .map(|s| PaymentState::parse(&s).ok_or_else(|| corrupt(&s)))
            .transpose()?;
        let reason = {
            let c: String = r.try_get("reason_code")?;
            ReasonCode::parse(&c).ok_or_else(|| corrupt(&c))?
        };
        let status = {
            let s: String = r.try_get("status")?;
            ItemStatus::parse(&s).ok_or_else(|| corrupt(&s))?
        };
        let job_id: Option<String> = r.try_get("job_id")?;
        let opened_by: Option<String> = r.try_get("opened_by")?;
        let payment_summary = match (
            r.try_get::<Option<i64>, _>("amount_minor")?,
            r.try_get::<Option<String>, _>("currency")?,
        ) {
            (Some(minor), Some(cur)) => {
                let money = Money::new(minor, Currency::parse(&cur).map_err(corrupt)?);
                let vendor: Option<String> = r.try_get("vendor_name")?;
                Some(match vendor {
                    Some(v) => format!("{money} to {v}"),
                    None => money.to_string(),
                })
            }
            _ => None,
        };
        let facts = ItemFacts {
            reason,
            status,
            payment_state,
            has_job: job_id.is_some(),
            raised_by_viewer: opened_by.as_deref() == Some(viewer.email),
        };
        let attempts = match &job_id {
            Some(j) => job_attempts(conn, j).await?,
            None => vec![],
        };
        out.push(HygieneItemView {
            hygiene_id: id(&r.try_get::<String, _>("hygiene_id")?)?,
            client_id: client.map(|c| id(&c)).transpose()?,
            client_name: r.try_get("client_name")?,
            payment_id: pid.map(|p| id(&p)).transpose()?,
            payment_state,
            payment_summary,
            severity: {
                let s: String = r.try_get("severity")?;
                Severity::parse(&s).ok_or_else(|| corrupt(&s))?
            },
            reason_code: reason,
            detail: r.try_get("detail")?,
            created_at: from_ms(r.try_get("created_at")?),
            status,
            closed_by: r.try_get("closed_by")?,
            close_note: r.try_get("close_note")?,
            closed_at: r.try_get::<Option<i64>, _>("resolved_at")?.map(from_ms),
            actions: actions(&facts, viewer.role),
            attempts,
        });
    }
    Ok((out, more))
}

async fn job_attempts(conn: &mut AnyConnection, job_id: &str) -> StoreResult<Vec<JobAttemptView>> {
    let (rows, _) = super::job_queue::attempts(conn, job_id).await?;
    Ok(rows
        .into_iter()
        .map(|a| JobAttemptView {
            attempt: a.attempt,
            at: from_ms(a.finished_at),
            outcome: a.outcome,
            error: match (a.error_code, a.error) {
                (Some(c), Some(e)) => Some(format!("{e} ({c})")),
                (c, e) => e.or(c),
            },
        })
        .collect())
}
