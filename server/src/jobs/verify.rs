//! Verify: cross-check a paid payment against the ledger (QBO BillPayment)
//! and the bank (Plaid transaction), advancing it to `recorded` and
//! `verified`, or flagging a discrepancy for the hygiene tray.

use super::custody::{clear_flag, flag, record_step, Step};
use super::JobError;
use crate::connections::rail_auth;
use crate::startup::ServerState;
use app::domain::calendar::add_business_days;
use app::domain::custody::PaymentState;
use app::model::{Currency, Money};
use app::ssr::jobs::{enqueue, Job};
use chrono::{Duration, NaiveDate};
use sqlx::Row;

/// Business days after the paid date within which the bank must show it.
pub const CASH_WINDOW_BUSINESS_DAYS: u32 = 5;
/// Hours after paid within which QBO must show the BillPayment.
pub const LEDGER_WINDOW_HOURS: i64 = 24;

pub async fn run(st: &ServerState, payment_id: &str) -> Result<(), JobError> {
    let row = sqlx::query(
        "select p.client_id, p.state, p.amount_minor, p.currency, p.paid_date, p.flag_reason,
                b.qbo_bill_id
         from payment p join staged_bill b on b.bill_id = p.bill_id where p.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(&st.app.db.pool)
    .await?
    .ok_or_else(|| JobError::fatal("not_found", "payment vanished"))?;
    let state =
        PaymentState::parse(&row.try_get::<String, _>("state")?).unwrap_or(PaymentState::Approved);
    if state == PaymentState::Verified {
        return Ok(());
    }
    let client_id: String = row.try_get("client_id")?;
    let currency = Currency::parse(&row.try_get::<String, _>("currency")?)
        .map_err(|e| JobError::fatal("bad_currency", e.to_string()))?;
    let amount = Money::new(row.try_get("amount_minor")?, currency);
    let paid_date: NaiveDate = row
        .try_get::<Option<String>, _>("paid_date")?
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| JobError::retry("not_paid", "no paid date yet"))?;
    let qbo_bill_id: String = row.try_get("qbo_bill_id")?;
    let now = st.app.clock.now();
    let today = st.app.clock.today();

    // Ledger: exactly one BillPayment for this bill, of the paid amount.
    let qbo = rail_auth(&st.app, &client_id, "qbo").await?;
    let payments = st
        .rails
        .ledger
        .bill_payments_for_bill(&qbo, &qbo_bill_id)
        .await?;
    let mut tx = st.app.db.pool.begin().await?;
    let recorded = match payments.as_slice() {
        [] => {
            let overdue = now.date_naive() > paid_date
                && (now - paid_date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                    > Duration::hours(LEDGER_WINDOW_HOURS);
            if overdue {
                flag(&mut tx, payment_id, "qbo_sync_missing", "medium",
                    &format!("No QBO BillPayment for bill {qbo_bill_id} {LEDGER_WINDOW_HOURS} h after it was paid"), now).await?;
            }
            false
        }
        [bp] if bp.amount_for_bill == amount => {
            sqlx::query("update payment set qbo_bill_payment_id = $1 where payment_id = $2")
                .bind(&bp.id)
                .bind(payment_id)
                .execute(&mut *tx)
                .await?;
            record_step(
                &mut tx,
                Step {
                    payment_id,
                    to: PaymentState::Recorded,
                    owner: "QBO",
                    actor: "rowcol:verify",
                    evidence: format!(
                        "QBO BillPayment {} for {} on {} links bill {}",
                        bp.id, bp.amount_for_bill, bp.txn_date, qbo_bill_id
                    ),
                    at: now,
                },
            )
            .await?;
            clear_flag(&mut tx, payment_id, "qbo_sync_missing", now).await?;
            true
        }
        [bp] => {
            flag(
                &mut tx,
                payment_id,
                "amount_mismatch",
                "critical",
                &format!(
                    "QBO BillPayment {} records {} but {} was paid",
                    bp.id, bp.amount_for_bill, amount
                ),
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        many => {
            flag(
                &mut tx,
                payment_id,
                "duplicate_payment",
                "critical",
                &format!(
                    "{} BillPayments in QBO link bill {}",
                    many.len(),
                    qbo_bill_id
                ),
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
    };
    tx.commit().await?;

    // Bank: a transaction of exactly the amount, from one day before to five
    // business days after the paid date, not already matched to another payment.
    super::sync::sync_transactions(st, &client_id).await?;
    let window_end = add_business_days(paid_date, CASH_WINDOW_BUSINESS_DAYS);
    let txn = sqlx::query(
        "select t.txn_id, t.txn_date, t.name from bank_txn t
         where t.client_id = $1 and t.amount_minor = $2 and t.txn_date >= $3 and t.txn_date <= $4
           and not exists (select 1 from payment p where p.plaid_txn_id = t.txn_id and p.payment_id <> $5)
         order by t.txn_date limit 1",
    )
    .bind(&client_id)
    .bind(amount.minor)
    .bind((paid_date - Duration::days(1)).to_string())
    .bind(window_end.to_string())
    .bind(payment_id)
    .fetch_optional(&st.app.db.pool)
    .await?;
    let mut tx = st.app.db.pool.begin().await?;
    let verified = match txn {
        Some(t) if recorded => {
            let txn_id: String = t.try_get("txn_id")?;
            sqlx::query("update payment set plaid_txn_id = $1 where payment_id = $2")
                .bind(&txn_id)
                .bind(payment_id)
                .execute(&mut *tx)
                .await?;
            record_step(&mut tx, Step {
                payment_id,
                to: PaymentState::Verified,
                owner: "Plaid",
                actor: "rowcol:verify",
                evidence: format!(
                    "Plaid transaction {} \"{}\" of {} on {} (strong evidence: exact amount within the window)",
                    txn_id, t.try_get::<String, _>("name")?, amount, t.try_get::<String, _>("txn_date")?
                ),
                at: now,
            }).await?;
            clear_flag(&mut tx, payment_id, "cash_not_seen", now).await?;
            enqueue(
                &mut tx,
                &Job::AnnotateLedger {
                    payment_id: payment_id.to_owned(),
                },
                now,
                Some(&format!("annotate:{payment_id}")),
            )
            .await?;
            true
        }
        _ => {
            if today > window_end {
                flag(
                    &mut tx,
                    payment_id,
                    "cash_not_seen",
                    "medium",
                    &format!(
                        "No bank transaction of {amount} between {} and {window_end}",
                        paid_date - Duration::days(1)
                    ),
                    now,
                )
                .await?;
            }
            false
        }
    };
    tx.commit().await?;
    if verified {
        Ok(())
    } else {
        // Evidence can lag: look again on the retry schedule.
        Err(JobError::retry(
            "evidence_pending",
            if recorded {
                "bank movement not seen yet"
            } else {
                "QBO BillPayment not seen yet"
            },
        ))
    }
}
