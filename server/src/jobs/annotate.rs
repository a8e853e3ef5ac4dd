//! Record: once a payment is verified, write RowCol's audit note onto its QBO
//! BillPayment, so the ledger itself says who approved it and what proved it.

use super::JobError;
use crate::connections::rail_auth;
use crate::services::Services;
use app::domain::custody::PaymentState;
use app::model::Rail;
use app::ssr::store::audit::{self, Entry};
use app::ssr::store::{commit, payments};

pub async fn run(st: &Services, payment_id: &str) -> Result<(), JobError> {
    let (payment, approver) = {
        let mut conn = st.db.acquire().await?;
        let payment = payments::require(&mut conn, payment_id).await?;
        let approver = payments::approver_email(&mut conn, payment_id).await?;
        (payment, approver)
    };
    if payment.state()? != PaymentState::Verified {
        return Err(JobError::fatal("not_verified", "payment is not verified"));
    }
    let bill_payment = payment
        .qbo_bill_payment_id
        .clone()
        .ok_or_else(|| JobError::fatal("no_bill_payment", "no QBO BillPayment"))?;
    // The marker finds our note again, so a retry does not append it twice
    // (the adapter keeps the note within QBO's PrivateNote limit).
    let marker = format!("RowCol payment {payment_id}:");
    let note = format!(
        "{marker} approved by {approver} in RowCol; released on Ramp as bill {}; \
         paid {}; verified against bank transaction {}.",
        payment.ramp_bill_id.as_deref().unwrap_or_default(),
        payment.paid_date.as_deref().unwrap_or_default(),
        payment.plaid_txn_id.as_deref().unwrap_or_default(),
    );
    let auth = rail_auth(st, &payment.client_id, Rail::Qbo).await?;
    st.rails
        .ledger
        .annotate_bill_payment(&auth, &bill_payment, &marker, &note)
        .await?;

    let mut tx = st.db.begin().await?;
    audit::record(
        &mut tx,
        &payment.firm()?,
        st.clock.now(),
        Entry {
            actor: "rowcol:record",
            action: "ledger.annotated",
            subject: payment_id,
            detail: serde_json::json!({ "qbo_bill_payment_id": bill_payment, "note": note }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(())
}
