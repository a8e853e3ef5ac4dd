//! Observe: pull a client's open bills (QBO), Ramp bill-pay setup, bank
//! balance and transactions (Plaid) into RowCol's staging tables.

use super::JobError;
use crate::connections::rail_auth;
use crate::rails::{RailAuth, RailError};
use crate::startup::ServerState;
use app::ssr::db::to_ms;
use sqlx::Row;

pub async fn run(st: &ServerState, client_id: &str) -> Result<(), JobError> {
    let firm: String = sqlx::query_scalar("select firm_id from client where client_id = $1")
        .bind(client_id)
        .fetch_optional(&st.app.db.pool)
        .await?
        .ok_or_else(|| JobError::fatal("not_found", "client vanished"))?;
    sync_bills(st, &firm, client_id).await?;
    let ramp = rail_auth(&st.app, client_id, "ramp").await?;
    sync_ramp_setup(st, client_id, &ramp).await?;
    refresh_balance(st, client_id).await?;
    sync_transactions(st, client_id).await?;
    Ok(())
}

async fn sync_bills(st: &ServerState, firm: &str, client_id: &str) -> Result<(), JobError> {
    let auth = rail_auth(&st.app, client_id, "qbo").await?;
    let bills = st.rails.ledger.open_bills(&auth).await?;
    let now = to_ms(st.app.clock.now());
    let mut tx = st.app.db.pool.begin().await?;
    for b in &bills {
        sqlx::query(
            "insert into staged_bill (bill_id, firm_id, client_id, qbo_bill_id, qbo_vendor_id, vendor_name,
                doc_number, amount_minor, balance_minor, currency, txn_date, due_date, status, synced_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'open', $13)
             on conflict (client_id, qbo_bill_id) do update set
                balance_minor = excluded.balance_minor, due_date = excluded.due_date,
                vendor_name = excluded.vendor_name, status = 'open', synced_at = excluded.synced_at",
        )
        .bind(app::model::BillId::generate().as_str())
        .bind(firm)
        .bind(client_id)
        .bind(&b.id)
        .bind(&b.vendor_id)
        .bind(&b.vendor_name)
        .bind(&b.doc_number)
        .bind(b.total.minor)
        .bind(b.balance.minor)
        .bind(b.balance.currency.as_str())
        .bind(b.txn_date.to_string())
        .bind(b.due_date.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    // Bills QBO no longer lists as open were paid or voided in the ledger.
    sqlx::query(
        "update staged_bill set status = 'closed', synced_at = $1
         where client_id = $2 and status = 'open' and synced_at < $1",
    )
    .bind(now)
    .bind(client_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn sync_ramp_setup(
    st: &ServerState,
    client_id: &str,
    auth: &RailAuth,
) -> Result<(), JobError> {
    let setup = st.rails.bill_pay.bill_pay_setup(auth).await?;
    let mut tx = st.app.db.pool.begin().await?;
    sqlx::query(
        "update rail_connection set entity_id = $1, source_bank_account_id = $2, synced_at = $3
         where client_id = $4 and rail = 'ramp'",
    )
    .bind(&setup.entity_id)
    .bind(&setup.source_bank_account_id)
    .bind(to_ms(st.app.clock.now()))
    .bind(client_id)
    .execute(&mut *tx)
    .await?;
    for v in &setup.vendors {
        let Some(qbo_id) = &v.accounting_vendor_remote_id else {
            continue;
        };
        sqlx::query(
            "insert into vendor_map (client_id, qbo_vendor_id, ramp_vendor_id, ramp_contact_id, ramp_vendor_account_id, name)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (client_id, qbo_vendor_id) do update set ramp_vendor_id = excluded.ramp_vendor_id,
                ramp_contact_id = excluded.ramp_contact_id, ramp_vendor_account_id = excluded.ramp_vendor_account_id,
                name = excluded.name",
        )
        .bind(client_id)
        .bind(qbo_id)
        .bind(&v.id)
        .bind(&v.contact_id)
        .bind(&v.vendor_account_id)
        .bind(&v.name)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Read the live balance and store it as the client's cash snapshot.
pub async fn refresh_balance(st: &ServerState, client_id: &str) -> Result<(), RefreshError> {
    let auth = rail_auth(&st.app, client_id, "plaid")
        .await
        .map_err(JobError::from)?;
    let bal = match st.rails.cash.balance(&auth).await {
        Ok(b) => b,
        Err(RailError::LoginRequired(m)) => {
            reconnect_needed(st, client_id, &m).await?;
            return Err(RefreshError::LoginRequired);
        }
        Err(e) => return Err(RefreshError::Job(e.into())),
    };
    sqlx::query(
        "insert into cash_snapshot (client_id, account_id, available_minor, current_minor, currency, as_of)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (client_id) do update set account_id = excluded.account_id,
            available_minor = excluded.available_minor, current_minor = excluded.current_minor,
            currency = excluded.currency, as_of = excluded.as_of",
    )
    .bind(client_id)
    .bind(&bal.account_id)
    .bind(bal.available.minor)
    .bind(bal.current.minor)
    .bind(bal.available.currency.as_str())
    .bind(to_ms(st.app.clock.now()))
    .execute(&st.app.db.pool)
    .await
    .map_err(JobError::from)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the bank connection needs to be re-authorised")]
    LoginRequired,
    #[error(transparent)]
    Job(#[from] JobError),
}

impl From<RefreshError> for JobError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::LoginRequired => {
                JobError::fatal("login_required", "Plaid item needs re-authorisation")
            }
            RefreshError::Job(j) => j,
        }
    }
}

impl From<sqlx::Error> for RefreshError {
    fn from(e: sqlx::Error) -> Self {
        RefreshError::Job(e.into())
    }
}

/// File (once) a hygiene item asking for the bank to be reconnected.
async fn reconnect_needed(
    st: &ServerState,
    client_id: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    let open: i64 = sqlx::query_scalar(
        "select count(*) from hygiene_item where client_id = $1 and reason_code = 'rail_reauth_needed' and status = 'open'",
    )
    .bind(client_id)
    .fetch_one(&st.app.db.pool)
    .await?;
    if open > 0 {
        return Ok(());
    }
    let firm: String = sqlx::query_scalar("select firm_id from client where client_id = $1")
        .bind(client_id)
        .fetch_one(&st.app.db.pool)
        .await?;
    let detail = format!("Plaid: the bank login must be renewed ({detail})");
    let mut conn = st.app.db.pool.acquire().await?;
    crate::hygiene::file(
        &mut conn,
        crate::hygiene::NewItem {
            firm_id: &firm,
            client_id: Some(client_id),
            payment_id: None,
            severity: "high",
            reason_code: "rail_reauth_needed",
            detail: &detail,
            at: st.app.clock.now(),
        },
    )
    .await?;
    Ok(())
}

/// Page through Plaid's transactions/sync from the stored cursor.
pub async fn sync_transactions(st: &ServerState, client_id: &str) -> Result<(), JobError> {
    let auth = rail_auth(&st.app, client_id, "plaid").await?;
    let mut cursor: Option<String> = sqlx::query(
        "select sync_cursor from rail_connection where client_id = $1 and rail = 'plaid'",
    )
    .bind(client_id)
    .fetch_one(&st.app.db.pool)
    .await?
    .try_get("sync_cursor")?;
    for _ in 0..1000 {
        let page = st
            .rails
            .cash
            .transactions_sync(&auth, cursor.as_deref())
            .await?;
        let mut tx = st.app.db.pool.begin().await?;
        for t in page.added.iter().chain(page.modified.iter()) {
            sqlx::query(
                "insert into bank_txn (client_id, txn_id, account_id, amount_minor, currency, txn_date, name, pending)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)
                 on conflict (client_id, txn_id) do update set amount_minor = excluded.amount_minor,
                    txn_date = excluded.txn_date, name = excluded.name, pending = excluded.pending",
            )
            .bind(client_id)
            .bind(&t.id)
            .bind(&t.account_id)
            .bind(t.amount.minor)
            .bind(t.amount.currency.as_str())
            .bind(t.date.to_string())
            .bind(&t.name)
            .bind(i64::from(t.pending))
            .execute(&mut *tx)
            .await?;
        }
        for id in &page.removed {
            sqlx::query("delete from bank_txn where client_id = $1 and txn_id = $2")
                .bind(client_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        // The cursor and the page it covers commit together.
        sqlx::query(
            "update rail_connection set sync_cursor = $1 where client_id = $2 and rail = 'plaid'",
        )
        .bind(&page.next_cursor)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        cursor = Some(page.next_cursor);
        if !page.has_more {
            break;
        }
    }
    Ok(())
}
