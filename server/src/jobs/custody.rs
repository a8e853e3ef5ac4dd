//! Moving a payment along its chain of custody, in the caller's transaction:
//! the custody step, the state change (only ever forward) and the audit
//! entry land together or not at all.

use app::domain::custody::{transition, PaymentState, Transition};
use app::model::FirmId;
use app::ssr::audit::{self, Entry};
use app::ssr::db::{to_ms, Tx};
use chrono::{DateTime, Utc};
use sqlx::Row;

pub struct Step<'a> {
    pub payment_id: &'a str,
    pub to: PaymentState,
    pub owner: &'a str,
    pub actor: &'a str,
    pub evidence: String,
    pub at: DateTime<Utc>,
}

/// Returns true when the step was new (recorded now).
pub async fn record_step(tx: &mut Tx<'_>, step: Step<'_>) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("select firm_id, state from payment where payment_id = $1")
        .bind(step.payment_id)
        .fetch_one(&mut **tx)
        .await?;
    let firm: String = row.try_get("firm_id")?;
    let current =
        PaymentState::parse(&row.try_get::<String, _>("state")?).unwrap_or(PaymentState::Approved);
    let decision = transition(current, step.to);
    if decision == Transition::Refuse {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "insert into custody_event (payment_id, state, owner, actor, evidence, at)
         values ($1, $2, $3, $4, $5, $6) on conflict (payment_id, state) do nothing",
    )
    .bind(step.payment_id)
    .bind(step.to.as_str())
    .bind(step.owner)
    .bind(step.actor)
    .bind(&step.evidence)
    .bind(to_ms(step.at))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    if decision == Transition::Advance {
        sqlx::query("update payment set state = $1, updated_at = $2 where payment_id = $3")
            .bind(step.to.as_str())
            .bind(to_ms(step.at))
            .bind(step.payment_id)
            .execute(&mut **tx)
            .await?;
    }
    let firm = FirmId::parse(&firm).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    audit::record(
        tx,
        &firm,
        step.at,
        Entry {
            actor: step.actor,
            action: &format!("payment.{}", step.to.as_str()),
            subject: step.payment_id,
            detail: serde_json::json!({ "owner": step.owner, "evidence": step.evidence }),
        },
    )
    .await?;
    Ok(true)
}

/// Open (or keep) a discrepancy on a payment: sets its flag and files one
/// hygiene item per reason.
pub async fn flag(
    tx: &mut Tx<'_>,
    payment_id: &str,
    reason: &str,
    severity: &str,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let row =
        sqlx::query("select firm_id, client_id, flag_reason from payment where payment_id = $1")
            .bind(payment_id)
            .fetch_one(&mut **tx)
            .await?;
    let existing: Option<String> = row.try_get("flag_reason")?;
    if existing.as_deref() == Some(reason) {
        return Ok(());
    }
    let firm: String = row.try_get("firm_id")?;
    let client: String = row.try_get("client_id")?;
    sqlx::query("update payment set flag_reason = $1, updated_at = $2 where payment_id = $3")
        .bind(reason)
        .bind(to_ms(at))
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    crate::hygiene::file(
        tx,
        crate::hygiene::NewItem {
            firm_id: &firm,
            client_id: Some(&client),
            payment_id: Some(payment_id),
            severity,
            reason_code: reason,
            detail,
            at,
        },
    )
    .await?;
    let firm = FirmId::parse(&firm).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    audit::record(
        tx,
        &firm,
        at,
        Entry {
            actor: "rowcol",
            action: "payment.flagged",
            subject: payment_id,
            detail: serde_json::json!({ "reason": reason, "severity": severity, "detail": detail }),
        },
    )
    .await?;
    Ok(())
}

/// Late evidence arrived: clear a soft flag and resolve its hygiene items.
pub async fn clear_flag(
    tx: &mut Tx<'_>,
    payment_id: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("update payment set flag_reason = null where payment_id = $1 and flag_reason = $2")
        .bind(payment_id)
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "update hygiene_item set status = 'resolved', resolved_at = $1
         where payment_id = $2 and reason_code = $3 and status = 'open'",
    )
    .bind(to_ms(at))
    .bind(payment_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
