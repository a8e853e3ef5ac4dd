//! Record: once a payment is verified, write RowCol's audit note onto its QBO
//! BillPayment, so the ledger itself says who approved it and what proved it.

use super::JobError;
use crate::connections::rail_auth;
use crate::startup::ServerState;
use app::model::FirmId;
use app::ssr::audit::{self, Entry};
use sqlx::Row;

/// QBO's `PrivateNote` holds at most 4000 characters.
const NOTE_MAX: usize = 4000;

pub async fn run(st: &ServerState, payment_id: &str) -> Result<(), JobError> {
    let row = sqlx::query(
        "select p.firm_id, p.client_id, p.qbo_bill_payment_id, p.ramp_bill_id, p.plaid_txn_id,
                p.paid_date, u.email
         from payment p join app_user u on u.user_id = p.approved_by
         where p.payment_id = $1 and p.state = 'verified'",
    )
    .bind(payment_id)
    .fetch_optional(&st.app.db.pool)
    .await?
    .ok_or_else(|| JobError::fatal("not_verified", "payment is not verified"))?;
    let bill_payment: Option<String> = row.try_get("qbo_bill_payment_id")?;
    let bill_payment =
        bill_payment.ok_or_else(|| JobError::fatal("no_bill_payment", "no QBO BillPayment"))?;
    let client_id: String = row.try_get("client_id")?;
    let note: String = format!(
        "RowCol payment {payment_id}: approved by {} in RowCol; released on Ramp as bill {}; \
         paid {}; verified against bank transaction {}.",
        row.try_get::<String, _>("email")?,
        row.try_get::<Option<String>, _>("ramp_bill_id")?
            .unwrap_or_default(),
        row.try_get::<Option<String>, _>("paid_date")?
            .unwrap_or_default(),
        row.try_get::<Option<String>, _>("plaid_txn_id")?
            .unwrap_or_default(),
    )
    .chars()
    .take(NOTE_MAX)
    .collect();
    let auth = rail_auth(&st.app, &client_id, "qbo").await?;
    st.rails
        .ledger
        .annotate_bill_payment(&auth, &bill_payment, &note)
        .await?;

    let firm = FirmId::parse(&row.try_get::<String, _>("firm_id")?)
        .map_err(|e| JobError::fatal("bad_firm", e.to_string()))?;
    let mut tx = st.app.db.pool.begin().await?;
    audit::record(
        &mut tx,
        &firm,
        st.app.clock.now(),
        Entry {
            actor: "rowcol:record",
            action: "ledger.annotated",
            subject: payment_id,
            detail: serde_json::json!({ "qbo_bill_payment_id": bill_payment, "note": note }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
