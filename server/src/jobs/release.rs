//! Release an approved payment on Ramp: create the bill through the API with
//! RowCol's payment id as `remote_id`, so a retry (after a timeout, a 5xx, a
//! crash) can never create a second payment.

use super::custody::{record_step, Step};
use super::JobError;
use crate::connections::rail_auth;
use crate::rails::CreateBill;
use crate::startup::ServerState;
use app::domain::calendar::payment_arrival_date;
use app::domain::custody::PaymentState;
use app::model::{Currency, Money};
use sqlx::Row;

pub async fn run(st: &ServerState, payment_id: &str) -> Result<(), JobError> {
    let row = sqlx::query(
        "select p.client_id, p.state, p.amount_minor, p.currency, p.payment_arrival_date,
                b.qbo_vendor_id, b.doc_number, b.qbo_bill_id, b.txn_date, b.due_date, b.vendor_name
         from payment p join staged_bill b on b.bill_id = p.bill_id where p.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(&st.app.db.pool)
    .await?
    .ok_or_else(|| JobError::fatal("not_found", "payment vanished"))?;
    let state: String = row.try_get("state")?;
    if state != PaymentState::Approved.as_str() {
        // Already released (or further): the job is a no-op.
        return Ok(());
    }
    let client_id: String = row.try_get("client_id")?;
    let auth = rail_auth(&st.app, &client_id, "ramp").await?;

    // Entity, bank account and vendor mapping come from the Ramp sync; fetch
    // them now if the sync has not run yet.
    let vendor_id: String = row.try_get("qbo_vendor_id")?;
    let mapping = load_mapping(st, &client_id, &vendor_id).await?;
    let mapping = match mapping {
        Some(m) => m,
        None => {
            super::sync::sync_ramp_setup(st, &client_id, &auth).await?;
            load_mapping(st, &client_id, &vendor_id)
                .await?
                .ok_or_else(|| {
                    JobError::fatal(
                        "vendor_unmapped",
                        format!("vendor {vendor_id} has no Ramp vendor"),
                    )
                })?
        }
    };
    let parse_date = |col: &str| -> Result<chrono::NaiveDate, JobError> {
        row.try_get::<String, _>(col)?
            .parse()
            .map_err(|_| JobError::fatal("bad_date", col.to_owned()))
    };
    let currency = Currency::parse(&row.try_get::<String, _>("currency")?)
        .map_err(|e| JobError::fatal("bad_currency", e.to_string()))?;
    let doc: Option<String> = row.try_get("doc_number")?;
    let qbo_bill_id: String = row.try_get("qbo_bill_id")?;
    let req = CreateBill {
        remote_id: payment_id.to_owned(),
        entity_id: mapping.entity_id,
        vendor_id: mapping.ramp_vendor_id,
        vendor_contact_id: mapping.contact_id,
        invoice_number: doc.unwrap_or_else(|| format!("QBO-{qbo_bill_id}")),
        issued_at: parse_date("txn_date")?,
        due_at: parse_date("due_date")?,
        amount: Money::new(row.try_get("amount_minor")?, currency),
        memo: Some(format!("RowCol payment {payment_id}")),
        // A release delayed by retries (or a queue that waited) may find the
        // planned arrival date already too close: move it to the earliest
        // date ACH can still make, never earlier than planned.
        payment_arrival_date: payment_arrival_date(
            parse_date("payment_arrival_date")?,
            st.app.clock.today(),
        ),
        source_bank_account_id: mapping.source_bank_account_id,
        vendor_account_id: mapping.vendor_account_id,
    };
    let bill = st.rails.bill_pay.create_bill(&auth, &req).await?;

    let now = st.app.clock.now();
    let mut tx = st.app.db.pool.begin().await?;
    sqlx::query(
        "update payment set ramp_bill_id = $1, payment_arrival_date = $2
         where payment_id = $3 and ramp_bill_id is null",
    )
    .bind(&bill.id)
    .bind(req.payment_arrival_date.to_string())
    .bind(payment_id)
    .execute(&mut *tx)
    .await?;
    record_step(
        &mut tx,
        Step {
            payment_id,
            to: PaymentState::Released,
            owner: "Ramp",
            actor: "rowcol:release",
            evidence: format!(
                "Ramp bill {} created (remote_id {}), approval {}, ACH arriving {}",
                bill.id,
                payment_id,
                bill.approval_status.as_deref().unwrap_or("unknown"),
                req.payment_arrival_date
            ),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

struct Mapping {
    entity_id: String,
    source_bank_account_id: String,
    ramp_vendor_id: String,
    contact_id: String,
    vendor_account_id: String,
}

async fn load_mapping(
    st: &ServerState,
    client_id: &str,
    qbo_vendor_id: &str,
) -> Result<Option<Mapping>, sqlx::Error> {
    let row = sqlx::query(
        "select c.entity_id, c.source_bank_account_id, v.ramp_vendor_id, v.ramp_contact_id, v.ramp_vendor_account_id
         from rail_connection c join vendor_map v on v.client_id = c.client_id
         where c.client_id = $1 and c.rail = 'ramp' and v.qbo_vendor_id = $2",
    )
    .bind(client_id)
    .bind(qbo_vendor_id)
    .fetch_optional(&st.app.db.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let (Some(entity_id), Some(source_bank_account_id), Some(contact_id), Some(vendor_account_id)) = (
        r.try_get::<Option<String>, _>("entity_id")?,
        r.try_get::<Option<String>, _>("source_bank_account_id")?,
        r.try_get::<Option<String>, _>("ramp_contact_id")?,
        r.try_get::<Option<String>, _>("ramp_vendor_account_id")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Mapping {
        entity_id,
        source_bank_account_id,
        ramp_vendor_id: r.try_get("ramp_vendor_id")?,
        contact_id,
        vendor_account_id,
    }))
}
