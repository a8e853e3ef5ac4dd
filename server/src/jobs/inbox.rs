//! Process a stored Ramp webhook. Payloads are thin, so the bill is re-read
//! from Ramp; an event never moves a payment backwards.

use super::custody::{record_step, Step};
use super::JobError;
use crate::connections::rail_auth;
use crate::rails::RampBillStatus;
use crate::startup::ServerState;
use app::domain::custody::PaymentState;
use app::ssr::db::to_ms;
use app::ssr::jobs::{enqueue, Job};
use serde_json::Value;
use sqlx::Row;

pub async fn run(st: &ServerState, inbox_id: &str) -> Result<(), JobError> {
    let row = sqlx::query(
        "select event_id, event_type, body, status from webhook_inbox where inbox_id = $1",
    )
    .bind(inbox_id)
    .fetch_optional(&st.app.db.pool)
    .await?
    .ok_or_else(|| JobError::fatal("not_found", "inbox row vanished"))?;
    if row.try_get::<String, _>("status")? != "received" {
        return Ok(());
    }
    let event_id: String = row.try_get("event_id")?;
    let event_type: String = row.try_get("event_type")?;
    let body: Value = serde_json::from_str(&row.try_get::<String, _>("body")?)
        .map_err(|e| JobError::fatal("malformed", e.to_string()))?;
    let outcome = match event_type.as_str() {
        "bills.paid" => bill_paid(st, &event_id, &body).await?,
        other => format!("ignored: {other} is not handled"),
    };
    sqlx::query(
        "update webhook_inbox set status = 'processed', processed_at = $1 where inbox_id = $2",
    )
    .bind(to_ms(st.app.clock.now()))
    .bind(inbox_id)
    .execute(&st.app.db.pool)
    .await?;
    tracing::info!(event_id, event_type, outcome, "webhook processed");
    Ok(())
}

async fn bill_paid(st: &ServerState, event_id: &str, body: &Value) -> Result<String, JobError> {
    let business = body
        .get("business_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bill_id = body
        .pointer("/object/id")
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::fatal("malformed", "bills.paid without object.id"))?;
    // Which client's Ramp business is this? Then which payment?
    let found = sqlx::query(
        "select p.payment_id, p.client_id from payment p
         join rail_connection c on c.client_id = p.client_id and c.rail = 'ramp'
         where c.external_id = $1 and p.ramp_bill_id = $2",
    )
    .bind(business)
    .bind(bill_id)
    .fetch_optional(&st.app.db.pool)
    .await?;
    let Some(found) = found else {
        // Paid before our release recorded the bill id (early event), or a
        // bill RowCol did not create. Re-read by remote_id below if possible.
        return early_or_foreign(st, event_id, business, bill_id).await;
    };
    let payment_id: String = found.try_get("payment_id")?;
    let client_id: String = found.try_get("client_id")?;
    apply_paid(st, event_id, &payment_id, &client_id, bill_id).await
}

/// The event arrived before the release job stored Ramp's bill id: read the
/// bill, and if its `remote_id` is one of our payments, take it from there.
async fn early_or_foreign(
    st: &ServerState,
    event_id: &str,
    business: &str,
    bill_id: &str,
) -> Result<String, JobError> {
    let conn = sqlx::query(
        "select client_id from rail_connection where rail = 'ramp' and external_id = $1",
    )
    .bind(business)
    .fetch_optional(&st.app.db.pool)
    .await?;
    let Some(conn) = conn else {
        return Ok(format!("ignored: unknown Ramp business {business}"));
    };
    let client_id: String = conn.try_get("client_id")?;
    let auth = rail_auth(&st.app, &client_id, "ramp").await?;
    let bill = st.rails.bill_pay.get_bill(&auth, bill_id).await?;
    let Some(remote) = bill.remote_id else {
        return Ok("ignored: bill not created by RowCol".into());
    };
    let owned =
        sqlx::query("select payment_id from payment where payment_id = $1 and client_id = $2")
            .bind(&remote)
            .bind(&client_id)
            .fetch_optional(&st.app.db.pool)
            .await?;
    if owned.is_none() {
        return Ok("ignored: remote_id is not a RowCol payment".into());
    }
    sqlx::query(
        "update payment set ramp_bill_id = $1 where payment_id = $2 and ramp_bill_id is null",
    )
    .bind(bill_id)
    .bind(&remote)
    .execute(&st.app.db.pool)
    .await?;
    apply_paid(st, event_id, &remote, &client_id, bill_id).await
}

async fn apply_paid(
    st: &ServerState,
    event_id: &str,
    payment_id: &str,
    client_id: &str,
    bill_id: &str,
) -> Result<String, JobError> {
    let auth = rail_auth(&st.app, client_id, "ramp").await?;
    let bill = st.rails.bill_pay.get_bill(&auth, bill_id).await?;
    if bill.status != RampBillStatus::Paid {
        return Err(JobError::retry(
            "not_paid_yet",
            "Ramp does not show the bill paid yet",
        ));
    }
    let now = st.app.clock.now();
    let paid_date = bill
        .payment_date
        .or(bill.paid_at.map(|t| t.date_naive()))
        .unwrap_or(now.date_naive());
    let mut tx = st.app.db.pool.begin().await?;
    sqlx::query("update payment set paid_date = coalesce(paid_date, $1) where payment_id = $2")
        .bind(paid_date.to_string())
        .bind(payment_id)
        .execute(&mut *tx)
        .await?;
    let new = record_step(
        &mut tx,
        Step {
            payment_id,
            to: PaymentState::Paid,
            owner: "Ramp",
            actor: &if event_id == "poll" {
                "rowcol:reconciler".to_owned()
            } else {
                format!("ramp:event:{event_id}")
            },
            evidence: format!(
                "{}; Ramp bill {bill_id} PAID {} on {paid_date}{}",
                if event_id == "poll" {
                    "no webhook: found paid by polling Ramp".to_owned()
                } else {
                    format!("bills.paid {event_id}")
                },
                bill.amount,
                bill.trace_id
                    .as_deref()
                    .map(|t| format!(", trace {t}"))
                    .unwrap_or_default()
            ),
            at: now,
        },
    )
    .await?;
    enqueue(
        &mut tx,
        &Job::VerifyPayment {
            payment_id: payment_id.to_owned(),
        },
        now,
        Some(&format!("verify:{payment_id}")),
    )
    .await?;
    tx.commit().await?;
    Ok(if new {
        "payment marked paid".into()
    } else {
        "already paid".into()
    })
}

/// The reconciler for missed webhooks: every released payment whose arrival
/// date has come is re-read on Ramp; a bill Ramp shows paid moves to `paid`
/// exactly as the webhook would have moved it. Returns how many moved.
pub async fn reconcile_released(st: &ServerState) -> Result<usize, JobError> {
    let due = sqlx::query(
        "select payment_id, client_id, ramp_bill_id from payment
         where state = 'released' and ramp_bill_id is not null and payment_arrival_date <= $1
         order by payment_arrival_date limit 200",
    )
    .bind(st.app.clock.today().to_string())
    .fetch_all(&st.app.db.pool)
    .await?;
    let mut moved = 0;
    for r in due {
        let payment_id: String = r.try_get("payment_id")?;
        let client_id: String = r.try_get("client_id")?;
        let bill_id: String = r.try_get("ramp_bill_id")?;
        match apply_paid(st, "poll", &payment_id, &client_id, &bill_id).await {
            Ok(_) => moved += 1,
            // Not paid yet on Ramp: look again next sweep.
            Err(JobError::Retry {
                code: "not_paid_yet",
                ..
            }) => {}
            Err(e) => tracing::warn!(payment = %payment_id, error = %e, "reconcile failed"),
        }
    }
    Ok(moved)
}
